"""What every target shares: the Jinja environment, headers with a body hash, and the
translation of an optimised IR into plain lines of text (`Program`) for the templates.

Templates receive only plain data (strings, lists, booleans), never SymPy objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import jinja2
import numpy as np
from sympy.printing.codeprinter import PrintMethodNotImplementedError

from .. import __version__
from ..errors import CompileError
from ..ir import IR
from ..provenance import PLACEHOLDER


def templates_dir() -> Path:
    """Templates ship inside the wheel as bpgen/templates; a checkout has ./templates."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "templates", package.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("bpgen's templates are missing from the installation")


_ENV: jinja2.Environment | None = None


def environment() -> jinja2.Environment:
    global _ENV
    if _ENV is None:
        _ENV = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(templates_dir())),
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
            keep_trailing_newline=True, autoescape=False)
    return _ENV


def render(template: str, **data) -> str:
    return environment().get_template(template).render(
        version=__version__, fingerprint=PLACEHOLDER, **data)


# -- files -----------------------------------------------------------------------------
@dataclass(frozen=True)
class File:
    """One generated file before its header: `body` may hold provenance.PLACEHOLDER."""

    name: str
    role: str
    comment: str
    body: str


@dataclass(frozen=True)
class Target:
    """A target is data: the files it renders (template, file name pattern, provenance
    role, comment syntax) and how it turns a compiled network into their plain data."""

    name: str
    files: tuple[tuple[str, str, str, str], ...]
    prepare: Callable[..., dict]

    def render(self, compiled) -> list[File]:
        data = self.prepare(compiled)
        return [File(pattern.format(name=compiled.ir.name), role, comment,
                     render(template, **data))
                for template, pattern, role, comment in self.files]


# -- what every Python API needs --------------------------------------------------------
@dataclass(frozen=True)
class Value:
    """An input or parameter as templates see it: its key in the API, its identifier in
    generated code, its per-sample shape and number of elements."""

    key: str
    ident: str
    shape: tuple
    size: int


@dataclass(frozen=True)
class Label:
    """An input of class labels: integers 0..classes-1 (classes None: any n >= 0)."""

    key: str
    classes: int | None


@dataclass(frozen=True)
class ConstantData:
    """A constant array as templates see it: its identifier, shape, size and values
    (shortest round-trip reprs, in rows of up to 8)."""

    ident: str
    shape: tuple
    size: int
    rows: tuple


def constant_data(v, ident: str) -> ConstantData:
    flat = [repr(float(x)) for x in np.asarray(v.symbol.values).ravel()]
    rows = tuple(", ".join(flat[k:k + 8]) for k in range(0, len(flat), 8))
    return ConstantData(ident, v.shape, len(flat), rows)


@dataclass(frozen=True)
class Init:
    """How `init_params` draws one parameter: `normal` (std `scale`), `zeros`, or
    `glorot` (uniform on ±`scale`)."""

    key: str
    shape: tuple
    how: str
    scale: float


@dataclass(frozen=True)
class Real:
    """The real type of a build (`bpgen compile --dtype`), by its one name in each
    language, and what depends on it."""

    dtype: str  # NumPy's name (and ctypes' c_<c>)
    c: str  # C's
    suffix: str  # of C's literals and <math.h> functions: 2.0f, expf

    @property
    def range_text(self) -> str:
        """Its range, for messages: 'a double (about ±1.8e308)'."""
        top = f"{float(np.finfo(self.dtype).max):.1e}".replace("e+", "e")
        return f"{'a double' if self.dtype == 'float64' else self.dtype} (about ±{top})"

    @property
    def exp_limit(self) -> int:
        """The largest |a| for which exp(a) neither overflows nor underflows, even summed
        over 2**digits terms (a sum of floats stops growing long before): 673 for
        float64, 72 for float32. Below it log-sum-exp needs no shift by the maximum."""
        info = np.finfo(self.dtype)
        return math.floor(math.log(float(info.max)) - (info.nmant + 1) * math.log(2))


REALS = {"float64": Real("float64", "double", ""), "float32": Real("float32", "float", "f")}
DTYPES = tuple(REALS)  # the first is the default


def real_of(compiled) -> Real:
    return REALS[compiled.dtype]

#: The standard deviation of a scalar parameter's initial value.
INIT_STD = 0.5


def init_spec(ir: IR) -> list[Init]:
    """One policy for every network: a scalar is drawn from N(0, 0.5²) (a weight of the
    lecture's networks: random, so hidden units differ); a vector is zero (a bias); a
    matrix or larger is Glorot-uniform, U(-a, a) with a = sqrt(6/(fan_in + fan_out)),
    fan_in = the product of all axes but the last, fan_out = the last."""
    spec = []
    for p in ir.params:
        if not p.shape:
            spec.append(Init(p.name, (), "normal", INIT_STD))
        elif len(p.shape) == 1:
            spec.append(Init(p.name, p.shape, "zeros", 0.0))
        else:
            fan_in, fan_out = math.prod(p.shape[:-1]), p.shape[-1]
            spec.append(Init(p.name, p.shape, "glorot", math.sqrt(6.0 / (fan_in + fan_out))))
    return spec


def api_data(compiled) -> dict:
    """The data every template of a Python API receives."""
    ir, names = compiled.ir, compiled.names

    def value(v):
        return Value(v.name, names[v.symbol], v.shape, math.prod(v.shape))
    labels = {symbol: count for symbol, count in ir.classes}
    sizes = [math.prod(v.shape) for v in ir.params]  # pack(params): one after another
    flat_offsets = [sum(sizes[:k]) for k in range(len(sizes))]
    return dict(name=ir.name, source=ir.source, reduce=ir.reduce, loss_key=ir.loss.name,
                labels=[Label(v.name, labels[v.symbol]) for v in ir.inputs
                        if v.symbol in labels],
                params=[value(v) for v in ir.params], inputs=[value(v) for v in ir.inputs],
                constants=[constant_data(v, names[v.symbol]) for v in ir.constants],
                init=init_spec(ir), init_std=INIT_STD, dtype=compiled.dtype,
                dtype_c=real_of(compiled).c, range_text=real_of(compiled).range_text,
                offsets=flat_offsets, n_flat=sum(sizes),
                has_hvp="hvp" in compiled.programs,
                one_arrays=None)  # the NumPy module's one-sample programs (numpy_target)


# -- programs --------------------------------------------------------------------------
@dataclass(frozen=True)
class Line:
    lhs: str
    rhs: str
    batched: bool
    backward: bool
    tangent: bool = False  # of the tangent sweep (hvp), after the backward pass


@dataclass(frozen=True)
class Output:
    key: str
    text: str
    batched: bool
    kind: str


@dataclass(frozen=True)
class Program:
    """One generated function's body: its lines in order and what it returns."""

    lines: tuple[Line, ...]
    outputs: tuple[Output, ...]
    helpers: frozenset[str]

    @property
    def forward(self):
        return [ln for ln in self.lines if not ln.backward and not ln.tangent]

    @property
    def backward(self):
        return [ln for ln in self.lines if ln.backward and not ln.tangent]

    @property
    def tangent(self):
        return [ln for ln in self.lines if ln.tangent]


class UnsupportedFunction(CompileError):
    """A function the target's printer has no form for (`function` names it)."""

    def __init__(self, function: str, target: str, origin=None, message=None):
        super().__init__(message or f"function {function!r} is not supported by the "
                         f"{target} target", origin)
        self.function, self.target = function, target


def print_expr(printer, expr, origin, target: str) -> str:
    try:
        return printer.doprint(expr)
    except PrintMethodNotImplementedError as exc:
        raise unsupported(exc, target, origin) from None


def unsupported(exc: PrintMethodNotImplementedError, target: str, origin) -> UnsupportedFunction:
    """A printer's refusal as the error that names the function and the equation."""
    what = str(exc).split("\n")[0].rsplit(":", 1)[-1].strip()
    return UnsupportedFunction(what, target, origin)
