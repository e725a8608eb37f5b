"""A parameter the loss never reads: its gradient is exactly zero."""
import bpgen as bp

net = bp.Network("unused")
x, y = net.inputs("x y")
w, spare = net.params("w spare")
net.loss("L", (w * x - y) ** 2)


def reference(p, d):
    return (p["w"] * d["x"] - d["y"]) ** 2
