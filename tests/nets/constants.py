"""Constant equations (folded), a sum reduction, a cube and one input."""
import numpy as np
import sympy

import bpgen as bp

net = bp.Network("constants")
t = net.inputs("t")
m, q = net.params("m q")
half = net.eq("half", sympy.Rational(1, 2))
two = net.eq("two", half * 4)
g = net.eq("g", two * m * t ** 3 + q / two)
net.loss("L", half * (g - sympy.cos(t)) ** 2, reduce="sum")


def reference(p, d):
    g = 2 * p["m"] * d["t"] ** 3 + p["q"] / 2
    return 0.5 * (g - np.cos(d["t"])) ** 2
