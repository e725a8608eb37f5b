"""C code as a small tree: loops, statements, comments and scopes, rendered to lines.

The C emitter builds each function body as a tree, so schedules (fusing neighbouring
loops, tiling, threads) transform trees, never indented strings:

    For("_z", "_m", [Stmt("s1[_z] = w11*x1[_z] + w21*x2[_z];")])

renders as

    for (long _z = 0; _z < _m; ++_z)
        s1[_z] = w11*x1[_z] + w21*x2[_z];
"""

from __future__ import annotations

from dataclasses import dataclass, field

INDENT = "    "


@dataclass
class Stmt:
    """One line of C (a statement or a declaration, with its `;`)."""

    text: str


@dataclass
class Comment:
    text: str


@dataclass
class For:
    """`for (long var = start; var < extent; var += step)` around `body`."""

    var: str
    extent: str
    body: list = field(default_factory=list)
    step: int | str = 1  # a C expression (a macro) as a string
    start: str = "0"
    fusable: bool = False
    pragma: str = ""  # a line before the loop (a macro that may expand to a _Pragma)

    @property
    def header(self) -> tuple:
        return (self.var, self.extent, self.step, self.start)


@dataclass
class Scope:
    """A braced block, for local declarations; `cond`: run only when it holds."""

    body: list = field(default_factory=list)
    cond: str = ""


def render(nodes, depth: int = 1) -> list[str]:
    """C lines for `nodes`, indented `depth` levels."""
    lines: list[str] = []
    pad = INDENT * depth
    for node in nodes:
        if isinstance(node, Stmt):
            lines.append(pad + node.text)
        elif isinstance(node, Comment):
            lines.append(f"{pad}/* {node.text} */")
        elif isinstance(node, Scope):
            head = f"if ({node.cond}) {{" if node.cond else "{"
            lines += [pad + head, *render(node.body, depth + 1), pad + "}"]
        elif isinstance(node, For):
            step = f"++{node.var}" if node.step == 1 else f"{node.var} += {node.step}"
            if node.pragma:
                lines.append(pad + node.pragma)
            head = (f"{pad}for (long {node.var} = {node.start}; {node.var} < {node.extent}; "
                    f"{step})")
            inner = node.body[0] if len(node.body) == 1 else None
            if inner is not None and not isinstance(inner, Comment) and \
                    not (isinstance(inner, For) and inner.pragma):  # a macro: maybe a statement
                lines += [head, *render(node.body, depth + 1)]
            else:
                lines += [head + " {", *render(node.body, depth + 1), pad + "}"]
        else:
            raise TypeError(f"not a C node: {node!r}")
    return lines


def nest(loops, body, fusable=False) -> list:
    """`body` inside loops [(var, extent), ...], outermost first."""
    nodes = list(body)
    for var, extent in reversed(loops):
        nodes = [For(var, extent, nodes, fusable=fusable)]
    return nodes


MAX_FUSED = 16  # statements in one fused loop: beyond, the C compiler's work grows fast


def fuse(nodes) -> list:
    """Neighbouring loops with the same header that are both marked `fusable` (elementwise
    loops that call no math function: such a loop vectorises best by itself) become one
    loop, their bodies in order, up to MAX_FUSED statements (a deep chain's backward pass
    would otherwise be one loop of hundreds, which takes gcc minutes; loops of 16 repeat,
    and the repeats are compiled once, see c_outline)."""
    out: list = []
    for node in nodes:
        prev = out[-1] if out else None
        if isinstance(node, For) and isinstance(prev, For) and prev.header == node.header \
                and prev.fusable and node.fusable and \
                len(prev.body) + len(node.body) <= MAX_FUSED:
            prev.body = fuse(prev.body + node.body)
        else:
            out.append(node)
    return out
