"""Machinery for tests/test_differential.py: run two bpgen source trees on the same net
files and compare what their generated modules compute.

Nothing here decides which networks or which commit; see the test module for that.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

RTOL = 1e-12
ATOL = 1e-12  # times max(1, largest |old value| of the compared item)
CLI_TIMEOUT = 900  # seconds for one `bpgen compile` run


# -- running a compiler ----------------------------------------------------------------

class Compiler:
    """One bpgen source tree, run as `python -m bpgen` in a subprocess."""

    def __init__(self, label: str, tree: Path, out: Path):
        self.label = label
        self.tree = Path(tree)
        self.out = Path(out)
        self.env = {**os.environ, "PYTHONPATH": str(self.tree)}
        self.accepted: set[Path] = set()
        self.rejected: dict[Path, str] = {}  # net file -> the end of the CLI's stderr
        self.invocations = 0

    def origin(self) -> Path:
        """Where `import bpgen` resolves in this compiler's subprocesses (not executed)."""
        done = subprocess.run(
            [sys.executable, "-c",
             "import importlib.util; print(importlib.util.find_spec('bpgen').origin)"],
            env=self.env, cwd=self.tree, capture_output=True, text=True, timeout=60)
        return Path(done.stdout.strip()).resolve()

    def _run(self, files: list[Path]) -> tuple[int, str]:
        self.invocations += 1
        done = subprocess.run(
            [sys.executable, "-m", "bpgen", "compile", *map(str, files), "--target", "all",
             "--no-build", "-o", str(self.out)],
            env=self.env, cwd=self.tree, capture_output=True, text=True, timeout=CLI_TIMEOUT)
        return done.returncode, done.stderr

    def compile(self, files: list[Path]) -> None:
        """Compile every file, in one CLI run when all are accepted. One bad file makes a
        run exit 2 and write nothing, so a failing group is bisected until each rejected
        file is alone (k bad files cost about k*log2(len(files)) extra runs)."""
        self.out.mkdir(parents=True, exist_ok=True)
        pending = [list(files)]
        while pending:
            group = pending.pop()
            status, stderr = self._run(group)
            if status == 0:
                self.accepted.update(group)
            elif len(group) == 1:
                self.rejected[group[0]] = _tail(stderr)
            else:
                half = len(group) // 2
                pending += [group[half:], group[:half]]


def _tail(text: str, lines: int = 6) -> str:
    return "\n".join(text.strip().splitlines()[-lines:]) or "(no output)"


def compile_both(old: Compiler, new: Compiler, files: list[Path]) -> None:
    """Run both compilers at once (two subprocesses: one per core on a small machine)."""
    errors = []

    def work(compiler):
        try:
            compiler.compile(files)
        except Exception as exc:  # noqa: BLE001 - re-raised below in the main thread
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(c,)) for c in (old, new)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def extract_tree(root: Path, commit: str, into: Path) -> str | None:
    """`git archive commit | tar -x` into `into`; None, or why it is not possible."""
    if shutil.which("git") is None:
        return "git is not available on this machine"
    if shutil.which("tar") is None:
        return "tar is not available on this machine"
    found = subprocess.run(["git", "-C", str(root), "cat-file", "-e", f"{commit}^{{commit}}"],
                           capture_output=True, text=True)
    if found.returncode != 0:
        return (f"baseline commit {commit} is not in the git history of {root} (a shallow "
                f"clone, or not a git checkout): {found.stderr.strip() or 'not found'}")
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.Popen(["git", "-C", str(root), "archive", commit],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    untar = subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout,
                           capture_output=True)
    archive.stdout.close()
    archive_err = archive.stderr.read().decode(errors="replace")
    archive.stderr.close()
    if archive.wait() != 0 or untar.returncode != 0:
        raise RuntimeError(f"git archive {commit} | tar -x failed: {archive_err}"
                           f"{untar.stderr.decode(errors='replace')}")
    return None


# -- building the C libraries ----------------------------------------------------------

def c_compiler() -> str | None:
    """The compiler the generated wrappers pick (the same search order)."""
    for candidate in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if candidate and shutil.which(candidate):
            return candidate
    return None


def wrapper_cflags(wrapper: Path) -> tuple[str, ...] | None:
    """The literal `CFLAGS = (...)` of a generated ctypes wrapper, or None."""
    try:
        tree = ast.parse(wrapper.read_text())
    except (OSError, SyntaxError):
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "CFLAGS" for t in node.targets):
            try:
                return tuple(ast.literal_eval(node.value))
            except ValueError:
                return None
    return None


def prebuild(out: Path, name: str, opt: str) -> None:
    """Build lib<name>.so from <name>.c the way <name>_c.py would, but with `opt` in place
    of its -O flag; the wrapper's import then finds an up-to-date library. Anything
    unexpected (no CFLAGS literal, a failed build) is left to the wrapper's own build."""
    flags = wrapper_cflags(out / f"{name}_c.py")
    cc = c_compiler()
    if flags is None or cc is None:
        return
    flags = tuple(opt if f.startswith("-O") else f for f in flags)
    library = out / f"lib{name}{'.dylib' if sys.platform == 'darwin' else '.so'}"
    tmp = out / f".diff-{name}.so"
    done = subprocess.run([cc, *flags, "-o", str(tmp), str(out / f"{name}.c"), "-lm"],
                          capture_output=True, text=True)
    if done.returncode == 0:
        os.replace(tmp, library)
    elif tmp.exists():
        tmp.unlink()


def prebuild_all(jobs: list[tuple[Path, str]], opt: str) -> None:
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        list(pool.map(lambda job: prebuild(job[0], job[1], opt), jobs))


# -- comparing results -----------------------------------------------------------------

def _kind(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "float"
    if isinstance(value, np.ndarray):
        return "array"
    return type(value).__name__


def compare_values(old, new, where: str) -> list[str]:
    """Mismatches between two results (floats, arrays, dicts, tuples), each naming `where`
    (function and key) and the two values. nan equals nan; inf equals an inf of the same
    sign; finite values agree to RTOL relative with an absolute floor of ATOL times
    max(1, largest finite |old| in the item)."""
    if isinstance(old, dict):
        if not isinstance(new, dict):
            return [f"{where}: old returned a dict, new returned {_kind(new)} {new!r}"]
        problems = [f"{where}[{k!r}]: missing from new (old {old[k]!r})"
                    for k in old if k not in new]
        for k in old:
            if k in new:
                problems += compare_values(old[k], new[k], f"{where}[{k!r}]")
        return problems
    if isinstance(old, (tuple, list)):
        if not isinstance(new, (tuple, list)) or len(new) != len(old):
            return [f"{where}: old {old!r} new {new!r}"]
        problems = []
        for k, (o, n) in enumerate(zip(old, new)):
            problems += compare_values(o, n, f"{where}[{k}]")
        return problems
    if isinstance(old, str) or old is None:
        return [] if new == old else [f"{where}: old {old!r} new {new!r}"]
    a = np.asarray(old, dtype=np.float64)
    b = np.asarray(new, dtype=np.float64)
    if " forward" in where:
        # Intended change: one sample given without its sample axis gives forward values
        # without it (a float, not a 0-d array; shape S, not (1, *S)).
        if a.shape[:1] == (1,) and a.shape[1:] == b.shape:
            a = a[0]
    elif _kind(old) != _kind(new):
        return [f"{where}: old returned {_kind(old)} {old!r}, new returned "
                f"{_kind(new)} {new!r}"]
    if a.shape != b.shape:
        return [f"{where}: old shape {a.shape} new shape {b.shape}"]
    finite = np.isfinite(a)
    scale = max(1.0, float(np.abs(a[finite]).max())) if finite.any() else 1.0
    with np.errstate(invalid="ignore"):
        close = np.where(finite, np.abs(b - a) <= RTOL * np.abs(a) + ATOL * scale,
                         (np.isnan(a) & np.isnan(b)) | (a == b))
    if close.all():
        return []
    bad = np.argwhere(~close)
    if a.ndim == 0:
        return [f"{where}: old {a.item()!r} new {b.item()!r} "
                f"(|new - old| = {abs(b.item() - a.item()):.3g})"]
    index = tuple(int(i) for i in bad[0])
    with np.errstate(invalid="ignore"):
        worst = np.nanmax(np.abs(b - a)[finite & np.isfinite(b)], initial=0.0)
    return [f"{where}: {len(bad)} of {a.size} entries differ; at index {index}: "
            f"old {a[index].item()!r} new {b[index].item()!r} "
            f"(largest finite |new - old| {worst:.3g})"]


def _copy(value):
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value.copy() if isinstance(value, np.ndarray) else value


# names of the parts of tuple results, for messages
PARTS = {"value_and_grad": ("loss", "grads"), "sgd_step": ("loss", "params"),
         "train": ("params", "losses")}


def compare_call(old_module, new_module, function, label, *args, **kwargs) -> list[str]:
    """Call `function` of both modules with the same (copied) arguments; mismatches."""
    where = f"{label} {function}"
    if not hasattr(old_module, function):
        return []
    if not hasattr(new_module, function):
        return [f"{where}: missing from the new module"]
    results = []
    for module in (old_module, new_module):
        try:
            results.append((getattr(module, function)(*map(_copy, args), **kwargs), None))
        except Exception as exc:  # noqa: BLE001 - reported as a mismatch
            results.append((None, exc))
    (old, old_exc), (new, new_exc) = results
    if old_exc is not None and new_exc is not None:
        if type(old_exc) is type(new_exc):
            return []
        return [f"{where}: old raised {old_exc!r}, new raised {new_exc!r}"]
    if old_exc is not None:
        return [f"{where}: old raised {old_exc!r}, new returned {new!r}"]
    if new_exc is not None:
        return [f"{where}: new raised {new_exc!r}, old returned {old!r}"]
    parts = PARTS.get(function, ())
    if isinstance(old, tuple) and isinstance(new, tuple) and len(old) == len(new) == len(parts):
        return [p for part, o, n in zip(parts, old, new)
                for p in compare_values(o, n, f"{where} {part}")]
    return compare_values(old, new, where)


def compare_modules(old, new, label: str, params: dict, data: dict) -> list[str]:
    """Every public computation of two generated modules on the same params and data."""
    problems = []
    for constant in ("PARAMS", "INPUTS", "REDUCE", "SHAPES"):
        if hasattr(old, constant) and getattr(new, constant, None) != getattr(old, constant):
            problems.append(f"{label} {constant}: old {getattr(old, constant)!r} "
                            f"new {getattr(new, constant, '(missing)')!r}")
    problems += compare_call(old, new, "value_and_grad", label, params, data)
    problems += compare_call(old, new, "loss", label, params, data)
    problems += compare_call(old, new, "forward", label, params, data)
    problems += compare_call(old, new, "sgd_step", label, params, data, lr=0.05)
    problems += compare_call(old, new, "train", label, params, data, lr=0.05, steps=3)
    problems += compare_call(old, new, "init_params", label, seed=1)
    if INIT_POLICY_CHANGED:  # intended: scalars of shaped networks drawn, not 1.0
        problems = [p for p in problems if "init_params[" not in p]
    return problems


#: The one-compiler refactoring gave every network one initialisation policy (a scalar
#: parameter is drawn from N(0, 0.5²) in a shaped network too, where it was 1.0): an
#: intended change of init_params against baselines before it. Set to False when the
#: baseline moves past it.
INIT_POLICY_CHANGED = True


def one_sample(data: dict, scalar: bool) -> dict:
    """The first sample of `data`: Python floats (scalar networks) or arrays of the
    per-sample shape (shaped networks)."""
    if scalar:
        return {k: float(v[0]) for k, v in data.items()}
    return {k: np.array(v[0]) for k, v in data.items()}
