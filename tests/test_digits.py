"""The examples on real data: examples/{mlp,rnn,cnn}_digits.py trained by examples/scripts/
train_digits.py on scikit-learn's digits reach their held-out accuracies on both targets
with minibatch Adam and a cosine schedule (the MLP in 6 epochs, the recurrent and
convolutional networks in 20); full-batch gradient descent on the MLP reaches 95% only
after hundreds of epochs."""

import re

import pytest

from conftest import ROOT, import_file, run_cli

CASES = [  # model, example file, epochs, held-out accuracy it must reach
    ("mlp", "mlp_digits.py", 6, 0.97),
    ("rnn", "rnn_digits.py", 20, 0.97),
    ("cnn", "cnn_digits.py", 20, 0.97),
]


@pytest.mark.parametrize("model, example, epochs, wanted", CASES, ids=[c[0] for c in CASES])
def test_digits_reach_their_accuracy_on_both_targets(tmp_path, model, example, epochs, wanted):
    assert run_cli("compile", ROOT / "examples" / example, "--target", "all",
                   "-o", tmp_path) == 0
    script = import_file(ROOT / "examples" / "scripts" / "train_digits.py", "_train_digits")
    lines = []
    results = script.main(["--model", model, "--epochs", str(epochs), "--generated",
                           str(tmp_path)], out=lines.append)
    name = script.MODELS[model].module
    assert set(results) == {name, name + "_c"}
    for target, accuracy in results.items():
        assert accuracy >= wanted, (target, accuracy)
    epoch_lines = [ln for ln in lines if re.search(r" epoch +\d+/", ln)]
    assert len(epoch_lines) == 2 * epochs
    assert re.match(rf"{name} +epoch +{epochs}/{epochs}  loss \d", epoch_lines[epochs - 1])
    # same initial parameters, same minibatches: the two targets train alike
    losses = [float(re.search(r"loss (\S+)", ln).group(1)) for ln in epoch_lines]
    assert losses[:epochs] == pytest.approx(losses[epochs:], abs=2e-4)
    assert losses[epochs - 1] < losses[0] / 3
