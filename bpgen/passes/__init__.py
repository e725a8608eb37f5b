"""Optimisation passes: each module has a pure `run(ir) -> ir`; PIPELINE runs them in order.

Before the reverse sweep, `stabilize` rewrites forms that overflow at large arguments
(log(sigmoid(x)) -> -softplus(-x), ...) and `fuse` joins a sum of three or more matrix
products of equal shapes into one product of concatenations (im2col). After the sweep,
PIPELINE:

    reuse  — backward expressions read stored forward values (tanh(s1) -> z1)
    fold   — equations that are constants are folded into their uses
    dce    — only what the results need is kept
    cse    — repeated subexpressions become temporaries _t0, _t1, ...
    copies — `a = b` left by the sweep and CSE disappears
    reuse  — once more: CSE and copies can make a backward expression the very right-hand
             side of a forward equation only now (a softmax's exp(z - lse) when the logits
             were written twice, once inline)
    dce    — once more, for what the copies and the second reuse made dead
"""

from __future__ import annotations

from . import copies, cse, dce, fold, fuse, reuse, stabilize  # noqa: F401

PIPELINE = (reuse, fold, dce, cse, copies, reuse, dce)


def optimize(ir, passes=PIPELINE, check=True):
    for p in passes:
        ir = p.run(ir)
        if check:
            ir.validate()
    return ir
