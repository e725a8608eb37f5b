"""Data-parallel loss, gradient and training on Dask (bpgen.dask) with a real
distributed.LocalCluster of two worker processes, on data stored on disk as chunks: the
results equal the single-process generated module's on the same data."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster

import bpgen.dask as bd

N, CHUNK = 1200, 100  # 12 chunks on 2 workers


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def stored(tmp_path, network, seed=0):
    """n samples of the network's inputs, written to disk as chunks of 100 (npy stacks)
    and read back lazily; and the same data in memory."""
    params, data = network.draw(seed, N)
    lazy = {}
    for k, v in data.items():
        da.to_npy_stack(tmp_path / k, da.from_array(v, chunks=(CHUNK,) + v.shape[1:]))
        lazy[k] = da.from_npy_stack(tmp_path / k)
    return params, data, lazy


NETWORKS = [("zoo", "seed"), ("tensor_nets", "mlp2"), ("tensor_nets", "labels")]


@pytest.mark.parametrize("where,key", NETWORKS, ids=[k for _, k in NETWORKS])
def test_value_and_grad_on_a_cluster_equals_one_process(request, client, tmp_path, where,
                                                        key, target):
    module = request.getfixturevalue(where)[key].module(target)
    params, data, lazy = stored(tmp_path, request.getfixturevalue(where)[key])
    assert lazy[module.INPUTS[0]].numblocks[0] == N // CHUNK
    value, grads = bd.value_and_grad(module, params, lazy)
    expected_value, expected = module.value_and_grad(params, data)
    assert value == pytest.approx(expected_value, rel=1e-12)
    for k in module.PARAMS:
        np.testing.assert_allclose(grads[k], expected[k], rtol=1e-12,
                                   atol=1e-12 * np.max(np.abs(expected[k])))
    assert bd.loss(module, params, lazy) == pytest.approx(expected_value, rel=1e-12)


@pytest.mark.parametrize("options", [
    {"optimizer": "momentum"},
    {"optimizer": "adam", "batch_size": 128, "seed": 3, "weight_decay": 0.01},
    {"optimizer": "sgd", "batch_size": 250, "shuffle": False, "clip_norm": 1.0},
], ids=["full-batch", "minibatch-adam", "in-order"])
def test_training_on_a_cluster_follows_the_same_trajectory(tensor_nets, client, tmp_path,
                                                            target, options):
    module = tensor_nets["mlp2"].module(target)
    params, data, lazy = stored(tmp_path, tensor_nets["mlp2"])
    trained, losses = bd.train(module, params, lazy, module.cosine_lr(0.05, 8), 8,
                               **options)
    expected, expected_losses = module.train(params, data, module.cosine_lr(0.05, 8), 8,
                                             **options)
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-12)
    for k in module.PARAMS:
        np.testing.assert_allclose(trained[k], expected[k], rtol=1e-11, atol=1e-14)


def test_without_a_cluster_the_local_scheduler_runs_the_same_tasks(zoo, tmp_path, target):
    module = zoo["seed"].module(target)
    params, data, lazy = stored(tmp_path, zoo["seed"])
    stopped = []
    _, losses = bd.train(module, params, lazy, 0.1, 10, batch_size=100,
                         callback=lambda t, loss, p: stopped.append(t) or t < 3)
    assert len(losses) == len(stopped) == 4
    _, expected = module.train(params, data, 0.1, 4, batch_size=100)
    np.testing.assert_allclose(losses, expected, rtol=1e-12)


def test_bad_data_is_named(tensor_nets, tmp_path):
    module = tensor_nets["mlp2"].module("numpy")
    params, data, lazy = stored(tmp_path, tensor_nets["mlp2"])
    with pytest.raises(KeyError, match="input 'y' is missing"):
        bd.value_and_grad(module, params, {"x": lazy["x"]})
    with pytest.raises(ValueError, match="input 'y' has 1000 samples, but input 'x' has 1200"):
        bd.value_and_grad(module, params, {"x": lazy["x"], "y": lazy["y"][:1000]})
    with pytest.raises(ValueError, match=r"input 'x' has shape \(1200, 4\), expected \(N, 5\)"):
        bd.value_and_grad(module, params, {"x": lazy["x"][:, :4], "y": lazy["y"]})
    with pytest.raises(ValueError, match="no input is a dask array"):
        bd.value_and_grad(module, params, data)


def test_samples_in_memory_beside_dask_arrays_are_chunked_alike(tensor_nets, tmp_path):
    module = tensor_nets["mlp2"].module("numpy")
    params, data, lazy = stored(tmp_path, tensor_nets["mlp2"])
    mixed = {"x": lazy["x"], "y": data["y"]}  # y in memory, with its sample axis
    _, losses = bd.train(module, params, mixed, 0.1, 5, batch_size=64, shuffle=False)
    _, expected = module.train(params, data, 0.1, 5, batch_size=64, shuffle=False)
    np.testing.assert_allclose(losses, expected, rtol=1e-12)


def test_check_finite_names_what_is_not_finite(tensor_nets, tmp_path):
    module = tensor_nets["mlp2"].module("c")
    params, data, lazy = stored(tmp_path, tensor_nets["mlp2"])
    bad = {**lazy, "x": da.where(da.arange(N)[:, None] == 700, np.nan, lazy["x"])}
    with pytest.raises(FloatingPointError, match="input 'x' holds a non-finite value"):
        bd.value_and_grad(module, params, bad, check_finite=True)
    with pytest.raises(FloatingPointError, match="parameter 'W1' is nan"):
        bd.train(module, {**params, "W1": np.full((5, 6), np.nan)}, lazy, 0.1, 3,
                 check_finite=True)
    with pytest.raises(FloatingPointError, match=r"result 'loss' is (inf|nan) at step \d"):
        bd.train(module, {**params, "b3": np.array([1e308, -1e308, 0.0, 0.0])}, lazy, 0.1,
                 3, check_finite=True)
    value, _ = bd.value_and_grad(module, params, lazy, check_finite=True)
    assert value == pytest.approx(module.loss(params, data), rel=1e-12)
