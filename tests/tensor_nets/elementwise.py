"""Every elementwise function bpgen prints, on vectors; log(sigmoid) stabilised; a
parameter that does not reach the loss (its gradient is zero)."""
import numpy as np

import bpgen as bp

net = bp.Network("elementwise")
x = net.input("x", shape=(4,))
y = net.input("y", shape=(4,))
a = net.param("a", shape=(4,))
c = net.param("c")
unused = net.param("unused", shape=(2, 2))
z = net.eq("z", a * x + c)
act = net.eq("act", bp.tanh(z) + 0.1 * bp.exp(z) + bp.sigmoid(z) + bp.softplus(z)
             + bp.relu(z) + bp.sqrt(1 + z ** 2) + abs(z) / 4)
net.loss("L", bp.mean((act - y) ** 2) - bp.sum(bp.log(bp.sigmoid(z))) / 10)


def reference(p, d):
    z = p["a"] * d["x"] + p["c"]
    act = (np.tanh(z) + 0.1 * np.exp(z) + 1 / (1 + np.exp(-z)) + np.log1p(np.exp(z))
           + np.maximum(z, 0) + np.sqrt(1 + z ** 2) + np.abs(z) / 4)
    return ((act - d["y"]) ** 2).mean(axis=1) + np.log1p(np.exp(-z)).sum(axis=1) / 10


def sample(rng, n):
    return {"x": rng.normal(size=(n, 4)), "y": rng.normal(size=(n, 4))}


def valid(p, d):
    return np.abs(p["a"] * d["x"] + p["c"]).min(axis=1) > 1e-3
