"""relu, Abs, Max and Piecewise, evaluated away from their kinks."""
import numpy as np
import sympy

import bpgen as bp

net = bp.Network("kinks")
x, y = net.inputs("x y")
a, b, c, d = net.params("a b c d")
h1 = net.eq("h1", bp.relu(a * x + b))
h2 = net.eq("h2", sympy.Abs(c * x - 0.3))
h3 = net.eq("h3", sympy.Max(h1, h2))
h4 = net.eq("h4", sympy.Piecewise((d * h3 ** 2, h3 > 0.5), (d * h3, True)))
net.loss("L", (h4 + h1 - y) ** 2)


def reference(p, d_):
    x = d_["x"]
    h1 = np.maximum(p["a"] * x + p["b"], 0.0)
    h2 = np.abs(p["c"] * x - 0.3)
    h3 = np.maximum(h1, h2)
    h4 = np.where(h3 > 0.5, p["d"] * h3 ** 2, p["d"] * h3)
    return (h4 + h1 - d_["y"]) ** 2


def sample(rng, n):
    return {"x": rng.uniform(-2, 2, n), "y": rng.normal(size=n)}


def valid(p, d_):
    """Samples at least 1e-3 away from every kink (finite differences need that)."""
    x = d_["x"]
    s1 = p["a"] * x + p["b"]
    h1 = np.maximum(s1, 0.0)
    h2 = np.abs(p["c"] * x - 0.3)
    h3 = np.maximum(h1, h2)
    return ((np.abs(s1) > 1e-3) & (np.abs(p["c"] * x - 0.3) > 1e-3)
            & (np.abs(h1 - h2) > 1e-3) & (np.abs(h3 - 0.5) > 1e-3))
