"""bpgen benchmarks: generated NumPy and C against hand-written NumPy, in one run.

    python benchmarks/run.py            # all benchmarks (about a minute)
    python benchmarks/run.py --quick    # fewer repetitions
    python benchmarks/run.py --only mlp # one benchmark (seed, latency, chain, mlp, cnn,
                                        # hvp, train, dask, xp, compile, sequence, float32,
                                        # threads)
    python benchmarks/run.py --against /tmp/base   # also another bpgen checkout's output
    python benchmarks/run.py --blas-threads 2      # hand-written NumPy on 2 BLAS threads

Every figure is a median over repeated calls; ratios are against a baseline measured in
the same run on the same machine, and the calls of one benchmark are interleaved (each
repetition times every contender once), so a slow moment of the machine hits them all.
`--against TREE` compiles the same networks with the bpgen in TREE (e.g. a `git worktree`
of an earlier commit) and times its modules beside this checkout's: a before/after in one
run. JAX and PyTorch are timed when they are installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def blas_threads(argv) -> str:
    """--blas-threads N (or =N) from the command line, else 1."""
    for k, arg in enumerate(argv):
        if arg.startswith("--blas-threads="):
            return arg.split("=", 1)[1]
        if arg == "--blas-threads" and k + 1 < len(argv):
            return argv[k + 1]
    return "1"


# Hand-written NumPy's matrix products run on one BLAS thread, as bpgen's C on threads=1
# and PyTorch on set_num_threads(1): every ratio compares one thread with one thread
# (OpenBLAS reads this when NumPy loads it, hence before the import).
os.environ["OPENBLAS_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = blas_threads(sys.argv)

import numpy as np  # noqa: E402

import bpgen as bp  # noqa: E402
from bpgen.cli import main as bpgen_main  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def median_times(fns, repeat: int, number: int = 1) -> list[float]:
    """Median seconds per call of each function, over `repeat` rounds; each round times
    `number` calls of every function in turn (in reverse order every other round)."""
    for fn in fns:
        fn()  # warm up (and build caches)
    times = [[] for _ in fns]
    for r in range(repeat):
        order = list(zip(fns, times))
        for fn, bucket in (order if r % 2 == 0 else order[::-1]):  # no place is favoured
            start = time.perf_counter()
            for _ in range(number):
                fn()
            bucket.append((time.perf_counter() - start) / number)
    return [float(np.median(t)) for t in times]


def median_time(fn, repeat: int, number: int = 1) -> float:
    return median_times([fn], repeat, number)[0]


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


AGAINST: Path | None = None  # --against: another bpgen checkout


def compile_net(source: str, out: Path, name: str, *options):
    """(label, NumPy module, C module) for this checkout, and for --against's if given;
    `options`: more options of bpgen compile (--hvp)."""
    net_file = out / f"{name}_net.py"
    net_file.write_text(source)
    assert bpgen_main(["compile", str(net_file), "--target", "all", *options, "-o",
                       str(out)]) == 0
    found = [("", load(out / f"{name}.py", f"bench_{name}"),
              load(out / f"{name}_c.py", f"bench_{name}_c"))]
    if AGAINST is not None:
        other = out / "against"
        subprocess.run([sys.executable, "-m", "bpgen", "compile", str(net_file), "--target",
                        "all", *options, "-o", str(other)], check=True, cwd=AGAINST,
                       env={**os.environ, "PYTHONPATH": str(AGAINST)})
        found.append((f" ({AGAINST.name})", load(other / f"{name}.py", f"base_{name}"),
                      load(other / f"{name}_c.py", f"base_{name}_c")))
    return found


# The bundled example with a summed loss, under its own module name.
SEED_SUM = ((ROOT / "examples" / "seed.py").read_text()
            .replace('bp.Network("seed")', 'bp.Network("seedsum")')
            .replace('net.loss("L", (y - z3) ** 2)', 'net.loss("L", (y - z3) ** 2, reduce="sum")'))
assert 'reduce="sum"' in SEED_SUM


def chain_source(depth: int, name: str) -> str:
    return f'''
import bpgen as bp
net = bp.Network("{name}")
x, y = net.inputs("x y")
a, b = x, -x
for k in range({depth}):
    p, q, r, s = net.params(f"p{{k}} q{{k}} r{{k}} s{{k}}")
    a, b = (net.eq(f"a{{k}}", bp.tanh(p * a + q * b)),
            net.eq(f"b{{k}}", bp.tanh(r * a + s * b)))
net.loss("L", (a + b - y) ** 2, reduce="sum")
'''


def hand_seed(p, d):
    """The seed network's summed loss and gradient, backprop written by hand in NumPy."""
    x1, x2, y = d["x1"], d["x2"], d["y"]
    z1 = np.tanh(p["w11"] * x1 + p["w21"] * x2)
    z2 = np.tanh(p["w12"] * x1 + p["w22"] * x2)
    z3 = np.tanh(p["v1"] * z1 + p["v2"] * z2)
    r = z3 - y
    ds3 = 2 * r * (1 - z3 * z3)
    ds1 = ds3 * p["v1"] * (1 - z1 * z1)
    ds2 = ds3 * p["v2"] * (1 - z2 * z2)
    return r @ r, {"w11": ds1 @ x1, "w21": ds1 @ x2, "w12": ds2 @ x1, "w22": ds2 @ x2,
                   "v1": ds3 @ z1, "v2": ds3 @ z2}


def hand_chain(p, d, depth):
    """The chain's summed loss and gradient by hand-written NumPy backprop."""
    a, b = d["x"], -d["x"]
    tape = []
    for k in range(depth):
        za = np.tanh(p[f"p{k}"] * a + p[f"q{k}"] * b)
        zb = np.tanh(p[f"r{k}"] * a + p[f"s{k}"] * b)
        tape.append((a, b, za, zb))
        a, b = za, zb
    r = a + b - d["y"]
    da = db = 2 * r
    grads = {}
    for k in reversed(range(depth)):
        a0, b0, za, zb = tape[k]
        dsa = da * (1 - za * za)
        dsb = db * (1 - zb * zb)
        grads[f"p{k}"], grads[f"q{k}"] = dsa @ a0, dsa @ b0
        grads[f"r{k}"], grads[f"s{k}"] = dsb @ a0, dsb @ b0
        da = dsa * p[f"p{k}"] + dsb * p[f"r{k}"]
        db = dsa * p[f"q{k}"] + dsb * p[f"s{k}"]
    return r @ r, grads


def hand_mlp(p, d):
    """The MLP's backprop (64-32-10 or any widths) as one would write it by hand in NumPy."""
    x, y = d["x"], d["y"]
    n = len(x)
    h = np.tanh(x @ p["W1"] + p["b1"])
    logits = h @ p["W2"] + p["b2"]
    m = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - m)
    s = e.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(s[:, 0]) + m[:, 0] - (y * logits).sum(axis=1))
    d_logits = (e / s - y) / n
    d_h = d_logits @ p["W2"].T
    d_pre = d_h * (1 - h * h)
    return loss, {"W1": x.T @ d_pre, "b1": d_pre.sum(axis=0),
                  "W2": h.T @ d_logits, "b2": d_logits.sum(axis=0)}


def hand_mlp_one(p, d):
    """The MLP's backprop for one sample (1-D arrays), as one would write it by hand."""
    x, y = d["x"], d["y"]
    h = np.tanh(x @ p["W1"] + p["b1"])
    logits = h @ p["W2"] + p["b2"]
    m = logits.max()
    e = np.exp(logits - m)
    s = e.sum()
    d_logits = e / s - y
    d_pre = (p["W2"] @ d_logits) * (1 - h * h)
    return np.log(s) + m - logits @ y, {"W1": np.outer(x, d_pre), "b1": d_pre,
                                        "W2": np.outer(h, d_logits), "b2": d_logits}


def hand_cnn(p, d):
    """The convolutional example's backprop by hand in NumPy: im2col (a strided window
    view), one matmul forward and two backward, pooling by reshape and max."""
    img, label = d["img"], d["label"]
    n, channels, maps = len(img), img.shape[-1], p["K"].shape[-1]
    windows = np.lib.stride_tricks.sliding_window_view(img, (3, 3), axis=(1, 2))
    cols = windows.transpose(0, 1, 2, 4, 5, 3).reshape(n * 36, 9 * channels)
    pre = cols @ p["K"].reshape(9 * channels, maps) + p["kb"]
    conv = np.maximum(pre, 0.0).reshape(n, 3, 2, 3, 2, maps)
    pool = conv.max(axis=(2, 4))
    flat = pool.reshape(n, -1)
    logits = flat @ p["V"] + p["bv"]
    m = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - m)
    s = e.sum(axis=1, keepdims=True)
    picked = logits[np.arange(n), label]
    loss = np.mean(np.log(s[:, 0]) + m[:, 0] - picked)
    d_logits = e / s
    d_logits[np.arange(n), label] -= 1
    d_logits /= n
    d_pool = (d_logits @ p["V"].T).reshape(n, 3, 1, 3, 1, maps)
    mask = conv == pool[:, :, None, :, None]
    share = mask.sum(axis=(2, 4), keepdims=True)  # ties share the gradient
    d_pre = (mask * (d_pool / share)).reshape(n * 36, maps) * (pre > 0)
    return loss, {"K": (cols.T @ d_pre).reshape(p["K"].shape), "kb": d_pre.sum(axis=0),
                  "V": flat.T @ d_logits, "bv": d_logits.sum(axis=0)}


def compile_example(out, example: str, network: str, name: str, *options):
    """The example's network compiled under another name (so it does not meet generated/)."""
    source = (ROOT / "examples" / example).read_text()
    assert f'Network("{network}")' in source
    return compile_net(source.replace(f'Network("{network}")', f'Network("{name}")'), out,
                       name, *options)


def check_all(modules, label, params, data, want):
    """Every compiled module's value_and_grad agrees with the hand-written one to 1e-9."""
    for suffix, numpy_module, c_module in modules:
        check_close(f"numpy {label}{suffix}", numpy_module.value_and_grad(params, data), want)
        check_close(f"c {label}{suffix}", c_module.value_and_grad(params, data), want)


def check_close(name, got, want):
    value, grads = got
    assert abs(value - want[0]) <= 1e-9 * abs(want[0]), name
    for k, g in want[1].items():
        assert np.all(np.abs(grads[k] - g) <= 1e-9 * np.maximum(1.0, np.abs(g))), (name, k)


def row(label, seconds, base=None, unit="ms"):
    scale = {"ms": 1e3, "us": 1e6}[unit]
    ratio = f"  {seconds / base:6.2f}x" if base else ""
    print(f"  {label:44s} {seconds * scale:10.3f} {unit}{ratio}")


def optional_frameworks():
    found = {}
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        found["jax"] = jax
    except Exception:
        pass
    try:
        import torch
        torch.set_num_threads(1)
        found["torch"] = torch
    except Exception:
        pass
    return found


def contenders(modules, function, *args):
    """(label, call) for the NumPy and C modules of every compiled version."""
    out = []
    for suffix, gen, gen_c in modules:
        out.append((f"bpgen NumPy{suffix}", lambda m=gen: getattr(m, function)(*args)))
        out.append((f"bpgen C{suffix}", lambda m=gen_c: getattr(m, function)(*args)))
    return out


def race(base_label, base_fn, others, repeat, number=1, unit="ms"):
    """Time a baseline and its contenders interleaved; print one row each."""
    times = median_times([base_fn] + [fn for _, fn in others], repeat, number)
    row(base_label, times[0], times[0], unit)
    for (label, _), t in zip(others, times[1:]):
        row(label, t, times[0], unit)
    return dict(zip([label for label, _ in others], times[1:]))


def bench_seed(modules, repeat, frameworks):
    n = 100_000
    rng = np.random.default_rng(0)
    data = {"x1": rng.normal(size=n), "x2": rng.normal(size=n), "y": rng.normal(size=n)}
    params = modules[0][1].init_params(0)
    check_all(modules, "seed", params, data, hand_seed(params, data))
    print(f"seed network 2-2-1, N = {n:,}, summed loss, value_and_grad "
          "(ratio: against hand-written NumPy)")
    base = median_time(lambda: hand_seed(params, data), repeat)
    race("hand-written NumPy backprop", lambda: hand_seed(params, data),
         contenders(modules, "value_and_grad", params, data), repeat)
    if "jax" in frameworks:
        jax, jnp = frameworks["jax"], frameworks["jax"].numpy

        def jloss(p, d):
            z1 = jnp.tanh(p["w11"] * d["x1"] + p["w21"] * d["x2"])
            z2 = jnp.tanh(p["w12"] * d["x1"] + p["w22"] * d["x2"])
            z3 = jnp.tanh(p["v1"] * z1 + p["v2"] * z2)
            return jnp.sum((d["y"] - z3) ** 2)
        f = jax.jit(jax.value_and_grad(jloss))
        jd = {k: jnp.asarray(v) for k, v in data.items()}
        row("JAX jit(value_and_grad)", median_time(
            lambda: jax.block_until_ready(f(params, jd)), repeat), base)
    if "torch" in frameworks:
        torch = frameworks["torch"]
        td = {k: torch.tensor(v) for k, v in data.items()}

        def tstep():
            p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
                 for k, v in params.items()}
            z1 = torch.tanh(p["w11"] * td["x1"] + p["w21"] * td["x2"])
            z2 = torch.tanh(p["w12"] * td["x1"] + p["w22"] * td["x2"])
            z3 = torch.tanh(p["v1"] * z1 + p["v2"] * z2)
            loss = torch.sum((td["y"] - z3) ** 2)
            loss.backward()
        row("PyTorch eager, 1 thread", median_time(tstep, repeat), base)


def bench_latency(modules, repeat):
    params = modules[0][1].init_params(0)
    sample = {"x1": 0.3, "x2": -0.8, "y": 0.25}
    print("one sample from Python floats, value_and_grad latency "
          "(ratio: against the NumPy module's math fast path)")
    (_, gen, _), *rest = modules
    others = contenders(modules, "value_and_grad", params, sample)[1:]
    race("bpgen NumPy module (math fast path)", lambda: gen.value_and_grad(params, sample),
         others, repeat, 2000, "us")


def bench_chain(out, repeat):
    depth, n = 32, 10_000
    modules = compile_net(chain_source(depth, "chain32"), out, "chain32")
    gen = modules[0][1]
    rng = np.random.default_rng(1)
    data = {"x": rng.normal(size=n), "y": rng.normal(size=n)}
    params = {k: float(v) for k, v in zip(gen.PARAMS, rng.normal(0, 0.7, len(gen.PARAMS)))}
    check_all(modules, "chain", params, data, hand_chain(params, data, depth))
    print(f"32-layer width-2 chain, N = {n:,} (ratio: against hand-written NumPy backprop)")
    calls = [(f"{label} loss only (forward)", fn)
             for label, fn in contenders(modules, "loss", params, data)]
    calls += [(f"{label} value_and_grad", fn)
              for label, fn in contenders(modules, "value_and_grad", params, data)]
    times = race("hand-written NumPy backprop", lambda: hand_chain(params, data, depth), calls,
                 repeat)
    for label, _ in contenders(modules, "loss", params, data):
        ratio = times[f"{label} value_and_grad"] / times[f"{label} loss only (forward)"]
        print(f"  {label}: gradient / forward time = {ratio:.2f} (aim: at most 2)")


def bench_mlp(out, repeat, frameworks):
    n = 256
    modules = compile_example(out, "mlp_digits.py", "mlp", "mlpbench")
    gen = modules[0][1]
    rng = np.random.default_rng(2)
    data = {"x": rng.random((n, 64)), "y": np.eye(10)[rng.integers(0, 10, n)]}
    params = gen.init_params(0)
    params["b1"] = rng.normal(0, 0.1, 32)
    params["b2"] = rng.normal(0, 0.1, 10)
    check_all(modules, "mlp", params, data, hand_mlp(params, data))
    print(f"64-32-10 MLP (examples/mlp_digits.py), batch {n}, one value_and_grad "
          "(ratio: against hand-written NumPy)")
    base = median_time(lambda: hand_mlp(params, data), repeat, 20)
    times = race("hand-written NumPy backprop", lambda: hand_mlp(params, data),
                 contenders(modules, "value_and_grad", params, data), repeat, 20, "us")
    c_time = times["bpgen C"]
    if "torch" in frameworks:
        torch = frameworks["torch"]
        tx, ty = torch.tensor(data["x"]), torch.tensor(data["y"])
        tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}

        def tstep():
            for v in tp.values():
                v.grad = None
            h = torch.tanh(tx @ tp["W1"] + tp["b1"])
            logits = h @ tp["W2"] + tp["b2"]
            loss = (torch.logsumexp(logits, 1) - (ty * logits).sum(1)).mean()
            loss.backward()
            return loss
        torch_time = median_time(tstep, repeat, 20)
        row("PyTorch eager, 1 thread", torch_time, base, "us")
        print(f"  bpgen C / PyTorch = {c_time / torch_time:.2f} (aim: below 1)")


def bench_mlp_one(out, repeat, frameworks):
    """One sample of the 64-32-10 MLP: the latency of a call, dict and flat interfaces."""
    modules = compile_example(out, "mlp_digits.py", "mlp", "mlpone")
    gen, gen_c = modules[0][1], modules[0][2]
    rng = np.random.default_rng(3)
    params = gen.init_params(0)
    params["b1"] = rng.normal(0, 0.1, 32)
    sample = {"x": rng.random(64), "y": np.eye(10)[3]}
    want = hand_mlp_one(params, sample)
    for label, module in (("numpy", gen), ("c", gen_c)):
        check_close(f"{label} mlp one sample", module.value_and_grad(params, sample), want)
        value, flat_grad = module.value_and_grad_flat(module.pack(params), sample)
        check_close(f"{label} mlp one sample flat", (value, module.unpack(flat_grad)), want)
    flat = gen.pack(params)
    print("64-32-10 MLP, one sample without a batch axis, value_and_grad latency "
          "(ratio: against hand-written NumPy for one sample; aims: C 4 us, NumPy 10 us)")
    others = [(f"bpgen {label} value_and_grad{suffix}", fn)
              for label, module in (("NumPy", gen), ("C", gen_c))
              for suffix, fn in (("", lambda m=module: m.value_and_grad(params, sample)),
                                 ("_flat", lambda m=module: m.value_and_grad_flat(flat,
                                                                                  sample)))]
    if "jax" in frameworks:
        jax, jnp = frameworks["jax"], frameworks["jax"].numpy

        def jloss(p, d):
            logits = jnp.tanh(d["x"] @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
            return jax.nn.logsumexp(logits) - logits @ d["y"]
        f = jax.jit(jax.value_and_grad(jloss))
        jp = {k: jnp.asarray(v) for k, v in params.items()}
        js = {k: jnp.asarray(v) for k, v in sample.items()}
        others.append(("JAX jit(value_and_grad)",
                       lambda: jax.block_until_ready(f(jp, js))))
    race("hand-written NumPy, one sample", lambda: hand_mlp_one(params, sample), others,
         repeat, 2000, "us")


def bench_mlp_wide(out, repeat):
    """The MNIST-sized MLP (784-256-10, batch 128): where BLAS wins by tiling."""
    n = 128
    modules = compile_net(wide_mlp_source("mlpwide"), out, "mlpwide")
    gen = modules[0][1]
    rng = np.random.default_rng(3)
    data = {"x": rng.random((n, 784)), "y": np.eye(10)[rng.integers(0, 10, n)]}
    params = gen.init_params(0)
    check_all(modules, "mlp784", params, data, hand_mlp(params, data))
    print(f"784-256-10 MLP, batch {n}, one value_and_grad (ratio: against hand-written "
          f"NumPy with OpenBLAS on {os.environ['OPENBLAS_NUM_THREADS']} thread(s))")
    race("hand-written NumPy backprop", lambda: hand_mlp(params, data),
         contenders(modules, "value_and_grad", params, data), repeat, 5)


def bench_cnn(out, repeat, frameworks):
    n = 256
    modules = compile_example(out, "cnn_digits.py", "cnn_digits", "cnnbench")
    gen = modules[0][1]
    rng = np.random.default_rng(4)
    data = {"img": rng.random((n, 8, 8, 1)), "label": rng.integers(0, 10, n)}
    params = gen.init_params(0)
    params["kb"] = rng.normal(0, 0.1, params["kb"].shape)
    want = hand_cnn(params, data)
    check_all(modules, "cnn", params, data, want)
    print(f"convolutional network (examples/cnn_digits.py: 3x3 conv to 16 maps, relu, 2x2 "
          f"max pool, linear), batch {n}, one value_and_grad (ratio: against hand-written "
          "NumPy im2col backprop)")
    others = contenders(modules, "value_and_grad", params, data)
    if "torch" in frameworks:
        torch = frameworks["torch"]
        functional = torch.nn.functional
        timg = torch.tensor(data["img"]).permute(0, 3, 1, 2).contiguous()  # NCHW
        tlabel = torch.tensor(data["label"])
        tp = {"K": torch.tensor(params["K"].transpose(3, 2, 0, 1).copy(), requires_grad=True),
              **{k: torch.tensor(params[k], requires_grad=True) for k in ("kb", "V", "bv")}}

        def tstep():
            for v in tp.values():
                v.grad = None
            conv = torch.relu(functional.conv2d(timg, tp["K"], tp["kb"]))
            pool = functional.max_pool2d(conv, 2).permute(0, 2, 3, 1).reshape(n, -1)
            loss = functional.cross_entropy(pool @ tp["V"] + tp["bv"], tlabel)
            loss.backward()
            return loss
        loss = tstep()
        got = (loss.item(), {"K": tp["K"].grad.numpy().transpose(2, 3, 1, 0),
                             **{k: tp[k].grad.numpy() for k in ("kb", "V", "bv")}})
        check_close("torch cnn", got, want)
        others.append(("PyTorch eager (conv2d, max_pool2d), 1 thread", tstep))
    times = race("hand-written NumPy backprop", lambda: hand_cnn(params, data), others,
                 repeat, 5, "us")
    if "torch" in frameworks:
        torch_time = times["PyTorch eager (conv2d, max_pool2d), 1 thread"]
        print(f"  bpgen NumPy / PyTorch = {times['bpgen NumPy'] / torch_time:.2f}, "
              f"bpgen C / PyTorch = {times['bpgen C'] / torch_time:.2f} (aim: below 1)")


def bench_sequence(out):
    """Compile and build time of an Elman RNN and an LSTM unrolled over T steps (d = 8,
    32 hidden units), the networks of tests/tensor_nets/rnn.py and lstm.py made longer."""
    print("an Elman RNN and an LSTM unrolled over T steps (d = 8, 32 hidden units): the "
          "whole `bpgen compile` in this process; C: sources and the library, by the C "
          "compiler")
    nets = [("rnn", steps, "T, D, H, C = 5, 3, 4, 3", f"T, D, H, C = {steps}, 8, 32, 10")
            for steps in (5, 20, 50)]
    nets += [("lstm", steps, "T, D, H, V = 3, 2, 3, 4", f"T, D, H, V = {steps}, 8, 32, 50")
             for steps in (3, 10)]
    for kind, steps, old, new in nets:
        name = f"{kind}{steps}"
        source = (ROOT / "tests" / "tensor_nets" / f"{kind}.py").read_text().replace(
            old, new).replace(f'Network("{kind}")', f'Network("{name}")')
        assert new in source and f'Network("{name}")' in source
        net_file = out / f"{name}_net.py"
        net_file.write_text(source)
        seconds = {}
        for target in ("numpy", "c"):
            start = time.perf_counter()
            assert bpgen_main(["compile", str(net_file), "--target", target, "-o",
                               str(out / f"{name}_{target}")]) == 0
            seconds[target] = time.perf_counter() - start
        size = (out / f"{name}_c" / f"{name}.c").stat().st_size
        print(f"  {kind:4s} T = {steps:2d}: NumPy {seconds['numpy']:5.2f} s, "
              f"C {seconds['c']:5.2f} s ({size / 1024:6.1f} KiB of C)")


def bench_hvp(out, repeat):
    """hvp against value_and_grad of the same module: what a Hessian-vector product
    costs in gradients (forward-over-reverse: about 2-4 in theory)."""
    rng = np.random.default_rng(4)
    mlp = compile_example(out, "mlp_digits.py", "mlp", "mlphvp", "--hvp")[0]
    n = 256
    mlp_case = (mlp, mlp[1].init_params(0),
                {"x": rng.random((n, 64)), "y": np.eye(10)[rng.integers(0, 10, n)]},
                f"64-32-10 MLP, batch {n}", 20, "us")
    seed = compile_example(out, "seed.py", "seed", "seedhvp", "--hvp")[0]
    n = 100_000
    seed_case = (seed, seed[1].init_params(0),
                 {k: rng.normal(size=n) for k in ("x1", "x2", "y")}, f"seed 2-2-1, N = {n:,}",
                 1, "ms")
    print("hvp (exact Hessian-vector product) against value_and_grad, same module "
          "(ratio: hvp / value_and_grad)")
    for (_, gen, gen_c), params, data, label, number, unit in (mlp_case, seed_case):
        v = {k: rng.normal(size=np.shape(p)) for k, p in params.items()}
        for target, module in (("NumPy", gen), ("C", gen_c)):
            race(f"{label}, {target} value_and_grad",
                 lambda m=module, p=params, d=data: m.value_and_grad(p, d),
                 [(f"{label}, {target} hvp",
                   lambda m=module, p=params, d=data, v=v: m.hvp(p, d, v))],
                 repeat, number, unit)


def bench_train(out, repeat, frameworks):
    """Minibatch Adam on the digits MLP: the whole loop in C against the loop a user would
    write in Python around value_and_grad (the baseline), per step."""
    n, batch, steps = 1437, 32, 450  # the digits training set's size; 10 epochs
    rng = np.random.default_rng(5)
    data = {"x": rng.random((n, 64)), "y": np.eye(10)[rng.integers(0, 10, n)]}
    _, gen, gen_c = compile_example(out, "mlp_digits.py", "mlp", "mlptrain")[0]
    params = gen.init_params(0)
    per_epoch = -(-n // batch)

    def python_loop(module=gen_c):
        """Adam (PyTorch's formulas) around value_and_grad_flat, batches by NumPy."""
        flat = module.pack(params)
        m, v = np.zeros_like(flat), np.zeros_like(flat)
        for t in range(steps):
            if t % per_epoch == 0:
                order = rng.permutation(n)
            take = order[t % per_epoch * batch:(t % per_epoch + 1) * batch]
            _, g = module.value_and_grad_flat(flat, {k: a[take] for k, a in data.items()})
            m += 0.1 * (g - m)
            v = 0.999 * v + 0.001 * g * g
            flat = flat - 0.01 / (1 - 0.9**(t + 1)) * (
                m / (np.sqrt(v) / np.sqrt(1 - 0.999**(t + 1)) + 1e-8))
    print(f"minibatch Adam on the 64-32-10 MLP, n = {n}, batch {batch}, {steps} steps, time "
          "per step (ratio: against a Python loop around the C module's value_and_grad_flat)")
    others = [(f"bpgen {label} train", lambda m=module: m.train(
        params, data, 0.01, steps, optimizer="adam", batch_size=batch, progress=False))
        for label, module in (("C", gen_c), ("NumPy", gen))]
    if "torch" in frameworks:
        torch = frameworks["torch"]
        tdata = {k: torch.tensor(a) for k, a in data.items()}

        def torch_loop():
            tp = {k: torch.tensor(a, requires_grad=True) for k, a in params.items()}
            opt = torch.optim.Adam(list(tp.values()), lr=0.01)
            for t in range(steps):
                if t % per_epoch == 0:
                    order = torch.randperm(n)
                take = order[t % per_epoch * batch:(t % per_epoch + 1) * batch]
                x, y = tdata["x"][take], tdata["y"][take]
                opt.zero_grad()
                logits = torch.tanh(x @ tp["W1"] + tp["b1"]) @ tp["W2"] + tp["b2"]
                (torch.logsumexp(logits, 1) - (y * logits).sum(1)).mean().backward()
                opt.step()
        others.append(("PyTorch loop, torch.optim.Adam, 1 thread", torch_loop))
    times = median_times([python_loop] + [fn for _, fn in others], max(3, repeat // 4))
    row("Python loop around C value_and_grad_flat", times[0] / steps, times[0] / steps, "us")
    for (label, _), t in zip(others, times[1:]):
        row(label, t / steps, times[0] / steps, "us")


def bench_dask(out, repeat):
    """One full-batch gradient (an epoch's worth) of the digits MLP over 10^6 synthetic
    samples: one process against bpgen.dask on a LocalCluster of 2 worker processes
    (1 thread each) holding the data in 20 chunks."""
    try:
        import dask.array as da
        from distributed import Client, LocalCluster

        import bpgen.dask as bd
    except ImportError:
        print("dask: not installed (pip install '.[dask]')")
        return
    n, chunk = 1_000_000, 50_000
    _, gen, gen_c = compile_example(out, "mlp_digits.py", "mlp", "mlpdask")[0]
    params = gen.init_params(0)
    rng = np.random.default_rng(6)
    data = {"x": rng.random((n, 64)), "y": np.eye(10)[rng.integers(0, 10, n)]}
    print(f"64-32-10 MLP, value_and_grad over n = {n:,} samples (ratio: against one "
          "process, same module)")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        lazy = {k: client.persist(da.from_array(v, chunks=(chunk,) + v.shape[1:]))
                for k, v in data.items()}
        tiny = {k: client.persist(da.from_array(v[:200], chunks=(10,) + v.shape[1:]))
                for k, v in data.items()}
        for label, module in (("NumPy", gen), ("C", gen_c)):
            bd.value_and_grad(module, params, lazy)  # ship and build on the workers
            times = median_times([lambda m=module: m.value_and_grad(params, data),
                                  lambda m=module: bd.value_and_grad(m, params, lazy),
                                  lambda m=module: bd.value_and_grad(m, params, tiny)],
                                 max(3, repeat // 4))
            row(f"{label} module, one process", times[0], times[0])
            row(f"{label} module, bpgen.dask, 2 workers, {n // chunk} chunks", times[1],
                times[0])
            print(f"  {label}: overhead per task (20 chunks of 10 samples) "
                  f"{times[2] / 20 * 1e3:.2f} ms")
        flat = gen.N_FLAT * 8
        print(f"  per step, to each task: the parameters ({flat:,} bytes); to the caller: "
              f"one vector of sums ({flat + 16:,} bytes); the samples never move")


def bench_xp(out, repeat, frameworks):
    """The array API module against the NumPy module, on the same NumPy arrays and on
    other libraries' arrays (the same computation, in their kernels)."""
    rng = np.random.default_rng(0)
    n = 100_000
    compile_net(SEED_SUM, out, "seedsum")
    race_xp(out, "seedsum", f"N = {n:,}", {"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                                          "y": rng.normal(size=n)}, repeat, 1, "ms", frameworks)
    compile_example(out, "mlp_digits.py", "mlp", "mlpbench")
    race_xp(out, "mlpbench", "batch 256", {"x": rng.random((256, 64)),
                                           "y": np.eye(10)[rng.integers(0, 10, 256)]},
            repeat, 20, "us", frameworks)


def race_xp(out, name, size, data, repeat, number, unit, frameworks):
    gen = load(out / f"{name}.py", f"xpb_{name}")
    xpm = load(out / f"{name}_xp.py", f"xpb_{name}_xp")
    params = gen.init_params(0)
    want = gen.value_and_grad(params, data)
    check_close(f"xp {name}", xpm.value_and_grad(params, data), want)
    calls = [("array API module, NumPy arrays", lambda: xpm.value_and_grad(params, data))]
    if "torch" in frameworks:
        torch = frameworks["torch"]
        tp = {k: torch.asarray(np.asarray(v)) for k, v in params.items()}
        td = {k: torch.asarray(v) for k, v in data.items()}
        calls.append(("array API module, PyTorch CPU tensors (1 thread)",
                      lambda: xpm.value_and_grad(tp, td)))
    if "jax" in frameworks:
        jax = frameworks["jax"]
        jp = {k: jax.numpy.asarray(np.asarray(v)) for k, v in params.items()}
        jd = {k: jax.numpy.asarray(v) for k, v in data.items()}
        jitted = jax.jit(xpm.value_and_grad)
        check_close(f"xp {name} jax", jitted(jp, jd), want)
        calls.append(("array API module, JAX eager",
                      lambda: jax.block_until_ready(xpm.value_and_grad(jp, jd))))
        calls.append(("array API module under jax.jit",
                      lambda: jax.block_until_ready(jitted(jp, jd))))
    print(f"array API target, {name} ({size}), value_and_grad "
          "(ratio: against the NumPy module)")
    race("bpgen NumPy module", lambda: gen.value_and_grad(params, data), calls, repeat,
         number, unit)


def wide_mlp_source(name: str) -> str:
    """examples/mlp_digits.py widened to 784-256-10 (MNIST-sized), as network `name`."""
    source = (ROOT / "examples" / "mlp_digits.py").read_text()
    for old, new in (("shape=(64,))", "shape=(784,))"), ("shape=(64, 32)", "shape=(784, 256)"),
                     ("shape=(32,))", "shape=(256,))"), ("shape=(32, 10)", "shape=(256, 10)"),
                     ('Network("mlp")', f'Network("{name}")')):
        source = source.replace(old, new)
    assert "(784, 256)" in source and "(256, 10)" in source
    return source


def single(values):
    return {k: (np.asarray(v, np.float32) if np.ndim(v) else v) for k, v in values.items()}


def bench_float32(out, repeat):
    """float64 and float32 builds side by side, with hand-written NumPy in both types."""
    print("float32 (--dtype float32) against float64, value_and_grad (ratio: against "
          "hand-written NumPy in float64)")
    cases = [
        ("seed 2-2-1, N = 100,000", SEED_SUM.replace('"seedsum"', '"{name}"'), 100_000,
         lambda rng, n: {"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                         "y": rng.normal(size=n)}, hand_seed, 1),
        ("32-layer chain, N = 10,000", chain_source(32, "{name}"), 10_000,
         lambda rng, n: {"x": rng.normal(size=n), "y": rng.normal(size=n)},
         lambda p, d: hand_chain(p, d, 32), 1),
        ("MLP 64-32-10, batch 256",
         (ROOT / "examples" / "mlp_digits.py").read_text().replace('"mlp"', '"{name}"'), 256,
         lambda rng, n: {"x": rng.random((n, 64)), "y": np.eye(10)[rng.integers(0, 10, n)]},
         hand_mlp, 20),
        ("MLP 784-256-10, batch 128", wide_mlp_source("{name}"), 128,
         lambda rng, n: {"x": rng.random((n, 784)), "y": np.eye(10)[rng.integers(0, 10, n)]},
         hand_mlp, 5),
    ]
    for k, (title, template, n, draw, hand, number) in enumerate(cases):
        builds = {}
        for dtype in ("float64", "float32"):
            name = f"f{k}{dtype[-2:]}"
            source = template.replace("{name}", name)
            assert f'"{name}"' in source
            net_file = out / f"{name}_net.py"
            net_file.write_text(source)
            assert bpgen_main(["compile", str(net_file), "--target", "all", "--dtype", dtype,
                               "-o", str(out)]) == 0
            builds[dtype] = (load(out / f"{name}.py", f"bench_{name}"),
                             load(out / f"{name}_c.py", f"bench_{name}_c"))
        rng = np.random.default_rng(5)
        data = draw(rng, n)
        gen = builds["float64"][0]
        params = gen.init_params(0)
        if "W1" in params:
            params["b1"] = rng.normal(0, 0.1, params["b1"].shape)
        if not gen.SHAPES[gen.PARAMS[0]]:
            params = {p: float(v) for p, v in zip(gen.PARAMS, rng.normal(0, 0.7, len(gen.PARAMS)))}
        p32, d32 = single(params), single(data)
        want = hand(params, data)
        for dtype, (m, c) in builds.items():
            for label, module in (("NumPy", m), ("C", c)):
                value, grads = module.value_and_grad(*((p32, d32) if dtype == "float32" else
                                                       (params, data)))
                tol = 1e-9 if dtype == "float64" else 1e-3
                scale = max(1.0, *(float(np.max(np.abs(g))) for g in want[1].values()))
                assert abs(value - want[0]) <= tol * max(1.0, abs(want[0])), (title, label)
                for key, g in want[1].items():
                    assert np.max(np.abs(grads[key] - g)) <= tol * scale, (title, label, key)
        print(f" {title}")
        calls = [("hand-written NumPy, float32", lambda h=hand, a=(p32, d32): h(*a))]
        for dtype, (m, c) in builds.items():
            args = (p32, d32) if dtype == "float32" else (params, data)
            calls += [(f"bpgen NumPy, {dtype}", lambda m=m, a=args: m.value_and_grad(*a)),
                      (f"bpgen C, {dtype}", lambda c=c, a=args: c.value_and_grad(*a))]
        times = race("hand-written NumPy, float64",
                     lambda h=hand, a=(params, data): h(*a), calls, repeat, number)
        print(f"  C float32 / C float64 = "
              f"{times['bpgen C, float32'] / times['bpgen C, float64']:.2f}; NumPy float32 / "
              f"float64 = {times['bpgen NumPy, float32'] / times['bpgen NumPy, float64']:.2f}")


def bench_threads(out, repeat):
    """The C target's value_and_grad on 1, 2, 4 and 8 threads, as many as there are CPUs
    (ratio: against 1 thread): the chunks of samples, or the products' columns of a call
    of one chunk."""
    print(f"C threads=k, value_and_grad (ratio: against threads=1; this machine has "
          f"{os.cpu_count()} CPUs; results are bitwise identical for every k)")
    cases = [("seed 2-2-1, N = 100,000", SEED_SUM.replace('"seedsum"', '"thseed"'), "thseed",
              lambda rng, n: {"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                              "y": rng.normal(size=n)}, 100_000),
             ("32-layer chain, N = 100,000", chain_source(32, "thchain"), "thchain",
              lambda rng, n: {"x": rng.normal(size=n), "y": rng.normal(size=n)}, 100_000),
             ("MLP 64-32-10, N = 10,000",
              (ROOT / "examples" / "mlp_digits.py").read_text().replace('"mlp"', '"thmlp"'),
              "thmlp", lambda rng, n: {"x": rng.random((n, 64)),
                                       "y": np.eye(10)[rng.integers(0, 10, n)]}, 10_000),
             # one chunk of samples: the threads share out the columns of the products
             ("MLP 784-256-10, batch 128 (one chunk)", wide_mlp_source("thwide"), "thwide",
              lambda rng, n: {"x": rng.random((n, 784)),
                              "y": np.eye(10)[rng.integers(0, 10, n)]}, 128)]
    for title, source, name, draw, n in cases:
        (_, gen, gen_c), *_ = compile_net(source, out, name)
        rng = np.random.default_rng(6)
        data = draw(rng, n)
        params = gen.init_params(0)
        if not gen.SHAPES[gen.PARAMS[0]]:
            params = {p: float(v) for p, v in zip(gen.PARAMS, rng.normal(0, 0.7, len(gen.PARAMS)))}
        one = gen_c.value_and_grad(params, data)
        counts = [k for k in (2, 4, 8) if k <= (os.cpu_count() or 1)] or [2]
        for k in counts:
            value, grads = gen_c.value_and_grad(params, data, threads=k)
            assert value == one[0] and all(np.array_equal(grads[p], one[1][p]) for p in grads)
        print(f" {title} (OpenMP: {gen_c.OPENMP})")
        args = (params, data)
        race("bpgen C, 1 thread", lambda c=gen_c, a=args: c.value_and_grad(*a),
             [(f"bpgen C, {k} threads",
               lambda c=gen_c, k=k, a=args: c.value_and_grad(*a, threads=k))
              for k in counts], repeat)


def bench_compile(out):
    print("compile time and generated size of the deep chain (NumPy + C sources, and the "
          "C library built; ratio: against 16 layers)")
    base_t = base_s = None
    for depth in (16, 32, 64):
        name = f"depth{depth}"
        net_file = out / f"{name}_net.py"
        net_file.write_text(chain_source(depth, name))
        start = time.perf_counter()
        assert bpgen_main(["compile", str(net_file), "--target", "all", "-o",
                           str(out / name)]) == 0
        seconds = time.perf_counter() - start
        size = sum(p.stat().st_size for p in (out / name).iterdir() if p.suffix != ".so")
        base_t, base_s = base_t or seconds, base_s or size
        print(f"  {depth:3d} layers: {seconds:6.2f} s ({seconds / base_t:4.2f}x), "
              f"{size / 1024:7.1f} KiB ({size / base_s:4.2f}x)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--only", choices=["seed", "latency", "chain", "mlp", "cnn", "hvp",
                                           "train", "dask", "xp", "compile", "sequence",
                                           "float32", "threads"],
                        action="append", help="run only these benchmarks (repeatable)")
    parser.add_argument("--against", type=Path, metavar="TREE",
                        help="also time the output of the bpgen in TREE (another checkout)")
    parser.add_argument("--blas-threads", type=int, default=1, metavar="N",
                        help="BLAS threads of hand-written NumPy (default 1: one thread, "
                             "as every other contender)")
    args = parser.parse_args()
    global AGAINST
    AGAINST = args.against.resolve() if args.against else None
    wanted = set(args.only or ["seed", "latency", "chain", "mlp", "cnn", "hvp", "train",
                               "dask", "xp", "compile", "sequence", "float32", "threads"])
    repeat = 5 if args.quick else 21
    frameworks = optional_frameworks()
    print(f"bpgen {bp.__version__}, NumPy {np.__version__}, Python {sys.version.split()[0]}; "
          f"also timed: {', '.join(frameworks) or 'nothing else (JAX/PyTorch not installed)'}; "
          f"BLAS threads: {os.environ['OPENBLAS_NUM_THREADS']}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        if wanted & {"seed", "latency"}:
            modules = compile_net(SEED_SUM, out, "seedsum")
            if "seed" in wanted:
                bench_seed(modules, repeat, frameworks)
            if "latency" in wanted:
                bench_latency(modules, repeat)
        if "chain" in wanted:
            bench_chain(out, repeat)
        if "mlp" in wanted:
            bench_mlp(out, repeat, frameworks)
            bench_mlp_one(out, repeat, frameworks)
            bench_mlp_wide(out, repeat)
        if "cnn" in wanted:
            bench_cnn(out, repeat, frameworks)
        if "hvp" in wanted:
            bench_hvp(out, repeat)
        if "train" in wanted:
            bench_train(out, repeat, frameworks)
        if "dask" in wanted:
            bench_dask(out, repeat)
        if "xp" in wanted:
            bench_xp(out, repeat, frameworks)
        if "compile" in wanted:
            bench_compile(out)
        if "sequence" in wanted:
            bench_sequence(out)
        if "float32" in wanted:
            bench_float32(out, repeat)
        if "threads" in wanted:
            bench_threads(out, repeat)


if __name__ == "__main__":
    main()
