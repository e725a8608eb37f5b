"""A mixture density network (Bishop, 1994) with its textbook loss written as the math
reads, -log(sum(pi * N(y; mu, s))): bpgen evaluates it in log space (logsumexp of
log_softmax - (y - mu)**2 / (2 s**2) - log s), so an outlier target gives a finite loss
and gradient where the formula as written gives log(0)."""
import numpy as np

import bpgen as bp

K = 3
net = bp.Network("mdn")
x = net.input("x", shape=(2,))
y = net.input("y")
W = net.param("W", shape=(2, 3 * K))
b = net.param("b", shape=(3 * K,))
h = net.eq("h", x @ W + b)
pi = net.eq("pi", bp.softmax(h[:K]))
mu = net.eq("mu", h[K:2 * K])
s = net.eq("s", bp.exp(h[2 * K:]))
net.loss("L", -bp.log(bp.sum(pi * bp.exp(-(y - mu) ** 2 / (2 * s ** 2)) / s))
         + 0.5 * np.log(2 * np.pi))


def reference(p, d):
    """The log-space form, as PyTorch's MixtureSameFamily computes it."""
    h = d["x"] @ p["W"] + p["b"]
    z, mu, log_s = h[:, :K], h[:, K:2 * K], h[:, 2 * K:]
    log_pi = z - z.max(axis=1, keepdims=True)
    log_pi -= np.log(np.exp(log_pi).sum(axis=1, keepdims=True))
    a = log_pi - (d["y"][:, None] - mu) ** 2 / (2 * np.exp(2 * log_s)) - log_s
    m = a.max(axis=1, keepdims=True)
    return -(m[:, 0] + np.log(np.exp(a - m).sum(axis=1))) + 0.5 * np.log(2 * np.pi)


def sample(rng, n):
    y = rng.normal(size=n)
    y[::7] = 60.0  # outliers, 30+ standard deviations away: exp(...) underflows to 0
    return {"x": rng.normal(size=(n, 2)), "y": y}
