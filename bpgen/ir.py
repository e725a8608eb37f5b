"""The IR: one flat, topologically ordered list of single assignments.

Every stage reads and writes an `IR`. Forward equations come first (declaration order),
the reverse sweep appends backward equations after them, and passes rewrite the list.
Equations are never substituted into each other except by passes that say so.

An IR also names its *results*: the values a generated function returns (the loss, each
parameter's gradient, or forward values), as expressions over the equations' symbols.
Shapes are recorded from the start (scalars have shape `()`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import sympy

from .dsl import Network
from .errors import CompileError, Origin

#: The number of samples in a batch, for expressions that need it (a value that is the
#: same for every sample counts n times in a sum over samples).
N_SAMPLES = sympy.Symbol("_n", positive=True)

#: Equation roles, in the order they appear in a compiled function.
FORWARD, LOSS, ADJOINT, GRAD, TEMP = "forward", "loss", "adjoint", "grad", "temp"


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
    """`lhs = rhs`; `origin` is the declaration it came from (backward ones included)."""

    lhs: sympy.Symbol
    rhs: sympy.Expr
    role: str
    shape: tuple[int, ...] = ()
    origin: Origin | None = None

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
    shaped: bool = False  # compiled by the tensor path (some value has a shape)
    hidden: frozenset = frozenset()  # anonymous equations of structural operations

    # -- construction helpers ----------------------------------------------------------
    def with_equations(self, equations, results=None) -> "IR":
        return replace(self, equations=tuple(equations),
                       results=self.results if results is None else tuple(results))

    def map_exprs(self, fn) -> "IR":
        """Apply `fn` to every right-hand side and every result expression."""
        return self.with_equations(
            [eq.replace_rhs(fn(eq.rhs)) for eq in self.equations],
            [replace(r, expr=fn(r.expr)) for r in self.results])

    # -- queries -----------------------------------------------------------------------
    def forward(self) -> tuple[Equation, ...]:
        return tuple(e for e in self.equations if e.role in (FORWARD, LOSS))

    def names(self) -> set[str]:
        """Every symbol name the IR defines (inputs, params, equations)."""
        return {v.symbol.name for v in self.inputs + self.params} | {
            e.lhs.name for e in self.equations}

    def batched(self) -> set[sympy.Symbol]:
        """Symbols whose value differs from sample to sample (they depend on an input).

        The rest depend on parameters and constants only: generated code computes them
        once per call, not once per sample.
        """
        varying = {v.symbol for v in self.inputs}
        for eq in self.equations:
            if eq.rhs.free_symbols & varying and not getattr(eq.rhs, "batch_sum", False):
                varying.add(eq.lhs)
        return varying

    def shapes(self) -> dict:
        """Every symbol's per-sample shape."""
        table = {v.symbol: v.shape for v in self.inputs + self.params}
        table.update({eq.lhs: eq.shape for eq in self.equations})
        return table

    def validate(self) -> "IR":
        """Check single assignment, definition before use, and known shapes."""
        defined = {v.symbol for v in self.inputs + self.params}
        if len(defined) != len(self.inputs) + len(self.params):
            raise AssertionError("an input or parameter is declared twice")
        defined.add(N_SAMPLES)
        for eq in self.equations:
            missing = eq.rhs.free_symbols - defined
            if missing:
                names = sorted(s.name for s in missing)
                raise AssertionError(f"{eq.lhs} uses {names} before definition")
            if eq.lhs in defined:
                raise AssertionError(f"{eq.lhs} is assigned twice")
            if eq.shape and not self.shaped:
                raise AssertionError(f"{eq.lhs}: shape {eq.shape} in a scalar IR")
            defined.add(eq.lhs)
        for r in self.results:
            missing = r.expr.free_symbols - defined
            if missing:
                raise AssertionError(f"result {r.key} uses undefined {sorted(map(str, missing))}")
        return self


def from_network(net: Network, source: str) -> IR:
    """Turn a declared network into the forward IR (no results yet)."""
    loss = net.loss_declaration
    if loss is None:
        raise CompileError(f"network {net.name!r} declares no loss (call net.loss)",
                           net.origin)
    params = tuple(Var(d.name, d.symbol, d.shape, d.origin, d.latex)
                   for d in net.by_role("param"))
    inputs = tuple(Var(d.name, d.symbol, d.shape, d.origin, d.latex)
                   for d in net.by_role("input"))
    if not params:
        raise CompileError(f"network {net.name!r} declares no parameters", net.origin)
    if not inputs:
        raise CompileError(f"network {net.name!r} declares no inputs", net.origin)
    equations = tuple(
        Equation(d.symbol, d.expr, LOSS if d.role == "loss" else FORWARD, d.shape, d.origin)
        for d in net.declarations if d.expr is not None)
    latex = {d.symbol: d.latex for d in net.declarations if d.latex}
    ir = IR(net.name, source, inputs, params, equations,
            (Result(loss.name, loss.symbol, "loss"),), loss.symbol, net.reduce, latex,
            net.shaped, frozenset(d.symbol for d in net.declarations if d.anonymous))
    if not depends_on(ir, loss.symbol) & {p.symbol for p in params}:
        raise CompileError(f"the loss {loss.name!r} does not depend on any parameter",
                           loss.origin)
    return ir.validate()


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
