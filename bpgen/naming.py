"""Every identifier in generated code comes from here.

User names are kept where they are legal in every target; otherwise they are mangled
deterministically: non-ASCII characters become `_uXXXX`, a leading underscore becomes
`u_`, and names that clash with a keyword of Python or C, a macro or typedef of the C
headers the generated C includes, a name the generated code defines (`PARAMS`,
`<NAME>_BLOCK`, `<name>_loss`, ...) get a trailing `_` (repeated until unique). Only
identifiers change: the API keeps the user's names (`grads["PARAMS"]`). Adjoints are
`d_<name>`, CSE temporaries `_t0, _t1, ...`. Nothing is ever named from a hash or an id.
"""

from __future__ import annotations

import builtins
import keyword
import re

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
asm typeof fortran unix linux i386 complex imaginary static_assert alignas alignof noreturn
""".split())
#: Macros and typedefs of <math.h>, <stdint.h> and <string.h> (C99 7.12, 7.18, 7.21): a
#: macro replaces any identifier of its name, wherever it appears.
C_HEADERS = set("""
FP_NAN FP_INFINITE FP_ZERO FP_SUBNORMAL FP_NORMAL FP_FAST_FMA FP_FAST_FMAF FP_FAST_FMAL
FP_ILOGB0 FP_ILOGBNAN HUGE_VALF HUGE_VALL MATH_ERRNO MATH_ERREXCEPT math_errhandling
fpclassify isnormal isgreater isgreaterequal isless islessequal islessgreater isunordered
float_t double_t NULL ptrdiff_t wchar_t wint_t sig_atomic_t max_align_t intptr_t uintptr_t
intmax_t uintmax_t INTPTR_MIN INTPTR_MAX UINTPTR_MAX INTMAX_MIN INTMAX_MAX UINTMAX_MAX
PTRDIFF_MIN PTRDIFF_MAX SIG_ATOMIC_MIN SIG_ATOMIC_MAX SIZE_MAX WCHAR_MIN WCHAR_MAX WINT_MIN
WINT_MAX INTMAX_C UINTMAX_C
""".split())
#: The sized integer types and their limits and constant macros: int8_t, INT64_MAX,
#: UINT_LEAST16_MAX, INT32_C, ...
C_SIZED = re.compile(r"u?int(_least|_fast)?(8|16|32|64)_t|U?INT(_LEAST|_FAST)?(8|16|32|64)_"
                     r"(MIN|MAX)|U?INT(8|16|32|64)_C")
#: Names the generated code uses next to user names: module aliases, the public API's
#: arguments and functions. Every other internal name starts with `_`, which no legal()
#: name does, so `x`, `n`, `i`, `m`, `out` stay the user's.
GENERATED_RESERVED = set("""
np numpy math ctypes hashlib os shlex shutil subprocess sys tempfile threading time xp
params data lr steps seed check_finite
loss forward value_and_grad hvp sgd_step init_params train
pack unpack value_and_grad_flat hvp_flat save_params load_params init_state step
permutation batches cosine_lr step_lr OPTIMIZERS N_FLAT update
PARAMS INPUTS SHAPES VALUES REDUCE BPGEN_SET CFLAGS SOURCE HEADER LIBRARY
compiler flags build threads MAX_THREADS OPENMP
""".split())
RESERVED = PYTHON_RESERVED | C_RESERVED | GENERATED_RESERVED


def reserved(text: str) -> bool:
    """Whether `text` is taken by a target language, a C header or generated code."""
    return text in RESERVED or text in C_HEADERS or bool(C_SIZED.fullmatch(text))


#: The C functions `<network>_...` and macros `<NETWORK>_...` of a generated library.
C_API = ("loss", "value_and_grad", "forward", "hvp", "sgd_step", "train", "work_size",
         "bpgen_set", "optimize", "train_size", "value_and_grad_flat", "hvp_flat", "update",
         "loss_threads", "value_and_grad_threads", "forward_threads", "hvp_threads", "openmp")
C_MACROS = ("BLOCK", "LANES", "WORK", "N_PARAMS", "N_INPUTS", "N_VALUES", "PARAM_SIZES",
            "INPUT_SIZES", "VALUE_SIZES", "N_FLAT", "N_SETTINGS", "INPUT_SIZES_0", "SGD",
            "MOMENTUM", "ADAM", "ADAMW", "MAX_CHUNKS", "CHUNK_BLOCKS")


def legal(name: str, network: str = "") -> str:
    """A name legal in Python and C99 and clear of reserved words (not yet unique).

    Names that start like bpgen's helpers (`bp_`) are prefixed with `u_`; the names of
    the C API and macros of `network` (`<network>_loss`, `<NETWORK>_BLOCK`) get a `_`.
    """
    text = "".join(c if c.isascii() else f"_u{ord(c):04x}" for c in name)
    if text.startswith("_"):
        text = "u" + text
    if text.startswith("bp_") or text.upper().startswith("BP"):
        text = "u_" + text
    api = {f"{network}_{f}" for f in C_API} | {f"{network.upper()}_{m}" for m in C_MACROS} \
        if network else set()
    while reserved(text) or text in api:
        text += "_"
    return text


def fresh(base: str, taken: set[str]) -> str:
    """`base`, or `base` with trailing underscores, whichever is first not in `taken`."""
    name = base
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def numbered(base: str, taken: set[str]) -> str:
    """`base`, else `base2`, `base3`, ...: the first not in `taken`."""
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}{k}"
    taken.add(name)
    return name


def temporary_symbols(taken: set[str]):
    """An endless supply of CSE temporaries `_t0, _t1, ...` clear of `taken`."""
    k = 0
    while True:
        name = f"_t{k}"
        k += 1
        if name not in taken:
            taken.add(name)
            yield sympy.Symbol(name, real=True)


def identifiers(symbols, temporaries=frozenset(), network: str = ""
                ) -> dict[sympy.Symbol, str]:
    """Map symbols (in a deterministic order) to unique legal identifiers.

    `temporaries` keep their `_tN` names: no user name can start with `_` once legal.
    """
    taken = {s.name for s in temporaries}
    table: dict[sympy.Symbol, str] = {s: s.name for s in temporaries}
    for sym in symbols:
        if sym not in table:
            table[sym] = fresh(legal(sym.name, network), taken)
    return table
