"""Loop nests compiled once: a top-level loop nest of the generated C functions that
occurs more than once — in several functions, or with other arrays — becomes one small
static function, called where each copy was.

An unrolled sequence repeats the same nests with other arrays (`h_t = tanh(X[t] @ Wx
+ h_{t-1} @ Wh + b)` for every t), and `loss`, `value_and_grad` and `forward` repeat
the forward pass. Inlined, each copy costs the C compiler the same work again, and one
enormous function makes register allocation and global CSE superlinear: a 50-step RNN
took 40 s to build. Outlined, the compiler optimises each distinct nest once, as a
function with the same constant extents (so the same vectorised code). The function
keeps the names of the nest's first occurrence (it reads as the equation it computes);
its arrays become `restrict` pointer parameters (the enclosing functions already
declare every array `restrict`), its scalars value parameters, `_m` (the block's
samples) a `long` and `_row_threads` (see c_nests.ROW_THREADS) an `int`. A nest that
writes a scalar or reads the enclosing function's own parameters (`_out`, `_grad`, ...)
stays inline.

In the blocks of samples every nest is a function, even one that occurs once: a chunk
function whose blocks then only call nests is glue, which GCC compiles at -O1 (BP_GLUE in
the C source). At -O3, register allocation across the hundreds of calls of a deep network's
chunk took most of its build (1.4 of 2.7 s for a 64-layer chain), for no faster code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from .c_nests import ROW_THREADS
from .cloops import For, Scope, Stmt, render

IDENT = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")
DECLARED = re.compile(r"\b(?:bp_real|double|float|long|int|int64_t)\s+(?:\*\s*restrict\s+)?"
                      r"([A-Za-z_]\w*)")
#: Names indexed (`a[`), stored to through an index (`a[i] = `, `a[i][j] += `), assigned
#: (`a = `, `a *= `): one scan of a nest each, whatever its number of names
INDEXED = re.compile(r"\b([A-Za-z_]\w*)\s*\[")
STORED = re.compile(r"\b([A-Za-z_]\w*)(?:\[[^\[\]]*\])+\s*[-+*/]?=(?!=)")
ASSIGNED = re.compile(r"\b([A-Za-z_]\w*)\s*[-+*/]?=(?!=)")
#: Names of the enclosing function: a nest that uses one stays where it is.
ENCLOSING = {"_out", "_grad", "_params", "_tangents", "_data", "_work", "_n", "_i0"}
#: Outside the blocks, a nest that occurs once stays inline, where it reads best.
MIN_COPIES = 2


@dataclass(frozen=True)
class Nest:
    text: str  # as rendered at the first occurrence
    external: tuple  # the enclosing function's names it uses, in order of first use
    kinds: tuple  # of each: "long", "in" (array read), "out" (array written), "value"

    @cached_property
    def key(self) -> tuple:
        placeholder = {name: f"\0{k}" for k, name in enumerate(self.external)}
        return IDENT.sub(lambda m: placeholder.get(m.group(0), m.group(0)), self.text), \
            self.kinds


def _loop_vars(nodes) -> set[str]:
    out = set()
    for node in nodes:
        if isinstance(node, For):
            out.add(node.var)
            out |= _loop_vars(node.body)
        elif isinstance(node, Scope):
            out |= _loop_vars(node.body)
    return out


def analyse(node, known) -> Nest | None:
    """The nest `node` as a function could take it, or None if it must stay inline."""
    text = "\n".join(render([node], 1))
    idents = list(dict.fromkeys(IDENT.findall(text)))  # in order of first use
    inside = _loop_vars([node]) | set(DECLARED.findall(text))
    if ENCLOSING & (set(idents) - inside):
        return None
    external = [name for name in idents if name in known and name not in inside]
    indexed, stored, assigned = (set(pattern.findall(text))
                                 for pattern in (INDEXED, STORED, ASSIGNED))
    kinds = []
    for name in external:
        if name == "_m":
            kinds.append("long")
        elif name == ROW_THREADS:
            kinds.append("int")
        elif name in indexed:
            kinds.append("out" if name in stored else "in")
        elif name in assigned:
            return None  # a scalar written here
        else:
            kinds.append("value")
    return Nest(text, tuple(external), tuple(kinds))


def wrapped(head: str, params: list[str], width: int = 92) -> list[str]:
    """`head` and the parameters, one line or several aligned after the parenthesis."""
    lines, line = [], head
    for k, param in enumerate(params):
        text = param + (")" if k == len(params) - 1 else ",")
        if line != head and len(line) + 1 + len(text) > width:
            lines.append(line)
            line = " " * len(head) + text
        else:
            line += ("" if line == head else " ") + text
    return lines + [line]


def outline(functions, names, real: str) -> list[str]:
    """Replace the repeated nests of `functions` (Function records, changed in place)
    by calls; return the C lines defining the nest functions."""
    lists = ("prologue", "zero", "block", "epilogue")
    found = []  # (function, list name, position, Nest)
    for f in functions:
        known = set(names) | {"_m"} | set(
            DECLARED.findall("\n".join(render(f.pointers + f.chunk + f.block_pointers, 0))))
        for which in lists:
            for k, node in enumerate(getattr(f, which)):
                if isinstance(node, (For, Scope)):
                    nest = analyse(node, known)
                    if nest is not None:
                        found.append((f, which, k, nest))
    copies: dict = {}
    for *_, nest in found:
        copies[nest.key] = copies.get(nest.key, 0) + 1
    defined: dict = {}
    lines: list[str] = []
    for f, which, k, nest in found:
        if copies[nest.key] < MIN_COPIES and which != "block":
            continue  # (every nest of a block is a function: see BP_GLUE)
        name = defined.get(nest.key)
        if name is None:
            name = defined[nest.key] = f"bp_nest{len(defined)}"
            params = [{"long": f"const long {n}", "int": f"const int {n}",
                       "in": f"const {real} *restrict {n}",
                       "out": f"{real} *restrict {n}", "value": f"const {real} {n}"}[kind]
                      for n, kind in zip(nest.external, nest.kinds)]
            lines += ["", *wrapped(f"BP_NEST void {name}(", params or ["void"]), "{",
                      nest.text, "}"]
        getattr(f, which)[k] = Stmt(f"{name}({', '.join(nest.external)});")
    return lines
