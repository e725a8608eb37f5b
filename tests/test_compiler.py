"""The compiler's stages, one at a time: front end, reverse sweep, each pass."""

import runpy

import pytest
import sympy

import bpgen as bp
from bpgen.autodiff import differentiate
from bpgen.compiler import compile_network
from bpgen.ir import ADJOINT, BACKWARD, GRAD, TEMP, count_ops, from_network, is_batch_sum
from bpgen.passes import PIPELINE, copies, cse, dce, fold, optimize, reuse
from conftest import ROOT


def seed_net():
    """A fresh copy of the lecture's network (examples/seed.py runs anew each call)."""
    return runpy.run_path(str(ROOT / "examples" / "seed.py"))["net"]


def chain(depth):
    net = bp.Network(f"chain{depth}")
    x, y = net.inputs("x y")
    a, b = x, -x
    for k in range(depth):
        p, q = net.params(f"p{k} q{k}")
        a, b = net.eq(f"a{k}", bp.tanh(p * a + q * b)), net.eq(f"b{k}", bp.tanh(q * a - p * b))
    net.loss("L", (a + b - y) ** 2)
    return net


def same(a, b):
    return sympy.expand(a - b) == 0


def by_name(ir):
    return {str(eq.lhs): eq for eq in ir.equations}


def test_declarations_keep_origins_and_roles():
    net = seed_net()
    ir = from_network(net, "seed.py")
    assert [v.name for v in ir.params] == ["w11", "w21", "w12", "w22", "v1", "v2"]
    assert [str(e.lhs) for e in ir.equations] == ["s1", "s2", "z1", "z2", "s3", "z3", "L",
                                                  "L_total"]
    assert all(e.origin.file.endswith("seed.py") for e in ir.equations)
    assert ir.validate() is ir
    # the sum over samples and the mean's 1/n are explicit: an equation and the result
    assert is_batch_sum(by_name(ir)["L_total"].rhs) and by_name(ir)["L_total"].anonymous
    assert str(ir.results[0].expr) == "L_total/_n"


def test_reverse_sweep_follows_the_chain_rule():
    ir = differentiate(from_network(seed_net(), "seed.py")).validate()
    eqs = by_name(ir)
    s = {n: sympy.Symbol(n, real=True) for n in
         "y z1 z2 z3 s1 s3 v1 v2 x1 x2 d_z3 d_s3 d_z1 d_s1".split()}
    assert same(eqs["d_z3"].rhs, -2 * (s["y"] - s["z3"]))
    assert same(eqs["d_s3"].rhs, s["d_z3"] * (1 - sympy.tanh(s["s3"]) ** 2))
    assert same(eqs["d_z1"].rhs, s["d_s3"] * s["v1"])
    # d_w11 = Σ_samples d_s1·x1: one contraction (∂s1/∂w11 = x1, never swapped)
    total = next(e for e in ir.equations if is_batch_sum(e.rhs) and
                 set(e.rhs.operands) == {s["d_s1"], s["x1"]})
    assert total.rhs.spec == ",->" and by_name(ir)["d_w11"].rhs == total.lhs
    assert eqs["d_w11"].role == GRAD and eqs["d_z1"].role == ADJOINT
    assert [r.key for r in ir.results] == ["L", "w11", "w21", "w12", "w22", "v1", "v2"]
    assert str(ir.results[1].expr) == "d_w11/_n"


def test_fan_out_sums_adjoints():
    net = bp.Network("fan")
    x, y = net.inputs("x y")
    w = net.params("w")
    h = net.eq("h", w * x)
    net.loss("L", (h ** 2 + sympy.sin(h) - y) ** 2)
    ir = differentiate(from_network(net, "f.py"))
    d_h = by_name(ir)["d_h"].rhs
    assert isinstance(d_h, sympy.Mul) or isinstance(d_h, sympy.Add)
    hs = sympy.Symbol("h", real=True)
    assert d_h.has(sympy.cos(hs)) and d_h.has(hs)


def test_reuse_reads_stored_forward_values():
    ir = reuse.run(differentiate(from_network(seed_net(), "seed.py")))
    z3 = sympy.Symbol("z3", real=True)
    assert same(by_name(ir)["d_s3"].rhs, sympy.Symbol("d_z3", real=True) * (1 - z3 ** 2))
    assert not any(e.rhs.has(sympy.tanh) for e in ir.equations if e.role in BACKWARD)


def test_fold_propagates_constants():
    net = bp.Network("c")
    x, y = net.inputs("x y")
    w = net.params("w")
    two = net.eq("two", sympy.Integer(2))
    net.loss("L", (two * w * x - y) ** 2)
    ir = fold.run(differentiate(from_network(net, "c.py")))
    assert by_name(ir)["L"].rhs.free_symbols == {sympy.Symbol(n, real=True) for n in "wxy"}
    assert "two" in by_name(ir)  # forward() still reports it


def test_dce_keeps_only_what_results_need():
    ir = differentiate(from_network(seed_net(), "seed.py"))
    loss_only = ir.with_equations(ir.equations, [r for r in ir.results if r.kind == "loss"])
    kept = dce.run(loss_only)
    assert [str(e.lhs) for e in kept.equations] == ["s1", "s2", "z1", "z2", "s3", "z3", "L",
                                                    "L_total"]


def test_cse_places_temporaries_before_first_use():
    ir = optimize(differentiate(from_network(seed_net(), "seed.py")), PIPELINE)
    temps = [e for e in ir.equations if e.role == TEMP]
    assert [str(t.lhs) for t in temps] == ["_t0"]
    assert same(temps[0].rhs, sympy.Symbol("y", real=True) - sympy.Symbol("z3", real=True))
    ir.validate()
    assert cse.run(ir).equations == ir.equations  # nothing left to share


@pytest.mark.parametrize("p", PIPELINE, ids=lambda p: p.__name__.rsplit(".", 1)[-1])
def test_each_pass_keeps_the_ir_valid(p):
    p.run(differentiate(from_network(chain(5), "c.py"))).validate()


def test_backward_size_is_linear_in_depth():
    sizes = {}
    for depth in (8, 16, 32, 64):
        forward = from_network(chain(depth), "c.py")
        full = optimize(differentiate(forward))
        sizes[depth] = (count_ops(forward), count_ops(full))
    for depth, (fwd, total) in sizes.items():
        assert total <= 6 * fwd, (depth, fwd, total)
    growth = sizes[64][1] / sizes[32][1]
    assert 1.8 < growth < 2.2, sizes


def test_names_are_mangled_deterministically():
    net = bp.Network("m")
    lam, x, n = net.inputs(["lambda", "x", "n"])
    d_w, w, np_, data = net.params("d_w w np data")
    net.loss("L", (lam - w * x - d_w - np_ - data * n) ** 2)
    names = {str(k): v for k, v in compile_network(net, "m.py").names.items()}
    assert names["lambda"] == "lambda_" and names["np"] == "np_" and names["data"] == "data_"
    assert names["x"] == "x" and names["n"] == "n"  # common names stay the user's
    assert names["d_w"] == "d_w" and names["d_w_"] == "d_w_"  # adjoint of w avoids d_w


# -- shaped values ------------------------------------------------------------------------
def mlp_net():
    return runpy.run_path(str(ROOT / "examples" / "mlp_digits.py"))["net"]


def test_structural_operations_get_their_own_anonymous_equations():
    ir = from_network(mlp_net(), "mlp.py")
    eqs = by_name(ir)
    assert str(eqs["h_matmul"].rhs) == "x @ W1" and eqs["h_matmul"].shape == (32,)
    assert str(eqs["h"].rhs) == "tanh(b1 + h_matmul)"
    assert {str(e.lhs) for e in ir.forward() if e.anonymous} == {
        "h_matmul", "logits_matmul", "L_dot", "L_lse"}
    assert not ir.all_scalar() and eqs["L"].shape == ()


def test_a_name_like_the_ones_bpgen_makes_changes_nothing():
    """Passes decide from roles and the anonymous flag, never from names: a value the
    user calls `x_part` is kept as declared."""
    net = bp.Network("parts")
    x, y = net.inputs("x y")
    w = net.params("w")
    part = net.eq("w_part", w * x)
    copy = net.eq("d_w_part", part)
    net.loss("L", (copy - y) ** 2)
    ir = compile_network(net, "p.py").programs["value_and_grad"]
    assert [str(e.lhs) for e in ir.forward()] == ["w_part", "d_w_part", "L"]


def test_sweep_sums_parameter_gradients_over_samples():
    ir = differentiate(from_network(mlp_net(), "mlp.py"))
    grads = {str(e.lhs) for e in ir.equations if e.role == GRAD}
    batched = ir.batched()
    assert {"d_W1", "d_b1", "d_W2", "d_b2"} <= grads
    for e in ir.equations:  # gradients are totals for the batch, never per sample
        if e.role == GRAD:
            assert e.lhs not in batched, e
    assert max(sympy.count_ops(e.rhs) for e in ir.equations) < 20  # no expression swell


def test_copies_pass_names_values_after_what_they_are():
    ir = optimize(differentiate(from_network(mlp_net(), "mlp.py")), PIPELINE)
    rhs = {str(e.lhs): str(e.rhs) for e in ir.equations}
    assert rhs["d_h_matmul"] == "d_h*(1 - h**2)"
    assert rhs["d_b1"] == "sum over samples of d_h_matmul"
    assert not any(e.rhs.is_Symbol for e in ir.equations if e.role != "forward")
    before = differentiate(from_network(mlp_net(), "mlp.py"))
    after = copies.run(before)
    after.validate()
    assert len(after.equations) < len(before.equations)


def test_cse_gives_temporaries_their_shapes():
    net = bp.Network("t")
    x = net.input("x", shape=(3,))
    w = net.param("w", shape=(3,))
    a = net.eq("a", bp.tanh(w * x) * (w * x))
    net.loss("L", bp.sum(a * bp.exp(w * x)))
    ir = cse.run(differentiate(from_network(net, "t.py")))
    temps = [e for e in ir.equations if e.role == TEMP]
    assert temps and all(e.shape == (3,) and e.lhs.shape == (3,) for e in temps)
    ir.validate()


def test_structural_operations_written_twice_are_computed_once():
    """Inline logits (`softmax_cross_entropy(h @ W2 + b2, y)` next to a softmax of the
    same logits) compute `h @ W2` once forward, and once each of `@ W2.T` and `h.T @`
    backward; the softmax's backward reuses its forward exponentials."""
    from bpgen.emit import emit
    net = bp.Network("inline")
    x = net.input("x", shape=(4,))
    y = net.input("y", shape=(3,))
    W1, W2 = net.param("W1", shape=(4, 5)), net.param("W2", shape=(5, 3))
    b2 = net.param("b2", shape=(3,))
    h = net.eq("h", bp.tanh(x @ W1))
    p = net.eq("p", bp.softmax(h @ W2 + b2))
    net.loss("L", bp.softmax_cross_entropy(h @ W2 + b2, y) + bp.sum((p - y) ** 2))
    code = emit(compile_network(net, "inline.py"), ["numpy"])["inline.py"]
    body = code[code.index("def _value_and_grad("):code.index("def _real")]
    assert body.count("h @ W2") == 1, body
    assert body.count("@ W2.T") == 1 and body.count("h.T @") == 1, body
    assert body.count("np.exp(") == 1, body  # p; the softmax's backward reads p
    assert body.count("_logsumexp(") == 1, body


def test_a_convolution_written_with_slices_is_one_matrix_product():
    """fuse: the nine `img[i:i+4, j:j+4] @ K[i, j]` of tests/tensor_nets/conv.py become
    one product of their concatenations (im2col), forward and backward; two products of
    an RNN step (different shapes) stay as written."""
    from bpgen.emit import emit
    conv = runpy.run_path(str(ROOT / "tests" / "tensor_nets" / "conv.py"))["net"]
    code = emit(compile_network(conv, "conv.py"), ["numpy"])["conv.py"]
    body = code[code.index("def _value_and_grad("):code.index("def _real")]
    assert body.count(" @ ") == 5, body  # conv, logits; d_V, d_logits, d_K (one each)
    assert "conv_cols = np.concatenate([" in body and "axis=3)" in body
    assert "(conv_cols.reshape((-1, 18)) @ conv_rows).reshape((-1, 4, 4, 3))" in body
    rnn = runpy.run_path(str(ROOT / "tests" / "tensor_nets" / "rnn.py"))["net"]
    code = emit(compile_network(rnn, "rnn.py"), ["numpy"])["rnn.py"]
    assert "_cols" not in code and "h1 = np.tanh(b + h1_matmul + h0 @ Wh)" in code
