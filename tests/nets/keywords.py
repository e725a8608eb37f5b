"""Names that are keywords or library names in Python or C, and non-ASCII names."""
import numpy as np
import sympy

import bpgen as bp

net = bp.Network("keywords")
lambda_, for_, y = net.inputs(["lambda", "for", "y"])
int_, double, np_, math, exp_ = net.params("int double np math exp")
d_ret = net.params("d_return")
alpha = net.params("α")
ret = net.eq("return", int_ * lambda_ + double * for_)
s = net.eq("sum", bp.tanh(ret) * np_ + math * sympy.exp(exp_ * for_))
n = net.eq("n", s * alpha + d_ret)
net.loss("loss", (n - y) ** 2)


def reference(p, d):
    ret = p["int"] * d["lambda"] + p["double"] * d["for"]
    s = np.tanh(ret) * p["np"] + p["math"] * np.exp(p["exp"] * d["for"])
    n = s * p["α"] + p["d_return"]
    return (n - d["y"]) ** 2
