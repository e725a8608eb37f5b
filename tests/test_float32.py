"""`bpgen compile --dtype float32`: every test network in single precision, on every target.

The float32 build of each network is checked against its float64 build (itself checked
against finite differences of plain NumPy in test_gradients.py and test_tensor_nets.py):
the loss, every gradient, every forward value and the Hessian-vector product agree to
float32 accuracy, and every result is float32. The C source must be float all the way
through (gcc's -Wdouble-promotion finds any double operation), and the float versions of
bpgen's math helpers are accurate to a few float ulps with IEEE special values.
"""

import shutil
import subprocess

import numpy as np
import pytest

from conftest import (NETS, TENSOR_NETS, TestNetwork, assert_within_ulps, run_cli,
                      run_under_sanitizers)

ALL = NETS + TENSOR_NETS
IDS = [p.stem for p in ALL]
#: Agreement with the float64 build, relative to the largest value of the kind compared:
#: 100 float32 epsilons (the largest error seen is about 3), times the condition of the
#: network where its arguments are large: stable.py's reach 1000, which float32 rounds by
#: 6e-5, and its Hessian (sigmoid' of those arguments) moves by as much.
EPS = float(np.finfo(np.float32).eps)
CONDITION = {"stable": 1000.0}


@pytest.fixture(scope="session")
def f32_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("float32")
    assert run_cli("compile", *ALL, "--target", "all", "--hvp", "--dtype", "float32",
                   "-o", out) == 0
    return out


@pytest.fixture(scope="session")
def f32_nets(f32_dir):
    return {p.stem: TestNetwork(p, f32_dir) for p in ALL}


def float64_net(request, stem):
    fixture = "zoo" if any(p.stem == stem for p in NETS) else "tensor_nets"
    return request.getfixturevalue(fixture)[stem]


def single(values):
    """Values rounded to float32 (scalars stay Python floats)."""
    return {k: (np.asarray(v, np.float32) if np.ndim(v) else float(np.float32(v)))
            for k, v in values.items()}


def assert_float32(values, what):
    for k, v in values.items():
        if np.ndim(v):
            assert v.dtype == np.float32, (what, k, v.dtype)
        else:
            assert type(v) is float, (what, k, type(v))


def assert_close(got, want, what, tol):
    """Every entry within tol of the largest magnitude among `want`'s values (at least 1)."""
    scale = max([1.0] + [float(np.max(np.abs(w))) for w in want.values()])
    for k in want:
        error = float(np.max(np.abs(np.asarray(got[k], np.float64) - want[k])))
        assert error <= tol * scale, (what, k, error, scale)


@pytest.mark.parametrize("target", ["numpy", "c", "array-api"])
@pytest.mark.parametrize("stem", IDS)
def test_float32_agrees_with_float64(request, f32_nets, stem, target):
    ref = float64_net(request, stem)
    tol = 100 * EPS * CONDITION.get(stem, 1.0)
    params, data = ref.draw(0, 16)
    params, data = single(params), single(data)  # both builds see the same numbers
    m64, m32 = ref.module("numpy"), f32_nets[stem].module(target)
    if target == "array-api":
        m32 = Float32Xp(m32)
    value, grads = m32.value_and_grad(params, data)
    value64, grads64 = m64.value_and_grad(params, data)
    assert_float32(grads, "gradient")
    assert abs(float(value) - value64) <= tol * max(1.0, abs(value64))
    assert_close(grads, grads64, "gradient", tol)
    values = m32.forward(params, data)
    assert_float32(values, "forward")
    assert_close(values, m64.forward(params, data), "forward", tol)
    direction = {k: np.ones_like(v) if np.ndim(v) else 0.5 for k, v in params.items()}
    h = m32.hvp(params, data, direction)
    assert_float32(h, "hvp")
    assert_close(h, m64.hvp(params, data, direction), "hvp", tol)


class Float32Xp:
    """An array API module called with NumPy arrays, its results as NumPy's API gives
    them (0-d arrays as Python floats), so one test covers it."""

    def __init__(self, module):
        self.module = module

    @staticmethod
    def _out(values):
        return {k: (np.asarray(v) if np.ndim(v) else float(v)) for k, v in values.items()}

    @staticmethod
    def _in(values):
        return {k: np.asarray(v, np.float32) for k, v in values.items()}

    def value_and_grad(self, params, data):
        value, grads = self.module.value_and_grad(self._in(params), self._in(data))
        assert value.dtype == np.float32
        return float(value), self._out(grads)

    def forward(self, params, data):
        return self._out(self.module.forward(self._in(params), self._in(data)))

    def hvp(self, params, data, v):
        return self._out(self.module.hvp(self._in(params), self._in(data), self._in(v)))


@pytest.mark.parametrize("stem", [p.stem for p in ALL if p.parent.name == "tensor_nets"])
def test_numpy_float32_computes_in_float32_throughout(f32_nets, stem):
    """The generated function's own results, before the API converts them: float32
    arrays and scalars, never float64 (a float64 constant or helper would promote)."""
    net = f32_nets[stem]
    m = net.module("numpy")
    params, data = net.draw(3, 8)
    x, n, _ = m._inputs(data)
    value, grads = m._value_and_grad(*m._params(params), *x, n)
    for v in (value, *grads):
        assert not isinstance(v, (float, np.float64)) or v == 0.0, type(v)
        assert np.asarray(v).dtype == np.float32, np.asarray(v).dtype


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is required")
@pytest.mark.parametrize("stem", IDS)
def test_c_float32_has_no_double_arithmetic(f32_nets, f32_dir, stem):
    """Strict C99 without warnings, where any value promoted to double (a literal
    without its f, a double <math.h> function) would warn."""
    source = f32_dir / f"{f32_nets[stem].name}.c"
    done = subprocess.run(["gcc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror",
                           "-Wdouble-promotion", "-Wfloat-conversion", "-fsyntax-only",
                           str(source)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is required")
@pytest.mark.parametrize("stem", ["stable", "mlp2", "wide"])
def test_c_float32_entry_points_are_clean_under_asan_and_ubsan(f32_nets, f32_dir, tmp_path,
                                                               stem):
    """Every math helper (stable), an MLP, and the tiled contraction kernel (wide)."""
    run = run_under_sanitizers(tmp_path, f32_dir, f32_nets[stem].name)
    assert len(run.stdout.splitlines()) == 6


def test_c_float32_math_helpers_within_a_few_ulp(f32_nets):
    """bp_tanh, bp_exp, the sigmoid and softplus in float: against float64 NumPy rounded
    to float32, in float32 ulps; overflow, underflow, infinities and nan as C99's expf."""
    c = f32_nets["activations"].module("c")
    x = np.concatenate([
        np.linspace(-20, 20, 40001), np.geomspace(1e-44, 110, 20000),
        -np.geomspace(1e-44, 110, 20000), [0.0, -0.0, np.inf, -np.inf, 88.72, 88.73,
                                           -103.9, -104.0, -87.3, 1e-5, 0.5493, 0.55]])
    x = x.astype(np.float32)
    with np.errstate(all="ignore"):
        values = c.forward({"a": 1.0}, {"x": x, "y": 0.0})
        w = x.astype(np.float64)
        expected = {"t": np.tanh(w), "e": np.exp(w),
                    "g": np.where(w >= 0, 1 / (1 + np.exp(-w)), np.exp(w) / (1 + np.exp(w))),
                    "s": np.logaddexp(0, w), "r": np.maximum(w, 0)}
    for key, exact in expected.items():
        with np.errstate(over="ignore"):
            want = exact.astype(np.float32)
        assert values[key].dtype == np.float32
        assert_within_ulps(x, values[key], exact, want)
    nan = c.forward({"a": 1.0}, {"x": np.nan, "y": 0.0})
    assert all(np.isnan(v) for v in nan.values())


@pytest.mark.parametrize("target", ["numpy", "c"])
def test_float32_training_and_flat_interface(f32_nets, target):
    """init_params, sgd_step, train and the flat interface keep float32."""
    net = f32_nets["mlp2"]
    m = net.module(target)
    params = m.init_params(0)
    assert_float32(params, "init_params")
    params, data = net.draw(5, 32)
    _, stepped = m.sgd_step(params, data, 0.1)
    assert_float32(stepped, "sgd_step")
    flat = m.pack(params)
    assert flat.dtype == np.float32
    value, grad = m.value_and_grad_flat(flat, data)
    assert grad.dtype == np.float32 and type(value) is float
    trained, losses = m.train(params, data, lr=0.1, steps=20)
    assert_float32(trained, "train")
    assert losses[-1] < losses[0]


def test_out_of_range_input_is_one_clear_error(f32_nets):
    m = f32_nets["mlp2"].module("numpy")
    params, data = f32_nets["mlp2"].draw(5, 4)
    data = {k: np.asarray(v, np.float64) for k, v in data.items()}
    key = next(iter(data))
    data[key][0] = 1e300
    for target in ("numpy", "c"):
        m = f32_nets["mlp2"].module(target)
        with pytest.raises(ValueError, match=f"input {key!r} is outside the range of "
                           r"float32 \(about ±3.4e38\)"):
            m.value_and_grad(params, data)

