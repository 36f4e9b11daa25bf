"""Hardening of the models themselves: serialization, SavedModel export, determinism.

* every builder's small build (tests/recipe_fixtures.py) survives a ``.keras`` round trip with ``safe_mode=True``
  (the DEMO builds are covered by tests/test_recipes.py; this one builds every builder,
  so it runs with ``-m slow``);
* every image recipe's DEMO build exports with ``model.export()`` (a TensorFlow
  SavedModel) and the reloaded artifact gives the same outputs;
* with a seed, building the residual DEMO model and taking one training step gives
  bit-identical weights in two separate processes (TensorFlow backend, CPU).

The Lambda-layer walk over every registered model is in tests/test_recipes.py
(``test_builder_builds_small``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from cookbook import registry
from conftest import tiny_batch
from recipe_fixtures import SMALL

RECIPES = registry.all_recipes()
BUILDERS = [(recipe.name, builder) for recipe, builder in registry.all_builders()]
BY_NAME = {recipe.name: recipe for recipe in RECIPES}
ROOT = Path(__file__).resolve().parents[1]


def _as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _numpy(outputs):
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    return [keras.ops.convert_to_numpy(o) for o in _as_list(outputs)]


# --- .keras round trip of every builder's small build ------------------------------------


@pytest.mark.slow  # builds, saves and reloads all ~45 builders (minutes on 2 cores)
@pytest.mark.parametrize("pair", BUILDERS, ids=lambda p: f"{p[0]}.{p[1]}")
def test_small_build_keras_round_trip(pair, tmp_path):
    recipe, builder = BY_NAME[pair[0]], pair[1]
    model = recipe.builder(builder)(**SMALL[recipe.name][builder])
    x, _ = tiny_batch(recipe, model, n=2)
    path = tmp_path / f"{builder}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    for ours, theirs in zip(_numpy(model(x, training=False)), _numpy(loaded(x, training=False))):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


# --- SavedModel export of the image models -------------------------------------------------


def _is_image_recipe(recipe):
    return len(recipe.demo["kwargs"].get("input_shape", ())) == 3


IMAGE_RECIPES = [recipe.name for recipe in RECIPES if _is_image_recipe(recipe)]


@pytest.mark.slow  # 11 SavedModel exports: minutes on 2 cores
@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="model.export() writes a TensorFlow SavedModel: TensorFlow backend only")
@pytest.mark.parametrize("name", IMAGE_RECIPES)
def test_demo_exports_saved_model(name, tmp_path):
    recipe = BY_NAME[name]
    model = recipe.build_demo()
    x, _ = tiny_batch(recipe, model, n=2)
    path = tmp_path / f"{name}_savedmodel"
    model.export(str(path), format="tf_saved_model", verbose=False)
    assert (path / "saved_model.pb").is_file()
    served = keras.layers.TFSMLayer(str(path), call_endpoint="serve")
    expected = _numpy(model(x, training=False))
    got = _numpy(served(x))
    assert len(got) == len(expected)
    for ours, theirs in zip(expected, got):
        np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-5)


# --- determinism: two processes, same seed, same weights ------------------------------------

_ONE_STEP = textwrap.dedent("""
    import sys
    import keras
    import numpy as np
    from cookbook import registry

    seed, out = int(sys.argv[1]), sys.argv[2]
    keras.utils.set_random_seed(seed)
    recipe = registry.get("residual")
    model = recipe.build_demo()
    initial = [keras.ops.convert_to_numpy(w) for w in model.weights]
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, size=(8, *model.input_shape[1:])).astype("float32")
    y = rng.integers(0, model.output_shape[-1], size=(8,))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  jit_compile=False)
    loss = float(np.ravel(model.train_on_batch(x, y))[0])
    after = [keras.ops.convert_to_numpy(w) for w in model.weights]
    changed = sum(not np.array_equal(a, b) for a, b in zip(initial, after))
    keras.utils.set_random_seed(seed + 1)
    other = [keras.ops.convert_to_numpy(w) for w in recipe.build_demo().weights]
    differs = sum(not np.array_equal(a, b) for a, b in zip(initial, other))
    np.savez(out, loss=loss, changed=changed, differs=differs, backend=keras.backend.backend(),
             **{f"w{i}": w for i, w in enumerate(after)})
""")


@pytest.mark.heavy  # subprocesses / long training: runs in make test, not the default suite
def test_seeded_build_and_step_is_deterministic_across_processes(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "CUDA_VISIBLE_DEVICES": "",
           "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    outs = [tmp_path / f"run{i}.npz" for i in (1, 2)]
    runs = [subprocess.Popen([sys.executable, "-c", _ONE_STEP, "1234", str(out)], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for out in outs]
    for run in runs:
        log, _ = run.communicate(timeout=540)
        assert run.returncode == 0, log[-3000:]
    first, second = (dict(np.load(out)) for out in outs)
    assert str(first["backend"]) == "tensorflow"
    assert int(first["changed"]) > 0, "the training step changed no weight: the test would prove nothing"
    assert int(first["differs"]) > 0, "another seed gives the same initial weights: the seed is not used"
    weights = sorted(key for key in first if key.startswith("w"))
    assert weights == sorted(key for key in second if key.startswith("w"))
    assert float(first["loss"]) == float(second["loss"])
    unequal = [key for key in weights if not np.array_equal(first[key], second[key])]
    assert not unequal, f"{len(unequal)} of {len(weights)} weights differ between two seeded runs"
