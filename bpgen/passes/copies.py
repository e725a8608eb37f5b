"""Copy propagation: `a = b` (b a symbol of the same shape) disappears.

The reverse sweep and CSE leave such copies behind (`d_s = d_z` through an addition,
`d_b1 = _t0`). When `b` is computed by a backward equation or a temporary, that equation
takes the copy's name (a gradient's name first, then an adjoint's), and the other copies
read it; a copy of a forward value is replaced by that value. Forward values the user
declared are kept as written (the front end's hidden equations are not).
"""

from __future__ import annotations

from dataclasses import replace

from ..ir import FORWARD, GRAD, IR, LOSS, TEMP


def _preference(eq):
    return (eq.role != GRAD, "_part" in eq.lhs.name, eq.lhs.name)


def run(ir: IR) -> IR:
    while True:
        new = _once(ir)
        if new is ir:
            return ir
        ir = new


def _once(ir: IR) -> IR:
    shapes = ir.shapes()
    kept = (FORWARD, LOSS)
    copies: dict = {}
    for eq in ir.equations:
        if (eq.role not in kept or eq.lhs in ir.hidden) and eq.rhs.is_Symbol \
                and shapes.get(eq.rhs) == eq.shape:
            copies.setdefault(eq.rhs, []).append(eq)
    if not copies:
        return ir
    results = {r.expr for r in ir.results}
    rename, drop = {}, set()
    by_lhs = {eq.lhs: eq for eq in ir.equations}
    for b, group in copies.items():
        source = by_lhs.get(b)
        named = source is not None and source.role != TEMP and \
            "_part" not in source.lhs.name
        if source is not None and source.role not in kept and b not in results and (
                not named or any(c.role == GRAD for c in group)):
            target = min(group, key=_preference)
            rename[b] = target
            drop.add(target.lhs)
            for c in group:
                if c is not target:
                    rename.setdefault(c.lhs, None)
                    drop.add(c.lhs)
        else:
            for c in group:
                if c.lhs not in results:
                    rename[c.lhs] = None
                    drop.add(c.lhs)
    if not drop:
        return ir
    subst = {}
    for b, target in rename.items():
        if target is not None:
            subst[b] = target.lhs
    for b, group in copies.items():
        for c in group:
            if c.lhs in drop and rename.get(c.lhs, 0) is None:
                subst[c.lhs] = subst.get(b, b)
    equations = []
    for eq in ir.equations:
        if eq.lhs in drop:
            continue
        if eq.lhs in rename and rename[eq.lhs] is not None:
            eq = replace(eq, lhs=rename[eq.lhs].lhs, role=rename[eq.lhs].role)
        equations.append(eq.replace_rhs(eq.rhs.xreplace(subst)))
    return ir.with_equations(equations, [replace(r, expr=r.expr.xreplace(subst))
                                         for r in ir.results])
