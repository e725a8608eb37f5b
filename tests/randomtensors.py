"""Random networks with shaped values: one description, two independent readings.

A description is plain data: the per-sample input shape, a list of layers applied in turn
to the current value, a head and a reduction. `source(desc)` writes it as a bpgen net file
the way a user would (one equation per layer); `evaluate(desc, params, data)` computes the
per-sample losses directly in NumPy on arrays with the batch axis first, sharing no code
with bpgen.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

ACTIVATIONS = {
    "tanh": ("bp.tanh({v})", lambda v: np.tanh(v)),
    "sigmoid": ("bp.sigmoid({v})", lambda v: 1 / (1 + np.exp(-v))),
    "softplus": ("bp.softplus({v})", lambda v: np.logaddexp(0.0, v)),
    "square": ("({v})**2/4", lambda v: v * v / 4),
    "sin": ("sympy.sin({v})", lambda v: np.sin(v)),
    "ratio": ("({v})/(1 + ({v})**2)", lambda v: v / (1 + v * v)),
}


def _build(integers, booleans, choice):
    """A description from three random sources (Hypothesis draws or a seeded Random)."""
    two_d = booleans()
    shape = (integers(2, 3), integers(2, 4)) if two_d else \
        (integers(1, 5),)
    desc = {"shape": shape, "layers": [], "reduce": choice(["mean", "sum"])}
    weights = []  # shapes of the matrices declared so far (for tied weights)
    for _ in range(integers(1, 5)):
        options = ["linear", "act", "act", "scale"]
        if len(shape) == 1:
            options += ["left"]
        if len(shape) == 2:
            options += ["sum", "mean", "transpose", "softmax"]
        if any(w[1] == shape[-1] for w in weights):
            options.append("tied")
        kind = choice(options)
        if kind == "linear":
            k = integers(1, 4)
            layer = ("linear", k, booleans())
            weights.append((shape[-1], k))
            shape = shape[:-1] + (k,)
        elif kind == "left":
            k = integers(1, 4)
            layer = ("left", k)
            weights.append((k, shape[-1]))
            shape = (k,)
        elif kind == "act":
            layer = ("act", choice(sorted(ACTIVATIONS)))
        elif kind == "scale":
            layer = ("scale",)
        elif kind in ("sum", "mean"):
            axis = integers(0, 1)
            layer = (kind, axis)
            shape = shape[:axis] + shape[axis + 1:]
        elif kind == "softmax":
            layer = ("softmax", integers(0, 1))
        elif kind == "transpose":
            layer = ("transpose",)
            shape = shape[::-1]
        else:  # tied: v @ W.T for an earlier W of shape (a, shape[-1])
            index = choice([i for i, w in enumerate(weights)
                                          if w[1] == shape[-1]])
            layer = ("tied", index)
            shape = shape[:-1] + (weights[index][0],)
        desc["layers"].append(layer)
    if len(shape) == 2:
        desc["layers"].append(("mean", 0))
        shape = shape[1:]
    desc["head"] = choice(["sce", "mse", "lse"])
    if desc["head"] == "mse" and not any(layer[0] in ("linear", "left", "scale")
                                         for layer in desc["layers"]):
        desc["layers"].append(("scale",))  # something to train
    desc["classes"] = integers(2, 4)
    desc["final"] = shape
    return desc


@st.composite
def descriptions(draw):
    return _build(lambda a, b: draw(st.integers(a, b)), lambda: draw(st.booleans()),
                  lambda options: draw(st.sampled_from(options)))


def seeded_description(seed: int):
    """The same distribution from a plain seeded generator (for the reliability report)."""
    import random
    rng = random.Random(seed)
    return _build(rng.randint, lambda: rng.random() < 0.5,
                  lambda options: rng.choice(list(options)))


def source(desc, name="rt") -> str:
    lines = ["import sympy", "", "import bpgen as bp", "", f"net = bp.Network({name!r})",
             f"x = net.input('x', shape={desc['shape']})"]
    n_w = n_b = n_s = 0
    v = "x"
    for k, layer in enumerate(desc["layers"]):
        kind = layer[0]
        if kind == "linear":
            n_w += 1
            lines.append(f"W{n_w} = net.param('W{n_w}', shape=({_last(desc, k)}, {layer[1]}))")
            expr = f"{v} @ W{n_w}"
            if layer[2]:
                n_b += 1
                lines.append(f"b{n_b} = net.param('b{n_b}', shape=({layer[1]},))")
                expr += f" + b{n_b}"
        elif kind == "left":
            n_w += 1
            lines.append(f"W{n_w} = net.param('W{n_w}', shape=({layer[1]}, {_last(desc, k)}))")
            expr = f"W{n_w} @ {v}"
        elif kind == "act":
            expr = ACTIVATIONS[layer[1]][0].format(v=v)
        elif kind == "scale":
            n_s += 1
            lines.append(f"s{n_s} = net.param('s{n_s}')")
            expr = f"s{n_s} * {v}"
        elif kind in ("sum", "mean"):
            expr = f"bp.{kind}({v}, axis={layer[1]})"
        elif kind == "softmax":
            expr = f"bp.softmax({v}, axis={layer[1]})"
        elif kind == "transpose":
            expr = f"{v}.T"
        else:
            expr = f"{v} @ {_tied_name(desc, layer[1])}.T"
        lines.append(f"v{k} = net.eq('v{k}', {expr})")
        v = f"v{k}"
    final, c = desc["final"][0], desc["classes"]
    if desc["head"] == "sce":
        lines += [f"y = net.input('y', shape=({c},))",
                  f"Wo = net.param('Wo', shape=({final}, {c}))",
                  f"net.loss('L', bp.softmax_cross_entropy({v} @ Wo, y), "
                  f"reduce={desc['reduce']!r})"]
    elif desc["head"] == "mse":
        lines += [f"t = net.input('t', shape=({final},))",
                  f"net.loss('L', bp.sum(({v} - t)**2), reduce={desc['reduce']!r})"]
    else:
        lines += [f"u = net.param('u', shape=({final},))",
                  f"net.loss('L', bp.logsumexp({v} * u), reduce={desc['reduce']!r})"]
    return "\n".join(lines) + "\n"


def _shape_before(desc, index):
    shape = desc["shape"]
    weights = []
    for layer in desc["layers"][:index]:
        shape, weights = _step_shape(shape, layer, weights)
    return shape


def _step_shape(shape, layer, weights):
    kind = layer[0]
    if kind == "linear":
        return shape[:-1] + (layer[1],), weights + [(shape[-1], layer[1])]
    if kind == "left":
        return (layer[1],), weights + [(layer[1], shape[-1])]
    if kind in ("sum", "mean"):
        return shape[:layer[1]] + shape[layer[1] + 1:], weights
    if kind == "transpose":
        return shape[::-1], weights
    if kind == "tied":
        return shape[:-1] + (weights[layer[1]][0],), weights
    return shape, weights


def _last(desc, index):
    return _shape_before(desc, index)[-1]


def _tied_name(desc, weight_index):
    """The parameter name of the weight_index-th matrix (linear and left layers count)."""
    return f"W{weight_index + 1}"


def param_shapes(desc) -> dict:
    shapes = {}
    shape = desc["shape"]
    weights = []
    n_w = n_b = n_s = 0
    for layer in desc["layers"]:
        kind = layer[0]
        if kind == "linear":
            n_w += 1
            shapes[f"W{n_w}"] = (shape[-1], layer[1])
            if layer[2]:
                n_b += 1
                shapes[f"b{n_b}"] = (layer[1],)
        elif kind == "left":
            n_w += 1
            shapes[f"W{n_w}"] = (layer[1], shape[-1])
        elif kind == "scale":
            n_s += 1
            shapes[f"s{n_s}"] = ()
        shape, weights = _step_shape(shape, layer, weights)
    if desc["head"] == "sce":
        shapes["Wo"] = (desc["final"][0], desc["classes"])
    elif desc["head"] == "lse":
        shapes["u"] = desc["final"]
    return shapes


def evaluate(desc, p, d) -> np.ndarray:
    """The per-sample losses, in plain NumPy, batch axis first."""
    v = d["x"]
    n_w = n_b = n_s = 0
    weights = []
    for layer in desc["layers"]:
        kind = layer[0]
        if kind == "linear":
            n_w += 1
            weights.append(p[f"W{n_w}"])
            v = v @ p[f"W{n_w}"]
            if layer[2]:
                n_b += 1
                v = v + p[f"b{n_b}"]
        elif kind == "left":
            n_w += 1
            weights.append(p[f"W{n_w}"])
            v = np.einsum("ij,nj->ni", p[f"W{n_w}"], v)
        elif kind == "act":
            v = ACTIVATIONS[layer[1]][1](v)
        elif kind == "scale":
            n_s += 1
            v = p[f"s{n_s}"] * v
        elif kind == "sum":
            v = v.sum(axis=layer[1] + 1)
        elif kind == "mean":
            v = v.mean(axis=layer[1] + 1)
        elif kind == "softmax":
            axis = layer[1] + 1
            e = np.exp(v - v.max(axis=axis, keepdims=True))
            v = e / e.sum(axis=axis, keepdims=True)
        elif kind == "transpose":
            v = np.swapaxes(v, 1, 2)
        else:
            v = v @ weights[layer[1]].T
    if desc["head"] == "sce":
        z = v @ p["Wo"]
        m = z.max(axis=1)
        return m + np.log(np.exp(z - m[:, None]).sum(axis=1)) - (d["y"] * z).sum(axis=1)
    if desc["head"] == "mse":
        return ((v - d["t"]) ** 2).sum(axis=1)
    z = v * p["u"]
    m = z.max(axis=1)
    return m + np.log(np.exp(z - m[:, None]).sum(axis=1))


def sample(desc, rng, n) -> dict:
    data = {"x": rng.normal(size=(n, *desc["shape"]))}
    if desc["head"] == "sce":
        data["y"] = np.eye(desc["classes"])[rng.integers(0, desc["classes"], n)]
    elif desc["head"] == "mse":
        data["t"] = rng.normal(size=(n, *desc["final"]))
    return data


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def check(desc, out: Path, tag: str, n: int = 5, seed: int = 0) -> list[str]:
    """Compile `desc` to both targets and compare with the NumPy reading; problems found."""
    from bpgen.cli import main as bpgen_main
    out.mkdir(parents=True, exist_ok=True)
    net_file = out / f"rt{tag}_net.py"
    net_file.write_text(source(desc, f"rt{tag}"))
    if bpgen_main(["compile", str(net_file), "--target", "all", "-o", str(out)]) != 0:
        return ["bpgen compile failed"]
    rng = np.random.default_rng(seed)
    shapes = param_shapes(desc)
    params = {k: rng.normal(0.0, 0.7, s) if s else float(rng.normal(1.0, 0.3))
              for k, s in shapes.items()}
    data = sample(desc, rng, n)

    def total(p):
        losses = evaluate(desc, p, data)
        return losses.sum() if desc["reduce"] == "sum" else losses.mean()
    expected = total(params)
    problems = []
    for target, stem in (("numpy", f"rt{tag}"), ("c", f"rt{tag}_c")):
        module = _load(out / f"{stem}.py", f"_rt_{stem}")
        value, grads = module.value_and_grad(params, data)
        if not np.isclose(value, expected, rtol=1e-10, atol=1e-12):
            problems.append(f"{target}: loss {value} != {expected}")
        for k, s in shapes.items():
            base = np.asarray(params[k], dtype=float)
            fd = np.zeros(s)
            for index in np.ndindex(s):
                h = 1e-6 * max(1.0, abs(base[index]))
                up, down = base.copy(), base.copy()
                up[index] += h
                down[index] -= h
                fd[index] = (total({**params, k: up}) - total({**params, k: down})) / (2 * h)
            scale = max(1.0, np.abs(fd).max())
            if not np.allclose(grads[k], fd, rtol=1e-5, atol=1e-6 * scale):
                problems.append(f"{target}: d{k} = {grads[k]} but finite differences {fd}")
    return problems
