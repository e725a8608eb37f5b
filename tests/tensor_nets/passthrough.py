"""Gradients that are an input (∂(W·x)/∂W = x), a parameter (∂(V·V/2)/∂V = V), a
number (∂Σb/∂b = 1) and a number through a transpose (∂ΣCᵀ/∂C = 1): each result is the
caller's own new array of reals, never the input, the parameter or a read-only broadcast
of the integer 1 (the one-sample path prints them as `x`, `V`, `1`, `np.broadcast_to(1,
...)`)."""
import numpy as np

import bpgen as bp

net = bp.Network("passthrough")
x = net.input("x", shape=(3,))
W = net.param("W", shape=(3,))
b = net.param("b", shape=(3,))
V = net.param("V", shape=(3,))
C = net.param("C", shape=(2, 3))
net.loss("L", bp.dot(W, x) + bp.sum(b) + bp.dot(V, V) / 2 + bp.sum(C.T))


def reference(p, d):
    return d["x"] @ p["W"] + np.sum(p["b"]) + p["V"] @ p["V"] / 2 + np.sum(p["C"])


def sample(rng, n):
    return {"x": rng.normal(size=(n, 3))}
