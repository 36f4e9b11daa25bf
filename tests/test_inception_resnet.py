"""Inception-ResNet-v2 against Szegedy, Ioffe, Vanhoucke and Alemi 2017.

The parameterized suites (test_recipes.py, test_applications_protocol.py) already check
the builders, blocks, the demo and the InceptionResNetV2 parity with keras.applications.
Here: the scaled residual of figure 20 in closed form, the keras layer names of the twin,
and the low-resolution stem.
"""

import keras
import numpy as np
import pytest

from cookbook.recipes import inception_resnet as ir

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
    with pytest.raises(ValueError, match="input_shape"):  # below 39 px the last grid has no pixel
        ir.inception_resnet_v2(input_shape=(38, 38, 1), classes=10, width=0.125, stem="low_res")


def test_knob_arguments_are_checked():
    cases = [(ir.inception_resnet_v2, {"stem": "cifar"}, "stem"), (ir.inception_resnet_v2, {"blocks": (1, 1)}, "blocks"),
             (ir.inception_resnet_v2, {"blocks": (1, 0, 1)}, "blocks"), (ir.inception_resnet_v2, {"width": 0}, "width")]
    for build, kwargs, argument in cases:
        with pytest.raises(ValueError, match=argument):
            build(**kwargs)
    with pytest.raises(ValueError, match="x"):  # a grid reduction needs at least 3x3
        ir.reduction_b(keras.Input((2, 2, 8)))
