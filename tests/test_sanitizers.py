"""The generated C under AddressSanitizer and UndefinedBehaviorSanitizer.

One driver (tests/conftest.py) calls every entry point of each test network's C code on
random inputs, for batch sizes below, at and above the block size, with a workspace of
exactly the size the library asks for; any sanitizer report fails the test.
"""

import shutil

import pytest

from conftest import TENSOR_IDS, ZOO_IDS, run_under_sanitizers
from test_tensor_c import cpu_has_avx2


pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is required")


@pytest.mark.parametrize("stem", ZOO_IDS)
def test_entry_points_are_clean_under_asan_and_ubsan(zoo, zoo_dir, tmp_path, stem):
    run = run_under_sanitizers(tmp_path, zoo_dir, zoo[stem].name)
    assert len(run.stdout.splitlines()) == 6


@pytest.mark.parametrize("stem", TENSOR_IDS)
def test_shaped_entry_points_are_clean_under_asan_and_ubsan(tensor_nets, tensor_dir, tmp_path,
                                                            stem):
    run = run_under_sanitizers(tmp_path, tensor_dir, tensor_nets[stem].name)
    assert len(run.stdout.splitlines()) == 6


@pytest.mark.skipif(not cpu_has_avx2(), reason="the SIMD kernel needs an AVX2 CPU")
@pytest.mark.parametrize("stem", ["wide", "rows"])
def test_the_simd_kernel_is_clean_under_asan_and_ubsan(tensor_nets, tensor_dir, tmp_path, stem):
    """The products' AVX2 kernel (stack panels, row tails) under the sanitizers."""
    run = run_under_sanitizers(tmp_path, tensor_dir, tensor_nets[stem].name,
                               flags=("-march=x86-64-v3", "-ffp-contract=fast"))
    assert len(run.stdout.splitlines()) == 6
