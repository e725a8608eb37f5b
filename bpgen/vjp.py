"""The table of vector-Jacobian products, one rule per structural operation.

A rule is registered next to the operation it differentiates (in `bpgen/tensor.py`), as
JAX registers `defjvp`/`deflinear` next to each primitive:

    @vjp(LogSumExp)
    def _(eq, adjoint, ctx):
        return [(operand, contribution)]

`eq` is the equation `v = node(operands)`, `adjoint` is d_v (∂L/∂v for one sample, v's
shape), and `ctx` answers questions about the IR (`ctx.shape(expr)`,
`ctx.is_batched(expr)`). A rule returns, for each operand it sends something to, the
contribution in v's frame: the reverse sweep then fits it to the operand (sums over
broadcast axes, and over the samples for a value that is the same for every sample).
Elementwise equations need no rule: SymPy differentiates them.
"""

from __future__ import annotations

def registrar(table: dict):
    """A decorator factory: `@deco(node_type)` stores the decorated rule in `table`."""
    def deco(node_type):
        def register(rule):
            table[node_type] = rule
            return rule
        return register
    return deco


RULES: dict = {}
#: `@vjp(NodeType)` registers the decorated function as the VJP rule of NodeType.
vjp = registrar(RULES)
