"""An LSTM with PyTorch's packed gates (`gates[k*H:(k+1)*H]`, in PyTorch's order input,
forget, cell, output) over a sequence, with an embedding looked up by a class label
(`one_hot(word, V) @ E`) joined to each step's input by concatenate, and a regression
head on the last hidden state."""
import numpy as np

import bpgen as bp

T, D, H, V = 3, 2, 3, 4
net = bp.Network("lstm")
X = net.input("X", shape=(T, D))
word = net.input("word", dtype=int)
y = net.input("y")
E = net.param("E", shape=(V, 2))
Wi = net.param("Wi", shape=(D + 2, 4 * H))
Wh = net.param("Wh", shape=(H, 4 * H))
b = net.param("b", shape=(4 * H,))
w_out = net.param("w_out", shape=(H,))
emb = net.eq("emb", bp.one_hot(word, V) @ E)
h = c = None
for t in range(T):
    step = bp.concatenate([X[t], emb])
    gates = net.eq(f"gates{t}", step @ Wi + b if h is None else step @ Wi + h @ Wh + b)
    i, f = bp.sigmoid(gates[:H]), bp.sigmoid(gates[H:2 * H])
    g, o = bp.tanh(gates[2 * H:3 * H]), bp.sigmoid(gates[3 * H:])
    c = net.eq(f"c{t}", i * g if c is None else f * c + i * g)
    h = net.eq(f"h{t}", o * bp.tanh(c))
net.loss("L", (bp.dot(h, w_out) - y) ** 2)


def reference(p, d):
    def sigmoid(v):
        return 1 / (1 + np.exp(-v))
    emb = p["E"][d["word"].astype(int)]
    h = c = None
    for t in range(T):
        step = np.concatenate([d["X"][:, t], emb], axis=1)
        gates = step @ p["Wi"] + p["b"] + (0 if h is None else h @ p["Wh"])
        i, f = sigmoid(gates[:, :H]), sigmoid(gates[:, H:2 * H])
        g, o = np.tanh(gates[:, 2 * H:3 * H]), sigmoid(gates[:, 3 * H:])
        c = i * g if c is None else f * c + i * g
        h = o * np.tanh(c)
    return (h @ p["w_out"] - d["y"]) ** 2


def sample(rng, n):
    return {"X": rng.normal(size=(n, T, D)), "word": rng.integers(0, V, n),
            "y": rng.normal(size=n)}
