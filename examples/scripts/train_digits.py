"""Train a digits classifier of examples/ on scikit-learn's 8x8 handwritten digits.

Three models, one per example file, each compiled first (`bpgen compile examples/<file>
--target all` writes generated/):

    --model mlp   examples/mlp_digits.py   a 64-32-10 MLP on the 64 pixels, one-hot targets
    --model rnn   examples/rnn_digits.py   an Elman RNN reading the image as 8 rows of 8
    --model cnn   examples/cnn_digits.py   a 3x3 convolution, 2x2 max pooling, a linear head

then `python examples/scripts/train_digits.py --model rnn`. The data set ships inside
scikit-learn (`pip install ".[examples]"`); nothing is downloaded. Both generated modules
(NumPy and C) train from the same initial parameters on the same minibatches of 32 with
SGD, the learning rate annealed from its start to 0 along a half cosine over the epochs;
each prints one line per epoch and its held-out accuracy at the end.
"""

import argparse
import importlib
import os
import sys
from dataclasses import dataclass

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
GENERATED = os.path.join(HERE, "..", "..", "generated")


@dataclass(frozen=True)
class Model:
    module: str  # the generated module's name (the network's name)
    data: callable  # (pixels in [0, 1] of shape (N, 64), classes) -> the network's inputs
    epochs: int
    lr: float


MODELS = {
    "mlp": Model("mlp", lambda x, c: {"x": x, "y": np.eye(10)[c]}, 30, 0.2),
    "rnn": Model("rnn_digits", lambda x, c: {"X": x.reshape(-1, 8, 8), "label": c}, 30, 0.2),
    "cnn": Model("cnn_digits", lambda x, c: {"img": x.reshape(-1, 8, 8, 1), "label": c},
                 30, 0.3),
}


def load(model: Model, seed=0, test_fraction=0.2):
    """Pixels scaled to [0, 1], a fixed shuffled train/test split, in the model's inputs;
    and the held-out classes."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    x, classes = digits.data / 16.0, digits.target
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(len(x) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return (model.data(x[train], classes[train]), classes[train],
            model.data(x[test], classes[test]), classes[test])


def accuracy(module, params, data, classes):
    logits = module.forward(params, data)["logits"]
    return float(np.mean(logits.argmax(axis=1) == classes))


def train(module, train_data, train_classes, test_data, test_classes, epochs, lr,
          batch=32, seed=0, out=print):
    params = module.init_params(seed)
    rng = np.random.default_rng(seed)
    n = len(train_classes)
    for epoch in range(1, epochs + 1):
        rate = lr * 0.5 * (1 + np.cos(np.pi * (epoch - 1) / epochs))  # cosine annealing
        order = rng.permutation(n)
        losses = []
        for start in range(0, n, batch):
            rows = order[start:start + batch]
            value, params = module.sgd_step(
                params, {k: v[rows] for k, v in train_data.items()}, rate)
            losses.append(value)
        out(f"{module.__name__:13s} epoch {epoch:3d}/{epochs}  loss {np.mean(losses):.4f}  "
            f"train {accuracy(module, params, train_data, train_classes):6.1%}  "
            f"held-out {accuracy(module, params, test_data, test_classes):6.1%}")
    return params, accuracy(module, params, test_data, test_classes)


def main(argv=None, out=print):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="mlp")
    parser.add_argument("--epochs", type=int, help="default: the model's own (30)")
    parser.add_argument("--generated", default=GENERATED,
                        help="directory holding the generated modules")
    args = parser.parse_args(argv)
    model = MODELS[args.model]
    sys.path.insert(0, os.path.abspath(args.generated))
    modules = [importlib.import_module(model.module)]
    try:
        modules.append(importlib.import_module(model.module + "_c"))
    except (ImportError, RuntimeError) as exc:  # no C compiler: NumPy only
        out(f"C target unavailable ({exc}); training with NumPy only")
    train_data, train_classes, test_data, test_classes = load(model)
    out(f"digits: {len(train_classes)} training and {len(test_classes)} held-out images")
    results = {}
    for module in modules:
        _, results[module.__name__] = train(module, train_data, train_classes, test_data,
                                            test_classes, args.epochs or model.epochs,
                                            model.lr, out=out)
        out(f"{module.__name__}: held-out accuracy {results[module.__name__]:.1%}")
    return results


if __name__ == "__main__":
    main()
