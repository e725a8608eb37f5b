"""Targets: each target module describes itself as a `Target` (the templates it renders
and the plain data it gives them); `emit` renders them and adds the headers with the set
fingerprint. One emitter per target, for every network.
"""

from __future__ import annotations

import sympy

from ..autodiff import local_partial
from ..compiler import exact_arithmetic
from ..errors import CompileError
from ..provenance import PLACEHOLDER, fingerprint, with_header
from . import c_target, numpy_target, xp_target
from .common import UnsupportedFunction

TARGETS = {t.name: t for t in (numpy_target.TARGET, c_target.TARGET, xp_target.TARGET)}


def emit(compiled, targets) -> dict[str, str]:
    """{file name: text} of the requested targets, headers included.

    Every target is rendered, requested or not, because the set fingerprint in each
    header is a hash of all of them: it changes exactly when some generated file would,
    whatever was asked for this time.
    """
    ir = compiled.ir
    rendered: dict[str, list] = {}
    with exact_arithmetic():
        for name in TARGETS:
            try:
                rendered[name] = TARGETS[name].render(compiled)
            except UnsupportedFunction as exc:
                if name in targets:
                    raise blame(exc, ir) from None
                # this target cannot exist for the network: no file of it to fingerprint
    fp = fingerprint({f.role: f.body for files in rendered.values() for f in files})
    return {f.name: with_header(f.body.replace(PLACEHOLDER, fp), ir.source,
                                f.comment, fp, ir.name, f.role)
            for name in targets for f in rendered[name]}


def files_of(name: str, target: str) -> tuple[str, ...]:
    """The names of the files a target writes for network `name`."""
    return tuple(pattern.format(name=name) for _, pattern, _, _ in TARGETS[target].files)


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
            try:
                partial = local_partial(eq, operand)
            except CompileError:  # a derivative the gradient never needs (of an input)
                continue
            if has(partial):
                return UnsupportedFunction(
                    exc.function, exc.target, eq.origin,
                    f"the derivative of {eq.lhs.name} = {eq.rhs} with respect to "
                    f"{operand.name} needs {exc.function!r}, which the {exc.target} target "
                    "does not support")
    return exc
