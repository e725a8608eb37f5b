"""Constant folding: an equation whose right-hand side is a number is folded into its uses.

SymPy already folds arithmetic on numbers (`2*3 -> 6`, `x*1 -> x`, `x + 0 -> x`); this pass
propagates equations that became constants (`c = 3`, an adjoint that is a number) into the
equations and results that read them, and drops them. Forward values the user declared
stay (forward() still reports them), but their uses read the constant.
"""

from __future__ import annotations

from ..ir import FORWARD, LOSS, IR
from ..tensor import Structural


def run(ir: IR) -> IR:
    # operands of structural operations (matmul, sums, ...) stay arrays
    structural = set().union(*[eq.rhs.free_symbols for eq in ir.equations
                               if isinstance(eq.rhs, Structural)])
    constants = {}
    equations = []
    for eq in ir.equations:
        rhs = eq.rhs.xreplace(constants) if constants else eq.rhs
        if not rhs.free_symbols and eq.lhs not in structural:
            constants[eq.lhs] = rhs
            if eq.role not in (FORWARD, LOSS):
                continue
        equations.append(eq.replace_rhs(rhs))
    if not constants:
        return ir
    results = [r.__class__(r.key, r.expr.xreplace(constants), r.kind) for r in ir.results]
    return ir.with_equations(equations, results)
