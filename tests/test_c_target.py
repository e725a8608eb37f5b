"""The C target under the real compiler: strict flags, math helpers, optimisation levels."""

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import NETS, ZOO_IDS, assert_within_ulps, import_file, run_cli

STRICT = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror"]
pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is required")


@pytest.mark.parametrize("name", ZOO_IDS)
def test_compiles_without_warnings(zoo_dir, name):
    source = zoo_dir / f"{zoo_dir_name(zoo_dir, name)}.c"
    for level in ("-O0", "-O2"):
        done = subprocess.run(["gcc", *STRICT, level, "-c", str(source), "-o", "/dev/null"],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def zoo_dir_name(zoo_dir, stem):
    import runpy
    return runpy.run_path(str(next(p for p in NETS if p.stem == stem)))["net"].name


def special_values():
    return np.concatenate([
        np.linspace(-40, 40, 40001), np.geomspace(1e-310, 800, 20000),
        -np.geomspace(1e-310, 800, 20000), [0.0, -0.0, np.inf, -np.inf, 709.7, 709.8,
                                            -745.0, -746.0, 1e-5, 0.5493, 0.55]])


def test_math_helpers_match_numpy_within_a_few_ulp(zoo):
    c = zoo["activations"].module("c")
    x = special_values()
    with np.errstate(all="ignore"):
        values = c.forward({"a": 1.0}, {"x": x, "y": 0.0})
        expected = {"t": np.tanh(x), "e": np.exp(x),
                    "g": np.where(x >= 0, 1 / (1 + np.exp(-x)), np.exp(x) / (1 + np.exp(x))),
                    "s": np.logaddexp(0, x), "r": np.maximum(x, 0)}
    for key, want in expected.items():
        assert_within_ulps(x, values[key], want)
    nan = c.forward({"a": 1.0}, {"x": np.nan, "y": 0.0})
    assert all(np.isnan(v) for v in nan.values())


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 only")
def test_math_helper_loops_vectorise_on_avx2(zoo):
    """The loops that call bp_tanh, bp_exp and bp_sigmoid vectorise with the library's own
    flags on a plain AVX2 machine (x86-64-v3), not only where AVX-512's masked stores
    let gcc vectorise the helpers' range checks as branches (they ran 3-4x slower)."""
    module = zoo["activations"].module("c")
    source = Path(module.SOURCE)
    lines = source.read_text().splitlines()
    loops = {k + 1 for k, line in enumerate(lines[:-1])
             if line.strip().startswith("for (long _z")
             and re.search(r"\bbp_(tanh|exp|sigmoid)\(", lines[k + 1])}
    assert len(loops) >= 3
    flags = [f for f in module.CFLAGS if f not in ("-march=native", "-shared", "-fopenmp")]
    done = subprocess.run(["gcc", *flags, "-march=x86-64-v3", "-fopt-info-vec-optimized",
                           "-c", str(source), "-o", os.devnull],
                          capture_output=True, text=True)
    if done.returncode != 0 and "x86-64-v3" in done.stderr:
        pytest.skip("this gcc predates -march=x86-64-v3 (gcc 11)")
    assert done.returncode == 0, done.stderr
    vectorised = {int(m) for m in re.findall(rf"{re.escape(source.name)}:(\d+):\d+: "
                                             r"optimized: loop vectorized", done.stderr)}
    assert loops <= vectorised, sorted(loops - vectorised)


def recorded_flags(library) -> list[str]:
    """The options gcc recorded (-frecord-gcc-switches) in a library it built."""
    data = library.read_bytes()
    start = data.index(b"GNU C99")
    return data[start:data.index(b"\0", start)].decode("ascii").split()


def test_o0_and_o3_march_native_agree(tmp_path, monkeypatch):
    """The same gradients from an unoptimised build and the fastest one; BPGEN_CFLAGS sets
    the flags, and the library records the ones it was really built with."""
    chain = next(p for p in NETS if p.stem == "chain20")
    results = []
    rng = np.random.default_rng(0)
    data = {"x": rng.normal(size=1001), "y": rng.normal(size=1001)}
    for k, flags in enumerate(("-O0", "-O3 -march=native")):
        out = tmp_path / f"v{k}"
        monkeypatch.setenv("BPGEN_CFLAGS", f"{flags} -frecord-gcc-switches")
        assert run_cli("compile", chain, "--target", "c", "-o", out) == 0
        assert flags.split()[0] in recorded_flags(out / "libchain20.so")
        module = import_file(out / "chain20_c.py", f"_chain20_opt{k}")
        params = module.init_params(4)
        results.append(module.value_and_grad(params, data))
    (v0, g0), (v3, g3) = results
    assert v3 == pytest.approx(v0, rel=1e-12)
    for k in g0:
        assert g3[k] == pytest.approx(g0[k], rel=1e-12, abs=1e-15), k


def test_library_is_rebuilt_when_the_flags_change_not_when_it_is_old(tmp_path, monkeypatch):
    seed = next(p for p in NETS if p.stem == "seed")
    assert run_cli("compile", seed, "--target", "c", "-o", tmp_path) == 0
    library = tmp_path / "libseed.so"
    built = library.stat().st_mtime_ns
    source = tmp_path / "seed.c"
    os.utime(source, ns=(built + 10**9, built + 10**9))  # newer source, same set
    import_file(tmp_path / "seed_c.py", "_seed_same")
    assert library.stat().st_mtime_ns == built
    monkeypatch.setenv("BPGEN_CFLAGS", "-O1 -frecord-gcc-switches")
    import_file(tmp_path / "seed_c.py", "_seed_other_flags")
    assert library.stat().st_mtime_ns > built and "-O1" in recorded_flags(library)
