"""The reverse sweep: append the backward equations to a forward IR.

Walking the equations from the loss backwards (micrograd's loop), each equation
`v = f(a, b, ...)` with adjoint `d_v` (= ∂L/∂v for one sample) sends a contribution to each
operand: `d_v * ∂f/∂a` from `sympy.diff` for an elementwise `f`, or the vector-Jacobian
product registered for a structural operation (`bpgen.vjp`). A value used by several
equations (fan-out) sums what it receives. Equations are never substituted into each
other, so the backward part is at most a constant times the size of the forward part.

A contribution is fitted to its operand by one rule, the VJP of the implicit broadcast:
it is summed over the axes the operand was broadcast along, and, when the operand is the
same for every sample (a parameter) while the contribution is not, over the samples. A
scalar parameter's sum over the samples of a product is one contraction
(`d_w11 = Σ d_s1*x1`, a dot product), never an array of per-sample gradients.

Output: the IR with one `adjoint` equation per value that reaches the loss, one `grad`
equation per parameter that does (its gradient summed over the samples), and results
(loss, each parameter's gradient, both times the mean's 1/n).
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache

import sympy
from sympy import S
from sympy.core.parameters import global_parameters

from . import tensor  # noqa: F401 - registers the VJP rules of the structural operations
from .errors import CompileError
from .ir import ADJOINT, GRAD, IR, N_SAMPLES, PART, Equation, Result, scale
from .naming import fresh, numbered
from .nodes import Assemble, key_shape
from .tensor import Einsum, Reshape, Structural, TensorSymbol, lower, make_symbol, shape_of
from .vjp import RULES


def local_partial(eq: Equation, operand: sympy.Symbol) -> sympy.Expr:
    """∂rhs/∂operand for one elementwise equation; the single place derivatives are taken.

    Equations of one form (`a_k = tanh(p_k*a_{k-1} + q_k*b_{k-1})` at every layer or
    step) are differentiated once: the derivative is taken of the form, over symbols
    renamed in the same order (SymPy orders terms by name, so what it builds is the
    same but for the names), and renamed back."""
    symbols = sorted(eq.rhs.free_symbols, key=sympy.default_sort_key)
    if global_parameters.distribute or any(type(s) not in PLAIN for s in symbols):
        # renaming back rebuilds the derivative, which would distribute 2*(z3 - y): only
        # under compiler.exact_arithmetic (every compile) is it the same expression; and a
        # symbol of another class (a Constant) would be renamed to one that sorts apart
        return _partial(eq, operand)
    renamed = {s: _placeholder(s, k) for k, s in enumerate(symbols)}
    # renaming in the same order leaves every sum and product as SymPy orders it, so
    # nothing need be evaluated again (tanh's evaluation alone was most of the time)
    with sympy.evaluate(False):
        form = eq.rhs.xreplace(renamed)
    try:
        partial = _form_partial(form, renamed[operand])
    except _NoPartial:
        return _partial(eq, operand)  # the error, in the equation's own names
    with sympy.evaluate(False):
        return partial.xreplace({v: s for s, v in renamed.items()})


#: The classes of symbol a form's placeholders are made of (same class, same order).
PLAIN = (sympy.Symbol, TensorSymbol)


class _NoPartial(Exception):
    pass


def _placeholder(s: sympy.Symbol, k: int) -> sympy.Symbol:
    name = f"_f{k:05d}"
    if isinstance(s, TensorSymbol):
        return TensorSymbol(name, s.shape)
    return type(s)(name, **s.assumptions0)


@lru_cache(maxsize=4096)
def _form_partial(rhs, operand) -> sympy.Expr:
    """The partial of a renamed right-hand side."""
    try:
        return _partial(Equation(operand, rhs, ADJOINT, (), None), operand)
    except CompileError:
        raise _NoPartial from None


def _partial(eq: Equation, operand: sympy.Symbol) -> sympy.Expr:
    try:
        partial = sympy.diff(eq.rhs, operand)
    except Exception as exc:  # SymPy raises assorted types for undifferentiable input
        raise CompileError(f"cannot differentiate {eq.lhs} = {eq.rhs} with respect to "
                           f"{operand}: {exc}", eq.origin) from None
    if partial.has(sympy.Derivative, sympy.Subs):
        raise CompileError(f"SymPy cannot differentiate {eq.lhs} = {eq.rhs} with respect "
                           f"to {operand} (no derivative rule)", eq.origin)
    if partial.has(sympy.DiracDelta):
        # Heaviside, sign: the derivative is 0 everywhere but at the jump, where gradient
        # code takes 0 too (as relu's kink, and as PyTorch and JAX do).
        partial = partial.replace(sympy.DiracDelta, lambda *args: S.Zero)
    # 2*(z3 - y) rather than 2*z3 - 2*y: reads like the math and costs one op less.
    return sympy.factor_terms(partial)


def elementwise_vjp(eq, adjoint, ctx):
    """An elementwise equation: each operand receives d_v * ∂f/∂operand."""
    operands = sorted(eq.rhs.free_symbols - ctx.inputs - {N_SAMPLES}, key=ctx.order.get)
    out = []
    for operand in operands:
        partial = local_partial(eq, operand)
        if partial != 0:
            out.append((operand, adjoint * partial))
    return out


class Sweep:
    """The state of one reverse sweep: what is known of the IR, and the backward
    equations made so far (the `ctx` handed to VJP rules)."""

    part_role = PART  # the role of the anonymous pieces `define` makes

    def __init__(self, ir: IR):
        self.ir = ir
        self.shapes = ir.shapes()
        self.batched = ir.batched()
        self.taken = ir.names()
        self.inputs = {v.symbol for v in ir.inputs + ir.constants}  # no gradient
        self.order = {v.symbol: k for k, v in enumerate(ir.inputs + ir.params)}
        self.order.update({eq.lhs: len(self.order) + k for k, eq in enumerate(ir.equations)})
        self.backward: list[Equation] = []
        # structural operations already computed (forward or backward): the same one
        # again is that value (the softmax's backward reads its forward reshape)
        self.made = {eq.rhs: eq.lhs for eq in ir.equations
                     if isinstance(eq.rhs, Structural)}
        self.defs = {eq.lhs: eq.rhs for eq in ir.equations}

    # -- what rules may ask -------------------------------------------------------------
    def shape(self, expr):
        return shape_of(expr, self.shapes)

    def is_batched(self, expr) -> bool:
        return bool(expr.free_symbols & self.batched)

    # -- making equations ---------------------------------------------------------------
    def define(self, name: str, rhs, origin, anonymous: bool, role: str = ADJOINT,
               shape=None):
        """Append `name = rhs` (structural nodes inside it get equations of their own);
        `shape` is the shape of the value (its rhs's shape, or one it broadcasts to)."""
        rhs = lower(rhs, lambda kind, sub: self.define(part(name), sub, origin, True,
                                                       self.part_role))
        if isinstance(rhs, Reshape):  # a reshape of a reshape is one reshape, or none
            (inner,) = rhs.operands
            source = self.defs.get(inner)
            if isinstance(source, Reshape):
                rhs = Reshape(source.operands[0], rhs.shape)
            if rhs.shape == self.shape(rhs.operands[0]):
                return rhs.operands[0]
        if anonymous and rhs in self.made:
            return self.made[rhs]
        shape = self.shape(rhs) if shape is None else shape
        lhs = make_symbol((numbered if role == self.part_role else fresh)(name, self.taken),
                          shape)
        self.shapes[lhs] = shape
        self.defs[lhs] = rhs
        if anonymous and isinstance(rhs, Structural):
            self.made[rhs] = lhs
        self.backward.append(Equation(lhs, rhs, role, shape, origin, anonymous))
        if self.is_batched(rhs) and not (isinstance(rhs, Einsum) and rhs.batch_sum):
            self.batched.add(lhs)
        return lhs

    def gather(self, parts, operand):
        """The sum of the contributions an operand received, fitted to it. A scalar that
        is the same for every sample sums its per-sample contributions first, then over
        the samples in one contraction."""
        if not self.shapes[operand] and operand not in self.batched:
            varying = [p for p in parts
                       if not isinstance(p[0], Structural) and self.is_batched(p[0])]
            if len(varying) > 1:
                rest = [p for p in parts if p not in varying]
                combined = (sympy.Add(*[c for c, _, _ in varying]), varying[0][1], True)
                parts = [combined] + rest
        pieces = [p for p in parts if isinstance(p[0], Assemble)]
        if pieces:  # the pieces of an indexed value become one array, each fitted first
            parts = [p for p in parts if p not in pieces]
            keys, values = [], []
            for assembled, origin, from_sample in pieces:
                for key, value in zip(assembled.keys, assembled.operands):
                    keys.append(key)
                    values.append(self.fit(value, operand, origin, from_sample,
                                           key_shape(key)))
            parts.append((Assemble(self.shapes[operand], keys, *values), pieces[0][1], False))
        return sympy.Add(*[self.fit(c, operand, origin, from_sample)
                           for c, origin, from_sample in parts])

    def fit(self, contribution, operand, origin, from_sample, target=None):
        """`contribution` (to `operand`, in the frame of the value it came from, which is
        per sample if `from_sample`) reduced to the operand's shape (or `target`, a piece
        of it), and summed over the samples if the operand is the same for every sample:
        the VJP of the implicit broadcast. A contribution that is the same for every sample
        then counts n times."""
        if from_sample and operand not in self.batched and not self.is_batched(contribution):
            return N_SAMPLES * self.fit(contribution, operand, origin, False, target)
        name = part(f"d_{operand.name}")
        if isinstance(contribution, Structural):
            if isinstance(contribution, Einsum) and contribution.batch_sum:
                return self.define(name, contribution, origin, True, PART)  # fitted
            contribution = self.define(name, contribution, origin, True, PART)
        shape = self.shape(contribution)
        target = self.shapes[operand] if target is None else target
        per_sample = self.is_batched(contribution)
        total = per_sample and operand not in self.batched
        lead = len(shape) - len(target)  # < 0: broadcasts up to the operand, nothing to sum
        axes = [] if lead < 0 else list(range(lead)) + [
            lead + k for k, d in enumerate(target) if d == 1 and shape[lead + k] != 1]
        if not axes and not total:
            return contribution
        if total and not target:
            return self.contract(contribution, shape, origin, name)
        if not contribution.is_Symbol:
            contribution = self.define(name, contribution, origin, True, PART)
        letters = "abcdefghijklmnopqrstuvwxy"[:len(shape)]
        kept = "".join(c for k, c in enumerate(letters) if k not in axes)
        summed = self.define(name, Einsum(f"{letters}->{kept}", total, contribution), origin,
                             True, PART)
        if self.shapes[summed] != target:
            summed = self.define(name, Reshape(summed, target), origin, True, PART)
        return summed

    def contract(self, product, shape, origin, name):
        """The sum over samples (and every axis) of a per-sample product, to a scalar
        that is the same for every sample: one contraction of its two per-sample factors
        (a dot product), the factors that are the same for every sample outside it."""
        uniform, varying = [], []
        for factor in sympy.Mul.make_args(product):
            # a factor with axes is summed over them too, even one the same for every
            # sample (`d_L_in`, the broadcast seed of `sum(tanh(s*z))`)
            (varying if self.is_batched(factor) or self.shape(factor) else
             uniform).append(factor)
        if len(varying) == 1 and varying[0].is_Pow and varying[0].exp == 2:
            varying = [varying[0].base, varying[0].base]
        varying.sort(key=lambda f: not f.is_Symbol)  # stable: symbols first
        if len(varying) < 2:
            factors = varying
        else:
            factors = [varying[0], sympy.Mul(*varying[1:])]
        operands = [f if f.is_Symbol else self.define(name, f, origin, True, PART)
                    for f in factors]
        letters = "abcdefghijklmnopqrstuvwxy"[:len(shape)]
        spec = ",".join([letters] * len(operands)) + "->"
        summed = self.define(name, Einsum(spec, 1, *operands), origin, True, PART)
        return sympy.Mul(*uniform) * summed


def part(name: str) -> str:
    """The name of an anonymous piece of `name` (readable; passes never look at it)."""
    return name if name.endswith("_part") else f"{name}_part"


def differentiate(ir: IR) -> IR:
    sweep = Sweep(ir)
    # operand -> [(contribution, origin, whether the value it came from is per sample)]
    received: dict[sympy.Symbol, list] = defaultdict(list)
    # ∂(L summed over samples)/∂L for each sample; a loss that is the same for every
    # sample counts n times
    received[ir.loss].append((S.One if ir.loss in sweep.batched else N_SAMPLES, None, False))
    for eq in reversed(ir.forward()):
        parts = received.pop(eq.lhs, None)
        if not parts:
            continue  # does not reach the loss
        total = sweep.gather(parts, eq.lhs)
        if eq.lhs == ir.loss and not isinstance(eq.rhs, Structural):
            adjoint = total  # the seed, never materialised
        else:
            adjoint = sweep.define(f"d_{eq.lhs.name}", total, eq.origin, eq.anonymous,
                                   shape=eq.shape)
        rule = RULES.get(type(eq.rhs), elementwise_vjp)
        for operand, contribution in rule(eq, adjoint, sweep):
            if operand not in sweep.inputs and operand.is_Symbol:
                received[operand].append((contribution, eq.origin,
                                          eq.lhs in sweep.batched))

    results = [r for r in ir.results if r.kind == "loss"]
    for p in ir.params:
        parts = received.pop(p.symbol, None)
        if parts:
            d_p = sweep.define(f"d_{p.symbol.name}", sweep.gather(parts, p.symbol), p.origin,
                               False, GRAD, p.shape)
            results.append(Result(p.name, d_p * scale(ir.reduce), "grad"))
        else:
            results.append(Result(p.name, S.Zero, "grad"))
    return ir.with_equations(ir.equations + tuple(sweep.backward), results).validate()
