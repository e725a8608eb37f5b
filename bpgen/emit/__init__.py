"""Targets: each module turns a `Compiled` network into {file name: text}.

Networks with shaped values (`compiled.ir.shaped`) have their own emitters per target.
"""

from __future__ import annotations

from . import c_shaped, c_target, numpy_shaped, numpy_target

TARGETS = {"numpy": numpy_target, "c": c_target}
SHAPED_TARGETS = {"numpy": numpy_shaped, "c": c_shaped}


def emit(compiled, targets) -> dict[str, str]:
    table = SHAPED_TARGETS if compiled.ir.shaped else TARGETS
    files: dict[str, str] = {}
    for name in targets:
        files.update(table[name].emit(compiled))
    return files
