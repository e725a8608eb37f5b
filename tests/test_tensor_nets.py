"""Networks with shaped values (tests/tensor_nets/*.py), both targets, against plain NumPy.

Each file defines `net`, `reference(params, data)` (the per-sample losses, shape (N,),
written by hand in NumPy), `sample(rng, n)`, and optionally `params(rng)` and
`valid(params, data)`. Every entry of every parameter's gradient is compared with central
finite differences of the reference; never with bpgen's own output.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import TENSOR_NETS, finite_differences, import_file, run_cli

def test_there_are_enough_tensor_nets():
    assert len(TENSOR_NETS) >= 8


@pytest.mark.parametrize("target", ["numpy", "c"])
@pytest.mark.parametrize("seed", [0, 1])
def test_gradient_matches_finite_differences(tnet, target, seed):
    module = tnet.modules[target]
    params, data = tnet.draw(seed, 6)
    value, grads = module.value_and_grad(params, data)
    expected_value = tnet.reduced(params, data, module.REDUCE)
    assert value == pytest.approx(expected_value, rel=1e-12, abs=1e-12)
    assert module.loss(params, data) == pytest.approx(expected_value, rel=1e-12, abs=1e-12)
    expected = finite_differences(tnet, params, data, module.REDUCE)
    assert list(grads) == list(module.PARAMS)
    for k in module.PARAMS:
        g = np.asarray(grads[k])
        assert g.shape == module.SHAPES[k], k
        scale = max(1.0, np.abs(expected[k]).max())
        np.testing.assert_allclose(g, expected[k], rtol=2e-6, atol=2e-7 * scale, err_msg=k)


@pytest.mark.parametrize("target", ["numpy", "c"])
def test_one_sample_without_batch_axis(tnet, target):
    """One sample given without its batch axis (the NumPy module's one-sample path, on
    arrays of the values' own shapes): loss, value_and_grad and value_and_grad_flat."""
    module = tnet.modules[target]
    params, data = tnet.draw(5, 1)
    single = {k: v[0] for k, v in data.items()}
    value, grads = module.value_and_grad(params, single)
    want = tnet.reduced(params, data, module.REDUCE)
    assert value == pytest.approx(want, rel=1e-12)
    assert module.loss(params, single) == pytest.approx(want, rel=1e-12)
    expected = finite_differences(tnet, params, data, module.REDUCE)
    flat_value, flat_grad = module.value_and_grad_flat(module.pack(params), single)
    assert flat_value == pytest.approx(want, rel=1e-12)
    for k, g in zip(module.PARAMS, np.split(flat_grad, np.cumsum(
            [np.prod(module.SHAPES[k], dtype=int) for k in module.PARAMS])[:-1])):
        scale = max(1.0, np.abs(expected[k]).max())
        np.testing.assert_allclose(grads[k], expected[k], rtol=2e-6, atol=2e-7 * scale)
        np.testing.assert_allclose(g.reshape(module.SHAPES[k]), expected[k], rtol=2e-6,
                                   atol=2e-7 * scale)
        assert np.shape(grads[k]) == module.SHAPES[k]
        assert type(grads[k]) is (np.ndarray if module.SHAPES[k] else float)
        if module.SHAPES[k]:  # the caller's own array: writable, sharing nothing
            assert grads[k].flags.writeable and grads[k].dtype == np.float64
            for other in [*params.values(), *single.values(),
                          *(grads[j] for j in module.PARAMS if j != k)]:
                assert not np.shares_memory(grads[k], other), k


def test_targets_agree_on_a_large_batch(tnet):
    params, data = tnet.draw(7, 700)
    vn, gn = tnet.modules["numpy"].value_and_grad(params, data)
    vc, gc = tnet.modules["c"].value_and_grad(params, data)
    assert vc == pytest.approx(vn, rel=1e-11)
    for k in gn:
        scale = np.abs(gn[k]).max()
        np.testing.assert_allclose(gc[k], gn[k], rtol=1e-10, atol=1e-12 * scale, err_msg=k)
    fn = tnet.modules["numpy"].forward(params, data)
    fc = tnet.modules["c"].forward(params, data)
    assert list(fn) == list(fc)
    for k in fn:
        assert fc[k].shape == fn[k].shape
        np.testing.assert_allclose(fc[k], fn[k], rtol=1e-11, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("target", ["numpy", "c"])
def test_training_lowers_the_loss_and_targets_agree(tnet, target):
    params, data = tnet.draw(8, 40)
    module = tnet.modules[target]
    lr = 1e-4 if tnet.name in ("large_logits", "log_softmax") else 0.05
    final, losses = module.train(params, data, lr, 30)
    assert losses.shape == (30,)
    assert losses[-1] < losses[0]
    assert module.loss(final, data) < losses[0]
    other = tnet.modules["c" if target == "numpy" else "numpy"]
    final_other, losses_other = other.train(params, data, lr, 30)
    np.testing.assert_allclose(losses, losses_other, rtol=1e-9)
    for k in final:
        assert np.shape(final[k]) == module.SHAPES[k]
        np.testing.assert_allclose(final[k], final_other[k], rtol=1e-9, atol=1e-12)
    # the caller's parameters are not modified
    again, _ = module.train(params, data, lr, 1)
    assert module.loss(params, data) == pytest.approx(losses[0], rel=1e-12)


@pytest.mark.parametrize("target", ["numpy", "c"])
def test_sgd_step_is_one_step_of_train(tnet, target):
    module = tnet.modules[target]
    params, data = tnet.draw(9, 10)
    value, stepped = module.sgd_step(params, data, 0.01)
    trained, losses = module.train(params, data, 0.01, 1)
    assert value == pytest.approx(losses[0], rel=1e-12)
    for k in stepped:
        np.testing.assert_allclose(stepped[k], trained[k], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("target", ["numpy", "c"])
def test_init_params_shapes_and_reproducibility(tnet, target):
    module = tnet.modules[target]
    a, b = module.init_params(3), module.init_params(3)
    assert list(a) == list(module.PARAMS)
    for k in a:
        assert np.shape(a[k]) == module.SHAPES[k]
        np.testing.assert_array_equal(a[k], b[k])
        np.testing.assert_array_equal(a[k], tnet.modules["numpy"].init_params(3)[k])


@pytest.mark.parametrize("target", ["numpy", "c"])
def test_softmax_cross_entropy_is_finite_at_logits_of_magnitude_1000(tensor_nets, target):
    tnet = tensor_nets["large_logits"]
    module = tnet.modules[target]
    params, data = tnet.draw(11, 50)
    logits = module.forward(params, data)["z"]
    assert np.abs(logits).max() > 1000
    value, grads = module.value_and_grad(params, data, check_finite=True)
    assert value == pytest.approx(tnet.reduced(params, data, module.REDUCE), rel=1e-12)
    assert np.isfinite(grads["W"]).all() and np.abs(grads["W"]).max() > 1


def test_a_loss_that_is_the_same_for_every_sample(tmp_path):
    """Only a regulariser reaches the loss: sum over a batch of n samples counts it n times."""
    (tmp_path / "reg_net.py").write_text(
        "import bpgen as bp\n"
        "net = bp.Network('reg')\n"
        "x = net.input('x', shape=(3,))\n"
        "W = net.param('W', shape=(3, 2))\n"
        "h = net.eq('h', x @ W)\n"
        "net.loss('L', bp.sum(W ** 2), reduce='sum')\n")
    assert run_cli("compile", tmp_path / "reg_net.py", "--target", "all", "-o", tmp_path) == 0
    W = np.arange(6.0).reshape(3, 2)
    data = {"x": np.ones((5, 3))}
    for stem in ("reg", "reg_c"):
        module = import_file(tmp_path / f"{stem}.py", f"_reg_{stem}")
        value, grads = module.value_and_grad({"W": W}, data)
        assert value == pytest.approx(5 * (W ** 2).sum())
        np.testing.assert_allclose(grads["W"], 5 * 2 * W)
