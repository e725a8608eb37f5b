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
# a three-class softmax cross-entropy written out by hand, and a three-term log-sum-exp
e1, e2, e3 = bp.exp(a * x), bp.exp(b * y), bp.exp(c * x - y)
t3 = net.eq("t3", -bp.log(e2 / (e1 + e2 + e3)) + bp.log(e1 + e2 + e3) / 4)
net.loss("L", t1 + t2 / 2 + bp.softplus(-c * y) + t3)


def reference(q, d):
    ax, bx, cx, cy = q["a"] * d["x"], q["b"] * d["x"], q["c"] * d["x"], q["c"] * d["y"]
    t1 = np.logaddexp(0, -ax) + np.logaddexp(0, bx)
    t2 = np.logaddexp(0, cx) + np.logaddexp(ax, cy)
    lse = np.logaddexp(ax, np.logaddexp(q["b"] * d["y"], cx - d["y"]))
    t3 = -(q["b"] * d["y"] - lse) + lse / 4
    return t1 + t2 / 2 + np.logaddexp(0, -cy) + t3


def sample(rng, n):
    return {"x": rng.uniform(-1000, 1000, n), "y": rng.uniform(-1000, 1000, n)}


def valid(q, d):
    """Away from where max(a*x, c*y) switches sides (a kink at this scale for FD)."""
    ax, by, cxy = q["a"] * d["x"], q["b"] * d["y"], q["c"] * d["x"] - d["y"]
    top = np.sort(np.stack([ax, by, cxy]), axis=0)
    return (np.abs(ax - q["c"] * d["y"]) > 1.0) & (top[2] - top[1] > 1.0)
