"""How long a demo waits for its first training step: Keras as is, the optimizer built first, Grappler off.

    .venv/bin/python benchmarks/first_step.py xception squeezenet inception_v1

Keras's TensorFlow trainer builds the optimizer's slot variables while it traces the
training step; a tf.function that creates variables is traced twice, so the first
step of a deep model pays for two traces. ``cookbook.train.fit`` builds the optimizer
before fitting, and the CLI turns off Grappler's graph rewrites
(``cookbook.runtime.skip_grappler``). This script fits each recipe's demo model for 10
steps of 64 random images three times: as Keras leaves it, with
``model.optimizer.build`` first, and with Grappler off as well. It reports the time
from ``fit`` to the end of the first step, and the median of the other steps
(TensorFlow backend, no XLA, as ``cookbook train`` runs on a CPU).
"""

import argparse
import statistics
import time

from cookbook import runtime

runtime.prefer_onednn()
runtime.quiet_logs()

import keras
import numpy as np
import tensorflow as tf

from cookbook import io, registry

STEPS, BATCH = 10, 64


class _StepTimes(keras.callbacks.Callback):
    def __init__(self, start):
        super().__init__()
        self.ends = [start]

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())


def measure(name, prebuild, grappler=True):
    """(seconds from fit to the end of the first step, median seconds of the other steps)."""
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": not grappler})
    model = registry.get(name).build_demo()
    outputs = len(model.outputs)
    classes = int(model.outputs[0].shape[-1])
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss=["categorical_crossentropy"] * outputs,
                  loss_weights=[1.0] + [0.3] * (outputs - 1), jit_compile=False)
    if prebuild:
        model.optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(0)
    x = rng.random((STEPS * BATCH, *model.input_shape[1:]), dtype="float32")
    y = keras.utils.to_categorical(rng.integers(0, classes, STEPS * BATCH), classes)
    timer = _StepTimes(time.perf_counter())
    model.fit(x, tuple([y] * outputs) if outputs > 1 else y, batch_size=BATCH, epochs=1, verbose=0,
              callbacks=[timer], shuffle=False)
    steps = np.diff(timer.ends)
    return float(steps[0]), float(statistics.median(steps[1:]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("names", nargs="+", help="recipe names (classifiers)")
    parser.add_argument("--json", default="benchmarks/results/first_step.json", help="where to write the results")
    args = parser.parse_args()
    print(f"CPU: {runtime.cpu_name()}; {STEPS} steps of {BATCH} images, TensorFlow backend, no XLA")
    print(f"{'':<18}{'first step':>52}{'later steps':>40}")
    print(f"{'recipe':<18}{'Keras as is':>16}{'optimizer built':>18}{'+ Grappler off':>18}"
          f"{'Grappler on':>20}{'Grappler off':>20}")
    results = []
    for name in args.names:
        plain, _ = measure(name, prebuild=False)
        built, step = measure(name, prebuild=True)
        bare, bare_step = measure(name, prebuild=True, grappler=False)
        results.append({"recipe": name, "first_step_s": round(plain, 2), "first_step_prebuilt_s": round(built, 2),
                        "first_step_prebuilt_no_grappler_s": round(bare, 2), "median_step_s": round(step, 3),
                        "median_step_no_grappler_s": round(bare_step, 3)})
        print(f"{name:<18}{plain:>15.1f}s{built:>17.1f}s{bare:>17.1f}s{step:>19.3f}s{bare_step:>19.3f}s", flush=True)
    io.write_json(args.json, {"cpu": runtime.cpu_name(), "versions": runtime.versions(keras.backend.backend()), "steps": STEPS,
                              "batch_size": BATCH, "results": results})


if __name__ == "__main__":
    main()
