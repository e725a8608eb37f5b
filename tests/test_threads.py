"""threads=k on the C target: the blocks of samples run in chunks fixed by n alone, shared
out among OpenMP threads; every chunk sums apart and the sums are added in chunk order.

So the results are the same, bit for bit, for any number of threads (1 included), on
every test network and every entry point; and a batch of many chunks still agrees with
the NumPy module (itself checked against finite differences elsewhere) to 1e-12.
"""

import os
import shutil
import stat
import subprocess

import numpy as np
import pytest

from conftest import NETS, import_file, run_cli

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is required")

THREADS = (2, 3, 8)


def many_chunks(module) -> int:
    """Samples enough for several chunks (and a last one that is short)."""
    return min(3 * module._CHUNK_SAMPLES + 37, 20_000)


def same(a, b) -> bool:
    """Bit for bit: equal arrays (nan where nan) or equal numbers."""
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


def all_nets(zoo, tensor_nets):
    return list(zoo.values()) + list(tensor_nets.values())


def test_the_library_is_built_with_openmp(zoo):
    c = zoo["seed"].module("c")
    assert c.OPENMP and c.MAX_THREADS == 16


@pytest.mark.parametrize("which", ["nets", "tensor_nets"])
def test_every_entry_point_is_bitwise_identical_for_any_number_of_threads(
        zoo, tensor_nets, which):
    nets = zoo.values() if which == "nets" else tensor_nets.values()
    chunked = 0
    for net in nets:
        c = net.module("c")
        n = many_chunks(c)
        chunked += n > c._CHUNK_SAMPLES
        rng = np.random.default_rng(7)  # kinks do not matter here: no validity filter
        params, data = net.params(rng), net.sample(rng, n)
        if not data:
            continue
        direction = {k: np.full(np.shape(v), 0.5) if np.ndim(v) else 0.5
                     for k, v in params.items()}
        one = (c.loss(params, data), c.value_and_grad(params, data), c.forward(params, data),
               c.hvp(params, data, direction))
        for k in THREADS:
            value, grads = c.value_and_grad(params, data, threads=k)
            assert value == one[1][0], (net.name, k)
            assert all(same(grads[p], one[1][1][p]) for p in grads), (net.name, k)
            assert c.loss(params, data, threads=k) == one[0], (net.name, k)
            values = c.forward(params, data, threads=k)
            assert all(same(values[v], one[2][v]) for v in values), (net.name, k)
            h = c.hvp(params, data, direction, threads=k)
            assert all(same(h[p], one[3][p]) for p in h), (net.name, k)
    assert chunked >= len(nets) // 2  # most networks ran in several chunks


@pytest.mark.parametrize("stem", ["seed", "chain20", "stable"])
def test_many_chunks_agree_with_numpy(zoo, stem):
    net = zoo[stem]
    c, m = net.module("c"), net.module("numpy")
    params, data = net.draw(3, 5000)
    value, grads = c.value_and_grad(params, data, threads=3)
    want_value, want = m.value_and_grad(params, data)
    assert abs(value - want_value) <= 1e-12 * max(1.0, abs(want_value))
    for k in want:
        assert np.allclose(grads[k], want[k], rtol=1e-12, atol=1e-12), k


@pytest.mark.parametrize("stem", ["mlp2", "wide"])
def test_shaped_many_chunks_agree_with_numpy(tensor_nets, stem):
    net = tensor_nets[stem]
    c, m = net.module("c"), net.module("numpy")
    params, data = net.draw(3, many_chunks(c))
    value, grads = c.value_and_grad(params, data, threads=2)
    want_value, want = m.value_and_grad(params, data)
    assert abs(value - want_value) <= 1e-12 * max(1.0, abs(want_value))
    for k in want:
        scale = max(1.0, float(np.max(np.abs(want[k]))))
        assert np.max(np.abs(grads[k] - want[k])) <= 1e-12 * scale, k


def test_training_is_bitwise_identical_for_any_number_of_threads(tensor_nets):
    net = tensor_nets["mlp2"]
    c = net.module("c")
    params, data = net.draw(1, many_chunks(c))
    runs = [c.train(params, data, 0.05, 6, optimizer="adam", threads=k) for k in (1, 2, 5)]
    for trained, losses in runs[1:]:
        assert same(losses, runs[0][1])
        assert all(same(trained[p], runs[0][0][p]) for p in trained)
    assert runs[0][1][-1] < runs[0][1][0]


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-2, ValueError), (2.0, TypeError),
                                        ("2", TypeError), (True, TypeError)])
def test_a_bad_number_of_threads_is_one_clear_error(zoo, bad, error):
    net = zoo["seed"]
    c = net.module("c")
    params, data = net.draw(0, 10)
    with pytest.raises(error, match="seed: threads must be"):
        c.value_and_grad(params, data, threads=bad)
    with pytest.raises(error, match="seed: threads must be"):
        c.train(params, data, 0.1, 2, threads=bad)


def test_a_compiler_without_openmp_builds_the_same_library_for_one_thread(tmp_path,
                                                                           monkeypatch, zoo):
    """A C compiler that rejects -fopenmp (Apple's clang): the library is built without
    it, threads=k runs on one thread, and the results are still the same."""
    fake = tmp_path / "cc-no-openmp"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do [ "$a" = -fopenmp ] && '
                    '{ echo "unsupported option -fopenmp" >&2; exit 1; }; done\n'
                    f'exec {shutil.which("gcc")} "$@"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("CC", str(fake))
    seed = next(p for p in NETS if p.stem == "seed")
    assert run_cli("compile", seed, "--target", "c", "-o", tmp_path / "out") == 0
    c = import_file(tmp_path / "out" / "seed_c.py", "_seed_no_openmp")
    assert not c.OPENMP
    params, data = zoo["seed"].draw(2, 3000)
    assert c.value_and_grad(params, data, threads=4) == c.value_and_grad(params, data)
    want = zoo["seed"].module("c").value_and_grad(params, data, threads=4)
    assert c.value_and_grad(params, data) == want
    assert os.environ["CC"] == str(fake)


WIDE = '''
import bpgen as bp
net = bp.Network("widerows")
x = net.input("x", shape=(640,))
y = net.input("y", shape=(4,))
W1 = net.param("W1", shape=(640, 256))
W2 = net.param("W2", shape=(256, 4))
h = net.eq("h", bp.tanh(x @ W1))
net.loss("L", bp.sum((h @ W2 - y) ** 2))
'''


def test_large_products_share_their_columns_out_among_the_threads(tmp_path):
    """A call whose samples are one chunk runs the tiles of columns of its large products
    on the threads: still bitwise identical for any number of threads, and the gradient
    is the one of plain NumPy backprop (written out here, independent of bpgen)."""
    (tmp_path / "widerows.py").write_text(WIDE)
    assert run_cli("compile", tmp_path / "widerows.py", "--target", "c",
                   "-o", tmp_path / "out") == 0
    source = (tmp_path / "out" / "widerows.c").read_text()
    assert source.count("BP_PARALLEL_ROWS(_row_threads, _m*640*256 >= ") == 1  # forward
    assert source.count("BP_PARALLEL_ROWS(_row_threads, 640*_m*256 >= ") == 1  # backward
    for openmp in ([], ["-fopenmp"]):  # the macro is a statement, or a pragma, in its loop
        done = subprocess.run(["gcc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror",
                               "-O2", *openmp, "-c", str(tmp_path / "out" / "widerows.c"),
                               "-o", os.devnull], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    c = import_file(tmp_path / "out" / "widerows_c.py", "_widerows")
    rng = np.random.default_rng(11)
    params = {"W1": rng.normal(0, 0.05, (640, 256)), "W2": rng.normal(0, 0.1, (256, 4))}
    n = 100
    assert n <= c._CHUNK_SAMPLES  # one chunk: the products are what runs in parallel
    data = {"x": rng.normal(size=(n, 640)), "y": rng.normal(size=(n, 4))}
    one = c.value_and_grad(params, data)
    for k in THREADS:
        value, grads = c.value_and_grad(params, data, threads=k)
        assert value == one[0] and all(same(grads[p], one[1][p]) for p in grads), k
        assert same(c.forward(params, data, threads=k)["h"], c.forward(params, data)["h"])
    h = np.tanh(data["x"] @ params["W1"])
    r = h @ params["W2"] - data["y"]
    d_h = (2 * r / n) @ params["W2"].T
    want = {"W2": h.T @ (2 * r / n), "W1": data["x"].T @ (d_h * (1 - h * h))}
    assert abs(one[0] - (r ** 2).sum(axis=1).mean()) <= 1e-12 * abs(one[0])
    for k in want:
        np.testing.assert_allclose(one[1][k], want[k], rtol=1e-10, atol=1e-13)
