"""Targets: each module turns a `Compiled` network into {file name: text}.

Networks with shaped values (`compiled.ir.shaped`) have their own emitters per target.
"""

from __future__ import annotations

import sympy

from ..autodiff import local_partial
from ..compiler import exact_arithmetic
from . import c_shaped, c_target, numpy_shaped, numpy_target
from .common import UnsupportedFunction

TARGETS = {"numpy": numpy_target, "c": c_target}
SHAPED_TARGETS = {"numpy": numpy_shaped, "c": c_shaped}


def emit(compiled, targets) -> dict[str, str]:
    table = SHAPED_TARGETS if compiled.ir.shaped else TARGETS
    files: dict[str, str] = {}
    with exact_arithmetic():
        for name in targets:
            try:
                files.update(table[name].emit(compiled))
            except UnsupportedFunction as exc:
                raise blame(exc, compiled.ir) from None
    return files


def blame(exc: UnsupportedFunction, ir) -> UnsupportedFunction:
    """Point an unsupported function at the equation the user wrote: the one that uses
    it, or the one whose derivative brings it in (gamma's derivative needs polygamma)."""
    def has(expr):
        return any(type(f).__name__ == exc.function for f in expr.atoms(sympy.Function))
    forward = ir.forward()
    for eq in forward:
        if has(eq.rhs):
            return UnsupportedFunction(exc.function, exc.target, eq.origin)
    for eq in forward:
        for operand in sorted(eq.rhs.free_symbols, key=lambda s: s.name):
            if has(local_partial(eq, operand)):
                return UnsupportedFunction(
                    exc.function, exc.target, eq.origin,
                    f"the derivative of {eq.lhs.name} = {eq.rhs} with respect to "
                    f"{operand.name} needs {exc.function!r}, which the {exc.target} target "
                    "does not support")
    return exc
