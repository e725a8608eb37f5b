"""Targets: each module turns a `Compiled` network into {file name: text}."""

from __future__ import annotations

from . import c_target, numpy_target

TARGETS = {"numpy": numpy_target, "c": c_target}


def emit(compiled, targets) -> dict[str, str]:
    files: dict[str, str] = {}
    for name in targets:
        files.update(TARGETS[name].emit(compiled))
    return files
