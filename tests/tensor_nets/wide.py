"""A layer wider than the C target keeps in registers (96 = 3 tiles of 32 columns),
with 5 input rows (not a multiple of the 4 rows done together): the tiled contraction
kernels, forward and backward."""
import numpy as np

import bpgen as bp

net = bp.Network("wide")
x = net.input("x", shape=(5,))
y = net.input("y", shape=(3,))
W = net.param("W", shape=(5, 96))
V = net.param("V", shape=(96, 3))
h = net.eq("h", bp.tanh(x @ W))
net.loss("L", bp.sum((h @ V - y) ** 2))


def reference(p, d):
    h = np.tanh(d["x"] @ p["W"])
    return ((h @ p["V"] - d["y"]) ** 2).sum(axis=1)


def params(rng):
    return {"W": rng.normal(0.0, 0.5, (5, 96)), "V": rng.normal(0.0, 0.2, (96, 3))}


def sample(rng, n):
    return {"x": rng.normal(size=(n, 5)), "y": rng.normal(size=(n, 3))}
