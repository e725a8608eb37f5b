"""Rows short enough to stay in registers (32 and 16 columns: whole vectors of AVX2 in
float64 and float32) in every product, forward and backward, with 10 input rows (W's
gradient: not a multiple of the 6 rows the C target's SIMD kernel does together)."""
import numpy as np

import bpgen as bp

net = bp.Network("rows")
x = net.input("x", shape=(10,))
y = net.input("y", shape=(16,))
W = net.param("W", shape=(10, 32))
V = net.param("V", shape=(32, 16))
h = net.eq("h", bp.tanh(x @ W))
net.loss("L", bp.sum((h @ V - y) ** 2))


def reference(p, d):
    h = np.tanh(d["x"] @ p["W"])
    return ((h @ p["V"] - d["y"]) ** 2).sum(axis=1)


def params(rng):
    return {"W": rng.normal(0.0, 0.4, (10, 32)), "V": rng.normal(0.0, 0.2, (32, 16))}


def sample(rng, n):
    return {"x": rng.normal(size=(n, 10)), "y": rng.normal(size=(n, 16))}
