"""Causal self-attention over a short sequence: a constant mask array in the expression
(np.triu of -1e9 above the diagonal), softmax along rows, a mean-squared-error head."""
import numpy as np

import bpgen as bp

T, D = 4, 3
net = bp.Network("attention")
X = net.input("X", shape=(T, D))
target = net.input("target", shape=(T, D))
Wq = net.param("Wq", shape=(D, D))
Wk = net.param("Wk", shape=(D, D))
Wv = net.param("Wv", shape=(D, D))
scores = net.eq("scores", (X @ Wq) @ (X @ Wk).T / np.sqrt(D)
                + np.triu(np.full((T, T), -1e9), 1))
weights = net.eq("weights", bp.softmax(scores, axis=1))
out = net.eq("out", weights @ (X @ Wv))
net.loss("L", bp.mean((out - target) ** 2))


def reference(p, d):
    X = d["X"]
    scores = (X @ p["Wq"]) @ np.swapaxes(X @ p["Wk"], 1, 2) / np.sqrt(D)
    scores = scores + np.triu(np.full((T, T), -1e9), 1)
    e = np.exp(scores - scores.max(axis=2, keepdims=True))
    weights = e / e.sum(axis=2, keepdims=True)
    out = weights @ (X @ p["Wv"])
    return ((out - d["target"]) ** 2).mean(axis=(1, 2))


def sample(rng, n):
    return {"X": rng.normal(size=(n, T, D)), "target": rng.normal(size=(n, T, D))}
