"""The Python/NumPy target for networks with shaped values.

Every value is an array: a per-sample value of shape S is held for the whole batch as
(N, *S) (the batch axis first), a value that is the same for every sample (a parameter,
`W1.T`) as S. Elementwise equations print as one NumPy expression each (NumPy's
broadcasting lines up trailing axes; a per-sample value of lower rank gets `[:, None]`);
contractions print as `@` (BLAS) where they are matrix products, `np.sum` where they are
sums, and `np.einsum` otherwise. Nothing loops over samples in Python.
"""

from __future__ import annotations

from sympy.printing.precedence import PRECEDENCE

from ..compiler import Compiled
from ..ir import ADJOINT, FORWARD, GRAD, IR, LOSS, N_SAMPLES
from ..tensor import (Einsum, LogSumExp, Reshape, Structural, matmul_form, shape_of,
                      single_form)
from .common import File, Line, Output, Program, print_expr, render
from .printers import NumpyArrayPrinter

TARGET = "numpy"
BATCH = "Z"  # the batch axis's letter in full einsum subscripts


class ShapedNumpyPrinter(NumpyArrayPrinter):
    """Symbols of lower per-sample rank than the equation get new axes after the batch."""

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


def full_subscripts(node: Einsum, batched: set) -> tuple[list[str], str]:
    """The einsum subscripts of the batch arrays: 'Z' leads each per-sample operand."""
    ins, out = node.subscripts
    flags = [op in batched for op in node.operands]
    ins = [BATCH + s if f else s for s, f in zip(ins, flags)]
    if any(flags) and not node.batch_sum:
        out = BATCH + out
    return ins, out


def matmul_text(ins, out, texts, ndims) -> str | None:
    """`P @ Q` (with .T where needed) when the contraction is a matrix product, else None."""
    form = matmul_form(ins, out, ndims)
    if form is None:
        return None
    p, q, tp, tq = form
    return f"{texts[p]}{'.T' if tp else ''} @ {texts[q]}{'.T' if tq else ''}"


def einsum_text(node: Einsum, names, batched) -> str:
    ins, out = full_subscripts(node, batched)
    texts = [names[op] for op in node.operands]
    ndims = [len(s) for s in ins]
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
    text = matmul_text(ins, out, texts, ndims)
    if text is not None:
        return text
    if set(out) == set("".join(ins)) and all(out.endswith(s.lstrip(BATCH)) for s in ins):
        # nothing summed: a broadcasting product (per-sample axes line up at the end)
        factors = []
        for s, t in zip(ins, texts):
            missing = len(out) - len(s)
            factors.append(f"{t}[:{', None' * missing}]" if s.startswith(BATCH) and missing
                           else t)
        return "*".join(factors)
    return f"np.einsum('{','.join(ins)}->{out}', {', '.join(texts)})"


def structural_text(rhs, names, batched) -> str:
    if isinstance(rhs, Einsum):
        return einsum_text(rhs, names, batched)
    (operand,) = rhs.operands
    is_batched = operand in batched
    if isinstance(rhs, Reshape):
        dims = (("-1",) if is_batched else ()) + tuple(str(d) for d in rhs.shape)
        return f"{names[operand]}.reshape({tuple_text(dims)})"
    if isinstance(rhs, LogSumExp):
        return f"_logsumexp({names[operand]}, {rhs.axis + int(is_batched)})"
    raise AssertionError(f"no NumPy form for {type(rhs).__name__}")


def tuple_text(items) -> str:
    return f"({', '.join(items)}{',' if len(items) == 1 else ''})"


def inlined(ir: IR, names, batched) -> dict:
    """Matrix products that only the next equation reads, as text to print in its place:
    `h = np.tanh(b1 + x @ W1)`, the way the user wrote it."""
    uses: dict = {}
    for e in [eq.rhs for eq in ir.equations] + [r.expr for r in ir.results]:
        for sym in e.free_symbols:
            uses[sym] = uses.get(sym, 0) + 1
    out = {}
    for eq, reader in zip(ir.equations, ir.equations[1:]):
        if eq.lhs in ir.hidden and isinstance(eq.rhs, Einsum) and uses.get(eq.lhs) == 1 \
                and eq.lhs in reader.rhs.free_symbols and not isinstance(reader.rhs, Structural) \
                and reader.role in (FORWARD, LOSS) and reader.shape == eq.shape \
                and (eq.lhs in batched) == (reader.lhs in batched):
            text = einsum_text(eq.rhs, names, batched)
            if " @ " in text:
                out[eq.lhs] = text
    return out


def program(ir: IR, names: dict) -> Program:
    shapes = ir.shapes()
    batched = ir.batched()
    inline = inlined(ir, names, batched)
    printer = ShapedNumpyPrinter(names, shapes, batched, inline)
    lines, in_backward = [], False
    for eq in ir.equations:
        in_backward = in_backward or eq.role in (ADJOINT, GRAD)
        if eq.lhs in inline:
            continue
        is_batched = eq.lhs in batched
        if isinstance(eq.rhs, Structural):
            text = structural_text(eq.rhs, names, batched)
        else:
            printer.rank = len(eq.shape)
            text = print_expr(printer, eq.rhs, eq.origin, TARGET)
            rhs_batched = bool(eq.rhs.free_symbols & batched)
            if shape_of(eq.rhs, shapes) != eq.shape or (is_batched and not rhs_batched):
                full = (("_n",) if is_batched else ()) + tuple(str(d) for d in eq.shape)
                text = f"np.broadcast_to({text}, {tuple_text(full)})"
        lines.append(Line(names[eq.lhs], text, is_batched, in_backward))
    outputs = []
    for r in ir.results:
        if r.expr == 0:
            shape = shapes.get(next((p.symbol for p in ir.params if p.name == r.key), None), ())
            text = f"np.zeros({shape})" if shape else "0.0"
            outputs.append(Output(r.key, text, False, r.kind))
            continue
        printer.rank = 0
        text = print_expr(printer, r.expr, None, TARGET)
        outputs.append(Output(r.key, text, bool(r.expr.free_symbols & batched), r.kind))
    return Program(tuple(lines), tuple(outputs), frozenset(printer.helpers))


def init_spec(ir: IR) -> list[tuple[str, tuple, str]]:
    """(name, shape, how) per parameter: 'glorot' for matrices, 'zeros' for vectors,
    'one' for scalars (a scalar is usually a scale or a temperature)."""
    spec = []
    for p in ir.params:
        how = "glorot" if len(p.shape) >= 2 else ("zeros" if p.shape else "one")
        spec.append((p.name, p.shape, how))
    return spec


def template_data(compiled: Compiled) -> dict:
    ir = compiled.ir
    return dict(
        name=ir.name, source=ir.source, reduce=ir.reduce,
        params=[(v.name, compiled.names[v.symbol], v.shape) for v in ir.params],
        inputs=[(v.name, compiled.names[v.symbol], v.shape) for v in ir.inputs],
        init=init_spec(ir))


def emit(compiled: Compiled) -> list[File]:
    ir = compiled.ir
    progs = {name: program(p, compiled.names) for name, p in compiled.programs.items()}
    helpers = set().union(*(p.helpers for p in progs.values()))
    body = render("numpy_shaped.py.j2", programs=progs, helpers=sorted(helpers),
                  uses_lse=any("_logsumexp(" in ln.rhs for p in progs.values()
                               for ln in p.lines),
                  contiguous=False, **template_data(compiled))
    return [File(f"{ir.name}.py", "numpy", "#", body)]

