"""Shaped values: tensor symbols, the structural operations, and shape inference.

A network may declare shaped inputs and parameters (`net.param("W1", shape=(64, 32))`).
The user writes the math for ONE sample; the batch axis is implicit and added by the
targets. Two kinds of operation build expressions over shaped values:

* elementwise: any SymPy arithmetic or function, with NumPy broadcasting. The expression
  is an ordinary SymPy expression whose symbols stand for "the element at this index";
  its shape is the broadcast of its symbols' shapes (`shape_of`).
* structural: matmul, transpose, sums, log-sum-exp and reshapes, each a node below
  (`Einsum`, `LogSumExp`, `Reshape`). The front end gives every structural node its own
  equation (`lower`), so an IR equation is either elementwise or one structural node.

Matmul, transpose and sums are all `Einsum` nodes: one contraction rule in the autodiff,
one loop-nest generator in C, and a printer that maps the common forms back to `@`, `.T`
and `np.sum`. Each node's vector-Jacobian product is registered right after it (`vjp`);
the functions users call to build nodes are in `bpgen/ops.py`.
"""

from __future__ import annotations


import numpy as np
import sympy
from sympy import Integer, Tuple
from sympy.core.symbol import Str

from .vjp import vjp


class ArrayMethods:
    """NumPy's spellings on shaped values: `a @ b`, `a.T`, `a[1:3]`, `a.reshape(-1)`,
    `a.sum(axis)`, `a.max(axis)`; NumPy arrays on the left of an operator defer to them
    (`mask + scores`)."""

    __array_ufunc__ = None  # ndarray + value: NumPy defers to the value's __radd__
    _iterable = False  # indexable, but not a container to SymPy (iterable() asks this)
    __iter__ = None  # nor to Python: X[t] for a fixed t, never `for row in X`

    @property
    def T(self):  # noqa: N802 - NumPy's spelling
        from .ops import transpose
        return transpose(self)

    def __matmul__(self, other):
        from .ops import matmul
        return matmul(self, other)

    def __rmatmul__(self, other):
        from .ops import matmul
        return matmul(other, self)

    def __getitem__(self, key):
        from .ops import index
        return index(self, key)

    def reshape(self, *shape):
        from .ops import reshape
        return reshape(self, *shape)

    def sum(self, axis=None):
        from .ops import sum as total
        return total(self, axis)

    def mean(self, axis=None):
        from .ops import mean
        return mean(self, axis)

    def max(self, axis=None):
        from .ops import max as largest
        return largest(self, axis)

    def min(self, axis=None):
        from .ops import min as smallest
        return smallest(self, axis)


class TensorSymbol(ArrayMethods, sympy.Symbol):
    """A declared shaped value: an input, a parameter or an equation's left-hand side."""

    def __new__(cls, name: str, shape: tuple[int, ...]):
        obj = sympy.Symbol.__xnew__(cls, name, real=True)
        obj._shape = tuple(int(d) for d in shape)
        return obj

    def __getnewargs_ex__(self):
        return (self.name, self._shape), {}

    def _hashable_content(self):
        return super()._hashable_content() + (self._shape,)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape


class Structural(ArrayMethods, sympy.Expr):
    """A structural operation: its operands are the trailing args from `first_operand`."""

    is_commutative = True
    is_real = True
    first_operand = 0

    @property
    def operands(self):
        return self.args[self.first_operand:]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.shape_in()

    def with_operands(self, operands):
        return self.func(*self.args[:self.first_operand], *operands)


class Einsum(Structural):
    """`np.einsum(spec, *operands)` per sample; spec letters index per-sample axes.

    `batch_sum` (only made by the autodiff): also sum over the samples, so the result is
    one value for the whole batch (a parameter's gradient), not one per sample.
    """

    first_operand = 2

    def __new__(cls, spec, batch_sum, *operands):
        spec = spec if isinstance(spec, Str) else Str(spec)
        return sympy.Expr.__new__(cls, spec, Integer(int(batch_sum)), *operands)

    @property
    def spec(self) -> str:
        return self.args[0].name

    @property
    def batch_sum(self) -> bool:
        return bool(self.args[1])

    @property
    def subscripts(self):
        ins, out = self.spec.split("->")
        return ins.split(","), out

    def sizes(self, table=None) -> dict[str, int]:
        ins, _ = self.subscripts
        sizes: dict[str, int] = {}
        for sub, op in zip(ins, self.operands):
            for letter, dim in zip(sub, shape_of(op, table)):
                sizes.setdefault(letter, dim)
        return sizes

    def shape_in(self, table=None):
        sizes = self.sizes(table)
        return tuple(sizes[c] for c in self.subscripts[1])

    def _sympystr(self, printer):
        return self._describe([printer._print(a) for a in self.operands], TEXT)

    def _latex(self, printer):
        return self._describe([printer._print(a) for a in self.operands], LATEX)

    def _describe(self, texts, style) -> str:
        """The operation in the notation of the math (per sample), for people."""
        ins, out = self.subscripts
        text = None
        if len(ins) == 1:
            form, (t,) = single_form(ins[0], out), texts
            if form == ("copy",):
                text = t
            elif form == ("transpose",):
                text = style["T"].format(t)
            elif form is not None:
                axes = form[1]
                text = style["sum"].format(t, "" if len(axes) == len(ins[0]) else
                                           style["axis"].format(axes[0] if len(axes) == 1
                                                                else axes))
        elif len(ins) == 2:
            form = matmul_form(ins, out, [len(x) for x in ins])
            if ins[0] == ins[1] == out:
                text = style["mul"].format(*texts)
            elif ins[0] == ins[1] and len(ins[0]) == 1 and not out:
                text = style["dot"].format(*texts)
            elif ins[0] == ins[1] and "".join(c for c in ins[0] if c in out) == out:
                axes = tuple(k for k, c in enumerate(ins[0]) if c not in out)
                text = style["sum"].format(style["mul"].format(*texts), style["axis"].format(
                    axes[0] if len(axes) == 1 else axes))
            elif form is not None:
                p, q, tp, tq = form
                text = style["matmul"].format(style["T"].format(texts[p]) if tp else texts[p],
                                              style["T"].format(texts[q]) if tq else texts[q])
            elif out in (ins[0] + ins[1], ins[1] + ins[0]) and not set(ins[0]) & set(ins[1]):
                first = 0 if out == ins[0] + ins[1] else 1
                text = style["outer"].format(texts[first], texts[1 - first])
        if text is None:
            text = style["einsum"].format(self.spec, ", ".join(texts))
        return style["samples"].format(text) if self.batch_sum else text


class _Unary(Structural):
    """One operand, then one argument that says how (an axis, a shape)."""

    @property
    def operands(self):
        return self.args[:1]

    def with_operands(self, operands):
        return self.func(operands[0], self.args[1])


class LogSumExp(_Unary):
    """log(sum(exp(v), axis)), computed as max + log(sum(exp(v - max)))."""

    def __new__(cls, operand, axis):
        return sympy.Expr.__new__(cls, operand, Integer(axis))


    @property
    def axis(self) -> int:
        return int(self.args[1])

    def shape_in(self, table=None):
        shape = shape_of(self.args[0], table)
        return shape[:self.axis] + shape[self.axis + 1:]

    def _sympystr(self, printer):
        return f"logsumexp({printer._print(self.args[0])}, axis={self.axis})"

    def _latex(self, printer):
        operand = printer._print(self.args[0])
        return rf"\operatorname{{logsumexp}}_{{{self.axis}}}\left({operand}\right)"


class Reshape(_Unary):
    """The same elements (row-major) under another shape; free in C."""

    def __new__(cls, operand, shape):
        return sympy.Expr.__new__(cls, operand, Tuple(*[Integer(d) for d in shape]))


    def shape_in(self, table=None):
        return tuple(int(d) for d in self.args[1])

    def _sympystr(self, printer):
        return f"reshape({printer._print(self.args[0])}, {self.shape})"

    def _latex(self, printer):
        return printer._print(self.args[0])


STRUCTURAL = (Einsum, LogSumExp, Reshape)


# -- vector-Jacobian products ------------------------------------------------------------
@vjp(Einsum)
def _einsum_vjp(eq, adjoint, ctx):
    """d_operand[k] = einsum(d_out, other operands -> operand k's subscripts): the
    contraction read backwards. A sum's adjoint is d_out broadcast over the summed axes."""
    node = eq.rhs
    ins, out = node.subscripts
    contributions = []
    for k, operand in enumerate(node.operands):
        target = ins[k]
        others = [(s, op) for j, (s, op) in enumerate(zip(ins, node.operands)) if j != k]
        available = set(out).union(*[set(s) for s, _ in others])
        if not set(target) <= available:
            # a sum over axes of this operand: d_out broadcast back over them
            kept = [j for j, c in enumerate(target) if c in out]
            if not kept or (kept[-1] - kept[0] + 1 == len(kept) and
                            kept[-1] == len(target) - 1):
                contributions.append((operand, adjoint))  # NumPy broadcasting lines it up
            else:
                shape = ctx.shape(operand)
                contributions.append((operand, Reshape(adjoint, tuple(
                    d if j in kept else 1 for j, d in enumerate(shape)))))
            continue
        if set(target) == available and all(target.endswith(s)
                                            for s in [out] + [s for s, _ in others]):
            # nothing is summed and broadcasting lines every factor up: elementwise
            contributions.append((operand, sympy.Mul(adjoint, *[op for _, op in others])))
            continue
        spec = ",".join([out] + [s for s, _ in others]) + "->" + target
        operands = [adjoint] + [op for _, op in others]
        total = not ctx.is_batched(operand) and any(ctx.is_batched(o) for o in operands)
        contributions.append((operand, Einsum(spec, total, *operands)))
    return contributions


@vjp(Reshape)
def _reshape_vjp(eq, adjoint, ctx):
    (operand,) = eq.rhs.operands
    return [(operand, Reshape(adjoint, ctx.shape(operand)))]


@vjp(LogSumExp)
def _logsumexp_vjp(eq, adjoint, ctx):
    """d_v = d_out * softmax(v) along the axis, with softmax(v) = exp(v - lse)."""
    (operand,) = eq.rhs.operands
    shape, axis = ctx.shape(operand), eq.rhs.axis

    def keep(value):
        return value if axis == 0 else Reshape(value, shape[:axis] + (1,) + shape[axis + 1:])
    return [(operand, keep(adjoint) * sympy.exp(operand - keep(eq.lhs)))]

#: How Einsum nodes print, in plain text and in LaTeX.
TEXT = {"T": "{}.T", "sum": "sum({}{})", "axis": ", axis={}", "mul": "{}*{}",
        "dot": "dot({}, {})", "matmul": "{} @ {}", "outer": "outer({}, {})",
        "einsum": "einsum('{}', {})", "samples": "sum over samples of {}"}
LATEX = {"T": "{}^{{\\top}}", "sum": "\\operatorname{{sum}}\\left({}{}\\right)",
         "axis": "; {}", "mul": "{} \\odot {}", "dot": "{} \\cdot {}", "matmul": "{} {}",
         "outer": "{} \\otimes {}",
         "einsum": "\\operatorname{{einsum}}_{{\\texttt{{{}}}}}\\left({}\\right)",
         "samples": "\\sum_{{n}} {}"}


def single_form(sub: str, out: str):
    """What einsum(sub -> out) of one operand is: ("copy",), ("transpose",) for a matrix,
    ("sum", axes summed), or None (another permutation)."""
    if out == sub:
        return ("copy",)
    if len(sub) == 2 and out == sub[::-1]:
        return ("transpose",)
    if "".join(c for c in sub if c in out) == out and set(out) <= set(sub):
        return ("sum", tuple(k for k, c in enumerate(sub) if c not in out))
    return None


def matmul_form(ins, out, ndims):
    """(p, q, transpose_p, transpose_q) when einsum(ins -> out) is operands[p] @
    operands[q] with those transposes (2-D operands only are transposed), else None."""
    if len(ins) != 2:
        return None
    for p, q in ((0, 1), (1, 0)):
        a, b = ins[p], ins[q]
        contracted = (set(a) & set(b)) - set(out)
        if len(contracted) != 1 or set(a) & set(b) & set(out):
            continue
        (c,) = contracted
        if a.endswith(c):
            fa, ta = a[:-1], False
        elif len(a) == 2 and a[0] == c and ndims[p] == 2:
            fa, ta = a[1], True
        else:
            continue
        if b.startswith(c) and len(b) <= 2:
            fb, tb = b[1:], False
        elif len(b) == 2 and b[1] == c and ndims[q] == 2:
            fb, tb = b[0], True
        else:
            continue
        if out == fa + fb:
            return p, q, ta, tb
    return None


# -- shapes ------------------------------------------------------------------------------
def shape_of(expr, table=None) -> tuple[int, ...]:
    """The per-sample shape of an expression (broadcasting elementwise operations).

    Symbols carry their shapes (TensorSymbol) or are looked up in `table`.
    """
    if isinstance(expr, sympy.Symbol):
        if table is not None and expr in table:
            return table[expr]
        return getattr(expr, "shape", ())
    if isinstance(expr, Structural):
        return expr.shape_in(table)
    if not isinstance(expr, sympy.Basic) or not expr.args or expr.is_Atom:
        return ()
    shape: tuple[int, ...] = ()
    for arg in expr.args:
        if isinstance(arg, sympy.Basic) and not isinstance(arg, (Str, Tuple)):
            shape = broadcast(shape, shape_of(arg, table))
    return shape


def make_symbol(name: str, shape) -> sympy.Symbol:
    """A symbol for a value of this shape (a plain real Symbol for a scalar)."""
    return TensorSymbol(name, shape) if shape else sympy.Symbol(name, real=True)


def broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    if a == b or not b:
        return a
    if not a:
        return b
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        raise ShapeError(f"shapes {a} and {b} do not broadcast") from None


class ShapeError(ValueError):
    """Raised by shape inference; the front end adds the declaration's origin."""


def is_shaped(expr) -> bool:
    return bool(expr.atoms(TensorSymbol)) or bool(expr.atoms(*STRUCTURAL))


# -- lowering: one structural node per equation ------------------------------------------------
def lower(expr, declare):
    """Give every structural node inside `expr` its own equation.

    `declare(kind, expr)` declares an anonymous equation and returns its symbol. The
    operands of a structural node become symbols; the top node stays in `expr`.
    """
    def visit(e, top=False):
        if isinstance(e, Structural):
            operands = []
            for op in e.operands:
                op = visit(op)
                if not op.is_Symbol:
                    op = declare("in", op)
                operands.append(op)
            node = e.with_operands(operands)
            return node if top else declare(_kind(node), node)
        if not e.args or e.is_Atom:
            return e
        args = [visit(a) for a in e.args]
        return e.func(*args) if any(a is not b for a, b in zip(args, e.args)) else e
    return visit(expr, top=True)


def _kind(node) -> str:
    """A word for what a structural node does, to name its equation (`h_matmul`)."""
    if isinstance(node, Einsum):
        ins, out = node.subscripts
        if len(ins) == 2:
            return "dot" if ins[0] == ins[1] else "matmul"
        return "sum" if (single_form(ins[0], out) or ("",))[0] == "sum" else "T"
    return getattr(node, "noun", "lse" if isinstance(node, LogSumExp) else "reshape")
