"""The reverse sweep: append the backward equations to a forward IR.

Walking the equations from the loss backwards, each equation `v = f(a, b, ...)` with
adjoint `d_v` (= ∂L/∂v for one sample) sends `d_v * ∂f/∂a` to `a`, `d_v * ∂f/∂b` to `b`,
and so on; the local partials come from `sympy.diff`. A value used by several equations
(fan-out) sums what it receives. Equations are never substituted into each other, so the
backward part is at most a constant times the size of the forward part.

Output: the same IR with one `adjoint` equation per intermediate that reaches the loss,
one `grad` equation per parameter that does, and results = (loss, grad of each param).
"""

from __future__ import annotations

from collections import defaultdict

import sympy
from sympy import S

from .errors import CompileError
from .ir import ADJOINT, GRAD, IR, Equation, Result
from .naming import adjoint_symbol


def local_partial(eq: Equation, operand: sympy.Symbol) -> sympy.Expr:
    """∂rhs/∂operand for one equation; the single place derivatives are taken."""
    try:
        partial = sympy.diff(eq.rhs, operand)
    except Exception as exc:  # SymPy raises assorted types for undifferentiable input
        raise CompileError(f"cannot differentiate {eq.lhs} = {eq.rhs} with respect to "
                           f"{operand}: {exc}", eq.origin) from None
    if partial.has(sympy.Derivative, sympy.Subs):
        raise CompileError(f"SymPy cannot differentiate {eq.lhs} = {eq.rhs} with respect "
                           f"to {operand} (no derivative rule)", eq.origin)
    # 2*(z3 - y) rather than 2*z3 - 2*y: reads like the math and costs one op less.
    return sympy.factor_terms(partial)


def differentiate(ir: IR) -> IR:
    order = {v.symbol: k for k, v in enumerate(ir.inputs + ir.params)}
    order.update({eq.lhs: len(order) + k for k, eq in enumerate(ir.equations)})
    inputs = {v.symbol for v in ir.inputs}
    taken = ir.names()

    received: dict[sympy.Symbol, list[sympy.Expr]] = defaultdict(list)
    received[ir.loss].append(S.One)
    backward: list[Equation] = []
    for eq in reversed(ir.forward()):
        parts = received.pop(eq.lhs, None)
        if not parts:
            continue  # does not reach the loss
        if eq.lhs == ir.loss:
            adjoint = S.One  # ∂L/∂L: the seed, never materialised
        else:
            adjoint = adjoint_symbol(eq.lhs, taken)
            backward.append(Equation(adjoint, sympy.Add(*parts), ADJOINT, eq.shape, eq.origin))
        operands = sorted(eq.rhs.free_symbols - inputs, key=order.__getitem__)
        for operand in operands:
            partial = local_partial(eq, operand)
            if partial != 0:
                received[operand].append(adjoint * partial)

    results = [r for r in ir.results if r.kind == "loss"]
    for p in ir.params:
        parts = received.pop(p.symbol, None)
        if parts:
            d_p = adjoint_symbol(p.symbol, taken)
            origin = p.origin
            backward.append(Equation(d_p, sympy.Add(*parts), GRAD, p.shape, origin))
            results.append(Result(p.name, d_p, "grad"))
        else:
            results.append(Result(p.name, S.Zero, "grad"))
    return ir.with_equations(ir.equations + tuple(backward), results).validate()
