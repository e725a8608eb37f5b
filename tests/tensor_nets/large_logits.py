"""Softmax cross-entropy at logits of magnitude ~1000: finite loss and gradients."""
import numpy as np

import bpgen as bp

net = bp.Network("large_logits")
x = net.input("x", shape=(3,))
y = net.input("y", shape=(5,))
W = net.param("W", shape=(3, 5))
z = net.eq("z", 400 * (x @ W))
net.loss("L", bp.softmax_cross_entropy(z, y))


def reference(p, d):
    z = 400 * (d["x"] @ p["W"])
    m = z.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
    return lse - (d["y"] * z).sum(axis=1)


def sample(rng, n):
    return {"x": rng.normal(size=(n, 3)), "y": np.eye(5)[rng.integers(0, 5, n)]}


def params(rng):
    return {"W": rng.normal(size=(3, 5))}
