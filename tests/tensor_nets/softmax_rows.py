"""softmax and logsumexp along axis 1 of a per-sample matrix (keepdims broadcasting),
a bias of shape (1, 4) broadcast over rows, and softmax used directly."""
import numpy as np

import bpgen as bp

net = bp.Network("softmax_rows")
X = net.input("X", shape=(2, 3))
Y = net.input("Y", shape=(2, 4))
W = net.param("W", shape=(3, 4))
b = net.param("b", shape=(1, 4))
Z = net.eq("Z", X @ W + b)
P = net.eq("P", bp.softmax(Z, axis=1))
net.loss("L", bp.sum((P - Y) ** 2) + 0.1 * bp.sum(bp.logsumexp(Z, axis=1)))


def reference(p, d):
    Z = d["X"] @ p["W"] + p["b"]
    E = np.exp(Z - Z.max(axis=2, keepdims=True))
    P = E / E.sum(axis=2, keepdims=True)
    lse = np.log(np.exp(Z).sum(axis=2))
    return ((P - d["Y"]) ** 2).sum(axis=(1, 2)) + 0.1 * lse.sum(axis=1)


def sample(rng, n):
    return {"X": rng.normal(size=(n, 2, 3)), "Y": rng.random(size=(n, 2, 4))}
