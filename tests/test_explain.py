"""`bpgen explain` and `bpgen graph`: the derivation shown factor by factor."""

import os
import pty
import shutil
import subprocess
import sys

import numpy as np
import pytest
import sympy

import bpgen as bp
from bpgen.compiler import compile_network
from bpgen.explain import Explanation
from conftest import ROOT, run_cli
from golden_files import UPDATE

S = {n: sympy.Symbol(n, real=True) for n in
     "x1 x2 y s1 s2 z1 z2 s3 z3 L w11 w21 w12 w22 v1 v2".split()}

# Hand-derived: the lecture's chain for every parameter of the 2-2-1 network.
SEED_FACTORS = {
    "w11": ["L z3", "z3 s3", "s3 z1", "z1 s1", "s1 w11"],
    "w21": ["L z3", "z3 s3", "s3 z1", "z1 s1", "s1 w21"],
    "w12": ["L z3", "z3 s3", "s3 z2", "z2 s2", "s2 w12"],
    "w22": ["L z3", "z3 s3", "s3 z2", "z2 s2", "s2 w22"],
    "v1": ["L z3", "z3 s3", "s3 v1"],
    "v2": ["L z3", "z3 s3", "s3 v2"],
}
SEED_VALUES = {
    ("L", "z3"): 2 * (S["z3"] - S["y"]), ("z3", "s3"): 1 - S["z3"] ** 2,
    ("s3", "z1"): S["v1"], ("s3", "z2"): S["v2"], ("z1", "s1"): 1 - S["z1"] ** 2,
    ("z2", "s2"): 1 - S["z2"] ** 2, ("s1", "w11"): S["x1"], ("s1", "w21"): S["x2"],
    ("s2", "w12"): S["x1"], ("s2", "w22"): S["x2"], ("s3", "v1"): S["z1"],
    ("s3", "v2"): S["z2"],
}


@pytest.fixture(scope="module")
def seed_explanation(zoo):
    return Explanation(compile_network(zoo["seed"].net, "examples/seed.py"))


def test_seed_factors_in_lecture_order(seed_explanation):
    for chain in seed_explanation.chains:
        assert len(chain.paths) == 1
        (path,) = chain.paths
        got = [f"{f.upper} {f.lower}" for f in path]
        assert got == SEED_FACTORS[chain.param.name]
        for f in path:
            want = SEED_VALUES[(str(f.upper), str(f.lower))]
            assert sympy.expand(f.value - want) == 0, (f.upper, f.lower, f.value)


def test_each_factor_is_d_upper_over_d_lower_never_swapped(zoo):
    for name in ("seed", "fanout", "keywords", "kinks", "regularized"):
        net = zoo[name].net
        for chain in Explanation(compile_network(net, f"{name}.py")).chains:
            for path in chain.paths:
                assert path[0].upper == net.loss_declaration.symbol
                assert path[-1].lower == chain.param.symbol
                for a, b in zip(path, path[1:]):
                    assert a.lower == b.upper


def test_explained_product_equals_generated_gradient(net):
    """The sum over paths of factor products, evaluated numerically, is the gradient."""
    module = net.module("numpy")
    rng = np.random.default_rng(11)
    for _ in range(3):
        params = net.params(rng)
        data = {k: v[:1] for k, v in net.sample(rng, 50).items()}
        if not net.valid(params, data)[0]:
            continue
        floats = {k: float(v[0]) for k, v in data.items()}
        _, grads = module.value_and_grad(params, floats)
        values = {sympy.Symbol(k, real=True): float(np.ravel(v)[0])
                  for k, v in module.forward(params, floats).items()}
        values.update({sympy.Symbol(k, real=True): v for k, v in {**params, **floats}.items()})
        for chain in Explanation(compile_network(net.net, "n.py")).chains:
            if chain.truncated:
                continue
            total = float(chain.total.xreplace(values).evalf())
            assert total == pytest.approx(grads[chain.param.name], rel=1e-9, abs=1e-12)


def test_fan_out_sums_paths(zoo):
    chain = Explanation(compile_network(zoo["fanout"].net, "f.py"), ["a"]).chains[0]
    assert len(chain.paths) == 4
    assert "      + ∂L/∂h · ∂h/∂a" in Explanation(
        compile_network(zoo["fanout"].net, "f.py"), ["a"]).text()


def test_unused_parameter_explains_as_zero(zoo):
    text = Explanation(compile_network(zoo["unused"].net, "u.py"), ["spare"]).text()
    assert text.startswith("∂L/∂spare = 0")


GOLDEN = ROOT / "tests" / "golden"
EXAMPLE = {"seed": "examples/seed.py", "mlp": "examples/mlp_digits.py"}
LATEX = ["--format", "latex", "--standalone"]


@pytest.mark.parametrize("name,args", [
    ("seed.explain.txt", []), ("seed.explain.tex", LATEX),
    ("mlp.explain.txt", []), ("mlp.explain.tex", LATEX)])
def test_explain_golden(name, args, monkeypatch, capsys, update_goldens):
    monkeypatch.chdir(ROOT)
    assert run_cli("explain", EXAMPLE[name.split(".")[0]], *args) == 0
    out = capsys.readouterr().out
    if update_goldens:
        (GOLDEN / name).write_text(out, encoding="utf-8")
    assert out == (GOLDEN / name).read_text(encoding="utf-8"), f"run: {UPDATE}"


def test_wrt_and_markdown_and_unknown_parameter(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert run_cli("explain", "examples/seed.py", "--wrt", "v1", "--format", "markdown") == 0
    out = capsys.readouterr().out
    assert "## ∂L/∂v1" in out and "\\frac{\\partial L}{\\partial v_{1}}" in out
    assert "d_v1 = d_s3*z1" in out and "w11" not in out
    assert run_cli("explain", "examples/seed.py", "--wrt", "nope") == 2
    assert "'nope' is not a parameter of 'seed'" in capsys.readouterr().err


def test_display_names_reach_the_latex():
    net = bp.Network("lecture")
    x1, y = net.inputs("x1 y")
    w = net.params("w11", latex=r"w_{11}^{(1)}")
    s = net.eq("s1", w * x1, latex=r"s_1^{(1)}")
    net.loss("L", (y - bp.tanh(s)) ** 2)
    exp = bp.explain(net, wrt="w11")
    latex = exp._repr_latex_()
    assert r"\frac{\partial s_1^{(1)}}{\partial w_{11}^{(1)}}" in latex
    assert str(exp).startswith("∂L/∂w11 = ∂L/∂s1 · ∂s1/∂w11")
    assert net._repr_latex_().startswith("$\\begin{aligned}")


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex not installed (.ci/run installs it)")
@pytest.mark.parametrize("stem", ["seed", "mlp"])
def test_standalone_latex_compiles(tmp_path, stem):
    tex = tmp_path / f"{stem}.tex"
    tex.write_text((GOLDEN / f"{stem}.explain.tex").read_text(encoding="utf-8"))
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                           tex.name], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / f"{stem}.pdf").stat().st_size > 1000


def test_shaped_explain_is_the_backward_pass_one_equation_at_a_time():
    import runpy
    net = runpy.run_path(str(ROOT / "examples" / "mlp_digits.py"))["net"]
    exp = bp.explain(net, wrt="W1")
    (chain,) = exp.chains
    assert [(str(s.lhs), str(s.of)) for s in chain.steps] == [
        ("d_logits", "logits"), ("d_h", "h"), ("d_h_matmul", "h_matmul"), ("d_W1", "W1")]
    text = str(exp)
    assert text.startswith("∂L/∂W1: shape (64, 32), summed over the samples of a batch")
    assert "d_h = ∂L/∂h" in text and "= d_logits @ W2.T" in text
    assert "= sum over samples of outer(x, d_h_matmul)" in text
    latex = exp._repr_latex_()
    assert r"\frac{\partial L}{\partial h} &= \delta_{logits} W_{2}^{\top}" in latex


def test_graph_dot_structure(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "seed.dot"
    assert run_cli("graph", "examples/seed.py", "-o", out) == 0
    dot = out.read_text(encoding="utf-8")
    assert dot.startswith('digraph "seed" {') and dot.rstrip().endswith("}")
    assert '"w11" -> "s1";' in dot and '"z1" -> "s3";' in dot
    assert '"d_z1" -> "d_s1" [label="1 − z1²"];' in dot
    assert '"d_s1" -> "d_w11" [label="x1"];' in dot
    assert dot.count("->") == 17 + 12  # forward edges + backward edges


@pytest.mark.skipif(shutil.which("dot") is None,
                    reason="Graphviz not installed (.ci/run installs it)")
def test_graph_renders_svg_through_graphviz(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "seed.svg"
    assert run_cli("graph", "examples/seed.py", "-o", out) == 0
    svg = out.read_text(encoding="utf-8")
    assert "<svg" in svg and "d_w11" in svg


def test_graph_of_a_shaped_network(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "mlp.dot"
    assert run_cli("graph", "examples/mlp_digits.py", "-o", out) == 0
    dot = out.read_text(encoding="utf-8")
    assert '"h_matmul" [label="h_matmul = x @ W1"];' in dot
    assert '"d_h" [label="d_h = d_logits @ W2.T"];' in dot
    assert '"d_h" -> "d_h_matmul";' in dot and '"d_h_matmul" -> "d_W1";' in dot
    assert dot.count("->") == 13 + 6  # forward edges + backward edges


def test_graph_without_graphviz_is_a_clear_error(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "bpgen", "graph",
                           str(ROOT / "examples" / "seed.py"), "-o", str(tmp_path / "g.svg")],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 2 and "needs Graphviz's `dot` program" in done.stderr
    assert not (tmp_path / "g.svg").exists()


def test_progress_line_on_a_terminal_for_slow_compiles(tmp_path):
    net = tmp_path / "deep.py"
    net.write_text("import bpgen as bp\nnet = bp.Network('deep')\nx, y = net.inputs('x y')\n"
                   "a = x\nfor k in range(60):\n    p = net.params(f'p{k}')\n"
                   "    a = net.eq(f'a{k}', bp.tanh(p * a + a))\n"
                   "net.loss('L', (a - y) ** 2)\n")
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(tmp_path)
        os.execvpe(sys.executable, [sys.executable, "-m", "bpgen", "compile", "deep.py",
                                    "-o", "out", "--target", "c", "--no-build"],
                   {**os.environ, "PYTHONPATH": str(ROOT), "BPGEN_PROGRESS_DELAY": "0.05"})
    chunks = []
    while True:
        try:
            data = os.read(fd, 1024)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert os.waitstatus_to_exitcode(status) == 0
    assert "\rbpgen: deep:" in text.replace("\x1b[K", "")
