"""Train-step and inference throughput of each twin recipe against its keras.applications model.

For every builder that declares a keras.applications twin, the script builds both models
at the same input size, copies the keras.applications weights into the recipe's model
(the recipe contract says they line up), and times them side by side: one warm-up call
of each, then ``--repeats`` rounds that alternate between the two models, so that both
see the same machine load. It reports the median images per second of a training step
(``train_on_batch`` with SGD) and of inference (``predict_on_batch``), and the ratio
recipe / keras.applications, which should be close to 1.00: the graphs are the same.

    python benchmarks/bench_twins.py                       # all twins, 128 px, batch 8
    python benchmarks/bench_twins.py --names residual --size 224 --batch 16
    KERAS_BACKEND=jax python benchmarks/bench_twins.py --output -

The Markdown table goes to docs/assets/benchmarks/twins.md (included by
docs/performance.md) unless ``--output`` says otherwise (``-`` prints it).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import keras
import numpy as np

from cookbook import io, registry

# The smallest input keras.applications accepts for some twins.
MIN_SIZE = {"InceptionV3": 75, "Xception": 71}


def twin_pairs(names=None):
    """(recipe, builder, twin class name) for every builder with a twin."""
    recipes = [registry.get(name) for name in names] if names else registry.all_recipes()
    return [(recipe, builder, recipe.twin(builder)) for recipe in recipes for builder in recipe.builders
            if recipe.twin(builder)]


def _compiled(model):
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-4),
                  loss=keras.losses.SparseCategoricalCrossentropy())
    return model


def _seconds(call, steps):
    start = time.perf_counter()
    for _ in range(steps):
        call()
    return (time.perf_counter() - start) / steps


def bench_pair(recipe, builder, twin, size, batch, steps, repeats):
    """Images per second of the recipe's model and of its twin, for training and inference."""
    shape = (size, size, 3)
    theirs = getattr(keras.applications, twin)(weights=None, input_shape=shape)
    ours = recipe.builder(builder)(input_shape=shape)
    if ours.count_params() != theirs.count_params():
        raise AssertionError(f"{recipe.name}.{builder}: {ours.count_params():,} parameters, "
                             f"keras.applications.{twin} has {theirs.count_params():,}")
    ours.set_weights(theirs.get_weights())
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(batch, *shape)).astype("float32")
    y = rng.integers(0, int(ours.output_shape[-1]), size=(batch,))
    models = {"recipe": _compiled(ours), "keras": _compiled(theirs)}
    timings = {(who, what): [] for who in models for what in ("train", "infer")}
    for model in models.values():  # warm-up: tracing and compilation
        model.train_on_batch(x, y)
        model.predict_on_batch(x)
    for _ in range(repeats):
        for who, model in models.items():
            timings[(who, "train")].append(_seconds(lambda m=model: m.train_on_batch(x, y), steps))
            timings[(who, "infer")].append(_seconds(lambda m=model: m.predict_on_batch(x), steps))
    result = {key: batch / statistics.median(values) for key, values in timings.items()}
    result["params"] = ours.count_params()
    del models, ours, theirs
    keras.backend.clear_session()
    return result


def _device():
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return "GPU: " + tf.config.experimental.get_device_details(gpus[0]).get("device_name", "?")
    elif backend == "jax":
        import jax

        if jax.default_backend() != "cpu":
            return "GPU: " + jax.devices()[0].device_kind
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"CPU: {cpu}, {os.cpu_count()} cores"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--names", nargs="*", help="recipes (default: every recipe with a twin)")
    parser.add_argument("--size", type=int, default=128, help="input height and width (default 128)")
    parser.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    parser.add_argument("--steps", type=int, default=2, help="timed calls per repeat (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--output", default=str(ROOT / "docs" / "assets" / "benchmarks" / "twins.md"),
                        help="Markdown file to write, or - to print")
    args = parser.parse_args(argv)
    for name in ("size", "batch", "steps", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")

    pairs = twin_pairs(args.names)
    if not pairs:
        parser.error("no recipe with a keras.applications twin among --names")
    rows = [
        ("| recipe builder | keras.applications | parameters | train img/s recipe | train img/s keras "
         "| ratio | inference img/s recipe | inference img/s keras | ratio |"),
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    started = time.perf_counter()
    command = "python benchmarks/bench_twins.py " + " ".join(argv if argv is not None else sys.argv[1:])
    for i, (recipe, builder, twin) in enumerate(pairs, 1):
        size = max(args.size, MIN_SIZE.get(twin, 32))
        print(f"[{i}/{len(pairs)}] {recipe.name}.{builder} vs {twin} at {size} px ...", file=sys.stderr, flush=True)
        r = bench_pair(recipe, builder, twin, size, args.batch, args.steps, args.repeats)
        rows.append(
            f"| `{recipe.name}.{builder}` | `{twin}` | {r['params']:,} "
            f"| {r[('recipe', 'train')]:.1f} | {r[('keras', 'train')]:.1f} "
            f"| {r[('recipe', 'train')] / r[('keras', 'train')]:.2f} "
            f"| {r[('recipe', 'infer')]:.1f} | {r[('keras', 'infer')]:.1f} "
            f"| {r[('recipe', 'infer')] / r[('keras', 'infer')]:.2f} |"
        )
        print("  " + rows[-1], file=sys.stderr, flush=True)
        # Written after every pair, so an interrupted run still leaves a valid (partial) table.
        _write(args.output, _report(args, rows, started, command, done=i, total=len(pairs)))
    return 0


def _report(args, rows, started, command, done, total):
    minutes = (time.perf_counter() - started) / 60
    partial = f" **Partial run: {done} of {total} pairs.**" if done < total else ""
    return (
        f"Measured on {_device()}, Keras {keras.__version__}, backend `{keras.backend.backend()}`: "
        f"input {args.size}×{args.size}×3 (at least the twin's minimum), batch {args.batch}, median of "
        f"{args.repeats} alternating rounds of {args.steps} calls, 1,000 classes, {minutes:.1f} min in all. "
        f"Command: `{command.strip()}`.{partial}\n\n" + "\n".join(rows) + "\n"
    )


def _write(output, text):
    if output == "-":
        print(text)
    else:
        io.write_text(output, text)
        print(f"wrote {output}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
