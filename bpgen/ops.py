"""The operations a user writes on shaped values: `a @ b`, `bp.sum`, `bp.softmax`, ...

Each checks its operands' shapes when it is called (a mistake is one line at the user's
declaration) and builds a structural node of `bpgen.tensor` (an `Einsum`, `LogSumExp` or
`Reshape`) or an elementwise SymPy expression. Names and semantics follow NumPy's.
"""

from __future__ import annotations

import string

import numpy as np
import sympy

from .errors import DeclarationError
from .tensor import Einsum, LogSumExp, Reshape, ShapeError, broadcast, shape_of


def _fail(message: str):
    from .dsl import caller_origin
    raise DeclarationError(message, caller_origin())


def _operand(value, what: str):
    try:
        expr = sympy.sympify(value, strict=True)
    except (sympy.SympifyError, TypeError):
        _fail(f"{what}: {value!r} is not a SymPy expression")
    try:
        return expr, shape_of(expr)
    except ShapeError as exc:
        _fail(f"{what}: {exc}")


def matmul(a, b):
    """`a @ b` per sample: vector·matrix, matrix·vector, matrix·matrix or vector·vector."""
    (a, sa), (b, sb) = _operand(a, "@"), _operand(b, "@")
    if not sa or not sb or len(sa) > 2 or len(sb) > 2:
        _fail(f"@ needs vectors or matrices, got shapes {sa} and {sb}")
    k_a = sa[-1]
    k_b = sb[0] if len(sb) == 1 else sb[-2]
    if k_a != k_b:
        _fail(f"@: shapes {sa} and {sb} do not match (inner sizes {k_a} and {k_b})")
    left = "ij"[2 - len(sa):]      # 'j' for a vector, 'ij' for a matrix
    right = "jk"[:len(sb)]         # 'j' for a vector, 'jk' for a matrix
    out = left[:-1] + right[1:]
    return Einsum(f"{left},{right}->{out}", 0, a, b)


def dot(a, b):
    """The inner product of two vectors of one size (a per-sample scalar)."""
    (_, sa), (_, sb) = _operand(a, "dot"), _operand(b, "dot")
    if len(sa) != 1 or sa != sb:
        _fail(f"dot needs two vectors of one size, got shapes {sa} and {sb}")
    return matmul(a, b)


def transpose(a):
    """The transpose of a matrix (a vector or scalar is its own transpose, as in NumPy)."""
    a, sa = _operand(a, "transpose")
    if len(sa) < 2:
        return a
    letters = string.ascii_lowercase[:len(sa)]
    return Einsum(f"{letters}->{letters[::-1]}", 0, a)


def _axes(shape, axis, what) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(len(shape)))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for ax in axes:
        if not isinstance(ax, (int, np.integer)) or isinstance(ax, bool) \
                or not -len(shape) <= ax < len(shape):
            _fail(f"{what}: axis {ax!r} is out of range for shape {shape}")
        out.append(int(ax) % len(shape))
    if len(set(out)) != len(out):
        _fail(f"{what}: axis {axis!r} repeats an axis")
    return tuple(sorted(out))


def sum(v, axis=None):  # noqa: A001 - NumPy's name
    """The sum of `v` over `axis` (an int, a tuple, or None for every axis)."""
    v, shape = _operand(v, "sum")
    axes = _axes(shape, axis, "sum")
    if not shape or not axes:
        return v
    letters = string.ascii_lowercase[:len(shape)]
    out = "".join(c for k, c in enumerate(letters) if k not in axes)
    factors = sympy.Mul.make_args(v)
    if len(factors) == 2 and all(shape_of(f) == shape for f in factors):
        # sum(a*b): one contraction (a dot product), no array of products
        return Einsum(f"{letters},{letters}->{out}", 0, *factors)
    return Einsum(f"{letters}->{out}", 0, v)


def mean(v, axis=None):
    """The mean of `v` over `axis`."""
    v, shape = _operand(v, "mean")
    axes = _axes(shape, axis, "mean")
    count = int(np.prod([shape[a] for a in axes])) if shape else 1
    return sum(v, axis) / count


def logsumexp(v, axis=-1):
    """log(sum(exp(v), axis)), stable for any magnitude (computed around the maximum)."""
    v, shape = _operand(v, "logsumexp")
    if not shape:
        return v
    (ax,) = _axes(shape, axis, "logsumexp") if not isinstance(axis, (tuple, list)) else \
        _fail("logsumexp: axis must be one int")
    return LogSumExp(v, ax)


def _keepdims(reduced, shape, axis):
    """`reduced` (shape without `axis`) broadcastable against `shape` again."""
    if axis == 0:
        return reduced  # NumPy aligns trailing axes: nothing to insert
    return Reshape(reduced, shape[:axis] + (1,) + shape[axis + 1:])


def softmax(v, axis=-1):
    """exp(v - logsumexp(v)) along `axis`: probabilities, stable for any magnitude."""
    v, shape = _operand(v, "softmax")
    if not shape:
        return sympy.S.One
    (ax,) = _axes(shape, axis, "softmax")
    return sympy.exp(v - _keepdims(LogSumExp(v, ax), shape, ax))


def softmax_cross_entropy(logits, onehot, axis=-1):
    """-sum(onehot * log(softmax(logits))) = logsumexp(logits) - sum(onehot * logits)."""
    (logits, sl), (onehot, so) = (_operand(logits, "softmax_cross_entropy"),
                                  _operand(onehot, "softmax_cross_entropy"))
    if not sl:
        _fail("softmax_cross_entropy needs vector logits, got a scalar")
    try:
        broadcast(sl, so)
    except ShapeError:
        _fail(f"softmax_cross_entropy: logits of shape {sl} and targets of shape {so} "
              "do not match")
    (ax,) = _axes(sl, axis, "softmax_cross_entropy")
    return LogSumExp(logits, ax) - sum(onehot * logits, ax)
