"""Every identifier in generated code comes from here.

User names are kept where they are legal in every target; otherwise they are mangled
deterministically: non-ASCII characters become `_uXXXX`, a leading underscore becomes
`u_`, and names that clash with a keyword of Python or C or with a name the generated
code uses get a trailing `_` (repeated until unique). Adjoints are `d_<name>`, CSE
temporaries `_t0, _t1, ...`. Nothing is ever named from a hash or an id.
"""

from __future__ import annotations

import builtins
import keyword

import sympy

PYTHON_RESERVED = set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins))
C_RESERVED = set("""
auto break case char const continue default do double else enum extern float for goto if
inline int long register restrict return short signed sizeof static struct switch typedef
union unsigned void volatile while _Bool _Complex _Imaginary bool true false NULL main
acos acosh asin asinh atan atan2 atanh cbrt ceil copysign cos cosh erf erfc exp exp2 expm1
fabs fdim floor fma fmax fmin fmod frexp hypot ilogb ldexp lgamma llrint llround log log10
log1p log2 logb lrint lround modf nan nearbyint nextafter pow remainder remquo rint round
scalbln scalbn sin sinh sqrt tan tanh tgamma trunc isnan isinf isfinite signbit memcpy
memset size_t errno INFINITY NAN HUGE_VAL
""".split())
#: Names the generated code uses next to user names: module aliases, the public API's
#: arguments and functions. Every other internal name starts with `_`, which no legal()
#: name does, so `x`, `n`, `i`, `m`, `out` stay the user's.
GENERATED_RESERVED = set("""
np numpy math ctypes params data lr steps seed check_finite
loss forward value_and_grad sgd_step init_params train
""".split())
RESERVED = PYTHON_RESERVED | C_RESERVED | GENERATED_RESERVED


def legal(name: str) -> str:
    """A name legal in Python and C99 and clear of reserved words (not yet unique)."""
    text = "".join(c if c.isascii() else f"_u{ord(c):04x}" for c in name)
    if text.startswith("_"):
        text = "u" + text
    if text.startswith("bp_") or text.upper().startswith("BP"):
        text = "u_" + text
    while text in RESERVED:
        text += "_"
    return text


def fresh(base: str, taken: set[str]) -> str:
    """`base`, or `base` with trailing underscores, whichever is first not in `taken`."""
    name = base
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def adjoint_symbol(symbol: sympy.Symbol, taken: set[str]) -> sympy.Symbol:
    """The symbol holding dL/d<symbol>: `d_<name>`, clear of every name in `taken`."""
    return sympy.Symbol(fresh(f"d_{symbol.name}", taken), real=True)


def temporary_symbols(taken: set[str]):
    """An endless supply of CSE temporaries `_t0, _t1, ...` clear of `taken`."""
    k = 0
    while True:
        name = f"_t{k}"
        k += 1
        if name not in taken:
            taken.add(name)
            yield sympy.Symbol(name, real=True)


def identifiers(symbols, temporaries=frozenset()) -> dict[sympy.Symbol, str]:
    """Map symbols (in a deterministic order) to unique legal identifiers.

    `temporaries` keep their `_tN` names: no user name can start with `_` once legal.
    """
    taken = {s.name for s in temporaries}
    table: dict[sympy.Symbol, str] = {s: s.name for s in temporaries}
    for sym in symbols:
        if sym not in table:
            table[sym] = fresh(legal(sym.name), taken)
    return table
