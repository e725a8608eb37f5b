"""The Python/NumPy target: one standalone module `<name>.py` (numpy + math only).

Every value is an array: a per-sample value of shape S is held for the whole batch as
(N, *S) (the batch axis first), a value that is the same for every sample (a parameter,
`W1.T`) as S. Elementwise equations print as one NumPy expression each (broadcasting
lines up trailing axes; a per-sample value of lower rank gets `[:, None]`); contractions
print as `@` (BLAS) where they are matrix products, `np.dot` for a sum over samples of a
product of scalars, `np.sum` for sums, `np.einsum` otherwise. Nothing loops over samples
in Python. Lowering choices, made from the IR:

* sums over samples are placed as soon as their operands exist and every array is
  deleted after its last use, so peak memory stays near hand-written backprop's;
* a sum over samples of a value used nowhere else prints that value's expression inside
  it (`np.dot(_t0, _t0)`), without an array of per-sample values;
* a matrix product read only by the next equation prints inside it
  (`h = np.tanh(b1 + x @ W1)`), as the user wrote it;
* when every value is a scalar (the lecture's networks), `loss` and `value_and_grad` are
  also printed for one sample on plain floats through `math` (a few microseconds a call).
"""

from __future__ import annotations

from dataclasses import replace

import sympy

from ..compiler import Compiled
from sympy.printing.codeprinter import PrintMethodNotImplementedError

from ..ir import BACKWARD, IR, N_SAMPLES, TANGENT, is_batch_sum
from ..passes import one_sample
from ..nodes import Assemble
from ..tensor import Einsum, LogSumExp, Structural, matmul_form, shape_of, single_form
from .arrays import ArrayPrinter, full_subscripts
from .common import (Line, Output, Program, Target, api_data, print_expr, real_of,
                     unsupported)
from .printers import MathScalarPrinter

# -- lowering choices ------------------------------------------------------------------------
def _uses(ir: IR) -> dict:
    uses: dict = {}
    for e in [eq.rhs for eq in ir.equations] + [r.expr for r in ir.results]:
        for sym in e.free_symbols:
            uses[sym] = uses.get(sym, 0) + 1
    return uses


def summed_inline(ir: IR, batched) -> dict:
    """Per-sample scalars read only by one sum over samples: their equations (the sum
    prints their expression)."""
    uses = _uses(ir)
    by_lhs = {eq.lhs: eq for eq in ir.equations}
    out = {}
    for eq in ir.equations:
        if is_batch_sum(eq.rhs) and len(eq.rhs.operands) == 1 and not eq.rhs.subscripts[0][0]:
            (operand,) = eq.rhs.operands
            source = by_lhs.get(operand)
            if source is not None and uses.get(operand) == 1 and not source.shape and \
                    operand in batched and not isinstance(source.rhs, Structural):
                out[eq.lhs] = source
    return out


def matmuls_inline(ir: IR, printer: ArrayPrinter) -> dict:
    """Matrix products that only the next equation reads, as text to print in its place:
    `h = np.tanh(b1 + x @ W1)`, the way the user wrote it."""
    uses = _uses(ir)
    out = {}
    batched = printer.batched
    for eq, reader in zip(ir.equations, ir.equations[1:]):
        if eq.anonymous and isinstance(eq.rhs, Einsum) and not eq.rhs.batch_sum \
                and uses.get(eq.lhs) == 1 and eq.lhs in reader.rhs.free_symbols \
                and not isinstance(reader.rhs, Structural) and reader.role not in BACKWARD \
                and reader.shape == eq.shape and (eq.lhs in batched) == (reader.lhs in batched):
            ins, o = full_subscripts(eq.rhs, batched)
            if matmul_form(ins, o, [len(s) for s in ins]) is not None:
                out[eq.lhs] = printer.einsum(eq.rhs)
    return out


def early(ir: IR) -> list:
    """The equations with each sum over samples moved up to just after its operands."""
    position: dict = {}
    front: list = []  # sums of inputs only
    slots: list[list] = []
    for eq in ir.equations:
        at = max((position[s] for s in eq.rhs.free_symbols if s in position), default=-1)
        if is_batch_sum(eq.rhs) and at < len(slots) - 1:
            (slots[at] if at >= 0 else front).append(eq)
            position[eq.lhs] = at
        else:
            slots.append([eq])
            position[eq.lhs] = len(slots) - 1
    return front + [eq for slot in slots for eq in slot]


def rhs_text(printer: ArrayPrinter, eq, summed, is_batched: bool) -> str:
    """The text of an equation's right-hand side (`summed`: the equation whose
    per-sample value it sums, printed inside the sum)."""
    if summed is not None:
        printer.rank = 0
        return printer.batch_sum(summed.rhs)
    if isinstance(eq.rhs, Structural):
        return printer.structural(eq.rhs)
    printer.rank = len(eq.shape)
    text = printer.doprint(eq.rhs)
    rhs_batched = bool(eq.rhs.free_symbols & printer.batched)
    constant = not eq.rhs.free_symbols - {N_SAMPLES}  # a number
    if shape_of(eq.rhs, printer.shapes) != eq.shape or (is_batched and not rhs_batched):
        full = (("_n",) if is_batched else ()) + tuple(str(d) for d in eq.shape)
        return printer.spell_broadcast(text, full, constant)
    return printer.spell_number(text) if constant else text


def program(ir: IR, names: dict, free_memory: bool, dialect=ArrayPrinter,
            one: bool = False) -> Program:
    """The lines of one array function and what it returns, spelled by `dialect` (a
    subclass of ArrayPrinter). `one`: `ir` is specialised to one sample (passes/one_sample)
    and every value is an array of its own shape, without a batch axis."""
    shapes = ir.shapes()
    batched = set() if one else ir.batched()
    if free_memory:
        ir = ir.with_equations(early(ir))
    summed = summed_inline(ir, batched) if free_memory else {}
    printer = dialect(names, shapes, batched)
    printer.inline = inline = matmuls_inline(ir, printer)
    by_lhs = {eq.lhs: eq for eq in ir.equations}
    skipped = set(inline) | {source.lhs for source in summed.values()}
    lines, reads, in_backward, in_tangent = [], [], False, False
    for eq in ir.equations:
        in_backward = in_backward or eq.role in BACKWARD
        in_tangent = in_tangent or eq.role == TANGENT
        if eq.lhs in skipped:
            continue
        is_batched = eq.lhs in batched
        if isinstance(eq.rhs, Assemble):
            lines += [replace(ln, tangent=in_tangent)
                      for ln in printer.assemble(eq, in_backward)]
            reads.extend([set(eq.rhs.free_symbols)] * (len(eq.rhs.operands) + 1))
            continue
        try:
            text = rhs_text(printer, eq, summed.get(eq.lhs), is_batched)
        except PrintMethodNotImplementedError as exc:
            raise unsupported(exc, printer.target, eq.origin) from None
        lines.append(Line(names[eq.lhs], text, is_batched, in_backward, in_tangent))
        symbols = set(eq.rhs.free_symbols)
        for s in list(symbols & skipped):  # what an inlined equation reads is read here
            symbols |= by_lhs[s].rhs.free_symbols
        reads.append(symbols)
    printer.rank = 0
    outputs = []
    for r in ir.results:
        if r.expr == 0 and r.kind == "grad":
            shape = next(p.shape for p in ir.params if p.name == r.key)
            text = printer.spell_zeros(tuple(map(str, shape))) if shape else "0.0"
        else:
            text = print_expr(printer, r.expr, None, printer.target)
        outputs.append(Output(r.key, text, bool(r.expr.free_symbols & batched), r.kind))
    if free_memory:
        needed = set().union(*(r.expr.free_symbols for r in ir.results))
        lines = with_deletes(lines, reads,
                             {s for s in batched if s in by_lhs} - needed - skipped, names)
    return Program(tuple(lines), tuple(outputs), frozenset(printer.helpers))


def with_deletes(lines, reads, arrays, names) -> list:
    """`del` each per-sample array after its last use (large batches: fresh memory for
    every array costs more than the arithmetic)."""
    last: dict = {}
    for k, symbols in enumerate(reads):
        for s in symbols & arrays:
            last[s] = k
    dead: dict[int, list] = {}
    for s, k in last.items():
        dead.setdefault(k, []).append(names[s])
    out = []
    for k, line in enumerate(lines):
        out.append(line)
        if dead.get(k):
            out.append(Line("", "del " + ", ".join(sorted(dead[k])), False, line.backward,
                            line.tangent))
    return out


def scalar_program(ir: IR, names: dict) -> Program:
    """One sample on plain floats through `math` (every value is a scalar)."""
    ir = one_sample.run(ir)
    printer = MathScalarPrinter(names)
    lines, in_backward = [], False
    for eq in ir.equations:
        in_backward = in_backward or eq.role in BACKWARD
        lines.append(Line(names[eq.lhs], print_expr(printer, eq.rhs, eq.origin, "numpy"),
                          False, in_backward))
    outputs = [Output(r.key, print_expr(printer, r.expr, None, "numpy"), False, r.kind)
               for r in ir.results]
    helpers = set(printer.helpers)
    if "math" in printer.module_imports or helpers & MathScalarPrinter.MATH_HELPERS:
        helpers.add("math")
    return Program(tuple(lines), tuple(outputs), frozenset(helpers))


def arrays_program(ir: IR, names: dict, dialect) -> Program:
    """One sample of a network with shaped values, on arrays without a batch axis: the
    fewest NumPy calls (a weight's gradient is an outer product, not a matrix product over
    a batch of one). A result that would be an argument, or another result, is copied:
    the caller owns what it gets."""
    ir = one_sample.run(ir)
    prog = program(ir, names, False, dialect, one=True)
    arguments = {v.symbol for v in ir.inputs + ir.params}
    shapes, by_lhs = ir.shapes(), {eq.lhs: eq.rhs for eq in ir.equations}

    def array(expr):
        """The value whose array `expr` prints as (through `b = a` and copies)."""
        while True:
            rhs = by_lhs.get(expr)
            if isinstance(rhs, Einsum) and len(rhs.operands) == 1 and \
                    single_form(rhs.subscripts[0][0], rhs.subscripts[1]) == ("copy",):
                rhs = rhs.operands[0]
            if not isinstance(rhs, sympy.Symbol):
                return expr
            expr = rhs
    declared = {v.name: v.shape for v in ir.params}
    seen, outputs = set(), []
    for r, out in zip(ir.results, prog.outputs):
        text, root = out.text, array(r.expr)
        shape = declared.get(r.key) if r.kind == "grad" and r.expr != 0 else None
        if shape and shape_of(r.expr, shapes) != shape:  # a number: the same everywhere
            text = dialect(names, shapes, set()).spell_full(text, tuple(map(str, shape)))
        elif shape:
            # the caller's own array, or one already returned: a copy; a view (of an
            # argument, or read-only by np.broadcast_to): a copy when it is one (_own)
            text = f"{text}.copy()" if root in arguments | seen else f"_own({text})"
        seen.add(root)
        outputs.append(replace(out, text=text))
    helpers = prog.helpers | {"_own"} if any(o.text.startswith("_own(") for o in outputs) \
        else prog.helpers
    return Program(prog.lines, tuple(outputs), frozenset(helpers))


def prepare(compiled: Compiled) -> dict:
    names, dialect = compiled.names, ArrayPrinter.of(compiled.dtype)
    programs = {k: program(compiled.programs[k], names, k != "forward", dialect)
                for k in ("loss", "value_and_grad", "forward", "hvp")
                if k in compiled.programs}
    scalar = arrays = None
    if compiled.ir.all_scalar():
        if compiled.dtype == "float64":  # `math` has only doubles
            scalar = {k: scalar_program(compiled.programs[k], names)
                      for k in ("loss", "value_and_grad")}
    else:
        arrays = {k: arrays_program(compiled.programs[k], names, dialect)
                  for k in ("loss", "value_and_grad")}
    everything = list(programs.values()) + [p for one in (scalar, arrays) if one
                                            for p in one.values()]
    helpers = set().union(*(p.helpers for p in everything))
    if "_erf" in helpers:
        helpers.add("math")
    if any(isinstance(eq.rhs, LogSumExp) for p in compiled.programs.values()
           for eq in p.equations):
        helpers.add("_logsumexp")
    return dict(api_data(compiled), programs=programs, one_sample=scalar, one_arrays=arrays,
                helpers=sorted(helpers), contiguous=False, directions=directions(compiled),
                exp_limit=real_of(compiled).exp_limit)


def directions(compiled: Compiled) -> list[str]:
    """The identifiers of hvp's direction, one per parameter (its extra arguments)."""
    hvp = compiled.programs.get("hvp")
    return [] if hvp is None else [compiled.names[v.symbol]
                                   for v in hvp.params[len(compiled.ir.params):]]


TARGET = Target("numpy", (("numpy_module.py.j2", "{name}.py", "numpy", "#"),), prepare)
