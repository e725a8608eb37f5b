"""The example on real data: examples/mlp_digits.py trained by examples/scripts/
train_digits.py on scikit-learn's digits reaches 95% held-out accuracy on both targets."""

from conftest import ROOT, import_file, run_cli


def test_digits_reach_95_percent_on_both_targets(tmp_path):
    assert run_cli("compile", ROOT / "examples" / "mlp_digits.py", "--target", "all",
                   "-o", tmp_path) == 0
    script = import_file(ROOT / "examples" / "scripts" / "train_digits.py", "_train_digits")
    lines = []
    results = script.main(["--epochs", "8", "--generated", str(tmp_path)], out=lines.append)
    assert set(results) == {"mlp", "mlp_c"}
    for name, accuracy in results.items():
        assert accuracy >= 0.95, (name, accuracy)
    epoch_lines = [ln for ln in lines if " epoch " in ln]
    assert len(epoch_lines) == 16
    assert epoch_lines[7].startswith("mlp    epoch   8/8  loss ")
    # same initial parameters, same minibatches: the two targets train identically
    numpy_lines = [ln.split(None, 1)[1] for ln in epoch_lines[:8]]
    c_lines = [ln.split(None, 1)[1] for ln in epoch_lines[8:]]
    assert numpy_lines == c_lines
