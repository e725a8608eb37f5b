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

A rewrite also looks through an equation: with `p = sigmoid(s)` declared, `log(p)` and
`log(1 - p)` in a later equation become `-softplus(-s)` and `-softplus(s)` (binary
cross-entropy at logits of ±1000 stays finite). `p` itself is still computed.
"""

from __future__ import annotations

import sympy

from ..functions import logaddexp, sigmoid, softplus
from ..ir import IR


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
    """exp(x), sigmoid(x) or a sum of exps, possibly raised to a power."""
    base = factor.base if factor.is_Pow and factor.exp.is_Number else factor
    if isinstance(base, (sympy.exp, sigmoid)) or _sigmoid_arg(base, definitions) is not None:
        return True
    return bool(base.is_Add) and all(isinstance(t, sympy.exp) for t in base.args)


def _log_of(factor, definitions):
    power = factor.exp if factor.is_Pow and factor.exp.is_Number else sympy.S.One
    base = factor.base if factor.is_Pow and factor.exp.is_Number else factor
    if isinstance(base, sympy.exp):
        return power * base.args[0]
    return power * _stable_log(base, definitions)


def _sigmoid_arg(expr, definitions):
    if isinstance(expr, sigmoid):
        return expr.args[0]
    if expr.is_Symbol and isinstance(definitions.get(expr), sigmoid):
        return definitions[expr].args[0]
    return None


def run(ir: IR) -> IR:
    definitions = {eq.lhs: eq.rhs for eq in ir.forward()}

    def rewrite(expr):
        def visit(node):
            if isinstance(node, sympy.log):
                stable = _stable_log(node.args[0], definitions)
                if stable is not None:
                    return stable
            return None
        return expr.replace(lambda n: visit(n) is not None, visit)

    return ir.with_equations([eq.replace_rhs(rewrite(eq.rhs)) for eq in ir.equations])
