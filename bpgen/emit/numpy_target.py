"""The Python/NumPy target: one standalone module `<name>.py` (numpy + math only).

Each program is emitted twice: a scalar path on plain floats through `math` (one sample,
a few microseconds per call) and a batch path on NumPy arrays (any number of samples,
no Python loop over samples). The public functions pick the path by the data's type.
"""

from __future__ import annotations

from dataclasses import replace

import sympy

from ..compiler import Compiled
from ..ir import IR
from ..naming import fresh
from .common import File, Line, Program, make_program, render
from .printers import MathScalarPrinter, NumpyArrayPrinter

TARGET = "numpy"


def programs(compiled: Compiled, printer_class) -> dict[str, Program]:
    return {name: make_program(ir, printer_class(compiled.names), TARGET)
            for name, ir in compiled.programs.items()}


def batch_programs(compiled: Compiled) -> dict[str, Program]:
    """Batch programs whose sums over samples are dot products where they can be."""
    out = {}
    for name, ir in compiled.programs.items():
        printer = NumpyArrayPrinter(compiled.names)
        if name == "forward":  # per-sample values, not sums
            out[name] = make_program(ir, printer, TARGET)
            continue
        ir = inline_reduced(ir)
        program = make_program(ir, printer, TARGET)
        out[name] = early_sums(ir, program, printer, set(compiled.names.values()))
    return out


def early_sums(ir: IR, program: Program, printer, taken: set) -> Program:
    """Sum each batched result as soon as its operands exist, and free arrays after their
    last use: peak memory stays near what a hand-written backprop holds (on large
    batches, fresh memory for every array costs more than the arithmetic)."""
    batched = ir.batched()
    position = {eq.lhs: k for k, eq in enumerate(ir.equations)}
    # after[k]: sums placed right after line k (k = -1: before every line)
    after: dict[int, list[Line]] = {}
    last_use: dict = {}
    for k, eq in enumerate(ir.equations):
        for s in eq.rhs.free_symbols & batched:
            last_use[s] = k
    outputs = []
    for o, r in zip(program.outputs, ir.results):
        if not o.batched:
            outputs.append(o)
            continue
        at = max(position.get(s, -1) for s in r.expr.free_symbols)
        total = fresh(f"sum_{o.key if o.key.isidentifier() and o.key.isascii() else 'r'}",
                      taken)
        after.setdefault(at, []).append(
            Line(total, sum_text(r.expr, batched, printer), False,
                 at >= 0 and program.lines[at].backward))
        outputs.append(replace(o, text=total))
        for s in r.expr.free_symbols & batched:
            last_use[s] = max(last_use.get(s, -1), at)
    dead: dict[int, list[str]] = {}
    for s, k in last_use.items():
        if s in position:  # inputs belong to the caller
            dead.setdefault(k, []).append(printer.names[s])
    lines = list(after.get(-1, ()))
    for k, line in enumerate(program.lines):
        lines.append(line)
        lines.extend(after.get(k, ()))
        if dead.get(k):
            lines.append(Line("", "del " + ", ".join(sorted(dead[k])), False, line.backward))
    return replace(program, lines=tuple(lines), outputs=tuple(outputs),
                   helpers=program.helpers | frozenset(printer.helpers))


def inline_reduced(ir: IR) -> IR:
    """Results defined by an equation nothing else reads take that equation's rhs.

    `d_w11 = d_s1*x1` summed over samples is `np.dot(d_s1, x1)`: one pass, no array.
    """
    uses: dict = {}
    for eq in ir.equations:
        for s in eq.rhs.free_symbols:
            uses[s] = uses.get(s, 0) + 1
    by_lhs = {eq.lhs: eq for eq in ir.equations}
    inline = {r.expr: by_lhs[r.expr].rhs for r in ir.results
              if r.expr in by_lhs and not uses.get(r.expr)
              and [x.expr for x in ir.results].count(r.expr) == 1}
    if not inline:
        return ir
    return ir.with_equations([eq for eq in ir.equations if eq.lhs not in inline],
                             [replace(r, expr=inline.get(r.expr, r.expr)) for r in ir.results])


def sum_text(expr, batched, printer) -> str:
    """NumPy text for the sum over samples of a batched per-sample expression."""
    factors = []
    for f in sympy.Mul.make_args(expr):
        if f.is_Pow and f.exp == 2 and f.base.free_symbols & batched:
            factors += [f.base, f.base]
        else:
            factors.append(f)
    varying = [f for f in factors if f.free_symbols & batched]
    coefficient = sympy.Mul(*[f for f in factors if not f.free_symbols & batched])
    if len(varying) >= 2:
        text = f"np.dot({printer.doprint(varying[0])}, {printer.doprint(sympy.Mul(*varying[1:]))})"
    else:
        text = f"np.sum({printer.doprint(expr if coefficient == 1 else varying[0])})"
    if coefficient != 1:
        c = printer.parenthesize(coefficient, sympy.printing.precedence.PRECEDENCE["Mul"])
        text = f"{c}*{text}"
    return text


def emit(compiled: Compiled) -> list[File]:
    ir = compiled.ir
    scalar = programs(compiled, MathScalarPrinter)
    batch = batch_programs(compiled)
    helpers = set().union(*(p.helpers for p in list(scalar.values()) + list(batch.values())))
    uses_math = bool(helpers & {"_sigmoid_s", "_softplus_s", "_logaddexp_s", "_erf"}) or any(
        "math." in text for p in scalar.values()
        for text in [ln.rhs for ln in p.lines] + [o.text for o in p.outputs])
    body = render(
        "numpy_module.py.j2",
        name=ir.name, source=ir.source, reduce=ir.reduce,
        params=[(v.name, compiled.names[v.symbol]) for v in ir.params],
        inputs=[(v.name, compiled.names[v.symbol]) for v in ir.inputs],
        scalar=scalar, batch=batch, helpers=sorted(helpers), uses_math=uses_math,
        contiguous=False)
    return [File(f"{ir.name}.py", "numpy", "#", body)]
