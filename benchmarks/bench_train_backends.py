"""Step time of the xception demo on each Keras backend, side by side.

    .venv/bin/python benchmarks/bench_train_backends.py             # TensorFlow and JAX, 30 timed steps
    .venv/bin/python benchmarks/bench_train_backends.py --backends tensorflow,jax,torch
    .venv/bin/python benchmarks/bench_train_backends.py --no-jit    # the old default: no XLA
    .venv/bin/python benchmarks/bench_train_backends.py --quick     # 2 timed steps: a smoke run

The model is the xception recipe's demo build (``registry.get("xception").build_demo()``),
compiled as ``cookbook.train.fit`` compiles it (AdamW, categorical cross-entropy,
accuracy, ``jit_compile="auto"`` unless --no-jit), on one batch of 64 built-in
cluttered digits at the model's input size. Each backend runs in its own process;
the first steps (tracing and compilation) are reported apart and left out of the
median of the timed steps.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from cookbook import runtime


def measure(steps, warmup, batch_size, jit_compile):
    """In this process's backend: (seconds of the warm-up steps, seconds of each timed step)."""
    runtime.quiet_logs()
    runtime.prefer_onednn()
    import keras

    from cookbook import data, registry

    model = registry.get("xception").build_demo()
    height, _, channels = model.input_shape[1:]
    digits = data.cluttered_digits(batch_size, 1, 1, size=height, rgb=channels == 3, seed=0).train
    x = digits.x[:batch_size]
    y = keras.utils.to_categorical(digits.y[:batch_size], model.output_shape[-1])
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=1e-4),
                  loss=keras.losses.CategoricalCrossentropy(), metrics=[keras.metrics.CategoricalAccuracy()],
                  jit_compile=jit_compile)
    seconds = []
    for _ in range(warmup + steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)  # returns the loss as a host number: the step has finished
        seconds.append(time.perf_counter() - start)
    return {
        "backend": keras.backend.backend(),
        "jit_compile": model.jit_compile,
        "device": (runtime.gpu_names(keras.backend.backend()) or [f"CPU: {runtime.cpu_name()}"])[0],
        "versions": runtime.versions(keras.backend.backend()),
        "warmup_s": sum(seconds[:warmup]),
        "steps_s": seconds[warmup:],
    }


def run_backend(backend, args):
    argv = [sys.executable, __file__, "--child", "--steps", str(args.steps), "--warmup", str(args.warmup),
            "--batch-size", str(args.batch_size)] + (["--no-jit"] if args.no_jit else [])
    done = subprocess.run(argv, capture_output=True, text=True, check=False, env={**os.environ, "KERAS_BACKEND": backend})
    if done.returncode:
        return {"backend": backend, "error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="tensorflow,jax", help="comma-separated (default: tensorflow,jax)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed first steps (default 5)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--no-jit", action="store_true", help="jit_compile=False, as fit compiled before")
    parser.add_argument("--quick", action="store_true", help="2 timed steps after 1 warm-up step")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.warmup = 2, 1
    jit_compile = False if args.no_jit else "auto"
    if args.child:
        print(json.dumps(measure(args.steps, args.warmup, args.batch_size, jit_compile)))
        return

    print(f"CPU: {runtime.cpu_name()}; xception demo, batch {args.batch_size}, jit_compile={jit_compile!r}, "
          f"median of {args.steps} steps after {args.warmup} warm-up steps")
    print(f"{'backend':<12}{'XLA':<7}{'median step':>12}{'min':>10}{'max':>10}{'warm-up':>10}  device, versions")
    for backend in args.backends.split(","):
        result = run_backend(backend, args)
        if "error" in result:
            print(f"{backend:<12}failed: {result['error']}")
            continue
        steps = [1000 * s for s in result["steps_s"]]
        versions = ", ".join(f"{k} {v}" for k, v in result["versions"].items() if k != "python")
        print(f"{backend:<12}{result['jit_compile']!s:<7}{statistics.median(steps):>10.1f}ms{min(steps):>8.1f}ms"
              f"{max(steps):>8.1f}ms{result['warmup_s']:>9.1f}s  {result['device']}; {versions}")


if __name__ == "__main__":
    main()
