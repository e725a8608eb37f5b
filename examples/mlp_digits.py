"""A 64-32-10 multilayer perceptron for 8x8 handwritten digits, one layer per equation.

The equations are written for ONE sample (x is one image, y its one-hot label); bpgen adds
the batch axis. Compile with `bpgen compile examples/mlp_digits.py --target all` and
train with `python examples/scripts/train_digits.py`.
"""

import bpgen as bp

net = bp.Network("mlp")
x = net.input("x", shape=(64,))          # per-sample shape; the batch axis is implicit
y = net.input("y", shape=(10,))          # one-hot target
W1 = net.param("W1", shape=(64, 32))
b1 = net.param("b1", shape=(32,))
W2 = net.param("W2", shape=(32, 10))
b2 = net.param("b2", shape=(10,))
h = net.eq("h", bp.tanh(x @ W1 + b1))
logits = net.eq("logits", h @ W2 + b2)
net.loss("L", bp.softmax_cross_entropy(logits, y))   # per-sample scalar; mean over the batch
