"""Expression printers, one SymPy printer subclass per target language.

A printer turns one SymPy expression into source text. It knows the target's spelling of
every function bpgen supports and prints symbols through a name table (`names`), which
maps each symbol to its text (`s1`, or `s1[_i]` inside a C block loop). Strict mode makes an
unsupported function raise `PrintMethodNotImplementedError`; the emitters turn that into a
one-line `CompileError` naming the equation. Helpers a printed expression needs (`_sigmoid`,
`bp_tanh`, ...) are recorded in `helpers` so the template emits only those.
"""

from __future__ import annotations

from functools import lru_cache

import sympy
import sympy.codegen.ast
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.c import C99CodePrinter
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.pycode import PythonCodePrinter

from ..functions import relu, sigmoid, softplus, step  # noqa: F401 (names used by printers)



@lru_cache(maxsize=65536)
def _ordered_terms(expr, order) -> tuple:
    return tuple(expr.as_ordered_terms(order=order))


class _NamesMixin:
    """Symbols print through a table; helper functions are recorded when used."""

    def __init__(self, names: dict, settings=None):
        super().__init__({"strict": True, **(settings or {})})
        self.names = names
        self.helpers: set[str] = set()
        self._denominators: set = set()

    def _print_Symbol(self, expr):
        return self.names[expr]

    def _handle_UnevaluatedExpr(self, expr):
        # SymPy's rebuilds the whole expression on every doprint; bpgen makes none
        if not expr.has(sympy.UnevaluatedExpr):
            return expr
        return super()._handle_UnevaluatedExpr(expr)

    def _as_ordered_terms(self, expr, order=None):
        # every target prints the same sums, each several times: their terms are put in
        # order once (SymPy's own order, so the text is the same)
        order = order or self.order
        if order in ("old", "none"):
            return super()._as_ordered_terms(expr, order)
        return list(_ordered_terms(expr, order))

    def _print_Mul(self, expr):
        # Small powers print as products (x*x); in a denominator they need parentheses
        # that SymPy, seeing a power, would not add: y/(x*x), not y/x*x.
        saved = self._denominators
        self._denominators = {sympy.Pow(f.base, -f.exp) for f in sympy.Mul.make_args(expr)
                              if f.is_Pow and f.exp.is_Integer and f.exp < -1}
        try:
            return super()._print_Mul(expr)
        finally:
            self._denominators = saved

    def parenthesize(self, item, level, strict=False):
        if item in self._denominators and self._expands(item):
            return f"({self._print(item)})"
        return super().parenthesize(item, level, strict)

    def _expands(self, power) -> bool:
        """Whether this printer prints `power` as a product."""
        return False

    def _helper(self, name: str, *args) -> str:
        self.helpers.add(name)
        return f"{name}({', '.join(self._print(a) for a in args)})"

    def _nested(self, fn: str, args) -> str:
        args = sorted(args, key=sympy.default_sort_key)
        text = self._print(args[0])
        for a in args[1:]:
            text = f"{fn}({text}, {self._print(a)})"
        return text

    def _nested_helper(self, fn: str, args) -> str:
        self.helpers.add(fn)
        return self._nested(fn, args)


class NumpyArrayPrinter(_NamesMixin, NumPyPrinter):
    """Batched NumPy: every operation works on arrays of samples."""

    ns = "np"  # the array namespace's name in generated code
    #: None: numbers print as Python numbers, which NumPy never lets widen an array. Set
    #: (by `of`) for a real type narrower than a Python float: a number that would make a
    #: new array by itself (np.where of two numbers, 1.0*(x > 0)) is made of that type.
    scalar_type: str | None = None

    @classmethod
    def of(cls, dtype: str) -> type:
        """The printer that computes in `dtype` (its type is `_DTYPE` in the module)."""
        if dtype == "float64":
            return cls
        return type(f"{cls.__name__}_{dtype}", (cls,), {"scalar_type": "_DTYPE"})

    def typed(self, text: str) -> str:
        """A number that makes an array of the real type by itself."""
        return text if self.scalar_type is None else f"{self.scalar_type}({text})"

    def literal_numbers(self) -> bool:
        """Whether a number such as log(5) prints as its value, not as a call: np.log(5)
        is a float64 that would widen a float32 array."""
        return self.scalar_type is not None

    def _print(self, expr, **kwargs):
        if self.literal_numbers() and isinstance(expr, sympy.Expr) and not expr.is_Atom \
                and expr.is_number and expr.is_finite and expr.is_extended_real:
            return repr(float(expr))
        return super()._print(expr, **kwargs)

    def _print_Pow(self, expr, rational=False):
        if expr.exp == -1:
            return f"1/{self.parenthesize(expr.base, PRECEDENCE['Mul'], strict=True)}"
        return super()._print_Pow(expr, rational)

    def _module_format(self, fqn, register=True):
        if fqn.startswith("numpy."):
            fqn = "np." + fqn[len("numpy."):]
        return super()._module_format(fqn, register)

    def _print_sigmoid(self, expr):
        return self._helper("_sigmoid", expr.args[0])

    def _print_softplus(self, expr):
        return f"{self.ns}.logaddexp(0.0, {self._print(expr.args[0])})"

    def _print_logaddexp(self, expr):
        return f"{self.ns}.logaddexp({self._print(expr.args[0])}, {self._print(expr.args[1])})"

    def _print_relu(self, expr):
        return f"{self.ns}.maximum({self._print(expr.args[0])}, 0.0)"

    def _print_step(self, expr):
        return f"{self.typed('1.0')}*({self._print(expr.args[0])} > 0)"

    def _print_Heaviside(self, expr):
        return f"np.heaviside({self._print(expr.args[0])}, 0.5)"

    def _print_Max(self, expr):
        return self._nested(f"{self.ns}.maximum", expr.args)

    def _print_Min(self, expr):
        return self._nested(f"{self.ns}.minimum", expr.args)

    def _print_maximum(self, expr):
        return f"{self.ns}.maximum({self._print(expr.args[0])}, {self._print(expr.args[1])})"

    def _print_minimum(self, expr):
        return f"{self.ns}.minimum({self._print(expr.args[0])}, {self._print(expr.args[1])})"

    def _print_equal(self, expr):
        return f"{self.typed('1.0')}*({self._print(expr.args[0])} == {self._print(expr.args[1])})"

    def _print_erf(self, expr):
        return self._helper("_erf", expr.args[0])

    def _print_erfc(self, expr):
        return f"(1.0 - {self._helper('_erf', expr.args[0])})"

    def _print_Piecewise(self, expr):
        text = "np.nan"
        for value, cond in reversed(expr.args):
            v = self._print(value)
            if not value.free_symbols:  # np.where of numbers only makes a float64 array
                v = self.typed(v)
            if cond == sympy.true:
                text = v
            else:
                text = f"np.where({self._print(cond)}, {v}, {text})"
        return text


class MathScalarPrinter(_NamesMixin, PythonCodePrinter):
    """Plain Python floats through `math`: the fast path for a single sample."""

    #: Helpers whose definitions use `math`.
    MATH_HELPERS = frozenset({"_sigmoid_s", "_softplus_s", "_logaddexp_s"})

    def _expands(self, power) -> bool:
        return 2 <= power.exp <= 3

    def _print_Pow(self, expr, rational=False):
        base, e = expr.args
        if e.is_Integer and self._expands(expr):
            return "*".join([self.parenthesize(base, PRECEDENCE["Mul"], strict=True)] * int(e))
        if not e.is_Integer and e != sympy.S.Half:
            # x**1.5 of a negative float is complex in Python; math.pow raises instead,
            # and the call falls back to the array path (nan, as NumPy and C give)
            self.module_imports["math"].add("pow")
            return f"math.pow({self._print(base)}, {self._print(e)})"
        return super()._print_Pow(expr, rational)

    def _print_sigmoid(self, expr):
        return self._helper("_sigmoid_s", expr.args[0])

    def _print_softplus(self, expr):
        return self._helper("_softplus_s", expr.args[0])

    def _print_logaddexp(self, expr):
        return self._helper("_logaddexp_s", *expr.args)

    def _print_relu(self, expr):
        return f"max({self._print(expr.args[0])}, 0.0)"

    def _print_step(self, expr):
        return f"(1.0 if {self._print(expr.args[0])} > 0 else 0.0)"

    def _print_sign(self, expr):
        return self._helper("_sign_s", expr.args[0])

    def _print_Heaviside(self, expr):
        return self._helper("_heaviside_s", expr.args[0])

    def _print_Max(self, expr):  # nan in, nan out, as np.maximum
        return self._nested_helper("_max_s", expr.args)

    def _print_Min(self, expr):
        return self._nested_helper("_min_s", expr.args)

    def _print_maximum(self, expr):
        return self._helper("_max_s", *expr.args)

    def _print_minimum(self, expr):
        return self._helper("_min_s", *expr.args)

    def _print_equal(self, expr):
        return f"(1.0 if {self._print(expr.args[0])} == {self._print(expr.args[1])} else 0.0)"


class CPrinter(_NamesMixin, C99CodePrinter):
    """C99 on `bp_real`; powers as products, vectorisable helpers for tanh/exp/sigmoid.
    No math macros (M_LN2 is not C99): constants print as their values. The class
    computes in double; `CPrinter.of(real)` gives the printer of another real type, whose
    literals and <math.h> functions carry its suffix (2.0f, expf)."""

    real = "bp_real"  # the real type's one name
    suffix = ""  # of literals and <math.h> functions: "" for double, "f" for float

    def __init__(self, names: dict, settings=None):
        aliases = {sympy.codegen.ast.real: sympy.codegen.ast.float32} if self.suffix else {}
        super().__init__(names, {"math_macros": {}, **({"type_aliases": aliases}
                                                       if aliases else {}), **(settings or {})})
        self.known_functions = {k: v for k, v in self.known_functions.items()
                                if k not in ("exp", "tanh", "Abs", "sign")}

    @classmethod
    def of(cls, real) -> type:
        """The printer for `real` (an emit.common.Real)."""
        if real.suffix == cls.suffix:
            return cls
        return type(f"{cls.__name__}_{real.dtype}", (cls,), {"suffix": real.suffix})

    def num(self, text: str) -> str:
        """A literal of the real type: 0.5 -> 0.5f for float."""
        return text + self.suffix

    def huge(self) -> str:
        """Infinity of the real type."""
        return "HUGE_VALF" if self.suffix else "HUGE_VAL"

    def math(self, name: str) -> str:
        """A <math.h> function of the real type: sqrt -> sqrtf for float."""
        return name + self.suffix

    def _expands(self, power) -> bool:
        return 2 <= power.exp <= 4

    def _print_Pow(self, expr):
        base, e = expr.args
        b = self.parenthesize(base, PRECEDENCE["Mul"], strict=True)
        one = self.num("1.0")
        if e.is_Integer and 2 <= abs(e) <= 4:
            prod = "*".join([b] * abs(int(e)))
            return prod if e > 0 else f"{one}/({prod})"
        if e == -1:
            return f"{one}/{b}"
        if e == sympy.S.Half:
            return f"{self.math('sqrt')}({self._print(base)})"
        if e == -sympy.S.Half:
            return f"{one}/{self.math('sqrt')}({self._print(base)})"
        exponent = self._print(sympy.Float(e) if e.is_Rational else e)
        return f"{self.math('pow')}({self._print(base)}, {exponent})"

    def _print_Pi(self, expr):
        return self.num(repr(float(sympy.pi)))

    def _print_Exp1(self, expr):
        return self.num(repr(float(sympy.E)))

    def _print_Integer(self, expr):
        return self.num(f"{int(expr)}.0" if abs(int(expr)) < 2**53 else repr(float(expr)))

    def _print_Rational(self, expr):
        exact = 2**24 if self.suffix else 2**53  # integers the real type holds exactly
        if abs(expr.p) >= exact or expr.q >= exact:  # p/q would round twice: round once
            return self.num(repr(float(expr)))
        return f"{self._print(sympy.Integer(expr.p))}/{self._print(sympy.Integer(expr.q))}"

    def _print_Float(self, expr):
        value = float(expr)
        text = repr(value)
        if text in ("inf", "-inf"):
            return self.huge() if value > 0 else f"(-{self.huge()})"
        return self.num(text)

    def _print_exp(self, expr):
        return self._helper("bp_exp", expr.args[0])

    def _print_tanh(self, expr):
        return self._helper("bp_tanh", expr.args[0])

    def _print_sigmoid(self, expr):
        return self._helper("bp_sigmoid", expr.args[0])

    def _print_softplus(self, expr):
        return self._helper("bp_softplus", expr.args[0])

    def _print_logaddexp(self, expr):
        return self._helper("bp_logaddexp", *expr.args)

    def _print_relu(self, expr):
        x = self._print(expr.args[0])
        zero = self.num("0.0")
        return f"({x} <= {zero} ? {zero} : {x})"

    def _print_step(self, expr):
        zero, one = self.num("0.0"), self.num("1.0")
        return f"({self._print(expr.args[0])} > {zero} ? {one} : {zero})"

    def _print_Heaviside(self, expr):
        x = self._print(expr.args[0])
        zero, one, half = self.num("0.0"), self.num("1.0"), self.num("0.5")
        return f"({x} > {zero} ? {one} : ({x} < {zero} ? {zero} : ({x} == {x} ? {half} : {x})))"

    def _print_Abs(self, expr):
        return f"{self.math('fabs')}({self._print(expr.args[0])})"

    def _print_sign(self, expr):
        x = self._print(expr.args[0])
        zero = self.num("0.0")
        return f"({self.real})(({x} > {zero}) - ({x} < {zero}))"

    def _print_Max(self, expr):  # nan in, nan out, as np.maximum (fmax would drop it)
        return self._nested_helper("bp_max", expr.args)

    def _print_Min(self, expr):
        return self._nested_helper("bp_min", expr.args)

    def _print_maximum(self, expr):
        return self._helper("bp_max", *expr.args)

    def _print_minimum(self, expr):
        return self._helper("bp_min", *expr.args)

    def _print_equal(self, expr):
        zero, one = self.num("0.0"), self.num("1.0")
        return f"({self._print(expr.args[0])} == {self._print(expr.args[1])} ? {one} : {zero})"

    def _print_Piecewise(self, expr):
        text = "NAN"
        for value, cond in reversed(expr.args):
            if cond == sympy.true:
                text = self._print(value)
            else:
                text = f"({self._print(cond)} ? {self._print(value)} : {text})"
        return text
