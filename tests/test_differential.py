"""Old-vs-new differential test: the compiler at a pinned baseline commit and the compiler
in this working tree must generate code that computes the same numbers.

It guards the one-compiler refactoring (and any later rewrite that should not change what
the generated code computes). The baseline tree is extracted with `git archive BASELINE`;
both compilers run as `python -m bpgen compile NETS... --target all --no-build` in
subprocesses (the old one with PYTHONPATH and cwd set to the extracted tree, the new one
with PYTHONPATH set to this checkout), each in one CLI run for all networks. Then, for
every network and target, the old and the new generated module are imported side by side
and called on the same parameters and data: `value_and_grad` (loss and every gradient),
`loss`, `forward` (every key the old module returns must be in the new one, with the same
values), `sgd_step`, `train(lr=0.05, steps=3)` (final params and the losses) and
`init_params`, once on 7 samples and once on a single sample (Python floats for scalar
networks, arrays of the per-sample shape for shaped ones); the module constants PARAMS,
INPUTS, REDUCE and SHAPES must be equal.

Networks: every file in tests/nets and tests/tensor_nets (both targets), and random
networks from tests/randomnets.py and tests/randomtensors.py written out as net files
(N_SCALAR and N_TENSOR of them for NumPy; the first C_RANDOM of each kind also for C, as
every C network costs a C compiler run per compiler). A network that both compilers reject
is skipped (random descriptions can be legitimate user errors); one that only one of them
accepts is a failure.

Tolerance: finite values agree when |new - old| <= 1e-12 * |old| + 1e-12 * max(1, m),
where m is the largest finite |old| in the compared item (one loss, one gradient array,
one forward value): relative 1e-12, with an absolute floor for entries that cancel to
near zero next to large ones. nan matches nan and inf matches an inf of the same sign. An
exception matches an exception of the same type. Parameters and data come from fixed
seeds; data respect each zoo file's `sample` and `valid`.

The C libraries are built with the wrapper's own CFLAGS except -O1 for its -O flag
(chain20 takes 17 s at -O3 and about 1 s at -O1): by the wrappers themselves, told by
BPGEN_CFLAGS, or by this test before the import for wrappers older than BPGEN_CFLAGS. Set
BPGEN_DIFF_C_OPT=-O3 (or any flag) to choose another, or BPGEN_DIFF_C_OPT=wrapper to let
the wrappers build themselves exactly as users get them.

Run it alone:
    python -m pytest tests/test_differential.py -q
With more random networks (N of each kind, or S scalar and T shaped), or deeper scalar
ones (MAX_EQUATIONS, default 20; the generator's own default is 40):
    BPGEN_DIFF_NETS=1000 python -m pytest tests/test_differential.py -q
    BPGEN_DIFF_NETS=600,300 BPGEN_DIFF_MAX_EQUATIONS=40 pytest tests/test_differential.py -q
Moving the baseline: set BASELINE below to another commit (a commit whose generated code
is known to be right, e.g. after a reviewed change that alters results on purpose). The
test skips, saying why, where git is missing or the commit is not in the history (a
shallow clone: `git fetch --unshallow`).
"""

from __future__ import annotations

import os
import runpy
from dataclasses import dataclass
from pathlib import Path

import pytest

import randomnets
import randomtensors
from conftest import NETS, ROOT, TENSOR_NETS, TestNetwork, import_file
from differential import (Compiler, compare_modules, compile_both, extract_tree, one_sample,
                          prebuild_all, wrapper_cflags)

# The last commit before the one-compiler refactoring; update it deliberately.
BASELINE = "588fbe4"


def _counts() -> tuple[int, int]:
    text = os.environ.get("BPGEN_DIFF_NETS", "").strip()
    if not text:
        return 150, 100
    parts = [int(p) for p in text.split(",")]
    return (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])


N_SCALAR, N_TENSOR = _counts()  # random networks compared on the NumPy target
C_RANDOM = 15  # of each kind, also compared on the C target
# Random scalar networks have up to this many equations (the generator's default is 40;
# compile time grows with it: 150 networks cost about 17 s per compiler at 20, 36 s at 40).
MAX_EQUATIONS = int(os.environ.get("BPGEN_DIFF_MAX_EQUATIONS", "20"))
BATCH = 25  # random networks per test
N_SAMPLES = 7
DATA_SEED = 20240601
C_OPT = os.environ.get("BPGEN_DIFF_C_OPT", "-O1")


@dataclass(frozen=True)
class Case:
    id: str  # nets/<stem>, tensor_nets/<stem>, random/s<seed>, random/t<seed>
    shaped: bool
    c: bool  # compared on the C target too
    zoo: Path | None = None  # the zoo file
    seed: int | None = None  # the random description's seed

    @property
    def stem(self) -> str:
        return self.zoo.stem if self.zoo else self.id.replace("random/", "diff_")

    def description(self):
        if self.shaped:
            return randomtensors.seeded_description(self.seed)
        return randomnets.seeded_description(self.seed, max_equations=MAX_EQUATIONS)

    def source(self) -> str:
        generator = randomtensors if self.shaped else randomnets
        return generator.source(self.description(), name=self.stem)


ZOO_CASES = [Case(f"nets/{p.stem}", False, True, zoo=p) for p in NETS] + \
    [Case(f"tensor_nets/{p.stem}", True, True, zoo=p) for p in TENSOR_NETS]
RANDOM_SCALAR = [Case(f"random/s{s}", False, s < C_RANDOM, seed=s) for s in range(N_SCALAR)]
RANDOM_TENSOR = [Case(f"random/t{s}", True, s < C_RANDOM, seed=s) for s in range(N_TENSOR)]


def _batches(cases, target):
    cases = [c for c in cases if target == "numpy" or c.c]
    return [pytest.param(target, cases[i:i + BATCH],
                         id=f"{target}-{cases[i].id}..{cases[min(i + BATCH, len(cases)) - 1].id}")
            for i in range(0, len(cases), BATCH)]


RANDOM_BATCHES = [b for target in ("numpy", "c") for cases in (RANDOM_SCALAR, RANDOM_TENSOR)
                  for b in _batches(cases, target)]


class _Described(TestNetwork):
    """A network read like a test network (params, sample, valid from conftest), with the
    old generated NumPy module in place of the fixture's."""

    def __init__(self, desc: dict, module):
        self.desc, self._module = desc, module

    def module(self, target):
        return self._module


class Runs:
    """Both compilers' outputs, and the comparison of one network on one target."""

    def __init__(self, base: Path, old: Compiler, new: Compiler, files: dict[str, Path]):
        self.base, self.old, self.new, self.files = base, old, new, files
        self._names: dict[str, tuple[str, dict]] = {}
        self._modules = {}

    def status(self, case: Case) -> tuple[str | None, list[str]]:
        """(why to skip, problems) before any module is imported."""
        path = self.files[case.id]
        in_old, in_new = path in self.old.accepted, path in self.new.accepted
        if not in_old and not in_new:
            return (f"both compilers reject {case.id}:\n{self.old.rejected[path]}", [])
        if in_old and not in_new:
            return None, [f"the new compiler rejects it and the baseline accepts it:\n"
                          f"{self.new.rejected[path]}"]
        if in_new and not in_old and "internal error in bpgen" in self.old.rejected[path]:
            return (f"the baseline {BASELINE} crashes on {case.id} (a bug fixed since):\n"
                    f"{self.old.rejected[path]}", [])
        if in_new and not in_old and case.zoo:
            return (f"{case.id} uses what the baseline {BASELINE} does not have:\n"
                    f"{self.old.rejected[path]}", [])
        if in_new and not in_old:
            return None, [f"the baseline {BASELINE} rejects it and the new compiler accepts "
                          f"it (a network using a newer feature needs a newer BASELINE):\n"
                          f"{self.old.rejected[path]}"]
        return None, []

    def net(self, case: Case) -> tuple[str, dict]:
        """(network name, description dict for drawing params and data)."""
        if case.id not in self._names:
            if case.zoo:
                desc = runpy.run_path(str(case.zoo))
                self._names[case.id] = desc["net"].name, desc
            elif case.shaped:
                description = case.description()
                self._names[case.id] = case.stem, {
                    "sample": lambda rng, n: randomtensors.sample(description, rng, n)}
            else:
                self._names[case.id] = case.stem, {}
        return self._names[case.id]

    def module(self, side: str, name: str, target: str):
        stem = name if target == "numpy" else f"{name}_c"
        key = (side, stem)
        if key not in self._modules:
            out = (self.old if side == "old" else self.new).out
            path = out / f"{stem}.py"
            flags = wrapper_cflags(path) if target == "c" and reads_cflags(path) else None
            if flags is None or C_OPT == "wrapper":
                self._modules[key] = import_file(path, f"_diff_{side}_{stem}")
            else:  # wrappers that read BPGEN_CFLAGS build themselves, at the test's -O
                middle = [C_OPT if f.startswith("-O") else f for f in flags
                          if f not in ("-std=c99", "-fPIC", "-shared")]
                saved = os.environ.get("BPGEN_CFLAGS")
                os.environ["BPGEN_CFLAGS"] = " ".join(middle)
                try:
                    self._modules[key] = import_file(path, f"_diff_{side}_{stem}")
                finally:
                    if saved is None:
                        del os.environ["BPGEN_CFLAGS"]
                    else:
                        os.environ["BPGEN_CFLAGS"] = saved
        return self._modules[key]

    def draw(self, case: Case, desc: dict, module):
        return _Described(desc, module).draw(DATA_SEED, N_SAMPLES)

    def compare(self, case: Case, target: str) -> tuple[str | None, list[str]]:
        skip, problems = self.status(case)
        if skip or problems:
            return skip, problems
        name, desc = self.net(case)
        try:
            old = self.module("old", name, target)
            new = self.module("new", name, target)
            reference = self.module("old", name, "numpy")
        except Exception as exc:  # noqa: BLE001 - e.g. a C build that fails on import
            return None, [f"importing the generated modules failed: {exc!r}"]
        params, data = self.draw(case, desc, reference)
        return None, (
            compare_modules(old, new, f"[{target}, {N_SAMPLES} samples]", params, data)
            + compare_modules(old, new, f"[{target}, 1 sample]", params,
                              one_sample(data, not case.shaped)))


def reads_cflags(wrapper: Path) -> bool:
    """Whether a generated wrapper takes its flags from BPGEN_CFLAGS (and so rebuilds a
    library built with other flags: prebuilding it would be wasted)."""
    return wrapper.exists() and "BPGEN_CFLAGS" in wrapper.read_text()


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> Runs:
    base = tmp_path_factory.mktemp("differential")
    why = extract_tree(ROOT, BASELINE, base / "baseline")
    if why:
        pytest.skip(f"old-vs-new differential test: {why}")
    files = {c.id: c.zoo.resolve() for c in ZOO_CASES}
    (base / "nets").mkdir()
    for case in RANDOM_SCALAR + RANDOM_TENSOR:
        files[case.id] = base / "nets" / f"{case.stem}.py"
        files[case.id].write_text(case.source())
    old = Compiler("old", base / "baseline", base / "old")
    new = Compiler("new", ROOT, base / "new")
    for compiler in (old, new):  # never compare the working tree with itself
        origin = compiler.origin()
        assert origin.is_relative_to(compiler.tree.resolve()), \
            f"the {compiler.label} compiler imports bpgen from {origin}, not {compiler.tree}"
    result = Runs(base, old, new, files)
    names = [result.net(case)[0] for case in ZOO_CASES + RANDOM_SCALAR + RANDOM_TENSOR]
    twice = sorted({n for n in names if names.count(n) > 1})
    assert not twice, f"networks named alike would share generated files: {twice}"
    compile_both(old, new, list(files.values()))
    if C_OPT != "wrapper":
        jobs = [(compiler.out, result.net(case)[0])
                for case in ZOO_CASES + RANDOM_SCALAR + RANDOM_TENSOR
                if case.c and files[case.id] in old.accepted & new.accepted
                for compiler in (old, new)
                if not reads_cflags(compiler.out / f"{result.net(case)[0]}_c.py")]
        prebuild_all(jobs, C_OPT)
    return result


def _report(case: Case, target: str, problems: list[str], limit: int = 12) -> str:
    lines = problems[:limit] + ([f"... and {len(problems) - limit} more"]
                               if len(problems) > limit else [])
    head = f"{case.id} ({target}) differs from the baseline {BASELINE}"
    if case.seed is not None:
        generator = "randomtensors" if case.shaped else "randomnets"
        extra = "" if case.shaped else f", max_equations={MAX_EQUATIONS}"
        head += (f"; the net file: {generator}.source({generator}.seeded_description("
                 f"{case.seed}{extra}), name={case.stem!r})")
    return head + ":\n  " + "\n  ".join(lines)


@pytest.mark.parametrize("target", ["numpy", "c"])
@pytest.mark.parametrize("case", ZOO_CASES, ids=[c.id for c in ZOO_CASES])
def test_zoo_network_matches_baseline(runs, case, target):
    skip, problems = runs.compare(case, target)
    if skip:
        pytest.skip(skip)
    assert not problems, _report(case, target, problems)


@pytest.mark.parametrize("target, cases", RANDOM_BATCHES)
def test_random_networks_match_baseline(runs, target, cases):
    reports, skipped = [], 0
    for case in cases:
        skip, problems = runs.compare(case, target)
        skipped += skip is not None
        if problems:
            reports.append(_report(case, target, problems, limit=6))
    assert not reports, (f"{len(reports)} of {len(cases)} random networks ({skipped} "
                         f"rejected by both compilers) differ:\n" + "\n".join(reports))
