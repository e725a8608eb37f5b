"""Train the 64-32-10 MLP of examples/mlp_digits.py on scikit-learn's handwritten digits.

Run `bpgen compile examples/mlp_digits.py --target all` first (it writes generated/), then
`python examples/scripts/train_digits.py`. The data set ships inside scikit-learn
(`pip install ".[examples]"`); nothing is downloaded. Both generated modules (NumPy and C)
train from the same initial parameters with minibatch gradient descent; each prints one
line per epoch and its held-out accuracy at the end.
"""

import argparse
import importlib
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
GENERATED = os.path.join(HERE, "..", "..", "generated")


def load(seed=0, test_fraction=0.2):
    """Pixels scaled to [0, 1], one-hot labels, a fixed shuffled train/test split."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = digits.data / 16.0
    y = np.eye(10)[digits.target]
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(len(x) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return {"x": x[train], "y": y[train]}, {"x": x[test], "y": y[test]}


def accuracy(module, params, data):
    logits = module.forward(params, data)["logits"]
    return float(np.mean(logits.argmax(axis=1) == data["y"].argmax(axis=1)))


def train(module, train_data, test_data, epochs=30, batch=32, lr=0.2, seed=0, out=print):
    params = module.init_params(seed)
    rng = np.random.default_rng(seed)
    n = len(train_data["x"])
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n)
        losses = []
        for start in range(0, n, batch):
            rows = order[start:start + batch]
            value, params = module.sgd_step(
                params, {k: v[rows] for k, v in train_data.items()}, lr)
            losses.append(value)
        out(f"{module.__name__:6s} epoch {epoch:3d}/{epochs}  loss {np.mean(losses):.4f}  "
            f"train {accuracy(module, params, train_data):6.1%}  "
            f"held-out {accuracy(module, params, test_data):6.1%}")
    return params, accuracy(module, params, test_data)


def main(argv=None, out=print):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--generated", default=GENERATED,
                        help="directory holding the generated mlp.py / mlp_c.py")
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.abspath(args.generated))
    modules = [importlib.import_module("mlp")]
    try:
        modules.append(importlib.import_module("mlp_c"))
    except (ImportError, RuntimeError) as exc:  # no C compiler: NumPy only
        out(f"C target unavailable ({exc}); training with NumPy only")
    train_data, test_data = load()
    out(f"digits: {len(train_data['x'])} training and {len(test_data['x'])} held-out images")
    results = {}
    for module in modules:
        _, results[module.__name__] = train(module, train_data, test_data, args.epochs,
                                            out=out)
        out(f"{module.__name__}: held-out accuracy {results[module.__name__]:.1%}")
    return results


if __name__ == "__main__":
    main()
