"""Every activation bpgen prints itself, side by side (also the C math-helper test)."""
import numpy as np

import bpgen as bp

net = bp.Network("activations")
x, y = net.inputs("x y")
a = net.params("a")
t = net.eq("t", bp.tanh(a * x))
e = net.eq("e", bp.exp(a * x))
g = net.eq("g", bp.sigmoid(a * x))
s = net.eq("s", bp.softplus(a * x))
r = net.eq("r", bp.relu(a * x))
net.loss("L", (t + 0.1 * e + g + s + r - y) ** 2)


def reference(p, d):
    z = p["a"] * d["x"]
    out = (np.tanh(z) + 0.1 * np.exp(z) + 1 / (1 + np.exp(-z)) + np.log1p(np.exp(z))
           + np.maximum(z, 0))
    return (out - d["y"]) ** 2


def valid(p, d):
    return np.abs(p["a"] * d["x"]) > 1e-3
