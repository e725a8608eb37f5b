"""More structural operations: indexing and slicing, assembling from pieces (its
adjoint), concatenation, and the maximum or minimum along axes; each with its VJP rule.

Keys are static: every axis of the operand has an entry, an int (the axis is dropped) or
a slice (start, stop, step) with positive step and bounds already inside the axis, so
shapes are known when the equation is declared and the generated code indexes with
constants (NumPy views, C loops).
"""

from __future__ import annotations

import sympy
from sympy import Integer, Tuple
from sympy.core.symbol import Str

from .functions import equal
from .tensor import Einsum, Reshape, Structural, shape_of
from .vjp import vjp


# -- keys ----------------------------------------------------------------------------------
def normalize_key(key, shape) -> tuple:
    """A NumPy-style key (ints, slices, a tuple of them) as one entry per axis:
    an int in range, or (start, stop, step) with step > 0. Raises IndexError/ValueError."""
    if not isinstance(key, tuple):
        key = (key,)
    if len(key) > len(shape):
        raise IndexError(f"{len(key)} indices for a value of shape {shape}")
    out = []
    for item, dim in zip(key + (slice(None),) * (len(shape) - len(key)), shape):
        if isinstance(item, slice):
            start, stop, step = item.indices(dim)
            if step <= 0:
                raise ValueError("slices with a negative or zero step are not supported")
            out.append((start, max(start, stop), step))
        elif isinstance(item, (int, sympy.Integer)) and not isinstance(item, bool):
            k = int(item)
            if not -dim <= k < dim:
                raise IndexError(f"index {k} is out of range for an axis of size {dim}")
            out.append(k % dim)
        elif isinstance(item, sympy.Basic) and item.is_integer:
            raise TypeError(f"an index must be an int or a slice of ints, not the label "
                            f"{item} (indices are fixed when the network is declared; look a "
                            f"row up by a label with bp.one_hot({item}, {dim}) @ table)")
        else:
            raise TypeError(f"an index must be an int or a slice of ints, not "
                            f"{type(item).__name__} (indices are fixed when the network is "
                            "declared)")
    return tuple(out)


def key_args(key) -> Tuple:
    return Tuple(*[Integer(k) if isinstance(k, int) else Tuple(*map(Integer, k)) for k in key])


def key_of(args) -> tuple:
    return tuple(int(k) if isinstance(k, Integer) else tuple(int(v) for v in k) for k in args)


def key_shape(key) -> tuple:
    return tuple(len(range(*k)) for k in key if isinstance(k, tuple))


def key_text(key, shape) -> str:
    """NumPy's spelling: X[0, 2:5, :]."""
    parts = []
    for k, dim in zip(key, shape):
        if isinstance(k, int):
            parts.append(str(k))
        else:
            start, stop, step = k
            if (start, stop, step) == (0, dim, 1):
                parts.append(":")
            else:
                text = f"{start if start else ''}:{stop}"
                parts.append(text + (f":{step}" if step != 1 else ""))
    while len(parts) > 1 and parts[-1] == ":":
        parts.pop()
    return ", ".join(parts)


# -- indexing --------------------------------------------------------------------------------
class Index(Structural):
    """operand[key] per sample: an int drops its axis, a slice keeps part of it."""

    noun = "index"

    def __new__(cls, operand, key):
        return sympy.Expr.__new__(cls, operand, key if isinstance(key, Tuple) else
                                  key_args(key))

    @property
    def operands(self):
        return self.args[:1]

    def with_operands(self, operands):
        return self.func(operands[0], self.args[1])

    @property
    def key(self) -> tuple:
        return key_of(self.args[1])

    def shape_in(self, table=None):
        return key_shape(self.key)

    def _sympystr(self, printer):
        shape, operand = shape_of(self.args[0]), printer._print(self.args[0])
        operand = operand if self.args[0].is_Atom else f"({operand})"
        return f"{operand}[{key_text(self.key, shape)}]"

    def _latex(self, printer):
        shape = shape_of(self.args[0])
        return rf"{printer._print(self.args[0])}_{{[{key_text(self.key, shape)}]}}"


class Assemble(Structural):
    """A value of `shape` that is zero but where pieces are added: piece k at key k (the
    adjoint of indexing, and of concatenation's pieces)."""

    noun = "assemble"

    first_operand = 2

    def __new__(cls, shape, keys, *pieces):
        shape = shape if isinstance(shape, Tuple) else Tuple(*map(Integer, shape))
        keys = keys if isinstance(keys, Tuple) else Tuple(*[key_args(k) for k in keys])
        return sympy.Expr.__new__(cls, shape, keys, *pieces)

    @property
    def keys(self) -> list[tuple]:
        return [key_of(k) for k in self.args[1]]

    def shape_in(self, table=None):
        return tuple(int(d) for d in self.args[0])

    def with_operands(self, operands):
        return self.func(self.args[0], self.args[1], *operands)

    def _sympystr(self, printer):
        shape = self.shape_in()
        parts = ", ".join(f"[{key_text(k, shape)}] += {printer._print(p)}"
                          for k, p in zip(self.keys, self.operands))
        return f"zeros{shape} with {parts}"

    def _latex(self, printer):
        return r"\operatorname{assemble}\left(" + ", ".join(
            printer._print(p) for p in self.operands) + r"\right)"


@vjp(Index)
def _index_vjp(eq, adjoint, ctx):
    (operand,) = eq.rhs.operands
    return [(operand, Assemble(ctx.shape(operand), [eq.rhs.key], adjoint))]


@vjp(Assemble)
def _assemble_vjp(eq, adjoint, ctx):
    return [(piece, Index(adjoint, key)) for key, piece in zip(eq.rhs.keys, eq.rhs.operands)]


# -- concatenation ---------------------------------------------------------------------------
class Concat(Structural):
    """Operands side by side along `axis` (per sample)."""

    noun = "concat"

    first_operand = 1

    def __new__(cls, axis, *operands):
        return sympy.Expr.__new__(cls, Integer(axis), *operands)

    @property
    def axis(self) -> int:
        return int(self.args[0])

    def shape_in(self, table=None):
        shapes = [shape_of(op, table) for op in self.operands]
        first = shapes[0]
        return first[:self.axis] + (sum(s[self.axis] for s in shapes),) + \
            first[self.axis + 1:]

    def pieces(self, table=None) -> list[tuple]:
        """The key of each operand's piece of the result."""
        shape, at, out = self.shape_in(table), 0, []
        for op in self.operands:
            size = shape_of(op, table)[self.axis]
            out.append(tuple((at, at + size, 1) if k == self.axis else (0, d, 1)
                             for k, d in enumerate(shape)))
            at += size
        return out

    def _sympystr(self, printer):
        return (f"concatenate([{', '.join(printer._print(op) for op in self.operands)}], "
                f"axis={self.axis})")

    def _latex(self, printer):
        return r"\left[" + r" \mid ".join(printer._print(op) for op in self.operands) + \
            r"\right]"


@vjp(Concat)
def _concat_vjp(eq, adjoint, ctx):
    return [(op, Index(adjoint, key)) for op, key in zip(eq.rhs.operands,
                                                          eq.rhs.pieces(ctx.shapes))]


# -- the maximum and minimum along axes --------------------------------------------------
class Extreme(Structural):
    """max (or min) of the operand over `axes` per sample. Its gradient is shared equally
    by the entries that reach the extreme (ties split it, as JAX's does)."""

    def __new__(cls, operand, which, axes):
        which = which if isinstance(which, Str) else Str(which)
        return sympy.Expr.__new__(cls, operand, which, Tuple(*map(Integer, axes)))

    @property
    def operands(self):
        return self.args[:1]

    def with_operands(self, operands):
        return self.func(operands[0], self.args[1], self.args[2])

    @property
    def which(self) -> str:
        return self.args[1].name

    @property
    def noun(self) -> str:
        return self.which

    @property
    def axes(self) -> tuple:
        return tuple(int(a) for a in self.args[2])

    def shape_in(self, table=None):
        shape = shape_of(self.args[0], table)
        return tuple(d for k, d in enumerate(shape) if k not in self.axes)

    def _sympystr(self, printer):
        axes = self.axes[0] if len(self.axes) == 1 else self.axes
        return f"{self.which}({printer._print(self.args[0])}, axis={axes})"

    def _latex(self, printer):
        return rf"\{self.which}\left({printer._print(self.args[0])}\right)"


@vjp(Extreme)
def _extreme_vjp(eq, adjoint, ctx):
    """d_v = d_out * [v == out] / (how many entries reach out), along the axes."""
    (operand,) = eq.rhs.operands
    shape, axes = ctx.shape(operand), eq.rhs.axes
    keep = tuple(1 if k in axes else d for k, d in enumerate(shape))
    letters = "abcdefghijklmnopqrstuvwxy"[:len(shape)]
    kept = "".join(c for k, c in enumerate(letters) if k not in axes)

    def widen(value):  # back to the operand's rank: size 1 along the axes
        return value if axes == tuple(range(len(axes))) else Reshape(value, keep)
    hits = equal(operand, widen(eq.lhs))
    count = Einsum(f"{letters}->{kept}", 0, hits)
    return [(operand, widen(adjoint / count) * hits)]
