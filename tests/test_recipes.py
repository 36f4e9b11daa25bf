"""One parameterized suite that tests every recipe in the registry the same way.

A new file in recipes/ is tested here the moment it exists: the recipe contract
(docs/contributing.md), its builders and blocks, its feature stages, its demo
configuration and, where keras.applications has the same model, parity in parameters
and in outputs from transplanted weights. keras.applications' own test protocol
(keras/src/applications/applications_test.py: variable input channels, a 123x123
input, an input tensor, max pooling, the classifier activation, a serialization round
trip) is in tests/test_applications_protocol.py.
"""

import ast
import importlib.util
import inspect
from pathlib import Path

import keras
import numpy as np
import pytest

from cookbook import registry, tasks
from conftest import compile_for, tiny_batch
from recipe_fixtures import BLOCKS as BLOCK_CALLS
from recipe_fixtures import SMALL

ROOT = Path(__file__).resolve().parents[1]
RECIPES = registry.all_recipes()
# The default suite (under 10 minutes on 2 cores) builds each recipe's demo builder, small
# by design; the other builders, the slowest demos and most twins' full-size parity run in
# `make test` (marker "heavy"), so every check still runs on every builder there.
HEAVY_DEMOS = {"inception_v3", "bagnet", "inception_v1", "mobilenet", "resnext", "residual", "densenet", "xception",
               "vgg", "inception_resnet", "squeezenet", "fcn", "inception_v4"}
PARITY_IN_DEFAULT = {"resnet50", "mobilenet"}  # one bottleneck ResNet, one separable net
IMAGENET_IN_DEFAULT = {"mobilenet"}  # loading "imagenet" through the twin: one mechanism for every twin


def _heavy_if(condition):
    return [pytest.mark.heavy] if condition else []


BUILDERS = registry.all_builders()
TWINS = [
    pytest.param(recipe, builder, marks=_heavy_if(builder not in PARITY_IN_DEFAULT), id=f"{recipe.name}.{builder}")
    for recipe, builder in BUILDERS if recipe.twin(builder)
]
TWIN_LOADS = [
    pytest.param(recipe, builder, marks=_heavy_if(builder not in IMAGENET_IN_DEFAULT), id=f"{recipe.name}.{builder}")
    for recipe, builder in BUILDERS if recipe.twin(builder)
]
DEMOS = [pytest.param(recipe, marks=_heavy_if(recipe.name in HEAVY_DEMOS), id=recipe.name) for recipe in RECIPES]
BLOCKS = [(recipe, block) for recipe in RECIPES for block in recipe.blocks]
CLASSIFIERS = [(recipe, builder) for recipe, builder in BUILDERS if tasks.get(recipe.task).target == "labels"]


def _builds(pairs):
    """(recipe, builder) pairs as one parameter each; all but the demo builders marked heavy."""
    return [pytest.param(pair, marks=_heavy_if(pair[1] != pair[0].demo["builder"]), id=f"{pair[0].name}.{pair[1]}")
            for pair in pairs]


APPLICATIONS_SIGNATURE = (
    ("include_top", True), ("weights", None), ("input_tensor", None), ("input_shape", None), ("pooling", None),
    ("classes", 1000), ("classifier_activation", "softmax"),
)
METADATA_MARK = "# --- cookbook metadata"
OWN_CLASSES = {"resnet_cifar": 10}  # builders whose classes default is their dataset's (CIFAR-10), not ImageNet's


def _id(pair):
    return f"{pair[0].name}.{pair[1]}"


def _small(recipe, builder):
    return dict(SMALL[recipe.name][builder])


def _walk(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _walk(layer)


def _as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _line_counter():
    spec = importlib.util.spec_from_file_location("recipe_lines", ROOT / "benchmarks" / "recipe_lines.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the contract: what a reader and a copier see ---------------------------------------


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.name)
def test_file_follows_the_contract(recipe):
    source = recipe.source
    assert recipe.title and recipe.idea, "module docstring needs a title line and the idea"
    assert recipe.papers and recipe.family
    assert recipe.default_builder in recipe.builders and recipe.demo["builder"] in recipe.builders
    for forbidden in ("import tensorflow", "tf.keras", "keras.src", "layers.Lambda", "import cookbook",
                      "course notes", "listing ", "references.md", "performance.md"):
        assert forbidden not in source, f"recipes/{recipe.name}.py must not contain {forbidden!r}"
    # The metadata comes last, after one marked line: a copied file can drop it in one cut.
    assert source.count(METADATA_MARK) == 1, f"one {METADATA_MARK!r} line"
    tree = ast.parse(source)
    mark = source[: source.index(METADATA_MARK)].count("\n") + 1
    after = [node for node in tree.body if node.lineno > mark]
    assert after and all(isinstance(node, ast.Assign) for node in after), "only constants after the mark"
    assert {node.targets[0].id for node in after} >= {"FAMILY", "PAPERS", "TASK", "BUILDERS", "DEMO"}
    constants = {node.targets[0].id for node in tree.body if isinstance(node, ast.Assign)
                 and isinstance(node.targets[0], ast.Name)}
    assert not {"BLOCKS", "STAGES"} & constants and '"small"' not in source, "fixtures live in tests/"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.name)
def test_file_is_short_and_argument_checks_are_few(recipe):
    """At most 300 lines, and argument checks at most 10 % of the code lines
    (measured by benchmarks/recipe_lines.py, which prints the table)."""
    measured = _line_counter().measure(recipe.path)
    assert measured["lines"] <= 300, measured
    assert measured["check_share"] <= 0.10, measured


@pytest.mark.parametrize("pair", CLASSIFIERS, ids=_id)
def test_classifier_takes_the_keras_applications_signature(pair):
    recipe, builder = pair
    function = recipe.builder(builder)
    assert inspect.isfunction(function) and function.__name__ == builder, "a real def, not a closure"
    assert inspect.getdoc(function), f"{builder} needs a docstring"
    params = list(inspect.signature(function).parameters.values())
    head = [(p.name, p.default) for p in params[: len(APPLICATIONS_SIGNATURE)]]
    expected = [(n, OWN_CLASSES.get(builder, d) if n == "classes" else d) for n, d in APPLICATIONS_SIGNATURE]
    assert head == expected, head
    assert params[len(APPLICATIONS_SIGNATURE)].name == "name"
    assert params[len(APPLICATIONS_SIGNATURE)].default == builder
    rest = params[len(APPLICATIONS_SIGNATURE) + 1:]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in rest), "family knobs are keyword-only"


def test_one_name_per_knob():
    """The knobs several families share have one name (docs/contributing.md)."""
    synonyms = {"depths", "sizes", "num_stages", "aux_classifier", "aux_heads", "width_multiplier",
                "dropout_rate", "stem_strides", "rescale"}
    for recipe, builder in BUILDERS:
        used = synonyms & set(inspect.signature(recipe.builder(builder)).parameters)
        assert not used, f"{recipe.name}.{builder} takes {used}"


# --- every builder ------------------------------------------------------------------


@pytest.mark.parametrize("pair", _builds(BUILDERS))
def test_builder_builds_small(pair):
    recipe, builder = pair
    kwargs = _small(recipe, builder)
    model = recipe.builder(builder)(**kwargs)
    assert isinstance(model, keras.Model)
    assert model.name == builder
    if "classes" in kwargs:
        assert all(output.shape[-1] == kwargs["classes"] for output in model.outputs)
    layers = list(_walk(model))
    assert not any(type(layer).__name__ == "Lambda" for layer in layers)
    assert not any(isinstance(layer, keras.Model) for layer in model.layers), "blocks must stay top-level"
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names)), "layer names must be unique and deterministic"


@pytest.mark.parametrize("pair", _builds(BUILDERS))
def test_feature_stages_name_stage_outputs_of_any_build(pair):
    """feature_stages(model) is valid for the model this builder returns, at its small size."""
    recipe, builder = pair
    model = recipe.builder(builder)(**_small(recipe, builder))
    stages = recipe.feature_stages(model)
    order = [layer.name for layer in model.layers]
    assert len(stages) >= 2, stages
    assert all(stage in order for stage in stages), stages
    assert [order.index(stage) for stage in stages] == sorted(order.index(stage) for stage in set(stages))
    rank = len(model.inputs[0].shape)
    assert all(len(model.get_layer(stage).output.shape) >= rank for stage in stages), "spatial outputs"


@pytest.mark.parametrize("pair", _builds(BUILDERS))
def test_builder_rejects_bad_arguments(pair):
    """An input too small for the network, of the wrong rank, or an unknown pooling: a
    clear error naming the argument (never a shape error from deep inside Keras)."""
    recipe, builder = pair
    build = recipe.builder(builder)
    params = inspect.signature(build).parameters
    small = _small(recipe, builder)
    shape = small["input_shape"]
    cases = [({"input_shape": (2,) * (len(shape) - 1) + (shape[-1],)}, "input_shape"),
             ({"input_shape": tuple(shape[:-1])}, "input_shape")]
    if "pooling" in params:
        cases.append(({"pooling": "median", "include_top": False}, "pooling"))
    for override, argument in cases:
        with pytest.raises(ValueError, match=argument):
            build(**{**small, **override})


@pytest.mark.parametrize("pair", _builds(CLASSIFIERS))
def test_classifier_takes_numpy_integers_and_rejects_zero_classes(pair):
    recipe, builder = pair
    small = _small(recipe, builder)
    shape = tuple(np.int64(size) for size in small["input_shape"])
    model = recipe.builder(builder)(**{**small, "input_shape": shape, "classes": np.int64(7)})
    assert model.outputs[0].shape[-1] == 7
    keras.backend.clear_session(free_memory=False)
    with pytest.raises(ValueError, match="classes|units"):  # Keras's Dense names its units
        recipe.builder(builder)(**{**small, "classes": 0})


@pytest.mark.parametrize("pair", _builds(CLASSIFIERS))
def test_classifier_output_is_float32_under_mixed_precision(pair):
    """The Keras mixed-precision guide: compute the final activation in float32."""
    recipe, builder = pair
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = recipe.builder(builder)(**_small(recipe, builder))
    finally:
        keras.config.set_dtype_policy("float32")
    assert all(output.dtype == "float32" for output in model.outputs), [o.dtype for o in model.outputs]
    assert any(layer.compute_dtype == "float16" for layer in model.layers), "the body runs in float16"


def test_weights_imagenet_needs_a_twin():
    for recipe, builder in CLASSIFIERS:
        if not recipe.twin(builder):
            with pytest.raises(ValueError, match="weights"):
                recipe.builder(builder)(**{**_small(recipe, builder), "weights": "imagenet"})
            return
    pytest.fail("every classifier has a twin")


@pytest.mark.parametrize("recipe", DEMOS)
def test_weights_file_loads(recipe, tmp_path):
    """``weights`` takes a path to a weights file, as keras.applications does."""
    build = recipe.builder(recipe.demo["builder"])
    model = build(**recipe.demo["kwargs"])
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(0, 0.05, w.shape).astype("float32") for w in model.get_weights()])
    path = tmp_path / "demo.weights.h5"
    model.save_weights(path)
    x, _ = tiny_batch(recipe, model, n=2)
    keras.backend.clear_session(free_memory=False)
    loaded = build(**recipe.demo["kwargs"], weights=str(path))
    for ours, theirs in zip(_as_list(model.predict(x, verbose=0)), _as_list(loaded.predict(x, verbose=0))):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


# --- every block ----------------------------------------------------------------------


@pytest.mark.parametrize("pair", BLOCKS, ids=_id)
def test_block_builds_and_twice_without_a_name_does_not_collide(pair):
    recipe, block_name = pair
    assert block_name in BLOCK_CALLS[recipe.name], f"tests/recipe_fixtures.py: BLOCKS[{recipe.name!r}]"
    block = recipe.block(block_name)
    example = BLOCK_CALLS[recipe.name][block_name]
    inputs = keras.Input(shape=example["input_shape"])
    first = block(inputs, **example["kwargs"])
    second = block(inputs, **example["kwargs"])
    model = keras.Model(inputs, [*_as_list(first), *_as_list(second)])
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
    assert model.count_params() > 0 or "pool" in block_name


# --- the demo configuration: gradients, learning, serialization ---------------------


@pytest.mark.parametrize("recipe", DEMOS)
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


@pytest.mark.parametrize("recipe", DEMOS)
def test_demo_keras_round_trip(recipe, tmp_path):
    model = recipe.build_demo()
    x, _ = tiny_batch(recipe, model, n=2)
    path = tmp_path / f"{recipe.name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    for ours, theirs in zip(_as_list(model.predict(x, verbose=0)), _as_list(loaded.predict(x, verbose=0))):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


# --- parity with keras.applications -------------------------------------------------


def _randomize(model, rng):
    """Random weights and BN statistics, so a transplant that swaps two tensors cannot pass."""
    values = []
    for weight in model.weights:
        shape = tuple(weight.shape)
        if "variance" in weight.path:
            values.append(rng.uniform(0.5, 1.5, shape))
        elif "gamma" in weight.path:
            values.append(1 + rng.normal(0, 0.2, shape))
        else:
            values.append(rng.normal(0, 0.2 if len(shape) == 1 else 0.05, shape))
    for weight, value in zip(model.weights, values):
        weight.assign(value.astype("float32"))


@pytest.mark.parametrize("recipe, builder", TWINS)
def test_twin_parity(recipe, builder):
    """Same parameter count, same weight shapes in the same order, same outputs."""
    twin = getattr(keras.applications, recipe.twin(builder))(weights=None, classifier_activation=None)
    ours = recipe.builder(builder)(classifier_activation=None)
    assert ours.count_params() == twin.count_params()
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in twin.weights]

    rng = np.random.default_rng(0)
    _randomize(twin, rng)
    ours.set_weights(twin.get_weights())
    x = rng.uniform(-1, 1, size=(2, *twin.input_shape[1:])).astype("float32")
    expected = keras.ops.convert_to_numpy(twin(x, training=False))
    got = keras.ops.convert_to_numpy(ours(x, training=False))
    scale = max(1.0, float(np.abs(expected).max()))
    assert np.abs(got - expected).max() / scale <= 1e-4


@pytest.mark.parametrize("recipe, builder", TWINS)
def test_twin_preprocess_input_is_keras_applications(recipe, builder):
    twin_module = inspect.getmodule(getattr(keras.applications, recipe.twin(builder)))
    x = np.random.default_rng(0).uniform(0, 255, size=(2, 8, 8, 3)).astype("float32")
    expected = twin_module.preprocess_input(x.copy())
    # keras's resnet_v2 has its own transform (ours: preprocess_input_v2); inception_resnet_v2 has one only.
    v2 = twin_module.__name__.endswith("_v2") and hasattr(recipe.module, "preprocess_input_v2")
    ours = recipe.module.preprocess_input_v2 if v2 else recipe.module.preprocess_input
    np.testing.assert_allclose(ours(x.copy()), expected, rtol=1e-6)


@pytest.mark.parametrize("recipe, builder", TWIN_LOADS)
def test_weights_imagenet_load_through_the_twin(recipe, builder, tmp_path, monkeypatch):
    """``weights="imagenet"`` gives the twin's published weights, offline: the download is
    replaced by a file written from a randomized twin, which the twin then loads."""
    twin_class = getattr(keras.applications, recipe.twin(builder))
    path = tmp_path / "imagenet.weights.h5"

    def offline_twin(weights=None, **kwargs):
        model = twin_class(weights=None, **kwargs)
        assert weights == "imagenet"
        if not path.exists():
            _randomize(model, np.random.default_rng(3))
            model.save_weights(path)
        model.load_weights(path)
        return model

    monkeypatch.setattr(keras.applications, recipe.twin(builder), offline_twin)
    ours = recipe.builder(builder)(include_top=False, weights="imagenet", input_shape=(96, 96, 3))
    reference = offline_twin(weights="imagenet", include_top=False, input_shape=(96, 96, 3))
    x = np.random.default_rng(0).uniform(-1, 1, size=(2, 96, 96, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(reference(x, training=False))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(x, training=False)), expected,
                               rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(expected).max())))


@pytest.mark.heavy  # a full-size build or a short fit: keeps the default suite under 10 minutes
def test_a_changed_copy_starts_from_the_twins_weights():
    """docs/contributing.md: another head, and every other layer keeps the twin's weights."""
    from cookbook.io import copy_matching_weights

    twin = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3))
    _randomize(twin, np.random.default_rng(2))
    ours = registry.get("residual").builder("resnet50")(input_shape=(64, 64, 3), classes=10)
    copied = copy_matching_weights(twin, ours)
    with_weights = [layer.name for layer in ours.layers if layer.weights]
    assert [name for name in with_weights if name not in copied] == ["predictions"]
    x = np.random.default_rng(0).uniform(-1, 1, size=(1, 64, 64, 3)).astype("float32")
    features = keras.Model(twin.input, twin.get_layer("avg_pool").output)(x)
    ours_features = keras.Model(ours.input, ours.get_layer("avg_pool").output)(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours_features), keras.ops.convert_to_numpy(features),
                               rtol=1e-4, atol=1e-4)
