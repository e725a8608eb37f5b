"""The C code of networks with shaped values under the real compiler: strict warnings and
byte-identical output across hash seeds (sanitizers: tests/test_sanitizers.py)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, TENSOR_NETS

STRICT = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror"]
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is required")



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
    assert len(outputs[0]) == 5 * (len(TENSOR_NETS) + 1)  # NumPy, C (3 files), array API
    assert outputs[0] == outputs[1] == outputs[2]


def test_an_unrolled_sequence_compiles_each_distinct_nest_once(tmp_path):
    """Four times the steps of tests/tensor_nets/rnn.py add no copy of a matrix product:
    the C source holds each distinct loop nest once (c_outline), so the C compiler's work
    follows the distinct nests, not the length of the sequence."""
    from conftest import run_cli
    counts = {}
    for steps in (5, 20):
        source = (ROOT / "tests" / "tensor_nets" / "rnn.py").read_text().replace(
            "T, D, H, C = 5, 3, 4, 3", f"T, D, H, C = {steps}, 3, 4, 3").replace(
            'Network("rnn")', f'Network("rnn{steps}")')
        (tmp_path / f"rnn{steps}.py").write_text(source)
        assert run_cli("compile", tmp_path / f"rnn{steps}.py", "--target", "c", "--no-build",
                       "-o", tmp_path / "out") == 0
        c = (tmp_path / "out" / f"rnn{steps}.c").read_text()
        # Wh itself, not d_Wh or t_d_Wh (the gradient and hvp results)
        counts[steps] = (len(re.findall(r"\bWh\[", c)), c.count("for ("))
    assert counts[5][0] == counts[20][0] <= 4  # h @ Wh and its two backward products
    assert counts[20][1] == counts[5][1]  # the per-step copies of X[t] are one helper


def cpu_has_avx2() -> bool:
    """Whether this CPU runs AVX2 and FMA code (x86-64-v3)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx2" in flags and "fma" in flags


@needs_gcc
@pytest.mark.skipif(not cpu_has_avx2(), reason="the SIMD kernel needs an AVX2 CPU")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("stem", ["wide", "rows"])
def test_simd_tiles_agree_with_the_portable_loops_bit_for_bit(tmp_path, monkeypatch, dtype,
                                                              stem):
    """The AVX2 kernel of the products (tests/tensor_nets/wide.py: rows of 96 columns,
    tiles of 32; rows.py: rows of 32 and 16; W's gradient with 5 or 10 rows and 7 samples,
    none a multiple of its 6 rows) gives the loss and gradient of the portable loops bit
    for bit, and both match finite differences of the plain-NumPy reference."""
    from conftest import TestNetwork, finite_differences, import_file, run_cli
    path = ROOT / "tests" / "tensor_nets" / f"{stem}.py"
    flags = "-O3 -march=x86-64-v3 -mtune=generic -ffp-contract=fast -fno-trapping-math"
    results = {}
    for tag, extra in (("simd", ""), ("portable", " -DBP_PORTABLE")):
        out = tmp_path / tag
        monkeypatch.setenv("BPGEN_CFLAGS", flags + extra)
        assert run_cli("compile", path, "--target", "c", "--dtype", dtype, "-o", out) == 0
        defined = subprocess.run(["gcc", *(flags + extra).split(), "-dM", "-E",
                                  str(out / f"{stem}.c")], capture_output=True, text=True)
        assert f"#define BP_SIMD_TILES {int(tag == 'simd')}" in defined.stdout, tag
        net = TestNetwork(path, out)
        module = import_file(out / f"{stem}_c.py", f"_{stem}_{tag}_{dtype}")
        params, data = net.draw(3, 7)
        results[tag] = module.value_and_grad(params, data)
    (v_simd, g_simd), (v_port, g_port) = results["simd"], results["portable"]
    assert v_simd == v_port
    for key in g_port:
        assert np.array_equal(g_simd[key], g_port[key]), key
    expected = finite_differences(net, params, data, module.REDUCE)
    tol = 1e-7 if dtype == "float64" else 2e-3
    for key in expected:
        np.testing.assert_allclose(g_simd[key], expected[key], rtol=tol, atol=tol)


WIDE_NET = '''
import bpgen as bp
net = bp.Network("bigw")
x = net.input("x", shape=(260,))
y = net.input("y", shape=(4,))
W = net.param("W", shape=(260, 256))
V = net.param("V", shape=(256, 4))
h = net.eq("h", bp.tanh(x @ W))
net.loss("L", bp.sum((h @ V - y) ** 2))
'''


@needs_gcc
def test_a_parameter_larger_than_the_cache_gets_blocks_of_128_samples(tmp_path):
    """W (260 x 256 reals, 532 KB) is larger than BLOCK_BYTES: blocks hold 128 samples
    (the block arrays alone would allow 64), and the gradient over 300 samples (two full
    blocks and a tail) agrees with central differences of plain NumPy code along random
    directions."""
    from conftest import import_file, run_cli
    (tmp_path / "bigw.py").write_text(WIDE_NET)
    assert run_cli("compile", tmp_path / "bigw.py", "--target", "c", "-o", tmp_path) == 0
    assert "#define BIGW_BLOCK 128\n" in (tmp_path / "bigw.c").read_text()
    module = import_file(tmp_path / "bigw_c.py")
    rng = np.random.default_rng(5)
    p = {"W": rng.normal(0.0, 0.06, (260, 256)), "V": rng.normal(0.0, 0.1, (256, 4))}
    d = {"x": rng.normal(size=(300, 260)), "y": rng.normal(size=(300, 4))}

    def loss(q):
        return np.mean(((np.tanh(d["x"] @ q["W"]) @ q["V"] - d["y"]) ** 2).sum(axis=1))

    value, grads = module.value_and_grad(p, d)
    assert value == pytest.approx(loss(p), rel=1e-12)
    for _ in range(3):
        v = {k: rng.normal(size=a.shape) for k, a in p.items()}
        eps = 1e-6
        up = loss({k: p[k] + eps * v[k] for k in p})
        down = loss({k: p[k] - eps * v[k] for k in p})
        slope = sum(float((grads[k] * v[k]).sum()) for k in p)
        assert slope == pytest.approx((up - down) / (2 * eps), rel=1e-6)
