"""The array API target: `<name>_xp.py`, the NumPy module's programs written against the
Python array API standard, so one file runs on NumPy, PyTorch, CuPy, JAX and
array-api-strict arrays and returns arrays of the caller's library on the caller's device.

The programs are the NumPy target's (same lowering choices, `numpy_target.program`);
only the spelling differs (`XpArrayPrinter`):

* every call goes through `xp`, the namespace of the caller's arrays
  (`array_api_compat.array_namespace`), and uses only functions of the standard
  (`arctan` is `xp.atan`, `np.concatenate` is `xp.concat`, methods become functions);
* the standard has no einsum: a contraction with no simpler form (`@`, a sum, a dot
  product) is lowered to sums, `permute_dims`, `reshape` and one batched `matmul` per
  pair of operands (`lower_einsum`);
* arrays are created on the caller's device (`device=_dev`); nothing converts to Python
  numbers and nothing branches on values, so the functions can be traced (`jax.jit`);
* adding a piece into part of an array (the adjoint of indexing) writes in place where
  the library allows it and uses `x.at[key].add(piece)` on immutable (JAX) arrays.
"""

from __future__ import annotations

import math

import sympy
from sympy.printing.codeprinter import PrintMethodNotImplementedError

from ..compiler import Compiled
from ..ir import N_SAMPLES
from ..nodes import key_text
from .arrays import ArrayPrinter, tuple_text
from .common import Line, Target, api_data
from .numpy_target import directions, program

#: NumPy's names of the standard's elementwise functions that NumPy spells differently.
RENAMED = {"arccos": "acos", "arcsin": "asin", "arctan": "atan", "arccosh": "acosh",
           "arcsinh": "asinh", "arctanh": "atanh", "arctan2": "atan2", "power": "pow",
           "absolute": "abs", "mod": "remainder"}

#: Elementwise functions of the array API standard an expression may call. The printed
#: code passes Python numbers to binary functions (`xp.maximum(x, 0.0)`), which the
#: standard allows from its 2024.12 revision.
STANDARD = frozenset("""abs acos acosh asin asinh atan atan2 atanh ceil cos cosh exp expm1
floor hypot log log1p log2 log10 logaddexp maximum minimum pow remainder sign sin sinh sqrt
square tan tanh trunc where copysign isfinite logical_and logical_or logical_not""".split())

#: NumPy constants, spelled through `math` (no array needed).
CONSTANTS = {"pi": "math.pi", "e": "math.e", "nan": "math.nan", "inf": "math.inf"}

def _dim(sizes, c) -> str:
    return str(sizes[c]) if c in sizes else "_n"  # the batch axis: the number of samples


def _permute(text: str, sub: str, target: str) -> str:
    if sub == target:
        return text
    return f"xp.permute_dims({text}, {tuple_text([str(sub.index(c)) for c in target])})"


def _group(sizes, letters) -> str:
    """One axis for a group of letters: its size (the product of theirs)."""
    known = str(math.prod(sizes[c] for c in letters if c in sizes))
    if all(c in sizes for c in letters):
        return known
    return "_n" if known == "1" else f"_n*{known}"


def _private_sums(sub: str, text: str, keep: set) -> tuple[str, str]:
    """Sum the axes whose letters nothing else needs."""
    axes = [k for k, c in enumerate(sub) if c not in keep]
    if not axes:
        return sub, text
    axis = str(axes[0]) if len(axes) == 1 else tuple_text([str(a) for a in axes])
    return "".join(c for c in sub if c in keep), f"xp.sum({text}, axis={axis})"


def _pair(a: str, ta: str, b: str, tb: str, keep: set, sizes) -> tuple[str, str]:
    """einsum of two operands with no private summed letters: their common kept letters
    are a batch of matrix products, their common other letters are contracted."""
    batch = [c for c in a if c in b and c in keep]
    contracted = [c for c in a if c in b and c not in keep]
    left = [c for c in a if c not in b]
    right = [c for c in b if c not in a]
    lead = [_dim(sizes, c) for c in batch]
    letters = "".join(batch + left + right)
    if not contracted:  # a broadcasting product
        ta = _permute(ta, a, "".join(batch + left))
        tb = _permute(tb, b, "".join(batch + right))
        if right:
            ta = f"{ta}[{', '.join([':'] * (len(batch) + len(left)) + ['None'] * len(right))}]"
        if left:
            tb = f"{tb}[{', '.join([':'] * len(batch) + ['None'] * len(left))}, ...]"
        return letters, f"({ta}*{tb})"
    if not left and not right and len(contracted) == 1:  # rows of dot products
        order = "".join(batch + contracted)
        return letters, f"xp.vecdot({_permute(ta, a, order)}, {_permute(tb, b, order)})"
    ta = _permute(ta, a, "".join(batch + left + contracted))
    tb = _permute(tb, b, "".join(batch + contracted + right))
    inner = _group(sizes, contracted)
    if len(left) != 1 or len(contracted) != 1:
        ta = f"xp.reshape({ta}, {tuple_text(lead + [_group(sizes, left), inner])})"
    if len(right) != 1 or len(contracted) != 1:
        tb = f"xp.reshape({tb}, {tuple_text(lead + [inner, _group(sizes, right)])})"
    text = f"xp.matmul({ta}, {tb})"
    if len(left) != 1 or len(right) != 1:
        text = f"xp.reshape({text}, {tuple_text(lead + [_dim(sizes, c) for c in left + right])})"
    return letters, text


def lower_einsum(ins, out, texts, sizes) -> str:
    """`einsum(ins -> out)` in the standard's functions: letters private to one operand
    are summed first, then the operands are multiplied pairwise from the left (matmul
    where letters are contracted, broadcasting otherwise), then the axes permuted to
    `out`. Letters are distinct within an operand; `sizes` gives each letter's size
    except the batch axis's, which is the number of samples."""
    operands = list(zip(ins, texts))
    while len(operands) > 1:
        (a, ta), (b, tb) = operands[:2]
        keep = set(out).union(*[s for s, _ in operands[2:]])
        a, ta = _private_sums(a, ta, keep | set(b))
        b, tb = _private_sums(b, tb, keep | set(a))
        operands[:2] = [_pair(a, ta, b, tb, keep, sizes)]
    sub, text = _private_sums(*operands[0], set(out))
    return _permute(text, sub, out)


class XpArrayPrinter(ArrayPrinter):
    """The array API standard's spelling of every array operation."""

    target = "array-api"
    ns = "xp"
    real = "xp.float64"  # the real type: a subclass per dtype (printer_for)

    def _print_And(self, expr):
        return self._nested("xp.logical_and", expr.args)

    def _print_Or(self, expr):
        return self._nested("xp.logical_or", expr.args)

    def _print_Not(self, expr):
        return f"xp.logical_not({self._print(expr.args[0])})"

    def _print_Relational(self, expr):
        op = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}[expr.rel_op]
        return f"({self._print(expr.lhs)} {op} {self._print(expr.rhs)})"

    @classmethod
    def of(cls, dtype: str) -> type:
        """The printer that computes in `dtype`."""
        if dtype == "float64":
            return cls
        return type(f"{cls.__name__}_{dtype}", (cls,), {"real": f"xp.{dtype}"})

    def literal_numbers(self) -> bool:
        return True  # log(2), sqrt(pi): a number, where xp's functions take only arrays

    def _module_format(self, fqn, register=True):
        if not fqn.startswith("numpy."):
            return super()._module_format(fqn, register)
        name = fqn[len("numpy."):]
        if name in CONSTANTS:
            return CONSTANTS[name]
        name = RENAMED.get(name, name)
        if name not in STANDARD:
            raise PrintMethodNotImplementedError(f"Unsupported by the array API: {name}")
        return f"xp.{name}"

    def _print_sigmoid(self, expr):
        self.helpers.add("_sigmoid")
        return f"_sigmoid(xp, {self._print(expr.args[0])})"

    def _print_step(self, expr):
        return f"xp.astype({self._print(expr.args[0])} > 0, {self.real})"

    def _print_equal(self, expr):
        return f"xp.astype({self._print(expr.args[0])} == {self._print(expr.args[1])}, {self.real})"

    def _print_Heaviside(self, expr):
        x = self._print(expr.args[0])
        return f"xp.where({x} > 0, 1.0, xp.where({x} < 0, 0.0, xp.where({x} == {x}, 0.5, {x})))"

    def _print_erf(self, expr):
        self.helpers.add("_erf")
        return f"_erf(xp, {self._print(expr.args[0])})"

    def _print_erfc(self, expr):
        self.helpers.add("_erf")
        return f"(1.0 - _erf(xp, {self._print(expr.args[0])}))"

    def _print_Piecewise(self, expr):
        text = "math.nan"
        for value, cond in reversed(expr.args):
            if cond == sympy.true:
                text = self._print(value)
            else:
                v = self._print(value)
                if not value.free_symbols - {N_SAMPLES}:  # xp.where takes one number at most
                    v = f"xp.asarray({v}, dtype={self.real}, device=_dev)"
                text = f"xp.where({self._print(cond)}, {v}, {text})"
        return text

    # -- spelling ---------------------------------------------------------------------
    def spell_key(self, key, shape):
        text = key_text(key, shape)  # the standard does not fill in trailing axes
        return text if text.count(",") + 1 == len(shape) else f"{text}, ..."

    def spell_rest(self, axes):
        return ", ..." if axes else ""

    def spell_number(self, text):
        return f"xp.asarray({text}, dtype={self.real}, device=_dev)"  # every value an array

    def spell_reshape(self, text, dims):
        return f"xp.reshape({text}, {tuple_text(dims)})"

    def spell_sum(self, text, sub, out, axes):
        if len(axes) == len(sub):
            return f"xp.sum({text})"
        return f"xp.sum({text}, axis={axes[0] if len(axes) == 1 else axes})"

    def spell_dot(self, a, b):
        return f"xp.vecdot({a}, {b})"

    def spell_einsum(self, ins, out, texts, sizes):
        return lower_einsum(ins, out, texts, sizes)

    def spell_broadcast(self, text, dims, constant=False):
        if constant:  # xp.broadcast_to takes arrays
            text = self.spell_number(text)
        return f"xp.broadcast_to({text}, {tuple_text(dims)})"

    def spell_concat(self, parts, axis):
        return f"xp.concat([{', '.join(parts)}], axis={axis})"

    def spell_zeros(self, dims):
        return f"xp.zeros({tuple_text(dims)}, dtype={self.real}, device=_dev)"

    def spell_extreme(self, which, text, axes):
        return f"xp.{which}({text}, axis={axes[0] if len(axes) == 1 else axes})"

    def spell_logsumexp(self, text, axis):
        self.helpers.add("_logsumexp")
        return f"_logsumexp(xp, {text}, {axis})"

    def spell_add_at(self, name, at, piece):
        return Line(name, f"_add_at({name}, _key[{at}], {piece})", False, False)


def prepare(compiled: Compiled) -> dict:
    names = compiled.names
    dialect = XpArrayPrinter.of(compiled.dtype)
    programs = {k: program(compiled.programs[k], names, k != "forward", dialect)
                for k in ("loss", "value_and_grad", "forward", "hvp")
                if k in compiled.programs}
    helpers = set().union(*(p.helpers for p in programs.values()))
    return dict(api_data(compiled), programs=programs, helpers=sorted(helpers),
                directions=directions(compiled))


TARGET = Target("array-api", (("xp_module.py.j2", "{name}_xp.py", "array-api", "#"),),
                prepare)
