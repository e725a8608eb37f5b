"""Train a digits classifier of examples/ on scikit-learn's 8x8 handwritten digits.

Three models, one per example file, each compiled first (`bpgen compile examples/<file>
--target all` writes generated/):

    --model mlp   examples/mlp_digits.py   a 64-32-10 MLP on the 64 pixels, one-hot targets
    --model rnn   examples/rnn_digits.py   an Elman RNN reading the image as 8 rows of 8
    --model cnn   examples/cnn_digits.py   a 3x3 convolution, 2x2 max pooling, a linear head

then `python examples/scripts/train_digits.py --model rnn`. The data set ships inside
scikit-learn (`pip install ".[examples]"`); nothing is downloaded. Both generated modules
(NumPy and C) train with their own train(): the same initial parameters, the same
minibatches of 32 in a fresh order each epoch, Adam (or --optimizer sgd), the learning
rate annealed from its start to 0 along a half cosine, a progress bar on a terminal; each
prints one line per epoch and its held-out accuracy at the end.
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
    lr: dict  # the starting learning rate of each optimiser


MODELS = {
    "mlp": Model("mlp", lambda x, c: {"x": x, "y": np.eye(10)[c]}, 10,
                 {"adam": 0.01, "sgd": 0.2}),
    "rnn": Model("rnn_digits", lambda x, c: {"X": x.reshape(-1, 8, 8), "label": c}, 20,
                 {"adam": 0.01, "sgd": 0.2}),
    "cnn": Model("cnn_digits", lambda x, c: {"img": x.reshape(-1, 8, 8, 1), "label": c},
                 20, {"adam": 0.02, "sgd": 0.3}),
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
          optimizer="adam", batch=32, seed=0, out=print, progress=None):
    """Train with the generated train(): minibatches of `batch` (0: all samples, one step
    an epoch), a fresh order each epoch, the learning rate annealed from lr to 0 along a
    half cosine over all steps. One line per epoch; (params, held-out accuracy, the first
    epoch reaching 97% held out or None)."""
    n = len(train_classes)
    per_epoch = -(-n // batch) if batch else 1
    steps = epochs * per_epoch
    ends = {}  # epoch -> (train, held-out accuracy) at its end

    def at_step(t, loss, params):
        if (t + 1) % per_epoch == 0:
            ends[(t + 1) // per_epoch] = (accuracy(module, params, train_data, train_classes),
                                          accuracy(module, params, test_data, test_classes))
    params, losses = module.train(module.init_params(seed), train_data,
                                  module.cosine_lr(lr, steps), steps, optimizer=optimizer,
                                  batch_size=batch or None, seed=seed, callback=at_step,
                                  progress=progress)
    first = None
    for epoch in range(1, epochs + 1):
        train_acc, test_acc = ends[epoch]
        if first is None and test_acc >= 0.97:
            first = epoch
        loss = np.mean(losses[(epoch - 1) * per_epoch:epoch * per_epoch])
        out(f"{module.__name__:13s} epoch {epoch:3d}/{epochs}  loss {loss:.4f}  "
            f"train {train_acc:6.1%}  held-out {test_acc:6.1%}")
    return params, ends[epochs][1], first


def main(argv=None, out=print):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="mlp")
    parser.add_argument("--epochs", type=int, help="default: the model's own")
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    parser.add_argument("--lr", type=float, help="the starting learning rate (default: "
                        "the model's own for the optimiser)")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="samples per step (0: all of them, full-batch training)")
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
        _, results[module.__name__], first = train(
            module, train_data, train_classes, test_data, test_classes,
            args.epochs or model.epochs, args.lr or model.lr[args.optimizer],
            args.optimizer, args.batch_size, out=out)
        out(f"{module.__name__}: held-out accuracy {results[module.__name__]:.1%}" +
            (f" (97% first reached after epoch {first})" if first else ""))
    return results


if __name__ == "__main__":
    main()
