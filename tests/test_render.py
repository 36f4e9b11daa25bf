"""A quick render of one recipe into a temp folder writes every expected file, and resumes.

The expected files are derived from the manifest (one filter figure per stage with
responding units) and the figures are checked against facts computed independently
(keras.applications' parameter count, the recipe file's hash, the running backend, the
layer's map size, chance computed from the data's boxes).
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from cookbook import registry, render, runtime
from cookbook.render import pages

ROOT = Path(__file__).resolve().parents[1]
NAME = "xception"  # four stages and a small demo: the fastest full pipeline
# The quick render takes about 40 s on 2 cores: the tests that read it run in `make test`
# (marker "heavy"), keeping the default suite under 10 minutes.
HEAVY = pytest.mark.heavy


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    docs = tmp_path_factory.mktemp("docs")
    results = render.render([NAME], quick=True, docs_dir=docs, progress=False)
    return docs, results


def _png_size(path):
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return image.size


@HEAVY
def test_quick_render_writes_every_expected_file(rendered):
    docs, results = rendered
    folder = docs / "assets" / "recipes" / NAME
    assert [r.name for r in results] == [NAME] and not results[0].skipped
    expected = {"summary.md", "diagram.md", "training.md", "curve.png", "filters.md", "task.md", "footer.md",
                "gradcam.png", "gradcam_classes.png", "tsne.png", "neighbours.png", "probes.png", "manifest.json"}
    manifest = json.loads((folder / "manifest.json").read_text())
    expected |= {f"filters_{stage['stage']}.png" for stage in manifest["filters"] if stage["units"]}
    if shutil.which("dot"):
        expected.add("diagram.svg")
    present = {path.name for path in folder.iterdir()}
    assert expected <= present, f"missing: {sorted(expected - present)}"
    assert not [name for name in present if name.startswith(".")], "a temp file was left behind"
    assert set(manifest["files"]) | {"manifest.json"} == present, "the manifest must list exactly the files"
    for name in present:
        if name.endswith(".png"):
            width, height = _png_size(folder / name)
            assert width > 0 and height > 0


@HEAVY
def test_summary_shows_the_twin_parameter_count_and_costs(rendered):
    docs, _ = rendered
    text = (docs / "assets" / "recipes" / NAME / "summary.md").read_text()
    keras.backend.clear_session()
    twin = keras.applications.Xception(weights=None).count_params()
    assert f"{twin:,} parameters" in text
    assert "MAC" in text.upper(), "the cost table (parameters and MACs) is missing"
    assert "keras.applications.Xception" in text


@HEAVY
def test_manifest_keeps_the_metrics_the_pages_need(rendered):
    docs, _ = rendered
    manifest = json.loads((docs / "assets" / "recipes" / NAME / "manifest.json").read_text())
    m = manifest["metrics"]
    for key in ("test_accuracy", "pointing_game", "pointing_game_random", "gradcam_layer", "gradcam_grid",
                "train_seconds"):
        assert key in m, f"manifest metrics lack {key}"
    # The grid is the layer's own map size, read here from a fresh build of the demo.
    model = registry.get(NAME).build_demo()
    assert m["gradcam_grid"] == list(model.get_layer(m["gradcam_layer"]).output.shape[1:3])
    assert min(m["gradcam_grid"]) >= 6


@HEAVY
def test_quick_render_grad_cam_beats_its_random_baseline(rendered):
    """Even the quick render's model points at the digit more often than chance."""
    docs, _ = rendered
    m = json.loads((docs / "assets" / "recipes" / NAME / "manifest.json").read_text())["metrics"]
    # Chance, recomputed here from the data: the boxes' mean share of the canvas.
    from cookbook import data, train

    boxes = data.cluttered_digits(10, 10, train.QUICK_SIZES[2], size=64).test.boxes[: m["pointing_images"]]
    chance = float(np.mean((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / 64**2))
    assert m["pointing_game_random"] == pytest.approx(chance, abs=0.02)
    assert m["pointing_game"] > 1.5 * chance, f"pointing game {m['pointing_game']:.2f} vs chance {chance:.2f}"


@HEAVY
def test_snippets_are_made_from_the_manifest(rendered):
    docs, _ = rendered
    folder = docs / "assets" / "recipes" / NAME
    manifest = json.loads((folder / "manifest.json").read_text())
    for filename, text in pages.snippets(manifest).items():
        assert (folder / filename).read_text() == text
    footer = (folder / "footer.md").read_text()
    assert f"`{keras.backend.backend()}`" in footer and f"keras {keras.__version__}" in footer
    assert "CPU" in footer or "GPU" in footer
    file_hash = hashlib.sha256((ROOT / "recipes" / f"{NAME}.py").read_bytes()).hexdigest()[:16]
    assert manifest["key"]["source_hash"] == file_hash and manifest["key"]["quick"] is True


@HEAVY
def test_a_second_render_skips_what_is_up_to_date(rendered):
    docs, _ = rendered
    folder = docs / "assets" / "recipes" / NAME
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    results = render.render([NAME], quick=True, docs_dir=docs, progress=False)
    assert results[0].skipped
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


@HEAVY
def test_a_killed_render_is_not_taken_for_a_finished_one(rendered):
    """Without its manifest (written last), a folder is redone; a changed file is caught too."""
    docs, _ = rendered
    recipe = registry.get(NAME)
    folder = docs / "assets" / "recipes" / NAME
    assert render.up_to_date(recipe, folder, quick=True)
    assert not render.up_to_date(recipe, folder, quick=False)  # other settings
    copy = docs / "copy"
    copy.mkdir()
    for path in folder.iterdir():
        if path.name != "manifest.json":
            (copy / path.name).write_bytes(path.read_bytes())
    assert not render.up_to_date(recipe, copy, quick=True)


@HEAVY
def test_force_renders_again_and_up_to_date_recipes_are_reported(rendered, monkeypatch):
    docs, _ = rendered
    calls = []
    monkeypatch.setattr(render, "_render_recipe", lambda recipe, *args: calls.append(recipe.name) or
                        render._result_from_manifest(recipe, docs / "assets" / "recipes" / recipe.name,
                                                     render.read_manifest(docs / "assets" / "recipes" / NAME),
                                                     skipped=False))
    monkeypatch.setattr(render, "_write_comparison", lambda docs_dir: None)
    assert render.render([NAME], quick=True, docs_dir=docs, progress=False)[0].skipped and not calls
    assert not render.render([NAME], quick=True, docs_dir=docs, progress=False, force=True)[0].skipped
    assert calls == [NAME]


@pytest.mark.skipif(bool(runtime.gpu_names(keras.backend.backend())), reason="a GPU is visible")
@HEAVY
def test_device_gpu_without_a_gpu_fails_at_once(rendered):
    docs, _ = rendered  # everything there is up to date: it must fail all the same
    with pytest.raises(RuntimeError, match="GPU"):
        render.render([NAME], quick=True, docs_dir=docs, progress=False, device="gpu")


@pytest.mark.parametrize(
    ("kwargs", "error", "word"),
    [
        ({"names": "residual"}, TypeError, "names"),
        ({"names": ["no_such_recipe"]}, ValueError, "no_such_recipe"),
        ({"quick": "yes"}, TypeError, "quick"),
        ({"device": "tpu"}, ValueError, "device"),
        ({"docs_dir": 3}, TypeError, "docs_dir"),
        ({"progress": None}, TypeError, "progress"),
        ({"force": 1}, TypeError, "force"),
        ({"jobs": 0}, ValueError, "jobs"),
        ({"jobs": "2"}, TypeError, "jobs"),
        ({"jobs": True}, TypeError, "jobs"),
    ],
)
def test_bad_arguments_fail_early_and_name_the_argument(kwargs, error, word):
    with pytest.raises(error, match=word):
        render.render(**kwargs)


def test_a_page_that_shows_another_demo_renders_in_its_process():
    """FCN's score map shows AlexNet's demo: rendered side by side, the two share a process
    (so the demo trains once); without AlexNet to render, FCN goes alone."""
    recipes = [registry.get(name) for name in ("alexnet", "audio", "fcn", "vgg")]
    assert render._groups(recipes) == [["alexnet", "fcn"], ["audio"], ["vgg"]]
    assert render._groups(recipes[1:]) == [["audio"], ["fcn"], ["vgg"]]


@pytest.mark.parametrize(("cores", "jobs"), [(1, 1), (2, 2), (64, render.MAX_AUTO_JOBS)])
def test_auto_jobs_is_one_per_core_on_the_cpu_and_one_on_a_gpu(monkeypatch, cores, jobs):
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert render.auto_jobs("cpu") == jobs
    assert render.auto_jobs("gpu") == 1


@HEAVY
def test_recipes_rendered_side_by_side_are_complete_and_say_so(tmp_path):
    names = ["vae", "highway"]
    results = render.render(names, quick=True, docs_dir=tmp_path, progress=False, jobs=2)
    assert [r.name for r in results] == names and not any(r.skipped for r in results)
    for name in names:
        folder = tmp_path / "assets" / "recipes" / name
        manifest = render.up_to_date(registry.get(name), folder, quick=True)
        assert manifest and manifest["side_by_side"] == 2
        assert "(2 recipes rendered at a time)" in (folder / "footer.md").read_text()
    assert render.render(names, quick=True, docs_dir=tmp_path, progress=False, jobs=2)[0].skipped


def _classifier(head):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    for layer in head:
        x = layer(x)
    return keras.Model(inputs, x)


@pytest.mark.parametrize(("head", "hidden"), [
    # global pooling, dropout, dense softmax (Xception, ResNet): the pooled features
    ([keras.layers.GlobalAveragePooling2D(name="pool"), keras.layers.Dropout(0.5, name="drop"),
      keras.layers.Dense(3, activation="softmax", name="predictions")], "pool"),
    # fully connected layers (AlexNet, VGG): the last one before the classifier, past its dropout
    ([keras.layers.Flatten(name="flat"), keras.layers.Dense(5, name="fc"), keras.layers.Dropout(0.5, name="drop"),
      keras.layers.Dense(3, name="logits"), keras.layers.Activation("softmax", name="predictions")], "fc"),
    # a 1x1 convolution classifier, then pooling and a softmax (SqueezeNet): the map it reads
    ([keras.layers.Conv2D(6, 3, name="fire"), keras.layers.Dropout(0.5, name="drop"),
      keras.layers.Conv2D(3, 1, name="classifier"), keras.layers.GlobalAveragePooling2D(name="pool"),
      keras.layers.Activation("softmax", name="predictions")], "fire"),
])
def test_hidden_layer_is_the_one_the_classifier_reads(head, hidden):
    from cookbook.render import views

    assert views.hidden_layer(_classifier(head)).name == hidden


def test_render_module_does_not_import_tensorflow():
    """With KERAS_BACKEND=jax the render must not need TensorFlow: importing it pulls none in."""
    code = "import sys, cookbook.render; sys.exit('tensorflow' in sys.modules)"
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    assert subprocess.run([sys.executable, "-c", code], check=False, env=env, cwd=ROOT, timeout=120).returncode == 0


def test_summary_only_rewrites_the_cost_tables_of_fresh_renders_alone(tmp_path):
    """`cookbook render --summary-only`: summary.md is rebuilt from the recipe file without
    training; every other file stays byte for byte, and the render stays up to date. A
    stale render (another recipe file's hash) is left for a real render."""
    for name in ("alexnet", "vgg"):
        shutil.copytree(ROOT / "docs" / "assets" / "recipes" / name, tmp_path / "assets" / "recipes" / name)
    stale = tmp_path / "assets" / "recipes" / "vgg"
    manifest = json.loads((stale / "manifest.json").read_text())
    manifest["key"]["source_hash"] = "0" * 16
    (stale / "manifest.json").write_text(json.dumps(manifest))
    folder = tmp_path / "assets" / "recipes" / "alexnet"
    (folder / "summary.md").write_text("| block | layers | params | MACs |\n")  # an older table
    json_path = folder / "manifest.json"
    manifest = json.loads(json_path.read_text())
    manifest["files"]["summary.md"] = hashlib.sha256((folder / "summary.md").read_bytes()).hexdigest()[:16]
    json_path.write_text(json.dumps(manifest))
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.name not in ("summary.md", "manifest.json")}

    assert render.refresh_summaries(["alexnet", "vgg"], docs_dir=tmp_path) == ["alexnet"]
    text = (folder / "summary.md").read_text()
    assert "| block | layers | params | MACs | receptive field |" in text
    assert "| conv1 | 3 | 34,944 | 105.42 M | 19\u00d719 |" in text  # 11x11/4 conv, then a 3x3/2 pool: 11 + 2 * 4
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.name not in ("summary.md", "manifest.json")} == before
    assert render.up_to_date(registry.get("alexnet"), folder, quick=False) is not None
    assert (stale / "summary.md").read_text() == (ROOT / "docs/assets/recipes/vgg/summary.md").read_text()


def test_a_demo_two_pages_show_is_trained_once_per_process(monkeypatch):
    """FCN's score map shows AlexNet's demo: one render trains it once, so both pages show
    the same model and the same accuracy. Other demos are not kept (their data is large)."""
    from cookbook import train
    from cookbook.render import views

    calls = []
    monkeypatch.setattr(train, "train_recipe", lambda name, **kwargs: calls.append(name) or object())
    monkeypatch.setattr(views, "_shared", {})
    first = views.trained_demo(views.SCORE_MAP_CLASSIFIER, quick=True)
    assert views.trained_demo(views.SCORE_MAP_CLASSIFIER, quick=True) is first
    assert views.trained_demo(views.SCORE_MAP_CLASSIFIER, quick=False) is not first  # other settings
    views.trained_demo("xception", quick=True)
    views.trained_demo("xception", quick=True)
    assert calls == [views.SCORE_MAP_CLASSIFIER, views.SCORE_MAP_CLASSIFIER, "xception", "xception"]
