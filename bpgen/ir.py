"""The IR: one flat, topologically ordered list of single assignments.

Every stage reads and writes an `IR`. Forward equations come first (declaration order),
the reverse sweep appends backward equations after them, and passes rewrite the list.
Equations are never substituted into each other except by passes that say so.

A value is a per-sample value of some shape (a scalar has shape `()`): the user writes the
math of one sample, and the batch axis is implicit. A value that depends on no input is
the same for every sample (a parameter, `W.T`, a regulariser) and is computed once per
batch. The only operations that cross samples are sums over the samples (an `Einsum` with
`batch_sum`), and they are explicit equations: the total of the loss (`L_total`), the
gradient of each parameter. The 1/n of a mean is the last step, in the results
(`L_total/_n`), so a data-parallel caller can drop it and add up partial sums.

An IR also names its *results*: the values a generated function returns (the loss, each
parameter's gradient, or forward values), as expressions over the equations' symbols.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import sympy

from .dsl import Network
from .errors import CompileError, Origin
from .tensor import Einsum, ShapeError, broadcast, make_symbol, shape_of

#: The number of samples in a batch (a value that is the same for every sample counts n
#: times in a sum over samples; a mean divides by it).
N_SAMPLES = sympy.Symbol("_n", positive=True)

#: Equation roles. `total` is the loss summed over the samples of a batch; `part` a piece
#: of the backward pass that is not the adjoint of a value (a contribution being summed);
#: `tangent` a value's derivative along a direction of the parameters (bpgen.jvp).
FORWARD, LOSS, TOTAL = "forward", "loss", "total"
ADJOINT, PART, GRAD, TEMP = "adjoint", "part", "grad", "temp"
TANGENT = "tangent"
BACKWARD = (ADJOINT, PART, GRAD)


@dataclass(frozen=True)
class Var:
    """An input or parameter: a value given to the generated code."""

    name: str
    symbol: sympy.Symbol
    shape: tuple[int, ...] = ()
    origin: Origin | None = None
    latex: str | None = None


@dataclass(frozen=True)
class Equation:
    """`lhs = rhs`; `origin` is the declaration it came from (backward ones included).

    `anonymous` equations were made by bpgen, not declared by the user (the operands of a
    structural operation, a split deep expression, parts of the backward pass): passes
    may rename or remove them, and forward() does not report them.
    """

    lhs: sympy.Symbol
    rhs: sympy.Expr
    role: str
    shape: tuple[int, ...] = ()
    origin: Origin | None = None
    anonymous: bool = False

    def replace_rhs(self, rhs: sympy.Expr) -> "Equation":
        return replace(self, rhs=rhs)


@dataclass(frozen=True)
class Result:
    """A value a generated function returns: `key` names it in the returned dict."""

    key: str
    expr: sympy.Expr
    kind: str  # "loss", "grad" or "value"


@dataclass(frozen=True)
class IR:
    name: str
    source: str
    inputs: tuple[Var, ...]
    params: tuple[Var, ...]
    equations: tuple[Equation, ...]
    results: tuple[Result, ...]
    loss: sympy.Symbol
    reduce: str = "mean"
    latex: dict = field(default_factory=dict, compare=False, hash=False)
    constants: tuple[Var, ...] = ()  # symbols are bpgen.constants.Constant (with values)
    classes: tuple = ()  # (input symbol, number of classes) of inputs declared dtype=int

    # -- construction helpers ----------------------------------------------------------
    def with_equations(self, equations, results=None) -> "IR":
        return replace(self, equations=tuple(equations),
                       results=self.results if results is None else tuple(results))

    # -- queries -----------------------------------------------------------------------
    def forward(self) -> tuple[Equation, ...]:
        return tuple(e for e in self.equations if e.role in (FORWARD, LOSS))

    def names(self) -> set[str]:
        """Every symbol name the IR defines (inputs, params, constants, equations)."""
        return {v.symbol.name for v in self.inputs + self.params + self.constants} | {
            e.lhs.name for e in self.equations}

    def batched(self) -> set[sympy.Symbol]:
        """Symbols whose value differs from sample to sample (they depend on an input and
        are not a sum over the samples)."""
        known = self.__dict__.get("_batched")  # an IR never changes: found once
        if known is None:
            varying = {v.symbol for v in self.inputs}
            for eq in self.equations:
                if eq.rhs.free_symbols & varying and not is_batch_sum(eq.rhs):
                    varying.add(eq.lhs)
            known = frozenset(varying)
            object.__setattr__(self, "_batched", known)
        return set(known)

    def shapes(self) -> dict:
        """Every symbol's per-sample shape."""
        table = {v.symbol: v.shape for v in self.inputs + self.params + self.constants}
        table.update({eq.lhs: eq.shape for eq in self.equations})
        return table

    def all_scalar(self) -> bool:
        """Whether every value has shape () (a network of the lecture's kind)."""
        return not self.constants and all(not v.shape for v in self.inputs + self.params) and \
            all(not eq.shape for eq in self.equations)

    def validate(self) -> "IR":
        """Check single assignment, definition before use, and shapes: every right-hand
        side has its equation's declared shape (or broadcasts to it)."""
        given = self.inputs + self.params + self.constants
        defined = {v.symbol for v in given}
        if len(defined) != len(given):
            raise AssertionError("an input, parameter or constant is declared twice")
        table = {v.symbol: v.shape for v in given}
        defined.add(N_SAMPLES)
        for eq in self.equations:
            missing = eq.rhs.free_symbols - defined
            if missing:
                names = sorted(s.name for s in missing)
                raise AssertionError(f"{eq.lhs} uses {names} before definition")
            if eq.lhs in defined:
                raise AssertionError(f"{eq.lhs} is assigned twice")
            try:
                shape = shape_of(eq.rhs, table)
                fits = broadcast(shape, eq.shape) == eq.shape
            except ShapeError:
                fits = False
            if not fits:
                raise AssertionError(f"{eq.lhs}: declared shape {eq.shape}, but its "
                                     f"right-hand side has shape {shape_of(eq.rhs, table)}")
            if getattr(eq.lhs, "shape", ()) != eq.shape:
                raise AssertionError(f"{eq.lhs}: symbol of shape {eq.lhs.shape}, equation "
                                     f"of shape {eq.shape}")
            defined.add(eq.lhs)
            table[eq.lhs] = eq.shape
        for r in self.results:
            missing = r.expr.free_symbols - defined
            if missing:
                raise AssertionError(f"result {r.key} uses undefined {sorted(map(str, missing))}")
        return self


def is_batch_sum(expr) -> bool:
    return isinstance(expr, Einsum) and expr.batch_sum


def scale(reduce: str) -> sympy.Expr:
    """What the sum over the samples is multiplied by: 1/n for a mean, 1 for a sum."""
    return 1 / N_SAMPLES if reduce == "mean" else sympy.S.One


def from_network(net: Network, source: str) -> IR:
    """Turn a declared network into the forward IR, with the loss total as its result."""
    loss = net.loss_declaration
    if loss is None:
        raise CompileError(f"network {net.name!r} declares no loss (call net.loss)",
                           net.origin)
    params = tuple(Var(d.name, d.symbol, d.shape, d.origin, d.latex)
                   for d in net.by_role("param"))
    inputs = tuple(Var(d.name, d.symbol, d.shape, d.origin, d.latex)
                   for d in net.by_role("input"))
    constants = tuple(Var(d.name, d.symbol, d.shape, d.origin, d.latex)
                      for d in net.by_role("constant"))
    if not params:
        raise CompileError(f"network {net.name!r} declares no parameters", net.origin)
    equations = [
        Equation(d.symbol, d.expr, LOSS if d.role == "loss" else FORWARD, d.shape, d.origin,
                 d.anonymous)
        for d in net.declarations if d.expr is not None]
    latex = {d.symbol: d.latex for d in net.declarations if d.latex}
    ir = IR(net.name, source, inputs, params, tuple(equations), (), loss.symbol, net.reduce,
            latex, constants, classes_of(net, equations))
    if not depends_on(ir, loss.symbol) & {p.symbol for p in params}:
        raise CompileError(f"the loss {loss.name!r} does not depend on any parameter",
                           loss.origin)
    return with_total(ir).validate()


def classes_of(net: Network, equations) -> tuple:
    """(input, number of classes) of each input declared dtype=int: the largest one_hot
    it is compared with (None: any non-negative integer)."""
    from .functions import equal
    found = dict(net.int_inputs)
    for eq in equations:
        for node in eq.rhs.atoms(equal):
            label, classes = node.args
            if label in found and getattr(classes, "shape", None):
                found[label] = max(found[label] or 0, classes.shape[-1])
    return tuple(found.items())


def with_total(ir: IR) -> IR:
    """Add the loss summed over the samples (`<L>_total`) and the loss result."""
    total = make_symbol(fresh_name(f"{ir.loss.name}_total", ir.names()), ())
    loss_eq = next(eq for eq in ir.equations if eq.lhs == ir.loss)
    if ir.loss in ir.batched():
        rhs = Einsum("->", 1, ir.loss)
    else:  # the same for every sample: n times over a batch
        rhs = N_SAMPLES * ir.loss
    equations = ir.equations + (Equation(total, rhs, TOTAL, (), loss_eq.origin, True),)
    return ir.with_equations(equations, (Result(ir.loss.name, total * scale(ir.reduce),
                                                "loss"),))


def fresh_name(base: str, taken: set[str]) -> str:
    name = base
    while name in taken:
        name += "_"
    return name


def backward_slice(ir: IR, expr) -> list[Equation]:
    """The backward equations (and temporaries) of `ir` that `expr` needs, in order: how
    a program computes one result (explain and graph show it)."""
    needed = set(expr.free_symbols)
    lines = []
    for eq in reversed(ir.equations):
        if eq.lhs in needed and eq.role in BACKWARD + (TEMP,):
            lines.append(eq)
            needed |= eq.rhs.free_symbols
    return lines[::-1]


def depends_on(ir: IR, symbol: sympy.Symbol) -> set[sympy.Symbol]:
    """Every symbol that `symbol` depends on, transitively."""
    by_lhs = {e.lhs: e for e in ir.equations}
    seen: set[sympy.Symbol] = set()
    stack = [symbol]
    while stack:
        s = stack.pop()
        eq = by_lhs.get(s)
        if eq is None:
            continue
        for dep in eq.rhs.free_symbols:
            if dep not in seen:
                seen.add(dep)
                stack.append(dep)
    return seen


def count_ops(ir: IR) -> int:
    """Total operation count of all right-hand sides (a size measure for tests)."""
    return sum(sympy.count_ops(e.rhs) for e in ir.equations)
