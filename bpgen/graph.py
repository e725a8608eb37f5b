"""The forward and backward graphs of a network as Graphviz DOT text.

Forward: one node per input, parameter and equation, an edge from each operand to the
equation that reads it. Backward: one node per adjoint d_v = ∂L/∂v, an edge d_v → d_a for
each operand a of v's equation, labelled with the local partial ∂v/∂a (written in terms
of stored forward values, exactly as the compiler uses it). Node order is declaration
order, so the text is deterministic.
"""

from __future__ import annotations

import shutil
import subprocess

import sympy

from .autodiff import local_partial
from .errors import OutputError
from .explain import math_text
from .ir import IR, backward_slice
from .passes import reuse


#: In every graph bpgen draws (a DOT comment, carried by Graphviz into SVG): a file that
#: has it may be overwritten by the next `bpgen graph`.
GRAPH_MARK = "drawn by bpgen graph"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _forward(ir: IR) -> list[str]:
    lines = [f"digraph {_quote(ir.name)} {{", f"  comment={_quote(GRAPH_MARK)};",
             "  rankdir=LR;",
             '  node [fontname="Helvetica", fontsize=11];',
             '  edge [fontname="Helvetica", fontsize=9];',
             "  subgraph cluster_forward {", '    label="forward";', "    color=gray70;"]
    for v in ir.inputs:
        lines.append(f"    {_quote(v.name)} [shape=box, style=rounded];")
    for v in ir.params:
        lines.append(f"    {_quote(v.name)} [shape=box, style=filled, fillcolor=lightyellow];")
    for eq in ir.forward():
        label = f"{eq.lhs} = {math_text(eq.rhs)}"
        style = ", style=filled, fillcolor=mistyrose" if eq.lhs == ir.loss else ""
        lines.append(f"    {_quote(str(eq.lhs))} [label={_quote(label)}{style}];")
    for eq in ir.forward():
        for operand in sorted(eq.rhs.free_symbols, key=lambda s: s.name):
            lines.append(f"    {_quote(str(operand))} -> {_quote(str(eq.lhs))};")
    return lines


def to_dot(compiled) -> str:
    """The forward graph, and the backward graph: for a network of scalars, the lecture's
    (an edge d_v -> d_a per operand, labelled with the local partial ∂v/∂a); for shaped
    values, the compiled backward equations (∂h/∂W is not a picture anyone reads)."""
    if not compiled.ir.all_scalar():
        return _dot_of_program(compiled)
    return _dot_of_partials(compiled.ir)


def _dot_of_partials(ir: IR) -> str:
    inputs = {v.symbol for v in ir.inputs}
    values = reuse.table(ir)
    lines = _forward(ir)
    lines += ["  }", "  subgraph cluster_backward {",
              f'    label="backward: d_v = ∂{ir.loss}/∂v";', "    color=gray70;",
              '    node [shape=ellipse, style=filled, fillcolor=lightblue];']
    reached = {ir.loss}
    edges = []
    for eq in reversed(ir.forward()):
        if eq.lhs not in reached:
            continue
        for operand in sorted(eq.rhs.free_symbols - inputs, key=lambda s: s.name):
            partial = local_partial(eq, operand).xreplace(values)
            if partial != 0:
                reached.add(operand)
                edges.append(f"    {_quote('d_' + str(eq.lhs))} -> "
                             f"{_quote('d_' + str(operand))} "
                             f"[label={_quote(math_text(partial))}];")
    ordered = [v.symbol for v in ir.params] + [eq.lhs for eq in ir.forward()]
    for s in ordered:
        if s in reached:
            lines.append(f"    {_quote('d_' + str(s))};")
    lines += edges + ["  }", "}"]
    return "\n".join(lines) + "\n"


def _dot_of_program(compiled) -> str:
    """The backward graph is the compiled program's backward equations (one node each:
    d_h = d_logits @ W2.T), an edge from each backward value to the equations that read
    it."""
    ir = compiled.ir
    program = compiled.programs["value_and_grad"]
    lines = _forward(ir) + ["  }", "  subgraph cluster_backward {",
                            f'    label="backward: d_v = ∂{ir.loss}/∂v";', "    color=gray70;",
                            '    node [shape=box, style="rounded,filled", fillcolor=lightblue];']
    backward = backward_slice(program, sympy.Add(*[r.expr for r in program.results[1:]]))
    defined = {eq.lhs for eq in backward}
    for eq in backward:
        label = f"{eq.lhs} = {math_text(eq.rhs)}"
        lines.append(f"    {_quote(str(eq.lhs))} [label={_quote(label)}];")
    for eq in backward:
        for operand in sorted(eq.rhs.free_symbols & defined, key=lambda s: s.name):
            lines.append(f"    {_quote(str(operand))} -> {_quote(str(eq.lhs))};")
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def render(dot_text: str, fmt: str) -> bytes:
    """Render DOT text with Graphviz's `dot` program (svg, png, pdf)."""
    program = shutil.which("dot")
    if program is None:
        raise OutputError(f"rendering .{fmt} needs Graphviz's `dot` program, which is not "
                          "installed (e.g. `apt-get install graphviz`); .dot output "
                          "needs nothing")
    try:
        done = subprocess.run([program, f"-T{fmt}"], input=dot_text.encode("utf-8"),
                              capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise OutputError("Graphviz's dot did not finish in 120 s") from None
    if done.returncode != 0 or not done.stdout:
        why = done.stderr.decode(errors="replace").strip().splitlines()
        raise OutputError(f"Graphviz failed: {why[0] if why else 'no output'}")
    return done.stdout
