"""Property-based tests (hypothesis) for every public block and builder in the registry.

Three rules, checked on generated arguments:

* **A valid configuration builds.** A builder gets a varied head (``include_top``,
  ``pooling``, ``classes``, ``classifier_activation``), an input at or above its small
  build's size with 1-4 channels (free spatial sizes, ``None``, without a top), and
  family knobs between half their small value and it; a block gets an input at least
  its example's size and counts between half the example's and it. Every integer is
  drawn as a Python int, an ``np.int64`` or an ``np.int32`` (NumPy integers work
  wherever ints do), and a block called with NumPy integers builds the same block as
  with ints. Every one must build the documented output and run a forward pass: a
  rejection fails its test, and the last test asserts that every valid configuration
  generated in the session built (the counts are printed at the end).
* **An invalid argument fails clearly.** Each argument of each builder and block is its
  own case: zero or negative sizes and counts (an entry of a tuple too, and the empty
  tuple), negative or out-of-range rates, NaN and infinity, unknown pooling, string
  choices and activation names, group counts that divide no channel count; and for
  every builder an ``input_shape`` with a zero or negative side or channel count, or of
  the wrong rank. (``classes=0`` is tests/test_recipes.py's.) The error must be a
  ``ValueError`` or ``TypeError``, raised either by the recipe with a message that
  names the argument, or by Keras with a message that names the argument or the layer
  parameter it feeds (``classes`` -> Dense ``units``, ``width`` -> ``filters``,
  ``dropout`` -> ``rate``, ``groups``, ``kernel_size``, ``strides``, ``activation``
  ...; ``input_shape`` -> keras.Input's "Cannot convert ... to a shape"). A shape error
  from deep inside Keras ("Computed output size would be zero or negative",
  incompatible shapes in an Add, a Concatenate or a Reshape) never counts. Two
  leniencies, because the recipe contract has no type checks: a NaN or infinite
  multiplier that Python's ``int()`` stops before any layer ("cannot convert float NaN
  to integer") counts as clear, and a string where a number goes need only raise
  ``ValueError``/``TypeError`` and never build. (A bool for an int, which Python and
  Keras accept, is not tried.)
* **Inputs below the tested sizes** (a builder's small build, a block's example) either
  build a model that runs, or are rejected naming the input; never a shape error.

Everything is generated from the registry (builder signatures, ``recipe.blocks``) and
from ``tests/recipe_fixtures.py`` (``SMALL``: a small build per builder; ``BLOCKS``: one
call per block), so a new recipe is covered the moment it has its fixtures.

Cost. The module is marked ``heavy``: ``make test`` runs it with ``-m heavy``, in about
two minutes on the 2-core machine. Properties that build models run on one builder per
*code group*: builders that call the same builder or the same private builder function
with other constants (``resnet18`` ... ``resnet152v2`` all call ``_resnet``;
``densenet121`` calls ``densenet``) share their argument handling and graph code, and
the group's general builder, else its first listed, stands for it. The
``input_shape`` property, whose rejections come before any layer is built, runs on
every builder.

Knobs (environment): ``COOKBOOK_HYPOTHESIS_SCALE`` multiplies every ``max_examples``
(default 1); ``COOKBOOK_HYPOTHESIS_RANDOM=1`` draws fresh examples instead of the
default derandomized (reproducible) ones. The number of cases tried, per property and
outcome, is printed at the end of the module (and written to the file named by
``COOKBOOK_PROPERTY_COUNTS``, if set).
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
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, event, given, note, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from recipe_fixtures import BLOCKS as BLOCK_CALLS
from recipe_fixtures import SMALL

from cookbook import registry, tasks

pytestmark = pytest.mark.heavy


# Recipe bugs this suite found, not yet fixed: each case is a strict xfail (tests/conftest.py),
# so a fix shows as an XPASS and the entry must go. (The 68 found when the recipes moved to the
# keras.applications contract, issue 14, are fixed.)
RECIPE_BUGS = frozenset()

RECIPES = registry.all_recipes()
BY_NAME = {recipe.name: recipe for recipe in RECIPES}
BUILDERS = [(recipe.name, builder) for recipe, builder in registry.all_builders()]
# Blocks with an example call in tests/recipe_fixtures.py (test_recipes.py requires one for every block).
BLOCKS = [(recipe.name, block) for recipe in RECIPES for block in recipe.blocks
          if block in BLOCK_CALLS.get(recipe.name, {})]

SCALE = float(os.environ.get("COOKBOOK_HYPOTHESIS_SCALE", "1"))
RANDOM = os.environ.get("COOKBOOK_HYPOTHESIS_RANDOM", "") not in ("", "0")

# Cases tried, per property and outcome; printed when the module finishes.
COUNTS: collections.Counter = collections.Counter()
# Valid configurations, per (property, builder or block): [generated, built]. The last test checks them.
VALID: dict = collections.defaultdict(lambda: [0, 0])
VALID_PROPERTIES = {"test_builder_valid_configs": "builder valid configs",
                    "test_block_valid_configs": "block valid configs",
                    "test_block_takes_numpy_integers": "block numpy integers"}

HEAD = ("input_shape", "include_top", "pooling", "classes", "classifier_activation")
NOT_CHECKED = ("name", "weights", "input_tensor")  # free-form, or tested in test_recipes.py
ACTIVATIONS = ("classifier_activation", "output_activation", "activation")
GROUP_ARGS = ("groups", "cardinality")
NEEDS_TOP = ("patch_logits", "aux_classifiers")  # documented: only with include_top
# Rates with an upper bound too (the contract: dropout is a rate in [0, 1); DenseNet's theta in (0, 1]).
ABOVE_RANGE = {"dropout": st.sampled_from([1.0, 1.5, 10.0]), "compression": st.sampled_from([1.5, 10.0])}
# The layer parameters a Keras error may name for the argument that feeds them (not for an
# input: a layer complaining about its filters does not explain a bad input_shape).
INPUTS = ("input_shape", "x", "input", "inputs")
KERAS_PARAMS = ("units", "filters", "kernel_size", "strides", "rate", "activation", "groups",
                "depth_multiplier", "pool_size", "padding", "dilation_rate", "size", "cropping",
                "frame_length", "frame_step")
# What a shape error from deep inside Keras says; never a clear rejection of an argument.
SHAPE_ERROR = re.compile(r"output size|dimension|shapes|incompatible|mismatch|reshape|concatenation axis",
                         re.IGNORECASE)
# Python's own int() of a NaN or infinite float.
INT_OF_NON_FINITE = re.compile(r"cannot convert float (NaN|infinity) to integer")
# keras.Input's own check of the shape it is given (not wrapped in a layer call): it names the value.
INPUT_SHAPE_CHECK = re.compile(r"^Cannot convert '.*' to a shape")


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


def _group(recipe, builder):
    """The builder whose code this one shares: the builder or private builder function it calls."""
    module = recipe.module
    for called in recipe.builder(builder).__code__.co_names:
        target = getattr(module, called, None)
        if not inspect.isfunction(target) or called == builder:
            continue
        parameters = set(inspect.signature(target).parameters)
        if called in recipe.builders or (called.startswith("_") and {"include_top", "weights", "classes"} <= parameters):
            return called
    return builder


def _representatives():
    """One builder per code group: the group's general builder when it is listed, else the first listed."""
    chosen = {}
    for recipe in RECIPES:
        for builder in recipe.builders:
            group = _group(recipe, builder)
            key = (recipe.name, group)
            if group in recipe.builders:
                chosen[key] = group
            else:
                chosen.setdefault(key, builder)
    return {(recipe_name, builder) for (recipe_name, _), builder in chosen.items()}


_REPRESENTATIVE = _representatives()
ALL_BUILDERS = [pytest.param(pair, id=_pair_id(pair)) for pair in BUILDERS]
GROUP_BUILDERS = [pytest.param(pair, id=_pair_id(pair)) for pair in BUILDERS if pair in _REPRESENTATIVE]
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
    generated = sum(g for g, _ in VALID.values())
    built = sum(b for _, b in VALID.values())
    lines.append(f"  valid configurations: {built} of {generated} built")
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


@contextlib.contextmanager
def _valid(test, pair, outcome="built"):
    """A valid configuration: counted as generated, and as built only if the body gets through."""
    key = (test, _pair_id(pair))
    VALID[key][0] += 1
    yield
    VALID[key][1] += 1
    _count(VALID_PROPERTIES[test], outcome)


# --- what a rejection must look like -----------------------------------------------------


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
    """``error`` is a clear rejection of one of ``arguments``: see the module docstring."""
    message = str(error)
    head = f"{what}: {type(error).__name__} at {_where(error)}: {message[:300]}"
    if INT_OF_NON_FINITE.search(message) and _raised_in(error, recipe):
        return  # Python's int() stopped a NaN/inf multiplier before any layer saw it
    if "input_shape" in arguments and INPUT_SHAPE_CHECK.search(message):
        return  # keras.Input(shape=input_shape) refused the value, quoting it
    assert isinstance(error, (ValueError, TypeError)), f"not a ValueError/TypeError. {head}"
    if _raised_in(error, recipe):
        assert _names(message, arguments), f"the recipe's message does not name {'/'.join(arguments)}. {head}"
        return
    assert not SHAPE_ERROR.search(message), f"a shape error from deep inside Keras. {head}"
    feeds = () if set(arguments) & set(INPUTS) else KERAS_PARAMS
    assert _names(message, [*arguments, *feeds]), (
        f"Keras's message names neither {'/'.join(arguments)} nor a layer parameter it feeds. {head}")


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
    with warnings.catch_warnings():  # a model built on get_source_inputs(...) expects a list, as keras.applications'
        warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
        outputs = model(x, training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    assert len(outputs) == len(model.outputs), f"runs to {len(outputs)} outputs, the graph has {len(model.outputs)}"
    for symbolic, value in zip(_output_shapes(model), outputs):
        value = keras.ops.convert_to_numpy(value)
        assert value.ndim == len(symbolic), f"runs to {value.shape}, but the graph says {symbolic}"
        expected = tuple(d if s is None else s for s, d in zip(symbolic[1:], value.shape[1:]))
        assert value.shape == (1, *expected), f"runs to {value.shape}, but the graph says {symbolic}"
        assert np.all(np.isfinite(value)), "non-finite output"


# --- argument kinds, from the fixtures and the signature defaults ------------------------


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
    """{argument: value} for the function's arguments: the example's value, else the default."""
    values = {}
    for param in inspect.signature(function).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or param.name in ("x", "inputs"):
            continue
        if param.name in example:
            values[param.name] = example[param.name]
        elif param.default is not param.empty:
            values[param.name] = param.default
    return values


def _zero_documented(function):
    """Arguments whose default is 0: zero is a documented value for them (``padding=0``)."""
    return {param.name for param in inspect.signature(function).parameters.values()
            if _kind(param.default) == "int" and param.default == 0}


def _knobs(values):
    """The arguments with a generic rule: not the head, not free-form, not an activation name."""
    return {k: v for k, v in values.items() if k not in (*HEAD, *NOT_CHECKED, *ACTIVATIONS)}


def _non_positive(value):
    """Values out of range for a size or count (negative only where 0 is documented). Small
    magnitudes: a negative factor that a recipe squares must not allocate a huge layer."""
    return st.integers(min_value=-64, max_value=0 if value > 0 else -1)


_NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])


def _out_of_range(name, value, zero_valid=False):
    """A strategy of invalid values for the argument, or None when there is no generic rule."""
    kind = _kind(value)
    if kind == "int":
        return _non_positive(0 if zero_valid else value)
    if kind == "float":
        bad = st.floats(min_value=-1e6, max_value=-1e-3) | _NON_FINITE
        return ABOVE_RANGE[name] | bad if name in ABOVE_RANGE else bad  # the bound first: 1.0 for dropout
    if kind == "ints":
        index = st.integers(0, len(value) - 1)
        floor = min(value)  # a 0 in the documented tuple (bagnet's kernel3) documents 0 as valid
        entry = index.flatmap(lambda i: _non_positive(value[i] if floor > 0 else 0).map(
            lambda bad: type(value)(list(value[:i]) + [bad] + list(value[i + 1:]))))
        return st.just(type(value)()) | entry
    return None


def _bad_input_shapes(shape):
    """A zero or negative first side or channel count, and one dimension too few or too many."""
    return [(0, *shape[1:]), (-1, *shape[1:]), (*shape[:-1], 0), (*shape[:-1], -3), shape[:-1], (*shape, 1)]


_TEXT = st.text(alphabet=string.ascii_letters + string.digits + "-_ ", max_size=6)
_UNKNOWN = _TEXT.map(lambda s: f"no-such-{s}")


def _valid_knob(value, groups=1):
    """Valid values for a knob: between half its small value and it (smaller builds, same
    constraints), and a multiple of the call's group count where the small value is one."""
    kind = _kind(value)
    if kind == "bool":
        return st.booleans()
    if kind == "int" and value >= 1 and groups > 1 and value % groups == 0:
        return st.integers(max(1, (value // groups + 1) // 2), value // groups).map(lambda k: k * groups)
    if kind == "int" and value >= 1:
        return st.integers(max(1, (value + 1) // 2), value)
    if kind == "float" and value > 0:
        return st.floats(value / 2, value)
    if kind == "ints" and min(value) >= 0:
        return st.tuples(*(st.integers(min(v, max(1, (v + 1) // 2)), v) for v in value)).map(type(value))
    return None


# Knobs whose valid values follow an arithmetic rule of their paper: the CIFAR ResNets' depth
# is 6n + 2 (He et al. 2016, section 4.2), with n between half the small build's and it.
KNOB_RULES = {"depth": lambda value: st.integers(max(1, (value + 4) // 12), (value - 2) // 6).map(lambda n: 6 * n + 2)}

_REFERENCE: dict = {}


def _reference(key, build):
    """count_params, output shapes and layer names of a build with Python ints (cached)."""
    if key not in _REFERENCE:
        _fresh()
        model = build()
        _REFERENCE[key] = (model.count_params(), _output_shapes(model), [layer.name for layer in model.layers])
        _fresh()
    return _REFERENCE[key]


def _as_numpy(value, dtype):
    """``value`` with its integers (an int, a tuple of ints or of ints and None) as ``dtype``."""
    if _kind(value) == "int":
        return dtype(value)
    if isinstance(value, tuple) and any(_kind(v) == "int" for v in value):
        return tuple(dtype(v) if _kind(v) == "int" else v for v in value)
    return value


def _builder_args(recipe, builder):
    small = dict(SMALL[recipe.name][builder])
    return small, _documented_args(recipe.builder(builder), small)


def _builders_where(predicate):
    """The representative builders whose documented arguments satisfy ``predicate``."""
    return [param for param in GROUP_BUILDERS if predicate(_builder_args(BY_NAME[param.values[0][0]],
                                                                         param.values[0][1])[1])]


def _is_classifier(recipe):
    return tasks.get(recipe.task).target == "labels"


# --- builders: valid configurations build the documented model ---------------------------


def _expected_output(recipe, values, kwargs, input_shape):
    """The documented output shape, or a word for a family of shapes."""
    def get(key):
        return kwargs.get(key, values.get(key))

    if tasks.get(recipe.task).target == "adversarial":  # a GAN: D's logit for a generated and a real image
        return (None, 1)
    if not _is_classifier(recipe):
        factor = get("upscale_factor") or 1
        return (None, *(d * factor for d in input_shape[:-1]), get("classes") or input_shape[-1])
    if get("include_top"):
        return "patch" if get("patch_logits") else (None, get("classes"))
    return "pooled" if get("pooling") in ("avg", "max") else "map"


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


def _valid_sizes(recipe, base):
    """Spatial sizes at or above the small build's. A classifier takes any; an encoder-decoder
    must land back on its input size, so its sides step by the largest power of 2 dividing the small side."""
    if _is_classifier(recipe):
        return [st.integers(d, d + 12) for d in base]
    return [st.integers(0, 2).map(lambda k, d=d: d + k * (d & -d)) for d in base]


@pytest.mark.parametrize("pair", GROUP_BUILDERS)
@_settings(4)
@given(data=st.data())
def test_builder_valid_configs(pair, data):
    """Varied head, input size and channels, knobs between half their small value and it, and
    every integer (classes, sizes, counts, entries of tuples) a Python int, an np.int64 or an
    np.int32: the builder builds the documented output, and the model runs."""
    recipe, builder = BY_NAME[pair[0]], pair[1]
    small, values = _builder_args(recipe, builder)
    base = tuple(small["input_shape"])
    kwargs = dict(small)
    for name, value in _knobs(values).items():
        strategy = None if name in GROUP_ARGS else KNOB_RULES.get(name, _valid_knob)(value)
        if strategy is not None:
            kwargs[name] = data.draw(strategy, label=name)
    if "classes" in values:
        kwargs["classes"] = data.draw(st.integers(1, 20), label="classes")
    if "include_top" in values:
        kwargs["include_top"] = data.draw(st.booleans(), label="include_top")
        if not kwargs["include_top"]:
            kwargs.update({name: False for name in NEEDS_TOP if name in values})
    if "pooling" in values:
        kwargs["pooling"] = data.draw(st.sampled_from([None, "avg", "max"]), label="pooling")
    if "classifier_activation" in values:
        kwargs["classifier_activation"] = data.draw(st.sampled_from(["softmax", None, "linear", "sigmoid"]),
                                                    label="classifier_activation")
    spatial = tuple(data.draw(s, label="size") for s in _valid_sizes(recipe, base[:-1]))
    channels = data.draw(st.integers(1, 4), label="channels")
    input_shape = (*spatial, channels)
    free = "include_top" in values and not kwargs["include_top"] and data.draw(st.booleans(), label="free size")
    kwargs["input_shape"] = (*(None for _ in spatial), channels) if free else input_shape
    integer = data.draw(st.sampled_from([np.int64, np.int32, int]), label="integer type")
    kwargs = {k: v if k in NOT_CHECKED else _as_numpy(v, integer) for k, v in kwargs.items()}
    note(f"{builder}(**{kwargs})")
    _fresh()
    with _valid("test_builder_valid_configs", pair, f"built with {integer.__name__} integers"):
        model = recipe.builder(builder)(**kwargs)
        _check_output(recipe, builder, model, values, kwargs, input_shape)
        _run_forward(model, input_shape)
    _fresh()


@pytest.mark.parametrize("pair", _builders_where(lambda values: set(GROUP_ARGS) & set(values)))
@_settings(4)
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
    _run_forward(model, tuple(kwargs["input_shape"]))
    _count("builder group counts", "built")
    _fresh()


# --- builders: invalid arguments are rejected, by name -----------------------------------


@pytest.mark.parametrize("pair", ALL_BUILDERS)
def test_builder_rejects_bad_input_shape(pair):
    """A zero or negative side or channel count, or the wrong rank: rejected naming input_shape
    (every case is tried; the failure lists all that were not)."""
    recipe, builder = BY_NAME[pair[0]], pair[1]
    small, _ = _builder_args(recipe, builder)
    failures = []
    for bad in _bad_input_shapes(tuple(small["input_shape"])):
        _fresh()
        try:
            _expect_rejected(recipe, lambda bad=bad: recipe.builder(builder)(**{**small, "input_shape": bad}),
                             ["input_shape"], f"{builder}(input_shape={bad!r})", "builder bad input_shape")
        except (AssertionError, pytest.fail.Exception) as failure:
            failures.append(str(failure).split("\n")[0])
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("pair", GROUP_BUILDERS)
@_settings(3)
@given(data=st.data())
def test_builder_small_inputs(pair, data):
    """Inputs below the small build's size: the model builds and runs, or input_shape is rejected by name."""
    recipe, builder = BY_NAME[pair[0]], pair[1]
    small, values = _builder_args(recipe, builder)
    base = tuple(small["input_shape"])
    spatial = tuple(data.draw(st.integers(1, d), label="size") for d in base[:-1])
    if spatial == base[:-1]:
        spatial = (max(1, spatial[0] - 1), *spatial[1:])
    kwargs = {**small, "input_shape": (*spatial, base[-1])}
    note(f"{builder}(**{kwargs})")
    _fresh()
    try:
        model = recipe.builder(builder)(**kwargs)
    except Exception as error:  # noqa: BLE001 - checked below
        _check_rejection(recipe, error, ["input_shape"], f"{builder}(**{kwargs})")
        _count("builder small inputs", "rejected")
        return
    _check_output(recipe, builder, model, values, kwargs, kwargs["input_shape"])
    _run_forward(model, kwargs["input_shape"])  # the edge where a model could build but not run
    _count("builder small inputs", "built and ran")
    _fresh()


def _builder_cases(rule):
    """(recipe, builder, argument) for the representative builders' arguments that ``rule`` covers."""
    cases = []
    for param in GROUP_BUILDERS:
        recipe, builder = BY_NAME[param.values[0][0]], param.values[0][1]
        _, values = _builder_args(recipe, builder)
        for argument in sorted(values):
            if rule(recipe.builder(builder), argument, values[argument]) is not None:
                cases.append(pytest.param((recipe.name, builder, argument), id=f"{param.id}-{argument}"))
    return cases


def _knob_out_of_range(function, argument, value):
    if argument in HEAD or argument in NOT_CHECKED or argument in ACTIVATIONS:
        return None  # input_shape has its own property; classes=0 is in test_recipes.py
    return _out_of_range(argument, value, argument in _zero_documented(function))


@pytest.mark.parametrize("case", _builder_cases(_knob_out_of_range))
@_settings(3)
@given(data=st.data())
def test_builder_rejects_out_of_range(case, data):
    """Every size, count, rate and multiplier: zero, negative, NaN, infinite, above its range,
    an empty tuple or a tuple with a zero or negative entry."""
    recipe, builder, argument = BY_NAME[case[0]], case[1], case[2]
    small, values = _builder_args(recipe, builder)
    bad = data.draw(_knob_out_of_range(recipe.builder(builder), argument, values[argument]), label=argument)
    _fresh()
    _expect_rejected(recipe, lambda: recipe.builder(builder)(**{**small, argument: bad}), [argument],
                     f"{builder}({argument}={bad!r})", "builder out of range")


def _string_choice(function, argument, value):
    """Arguments that take one of a few strings (``pooling`` too), and activation names."""
    if argument == "pooling" or (_kind(value) == "str" and argument not in NOT_CHECKED):
        return _UNKNOWN
    return None


@pytest.mark.parametrize("case", _builder_cases(_string_choice))
@_settings(1)
@given(data=st.data())
def test_builder_rejects_unknown_strings(case, data):
    """An unknown pooling, string choice or activation name: rejected naming the argument
    (or, for an activation, by Keras naming the activation)."""
    recipe, builder, argument = BY_NAME[case[0]], case[1], case[2]
    small, _ = _builder_args(recipe, builder)
    bad = data.draw(_UNKNOWN, label=argument)
    kwargs = {**small, argument: bad}
    if argument == "pooling":
        kwargs["include_top"] = False
    _fresh()
    _expect_rejected(recipe, lambda: recipe.builder(builder)(**kwargs), [argument],
                     f"{builder}({argument}={bad!r})", "builder unknown string")


def _number(function, argument, value):
    """Numeric knobs (sizes, counts, rates, multipliers) take no text."""
    if argument in HEAD or argument in NOT_CHECKED or _kind(value) not in ("int", "float"):
        return None
    return _UNKNOWN


@pytest.mark.parametrize("case", _builder_cases(_number))
@_settings(1)
@given(data=st.data())
def test_builder_rejects_text_for_numbers(case, data):
    """A string where a number goes never builds: ValueError or TypeError, whoever raises it."""
    recipe, builder, argument = BY_NAME[case[0]], case[1], case[2]
    small, _ = _builder_args(recipe, builder)
    bad = data.draw(_UNKNOWN, label=argument)
    _fresh()
    try:
        built = recipe.builder(builder)(**{**small, argument: bad})
    except (ValueError, TypeError):
        _count("builder text for numbers", "rejected")
        return
    pytest.fail(f"{builder}({argument}={bad!r}) built {built.name}")


# --- blocks -------------------------------------------------------------------------------


def _block_args(recipe, block):
    example = BLOCK_CALLS[recipe.name][block]
    return tuple(example["input_shape"]), dict(example["kwargs"]), _documented_args(
        recipe.block(block), example["kwargs"])


def _blocks_where(predicate):
    """The blocks for which ``predicate(recipe, block, documented arguments)`` holds."""
    chosen = []
    for param in ALL_BLOCKS:
        recipe, block = BY_NAME[param.values[0][0]], param.values[0][1]
        if predicate(recipe, block, _block_args(recipe, block)[2]):
            chosen.append(param)
    return chosen


def _block_call(recipe, block, input_shape, kwargs):
    def call():
        inputs = keras.Input(shape=input_shape)
        outputs = recipe.block(block)(inputs, **kwargs, name="probe")
        return keras.Model(inputs, outputs)
    return call


def _block_knobs(values):
    return {k: v for k, v in values.items() if k not in (*NOT_CHECKED, *ACTIVATIONS)}


@pytest.mark.parametrize("pair", ALL_BLOCKS)
@_settings(4)
@given(data=st.data())
def test_block_valid_configs(pair, data):
    """Sizes and counts between half the example's and it (multiples of its group count where
    the example's are), any flags, an input at least the example's size with half to twice its
    channels: the block builds a graph that runs."""
    recipe, block = BY_NAME[pair[0]], pair[1]
    input_shape, example, values = _block_args(recipe, block)
    kwargs = dict(example)
    groups = max([int(values[name]) for name in GROUP_ARGS if name in values] or [1])
    for name, value in _block_knobs(values).items():
        strategy = None if name in GROUP_ARGS else _valid_knob(value, groups)
        if strategy is not None:
            kwargs[name] = data.draw(strategy, label=name)
    shape = tuple(data.draw(st.integers(d, 2 * d), label="input size") for d in input_shape[:-1])
    channels = input_shape[-1]
    shape += (data.draw(st.integers(max(1, channels // 2), 2 * channels), label="input channels"),)
    note(f"{block}(Input{shape}, **{kwargs})")
    _fresh()
    with _valid("test_block_valid_configs", pair):
        model = _block_call(recipe, block, shape, kwargs)()
        for out in _output_shapes(model):
            assert len(out) == len(shape) + 1 and all(d is None or d > 0 for d in out), f"{block}: output {out}"
        _run_forward(model, shape)
    _fresh()


@pytest.mark.parametrize("pair", ALL_BLOCKS)
@_settings(2)
@given(data=st.data())
def test_block_takes_numpy_integers(pair, data):
    """np.int64/np.int32 counts and sizes: the same block as with Python ints."""
    recipe, block = BY_NAME[pair[0]], pair[1]
    input_shape, example, _ = _block_args(recipe, block)
    reference = _reference(pair, _block_call(recipe, block, input_shape, example))
    dtype = data.draw(st.sampled_from([np.int64, np.int32]), label="dtype")
    kwargs = {k: _as_numpy(v, dtype) if k not in NOT_CHECKED else v for k, v in example.items()}
    _fresh()
    with _valid("test_block_takes_numpy_integers", pair):
        model = _block_call(recipe, block, input_shape, kwargs)()
        got = (model.count_params(), _output_shapes(model), [layer.name for layer in model.layers])
        assert got == reference, f"{block} with {dtype.__name__} arguments builds another block"
    _fresh()


@pytest.mark.parametrize("pair", ALL_BLOCKS)
@_settings(3)
@given(data=st.data())
def test_block_small_inputs(pair, data):
    """An input below the example's size: the block builds a graph that runs, or it rejects
    the input by name. Never a Keras-internal shape error."""
    recipe, block = BY_NAME[pair[0]], pair[1]
    input_shape, example, _ = _block_args(recipe, block)
    shape = tuple(data.draw(st.integers(1, d), label="input size") for d in input_shape[:-1]) + input_shape[-1:]
    note(f"{block}(Input{shape}, **{example})")
    _fresh()
    try:
        model = _block_call(recipe, block, shape, example)()
    except Exception as error:  # noqa: BLE001 - checked below
        _check_rejection(recipe, error, list(INPUTS), f"{block}(Input{shape})")
        _count("block small inputs", "rejected")
        return
    _run_forward(model, shape)
    _count("block small inputs", "built and ran")
    _fresh()


def _block_invalid(function, argument, value):
    """A strategy of invalid values for a block's argument, or None without a generic rule."""
    if argument in NOT_CHECKED:
        return None
    if _kind(value) == "str":
        return _UNKNOWN
    return _out_of_range(argument, value, argument in _zero_documented(function))


def _block_cases(rule):
    """(recipe, block, argument) for the blocks' arguments that ``rule`` covers."""
    cases = []
    for param in ALL_BLOCKS:
        recipe, block = BY_NAME[param.values[0][0]], param.values[0][1]
        _, _, values = _block_args(recipe, block)
        for argument in sorted(values):
            if rule(recipe.block(block), argument, values[argument]) is not None:
                cases.append(pytest.param((recipe.name, block, argument), id=f"{param.id}-{argument}"))
    return cases


@pytest.mark.parametrize("case", _block_cases(_block_invalid))
@_settings(3)
@given(data=st.data())
def test_block_rejects_invalid_arguments(case, data):
    """Zero, negative, NaN and infinite sizes, counts and rates, empty tuples and unknown
    strings, for every argument of every block."""
    recipe, block, argument = BY_NAME[case[0]], case[1], case[2]
    input_shape, example, values = _block_args(recipe, block)
    bad = data.draw(_block_invalid(recipe.block(block), argument, values[argument]), label=argument)
    _fresh()
    _expect_rejected(recipe, _block_call(recipe, block, input_shape, {**example, argument: bad}), [argument],
                     f"{block}({argument}={bad!r})", "block invalid argument")


def _channel_counts(input_shape, values):
    counts = {input_shape[-1]}
    for name, value in values.items():
        if _kind(value) == "int" and any(word in name for word in ("filters", "width", "channels")):
            counts.add(value)
    return counts


@pytest.mark.parametrize("pair", _blocks_where(lambda recipe, block, values: set(GROUP_ARGS) & set(values)))
@_settings(4)
@given(data=st.data())
def test_block_rejects_group_count_that_divides_nothing(pair, data):
    recipe, block = BY_NAME[pair[0]], pair[1]
    input_shape, example, values = _block_args(recipe, block)
    argument = data.draw(st.sampled_from(sorted(set(GROUP_ARGS) & set(values))), label="argument")
    counts = _channel_counts(input_shape, values)
    groups = data.draw(st.integers(2, 97).filter(lambda g: all(c % g for c in counts)), label=argument)
    _fresh()
    _expect_rejected(recipe, _block_call(recipe, block, input_shape, {**example, argument: groups}), [argument],
                     f"{block}({argument}={groups}) with channels {sorted(counts)}", "block group count")


# --- last: every generated valid configuration built ---------------------------------------


def test_every_generated_valid_configuration_built(request):
    """Every valid configuration generated in this session built: none was rejected, and
    every selected valid-configuration case generated at least one. (A rejection also
    fails its own test; this is the count across the module, printed at the end.)"""
    selected = [(item.originalname, item.callspec.id) for item in request.session.items
                if getattr(item, "originalname", None) in VALID_PROPERTIES]
    if not selected:
        pytest.skip("no valid-configuration property selected")
    missing = [case for case in selected if VALID[case][0] == 0]
    assert not missing, f"selected valid-configuration cases that generated nothing: {missing}"
    failed = {f"{test}[{case}]": f"{built} of {generated} built"
              for (test, case), (generated, built) in VALID.items() if built != generated}
    assert not failed, f"valid configurations that did not build: {failed}"
    generated = sum(VALID[case][0] for case in selected)
    assert sum(VALID[case][1] for case in selected) == generated > 0
