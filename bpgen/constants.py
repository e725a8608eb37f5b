"""Constant arrays in expressions: `scores + np.triu(np.full((T, T), -1e9), 1)`.

A NumPy array (or a nested list given to a bpgen operation) becomes a `Constant`: a
shaped symbol that carries its values. NumPy arrays work wherever SymPy meets them
(`sympify` converts them; an array on the left of an operator defers to a shaped value
on the right). The network that uses a constant gives it a name (`<equation>_const`, or
the name of `net.const(name, array)`) when the equation is declared; generated code holds
it once (a module-level array in NumPy, a `static const` array in C). A constant has no
gradient.
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy
from sympy.core.sympify import converter

from .tensor import TensorSymbol

_fresh = itertools.count()


class Constant(TensorSymbol):
    """A shaped symbol with known values (float64, read-only)."""

    def __new__(cls, name: str, values):
        values = np.array(values, dtype=np.float64)
        values.setflags(write=False)
        obj = TensorSymbol.__new__(cls, name, values.shape)
        obj._values = values
        return obj

    def __getnewargs_ex__(self):
        return (self.name, self._values), {}

    @property
    def values(self) -> np.ndarray:
        return self._values

    @property
    def registered(self) -> bool:
        return not self.name.startswith("_const")


def constant(values) -> sympy.Expr:
    """An array as an expression: a number for a 0-d array, else an unnamed Constant
    (named when a network declares the equation that uses it)."""
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"a constant must hold real numbers, not {array.dtype}")
    if array.ndim == 0:
        return sympy.Float(float(array))
    if not np.isfinite(array).all() and not np.isinf(array).any():
        raise ValueError("a constant may not hold nan")
    return Constant(f"_const{next(_fresh)}", array)


def _from_array(array):
    return constant(array)


converter[np.ndarray] = _from_array


def same_values(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.tobytes() == b.tobytes()
