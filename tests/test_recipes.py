"""One parameterized suite that tests every recipe in the registry the same way.

A new file in recipes/ is tested here the moment it exists: its builders, its
blocks, its demo configuration and, where keras.applications has the same model,
parity in parameters and in outputs from transplanted weights.
"""

import inspect

import keras
import numpy as np
import pytest

from cookbook import registry
from conftest import compile_for, tiny_batch

RECIPES = registry.all_recipes()
BUILDERS = registry.all_builders()
# The deepest twins and demos cost the most to build and trace: they run in `make test`
# (marker "heavy") rather than the default suite, which must stay under 10 minutes.
HEAVY_TWINS = {"resnet101", "resnet152", "resnet101v2", "resnet152v2", "densenet169", "densenet201"}
HEAVY_DEMOS = {"inception_v3", "bagnet", "inception_v1", "mobilenet", "resnext"}
TWINS = [
    pytest.param(recipe, builder, marks=[pytest.mark.heavy] if builder in HEAVY_TWINS else [],
                 id=f"{recipe.name}.{builder}")
    for recipe, builder in BUILDERS if recipe.twin(builder)
]
DEMO_TRAINING = [
    pytest.param(recipe, marks=[pytest.mark.heavy] if recipe.name in HEAVY_DEMOS else [], id=recipe.name)
    for recipe in RECIPES
]
BLOCKS = [(recipe, block) for recipe in RECIPES for block in recipe.blocks]


def _id(pair):
    return f"{pair[0].name}.{pair[1]}"


def _walk(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _walk(layer)


# --- metadata -----------------------------------------------------------------------


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.name)
def test_metadata_is_complete(recipe):
    assert recipe.title and recipe.idea, "module docstring needs a title line and the idea"
    assert recipe.papers and recipe.family
    assert recipe.default_builder in recipe.builders
    assert recipe.demo["builder"] in recipe.builders
    assert recipe.stages, "STAGES names the layers the docs visualize"
    source = recipe.source
    for forbidden in ("import tensorflow", "tf.keras", "keras.src", "layers.Lambda", "import cookbook"):
        assert forbidden not in source, f"recipes/{recipe.name}.py must not use {forbidden!r}"


# --- every builder ------------------------------------------------------------------


@pytest.mark.parametrize("pair", BUILDERS, ids=_id)
def test_builder_builds_small(pair):
    recipe, builder = pair
    kwargs = recipe.builders[builder].get("small", {})
    model = recipe.builder(builder)(**kwargs)
    assert isinstance(model, keras.Model)
    if "classes" in kwargs:
        assert all(output.shape[-1] == kwargs["classes"] for output in model.outputs)
    layers = list(_walk(model))
    assert not any(type(layer).__name__ == "Lambda" for layer in layers)
    assert not any(isinstance(layer, keras.Model) for layer in model.layers), "blocks must stay top-level"
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names)), "layer names must be unique and deterministic"


def _bad_shapes(shape):
    """A too-small input and one of the wrong rank, for an image or an audio input."""
    too_small = (2,) * (len(shape) - 1) + (shape[-1],)
    return [too_small, tuple(shape[:-1])]


@pytest.mark.parametrize("pair", BUILDERS, ids=_id)
def test_builder_rejects_bad_arguments(pair):
    recipe, builder = pair
    build = recipe.builder(builder)
    params = inspect.signature(build).parameters
    small = dict(recipe.builders[builder].get("small", {}))
    cases = []
    if "input_shape" in params:
        shape = small.get("input_shape", params["input_shape"].default)
        cases += [({"input_shape": bad}, ValueError, "input_shape") for bad in _bad_shapes(shape)]
    if "pooling" in params:
        cases.append(({"pooling": "median", "include_top": False}, ValueError, "pooling"))
    if "classes" in params:
        cases += [({"classes": 0}, ValueError, "classes"), ({"classes": "ten"}, TypeError, "classes")]
    assert cases, f"{builder} takes none of input_shape, pooling, classes"
    for override, error, argument in cases:
        with pytest.raises(error, match=argument):
            build(**{**small, **override})


# --- every block ----------------------------------------------------------------------


def _bad_values(value):
    if isinstance(value, bool):
        return [("yes", TypeError)]
    if isinstance(value, int):
        return [(0, ValueError), (-3, ValueError), ("8", TypeError), (2.5, TypeError)]
    if isinstance(value, float):
        return [(-1.0, ValueError), ("0.5", TypeError)]
    if isinstance(value, str):
        return [("no-such-option", ValueError)]
    return []


@pytest.mark.parametrize("pair", BLOCKS, ids=_id)
def test_block_builds_and_rejects_bad_arguments(pair):
    recipe, block_name = pair
    block = recipe.block(block_name)
    example = recipe.blocks[block_name]
    inputs = keras.Input(shape=example["input_shape"])
    outputs = block(inputs, **example["kwargs"], name="probe")
    model = keras.Model(inputs, outputs)
    assert model.count_params() > 0 or "pool" in block_name
    for argument, value in example["kwargs"].items():
        for bad, error in _bad_values(value):
            with pytest.raises(error, match=argument):
                block(keras.Input(shape=example["input_shape"]), **{**example["kwargs"], argument: bad},
                      name="bad")


# --- the demo configuration: gradients, learning, serialization ---------------------


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.name)
def test_demo_stage_layers_exist(recipe):
    model = recipe.build_demo()
    names = {layer.name for layer in model.layers}
    missing = [stage for stage in recipe.stages if stage not in names]
    assert not missing, f"STAGES names layers the demo build lacks: {missing}"


@pytest.mark.parametrize("recipe", DEMO_TRAINING)
def test_demo_trains_every_weight_and_lowers_the_loss(recipe):
    """A few Adam steps on a tiny batch: the loss goes down and every weight moves.

    Plain Adam leaves a weight whose gradient is always zero exactly where it was,
    so a weight that did not move is a weight that got no gradient.
    """
    model = recipe.build_demo()
    x, y = tiny_batch(recipe, model, n=8)
    compile_for(recipe, model, keras.optimizers.Adam(learning_rate=1e-3))
    before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    losses = [float(np.ravel(model.train_on_batch(x, y))[0]) for _ in range(12)]
    frozen = [
        w.path for w, old in zip(model.trainable_weights, before)
        if np.array_equal(keras.ops.convert_to_numpy(w), old)
    ]
    assert not frozen, f"weights that got no gradient: {frozen}"
    assert np.mean(losses[-3:]) < losses[0], f"loss did not go down: {losses}"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.name)
def test_demo_keras_round_trip(recipe, tmp_path):
    model = recipe.build_demo()
    x, _ = tiny_batch(recipe, model, n=2)
    path = tmp_path / f"{recipe.name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    for ours, theirs in zip(_as_list(model.predict(x, verbose=0)), _as_list(loaded.predict(x, verbose=0))):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def _as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


# --- parity with keras.applications -------------------------------------------------


def _randomize_batchnorm(model, rng):
    """Random BN statistics, so a transplant that swaps mean and variance cannot pass."""
    for layer in _walk(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            for weight in layer.weights:
                shape = tuple(weight.shape)
                if "variance" in weight.path:
                    weight.assign(rng.uniform(0.5, 1.5, shape).astype("float32"))
                else:
                    weight.assign(rng.normal(0, 0.2, shape).astype("float32") + ("gamma" in weight.path))


@pytest.mark.parametrize("recipe, builder", TWINS)
def test_twin_parity(recipe, builder):
    """Same parameter count, same weight shapes in the same order, same outputs."""
    twin = getattr(keras.applications, recipe.twin(builder))(weights=None, classifier_activation=None)
    ours = recipe.builder(builder)(classifier_activation=None)
    assert ours.count_params() == twin.count_params()
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in twin.weights]

    rng = np.random.default_rng(0)
    _randomize_batchnorm(twin, rng)
    ours.set_weights(twin.get_weights())
    x = rng.uniform(-1, 1, size=(2, *twin.input_shape[1:])).astype("float32")
    expected = keras.ops.convert_to_numpy(twin(x, training=False))
    got = keras.ops.convert_to_numpy(ours(x, training=False))
    scale = max(1.0, float(np.abs(expected).max()))
    assert np.abs(got - expected).max() / scale <= 1e-4
