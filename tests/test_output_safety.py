"""Output safety: determinism over many random networks, concurrent compiles."""

import os
import subprocess
import sys

from conftest import ROOT
from randomnets import seeded_description, source


def test_twenty_random_networks_identical_across_hash_seeds(tmp_path):
    nets = []
    for seed in range(20):
        path = tmp_path / f"rand{seed}.py"
        path.write_text(source(seeded_description(seed), name=f"rand{seed}"))
        nets.append(str(path))
    outputs = []
    for hash_seed in ("0", "1", "4242"):
        out = tmp_path / f"out{hash_seed}"
        subprocess.run([sys.executable, "-m", "bpgen", "compile", *nets, "--target", "all",
                        "--no-build", "-o", str(out)], check=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONHASHSEED": hash_seed,
                            "PYTHONPATH": str(ROOT)})
        outputs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert len(outputs[0]) == 20 * 5  # NumPy, C header, C source, C wrapper, array API
    assert outputs[0] == outputs[1] == outputs[2]


def test_concurrent_compiles_leave_a_consistent_set(tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "bpgen", "compile", str(ROOT / "examples" / "seed.py"),
               str(ROOT / "tests" / "nets" / "chain20.py"), "--target", "all", "--no-build",
               "-o", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = [subprocess.Popen(command, env=env, stderr=subprocess.PIPE) for _ in range(4)]
    assert all(r.wait() == 0 for r in runs)
    reference = tmp_path / "reference"
    subprocess.run(command[:-1] + [str(reference)], env=env, check=True)
    written = {p.name: p.read_bytes() for p in out.iterdir()}
    assert written == {p.name: p.read_bytes() for p in reference.iterdir()}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_failed_compile_leaves_previous_output_untouched(tmp_path):
    out = tmp_path / "out"
    good = tmp_path / "net.py"
    good.write_text((ROOT / "examples" / "seed.py").read_text())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "bpgen", "compile", str(good), "-o", str(out)],
                   env=env, check=True)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    good.write_text(good.read_text().replace('net.loss("L"', 'net.loss("L" + '))
    done = subprocess.run([sys.executable, "-m", "bpgen", "compile", str(good), "-o", str(out)],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
