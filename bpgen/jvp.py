"""The tangent sweep: derivatives of an IR along a direction of its parameters (forward
mode), and with it exact Hessian-vector products (forward-over-reverse).

Input: an IR, in practice the value_and_grad IR before the passes (forward equations,
then the backward ones the reverse sweep appended). Each parameter p gets a tangent
`v_p`, a new parameter of p's shape that is the same for every sample (the direction);
inputs, constants and _n have none. Walking the equations in order, each `x = f(a, ...)`
with an operand that has a tangent gets `t_x = Σ ∂f/∂a · t_a`: for an elementwise f by
one walk over f with the sum, product, power and chain rules (each function's derivative
from SymPy's `fdiff`), for a structural one by the rule registered in `RULES` (the
Jacobian-vector product, one small function each).
Operands without a tangent contribute nothing (never `+ 0`); a value whose operands have
none has none.

Output (`tangents`): the IR with the tangent parameters after its parameters, one
`tangent` equation per value that has a tangent appended after its own equations, and as
results the tangent of each gradient result, keyed by the parameter's name: the Hessian
of the loss times the direction. Each equation yields at most one tangent equation with
one term per operand, so the output is at most a constant times the input's size.
"""

from __future__ import annotations

from dataclasses import replace

import sympy
from sympy import S

from .autodiff import Sweep
from .errors import CompileError
from .functions import equal
from .ir import IR, N_SAMPLES, TANGENT, Result, Var
from .vjp import registrar
from .naming import fresh
from .nodes import Assemble, Concat, Extreme, Index
from .tensor import Einsum, LogSumExp, Reshape, make_symbol

#: Structural node type -> its Jacobian-vector product `rule(eq, tangents, ctx)`: the
#: right-hand side of t_v for `eq` (v = node(operands)), given `tangents` (operand ->
#: its tangent symbol, absent where it has none), or None when t_v is zero.
RULES: dict = {}
#: `@jvp(NodeType)` registers the decorated function as the JVP rule of NodeType.
jvp = registrar(RULES)


def elementwise_jvp(eq, tangents, ctx):
    """Σ ∂f/∂a · t_a over the operands a that have a tangent, in one walk over f (forward
    mode inside the expression: sum, product, power and chain rules). Taking ∂f/∂a for
    each operand instead would walk f once per operand, which costs the square of its
    size for the long expressions a deep expression's backward pass makes."""
    try:
        rhs = directional(eq.rhs, tangents, {})
    except Exception as exc:  # SymPy raises assorted types for undifferentiable input
        raise CompileError(f"cannot differentiate {eq.lhs} = {eq.rhs}: {exc}",
                           eq.origin) from None
    if rhs.has(sympy.Derivative, sympy.Subs):
        raise CompileError(f"SymPy cannot differentiate {eq.lhs} = {eq.rhs} (no derivative "
                           "rule)", eq.origin)
    if rhs.has(sympy.DiracDelta):  # as local_partial: 0 at a jump, as at relu's kink
        rhs = rhs.replace(sympy.DiracDelta, lambda *args: S.Zero)
    return rhs if rhs != 0 else None


def directional(expr, tangents, memo):
    """The derivative of `expr` along the tangents of its symbols (`tangents`: symbol ->
    its tangent; symbols without one are constant), each shared subexpression once."""
    if expr in memo:
        return memo[expr]
    if not expr.free_symbols & tangents.keys():
        out = S.Zero
    elif expr.is_Symbol:
        out = tangents[expr]
    elif expr.is_Add:
        out = sympy.Add(*[directional(a, tangents, memo) for a in expr.args])
    elif expr.is_Mul:
        args = expr.args
        out = sympy.Add(*[sympy.Mul(*args[:k], t, *args[k + 1:])
                          for k, t in enumerate(directional(a, tangents, memo) for a in args)
                          if t != 0])
    elif expr.is_Pow and not expr.exp.free_symbols & tangents.keys():
        base, exp = expr.args
        out = exp * base**(exp - 1) * directional(base, tangents, memo)
    else:
        out = None
        if isinstance(expr, sympy.Function) and all(isinstance(a, sympy.Expr)
                                                    for a in expr.args):
            out = sympy.Add(*[expr.fdiff(k + 1) * t for k, t in enumerate(
                directional(a, tangents, memo) for a in expr.args) if t != 0])
        if out is None or out.has(sympy.Derivative):
            # no fdiff (sign), a power with a varying exponent, Piecewise: SymPy's diff
            out = sympy.Add(*[sympy.diff(expr, a) * tangents[a] for a in sorted(
                expr.free_symbols & tangents.keys(), key=sympy.default_sort_key)])
    memo[expr] = out
    return out


@jvp(Einsum)
def _einsum_jvp(eq, tangents, ctx):
    """Multilinear: the same contraction with one operand replaced by its tangent, summed
    over the operands. A sum over the samples of values that are the same for every
    sample is n times the value."""
    node = eq.rhs
    terms = []
    for k, operand in enumerate(node.operands):
        if operand not in tangents:
            continue
        operands = list(node.operands)
        operands[k] = tangents[operand]
        if node.batch_sum and not any(ctx.is_batched(o) for o in operands):
            terms.append(N_SAMPLES * Einsum(node.spec, 0, *operands))
        else:
            terms.append(Einsum(node.spec, node.batch_sum, *operands))
    return sympy.Add(*terms) if terms else None


def _linear_unary(eq, tangents, ctx):
    """The same operation on the tangent (reshape, index)."""
    (operand,) = eq.rhs.operands
    return eq.rhs.with_operands([tangents[operand]]) if operand in tangents else None


jvp(Reshape)(_linear_unary)
jvp(Index)(_linear_unary)


@jvp(Concat)
def _concat_jvp(eq, tangents, ctx):
    """The tangents side by side; where an operand has none, zeros (the tangents that
    exist assembled into a zero value)."""
    operands = eq.rhs.operands
    if all(op in tangents for op in operands):
        return eq.rhs.with_operands([tangents[op] for op in operands])
    keys = eq.rhs.pieces(ctx.shapes)
    return _assembled(eq.shape, [(key, op) for key, op in zip(keys, operands)], tangents)


@jvp(Assemble)
def _assemble_jvp(eq, tangents, ctx):
    return _assembled(eq.shape, list(zip(eq.rhs.keys, eq.rhs.operands)), tangents)


def _assembled(shape, pieces, tangents):
    kept = [(key, tangents[op]) for key, op in pieces if op in tangents]
    if not kept:
        return None
    return Assemble(shape, [key for key, _ in kept], *[t for _, t in kept])


def _widen(value, shape, axes):
    """A value reduced along `axes` back to the operand's rank (size 1 along them)."""
    if axes == tuple(range(len(axes))):  # leading axes: NumPy broadcasting lines it up
        return value
    return Reshape(value, tuple(1 if k in axes else d for k, d in enumerate(shape)))


def _reduce(value, rank, axes):
    """The sum of `value` over `axes` (per sample)."""
    letters = "abcdefghijklmnopqrstuvwxy"[:rank]
    kept = "".join(c for k, c in enumerate(letters) if k not in axes)
    return Einsum(f"{letters}->{kept}", 0, value)


@jvp(LogSumExp)
def _logsumexp_jvp(eq, tangents, ctx):
    """t_out = sum(softmax(v) * t_v, axis), with softmax(v) = exp(v - out)."""
    (operand,) = eq.rhs.operands
    if operand not in tangents:
        return None
    shape, axes = ctx.shape(operand), (eq.rhs.axis,)
    softmax = sympy.exp(operand - _widen(eq.lhs, shape, axes))
    return _reduce(softmax * tangents[operand], len(shape), axes)


@jvp(Extreme)
def _extreme_jvp(eq, tangents, ctx):
    """t_out = sum([v == out] * t_v) / (how many entries reach out), along the axes: the
    mean of the tangents of the entries that reach the extreme (as the VJP shares it)."""
    (operand,) = eq.rhs.operands
    if operand not in tangents:
        return None
    shape, axes = ctx.shape(operand), eq.rhs.axes
    hits = equal(operand, _widen(eq.lhs, shape, axes))
    return _reduce(hits * tangents[operand], len(shape), axes) / _reduce(hits, len(shape), axes)


class Tangents(Sweep):
    """The state of one tangent sweep (the `ctx` handed to JVP rules): the reverse
    sweep's bookkeeping of shapes, per-sample values and names, making tangent
    equations."""

    part_role = TANGENT


def tangents(ir: IR) -> IR:
    """`ir` with the tangent parameters, the tangent equations and, as results, the
    tangent of each gradient (the Hessian-vector product); see the module docstring."""
    sweep = Tangents(ir)
    tangent: dict = {}
    directions = []
    for p in ir.params:
        name = fresh(f"v_{p.name}", sweep.taken)
        symbol = make_symbol(name, p.shape)
        sweep.shapes[symbol] = p.shape
        tangent[p.symbol] = symbol
        directions.append(Var(name, symbol, p.shape, p.origin))
    for eq in ir.equations:
        if not eq.rhs.free_symbols & tangent.keys():
            continue
        rhs = RULES.get(type(eq.rhs), elementwise_jvp)(eq, tangent, sweep)
        if rhs is None:
            continue
        tangent[eq.lhs] = sweep.define(f"t_{eq.lhs.name}", rhs, eq.origin, eq.anonymous,
                                       TANGENT, eq.shape)
    results = []
    for r in ir.results:
        if r.kind != "grad":
            continue
        found = sorted(r.expr.free_symbols & tangent.keys(), key=sweep.order.get)
        results.append(Result(r.key, sympy.Add(*[sympy.diff(r.expr, s) * tangent[s]
                                                 for s in found]) if found else S.Zero,
                              "grad"))
    return replace(ir, params=ir.params + tuple(directions),
                   equations=ir.equations + tuple(sweep.backward),
                   results=tuple(results)).validate()
