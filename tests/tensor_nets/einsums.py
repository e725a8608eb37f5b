"""Explicit einsums with no matrix-product form: three operands (an outer product of a
product), and a per-sample vector broadcast along the rows of a matrix."""
import numpy as np

import bpgen as bp

net = bp.Network("einsums")
x = net.input("x", shape=(3,))
z = net.input("z", shape=(4,))
Y = net.input("Y", shape=(3, 4))
u = net.param("u", shape=(3,))
v = net.param("v", shape=(4,))
w = net.param("w", shape=(4,))
outer = net.eq("outer", bp.einsum("i,i,j->ij", x, u, v))     # x[i] u[i] v[j]
scaled = net.eq("scaled", bp.einsum("k,ik->ik", z * w, Y))   # z[k] w[k] Y[i, k]
net.loss("L", bp.sum(outer * scaled) + bp.sum(bp.tanh(outer) ** 2))


def reference(p, d):
    outer = (d["x"] * p["u"])[:, :, None] * p["v"][None, None, :]
    scaled = (d["z"] * p["w"])[:, None, :] * d["Y"]
    return (outer * scaled).sum(axis=(1, 2)) + (np.tanh(outer) ** 2).sum(axis=(1, 2))


def sample(rng, n):
    return {"x": rng.normal(size=(n, 3)), "z": rng.normal(size=(n, 4)),
            "Y": rng.normal(size=(n, 3, 4))}
