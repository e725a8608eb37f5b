"""Loss and gradients of every zoo network, both targets, against independent NumPy code.

The reference is the network's loss written by hand in plain NumPy (tests/nets/*.py);
gradients are compared with its central finite differences — never with bpgen's output.
"""

import numpy as np
import pytest

from conftest import finite_differences


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_gradient_matches_finite_differences(net, target, seed):
    module = net.module(target)
    params, data = net.draw(seed, 9)
    value, grads = module.value_and_grad(params, data)
    assert value == pytest.approx(net.reduced(params, data, module.REDUCE),
                                  rel=1e-12, abs=1e-12)
    expected = finite_differences(net, params, data, module.REDUCE)
    assert list(grads) == list(module.PARAMS)
    for k in module.PARAMS:
        assert grads[k] == pytest.approx(expected[k], rel=2e-6, abs=2e-7), k


def test_single_sample_from_floats(net, target):
    module = net.module(target)
    params, data = net.draw(3, 1)
    floats = {k: float(v[0]) for k, v in data.items()}
    value, grads = module.value_and_grad(params, floats)
    assert isinstance(value, float)
    assert value == pytest.approx(float(net.reference(params, data)[0]), rel=1e-12, abs=1e-14)
    expected = finite_differences(net, params, data, "mean")
    for k in module.PARAMS:
        assert grads[k] == pytest.approx(expected[k], rel=2e-6, abs=2e-7), k
    assert module.loss(params, floats) == pytest.approx(value, rel=1e-15)


def test_c_and_numpy_agree(net):
    params, data = net.draw(4, 1000)
    vn, gn = net.module("numpy").value_and_grad(params, data)
    vc, gc = net.module("c").value_and_grad(params, data)
    assert vc == pytest.approx(vn, rel=1e-12, abs=1e-300)
    scale = max(abs(g) for g in gn.values())
    for k in gn:
        assert gc[k] == pytest.approx(gn[k], rel=1e-12, abs=1e-12 * scale), k
    fn = net.module("numpy").forward(params, data)
    fc = net.module("c").forward(params, data)
    assert list(fn) == list(fc)
    for k in fn:  # both targets may contract a*b + c into an FMA: values that cancel to
        # near zero agree to 1e-12 of the value's scale, not of themselves
        scale = max(1e-300, float(np.abs(fn[k]).max()))
        np.testing.assert_allclose(fc[k], fn[k], rtol=1e-12, atol=1e-12 * scale, err_msg=k)
    assert net.module("c").loss(params, data) == pytest.approx(vn, rel=1e-12)


def test_forward_matches_reference_loss(net, target):
    params, data = net.draw(5, 17)
    values = net.module(target).forward(params, data)
    loss_name = list(values)[-1] if net.net.loss_declaration.name in values else None
    per_sample = values[net.net.loss_declaration.name]
    assert loss_name is not None
    np.testing.assert_allclose(per_sample, net.reference(params, data), rtol=1e-12)


def test_unused_parameter_has_zero_gradient(zoo, target):
    module = zoo["unused"].module(target)
    _, grads = module.value_and_grad({"w": 0.3, "spare": 2.0}, {"x": [1.0, 2.0], "y": 0.5})
    assert grads["spare"] == 0.0
    assert grads["w"] != 0.0
