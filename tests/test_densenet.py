"""DenseNet against the paper and keras.applications, beyond the parameterized suite.

Parity in parameters and transplanted outputs for densenet121/169/201 is checked by
tests/test_recipes.py (BUILDERS "twin"). Here: the paper's connectivity (layer l of a
block sees k0 + k(l - 1) maps; transitions keep floor(theta * C)), the published sizes
of the CIFAR DenseNet-BC models (Huang et al. 2017, Table 2), the CIFAR feature-map
sizes, and keras.applications' input minimum, layer names and transplanted outputs.
"""

import keras
import numpy as np
import pytest

from cookbook.recipes import densenet


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


# --- the paper's connectivity ----------------------------------------------------------


def test_dense_layers_see_all_earlier_maps():
    """In DenseNet-121 layer l of block conv2 gets k0 + 32 (l - 1) channels (k0 = 64),
    makes 4k = 128 bottleneck maps and k = 32 new ones; transitions halve the channels."""
    model = densenet.densenet121(include_top=False, input_shape=(32, 32, 3))
    k, channels = 32, 64
    for block, layers_in_block in zip(range(2, 6), (6, 12, 24, 16)):
        for l in range(1, layers_in_block + 1):
            kernel = model.get_layer(f"conv{block}_block{l}_1_conv").kernel
            assert tuple(kernel.shape) == (1, 1, channels + k * (l - 1), 4 * k)
            assert tuple(model.get_layer(f"conv{block}_block{l}_2_conv").kernel.shape) == (3, 3, 4 * k, k)
        channels += k * layers_in_block
        if block < 5:
            assert model.get_layer(f"pool{block}_conv").kernel.shape[-1] == channels // 2
            channels //= 2
    assert channels == 1024 and model.output.shape[-1] == 1024  # DenseNet-121's final width


def test_transition_keeps_floor_of_theta_times_channels():
    inputs = keras.Input(shape=(8, 8, 45))
    outputs = densenet.transition_block(inputs, 0.5, name="probe")
    assert tuple(outputs.shape[1:]) == (4, 4, 22)  # floor(0.5 * 45), 2x2 average pool
    with pytest.raises(ValueError, match="compression"):
        densenet.transition_block(keras.Input(shape=(8, 8, 45)), 1.5, name="bad")


def test_dense_block_grows_by_k_per_layer():
    inputs = keras.Input(shape=(8, 8, 24))
    outputs = densenet.dense_block(inputs, np.int64(5), np.int64(12), name="probe")
    assert tuple(outputs.shape[1:]) == (8, 8, 24 + 5 * 12)


# --- published DenseNet-BC sizes (CIFAR, Huang et al. 2017, Table 2) -------------------


@pytest.mark.parametrize(
    "depth, growth_rate, millions",
    [
        (100, 12, 0.8),
        pytest.param(250, 24, 15.3, marks=pytest.mark.slow),
        pytest.param(190, 40, 25.6, marks=pytest.mark.slow),
    ],
)
def test_cifar_densenet_bc_sizes(depth, growth_rate, millions):
    """DenseNet-BC with L layers has three blocks of (L - 4) / 6 dense layers."""
    per_block = (depth - 4) // 6
    model = densenet.densenet(input_shape=(32, 32, 3), classes=10, blocks=(per_block,) * 3,
                              growth_rate=growth_rate, compression=0.5, stem="cifar")
    assert round(_trainable(model) / 1e6, 1) == millions


def test_cifar_stem_keeps_32_16_8_grids():
    """The paper's CIFAR network: dense blocks on 32x32, 16x16 and 8x8 maps, 32x32 by default."""
    model = densenet.densenet(classes=10, blocks=(2, 2, 2), growth_rate=12, stem="cifar")
    assert model.input_shape == (None, 32, 32, 3)
    sides = [model.get_layer(f"conv{b}_block2_concat").output.shape[1] for b in (2, 3, 4)]
    assert sides == [32, 16, 8]
    assert model.get_layer("conv1_conv").kernel.shape == (3, 3, 3, 24)  # 2k initial maps


# --- keras.applications: input minimum, layer names, outputs ---------------------------


@pytest.mark.heavy  # a full-size build or a short fit: keeps the default suite under 10 minutes
def test_input_minimum_matches_keras_applications():
    """keras.applications takes 32 px and rejects 31; so do we."""
    for shape in ((31, 31, 3), (32, 31, 3)):
        with pytest.raises(ValueError):
            keras.applications.DenseNet121(weights=None, include_top=False, input_shape=shape)
        with pytest.raises(ValueError, match="input_shape"):
            densenet.densenet121(include_top=False, input_shape=shape)
    keras.applications.DenseNet121(weights=None, include_top=False, input_shape=(32, 32, 3))
    densenet.densenet121(include_top=False, input_shape=(32, 32, 3))


def test_weighted_layer_names_match_keras_applications():
    """Same names as well as the same order, so checkpoints map layer to layer."""
    twin = keras.applications.DenseNet121(weights=None)
    ours = densenet.densenet121()
    assert ours.count_params() == twin.count_params()
    assert [layer.name for layer in ours.layers if layer.weights] == [
        layer.name for layer in twin.layers if layer.weights
    ]


@pytest.mark.heavy  # a full-size build or a short fit: keeps the default suite under 10 minutes
def test_headless_outputs_equal_keras_applications_on_a_64px_image():
    twin = keras.applications.DenseNet121(weights=None, include_top=False, input_shape=(64, 64, 3))
    ours = densenet.densenet121(include_top=False, input_shape=(64, 64, 3))
    rng = np.random.default_rng(0)
    twin.set_weights([rng.uniform(0.5, 1.5, w.shape) if "variance" in w.path else rng.normal(0, 0.05, w.shape)
                      for w in twin.weights])
    ours.set_weights(twin.get_weights())
    x = rng.uniform(-1, 1, (1, 64, 64, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(twin(x, training=False))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(x, training=False)), expected,
                               rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(expected).max())))


@pytest.mark.heavy  # a full-size build or a short fit: keeps the default suite under 10 minutes
def test_general_builder_with_defaults_is_densenet121():
    """The generic builder's defaults are DenseNet-121, and it reaches the same twin."""
    twin = keras.applications.DenseNet121(weights=None, include_top=False, pooling="avg")
    model = densenet.densenet(include_top=False, pooling="avg")
    assert model.count_params() == twin.count_params()
    assert model.output_shape == twin.output_shape == (None, 1024)


@pytest.mark.heavy  # a full-size build or a short fit: keeps the default suite under 10 minutes
def test_feature_stages_are_the_stage_outputs():
    model = densenet.densenet121(include_top=False)
    assert densenet.feature_stages(model) == ["conv1_relu", "conv2_block6_concat", "conv3_block12_concat",
                                              "conv4_block24_concat", "relu"]
    model = densenet.densenet121(include_top=False, input_shape=(224, 224, 3))
    sides = [model.get_layer(name).output.shape[1] for name in densenet.feature_stages(model)]
    assert sides == [112, 56, 28, 14, 7]


def test_general_builder_rejects_bad_arguments():
    with pytest.raises(ValueError, match="compression"):
        densenet.densenet(compression=0.0)
    with pytest.raises(ValueError, match="stem"):
        densenet.densenet(stem="tiny")
    with pytest.raises(ValueError, match="input_shape"):  # three blocks, CIFAR stem: 4 px
        densenet.densenet(input_shape=(3, 3, 3), blocks=(2, 2, 2), stem="cifar")
    with pytest.raises(ValueError, match="weights"):  # not one of keras.applications' three
        densenet.densenet(weights="imagenet", blocks=(2, 2, 2))
    densenet.densenet(input_shape=(4, 4, 3), classes=2, blocks=(2, 2, 2), stem="cifar")
