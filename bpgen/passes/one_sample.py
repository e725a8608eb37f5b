"""One sample: a program specialised to a batch of one (n = 1).

A sum over the samples of one sample is that sample's value (`Σ d_s1*x1` is `d_s1*x1`)
and the mean's 1/n is 1. Applied to a network whose values are all scalars, the result
is the lecture's per-sample backward pass, line for line: the NumPy module prints it on
plain floats (the `math` fast path) and `explain` quotes it.
"""

from __future__ import annotations

import sympy

from ..ir import IR, N_SAMPLES, is_batch_sum
from . import copies, dce, fold


def _single(expr):
    if is_batch_sum(expr) and all(not s for s in expr.subscripts[0]) \
            and not expr.subscripts[1]:
        return sympy.Mul(*expr.operands)
    return expr.xreplace({N_SAMPLES: sympy.S.One})


def run(ir: IR) -> IR:
    ir = ir.with_equations([eq.replace_rhs(_single(eq.rhs)) for eq in ir.equations],
                           [r.__class__(r.key, r.expr.xreplace({N_SAMPLES: sympy.S.One}),
                                        r.kind) for r in ir.results])
    for p in (fold, copies, dce):
        ir = p.run(ir)
    return ir.validate()
