"""Copy propagation: `a = b` (b a symbol of the same shape) disappears.

The reverse sweep and CSE leave such copies behind (`d_s = d_z` through an addition,
`d_b1 = d_b1_part`). When `b` is computed by an equation bpgen made (anonymous, a
temporary) or the copy is a gradient, `b`'s equation takes the copy's name (a
gradient's name first, then a declared one), and the other copies read it; a copy of an
input, a parameter or a declared forward value is replaced by that value. Equations the
user declared are kept as written. Decisions come from roles and the `anonymous` flag,
never from names.
"""

from __future__ import annotations

from dataclasses import replace

from ..ir import FORWARD, GRAD, IR, LOSS, PART, TEMP


def _removable(eq) -> bool:
    """bpgen may rename or drop it: not a forward value the user declared."""
    return eq.role not in (FORWARD, LOSS) or eq.anonymous


def _preference(eq):
    """Which name a value keeps: a gradient's, an adjoint's, a declared one."""
    return (eq.role != GRAD, eq.role in (PART, TEMP), eq.anonymous, eq.lhs.name)


def run(ir: IR) -> IR:
    while True:
        new = _once(ir)
        if new is ir:
            return ir
        ir = new


def _once(ir: IR) -> IR:
    shapes = ir.shapes()
    by_lhs = {eq.lhs: eq for eq in ir.equations}
    copies: dict = {}
    for eq in ir.equations:
        if eq.rhs.is_Symbol and shapes.get(eq.rhs) == eq.shape and _removable(eq):
            copies.setdefault(eq.rhs, []).append(eq)
    copied = {eq.lhs for group in copies.values() for eq in group}
    subst, rename, drop = {}, {}, set()
    for b, group in copies.items():
        source = by_lhs.get(b)
        if source is not None and source.lhs in copied:
            continue  # a copy of a copy: the next round
        if source is not None and _removable(source) and (
                source.anonymous or source.role in (PART, TEMP) or
                any(c.role == GRAD for c in group)):
            target = min(group, key=_preference)
            rename[b] = target
            subst[b] = target.lhs
            others = [c for c in group if c is not target]
            drop.add(target.lhs)
        else:
            target, others = None, group
        for c in others:
            drop.add(c.lhs)
            subst[c.lhs] = target.lhs if target is not None else b
    if not drop:
        return ir
    equations = []
    for eq in ir.equations:
        if eq.lhs in drop:
            continue
        if eq.lhs in rename:
            t = rename[eq.lhs]
            eq = replace(eq, lhs=t.lhs, role=t.role, anonymous=t.anonymous)
        equations.append(eq.replace_rhs(eq.rhs.xreplace(subst)))
    return ir.with_equations(equations, [replace(r, expr=r.expr.xreplace(subst))
                                         for r in ir.results])
