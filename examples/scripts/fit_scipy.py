"""Fit examples/curve_fit.py's 1-8-1 network to noisy samples of a curve with SciPy.

Run `bpgen compile examples/curve_fit.py --target all` first (it writes generated/), then
`python examples/scripts/fit_scipy.py`. Both generated modules are used the same way:

    scipy.optimize.minimize(m.value_and_grad_flat, m.pack(params), args=(data,),
                            jac=True, method="L-BFGS-B")
    scipy.optimize.minimize(..., jac=True, hessp=lambda x, v, data: m.hvp_flat(x, data, v),
                            method="Newton-CG")

L-BFGS-B builds its curvature from gradients; Newton-CG uses the exact Hessian-vector
products bpgen compiles (forward mode over the backward pass).
"""

import argparse
import importlib
import os
import sys
import time

import numpy as np
import scipy.optimize

HERE = os.path.dirname(os.path.abspath(__file__))
GENERATED = os.path.join(HERE, "..", "..", "generated")


def measurements(n=200, seed=0):
    """A damped oscillation sampled at n points, with noise (plain NumPy)."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(-3, 3, n))
    return {"t": t, "y": np.exp(-0.3 * t**2) * np.sin(2 * t) + rng.normal(0, 0.02, n)}


def fit(module, data, method, seed=1):
    """scipy.optimize.minimize from init_params(seed): (result, seconds)."""
    x0 = module.pack(module.init_params(seed))
    x0 += np.random.default_rng(seed).normal(0, 0.5, x0.shape)  # vectors start at zero
    options = {"hessp": lambda x, v, d: module.hvp_flat(x, d, v)} if method == "Newton-CG" \
        else {}
    clock = time.perf_counter()
    result = scipy.optimize.minimize(module.value_and_grad_flat, x0, args=(data,),
                                     jac=True, method=method, options={"maxiter": 2000},
                                     **options)
    return result, time.perf_counter() - clock


def main(argv=None, out=print):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generated", default=GENERATED,
                        help="directory holding the generated modules")
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.abspath(args.generated))
    modules = [importlib.import_module("curve")]
    try:
        modules.append(importlib.import_module("curve_c"))
    except (ImportError, RuntimeError) as exc:  # no C compiler: NumPy only
        out(f"C target unavailable ({exc}); fitting with NumPy only")
    data = measurements()
    results = {}
    for module in modules:
        for method in ("L-BFGS-B", "Newton-CG"):
            result, seconds = fit(module, data, method)
            results[module.__name__, method] = result
            out(f"{module.__name__:8s} {method:9s}  loss {result.fun:.3e}  "
                f"iterations {result.nit:4d}  gradients {result.njev:4d}  "
                f"Hessian-vector products {result.get('nhev', 0):5d}  {seconds * 1e3:7.1f} ms")
    return results


if __name__ == "__main__":
    main()
