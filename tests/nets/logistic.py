"""Logistic regression: sigmoid output and binary cross-entropy."""
import numpy as np

import bpgen as bp

net = bp.Network("logistic")
x1, x2, y = net.inputs("x1 x2 y")
w1, w2, b = net.params("w1 w2 b")
p = net.eq("p", bp.sigmoid(w1 * x1 + w2 * x2 + b))
net.loss("L", -(y * bp.log(p) + (1 - y) * bp.log(1 - p)))


def reference(q, d):
    s = q["w1"] * d["x1"] + q["w2"] * d["x2"] + q["b"]
    p = 1 / (1 + np.exp(-s))
    return -(d["y"] * np.log(p) + (1 - d["y"]) * np.log(1 - p))


def sample(rng, n):
    return {"x1": rng.normal(size=n), "x2": rng.normal(size=n),
            "y": (rng.uniform(size=n) < 0.5).astype(float)}
