"""Training the way people train: minibatches, momentum, Adam(W), schedules, clipping.

The reference is PyTorch (float64): its autograd gives the gradients of a loss written in
torch independently of bpgen, and torch.optim takes the steps; the trajectories (the loss
before every step and the parameters after it) must match bpgen's to 1e-10 relative.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import TENSOR_NETS, ZOO_IDS

STEPS = 50

#: (optimizer, settings, clip_norm, schedule): each row is checked against torch.optim.
CONFIGS = [
    ("sgd", {}, None, False),
    ("sgd", {"weight_decay": 0.1}, None, True),
    ("momentum", {}, None, False),
    ("momentum", {"momentum": 0.8, "nesterov": True, "weight_decay": 0.05}, 0.5, False),
    ("adam", {}, None, False),
    ("adam", {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}, None, True),
    ("adamw", {}, None, False),
    ("adamw", {"weight_decay": 0.3, "betas": (0.85, 0.995)}, 0.2, True),
]
CONFIG_IDS = [f"{o}-{k}" for k, (o, *_) in enumerate(CONFIGS)]


def torch_seed(p, d):
    z1 = torch.tanh(p["w11"] * d["x1"] + p["w21"] * d["x2"])
    z2 = torch.tanh(p["w12"] * d["x1"] + p["w22"] * d["x2"])
    return ((d["y"] - torch.tanh(p["v1"] * z1 + p["v2"] * z2)) ** 2).mean()


def torch_mlp2(p, d):
    h1 = torch.tanh(d["x"] @ p["W1"] + p["b1"])
    h2 = torch.sigmoid(h1 @ p["W2"] + p["b2"])
    z = h2 @ p["W3"] + p["b3"]
    return -(d["y"] * torch.log_softmax(z, dim=1)).sum(dim=1).mean()


MODELS = {"seed": ("zoo", torch_seed), "mlp2": ("tensor_nets", torch_mlp2)}


def torch_optimizer(name, params, settings):
    s = dict(settings)
    if name == "sgd":
        return torch.optim.SGD(params, lr=0.0, **s)
    if name == "momentum":
        return torch.optim.SGD(params, lr=0.0, momentum=s.pop("momentum", 0.9), **s)
    return (torch.optim.Adam if name == "adam" else torch.optim.AdamW)(params, lr=0.0, **s)


def torch_trajectory(loss_fn, module, params, data, optimizer, settings, clip, rates,
                     batch_size, seed):
    """(losses, params after each step) of torch.optim on batches in bpgen's order."""
    p = {k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True)
         for k, v in params.items()}
    d = {k: torch.tensor(v) for k, v in data.items()}
    opt = torch_optimizer(optimizer, list(p.values()), settings)
    n = len(next(iter(data.values())))
    per_epoch = -(-n // batch_size) if batch_size else 1
    losses, path = [], []
    for t, rate in enumerate(rates):
        for group in opt.param_groups:
            group["lr"] = rate
        batch = d
        if batch_size:
            start = t % per_epoch * batch_size
            order = module.permutation(n, seed, t // per_epoch)
            take = torch.tensor(order[start:start + batch_size])
            batch = {k: v[take] for k, v in d.items()}
        opt.zero_grad()
        loss = loss_fn(p, batch)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(list(p.values()), clip)
        opt.step()
        losses.append(loss.item())
        path.append({k: v.detach().numpy().copy() for k, v in p.items()})
    return np.array(losses), path


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("batch_size", [None, 16])
def test_trajectory_matches_torch_optim(request, model, config, batch_size, target):
    fixture, loss_fn = MODELS[model]
    network = request.getfixturevalue(fixture)[model]
    module = network.module(target)
    optimizer, settings, clip, scheduled = config
    params, data = network.draw(3, 40)
    rates = module.cosine_lr(0.05, STEPS, 0.005) if scheduled else 0.05
    path = []
    _, losses = module.train(params, data, rates, STEPS, optimizer=optimizer,
                             batch_size=batch_size, seed=11, clip_norm=clip,
                             callback=lambda t, loss, p: path.append(p), **settings)
    expected_rates = [rates(t) for t in range(STEPS)] if scheduled else [rates] * STEPS
    ref_losses, ref_path = torch_trajectory(loss_fn, module, params, data, optimizer,
                                            settings, clip, expected_rates, batch_size, 11)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-10)
    assert len(path) == STEPS
    for got, want in zip(path, ref_path):
        for k in module.PARAMS:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-10, atol=1e-13)


def test_schedules_match_torch_lr_schedulers(zoo):
    module = zoo["seed"].module("numpy")
    w = torch.zeros(1, requires_grad=True)
    for make, ours in ((lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 30, 0.01),
                        module.cosine_lr(0.2, 30, 0.01)),
                       (lambda o: torch.optim.lr_scheduler.StepLR(o, 7, 0.5),
                        module.step_lr(0.2, 7, 0.5))):
        opt = torch.optim.SGD([w], lr=0.2)
        scheduler = make(opt)
        for t in range(30):
            assert ours(t) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
            opt.step()
            scheduler.step()


# -- every network, both targets ------------------------------------------------------
NETWORKS = [("zoo", k) for k in ZOO_IDS] + [("tensor_nets", p.stem) for p in TENSOR_NETS]


@pytest.mark.parametrize("where,key", NETWORKS, ids=[k for _, k in NETWORKS])
def test_numpy_and_c_trajectories_agree(request, where, key):
    network = request.getfixturevalue(where)[key]
    params, data = network.draw(5, 24)
    runs = {}
    for target, module in network.modules.items():
        path = []
        runs[target] = module.train(params, data, module.cosine_lr(0.02, 12), 12,
                                    optimizer="adam", batch_size=10 if data else None,
                                    seed=2, clip_norm=5.0, weight_decay=0.01,
                                    callback=lambda t, loss, p, path=path: path.append(p)
                                    ), path
    (p_np, l_np), path_np = runs["numpy"]
    (p_c, l_c), path_c = runs["c"]
    np.testing.assert_allclose(l_c, l_np, rtol=1e-12, atol=1e-300)
    for a, b in zip(path_np + [p_np], path_c + [p_c]):
        for k in a:
            np.testing.assert_allclose(b[k], a[k], rtol=1e-12, atol=1e-14)


# -- the sample order ---------------------------------------------------------------
def test_each_epoch_is_a_fresh_permutation(zoo, target):
    module = zoo["seed"].module(target)
    orders = [module.permutation(97, 4, e) for e in range(3)]
    for order in orders:
        assert sorted(order) == list(range(97))
    assert not np.array_equal(orders[0], orders[1])
    assert not np.array_equal(orders[0], module.permutation(97, 5, 0))
    np.testing.assert_array_equal(orders[2], module.permutation(97, 4, 2))


def test_without_shuffle_batches_go_in_order(zoo, target):
    """shuffle=False: batch k of an epoch is samples k*B .. k*B+B-1, as slicing gives."""
    network = zoo["seed"]
    module = network.module(target)
    params, data = network.draw(1, 10)
    _, losses = module.train(params, data, 0.0, 4, batch_size=4, shuffle=False)
    batches = [slice(0, 4), slice(4, 8), slice(8, 10), slice(0, 4)]
    for got, take in zip(losses, batches):
        part = {k: v[take] for k, v in data.items()}
        assert got == pytest.approx(network.reference(params, part).mean(), rel=1e-12)


# -- step functions -------------------------------------------------------------------
def test_step_is_pure_and_equals_train(tensor_nets, target):
    network = tensor_nets["mlp2"]
    module = network.module(target)
    params, data = network.draw(2, 20)
    kept = {k: np.copy(v) for k, v in params.items()}
    state = module.init_state(params, "adamw", weight_decay=0.05, clip_norm=1.0)
    p, s, losses = params, state, []
    for _ in range(5):
        loss, p, s = module.step(p, s, data, 0.01)
        losses.append(loss)
    assert state["step"] == 0 and not state["m"].any()  # nothing passed in changes
    for k in params:
        np.testing.assert_array_equal(params[k], kept[k])
    trained, expected = module.train(params, data, 0.01, 5, optimizer="adamw",
                                     weight_decay=0.05, clip_norm=1.0)
    np.testing.assert_allclose(losses, expected, rtol=1e-13)
    assert s["step"] == 5
    for k in params:
        np.testing.assert_allclose(p[k], trained[k], rtol=1e-13)


def test_callback_can_stop_early(zoo, target):
    network = zoo["seed"]
    params, data = network.draw(1, 30)
    seen = []
    params, losses = network.module(target).train(
        params, data, 0.1, 100, optimizer="momentum",
        callback=lambda t, loss, p: seen.append(t) or t < 6)
    assert seen == list(range(7))
    assert losses.shape == (7,)


# -- the progress bar -----------------------------------------------------------------
def test_progress_bar_only_when_asked_or_on_a_terminal(zoo, target, capsys):
    network = zoo["seed"]
    module = network.module(target)
    params, data = network.draw(1, 30)
    module.train(params, data, 0.1, 20)  # stderr is not a terminal under pytest
    assert capsys.readouterr().err == ""
    module.train(params, data, 0.1, 20, progress=True, optimizer="adam")
    err = capsys.readouterr().err
    assert err.startswith("\r") and err.endswith("\n")
    assert "20/20" in err and "steps/s" in err and "loss" in err
    module.train(params, data, 0.1, 20, progress=False)
    assert capsys.readouterr().err == ""


# -- bad settings ---------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,error,words", [
    ({"optimizer": "rmsprop"}, ValueError, "optimizer must be one of"),
    ({"optimizer": "adam", "momentum": 0.9}, TypeError, "has no setting 'momentum'"),
    ({"optimizer": "adam", "betas": 0.9}, TypeError, "betas must be a pair"),
    ({"optimizer": "adam", "betas": (0.9, 1.0)}, ValueError, "betas[1]"),
    ({"optimizer": "momentum", "momentum": float("nan")}, ValueError, "momentum must be"),
    ({"optimizer": "sgd", "nesterov": True}, TypeError, "has no setting 'nesterov'"),
    ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
    ({"clip_norm": -1.0}, ValueError, "clip_norm must be"),
    ({"seed": -1}, ValueError, "seed must be"),
])
def test_bad_settings_are_named(zoo, target, kwargs, error, words):
    network = zoo["seed"]
    params, data = network.draw(1, 5)
    with pytest.raises(error, match=r"^seed: ") as info:
        network.module(target).train(params, data, 0.1, 3, **kwargs)
    assert words in str(info.value)


def test_a_schedule_that_gives_nan_is_named(zoo, target):
    network = zoo["seed"]
    params, data = network.draw(1, 5)
    with pytest.raises(ValueError, match=r"lr\(2\) must be finite"):
        network.module(target).train(params, data, lambda t: 0.1 if t < 2 else np.nan, 4)


def test_update_from_an_accumulated_gradient_equals_step(tensor_nets, target):
    """update() takes a gradient computed elsewhere: here the mean of two parts' means,
    weighted by their sizes, is the whole batch's gradient."""
    network = tensor_nets["mlp2"]
    module = network.module(target)
    params, data = network.draw(2, 20)
    state = module.init_state(params, "adam", weight_decay=0.1, clip_norm=0.5)
    parts = [{k: v[:8] for k, v in data.items()}, {k: v[8:] for k, v in data.items()}]
    grads = [module.value_and_grad(params, part)[1] for part in parts]
    total = {k: (8 * grads[0][k] + 12 * grads[1][k]) / 20 for k in params}
    p, s = module.update(params, total, state, 0.01)
    _, expected, expected_state = module.step(params, state, data, 0.01)
    assert s["step"] == expected_state["step"] == 1
    for k in params:
        np.testing.assert_allclose(p[k], expected[k], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(s["v"], expected_state["v"], rtol=1e-12, atol=1e-300)
    with pytest.raises(KeyError, match=r"parameter 'b3' is missing \(in grads\)"):
        module.update(params, {k: g for k, g in total.items() if k != "b3"}, state, 0.01)


@pytest.mark.parametrize("tamper,words", [
    ({"step": -1}, "step -1 is not a count of steps"),
    ({"step": 2**64}, "is not a count of steps"),
    ({"settings": (0, 0, 2.0, -1.0, -1.0, -5.0, -3.0)}, "betas[0] must be finite in"),
    ({"settings": ("a",) * 7}, "state must come from init_state"),
    ({"optimizer": "rmsprop"}, "optimizer must be one of"),
    ({"optimizer": "momentum", "settings": (0.9, 2.0, 0, 0, 1.0, 0, 0)},
     "are not those of 'momentum'"),
])
def test_a_tampered_state_is_named(tensor_nets, target, tamper, words):
    network = tensor_nets["mlp2"]
    module = network.module(target)
    params, data = network.draw(2, 5)
    state = {**module.init_state(params, "adam"), **tamper}
    grads = module.value_and_grad(params, data)[1]
    with pytest.raises(TypeError, match=r"^mlp2: state must come from init_state") as info:
        module.update(params, grads, state, 0.01)
    assert words in str(info.value)


def test_a_numpy_false_from_the_callback_stops(zoo, target):
    network = zoo["seed"]
    params, data = network.draw(1, 10)
    _, losses = network.module(target).train(params, data, 0.1, 9,
                                             callback=lambda t, loss, p: np.bool_(t < 2))
    assert losses.shape == (3,)
