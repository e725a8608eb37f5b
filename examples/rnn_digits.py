"""An Elman recurrent network that reads each 8x8 handwritten digit as a sequence of 8 rows
of 8 pixels, top to bottom, and classifies it from its last hidden state.

    h_t = tanh(X[t] @ Wx + h_{t-1} @ Wh + b),   t = 0..7   (h_{-1} = 0)
    L   = cross-entropy(softmax(h_7 @ Wo + bo), label)

The loop unrolls into one equation per step; the label is a class index (an input of
dtype=int), as PyTorch's CrossEntropyLoss takes it. Compile with
`bpgen compile examples/rnn_digits.py --target all` and train with
`python examples/scripts/train_digits.py --model rnn`.
"""

import bpgen as bp

T, D, H = 8, 8, 32  # 8 rows of 8 pixels, 32 hidden units

net = bp.Network("rnn_digits")
X = net.input("X", shape=(T, D))          # one image, row by row
label = net.input("label", dtype=int)     # its class, 0..9
Wx = net.param("Wx", shape=(D, H))
Wh = net.param("Wh", shape=(H, H))
b = net.param("b", shape=(H,))
Wo = net.param("Wo", shape=(H, 10))
bo = net.param("bo", shape=(10,))
h = net.eq("h0", bp.tanh(X[0] @ Wx + b))
for t in range(1, T):
    h = net.eq(f"h{t}", bp.tanh(X[t] @ Wx + h @ Wh + b))
logits = net.eq("logits", h @ Wo + bo)
net.loss("L", bp.softmax_cross_entropy(logits, label))
