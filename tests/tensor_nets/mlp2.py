"""Two hidden layers (tanh, sigmoid) and a softmax cross-entropy over 4 classes."""
import numpy as np

import bpgen as bp

net = bp.Network("mlp2")
x = net.input("x", shape=(5,))
y = net.input("y", shape=(4,))
W1 = net.param("W1", shape=(5, 6))
b1 = net.param("b1", shape=(6,))
W2 = net.param("W2", shape=(6, 3))
b2 = net.param("b2", shape=(3,))
W3 = net.param("W3", shape=(3, 4))
b3 = net.param("b3", shape=(4,))
h1 = net.eq("h1", bp.tanh(x @ W1 + b1))
h2 = net.eq("h2", bp.sigmoid(h1 @ W2 + b2))
z = net.eq("z", h2 @ W3 + b3)
net.loss("L", bp.softmax_cross_entropy(z, y))


def reference(p, d):
    h1 = np.tanh(d["x"] @ p["W1"] + p["b1"])
    h2 = 1 / (1 + np.exp(-(h1 @ p["W2"] + p["b2"])))
    z = h2 @ p["W3"] + p["b3"]
    m = z.max(axis=1, keepdims=True)
    log_softmax = z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    return -(d["y"] * log_softmax).sum(axis=1)


def sample(rng, n):
    return {"x": rng.normal(size=(n, 5)), "y": np.eye(4)[rng.integers(0, 4, n)]}
