"""The lecture's 2-2-1 tanh network (examples/seed.py)."""
import os
import runpy

import numpy as np

net = runpy.run_path(os.path.join(os.path.dirname(__file__), "..", "..", "examples",
                                  "seed.py"))["net"]


def reference(p, x):
    z1 = np.tanh(p["w11"] * x["x1"] + p["w21"] * x["x2"])
    z2 = np.tanh(p["w12"] * x["x1"] + p["w22"] * x["x2"])
    z3 = np.tanh(p["v1"] * z1 + p["v2"] * z2)
    return (x["y"] - z3) ** 2
