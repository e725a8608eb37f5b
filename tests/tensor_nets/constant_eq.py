"""A constant equation in a network with shaped values (it once crashed the C target:
`KeyError: 1/2`): half = 1/2 is a value the same for every sample, read by the loss."""
import numpy as np
import sympy

import bpgen as bp

net = bp.Network("constant_eq")
x = net.input("x", shape=(3,))
W = net.param("W", shape=(3, 2))
half = net.eq("half", sympy.Rational(1, 2))
h = net.eq("h", bp.tanh(x @ W))
net.loss("L", half * bp.sum(h ** 2))


def reference(p, d):
    h = np.tanh(d["x"] @ p["W"])
    return 0.5 * (h ** 2).sum(axis=1)


def sample(rng, n):
    return {"x": rng.normal(size=(n, 3))}
