"""Benchmark cookbook.visualize against the keras-io loops, side by side in one run.

    .venv/bin/python benchmarks/bench_visualize.py            # full run, ~10-15 min on 2 cores
    .venv/bin/python benchmarks/bench_visualize.py --quick    # smaller counts, a smoke run

It prints a table and writes benchmarks/results/bench_visualize.json. The side-by-side
part runs on the TensorFlow backend (the keras-io references use tf.GradientTape and
tf.function); the JAX timings of cookbook.visualize come from a child process with
KERAS_BACKEND=jax, on the same models, steps and sizes.

Cases:
1. filter visualization: keras-io's loop as published (one filter at a time, 30 steps of
   ``img += 10 * l2_normalize(grad)`` on mean(activation[:, 2:-2, 2:-2, k]), start gray +
   small noise, a tf.function that retraces per filter) against
   ``filter_images(method="plain")``: ResNet50V2 (weights=None) ``conv3_block4_out`` at
   180x180, 64 filters, the same model object and start images; and the residual
   recipe's demo build at 64x64.
2. Grad-CAM on 32 images: keras-io's ``make_gradcam_heatmap`` (eager, one image at a
   time, a GradientTape over a sub-model built per call) against ``grad_cam``; the
   residual demo build at 64x64 and Xception at 299x299 (random init).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cookbook.runtime import prefer_onednn  # noqa: E402

# As the command line does. oneDNN changes how batching pays (docs/performance.md); both
# sides of every comparison run under the same setting; TF_ENABLE_ONEDNN_OPTS=0 turns it off.
prefer_onednn()

import keras  # noqa: E402
import numpy as np  # noqa: E402

from cookbook import io, visualize  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "bench_visualize.json"
PEAK_NOTE = "cores x GHz x 32 FP32 FLOPs/cycle (AVX2: 2 FMA pipes x 8 lanes x 2)"


# --- machine -------------------------------------------------------------------------


def cpu_peak_gflops():
    """Peak FP32 GFLOP/s from lscpu: cores x GHz x FLOPs/cycle (AVX2 or AVX-512 FMA)."""
    info = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    cores = int(fields.get("CPU(s)", os.cpu_count() or 1))
    ghz = None
    for key in ("CPU max MHz", "CPU MHz"):
        if key in fields:
            ghz = float(fields[key]) / 1000
            break
    if ghz is None:  # BogoMIPS is twice the clock on x86
        ghz = float(fields.get("BogoMIPS", 4000)) / 2000
    flags = fields.get("Flags", "").split()
    per_cycle = 64 if "avx512f" in flags else 32 if ("avx2" in flags and "fma" in flags) else 8
    return {"cores": cores, "ghz": round(ghz, 3), "flops_per_cycle": per_cycle,
            "peak_gflops": round(cores * ghz * per_cycle, 1), "model": fields.get("Model name", "")}


def conv_macs(model, layer_name, size):
    """Multiply-accumulates of the convs up to ``layer_name`` for one image of ``size``."""
    sub = keras.Model(model.inputs, model.get_layer(layer_name).output)
    convs = [l for l in sub.layers if isinstance(l, keras.layers.Conv2D)]
    probe = keras.Model(sub.inputs, [l.output for l in convs])
    outs = probe(np.zeros((1, *size, model.inputs[0].shape[-1]), "float32"))
    macs = 0
    for layer, out in zip(convs, outs):
        kh, kw, cin, cout = layer.kernel.shape
        macs += int(out.shape[1]) * int(out.shape[2]) * kh * kw * cin * cout // layer.groups
    return macs


def load():
    return [round(v, 2) for v in os.getloadavg()]


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


# --- keras-io references, written from the published description ----------------------


def keras_io_filters(model, layer_name, filters, init, steps=30, lr=10.0):
    """keras-io "Visualizing what convnets learn": one filter at a time, retracing per filter."""
    import tensorflow as tf

    feature_extractor = keras.Model(inputs=model.inputs, outputs=model.get_layer(layer_name).output)

    def compute_loss(input_image, filter_index):
        activation = feature_extractor(input_image)
        filter_activation = activation[:, 2:-2, 2:-2, filter_index]
        return tf.reduce_mean(filter_activation)

    @tf.function
    def gradient_ascent_step(img, filter_index, learning_rate):
        with tf.GradientTape() as tape:
            tape.watch(img)
            loss = compute_loss(img, filter_index)
        grads = tape.gradient(loss, img)
        grads = tf.math.l2_normalize(grads)
        img += learning_rate * grads
        return loss, img

    images = []
    for k, filter_index in enumerate(filters):
        img = tf.convert_to_tensor(init[k:k + 1])
        for _ in range(steps):
            loss, img = gradient_ascent_step(img, int(filter_index), lr)
        images.append(img.numpy()[0])
    return np.stack(images)


def keras_io_gradcam(model, images, last_conv_layer_name):
    """keras-io "Grad-CAM class activation visualization": eager, one image per call."""
    import tensorflow as tf

    def make_gradcam_heatmap(img_array, model, last_conv_layer_name, pred_index=None):
        grad_model = keras.models.Model(
            model.inputs, [model.get_layer(last_conv_layer_name).output, model.output]
        )
        with tf.GradientTape() as tape:
            last_conv_layer_output, preds = grad_model(img_array)
            if pred_index is None:
                pred_index = tf.argmax(preds[0])
            class_channel = preds[:, pred_index]
        grads = tape.gradient(class_channel, last_conv_layer_output)
        pooled_grads = tf.reduce_mean(grads, axis=(0, 1, 2))
        last_conv_layer_output = last_conv_layer_output[0]
        heatmap = last_conv_layer_output @ pooled_grads[..., tf.newaxis]
        heatmap = tf.squeeze(heatmap)
        heatmap = tf.maximum(heatmap, 0) / tf.math.reduce_max(heatmap)
        return heatmap.numpy()

    return np.stack([make_gradcam_heatmap(images[i:i + 1], model, last_conv_layer_name)
                     for i in range(len(images))])


def final_activation(model, layer_name, images, filters):
    """The same measure for both: mean(activation[:, 2:-2, 2:-2, k]) on the final image."""
    sub = keras.Model(model.inputs, model.get_layer(layer_name).output)
    act = keras.ops.convert_to_numpy(sub(images, training=False))[:, 2:-2, 2:-2, :]
    return act.mean(axis=(1, 2))[np.arange(len(filters)), filters]


# --- cases -----------------------------------------------------------------------------


def filter_case(name, model, layer_name, size, n_filters, value_range, reference=True, peak=None, warm=True):
    channels = model.inputs[0].shape[-1]
    rng = np.random.default_rng(0)
    # keras-io's start: (uniform - 0.5) * 0.25, i.e. gray plus small noise.
    low, high = value_range
    init = ((low + high) / 2 + (rng.uniform(size=(n_filters, *size, channels)) - 0.5)
            * 0.125 * (high - low)).astype("float32")
    filters = np.arange(n_filters)
    row = {"case": name, "layer": layer_name, "size": list(size), "filters": n_filters, "steps": 30,
           "batch_size": "auto (filter_images' default)",
           "backend": keras.backend.backend(), "load_before": load()}
    (ours, ours_act), t_ours = timed(visualize.filter_images, model, layer_name, filters, size=tuple(size),
                                     init=init, value_range=value_range, method="plain")
    t_ours_warm = t_ours
    if warm:  # a second call: the compiled step is cached on the model
        (_, _), t_ours_warm = timed(visualize.filter_images, model, layer_name, filters, size=tuple(size),
                                    init=init, value_range=value_range, method="plain")
    ours_final = final_activation(model, layer_name, ours, filters)
    row.update(ours_s=t_ours, ours_warm_s=t_ours_warm, ours_mean_activation=float(ours_final.mean()))
    macs = conv_macs(model, layer_name, size)
    flops = 4.0 * macs * 30 * n_filters  # forward + input-gradient backward, 2 FLOPs per MAC
    row.update(gmacs_per_image_forward=macs / 1e9, ours_gflops_per_s=flops / 1e9 / t_ours_warm)
    if peak:
        row["ours_fraction_of_peak"] = row["ours_gflops_per_s"] / peak
    if reference:
        ref, t_ref = timed(keras_io_filters, model, layer_name, filters, init)
        ref_final = final_activation(model, layer_name, ref, filters)
        row.update(reference_s=t_ref, speedup=t_ref / t_ours, speedup_warm=t_ref / t_ours_warm,
                   reference_mean_activation=float(ref_final.mean()),
                   filters_ours_higher=int((ours_final > ref_final).sum()),
                   max_relative_activation_diff=float(np.abs(ours_final - ref_final).max()
                                                      / np.abs(ref_final).max()),
                   reference_gflops_per_s=flops / 1e9 / t_ref)
    row["load_after"] = load()
    return row


def gradcam_case(name, model, images, layer_name, reference=True, batch_size=32):
    row = {"case": name, "layer": layer_name, "images": len(images), "size": list(images.shape[1:3]),
           "backend": keras.backend.backend(), "load_before": load()}
    kwargs = dict(layer=layer_name, resize=False, batch_size=batch_size)
    classes = keras.ops.convert_to_numpy(model(images[:1], training=False)).shape[-1]
    (ours, classes_ours), t_cold = timed(visualize.grad_cam, model, images, return_classes=True, **kwargs)
    _, t_warm = timed(visualize.grad_cam, model, images, **kwargs)
    row.update(ours_cold_s=t_cold, ours_warm_s=t_warm, classes=classes)
    if reference:
        # keras-io removes the softmax by hand before calling make_gradcam_heatmap.
        head = model.layers[-1]
        saved = head.activation
        head.activation = None
        try:
            ref, t_ref = timed(keras_io_gradcam, model, images, layer_name)
        finally:
            head.activation = saved
        ref = np.nan_to_num(ref, nan=0.0)
        row.update(reference_s=t_ref, speedup_warm=t_ref / t_warm, speedup_cold=t_ref / t_cold,
                   max_abs_diff=float(np.abs(ours - ref).max()))
    row["load_after"] = load()
    return row


CASES = ("filters-big", "filters-small", "gradcam-small", "gradcam-xception")


def run(quick, n_filters=64, cases=CASES, xception_images=32, warm=True):
    from cookbook.recipes import residual, xception

    keras.utils.set_random_seed(0)
    peak = cpu_peak_gflops()
    backend = keras.backend.backend()
    rows = []
    reference = backend == "tensorflow"
    n = 8 if quick else n_filters

    if "filters-big" in cases:
        resnet = keras.applications.ResNet50V2(weights=None, include_top=False)
        rows.append(filter_case("filters ResNet50V2 180px", resnet, "conv3_block4_out", (180, 180), n, (-1.0, 1.0),
                                reference, peak["peak_gflops"], warm))
        print(rows[-1], flush=True)
    small = residual.resnet18(input_shape=(64, 64, 1), classes=10, width=0.25)
    if "filters-small" in cases:
        rows.append(filter_case("filters resnet18-demo 64px", small, "conv3_block2_out", (64, 64), 32, (0.0, 1.0),
                                reference, peak["peak_gflops"], warm))
        print(rows[-1], flush=True)
    rng = np.random.default_rng(1)
    if "gradcam-small" in cases:
        images = rng.uniform(size=(32, 64, 64, 1)).astype("float32")
        rows.append(gradcam_case("grad_cam resnet18-demo 64px", small, images, "conv5_block2_out", reference))
        print(rows[-1], flush=True)
    if "gradcam-xception" in cases and not quick:
        big = xception.xception()
        images = rng.uniform(-1, 1, size=(xception_images, 299, 299, 3)).astype("float32")
        rows.append(gradcam_case(f"grad_cam Xception 299px", big, images, "block14_sepconv2_act", reference,
                                 batch_size=8))
        print(rows[-1], flush=True)
    return {"backend": backend, "cpu": peak, "rows": rows, "gpu": _gpu(),
            "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}


def _gpu():
    try:
        if keras.backend.backend() == "jax":
            import jax

            return [str(d) for d in jax.devices() if d.platform == "gpu"]
        import tensorflow as tf

        return [d.name for d in tf.config.list_physical_devices("GPU")]
    except Exception:  # noqa: BLE001
        return []


def table(results):
    lines = [f"{'case':32} {'backend':10} {'reference s':>11} {'ours s':>8} {'ours warm s':>11} "
             f"{'speedup':>8} {'quality':>28} {'GFLOP/s':>8}"]
    for res in results:
        for row in res["rows"]:
            ref = row.get("reference_s")
            ours = row.get("ours_s", row.get("ours_cold_s"))
            speed = row.get("speedup", row.get("speedup_warm"))
            if "ours_mean_activation" in row:
                quality = f"act {row['ours_mean_activation']:.4g}"
                if "reference_mean_activation" in row:
                    quality += f" vs {row['reference_mean_activation']:.4g}"
            else:
                quality = f"max|diff| {row['max_abs_diff']:.1e}" if "max_abs_diff" in row else "-"
            lines.append(
                f"{row['case']:32} {row['backend']:10} {ref if ref is None else round(ref, 2)!s:>11} "
                f"{ours:8.2f} {row['ours_warm_s']:11.2f} {'-' if speed is None else f'{speed:.1f}x':>8} "
                f"{quality:>28} {row.get('ours_gflops_per_s', float('nan')):8.1f}"
            )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer filters, no Xception")
    parser.add_argument("--no-jax", action="store_true", help="skip the JAX child process")
    parser.add_argument("--filters", type=int, default=64, help="ResNet50V2 filters (default 64)")
    parser.add_argument("--jax-filters", type=int, default=16, help="ResNet50V2 filters in the JAX run")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {CASES}")
    parser.add_argument("--xception-images", type=int, default=32)
    parser.add_argument("--no-warm", action="store_true", help="time each filter run once (cold) only")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--output", default=str(RESULTS), help="where to write the JSON")
    args = parser.parse_args(argv)
    cases = tuple(c.strip() for c in args.cases.split(",") if c.strip())
    unknown = set(cases) - set(CASES)
    if unknown:
        parser.error(f"unknown cases {sorted(unknown)}; choose from {CASES}")
    results = [run(args.quick, args.filters, cases, args.xception_images, not args.no_warm)]
    if args.child:
        print("JSON:" + json.dumps(results[0], default=float))
        return 0
    if not args.no_jax and keras.backend.backend() == "tensorflow":
        env = dict(os.environ, KERAS_BACKEND="jax")
        cmd = [sys.executable, __file__, "--child", "--filters", str(args.jax_filters), "--cases", args.cases,
               "--xception-images", str(args.xception_images)] + (["--no-warm"] if args.no_warm else []) + (
            ["--quick"] if args.quick else [])
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        line = [l for l in out.stdout.splitlines() if l.startswith("JSON:")]
        if line:
            results.append(json.loads(line[-1][5:]))
        else:
            print("JAX run failed:\n" + out.stderr[-3000:], file=sys.stderr)
    cpu = results[0]["cpu"]
    print(f"CPU: {cpu['model']}, {cpu['cores']} cores at {cpu['ghz']} GHz, peak {cpu['peak_gflops']} GFLOP/s "
          f"({PEAK_NOTE}); GPU: {results[0]['gpu'] or 'none'}")
    print(table(results))
    io.write_json(args.output, {"quick": args.quick, "results": results})
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
