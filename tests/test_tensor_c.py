"""The C code of networks with shaped values under the real compiler: strict warnings and
byte-identical output across hash seeds (sanitizers: tests/test_sanitizers.py)."""

import os
import re
import shutil
import subprocess
import sys

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
    assert counts[20][1] < 1.5 * counts[5][1]  # only the per-step index copies differ
