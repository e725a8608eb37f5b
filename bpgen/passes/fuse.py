"""Fusing a sum of matrix products into one product of concatenations (im2col).

A convolution written with slices is a sum of k*k matrix products of equal shapes,

    conv = sum(img[i:i+6, j:j+6] @ K[i, j] for i in range(3) for j in range(3))

and so is any sum of products whose left operands share one shape and right operands
another. Since  sum_k A_k @ B_k = [A_1 | A_2 | ...] @ [B_1; B_2; ...],  this pass joins
the left operands along their contracted (last) axis and the right operands along their
first, and computes ONE product: the im2col form of a convolution, one large matrix
product instead of k*k small ones, forward and (through the concatenations' slices)
backward. Runs on the forward IR, before the reverse sweep.
"""

from __future__ import annotations

import sympy

from ..ir import FORWARD, IR, Equation, fresh_name
from ..nodes import Concat
from ..tensor import Einsum, make_symbol, matmul_form, shape_of

MIN_TERMS = 3  # two products are as fast apart as joined; from three, joining wins


def _product(eq):
    """(spec, left, right) of an anonymous `left @ right` equation whose left operand
    is contracted over its last axis and whose right one is a matrix, else None."""
    node = eq.rhs
    if not eq.anonymous or not isinstance(node, Einsum) or node.batch_sum or \
            len(node.operands) != 2:
        return None
    ins, out = node.subscripts
    if len(ins[1]) != 2 or matmul_form(ins, out, [len(s) for s in ins]) != (0, 1, False, False):
        return None
    return node.spec, node.operands[0], node.operands[1]


def run(ir: IR) -> IR:
    products = {eq.lhs: found for eq in ir.forward() if (found := _product(eq))}
    if not products:
        return ir
    uses: dict = {}
    for eq in ir.equations:
        for s in eq.rhs.free_symbols:
            uses[s] = uses.get(s, 0) + 1
    table = ir.shapes()
    batched = ir.batched()
    taken = ir.names()
    fused: set = set()  # products now computed as part of a joined one
    equations = []

    def declare(base, rhs, origin):
        name = fresh_name(base, taken)
        taken.add(name)
        shape = shape_of(rhs, table)
        symbol = make_symbol(name, shape)
        equations.append(Equation(symbol, rhs, FORWARD, shape, origin, True))
        table[symbol] = shape
        return symbol

    def join(add, eq):
        groups: dict = {}
        for term in add.args:
            if term in products and uses.get(term) == 1:
                spec, left, right = products[term]
                key = (spec, table[left], table[right], left in batched, right in batched)
                groups.setdefault(key, []).append(term)
        new_terms = list(add.args)
        for (spec, left_shape, *_), terms in sorted(groups.items(), key=lambda g: str(g[0])):
            if len(terms) < MIN_TERMS:
                continue
            lefts = [products[t][1] for t in terms]
            rights = [products[t][2] for t in terms]
            # im2col's names: the left operands side by side are the columns
            left = declare(f"{eq.lhs.name}_cols", Concat(len(left_shape) - 1, *lefts),
                           eq.origin)
            right = declare(f"{eq.lhs.name}_rows", Concat(0, *rights), eq.origin)
            joined = declare(f"{eq.lhs.name}_matmul", Einsum(spec, 0, left, right), eq.origin)
            fused.update(terms)
            new_terms = [t for t in new_terms if t not in terms] + [joined]
        return sympy.Add(*new_terms) if len(new_terms) != len(add.args) else add

    for eq in ir.equations:
        if eq.role == FORWARD and not isinstance(eq.rhs, Einsum):
            rhs = eq.rhs.replace(lambda n: n.is_Add, lambda n, eq=eq: join(n, eq))
            eq = eq.replace_rhs(rhs)
        equations.append(eq)
    if not fused:
        return ir
    return ir.with_equations([eq for eq in equations if eq.lhs not in fused])
