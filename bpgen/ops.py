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
    if isinstance(value, (list, tuple, np.ndarray)):  # a constant array
        from .constants import constant
        try:
            value = constant(value)
        except (TypeError, ValueError) as exc:
            _fail(f"{what}: {exc}")
    try:
        expr = sympy.sympify(value, strict=True)
    except (sympy.SympifyError, TypeError):
        _fail(f"{what}: {value!r} is not a SymPy expression")
    try:
        return expr, shape_of(expr)
    except ShapeError as exc:
        _fail(f"{what}: {exc}")


def matmul(a, b):
    """`a @ b` per sample, as NumPy's matmul: vector·matrix, matrix·vector, matrix·matrix,
    vector·vector, and stacks of matrices (leading axes of one side, or the same leading
    axes on both: (4, 4, 2) @ (2, 3) is (4, 4, 3))."""
    (a, sa), (b, sb) = _operand(a, "@"), _operand(b, "@")
    if not sa or not sb:
        _fail(f"@ needs vectors or matrices, got shapes {sa} and {sb}")
    k_a = sa[-1]
    k_b = sb[0] if len(sb) == 1 else sb[-2]
    if k_a != k_b:
        _fail(f"@: shapes {sa} and {sb} do not match (inner sizes {k_a} and {k_b})")
    stack_a, stack_b = sa[:-2], sb[:-2]
    if stack_a and stack_b and stack_a != stack_b:
        _fail(f"@: the stacks of matrices {sa} and {sb} differ in their leading axes")
    lead = "pqrstuvw"[:len(stack_a or stack_b)]  # the axes of a stack of matrices
    a_core = "ij" if len(sa) >= 2 else "j"
    b_core = "jk" if len(sb) >= 2 else "j"
    left = (lead if stack_a else "") + a_core
    right = (lead if stack_b else "") + b_core
    return Einsum(f"{left},{right}->{lead + a_core[:-1] + b_core[1:]}", 0, a, b)


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
        if not isinstance(ax, (int, np.integer)) or isinstance(ax, bool):
            _fail(f"{what}: axis {ax!r} is not an int")
        if not -len(shape) <= ax < len(shape):
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


def softmax_cross_entropy(logits, target, axis=-1):
    """The cross-entropy of softmax(logits) and a target: a class index (an input declared
    with dtype=int, as PyTorch's CrossEntropyLoss takes it) or a one-hot or probability
    vector of the logits' shape: -sum(onehot * log(softmax(logits))), computed as
    logsumexp(logits) - sum(onehot * logits)."""
    (logits, sl), (target, so) = (_operand(logits, "softmax_cross_entropy"),
                                  _operand(target, "softmax_cross_entropy"))
    if not sl:
        _fail("softmax_cross_entropy needs vector logits, got a scalar")
    (ax,) = _axes(sl, axis, "softmax_cross_entropy")
    if not so and len(sl) == 1:
        if not target.is_integer:
            _fail(f"softmax_cross_entropy: the target has shape () but the logits have "
                  f"shape {sl}: give a one-hot target of shape {sl}, or class indices from "
                  "an input declared with dtype=int")
        target = one_hot(target, sl[0])
    elif so != sl:
        _fail(f"softmax_cross_entropy: logits of shape {sl} and a target of shape {so} do "
              f"not match (a one-hot target has the logits' shape; class indices are an "
              "input declared with dtype=int)")
    return LogSumExp(logits, ax) - sum(target * logits, ax)


def one_hot(label, classes):
    """A vector of `classes` zeros with a 1 at `label` (an integer-valued scalar, such as
    an input declared with dtype=int)."""
    from .constants import constant
    from .functions import equal
    label, shape = _operand(label, "one_hot")
    if shape:
        _fail(f"one_hot: the label must be a scalar per sample, not of shape {shape}")
    if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)) or \
            classes < 1:
        _fail(f"one_hot: the number of classes must be a positive int, not {classes!r}")
    return equal(label, constant(np.arange(int(classes), dtype=np.float64)))


# -- indexing, joining, reshaping ------------------------------------------------------------
def index(v, key):
    """v[key] per sample, with NumPy's rules for ints and slices (fixed when declared):
    `X[t]`, `X[-1]`, `X[a:b]`, `X[:, k]`, `X[a:b, c:d]`, steps. A value that is not a
    declared one or an operation's result is indexed with bp.index(expr, key)."""
    from .nodes import Index, normalize_key
    v, shape = _operand(v, "[]")
    if not shape:
        _fail(f"[]: a scalar cannot be indexed (key {key!r})")
    try:
        normalized = normalize_key(key, shape)
    except (IndexError, ValueError, TypeError) as exc:
        _fail(f"[{_describe_key(key)}] on a value of shape {shape}: {exc}")
    if all(isinstance(k, tuple) and k == (0, d, 1) for k, d in zip(normalized, shape)):
        return v
    if any(isinstance(k, tuple) and k[1] <= k[0] for k in normalized):
        _fail(f"[{_describe_key(key)}] on a value of shape {shape} is empty")
    return Index(v, normalized)


def _describe_key(key) -> str:
    items = key if isinstance(key, tuple) else (key,)
    return ", ".join(f"{k.start if k.start is not None else ''}:"
                     f"{k.stop if k.stop is not None else ''}"
                     + (f":{k.step}" if k.step is not None else "")
                     if isinstance(k, slice) else repr(k) for k in items)


def concatenate(values, axis=0):
    """The values side by side along `axis` (NumPy's concatenate, per sample)."""
    from .nodes import Concat
    if not isinstance(values, (list, tuple)) or not values:
        _fail("concatenate needs a list of values")
    operands = [_operand(v, "concatenate") for v in values]
    shapes = [s for _, s in operands]
    if any(not s for s in shapes):
        _fail(f"concatenate: scalars have no axis to join along (shapes {shapes})")
    (ax,) = _axes(shapes[0], axis, "concatenate") if not isinstance(axis, (tuple, list)) \
        else _fail("concatenate: axis must be one int")
    for s in shapes[1:]:
        if len(s) != len(shapes[0]) or s[:ax] + s[ax + 1:] != shapes[0][:ax] + \
                shapes[0][ax + 1:]:
            _fail(f"concatenate: shapes {shapes} differ in more than axis {ax}")
    if len(operands) == 1:
        return operands[0][0]
    return Concat(ax, *[v for v, _ in operands])


def stack(values, axis=0):
    """The values (of one shape) along a new axis (NumPy's stack, per sample)."""
    if not isinstance(values, (list, tuple)) or not values:
        _fail("stack needs a list of values")
    operands = [_operand(v, "stack") for v in values]
    if all(v.is_Number for v, _ in operands):  # numbers: a constant vector
        from .constants import constant
        return constant([float(v) for v, _ in operands])
    shapes = [s for _, s in operands]
    if any(s != shapes[0] for s in shapes):
        _fail(f"stack: every value must have the same shape, not {shapes}")
    rank = len(shapes[0]) + 1
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or \
            not -rank <= axis < rank:
        _fail(f"stack: axis {axis!r} is out of range for {rank} axes")
    ax = int(axis) % rank
    widened = [reshape(v, s[:ax] + (1,) + s[ax:]) for v, s in operands]
    return widened[0] if len(widened) == 1 else concatenate(widened, ax)


def reshape(v, *shape):
    """The same elements (row-major) under another shape; one entry may be -1."""
    v, old = _operand(v, "reshape")
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and
               (d > 0 or d == -1) for d in shape) or list(shape).count(-1) > 1:
        _fail(f"reshape: {shape} is not a shape (positive ints, at most one -1)")
    size = int(np.prod(old)) if old else 1
    known = int(np.prod([d for d in shape if d != -1])) if shape else 1
    if -1 in shape:
        if size % known:
            _fail(f"reshape: {size} elements of shape {old} do not fit shape {shape}")
        shape = tuple(size // known if d == -1 else int(d) for d in shape)
    shape = tuple(int(d) for d in shape)
    if int(np.prod(shape)) != size if shape else size != 1:
        _fail(f"reshape: shape {old} ({size} elements) cannot become {shape}")
    return v if shape == old else Reshape(v, shape)


# -- reductions and elementwise extremes --------------------------------------------------
def _extreme(v, axis, which):
    from .nodes import Extreme
    v, shape = _operand(v, which)
    if not shape:
        return v
    return Extreme(v, which, _axes(shape, axis, which))


def max(v, axis=None):  # noqa: A001 - NumPy's name
    """The maximum of `v` over `axis` (an int, a tuple, or None for every axis). Entries
    that tie for the maximum share its gradient equally."""
    return _extreme(v, axis, "max")


def min(v, axis=None):  # noqa: A001
    """The minimum of `v` over `axis`; ties share the gradient equally."""
    return _extreme(v, axis, "min")


def _pairwise(fn, a, b, what):
    (a, sa), (b, sb) = _operand(a, what), _operand(b, what)
    try:
        broadcast(sa, sb)
    except ShapeError as exc:
        _fail(f"{what}: {exc}")
    return fn(a, b)


def maximum(a, b):
    """The larger of a and b, elementwise with broadcasting; at a tie each gets half of
    the gradient."""
    from .functions import maximum as fn
    return _pairwise(fn, a, b, "maximum")


def minimum(a, b):
    """The smaller of a and b, elementwise with broadcasting; at a tie each gets half."""
    from .functions import minimum as fn
    return _pairwise(fn, a, b, "minimum")


def einsum(subscripts, *operands):
    """np.einsum with explicit output subscripts, per sample: `bp.einsum('ij,jk->ik', A,
    B)`. Each letter is one axis; a letter in the inputs but not the output is summed."""
    if not isinstance(subscripts, str) or "->" not in subscripts or "." in subscripts:
        _fail(f"einsum: {subscripts!r} must have explicit output subscripts ('ij,jk->ik'); "
              "'...' is not supported")
    ins, out = subscripts.replace(" ", "").split("->")
    ins = ins.split(",")
    if len(ins) != len(operands):
        _fail(f"einsum: {subscripts!r} names {len(ins)} operands, {len(operands)} given")
    values = [_operand(v, "einsum") for v in operands]
    sizes: dict = {}
    for sub, (_, shape) in zip(ins, values):
        if not sub.isalpha() and sub or len(sub) != len(shape) or len(set(sub)) != len(sub):
            _fail(f"einsum: subscripts {sub!r} do not fit an operand of shape {shape} "
                  "(one distinct letter per axis)")
        for letter, d in zip(sub, shape):
            if sizes.setdefault(letter, d) != d:
                _fail(f"einsum: axis {letter!r} has sizes {sizes[letter]} and {d}")
    if len(set(out)) != len(out) or not set(out) <= set(sizes) or (out and not out.isalpha()):
        _fail(f"einsum: output subscripts {out!r} must be distinct letters of the inputs")
    # bpgen's letters are its own: rename to a, b, c, ... in order of appearance
    order = list(dict.fromkeys("".join(ins)))
    table = str.maketrans({c: string.ascii_lowercase[k] for k, c in enumerate(order)})
    spec = ",".join(s.translate(table) for s in ins) + "->" + out.translate(table)
    return Einsum(spec, 0, *[v for v, _ in values])


def log_softmax(v, axis=-1):
    """v - logsumexp(v) along `axis`: log-probabilities, stable for any magnitude."""
    v, shape = _operand(v, "log_softmax")
    if not shape:
        return sympy.S.Zero
    (ax,) = _axes(shape, axis, "log_softmax")
    return v - _keepdims(LogSumExp(v, ax), shape, ax)
