"""Slicing with steps and negative indices, concatenate, stack, reshape with -1, the
elementwise maximum and minimum, an explicit einsum, log_softmax and a max over an axis."""
import numpy as np

import bpgen as bp

net = bp.Network("pieces")
X = net.input("X", shape=(4, 6))
v = net.input("v", shape=(3,))
W = net.param("W", shape=(3, 5))
c = net.param("c", shape=(2,))
top = net.eq("top", X[1:3, ::2])                       # (2, 3)
last = net.eq("last", X[-1, :3])                       # (3,)
joined = net.eq("joined", bp.concatenate([top, bp.stack([last, v])], axis=0))   # (4, 3)
flat = net.eq("flat", joined.reshape(-1))              # (12,)
mixed = net.eq("mixed", bp.maximum(flat[:6], 0.2) + bp.minimum(flat[6:], v.sum()))
proj = net.eq("proj", bp.einsum("ij,jk->ik", joined, W))  # (4, 5)
pooled = net.eq("pooled", bp.max(bp.tanh(proj), axis=1))  # (4,)
logp = net.eq("logp", bp.log_softmax(bp.concatenate([pooled[:2] * c, mixed[:2]])))
net.loss("L", -bp.sum(logp * bp.stack([1.0, 0.0, 0.5, 0.5])) + bp.sum(c ** 2) / 10)


def reference(p, d):
    X, v = d["X"], d["v"]
    n = len(X)
    top = X[:, 1:3, ::2]
    last = X[:, -1, :3]
    joined = np.concatenate([top, np.stack([last, v], axis=1)], axis=1)
    flat = joined.reshape(n, -1)
    mixed = np.maximum(flat[:, :6], 0.2) + np.minimum(flat[:, 6:], v.sum(axis=1)[:, None])
    proj = np.einsum("nij,jk->nik", joined, p["W"])
    pooled = np.tanh(proj).max(axis=2)
    z = np.concatenate([pooled[:, :2] * p["c"], mixed[:, :2]], axis=1)
    m = z.max(axis=1, keepdims=True)
    logp = z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    return -(logp * np.array([1.0, 0.0, 0.5, 0.5])).sum(axis=1) + (p["c"] ** 2).sum() / 10


def sample(rng, n):
    return {"X": rng.normal(size=(n, 4, 6)), "v": rng.normal(size=(n, 3))}


def valid(p, d):
    """Away from the kinks of maximum and minimum (finite differences step over them)."""
    flat = reference_pieces(d)
    return (np.abs(flat[0] - 0.2).min(axis=1) > 1e-3) & \
        (np.abs(flat[1] - d["v"].sum(axis=1)[:, None]).min(axis=1) > 1e-3)


def reference_pieces(d):
    X, v = d["X"], d["v"]
    joined = np.concatenate([X[:, 1:3, ::2], np.stack([X[:, -1, :3], v], axis=1)], axis=1)
    flat = joined.reshape(len(X), -1)
    return flat[:, :6], flat[:, 6:]
