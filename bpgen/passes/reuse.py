"""Forward-value reuse: backward expressions read values the forward pass stored.

The derivative of `z1 = tanh(s1)` is `1 - tanh(s1)**2`; after this pass it reads
`1 - z1**2`. Every occurrence of a forward equation's whole right-hand side inside a later
equation (or a result) is replaced by its left-hand side. Forward equations themselves are
left alone: they are already written in terms of earlier names.
"""

from __future__ import annotations

from dataclasses import replace

from ..ir import IR


def table(ir: IR) -> dict:
    """Forward right-hand sides -> the names that hold them."""
    return {eq.rhs: eq.lhs for eq in ir.forward()
            if not (eq.rhs.is_Symbol or eq.rhs.is_Number)}


def run(ir: IR) -> IR:
    values = table(ir)
    if not values:
        return ir
    forward = set(ir.forward())
    equations = [eq if eq in forward else eq.replace_rhs(eq.rhs.xreplace(values))
                 for eq in ir.equations]
    results = [replace(r, expr=r.expr.xreplace(values)) for r in ir.results]
    return ir.with_equations(equations, results)
