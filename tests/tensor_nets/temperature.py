"""A scalar temperature broadcast over the logits: softmax(logits / T), summed loss."""
import numpy as np

import bpgen as bp

net = bp.Network("temperature")
x = net.input("x", shape=(4,))
y = net.input("y", shape=(3,))
W = net.param("W", shape=(4, 3))
T = net.param("T")
logits = net.eq("logits", x @ W / T)
net.loss("L", bp.softmax_cross_entropy(logits, y), reduce="sum")


def reference(p, d):
    z = d["x"] @ p["W"] / p["T"]
    m = z.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
    return lse - (d["y"] * z).sum(axis=1)


def sample(rng, n):
    return {"x": rng.normal(size=(n, 4)), "y": np.eye(3)[rng.integers(0, 3, n)]}


def params(rng):
    return {"W": rng.normal(size=(4, 3)), "T": 0.7 + rng.random()}
