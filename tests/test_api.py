"""The generated Python API behaves the same on both targets."""

import numpy as np
import pytest


def test_sgd_step_does_not_mutate_and_moves_against_the_gradient(zoo, target):
    module = zoo["seed"].module(target)
    params = module.init_params(0)
    before = dict(params)
    data = {"x1": [0.5, -1.0], "x2": [1.5, 0.2], "y": [0.3, -0.4]}
    value, grads = module.value_and_grad(params, data)
    loss, new = module.sgd_step(params, data, 0.1)
    assert params == before and loss == pytest.approx(value)
    for k in module.PARAMS:
        assert new[k] == pytest.approx(params[k] - 0.1 * grads[k])


def test_init_params_is_reproducible(zoo, target):
    module = zoo["seed"].module(target)
    assert module.init_params(5) == module.init_params(5)
    assert module.init_params(5) != module.init_params(6)
    assert list(module.init_params(0)) == list(module.PARAMS)
    assert zoo["seed"].module("numpy").init_params(2) == zoo["seed"].module("c").init_params(2)


def test_float_broadcasts_against_arrays(zoo, target):
    module = zoo["seed"].module(target)
    params = module.init_params(0)
    mixed = {"x1": np.array([0.1, 0.2, 0.3]), "x2": 0.5, "y": 0.25}
    full = {"x1": np.array([0.1, 0.2, 0.3]), "x2": np.full(3, 0.5), "y": np.full(3, 0.25)}
    a, ga = module.value_and_grad(params, mixed)
    b, gb = module.value_and_grad(params, full)
    assert a == pytest.approx(b, rel=1e-15) and ga == pytest.approx(gb, rel=1e-15)


def test_mean_of_batch_is_mean_of_single_samples(zoo, target):
    module = zoo["regularized"].module(target)
    params = {"w": 0.4, "b": -0.2, "lam": 0.7}
    xs, ys = np.array([0.3, -1.2, 2.0]), np.array([0.1, 0.5, -0.3])
    value, grads = module.value_and_grad(params, {"x": xs, "y": ys})
    singles = [module.value_and_grad(params, {"x": float(x), "y": float(y)})
               for x, y in zip(xs, ys)]
    assert value == pytest.approx(np.mean([s[0] for s in singles]), rel=1e-13)
    for k in params:
        assert grads[k] == pytest.approx(np.mean([s[1][k] for s in singles]), rel=1e-12)


def test_sum_reduction_adds_samples(zoo, target):
    module = zoo["constants"].module(target)
    assert module.REDUCE == "sum"
    params = {"m": 0.3, "q": -0.5}
    ts = np.array([0.2, 0.7, -1.1, 0.4])
    value, grads = module.value_and_grad(params, {"t": ts})
    singles = [module.value_and_grad(params, {"t": float(t)}) for t in ts]
    assert value == pytest.approx(sum(s[0] for s in singles), rel=1e-13)
    assert grads["q"] == pytest.approx(sum(s[1]["q"] for s in singles), rel=1e-12)


def test_mismatched_lengths_and_matrices_are_rejected(zoo, target):
    module = zoo["seed"].module(target)
    params = module.init_params(0)
    with pytest.raises(ValueError, match="input 'x2' has 3 samples, but input 'x1' has 2"):
        module.value_and_grad(params, {"x1": [1.0, 2.0], "x2": [1.0, 2.0, 3.0], "y": 0.0})
    with pytest.raises(ValueError, match=r"input 'x1' has shape \(2, 2\), expected \(\) "
                                         r"\(one sample\) or \(N,\) \(N samples\)"):
        module.loss(params, {"x1": np.ones((2, 2)), "x2": 0.0, "y": 0.0})


def test_scalar_path_falls_back_to_numpy_semantics(zoo, target):
    """exp overflow with one float sample gives inf like a batch does, not an exception."""
    module = zoo["functions"].module(target)
    params = {"a": 800.0, "b": 0.1, "c": 0.2, "k": 0.3}
    with np.errstate(all="ignore"):
        value, _ = module.value_and_grad(params, {"x": 1.0, "y": 0.0})
    assert value == np.inf


def test_forward_returns_every_value_per_sample(zoo, target):
    module = zoo["regularized"].module(target)
    values = module.forward({"w": 0.4, "b": -0.2, "lam": 0.7}, {"x": [1.0, 2.0], "y": 0.0})
    assert list(values) == ["scale", "pred", "penalty", "L"]
    assert values["scale"].shape == (2,) and values["scale"][0] == pytest.approx(1.49)


@pytest.mark.parametrize("key", ["mlp2", "conv", "lstm"])
def test_arrays_ready_for_c_take_the_same_way_as_any_other_values(tensor_nets, key):
    """The C wrapper passes arrays that need no conversion straight to C (the fast path);
    anything else is converted and checked first. Both give the same numbers, bit for
    bit, and the fast path keeps the caller's arrays alive while C reads them."""
    import gc
    import threading

    module = tensor_nets[key].module("c")
    params, data = tensor_nets[key].draw(5, 7)
    ready = ({k: np.ascontiguousarray(v, dtype=np.float64) for k, v in params.items()},
             {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in data.items()})
    others = ({k: np.asfortranarray(v) if np.ndim(v) > 1 else np.asarray(v).tolist()
               for k, v in params.items()},
              {k: np.asarray(v).tolist() for k, v in data.items()})
    for fn in (module.loss, module.value_and_grad):
        fast, general = fn(*ready), fn(*others)
        if fn is module.loss:
            assert fast == general
        else:
            assert fast[0] == general[0]
            for k in module.PARAMS:
                np.testing.assert_array_equal(fast[1][k], general[1][k])

    class Fresh(dict):
        """A mapping that hands out a new array on every lookup (nothing else holds it)."""

        def __getitem__(self, k):
            return np.array(dict.__getitem__(self, k), dtype=np.float64)

    class Calling(dict):
        """A mapping whose lookups call the module with other values (re-entrant use)."""

        def __getitem__(self, k):
            module.loss(*other)
            return dict.__getitem__(self, k)

    other = (ready[0], {k: v[:2] for k, v in ready[1].items()})  # other samples
    want = module.value_and_grad(*ready)
    assert module.loss(Calling(ready[0]), Calling(ready[1])) == module.loss(*ready)
    got = module.value_and_grad(Calling(ready[0]), Calling(ready[1]))
    assert got[0] == want[0] and all(same for same in (
        np.array_equal(got[1][k], want[1][k]) for k in module.PARAMS))
    stop = threading.Event()
    churn = threading.Thread(target=lambda: [gc.collect() for _ in iter(stop.is_set, True)])
    churn.start()
    try:
        for _ in range(20):
            got = module.value_and_grad(Fresh(ready[0]), Fresh(ready[1]))
            assert got[0] == want[0]
    finally:
        stop.set()
        churn.join()
