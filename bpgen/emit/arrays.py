"""Whole-batch array printing: one printer for every operation of an equation, elementwise
(SymPy's printer) or structural (matmul, sums, reshapes, indexing, ...).

Every value is an array: a per-sample value of shape S is held for the whole batch as
(N, *S) (the batch axis first), a value that is the same for every sample (a parameter,
`W1.T`) as S. Two dialects share the forms chosen here and differ only in spelling:

* `ArrayPrinter`: NumPy (`np.sum`, `x.reshape(...)`, `np.einsum` for what has no
  simpler form);
* `emit/xp_target.XpArrayPrinter`: the Python array API standard (`xp.sum`,
  `xp.reshape(x, ...)`, and no einsum: the standard has none, so every contraction is
  lowered to permutes, reshapes and `matmul`).

The spelling hooks are the methods named `spell_*`.
"""

from __future__ import annotations

from math import prod

import sympy
from sympy.printing.precedence import PRECEDENCE

from ..ir import N_SAMPLES
from ..nodes import Concat, Extreme, Index, key_text
from ..tensor import Einsum, LogSumExp, Reshape, matmul_form, single_form
from .common import Line
from .printers import NumpyArrayPrinter

BATCH = "Z"  # the batch axis's letter in full einsum subscripts


def tuple_text(items) -> str:
    return f"({', '.join(items)}{',' if len(items) == 1 else ''})"


def full_subscripts(node: Einsum, batched: set) -> tuple[list[str], str]:
    """The einsum subscripts of the batch arrays: 'Z' leads each per-sample operand."""
    ins, out = node.subscripts
    flags = [op in batched for op in node.operands]
    ins = [BATCH + s if f else s for s, f in zip(ins, flags)]
    if any(flags) and not node.batch_sum:
        out = BATCH + out
    return ins, out


class ArrayPrinter(NumpyArrayPrinter):
    """Symbols of lower per-sample rank than the equation get new axes after the batch;
    `inline` symbols print as the text that defines them."""

    target = "numpy"  # as error messages name it

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
            return f"{name}[:{', None' * missing}{self.spell_rest(len(self.shapes.get(expr, ())))}]"
        return name

    # -- spelling (NumPy) ----------------------------------------------------------------
    def spell_key(self, key, shape) -> str:
        """The index of `key` into an array of per-sample `shape`."""
        return key_text(key, shape)

    def spell_rest(self, axes: int) -> str:
        """What ends an index that leaves `axes` trailing axes unnamed."""
        return ""

    def spell_number(self, text: str) -> str:
        """A value that is a number, not an array (`_t0 = 1.0986`)."""
        return self.typed(text)

    def spell_reshape(self, text: str, dims) -> str:
        return f"{text}.reshape({tuple_text(dims)})"

    def spell_sum(self, text: str, sub: str, out: str, axes: tuple) -> str:
        if len(axes) == len(sub):
            return f"np.sum({text})"
        if len(sub) - 1 in axes:  # NumPy's einsum sums short rows faster than np.sum
            return f"np.einsum('{sub}->{out}', {text})"
        return f"np.sum({text}, axis={axes[0] if len(axes) == 1 else axes})"

    def spell_dot(self, a: str, b: str) -> str:
        return f"np.dot({a}, {b})"

    def spell_einsum(self, ins, out, texts, sizes) -> str:
        return f"np.einsum('{','.join(ins)}->{out}', {', '.join(texts)})"

    def spell_broadcast(self, text: str, dims, constant: bool = False) -> str:
        """`constant`: `text` is a number, not an array."""
        return f"np.broadcast_to({self.typed(text) if constant else text}, {tuple_text(dims)})"

    def spell_concat(self, parts, axis: int) -> str:
        return f"np.concatenate([{', '.join(parts)}], axis={axis})"

    def spell_zeros(self, dims) -> str:
        dtype = "" if self.scalar_type is None else f", dtype={self.scalar_type}"
        return f"np.zeros({tuple_text(dims)}{dtype})"

    def spell_full(self, text: str, dims) -> str:
        """A new array of shape `dims` whose every element is the number `text`."""
        return f"np.full({tuple_text(dims)}, {text}, dtype={self.scalar_type or 'np.float64'})"

    def spell_extreme(self, which: str, text: str, axes: tuple) -> str:
        return f"np.{which}({text}, axis={axes[0] if len(axes) == 1 else axes})"

    def spell_logsumexp(self, text: str, axis: int) -> str:
        return f"_logsumexp({text}, {axis})"

    def spell_add_at(self, name: str, at: str, piece: str) -> Line:
        return Line("", f"{name}[{at}] += {piece}", False, False)

    # -- structural operations ------------------------------------------------------------
    def einsum(self, node: Einsum) -> str:
        names, batched = self.names, self.batched
        ins, out = full_subscripts(node, batched)
        texts = [names[op] for op in node.operands]
        sizes = node.sizes(self.shapes)
        if len(ins) == 1:
            (a,), (t,) = ins, texts
            form = single_form(a, out)
            if form == ("copy",):
                return t
            if form == ("transpose",):
                return f"{t}.T"
            if form is not None:
                return self.spell_sum(t, a, out, form[1])
        if len(ins) == 2 and ins[0] == ins[1] == BATCH and not out:
            return self.spell_dot(texts[0], texts[1])  # a sum over samples of a product
        form = matmul_form(ins, out, [len(s) for s in ins])
        if form is not None:
            p, q, tp, tq = form
            if len(ins[p]) > 2 and len(ins[q]) == 2 and not tq:
                # a stack of matrices times one matrix is one matrix product of the rows:
                # NumPy's matmul would multiply the stack's matrices one by one
                rows = self.spell_reshape(texts[p], ("-1", str(sizes[ins[p][-1]])))
                dims = tuple(str(sizes.get(c, -1)) for c in out[:-1]) + (str(sizes[out[-1]]),)
                return self.spell_reshape(f"({rows} @ {texts[q]})", dims)
            return f"{texts[p]}{'.T' if tp else ''} @ {texts[q]}{'.T' if tq else ''}"
        flat = self.flat_contraction(ins, out, sizes, texts)
        if flat is not None:
            return flat
        if len(ins) == 2 and all(ins) and not set(ins[0]) & set(ins[1]) \
                and out in (ins[0] + ins[1], ins[1] + ins[0]):
            # an outer product (a weight's gradient for one sample): one broadcast multiply
            (a, ta), (b, tb) = sorted(zip(ins, texts), key=lambda p: out.index(p[0][0]))
            return f"{ta}[:{', :' * (len(a) - 1)}{', None' * len(b)}]*{tb}"
        if set(out) == set("".join(ins)) and all(out.endswith(s.lstrip(BATCH)) for s in ins):
            # nothing summed: a broadcasting product (per-sample axes line up at the end)
            factors = []
            for s, t in zip(ins, texts):
                missing = len(out) - len(s)
                factors.append(f"{t}[:{', None' * missing}{self.spell_rest(len(s) - 1)}]"
                               if s.startswith(BATCH) and missing else t)
            return "*".join(factors)
        return self.spell_einsum(ins, out, texts, sizes)

    def flat_contraction(self, ins, out, sizes, texts):
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
        text = (f"{self.spell_reshape(texts[first[0]], ('-1', size(first[1])))}.T @ "
                f"{self.spell_reshape(texts[second[0]], ('-1', size(second[1])))}")
        if len(out) == 2:
            return text
        return self.spell_reshape(f"({text})", tuple(str(sizes[c]) for c in out))

    def structural(self, rhs) -> str:
        names, batched, shapes = self.names, self.batched, self.shapes
        if isinstance(rhs, Einsum):
            return self.einsum(rhs)
        if isinstance(rhs, Concat):
            lead = any(op in batched for op in rhs.operands)
            parts = [names[op] if op in batched or not lead else  # the same for every sample
                     self.spell_broadcast(names[op], ("_n",) + tuple(map(str, shapes[op])))
                     for op in rhs.operands]
            return self.spell_concat(parts, rhs.axis + int(lead))
        (operand,) = rhs.operands
        is_batched = operand in batched
        if isinstance(rhs, Reshape):
            dims = (("-1",) if is_batched else ()) + tuple(str(d) for d in rhs.shape)
            return self.spell_reshape(names[operand], dims)
        if isinstance(rhs, LogSumExp):
            return self.spell_logsumexp(names[operand], rhs.axis + int(is_batched))
        if isinstance(rhs, Index):
            lead = ":, " if is_batched else ""
            return f"{names[operand]}[{lead}{self.spell_key(rhs.key, shapes[operand])}]"
        if isinstance(rhs, Extreme):
            return self.spell_extreme(rhs.which, names[operand],
                                      tuple(a + int(is_batched) for a in rhs.axes))
        raise AssertionError(f"no array form for {type(rhs).__name__}")

    def assemble(self, eq, backward) -> list[Line]:
        """zeros, then each piece added at its key (a piece may cover part of another)."""
        name, shape, lead = self.names[eq.lhs], eq.rhs.shape, eq.lhs in self.batched
        full = (("_n",) if lead else ()) + tuple(map(str, shape))
        lines = [Line(name, self.spell_zeros(full), lead, backward)]
        for key, piece in zip(eq.rhs.keys, eq.rhs.operands):
            at = self.spell_key(key, shape)
            line = self.spell_add_at(name, f"{':, ' if lead else ''}{at}", self.names[piece])
            lines.append(Line(line.lhs, line.rhs, lead, backward))
        return lines

    def batch_sum(self, expr) -> str:
        """The sum over samples of a per-sample scalar expression: a dot product for a
        product (no array of products), a sum otherwise."""
        batched = self.batched
        factors = []
        for f in sympy.Mul.make_args(expr):
            if f.is_Pow and f.exp == 2 and f.base.free_symbols & batched:
                factors += [f.base, f.base]
            else:
                factors.append(f)
        varying = [f for f in factors if f.free_symbols & batched]
        coefficient = sympy.Mul(*[f for f in factors if not f.free_symbols & batched])
        if len(varying) >= 2:
            text = self.spell_dot(self.doprint(varying[0]),
                                  self.doprint(sympy.Mul(*varying[1:])))
        else:
            text = self.spell_sum(self.doprint(expr if coefficient == 1 else varying[0]),
                                  BATCH, "", (0,))
        if coefficient != 1:
            c = self.parenthesize(coefficient, PRECEDENCE["Mul"])
            text = f"{c}*{text}"
        return text
