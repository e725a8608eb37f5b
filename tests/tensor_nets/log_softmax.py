"""Cross-entropy written out by hand, -sum(y * log(softmax(z))), at logits beyond 1000:
log(softmax(z)) is z - logsumexp(z) (SymPy simplifies log(exp(.)) of real values), so it
stays finite; the summed loss counts a bias shared by every sample n times."""
import numpy as np

import bpgen as bp

net = bp.Network("log_softmax")
x = net.input("x", shape=(3,))
y = net.input("y", shape=(4,))
W = net.param("W", shape=(3, 4))
c = net.param("c", shape=(4,))
z = net.eq("z", 600 * (x @ W) + c)
net.loss("L", -bp.sum(y * bp.log(bp.softmax(z))) + bp.sum(c ** 2) / 100, reduce="sum")


def reference(p, d):
    z = 600 * (d["x"] @ p["W"]) + p["c"]
    m = z.max(axis=1, keepdims=True)
    log_softmax = z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    return -(d["y"] * log_softmax).sum(axis=1) + (p["c"] ** 2).sum() / 100


def sample(rng, n):
    return {"x": rng.normal(size=(n, 3)), "y": np.eye(4)[rng.integers(0, 4, n)]}


def params(rng):
    return {"W": rng.normal(size=(3, 4)), "c": rng.normal(size=4)}
