"""Shared fixtures: the test networks (tests/nets/*.py of scalars, tests/tensor_nets/*.py
with shaped values; one `TestNetwork` class for both), each compiled once per session to
both targets; one finite-difference helper; one C sanitizer driver; helpers to import
generated modules and run the CLI.
"""

from __future__ import annotations

import importlib.util
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from bpgen.cli import main as bpgen_main

ROOT = Path(__file__).resolve().parent.parent
NETS = sorted((ROOT / "tests" / "nets").glob("*.py"))
ZOO_IDS = [p.stem for p in NETS]


def pytest_addoption(parser):
    parser.addoption("--update-goldens", action="store_true",
                     help="rewrite generated/ and tests/golden/ from the current compiler")


@pytest.fixture(scope="session")
def update_goldens(request) -> bool:
    return request.config.getoption("--update-goldens")


def import_file(path: Path, name: str | None = None):
    name = name or f"_gen_{path.parent.name}_{path.stem}_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_cli(*args) -> int:
    return bpgen_main([str(a) for a in args])


#: Calls every entry point of a generated C library on random values, with a workspace of
#: exactly <name>_work_size(n) reals, for batch sizes around the block sizes.
SANITIZER_DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include HEADER

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define F(x) CAT(PREFIX, x)
#define M(x) CAT(UPREFIX, x)

static unsigned long state = 12345;
static double uniform(void)  /* in [-1, 1) */
{
    state = state * 6364136223846793005UL + 1442695040888963407UL;
    return (double)(state >> 11) / 4503599627370496.0 - 1.0;
}

static bp_real *fill(long count)
{
    bp_real *a = malloc((size_t)count * sizeof(bp_real));
    long i;
    for (i = 0; i < count; ++i)
        a[i] = (bp_real)uniform();
    return a;
}

int main(void)
{
    const long sizes[] = {1, 3, 4, 5, 256, 257};
    const long psize[] = M(_PARAM_SIZES), isize[] = M(_INPUT_SIZES), vsize[] = M(_VALUE_SIZES);
    size_t s;
    for (s = 0; s < sizeof sizes / sizeof sizes[0]; ++s) {
        long n = sizes[s];
        int k;
        bp_real *params[M(_N_PARAMS)], *grad[M(_N_PARAMS)], *inputs[M(_N_INPUTS)];
        bp_real *tangents[M(_N_PARAMS)], *hv[M(_N_PARAMS)];
        bp_real *values[M(_N_VALUES) + 1], losses[3];
        bp_real *work = malloc((size_t)F(_work_size)(n) * sizeof(bp_real));
        for (k = 0; k < M(_N_PARAMS); ++k) {
            params[k] = fill(psize[k]);
            grad[k] = fill(psize[k]);
            tangents[k] = fill(psize[k]);
            hv[k] = fill(psize[k]);
        }
        for (k = 0; k < M(_N_INPUTS); ++k)
            inputs[k] = fill(n * isize[k]);
        for (k = 0; k < M(_N_VALUES); ++k)
            values[k] = fill(n * vsize[k]);
        printf("%g ", F(_loss)((const bp_real *const *)params, (const bp_real *const *)inputs,
                               n, work));
        printf("%g ", F(_value_and_grad)((const bp_real *const *)params,
                                          (const bp_real *const *)inputs, n, grad, work));
        F(_value_and_grad_threads)((const bp_real *const *)params,
                                   (const bp_real *const *)inputs, n, grad, work, 3);
        F(_forward)((const bp_real *const *)params, (const bp_real *const *)inputs, n, values,
                    work);
        F(_hvp)((const bp_real *const *)params, (const bp_real *const *)tangents,
                (const bp_real *const *)inputs, n, hv, work);
        printf("%g ", hv[0][0]);
        printf("%g ", F(_sgd_step)(params, (const bp_real *const *)inputs, n, 0.01, work));
        F(_train)(params, (const bp_real *const *)inputs, n, 0.01, 3, losses, work);
        F(_train)(params, (const bp_real *const *)inputs, n, 0.01, 2, NULL, work);
        printf("%g ", losses[2]);
        {   /* the flat entry points, and every optimiser on minibatches that do not divide n */
            bp_real *flat = fill(M(_N_FLAT)), *direction = fill(M(_N_FLAT));
            bp_real *flat_grad = fill(M(_N_FLAT)), settings[M(_N_SETTINGS)];
            bp_real rates[7] = {0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01}, curve[7];
            bp_real *state = malloc((size_t)F(_train_size)(3) * sizeof(bp_real));
            long *order = malloc((size_t)n * sizeof(long));
            int o;
            printf("%g ", F(_value_and_grad_flat)(flat, (const bp_real *const *)inputs, n,
                                                   flat_grad, work));
            F(_hvp_flat)(flat, direction, (const bp_real *const *)inputs, n, flat_grad, work);
            F(_update)(params, flat_grad, M(_ADAMW), rates, 2, 0.01, direction, flat);
            for (o = M(_SGD); o <= M(_ADAMW); ++o) {
                long i;
                for (i = 0; i < F(_train_size)(3); ++i)
                    state[i] = 0;
                for (i = 0; i < M(_N_SETTINGS); ++i)
                    settings[i] = 0.5;  /* momentum, nesterov, betas, eps, decay, clip */
                F(_optimize)(params, (const bp_real *const *)inputs, n, o, settings, 3, o % 2,
                             (uint64_t)s, 0, 4, rates, curve, state, order, work, 1);
                F(_optimize)(params, (const bp_real *const *)inputs, n, o, settings, 3, 1,
                             (uint64_t)s, 4, 3, rates, NULL, state, order, work, 2);
                printf("%g ", curve[3]);
            }
            free(flat);
            free(direction);
            free(flat_grad);
            free(state);
            free(order);
        }
        printf("\n");
        for (k = 0; k < M(_N_PARAMS); ++k) {
            free(params[k]);
            free(grad[k]);
            free(tangents[k]);
            free(hv[k]);
        }
        for (k = 0; k < M(_N_INPUTS); ++k)
            free(inputs[k]);
        for (k = 0; k < M(_N_VALUES); ++k)
            free(values[k]);
        free(work);
    }
    return 0;
}
"""


def run_under_sanitizers(tmp_path, include_dir, name: str, driver: str = SANITIZER_DRIVER,
                         flags=()):
    """Build `driver` (C) with the generated <name>.c under ASan + UBSan (and `flags`) and
    run it; the completed process of the run (the build must succeed)."""
    import subprocess
    (tmp_path / "driver.c").write_text(driver)
    exe = tmp_path / "driver"
    build = subprocess.run(
        # -g1: line tables for the reports' stack traces, without gcc's variable tracking
        # (minutes on a long network's functions)
        ["gcc", "-std=c99", "-g1", "-O1", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", *flags, f"-I{include_dir}",
         f'-DHEADER="{name}.h"', f"-DPREFIX={name}", f"-DUPREFIX={name.upper()}",
         str(tmp_path / "driver.c"), str(include_dir / f"{name}.c"), "-o", str(exe), "-lm"],
        capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True,
                         env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
                              "UBSAN_OPTIONS": "print_stacktrace=1"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert "runtime error" not in run.stderr and "AddressSanitizer" not in run.stderr
    return run


def assert_within_ulps(x, got, exact, want=None, most=4):
    """bpgen's C math helpers against NumPy: the same inf, nan and signed zeros as `want`
    (the exact values rounded to the result's type; `exact` itself by default), and
    within `most` ulps of the result's type elsewhere. `x`: the arguments, for messages."""
    want = exact if want is None else want
    same_special = (np.isnan(got) == np.isnan(want)) & (~np.isfinite(want) <= (got == want))
    assert same_special.all(), x[~same_special][:5]
    ok = np.isfinite(want) & (want != 0)
    ulps = np.abs(got[ok] - exact[ok]) / np.spacing(np.abs(want[ok]))
    assert ulps.max() <= most, (ulps.max(), x[ok][np.argmax(ulps)])
    zero = want == 0
    assert np.all(got[zero] == 0) and np.all(np.signbit(got[zero]) == np.signbit(want[zero]))


class TestNetwork:
    """One test network (tests/nets/*.py or tests/tensor_nets/*.py): its description and
    both generated modules. A file defines `net` and `reference(params, data)` (the
    per-sample losses, shape (N,), in plain NumPy written independently of bpgen), and
    optionally `sample(rng, n)`, `params(rng)` and `valid(params, data)`."""

    __test__ = False  # not a pytest test class

    def __init__(self, path: Path, out: Path):
        self.path = path
        self.desc = runpy.run_path(str(path))
        self.net = self.desc["net"]
        self.name = self.net.name
        self.out = out
        self._modules = {}

    def module(self, target: str):
        if target not in self._modules:
            stem = {"numpy": self.name, "c": f"{self.name}_c",
                    "array-api": f"{self.name}_xp"}[target]
            self._modules[target] = import_file(self.out / f"{stem}.py",
                                                f"_net_{stem}_{target}")
        return self._modules[target]

    @property
    def modules(self) -> dict:
        return {t: self.module(t) for t in ("numpy", "c")}

    def sample(self, rng, n):
        if "sample" in self.desc:
            return self.desc["sample"](rng, n)
        shapes = self.module("numpy").SHAPES
        return {k: rng.normal(size=(n,) + shapes[k]) for k in self.module("numpy").INPUTS}

    def params(self, rng):
        if "params" in self.desc:
            return self.desc["params"](rng)
        shapes = self.module("numpy").SHAPES
        return {k: rng.normal(0.0, 0.6, shapes[k]) if shapes[k] else float(rng.normal(0.0, 0.6))
                for k in self.module("numpy").PARAMS}

    def reference(self, params, data):
        return self.desc["reference"](params, data)

    def valid(self, params, data):
        if "valid" in self.desc:
            return self.desc["valid"](params, data)
        return np.ones(samples(data), dtype=bool)

    def draw(self, seed, n):
        """Random params and n samples that are valid for the net (away from kinks)."""
        rng = np.random.default_rng(seed)
        params = self.params(rng)
        data = self.sample(rng, 4 * n)
        if not data:  # a network without inputs: one sample of nothing
            return params, {}
        keep = np.flatnonzero(self.valid(params, data))[:n]
        assert len(keep) == n, "could not draw enough valid samples"
        return params, {k: v[keep] for k, v in data.items()}

    def reduced(self, params, data, reduce):
        """The loss over a batch, from the reference."""
        n = samples(data)
        losses = np.broadcast_to(self.reference(params, data), (n,))
        return losses.sum() if reduce == "sum" else losses.mean()


def samples(data) -> int:
    """The number of samples in `data` (a network without inputs has one)."""
    return len(next(iter(data.values()))) if data else 1


def finite_differences(net: TestNetwork, params, data, reduce):
    """Central differences of the reference's batch loss, every entry of every parameter."""
    grads = {}
    for k, value in params.items():
        value = np.asarray(value, dtype=np.float64)
        g = np.zeros(value.shape)
        for index in np.ndindex(value.shape):
            h = 1e-6 * max(1.0, abs(value[index]))
            up, down = value.copy(), value.copy()
            up[index] += h
            down[index] -= h
            g[index] = (net.reduced({**params, k: up if up.shape else float(up)}, data, reduce)
                        - net.reduced({**params, k: down if down.shape else float(down)},
                                      data, reduce)) / (2 * h)
        grads[k] = g if g.shape else float(g)
    return grads


@pytest.fixture(scope="session")
def zoo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo")  # one compile: the C libraries build in parallel
    assert run_cli("compile", *NETS, "--target", "all", "--hvp", "-o", out) == 0
    return out


@pytest.fixture(scope="session")
def zoo(zoo_dir):
    return {p.stem: TestNetwork(p, zoo_dir) for p in NETS}


@pytest.fixture(params=ZOO_IDS)
def net(request, zoo):
    return zoo[request.param]


@pytest.fixture(params=["numpy", "c"])
def target(request):
    return request.param


# -- networks with shaped values (tests/tensor_nets/*.py) -----------------------------
TENSOR_NETS = sorted((ROOT / "tests" / "tensor_nets").glob("*.py"))
TENSOR_IDS = [p.stem for p in TENSOR_NETS]


@pytest.fixture(scope="session")
def tensor_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tensor_nets")
    assert run_cli("compile", *TENSOR_NETS, "--target", "all", "--hvp", "-o", out) == 0
    return out


@pytest.fixture(scope="session")
def tensor_nets(tensor_dir):
    return {p.stem: TestNetwork(p, tensor_dir) for p in TENSOR_NETS}


@pytest.fixture(params=[p.stem for p in TENSOR_NETS])
def tnet(request, tensor_nets):
    return tensor_nets[request.param]
