"""Common-subexpression elimination across forward and backward equations.

SymPy's `cse` finds subexpressions used more than once; each becomes a temporary
`_tN = ...` (with the shape of what it holds) placed just before the first equation that
needs it, so the list stays in topological order and temporaries appear only where they
are reused.
"""

from __future__ import annotations

import sympy

from ..ir import IR, N_SAMPLES, TEMP, Equation
from ..naming import temporary_symbols
from ..tensor import make_symbol, shape_of


def run(ir: IR) -> IR:
    exprs = [eq.rhs for eq in ir.equations] + [r.expr for r in ir.results]
    # the mean's 1/n stays in the results, where it reads as the last step
    temps, reduced = sympy.cse(exprs, symbols=temporary_symbols(ir.names()), order="none",
                               ignore=(N_SAMPLES,))
    if not temps:
        return ir
    # each temporary gets a symbol of its shape
    table = ir.shapes()
    shaped = {}
    for sym, expr in temps:
        expr = expr.xreplace(shaped)
        shape = shape_of(expr, table)
        new = make_symbol(sym.name, shape)
        table[new] = shape
        shaped[sym] = new
    temps = [(shaped[sym], expr.xreplace(shaped)) for sym, expr in temps]
    reduced = [e.xreplace(shaped) for e in reduced]
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
    by_position: dict[int, list] = {}
    for sym, expr in temps:
        by_position.setdefault(first_use[sym], []).append((sym, expr))
    equations = []
    for k, eq in enumerate(ir.equations):
        for sym, expr in by_position.get(k, ()):
            equations.append(Equation(sym, expr, TEMP, table[sym], eq.origin, True))
        equations.append(eq.replace_rhs(reduced[k]))
    origin = ir.equations[-1].origin if ir.equations else None
    for sym, expr in by_position.get(n_eq, ()):
        equations.append(Equation(sym, expr, TEMP, table[sym], origin, True))
    results = [r.__class__(r.key, e, r.kind) for r, e in zip(ir.results, reduced[n_eq:])]
    return ir.with_equations(equations, results)
