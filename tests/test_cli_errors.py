"""Bad input: one line `file:line: error: ...`, exit status 2, nothing written."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import ROOT, import_file, run_cli

HEADER = """\
import sympy
import bpgen as bp
net = bp.Network("bad")
x, y = net.inputs("x y")
w, b = net.params("w b")
"""

# (name, body appended after HEADER (which is 5 lines), line of the error, message part)
CASES = [
    ("indexing an expression", 'V = net.param("V", shape=(4,))\n'
     'net.loss("L", bp.sum((V * x + w)[:2]))\n', 7,
     "TypeError: 'Add' object is not subscriptable (index an expression once it has a "
     "name, gates = net.eq(\"gates\", ...), or with bp.index(expr, key))"),
    ("lookup by a label", 'c = net.input("c", dtype=int)\nE = net.param("E", shape=(5, 3))\n'
     'net.loss("L", bp.sum(E[c] ** 2))\n', 8,
     "not the label c (indices are fixed when the network is declared; look a row up by a "
     "label with bp.one_hot(c, 5) @ table)"),
    ("undeclared", 'q = sympy.Symbol("q", real=True)\nnet.eq("s", w * q)\n'
     'net.loss("L", (y - w) ** 2)\n', 7, "undeclared symbol 'q'"),
    ("foreign symbol", 'net.eq("s", w * sympy.Symbol("x"))\nnet.loss("L", (y - w) ** 2)\n',
     6, "not created by this network"),
    ("declared twice", 's = net.eq("s", w * x)\ns2 = net.eq("w", b * x)\n'
     'net.loss("L", (y - s) ** 2)\n', 7, "'w' is declared twice (first at bad.py:5)"),
    ("no loss", 's = net.eq("s", w * x)\n', 3, "declares no loss"),
    ("loss without params", 'net.loss("L", (y - x) ** 2)\n', 6,
     "does not depend on any parameter"),
    ("exception", 's = net.eq("s", w * x)\nraise ValueError("oops")\n', 7,
     "ValueError: oops"),
    ("syntax error", 's = net.eq("s", w * x\n', 6, "syntax error"),
    ("no printer", 's = net.eq("s", sympy.besselj(0, w * x))\nnet.loss("L", (y - s) ** 2)\n',
     6, "'besselj' is not supported by the numpy target"),
    ("not differentiable", 'f = sympy.Function("f")\ns = net.eq("s", f(w * x))\n'
     'net.loss("L", (y - s) ** 2)\n', 7, "cannot differentiate"),
    ("nan constant", 's = net.eq("s", w * x + float("nan"))\nnet.loss("L", (y - s) ** 2)\n',
     6, "NaN constant"),
    ("bad name", 's = net.eq("s 1", w * x)\n', 6, "'s 1' is not a valid name"),
    ("loss twice", 'net.loss("L", (y - w) ** 2)\nnet.loss("M", (y - b) ** 2)\n', 7,
     "loss declared twice"),
    ("uses the loss", 'L = net.loss("L", (y - w) ** 2)\nnet.eq("s", L * 2)\n', 7,
     "uses the loss"),
    ("not an expression", 'net.eq("s", "w +")\n', 6, "is not a SymPy expression"),
    ("bad reduce", 'net.loss("L", (y - w) ** 2, reduce="max")\n', 6, "reduce must be"),
    # shaped values
    ("matmul mismatch", 'v = net.input("v", shape=(64,))\nW = net.param("W", shape=(32, 10))\n'
     'h = net.eq("h", bp.tanh(v @ W))\n', 8,
     "@: shapes (64,) and (32, 10) do not match (inner sizes 64 and 32)"),
    ("broadcast mismatch", 'v = net.input("v", shape=(4,))\nc = net.param("c", shape=(3,))\n'
     'h = net.eq("h", v + c)\n', 8, "equation 'h': shapes (3,) and (4,) do not broadcast"),
    ("non-scalar loss", 'v = net.input("v", shape=(4,))\nc = net.param("c", shape=(4,))\n'
     'net.loss("L", v * c)\n', 8,
     "the loss 'L' must be a per-sample scalar, but it has shape (4,)"),
    ("unknown axis", 'v = net.input("v", shape=(4,))\nc = net.param("c", shape=(4,))\n'
     'net.loss("L", bp.sum(v * c, axis=1))\n', 8, "sum: axis 1 is out of range for shape (4,)"),
    ("bad shape", 'v = net.input("v", shape=(4, 0))\n', 6,
     "'v': shape (4, 0) must be a tuple of positive integers"),
    ("matmul of scalars", 'v = net.input("v", shape=(4,))\nnet.loss("L", bp.sum(v @ w))\n',
     7, "@ needs vectors or matrices, got shapes (4,) and ()"),
    ("matmul of expressions", 'v = net.input("v", shape=(4,))\nc = net.param("c", shape=(4,))\n'
     'net.loss("L", (v + c) @ (v - c))\n', 8, "use bp.matmul(a, b)"),
    ("constant beyond a double", 'net.loss("L", (y - w * x) ** 2 + 2**1100 * b)\n', 6,
     "equation 'L': the constant 1.358e+331 is outside the range of a double"),
    ("oversized shape", 'v = net.input("v", shape=(2**20, 2**20))\n', 6,
     "'v': shape (1048576, 1048576) has 1099511627776 elements; bpgen supports at most"),
    ("derivative without a printer", 's = net.eq("s", w * x)\n'
     'net.loss("L", (sympy.gamma(s + 2) - y) ** 2)\n', 7,
     "the derivative of L = (-y + gamma(s + 2))**2 with respect to s needs 'polygamma', "
     "which the numpy target does not support"),
    ("network named like a module", 'other = bp.Network("math")\n', 6,
     "network name 'math' would make a module 'math' that shadows Python's or NumPy's own"),
    ("sys.exit", 'import sys\nsys.exit(0)\n', 7,
     "bad.py exited during import (sys.exit(0)); a net file should only declare networks"),
    ("os._exit", 'import os\nos._exit(3)\n', 7, "bad.py exited during import (os._exit(3))"),
    ("name of a hidden operation", 'v = net.input("v", shape=(4,))\n'
     'W = net.param("W", shape=(4, 2))\nh = net.eq("h", bp.tanh(v @ W))\n'
     'net.eq("h_matmul", h * 2)\n', 9,
     "'h_matmul' is the name bpgen gave to an operation inside an earlier equation "
     "(at bad.py:8)"),
]


def run_bpgen(tmp_path, body, target="all", out=None):
    net_file = tmp_path / "bad.py"
    net_file.write_text(HEADER + body)
    out = out or tmp_path / "out"
    return subprocess.run([sys.executable, "-m", "bpgen", "compile", "bad.py", "--target",
                           target, "-o", str(out)], cwd=tmp_path, capture_output=True,
                          text=True)


@pytest.fixture
def out_dir(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("untouched")
    return out


@pytest.mark.parametrize("name,body,line,message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_and_exit_2(tmp_path, out_dir, name, body, line, message):
    done = run_bpgen(tmp_path, body)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"bad.py:{line}: error: "), lines[0]
    assert message in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert sorted(p.name for p in out_dir.iterdir()) == ["keep.txt"]


def test_equation_after_loss_is_a_warning(tmp_path, out_dir):
    done = run_bpgen(tmp_path, 'net.loss("L", (y - w * x) ** 2)\n'
                               'extra = net.eq("extra", b * x)\n', target="numpy")
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("bad.py:7: warning: equation 'extra' comes after the loss")
    assert (out_dir / "bad.py").exists()


def test_unused_equation_is_a_warning(tmp_path, out_dir):
    done = run_bpgen(tmp_path, 'u = net.eq("u", b * x)\nnet.loss("L", (y - w * x) ** 2)\n',
                     target="numpy")
    assert done.returncode == 0
    assert done.stderr.startswith("bad.py:6: warning: equation 'u' does not affect the loss")


def test_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a directory")
    done = run_bpgen(tmp_path, 'net.loss("L", (y - w * x) ** 2)\n', target="numpy",
                     out=blocker / "sub")
    assert done.returncode == 2
    assert done.stderr.startswith("error: cannot write to ") and "Traceback" not in done.stderr
    assert blocker.read_text() == "a file, not a directory"


def test_missing_net_file_and_missing_network(tmp_path, capsys):
    assert run_cli("compile", tmp_path / "nope.py", "-o", tmp_path / "o") == 2
    assert "cannot read" in capsys.readouterr().err
    (tmp_path / "empty.py").write_text("x = 1\n")
    assert run_cli("compile", tmp_path / "empty.py", "-o", tmp_path / "o") == 2
    assert "defines no bpgen.Network" in capsys.readouterr().err
    assert run_cli("compile", f"{ROOT / 'examples' / 'seed.py'}:other", "-o",
                   tmp_path / "o") == 2
    assert "no network named 'other'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_no_c_compiler_is_a_clear_error(tmp_path, monkeypatch):
    env = {"PATH": str(tmp_path / "empty-bin"), "CC": ""}
    (tmp_path / "net.py").write_text(textwrap.dedent(HEADER) + 'net.loss("L", (y - w*x)**2)\n')
    done = subprocess.run([sys.executable, "-m", "bpgen", "compile", "net.py", "--target",
                           "c", "-o", "out"], cwd=tmp_path, capture_output=True, text=True,
                          env={**env, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2
    assert "no C compiler found" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_version_and_help():
    done = subprocess.run([sys.executable, "-m", "bpgen", "--version"], capture_output=True,
                          text=True)
    assert done.stdout.strip() == "bpgen 0.1.0"
    done = subprocess.run([sys.executable, "-m", "bpgen", "compile", "--help"],
                          capture_output=True, text=True)
    assert "examples:" in done.stdout and "--check" in done.stdout


def test_a_net_file_that_is_not_utf8(tmp_path):
    (tmp_path / "bad.py").write_bytes(HEADER.encode() + b"# caf\xe9\n")
    done = subprocess.run([sys.executable, "-m", "bpgen", "compile", "bad.py"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr == ("bad.py:6: error: bad.py is not valid UTF-8 (byte 0xe9 at offset "
                           f"{len(HEADER) + 5}); save it as UTF-8\n")


def test_a_net_file_that_never_finishes_times_out_at_its_line(tmp_path):
    (tmp_path / "bad.py").write_text(HEADER + "while True:\n    w = w + 0\n")
    # 4 s: the imports before the loop (bpgen, SymPy) count against it, up to 2.5 s on a
    # slow machine
    done = subprocess.run([sys.executable, "-m", "bpgen", "compile", "bad.py", "--timeout",
                           "4"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    import re  # the loop's line, or its body's: wherever the worker was caught
    assert re.match(r"bad.py:[67]: error: still running after 4 s \(--timeout\)",
                    done.stderr), done.stderr


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path):
    import signal
    import time
    (tmp_path / "bad.py").write_text(HEADER + "import time\ntime.sleep(60)\n")
    # a shell's background job starts with SIGINT ignored; Ctrl-C reaches a foreground one
    run = subprocess.Popen([sys.executable, "-m", "bpgen", "compile", "bad.py"], cwd=tmp_path,
                           stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(2)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=30)
    assert run.returncode == 130 and err == "bpgen: interrupted\n"


def test_an_internal_error_exits_3_with_one_line(tmp_path, monkeypatch, capsys):
    import bpgen.compiler as compiler

    def broken(ir):
        raise KeyError("a bug")
    monkeypatch.setattr(compiler, "differentiate", broken)
    (tmp_path / "net.py").write_text(HEADER + 'net.loss("L", (y - w * x) ** 2)\n')
    assert run_cli("compile", tmp_path / "net.py", "-o", tmp_path / "out") == 3
    err = capsys.readouterr().err
    assert err == ("error: internal error in bpgen (KeyError: 'a bug'); please report it with "
                   "the network file (run with -v for the traceback)\n")
    assert run_cli("compile", tmp_path / "net.py", "-o", tmp_path / "out", "-v") == 3
    assert "Traceback" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_deeply_nested_expressions_compile_in_linear_time(tmp_path):
    """300 nested tanh in one expression: split into shallow equations, not a RecursionError
    nor a quadratic swell of one derivative."""
    (tmp_path / "deep.py").write_text(HEADER + "e = x\nfor k in range(300):\n"
                                      "    e = bp.tanh(w * e + b)\n"
                                      "net.loss('L', (e - y) ** 2)\n")
    done = subprocess.run([sys.executable, "-m", "bpgen", "compile", "deep.py", "-o", "out"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    module = import_file(tmp_path / "out" / "bad.py", "_deep_bad")
    w, b, x, y = 0.9, 0.1, 0.3, 0.2

    def loss(w, b):
        e = x
        for _ in range(300):
            e = np.tanh(w * e + b)
        return (e - y) ** 2
    value, grads = module.value_and_grad({"w": w, "b": b}, {"x": x, "y": y})
    assert value == pytest.approx(loss(w, b), rel=1e-12)
    h = 1e-6
    assert grads["w"] == pytest.approx((loss(w + h, b) - loss(w - h, b)) / (2 * h), rel=1e-5)
    assert grads["b"] == pytest.approx((loss(w, b + h) - loss(w, b - h)) / (2 * h), rel=1e-5)


def test_heaviside_and_sign_differentiate_to_zero_away_from_the_jump(tmp_path):
    (tmp_path / "net.py").write_text(
        HEADER + 'net.loss("L", (w * sympy.Heaviside(b * x) + sympy.sign(b * x) * w - y) ** 2)\n')
    assert run_cli("compile", tmp_path / "net.py", "--target", "all", "-o",
                   tmp_path / "out") == 0
    x, y = np.array([-1.0, 0.5, 2.0]), np.array([0.3, -0.2, 0.1])
    w, b = 0.7, 0.4

    def loss(w, b):
        return np.mean((w * np.heaviside(b * x, 0.5) + np.sign(b * x) * w - y) ** 2)
    for stem in ("bad", "bad_c"):
        module = import_file(tmp_path / "out" / f"{stem}.py", f"_jump_{stem}")
        value, grads = module.value_and_grad({"w": w, "b": b}, {"x": x, "y": y})
        assert value == pytest.approx(loss(w, b), rel=1e-12)
        assert grads["w"] == pytest.approx((loss(w + 1e-6, b) - loss(w - 1e-6, b)) / 2e-6,
                                           rel=1e-6)
        assert grads["b"] == 0.0
