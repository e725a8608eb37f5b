"""Random networks for property-based tests: one description, two independent readings.

A description is plain data (lists of tuples). `source(desc)` writes it as a bpgen net file
the way a user would; `evaluate(desc, params, data, xp)` computes the same per-sample loss
directly with an array module `xp` (NumPy, or autograd.numpy for an independent AD
library). Neither reading shares code with bpgen.
"""

from __future__ import annotations

from hypothesis import strategies as st

# op -> (bpgen expression template, arity, has a kink at arg = 0)
OPS = {
    "tanh": ("bp.tanh({a})", 1, False),
    "sigmoid": ("bp.sigmoid({a})", 1, False),
    "softplus": ("bp.softplus({a})", 1, False),
    "exp": ("bp.exp(bp.tanh({a}))", 1, False),
    "log": ("bp.log(1 + ({a})**2)", 1, False),
    "sqrt": ("bp.sqrt(1 + ({a})**2)", 1, False),
    "relu": ("bp.relu({a})", 1, True),
    "abs": ("sympy.Abs({a})", 1, True),
    "square": ("({a})**2", 1, False),
    "cube": ("sympy.Rational(1, 4)*({a})**3", 1, False),
    "affine": ("sympy.Rational(2, 3)*({a}) + sympy.Rational(1, 5)", 1, False),
    "ratio": ("({a})/(1 + ({a})**2)", 1, False),
    "product": ("({a})*({b})", 2, False),
}


def _np_op(op, a, b, xp):
    if op == "tanh":
        return xp.tanh(a)
    if op == "sigmoid":
        return 0.5 * (xp.tanh(0.5 * a) + 1)
    if op == "softplus":
        return xp.logaddexp(0.0, a)
    if op == "exp":
        return xp.exp(xp.tanh(a))
    if op == "log":
        return xp.log(1 + a * a)
    if op == "sqrt":
        return xp.sqrt(1 + a * a)
    if op == "relu":
        return xp.maximum(a, 0.0)
    if op == "abs":
        return xp.abs(a)
    if op == "square":
        return a * a
    if op == "cube":
        return a * a * a / 4
    if op == "affine":
        return 2 * a / 3 + 0.2
    if op == "ratio":
        return a / (1 + a * a)
    if op == "product":
        return a * b
    raise ValueError(op)


def _build(integer, choice, max_equations):
    """A description from two sources of choices: integer(lo, hi) and choice(options)."""
    n_inputs = integer(1, 3)
    n_params = integer(1, 5)
    n_eqs = integer(1, max_equations)
    equations = []
    for k in range(n_eqs):
        op = choice(sorted(OPS))
        pool = n_inputs + k  # earlier values: inputs then equations
        u = integer(max(0, pool - 3), pool - 1)  # mostly recent values: deep chains
        w = integer(0, pool - 1)  # any earlier value: fan-out
        pu = integer(0, n_params - 1)
        pw = choice([None] + list(range(n_params)))
        equations.append((op, u, w, pu, pw))
    last_param = integer(0, n_params - 1)
    return {"inputs": n_inputs, "params": n_params, "equations": equations,
            "last_param": last_param, "reduce": choice(["mean", "sum"])}


@st.composite
def descriptions(draw, max_equations=40):
    """The Hypothesis strategy (shrinks towards small networks)."""
    return _build(lambda lo, hi: draw(st.integers(lo, hi)),
                  lambda options: draw(st.sampled_from(options)), max_equations)


def seeded_description(seed: int, max_equations=40):
    """The same distribution from a plain seeded generator (for non-Hypothesis tests)."""
    import random
    rng = random.Random(seed)
    return _build(rng.randint, rng.choice, max_equations)


def _value_name(desc, index):
    n = desc["inputs"]
    return f"x{index}" if index < n else f"h{index - n}"


def _argument(desc, eq):
    op, u, w, pu, pw = eq
    a = f"p{pu}*{_value_name(desc, u)}"
    if pw is not None:
        a += f" + p{pw}*{_value_name(desc, w)}"
    return a


def source(desc, name="rand") -> str:
    n_in, n_p = desc["inputs"], desc["params"]
    lines = ["import sympy", "import bpgen as bp", f"net = bp.Network({name!r})"]
    lines.append(f"{', '.join(f'x{i}' for i in range(n_in))}, y = net.inputs("
                 f"{' '.join([f'x{i}' for i in range(n_in)] + ['y'])!r})")
    lines.append(f"{', '.join(f'p{i}' for i in range(n_p))}, = net.params("
                 f"{[f'p{i}' for i in range(n_p)]!r})")
    for k, eq in enumerate(desc["equations"]):
        template, _, _ = OPS[eq[0]]
        b = _value_name(desc, eq[2])
        lines.append(f"h{k} = net.eq('h{k}', {template.format(a=_argument(desc, eq), b=b)})")
    last = f"h{len(desc['equations']) - 1}"
    lines.append(f"net.loss('L', (p{desc['last_param']}*{last} - y)**2, "
                 f"reduce={desc['reduce']!r})")
    return "\n".join(lines) + "\n"


def evaluate(desc, params, data, xp):
    """(per-sample loss, list of kink arguments) computed directly with module `xp`."""
    values = [data[f"x{i}"] for i in range(desc["inputs"])]
    kinks = []
    for op, u, w, pu, pw in desc["equations"]:
        a = params[f"p{pu}"] * values[u]
        if pw is not None:
            a = a + params[f"p{pw}"] * values[w]
        if OPS[op][2]:
            kinks.append(a)
        values.append(_np_op(op, a, values[w], xp))
    loss = (params[f"p{desc['last_param']}"] * values[-1] - data["y"]) ** 2
    return loss, kinks


def check(desc, folder, tag: str = "0"):
    """Compile `desc` to both targets in `folder` and compare with independent answers.

    Returns None when the random draw is unusable (non-finite values, or every sample
    near a kink), else a list of mismatches (empty: both targets agree with finite
    differences of the NumPy evaluation and with autograd's gradient).
    """
    import importlib.util
    import sys

    import autograd
    import autograd.numpy as anp
    import numpy as np

    from bpgen.cli import main as bpgen_main

    rng = np.random.default_rng(len(desc["equations"]))
    params = {f"p{i}": float(v) for i, v in enumerate(rng.uniform(-1.2, 1.2, desc["params"]))}
    data = {f"x{i}": rng.normal(size=64) for i in range(desc["inputs"])}
    data["y"] = rng.normal(size=64)
    with np.errstate(all="ignore"):
        per_sample, kinks = evaluate(desc, params, data, np)
    keep = np.isfinite(per_sample) & (np.abs(per_sample) < 1e8)
    for k in kinks:
        keep &= np.abs(k) > 1e-3
    if keep.sum() < 8:
        return None
    data = {k: v[keep][:8] for k, v in data.items()}

    def reduced(p, xp=np):
        loss, _ = evaluate(desc, p, data, xp)
        return xp.sum(loss) if desc["reduce"] == "sum" else xp.mean(loss)

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rand_net.py").write_text(source(desc))
    import contextlib
    import io
    with contextlib.redirect_stderr(io.StringIO()):  # unused-equation warnings
        status = bpgen_main(["compile", str(folder / "rand_net.py"), "--target", "all",
                             "-o", str(folder)])
    if status != 0:
        return ["bpgen failed to compile the network"]
    modules = []
    for stem in ("rand", "rand_c"):
        spec = importlib.util.spec_from_file_location(f"_rand_{stem}_{tag}", folder / f"{stem}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules.append(module)
        sys.modules.pop(spec.name, None)

    names = modules[0].PARAMS
    want = float(reduced(params))
    vector = np.array([params[k] for k in names])
    ad = autograd.grad(lambda v: reduced(dict(zip(names, v)), anp))(vector)
    problems = []
    scale = 1 + abs(want)
    for k, name in enumerate(names):
        h = 1e-6 * max(1.0, abs(params[name]))
        up, down = dict(params), dict(params)
        up[name] += h
        down[name] -= h
        fd = (reduced(up) - reduced(down)) / (2 * h)
        if abs(ad[k] - fd) > 1e-4 * abs(fd) + 1e-6 * scale:
            problems.append(f"autograd and finite differences disagree on {name}: "
                            f"{ad[k]} vs {fd}")
    for module in modules:
        value, grads = module.value_and_grad(params, data)
        if abs(value - want) > 1e-10 * abs(want) + 1e-12:
            problems.append(f"{module.__name__}: loss {value} != {want}")
        for k, name in enumerate(names):
            if abs(grads[name] - ad[k]) > 1e-8 * abs(ad[k]) + 1e-10 * scale:
                problems.append(f"{module.__name__}: d/d{name} {grads[name]} != {ad[k]}")
    return problems
