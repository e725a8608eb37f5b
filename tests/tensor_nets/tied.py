"""An autoencoder with tied weights: the same W encodes (x @ W) and decodes (h @ W.T)."""
import numpy as np

import bpgen as bp

net = bp.Network("tied")
x = net.input("x", shape=(6,))
W = net.param("W", shape=(6, 3))
b = net.param("b", shape=(3,))
c = net.param("c", shape=(6,))
h = net.eq("h", bp.tanh(x @ W + b))
r = net.eq("r", h @ W.T + c)
net.loss("L", bp.sum((r - x) ** 2))


def reference(p, d):
    h = np.tanh(d["x"] @ p["W"] + p["b"])
    r = h @ p["W"].T + p["c"]
    return ((r - d["x"]) ** 2).sum(axis=1)


def sample(rng, n):
    return {"x": rng.normal(size=(n, 6))}
