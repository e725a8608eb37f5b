"""The lecture's loop: the generated `train` fits a teacher network's data."""

import numpy as np
import pytest

TEACHER = {"w11": 1.2, "w21": -0.7, "w12": 0.4, "w22": 1.1, "v1": 1.5, "v2": -1.3}


def teacher_data(n=500):
    rng = np.random.default_rng(7)
    x1, x2 = rng.normal(size=(2, n))
    # The teacher's outputs, computed by plain NumPy (independent of bpgen).
    z1 = np.tanh(TEACHER["w11"] * x1 + TEACHER["w21"] * x2)
    z2 = np.tanh(TEACHER["w12"] * x1 + TEACHER["w22"] * x2)
    return {"x1": x1, "x2": x2, "y": np.tanh(TEACHER["v1"] * z1 + TEACHER["v2"] * z2)}


def test_training_cuts_the_loss_tenfold(zoo, target):
    module = zoo["seed"].module(target)
    data = teacher_data()
    start = module.init_params(0)
    params, losses = module.train(start, data, lr=0.5, steps=300)
    assert losses.shape == (300,)
    assert losses[0] == pytest.approx(module.loss(start, data), rel=1e-12)
    assert module.loss(params, data) < losses[0] / 10
    assert np.all(np.diff(losses[:50]) < 0)  # gradient descent goes downhill early on


def test_c_and_numpy_trajectories_agree(zoo):
    data = teacher_data()
    start = zoo["seed"].module("numpy").init_params(3)
    pn, ln = zoo["seed"].module("numpy").train(start, data, lr=0.5, steps=100)
    pc, lc = zoo["seed"].module("c").train(start, data, lr=0.5, steps=100)
    np.testing.assert_allclose(lc, ln, rtol=1e-10)
    for k in pn:
        assert pc[k] == pytest.approx(pn[k], rel=1e-9)


def test_train_equals_repeated_sgd_steps(zoo, target):
    module = zoo["seed"].module(target)
    data = teacher_data(50)
    params = module.init_params(1)
    trained, losses = module.train(params, data, lr=0.1, steps=3)
    p = dict(params)
    for k in range(3):
        value, p = module.sgd_step(p, data, 0.1)
        assert value == pytest.approx(losses[k], rel=1e-12)
    for k in p:
        assert trained[k] == pytest.approx(p[k], rel=1e-12)
