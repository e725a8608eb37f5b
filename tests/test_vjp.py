"""Every VJP rule against the identity ⟨u, J v⟩ = ⟨Jᵀ u, v⟩ (JAX's `check_vjp`).

For one operation `out = f(a, b, ...)` on random shapes, with some operands per sample
(a batch axis of N_BATCH samples in front) and some the same for every sample: J v is
the directional derivative of f along random directions v of every operand, by central
finite differences of a NumPy evaluation of f written here; Jᵀ u is what the rule sends
each operand for a random adjoint u, evaluated by the same small NumPy evaluator, then
fitted to the operand as the sweep fits it (broadcast axes summed, the samples summed for
an operand that is the same for every sample). Neither side uses bpgen's generated code.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import bpgen as bp
from bpgen.autodiff import elementwise_vjp
from bpgen.ir import Equation
from bpgen.nodes import Assemble, Concat, Extreme, Index
from bpgen.tensor import Einsum, LogSumExp, Reshape, TensorSymbol, shape_of
from bpgen.vjp import RULES

N_BATCH = 3


def symbol(name, shape):
    return TensorSymbol(name, shape) if shape else sympy.Symbol(name, real=True)


def evaluate(expr, values: dict, batched: set):
    """`expr` on arrays: per-sample symbols hold (N_BATCH, *shape), others shape."""
    if expr.is_Symbol:
        return values[expr]
    if isinstance(expr, Einsum):
        ins, out = expr.subscripts
        operands = [evaluate(op, values, batched) for op in expr.operands]
        flags = [is_batched(op, batched) for op in expr.operands]
        subs = ["Z" + s if f else s for s, f in zip(ins, flags)]
        full_out = ("Z" if any(flags) and not expr.batch_sum else "") + out
        return np.einsum(f"{','.join(subs)}->{full_out}", *operands)
    if isinstance(expr, Reshape):
        (op,) = expr.operands
        value = evaluate(op, values, batched)
        lead = (N_BATCH,) if is_batched(op, batched) else ()
        return value.reshape(lead + expr.shape)
    if isinstance(expr, Index):
        (op,) = expr.operands
        lead = (slice(None),) if is_batched(op, batched) else ()
        key = tuple(k if isinstance(k, int) else slice(*k) for k in expr.key)
        return evaluate(op, values, batched)[lead + key]
    if isinstance(expr, Assemble):
        lead = is_batched(expr, batched)
        out = np.zeros(((N_BATCH,) if lead else ()) + expr.shape)
        for key, piece in zip(expr.keys, expr.operands):
            key = tuple(k if isinstance(k, int) else slice(*k) for k in key)
            out[((slice(None),) if lead else ()) + key] += evaluate(piece, values, batched)
        return out
    if isinstance(expr, Concat):
        lead = is_batched(expr, batched)
        parts = [np.broadcast_to(evaluate(op, values, batched),
                                 ((N_BATCH,) if lead else ()) + shape_of(op))
                 for op in expr.operands]
        return np.concatenate(parts, axis=expr.axis + int(lead))
    if isinstance(expr, Extreme):
        (op,) = expr.operands
        axes = tuple(a + int(is_batched(op, batched)) for a in expr.axes)
        return getattr(np, expr.which)(evaluate(op, values, batched), axis=axes)
    if isinstance(expr, LogSumExp):
        (op,) = expr.operands
        value = evaluate(op, values, batched)
        axis = expr.axis + int(is_batched(op, batched))
        m = value.max(axis=axis, keepdims=True)
        return (np.log(np.exp(value - m).sum(axis=axis, keepdims=True)) + m).squeeze(axis)
    # elementwise: substitute structural subexpressions by evaluated arrays
    inner = {}
    for node in expr.atoms(Einsum, Reshape, LogSumExp, Index, Assemble, Concat, Extreme):
        dummy = sympy.Dummy(real=True)
        inner[node] = dummy
        values = {**values, dummy: evaluate(node, values, batched)}
        if is_batched(node, batched) and not (isinstance(node, Einsum) and node.batch_sum):
            batched = batched | {dummy}
    plain = expr.xreplace(inner)
    symbols = sorted(plain.free_symbols, key=lambda s: s.name)
    arrays = [align(values[s], s, plain, values, batched) for s in symbols]
    f = sympy.lambdify(symbols, plain, modules=[{"sigmoid": lambda x: 1 / (1 + np.exp(-x)),
                                                 "softplus": lambda x: np.logaddexp(0, x),
                                                 "relu": lambda x: np.maximum(x, 0),
                                                 "step": lambda x: 1.0 * (x > 0),
                                                 "logaddexp": np.logaddexp,
                                                 "maximum": np.maximum,
                                                 "minimum": np.minimum,
                                                 "equal": lambda a, b: 1.0 * (a == b),
                                                 "Heaviside": lambda x, h=0.5: np.heaviside(x, h)},
                                                "numpy"])
    return np.asarray(f(*arrays), dtype=float)


def align(value, s, expr, values, batched):
    """Per-sample values get axes after the batch axis to line up with the others."""
    rank = max(np.ndim(values[t]) - int(is_batched(t, batched)) for t in expr.free_symbols)
    if is_batched(s, batched):
        missing = rank - (np.ndim(value) - 1)
        return value.reshape(value.shape[:1] + (1,) * missing + value.shape[1:])
    return value


def is_batched(expr, batched) -> bool:
    return bool(expr.free_symbols & batched)


class Context:
    """What a rule may ask (the sweep's interface)."""

    def __init__(self, shapes, batched):
        self.shapes, self.batched = shapes, batched
        self.inputs = set()
        self.order = {s: k for k, s in enumerate(shapes)}

    def shape(self, expr):
        return shape_of(expr, self.shapes)

    def is_batched(self, expr):
        return is_batched(expr, self.batched)


def fit(c, c_batched: bool, shape, operand_batched: bool, source_batched: bool):
    """The sweep's VJP of the implicit broadcast, numerically: a contribution (an array
    with a leading batch axis iff `c_batched`) reduced to an operand of per-sample
    `shape`, summed over the samples for an operand that is the same for every sample
    (or counted N times when the contribution is too, but the value it came from is per
    sample)."""
    c = np.asarray(c, dtype=float)
    if c_batched and c.ndim - 1 < len(shape):  # per-sample axes line up at the end
        c = c.reshape(c.shape[:1] + (1,) * (len(shape) - c.ndim + 1) + c.shape[1:])
    if c_batched and not operand_batched:
        c, c_batched = c.sum(axis=0), False
    elif not c_batched and source_batched and not operand_batched:
        c = c * N_BATCH
    first = int(c_batched)
    lead = c.ndim - first - len(shape)
    if lead > 0:
        c = c.sum(axis=tuple(range(first, first + lead)))
    for k, want in enumerate(shape):
        if want == 1 and c.ndim > first + k and c.shape[first + k] != 1:
            c = c.sum(axis=first + k, keepdims=True)
    target = ((N_BATCH,) if operand_batched else ()) + tuple(shape)
    if operand_batched and not c_batched:
        c = c[None]
    return np.broadcast_to(c, target)


def check(lhs_shape, rhs, shapes: dict, batched: set, seed: int):
    rng = np.random.default_rng(seed)
    symbols = sorted(shapes, key=lambda s: s.name)
    values = {s: rng.normal(size=((N_BATCH,) if s in batched else ()) + shapes[s])
              for s in symbols}
    out = evaluate(rhs, values, batched)
    out_batched = is_batched(rhs, batched) and not (isinstance(rhs, Einsum) and rhs.batch_sum)
    lhs, adjoint = symbol("v", lhs_shape), symbol("d_v", lhs_shape)
    all_batched = set(batched) | ({lhs, adjoint} if out_batched else set())
    ctx = Context({**shapes, lhs: lhs_shape, adjoint: lhs_shape}, all_batched)
    u = rng.normal(size=np.shape(out))
    # J v by central differences of the NumPy evaluation, along every operand at once
    directions = {s: rng.normal(size=np.shape(values[s])) for s in symbols}
    h = 1e-6
    up = evaluate(rhs, {s: values[s] + h * directions[s] for s in symbols}, batched)
    down = evaluate(rhs, {s: values[s] - h * directions[s] for s in symbols}, batched)
    left = float(np.sum(u * (up - down) / (2 * h)))
    # Jᵀ u from the rule
    rule = RULES.get(type(rhs), elementwise_vjp)
    known = {**values, lhs: out, adjoint: u}
    right = 0.0
    for operand, contribution in rule(Equation(lhs, rhs, "forward", lhs_shape), adjoint, ctx):
        contribution = sympy.sympify(contribution)
        c = evaluate(contribution, known, all_batched)
        if isinstance(contribution, Einsum) and contribution.batch_sum:
            fitted = c  # the rule summed over the samples itself
        else:
            fitted = fit(c, is_batched(contribution, all_batched), shapes[operand],
                         operand in batched, out_batched)
        right += float(np.sum(fitted * directions[operand]))
    assert right == pytest.approx(left, rel=1e-6, abs=1e-8), (rhs, left, right)


# -- the cases -----------------------------------------------------------------------------
x3, y4 = TensorSymbol("x", (3,)), TensorSymbol("y", (4,))
W34, V43 = TensorSymbol("W", (3, 4)), TensorSymbol("V", (4, 3))
A23, B23 = TensorSymbol("A", (2, 3)), TensorSymbol("B", (2, 3))
M32 = TensorSymbol("M", (3, 2))
s = sympy.Symbol("s", real=True)

CASES = [
    # (name, rhs, shape of the result, per-sample symbols)
    ("vector @ matrix", Einsum("j,jk->k", 0, x3, W34), (4,), {x3}),
    ("matrix @ vector", Einsum("ij,j->i", 0, W34, y4), (3,), {y4}),
    ("matrix @ matrix", Einsum("ij,jk->ik", 0, A23, M32), (2, 2), {A23, M32}),
    ("vector . vector", Einsum("j,j->", 0, x3, x3), (), {x3}),
    ("transpose", Einsum("ab->ba", 0, W34), (4, 3), {W34}),
    ("sum over an axis", Einsum("ab->a", 0, A23), (2,), {A23}),
    ("sum over the first axis", Einsum("ab->b", 0, A23), (3,), {A23}),
    ("sum of everything", Einsum("ab->", 0, A23), (), {A23}),
    ("sum of a product", Einsum("ab,ab->a", 0, A23, B23), (2,), {A23, B23}),
    ("outer product", Einsum("a,b->ab", 0, x3, y4), (3, 4), {x3, y4}),
    ("per-batch weight", Einsum("j,jk->k", 0, x3, W34), (4,), {x3}),
    ("sum over samples", Einsum("j,jk->jk", 1, x3, W34), (3, 4), {x3}),
    ("sum over samples of a product", Einsum(",->", 1, s, s), (), {s}),
    ("reshape", Reshape(A23, (3, 2)), (3, 2), {A23}),
    ("reshape adds an axis", Reshape(x3, (3, 1)), (3, 1), {x3}),
    ("logsumexp, last axis", LogSumExp(A23, 1), (2,), {A23}),
    ("logsumexp, first axis", LogSumExp(A23, 0), (3,), {A23}),
    ("elementwise tanh with a per-batch weight", bp.tanh(x3 * s), (3,), {x3}),
    ("elementwise with broadcasting", A23 * x3 + bp.sigmoid(B23), (2, 3), {A23, B23}),
    ("elementwise functions", bp.softplus(s) * bp.exp(s) + bp.logaddexp(s, 2 * s), (),
     {s}),
    ("index", Index(A23, (1, (0, 3, 1))), (3,), {A23}),
    ("slice with a step", Index(A23, ((0, 2, 1), (0, 3, 2))), (2, 2), {A23}),
    ("index of a per-batch value", Index(W34, ((1, 3, 1), 2)), (2,), set()),
    ("assemble", Assemble((2, 3), [(1, (0, 3, 1)), (0, (1, 3, 1))],
                          TensorSymbol("p", (3,)), TensorSymbol("q", (2,))), (2, 3),
     {TensorSymbol("p", (3,)), TensorSymbol("q", (2,))}),
    ("concatenate", Concat(1, A23, B23), (2, 6), {A23, B23}),
    ("concatenate per sample and per batch", Concat(0, x3, TensorSymbol("c", (2,))), (5,),
     {x3}),
    ("max over an axis", Extreme(A23, "max", (1,)), (2,), {A23}),
    ("min over every axis", Extreme(A23, "min", (0, 1)), (), {A23}),
    ("max over the first axis", Extreme(A23, "max", (0,)), (3,), {A23}),
    ("elementwise maximum and minimum", bp.maximum(A23, B23) + bp.minimum(x3, A23),
     (2, 3), {A23, B23}),
]


@pytest.mark.parametrize("name,rhs,shape,per_sample", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("seed", [0, 1])
def test_vjp_identity(name, rhs, shape, per_sample, seed):
    shapes = {sym: getattr(sym, "shape", ()) for sym in rhs.free_symbols}
    check(shape, rhs, shapes, set(per_sample), seed)


def test_every_rule_is_tested():
    tested = {type(rhs) for _, rhs, _, _ in CASES}
    assert set(RULES) <= tested, set(RULES) - tested
