"""One sample: a program specialised to a batch of one (n = 1).

A sum over the samples of one sample is that sample's value (`Σ d_s1*x1` is `d_s1*x1`)
and the mean's 1/n is 1. Applied to a network whose values are all scalars, the result
is the lecture's per-sample backward pass, line for line: the NumPy module prints it on
plain floats (the `math` fast path) and `explain` quotes it. A network with shaped values
gets the same: a sum over the samples of a per-sample product (`Σ_n h_n ⊗ d_n`, a weight's
gradient) is that product for one sample, and the NumPy module prints the program on
arrays without a batch axis (the one-sample path).
"""

from __future__ import annotations

import sympy

from ..ir import IR, N_SAMPLES, is_batch_sum
from ..tensor import Einsum
from . import copies, dce, fold


def _single(expr):
    if is_batch_sum(expr):
        if all(not s for s in expr.subscripts[0]) and not expr.subscripts[1]:
            return sympy.Mul(*expr.operands)
        return Einsum(expr.spec, False, *expr.operands)  # Σ_n h ⊗ d over one n: h ⊗ d
    return expr.xreplace({N_SAMPLES: sympy.S.One})


def run(ir: IR) -> IR:
    ir = ir.with_equations([eq.replace_rhs(_single(eq.rhs)) for eq in ir.equations],
                           [r.__class__(r.key, r.expr.xreplace({N_SAMPLES: sympy.S.One}),
                                        r.kind) for r in ir.results])
    for p in (fold, copies, dce):
        ir = p.run(ir)
    return ir.validate()
