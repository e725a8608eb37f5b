"""Dead-code elimination: keep only the equations the results need, in their order."""

from __future__ import annotations

from ..ir import IR


def run(ir: IR) -> IR:
    needed = set()
    for r in ir.results:
        needed |= r.expr.free_symbols
    kept = []
    for eq in reversed(ir.equations):
        if eq.lhs in needed:
            kept.append(eq)
            needed |= eq.rhs.free_symbols
    return ir.with_equations(reversed(kept))
