"""Which explanation to trust: every map method of cookbook.visualize, scored on trained demos.

For each recipe (default: the mini Xception and VGG-11 demos), the script trains the demo
as the render does (or loads the model a previous run saved), then, on the same held-out
cluttered digits, makes the map of every method for the predicted class and scores it:

* pointing game (the map's peak inside the digit's box; Zhang et al. 2016), with chance,
  the boxes' mean share of the canvas;
* deletion and insertion AUC (Petsiuk et al. 2018): remove (insert) the pixels in the
  map's order and follow the class probability; a faithful map has a low deletion and a
  high insertion AUC;
* average drop and increase in confidence (Chattopadhyay et al. 2018): the model sees
  only the image weighted by the map;
* the cascading randomization check (Adebayo et al. 2018): the rank correlation between
  the map of the trained model and that of a copy whose every layer is re-initialized;
  near 0 means the map depends on what the model learned, near 1 that it mostly shows
  the image;
* the wall time for 32 images: the median of three calls after one that compiles.

It writes ``benchmarks/results/explanations_<backend>.json`` and, with ``--figures``, one
two figures per recipe, ``docs/assets/explanations/<recipe>_cams.png`` and ``_pixels.png``
(every method on the same held-out images). Run it once per backend; the trained models
are kept in ``build/`` so that both backends explain the same weights:

    .venv/bin/python benchmarks/explanations.py --figures
    KERAS_BACKEND=jax .venv/bin/python benchmarks/explanations.py
    .venv/bin/python benchmarks/explanations.py --times-only   # the times again, on an idle machine

About 6 minutes per backend on a 2-core CPU with the defaults (plus the training, once).
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
runtime.import_keras_quietly()

import keras  # noqa: E402
import numpy as np  # noqa: E402

from cookbook import io as cio  # noqa: E402
from cookbook import registry, train, visualize  # noqa: E402
from cookbook.render import figures, views  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def methods(layer):
    """Method name -> a map function ``(model, images, class_index)``; CAMs at ``layer``."""
    def cam(function):
        return lambda model, x, class_index=None: function(model, x, layer=layer, class_index=class_index)

    return {
        "Grad-CAM": cam(visualize.grad_cam),
        "Grad-CAM++": cam(visualize.grad_cam_plus_plus),
        "HiResCAM": cam(visualize.hires_cam),
        "LayerCAM": cam(visualize.layer_cam),
        "Score-CAM": cam(visualize.score_cam),
        "Eigen-CAM": cam(visualize.eigen_cam),
        "Guided Grad-CAM": cam(visualize.guided_grad_cam),
        "saliency": visualize.saliency,
        "SmoothGrad": visualize.smoothgrad,
        "guided backprop": visualize.guided_backprop,
        "integrated gradients": visualize.integrated_gradients,
        "occlusion": visualize.occlusion,
    }


def trained_model(name, cache):
    """The demo model of ``name`` and its held-out split (x, boxes, y), trained once and
    kept in ``cache`` so that the other backend explains the same weights on the same images."""
    path, split = cache / f"{name}.keras", cache / f"{name}_test.npz"
    if path.is_file() and split.is_file():
        print(f"{name}: loading the trained demo from {path}", flush=True)
        with np.load(split) as held_out:
            return keras.saving.load_model(path, safe_mode=True), tuple(held_out[k] for k in ("x", "boxes", "y"))
    print(f"{name}: training the demo", flush=True)
    result = train.train_recipe(name, verbose=0, jit_compile=False)
    print(f"{name}: test accuracy {result.metrics['test_accuracy']:.3f}", flush=True)
    with cio.atomic_path(path) as tmp:
        result.model.save(tmp)
    test = result.data.test
    with cio.atomic_path(split, suffix=".npz") as tmp:
        np.savez(tmp, x=test.x, boxes=test.boxes, y=test.y)
    return result.model, (test.x, test.boxes, test.y)


def seconds(model, function, x, class_index, repeats=3):
    """The median wall time of ``function`` on ``x``, after one call that compiles it."""
    function(model, x, class_index)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(model, x, class_index)
        times.append(time.perf_counter() - start)
    return round(float(np.median(times)), 3)


def score(model, function, x, boxes, labels, randomize, timed):
    """The scores of one method on ``x`` (its maps for the predicted class), and its time."""
    predicted = model.predict(x, batch_size=64, verbose=0).argmax(-1)
    maps = function(model, x, predicted)
    check = visualize.randomization_check(function, model, x[:randomize], class_index=predicted[:randomize])
    return maps, {
        "pointing_game": float(visualize.pointing_game(maps, boxes, labels=labels)),
        "deletion_auc": float(np.mean(visualize.deletion_auc(model, x, maps, predicted))),
        "insertion_auc": float(np.mean(visualize.insertion_auc(model, x, maps, predicted))),
        "average_drop": float(np.mean(visualize.average_drop(model, x, maps, predicted))),
        "increase_in_confidence": float(np.mean(visualize.increase_in_confidence(model, x, maps, predicted))),
        "randomized_correlation": float(check.correlation[-1]),
        f"seconds_{timed}": seconds(model, function, x[:timed], predicted[:timed]),
    }


def retime(out, args):
    """Measure the times again, on an idle machine, into the results file of this backend;
    without one, only the times go into it (the scores are the same on every backend)."""
    source = out if out.is_file() else ROOT / "benchmarks/results/explanations_tensorflow.json"
    result = json.loads(source.read_text(encoding="utf-8"))
    if source != out:
        result.update(backend=keras.backend.backend(), keras=keras.__version__, times_only=True)
    timed = f"seconds_{result['args']['timed']}"
    for name, facts in result["recipes"].items():
        model, (x, _, _) = trained_model(name, args.cache)
        x = x[: result["args"]["timed"]]
        predicted = model.predict(x, verbose=0).argmax(-1)
        for method, function in methods(facts["layer"]).items():
            if source != out:  # another backend's scores are not this run's
                facts["methods"][method] = {}
            facts["methods"][method][timed] = seconds(model, function, x, predicted)
            print(f"{name} {method}: {facts['methods'][method][timed]:.3f} s", flush=True)
    result["cpu"] = runtime.cpu_name()
    cio.write_json(out, result)


def explain(name, args):
    recipe = registry.get(name)
    model, (x_test, boxes_test, y_test) = trained_model(name, args.cache)
    x, boxes, labels = x_test[: args.images], boxes_test[: args.images], y_test[: args.images]
    layer, _ = views.gradcam_layers(recipe, model)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / float(x.shape[1] * x.shape[2])
    accuracy = float(np.mean(model.predict(x_test, batch_size=256, verbose=0).argmax(-1) == y_test))
    rows, gallery = {}, {}
    for method, function in methods(layer).items():
        maps, rows[method] = score(model, function, x, boxes, labels, args.randomize, args.timed)
        gallery[method] = maps[: args.shown]
        print(f"{name} {method}: " + ", ".join(f"{k} {v:.3f}" for k, v in rows[method].items()), flush=True)
    if args.figures:
        plot_gallery(name, x[: args.shown], boxes[: args.shown], gallery, layer, ROOT / "docs/assets/explanations")
    return {"layer": layer, "grid": [int(d) for d in model.get_layer(layer).output.shape[1:3]],
            "test_accuracy": round(accuracy, 4), "pointing_game_random": round(float(np.mean(area)), 4),
            "methods": rows}


def plot_gallery(name, x, boxes, gallery, layer, folder):
    """Two figures, one row per method (the input first) and one column per held-out image;
    ``<name>_cams.png`` holds the class activation maps, ``<name>_pixels.png`` the rest."""
    cams = [m for m in gallery if m.endswith("CAM") or m.endswith("CAM++")]
    for suffix, chosen in (("cams", cams), ("pixels", [m for m in gallery if m not in cams])):
        rows = [list(x)] + [[visualize.overlay(image, heat) for image, heat in zip(x, gallery[m])] for m in chosen]
        path = folder / f"{name}_{suffix}.png"
        figures.tile_table(rows, path, row_labels=["input", *chosen], boxes=[[tuple(b) for b in boxes]] * len(rows))
        print(f"{name}: wrote {path} (CAMs at {layer})", flush=True)


COLUMNS = (("pointing_game", "pointing ↑", "{:.2f}"), ("deletion_auc", "deletion ↓", "{:.3f}"),
           ("insertion_auc", "insertion ↑", "{:.3f}"), ("average_drop", "avg drop ↓", "{:.2f}"),
           ("increase_in_confidence", "conf. up ↑", "{:.2f}"),
           ("randomized_correlation", "random ↓", "{:.2f}"))
LEGEND = ("Columns: **pointing**, the pointing game; **deletion** and **insertion**, the AUCs; **avg drop**, "
          "the average drop; **conf. up**, the increase in confidence; **random**, the rank correlation with "
          "the map once every layer is randomized.\n")


def _row(cells):
    return "| " + " | ".join(cells) + " |"


def write_tables(results_dir, path):
    """The page's tables, from every explanations_<backend>.json there is: the scores per
    recipe (from the TensorFlow run, the default backend), then the times on each backend."""
    runs = {}
    for file in sorted(results_dir.glob("explanations_*.json")):
        run = json.loads(file.read_text(encoding="utf-8"))
        runs[run["backend"]] = run
    if not runs:
        return
    backends = sorted(runs, key=lambda b: b != "tensorflow")
    first = runs[backends[0]]
    names = first.get("order", sorted(first["recipes"]))
    timed = f"seconds_{first['args']['timed']}"
    parts = [LEGEND]
    for name in names:
        facts = first["recipes"][name]
        grid = "×".join(str(d) for d in facts["grid"])
        parts.append(f"### `{name}` demo (test accuracy {facts['test_accuracy']:.3f}; CAMs at `{facts['layer']}`, "
                     f"{grid}; pointing-game chance {facts['pointing_game_random']:.2f})\n")
        parts += [_row(["method"] + [label for _, label, _ in COLUMNS]), "|:---|" + "---:|" * len(COLUMNS)]
        for method in methods(facts["layer"]):  # the methods' order, not the file's
            row = facts["methods"][method]
            parts.append(_row([method] + [fmt.format(row[key]) for key, _, fmt in COLUMNS]))
        parts.append("")
    parts.append(f"*Scores from the `{backends[0]}` run on {first['args']['images']} held-out images "
                 f"(randomization check on {first['args']['randomize']}).*\n")
    parts.append(f"### Seconds for {first['args']['timed']} images\n")
    columns = [(name, b) for name in names for b in backends]
    parts += [_row(["method"] + [f"{name}, {b}" for name, b in columns]), "|:---|" + "---:|" * len(columns)]
    for method in methods(first["recipes"][names[0]]["layer"]):
        parts.append(_row([method] + [f"{runs[b]['recipes'][name]['methods'][method][timed]:.2f}"
                                      for name, b in columns]))
    machines = "; ".join(f"{b}: {run['cpu']}, Keras {run['keras']}" for b, run in runs.items())
    parts.append(f"\n*The median of three calls after one that compiles ({machines}).*\n")
    cio.write_text(path, "\n".join(parts))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", nargs="+", default=["xception", "vgg"])
    parser.add_argument("--images", type=int, default=200, help="held-out images scored per method")
    parser.add_argument("--randomize", type=int, default=16, help="images in the randomization check")
    parser.add_argument("--timed", type=int, default=32, help="images in the timed call")
    parser.add_argument("--shown", type=int, default=4, help="images in the figure")
    parser.add_argument("--figures", action="store_true",
                        help="write docs/assets/explanations/<recipe>_cams.png and _pixels.png")
    parser.add_argument("--cache", type=Path, default=ROOT / "build/explanations", help="trained models")
    parser.add_argument("--out", type=Path, default=None,
                        help="default: benchmarks/results/explanations_<backend>.json")
    parser.add_argument("--times-only", action="store_true",
                        help="measure only the times again, into the existing results file")
    args = parser.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    backend = keras.backend.backend()
    out = args.out or ROOT / f"benchmarks/results/explanations_{backend}.json"
    if args.times_only:
        retime(out, args)
    else:
        result = {"cpu": runtime.cpu_name(), "backend": backend, "keras": keras.__version__,
                  "args": {"images": args.images, "randomize": args.randomize, "timed": args.timed},
                  "order": args.recipes, "recipes": {name: explain(name, args) for name in args.recipes}}
        cio.write_json(out, result)
    write_tables(out.parent, ROOT / "docs/assets/explanations/scores.md")
    print(f"wrote {out} and docs/assets/explanations/scores.md")


if __name__ == "__main__":
    main()
