"""Train the lecture's 2-2-1 network with the code bpgen generated for it.

Run `bpgen compile examples/seed.py --target all` first (it writes generated/), then
`python examples/scripts/train_seed.py`. Data come from a fixed "teacher" network with the
same shape; the student starts from init_params(0) and runs plain gradient descent.
"""

import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "generated"))

import seed  # noqa: E402 - the generated NumPy module

try:
    import seed_c  # noqa: E402 - the generated C module (needs a C compiler)
except (ImportError, RuntimeError) as exc:  # no compiler: NumPy only
    print(f"C target unavailable ({exc}); training with NumPy only")
    seed_c = None

TEACHER = {"w11": 1.2, "w21": -0.7, "w12": 0.4, "w22": 1.1, "v1": 1.5, "v2": -1.3}

rng = np.random.default_rng(0)
x1, x2 = rng.normal(size=(2, 2000))
data = {"x1": x1, "x2": x2, "y": seed.forward(TEACHER, {"x1": x1, "x2": x2, "y": 0.0})["z3"]}

for module in filter(None, (seed, seed_c)):
    params = module.init_params(0)
    for epoch in range(5):
        params, losses = module.train(params, data, lr=0.5, steps=200)
        print(f"{module.__name__:7s} epoch {epoch + 1}: loss {losses[0]:.6f} -> "
              f"{module.loss(params, data):.6f}")
    print(f"{module.__name__:7s} trained:", {k: round(v, 3) for k, v in params.items()})
