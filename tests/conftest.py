"""Shared fixtures: the zoo of test networks (tests/nets/*.py), each compiled once per
session to both targets, and helpers to import generated modules and run the CLI.

A zoo file defines `net`, `reference(params, data)` (the per-sample loss in plain NumPy,
written independently of bpgen), and optionally `sample(rng, n)` and `valid(params, data)`.
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


def import_file(path: Path, name: str | None = None):
    name = name or f"_gen_{path.parent.name}_{path.stem}_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_cli(*args) -> int:
    return bpgen_main([str(a) for a in args])


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
