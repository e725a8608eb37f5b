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
from math import prod

import sympy
from sympy.printing.precedence import PRECEDENCE

from ..compiler import Compiled
from ..ir import BACKWARD, IR, N_SAMPLES, TANGENT, is_batch_sum
from ..passes import one_sample
from ..nodes import Assemble, Concat, Extreme, Index, key_text
from ..tensor import (Einsum, LogSumExp, Reshape, Structural, matmul_form, shape_of,
                      single_form)
from .common import Line, Output, Program, Target, api_data, print_expr
from .printers import MathScalarPrinter, NumpyArrayPrinter

BATCH = "Z"  # the batch axis's letter in full einsum subscripts


class ArrayPrinter(NumpyArrayPrinter):
    """Symbols of lower per-sample rank than the equation get new axes after the batch;
    `inline` symbols print as the text that defines them."""

    def __init__(self, names, shapes, batched, inline=None):
        super().__init__(names)
        self.shapes, self.batched, self.rank = shapes, batched, 0
        self.inline = inline or {}

    def parenthesize(self, item, level, strict=False):
        if item in self.inline and level >= PRECEDENCE["Mul"]:
            return f"({self.inline[item]})"  # `@` binds like `*` in Python
        return super().parenthesize(item, level, strict)

    def _print_Symbol(self, expr):
        if expr == N_SAMPLES:
            return "_n"
        if expr in self.inline:
            return self.inline[expr]
        name = self.names[expr]
        missing = self.rank - len(self.shapes.get(expr, ()))
        if expr in self.batched and missing > 0:
            return f"{name}[:{', None' * missing}]"
        return name


# -- structural operations -----------------------------------------------------------------
def full_subscripts(node: Einsum, batched: set) -> tuple[list[str], str]:
    """The einsum subscripts of the batch arrays: 'Z' leads each per-sample operand."""
    ins, out = node.subscripts
    flags = [op in batched for op in node.operands]
    ins = [BATCH + s if f else s for s, f in zip(ins, flags)]
    if any(flags) and not node.batch_sum:
        out = BATCH + out
    return ins, out


def einsum_text(node: Einsum, names, batched, shapes) -> str:
    ins, out = full_subscripts(node, batched)
    texts = [names[op] for op in node.operands]
    sizes = node.sizes(shapes)
    if len(ins) == 1:
        (a,), (t,) = ins, texts
        form = single_form(a, out)
        if form == ("copy",):
            return t
        if form == ("transpose",):
            return f"{t}.T"
        if form is not None:
            axes = form[1]
            if len(axes) == len(a):
                return f"np.sum({t})"
            if len(a) - 1 in axes:  # NumPy's einsum sums short rows faster than np.sum
                return f"np.einsum('{a}->{out}', {t})"
            return f"np.sum({t}, axis={axes[0] if len(axes) == 1 else axes})"
    if len(ins) == 2 and ins[0] == ins[1] == BATCH and not out:
        return f"np.dot({texts[0]}, {texts[1]})"  # a sum over samples of a product
    form = matmul_form(ins, out, [len(s) for s in ins])
    if form is not None:
        p, q, tp, tq = form
        if len(ins[p]) > 2 and len(ins[q]) == 2 and not tq:
            # a stack of matrices times one matrix is one matrix product of the rows:
            # NumPy's matmul would multiply the stack's matrices one by one
            rows = f"{texts[p]}.reshape((-1, {sizes[ins[p][-1]]}))"
            dims = tuple_text(tuple(str(sizes.get(c, -1)) for c in out[:-1]) +
                              (str(sizes[out[-1]]),))
            return f"({rows} @ {texts[q]}).reshape({dims})"
        return f"{texts[p]}{'.T' if tp else ''} @ {texts[q]}{'.T' if tq else ''}"
    flat = flat_contraction(ins, out, sizes, texts)
    if flat is not None:
        return flat
    if set(out) == set("".join(ins)) and all(out.endswith(s.lstrip(BATCH)) for s in ins):
        # nothing summed: a broadcasting product (per-sample axes line up at the end)
        factors = []
        for s, t in zip(ins, texts):
            missing = len(out) - len(s)
            factors.append(f"{t}[:{', None' * missing}]" if s.startswith(BATCH) and missing
                           else t)
        return "*".join(factors)
    return f"np.einsum('{','.join(ins)}->{out}', {', '.join(texts)})"


def flat_contraction(ins, out, sizes, texts):
    """A contraction over axes that lead both operands, in the same order, leaving one
    block of free axes on each side (a parameter's gradient of a stack of matrices,
    `einsum('Zpik,Zpij->jk', d, a)`): one matrix product of the operands flattened,
    `a.reshape((-1, J)).T @ d.reshape((-1, K))`, which BLAS does at full speed."""
    if len(ins) != 2:
        return None
    a, b = ins
    lead = 0
    while lead < min(len(a), len(b)) and a[lead] == b[lead] and a[lead] not in out:
        lead += 1
    rest_a, rest_b = a[lead:], b[lead:]
    if not lead or set(rest_a) & set(rest_b) or set(a[:lead]) & set(rest_a + rest_b) \
            or out not in (rest_a + rest_b, rest_b + rest_a) or not rest_a or not rest_b:
        return None
    first, second = ((0, rest_a), (1, rest_b)) if out == rest_a + rest_b else \
        ((1, rest_b), (0, rest_a))

    def size(letters):
        return str(prod(sizes[c] for c in letters))
    text = (f"{texts[first[0]]}.reshape((-1, {size(first[1])})).T @ "
            f"{texts[second[0]]}.reshape((-1, {size(second[1])}))")
    if len(out) == 2:
        return text
    return f"({text}).reshape({tuple_text(tuple(str(sizes[c]) for c in out))})"


def structural_text(rhs, names, batched, shapes) -> str:
    if isinstance(rhs, Einsum):
        return einsum_text(rhs, names, batched, shapes)
    if isinstance(rhs, Concat):
        lead = any(op in batched for op in rhs.operands)
        parts = [names[op] if op in batched or not lead else  # the same for every sample
                 f"np.broadcast_to({names[op]}, "
                 f"{tuple_text(('_n',) + tuple(map(str, shapes[op])))})"
                 for op in rhs.operands]
        return f"np.concatenate([{', '.join(parts)}], axis={rhs.axis + int(lead)})"
    (operand,) = rhs.operands
    is_batched = operand in batched
    if isinstance(rhs, Reshape):
        dims = (("-1",) if is_batched else ()) + tuple(str(d) for d in rhs.shape)
        return f"{names[operand]}.reshape({tuple_text(dims)})"
    if isinstance(rhs, LogSumExp):
        return f"_logsumexp({names[operand]}, {rhs.axis + int(is_batched)})"
    if isinstance(rhs, Index):
        lead = ":, " if is_batched else ""
        return f"{names[operand]}[{lead}{key_text(rhs.key, shapes[operand])}]"
    if isinstance(rhs, Extreme):
        axes = tuple(a + int(is_batched) for a in rhs.axes)
        return f"np.{rhs.which}({names[operand]}, axis={axes[0] if len(axes) == 1 else axes})"
    raise AssertionError(f"no NumPy form for {type(rhs).__name__}")


def assemble_lines(eq, names, batched, backward) -> list[Line]:
    """zeros, then each piece added at its key (a piece may cover part of another)."""
    name, shape, lead = names[eq.lhs], eq.rhs.shape, eq.lhs in batched
    full = (("_n",) if lead else ()) + tuple(map(str, shape))
    lines = [Line(name, f"np.zeros({tuple_text(full)})", lead, backward)]
    for key, piece in zip(eq.rhs.keys, eq.rhs.operands):
        at = key_text(key, shape)
        lines.append(Line("", f"{name}[{':, ' if lead else ''}{at}] += {names[piece]}",
                          lead, backward))
    return lines


def tuple_text(items) -> str:
    return f"({', '.join(items)}{',' if len(items) == 1 else ''})"


def sum_text(expr, batched, printer) -> str:
    """The sum over samples of a per-sample scalar expression: `np.dot(a, b)` for a
    product (no array of products), `np.sum(expr)` otherwise."""
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
        c = printer.parenthesize(coefficient, PRECEDENCE["Mul"])
        text = f"{c}*{text}"
    return text


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


def matmuls_inline(ir: IR, names, batched) -> dict:
    """Matrix products that only the next equation reads, as text to print in its place:
    `h = np.tanh(b1 + x @ W1)`, the way the user wrote it."""
    uses = _uses(ir)
    out = {}
    shapes = ir.shapes()
    for eq, reader in zip(ir.equations, ir.equations[1:]):
        if eq.anonymous and isinstance(eq.rhs, Einsum) and not eq.rhs.batch_sum \
                and uses.get(eq.lhs) == 1 and eq.lhs in reader.rhs.free_symbols \
                and not isinstance(reader.rhs, Structural) and reader.role not in BACKWARD \
                and reader.shape == eq.shape and (eq.lhs in batched) == (reader.lhs in batched):
            ins, o = full_subscripts(eq.rhs, batched)
            if matmul_form(ins, o, [len(s) for s in ins]) is not None:
                out[eq.lhs] = einsum_text(eq.rhs, names, batched, shapes)
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


def program(ir: IR, names: dict, free_memory: bool) -> Program:
    """The lines of one array function and what it returns."""
    shapes = ir.shapes()
    batched = ir.batched()
    if free_memory:
        ir = ir.with_equations(early(ir))
    summed = summed_inline(ir, batched) if free_memory else {}
    inline = matmuls_inline(ir, names, batched)
    printer = ArrayPrinter(names, shapes, batched, inline)
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
                      for ln in assemble_lines(eq, names, batched, in_backward)]
            reads.extend([set(eq.rhs.free_symbols)] * (len(eq.rhs.operands) + 1))
            continue
        if eq.lhs in summed:
            printer.rank = 0
            text = sum_text(summed[eq.lhs].rhs, batched, printer)
        elif isinstance(eq.rhs, Structural):
            text = structural_text(eq.rhs, names, batched, shapes)
        else:
            printer.rank = len(eq.shape)
            text = print_expr(printer, eq.rhs, eq.origin, "numpy")
            rhs_batched = bool(eq.rhs.free_symbols & batched)
            if shape_of(eq.rhs, shapes) != eq.shape or (is_batched and not rhs_batched):
                full = (("_n",) if is_batched else ()) + tuple(str(d) for d in eq.shape)
                text = f"np.broadcast_to({text}, {tuple_text(full)})"
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
            text = f"np.zeros({shape})" if shape else "0.0"
        else:
            text = print_expr(printer, r.expr, None, "numpy")
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


def prepare(compiled: Compiled) -> dict:
    names = compiled.names
    programs = {"loss": program(compiled.programs["loss"], names, True),
                "value_and_grad": program(compiled.programs["value_and_grad"], names, True),
                "forward": program(compiled.programs["forward"], names, False)}
    if "hvp" in compiled.programs:
        programs["hvp"] = program(compiled.programs["hvp"], names, True)
    scalar = None
    if compiled.ir.all_scalar():
        scalar = {k: scalar_program(compiled.programs[k], names)
                  for k in ("loss", "value_and_grad")}
    everything = list(programs.values()) + list((scalar or {}).values())
    helpers = set().union(*(p.helpers for p in everything))
    if "_erf" in helpers:
        helpers.add("math")
    if any(isinstance(eq.rhs, LogSumExp) for p in compiled.programs.values()
           for eq in p.equations):
        helpers.add("_logsumexp")
    return dict(api_data(compiled), programs=programs, one_sample=scalar,
                helpers=sorted(helpers), contiguous=False, directions=directions(compiled))


def directions(compiled: Compiled) -> list[str]:
    """The identifiers of hvp's direction, one per parameter (its extra arguments)."""
    hvp = compiled.programs.get("hvp")
    return [] if hvp is None else [compiled.names[v.symbol]
                                   for v in hvp.params[len(compiled.ir.params):]]


TARGET = Target("numpy", (("numpy_module.py.j2", "{name}.py", "numpy", "#"),), prepare)
