"""Inception-v4 and Inception-ResNet-v2 against Szegedy, Ioffe, Vanhoucke and Alemi 2017.

The parameterized suites (test_recipes.py, test_applications_protocol.py) already check
the builders, blocks, the demos and the InceptionResNetV2 parity with keras.applications.
Here: the module output shapes of the paper's figures 3-9 for Inception-v4, its parameter
count against the published figures, the scaled residual of figure 20 in closed form,
the keras layer names of the twin, and the low-resolution stems.
"""

import math

import keras
import numpy as np
import pytest

from cookbook.recipes import inception_resnet as ir
from cookbook.recipes import inception_v4 as v4

# Figures 3-9 at 299x299x3: (grid, channels) after the stem and each kind of module.
V4_SHAPES = {"mixed_5a": (35, 384), "mixed_5b": (35, 384), "mixed_6a": (17, 1024), "mixed_6b": (17, 1024),
             "mixed_7a": (8, 1536), "mixed_7b": (8, 1536)}
# Inception-v4 at 1000 classes. Keras's count_params() includes the BatchNorm moving mean
# and variance (63,168). The trainable 42,648,232 are conv kernels, BN betas (no gammas:
# BatchNorm(scale=False) before a ReLU, as keras's conv2d_bn and TF-slim's arg scope)
# and the classifier; Open Model Zoo's googlenet-v4-tf lists 42.648 M. The commonly cited
# 42.68 M is timm's inception_v4 (1000 classes), whose BatchNorm also learns a gamma per
# channel: 31,584 more. TF-slim's 1001-class head would add 1,537 (42,649,769 trainable).
V4_PARAMS, V4_TRAINABLE, V4_BN_CHANNELS, TIMM_V4_PARAMS_M = 42_711_400, 42_648_232, 31_584, 42.68


def _count(weights):
    return sum(math.prod(w.shape) for w in weights)


# --- Inception-v4: the paper's figures ------------------------------------------------------


def test_inception_v4_module_shapes_match_figures_3_to_9():
    """One module per grid is enough for the shapes, which do not depend on the counts."""
    model = v4.inception_v4(include_top=False, input_shape=(299, 299, 3), blocks=(1, 1, 1))
    for name, (grid, channels) in V4_SHAPES.items():
        assert model.get_layer(name).output.shape[1:] == (grid, grid, channels), name
    assert model.get_layer("mixed_5a_3a").output.shape[1:] == (73, 73, 160)  # figure 3
    assert model.get_layer("mixed_5a_4a").output.shape[1:] == (71, 71, 192)


@pytest.mark.heavy  # the full 42.7 M model
def test_inception_v4_full_build_counts_and_stages():
    model = v4.inception_v4()
    assert [layer.name for layer in model.layers if layer.name[:6] == "mixed_" and len(layer.name) == 8] == [
        "mixed_5a", "mixed_5b", "mixed_5c", "mixed_5d", "mixed_5e", "mixed_6a", "mixed_6b", "mixed_6c", "mixed_6d",
        "mixed_6e", "mixed_6f", "mixed_6g", "mixed_6h", "mixed_7a", "mixed_7b", "mixed_7c", "mixed_7d"]
    for name in ("mixed_5e", "mixed_6h", "mixed_7d"):
        assert model.get_layer(name).output.shape[1:] == model.get_layer(f"{name[:7]}b").output.shape[1:]
    assert model.get_layer("dropout").rate == 0.2  # "Dropout (keep 0.8)", figure 9
    assert model.count_params() == V4_PARAMS
    trainable = _count(model.trainable_weights)
    assert trainable == V4_TRAINABLE
    bn_channels = sum(layer.beta.shape[0] for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
    assert bn_channels == V4_BN_CHANNELS
    assert round((trainable + bn_channels) / 1e6, 2) == TIMM_V4_PARAMS_M
    stages = v4.feature_stages(model)
    assert stages == ["mixed_5a_conv3_ac", "mixed_5a_4a", "mixed_5e", "mixed_6h", "mixed_7d"]
    assert [model.get_layer(s).output.shape[1] for s in stages] == [147, 71, 35, 17, 8]


def test_inception_v4_reduction_a_follows_table_1():
    """Figure 7 with Table 1's (k, l, m, n): n + m channels from the convs, the rest pooled."""
    for network, (k, l, m, n) in v4.REDUCTION_A.items():
        inputs = keras.Input((9, 9, 8))
        out = v4.reduction_a(inputs, (k, l, m, n), name=f"red_{network}")
        assert out.shape[1:] == (4, 4, n + m + 8), network


# --- Inception-ResNet-v2: the scaled residual (figure 20) ----------------------------------


def _block_model(block, shape, **kwargs):
    inputs = keras.Input(shape)
    return keras.Model(inputs, block(inputs, width=0.25, name="blk", **kwargs))


@pytest.mark.parametrize("block, shape, scale", [(ir.inception_resnet_a, (7, 7, 16), 0.17),
                                                 (ir.inception_resnet_b, (7, 7, 16), 0.1),
                                                 (ir.inception_resnet_c, (5, 5, 16), 0.2)])
def test_residual_block_is_relu_of_x_plus_scaled_branch(block, shape, scale):
    model = _block_model(block, shape, scale=scale)
    rng = np.random.default_rng(0)
    model.set_weights([rng.uniform(0.5, 1.5, w.shape) if "variance" in v.path else rng.normal(0, 0.3, w.shape)
                       for w, v in zip(model.get_weights(), model.weights)])
    x = rng.normal(0, 1, (2, *shape)).astype("float32")
    branch = keras.Model(model.input, model.get_layer("blk_conv").output)  # the linear 1x1 projection
    up = keras.ops.convert_to_numpy(branch(x, training=False))
    got = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(got, np.maximum(x + scale * up, 0), rtol=1e-5, atol=1e-5)
    assert model.get_layer("blk_scale").count_params() == 0  # keras's CustomScaleLayer has none either

    conv = model.get_layer("blk_conv")  # zero the projection: the block is relu(x)
    conv.set_weights([np.zeros_like(w) for w in conv.get_weights()])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x, training=False)), np.maximum(x, 0), atol=1e-6)


def test_last_block_without_activation_is_the_plain_sum():
    """keras's block8_10: scale 1 and no ReLU, so its output can be negative."""
    model = _block_model(ir.inception_resnet_c, (5, 5, 16), scale=1.0, activation=None)
    assert "blk_ac" not in [layer.name for layer in model.layers]
    x = np.random.default_rng(1).normal(0, 1, (2, 5, 5, 16)).astype("float32")
    up = keras.ops.convert_to_numpy(keras.Model(model.input, model.get_layer("blk_conv").output)(x))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), x + up, rtol=1e-5, atol=1e-5)


# --- Inception-ResNet-v2: the twin's names and the small-input stem ------------------------


@pytest.mark.heavy  # two full-size 55.9 M models
def test_inception_resnet_v2_has_the_twins_names_and_stages():
    """Every layer keras.applications names explicitly has the same name and output shape
    in ours (its other layers have session-dependent automatic names)."""
    ours = ir.inception_resnet_v2()
    twin = keras.applications.InceptionResNetV2(weights=None)
    automatic = ("conv2d", "batch_normalization", "activation", "max_pooling2d", "average_pooling2d",
                 "custom_scale_layer", "input_layer")
    named = [layer.name for layer in twin.layers if not layer.name.startswith(automatic)]
    # mixed_5b/6a/7a, 40 blocks x (mixed, conv), 39 block activations, conv_7b (+ _bn, _ac), the head.
    assert len(named) == 3 + 40 * 2 + 39 + 3 + 2
    for name in named:
        assert ours.get_layer(name).output.shape == twin.get_layer(name).output.shape, name
    stages = ir.feature_stages(ours)
    assert stages == ["mixed_5b_conv3_ac", "mixed_5b_conv5_ac", "block35_10_ac", "block17_20_ac", "conv_7b_ac"]
    assert [ours.get_layer(s).output.shape[1] for s in stages] == [147, 71, 35, 17, 8]


def test_low_res_stems_keep_resolution_for_64_pixel_inputs():
    model = ir.inception_resnet_v2(input_shape=(64, 64, 1), classes=10, width=0.125, blocks=(1, 1, 1),
                                   stem="low_res")
    assert "mixed_5b_pool1" not in [layer.name for layer in model.layers]
    assert [model.get_layer(s).output.shape[1] for s in ir.feature_stages(model)] == [29, 27, 13, 6, 2]
    model = v4.inception_v4(input_shape=(64, 64, 1), classes=10, width=0.125, blocks=(1, 1, 1), stem="low_res")
    assert model.get_layer("mixed_5a_3a_pool").strides == (1, 1)
    assert [model.get_layer(s).output.shape[1] for s in v4.feature_stages(model)] == [29, 25, 12, 5, 2]
    for build, least in ((ir.inception_resnet_v2, 39), (v4.inception_v4, 43)):  # the last grid keeps 1x1
        with pytest.raises(ValueError, match="input_shape"):
            build(input_shape=(least - 1, least - 1, 1), classes=10, width=0.125, stem="low_res")


def test_knob_arguments_are_checked():
    cases = [(ir.inception_resnet_v2, {"stem": "cifar"}, "stem"), (ir.inception_resnet_v2, {"blocks": (1, 1)}, "blocks"),
             (ir.inception_resnet_v2, {"blocks": (1, 0, 1)}, "blocks"), (ir.inception_resnet_v2, {"width": 0}, "width"),
             (v4.inception_v4, {"dropout": 1.0}, "dropout"), (v4.inception_v4, {"weights": "imagenet"}, "weights"),
             (v4.inception_v4, {"stem": "cifar"}, "stem"), (v4.inception_v4, {"blocks": (4, 7)}, "blocks")]
    for build, kwargs, argument in cases:
        with pytest.raises(ValueError, match=argument):
            build(**kwargs)
    with pytest.raises(ValueError, match="x"):  # a grid reduction needs at least 3x3
        ir.reduction_b(keras.Input((2, 2, 8)))
