"""Numbers as values: constants that CSE pulls out into their own lines (sqrt(log 3),
atan(log 3)), a Piecewise of constant branches under And, and a logarithm to base 5.
(No constant with a C macro, such as log 2: the differential test's baseline printed
M_LN2, which is not C99.)"""
import math

import numpy as np
import sympy

import bpgen as bp

net = bp.Network("constant_values")
x, y = net.inputs("x y")
a, b = net.params("a b")
c = sympy.log(3)
u = net.eq("u", sympy.Piecewise((sympy.log(5), sympy.And(x > 0, x < 1)),
                                (sympy.log(5) / 2, True)))
net.loss("L", (a * x * sympy.sqrt(c) + c * x - y) ** 2 + a * sympy.atan(c)
         + (b * u - y) ** 2 + sympy.log(b ** 2 + 1, 5))


def reference(p, d):
    x, y = d["x"], d["y"]
    c = math.log(3)
    u = np.where((x > 0) & (x < 1), math.log(5), math.log(5) / 2)
    return ((p["a"] * x * math.sqrt(c) + c * x - y) ** 2 + p["a"] * math.atan(c)
            + (p["b"] * u - y) ** 2 + np.log(p["b"] ** 2 + 1) / math.log(5))


def sample(rng, n):
    return {"x": rng.uniform(-1, 2, n), "y": rng.normal(size=n)}
