"""What every target shares: the Jinja environment, headers with a body hash, and the
translation of an optimised IR into plain lines of text (`Program`) for the templates.

Templates receive only plain data (strings, lists, booleans), never SymPy objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2
import sympy
from sympy.printing.codeprinter import PrintMethodNotImplementedError

from .. import __version__
from ..errors import CompileError
from ..provenance import PLACEHOLDER
from ..ir import ADJOINT, GRAD, IR


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


def render_c_files(name: str, templates: tuple[str, str, str], data) -> list[File]:
    """The C target's three files: header, source and ctypes wrapper, from `templates`."""
    roles = ("c-header", "c-source", "c-wrapper")
    names = (f"{name}.h", f"{name}.c", f"{name}_c.py")
    return [File(filename, role, comment, render(template, **data))
            for template, filename, role, comment in zip(templates, names, roles,
                                                         ("//", "//", "#"))]


# -- programs --------------------------------------------------------------------------
@dataclass(frozen=True)
class Line:
    lhs: str
    rhs: str
    batched: bool
    backward: bool


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
        return [ln for ln in self.lines if not ln.backward]

    @property
    def backward(self):
        return [ln for ln in self.lines if ln.backward]


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
        what = str(exc).split("\n")[0].rsplit(":", 1)[-1].strip()
        raise UnsupportedFunction(what, target, origin) from None


def make_program(ir: IR, printer, target: str) -> Program:
    """Print every equation and result of `ir` with `printer` (its `names` set)."""
    batched = ir.batched()
    lines, in_backward = [], False
    for eq in ir.equations:
        in_backward = in_backward or eq.role in (ADJOINT, GRAD)
        lines.append(Line(printer.names[eq.lhs], print_expr(printer, eq.rhs, eq.origin, target),
                          eq.lhs in batched, in_backward))
    by_lhs = {eq.lhs: eq for eq in ir.equations}
    outputs = []
    for r in ir.results:
        origin = by_lhs[r.expr].origin if r.expr in by_lhs else None
        outputs.append(Output(r.key, print_expr(printer, r.expr, origin, target),
                              bool(r.expr.free_symbols & batched), r.kind))
    return Program(tuple(lines), tuple(outputs), frozenset(printer.helpers))


def symbol_order(irs) -> list[sympy.Symbol]:
    """Every symbol of the given IRs, inputs and params first, then in equation order."""
    order: list[sympy.Symbol] = []
    for ir in irs:
        order += [v.symbol for v in ir.inputs + ir.params]
        order += [eq.lhs for eq in ir.equations]
    return order
