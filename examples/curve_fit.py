"""A small model fitted to measurements, the way scientists and engineers fit: a 1-8-1
tanh network through noisy samples of a curve, by SciPy's optimisers on the flat
parameter vector with the exact gradient (L-BFGS-B) and exact Hessian-vector products
(Newton-CG). Compile with `bpgen compile examples/curve_fit.py --target all`, then run
`python examples/scripts/fit_scipy.py`.
"""

import bpgen as bp

net = bp.Network("curve", hvp=True)   # also exact Hessian-vector products
t = net.input("t")                        # where the curve was measured
y = net.input("y")                        # what was measured there
W1 = net.param("W1", shape=(8,))
b1 = net.param("b1", shape=(8,))
W2 = net.param("W2", shape=(8,))
c = net.param("c")
h = net.eq("h", bp.tanh(W1 * t + b1))     # 8 hidden units
f = net.eq("f", bp.sum(W2 * h) + c)       # the model's value at t
net.loss("L", (y - f) ** 2)               # squared error, mean over the measurements
