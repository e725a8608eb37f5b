"""Forms that overflow naively, at arguments of magnitude up to 1000 (stabilising rewrites)."""
import numpy as np
import sympy

import bpgen as bp

net = bp.Network("stable")
x, y = net.inputs("x y")
a, b, c = net.params("a b c")
p = net.eq("p", bp.sigmoid(b * x))
t1 = net.eq("t1", -bp.log(bp.sigmoid(a * x)) - sympy.log(1 - p))
t2 = net.eq("t2", bp.log(1 + bp.exp(c * x)) + bp.log(bp.exp(a * x) + bp.exp(c * y)))
net.loss("L", t1 + t2 / 2 + bp.softplus(-c * y))


def reference(q, d):
    ax, bx, cx, cy = q["a"] * d["x"], q["b"] * d["x"], q["c"] * d["x"], q["c"] * d["y"]
    t1 = np.logaddexp(0, -ax) + np.logaddexp(0, bx)
    t2 = np.logaddexp(0, cx) + np.logaddexp(ax, cy)
    return t1 + t2 / 2 + np.logaddexp(0, -cy)


def sample(rng, n):
    return {"x": rng.uniform(-1000, 1000, n), "y": rng.uniform(-1000, 1000, n)}


def valid(q, d):
    """Away from where max(a*x, c*y) switches sides (a kink at this scale for FD)."""
    return np.abs(q["a"] * d["x"] - q["c"] * d["y"]) > 1.0
