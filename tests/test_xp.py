"""The array API target (`<name>_xp.py`) on every test network and every array library at
hand: NumPy (through array-api-compat), array-api-strict (which rejects anything outside
the standard), PyTorch CPU tensors and JAX arrays; CUDA tensors where a GPU is present.

Checked against the NumPy module to 1e-12 (itself checked against finite differences of
independent NumPy code in test_gradients/test_tensor_nets), and against two independent
AD engines differentiating the generated `loss`: torch.autograd and jax.grad (under
jax.jit, which also proves the functions trace: no value-dependent Python).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import NETS, ROOT, TENSOR_NETS, import_file, run_cli

array_api_compat = pytest.importorskip("array_api_compat")  # the test extra installs it
import array_api_strict  # noqa: E402
import torch  # noqa: E402

HAS_JAX = importlib.util.find_spec("jax") is not None
HAS_CUDA = torch.cuda.is_available()

ALL = [("zoo", p.stem) for p in NETS] + [("tensor", p.stem) for p in TENSOR_NETS]
IDS = [name for _, name in ALL]


def _jnp():
    import jax
    jax.config.update("jax_enable_x64", True)  # float64, as the other targets compute
    import jax.numpy as jnp
    return jnp


def to_library(library: str, value):
    a = np.asarray(value, dtype=np.float64)
    if library == "numpy":
        return a
    if library == "strict":
        return array_api_strict.asarray(a)
    if library == "torch":
        return torch.asarray(a)
    if library == "torch-cuda":
        return torch.asarray(a, device="cuda")
    if library == "jax":
        return _jnp().asarray(a)
    raise AssertionError(library)


def to_numpy(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if type(value).__module__.startswith("array_api_strict"):
        return np.asarray(value._array)
    return np.asarray(value)


LIBRARIES = ["numpy", "strict", "torch",
             pytest.param("jax", marks=pytest.mark.skipif(not HAS_JAX, reason="JAX is not "
                                                          "installed")),
             pytest.param("torch-cuda", marks=pytest.mark.skipif(
                 not HAS_CUDA, reason="no CUDA device on this machine"))]


@pytest.fixture(params=ALL, ids=IDS)
def anynet(request, zoo, tensor_nets):
    kind, name = request.param
    return (zoo if kind == "zoo" else tensor_nets)[name]


def close(actual, expected, what):
    actual, expected = to_numpy(actual), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, what
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12 * scale, err_msg=what)


def converted(library, params, data):
    return ({k: to_library(library, v) for k, v in params.items()},
            {k: to_library(library, v) for k, v in data.items()})


def same_library(library, value):
    xp = array_api_compat.array_namespace(value)
    expected = {"numpy": "numpy", "strict": "array_api_strict", "torch": "torch",
                "torch-cuda": "torch", "jax": "jax"}[library]
    assert expected in xp.__name__, (xp, library)
    if library == "torch-cuda":
        assert value.device.type == "cuda"


@pytest.mark.parametrize("library", LIBRARIES)
def test_agrees_with_the_numpy_module(anynet, library):
    ref, xpm = anynet.module("numpy"), anynet.module("array-api")
    params, data = anynet.draw(3, 6)
    P, D = converted(library, params, data)
    value, grads = xpm.value_and_grad(P, D)
    expected_value, expected = ref.value_and_grad(params, data)
    same_library(library, value)
    assert value.shape == ()
    close(value, expected_value, "loss")
    close(xpm.loss(P, D), ref.loss(params, data), "loss()")
    assert list(grads) == list(ref.PARAMS)
    for k in ref.PARAMS:
        same_library(library, grads[k])
        close(grads[k], expected[k], k)
    values, expected_values = xpm.forward(P, D), ref.forward(params, data)
    assert list(values) == list(expected_values)
    for k in expected_values:
        close(values[k], expected_values[k], k)
    v = anynet.draw(4, 1)[0]
    hv = xpm.hvp(P, D, {k: to_library(library, x) for k, x in v.items()})
    for k, h in ref.hvp(params, data, v).items():
        close(hv[k], h, f"hvp {k}")


@pytest.mark.parametrize("library", ["strict", "torch"])
def test_one_sample_without_batch_axis(anynet, library):
    ref, xpm = anynet.module("numpy"), anynet.module("array-api")
    params, data = anynet.draw(5, 1)
    single = {k: v[0] for k, v in data.items()}
    value, grads = xpm.value_and_grad(*converted(library, params, single))
    expected_value, expected = ref.value_and_grad(params, single)
    close(value, expected_value, "loss")
    for k in ref.PARAMS:
        close(grads[k], expected[k], k)
    values = xpm.forward(*converted(library, params, single))
    for k, v in ref.forward(params, single).items():
        close(values[k], v, k)


def test_torch_autograd_of_the_generated_loss(anynet):
    """torch.autograd differentiates the generated loss program; bpgen's gradient must
    agree (two independent reverse sweeps over the same forward computation)."""
    xpm = anynet.module("array-api")
    params, data = anynet.draw(1, 6)
    P = {k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True)
         for k, v in params.items()}
    D = {k: torch.asarray(v) for k, v in data.items()}
    value = xpm.loss(P, D)
    auto = torch.autograd.grad(value, [P[k] for k in xpm.PARAMS], allow_unused=True)
    _, grads = xpm.value_and_grad({k: v.detach() for k, v in P.items()}, D)
    for k, g in zip(xpm.PARAMS, auto):
        expected = np.zeros(xpm.SHAPES[k]) if g is None else g.numpy()
        scale = max(1.0, np.abs(expected).max(initial=0.0))
        np.testing.assert_allclose(to_numpy(grads[k]), expected, rtol=1e-10,
                                   atol=1e-12 * scale, err_msg=k)


@pytest.mark.skipif(not HAS_JAX, reason="JAX is not installed")
def test_jax_grad_under_jit(anynet):
    import jax
    jnp = _jnp()
    xpm = anynet.module("array-api")
    params, data = anynet.draw(0, 6)
    P = {k: jnp.asarray(np.asarray(v, dtype=np.float64)) for k, v in params.items()}
    D = {k: jnp.asarray(v) for k, v in data.items()}
    value, grads = jax.jit(xpm.value_and_grad)(P, D)
    auto = jax.grad(lambda p: xpm.loss(p, D))(P)
    close(value, xpm.loss(P, D), "loss")
    for k in xpm.PARAMS:
        close(grads[k], to_numpy(auto[k]), k)


# -- einsum without einsum -------------------------------------------------------------
@pytest.mark.parametrize("spec", [
    "ij,jk->ik", "Zij,jk->Zik", "Zij,Zjk->Zik", "Zi,Zi->i", "Zi,Zj->Zij", "Zij,Zij->j",
    "Zpik,Zpij->jk", "abc,cd,de->ae", "Zab,Zbc,Zca->Z", "ab,b->a", "a,b->ab", "abc->cab",
    "abc->b", "Zab,bc->Zca", "ab,ab->ba", "Zabc,Zcb->Za", "a,a->", "ab,cd->dacb",
    "a,a,b->ab", "Za,a,b->Zab", "Z,Z,Zae->Ze", "Zab,Zb->Zab", "a,b,c->cba"])
def test_lowered_einsum_equals_numpy_einsum(spec):
    from bpgen.emit.xp_target import lower_einsum
    rng = np.random.default_rng(len(spec))
    sizes = {c: 2 + k for k, c in enumerate("abcdeijkp")}
    ins, out = spec.split("->")
    ins = ins.split(",")
    n = 3
    arrays = [rng.normal(size=[n if c == "Z" else sizes[c] for c in s]) for s in ins]
    text = lower_einsum(ins, out, [f"a{k}" for k in range(len(ins))], sizes)
    assert "einsum" not in text
    xp = array_api_strict
    scope = {"xp": xp, "_n": n, **{f"a{k}": xp.asarray(a) for k, a in enumerate(arrays)}}
    got = eval(text, scope)  # noqa: S307 - the emitter's own text
    np.testing.assert_allclose(to_numpy(got), np.einsum(spec, *arrays), rtol=1e-12,
                               atol=1e-12)


# -- callers' mistakes -------------------------------------------------------------------
@pytest.fixture(scope="module")
def mlp2(tensor_nets):
    return tensor_nets["mlp2"]


def test_mixed_libraries_are_refused(mlp2):
    xpm = mlp2.module("array-api")
    params, data = mlp2.draw(0, 3)
    P = {k: torch.asarray(v) for k, v in params.items()}
    x = xpm.INPUTS[0]
    with pytest.raises(TypeError, match=f"mlp2: input '{x}' is a numpy array, parameter "
                       f"'{xpm.PARAMS[0]}' a torch array; pass arrays of one library"):
        xpm.value_and_grad(P, data)


def test_sgd_step_checks_lr_and_steps(mlp2):
    xpm, ref = mlp2.module("array-api"), mlp2.module("numpy")
    params, data = mlp2.draw(0, 3)
    P, D = converted("torch", params, data)
    for bad, error in ((math.nan, ValueError), (math.inf, ValueError), (None, TypeError),
                       (True, TypeError), ("0.1", TypeError)):
        with pytest.raises(error, match="mlp2: lr must be"):
            xpm.sgd_step(P, D, bad)
    value, new = xpm.sgd_step(P, D, 0.1)
    expected_value, expected = ref.sgd_step(params, data, 0.1)
    close(value, expected_value, "loss")
    for k in ref.PARAMS:
        close(new[k], expected[k], k)


def test_erf_of_huge_and_infinite_arguments():
    from array_api_compat import array_namespace
    source = (ROOT / "tests" / "nets" / "functions.py")
    assert "erf" in source.read_text()
    import tempfile
    with tempfile.TemporaryDirectory() as out:
        assert run_cli("compile", source, "--target", "array-api", "-o", out) == 0
        xpm = import_file(Path(out) / "functions_xp.py")
        x = array_api_strict.asarray([-math.inf, -1e200, -30.5, -3.0, -0.5, 0.0, 0.7, 2.5,
                                      9.0, 1e200, math.inf])
        got = to_numpy(xpm._erf(array_namespace(x), x))
    np.testing.assert_allclose(got, [math.erf(v) for v in to_numpy(x)], rtol=1e-15,
                               atol=1e-16)


def test_wrong_shapes_dtypes_and_names_are_named(mlp2):
    xpm = mlp2.module("array-api")
    params, data = mlp2.draw(0, 3)
    P, D = converted("strict", params, data)
    k = xpm.PARAMS[0]
    with pytest.raises(ValueError, match=f"mlp2: parameter '{k}' has shape"):
        xpm.value_and_grad({**P, k: array_api_strict.ones((1, 1))}, D)
    with pytest.raises(TypeError, match=f"mlp2: parameter '{k}' has dtype"):
        xpm.value_and_grad({**P, k: array_api_strict.astype(P[k], array_api_strict.complex128)},
                           D)
    with pytest.raises(KeyError, match=f"mlp2: parameter '{k}' is missing"):
        xpm.value_and_grad({q: v for q, v in P.items() if q != k}, D)
    x = xpm.INPUTS[0]
    with pytest.raises(ValueError, match=f"mlp2: input '{x}' has shape"):
        xpm.value_and_grad(P, {**D, x: array_api_strict.ones((3, 1, 1))})
    with pytest.raises(TypeError, match="mlp2: params must be a dict"):
        xpm.value_and_grad([1.0], D)
    with pytest.raises(TypeError, match=f"mlp2: input '{x}' is a list"):
        xpm.value_and_grad(P, {**D, x: [[0.0] * 4]})


@pytest.mark.parametrize("library", ["torch", "strict", pytest.param(
    "jax", marks=pytest.mark.skipif(not HAS_JAX, reason="JAX is not installed"))])
@pytest.mark.parametrize("label", [99.0, -1.0, 1.5])
def test_class_labels_are_checked(tensor_nets, library, label):
    labels = tensor_nets["labels"]
    xpm = labels.module("array-api")
    params, data = labels.draw(0, 4)
    key = next(k for k in xpm.INPUTS if k in xpm._CLASSES)
    bad = np.asarray(data[key], dtype=float).copy()
    bad[2] = label
    P, D = converted(library, params, {**data, key: bad})
    with pytest.raises(ValueError, match=f"labels: input '{key}' holds class labels"):
        xpm.value_and_grad(P, D)


def test_plain_numbers_compute_in_numpy(zoo):
    seed = zoo["seed"]
    xpm = seed.module("array-api")
    params, data = seed.draw(0, 1)
    single = {k: float(v[0]) for k, v in data.items()}
    value, grads = xpm.value_and_grad(params, single)
    expected_value, expected = seed.module("numpy").value_and_grad(params, single)
    assert isinstance(value, (np.ndarray, np.generic)) and value.shape == ()
    close(value, expected_value, "loss")
    for k in expected:
        close(grads[k], expected[k], k)


def test_without_hvp_asks_for_it(tmp_path):
    net = tmp_path / "small.py"
    net.write_text("import bpgen as bp\nnet = bp.Network('small')\nx = net.inputs('x')\n"
                   "w = net.params('w')\nnet.loss('L', (w*x - 1)**2)\n")
    assert run_cli("compile", net, "--target", "array-api", "-o", tmp_path) == 0
    assert sorted(p.name for p in tmp_path.glob("*.py")) == ["small.py", "small_xp.py"]
    xpm = import_file(tmp_path / "small_xp.py")
    with pytest.raises(NotImplementedError, match="--hvp"):
        xpm.hvp({"w": 1.0}, {"x": 1.0}, {"w": 1.0})


def test_what_only_the_array_api_cannot_print_leaves_other_targets_alone(tmp_path, capsys):
    """sinc is NumPy's, not the standard's: the NumPy and C targets still compile the
    network; the array API target refuses it in one line naming the function."""
    net = tmp_path / "ripple.py"
    net.write_text("import sympy\nimport bpgen as bp\nnet = bp.Network('ripple')\n"
                   "x, y = net.inputs('x y')\na = net.params('a')\n"
                   "net.loss('L', (sympy.sinc(a*x) - y)**2)\n")
    assert run_cli("compile", net, "--target", "all", "--no-build", "-o", tmp_path / "np") == 2
    assert "sinc" in capsys.readouterr().err  # `all` includes the array API
    assert run_cli("compile", net, "--target", "numpy", "-o", tmp_path / "np") == 0
    assert run_cli("compile", net, "--target", "c", "--no-build", "-o", tmp_path / "np") == 0
    capsys.readouterr()
    assert run_cli("compile", net, "--target", "array-api", "-o", tmp_path / "xp") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "ripple.py:6: error:" in err and "sinc" in err, err
    assert not (tmp_path / "xp").exists()
