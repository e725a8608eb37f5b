"""Numerical stability at large arguments, and the check_finite option."""

import numpy as np
import pytest

from conftest import finite_differences


def bce_reference(q, d):
    s = q["w1"] * d["x1"] + q["w2"] * d["x2"] + q["b"]
    return d["y"] * np.logaddexp(0, -s) + (1 - d["y"]) * np.logaddexp(0, s)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_cross_entropy_at_logits_of_1000(zoo, target, sign):
    module = zoo["logistic"].module(target)
    params = {"w1": 1000.0 * sign, "w2": 0.0, "b": 0.0}
    data = {"x1": np.array([1.0, 1.0, -1.0]), "x2": np.zeros(3), "y": np.array([0.0, 1.0, 1.0])}
    value, grads = module.value_and_grad(params, data, check_finite=True)
    assert value == pytest.approx(bce_reference(params, data).mean(), rel=1e-12)
    # d/dw1 of the mean BCE: mean((sigmoid(s) - y) * x1), exactly representable here
    s = params["w1"] * data["x1"]
    expected = np.mean((np.where(s > 0, 1.0, 0.0) - data["y"]) * data["x1"])
    assert grads["w1"] == pytest.approx(expected, abs=1e-12)
    one = {"x1": -1.0, "x2": 0.0, "y": 1.0}
    single = module.value_and_grad(params, one)
    assert single[0] == pytest.approx(float(bce_reference(params, one)), rel=1e-12, abs=1e-300)
    assert single[0] == pytest.approx(1000.0 if sign > 0 else 0.0, abs=1e-12)


def test_check_finite_names_the_bad_value(zoo, target):
    module = zoo["seed"].module(target)
    params = module.init_params(0)
    data = {"x1": np.array([0.1, np.nan, 0.3]), "x2": 0.0, "y": 0.0}
    with pytest.raises(FloatingPointError, match=r"seed: input 'x1' is nan at sample 1"):
        module.value_and_grad(params, data, check_finite=True)
    with pytest.raises(FloatingPointError, match=r"parameter 'v2' is inf"):
        module.loss({**params, "v2": np.inf}, {"x1": 1.0, "x2": 0.0, "y": 0.0},
                    check_finite=True)
    with pytest.raises(ValueError, match=r"seed: lr must be finite, not nan"):
        module.train(params, {"x1": 1.0, "x2": 1.0, "y": 0.0}, lr=np.nan, steps=3)
    with np.errstate(all="ignore"), pytest.raises(
            FloatingPointError, match=r"functions: result 'loss' is nan at step 1"):
        zoo["functions"].module(target).train(
            {"a": 0.5, "b": 0.1, "c": 0.2, "k": 0.3}, {"x": 1.0, "y": 1e6}, lr=1.0, steps=3,
            check_finite=True)


def test_non_finite_without_check_propagates(zoo, target):
    """Documented behaviour: nan/inf in, nan/inf out, no exception (IEEE semantics)."""
    module = zoo["seed"].module(target)
    params = module.init_params(0)
    value, grads = module.value_and_grad(params, {"x1": np.array([np.nan, 1.0]),
                                                  "x2": 0.0, "y": 0.0})
    assert np.isnan(value) and all(np.isnan(g) for g in grads.values())


def test_overflowing_result_is_caught_by_check_finite(zoo, target):
    module = zoo["functions"].module(target)
    params = {"a": 800.0, "b": 0.1, "c": 0.2, "k": 0.3}
    with np.errstate(all="ignore"):
        assert module.loss(params, {"x": 1.0, "y": 0.0}) == np.inf
        with pytest.raises(FloatingPointError, match="result 'loss' is inf"):
            module.loss(params, {"x": 1.0, "y": 0.0}, check_finite=True)


def test_mixture_density_loss_at_an_outlier(tensor_nets, target):
    """-log(sum(pi * N(y; mu, s))) as the textbook writes it: at a target hundreds of standard
    deviations out every density underflows (the formula as written is -log(0) = inf),
    and bpgen's log-space form gives the finite loss and gradient of the reference."""
    net = tensor_nets["mdn"]
    module = net.module(target)
    rng = np.random.default_rng(3)
    params = net.params(rng)
    data = {"x": rng.normal(size=(4, 2)), "y": np.array([300.0, -400.0, 0.5, 1e3])}
    h = data["x"] @ params["W"] + params["b"]
    pi = np.exp(h[:, :3]) / np.exp(h[:, :3]).sum(axis=1, keepdims=True)
    mu, s = h[:, 3:6], np.exp(h[:, 6:])
    with np.errstate(all="ignore"):
        naive = -np.log(np.sum(pi * np.exp(-(data["y"][:, None] - mu) ** 2 / (2 * s ** 2))
                               / s, axis=1))
    assert np.isinf(naive[[0, 1, 3]]).all()  # what the formula as written gives
    value, grads = module.value_and_grad(params, data, check_finite=True)
    assert value == pytest.approx(net.reduced(params, data, "mean"), rel=1e-12)
    expected = finite_differences(net, params, data, "mean")
    for k in module.PARAMS:
        np.testing.assert_allclose(grads[k], expected[k], rtol=1e-6,
                                   atol=1e-7 * np.abs(expected[k]).max())
