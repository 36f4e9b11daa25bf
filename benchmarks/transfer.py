"""Transfer learning with our own backbone: pretrain on digits 0-4, transfer to 5-9 from 100 labels.

No ImageNet download is possible here, so the "pretrained" backbone is the Xception
recipe's demo network (``mini_xception``, with BatchNormalization in every block),
trained on the cluttered digits 0-4. The new task is the digits 5-9 with 20 labelled
training images per class. Four ways to use the backbone (``cookbook.transfer``):

1. ``feature_extraction``: the backbone frozen, a new head (average pool, dropout,
   dense) trained;
2. ``fine_tune``: then the backbone (or its top stages, from ``--trainable-from``)
   unfrozen and trained at a tenth of the learning rate, BatchNorm kept in inference
   mode (frozen);
3. ``fine_tune_naive``: the same second stage, the way that looks right: the same
   layers unfrozen with their BatchNorm layers (so in training mode: batch statistics, moving
   statistics updated), as plain ``model.fit`` runs it; ``fine_tune_naive_recalibrated``
   is the same model with ``cookbook.train.fit``'s BatchNorm recalibration after it;
4. ``scratch``: the same architecture freshly initialized and trained on the 100 labels,
   for as many epochs as the other two stages together.

Each is run for ``--seeds`` seeds (the 100 labelled images and the head's initial
weights change with the seed; the pretrained backbone does not), and scored on held-out
5-9 digits (test split, handwriting unseen in training). The times are wall seconds from
the pretrained backbone: a fine-tuned model's includes its head stage.

Run from the repository root (under 7 minutes at the defaults on a 2-core CPU; 400 s
with other jobs sharing the machine):

    .venv/bin/python benchmarks/transfer.py [--seeds 0 1 2] [--per-class 20]
        [--out benchmarks/results/transfer.json] [--figure docs/assets/transfer.png]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cookbook import runtime  # noqa: E402

runtime.prefer_onednn()
runtime.quiet_logs()
runtime.import_keras_quietly()

import keras  # noqa: E402
import numpy as np  # noqa: E402

from cookbook import data as cdata  # noqa: E402
from cookbook import io as cio  # noqa: E402
from cookbook import registry, transfer  # noqa: E402
from cookbook import train as ctrain  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("feature_extraction", "fine_tune", "fine_tune_naive", "fine_tune_naive_recalibrated", "scratch")
COLORS = {"feature_extraction": "#4c72b0", "fine_tune": "#55a868", "fine_tune_naive": "#c44e52",
          "fine_tune_naive_recalibrated": "#dd8452", "scratch": "#8172b2"}


def labels(trainable_from):
    """The figure's bar labels; fine-tuning names what it unfroze."""
    tuned = "backbone" if trainable_from is None else f"from {trainable_from}"
    return {"feature_extraction": "feature extraction\n(frozen backbone)",
            "fine_tune": f"fine-tune {tuned}\n(BN frozen)",
            "fine_tune_naive": f"fine-tune {tuned}\n(BN training mode)",
            "fine_tune_naive_recalibrated": "same, BN\nrecalibrated after",
            "scratch": "from scratch"}


def subset(split, digits, offset=0):
    """The examples of ``split`` whose label is in ``digits``, labels shifted down by ``offset``."""
    keep = np.isin(split.y, digits)
    return cdata.Split(split.x[keep], split.y[keep] - offset)


def few_labels(split, per_class, seed):
    """``per_class`` examples of each class of ``split``, drawn with ``seed``."""
    rng = np.random.default_rng([seed, 17])
    pick = np.concatenate([rng.choice(np.flatnonzero(split.y == c), per_class, replace=False)
                           for c in np.unique(split.y)])
    return cdata.Split(split.x[pick], split.y[pick])


def accuracy(model, split):
    return float(np.mean(model.predict(split.x, batch_size=256, verbose=0).argmax(-1) == split.y))


def _moving_statistics(model):
    """{BatchNorm layer name: its moving mean and variance}, nested models included."""
    found = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found[layer.name] = np.concatenate([np.asarray(layer.moving_mean), np.asarray(layer.moving_variance)])
        elif isinstance(layer, keras.Model):
            found.update(_moving_statistics(layer))
    return found


def bn_drift(model, pretrained):
    """The largest change of any backbone BatchNorm moving mean or variance from the pretrained values."""
    current, reference = _moving_statistics(model), _moving_statistics(pretrained)
    return float(max(np.max(np.abs(current[name] - reference[name])) for name in reference))


def pretrain(args):
    """The backbone: the xception recipe's demo network trained on digits 0-4; its feature extractor."""
    recipe = registry.get("xception")
    splits = cdata.cluttered_digits(args.pretrain, 500, args.test, size=64, seed=0)
    source = cdata.Splits(subset(splits.train, range(5)), subset(splits.val, range(5)),
                          subset(splits.test, range(5)), classes=5)
    target_pool = subset(splits.train, range(5, 10), 5)
    target_test = subset(splits.test, range(5, 10), 5)
    keras.utils.set_random_seed(0)
    model = recipe.builder(recipe.demo["builder"])(**{**recipe.demo["kwargs"], "classes": 5})
    start = time.perf_counter()
    ctrain.fit(model, source, epochs=args.pretrain_epochs, learning_rate=recipe.demo.get("learning_rate", 1e-3),
               verbose=0, seed=0)
    seconds = time.perf_counter() - start
    stage = recipe.feature_stages(model)[-1]
    backbone = keras.Model(model.inputs, model.get_layer(stage).output, name="backbone")
    facts = {"recipe": "xception", "builder": recipe.demo["builder"], "kwargs": {**recipe.demo["kwargs"], "classes": 5},
             "cut_at": stage, "train_images": len(source.train), "epochs": args.pretrain_epochs,
             "test_accuracy_0_4": accuracy(model, source.test), "seconds": round(seconds, 1),
             "backbone_params": backbone.count_params()}
    return backbone, target_pool, target_test, facts


def naive_unfreeze(model, trainable_from):
    """What the Keras guide's reader writes: unfreeze the top of the backbone, BatchNorm and all."""
    backbone = model.get_layer("backbone")
    backbone.trainable = True
    names = [layer.name for layer in backbone.layers]
    for layer in backbone.layers[: names.index(trainable_from) if trainable_from else 0]:
        layer.trainable = False
    return model


def run_seed(backbone, pool, test, args, seed):
    """The methods for one seed; returns {method: {"accuracy", "seconds", ...}}."""
    labelled = few_labels(pool, args.per_class, seed)
    xy = (labelled.x, labelled.y)
    common = {"batch_size": args.batch_size, "verbose": 0, "seed": seed, "early_stopping": None}
    results = {}

    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    head = transfer.transfer_model(backbone, 5, mode="feature_extraction")
    ctrain.fit(head, xy, epochs=args.head_epochs, learning_rate=args.learning_rate, **common)
    head_seconds = time.perf_counter() - start
    results["feature_extraction"] = {"accuracy": accuracy(head, test), "seconds": head_seconds}
    head_weights = head.get_weights()

    variants = {"fine_tune": (False, False), "fine_tune_naive": (True, False),
                "fine_tune_naive_recalibrated": (True, True)}
    for method, (naive, recalibrate) in variants.items():
        start = time.perf_counter()
        model = transfer.transfer_model(backbone, 5, mode="feature_extraction")
        model.set_weights(head_weights)  # the same converged head for each
        if naive:
            naive_unfreeze(model, args.trainable_from)
        else:
            transfer.unfreeze(model, args.trainable_from)
        ctrain.fit(model, xy, epochs=args.tune_epochs, learning_rate=args.learning_rate / 10,
                   recalibrate_bn=recalibrate, **common)
        results[method] = {"accuracy": accuracy(model, test), "seconds": head_seconds + time.perf_counter() - start,
                           "bn_drift": bn_drift(model, backbone)}

    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    model = transfer.transfer_model(backbone, 5, mode="scratch")
    ctrain.fit(model, xy, epochs=args.head_epochs + args.tune_epochs, learning_rate=args.scratch_learning_rate,
               **common)
    results["scratch"] = {"accuracy": accuracy(model, test), "seconds": time.perf_counter() - start}
    return results


def summarize(per_seed):
    """Mean, spread (half the range) and values of each method's accuracy and seconds over the seeds."""
    summary = {}
    for method in METHODS:
        runs = [seed_results[method] for seed_results in per_seed.values()]
        acc = [r["accuracy"] for r in runs]
        secs = [r["seconds"] for r in runs]
        summary[method] = {"accuracy_mean": round(float(np.mean(acc)), 4),
                           "accuracy_spread": round(float(np.ptp(acc) / 2), 4),
                           "accuracy": [round(a, 4) for a in acc],
                           "seconds_mean": round(float(np.mean(secs)), 1)}
        if "bn_drift" in runs[0]:
            summary[method]["bn_drift_max"] = round(max(r["bn_drift"] for r in runs), 4)
    return summary


def plot(result, path):
    """A bar per method: mean test accuracy, the seeds' range as an error bar, the seconds written in."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    summary, settings = result["summary"], result["settings"]
    figure = Figure(figsize=(10, 4.2), layout="constrained")
    ax = figure.subplots()
    means = [summary[m]["accuracy_mean"] for m in METHODS]
    spreads = [summary[m]["accuracy_spread"] for m in METHODS]
    ax.bar(range(len(METHODS)), means, yerr=spreads, capsize=4, color=[COLORS[m] for m in METHODS])
    for i, method in enumerate(METHODS):
        ax.annotate(f"{means[i]:.3f}\n{summary[method]['seconds_mean']:.0f} s", (i, means[i] + spreads[i]),
                    xytext=(0, 4), textcoords="offset points", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(range(len(METHODS)), [labels(settings["trainable_from"])[m] for m in METHODS], fontsize=9)
    ax.set(ylim=(0, 1), ylabel="test accuracy, digits 5-9",
           title=f"Backbone pretrained on digits 0-4, transferred to 5-9 from {5 * settings['per_class']} labels "
                 f"(mean of {len(result['runs'])} seeds, bars: range)")
    ax.axhline(0.2, color="gray", lw=0.8, ls=":", zorder=3, label="chance (5 classes)")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    cio.save_figure(figure, path, dpi=110)


def _relative(path):
    """``path`` relative to the repository root where it lies inside it (as the results record it)."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--per-class", type=int, default=20, help="labelled training images per new class")
    parser.add_argument("--pretrain", type=int, default=5000, help="images rendered for pretraining (half are 0-4)")
    parser.add_argument("--pretrain-epochs", type=int, default=8)
    parser.add_argument("--test", type=int, default=2000, help="test images rendered (half are 5-9)")
    parser.add_argument("--head-epochs", type=int, default=50)
    parser.add_argument("--tune-epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--learning-rate", type=float, default=3e-2, help="the head's; fine-tuning uses a tenth")
    parser.add_argument("--scratch-learning-rate", type=float, default=1e-2,
                        help="from scratch, for head + tune epochs")
    parser.add_argument("--trainable-from", default=None,
                        help="first backbone layer that fine-tuning trains (default: all of them; "
                             "block2_bn1: the top two stages, block3_bn1: the top one)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/transfer.json")
    parser.add_argument("--figure", type=Path, default=ROOT / "docs/assets/transfer.png")
    parser.add_argument("--replot", action="store_true", help="only redraw the figure from --out")
    args = parser.parse_args(argv)
    if args.replot:
        plot(json.loads(args.out.read_text(encoding="utf-8")), args.figure)
        print(f"wrote {args.figure}")
        return

    start = time.perf_counter()
    print("pretraining the backbone on digits 0-4 ...", flush=True)
    backbone, pool, test, facts = pretrain(args)
    print(f"  {facts['train_images']} images, test accuracy on 0-4 {facts['test_accuracy_0_4']:.3f}, "
          f"{facts['seconds']:.0f} s; backbone cut at {facts['cut_at']}", flush=True)
    per_seed = {}
    for seed in args.seeds:
        print(f"seed {seed}: transfer to digits 5-9 from {5 * args.per_class} labels ...", flush=True)
        per_seed[seed] = run_seed(backbone, pool, test, args, seed)
        for method in METHODS:
            r = per_seed[seed][method]
            drift = f", BN drift {r['bn_drift']:.3f}" if "bn_drift" in r else ""
            print(f"  {method:30s} accuracy {r['accuracy']:.3f}, {r['seconds']:5.1f} s{drift}", flush=True)
    summary = summarize(per_seed)
    result = {
        "cpu": runtime.cpu_name(), "backend": keras.backend.backend(), "keras": keras.__version__,
        "command": " ".join(["python benchmarks/transfer.py", *(argv if argv is not None else sys.argv[1:])]),
        "settings": {key: (_relative(value) if isinstance(value, Path) else value) for key, value in vars(args).items()
                     if key != "replot"},
        "pretrain": facts, "target_test_images": len(test), "summary": summary,
        "runs": {str(seed): {m: {k: round(v, 4) for k, v in r.items()} for m, r in res.items()}
                 for seed, res in per_seed.items()},
        "total_seconds": round(time.perf_counter() - start, 1),
    }
    cio.write_json(args.out, result)
    plot(result, args.figure)
    print(f"wrote {args.out} and {args.figure} ({result['total_seconds']:.0f} s in all)")


if __name__ == "__main__":
    main()
