"""Penalty terms that depend on parameters only (computed once, not per sample)."""
import numpy as np

import bpgen as bp

net = bp.Network("regularized")
x, y = net.inputs("x y")
w, b, lam = net.params("w b lam")
scale = net.eq("scale", 1 + lam ** 2)
pred = net.eq("pred", scale * bp.tanh(w * x + b))
penalty = net.eq("penalty", 0.01 * (w ** 2 + b ** 2) + 0.1 * lam ** 4)
net.loss("L", (pred - y) ** 2 + penalty)


def reference(p, d):
    pred = (1 + p["lam"] ** 2) * np.tanh(p["w"] * d["x"] + p["b"])
    penalty = 0.01 * (p["w"] ** 2 + p["b"] ** 2) + 0.1 * p["lam"] ** 4
    return (pred - d["y"]) ** 2 + penalty
