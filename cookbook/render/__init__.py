"""Render the generated parts of the docs pages: train each recipe's demo and draw what it learned.

``render(names=None, quick=False, device="auto", docs_dir="docs", force=False)`` writes,
for every recipe, a folder ``<docs_dir>/assets/recipes/<name>/`` of Markdown snippets and
figures that the hand-written page ``docs/recipes/<name>.md`` includes with
``pymdownx.snippets``. Data flows one way: registry -> train -> views -> manifest -> page.

=================  ===================================================================
file               what it holds
=================  ===================================================================
summary.md         parameters and MACs per block (cookbook.cost) and ``model.summary()``
                   of the default build and of the demo build
diagram.md/.svg    one node per block of the demo build; graph.png, the full layer graph
training.md        the demo training on the task's built-in data: curve.png, test metric
filters.md         per stage, the units that respond most: their gradient-ascent images
                   and the held-out patches that excite them (filters_<stage>.png)
task.md            the task's views (cookbook.tasks): Grad-CAM at two depths with the
                   pointing game; BagNet's per-patch evidence; a classifier's t-SNE,
                   nearest training images and linear probes; reconstructions; audio;
                   the VAE's samples and code space; masks, FCN variants, a score map
footer.md          device, backend, time taken, library versions
manifest.json      every number the snippets show, and what was rendered, keyed by the
                   recipe file's hash and the settings; written last, so a killed render
                   redoes the recipes it was rendering and no other
=================  ===================================================================

The snippets are made from the manifest alone (``cookbook.render.pages``). Every file
is written atomically (``cookbook.io``). The backend's GPU is used when it sees one
(``device="auto"``). Nothing here imports TensorFlow unless the Keras backend is
TensorFlow, so the render also runs with ``KERAS_BACKEND=jax`` and no TensorFlow.

Run it with ``cookbook render [NAMES] [--force] [--quick] [--device auto|cpu|gpu] [--jobs N]`` or
``python -m cookbook.render``. The mkdocs hooks that read the manifests are a separate
module, ``cookbook.docs_hooks``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from cookbook import io, registry, runtime, tasks

RENDER_VERSION = 4
DEVICES = ("auto", "cpu", "gpu")
ASSETS = Path("assets") / "recipes"

# What one render draws. ``quick`` is for CI: the same files, less work in each.
SETTINGS = {
    False: {"filters": 4, "examples": 3, "filter_steps": 128, "rank_images": 500, "gradcam_images": 4,
            "pointing_images": 500},
    True: {"filters": 2, "examples": 3, "filter_steps": 16, "rank_images": 64, "gradcam_images": 4,
           "pointing_images": 64},
}
_STEPS = ("training", "summary", "diagram", "filters", "task views")


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


def render(names=None, quick=False, device="auto", docs_dir="docs", progress=True, force=False,
           jobs=1) -> list:
    """Train and render the demos of ``names`` (default: every recipe); returns one RenderResult each.

    Up-to-date recipes (same recipe file hash, same settings, files present) are skipped
    unless ``force``, so a killed render resumes where it stopped. ``device="gpu"`` fails
    at once when the backend sees no GPU. ``jobs > 1`` renders that many recipes at a time
    on the CPU, each in its own process with its share of the cores (:func:`auto_jobs`).
    """
    if names is not None:
        if isinstance(names, str) or not isinstance(names, (list, tuple)):
            raise TypeError(f"names must be a list of recipe names or None, got {type(names).__name__}")
        for name in names:
            registry.get(name)  # raises UnknownNameError naming the close matches
    for value, label in ((quick, "quick"), (progress, "progress"), (force, "force")):
        if not isinstance(value, bool):
            raise TypeError(f"{label} must be a bool, got {type(value).__name__}")
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if not isinstance(docs_dir, (str, os.PathLike)):
        raise TypeError(f"docs_dir must be a path, got {type(docs_dir).__name__}")
    if isinstance(jobs, bool) or not isinstance(jobs, int):
        raise TypeError(f"jobs must be an int, got {type(jobs).__name__}")
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")

    runtime.quiet_logs()
    if device == "gpu":  # before anything is skipped or trained: a wrong flag fails at once
        runtime.device_scope(device)
    if jobs > 1 and device != "cpu" and _sees_gpu():
        raise ValueError(f"jobs={jobs} renders on the CPU only: pass device='cpu' or jobs=1")
    recipes = [registry.get(name) for name in names] if names else registry.all_recipes()
    docs_dir = Path(docs_dir)
    results, todo = [], []
    for recipe in recipes:
        folder = docs_dir / ASSETS / recipe.name
        manifest = None if force else up_to_date(recipe, folder, quick)
        if manifest:
            results.append(_result_from_manifest(recipe, folder, manifest))
        else:
            todo.append(recipe)
    groups = _groups(todo)
    if len(groups) > 1 and jobs > 1:
        results += _render_in_processes(groups, quick, docs_dir, progress, jobs)
    elif todo:
        results += _render_here(todo, quick, device, docs_dir, progress)
    if todo:
        _write_comparison(docs_dir)
    order = {recipe.name: i for i, recipe in enumerate(recipes)}
    return sorted(results, key=lambda result: order[result.name])


def _render_here(todo, quick, device, docs_dir, progress, side_by_side=1) -> list:
    """Render ``todo`` one after another in this process."""
    import keras

    results = []
    scope, device_name = runtime.device_scope(device)
    bar = _ProgressBar(total=len(todo) * len(_STEPS), enabled=progress)
    try:
        with scope:
            for recipe in todo:
                folder = Path(docs_dir) / ASSETS / recipe.name
                results.append(_render_recipe(recipe, folder, quick, device_name, bar, side_by_side))
                keras.backend.clear_session()
    finally:
        bar.close()
    return results


# --- several recipes at a time ----------------------------------------------------------------


MAX_AUTO_JOBS = 4  # each process holds a backend and a demo: a few GB of memory


def auto_jobs(device="auto") -> int:
    """How many recipes to render at a time: one per core (at most MAX_AUTO_JOBS) on the CPU,
    one on a GPU. A demo's training keeps about one core busy, however many it is given, so
    on a 2-core CPU two renders side by side render the site in 71 % of the time of one
    after another (docs/performance.md)."""
    if device == "gpu" or (device == "auto" and _sees_gpu()):
        return 1
    return max(1, min(os.cpu_count() or 1, MAX_AUTO_JOBS))


def _sees_gpu() -> bool:
    import keras

    return bool(runtime.gpu_names(keras.backend.backend()))


def _groups(todo) -> list:
    """The recipes of ``todo`` as lists of names to render in one process: a page that shows
    another recipe's demo (FCN's score map shows AlexNet's) goes with it, so it trains once."""
    groups = {}
    names = {recipe.name for recipe in todo}
    for recipe in todo:
        anchor = next((name for name in _shown_demos(recipe) if name in names), recipe.name)
        groups.setdefault(anchor, []).append(recipe.name)
    return list(groups.values())


def _render_in_processes(groups, quick, docs_dir, progress, jobs) -> list:
    """Render ``groups`` in ``jobs`` worker processes on the CPU, the longest (by the last
    render's time, where there was one) first, so that none is left alone at the end."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    def last_seconds(group):
        return sum(float((read_manifest(Path(docs_dir) / ASSETS / name) or {}).get("seconds", 0)) for name in group)

    groups = sorted(groups, key=last_seconds, reverse=True)
    workers = min(jobs, len(groups))
    threads = max(1, (os.cpu_count() or 1) // workers)
    bar = _ProgressBar(total=sum(map(len, groups)), enabled=progress, unit="recipe")
    bar.describe(f"rendering {workers} recipes at a time")
    results = []
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_start_worker, initargs=(threads, os.getpid())) as pool:
        futures = {pool.submit(_render_group, group, quick, str(docs_dir), workers): group for group in groups}
        try:
            for future in as_completed(futures):
                results += future.result()
                bar.describe(f"rendered {', '.join(futures[future])}")
                bar.advance(len(futures[future]))
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
        finally:
            bar.close()
    return results


def _start_worker(threads, parent):
    """Set up a worker process as the CLI sets up its own, with ``threads`` threads."""
    import threading

    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    runtime.limit_threads(threads)
    runtime.quiet_logs("3")
    runtime.prefer_onednn()
    runtime.import_keras_quietly()
    runtime.skip_grappler()


def _exit_with(parent):
    """Stop this worker as soon as process ``parent`` is gone: a killed render must not go on
    writing behind the user's back (what it leaves, the next render finds stale and redoes)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _render_group(names, quick, docs_dir, side_by_side) -> list:
    return _render_here([registry.get(name) for name in names], quick, "cpu", docs_dir, False, side_by_side)


def refresh_summaries(names=None, docs_dir="docs") -> list:
    """Rewrite the cost tables (summary.md) of rendered recipes without training again.

    The tables depend on the recipe file and on :mod:`cookbook.cost` only, not on the
    training, so a change to how costs are shown needs no new render. A recipe whose
    render is missing or stale is left alone (``render`` redoes it). Returns the names
    of the recipes whose summary.md was rewritten.
    """
    import keras

    from cookbook.render import views

    recipes = [registry.get(name) for name in names] if names else registry.all_recipes()
    refreshed = []
    for recipe in recipes:
        folder = Path(docs_dir) / ASSETS / recipe.name
        manifest = read_manifest(folder)
        quick = bool(manifest and manifest.get("key", {}).get("quick"))
        if manifest is None or up_to_date(recipe, folder, quick) is None:
            continue
        (path,), _ = views.summary(recipe, folder, recipe.build_demo())
        manifest["files"][path.name] = _digest(path)
        io.write_json(folder / "manifest.json", manifest)
        keras.backend.clear_session()
        refreshed.append(recipe.name)
    return refreshed


def settings_key(recipe, quick: bool) -> dict:
    """What a render depends on: the recipe file and the render settings, and the recipe
    files of the demos its page shows beside its own (FCN's score map shows AlexNet's)."""
    key = {
        "source_hash": recipe.source_hash,
        "render_version": RENDER_VERSION,
        "quick": quick,
        "settings": SETTINGS[quick],
    }
    shown = _shown_demos(recipe)
    if shown:
        key["shows"] = {name: registry.get(name).source_hash for name in shown}
    return key


def _shown_demos(recipe) -> list:
    """The other recipes whose demos ``recipe``'s page shows."""
    from cookbook.render import views

    return [views.DEMOS_SHOWN[view] for view in task_views(recipe) if view in views.DEMOS_SHOWN]


def read_manifest(folder) -> dict | None:
    """The manifest in ``folder``, or None when there is none (or it is unreadable)."""
    try:
        return json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def up_to_date(recipe, folder, quick) -> dict | None:
    """The manifest of ``folder`` when it matches the recipe and settings and all its files exist."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None or manifest.get("key") != json.loads(json.dumps(settings_key(recipe, quick))):
        return None
    for name, digest in manifest.get("files", {}).items():
        path = folder / name
        if not path.is_file() or _digest(path) != digest:
            return None
    return manifest


def task_views(recipe) -> list:
    """The task views that apply to ``recipe`` (BagNet's evidence needs ``patch_logits``)."""
    from cookbook.render import views

    names = tasks.get(recipe.task).views
    return [name for name in names if name != "evidence" or views.has_patch_logits(recipe)]


def _render_recipe(recipe, folder, quick, device_name, bar, side_by_side=1) -> RenderResult:
    import keras

    from cookbook import train
    from cookbook.render import figures, pages, views

    started, cpu_started = time.perf_counter(), time.process_time()
    keras.utils.set_random_seed(0)
    settings = SETTINGS[quick]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").unlink(missing_ok=True)  # until the new one is written, the folder is stale

    bar.describe(f"{recipe.name}: training")
    on_gpu = device_name.startswith("GPU")
    # On a CPU an XLA compile costs more of the two minutes than it saves.
    jit_compile = "auto" if on_gpu else False
    result = views.trained_demo(recipe.name, quick, jit_compile)
    keras.utils.set_random_seed(0)  # the figures' draws: the same whether the demo was trained here or reused
    model, test = result.model, result.data.test
    files = [figures.training_curve(result.history, folder / "curve.png")]
    metrics = {key: value for key, value in result.metrics.items()}
    bar.advance()
    stages = []
    for step, view in (("summary", lambda: views.summary(recipe, folder, model)),
                       ("diagram", lambda: views.diagram(recipe, folder, model)),
                       ("filters", lambda: views.filters(recipe, folder, model, test.x, settings)),
                       ("task views", lambda: _task_views(recipe, folder, model, test,
                                                          {**settings, "quick": quick, "trained": result,
                                                           "jit_compile": jit_compile}))):
        bar.describe(f"{recipe.name}: {step}")
        written, facts = view()
        files += written
        stages = facts.pop("filters", stages)
        metrics.update(facts)
        bar.advance()

    backend = keras.backend.backend()
    data = result.data
    manifest = {
        "recipe": recipe.name,
        "key": settings_key(recipe, quick),
        "task": recipe.task,
        "views": task_views(recipe),
        "demo": {"call": _call(recipe.demo["builder"], recipe.demo["kwargs"]), "dataset": data.name,
                 "sizes": [len(data.train), len(data.val), len(data.test)],
                 "epochs": train.QUICK_EPOCHS if quick else int(recipe.demo.get("epochs", 10)),
                 "batch_size": int(recipe.demo.get("batch_size", 64)),
                 "learning_rate": float(recipe.demo.get("learning_rate", 1e-3)),
                 "optimizer": recipe.demo.get("optimizer", "adamw"),
                 "augment": recipe.demo.get("augment")},
        "metrics": metrics,
        "filters": stages,
        "seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu_started, 1),  # all threads; load-independent
        "device": device_name,
        "side_by_side": side_by_side,  # renders running at once, each with its share of the cores
        "backend": backend,
        "versions": runtime.versions(backend),
        "files": {Path(path).name: _digest(path) for path in files},
    }
    manifest = json.loads(json.dumps(manifest, default=_plain))  # numpy scalars as plain numbers
    for filename, text in pages.snippets(manifest).items():
        path = io.write_text(folder / filename, text)
        manifest["files"][filename] = _digest(path)
    for path in folder.iterdir():  # figures of stages that are gone, temp files of a killed render
        if path.is_file() and path.name not in manifest["files"]:
            path.unlink()
    io.write_json(folder / "manifest.json", manifest)  # last: it marks the render complete
    return _result_from_manifest(recipe, folder, manifest, skipped=False)


def _task_views(recipe, folder, model, test, settings):
    from cookbook.render import views

    files, facts = [], {}
    for name in task_views(recipe):
        written, found = views.VIEWS[name](recipe, folder, model, test, settings)
        files += written
        facts.update(found)
    return files, facts


def _plain(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a manifest")


def _call(builder, kwargs) -> str:
    return f"{builder}({', '.join(f'{key}={value!r}' for key, value in kwargs.items())})"


def _result_from_manifest(recipe, folder, manifest, skipped=True) -> RenderResult:
    return RenderResult(recipe.name, folder, skipped, float(manifest.get("seconds", 0.0)),
                        sorted(manifest.get("files", {})) + ["manifest.json"], dict(manifest.get("metrics", {})),
                        manifest.get("device", ""), manifest.get("backend", ""))


def _digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


# --- the cross-recipe comparison --------------------------------------------------------------


def classifier_rows(docs_dir="docs") -> list:
    """One dict per rendered classifier demo: name, params, MACs, train time, accuracy, pointing game."""
    from cookbook.render import pages

    rows = []
    for recipe in registry.all_recipes():
        manifest = read_manifest(Path(docs_dir) / ASSETS / recipe.name)
        if manifest is None or "pointing_game" not in manifest.get("metrics", {}):
            continue
        m = manifest["metrics"]
        rows.append({"name": recipe.name, "title": recipe.title, "params": m["params"], "macs": m["macs"],
                     "train_seconds": m["train_seconds"], "test_accuracy": m["test_accuracy"],
                     "pointing_game": m["pointing_game"], "pointing_game_random": m["pointing_game_random"],
                     "device": pages.where(manifest)})
    return rows


def _write_comparison(docs_dir):
    """docs/assets/comparison.png: test accuracy against multiply-adds, one point per classifier demo."""
    from cookbook.render import figures

    rows = classifier_rows(docs_dir)
    if not rows:
        return
    plt = figures.pyplot()
    figure, ax = plt.subplots(figsize=(8, 4.5))
    from matplotlib.ticker import FuncFormatter

    points = [(row["macs"] / 1e6, row["test_accuracy"]) for row in rows]
    ax.scatter(*zip(*points), s=40, color="#4a6fa5")  # one colour: colours would mean nothing here
    ax.set_xscale("log")
    ax.margins(x=0.08, y=0.12)  # room for the labels of the points at the edges
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.set_xlabel("multiply-adds per example (millions, log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Demo builds on cluttered digits: accuracy against cost")
    ax.grid(alpha=0.3)
    figure.tight_layout()
    _label_points(figure, ax, points, [row["name"] for row in rows])
    figures.save(figure, Path(docs_dir) / "assets" / "comparison.png")


# Where a point's label may go, in order of preference: (dx, dy) in points, alignment.
_LABEL_SPOTS = [(6, 0, "left", "center"), (-6, 0, "right", "center"), (0, 6, "center", "bottom"),
                (0, -6, "center", "top"), (5, 5, "left", "bottom"), (5, -5, "left", "top"),
                (-5, 5, "right", "bottom"), (-5, -5, "right", "top")]


def _label_points(figure, ax, points, names):
    """Name each point at the first spot where its label stays inside the axes and overlaps
    no other label or point (at the first spot when none is free)."""
    from matplotlib.transforms import Bbox

    renderer = figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    taken = [Bbox.from_extents(px - 4, py - 4, px + 4, py + 4) for px, py in ax.transData.transform(points)]
    spots = _LABEL_SPOTS + _LABEL_SPOTS[:1]  # the last try: the first spot, free or not
    for (x, y), name in zip(points, names):
        for attempt, (dx, dy, ha, va) in enumerate(spots):
            label = ax.annotate(name, (x, y), textcoords="offset points", xytext=(dx, dy), ha=ha, va=va,
                                fontsize=9)
            box = label.get_window_extent(renderer)
            inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
            if (inside and not any(box.overlaps(other) for other in taken)) or attempt == len(spots) - 1:
                break
            label.remove()
        taken.append(box)


# --- progress --------------------------------------------------------------------------------


class _ProgressBar:
    """One bar over all steps of all recipes (tqdm when present, else plain lines)."""

    def __init__(self, total, enabled, unit="step"):
        self._bar = None
        self._enabled = enabled
        if enabled:
            try:
                from tqdm.auto import tqdm

                self._bar = tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True)
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

    def advance(self, steps=1):
        if self._bar is not None:
            self._bar.update(steps)

    def close(self):
        if self._bar is not None:
            self._bar.close()
