"""Shared fixtures: the zoo of test networks (tests/nets/*.py), each compiled once per
session to both targets, and helpers to import generated modules and run the CLI.

A zoo file defines `net`, `reference(params, data)` (the per-sample loss in plain NumPy,
written independently of bpgen), and optionally `sample(rng, n)` and `valid(params, data)`.
tests/tensor_nets/*.py are the same for networks with shaped values (see TensorNet).
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


def run_under_sanitizers(tmp_path, driver: str, include_dir, name: str):
    """Build `driver` (C) with the generated <name>.c under ASan + UBSan and run it; the
    completed process of the run (the build must succeed)."""
    import subprocess
    (tmp_path / "driver.c").write_text(driver)
    exe = tmp_path / "driver"
    build = subprocess.run(
        ["gcc", "-std=c99", "-g", "-O1", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", f"-I{include_dir}",
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


class Zoo:
    """One zoo network: its description and both generated modules."""

    def __init__(self, path: Path, out: Path):
        self.path = path
        self.desc = runpy.run_path(str(path))
        self.net = self.desc["net"]
        self.name = self.net.name
        self.out = out
        self._modules = {}

    def module(self, target: str):
        if target not in self._modules:
            stem = self.name if target == "numpy" else f"{self.name}_c"
            self._modules[target] = import_file(self.out / f"{stem}.py",
                                                f"_zoo_{stem}_{target}")
        return self._modules[target]

    def sample(self, rng, n):
        if "sample" in self.desc:
            return self.desc["sample"](rng, n)
        return {k: rng.normal(size=n) for k in self.module("numpy").INPUTS}

    def params(self, rng):
        return {k: float(v) for k, v in zip(self.module("numpy").PARAMS,
                                            rng.normal(0.0, 0.6, 10_000))}

    def reference(self, params, data):
        return self.desc["reference"](params, data)

    def valid(self, params, data):
        if "valid" in self.desc:
            return self.desc["valid"](params, data)
        return np.ones(len(next(iter(data.values()))), dtype=bool)


@pytest.fixture(scope="session")
def zoo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo")
    for path in NETS:
        assert run_cli("compile", path, "--target", "all", "-o", out) == 0, path
    return out


@pytest.fixture(scope="session")
def zoo(zoo_dir):
    return {p.stem: Zoo(p, zoo_dir) for p in NETS}


@pytest.fixture(params=ZOO_IDS)
def net(request, zoo):
    return zoo[request.param]


@pytest.fixture(params=["numpy", "c"])
def target(request):
    return request.param


# -- networks with shaped values (tests/tensor_nets/*.py) -----------------------------
TENSOR_NETS = sorted((ROOT / "tests" / "tensor_nets").glob("*.py"))


class TensorNet:
    def __init__(self, path: Path, out: Path):
        self.desc = runpy.run_path(str(path))
        self.name = self.desc["net"].name
        self.modules = {
            "numpy": import_file(out / f"{self.name}.py", f"_tensor_{self.name}"),
            "c": import_file(out / f"{self.name}_c.py", f"_tensor_{self.name}_c")}

    def params(self, rng):
        if "params" in self.desc:
            return self.desc["params"](rng)
        shapes = self.modules["numpy"].SHAPES
        return {k: rng.normal(0.0, 0.6, shapes[k]) if shapes[k] else float(rng.normal())
                for k in self.modules["numpy"].PARAMS}

    def draw(self, seed, n):
        rng = np.random.default_rng(seed)
        params = self.params(rng)
        data = self.desc["sample"](rng, 4 * n)
        keep = np.arange(4 * n)
        if "valid" in self.desc:
            keep = np.flatnonzero(self.desc["valid"](params, data))
        assert len(keep) >= n
        return params, {k: v[keep[:n]] for k, v in data.items()}

    def reduced(self, params, data, reduce):
        losses = self.desc["reference"](params, data)
        assert losses.shape == (len(next(iter(data.values()))),)
        return losses.sum() if reduce == "sum" else losses.mean()


@pytest.fixture(scope="session")
def tensor_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tensor_nets")
    for path in TENSOR_NETS:
        assert run_cli("compile", path, "--target", "all", "-o", out) == 0, path
    return out


@pytest.fixture(scope="session")
def tensor_nets(tensor_dir):
    return {p.stem: TensorNet(p, tensor_dir) for p in TENSOR_NETS}


@pytest.fixture(params=[p.stem for p in TENSOR_NETS])
def tnet(request, tensor_nets):
    return tensor_nets[request.param]
