"""The generated C under AddressSanitizer and UndefinedBehaviorSanitizer.

A small driver calls every entry point of each zoo network's C code on random inputs,
for batch sizes below, at and above the block size; any sanitizer report fails the test.
"""

import shutil

import pytest

from conftest import ZOO_IDS, run_under_sanitizers

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include HEADER

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define F(x) CAT(PREFIX, x)
#define NP CAT(UPREFIX, _N_PARAMS)
#define NI CAT(UPREFIX, _N_INPUTS)
#define NV CAT(UPREFIX, _N_VALUES)

static unsigned long state = 12345;
static double uniform(void)  /* in [-1, 1) */
{
    state = state * 6364136223846793005UL + 1442695040888963407UL;
    return (double)(state >> 11) / 4503599627370496.0 - 1.0;
}

int main(void)
{
    const long sizes[] = {1, 5, 256, 257, 1000};
    size_t s;
    for (s = 0; s < sizeof sizes / sizeof sizes[0]; ++s) {
        long n = sizes[s], i;
        int k;
        double params[NP], grad[NP], losses[3];
        double *inputs[NI], *values[NV];
        for (k = 0; k < NP; ++k) params[k] = 0.5 * uniform();
        for (k = 0; k < NI; ++k) {
            inputs[k] = malloc((size_t)n * sizeof(double));
            for (i = 0; i < n; ++i) inputs[k][i] = 2.0 * uniform();
        }
        for (k = 0; k < NV; ++k) values[k] = malloc((size_t)n * sizeof(double));
        printf("%g ", F(_loss)(params, (const double *const *)inputs, n));
        printf("%g ", F(_value_and_grad)(params, (const double *const *)inputs, n, grad));
        F(_forward)(params, (const double *const *)inputs, n, values);
        printf("%g ", F(_sgd_step)(params, (const double *const *)inputs, n, 0.01));
        F(_train)(params, (const double *const *)inputs, n, 0.01, 3, losses);
        F(_train)(params, (const double *const *)inputs, n, 0.01, 2, NULL);
        printf("%g\n", losses[2]);
        for (k = 0; k < NI; ++k) free(inputs[k]);
        for (k = 0; k < NV; ++k) free(values[k]);
    }
    return 0;
}
"""

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is required")


@pytest.mark.parametrize("stem", ZOO_IDS)
def test_entry_points_are_clean_under_asan_and_ubsan(zoo, zoo_dir, tmp_path, stem):
    name = zoo[stem].name
    run = run_under_sanitizers(tmp_path, DRIVER, zoo_dir, name)
    assert len(run.stdout.splitlines()) == 5
