"""cookbook.fcn: a Flatten-Dense classifier rewritten as a fully convolutional network.

What these tests prove. On the VGG and AlexNet demos: at the training size the converted
model is the original one (so the first Dense kernel is reshaped in Flatten's (h, w, c)
order), and on a larger input it returns a softmax map of the size that the trunk's strides
predict. On a small valid-padded model: every cell of that map is the original model on its
crop, the sliding-window equivalence. That equivalence is not claimed for the recipes: they
zero-pad (VGG's "same" convs, AlexNet's ZeroPadding2D), so a crop sees zeros at its edges
where the larger image has pixels, and their cells differ from their crops by about 1e-3.
"""

import keras
import numpy as np
import pytest
from keras import layers

from cookbook import registry
from cookbook.fcn import fully_convolutional

TRAIN = (20, 24)  # the small model's input: not square, so a swapped (h, w) kernel fails
STRIDE = 4  # its two 2x2 pools


@pytest.fixture(scope="module")
def demo():
    """The recipe's demo build (64x64x1, 10 classes, random weights from seed 0), built once
    per module: under JAX a build takes seconds. Converting it again must work too."""
    built = {}

    def build(name):
        if name not in built:
            keras.utils.set_random_seed(0)
            built[name] = registry.get(name).build_demo()
        return built[name]

    return build


def _run(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def _images(shape, n=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, size=(n, *shape)).astype("float32")


def _small_model():
    """Valid convs and pools that divide evenly: no padding, so a cell is exactly its crop."""
    inputs = keras.Input((*TRAIN, 3), name="image")
    x = layers.Conv2D(8, 3, activation="relu", name="conv1")(inputs)  # 18x22
    x = layers.MaxPooling2D(2, name="pool1")(x)  # 9x11
    x = layers.Conv2D(16, 3, activation="relu", name="conv2")(x)  # 7x9
    x = layers.MaxPooling2D(2, name="pool2")(x)  # 3x4 (a row and a column dropped)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(32, activation="relu", name="fc1")(x)
    x = layers.Dropout(0.5, name="fc1_dropout")(x)
    outputs = layers.Dense(5, activation="softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name="small")


@pytest.mark.parametrize("name, stride", [("vgg", 32), ("alexnet", 16)])
def test_recipe_demo_is_unchanged_at_its_size_and_maps_larger_inputs(demo, name, stride):
    model = demo(name)
    fcn = fully_convolutional(model)
    x = _images((64, 64, 1), n=3)
    expected, got = _run(model, x), _run(fcn, x)
    assert got.shape == (3, 1, 1, 10)
    assert np.ptp(expected) > 1e-3  # near-uniform softmax, but spread well beyond the tolerance
    np.testing.assert_allclose(got[:, 0, 0], expected, atol=1e-5)
    # The stride independently: the paper's (five 2x2 pools; a 2-stride stem and three pools)
    # and the product of the layers' strides.
    assert np.prod([getattr(layer, "strides", (1,))[0] for layer in model.layers]) == stride
    size = (128 - 64) // stride + 1
    scores = _run(fcn, _images((128, 128, 1), seed=1))
    assert scores.shape == (2, size, size, 10)
    np.testing.assert_allclose(scores.sum(axis=-1), 1.0, atol=1e-5)  # softmax over classes
    # Trunk names kept, each Dense renamed after itself, the classifier still float32.
    heads = {"vgg": ["fc1", "fc2"], "alexnet": ["fc6", "fc6_dropout", "fc7", "fc7_dropout"]}[name]
    head = [f"{layer}_conv" if "dropout" not in layer else layer for layer in heads]
    assert [layer.name for layer in fcn.layers] == (
        [layer.name for layer in model.layers][: -len(heads) - 2] + head + ["predictions_conv"])
    assert fcn.layers[-1].dtype_policy.name == "float32"


def test_each_cell_is_the_original_model_on_its_crop():
    model = _small_model()
    fcn = fully_convolutional(model, name="small_fcn")
    assert fcn.name == "small_fcn" and fcn.get_layer("conv1") is model.get_layer("conv1")
    big = _images((28, 36, 3), seed=2)
    rows, cols = (28 - TRAIN[0]) // STRIDE + 1, (36 - TRAIN[1]) // STRIDE + 1
    scores = _run(fcn, big)
    assert scores.shape == (2, rows, cols, 5) == (2, 3, 4, 5)
    crops = np.stack([big[:, i * STRIDE:i * STRIDE + TRAIN[0], j * STRIDE:j * STRIDE + TRAIN[1]]
                      for i in range(rows) for j in range(cols)], axis=1)
    expected = _run(model, crops.reshape(-1, *TRAIN, 3)).reshape(2, rows, cols, 5)
    assert np.ptp(expected) > 1e-2
    np.testing.assert_allclose(scores, expected, atol=1e-5)


def _model_with(head, shape=(8, 8, 2)):
    inputs = keras.Input(shape)
    return keras.Model(inputs, head(layers.Conv2D(4, 3, name="conv")(inputs)))


@pytest.mark.parametrize("model, error, match", [
    (lambda: "vgg", TypeError, "keras.Model"),
    (lambda: _model_with(lambda x: layers.Dense(3)(layers.GlobalAveragePooling2D()(x))),
     ValueError, "no Flatten"),
    (lambda: _model_with(lambda x: layers.Dense(3)(layers.BatchNormalization(name="bn")(
        layers.Flatten()(x)))), ValueError, "after the Flatten.*'bn'"),
    (lambda: _model_with(lambda x: layers.Dense(3)(layers.Flatten(name="flat")(
        layers.Reshape((36, 4))(x)))), ValueError, "'flat' must read .*\\(h, w, c\\)"),
    (lambda: keras.Sequential([layers.Flatten(), layers.Dense(3)]), ValueError, "functional"),
    (lambda: _model_with(lambda x: layers.Dense(3)(layers.Flatten()(_model_with(
        lambda y: y, shape=(6, 6, 4))(x)))), ValueError, "fixed input size"),
])
def test_bad_models_are_refused_clearly(model, error, match):
    with pytest.raises(error, match=match):
        fully_convolutional(model())


def test_a_sequential_model_converts_too():
    model = keras.Sequential([keras.Input((*TRAIN, 3))] + _small_model().layers[1:])
    x = _images((*TRAIN, 3))
    np.testing.assert_allclose(_run(fully_convolutional(model), x)[:, 0, 0], _run(model, x),
                               atol=1e-5)


def test_converted_model_round_trips_in_safe_mode(demo, tmp_path):
    fcn = fully_convolutional(demo("alexnet"))
    x = _images((96, 80, 1), seed=3)
    path = tmp_path / "alexnet_fcn.keras"
    fcn.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.input_shape == (None, None, None, 1)
    np.testing.assert_allclose(_run(loaded, x), _run(fcn, x), atol=1e-6)
