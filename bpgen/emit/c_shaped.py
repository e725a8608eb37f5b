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
from .common import print_expr, render_c_files
from .numpy_shaped import init_spec
from .printers import CPrinter

TARGET = "c"
ALIGN = 8  # doubles: every workspace array starts on a 64-byte boundary
ACC_MAX = 64  # longest output row accumulated in a local array (registers)
BLOCK = 4  # output rows accumulated together


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
    scratch: list = field(default_factory=list)  # constant-size buffers (_T0, ...)


def _size(shape) -> int:
    return prod(shape) if shape else 1


def _offset(a: int, b: int) -> str:
    terms = ([f"{a}*_np"] if a else []) + ([str(b)] if b or not a else [])
    return " + ".join(terms)


def _index(parts) -> str:
    """Sum of (variable, stride) terms as C text."""
    terms = [v if s == 1 else f"{v}*{s}" for v, s in parts if s]
    return " + ".join(terms) if terms else "0"


def _var(letter: str) -> str:
    return "_z" if letter == "Z" else f"_{letter}"


def _ref(array: str, letters: str, sizes: dict) -> str:
    """array[index] for row-major axes named by letters (Z, the batch, always first)."""
    parts, stride = [], 1
    for c in reversed(letters):
        parts.append((_var(c), stride))
        if c != "Z":
            stride *= int(sizes[c])
    if letters.startswith("Z"):
        parts[-1] = ("_z", stride)
    return f"{array}[{_index(parts[::-1])}]"


def _nested(loops, statement: str) -> list[str]:
    """Lines of `for` loops around one statement, indented inside a nest's body."""
    lines = []
    for depth, (var, extent) in enumerate(loops):
        lines.append("    " * depth + f"for (long {var} = 0; {var} < {extent}; ++{var})")
    lines.append("    " * len(loops) + statement)
    return lines


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
        """A contraction. With a small innermost output axis, each output row accumulates
        in a local array (registers) over the contracted axes; a small operand whose
        layout has that axis strided is first copied transposed, so every inner loop
        reads memory contiguously."""
        node: Einsum = eq.rhs
        ins, out = node.subscripts
        flags = [op in self.batched for op in node.operands]
        sizes = {c: str(d) for c, d in node.sizes(self.shapes).items()}
        sizes["Z"] = "_n"
        out_batched = any(flags) and not node.batch_sum
        subs = ["Z" + s if f else s for s, f in zip(ins, flags)]
        full_out = ("Z" if out_batched else "") + out
        contracted = sorted(set("".join(subs)) - set(full_out), key=lambda c: (c != "Z", c))
        inner = full_out[-1] if full_out and full_out[-1] != "Z" else None
        name = self.names[eq.lhs]
        texts = [self.names[op] for op in node.operands]
        comment = f"{name} = {eq.rhs}"
        for k, sub in enumerate(subs):
            if inner and not flags[k] and inner in sub and sub[-1] != inner:
                moved = sub.replace(inner, "") + inner
                texts[k] = self.scratch(_size(self.shapes[node.operands[k]]))
                self.f.nests.append(Nest(
                    f"{comment}: {self.names[node.operands[k]]} transposed first",
                    [(f"_{c}", sizes[c]) for c in moved],
                    [f"{_ref(texts[k], moved, sizes)} = "
                     f"{_ref(self.names[node.operands[k]], sub, sizes)};"]))
                comment, subs[k] = "", moved
        product = "*".join(_ref(t, sub, sizes) for t, sub in zip(texts, subs))
        outer = [(_var(c), sizes[c]) for c in full_out if c != inner]
        reduce = [(_var(c), sizes[c]) for c in contracted]
        target = _ref(name, full_out, sizes)
        if not contracted:
            loops = outer + ([(_var(inner), sizes[inner])] if inner else [])
            self.f.nests.append(Nest(comment, loops, [f"{target} = {product};"]))
        elif inner is None:
            self.f.nests.append(Nest(comment, outer, [
                "double _acc = 0.0;", *_nested(reduce, f"_acc += {product};"),
                f"{target} = _acc;"]))
        elif int(sizes[inner]) <= ACC_MAX and outer:
            self.f.nests.append(self.blocked(comment, outer, reduce, inner, sizes[inner],
                                             product, target))
        elif int(sizes[inner]) <= ACC_MAX:
            row = [(_var(inner), sizes[inner])]
            self.f.nests.append(Nest(comment, outer, [
                f"double _acc[{sizes[inner]}] = {{0.0}};",
                *_nested(reduce + row, product.join(["_acc[_" + inner + "] += ", ";"])),
                *_nested(row, f"{target} = _acc[_{inner}];")]))
        else:
            count = f"_n*{_size(eq.shape)}" if out_batched else str(_size(eq.shape))
            self.f.nests.append(Nest(comment, [("_i", count)], [f"{name}[_i] = 0.0;"]))
            self.f.nests.append(Nest("", [o for o in outer if o[0] == "_z"] + reduce +
                                     [o for o in outer if o[0] != "_z"] +
                                     [(_var(inner), sizes[inner])],
                                     [f"{target} += {product};"]))

    @staticmethod
    def blocked(comment, outer, reduce, inner, extent, product, target) -> Nest:
        """BLOCK rows of the output at once (the last outer axis), each accumulated in a
        local array: every operand load feeds BLOCK multiply-adds, and the BLOCK chains
        of additions run side by side. Past the end of that axis, the padded rows repeat
        its first row and are not stored."""
        var, count = outer[-1]
        b = BLOCK
        tail = not (count.isdigit() and int(count) % b == 0)
        lane = f"{var}0 + (_r < _rn ? _r : 0)" if tail else f"{var}0 + _r"
        first = [f"const long _rn = {count} - {var}0 < {b} ? {count} - {var}0 : {b};"] \
            if tail else []
        body = [*first, f"double _acc[{b}][{extent}] = {{{{0.0}}}};"]
        inside = [f"const long {var} = {lane};",
                  *_nested([(f"_{inner}", extent)],
                           f"_acc[_r][_{inner}] += {product};")]
        body += _nested(reduce, f"for (long _r = 0; _r < {b}; ++_r) {{")
        depth = "    " * (len(reduce) + 1)
        body += [depth + line for line in inside] + ["    " * len(reduce) + "}"]
        body += [f"for (long _r = 0; _r < {'_rn' if tail else b}; ++_r) {{",
                 f"    const long {var} = {var}0 + _r;",
                 *["    " + line for line in _nested([(f"_{inner}", extent)],
                                                      f"{target} = _acc[_r][_{inner}];")],
                 "}"]
        return Nest(comment, outer[:-1] + [(f"{var}0", count, b)], body)

    def scratch(self, size: int) -> str:
        """A constant-size buffer at the end of the workspace."""
        name = f"_T{len(self.f.scratch)}"
        a, b = self.f.work
        self.f.arrays.append((name, _offset(a, b)))
        self.f.scratch.append(name)
        self.f.work = (a, b + -(-size // ALIGN) * ALIGN)
        return name

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


def emit(compiled: Compiled) -> list:
    ir = compiled.ir
    names = compiled.names
    vg = compiled.programs["value_and_grad"]
    fwd = compiled.programs["forward"]
    loss_ir = compiled.programs["loss"]
    grad_targets = {}
    grads = []  # (index, result text or None, size, the array to scale)
    defined = {eq.lhs for eq in vg.equations}
    for k, (p, r) in enumerate(zip(ir.params, vg.results[1:])):
        if r.expr.is_Symbol and r.expr in defined and r.expr not in grad_targets:
            grad_targets[r.expr] = f"_grad[{k}]"
            grads.append((k, None, _size(p.shape), names[r.expr]))
        else:
            printer = CPrinter({s: f"{names[s]}[0]" for s in r.expr.free_symbols} |
                               {N_SAMPLES: "(double)_n"})
            grads.append((k, printer.doprint(r.expr), _size(p.shape), f"_grad[{k}]"))
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
        reduce=ir.reduce, align=ALIGN, fp_contract=True,
        params=[(v.name, names[v.symbol], v.shape) for v in ir.params],
        inputs=[(v.name, names[v.symbol], v.shape) for v in ir.inputs],
        functions=functions, helpers=sorted(used), grads=grads,
        loss=(names[loss_sym], loss_sym in vg.batched()),
        loss_only=(names[loss_ir.results[0].expr], loss_ir.results[0].expr in loss_ir.batched()),
        values=[(r.key, names[r.expr], tuple(shapes[r.expr]), r.expr in out_targets,
                 _size(shapes[r.expr])) for r in values],
        grad_sizes=[_size(p.shape) for p in ir.params],
        input_sizes=[_size(v.shape) for v in ir.inputs],
        grad_total=sum(-(-_size(p.shape) // ALIGN) * ALIGN for p in ir.params),
        init=init_spec(ir), contiguous=True)
    return render_c_files(ir.name,
                          ("c_shaped.h.j2", "c_shaped.c.j2", "c_shaped_wrapper.py.j2"), data)

