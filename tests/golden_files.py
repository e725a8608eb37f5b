"""Compare-or-update for directories of generated files (as SymForce's
`compare_or_update_directory`): a test regenerates into a fresh directory and either
compares it with the checked-in copy (changed, missing and extra files, with a unified
diff) or, under `pytest --update-goldens`, replaces the checked-in copy.

Generated files name their net file relative to their own directory, so the fresh
directory is a hidden sibling of the golden one (`fresh_beside`): same depth, same text.
"""

from __future__ import annotations

import difflib
import shutil
from contextlib import contextmanager
from pathlib import Path

#: Built or cached files are never golden.
IGNORED_SUFFIXES = (".so", ".dylib", ".pyc")
UPDATE = "python -m pytest tests/test_golden.py --update-goldens"


def source_files(directory: Path) -> dict[str, str]:
    if not directory.is_dir():
        return {}
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(directory.iterdir())
            if p.is_file() and not p.name.endswith(IGNORED_SUFFIXES)
            and not p.name.startswith(".")}


def compare_or_update(fresh_dir: Path, golden_dir: Path, update: bool, shown: str) -> None:
    """Assert `golden_dir` holds exactly the files of `fresh_dir`, or make it so."""
    fresh, golden = source_files(fresh_dir), source_files(golden_dir)
    if update:
        golden_dir.mkdir(parents=True, exist_ok=True)
        for name in golden.keys() - fresh.keys():
            (golden_dir / name).unlink()
        for name, text in fresh.items():
            if golden.get(name) != text:
                shutil.copyfile(fresh_dir / name, golden_dir / name)
        return
    problems = [f"missing from {shown}: {n}" for n in sorted(fresh.keys() - golden.keys())]
    problems += [f"extra in {shown}: {n}" for n in sorted(golden.keys() - fresh.keys())]
    for name in sorted(fresh.keys() & golden.keys()):
        if fresh[name] != golden[name]:
            problems.append("".join(difflib.unified_diff(
                golden[name].splitlines(True), fresh[name].splitlines(True),
                f"{shown}/{name}", f"{name} (fresh)")))
    assert not problems, "\n".join(problems) + f"\n\nIf intended, run: {UPDATE}"


@contextmanager
def fresh_beside(golden_dir: Path):
    """A new empty directory next to `golden_dir` (removed afterwards)."""
    fresh = golden_dir.parent / f".fresh-{golden_dir.name}"
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    try:
        yield fresh
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
