"""Do the heatmaps point at the digit? The pointing game on held-out cluttered digits.

    .venv/bin/python benchmarks/visualization_quality.py               # ~5 min on 2 cores
    .venv/bin/python benchmarks/visualization_quality.py --epochs 3    # faster, lower figures

Trains the xception recipe's DEMO configuration (the mini Xception, 64x64x1 canvas) on
cluttered digits with cookbook.train.train_recipe, then plays the pointing game
(Zhang et al. 2016: a hit when the map's maximum lies inside the digit's box; accuracy
averaged over classes) on the test split, whose digits come from handwriting the
model never saw. Grad-CAM and Grad-CAM++ are scored at each stage output, saliency
and SmoothGrad on the input, occlusion on the first ``--occlusion`` test images.
Baselines: a uniformly random point (the mean box area fraction) and the image
centre (Zhang et al.'s centre baseline). Writes benchmarks/results/visualization_quality.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from cookbook import io, visualize  # noqa: E402
from cookbook.train import train_recipe  # noqa: E402

RECIPE = "xception"
RESULTS = ROOT / "benchmarks" / "results" / "visualization_quality.json"
LAYERS = ("block1_out", "block2_out", "block3_out")


def baselines(boxes, labels, size):
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / float(size * size)
    centre = np.zeros((len(boxes), size, size), "float32")
    centre[:, size // 2, size // 2] = 1.0
    return {
        "random point (expected)": float(np.mean([area[labels == c].mean() for c in np.unique(labels)])),
        "centre point": visualize.pointing_game(centre, boxes, labels=labels),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="default: the DEMO's")
    parser.add_argument("--occlusion", type=int, default=200, help="test images scored by occlusion")
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args(argv)

    start = time.perf_counter()
    load_before = os.getloadavg()
    result = train_recipe(RECIPE, epochs=args.epochs, verbose=0)
    train_s = time.perf_counter() - start
    model, test = result.model, result.data.test
    x, y, boxes = test.x, np.asarray(test.y), np.asarray(test.boxes)
    size = x.shape[1]
    accuracy = result.metrics["test_accuracy"]
    scores = {"model": f"{RECIPE} DEMO ({model.name}), test accuracy {accuracy:.3f}", "test_accuracy": accuracy,
              "test_images": len(x)}
    rows = {}
    timing = {}
    for layer in LAYERS:
        t = time.perf_counter()
        rows[f"Grad-CAM {layer}"] = visualize.pointing_game(visualize.grad_cam(model, x, layer), boxes, labels=y)
        timing[f"Grad-CAM {layer}"] = time.perf_counter() - t
        t = time.perf_counter()
        rows[f"Grad-CAM++ {layer}"] = visualize.pointing_game(visualize.grad_cam_plus_plus(model, x, layer),
                                                              boxes, labels=y)
        timing[f"Grad-CAM++ {layer}"] = time.perf_counter() - t
    for name, fn in (("saliency", visualize.saliency), ("SmoothGrad (25 samples)", visualize.smoothgrad)):
        t = time.perf_counter()
        rows[name] = visualize.pointing_game(fn(model, x), boxes, labels=y)
        timing[name] = time.perf_counter() - t
    n = min(args.occlusion, len(x))
    t = time.perf_counter()
    occ = visualize.occlusion(model, x[:n], patch=12, stride=4)
    rows[f"occlusion 12px/4 (first {n})"] = visualize.pointing_game(occ, boxes[:n], labels=y[:n])
    timing[f"occlusion 12px/4 (first {n})"] = time.perf_counter() - t
    rows.update(baselines(boxes, y, size))
    scores.update(pointing_game=rows, seconds=timing, train_seconds=train_s, epochs=result.metrics.get("epochs"),
                  backend=keras.backend.backend(), load_before=load_before, load_after=os.getloadavg())
    print(scores["model"])
    print(f"{'method':42} {'pointing game':>13} {'seconds':>8}")
    for name, value in rows.items():
        print(f"{name:42} {value:13.3f} {timing.get(name, float('nan')):8.1f}")
    io.write_json(args.output, scores)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
