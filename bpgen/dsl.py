"""The front end: how a user declares a network as equations.

    net = bp.Network("seed")
    x1, x2, y = net.inputs("x1 x2 y")
    w11, w21 = net.params("w11 w21")
    s1 = net.eq("s1", w11 * x1 + w21 * x2)
    net.loss("L", (y - bp.tanh(s1)) ** 2)

Each declaration is checked when it is made and recorded with its origin (the file:line
of the call in the user's net file), so every later error can point at it. The front end
knows nothing about targets; `bpgen.ir.from_network` turns a `Network` into the IR.
"""

from __future__ import annotations

import inspect
import keyword
import math
import os
import re
import sys
from dataclasses import dataclass

import numpy as np
import sympy

from .errors import DeclarationError, Diagnostic, Origin
from .tensor import ShapeError, Structural, TensorSymbol, lower, shape_of

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_SPLIT = re.compile(r"[\s,]+")

ROLES = ("input", "param", "constant", "intermediate", "loss")
#: Modules a generated `<name>.py` or `<name>_c.py` must not shadow: the standard
#: library's (sys.stdlib_module_names, Python 3.10+) and the packages generated code uses.
SHADOWED = frozenset(getattr(sys, "stdlib_module_names", ())) | {
    "numpy", "bpgen", "math", "ctypes", "os", "sys", "threading", "hashlib", "shlex",
    "shutil", "subprocess", "tempfile"}
#: The longest network name (it names files, modules and C functions).
MAX_NAME = 64
#: The most elements one value may have: its index must fit a 32-bit C long.
MAX_SIZE = 2**31 - 1
REDUCTIONS = ("mean", "sum")


def caller_origin() -> Origin | None:
    """The first stack frame outside the bpgen package: the user's declaration."""
    frame = inspect.currentframe()
    try:
        while frame is not None:
            filename = frame.f_code.co_filename
            if not os.path.abspath(filename).startswith(_PACKAGE_DIR + os.sep):
                return Origin(filename, frame.f_lineno)
            frame = frame.f_back
        return None
    finally:
        del frame


#: Subexpressions nested deeper than this become equations of their own, so that each
#: equation SymPy differentiates stays shallow: the reverse sweep then chains them in
#: linear time, where differentiating one deep expression whole swells quadratically.
MAX_HEIGHT = 16


def split_deep(expr, declare):
    """`expr` with every subexpression of height MAX_HEIGHT moved to `declare(sub)`
    (which returns the symbol that stands for it), innermost first."""
    def visit(e):
        if not e.args or e.is_Atom or isinstance(e, Structural):
            return e, 0
        args, height = [], 0
        for a in e.args:
            a, h = visit(a)
            args.append(a)
            height = max(height, h)
        if any(a is not b for a, b in zip(args, e.args)):
            e = e.func(*args)
        if height + 1 >= MAX_HEIGHT:
            return declare(e), 0
        return e, height + 1
    if not isinstance(expr, sympy.Basic) or isinstance(expr, Structural):
        return expr
    top, _ = visit(expr)
    return top


def _representable(number) -> bool:
    """Whether a SymPy number is a double (or an explicit infinity)."""
    if number.is_infinite:
        return True
    try:
        value = complex(sympy.N(number, 20))
    except (OverflowError, TypeError, ValueError):
        return False
    return value.imag == 0 and math.isfinite(value.real)


def _constants(expr):
    """Maximal subexpressions without symbols that are not plain numbers (exp(1000),
    pi**1000, acos(2)): each must evaluate to a finite double."""
    found = []

    def visit(e):
        if e.is_Atom or not isinstance(e, sympy.Expr):
            return
        if isinstance(e, Structural):
            for a in e.operands:
                visit(a)
            return
        if not e.free_symbols and not isinstance(e, sympy.Number):
            found.append(e)
            return
        for a in e.args:
            visit(a)
    visit(expr)
    return found


def _short(number) -> str:
    text = str(number)
    return text if len(text) <= 24 else str(sympy.N(number, 4))


@dataclass(frozen=True)
class Declaration:
    """One named value of a network, in declaration order."""

    name: str
    symbol: sympy.Symbol
    role: str
    expr: sympy.Expr | None
    shape: tuple[int, ...]
    origin: Origin | None
    latex: str | None = None
    anonymous: bool = False  # made by the front end for a structural operation


class Network:
    """A network written as equations; compile it with `bpgen compile`."""

    def __init__(self, name: str, hvp: bool = False):
        """hvp=True: also generate exact Hessian-vector products (hvp, hvp_flat); they
        make the C library about twice as large and slower to build."""
        self.origin = caller_origin()
        if not isinstance(hvp, bool):
            raise DeclarationError(f"hvp must be True or False, not {hvp!r}", self.origin)
        self.hvp = hvp
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) \
                or not name.isascii() or len(name) > MAX_NAME or name.startswith("__"):
            raise DeclarationError(
                f"network name {name!r} is not a valid module name (ASCII letters, digits "
                f"and _, at most {MAX_NAME} characters, not starting with __)", self.origin)
        for module in (name, f"{name}_c"):
            if module in SHADOWED:
                raise DeclarationError(
                    f"network name {name!r} would make a module {module!r} that shadows "
                    f"Python's or NumPy's own {module!r}; choose another name", self.origin)
        self.name = name
        self.declarations: list[Declaration] = []
        self.diagnostics: list[Diagnostic] = []
        self.reduce = "mean"
        self._by_name: dict[str, Declaration] = {}
        self._made: dict = {}  # expression -> the anonymous equation that computes it
        self.int_inputs: dict = {}  # input symbol -> number of classes (None: not known)
        self._loss: Declaration | None = None

    # -- declarations ------------------------------------------------------------------
    def inputs(self, names, **options):
        """Declare per-sample data; `"x1 x2 y"` returns a tuple, `"x"` one symbol."""
        return self._declare_many(names, "input", options)

    def params(self, names, **options):
        """Declare trainable parameters; same naming rules as `inputs`."""
        return self._declare_many(names, "param", options)

    def input(self, name: str, shape=(), latex: str | None = None,
              dtype=float) -> sympy.Symbol:
        """Per-sample data of `shape`; `dtype=int` for class labels (0, 1, 2, ...)."""
        origin = caller_origin()
        if dtype not in (float, int):
            raise DeclarationError(f"{name!r}: dtype must be float or int, not {dtype!r}",
                                   origin)
        if dtype is int and shape not in ((), []):
            raise DeclarationError(f"{name!r}: an input of dtype=int (a class label) is one "
                                   "number per sample, shape ()", origin)
        symbol = self._declare(name, "input", None, shape, latex, origin,
                               symbol=sympy.Symbol(name, integer=True) if dtype is int
                               else None)
        if dtype is int:
            self.int_inputs[symbol] = None  # the number of classes, once known
        return symbol

    def const(self, name: str, values, latex: str | None = None) -> sympy.Symbol:
        """A constant array (a mask, a fixed filter) that equations may use by this name."""
        from .constants import Constant
        origin = caller_origin()
        array = np.asarray(values)
        if array.dtype.kind not in "biuf" or array.ndim == 0:
            raise DeclarationError(f"{name!r}: a constant must be an array of real "
                                   "numbers with at least one axis", origin)
        symbol = self._declare(name, "constant", None, array.shape, latex, origin,
                               symbol=Constant(name, array))
        return symbol

    def param(self, name: str, shape=(), latex: str | None = None) -> sympy.Symbol:
        return self._declare(name, "param", None, shape, latex, caller_origin())

    def eq(self, name: str, expr, latex: str | None = None) -> sympy.Symbol:
        """Declare `name = expr`; returns the symbol `name` for later equations."""
        origin = caller_origin()
        expr = self._check_expr(name, expr, origin)
        if self._loss is not None:
            self.diagnostics.append(Diagnostic(
                f"equation {name!r} comes after the loss {self._loss.name!r} and cannot "
                "affect it; it is computed by forward() only", origin))
        expr, shape = self._lower(name, expr, origin)
        return self._declare(name, "intermediate", expr, shape, latex, origin)

    def loss(self, name: str, expr, reduce: str = "mean", latex: str | None = None):
        """Declare the per-sample loss; `reduce` ("mean" or "sum") combines a batch."""
        origin = caller_origin()
        if self._loss is not None:
            raise DeclarationError(
                f"loss declared twice (first as {self._loss.name!r} at "
                f"{self._loss.origin})", origin)
        if reduce not in REDUCTIONS:
            raise DeclarationError(
                f"reduce must be 'mean' or 'sum', not {reduce!r}", origin)
        expr = self._check_expr(name, expr, origin)
        expr, shape = self._lower(name, expr, origin)
        if shape != ():
            raise DeclarationError(
                f"the loss {name!r} must be a per-sample scalar, but it has shape {shape} "
                "(reduce it with bp.sum or bp.mean)", origin)
        symbol = self._declare(name, "loss", expr, (), latex, origin)
        self._loss = self._by_name[name]
        self.reduce = reduce
        return symbol

    # -- queries -----------------------------------------------------------------------
    def by_role(self, role: str) -> list[Declaration]:
        return [d for d in self.declarations if d.role == role]

    @property
    def loss_declaration(self) -> Declaration | None:
        return self._loss

    def __repr__(self) -> str:
        return f"Network({self.name!r}, {len(self.declarations)} declarations)"

    def _repr_latex_(self) -> str:
        rows = [
            f"{sympy.latex(d.symbol)} &= {sympy.latex(d.expr)}"
            for d in self.declarations if d.expr is not None
        ]
        return "$\\begin{aligned}" + r" \\ ".join(rows) + "\\end{aligned}$"

    # -- checks ------------------------------------------------------------------------
    def _lower(self, name, expr, origin):
        """Shape-check `expr` and give its structural operations their own equations."""
        try:
            shape = shape_of(expr)
        except ShapeError as exc:
            raise DeclarationError(f"equation {name!r}: {exc}", origin) from None
        counts: dict[str, int] = {}

        def declare(kind, sub):
            if sub in self._made:  # the same operation written twice is computed once
                return self._made[sub]
            counts[kind] = counts.get(kind, 0) + 1
            base = f"{name}_{kind}" + (str(counts[kind]) if counts[kind] > 1 else "")
            while base in self._by_name:
                base += "_"
            self._made[sub] = self._declare(base, "intermediate", sub, shape_of(sub), None,
                                            origin, anonymous=True)
            return self._made[sub]

        return split_deep(lower(expr, declare), lambda sub: declare("nest", sub)), shape

    def _declare_many(self, names, role: str, options: dict):
        origin = caller_origin()
        unknown = set(options) - {"latex"}
        if unknown:
            raise DeclarationError(
                f"unknown option {sorted(unknown)[0]!r} for {role}s()", origin)
        single = isinstance(names, str) and len(_SPLIT.split(names.strip(" ,"))) == 1 \
            and "," not in names
        if isinstance(names, str):
            names = [n for n in _SPLIT.split(names) if n]
        names = list(names)
        if not names:
            raise DeclarationError(f"{role}s() needs at least one name", origin)
        latex = options.get("latex")
        if latex is not None and not isinstance(latex, (list, tuple)):
            latex = [latex] if len(names) == 1 else None
        if latex is not None and len(latex) != len(names):
            raise DeclarationError("latex= needs one string per declared name", origin)
        symbols = tuple(
            self._declare(n, role, None, (), latex[i] if latex else None, origin)
            for i, n in enumerate(names)
        )
        return symbols[0] if single else symbols

    def _declare(self, name, role, expr, shape, latex, origin,
                 anonymous=False, symbol=None) -> sympy.Symbol:
        if latex is not None and not isinstance(latex, str):
            raise DeclarationError(f"{name!r}: latex= must be a string, not "
                                   f"{type(latex).__name__}", origin)
        if not isinstance(name, str) or not name.isidentifier():
            raise DeclarationError(f"{name!r} is not a valid name", origin)
        if name in self._by_name:
            first = self._by_name[name]
            if first.anonymous:
                raise DeclarationError(
                    f"{name!r} is the name bpgen gave to an operation inside an earlier "
                    f"equation (at {first.origin}); choose another name", origin)
            raise DeclarationError(
                f"{name!r} is declared twice (first at {first.origin})", origin)
        shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
        if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0
                   for d in shape):
            raise DeclarationError(
                f"{name!r}: shape {shape} must be a tuple of positive integers", origin)
        shape = tuple(int(d) for d in shape)
        if int(np.prod(shape, dtype=object)) > MAX_SIZE:
            raise DeclarationError(
                f"{name!r}: shape {shape} has {int(np.prod(shape, dtype=object))} elements; "
                f"bpgen supports at most {MAX_SIZE} per value", origin)
        if symbol is None:
            symbol = TensorSymbol(name, shape) if shape else sympy.Symbol(name, real=True)
        decl = Declaration(name, symbol, role, expr, shape, origin, latex, anonymous)
        self.declarations.append(decl)
        self._by_name[name] = decl
        return symbol

    def _own_constants(self, name, expr, origin):
        """Constants made from arrays in `expr` get names of this network (the same
        values once, whichever equation uses them)."""
        from .constants import Constant, same_values
        loose = sorted((c for c in expr.atoms(Constant) if not c.registered),
                       key=lambda c: c.name)
        if not loose:
            return expr
        mapping = {}
        for c in loose:
            known = next((d.symbol for d in self.declarations if d.role == "constant" and
                          same_values(d.symbol.values, c.values)), None)
            if known is None:
                base = f"{name}_const"
                label = base
                k = 1
                while label in self._by_name:
                    k += 1
                    label = f"{base}{k}"
                known = self._declare(label, "constant", None, c.shape, None, origin,
                                      anonymous=True, symbol=Constant(label, c.values))
            mapping[c] = known
        return expr.xreplace(mapping)

    def _check_expr(self, name, expr, origin) -> sympy.Expr:
        try:
            expr = sympy.sympify(expr, strict=True)
        except (sympy.SympifyError, TypeError) as exc:
            raise DeclarationError(
                f"equation {name!r}: {expr!r} is not a SymPy expression ({exc})",
                origin) from None
        if not isinstance(expr, sympy.Expr) or isinstance(expr, sympy.MatrixBase):
            raise DeclarationError(
                f"equation {name!r}: expected a scalar expression, got "
                f"{type(expr).__name__}", origin)
        expr = self._own_constants(name, expr, origin)
        for sym in sorted(expr.free_symbols, key=sympy.default_sort_key):
            decl = self._by_name.get(sym.name)
            if decl is None:
                raise DeclarationError(
                    f"equation {name!r} uses undeclared symbol {sym.name!r}", origin)
            if decl.symbol != sym:
                raise DeclarationError(
                    f"equation {name!r} uses a symbol {sym.name!r} that was not created "
                    "by this network (use the symbols returned by inputs/params/eq)",
                    origin)
            if decl.role == "loss":
                raise DeclarationError(
                    f"equation {name!r} uses the loss {sym.name!r}", origin)
        if expr.has(sympy.nan, sympy.zoo) or any(
                isinstance(a, sympy.Float) and a != a for a in expr.atoms(sympy.Float)):
            raise DeclarationError(f"equation {name!r} contains a NaN constant", origin)
        for number in sorted(expr.atoms(sympy.Number), key=sympy.default_sort_key):
            if not _representable(number):
                raise DeclarationError(
                    f"equation {name!r}: the constant {_short(number)} is outside the range "
                    "of a double (about ±1.8e308)", origin)
        if expr.has(sympy.I):
            raise DeclarationError(
                f"equation {name!r} is complex-valued; bpgen computes in real numbers",
                origin)
        if expr.has(sympy.Derivative, sympy.Integral):
            raise DeclarationError(
                f"equation {name!r} contains an unevaluated derivative or integral",
                origin)
        if expr.has(sympy.Sum, sympy.Product, sympy.Lambda):
            raise DeclarationError(
                f"equation {name!r} contains an unevaluated sum, product or lambda (write "
                "it out, e.g. with Python's sum(...), or call .doit())", origin)
        for constant in _constants(expr):
            if not _representable(constant):
                raise DeclarationError(
                    f"equation {name!r}: {_short(constant)} is not a finite real number "
                    "(outside the range of a double, or complex)", origin)
        return expr
