"""Cost of one filter-visualization ascent step per image, by batch size (TensorFlow).

The step is keras-io's: the gradient of mean(activation[:, 2:-2, 2:-2, k]) of ResNet50V2's
``conv3_block4_out`` at 180x180 (weights=None) with respect to the image, normalized per
image. It shows whether batching filters can pay on a CPU: when the time per image-step
falls with the batch, it can. Run it with oneDNN on and off to compare:

    TF_ENABLE_ONEDNN_OPTS=0 .venv/bin/python benchmarks/filter_step_batches.py 1 8 64
    TF_ENABLE_ONEDNN_OPTS=1 .venv/bin/python benchmarks/filter_step_batches.py 1 8 64
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def ascent_step(features):
    @tf.function(autograph=False)
    def step(images, onehot):
        with tf.GradientTape() as tape:
            tape.watch(images)
            act = features(images, training=False)[:, 2:-2, 2:-2, :]
            loss = tf.reduce_sum(tf.reduce_mean(act, axis=(1, 2)) * onehot)
        grads = tape.gradient(loss, images)
        norms = tf.norm(tf.reshape(grads, (tf.shape(grads)[0], -1)), axis=1)
        return images + 10.0 * grads / tf.maximum(norms, 1e-12)[:, None, None, None]

    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("batches", nargs="+", type=int, help="batch sizes to time")
    parser.add_argument("--images", type=int, default=64, help="image-steps per timing (default 64)")
    args = parser.parse_args(argv)
    if any(b < 1 for b in args.batches) or args.images < 1:
        parser.error("batch sizes and --images must be positive")
    model = keras.applications.ResNet50V2(weights=None, include_top=False, input_shape=(180, 180, 3))
    features = keras.Model(model.inputs, model.get_layer("conv3_block4_out").output)
    channels = features.output.shape[-1]
    step = ascent_step(features)
    rng = np.random.default_rng(0)
    print(f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', '(unset)')}")
    for batch in args.batches:
        images = tf.constant(rng.uniform(-0.1, 0.1, size=(batch, 180, 180, 3)).astype("float32"))
        onehot = tf.constant(np.eye(channels, dtype="float32")[np.arange(batch) % channels])
        step(images, onehot).numpy()  # trace and warm up
        repeats = max(3, args.images // batch)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(repeats):
            images = step(images, onehot)
        images.numpy()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"batch {batch:3d}: {1000 * wall / repeats / batch:6.1f} ms per image-step "
              f"(CPU {1000 * cpu / repeats / batch:6.1f} ms, {cpu / wall:.2f} cores busy)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
