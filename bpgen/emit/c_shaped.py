"""The C target for networks with shaped values: `<name>.h`, `<name>.c`, `<name>_c.py`.

Arrays are row-major doubles; a per-sample value of shape S is held for the whole batch as
n consecutive blocks of prod(S) doubles. Every equation becomes one loop nest over the
batch and its axes:

* elementwise: one fused loop (flat over the batch and the value when nothing is
  broadcast, else one index per axis with broadcast operands indexed by the axes they have);
* contraction (matmul, transpose, sums, a parameter's gradient summed over samples): a
  loop nest ordered batch first and with an axis that is contiguous in the output
  innermost, so `out[...] += a*b[...]` streams rows and gcc -O3 vectorises it;
* log-sum-exp: max, then the sum of exponentials around it, per output element.

Intermediate arrays live in a caller-provided workspace (`<name>_work_size(n)` doubles),
laid out at compile time; nothing is allocated and nothing is global.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

from ..compiler import Compiled
from ..ir import IR, N_SAMPLES
from ..tensor import Einsum, LogSumExp, Reshape
from .c_target import HELPER_DEPS
from .common import print_expr, render, with_header
from .numpy_shaped import init_spec
from .printers import CPrinter

TARGET = "c"
ALIGN = 8  # doubles: every workspace array starts on a 64-byte boundary


@dataclass
class Nest:
    """`for` loops (var, extent) around body lines; `comment` names the equation."""

    comment: str
    loops: list
    body: list


@dataclass
class Function:
    arrays: list = field(default_factory=list)  # (name, offset text) in the workspace
    pointers: list = field(default_factory=list)  # (decl, source) of inputs/params/outputs
    nests: list = field(default_factory=list)
    helpers: set = field(default_factory=set)
    work: tuple = (0, 0)  # workspace doubles = work[0]*n_padded + work[1]


def _size(shape) -> int:
    return prod(shape) if shape else 1


def _offset(a: int, b: int) -> str:
    terms = ([f"{a}*_np"] if a else []) + ([str(b)] if b or not a else [])
    return " + ".join(terms)


def _index(parts) -> str:
    """Sum of (variable, stride) terms as C text."""
    terms = [v if s == 1 else f"{v}*{s}" for v, s in parts if s]
    return " + ".join(terms) if terms else "0"


def _strides(shape):
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return out[::-1]


class Emitter:
    def __init__(self, ir: IR, names: dict, function: Function):
        self.ir, self.names, self.f = ir, names, function
        self.shapes = ir.shapes()
        self.batched = ir.batched()

    # -- elementwise -------------------------------------------------------------------
    def elementwise(self, eq):
        shape, size = eq.shape, _size(eq.shape)
        is_batched = eq.lhs in self.batched
        symbols = sorted(eq.rhs.free_symbols - {N_SAMPLES}, key=lambda s: s.name)
        flat = all(self.shapes[s] == shape or _size(self.shapes[s]) == 1 for s in symbols)
        whole = flat and is_batched and all(
            (self.shapes[s] == shape) == (s in self.batched) or _size(self.shapes[s]) == 1
            and s not in self.batched for s in symbols)
        loops = []
        if whole:
            loops.append(("_i", f"_n*{size}" if size > 1 else "_n"))
        else:
            if is_batched:
                loops.append(("_z", "_n"))
            if flat and size > 1:
                loops.append(("_i", str(size)))
            elif not flat:
                loops += [(f"_i{k}", str(d)) for k, d in enumerate(shape)]

        def index(s, s_shape, s_batched):
            if whole:
                return "_i" if s_shape == shape and s_batched else "0"
            parts = [("_z", _size(s_shape))] if s_batched else []
            if flat:
                if s_shape == shape and size > 1:
                    parts.append(("_i", 1))
            else:
                lead = len(shape) - len(s_shape)
                for k, (d, st) in enumerate(zip(s_shape, _strides(s_shape))):
                    if d != 1:
                        parts.append((f"_i{k + lead}", st))
            return _index(parts)

        texts = {s: f"{self.names[s]}[{index(s, self.shapes[s], s in self.batched)}]"
                 for s in symbols}
        texts[N_SAMPLES] = "(double)_n"
        printer = CPrinter(texts)
        rhs = print_expr(printer, eq.rhs, eq.origin, TARGET)
        self.f.helpers |= printer.helpers
        lhs = f"{self.names[eq.lhs]}[{index(eq.lhs, shape, is_batched)}]"
        self.f.nests.append(Nest(f"{self.names[eq.lhs]} = {eq.rhs}", loops, [f"{lhs} = {rhs};"]))

    # -- contractions ------------------------------------------------------------------
    def einsum(self, eq):
        node: Einsum = eq.rhs
        ins, out = node.subscripts
        flags = [op in self.batched for op in node.operands]
        sizes = node.sizes(self.shapes)
        out_batched = any(flags) and not node.batch_sum
        letters = set("".join(ins))
        contracted = sorted(letters - set(out))
        any_batch = any(flags)
        inner = out[-1] if out else (ins[0][-1] if ins[0] else None)
        order = (["Z"] if any_batch else []) + [c for c in out if c != inner] + \
            [c for c in contracted if c != inner] + ([inner] if inner else [])
        seen, loops = set(), []
        for c in order:
            if c in seen:
                continue
            seen.add(c)
            loops.append(("_z", "_n") if c == "Z" else (f"_{c}", str(sizes[c])))

        def ref(sym, subs, batched):
            shape = self.shapes[sym]
            parts = [("_z", _size(shape))] if batched else []
            parts += [(f"_{c}", st) for c, st in zip(subs, _strides(shape))]
            return f"{self.names[sym]}[{_index(parts)}]"

        lhs = ref(eq.lhs, out, out_batched)
        product = "*".join(ref(op, s, f) for op, s, f in zip(node.operands, ins, flags))
        name = self.names[eq.lhs]
        total = _size(eq.shape)
        if contracted or (node.batch_sum and any_batch):
            count = f"_n*{total}" if out_batched else str(total)
            self.f.nests.append(Nest(f"{name} = {eq.rhs}", [("_i", count)],
                                     [f"{name}[_i] = 0.0;"]))
            self.f.nests.append(Nest("", loops, [f"{lhs} += {product};"]))
        else:
            self.f.nests.append(Nest(f"{name} = {eq.rhs}", loops, [f"{lhs} = {product};"]))

    def reshape(self, eq):
        (op,) = eq.rhs.operands
        total = _size(eq.shape)
        count = f"_n*{total}" if op in self.batched else str(total)
        self.f.nests.append(Nest(f"{self.names[eq.lhs]} = {eq.rhs}", [("_i", count)],
                                 [f"{self.names[eq.lhs]}[_i] = {self.names[op]}[_i];"]))

    def logsumexp(self, eq):
        (op,) = eq.rhs.operands
        shape, axis = self.shapes[op], eq.rhs.axis
        strides = _strides(shape)
        is_batched = op in self.batched
        loops = [("_z", "_n")] if is_batched else []
        parts = [("_z", _size(shape))] if is_batched else []
        out_parts = [("_z", _size(eq.shape))] if is_batched else []
        out_strides = _strides(eq.shape)
        k_out = 0
        for k, d in enumerate(shape):
            if k == axis:
                continue
            loops.append((f"_i{k}", str(d)))
            parts.append((f"_i{k}", strides[k]))
            out_parts.append((f"_i{k}", out_strides[k_out]))
            k_out += 1
        x = f"{self.names[op]}[{_index(parts + [('_a', strides[axis])])}]"
        self.f.helpers.add("bp_exp")
        body = [
            "double _m = -HUGE_VAL, _s = 0.0;",
            f"for (long _a = 0; _a < {shape[axis]}; ++_a)",
            f"    _m = {x} > _m ? {x} : _m;",
            "if (!isfinite(_m))",
            "    _m = 0.0;",
            f"for (long _a = 0; _a < {shape[axis]}; ++_a)",
            f"    _s += bp_exp({x} - _m);",
            f"{self.names[eq.lhs]}[{_index(out_parts)}] = _m + log(_s);",
        ]
        self.f.nests.append(Nest(f"{self.names[eq.lhs]} = {eq.rhs}", loops, body))

    def equation(self, eq):
        rhs = eq.rhs
        if isinstance(rhs, Einsum):
            self.einsum(eq)
        elif isinstance(rhs, Reshape):
            self.reshape(eq)
        elif isinstance(rhs, LogSumExp):
            self.logsumexp(eq)
        else:
            self.elementwise(eq)


def function(ir: IR, names: dict, outputs: dict) -> Function:
    """`outputs`: symbol -> C expression of the caller's array that receives it."""
    f = Function()
    batched = ir.batched()
    read = set().union(*(e.rhs.free_symbols for e in ir.equations),
                       *(r.expr.free_symbols for r in ir.results))
    for k, v in enumerate(ir.params):
        if v.symbol in read:
            f.pointers.append((f"const double *restrict {names[v.symbol]}", f"_params[{k}]"))
    for k, v in enumerate(ir.inputs):
        if v.symbol in read:
            f.pointers.append((f"const double *restrict {names[v.symbol]}", f"_data[{k}]"))
    a = b = 0
    for eq in ir.equations:
        if eq.lhs in outputs:
            f.pointers.append((f"double *restrict {names[eq.lhs]}", outputs[eq.lhs]))
            continue
        f.arrays.append((names[eq.lhs], _offset(a, b)))
        size = -(-_size(eq.shape) // ALIGN) * ALIGN
        if eq.lhs in batched:
            a += _size(eq.shape)
        else:
            b += size
    f.work = (a, b)
    emitter = Emitter(ir, names, f)
    for eq in ir.equations:
        emitter.equation(eq)
    return f


def emit(compiled: Compiled) -> dict[str, str]:
    ir = compiled.ir
    names = compiled.names
    vg = compiled.programs["value_and_grad"]
    fwd = compiled.programs["forward"]
    loss_ir = compiled.programs["loss"]
    grad_targets = {}
    grads = []  # (index, result text or None, shape)
    defined = {eq.lhs for eq in vg.equations}
    for k, (p, r) in enumerate(zip(ir.params, vg.results[1:])):
        if r.expr.is_Symbol and r.expr in defined and r.expr not in grad_targets:
            grad_targets[r.expr] = f"_grad[{k}]"
            grads.append((k, None, _size(p.shape)))
        else:
            printer = CPrinter({s: f"{names[s]}[0]" for s in r.expr.free_symbols} |
                               {N_SAMPLES: "(double)_n"})
            grads.append((k, printer.doprint(r.expr), _size(p.shape)))
    values = list(fwd.results)
    fwd_batched = fwd.batched()
    out_targets = {r.expr: f"_out[{k}]" for k, r in enumerate(values)
                   if r.expr in fwd_batched and r.expr.is_Symbol}
    functions = {"loss": function(loss_ir, names, {}),
                 "value_and_grad": function(vg, names, grad_targets),
                 "forward": function(fwd, names, out_targets)}
    used = set()
    for fn in functions.values():
        for h in fn.helpers:
            used.add(h)
            used.update(HELPER_DEPS.get(h, ()))
    shapes = fwd.shapes()
    loss_sym = vg.results[0].expr
    data = dict(
        name=ir.name, guard=f"BPGEN_{ir.name.upper()}_H", source=ir.source,
        reduce=ir.reduce, align=ALIGN,
        params=[(v.name, names[v.symbol], v.shape) for v in ir.params],
        inputs=[(v.name, names[v.symbol], v.shape) for v in ir.inputs],
        functions=functions, helpers=sorted(used), grads=grads,
        loss=(names[loss_sym], loss_sym in vg.batched()),
        loss_only=(names[loss_ir.results[0].expr], loss_ir.results[0].expr in loss_ir.batched()),
        values=[(r.key, names[r.expr], tuple(shapes[r.expr]), r.expr in out_targets,
                 _size(shapes[r.expr])) for r in values],
        grad_sizes=[_size(p.shape) for p in ir.params],
        grad_total=sum(-(-_size(p.shape) // ALIGN) * ALIGN for p in ir.params),
        init=init_spec(ir))
    files = {}
    for template, filename, comment in (("c_shaped.h.j2", f"{ir.name}.h", "//"),
                                        ("c_shaped.c.j2", f"{ir.name}.c", "//"),
                                        ("c_shaped_wrapper.py.j2", f"{ir.name}_c.py", "#")):
        files[filename] = with_header(render(template, **data), ir.source, comment)
    return files

