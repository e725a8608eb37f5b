"""The smallest network: a linear loss whose gradient is an input itself (d_w = x)."""
import bpgen as bp

net = bp.Network("linear")
x, y = net.inputs("x y")
w, b = net.params("w b")
net.loss("L", w * x + b * y + w * b)


def reference(p, d):
    return p["w"] * d["x"] + p["b"] * d["y"] + p["w"] * p["b"]
