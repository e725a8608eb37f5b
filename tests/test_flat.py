"""The flat-parameter interface (pack, unpack, value_and_grad_flat), SciPy's optimisers on
it, and saving and loading parameters."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize

from conftest import TENSOR_NETS, ZOO_IDS, finite_differences

NETWORKS = [("zoo", k) for k in ZOO_IDS] + [("tensor_nets", p.stem) for p in TENSOR_NETS]


@pytest.mark.parametrize("where,key", NETWORKS, ids=[k for _, k in NETWORKS])
def test_pack_unpack_and_flat_gradient(request, where, key, target):
    network = request.getfixturevalue(where)[key]
    module = network.module(target)
    params, data = network.draw(4, 6)
    flat = module.pack(params)
    assert flat.shape == (module.N_FLAT,) and flat.dtype == np.float64
    assert module.N_FLAT == sum(int(np.prod(module.SHAPES[k])) for k in module.PARAMS)
    back = module.unpack(flat)
    assert list(back) == list(module.PARAMS)
    for k in module.PARAMS:
        np.testing.assert_array_equal(back[k], params[k])
        assert np.shape(back[k]) == module.SHAPES[k]
    value, grad = module.value_and_grad_flat(flat, data)
    # the layout: the dict API's gradient (checked against independent code elsewhere)
    expected_value, expected = module.value_and_grad(params, data)
    assert value == pytest.approx(expected_value, rel=1e-14)
    np.testing.assert_allclose(grad, np.concatenate([np.ravel(expected[k])
                                                     for k in module.PARAMS]),
                               rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("where,key", [("zoo", "seed"), ("tensor_nets", "mlp2"),
                                       ("tensor_nets", "lstm")])
def test_flat_gradient_matches_finite_differences(request, where, key, target):
    network = request.getfixturevalue(where)[key]
    module = network.module(target)
    params, data = network.draw(4, 6)
    value, grad = module.value_and_grad_flat(module.pack(params), data)
    # independent: central differences of the plain NumPy reference
    expected = finite_differences(network, params, data, module.REDUCE)
    assert value == pytest.approx(network.reduced(params, data, module.REDUCE), rel=1e-10)
    np.testing.assert_allclose(grad, np.concatenate([np.ravel(expected[k])
                                                     for k in module.PARAMS]),
                               rtol=1e-5, atol=1e-6)


def test_flat_arguments_are_checked(tensor_nets, target):
    module = tensor_nets["mlp2"].module(target)
    with pytest.raises(ValueError, match=r"^mlp2: flat has shape \(3,\), expected"):
        module.unpack(np.zeros(3))
    with pytest.raises(ValueError, match="expected"):
        module.value_and_grad_flat(np.zeros((module.N_FLAT, 1)), None)
    with pytest.raises(TypeError, match="must be a number or an array of numbers"):
        module.unpack(["a"] * module.N_FLAT)


def teacher(n=200):
    """Data from a known 3-4-1 tanh network, computed by plain NumPy."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    W1, W2 = rng.normal(size=(3, 4)), rng.normal(size=(4, 1))
    return {"x": x, "y": np.tanh(x @ W1) @ W2}


NET = '''
import bpgen as bp
net = bp.Network("fit", hvp=True)
x = net.input("x", shape=(3,))
y = net.input("y", shape=(1,))
W1 = net.param("W1", shape=(3, 4))
b1 = net.param("b1", shape=(4,))
W2 = net.param("W2", shape=(4, 1))
h = net.eq("h", bp.tanh(x @ W1 + b1))
net.loss("L", bp.sum((y - h @ W2) ** 2))
'''


@pytest.fixture(scope="module")
def fit(tmp_path_factory):
    from conftest import import_file, run_cli
    out = tmp_path_factory.mktemp("fit")
    (out / "fit_net.py").write_text(NET)
    assert run_cli("compile", out / "fit_net.py", "--target", "all", "-o", out) == 0
    return {"numpy": import_file(out / "fit.py"), "c": import_file(out / "fit_c.py")}


def test_scipy_lbfgs_fits_a_small_model(fit, target):
    module, data = fit[target], teacher()
    x0 = module.pack(module.init_params(1))
    start = module.value_and_grad_flat(x0, data)[0]
    result = scipy.optimize.minimize(module.value_and_grad_flat, x0, args=(data,), jac=True,
                                     method="L-BFGS-B")
    assert result.success
    assert result.fun < start / 100
    # at the optimum the gradient vanishes (L-BFGS-B's own test, and ours)
    assert np.linalg.norm(module.value_and_grad_flat(result.x, data)[1]) < 1e-3


def test_save_and_load_params(tensor_nets, target, tmp_path):
    module = tensor_nets["mlp2"].module(target)
    params, data = tensor_nets["mlp2"].draw(1, 5)
    module.save_params(tmp_path / "p.npz", params)
    loaded = module.load_params(tmp_path / "p.npz")
    assert list(loaded) == list(module.PARAMS)
    for k in params:
        np.testing.assert_array_equal(loaded[k], params[k])
    assert module.loss(loaded, data) == module.loss(params, data)


def test_load_params_checks_names_and_shapes(tensor_nets, zoo, target, tmp_path):
    module = tensor_nets["mlp2"].module(target)
    params = tensor_nets["mlp2"].draw(1, 5)[0]
    np.savez(tmp_path / "missing.npz", **{k: v for k, v in params.items() if k != "b2"})
    with pytest.raises(KeyError, match="parameter 'b2' is missing from the file"):
        module.load_params(tmp_path / "missing.npz")
    np.savez(tmp_path / "shape.npz", **{**params, "W1": np.zeros((6, 5))})
    with pytest.raises(ValueError, match=r"parameter 'W1' has shape \(6, 5\), expected \(5, 6\)"):
        module.load_params(tmp_path / "shape.npz")
    np.savez(tmp_path / "extra.npz", **params, w11=1.0)
    with pytest.raises(ValueError, match="'w11' is not a parameter of this network"):
        module.load_params(tmp_path / "extra.npz")
    seed = zoo["seed"].module(target)
    seed.save_params(tmp_path / "seed.npz", seed.init_params(0))
    assert seed.load_params(tmp_path / "seed.npz") == seed.init_params(0)  # floats stay floats


@pytest.mark.parametrize("where,key", [("zoo", "seed"), ("tensor_nets", "mlp2"),
                                       ("tensor_nets", "lstm")])
def test_hvp_flat_is_the_derivative_of_the_flat_gradient(request, where, key, target):
    """Central differences of the gradient along v (the gradient itself is checked against
    independent code in test_gradients)."""
    network = request.getfixturevalue(where)[key]
    module = network.module(target)
    params, data = network.draw(6, 8)
    x = module.pack(params)
    v = np.random.default_rng(1).normal(size=x.shape)
    h = 1e-5
    expected = (module.value_and_grad_flat(x + h * v, data)[1] -
                module.value_and_grad_flat(x - h * v, data)[1]) / (2 * h)
    got = module.hvp_flat(x, data, v)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7 * np.abs(expected).max())
    with pytest.raises(ValueError, match="v_flat has shape"):
        module.hvp_flat(x, data, v[:-1])


def test_scipy_newton_cg_with_exact_hessian_vector_products(fit, target):
    module, data = fit[target], teacher()
    x0 = module.pack(module.init_params(1))
    result = scipy.optimize.minimize(module.value_and_grad_flat, x0, args=(data,), jac=True,
                                     hessp=lambda x, v, d: module.hvp_flat(x, d, v),
                                     method="Newton-CG", options={"xtol": 1e-10})
    assert result.success and result.nhev > 0
    assert np.linalg.norm(module.value_and_grad_flat(result.x, data)[1]) < 1e-6


def test_the_scipy_example_fits_its_curve_both_ways(tmp_path):
    from conftest import ROOT, import_file, run_cli
    assert run_cli("compile", ROOT / "examples" / "curve_fit.py", "--target", "all",
                   "-o", tmp_path) == 0
    script = import_file(ROOT / "examples" / "scripts" / "fit_scipy.py", "_fit_scipy")
    lines = []
    results = script.main(["--generated", str(tmp_path)], out=lines.append)
    assert set(results) == {(m, k) for m in ("curve", "curve_c")
                            for k in ("L-BFGS-B", "Newton-CG")}
    for (module, method), result in results.items():
        assert result.success, (module, method, result.message)
        assert result.fun < 1e-3  # the noise's variance is 4e-4
    assert all(r.nhev > 0 for (_, k), r in results.items() if k == "Newton-CG")
    assert len(lines) == 4


def test_load_params_takes_the_path_save_params_was_given(zoo, target, tmp_path):
    module = zoo["seed"].module(target)
    module.save_params(tmp_path / "model", module.init_params(2))  # NumPy adds .npz
    assert module.load_params(tmp_path / "model") == module.init_params(2)
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(ValueError, match=r"^seed: .*one.npy: not a file of saved parameters"):
        module.load_params(tmp_path / "one.npy")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="not a file of saved parameters"):
        module.load_params(tmp_path / "junk.npz")
