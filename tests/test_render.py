"""A quick render of one recipe into a temp folder writes every expected file, and resumes.

The expected files are derived here from the recipe's metadata (one filter figure per
entry of STAGES) and the figures are checked against facts computed independently
(keras.applications' parameter count, the recipe file's hash, the running backend).
"""

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from cookbook import registry, render

ROOT = Path(__file__).resolve().parents[1]
NAME = "xception"  # four stages and a small demo: the fastest full pipeline


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


def test_quick_render_writes_every_expected_file(rendered):
    docs, results = rendered
    recipe = registry.get(NAME)
    folder = docs / "assets" / "recipes" / NAME
    assert [r.name for r in results] == [NAME] and not results[0].skipped
    expected = {"summary.md", "diagram.md", "training.md", "curve.png", "filters.md", "task.md", "footer.md",
                "gradcam.png", "manifest.json"}
    expected |= {f"filters_{stage}.png" for stage in recipe.stages}
    expected |= {f"filters_{stage}.md" for stage in recipe.stages}
    present = {path.name for path in folder.iterdir()}
    assert expected <= present, f"missing: {sorted(expected - present)}"
    assert not [name for name in present if name.startswith(".")], "a temp file was left behind"
    for name in present:
        if name.endswith(".png"):
            width, height = _png_size(folder / name)
            assert width > 0 and height > 0


def test_summary_shows_the_twin_parameter_count_and_costs(rendered):
    docs, _ = rendered
    text = (docs / "assets" / "recipes" / NAME / "summary.md").read_text()
    keras.backend.clear_session()
    twin = keras.applications.Xception(weights=None).count_params()
    assert f"{twin:,} parameters" in text
    assert "MAC" in text.upper(), "the cost table (parameters and MACs) is missing"
    assert "keras.applications.Xception" in text


def test_task_view_scores_grad_cam_with_the_pointing_game(rendered):
    docs, _ = rendered
    text = (docs / "assets" / "recipes" / NAME / "task.md").read_text()
    score = float(re.search(r"Pointing game: ([0-9.]+)", text).group(1))
    chance = float(re.search(r"would score about ([0-9.]+)", text).group(1))
    assert 0.0 <= score <= 1.0 and 0.0 < chance < 0.5


def test_footer_and_manifest_describe_the_run(rendered):
    docs, _ = rendered
    folder = docs / "assets" / "recipes" / NAME
    footer = (folder / "footer.md").read_text()
    assert f"`{keras.backend.backend()}`" in footer and f"keras {keras.__version__}" in footer
    assert "CPU" in footer or "GPU" in footer
    manifest = json.loads((folder / "manifest.json").read_text())
    file_hash = hashlib.sha256((ROOT / "recipes" / f"{NAME}.py").read_bytes()).hexdigest()[:16]
    assert manifest["key"]["source_hash"] == file_hash and manifest["key"]["quick"] is True
    assert 0.0 <= manifest["metrics"]["test_accuracy"] <= 1.0


def test_a_second_render_skips_what_is_up_to_date(rendered):
    docs, _ = rendered
    folder = docs / "assets" / "recipes" / NAME
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    results = render.render([NAME], quick=True, docs_dir=docs, progress=False)
    assert results[0].skipped
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


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


@pytest.mark.parametrize(
    ("kwargs", "error", "word"),
    [
        ({"names": "residual"}, TypeError, "names"),
        ({"names": ["no_such_recipe"]}, ValueError, "no_such_recipe"),
        ({"quick": "yes"}, TypeError, "quick"),
        ({"device": "tpu"}, ValueError, "device"),
        ({"docs_dir": 3}, TypeError, "docs_dir"),
        ({"progress": None}, TypeError, "progress"),
    ],
)
def test_bad_arguments_fail_early_and_name_the_argument(kwargs, error, word):
    with pytest.raises(error, match=word):
        render.render(**kwargs)


def test_render_module_does_not_import_tensorflow():
    """With KERAS_BACKEND=jax the render must not need TensorFlow: importing it pulls none in."""
    code = "import sys, cookbook.render; sys.exit('tensorflow' in sys.modules)"
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    assert subprocess.run([sys.executable, "-c", code], check=False, env=env, cwd=ROOT, timeout=120).returncode == 0


def test_saliency_1d_is_the_input_gradient():
    """The optimizer trick behind the audio saliency equals a finite difference of the loss."""
    inputs = keras.Input((16, 1))
    x = keras.layers.Conv1D(3, 3, activation="tanh")(inputs)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    clip = np.random.default_rng(0).normal(size=(1, 16, 1)).astype("float32")
    got = render._saliency_1d(model, clip, np.array([1]))[0]

    def loss(signal):
        p = np.asarray(model.predict(signal, verbose=0))[0, 1]
        return -np.log(p)

    eps = 1e-2
    for i in (0, 7, 15):
        up, down = clip.copy(), clip.copy()
        up[0, i, 0] += eps
        down[0, i, 0] -= eps
        numeric = abs(loss(up) - loss(down)) / (2 * eps)
        assert got[i] == pytest.approx(numeric, rel=0.05, abs=1e-4)
