"""One hidden value feeds three equations; the loss is summed over the batch."""
import numpy as np

import bpgen as bp

net = bp.Network("fanout")
x, y = net.inputs("x y")
a, b, c = net.params("a b c")
h = net.eq("h", bp.tanh(a * x))
u = net.eq("u", h * b + h ** 2)
v = net.eq("v", c * h - u)
net.loss("L", (u + v * h - y) ** 2, reduce="sum")


def reference(p, d):
    h = np.tanh(p["a"] * d["x"])
    u = h * p["b"] + h ** 2
    v = p["c"] * h - u
    return (u + v * h - d["y"]) ** 2
