"""A network without data: Rosenbrock's function of two parameters (an objective to
minimise, like micrograd's engine tests)."""
import numpy as np

import bpgen as bp

net = bp.Network("rosenbrock")
a, b = net.params("a b")
net.loss("L", (1 - a) ** 2 + 100 * (b - a ** 2) ** 2)


def reference(p, d):
    """One loss: the network has no samples, or rather one sample of nothing."""
    return np.array([(1 - p["a"]) ** 2 + 100 * (p["b"] - p["a"] ** 2) ** 2])
