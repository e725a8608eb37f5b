"""The compiler driver: a declared `Network` in, optimised IR programs out.

    from_network  ->  stabilize  ->  fuse  ->  differentiate  ->  passes.optimize  ->  (emit)

`compile_network` builds the programs every target emits: `loss` (the loss only),
`forward` (every forward value), `value_and_grad` (the loss and every gradient) and, for
a network declared with hvp=True, `hvp` (the Hessian times a direction of the
parameters: the tangent sweep of value_and_grad's IR before the passes, `bpgen.jvp`).
One path for every network: a scalar is a value of shape ().
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from sympy.core.cache import clear_cache
from sympy.core.parameters import distribute

from . import naming
from .autodiff import differentiate
from .dsl import Network
from .errors import Diagnostic
from .ir import FORWARD, IR, LOSS, TEMP, Result, depends_on, from_network
from .jvp import tangents
from .passes import fuse, optimize, stabilize

PROGRAMS = ("loss", "forward", "value_and_grad", "hvp")


@dataclass(frozen=True)
class Compiled:
    """Everything the emitters need for one network."""

    ir: IR  # the forward IR, as declared
    programs: dict[str, IR]
    names: dict  # symbol -> identifier, shared by all programs and targets
    diagnostics: tuple[Diagnostic, ...] = ()
    timings: dict[str, float] = field(default_factory=dict, compare=False)
    dtype: str = "float64"  # the real type of the generated code (emit.common.REALS)


def compile_network(net: Network, source: str, progress=None, dtype="float64") -> Compiled:
    """`progress(stage)`, if given, is called as each stage starts. `dtype`: the real
    type of the code to emit, "float64" or "float32"; it changes no IR."""
    with exact_arithmetic():
        return replace(_compile(net, source, progress), dtype=dtype)


@contextmanager
def exact_arithmetic():
    """SymPy without its automatic distribution of a number over a sum.

    SymPy rewrites 10**9*(1 - t**2) as 10**9 - 10**9*t**2, which cancels catastrophically
    where t**2 is close to 1 (the gradient of 10**6*tanh(1000*w) near w = 0.01 would be 0).
    Every expression bpgen builds keeps the factored form the derivative rules produced.
    SymPy's cache may hold a product built earlier with distribution on, so it is cleared.
    """
    clear_cache()
    with distribute(False):
        yield
    clear_cache()


def _compile(net: Network, source: str, progress=None) -> Compiled:
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    stages = iter(("autodiff", "passes", ""))
    if progress:
        progress("front end")

    def lap(stage: str):
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = timings.get(stage, 0.0) + now - clock
        clock = now
        if progress:
            progress(next(stages))

    ir = from_network(net, source)
    diagnostics = list(net.diagnostics) + unused_warnings(ir)
    ir = fuse.run(stabilize.run(ir).validate()).validate()
    lap("front end")
    grad_ir = differentiate(ir)
    hvp_ir = tangents(grad_ir) if net.hvp else None
    lap("autodiff")
    every_value = replace(ir, results=tuple(
        Result(eq.lhs.name, eq.lhs, "value") for eq in ir.forward() if not eq.anonymous))
    programs = {"loss": optimize(ir), "forward": optimize(every_value),
                "value_and_grad": optimize(grad_ir)}
    if hvp_ir is not None:
        programs["hvp"] = optimize(hvp_ir)
    lap("passes")
    temporaries = {eq.lhs for p in programs.values() for eq in p.equations if eq.role == TEMP}
    # hvp's parameters and equations after the others: their identifiers stay as they were
    order = [v.symbol for v in ir.inputs + ir.params + ir.constants] + [
        eq.lhs for eq in grad_ir.equations]
    if hvp_ir is not None:
        order += [v.symbol for v in hvp_ir.params] + [eq.lhs for eq in hvp_ir.equations]
    names = naming.identifiers(order, temporaries, ir.name)
    return Compiled(ir, programs, names, tuple(diagnostics), timings)


def unused_warnings(ir: IR) -> list[Diagnostic]:
    """Equations declared before the loss that do not reach it, and inputs that no
    equation reads."""
    used = depends_on(ir, ir.loss)
    loss_index = next(k for k, e in enumerate(ir.equations) if e.role == LOSS)
    read = set().union(*(eq.rhs.free_symbols for eq in ir.equations))
    return [Diagnostic(f"equation {eq.lhs.name!r} does not affect the loss "
                       f"{ir.loss.name!r}; it is computed by forward() only", eq.origin)
            for eq in ir.equations[:loss_index]
            if eq.role == FORWARD and eq.lhs not in used and not eq.anonymous] + [
        Diagnostic(f"input {v.name!r} is not used by any equation (calls must still give "
                   "it)", v.origin) for v in ir.inputs if v.symbol not in read]
