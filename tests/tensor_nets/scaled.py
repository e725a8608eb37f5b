"""A scalar parameter times a per-sample vector (`tanh(s*z)`): s's gradient is one sum
over the samples and the vector's axis of a product whose factors include one that is the
same for every sample but has the axis (the broadcast seed `d_L_in` of `sum`); it once
stayed outside the sum and gave s a gradient of shape (4,)."""
import numpy as np

import bpgen as bp

net = bp.Network("scaled")
x = net.input("x", shape=(4,))
c = net.param("c", shape=(4,))
s = net.param("s")
z = net.eq("z", x + c)
net.loss("L", bp.sum(bp.tanh(s * z)))


def reference(p, d):
    return np.sum(np.tanh(p["s"] * (d["x"] + p["c"])), axis=1)


def sample(rng, n):
    return {"x": rng.normal(size=(n, 4))}
