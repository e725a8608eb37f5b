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
from dataclasses import replace

import sympy
from sympy import S

from .errors import CompileError
from .ir import ADJOINT, GRAD, IR, N_SAMPLES, Equation, Result
from .naming import adjoint_symbol, fresh
from .tensor import Einsum, LogSumExp, Reshape, Structural, lower, make_symbol, shape_of


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
    if partial.has(sympy.DiracDelta):
        # Heaviside, sign: the derivative is 0 everywhere but at the jump, where gradient
        # code takes 0 too (as relu's kink, and as PyTorch and JAX do).
        partial = partial.replace(sympy.DiracDelta, lambda *args: S.Zero)
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


# -- shaped values ---------------------------------------------------------------------------
# The same sweep over equations whose values have shapes. A value's adjoint d_v has v's
# per-sample shape. An elementwise equation takes its local partials from SymPy, as above,
# on the scalar element; a structural one brings its vector-Jacobian product from RULES.
# A contribution is then fitted to its operand (`_Sweep.fit`): summed over the axes the
# operand was broadcast along, and summed over the samples when the operand is the same for
# every sample (a parameter), so a parameter's gradient is one total for the batch, never
# an array of per-sample gradients.

def _vjp_einsum(sweep, eq, adjoint, operand_index):
    node = eq.rhs
    ins, out = node.subscripts
    target = ins[operand_index]
    others = [(s, op) for k, (s, op) in enumerate(zip(ins, node.operands)) if k != operand_index]
    available = set(out).union(*[set(s) for s, _ in others])
    if not set(target) <= available:
        # a sum: d_in is d_out broadcast back over the summed axes
        assert len(ins) == 1
        kept = [k for k, c in enumerate(target) if c in out]
        keep_shape = tuple(d if k in kept else 1
                           for k, d in enumerate(sweep.shape(node.operands[0])))
        if kept and kept[-1] - kept[0] + 1 == len(kept) and kept[-1] == len(target) - 1:
            return adjoint  # summed axes are leading: NumPy broadcasting lines it up
        return Reshape(adjoint, keep_shape) if kept else adjoint
    operand = node.operands[operand_index]
    if set(target) == available and all(target.endswith(s) for s in
                                         [out] + [s for s, _ in others]):
        # nothing is summed and NumPy broadcasting lines every factor up: elementwise
        return sympy.Mul(adjoint, *[op for _, op in others])
    spec = ",".join([out] + [s for s, _ in others]) + "->" + target
    operands = [adjoint] + [op for _, op in others]
    batch_sum = operand not in sweep.batched and any(sweep.is_batched(o) for o in operands)
    return Einsum(spec, batch_sum, *operands)


def _vjp_reshape(sweep, eq, adjoint, operand_index):
    return Reshape(adjoint, sweep.shape(eq.rhs.operands[0]))


def _vjp_logsumexp(sweep, eq, adjoint, operand_index):
    operand = eq.rhs.operands[0]
    shape, axis = sweep.shape(operand), eq.rhs.axis

    def keep(v):
        return v if axis == 0 else Reshape(v, shape[:axis] + (1,) + shape[axis + 1:])
    return keep(adjoint) * sympy.exp(operand - keep(eq.lhs))


#: The vector-Jacobian product of each structural operation: (sweep, equation, the
#: adjoint of its result, which operand) -> that operand's contribution.
RULES = {Einsum: _vjp_einsum, Reshape: _vjp_reshape, LogSumExp: _vjp_logsumexp}


class _Sweep:
    def __init__(self, ir: IR):
        self.ir = ir
        self.shapes = ir.shapes()
        self.batched = ir.batched()
        self.taken = ir.names()
        self.backward: list[Equation] = []

    def shape(self, expr):
        return shape_of(expr, self.shapes)

    def is_batched(self, expr) -> bool:
        return bool(expr.free_symbols & self.batched)

    def symbol(self, name: str, shape):
        return make_symbol(fresh(name, self.taken), shape)

    def define(self, lhs, rhs, origin):
        """Append `lhs = rhs` to the backward equations."""
        shape = self.shapes[lhs]
        rhs = lower(rhs, lambda kind, sub: self.anonymous(lhs.name, sub, origin))
        self.backward.append(Equation(lhs, rhs, ADJOINT, shape, origin))
        if self.is_batched(rhs) and not getattr(rhs, "batch_sum", False):
            self.batched.add(lhs)
        return lhs

    def anonymous(self, base, rhs, origin):
        shape = self.shape(rhs)
        lhs = self.symbol(f"{base}_part", shape)
        self.shapes[lhs] = shape
        return self.define(lhs, rhs, origin)

    def fit(self, contribution, operand, v_batched, origin):
        """`contribution` (to `operand`, from a value that is per-sample iff v_batched)
        reduced to the operand's shape and, for a per-batch operand, summed over samples."""
        if isinstance(contribution, Einsum) and contribution.batch_sum:
            return self.anonymous(f"d_{operand.name}", contribution, origin)  # fitted
        if isinstance(contribution, Structural):
            contribution = self.anonymous(f"d_{operand.name}", contribution, origin)
        shape, target = self.shape(contribution), self.shapes[operand]
        c_batched = self.is_batched(contribution)
        per_batch = v_batched and operand not in self.batched
        lead = len(shape) - len(target)
        axes = [] if lead < 0 else list(range(lead)) + [
            lead + k for k, d in enumerate(target) if d == 1 and shape[lead + k] != 1]
        batch_sum = per_batch and c_batched
        if axes or batch_sum:
            if not contribution.is_Symbol:
                contribution = self.anonymous(f"d_{operand.name}", contribution, origin)
            letters = "abcdefghijklmnopqrstuvwxy"[:len(shape)]
            kept = "".join(c for k, c in enumerate(letters) if k not in axes)
            contribution = self.anonymous(
                f"d_{operand.name}", Einsum(f"{letters}->{kept}", batch_sum, contribution),
                origin)
            if self.shapes[contribution] != target:
                contribution = self.anonymous(f"d_{operand.name}",
                                              Reshape(contribution, target), origin)
        if per_batch and not c_batched:
            contribution = N_SAMPLES * contribution  # the same for every sample
        return contribution


def differentiate_shaped(ir: IR) -> IR:
    sweep = _Sweep(ir)
    order = {v.symbol: k for k, v in enumerate(ir.inputs + ir.params)}
    order.update({eq.lhs: len(order) + k for k, eq in enumerate(ir.equations)})
    inputs = {v.symbol for v in ir.inputs}

    received: dict[sympy.Symbol, list[sympy.Expr]] = defaultdict(list)
    # ∂L/∂L for each sample; a loss that is the same for every sample counts n times
    received[ir.loss].append(S.One if ir.loss in sweep.batched else N_SAMPLES)
    for eq in reversed(ir.forward()):
        parts = received.pop(eq.lhs, None)
        if not parts:
            continue
        if eq.lhs == ir.loss and not isinstance(eq.rhs, Structural):
            adjoint = sympy.Add(*parts)  # the seed, never materialised
        else:
            adjoint = sweep.symbol(f"d_{eq.lhs.name}", eq.shape)
            sweep.shapes[adjoint] = eq.shape
            sweep.define(adjoint, sympy.Add(*parts), eq.origin)
        v_batched = eq.lhs in sweep.batched
        if isinstance(eq.rhs, Structural):
            for k, operand in enumerate(eq.rhs.operands):
                if operand in inputs or not operand.is_Symbol:
                    continue
                c = RULES[type(eq.rhs)](sweep, eq, adjoint, k)
                received[operand].append(sweep.fit(c, operand, v_batched, eq.origin))
            continue
        for operand in sorted(eq.rhs.free_symbols - inputs - {N_SAMPLES},
                              key=order.__getitem__):
            partial = local_partial(eq, operand)
            if partial != 0:
                received[operand].append(sweep.fit(adjoint * partial, operand, v_batched,
                                                   eq.origin))

    results = [r for r in ir.results if r.kind == "loss"]
    for p in ir.params:
        parts = received.pop(p.symbol, None)
        if parts:
            d_p = sweep.symbol(f"d_{p.symbol.name}", p.shape)
            sweep.shapes[d_p] = p.shape
            sweep.define(d_p, sympy.Add(*parts), p.origin)
            results.append(Result(p.name, d_p, "grad"))
        else:
            results.append(Result(p.name, S.Zero, "grad"))
    grads = {r.expr for r in results if r.kind == "grad"}
    backward = [replace(e, role=GRAD) if e.lhs in grads else e for e in sweep.backward]
    return ir.with_equations(ir.equations + tuple(backward),
                             results).validate()

