"""The C target under the real compiler: strict flags, math helpers, optimisation levels."""

import shutil
import subprocess

import numpy as np
import pytest

from conftest import NETS, ZOO_IDS, import_file, run_cli

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
        got = values[key]
        same_special = ((np.isnan(got) == np.isnan(want))
                        & (~np.isfinite(want) <= (got == want)))
        assert same_special.all(), (key, x[~same_special][:5])
        ok = np.isfinite(want) & (want != 0)
        ulps = np.abs(got[ok] - want[ok]) / np.spacing(np.abs(want[ok]))
        assert ulps.max() <= 4, (key, ulps.max(), x[ok][np.argmax(ulps)])
        zero = want == 0
        assert np.all(got[zero] == 0) and np.all(np.signbit(got[zero]) == np.signbit(want[zero]))
    nan = c.forward({"a": 1.0}, {"x": np.nan, "y": 0.0})
    assert all(np.isnan(v) for v in nan.values())


def test_o0_and_o3_march_native_agree(tmp_path):
    seed = next(p for p in NETS if p.stem == "chain20")
    assert run_cli("compile", seed, "--target", "c", "--no-build", "-o", tmp_path) == 0
    results = []
    rng = np.random.default_rng(0)
    data = {"x": rng.normal(size=1001), "y": rng.normal(size=1001)}
    for k, flags in enumerate((["-O0"], ["-O3", "-march=native"])):
        out = tmp_path / f"v{k}"
        out.mkdir()
        for f in tmp_path.glob("chain20*"):
            if f.is_file():
                shutil.copy(f, out)
        wrapper = (out / "chain20_c.py").read_text().replace(
            'CFLAGS = ("-std=c99", "-O3", "-march=native", "-fPIC", "-shared")',
            f'CFLAGS = ("-std=c99", {", ".join(repr(f) for f in flags)}, "-fPIC", "-shared")')
        (out / "chain20_c.py").write_text(wrapper)
        module = import_file(out / "chain20_c.py", f"_chain20_opt{k}")
        params = module.init_params(4)
        results.append(module.value_and_grad(params, data))
    (v0, g0), (v3, g3) = results
    assert v3 == pytest.approx(v0, rel=1e-12)
    for k in g0:
        assert g3[k] == pytest.approx(g0[k], rel=1e-12, abs=1e-15), k


def test_library_is_rebuilt_when_the_source_changes(tmp_path):
    seed = next(p for p in NETS if p.stem == "seed")
    assert run_cli("compile", seed, "--target", "c", "-o", tmp_path) == 0
    library = tmp_path / "libseed.so"
    assert library.exists()
    built = library.stat().st_mtime_ns
    source = tmp_path / "seed.c"
    source.write_text(source.read_text())  # newer source: the next import rebuilds
    import os
    os.utime(source, ns=(built + 10**9, built + 10**9))
    import_file(tmp_path / "seed_c.py", "_seed_rebuilt")
    assert library.stat().st_mtime_ns > built
