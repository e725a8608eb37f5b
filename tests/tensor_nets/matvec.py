"""Matrix·vector (W @ x) and vector·matrix (h @ V) in one network, a vector·vector dot."""
import numpy as np

import bpgen as bp

net = bp.Network("matvec")
x = net.input("x", shape=(4,))
y = net.input("y")
W = net.param("W", shape=(5, 4))
V = net.param("V", shape=(5, 3))
u = net.param("u", shape=(3,))
h = net.eq("h", bp.tanh(W @ x))
g = net.eq("g", h @ V)
net.loss("L", (bp.dot(g, u) - y) ** 2)


def reference(p, d):
    h = np.tanh(d["x"] @ p["W"].T)
    g = h @ p["V"]
    return (g @ p["u"] - d["y"]) ** 2


def sample(rng, n):
    return {"x": rng.normal(size=(n, 4)), "y": rng.normal(size=n)}
