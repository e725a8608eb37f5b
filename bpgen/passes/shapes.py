"""Shapes for temporaries: CSE makes scalar-looking symbols; give each its real shape."""

from __future__ import annotations

from dataclasses import replace

from ..ir import IR, TEMP


def run(ir: IR) -> IR:
    if not ir.shaped:
        return ir
    from ..tensor import shape_of
    table = ir.shapes()
    equations = []
    for eq in ir.equations:
        if eq.role == TEMP:
            eq = replace(eq, shape=shape_of(eq.rhs, table))
            table[eq.lhs] = eq.shape
        equations.append(eq)
    return ir.with_equations(equations)
