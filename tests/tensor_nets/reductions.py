"""sum and mean over axes (one, or a tuple) of a per-sample matrix, a regulariser that
is the same for every sample, and a per-sample scalar input next to shaped ones."""
import numpy as np

import bpgen as bp

net = bp.Network("reductions")
X = net.input("X", shape=(3, 4))
t = net.input("t")
W = net.param("W", shape=(4, 2))
v = net.param("v", shape=(3,))
H = net.eq("H", bp.tanh(X @ W))                    # (3, 2): matrix @ matrix per sample
rows = net.eq("rows", bp.mean(H, axis=1))          # (3,)
cols = net.eq("cols", bp.sum(H * H, axis=0))       # (2,)
score = net.eq("score", bp.dot(rows, v) + bp.sum(cols) / 4)
net.loss("L", (score - t) ** 2 + 0.01 * bp.sum(W ** 2) + 0.1 * bp.mean(H, axis=(0, 1)))


def reference(p, d):
    H = np.tanh(d["X"] @ p["W"])
    rows = H.mean(axis=2)
    cols = (H * H).sum(axis=1)
    score = rows @ p["v"] + cols.sum(axis=1) / 4
    return ((score - d["t"]) ** 2 + 0.01 * (p["W"] ** 2).sum()
            + 0.1 * H.mean(axis=(1, 2)))


def sample(rng, n):
    return {"X": rng.normal(size=(n, 3, 4)), "t": rng.normal(size=n)}
