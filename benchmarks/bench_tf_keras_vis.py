"""cookbook.visualize against tf-keras-vis, the Keras attribution library, side by side.

    .venv/bin/pip install --no-deps --target build/tf-keras-vis tf-keras-vis==0.8.7 deprecated imageio
    PYTHONPATH=build/tf-keras-vis .venv/bin/python benchmarks/bench_tf_keras_vis.py [--images 32] [--repeats 10]

tf-keras-vis goes into its own folder, not the venv: its wheel installs a top-level
``tests`` package that would shadow this repository's tests.

For each method both libraries have (Grad-CAM, Grad-CAM++, Score-CAM, saliency and
SmoothGrad), on the same model and the same held-out images, it measures:

- the median wall time of one call on a batch of ``--images`` images, after one call
  that compiles or warms up (tf-keras-vis builds its modified model copy once, outside
  the timing, as its users do);
- how far apart the maps are. Each map is taken before resizing, divided by its own
  maximum (tf-keras-vis's Grad-CAM++ carries a factor exp(score) per image, which that
  cancels), and compared cell by cell: the largest absolute difference over all images,
  and the mean Spearman rank correlation per image.

Both explain the logit of the predicted class: tf-keras-vis through its ReplaceToLinear
model modifier, ours by definition. The model is the trained mini Xception demo that
benchmarks/explanations.py keeps in build/explanations/ (trained there when missing);
the CAMs come from the layer its page uses. Grad-CAM and saliency are defined alike in
both, so their maps should agree to float precision. Three definitions differ, so
those maps are not expected to agree: tf-keras-vis's Grad-CAM++ also divides each
channel's alphas by their sum over the map, a step that is not in the paper's equation
(ours is the paper's, as pytorch-grad-cam's is); its Score-CAM weighs each channel by
the class probability of the masked image, where ours (the paper's Algorithm 1)
softmaxes the masked images' logits over the channels; and its SmoothGrad averages
|gradient| over the noisy copies, where ours takes |average gradient| (Smilkov et al.),
with other noise. Writes benchmarks/results/bench_tf_keras_vis.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import explanations  # noqa: E402  (sets up the backend as the command line does)
import numpy as np  # noqa: E402

from cookbook import io as cio  # noqa: E402
from cookbook import registry, runtime, visualize  # noqa: E402
from cookbook.render import views  # noqa: E402

SMOOTH_SAMPLES, SMOOTH_NOISE = 20, 0.2  # tf-keras-vis's defaults; ours take the same counts
# Score-CAM runs one forward pass per channel and image (1,024 here): both libraries default to
# batches of 32, and both also run with batches of 256 masked images.
BIG_BATCH = "Score-CAM, batches of 256"


def _theirs(model, layer):
    """tf-keras-vis's five methods as ``(images, classes) -> raw maps``."""
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.scorecam import Scorecam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    linear = ReplaceToLinear()
    gradcam, gradcam_pp = Gradcam(model, linear), GradcamPlusPlus(model, linear)
    scorecam, saliency = Scorecam(model, linear), Saliency(model, linear)
    # Without seek_penultimate_conv_layer=False it would move from an Add layer (block2_out) to a conv before it.
    cam = {"penultimate_layer": layer, "seek_penultimate_conv_layer": False, "expand_cam": False,
           "normalize_cam": False}
    return {
        "Grad-CAM": lambda x, c: gradcam(CategoricalScore(list(c)), x, **cam),
        "Grad-CAM++": lambda x, c: gradcam_pp(CategoricalScore(list(c)), x, **cam),
        "Score-CAM": lambda x, c: scorecam(CategoricalScore(list(c)), x, **cam),
        BIG_BATCH: lambda x, c: scorecam(CategoricalScore(list(c)), x, batch_size=256, **cam),
        "saliency": lambda x, c: saliency(CategoricalScore(list(c)), x, normalize_map=False),
        "SmoothGrad": lambda x, c: saliency(CategoricalScore(list(c)), x, smooth_samples=SMOOTH_SAMPLES,
                                            smooth_noise=SMOOTH_NOISE, normalize_map=False),
    }


def _ours(model, layer):
    """cookbook.visualize's same five methods, with the same output: raw maps, not resized."""
    cam = {"layer": layer, "resize": False, "normalize": False}
    return {
        "Grad-CAM": lambda x, c: visualize.grad_cam(model, x, class_index=c, **cam),
        "Grad-CAM++": lambda x, c: visualize.grad_cam_plus_plus(model, x, class_index=c, **cam),
        "Score-CAM": lambda x, c: visualize.score_cam(model, x, class_index=c, **cam),
        BIG_BATCH: lambda x, c: visualize.score_cam(model, x, class_index=c, batch_size=256, **cam),
        "saliency": lambda x, c: visualize.saliency(model, x, class_index=c, normalize=False),
        "SmoothGrad": lambda x, c: visualize.smoothgrad(model, x, class_index=c, samples=SMOOTH_SAMPLES,
                                                        noise=SMOOTH_NOISE, normalize=False),
    }


def median_seconds(function, x, classes, repeats):
    """The median wall time of ``function(x, classes)``, after one warm-up call; and its maps."""
    maps = np.asarray(function(x, classes), dtype="float64")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(x, classes)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), maps


def agreement(ours, theirs):
    """(max |difference|, mean Spearman correlation) of the maps, each divided by its maximum."""
    from scipy.stats import spearmanr

    def scaled(maps):
        flat = maps.reshape(len(maps), -1)
        return flat / np.maximum(flat.max(axis=1, keepdims=True), 1e-12)

    a, b = scaled(ours), scaled(theirs)
    correlations = [spearmanr(u, v).statistic for u, v in zip(a, b) if np.ptp(u) > 0 and np.ptp(v) > 0]
    return float(np.abs(a - b).max()), float(np.mean(correlations)) if correlations else float("nan")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32, help="images per call (default 32)")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per method (default 10)")
    parser.add_argument("--cache", type=Path, default=ROOT / "build/explanations", help="trained models")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/bench_tf_keras_vis.json")
    args = parser.parse_args(argv)
    try:
        import tf_keras_vis
    except ImportError:
        sys.exit("bench_tf_keras_vis: tf-keras-vis is not importable: see this file's docstring")

    model, (x, _, _) = explanations.trained_model("xception", args.cache)
    layer, _ = views.gradcam_layers(registry.get("xception"), model)
    x = x[: args.images]
    classes = model.predict(x, verbose=0).argmax(-1)
    ours, theirs = _ours(model, layer), _theirs(model, layer)
    rows = []
    for method in ours:
        ours_seconds, ours_maps = median_seconds(ours[method], x, classes, args.repeats)
        theirs_seconds, theirs_maps = median_seconds(theirs[method], x, classes, args.repeats)
        difference, correlation = agreement(ours_maps, theirs_maps)
        rows.append({"method": method, "cookbook_seconds": round(ours_seconds, 4),
                     "tf_keras_vis_seconds": round(theirs_seconds, 4),
                     "speedup": round(theirs_seconds / ours_seconds, 1),
                     "max_abs_difference": difference, "spearman": round(correlation, 4)})
        print(f"{method:26s} cookbook {ours_seconds:8.3f} s  tf-keras-vis {theirs_seconds:8.3f} s  "
              f"{rows[-1]['speedup']:5.1f}x  max |diff| {difference:.2e}  Spearman {correlation:.3f}", flush=True)
    result = {"model": "xception demo (trained)", "layer": layer, "images": len(x), "repeats": args.repeats,
              "cpu": runtime.cpu_name(), "machine": platform.machine(),
              "versions": {**runtime.versions("tensorflow"), "tf_keras_vis": tf_keras_vis.__version__},
              "rows": rows}
    cio.write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
