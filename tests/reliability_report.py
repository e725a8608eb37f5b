"""Regenerate docs/reliability.md: the figures behind "trust bpgen's gradients".

    python tests/reliability_report.py            # 200 + 200 random networks (minutes)
    python tests/reliability_report.py --nets 1000 --tensor-nets 1000

Runs the random-network differential check (both targets against finite differences and
autograd), every hostile input of tests/test_cli_errors.py plus the accepted oddities
below, and the sanitizer and determinism test files, then writes the report.
"""

from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import randomtensors  # noqa: E402
from randomnets import check, seeded_description  # noqa: E402
from test_cli_errors import CASES, HEADER  # noqa: E402

# Inputs that look hostile but are legal: they must compile (exit 0) and work.
ACCEPTED = [
    ("keyword and builtin names", 'lam, sm = net.params(["lambda", "sum"])\n'
     'net.loss("L", (lam * x + sm - y) ** 2 + w * b)\n'),
    ("C names (double, int, exp, main)", 'd, i, e, m = net.params("double int exp main")\n'
     'net.loss("L", (d * x + i + e * m - y) ** 2 + w * b)\n'),
    ("non-ASCII names", 'α, β = net.params("α β")\nnet.loss("L", (α * x + β - y) ** 2 + w * b)\n'),
    ("huge constants", 'net.loss("L", 1e300 * (w * x - y) ** 2 + 1e-300 * b)\n'),
    ("division by a parameter", 'net.loss("L", (x / w - y) ** 2 + b)\n'),
    ("adjoint-like user names (d_w)", 'dw = net.params("d_w")\n'
     'net.loss("L", (dw * w * x + b - y) ** 2)\n'),
    ("a network with one equation", 'net.loss("L", w * x + b)\n'),
]


def run(command, cwd=ROOT):
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd)


def pytest_count(path) -> tuple[int, int]:
    done = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)])
    passed = re.search(r"(\d+) passed", done.stdout)
    failed = re.search(r"(\d+) failed", done.stdout)
    return int(passed.group(1)) if passed else 0, int(failed.group(1)) if failed else 0


def random_networks(count: int):
    ok = invalid = 0
    mismatches = []
    equations = 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(count):
            desc = seeded_description(seed)
            problems = check(desc, Path(tmp) / f"n{seed}", str(seed))
            if problems is None:
                invalid += 1
            elif problems:
                mismatches.append((seed, problems))
            else:
                ok += 1
                equations += len(desc["equations"])
    return ok, invalid, mismatches, equations, time.perf_counter() - start


def random_tensor_networks(count: int):
    ok = 0
    mismatches = []
    layers = 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(count):
            desc = randomtensors.seeded_description(seed)
            problems = randomtensors.check(desc, Path(tmp) / f"t{seed}", f"t{seed}",
                                           seed=seed)
            if problems:
                mismatches.append((seed, problems))
            else:
                ok += 1
                layers += len(desc["layers"])
    return ok, mismatches, layers, time.perf_counter() - start


def hostile():
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, body, line, _message in CASES:
            net = Path(tmp) / "bad.py"
            net.write_text(HEADER + body)
            done = run([sys.executable, "-m", "bpgen", "compile", "bad.py", "--target", "all",
                        "-o", "out"], cwd=tmp)
            written = (Path(tmp) / "out").exists()
            first = (done.stderr.strip().splitlines() or [""])[0]
            good = (done.returncode == 2 and first.startswith(f"bad.py:{line}: error:")
                    and "Traceback" not in done.stderr and not written)
            rows.append((name, "rejected", done.returncode, first, good))
        for name, body in ACCEPTED:
            folder = Path(tmp) / f"ok{len(rows)}"
            folder.mkdir()
            (folder / "odd.py").write_text(HEADER.replace('"bad"', '"odd"') + body)
            done = run([sys.executable, "-m", "bpgen", "compile", "odd.py", "--target", "all",
                        "-o", "out"], cwd=folder)
            imported = run([sys.executable, "-c", "import numpy as np, odd, odd_c\n"
                            "p = odd.init_params(0)\n"
                            "for d in ({k: 0.5 for k in odd.INPUTS},\n"
                            "          {k: np.linspace(0.3, 1.7, 300) for k in odd.INPUTS}):\n"
                            "    (a, ga), (b, gb) = odd.value_and_grad(p, d), "
                            "odd_c.value_and_grad(p, d)\n"
                            "    assert abs(a - b) <= 1e-12 * abs(a) + 1e-300, (a, b)\n"
                            "    for k in ga:\n"
                            "        assert abs(ga[k] - gb[k]) <= 1e-12 * abs(ga[k]) + 1e-300\n"],
                           cwd=folder / "out")
            good = done.returncode == 0 and imported.returncode == 0
            note = "compiles; NumPy and C agree (1 and 300 samples)" if good \
                else imported.stderr[-200:]
            rows.append((name, "accepted", done.returncode, note, good))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", type=int, default=200)
    parser.add_argument("--tensor-nets", type=int, default=200)
    parser.add_argument("-o", "--output", default=str(ROOT / "docs" / "reliability.md"))
    args = parser.parse_args()

    ok, invalid, mismatches, equations, seconds = random_networks(args.nets)
    t_ok, t_mismatches, t_layers, t_seconds = random_tensor_networks(args.tensor_nets)
    rows = hostile()
    san_pass, san_fail = pytest_count(HERE / "test_sanitizers.py")
    tc_pass, tc_fail = pytest_count(HERE / "test_tensor_c.py")
    det_pass, det_fail = pytest_count(HERE / "test_output_safety.py")

    lines = [
        "# Reliability report",
        "",
        "Regenerated by `python tests/reliability_report.py` "
        f"(this run: Python {platform.python_version()}, {platform.machine()}, "
        f"{args.nets} random networks). CI runs the same checks at a smaller size on every "
        "push (`tests/test_random_networks.py`, 25 Hypothesis examples with a fixed seed; "
        "`BPGEN_RANDOM_NETS=N` for more).",
        "",
        "## Random networks (differential testing)",
        "",
        "Random DAGs of 1–40 equations over tanh, sigmoid, softplus, exp, log of positive "
        "values, sqrt of positive values, relu and |x| (samples near the kink dropped), "
        "squares, cubes, rational coefficients, products (fan-in), fan-out and unused "
        "parameters; mean or sum reduction. Each is compiled to NumPy and C, and the loss and "
        "every gradient are compared with central finite differences of an independent NumPy "
        "evaluation of the same description and with HIPS autograd's gradient of it.",
        "",
        "| networks checked | equations in them | mismatches | draws skipped (non-finite "
        "or all samples at a kink) | time |",
        "|---|---|---|---|---|",
        f"| {ok} | {equations} | {len(mismatches)} | {invalid} | {seconds:.0f} s |",
        "",
    ]
    for seed, problems in mismatches:
        lines.append(f"- seed {seed}: {problems[0]}")
    lines += [
        "## Random networks with shaped values",
        "",
        "Random stacks of 1–5 layers on a per-sample vector or matrix: matmuls on either "
        "side (`v @ W + b`, `W @ v`), tied weights (`v @ W.T` for an earlier `W`), tanh, "
        "sigmoid, softplus, sin, squares and ratios, scalar scales, sums and means over "
        "either axis of a per-sample matrix, softmax along either axis, transposes; then a "
        "softmax cross-entropy, squared-error or log-sum-exp head; mean or sum reduction. "
        "Both targets are compared with central finite differences of an independent NumPy "
        "evaluation, every entry of every parameter (tests/randomtensors.py; CI runs 20 "
        "Hypothesis examples shared with the scalar networks, `BPGEN_RANDOM_NETS=N` for more).",
        "",
        "| networks checked | layers in them | mismatches | time |",
        "|---|---|---|---|",
        f"| {t_ok} | {t_layers} | {len(t_mismatches)} | {t_seconds:.0f} s |",
        "",
    ]
    for seed, problems in t_mismatches:
        lines.append(f"- seed {seed}: {problems[0]}")
    lines += [
        "## Hostile and malformed input",
        "",
        "Rejected inputs must print one line `file:line: error: …`, exit with status 2, "
        "never show a traceback and never write a file. Accepted oddities must compile and "
        "give the same answer from both targets.",
        "",
        "| input | expected | exit | first line of output | as expected |",
        "|---|---|---|---|---|",
    ]
    for name, kind, code, first, good in rows:
        lines.append(f"| {name} | {kind} | {code} | `{first}` | {'yes' if good else '**NO**'} |")
    lines += [
        "",
        "## Sanitizers, determinism, output safety",
        "",
        f"- AddressSanitizer + UndefinedBehaviorSanitizer: {san_pass} zoo networks × 5 batch "
        f"sizes × every C entry point ran clean ({san_fail} failed).",
        "- `-O0` against `-O3 -march=native`: agree to 1e-12 (tests/test_c_target.py).",
        f"- Shaped networks' C (tests/test_tensor_c.py: strict warnings at -O0/-O2/-O3, "
        f"ASan + UBSan on every entry point × 6 batch sizes with a workspace of exactly "
        f"`<name>_work_size(n)` doubles, byte-identical output across 3 hash seeds): "
        f"{tc_pass} passed, {tc_fail} failed.",
        f"- Determinism and output safety (20 random networks × 3 PYTHONHASHSEED values "
        f"byte-identical; 4 concurrent compiles into one directory; failed compile leaves "
        f"the old output): {det_pass} passed, {det_fail} failed.",
        "",
    ]
    Path(args.output).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    bad = mismatches or t_mismatches or san_fail or tc_fail or det_fail or \
        not all(r[4] for r in rows)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
