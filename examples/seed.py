"""The lecture's 2-2-1 tanh network: two inputs, two hidden units, one output."""

import bpgen as bp

net = bp.Network("seed")
x1, x2, y = net.inputs("x1 x2 y")
w11, w21, w12, w22, v1, v2 = net.params("w11 w21 w12 w22 v1 v2")
s1 = net.eq("s1", w11 * x1 + w21 * x2)
s2 = net.eq("s2", w12 * x1 + w22 * x2)
z1 = net.eq("z1", bp.tanh(s1))
z2 = net.eq("z2", bp.tanh(s2))
s3 = net.eq("s3", v1 * z1 + v2 * z2)
z3 = net.eq("z3", bp.tanh(s3))
net.loss("L", (y - z3) ** 2)
