"""The degradation experiment (He et al. 2016, Figure 6) on the built-in data.

A deeper *plain* network reaches a higher training error than a shallower one; with
residual shortcuts the deeper network does not. This script trains the CIFAR nets of
recipes/residual.py, ``resnet_cifar(depth=d, residual=False)`` (plain) and
``resnet_cifar(depth=d)`` (ResNet, option A shortcuts), for each depth, on the same data
with the same budget, and records the training error per epoch (measured in training
mode over the epoch, as the paper's thin curves) and, once trained (BatchNorm statistics
recalibrated), the validation error.

The paper trains on CIFAR-10 (no download here): the stand-in is ``cluttered_digits`` at
32x32, the CIFAR input size, 2,000 training images. The optimizer is the paper's, SGD with
momentum 0.9 and weight decay 1e-4, in batches of 32 for 5 epochs (315 steps, against the
paper's 64k), with a cosine decay from a peak learning rate of 0.02. At the paper's 0.1
the 32-layer ResNet trains slower than the plain one in so few steps (the paper itself
warms its 110-layer net up at 0.01); ``--learning-rate 0.1`` shows it.

Run from the repository root (about 6 minutes at the defaults on a 2-core CPU):

    .venv/bin/python benchmarks/degradation.py [--depths 8 20] [--epochs 8] [--train 5000]
        [--out benchmarks/results/degradation.json] [--figure docs/assets/degradation.png]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cookbook import runtime  # noqa: E402

runtime.prefer_onednn()
runtime.import_keras_quietly()

import keras  # noqa: E402
import numpy as np  # noqa: E402

from cookbook import data as cdata  # noqa: E402
from cookbook import io as cio  # noqa: E402
from cookbook import train as ctrain  # noqa: E402
from cookbook.recipes import residual  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run_one(splits, depth, shortcuts, *, epochs, batch_size, learning_rate, seed):
    """Train one net; returns its curves (train and validation error per epoch) and time."""
    keras.utils.set_random_seed(seed)
    model = residual.resnet_cifar(input_shape=splits.train.x.shape[1:], classes=10, depth=depth,
                                  residual=shortcuts)
    start = time.perf_counter()
    history = ctrain.fit(model, splits, epochs=epochs, batch_size=batch_size, optimizer="sgd",
                         learning_rate=learning_rate, weight_decay=1e-4, early_stopping=None,
                         verbose=0, seed=seed)
    seconds = time.perf_counter() - start
    accuracy = float(np.mean(model.predict(splits.val.x, batch_size=256, verbose=0).argmax(-1) == splits.val.y))
    return {"depth": depth, "residual": shortcuts, "params": model.count_params(), "seconds": round(seconds, 1),
            "train_error": [round(1 - a, 4) for a in history.history["accuracy"]],
            "val_error": round(1 - accuracy, 4)}


def plot(runs, path):
    """Training error per epoch, plain | ResNet, as the paper's Figure 6."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4), layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    for ax, shortcuts in zip(axes, (False, True)):
        for run in (r for r in runs if r["residual"] == shortcuts):
            epochs = range(1, len(run["train_error"]) + 1)
            ax.plot(epochs, run["train_error"], marker="o", label=f"{run['depth']} layers")
            ax.set_xticks(list(epochs))
        ax.set(title="ResNet" if shortcuts else "plain", xlabel="epoch", ylabel="training error")
        ax.grid(alpha=0.3)
        ax.legend()
    cio.save_figure(figure, path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[8, 32], help="depths 6n + 2, shallow first")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--train", type=int, default=2000, help="training images")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.02, help="peak learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/degradation.json")
    parser.add_argument("--figure", type=Path, default=ROOT / "docs/assets/degradation.png")
    args = parser.parse_args(argv)

    splits = cdata.cluttered_digits(args.train, 1000, 10, size=32, scale=(2.0, 3.5), distractors=3)
    runs = []
    for shortcuts in (False, True):
        for depth in args.depths:
            run = run_one(splits, depth, shortcuts, epochs=args.epochs, batch_size=args.batch_size,
                          learning_rate=args.learning_rate, seed=args.seed)
            runs.append(run)
            kind = "resnet" if shortcuts else "plain"
            print(f"{kind}-{depth}: final train error {run['train_error'][-1]:.3f}, "
                  f"val error {run['val_error']:.3f}, {run['seconds']:.0f} s", flush=True)
    result = {"cpu": runtime.cpu_name(), "backend": keras.backend.backend(), "args": {
        "depths": args.depths, "epochs": args.epochs, "train": args.train, "batch_size": args.batch_size,
        "learning_rate": args.learning_rate, "seed": args.seed}, "runs": runs}
    cio.write_json(args.out, result)
    plot(runs, args.figure)
    print(f"wrote {args.out} and {args.figure}")


if __name__ == "__main__":
    main()
