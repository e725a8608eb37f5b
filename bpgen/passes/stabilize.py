"""Stabilising rewrites: forms that overflow or cancel at large arguments become forms
that do not. Runs on the forward IR, before the reverse sweep, so the derivatives are
taken of the stable forms too.

    log(sigmoid(x))          -> -softplus(-x)
    log(1 - sigmoid(x))      -> -softplus(x)
    log(1 + exp(x))          -> softplus(x)
    log(exp(a) + exp(b))     -> logaddexp(a, b)

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
    if len(terms) == 2 and len(exps) == 2:
        return logaddexp(exps[0].args[0], exps[1].args[0])
    return None


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
