"""Values computed from parameters only (W.T @ W, once per batch, not per sample),
fan-out of one hidden value into two heads, and relu."""
import numpy as np

import bpgen as bp

net = bp.Network("shared")
x = net.input("x", shape=(3,))
y = net.input("y", shape=(2,))
W = net.param("W", shape=(3, 3))
A = net.param("A", shape=(3, 2))
B = net.param("B", shape=(3, 2))
G = net.eq("G", W.T @ W)                    # the same for every sample
h = net.eq("h", bp.relu(x @ G) + 0.5 * x)
p = net.eq("p", h @ A)
q = net.eq("q", bp.exp(h @ B / 4))
net.loss("L", bp.sum((p - y) ** 2) + bp.mean(q))


def reference(prm, d):
    G = prm["W"].T @ prm["W"]
    pre = d["x"] @ G
    h = np.maximum(pre, 0) + 0.5 * d["x"]
    p = h @ prm["A"]
    q = np.exp(h @ prm["B"] / 4)
    return ((p - d["y"]) ** 2).sum(axis=1) + q.mean(axis=1)


def sample(rng, n):
    return {"x": rng.normal(size=(n, 3)), "y": rng.normal(size=(n, 2))}


def valid(prm, d):
    pre = d["x"] @ (prm["W"].T @ prm["W"])
    return np.abs(pre).min(axis=1) > 1e-3
