"""keras.applications' own test protocol, run on our builders.

The calls of keras/src/applications/applications_test.py (Keras 3), channels_last, with
``weights=None``: no top with 1 and 4 input channels and no fixed size; no top on a
123x123 input; no top on an ``input_tensor`` that comes out of a strided Conv2D on a
200x200x4 input; ``pooling="max"``; ``classifier_activation="softmax"`` on the last
layer; and a serialization round trip. The expected last dimension of each twin is the
keras.applications model's own, read from a build of the twin; for builders without a
twin, it is our default build's.

Every image classifier builder runs the protocol: each recipe's demo builder (small by
design) in the default suite, the others under the ``heavy`` marker (`make test`).
"""

import keras
import pytest

from cookbook import registry, tasks

# The default suite runs each recipe's demo builder; the others run under `heavy`, and so do
# demo builders whose full-size build alone takes seconds (the protocol builds it ~8 times):
# together they took a fifth of the default suite's ten minutes.
FULL_SIZE_TOO_SLOW = {"inception_resnet_v2", "inception_v4", "inception_v3", "densenet"}
IMAGE_CLASSIFIERS = [
    pytest.param(recipe, builder, marks=[] if builder == recipe.demo["builder"] and builder not in FULL_SIZE_TOO_SLOW
                 else [pytest.mark.heavy],
                 id=f"{recipe.name}.{builder}")
    for recipe, builder in registry.all_builders()
    if tasks.get(recipe.task).target == "labels" and recipe.task == "classification"
]
_LAST_DIM = {}


def _last_dim(recipe, builder):
    """The channel count of the feature map without the top, from keras.applications when a twin exists."""
    if builder not in _LAST_DIM:
        twin = recipe.twin(builder)
        build = getattr(keras.applications, twin) if twin else recipe.builder(builder)
        _LAST_DIM[builder] = int(build(weights=None, include_top=False, input_shape=(None, None, 3)).output.shape[-1])
        keras.backend.clear_session(free_memory=False)
    return _LAST_DIM[builder]


@pytest.mark.parametrize("recipe, builder", IMAGE_CLASSIFIERS)
def test_notop_variable_input_channels(recipe, builder):
    build, last_dim = recipe.builder(builder), _last_dim(recipe, builder)
    for channels in (1, 4):
        model = build(weights=None, include_top=False, input_shape=(None, None, channels))
        assert list(model.outputs[0].shape) == [None, None, None, last_dim]


@pytest.mark.parametrize("recipe, builder", IMAGE_CLASSIFIERS)
def test_notop_custom_input_shape(recipe, builder):
    model = recipe.builder(builder)(weights=None, include_top=False, input_shape=(123, 123, 3))
    assert model.outputs[0].shape[-1] == _last_dim(recipe, builder)


@pytest.mark.parametrize("recipe, builder", IMAGE_CLASSIFIERS)
def test_notop_custom_input_tensor(recipe, builder):
    inputs = keras.Input(shape=(200, 200, 4), name="custom_input")
    inputs = keras.layers.Conv2D(3, (2, 2), padding="valid", strides=(2, 2))(inputs)
    model = recipe.builder(builder)(weights=None, include_top=False, input_tensor=inputs)
    assert model.outputs[0].shape[-1] == _last_dim(recipe, builder)
    assert model.inputs[0].shape[1:] == (200, 200, 4), "the model starts at the tensor's source"


@pytest.mark.parametrize("recipe, builder", IMAGE_CLASSIFIERS)
def test_pooling(recipe, builder):
    model = recipe.builder(builder)(weights=None, include_top=False, pooling="max")
    assert list(model.outputs[0].shape) == [None, _last_dim(recipe, builder)]


@pytest.mark.parametrize("recipe, builder", IMAGE_CLASSIFIERS)
def test_classifier_activation_and_serialization(recipe, builder):
    model = recipe.builder(builder)(weights=None, include_top=True, classifier_activation="softmax")
    assert model.layers[-1].activation.__name__ == "softmax"
    config = keras.saving.serialize_keras_object(model)
    reconstructed = keras.saving.deserialize_keras_object(config)
    assert len(model.weights) == len(reconstructed.weights)

