"""A 20-layer chain of width 2: deep backward graph, tanh and softplus layers."""
import numpy as np

import bpgen as bp

DEPTH = 20
net = bp.Network("chain20")
x, y = net.inputs("x y")
a = net.eq("a0", x)
b = net.eq("b0", -x)
for k in range(1, DEPTH + 1):
    p, q, r = net.params(f"p{k} q{k} r{k}")
    f = bp.tanh if k % 2 else bp.softplus
    a, b = net.eq(f"a{k}", f(p * a + q * b)), net.eq(f"b{k}", bp.tanh(r * a - q * b))
net.loss("L", (a + b - y) ** 2)


def reference(prm, d):
    a, b = d["x"], -d["x"]
    for k in range(1, DEPTH + 1):
        s = prm[f"p{k}"] * a + prm[f"q{k}"] * b
        a, b = (np.tanh(s) if k % 2 else np.logaddexp(0, s),
                np.tanh(prm[f"r{k}"] * a - prm[f"q{k}"] * b))
    return (a + b - d["y"]) ** 2
