"""Class labels as integers (dtype=int), as PyTorch's CrossEntropyLoss takes them, with a
log_softmax head written out by hand for a second loss term."""
import numpy as np

import bpgen as bp

net = bp.Network("labels")
x = net.input("x", shape=(5,))
label = net.input("label", dtype=int)
W = net.param("W", shape=(5, 4))
b = net.param("b", shape=(4,))
z = net.eq("z", x @ W + b)
net.loss("L", bp.softmax_cross_entropy(z, label)
         - bp.sum(bp.one_hot(label, 4) * bp.log_softmax(z)) / 2)


def reference(p, d):
    z = d["x"] @ p["W"] + p["b"]
    m = z.max(axis=1, keepdims=True)
    logp = z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    picked = logp[np.arange(len(z)), d["label"].astype(int)]
    return -picked * 1.5


def sample(rng, n):
    return {"x": rng.normal(size=(n, 5)), "label": rng.integers(0, 4, n)}
