"""Hessian-vector products (`hvp(params, data, v)`) of every test network, both targets.

hvp is checked against central differences of the gradient along v, against the second
difference of the hand-written NumPy reference (⟨u, H v⟩, independent of bpgen), against
independent AD libraries (autograd, PyTorch), between the targets, and for the
properties any Hessian-vector product has (linear in v, H symmetric).
"""

from __future__ import annotations

import runpy

import numpy as np
import pytest

from conftest import ROOT, TENSOR_IDS, ZOO_IDS


@pytest.fixture(params=[("nets", s) for s in ZOO_IDS] + [("tensor", s) for s in TENSOR_IDS],
                ids=lambda p: p[1])
def anynet(request, zoo, tensor_nets):
    kind, stem = request.param
    return (zoo if kind == "nets" else tensor_nets)[stem]


def direction(module, rng, scale=1.0):
    return {k: rng.normal(0.0, scale, module.SHAPES[k]) if module.SHAPES[k]
            else float(rng.normal(0.0, scale)) for k in module.PARAMS}


def along(params, v, t):
    """params + t*v, scalars staying floats."""
    return {k: (np.asarray(params[k]) + t * np.asarray(v[k])) if np.ndim(params[k])
            else float(params[k] + t * v[k]) for k in params}


def flat(values, keys):
    return np.concatenate([np.ravel(values[k]) for k in keys])


#: Networks whose gradient is too noisy for differences at the usual tolerance: logits
#: 600*(x @ W) of magnitude ~1000 carry rounding errors of ~1e-13 into every softmax, so
#: a difference of gradients over a step of 1e-5 is off by ~1e-6 (an 80-digit mpmath
#: evaluation agrees with hvp to 3e-9 there), and so is a second difference of the loss.
#: How many times the usual tolerance each needs.
ROUGH = {"log_softmax": 100}


def gradient_differences(module, params, data, v, eps=1e-5):
    """The derivative of the gradient along v: central differences at steps eps and
    eps/2 combined by Richardson extrapolation (error O(eps**4): logits scaled by 600 make
    the third derivative large). Kinks are >= 1e-3 away from every sample drawn."""
    def central(h):
        up = module.value_and_grad(along(params, v, h), data)[1]
        down = module.value_and_grad(along(params, v, -h), data)[1]
        return {k: (np.asarray(up[k]) - np.asarray(down[k])) / (2 * h) for k in up}
    coarse, fine = central(eps), central(eps / 2)
    return {k: (4 * fine[k] - coarse[k]) / 3 for k in fine}


@pytest.mark.parametrize("seed", [0, 1])
def test_hvp_matches_differences_of_the_gradient(anynet, target, seed):
    module = anynet.module(target)
    params, data = anynet.draw(seed, 7)
    v = direction(module, np.random.default_rng(100 + seed))
    h = module.hvp(params, data, v)
    assert list(h) == list(module.PARAMS)
    expected = gradient_differences(module, params, data, v)
    scale = max(1.0, max(np.abs(e).max() for e in expected.values()))
    rough = ROUGH.get(anynet.name, 1)
    rtol, atol = 1e-5 * rough, 1e-6 * rough
    for k in module.PARAMS:
        if module.SHAPES[k]:
            assert isinstance(h[k], np.ndarray) and h[k].shape == module.SHAPES[k], k
        else:
            assert isinstance(h[k], float), k
        np.testing.assert_allclose(h[k], expected[k], rtol=rtol, atol=atol * scale, err_msg=k)


def test_bilinear_form_matches_second_differences_of_the_reference(anynet, target):
    """⟨u, H v⟩ from the reference alone: (f(+u+v) - f(+u-v) - f(-u+v) + f(-u-v)) / 4ε²."""
    module = anynet.module(target)
    params, data = anynet.draw(2, 5)
    rng = np.random.default_rng(7)
    u, v = direction(module, rng), direction(module, rng)
    hv = module.hvp(params, data, v)

    def second_difference(eps):
        def f(a, b):
            shifted = along(along(params, u, a * eps), v, b * eps)
            return anynet.reduced(shifted, data, module.REDUCE)
        return (f(1, 1) - f(1, -1) - f(-1, 1) + f(-1, -1)) / (4 * eps * eps)
    # Richardson extrapolation: arguments of magnitude 1000 (net `stable`) make the
    # fourth derivative large
    expected = (4 * second_difference(5e-5) - second_difference(1e-4)) / 3
    got = float(flat(u, module.PARAMS) @ flat(hv, module.PARAMS))
    scale = max(1.0, abs(expected), float(np.abs(flat(hv, module.PARAMS)).max()))
    assert got == pytest.approx(expected, abs=2e-5 * scale * ROUGH.get(anynet.name, 1))


def test_numpy_and_c_agree(anynet):
    params, data = anynet.draw(4, 300)
    v = direction(anynet.module("numpy"), np.random.default_rng(5))
    hn = anynet.module("numpy").hvp(params, data, v)
    hc = anynet.module("c").hvp(params, data, v)
    scale = max(1e-300, max(float(np.abs(h).max()) for h in hn.values()))
    # both targets may contract a*b + c into an FMA: where terms cancel (logits of ±1000
    # make t_z - t_lse cancel to ~1e-13 of t_z), entries agree to a few 1e-12 of the scale
    for k in hn:
        np.testing.assert_allclose(hc[k], hn[k], rtol=1e-12, atol=1e-11 * scale, err_msg=k)


def test_hvp_is_linear_in_v_and_the_hessian_is_symmetric(anynet, target):
    module = anynet.module(target)
    params, data = anynet.draw(3, 6)
    rng = np.random.default_rng(11)
    u, v = direction(module, rng), direction(module, rng)
    hu, hv = module.hvp(params, data, u), module.hvp(params, data, v)
    h2v = module.hvp(params, data, {k: 2 * np.asarray(v[k]) if np.ndim(v[k]) else 2 * v[k]
                                    for k in v})
    hsum = module.hvp(params, data, along(u, v, 1.0))
    keys = module.PARAMS
    scale = max(1.0, float(np.abs(flat(hu, keys)).max()), float(np.abs(flat(hv, keys)).max()))
    # scaling by 2 is exact in floating point, so a linear computation doubles exactly
    np.testing.assert_allclose(flat(h2v, keys), 2 * flat(hv, keys), rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(flat(hsum, keys), flat(hu, keys) + flat(hv, keys),
                               rtol=1e-10, atol=1e-11 * scale)
    assert flat(u, keys) @ flat(hv, keys) == pytest.approx(flat(v, keys) @ flat(hu, keys),
                                                         rel=1e-9, abs=1e-10 * scale)


def test_zero_direction_gives_zero(zoo, target):
    module = zoo["seed"].module(target)
    params, data = zoo["seed"].draw(0, 4)
    h = module.hvp(params, data, {k: 0.0 for k in module.PARAMS})
    assert all(value == 0.0 for value in h.values())


def test_unused_parameter_has_zero_hvp(zoo, target):
    module = zoo["unused"].module(target)
    h = module.hvp({"w": 0.3, "spare": 2.0}, {"x": [1.0, 2.0], "y": 0.5},
                   {"w": 1.0, "spare": 1.0})
    assert h["spare"] == 0.0 and h["w"] != 0.0


# -- independent AD libraries ------------------------------------------------------------
def seed_loss(np_):
    def loss(theta, x1, x2, y):
        w11, w21, w12, w22, v1, v2 = theta
        z1 = np_.tanh(w11 * x1 + w21 * x2)
        z2 = np_.tanh(w12 * x1 + w22 * x2)
        z3 = np_.tanh(v1 * z1 + v2 * z2)
        return np_.mean((y - z3) ** 2)
    return loss


def test_seed_hvp_matches_autograd(zoo, target):
    import autograd
    import autograd.numpy as anp
    module = zoo["seed"].module(target)
    params, data = zoo["seed"].draw(6, 20)
    v = direction(module, np.random.default_rng(6))
    theta = np.array([params[k] for k in module.PARAMS])
    expected = autograd.hessian_vector_product(seed_loss(anp))(
        theta, data["x1"], data["x2"], data["y"], np.array([v[k] for k in module.PARAMS]))
    got = module.hvp(params, data, v)
    np.testing.assert_allclose([got[k] for k in module.PARAMS], expected, rtol=1e-12,
                               atol=1e-14)


def mlp_loss(np_, shapes):
    """The 64-32-10 MLP of examples/mlp_digits.py, in plain autograd.numpy."""
    def loss(theta, x, y):
        p, at = {}, 0
        for k, shape in shapes:
            size = int(np.prod(shape))
            p[k] = np_.reshape(theta[at:at + size], shape)
            at += size
        h = np_.tanh(np_.dot(x, p["W1"]) + p["b1"])
        z = np_.dot(h, p["W2"]) + p["b2"]
        m = np_.max(z, axis=1, keepdims=True)
        log_softmax = z - m - np_.log(np_.sum(np_.exp(z - m), axis=1, keepdims=True))
        return -np_.mean(np_.sum(y * log_softmax, axis=1))
    return loss


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """examples/mlp_digits.py compiled to both targets."""
    from conftest import import_file, run_cli
    out = tmp_path_factory.mktemp("digits")
    assert run_cli("compile", ROOT / "examples" / "mlp_digits.py", "--target", "all",
                   "--hvp", "-o", out) == 0
    name = runpy.run_path(str(ROOT / "examples" / "mlp_digits.py"))["net"].name
    return {"numpy": import_file(out / f"{name}.py", "_hvp_digits_numpy"),
            "c": import_file(out / f"{name}_c.py", "_hvp_digits_c")}


def digits_draw(module, seed, n=32):
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(0.0, 0.3, module.SHAPES[k]) for k in module.PARAMS}
    (x, y) = module.INPUTS
    data = {x: rng.normal(size=(n,) + module.SHAPES[x]),
            y: np.eye(module.SHAPES[y][0])[rng.integers(0, module.SHAPES[y][0], n)]}
    return params, data, direction(module, rng)


def test_mlp_hvp_matches_autograd(digits, target):
    import autograd
    import autograd.numpy as anp
    module = digits[target]
    assert module.PARAMS == ("W1", "b1", "W2", "b2") and module.REDUCE == "mean"
    params, data, v = digits_draw(module, 8)
    shapes = [(k, module.SHAPES[k]) for k in module.PARAMS]
    theta, vector = flat(params, module.PARAMS), flat(v, module.PARAMS)
    x, y = (data[k] for k in module.INPUTS)
    expected = autograd.hessian_vector_product(mlp_loss(anp, shapes))(theta, x, y, vector)
    got = flat(module.hvp(params, data, v), module.PARAMS)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12 * np.abs(expected).max())


def test_mlp_hvp_matches_torch(digits, target):
    import torch
    module = digits[target]
    params, data, v = digits_draw(module, 9)
    x, y = (torch.tensor(data[k]) for k in module.INPUTS)

    def loss(W1, b1, W2, b2):
        z = torch.tanh(x @ W1 + b1) @ W2 + b2
        return -(y * torch.log_softmax(z, dim=1)).sum(dim=1).mean()
    _, expected = torch.autograd.functional.hvp(
        loss, tuple(torch.tensor(params[k]) for k in module.PARAMS),
        tuple(torch.tensor(v[k]) for k in module.PARAMS))
    got = module.hvp(params, data, v)
    for k, e in zip(module.PARAMS, expected):
        e = e.numpy()
        np.testing.assert_allclose(got[k], e, rtol=1e-10, atol=1e-12 * np.abs(e).max(),
                                   err_msg=k)


# -- the API --------------------------------------------------------------------------------
def test_direction_is_checked_like_params(zoo, tensor_nets, target):
    module = tensor_nets["mlp2"].module(target)
    params, data = tensor_nets["mlp2"].draw(0, 3)
    v = direction(module, np.random.default_rng(0))
    with pytest.raises(KeyError, match="'b2' is missing.*direction"):
        module.hvp(params, data, {k: a for k, a in v.items() if k != "b2"})
    with pytest.raises(ValueError, match=r"'W1' has shape \(6, 5\).*direction"):
        module.hvp(params, data, {**v, "W1": np.zeros((6, 5))})
    with pytest.raises(TypeError, match="direction"):
        module.hvp(params, data, [1.0, 2.0])
    seed = zoo["seed"].module(target)
    p, d = zoo["seed"].draw(0, 3)
    with pytest.raises(FloatingPointError, match="direction 'v1' is nan"):
        seed.hvp(p, d, {**{k: 1.0 for k in seed.PARAMS}, "v1": float("nan")},
                 check_finite=True)
    h = seed.hvp(p, d, {k: 1.0 for k in seed.PARAMS}, check_finite=True)
    assert h == seed.hvp(p, d, {k: 1.0 for k in seed.PARAMS})


def test_one_sample_without_batch_axis(tensor_nets, target):
    net = tensor_nets["mlp2"]
    module = net.module(target)
    params, data = net.draw(1, 1)
    v = direction(module, np.random.default_rng(1))
    single = module.hvp(params, {k: a[0] for k, a in data.items()}, v)
    batch = module.hvp(params, data, v)
    for k in module.PARAMS:
        np.testing.assert_allclose(single[k], batch[k], rtol=1e-14, atol=1e-300)


# -- the compiler ---------------------------------------------------------------------------
def test_hvp_program_is_linear_in_depth():
    """The tangent sweep adds at most a constant times the gradient program's size."""
    import sympy

    import bpgen as bp
    from bpgen.compiler import compile_network

    def sizes(depth):
        net = bp.Network(f"chain{depth}", hvp=True)
        x = net.input("x")
        ws = net.params(" ".join(f"w{k}" for k in range(depth)))
        h = x
        for k, w in enumerate(ws):
            h = net.eq(f"h{k}", sympy.tanh(w * h))
        net.loss("L", h ** 2)
        programs = compile_network(net, "chain.py").programs
        return len(programs["value_and_grad"].equations), len(programs["hvp"].equations)
    (g10, h10), (_, h20), (g40, h40) = sizes(10), sizes(20), sizes(40)
    assert abs((h40 - h20) - 2 * (h20 - h10)) <= 4  # the same number per layer
    assert (h40 - h10) <= 4 * (g40 - g10)


def test_hvp_is_generated_only_when_asked_for(tmp_path):
    """Without hvp=True (or --hvp) the modules say how to get it; the C library has no
    hvp function (it would make the library about twice as large and slow to build)."""
    from conftest import import_file, run_cli
    (tmp_path / "plain.py").write_text(
        "import bpgen as bp\nnet = bp.Network('plain')\nx, y = net.inputs('x y')\n"
        "w = net.param('w')\nnet.loss('L', (bp.tanh(w * x) - y) ** 2)\n")
    assert run_cli("compile", tmp_path / "plain.py", "--target", "all", "-o",
                   tmp_path / "out") == 0
    assert "plain_hvp" not in (tmp_path / "out" / "plain.c").read_text()
    for stem in ("plain", "plain_c"):
        module = import_file(tmp_path / "out" / f"{stem}.py", f"_plain_{stem}")
        with pytest.raises(NotImplementedError, match=r"bp.Network\(\"plain\", hvp=True\)"):
            module.hvp({"w": 0.5}, {"x": 1.0, "y": 0.0}, {"w": 1.0})
        with pytest.raises(NotImplementedError, match="bpgen compile --hvp"):
            module.hvp_flat(np.ones(1), {"x": 1.0, "y": 0.0}, np.ones(1))
    (tmp_path / "bad.py").write_text("import bpgen as bp\nnet = bp.Network('bad', hvp=1)\n")
    assert run_cli("compile", tmp_path / "bad.py", "-o", tmp_path / "out2") == 2
