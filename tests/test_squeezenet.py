"""SqueezeNet against its paper and the published figures.

Iandola et al. 2016 (arXiv:1602.07360): Table 1 (SqueezeNet 1.0's layer sizes and the
fire modules' s1x1, e1x1, e3x3), the fire module of section 3.2, and the claim of
"AlexNet-level accuracy with 50x fewer parameters". SqueezeNet 1.1 is the reference
implementation's README (github.com/forresti/SqueezeNet): conv1 64 3x3/2, pools after
conv1, fire3 and fire5, 2.4x less computation. The parameter counts are torchvision's
published ones (biases included): 1,248,424 (1.0) and 1,235,496 (1.1) at 1000 classes.
tests/test_recipes.py checks both builders like every builder (build, gradients, the
.keras round trip, bad arguments); these tests check the paper's figures.
"""

import keras
import numpy as np
import pytest

from cookbook import cost, registry
from cookbook.recipes import squeezenet


def _numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


def _fire_params(c, s, e1, e3):
    """Section 3.2 by hand: squeeze 1x1 (C -> s), expand 1x1 (s -> e1) and 3x3 (s -> e3), with biases."""
    return (c * s + s) + (s * e1 + e1) + (9 * s * e3 + e3)


def test_parameter_counts_are_the_published_ones():
    """torchvision's published counts, at 224x224x3 and 1000 classes."""
    assert squeezenet.squeezenet1_0().count_params() == 1_248_424
    assert squeezenet.squeezenet1_1().count_params() == 1_235_496
    assert squeezenet.BUILDERS["squeezenet1_0"]["params"] == 1_248_424
    assert squeezenet.BUILDERS["squeezenet1_1"]["params"] == 1_235_496


def test_fifty_times_fewer_parameters_than_alexnet():
    """The title's claim: AlexNet (the cookbook's default build, 62,378,344 parameters) has
    49.97x the parameters of SqueezeNet 1.0 (1,248,424)."""
    alexnet = registry.get("alexnet").params()
    ratio = alexnet / squeezenet.BUILDERS["squeezenet1_0"]["params"]
    assert alexnet == 62_378_344
    assert round(ratio, 2) == 49.97
    assert ratio > 45


@pytest.mark.parametrize("c, s, e1, e3, expected", [
    (96, 16, 64, 64, 11_920),  # fire2 of SqueezeNet 1.0 (the docstring's arithmetic)
    (512, 64, 256, 256, 197_184),  # fire9
])
def test_fire_module_parameter_count_by_hand(c, s, e1, e3, expected):
    inputs = keras.Input(shape=(13, 13, c))
    outputs = squeezenet.fire_module(inputs, s, e1, e3, name="fire")
    assert tuple(outputs.shape[1:]) == (13, 13, e1 + e3)
    assert keras.Model(inputs, outputs).count_params() == _fire_params(c, s, e1, e3) == expected
    assert expected * 9 < 9 * c * (e1 + e3) + e1 + e3  # a 3x3 conv of the same width costs over 9x more


def test_fire_module_squeezes_then_expands_side_by_side():
    """With random weights: squeeze = ReLU(x W_s + b_s); the concat's first e1 channels are
    ReLU(squeeze W_1 + b_1) (the 1x1 expand, in NumPy), the rest the 3x3 expand's output."""
    inputs = keras.Input(shape=(6, 6, 8))
    model = keras.Model(inputs, squeezenet.fire_module(inputs, 3, 5, 7, name="fire"))
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    probe = keras.Model(inputs, [model.get_layer("fire_expand3x3").output, model.output])
    x = rng.normal(size=(2, 6, 6, 8)).astype("float32")
    expand3x3, y = (_numpy(v) for v in probe(x))
    w_s, b_s = model.get_layer("fire_squeeze1x1").get_weights()
    w_1, b_1 = model.get_layer("fire_expand1x1").get_weights()
    squeezed = np.maximum(x @ w_s[0, 0] + b_s, 0)
    np.testing.assert_allclose(y[..., :5], np.maximum(squeezed @ w_1[0, 0] + b_1, 0), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(y[..., 5:], expand3x3)
    assert model.get_layer("fire_expand3x3").kernel.shape == (3, 3, 3, 7)
    assert model.get_layer("fire_expand3x3").padding == "same"


# Table 1 of the paper (SqueezeNet 1.0): each layer's output, height x width x channels.
TABLE_1 = {
    "conv1": (111, 111, 96), "pool1": (55, 55, 96), "fire2_concat": (55, 55, 128),
    "fire3_concat": (55, 55, 128), "fire4_concat": (55, 55, 256), "pool4": (27, 27, 256),
    "fire5_concat": (27, 27, 256), "fire6_concat": (27, 27, 384), "fire7_concat": (27, 27, 384),
    "fire8_concat": (27, 27, 512), "pool8": (13, 13, 512), "fire9_concat": (13, 13, 512),
    "conv10": (13, 13, 1000), "pool10": (1000,),
}


def test_table_1_layer_sizes():
    """Table 1's sizes come from Caffe's 227x227 crop (its "224x224" input cannot give a 111x111
    conv1 from a valid 7x7/2: (227 - 7) / 2 + 1 = 111) with ceil-mode pooling, which the
    recipe reproduces: at 227x227 every layer has exactly the table's size. At 224x224 the
    maps are 109 (conv1), 54 (fire2-4), 27 (fire5-8) and 13 (fire9), as torchvision's
    ceil-mode SqueezeNet 1.0; a floor-mode pool would give 54, 26 and 12."""
    model = squeezenet.squeezenet1_0(input_shape=(227, 227, 3))
    assert {name: tuple(model.get_layer(name).output.shape[1:]) for name in TABLE_1} == TABLE_1
    at_224 = squeezenet.squeezenet1_0()
    sizes = {name: at_224.get_layer(name).output.shape[1] for name in ("conv1", "fire2_concat", "fire4_concat",
                                                                         "fire5_concat", "fire8_concat", "fire9_concat")}
    assert sizes == {"conv1": 109, "fire2_concat": 54, "fire4_concat": 54, "fire5_concat": 27,
                     "fire8_concat": 27, "fire9_concat": 13}


def test_squeezenet1_1_pools_earlier_and_computes_less():
    """The README: the same fire modules (so nearly the same parameters), conv1 64 3x3/2, the
    pools moved to after conv1, fire3 and fire5: 2.4x less computation. Counted here, with
    multiply-accumulates at 224x224: 1.0 has 2.3x to 2.5x the MACs of 1.1."""
    v10, v11 = squeezenet.squeezenet1_0(), squeezenet.squeezenet1_1()
    assert squeezenet.feature_stages(v10) == ["conv1", "fire4_concat", "fire8_concat", "fire9_concat"]
    assert squeezenet.feature_stages(v11) == ["conv1", "fire3_concat", "fire5_concat", "fire9_concat"]
    assert v11.get_layer("conv1").kernel.shape == (3, 3, 3, 64)
    assert [tuple(v11.get_layer(n).output.shape[1:3]) for n in squeezenet.feature_stages(v11)] == [
        (111, 111), (55, 55), (27, 27), (13, 13)]
    macs = [sum(layer.macs or 0 for layer in cost.layer_costs(m)) for m in (v10, v11)]
    assert 2.3 < macs[0] / macs[1] < 2.5, macs


def test_pools_are_caffe_ceil_mode_at_any_size():
    """A 3x3/2 pool in ceil mode takes n pixels to ceil((n - 3) / 2) + 1 = n // 2; every stage
    keeps its name at any input size (here without a top, one model for every size)."""
    model = squeezenet.squeezenet1_1(include_top=False, width=0.125)
    assert model.input_shape == (None, None, None, 3)
    probe = keras.Model(model.input, [model.get_layer(name).output for name in squeezenet.feature_stages(model)])
    for side in (17, 18, 21, 30, 64):
        conv1 = (side - 3) // 2 + 1
        assert all(-(-(n - 3) // 2) + 1 == n // 2 for n in (conv1, conv1 // 2, conv1 // 4))
        outputs = probe(np.zeros((1, side, side, 3), "float32"))
        assert [int(o.shape[1]) for o in outputs] == [conv1, conv1 // 2, conv1 // 4, conv1 // 8], side


def test_smallest_inputs_and_knobs():
    """conv1 must leave 8 pixels for three pools: 21 px for 1.0 (7x7/2), 17 px for 1.1 (3x3/2)."""
    for builder, least in ((squeezenet.squeezenet1_0, 21), (squeezenet.squeezenet1_1, 17)):
        model = builder(input_shape=(least, least, 1), classes=10, width=0.125)
        assert model.get_layer("fire9_concat").output.shape[1:3] == (1, 1)
        with pytest.raises(ValueError, match="input_shape"):
            builder(input_shape=(least - 1, least, 3), classes=10)
    half = squeezenet.squeezenet1_1(width=0.5, batch_norm=True, include_top=False, pooling="avg")
    assert half.output_shape == (None, 256)
    assert half.get_layer("fire2_expand3x3_conv").kernel.shape == (3, 3, 8, 32)
    assert not half.get_layer("fire2_expand3x3_conv").use_bias
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in squeezenet.squeezenet1_1().layers)


def test_batch_norm_goes_before_every_relu_conv10s_too():
    """batch_norm=True: every conv is linear, bias-free and feeds its own BatchNorm, conv10's
    class scores included. Without a BN there, the ten score maps fell almost entirely below
    zero within 60 steps of the demo, where the ReLU passes no gradient: the loss sat at ln(10)
    for epochs."""
    model = squeezenet.squeezenet1_1(input_shape=(64, 64, 1), classes=10, width=0.5, batch_norm=True)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 1 + 3 * 8 + 1  # conv1, squeeze and two expands per fire module, conv10
    for conv in convs:
        assert conv.get_config()["activation"] == "linear" and not conv.use_bias, conv.name
        bn = model.get_layer(conv.name.removesuffix("_conv") + "_bn")
        assert isinstance(bn, keras.layers.BatchNormalization) and bn.input is conv.output, conv.name
    assert isinstance(model.get_layer("conv10"), keras.layers.ReLU)  # the name Grad-CAM taps is kept


@pytest.mark.parametrize("call, argument", [
    (lambda: squeezenet.squeezenet1_0(dropout=1.0), "dropout"),
    (lambda: squeezenet.squeezenet1_1(weights="imagenet"), "weights"),
    (lambda: squeezenet.squeezenet1_1(include_top=False, pooling="min"), "pooling"),
    (lambda: squeezenet.squeezenet1_0(classes=0), "classes"),
])
def test_bad_arguments_name_the_argument(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()
