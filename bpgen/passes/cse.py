"""Common-subexpression elimination across forward and backward equations.

SymPy's `cse` finds subexpressions used more than once; each becomes a temporary
`_tN = ...` placed just before the first equation that needs it, so the list stays in
topological order and temporaries appear only where they are reused.
"""

from __future__ import annotations

import sympy

from ..ir import IR, TEMP, Equation
from ..naming import temporary_symbols


def run(ir: IR) -> IR:
    exprs = [eq.rhs for eq in ir.equations] + [r.expr for r in ir.results]
    temps, reduced = sympy.cse(exprs, symbols=temporary_symbols(ir.names()), order="none")
    if not temps:
        return ir
    n_eq = len(ir.equations)
    # Where each temporary is first needed: the first equation using it, or using a
    # temporary that uses it. Later temporaries can only use earlier ones.
    first_use = {sym: n_eq for sym, _ in temps}
    for k in reversed(range(n_eq)):
        for sym in reduced[k].free_symbols & first_use.keys():
            first_use[sym] = k
    for sym, expr in reversed(temps):
        for dep in expr.free_symbols & first_use.keys():
            first_use[dep] = min(first_use[dep], first_use[sym])
    by_position: dict[int, list[Equation]] = {}
    for sym, expr in temps:
        by_position.setdefault(first_use[sym], []).append(Equation(sym, expr, TEMP))
    equations = []
    for k, eq in enumerate(ir.equations):
        for temp in by_position.get(k, ()):
            equations.append(temp.__class__(temp.lhs, temp.rhs, TEMP, (), eq.origin))
        equations.append(eq.replace_rhs(reduced[k]))
    equations.extend(by_position.get(n_eq, ()))
    results = [r.__class__(r.key, e, r.kind) for r, e in zip(ir.results, reduced[n_eq:])]
    return ir.with_equations(equations, results)
