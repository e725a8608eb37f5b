"""An Elman RNN over a sequence input X of shape (T, d), as the tutorials write it:
h_t = tanh(X[t] @ Wx + h_{t-1} @ Wh + b), then a softmax cross-entropy on the last h."""
import numpy as np

import bpgen as bp

T, D, H, C = 5, 3, 4, 3
net = bp.Network("rnn")
X = net.input("X", shape=(T, D))
y = net.input("y", shape=(C,))
Wx = net.param("Wx", shape=(D, H))
Wh = net.param("Wh", shape=(H, H))
b = net.param("b", shape=(H,))
Wo = net.param("Wo", shape=(H, C))
h = net.eq("h0", bp.tanh(X[0] @ Wx + b))
for t in range(1, T):
    h = net.eq(f"h{t}", bp.tanh(X[t] @ Wx + h @ Wh + b))
net.loss("L", bp.softmax_cross_entropy(h @ Wo, y))


def reference(p, d):
    h = np.tanh(d["X"][:, 0] @ p["Wx"] + p["b"])
    for t in range(1, T):
        h = np.tanh(d["X"][:, t] @ p["Wx"] + h @ p["Wh"] + p["b"])
    z = h @ p["Wo"]
    m = z.max(axis=1, keepdims=True)
    return (np.log(np.exp(z - m).sum(axis=1)) + m[:, 0]) - (d["y"] * z).sum(axis=1)


def sample(rng, n):
    return {"X": rng.normal(size=(n, T, D)), "y": np.eye(C)[rng.integers(0, C, n)]}
