"""Stabilising rewrites: forms that overflow or cancel at large arguments become forms
that do not. Runs on the forward IR, before the reverse sweep, so the derivatives are
taken of the stable forms too.

    log(sigmoid(x))          -> -softplus(-x)
    log(1 - sigmoid(x))      -> -softplus(x)
    log(1 + exp(x))          -> softplus(x)
    log(exp(a) + exp(b) + …) -> logaddexp(a, logaddexp(b, …))
    log(u * v / w)           -> log(u) + log(v) - log(w) when each factor is positive,
                                so a scalar softmax cross-entropy
                                -log(exp(a) / (exp(a) + exp(b))) -> logaddexp(a, b) - a

    log(sum(w * exp(a)))     -> logsumexp(log(w) + a) on shaped values, when every factor
                                of the summed product is positive (exponentials, sigmoids,
                                softmaxes, positive constants and powers of these), so the
                                textbook mixture-density loss
                                -log(sum(pi * exp(-(y-mu)**2 / (2 s**2)) / s)) is the
                                log-space form logsumexp(log_softmax - (y-mu)**2/(2 s**2)
                                - log s) and stays finite at an outlier target

A rewrite also looks through an equation: with `p = sigmoid(s)` declared, `log(p)` and
`log(1 - p)` in a later equation become `-softplus(-s)` and `-softplus(s)` (binary
cross-entropy at logits of ±1000 stays finite). `p` itself is still computed.
"""

from __future__ import annotations

import sympy

from ..functions import logaddexp, sigmoid, softplus
from ..ir import FORWARD, IR, Equation, fresh_name
from ..tensor import Einsum, LogSumExp, Reshape, make_symbol, shape_of, single_form


def _stable_log(arg, definitions):
    """A stable replacement for log(arg), or None."""
    sig = _sigmoid_arg(arg, definitions)
    if sig is not None:
        return -softplus(-sig)
    rest = arg - 1
    sig = _sigmoid_arg(-rest, definitions)  # arg = 1 - sigmoid(x)
    if sig is not None:
        return -softplus(sig)
    terms = sympy.Add.make_args(arg)
    exps = [t for t in terms if isinstance(t, sympy.exp)]
    if len(terms) == 2 and len(exps) == 1 and sympy.S.One in terms:
        return softplus(exps[0].args[0])
    if len(terms) >= 2 and len(exps) == len(terms):
        exponents = [e.args[0] for e in exps]
        total = exponents[-1]
        for a in reversed(exponents[:-1]):
            total = logaddexp(a, total)
        return total
    if arg.is_Mul and all(_positive(f, definitions) for f in arg.args):
        return sympy.Add(*(_log_of(f, definitions) for f in arg.args))
    return None


def _positive(factor, definitions) -> bool:
    """exp(x), sigmoid(x), a sum of exps or a positive number, possibly raised to a power
    (an equation defined as exp or sigmoid counts as one)."""
    base = factor.base if factor.is_Pow and factor.exp.is_Number else factor
    if base.is_Number:
        return bool(base > 0)
    if _exp_arg(base, definitions) is not None or isinstance(base, sigmoid) or \
            _sigmoid_arg(base, definitions) is not None:
        return True
    return bool(base.is_Add) and all(isinstance(t, sympy.exp) for t in base.args)


def _exp_arg(expr, definitions):
    """x when `expr` is exp(x) or a symbol an equation defines as exp(x), else None."""
    if expr.is_Symbol:
        expr = definitions.get(expr)
    return expr.args[0] if isinstance(expr, sympy.exp) else None


def _log_of(factor, definitions):
    """log(factor) of a factor that is _positive, without a log of an exponential."""
    power = factor.exp if factor.is_Pow and factor.exp.is_Number else sympy.S.One
    base = factor.base if factor.is_Pow and factor.exp.is_Number else factor
    if base.is_Number:
        return power * sympy.log(base)
    inner = _exp_arg(base, definitions)
    if inner is not None:
        return power * inner
    return power * _stable_log(base, definitions)


def _sigmoid_arg(expr, definitions):
    if isinstance(expr, sigmoid):
        return expr.args[0]
    if expr.is_Symbol and isinstance(definitions.get(expr), sigmoid):
        return definitions[expr].args[0]
    return None


def _summed_product(arg, definitions, table):
    """(log-weights, their shape, axes summed) when `arg` is a sum over axes of a product
    of positive factors with an exponential among them (`bp.sum(w * exp(a))`): the sum is
    logsumexp(log-weights) over those axes. None otherwise."""
    node = definitions.get(arg) if arg.is_Symbol else arg
    if not isinstance(node, Einsum) or node.batch_sum:
        return None
    ins, out = node.subscripts
    form = single_form(ins[0], out)
    if len(set(ins)) != 1 or form is None or form[0] != "sum":
        return None
    shape = shape_of(node.operands[0], table)
    if len(form[1]) != 1 and len(form[1]) != len(shape):
        return None  # a sum over some of several axes: keep it as written
    factors = []
    for operand in node.operands:
        rhs = definitions.get(operand, operand)
        factors += sympy.Mul.make_args(rhs) if rhs.is_Mul else [operand]
    if not any(_exp_arg(f, definitions) is not None for f in factors) or \
            not all(_positive(f, definitions) for f in factors):
        return None
    log_weights = sympy.Add(*(_log_of(f, definitions) for f in factors))
    if shape_of(log_weights, table) != shape:
        return None  # the product broadcast to its shape; keep it as written
    return log_weights, shape, form[1]


def run(ir: IR) -> IR:
    """Apply the rewrites to every equation; a log-sum-exp of shaped values gets its
    operand and its node as equations of their own, just before the equation using it."""
    definitions = {eq.lhs: eq.rhs for eq in ir.forward()}
    table = ir.shapes()
    taken = ir.names()
    equations = []

    def declare(base, rhs, shape, origin):
        name = fresh_name(base, taken)
        taken.add(name)
        symbol = make_symbol(name, shape)
        equations.append(Equation(symbol, rhs, FORWARD, shape, origin, True))
        table[symbol] = shape
        return symbol

    def log_sum_exp(plan, eq):
        log_weights, shape, axes = plan
        operand = declare(f"{eq.lhs.name}_logw", log_weights, shape, eq.origin)
        axis = axes[0]
        if len(axes) != 1:  # a sum over every axis of a matrix: over its elements
            size = int(sympy.prod(shape))
            operand = declare(f"{eq.lhs.name}_logw_flat", Reshape(operand, (size,)), (size,),
                              eq.origin)
            axis = 0
        reduced = tuple(d for k, d in enumerate(table[operand]) if k != axis)
        return declare(f"{eq.lhs.name}_lse", LogSumExp(operand, axis), reduced, eq.origin)

    def visit(node, eq):
        stable = _stable_log(node.args[0], definitions)
        if stable is not None:
            return stable
        factors = sympy.Mul.make_args(node.args[0])
        plans = [_summed_product(f, definitions, table) for f in factors]
        if not any(plans) or not all(plan or _positive(f, definitions)
                                     for f, plan in zip(factors, plans)):
            return node
        return sympy.Add(*(log_sum_exp(plan, eq) if plan else _log_of(f, definitions)
                           for f, plan in zip(factors, plans)))

    for eq in ir.equations:
        rhs = eq.rhs.replace(lambda n: isinstance(n, sympy.log), lambda n, eq=eq: visit(n, eq))
        equations.append(eq.replace_rhs(rhs))
    return ir.with_equations(equations)
