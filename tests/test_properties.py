"""Property-based tests (hypothesis) for every public block and builder in the registry.

The rule everywhere: a valid configuration builds the documented model; an invalid one
raises ``ValueError`` or ``TypeError`` *from the recipe itself*, with a message that
names the argument. A Keras-internal error (a shape error deep inside a layer) or a
model that builds but is wrong both fail.

Everything is generated from the registry (``BUILDERS[...]["small"]``, each builder's
signature defaults, ``BLOCKS[...]``), so a new recipe is covered the moment it exists.

Cost. The whole module is marked ``heavy``: ``make test`` (and CI) runs all of it with
``-m heavy``, in about a minute on the 2-core machine. Rejections happen before any
layer is built, so the invalid-argument properties run on every builder. Properties
that build models are also marked ``slow`` except on one builder per *code group*:
builders that are the same function with other constants (``resnet18`` ...
``resnet152v2`` are one closure) share their argument checks and their graph code, so
the first one listed stands for the group, and ``-m "heavy and not slow"`` is a quicker
pass over those representatives only. Every block runs in every selection.

Knobs (environment): ``COOKBOOK_HYPOTHESIS_SCALE`` multiplies every ``max_examples``
(default 1); ``COOKBOOK_HYPOTHESIS_RANDOM=1`` draws fresh examples instead of the
default derandomized (reproducible) ones. The number of cases tried is printed at the
end of the module and, with ``--hypothesis-show-statistics``, per test.
"""

from __future__ import annotations

import collections
import contextlib
import inspect
import math
import os
import re
import string
import traceback
from pathlib import Path

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, event, given, note, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from cookbook import registry, tasks

# The whole property suite runs in `make test` (`-m heavy`, about a minute on the 2-core
# machine), outside the default suite's 10-minute budget. It passes: the recipe bugs it
# found (issue 9: NaN/Inf sizes, unknown activation names, channels_first, inputs too
# small for a block, a non-bool relu_first) are fixed in the recipes.
pytestmark = pytest.mark.heavy

RECIPES = registry.all_recipes()
BY_NAME = {recipe.name: recipe for recipe in RECIPES}
BUILDERS = [(recipe.name, builder) for recipe, builder in registry.all_builders()]
BLOCKS = [(recipe.name, block) for recipe in RECIPES for block in recipe.blocks]

SCALE = float(os.environ.get("COOKBOOK_HYPOTHESIS_SCALE", "1"))
RANDOM = os.environ.get("COOKBOOK_HYPOTHESIS_RANDOM", "") not in ("", "0")

# Cases tried, per property and outcome; printed when the module finishes.
COUNTS: collections.Counter = collections.Counter()

HEAD = ("input_shape", "include_top", "pooling", "classes", "classifier_activation")
ACTIVATIONS = ("classifier_activation", "output_activation", "activation")
NOT_CHECKED = ("name",)  # a free-form layer-name prefix: any string is valid
GROUP_ARGS = ("groups", "cardinality")
FREE_SIGN = ("rescale", "offset")  # a negative scale or offset is a valid transform
DATA_FORMAT = ("image_data_format", "data_format", "channels_first", "channels_last")


def _settings(examples):
    return settings(
        max_examples=max(1, round(examples * SCALE)),
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        print_blob=True,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure reports the first bad input
        suppress_health_check=list(HealthCheck),
    )


def _pair_id(pair):
    return f"{pair[0]}.{pair[1]}"


def _representatives():
    """One builder per code group: the first listed of the builders that share a function."""
    chosen = set()
    for recipe in RECIPES:
        seen = set()
        for builder in recipe.builders:
            code = getattr(recipe.builder(builder), "__code__", builder)
            if code not in seen:
                seen.add(code)
                chosen.add((recipe.name, builder))
    return chosen


_REPRESENTATIVE = _representatives()


def _builder_params(marked_slow_unless_representative):
    params = []
    for pair in BUILDERS:
        slow = marked_slow_unless_representative and pair not in _REPRESENTATIVE
        marks = [pytest.mark.slow] if slow else []
        params.append(pytest.param(pair, id=_pair_id(pair), marks=marks))
    return params


ALL_BUILDERS = _builder_params(False)
BUILDING_BUILDERS = _builder_params(True)
ALL_BLOCKS = [pytest.param(pair, id=_pair_id(pair)) for pair in BLOCKS]


@pytest.fixture(scope="module", autouse=True)
def _report_counts(request):
    yield
    total = sum(COUNTS.values())
    lines = [f"hypothesis cases tried in {Path(__file__).name}: {total}"]
    by_test = collections.defaultdict(dict)
    for (test, outcome), count in sorted(COUNTS.items()):
        by_test[test][outcome] = count
    for test, outcomes in by_test.items():
        lines.append(f"  {test}: " + ", ".join(f"{k} {v}" for k, v in outcomes.items()))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    text = "\n".join(lines)
    if reporter is not None:
        # Module teardown runs under output capture: without this the lines would only
        # show in a failure report, never after a passing run.
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            reporter.write_line("")
            for line in lines:
                reporter.write_line(line)
    else:
        print(text)
    target = os.environ.get("COOKBOOK_PROPERTY_COUNTS")
    if target:
        Path(target).write_text(text + "\n", encoding="utf-8")


def _fresh():
    """Reset Keras' name counters and graph state between examples (no gc: that costs seconds)."""
    keras.backend.clear_session(free_memory=False)


def _count(test, outcome):
    COUNTS[(test, outcome)] += 1
    try:
        event(outcome)  # shows in --hypothesis-show-statistics
    except InvalidArgument:  # a plain (non-hypothesis) test
        pass


# --- what a rejection and an acceptance must look like --------------------------------


def _raised_in(error, recipe) -> bool:
    """Whether ``error`` was raised by the recipe's own code (not deep inside Keras)."""
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and Path(frames[-1].filename).resolve() == recipe.path.resolve()


def _where(error) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"


def _names(message, arguments) -> bool:
    return any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(a)}(?![A-Za-z0-9_])", message) for a in arguments)


def _check_rejection(recipe, error, arguments, what):
    """``error`` must be a ValueError/TypeError, raised by the recipe, naming one of ``arguments``."""
    message = str(error)
    assert isinstance(error, (ValueError, TypeError)), (
        f"{what}: raised {type(error).__name__} (not ValueError/TypeError) at {_where(error)}: {message[:300]}")
    assert _raised_in(error, recipe), (
        f"{what}: a Keras-internal {type(error).__name__} at {_where(error)}, not the recipe's own check: "
        f"{message[:300]}")
    assert _names(message, arguments), f"{what}: the message does not name {'/'.join(arguments)}: {message[:300]}"


def _expect_rejected(recipe, call, arguments, what, test):
    """``call()`` must raise a clear error naming one of ``arguments``."""
    try:
        built = call()
    except Exception as error:  # noqa: BLE001 - checked below
        _check_rejection(recipe, error, arguments, what)
        _count(test, "rejected")
        return
    _fresh()
    _count(test, "accepted (bug)")
    pytest.fail(f"{what}: accepted and built {type(built).__name__} {getattr(built, 'name', '')}; "
                f"expected ValueError/TypeError naming {'/'.join(arguments)}")


def _output_shapes(model):
    return [tuple(output.shape) for output in model.outputs]


def _run_forward(model, input_shape, seed=0):
    """Batch of 1 through the model: it runs, the shapes match the symbolic ones, values are finite."""
    x = np.random.default_rng(seed).uniform(0, 1, size=(1, *input_shape)).astype("float32")
    outputs = model(x, training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    for symbolic, value in zip(_output_shapes(model), outputs):
        value = keras.ops.convert_to_numpy(value)
        assert value.shape == (1, *symbolic[1:]), f"runs to {value.shape}, but the graph says {symbolic}"
        assert np.all(np.isfinite(value)), "non-finite output"


# --- argument kinds, from the documented examples and the signature defaults ----------


def _kind(value):
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (tuple, list)) and value and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        return "ints"
    return None  # None-valued or structured: no generic rule


def _documented_args(function, example):
    """{argument: value} for the function's keyword arguments: the example's value, else the default."""
    values = {}
    for param in inspect.signature(function).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or param.name in ("x", "inputs"):
            continue
        if param.name in example:
            values[param.name] = example[param.name]
        elif param.default is not param.empty:
            values[param.name] = param.default
    return values


def _checked_args(values):
    return {k: v for k, v in values.items() if k not in NOT_CHECKED and k not in ACTIVATIONS}


def _non_positive(value):
    """Values that are out of range for a positive count (negative only when 0 is documented)."""
    return st.integers(min_value=-10**6, max_value=0 if value > 0 else -1)


def _out_of_range(name, value):
    """A strategy of invalid values for the argument, or None when there is no generic rule."""
    kind = _kind(value)
    if name == "input_shape":
        return _bad_input_shape(tuple(value))
    if kind == "int":
        return _non_positive(value)
    non_finite = st.sampled_from([math.nan, math.inf, -math.inf])
    if kind == "float" and name in FREE_SIGN:
        return non_finite
    if kind == "float":
        return st.floats(min_value=-1e6, max_value=-1e-3) | non_finite
    if kind == "ints":
        index = st.integers(0, len(value) - 1)
        floor = min(value)  # a 0 in the documented tuple (bagnet's kernel3) documents 0 as valid
        return index.flatmap(lambda i: _non_positive(value[i] if floor > 0 else 0).map(
            lambda bad: type(value)(list(value[:i]) + [bad] + list(value[i + 1:]))))
    return None


def _bad_input_shape(shape):
    """Zero or negative dimensions, and the wrong rank."""
    index = st.integers(0, len(shape) - 1)
    non_positive = index.flatmap(lambda i: st.integers(-64, 0).map(
        lambda bad: shape[:i] + (bad,) + shape[i + 1:]))
    wrong_rank = st.sampled_from([shape[:-1], shape + (1,), shape[:1]]).filter(lambda s: len(s) != len(shape))
    return non_positive | wrong_rank


_TEXT = st.text(alphabet=string.ascii_letters + string.digits + "-_ ", max_size=6)


def _wrong_type(name, value):
    kind = _kind(value)
    non_integral = st.floats(allow_nan=False, allow_infinity=False, min_value=-100, max_value=100).filter(
        lambda f: not float(f).is_integer())
    if name == "input_shape":
        return _TEXT | st.integers(1, 64) | st.tuples(non_integral, non_integral, st.integers(1, 3))
    if kind == "int":
        return _TEXT | non_integral | st.lists(st.integers(1, 8), min_size=1, max_size=2)
    if kind == "float":
        return _TEXT | st.lists(st.floats(0, 1), min_size=1, max_size=2)
    if kind == "bool":
        return _TEXT | st.lists(st.booleans(), min_size=1, max_size=2)
    if kind == "str":
        return st.integers(-5, 5) | st.lists(_TEXT, min_size=1, max_size=2)
    if kind == "ints":
        return _TEXT.filter(lambda s: s.strip() != "") | non_integral
    return None


_UNKNOWN = _TEXT.map(lambda s: f"no-such-{s}")


def _builder_call(recipe, builder, kwargs):
    return lambda: recipe.builder(builder)(**kwargs)


def _builder_args(recipe, builder):
    small = dict(recipe.builders[builder].get("small", {}))
    return small, _documented_args(recipe.builder(builder), small)


# --- builders: invalid arguments are rejected, by name ---------------------------------


@pytest.mark.parametrize("pair", ALL_BUILDERS)
@_settings(8)
@given(data=st.data())
def test_builder_rejects_out_of_range(pair, data):
    """Zero/negative sizes and counts, negative or non-finite floats, bad input_shape dims and ranks."""
    recipe, builder = BY_NAME[pair[0]], pair[1]
    small, values = _builder_args(recipe, builder)
    candidates = {k: _out_of_range(k, v) for k, v in _checked_args(values).items()}
    candidates = {k: s for k, s in candidates.items() if s is not None}
    assert candidates, f"{builder}: no argument with a generic range rule"
    argument = data.draw(st.sampled_from(sorted(candidates)), label="argument")
    bad = data.draw(candidates[argument], label="value")
    kwargs = {**small, argument: bad}
    if argument == "pooling":
        kwargs["include_top"] = False
    _expect_rejected(recipe, _builder_call(recipe, builder, kwargs), [argument],
                     f"{builder}({argument}={bad!r})", "builder out of range")


@pytest.mark.parametrize("pair", ALL_BUILDERS)
@_settings(8)
@given(data=st.data())
def test_builder_rejects_wrong_types(pair, data):
    recipe, builder = BY_NAME[pair[0]], pair[1]
    small, values = _builder_args(recipe, builder)
    candidates = {k: _wrong_type(k, v) for k, v in _checked_args(values).items()}
    candidates = {k: s for k, s in candidates.items() if s is not None}
    assert candidates, f"{builder}: no argument with a generic type rule"
    argument = data.draw(st.sampled_from(sorted(candidates)), label="argument")
    bad = data.draw(candidates[argument], label="value")
    _expect_rejected(recipe, _builder_call(recipe, builder, {**small, argument: bad}), [argument],
                     f"{builder}({argument}={bad!r})", "builder wrong type")


def _enumerated(values):
    """Arguments that take one of a few strings: str-valued ones, and ``pooling``."""
    names = [k for k, v in _checked_args(values).items() if _kind(v) == "str"]
    return sorted(set(names) | ({"pooling"} & set(values)))


@pytest.mark.parametrize("pair", [p for p in ALL_BUILDERS if _enumerated(_builder_args(BY_NAME[p.values[0][0]], p.values[0][1])[1])])
@_settings(6)
@given(data=st.data())
def test_builder_rejects_unknown_strings(pair, data):
    recipe, builder = BY_NAME[pair[0]], pair[1]
    small, values = _builder_args(recipe, builder)
    argument = data.draw(st.sampled_from(_enumerated(values)), label="argument")
    bad = data.draw(_UNKNOWN, label="value")
    kwargs = {**small, argument: bad}
    if argument == "pooling":
        kwargs["include_top"] = False
    _expect_rejected(recipe, _builder_call(recipe, builder, kwargs), [argument],
                     f"{builder}({argument}={bad!r})", "builder unknown string")


def _activation_args(values):
    return sorted(set(ACTIVATIONS) & set(values))


@pytest.mark.parametrize("pair", [p for p in ALL_BUILDERS
                                  if _activation_args(_builder_args(BY_NAME[p.values[0][0]], p.values[0][1])[1])])
@_settings(2)
@given(data=st.data())
def test_builder_rejects_unknown_activation(pair, data):
    """An unknown activation name is an unknown string too: the message must name the argument.

    The recipe must reject it before building (Keras itself rejects it only when the head's
    layer is built, after a near-full build, with a message that names no argument)."""
    recipe, builder = BY_NAME[pair[0]], pair[1]
    small, values = _builder_args(recipe, builder)
    argument = data.draw(st.sampled_from(_activation_args(values)), label="argument")
    bad = data.draw(_UNKNOWN, label="value")
    _expect_rejected(recipe, _builder_call(recipe, builder, {**small, argument: bad}), [argument],
                     f"{builder}({argument}={bad!r})", "builder unknown activation")


# --- builders: valid configurations build the documented model -------------------------


def _expected_output(recipe, values, kwargs, input_shape):
    """The documented output shapes (None where a dimension is free), or None for 'rank only'."""
    if tasks.get(recipe.task).target != "labels" or "include_top" not in values:
        factor = kwargs.get("upscale_factor", values.get("upscale_factor", 1))
        channels = kwargs.get("classes", values.get("classes", input_shape[-1]))
        return (None, *(d * factor for d in input_shape[:-1]), channels)
    if kwargs.get("include_top", values.get("include_top")):
        if kwargs.get("patch_logits", values.get("patch_logits")):
            return "patch"
        return (None, kwargs.get("classes", values.get("classes")))
    if kwargs.get("pooling", values.get("pooling")) in ("avg", "max"):
        return "pooled"
    return "map"


def _check_output(recipe, builder, model, values, kwargs, input_shape):
    expected = _expected_output(recipe, values, kwargs, input_shape)
    for shape in _output_shapes(model):
        assert all(d is None or d > 0 for d in shape), f"{builder}: output shape {shape} has an empty dimension"
        assert shape[0] is None, f"{builder}: output batch dimension must be free, got {shape}"
        if expected == "pooled":
            assert len(shape) == 2, f"{builder}: pooling={kwargs.get('pooling')!r} must give (None, C), got {shape}"
        elif expected == "map":
            # a spatial map: (None, steps, C) or (None, H, W, C); a spectrogram model of audio gives 2D maps
            assert len(shape) >= 3, f"{builder}: include_top=False, pooling=None must give a feature map, got {shape}"
        elif expected == "patch":
            assert len(shape) == len(input_shape) + 1 and shape[-1] == kwargs.get("classes", values.get("classes"))
        else:
            assert shape == expected, f"{builder}{kwargs}: output {shape}, documented {expected}"


def _near(size, low=1):
    """Sizes around a known-valid size: mostly below it (where minimums bite), some above."""
    return st.one_of(st.integers(max(low, size // 2), size + 8), st.integers(max(low, size - 4), size + 2),
                     st.integers(low, size))


@pytest.mark.parametrize("pair", BUILDING_BUILDERS)
@_settings(4)
@given(data=st.data())
def test_builder_valid_configs(pair, data):
    """Varied classes/pooling/include_top/activation and input sizes around the small build.

    A builder either builds the documented output (below the small size, where minimums
    bite, the model must also run) or rejects ``input_shape`` by name. (Sizes above the
    small one may be rejected too: some architectures need multiples of their stride.)
    """
    recipe, builder = BY_NAME[pair[0]], pair[1]
    small, values = _builder_args(recipe, builder)
    base = tuple(small.get("input_shape", values.get("input_shape")))
    kwargs = dict(small)
    if "classes" in values:
        kwargs["classes"] = data.draw(st.integers(1, 20), label="classes")
    if "include_top" in values and not values.get("patch_logits"):
        kwargs["include_top"] = data.draw(st.booleans(), label="include_top")
    if "pooling" in values:
        kwargs["pooling"] = data.draw(st.sampled_from([None, "avg", "max"]), label="pooling")
    if "classifier_activation" in values:
        kwargs["classifier_activation"] = data.draw(st.sampled_from(["softmax", None, "linear"]),
                                                    label="classifier_activation")
    spatial = tuple(data.draw(_near(d), label="size") for d in base[:-1])
    input_shape = (*spatial, base[-1])
    kwargs["input_shape"] = input_shape
    below = any(s < d for s, d in zip(spatial, base))
    note(f"{builder}(**{kwargs})")
    _fresh()
    try:
        model = recipe.builder(builder)(**kwargs)
    except Exception as error:  # noqa: BLE001 - checked below
        _check_rejection(recipe, error, ["input_shape"], f"{builder}(**{kwargs})")
        _count("builder valid configs", "rejected input_shape" + (" below the small size" if below else ""))
        return
    _check_output(recipe, builder, model, values, kwargs, input_shape)
    if below:  # the edge where a model could build but not run
        _run_forward(model, input_shape)
    _count("builder valid configs", "built" + (" below the small size" if below else ""))
    _fresh()


@pytest.mark.parametrize("pair", [p for p in BUILDING_BUILDERS
                                  if set(GROUP_ARGS) & set(_builder_args(BY_NAME[p.values[0][0]], p.values[0][1])[1])])
@_settings(5)
@given(data=st.data())
def test_builder_group_counts(pair, data):
    """Any group count either builds a model that runs, or is rejected naming the group argument."""
    recipe, builder = BY_NAME[pair[0]], pair[1]
    small, values = _builder_args(recipe, builder)
    argument = data.draw(st.sampled_from(sorted(set(GROUP_ARGS) & set(values))), label="argument")
    groups = data.draw(st.integers(1, 64), label=argument)
    kwargs = {**small, argument: groups}
    _fresh()
    try:
        model = recipe.builder(builder)(**kwargs)
    except Exception as error:  # noqa: BLE001 - checked below
        _check_rejection(recipe, error, [argument], f"{builder}({argument}={groups})")
        _count("builder group counts", "rejected")
        return
    _check_output(recipe, builder, model, values, kwargs, tuple(kwargs["input_shape"]))
    _count("builder group counts", "built")
    _fresh()


def _channels_first(shape):
    return (shape[-1], *shape[:-1])


@pytest.mark.parametrize("pair", BUILDING_BUILDERS)
def test_builder_channels_first(pair):
    """Under channels_first a builder either refuses, naming the data format, or builds the same model."""
    recipe, builder = BY_NAME[pair[0]], pair[1]
    small, values = _builder_args(recipe, builder)
    base = tuple(small.get("input_shape", values.get("input_shape")))
    _fresh()
    keras.config.set_image_data_format("channels_first")
    try:
        model = recipe.builder(builder)(**{**small, "input_shape": _channels_first(base)})
    except Exception as error:  # noqa: BLE001 - checked below
        _check_rejection(recipe, error, DATA_FORMAT, f"{builder} under channels_first")
        _count("builder channels_first", "rejected")
        return
    finally:
        keras.config.set_image_data_format("channels_last")
    # Accepted: it must be the model the channels_last build makes from the same image.
    params, outputs = model.count_params(), _output_shapes(model)
    _fresh()
    reference = recipe.builder(builder)(**small)
    _count("builder channels_first", "built")
    assert params == reference.count_params(), (
        f"{builder} under channels_first builds {params:,} parameters, channels_last {reference.count_params():,}")
    if tasks.get(recipe.task).target == "labels":
        assert outputs == _output_shapes(reference), f"{builder}: {outputs} vs {_output_shapes(reference)}"


# --- blocks ---------------------------------------------------------------------------


def _block_args(recipe, block):
    example = recipe.blocks[block]
    return tuple(example["input_shape"]), dict(example["kwargs"]), _documented_args(
        recipe.block(block), example["kwargs"])


def _block_call(recipe, block, input_shape, kwargs):
    def call():
        inputs = keras.Input(shape=input_shape)
        return keras.Model(inputs, recipe.block(block)(inputs, **kwargs, name="probe"))
    return call


@pytest.mark.parametrize("pair", ALL_BLOCKS)
@_settings(8)
@given(data=st.data())
def test_block_rejects_invalid_arguments(pair, data):
    """Out-of-range and wrongly typed values and unknown strings for every argument of every block."""
    recipe, block = BY_NAME[pair[0]], pair[1]
    input_shape, example, values = _block_args(recipe, block)
    checked = _checked_args(values)
    strategies = {}
    for name, value in checked.items():
        options = [s for s in (_out_of_range(name, value), _wrong_type(name, value)) if s is not None]
        if _kind(value) == "str":
            options.append(_UNKNOWN)
        if options:
            strategies[name] = st.one_of(options)
    if not strategies:
        pytest.skip(f"{block} has no argument with a generic rule: {sorted(values)}")
    argument = data.draw(st.sampled_from(sorted(strategies)), label="argument")
    bad = data.draw(strategies[argument], label="value")
    _expect_rejected(recipe, _block_call(recipe, block, input_shape, {**example, argument: bad}), [argument],
                     f"{block}({argument}={bad!r})", "block invalid argument")


def _channel_counts(input_shape, values):
    counts = {input_shape[-1]}
    for name, value in values.items():
        if _kind(value) == "int" and any(word in name for word in ("filters", "width", "channels")):
            counts.add(value)
    return counts


@pytest.mark.parametrize("pair", [p for p in ALL_BLOCKS if set(GROUP_ARGS) & set(_block_args(BY_NAME[p.values[0][0]], p.values[0][1])[2])])
@_settings(5)
@given(data=st.data())
def test_block_rejects_group_count_that_divides_nothing(pair, data):
    recipe, block = BY_NAME[pair[0]], pair[1]
    input_shape, example, values = _block_args(recipe, block)
    argument = data.draw(st.sampled_from(sorted(set(GROUP_ARGS) & set(values))), label="argument")
    counts = _channel_counts(input_shape, values)
    groups = data.draw(st.integers(2, 97).filter(lambda g: all(c % g for c in counts)), label=argument)
    _expect_rejected(recipe, _block_call(recipe, block, input_shape, {**example, argument: groups}), [argument],
                     f"{block}({argument}={groups}) with channels {sorted(counts)}", "block group count")


@pytest.mark.parametrize("pair", ALL_BLOCKS)
@_settings(5)
@given(data=st.data())
def test_block_valid_configs(pair, data):
    """Random positive sizes and counts: the block builds a graph that runs with the shape it claims,
    or rejects the combination, naming one of its arguments. Never a Keras-internal error."""
    recipe, block = BY_NAME[pair[0]], pair[1]
    input_shape, example, values = _block_args(recipe, block)
    kwargs = dict(example)
    for name, value in _checked_args(values).items():
        kind = _kind(value)
        if kind == "int" and value >= 1:
            kwargs[name] = data.draw(st.integers(1, max(2, min(2 * value, value + 16))), label=name)
        elif kind == "bool":
            kwargs[name] = data.draw(st.booleans(), label=name)
    shape = tuple(data.draw(st.integers(1, 2 * d), label="input size") for d in input_shape[:-1])
    shape += (data.draw(st.integers(1, max(2, 2 * input_shape[-1])), label="input channels"),)
    note(f"{block}(Input{shape}, **{kwargs})")
    _fresh()
    try:
        model = _block_call(recipe, block, shape, kwargs)()
    except Exception as error:  # noqa: BLE001 - checked below
        _check_rejection(recipe, error, [*kwargs, "x", "input", "inputs", "input_shape"],
                         f"{block}(Input{shape}, **{kwargs})")
        _count("block valid configs", "rejected")
        return
    for out in _output_shapes(model):
        assert len(out) == len(shape) + 1 and all(d is None or d > 0 for d in out), f"{block}: output {out}"
    _run_forward(model, shape)
    _count("block valid configs", "built and ran")
    _fresh()


@pytest.mark.parametrize("pair", ALL_BLOCKS)
def test_block_channels_first(pair):
    """Under channels_first a block either refuses, naming the data format, or builds the same block."""
    recipe, block = BY_NAME[pair[0]], pair[1]
    input_shape, example, _ = _block_args(recipe, block)
    _fresh()
    keras.config.set_image_data_format("channels_first")
    try:
        model = _block_call(recipe, block, _channels_first(input_shape), example)()
    except Exception as error:  # noqa: BLE001 - checked below
        _check_rejection(recipe, error, DATA_FORMAT, f"{block} under channels_first")
        _count("block channels_first", "rejected")
        return
    finally:
        keras.config.set_image_data_format("channels_last")
    params = model.count_params()
    _fresh()
    reference = _block_call(recipe, block, input_shape, example)()
    _count("block channels_first", "built")
    assert params == reference.count_params(), (
        f"{block} under channels_first: {params:,} parameters, channels_last {reference.count_params():,}")
    assert [_channels_first(s[1:]) for s in _output_shapes(reference)] == [s[1:] for s in _output_shapes(model)]
