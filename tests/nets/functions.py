"""exp, log, sqrt, erf, softplus, rational powers, pi and division by a parameter."""
import numpy as np
import sympy

import bpgen as bp

net = bp.Network("functions")
x, y = net.inputs("x y")
a, b, c, k = net.params("a b c k")
u = net.eq("u", bp.exp(a * x) + bp.softplus(b * x))
v = net.eq("v", bp.sqrt(u + x ** 2) / (1 + c ** 2))
w = net.eq("w", bp.log(v + 1) * sympy.erf(k * x) + sympy.pi * u ** sympy.Rational(3, 2))
net.loss("L", (w / (2 + k ** 2) - y) ** 2 / 3)


def reference(p, d):
    from math import erf
    x = d["x"]
    u = np.exp(p["a"] * x) + np.logaddexp(0, p["b"] * x)
    v = np.sqrt(u + x ** 2) / (1 + p["c"] ** 2)
    w = np.log(v + 1) * np.vectorize(erf)(p["k"] * x) + np.pi * u ** 1.5
    return (w / (2 + p["k"] ** 2) - d["y"]) ** 2 / 3
