"""The C code of networks with shaped values under the real compiler: strict warnings,
AddressSanitizer/UBSan with a workspace of exactly <name>_work_size(n) doubles, and
byte-identical output across hash seeds."""

import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, TENSOR_NETS, run_under_sanitizers

STRICT = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror"]
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is required")

DRIVER = r"""
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

static double *fill(long count)
{
    double *a = malloc((size_t)count * sizeof(double));
    long i;
    for (i = 0; i < count; ++i)
        a[i] = uniform();
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
        double *params[M(_N_PARAMS)], *grad[M(_N_PARAMS)], *inputs[M(_N_INPUTS)];
        double *values[M(_N_VALUES) + 1], losses[3];
        double *work = malloc((size_t)F(_work_size)(n) * sizeof(double));
        for (k = 0; k < M(_N_PARAMS); ++k) {
            params[k] = fill(psize[k]);
            grad[k] = fill(psize[k]);
        }
        for (k = 0; k < M(_N_INPUTS); ++k)
            inputs[k] = fill(n * isize[k]);
        for (k = 0; k < M(_N_VALUES); ++k)
            values[k] = fill(n * vsize[k]);
        printf("%g ", F(_loss)((const double *const *)params, (const double *const *)inputs,
                               n, work));
        printf("%g ", F(_value_and_grad)((const double *const *)params,
                                          (const double *const *)inputs, n, grad, work));
        F(_forward)((const double *const *)params, (const double *const *)inputs, n, values,
                    work);
        F(_train)(params, (const double *const *)inputs, n, 0.01, 3, losses, work);
        F(_train)(params, (const double *const *)inputs, n, 0.01, 2, NULL, work);
        printf("%g\n", losses[2]);
        for (k = 0; k < M(_N_PARAMS); ++k) {
            free(params[k]);
            free(grad[k]);
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


def net_name(path):
    import runpy
    return runpy.run_path(str(path))["net"].name


@needs_gcc
@pytest.mark.parametrize("path", TENSOR_NETS, ids=[p.stem for p in TENSOR_NETS])
def test_compiles_without_warnings(tensor_dir, path):
    source = tensor_dir / f"{net_name(path)}.c"
    for flags in (["-O0"], ["-O2"], ["-O3", "-march=native", "-ffp-contract=fast"]):
        done = subprocess.run(["gcc", *STRICT, *flags, "-c", str(source), "-o", os.devnull],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


@needs_gcc
@pytest.mark.parametrize("path", TENSOR_NETS, ids=[p.stem for p in TENSOR_NETS])
def test_entry_points_are_clean_under_asan_and_ubsan(tensor_dir, tmp_path, path):
    name = net_name(path)
    run = run_under_sanitizers(tmp_path, DRIVER, tensor_dir, name)
    assert len(run.stdout.splitlines()) == 6


def test_identical_across_hash_seeds(tmp_path):
    outputs = []
    for hash_seed in ("0", "1", "4242"):
        out = tmp_path / f"out{hash_seed}"
        subprocess.run([sys.executable, "-m", "bpgen", "compile", *map(str, TENSOR_NETS),
                        ROOT / "examples" / "mlp_digits.py", "--target", "all", "--no-build",
                        "-o", str(out)], check=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONHASHSEED": hash_seed,
                            "PYTHONPATH": str(ROOT)})
        outputs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert len(outputs[0]) == 4 * (len(TENSOR_NETS) + 1)
    assert outputs[0] == outputs[1] == outputs[2]
