"""Render the generated parts of the docs pages: train each recipe's demo and draw it.

``render(names=None, quick=False, device="auto", docs_dir="docs")`` writes, for every
recipe, a folder ``<docs_dir>/assets/recipes/<name>/`` of Markdown snippets and PNG
figures that the hand-written page ``docs/recipes/<name>.md`` includes with
``pymdownx.snippets``. The render never touches the hand-written pages.

=================  ===================================================================
file               what it holds
=================  ===================================================================
summary.md         parameters and MACs per block (cookbook.cost) and ``model.summary()``
                   of the default build and of the demo build
diagram.md/.png    ``keras.utils.plot_model`` of the demo build (a layer table without
                   graphviz)
training.md        the demo training on built-in data: curve (curve.png), test metrics
filters.md         filter visualizations of every stage in ``STAGES``; also one
                   ``filters_<stage>.md`` per stage for pages that walk stage by stage
task.md            classifiers: Grad-CAM overlays and the pointing-game score
                   (gradcam.png); per-patch evidence for BagNet (evidence.png);
                   autoencoders: inputs, targets, reconstructions; audio: waveform,
                   spectrogram and saliency over time (audio.png)
footer.md          device, backend, time taken, library versions
manifest.json      what was rendered, keyed by the recipe file's hash and the settings;
                   written last, so a killed render redoes that recipe and no other
=================  ===================================================================

Every file is written atomically (``cookbook.io``). The backend's GPU is used when it
sees one (``device="auto"``). Nothing here imports TensorFlow unless the Keras backend
is TensorFlow, so the render also runs with ``KERAS_BACKEND=jax`` and no TensorFlow.

Run it with ``cookbook render [NAMES] [--quick] [--device auto|cpu|gpu]`` or
``python -m cookbook.render [NAMES] [--quick]``.

The mkdocs hooks that read the manifests are a separate module, ``cookbook.docs_hooks``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

from cookbook import io, registry, runtime

RENDER_VERSION = 2
DEVICES = ("auto", "cpu", "gpu")
ASSETS = Path("assets") / "recipes"

# What one render draws. ``quick`` is for CI: the same files, less work in each.
# The demo training itself is the recipe's DEMO: each is sized to train in about a
# minute on a 2-core CPU (see docs/performance.md for the measured times).
SETTINGS = {
    False: {"filters": 8, "filter_steps": 30, "gradcam_images": 8, "pointing_images": 200},
    True: {"filters": 4, "filter_steps": 5, "gradcam_images": 4, "pointing_images": 32},
}
DEFAULT_EPOCHS = 10  # cookbook.train_recipe's default when DEMO names none

log = logging.getLogger("mkdocs.plugins.cookbook")


@dataclasses.dataclass
class RenderResult:
    """What ``render`` did for one recipe."""

    name: str
    folder: Path
    skipped: bool  # up to date: nothing was redone
    seconds: float  # time of the render that made the files
    files: list
    metrics: dict
    device: str
    backend: str


# --- the render --------------------------------------------------------------------------


def render(names=None, quick=False, device="auto", docs_dir="docs", progress=True) -> list:
    """Train and render the demos of ``names`` (default: every recipe); returns one RenderResult each.

    Up-to-date recipes (same recipe file hash, same settings, files present) are skipped,
    so a killed render resumes where it stopped.
    """
    if names is not None:
        if isinstance(names, str) or not isinstance(names, (list, tuple)):
            raise TypeError(f"names must be a list of recipe names or None, got {type(names).__name__}")
        for name in names:
            registry.get(name)  # raises UnknownNameError naming the close matches
    if not isinstance(quick, bool):
        raise TypeError(f"quick must be a bool, got {type(quick).__name__}")
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if not isinstance(docs_dir, (str, os.PathLike)):
        raise TypeError(f"docs_dir must be a path, got {type(docs_dir).__name__}")
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be a bool, got {type(progress).__name__}")

    recipes = [registry.get(name) for name in names] if names else registry.all_recipes()
    docs_dir = Path(docs_dir)
    results, todo = [], []
    for recipe in recipes:
        folder = docs_dir / ASSETS / recipe.name
        manifest = up_to_date(recipe, folder, quick)
        if manifest:
            results.append(_result_from_manifest(recipe, folder, manifest))
        else:
            todo.append(recipe)
    if not todo:
        return results

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    scope, device_name = runtime.device_scope(device)
    bar = _ProgressBar(total=len(todo) * len(_STEPS), enabled=progress)
    try:
        with scope:
            for recipe in todo:
                folder = docs_dir / ASSETS / recipe.name
                results.append(_render_recipe(recipe, folder, quick, device_name, bar))
                keras.backend.clear_session()
    finally:
        bar.close()
    order = {recipe.name: i for i, recipe in enumerate(recipes)}
    return sorted(results, key=lambda result: order[result.name])


def settings_key(recipe, quick: bool) -> dict:
    """What a render depends on: the recipe file and the render settings."""
    return {
        "source_hash": recipe.source_hash,
        "render_version": RENDER_VERSION,
        "quick": quick,
        "settings": SETTINGS[quick],
    }


def up_to_date(recipe, folder, quick) -> dict | None:
    """The manifest of ``folder`` when it matches the recipe and settings and all its files exist."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if manifest.get("key") != json.loads(json.dumps(settings_key(recipe, quick))):
        return None
    for name, digest in manifest.get("files", {}).items():
        path = folder / name
        if not path.is_file() or _digest(path) != digest:
            return None
    return manifest


_STEPS = ("summary", "diagram", "training", "filters", "task", "footer")


def _render_recipe(recipe, folder, quick, device_name, bar) -> RenderResult:
    import keras

    started, cpu_started = time.perf_counter(), time.process_time()
    keras.utils.set_random_seed(0)
    settings = SETTINGS[quick]
    written = []
    (folder / "manifest.json").unlink(missing_ok=True)  # until the new one is written, the folder is stale

    def step(name):
        bar.describe(f"{recipe.name}: {name}")

    step("summary and cost")
    written += _write_summary(recipe, folder)
    bar.advance()

    step("diagram")
    written += _write_diagram(recipe, folder)
    bar.advance()

    step("training")
    from cookbook import train

    on_gpu = device_name.startswith("GPU")
    # On a CPU an XLA compile costs more of the minute per recipe than it saves.
    result = train.train_recipe(recipe.name, quick=quick, verbose=0,
                                jit_compile="auto" if on_gpu else False)
    written += _write_training(recipe, folder, result)
    bar.advance()

    step("filters")
    written += _write_filters(recipe, folder, result.model, settings)
    bar.advance()

    step("task views")
    written += _write_task(recipe, folder, result, settings)
    bar.advance()

    seconds = time.perf_counter() - started
    backend = keras.backend.backend()
    written.append(io.write_text(folder / "footer.md", _footer(device_name, backend, seconds, quick)))
    bar.advance()

    files = {Path(path).name: _digest(path) for path in written}
    for path in folder.iterdir():  # figures of stages that are gone, temp files of a killed render
        if path.is_file() and path.name not in files:
            path.unlink()
    metrics = {key: float(value) for key, value in dict(result.metrics).items()}
    manifest = {
        "recipe": recipe.name,
        "key": settings_key(recipe, quick),
        "files": files,
        "seconds": round(seconds, 1),
        "cpu_seconds": round(time.process_time() - cpu_started, 1),  # all threads; load-independent
        "device": device_name,
        "backend": backend,
        "metrics": metrics,
        "versions": runtime.versions(backend),
    }
    io.write_json(folder / "manifest.json", manifest)  # last: it marks the render complete
    return RenderResult(recipe.name, folder, False, seconds, sorted(files) + ["manifest.json"], metrics,
                        device_name, backend)


def _result_from_manifest(recipe, folder, manifest) -> RenderResult:
    return RenderResult(recipe.name, folder, True, float(manifest.get("seconds", 0.0)),
                        sorted(manifest.get("files", {})) + ["manifest.json"], dict(manifest.get("metrics", {})),
                        manifest.get("device", ""), manifest.get("backend", ""))


# --- summary, cost and diagram ----------------------------------------------------------------


def _call(builder, kwargs) -> str:
    args = ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
    return f"{builder}({args})"


def _write_summary(recipe, folder) -> list:
    import keras

    from cookbook import cost

    parts = []
    builds = [("Default build", recipe.default_builder, {}), ("Demo build", recipe.demo["builder"],
                                                              dict(recipe.demo["kwargs"]))]
    for title, builder, kwargs in builds:
        model = recipe.builder(builder)(**kwargs)
        twin = recipe.twin(builder)
        lines = _summary_lines(model)
        parts.append(f"### {title}: `{_call(builder, kwargs)}`\n")
        parts.append(f"**{model.count_params():,} parameters**"
                     + (f", the same model as `keras.applications.{twin}`." if twin else ".") + "\n")
        parts.append(cost.format_cost(model, by="block", markdown=True).strip() + "\n")
        parts.append(f'??? note "model.summary() of `{builder}`"\n')
        parts.append("    ```text")
        parts.extend("    " + line.rstrip() for line in "\n".join(lines).splitlines())
        parts.append("    ```\n")
        del model
        keras.backend.clear_session()
    return [io.write_text(folder / "summary.md", "\n".join(parts) + "\n")]


def _summary_lines(model) -> list:
    lines = []
    model.summary(line_length=110, print_fn=lambda line, line_break=False: lines.append(line))
    return lines


def _have_graphviz() -> bool:
    import shutil

    try:
        import pydot  # noqa: F401
    except ImportError:
        return False
    return shutil.which("dot") is not None


def _write_diagram(recipe, folder) -> list:
    import keras

    model = recipe.build_demo()
    name = recipe.name
    if _have_graphviz():
        try:
            with io.atomic_path(folder / "diagram.png") as tmp:
                # 'ortho' splines (the default) crash graphviz on large graphs (trapezoid overflow).
                keras.utils.plot_model(model, to_file=str(tmp), show_shapes=True, show_layer_names=True,
                                       dpi=56, splines="spline")
        except Exception as error:  # noqa: BLE001 - any graphviz failure: fall back to the table
            log.warning(f"{name}: plot_model failed ({str(error).splitlines()[0][:120]}); writing a layer table")
        else:
            text = (f'??? example "Diagram of the demo build (from `keras.utils.plot_model`; click to enlarge)"\n\n'
                    f'    ![Layer graph of the {name} demo build](../assets/recipes/{name}/diagram.png)\n')
            return [folder / "diagram.png", io.write_text(folder / "diagram.md", text)]
    # A readable fallback without graphviz: one line per layer.
    rows = ["layer | type | output shape | parameters", "--- | --- | --- | ---"]
    for layer in model.layers:
        shape = tuple(layer.output.shape) if not isinstance(layer.output, (list, tuple)) else "several"
        rows.append(f"`{layer.name}` | {type(layer).__name__} | {shape} | {layer.count_params():,}")
    io.write_text(folder / "diagram.txt", "\n".join(rows) + "\n")
    table = "\n".join("    " + row for row in rows)
    text = f'??? example "Layers of the demo build (graphviz is not installed: a table instead of a diagram)"\n\n{table}\n'
    return [folder / "diagram.txt", io.write_text(folder / "diagram.md", text)]


# --- training -----------------------------------------------------------------------------------


def _write_training(recipe, folder, result) -> list:
    plt = _pyplot()
    history = dict(getattr(result.history, "history", result.history) or {})
    series = [key for key in history if not key.startswith("val_")]
    figure, axes = plt.subplots(1, max(1, min(2, len(series))), figsize=(7, 2.6), squeeze=False)
    for ax, key in zip(axes[0], sorted(series, key=lambda k: (k != "loss", k))[:2]):
        epochs = range(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], marker="o", label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(key.replace("_", " "))
        ax.legend(frameon=False)
    figure.tight_layout()
    io.save_figure(figure, folder / "curve.png", dpi=90)
    plt.close(figure)

    data = result.data
    dataset = getattr(data, "name", "") or recipe.demo.get("dataset", "")
    sizes = ""
    if hasattr(data, "train"):
        sizes = f" ({len(data.train):,} training, {len(data.val):,} validation, {len(data.test):,} test examples)"
    tests = {key[5:]: value for key, value in dict(result.metrics).items() if key.startswith("test_")}
    metrics = " · ".join(f"test {key.replace('_', ' ')}: **{value:.3f}**" for key, value in tests.items())
    epochs = len(next(iter(history.values()), []))
    planned = recipe.demo.get("epochs", DEFAULT_EPOCHS)
    note = f" Early stopping ended it before the {planned} epochs the DEMO asks for." if epochs < planned else ""
    text = (f"The demo build trained for {epochs} epoch{'s' if epochs != 1 else ''} on `{dataset}`{sizes} "
            f"in {result.seconds:.0f} s.{note}\n\n"
            f"![Training curve of the {recipe.name} demo](../assets/recipes/{recipe.name}/curve.png)\n\n"
            f"{metrics}\n")
    return [folder / "curve.png", io.write_text(folder / "training.md", text)]


# --- filters ------------------------------------------------------------------------------------


def _write_filters(recipe, folder, model, settings) -> list:
    from cookbook import visualize

    written, sections = [], []
    for stage in recipe.stages:
        layer = model.get_layer(stage)
        channels = int(layer.output.shape[-1])
        count = min(settings["filters"], channels)
        png = folder / f"filters_{stage}.png"
        if len(layer.output.shape) == 4:
            smallest = min(int(size) for size in layer.output.shape[1:3])
            border = min(2, (smallest - 1) // 2)  # keras-io leaves out 2 pixels; small late maps allow less
            images, activations = visualize.filter_images(model, stage, filters=list(range(count)),
                                                          steps=settings["filter_steps"], border=border)
            figure = visualize.plot_filters(images, activations, cols=min(8, count))
            io.save_figure(figure, png, dpi=80)
            kind = "images"
        else:  # a 1-D (audio) layer: the waveforms that excite each filter
            waves = _filters_1d(model, stage, count, settings["filter_steps"] * 2)
            _plot_waves(waves, png, titles=[f"#{i}" for i in range(count)])
            kind = "waveforms (the middle 320 samples)"
        text = (f"![Filters 0 to {count - 1} of {stage}](../assets/recipes/{recipe.name}/filters_{stage}.png)\n\n"
                f"*`{stage}`: the {kind} that most excite filters 0 to {count - 1} of its {channels}, "
                f"found by gradient ascent from noise.*\n")
        written += [png, io.write_text(folder / f"filters_{stage}.md", text)]
        sections.append(f"#### `{stage}`\n\n{text}")
    written.append(io.write_text(folder / "filters.md", "\n".join(sections)))
    return written


def _input_optimizer(model, stage, n, initial, learning_rate, optimizer):
    """A model whose only weights are ``n`` inputs of ``model`` (rows of a Dense kernel).

    Feeding it the identity matrix returns the n inputs, passed through ``model`` (frozen,
    inference mode) up to layer ``stage``. Training it moves the inputs, not the model:
    gradient ascent on inputs with the public Keras API only, on every backend.
    """
    import keras
    import numpy as np

    shape = tuple(model.inputs[0].shape[1:])
    size = int(np.prod(shape))
    reach = keras.Model(model.inputs, model.get_layer(stage).output if stage else model.outputs[0])
    reach.trainable = False
    selector = keras.Input((n,))
    inputs = keras.layers.Dense(size, use_bias=False, name="inputs")(selector)
    inputs = keras.layers.Reshape(shape)(inputs)
    probe = keras.Model(selector, reach(inputs))
    probe.get_layer("inputs").set_weights([np.asarray(initial, "float32").reshape(n, size)])
    optimizers = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}
    return probe, optimizers[optimizer](learning_rate=learning_rate)


def _filters_1d(model, stage, count, steps):
    """Waveforms (count, samples) that maximize filters 0..count-1 of a 1-D layer."""
    import keras
    import numpy as np
    from keras import ops

    rng = np.random.default_rng(0)
    start = 0.01 * rng.normal(size=(count, *model.inputs[0].shape[1:]))
    probe, optimizer = _input_optimizer(model, stage, count, start, 0.01, "adam")
    pooled = keras.Model(probe.inputs, keras.layers.GlobalAveragePooling1D()(probe.outputs[0]))
    pooled.compile(optimizer=optimizer, loss=lambda y, p: -ops.sum(y * p, axis=-1), jit_compile=False)
    selector = np.eye(count, dtype="float32")
    wanted = np.eye(count, int(probe.outputs[0].shape[-1]), dtype="float32")
    for _ in range(steps):
        pooled.train_on_batch(selector, wanted)
    return probe.get_layer("inputs").get_weights()[0].reshape(count, -1)


def _saliency_1d(model, x, classes):
    """|d log p_c / d x| per sample: one SGD step of size 1 on the inputs moves them by -gradient."""
    import keras
    import numpy as np

    n = len(x)
    probe, optimizer = _input_optimizer(model, None, n, x, 1.0, "sgd")
    probe.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(), jit_compile=False)
    before = probe.get_layer("inputs").get_weights()[0].copy()
    probe.train_on_batch(np.eye(n, dtype="float32"), np.asarray(classes))
    after = probe.get_layer("inputs").get_weights()[0]
    return np.abs(before - after).reshape(n, -1) * n  # the loss is a batch mean


def _plot_waves(waves, path, titles):
    plt = _pyplot()
    n = len(waves)
    columns = min(4, n)
    rows = -(-n // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 1.1 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:  # the middle 320 samples: the pattern repeats along the clip
            middle = len(waves[i]) // 2
            ax.plot(waves[i][max(0, middle - 160):middle + 160], linewidth=0.6)
            ax.set_title(titles[i], fontsize=7)
    figure.tight_layout(pad=0.3)
    io.save_figure(figure, path, dpi=80)
    plt.close(figure)


# --- task-specific views ------------------------------------------------------------------------


def _write_task(recipe, folder, result, settings) -> list:
    """Task-specific views; every writer returns (figures, Markdown), joined into task.md."""
    test = result.data.test
    if recipe.task == "autoencoder":
        views = [_write_reconstructions(recipe, folder, result.model, test)]
    elif recipe.task == "audio":
        views = [_write_audio(recipe, folder, result.model, test)]
    else:
        views = [_write_gradcam(recipe, folder, result.model, test, settings)]
        if _has_patch_logits(recipe):
            views.append(_write_evidence(recipe, folder, result.model, test))
    figures = [path for paths, _ in views for path in paths]
    text = "\n".join(markdown for _, markdown in views)
    return figures + [io.write_text(folder / "task.md", text)]


def _write_gradcam(recipe, folder, model, test, settings) -> tuple:
    import numpy as np

    from cookbook import visualize

    m = min(settings["pointing_images"], len(test))
    x, boxes, labels = test.x[:m], test.boxes[:m], test.y[:m]
    maps, predicted = visualize.grad_cam(model, x, return_classes=True)
    score = float(visualize.pointing_game(maps, boxes, labels=labels))
    # A map that points at a random pixel hits the box with probability box area / image area.
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / float(x.shape[1] * x.shape[2])
    chance = float(np.mean(area))
    n = min(settings["gradcam_images"], m)
    overlays = np.stack([visualize.overlay(x[i], maps[i]) for i in range(n)])
    titles = [f"true {int(t)} / pred {int(p)}" for t, p in zip(labels[:n], predicted[:n])]
    figure = visualize.plot_grid(overlays, titles, cols=min(8, n))
    for ax, (y0, x0, y1, x1) in zip(figure.axes, boxes[:n]):
        ax.add_patch(_rectangle(x0, y0, x1, y1))
    png = folder / "gradcam.png"
    io.save_figure(figure, png, dpi=80)
    text = (f"![Grad-CAM overlays](../assets/recipes/{recipe.name}/gradcam.png)\n\n"
            f"*Grad-CAM of the predicted class on held-out images, from the last layer with a "
            f"spatial output; the green box is where the digit really is.*\n\n"
            f"**Pointing game: {score:.2f}** on {m} held-out images (averaged over the classes, as in "
            f"Zhang et al. 2016): the share whose Grad-CAM maximum falls inside the digit's box. A map "
            f"that pointed at random would score about {chance:.2f}, the box's share of the canvas.\n")
    return [png], text


def _rectangle(x0, y0, x1, y1):
    from matplotlib.patches import Rectangle

    return Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor="lime", linewidth=1)


def _has_patch_logits(recipe) -> bool:
    builder = recipe.builder(recipe.demo["builder"])
    try:
        return "patch_logits" in inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return False


def _write_evidence(recipe, folder, model, test) -> list:
    """BagNet: the classifier applied at every location, per-patch evidence for the true class."""
    import numpy as np

    patch_model = recipe.builder(recipe.demo["builder"])(**recipe.demo["kwargs"], patch_logits=True)
    patch_model.set_weights(model.get_weights())
    n = min(6, len(test))
    x = test.x[:n]
    logits = np.asarray(patch_model.predict(x, verbose=0))  # (n, rows, cols, classes)
    evidence = np.stack([logits[i, :, :, int(test.y[i])] for i in range(n)])
    plt = _pyplot()
    figure, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.4), squeeze=False)
    limit = float(np.abs(evidence).max()) or 1.0
    for i in range(n):
        axes[0, i].imshow(_display(x[i]), cmap="gray")
        axes[0, i].set_title(f"digit {int(test.y[i])}", fontsize=8)
        axes[1, i].imshow(evidence[i], cmap="RdBu_r", vmin=-limit, vmax=limit)
        for ax in axes[:, i]:
            ax.axis("off")
    figure.tight_layout()
    png = folder / "evidence.png"
    io.save_figure(figure, png, dpi=90)
    plt.close(figure)
    rows, cols = evidence.shape[1:3]
    text = (f"![Per-patch evidence](../assets/recipes/{recipe.name}/evidence.png)\n\n"
            f"*Per-patch evidence: the classifier applied to each of the {rows}×{cols} local features "
            f"(`patch_logits=True`, with the trained weights). Red patches vote for the true digit, blue "
            f"against; the image's logit is their average.*\n")
    return [png], text


def _write_reconstructions(recipe, folder, model, test) -> list:
    import numpy as np

    n = min(8, len(test))
    x = test.x[:n]
    target = test.y[:n] if getattr(test.y, "ndim", 1) == x.ndim else x
    output = np.asarray(model.predict(x, verbose=0))
    rows = [("input", x), ("target", target), ("reconstruction", output)]
    plt = _pyplot()
    figure, axes = plt.subplots(3, n, figsize=(1.3 * n, 4.2), squeeze=False)
    for r, (label, images) in enumerate(rows):
        for i in range(n):
            axes[r, i].imshow(_display(images[i]), cmap="gray", vmin=0, vmax=1)
            axes[r, i].axis("off")
        axes[r, 0].set_title(label, fontsize=8, loc="left")
    figure.tight_layout()
    png = folder / "reconstructions.png"
    io.save_figure(figure, png, dpi=90)
    plt.close(figure)
    mse = float(np.mean((output - target) ** 2))
    text = (f"![Inputs, targets and reconstructions](../assets/recipes/{recipe.name}/reconstructions.png)\n\n"
            f"*Held-out inputs, the targets, and what the trained autoencoder makes of them. "
            f"Mean squared error on these {n}: {mse:.4f}.*\n")
    return [png], text


def _write_audio(recipe, folder, model, test) -> list:
    import numpy as np


    n = min(3, len(test))
    x = test.x[:n]
    predicted = np.argmax(np.asarray(model.predict(x, verbose=0)), axis=-1)
    saliency = _saliency_1d(model, x, predicted)
    plt = _pyplot()
    figure, axes = plt.subplots(3, n, figsize=(3.2 * n, 5.2), squeeze=False)
    for i in range(n):
        wave = x[i].reshape(-1)
        axes[0, i].plot(wave, linewidth=0.4)
        axes[0, i].set_title(f"class {int(test.y[i])} / predicted {int(predicted[i])}", fontsize=8)
        axes[1, i].specgram(wave, NFFT=256, noverlap=192, Fs=1.0, cmap="magma")
        window = max(1, len(wave) // 200)
        smooth = np.convolve(saliency[i], np.ones(window) / window, mode="same")
        axes[2, i].plot(smooth, color="crimson", linewidth=0.8)
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("waveform", fontsize=8)
    axes[1, 0].set_ylabel("spectrogram", fontsize=8)
    axes[2, 0].set_ylabel("saliency", fontsize=8)
    figure.tight_layout()
    png = folder / "audio.png"
    io.save_figure(figure, png, dpi=90)
    plt.close(figure)
    text = (f"![Waveform, spectrogram and saliency](../assets/recipes/{recipe.name}/audio.png)\n\n"
            f"*Held-out clips: the waveform, its spectrogram, and the saliency over time (the gradient of "
            f"the predicted class's logit with respect to each sample, smoothed): where in time the "
            f"network looks.*\n")
    return [png], text


# --- figures ------------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _display(image):
    """A 2D (gray) or (h, w, 3) array in [0, 1] for imshow."""
    import numpy as np

    image = np.asarray(image, dtype="float32")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    low, high = float(image.min()), float(image.max())
    if low < 0 or high > 1:
        image = (image - low) / (high - low + 1e-8)
    return image


# --- device, footer, progress --------------------------------------------------------------------


def _footer(device_name, backend, seconds, quick) -> str:
    versions = ", ".join(f"{name} {version}" for name, version in runtime.versions(backend).items())
    mode = " (quick render)" if quick else ""
    return (f"---\n\n<small>Rendered{mode} by `cookbook render` on {device_name}, "
            f"Keras backend `{backend}`, in {seconds:.0f} s. Versions: {versions}.</small>\n")


def _digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


class _ProgressBar:
    """One bar over all steps of all recipes (tqdm when present, else plain lines)."""

    def __init__(self, total, enabled):
        self._bar = None
        self._enabled = enabled
        if enabled:
            try:
                from tqdm.auto import tqdm

                self._bar = tqdm(total=total, unit="step", file=sys.stderr, dynamic_ncols=True)
            except ImportError:
                pass

    def describe(self, text):
        if self._bar is not None:
            self._bar.set_description(text)
        elif self._enabled:
            print(f"render: {text}", file=sys.stderr, flush=True)

    @property
    def shown(self):
        return self._bar is not None

    def advance(self):
        if self._bar is not None:
            self._bar.update(1)

    def close(self):
        if self._bar is not None:
            self._bar.close()
