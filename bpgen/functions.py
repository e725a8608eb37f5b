"""Activation functions that bpgen adds to SymPy's.

Each is a `sympy.Function` with its derivative (`fdiff`) written in terms of the function
itself where possible, so that the forward-value reuse pass turns `sigmoid(s)*(1 - sigmoid(s))`
into `z*(1 - z)`. Printers know how to print each one stably (no overflow at |x| = 1000).
"""

from __future__ import annotations

import sympy
from sympy import Function, S


class _Rewritable(Function):
    """Numeric evaluation (evalf) through the function's plain SymPy definition."""

    def _eval_evalf(self, prec):
        if all(a.is_number for a in self.args):
            return self.definition(*self.args).evalf(prec)
        return None


class sigmoid(_Rewritable):  # noqa: N801 - reads like the math
    """Logistic function 1 / (1 + exp(-x))."""

    @staticmethod
    def definition(x):
        return 1 / (1 + sympy.exp(-x))

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0]) * (1 - sigmoid(self.args[0]))

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return S.Half

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sympy.exp(-x))

    def _latex(self, printer):
        return r"\sigma\left(%s\right)" % printer._print(self.args[0])


class softplus(_Rewritable):  # noqa: N801
    """log(1 + exp(x)), the smooth relu; its derivative is sigmoid(x)."""

    @staticmethod
    def definition(x):
        return sympy.log(1 + sympy.exp(x))

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_rewrite_as_log(self, x, **kwargs):
        return sympy.log(1 + sympy.exp(x))


class step(_Rewritable):  # noqa: N801
    """Unit step: 1 for x > 0, else 0 (the derivative bpgen uses for relu's kink)."""

    @staticmethod
    def definition(x):
        return sympy.Piecewise((1, x > 0), (0, True))

    def fdiff(self, argindex=1):
        return S.Zero

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return S.One if x > 0 else S.Zero


class relu(_Rewritable):  # noqa: N801
    """max(x, 0); its derivative is step(x), taken as 0 at the kink."""

    @staticmethod
    def definition(x):
        return sympy.Max(x, 0)

    def fdiff(self, argindex=1):
        return step(self.args[0])

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return x if x > 0 else S.Zero

    def _eval_rewrite_as_Max(self, x, **kwargs):
        return sympy.Max(x, 0)


class logaddexp(_Rewritable):  # noqa: N801
    """log(exp(a) + exp(b)) without overflow; ∂/∂a = sigmoid(a - b)."""

    @staticmethod
    def definition(a, b):
        return sympy.log(sympy.exp(a) + sympy.exp(b))

    nargs = 2

    def fdiff(self, argindex=1):
        a, b = self.args
        return sigmoid(a - b) if argindex == 1 else sigmoid(b - a)

    def _eval_rewrite_as_exp(self, a, b, **kwargs):
        return sympy.log(sympy.exp(a) + sympy.exp(b))


class maximum(_Rewritable):  # noqa: N801 - NumPy's name
    """The larger of a and b, elementwise; at a tie each gets half the gradient."""

    nargs = 2

    @staticmethod
    def definition(a, b):
        return sympy.Max(a, b)

    def fdiff(self, argindex=1):
        a, b = self.args
        return sympy.Heaviside(a - b) if argindex == 1 else sympy.Heaviside(b - a)


class minimum(_Rewritable):  # noqa: N801
    """The smaller of a and b, elementwise; at a tie each gets half the gradient."""

    nargs = 2

    @staticmethod
    def definition(a, b):
        return sympy.Min(a, b)

    def fdiff(self, argindex=1):
        a, b = self.args
        return sympy.Heaviside(b - a) if argindex == 1 else sympy.Heaviside(a - b)


class equal(_Rewritable):  # noqa: N801
    """1 where a == b, else 0 (a mask: its derivative is 0)."""

    nargs = 2

    @staticmethod
    def definition(a, b):
        return sympy.Piecewise((1, sympy.Eq(a, b)), (0, True))

    def fdiff(self, argindex=1):
        return S.Zero


tanh = sympy.tanh
exp = sympy.exp
log = sympy.log
sqrt = sympy.sqrt

#: Functions bpgen defines itself (the printers handle each by name).
CUSTOM = (sigmoid, softplus, step, relu, logaddexp, maximum, minimum, equal)
