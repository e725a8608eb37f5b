"""Show the derivation: the chain rule from the loss down to each parameter.

For a parameter w, every path L → … → w through the forward equations contributes the
product of its local partial derivatives, ∂L/∂z3 · ∂z3/∂s3 · … · ∂s1/∂w, each factor
written in terms of the stored forward values (∂z1/∂s1 = 1 − z1²). Where a value fans
out, the paths are summed. The factors come from the compiler's own `local_partial` and
forward-value reuse table, and the "computed as" lines are the backward equations of the
compiled program, so the explanation cannot drift from the generated code.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from .autodiff import local_partial
from .compiler import Compiled
from .errors import BpgenError
from .ir import IR, Var, backward_slice
from .passes import one_sample, reuse
from .tensor import Structural

MAX_PATHS = 64


@dataclass(frozen=True)
class Factor:
    """∂upper/∂lower = value, from the equation `upper = rhs` at `origin`."""

    upper: sympy.Symbol
    lower: sympy.Symbol
    value: sympy.Expr
    rhs: sympy.Expr
    origin: object


@dataclass(frozen=True)
class Chain:
    """How ∂L/∂param is built: its paths' factors, their sum, and the code computing it."""

    param: Var
    paths: tuple[tuple[Factor, ...], ...]  # empty when the loss does not depend on it
    truncated: bool  # more than MAX_PATHS paths: only the first ones are listed
    total: sympy.Expr
    code: tuple[tuple[str, str], ...]  # (lhs, rhs) of the generated backward equations


def _pick(ir: IR, wrt) -> list[Var]:
    params = list(ir.params)
    if wrt:
        known = {p.name: p for p in params}
        unknown = [w for w in wrt if w not in known]
        if unknown:
            raise BpgenError(f"{unknown[0]!r} is not a parameter of {ir.name!r} "
                             f"(parameters: {', '.join(known)})")
        params = [known[w] for w in wrt]
    return params


def chains(compiled: Compiled, wrt=None) -> list[Chain]:
    params = _pick(compiled.ir, wrt)
    partials: dict = {}
    return [chain_for(compiled, p, partials) for p in params]


def chain_for(compiled: Compiled, param: Var, partials: dict | None = None) -> Chain:
    """`partials` caches local partials across parameters (SymPy's diff is slow)."""
    partials = {} if partials is None else partials
    ir = compiled.ir
    by_lhs = {eq.lhs: eq for eq in ir.forward()}
    inputs = {v.symbol for v in ir.inputs}
    values = reuse.table(ir)
    order = {eq.lhs: k for k, eq in enumerate(ir.equations)}
    order.update({v.symbol: -1 - k for k, v in enumerate(ir.params)})
    reaches = _reaching(ir, param.symbol)

    paths: list[tuple[Factor, ...]] = []
    truncated = False

    def walk(node, prefix):
        nonlocal truncated
        if truncated:
            return
        if node == param.symbol:
            if len(paths) < MAX_PATHS:
                paths.append(tuple(prefix))
            else:
                truncated = True
            return
        eq = by_lhs[node]
        for operand in sorted(eq.rhs.free_symbols - inputs, key=lambda s: -order[s]):
            assert not isinstance(eq.rhs, Structural)  # scalar networks only
            if operand == param.symbol or operand in reaches:
                key = (eq.lhs, operand)
                if key not in partials:
                    partials[key] = local_partial(eq, operand).xreplace(values)
                value = partials[key]
                if value != 0:
                    walk(operand, prefix + [Factor(node, operand, value, eq.rhs, eq.origin)])

    walk(ir.loss, [])
    total = sympy.Add(*(sympy.Mul(*(f.value for f in path)) for path in paths))
    if len(paths) <= 16:  # factoring is slow on large sums, and unreadable anyway
        total = sympy.factor_terms(total)
    return Chain(param, tuple(paths), truncated, total, _code(compiled, param))


def _reaching(ir: IR, target) -> set:
    """Forward values that depend on `target`."""
    found = set()
    for eq in ir.forward():
        if target in eq.rhs.free_symbols or eq.rhs.free_symbols & found:
            found.add(eq.lhs)
    return found


def _code(compiled: Compiled, param: Var) -> tuple[tuple[str, str], ...]:
    """The backward equations that ∂L/∂param needs, for one sample (the lecture's view:
    the generated one-sample code, whose sums over one sample are plain products)."""
    program = one_sample.run(compiled.programs["value_and_grad"])
    result = next(r for r in program.results if r.key == param.name)
    names = compiled.names
    return tuple((names[eq.lhs], _plain(eq.rhs, names))
                 for eq in backward_slice(program, result.expr))


def _plain(expr, names) -> str:
    return sympy.sstr(expr.xreplace({s: sympy.Symbol(names.get(s, s.name))
                                     for s in expr.free_symbols}))


# -- rendering -------------------------------------------------------------------------
_SUPERSCRIPTS = {"2": "²", "3": "³", "4": "⁴"}


def math_text(expr) -> str:
    """A compact one-line rendering: 1 − z1², 2·(z3 − y)."""
    text = sympy.sstr(expr)
    for digit, sup in _SUPERSCRIPTS.items():
        text = text.replace(f"**{digit}", sup)
    return text.replace("**", "^").replace("*", "·").replace(" - ", " − ")


def d(upper, lower) -> str:
    return f"∂{upper}/∂{lower}"


def render_text(loss, chain: Chain) -> str:
    p = chain.param.name
    out = []
    if not chain.paths:
        return f"{d(loss, p)} = 0   ({p} does not affect {loss})\n"
    for k, path in enumerate(chain.paths):
        lead = f"{d(loss, p)} = " if k == 0 else " " * (len(d(loss, p)) + 1) + "+ "
        out.append(lead + " · ".join(d(f.upper, f.lower) for f in path))
    if chain.truncated:
        out.append(f"    … more than {MAX_PATHS} paths; the rest are not listed")
    seen = set()
    width = max(len(d(f.upper, f.lower)) for path in chain.paths for f in path)
    for path in chain.paths:
        for f in path:
            if (f.upper, f.lower) in seen:
                continue
            seen.add((f.upper, f.lower))
            out.append(f"    {d(f.upper, f.lower):{width}s} = {math_text(f.value):24s}"
                       f"  from {f.upper} = {math_text(f.rhs)}"
                       + (f"  ({f.origin})" if f.origin else ""))
    if not chain.truncated:
        out.append(f"  = {math_text(chain.total)}")
    out.append("  computed by the generated code as:")
    out.extend(f"    {lhs} = {rhs}" for lhs, rhs in chain.code)
    return "\n".join(out) + "\n"


def render_latex_chain(loss, chain: Chain, names: dict) -> str:
    def sym(s):
        return names.get(s) or sympy.latex(s)

    def frac(upper, lower):
        return rf"\frac{{\partial {sym(upper)}}}{{\partial {sym(lower)}}}"

    def tex(e):
        return sympy.latex(e, symbol_names={s: sym(s) for s in e.free_symbols})

    p = chain.param.symbol
    if not chain.paths:
        return rf"\[ {frac(loss, p)} = 0 \]" + "\n"
    products = [r" \cdot ".join(frac(f.upper, f.lower) for f in path) for path in chain.paths]
    rows = [rf"{frac(loss, p)} &= " + r" \\ &\quad + ".join(products)]
    seen = set()
    for path in chain.paths:
        for f in path:
            if (f.upper, f.lower) not in seen:
                seen.add((f.upper, f.lower))
                rows.append(rf"{frac(f.upper, f.lower)} &= {tex(f.value)}")
    if not chain.truncated:
        rows.append(rf"{frac(loss, p)} &= {tex(chain.total)}")
    return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}\n"


# -- networks with shaped values ---------------------------------------------------------
# Paths through scalar factors do not fit matrices (∂h/∂W1 is a 3-D array nobody writes
# down). The lecture's backward pass is still there, one equation at a time: each step
# is δ_v = ∂L/∂v for one value v, computed from the δ of the values that read v
# (δ_h = δ_logits @ W2ᵀ, δ_pre = δ_h ⊙ (1 − h²), ∂L/∂W1 = Σ_n outer(x, δ_pre)).
# The steps are the compiled program's own backward equations.

@dataclass(frozen=True)
class Step:
    """One backward equation: `lhs` = ∂L/∂`of` (None for a temporary) = rhs."""

    lhs: sympy.Symbol
    of: object
    rhs: sympy.Expr
    origin: object


@dataclass(frozen=True)
class ShapedChain:
    param: Var
    steps: tuple[Step, ...]


def shaped_chains(compiled: Compiled, wrt=None) -> list[ShapedChain]:
    ir = compiled.ir
    params = _pick(ir, wrt)
    program = compiled.programs["value_and_grad"]
    values = {f"d_{s.name}": s for s in [v.symbol for v in ir.params] +
              [eq.lhs for eq in ir.forward()]}
    out = []
    for param in params:
        result = next(r for r in program.results if r.key == param.name)
        steps = tuple(Step(eq.lhs, values.get(eq.lhs.name), eq.rhs, eq.origin)
                      for eq in backward_slice(program, result.expr))
        out.append(ShapedChain(param, steps))
    return out


def render_shaped_text(ir, chain: ShapedChain) -> str:
    p = chain.param
    if not chain.steps:
        return f"{d(ir.loss, p.name)} = 0   ({p.name} does not affect {ir.loss})\n"
    lines = [f"{d(ir.loss, p.name)}: shape {p.shape}, summed over the samples of a batch; "
             "one step per equation, in the order computed:"]
    heads = [f"{s.lhs} = {d(ir.loss, s.of)}" if s.of is not None else str(s.lhs)
             for s in chain.steps]
    width = max(map(len, heads))
    for head, s in zip(heads, chain.steps):
        where = f"  ({s.origin})" if s.origin else ""
        lines.append(f"    {head:{width}s} = {math_text(s.rhs)}{where}")
    return "\n".join(lines) + "\n"


def render_shaped_latex(ir, chain: ShapedChain, names: dict) -> str:
    def sym(s):
        return names.get(s) or sympy.latex(s)

    def frac(of):
        return rf"\frac{{\partial {sym(ir.loss)}}}{{\partial {sym(of)}}}"
    symbols = {s.lhs: (rf"\delta_{{{sympy.latex(s.of)}}}" if s.of is not None
                       else sympy.latex(s.lhs)) for s in chain.steps}
    if not chain.steps:
        return rf"\[ {frac(chain.param.symbol)} = 0 \]" + "\n"
    rows = []
    for s in chain.steps:
        lhs = (frac(s.of) if s.of is not None else symbols[s.lhs])
        rhs = sympy.latex(s.rhs, symbol_names={**{k: names[k] for k in s.rhs.free_symbols
                                                   if k in names}, **symbols})
        rows.append(f"{lhs} &= {rhs}")
    return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}\n"


class Explanation:
    """The chain rule for some parameters of a network; prints as text, shows as LaTeX."""

    def __init__(self, compiled: Compiled, wrt=None):
        self.compiled = compiled
        self.loss = compiled.ir.loss
        # the lecture's chain of scalar factors for networks of scalars; for shaped values
        # (∂h/∂W1 is a 3-D array nobody writes down) the backward pass one equation at a time
        self.shaped = not compiled.ir.all_scalar()
        self.chains = shaped_chains(compiled, wrt) if self.shaped else chains(compiled, wrt)
        self.names = {**{v.symbol: v.latex for v in compiled.ir.inputs + compiled.ir.params
                         if v.latex}, **compiled.ir.latex}

    def _latex_chain(self, c) -> str:
        if self.shaped:
            return render_shaped_latex(self.compiled.ir, c, self.names)
        return render_latex_chain(self.loss, c, self.names)

    def text(self) -> str:
        if self.shaped:
            return "\n".join(render_shaped_text(self.compiled.ir, c) for c in self.chains)
        return "\n".join(render_text(self.loss, c) for c in self.chains)

    def markdown(self) -> str:
        parts = [f"# Gradients of `{self.compiled.ir.name}` ({self.compiled.ir.source})\n"]
        if self.shaped:
            for c in self.chains:
                parts.append(f"## ∂{self.loss}/∂{c.param.name}\n")
                parts.append("$$\n" + self._latex_chain(c) + "$$\n")
            return "\n".join(parts)
        for c in self.chains:
            parts.append(f"## ∂{self.loss}/∂{c.param.name}\n")
            parts.append("$$\n" + render_latex_chain(self.loss, c, self.names) + "$$\n")
            parts.append("Computed by the generated code as:\n\n```python\n"
                         + "".join(f"{lhs} = {rhs}\n" for lhs, rhs in c.code) + "```\n")
        return "\n".join(parts)

    def latex(self, standalone: bool = False) -> str:
        body = "\n".join(self._latex_chain(c) for c in self.chains)
        if not standalone:
            return body
        return ("\\documentclass{article}\n\\usepackage{amsmath}\n\\begin{document}\n"
                f"\\section*{{Gradients of {self.compiled.ir.name}}}\n{body}"
                "\\end{document}\n")

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return self.text()

    def _repr_latex_(self) -> str:
        return self.latex()


def explain(net, wrt=None, source: str = "<notebook>") -> Explanation:
    """`bp.explain(net, wrt="w11")`: the chain rule for one parameter (or all of them)."""
    from .compiler import compile_network
    if isinstance(wrt, str):
        wrt = [wrt]
    return Explanation(compile_network(net, source), wrt)
