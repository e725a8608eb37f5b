"""User names that the generated code's internals once used: n, m, i, x, out, acc, g, p."""
import numpy as np

import bpgen as bp

net = bp.Network("internals")
x, n, m, i = net.inputs("x n m i")
p, g, acc = net.params("p g acc")
out = net.eq("out", bp.tanh(p * x + g * n))
scale = net.eq("scale", out * m + acc * i)
net.loss("value", (scale - i) ** 2)


def reference(q, d):
    out = np.tanh(q["p"] * d["x"] + q["g"] * d["n"])
    return (out * d["m"] + q["acc"] * d["i"] - d["i"]) ** 2
