"""The C target: `<name>.h`, `<name>.c` (C99, doubles, no allocation, no globals) and
`<name>_c.py`, a ctypes wrapper with the same Python API as the NumPy module.

The batch is tiled into blocks of BLOCK samples. Inside a block every per-sample equation
is a loop over small local arrays (fused with its neighbours unless it calls a function),
which gcc vectorises; values that do not vary by sample are computed once, before the
blocks. Sums over samples accumulate in LANES partial sums, a fixed order that vectorises
without -ffast-math. tanh/exp/sigmoid are bpgen's own inline, vectorisable versions
(range reduction + polynomial, IEEE special values kept), so no fast-math is needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import sympy

from ..compiler import Compiled
from ..ir import IR, TEMP, Equation
from .common import make_program, render_c_files
from .printers import CPrinter

TARGET = "c"
LANES = 8
STACK_BUDGET = 96 * 1024  # bytes of block arrays per kernel
_CALL = re.compile(r"\b[A-Za-z_]\w*\(")
#: C helpers and the helpers each one needs.
HELPER_DEPS = {"bp_exp": ("bp_expm1_poly",), "bp_tanh": ("bp_expm1_poly",),
               "bp_sigmoid": ("bp_exp", "bp_expm1_poly"),
               "bp_softplus": ("bp_exp", "bp_expm1_poly"),
               "bp_logaddexp": ("bp_exp", "bp_expm1_poly")}


@dataclass(frozen=True)
class Kernel:
    """One C function body: hoisted scalars, block arrays, loops, and outputs."""

    uniform: list  # [(lhs, rhs)] computed once per call
    arrays: list  # block-local arrays
    loops: list  # [[(lhs, rhs), ...], ...] each one loop over the block
    outputs: list  # Output records (text is a name for batched ones)
    helpers: frozenset
    params: list  # [(index, identifier)] of the parameters this kernel reads
    inputs: list  # [(index, identifier)] of the inputs this kernel reads


def _materialise_results(ir: IR) -> IR:
    """Batched results that are expressions get an equation, so a block array holds them."""
    batched = ir.batched()
    extra, results = [], []
    for k, r in enumerate(ir.results):
        if r.expr.free_symbols & batched and not (r.expr.is_Symbol and r.expr in
                                                  {e.lhs for e in ir.equations}):
            sym = sympy.Symbol(f"_r{k}", real=True)
            extra.append(Equation(sym, r.expr, TEMP))
            r = replace(r, expr=sym)
        results.append(r)
    return ir.with_equations(ir.equations + tuple(extra), results)


def kernel(ir: IR, names: dict, outputs_in_place: bool) -> Kernel:
    ir = _materialise_results(ir)
    batched = ir.batched()
    table = dict(names)
    for eq in ir.equations:
        table.setdefault(eq.lhs, eq.lhs.name)  # materialised results keep their _rN name
    texts = {s: (f"{t}[_i]" if s in batched else t) for s, t in table.items()}
    printer = CPrinter(texts)
    program = make_program(ir, printer, TARGET)
    outputs = {o.text for o in program.outputs if o.batched}
    uniform, arrays, loops = [], [], []
    for eq, line in zip(ir.equations, program.lines):
        if not line.batched:
            uniform.append((line.lhs, line.rhs))
            continue
        name = table[eq.lhs]
        if not (outputs_in_place and f"{name}[_i]" in outputs):
            arrays.append(name)
        if _CALL.search(line.rhs) or not loops or loops[-1][-1][2]:
            loops.append([])
        loops[-1].append((line.lhs, line.rhs, bool(_CALL.search(line.rhs))))
    loops = [[(lhs, rhs) for lhs, rhs, _ in loop] for loop in loops]
    outs = [replace(o, text=o.text.removesuffix("[_i]")) for o in program.outputs]
    read = set().union(*(e.rhs.free_symbols for e in ir.equations),
                       *(r.expr.free_symbols for r in ir.results))
    params = [(k, names[v.symbol]) for k, v in enumerate(ir.params) if v.symbol in read]
    inputs = [(k, names[v.symbol]) for k, v in enumerate(ir.inputs) if v.symbol in read]
    return Kernel(uniform, arrays, loops, outs, program.helpers, params, inputs)


def block_size(kernels) -> int:
    arrays = max(len(k.arrays) for k in kernels) or 1
    block = 256
    while block > 16 and block * 8 * arrays > STACK_BUDGET:
        block //= 2
    return block


def helpers_needed(kernels) -> list[str]:
    used = set()
    for k in kernels:
        for h in k.helpers:
            used.add(h)
            used.update(HELPER_DEPS.get(h, ()))
    return sorted(used)


def emit(compiled: Compiled) -> list:
    ir = compiled.ir
    kernels = {"loss": kernel(compiled.programs["loss"], compiled.names, False),
               "forward": kernel(compiled.programs["forward"], compiled.names, True),
               "value_and_grad": kernel(compiled.programs["value_and_grad"],
                                        compiled.names, False)}
    data = dict(
        name=ir.name, guard=f"BPGEN_{ir.name.upper()}_H", source=ir.source,
        reduce=ir.reduce, lanes=LANES, block=block_size(kernels.values()),
        params=[(v.name, compiled.names[v.symbol]) for v in ir.params],
        inputs=[(v.name, compiled.names[v.symbol]) for v in ir.inputs],
        kernels=kernels, helpers=helpers_needed(kernels.values()),
        values=[o.key for o in kernels["forward"].outputs], contiguous=True)
    return render_c_files(ir.name,
                          ("c_header.h.j2", "c_source.c.j2", "c_wrapper.py.j2"), data)
