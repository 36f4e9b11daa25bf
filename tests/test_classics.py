"""The classic CNN recipes against their papers: VGG, MobileNet, ResNeXt, AlexNet.

tests/test_recipes.py already checks every builder the same way, and the twins
(VGG16, VGG19, MobileNet) against keras.applications at their default size. Here
each recipe is held against the figures its paper publishes (parameters,
multiply-adds, layer sizes), each rounded figure with a tolerance of half its last
printed digit unless a comment says otherwise, and the twins against keras.applications
beyond the default build. Full-size models are built and counted, never run; forward
passes happen only on small inputs.
"""

import keras
import numpy as np
import pytest

from cookbook.recipes import alexnet, mobilenet, resnext, vgg


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _macs(model):
    """Multiply-accumulates of the conv and dense layers, counted from the built graph.

    For Conv2D (grouped or not), DepthwiseConv2D and Dense alike, one output position
    costs prod(kernel.shape) multiply-adds: the kernel's last axis is the output
    channels (or the depth multiplier) and its other axes are what each output sees.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
            total += int(np.prod(layer.output.shape[1:-1])) * int(np.prod(layer.kernel.shape))
    return total


def _kernel_weights(model):
    return sum(int(np.prod(w.shape)) for w in model.weights if w.path.endswith("kernel"))


def _randomize(model, rng):
    """Random weights and BN statistics, so a transplant that swaps two tensors cannot pass."""
    for weight in model.weights:
        shape = tuple(weight.shape)
        if "variance" in weight.path:
            value = rng.uniform(0.5, 1.5, shape)
        elif "gamma" in weight.path:
            value = 1 + rng.normal(0, 0.2, shape)
        else:
            value = rng.normal(0, 0.2 if len(shape) == 1 else 0.05, shape)
        weight.assign(value.astype("float32"))


def _assert_same_outputs(ours, twin, x):
    expected = keras.ops.convert_to_numpy(twin(x, training=False))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(x, training=False)), expected,
                               rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(expected).max())))


def _transplant(ours, twin, seed=1):
    """The twin's randomized weights into ours: same shapes, same order, same layer names."""
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in twin.weights]
    assert [l.name for l in ours.layers if l.weights] == [l.name for l in twin.layers if l.weights]
    _randomize(twin, np.random.default_rng(seed))
    ours.set_weights(twin.get_weights())


# --- VGG (Simonyan & Zisserman 2015) ------------------------------------------------------

# Table 2 of the paper: number of parameters in millions, configurations A, B, D, E.
VGG_TABLE2 = {"vgg11": 133, "vgg13": 133, "vgg16": 138, "vgg19": 144}


def _vgg_head_params(flat, classes=1000, units=4096):
    # Table 1 of the paper: FC-4096, FC-4096, FC-1000 on the flattened last pool.
    return (flat * units + units) + (units * units + units) + (units * classes + classes)


@pytest.mark.parametrize("name", list(VGG_TABLE2))
def test_vgg_matches_paper_table2(name):
    """Convs counted from the build; the three FC layers from the paper's Table 1.

    The FC layers hold 90% of the weights (over 100 M), so the full builds are left to
    the twin test (VGG16, VGG19) and the slow test below (VGG11, VGG13).
    """
    convs = getattr(vgg, name)(include_top=False, input_shape=(224, 224, 3))  # the paper's input
    assert convs.output_shape[1:] == (7, 7, 512)
    total = convs.count_params() + _vgg_head_params(7 * 7 * 512)
    assert round(total / 1e6) == VGG_TABLE2[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vgg11", "vgg13"])
def test_vgg_full_build_matches_paper_table2(name):
    model = getattr(vgg, name)()  # input_shape=None with the top: 224x224x3
    assert model.input_shape == (None, 224, 224, 3)
    assert round(model.count_params() / 1e6) == VGG_TABLE2[name]


@pytest.mark.parametrize("name, twin", [("vgg16", "VGG16"), ("vgg19", "VGG19")])
def test_vgg_twin_parity_without_the_top(name, twin):
    """keras.applications VGG16/VGG19 at a small size: same weights, same outputs."""
    kwargs = {"include_top": False, "input_shape": (48, 48, 3), "pooling": "avg"}
    reference = getattr(keras.applications, twin)(weights=None, **kwargs)
    ours = getattr(vgg, name)(**kwargs)
    assert ours.count_params() == reference.count_params()
    _transplant(ours, reference)
    _assert_same_outputs(ours, reference, np.random.default_rng(0).uniform(-1, 1, (1, 48, 48, 3)))


def test_vgg_three_3x3_convs_cost_27_not_49():
    """Section 2.3: three stacked 3x3 convs see 7x7 with 27 C^2 weights instead of 49 C^2."""
    channels = 16
    inputs = keras.Input((16, 16, channels))
    stack = keras.Model(inputs, vgg.vgg_block(inputs, channels, convs=3, name="b"))
    single = keras.Model(inputs, keras.layers.Conv2D(channels, 7, padding="same")(inputs))
    assert _kernel_weights(stack) == 27 * channels**2
    assert _kernel_weights(single) == 49 * channels**2


def test_vgg_batch_norm_variant_and_knobs():
    model = vgg.vgg11(input_shape=(32, 32, 3), classes=10, width=0.25, fc_units=32,
                      dropout=0.5, batch_norm=True)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [16, 32, 64, 64, 128, 128, 128, 128]
    assert not any(c.use_bias for c in convs), "a bias before BatchNorm is cancelled by it"
    assert sum(isinstance(l, keras.layers.BatchNormalization) for l in model.layers) == 8
    assert sum(isinstance(l, keras.layers.Dropout) for l in model.layers) == 2
    assert [model.get_layer(n).units for n in ("fc1", "fc2")] == [32, 32]
    pooled = vgg.vgg16(input_shape=(32, 32, 3), include_top=False, pooling="avg", width=0.125)
    assert pooled.output_shape == (None, 64)


def test_vgg_top_needs_a_fixed_input_size():
    """The Flatten and fc1 need the last map's size: with the top, None sides are refused
    with our error naming input_shape (keras.applications requires a static shape too)."""
    with pytest.raises(ValueError, match="input_shape"):
        vgg.vgg11(input_shape=(None, None, 3), width=0.25)
    with pytest.raises(ValueError, match="input_shape"):
        vgg.vgg11(input_shape=(31, 31, 3), include_top=False)
    assert vgg.vgg11(include_top=False, input_shape=(None, None, 3), width=0.25).output_shape == (
        None, None, None, 128)


def test_vgg_imagenet_weights_only_for_the_twins_configuration():
    with pytest.raises(ValueError, match="weights"):
        vgg.vgg16(weights="imagenet", include_top=False, batch_norm=True)
    with pytest.raises(ValueError, match="weights"):
        vgg.vgg11(weights="imagenet", include_top=False)


# --- MobileNet (Howard et al. 2017) ---------------------------------------------------------

# Table 6 (width multiplier) and Table 7 (resolution) of the paper:
# (alpha, input size) -> (million mult-adds, million parameters).
MOBILENET_TABLES = {
    (1.0, 224): (569, 4.2), (0.75, 224): (325, 2.6), (0.5, 224): (149, 1.3), (0.25, 224): (41, 0.5),
    (1.0, 192): (418, 4.2), (1.0, 160): (290, 4.2), (1.0, 128): (186, 4.2),
}


@pytest.mark.parametrize("alpha, size", list(MOBILENET_TABLES))
def test_mobilenet_matches_paper_tables_6_and_7(alpha, size):
    """Mult-adds to within 1 M: the paper prints whole millions, and 1.0-160 counts 290.68 M,
    a rounding the paper took down; parameters to half the printed 0.1 M."""
    mult_adds, params = MOBILENET_TABLES[(alpha, size)]
    model = mobilenet.mobilenet(input_shape=(size, size, 3), alpha=alpha)
    assert abs(_macs(model) / 1e6 - mult_adds) < 1.0
    assert abs(_trainable(model) / 1e6 - params) < 0.05


def test_shallow_mobilenet_matches_paper_table_6():
    """Table 6's Shallow MobileNet (the five 14x14x512 blocks removed): 307 M mult-adds,
    2.9 M parameters. Its remaining blocks keep the full model's names; it has no twin."""
    model = mobilenet.mobilenet(input_shape=(224, 224, 3), shallow=True)
    assert abs(_macs(model) / 1e6 - 307) < 1.0
    assert abs(_trainable(model) / 1e6 - 2.9) < 0.05
    assert "conv_pw_12" in [layer.name for layer in model.layers]
    assert mobilenet.feature_stages(model)[-2:] == ["conv_pw_6_relu", "conv_pw_13_relu"]
    with pytest.raises(ValueError, match="weights"):
        mobilenet.mobilenet(input_shape=(64, 64, 3), classes=10, shallow=True, weights="imagenet")


def test_depthwise_separable_costs_one_over_n_plus_one_over_nine():
    """Section 3.1: the separable block costs 1/N + 1/D_K^2 of a standard conv."""
    m, n = 32, 64
    inputs = keras.Input((8, 8, m))
    separable = keras.Model(inputs, mobilenet.depthwise_separable_block(inputs, n, name="b"))
    standard = keras.Model(inputs, keras.layers.Conv2D(n, 3, padding="same", use_bias=False)(inputs))
    assert _macs(separable) / _macs(standard) == pytest.approx(1 / n + 1 / 9, rel=1e-12)
    assert _kernel_weights(separable) / _kernel_weights(standard) == pytest.approx(1 / n + 1 / 9)


@pytest.mark.parametrize("kwargs", [
    {"alpha": 0.25, "input_shape": (64, 64, 3), "classes": 10},
    {"alpha": 0.5, "depth_multiplier": 2, "input_shape": (48, 48, 3), "classes": 7},
    {"alpha": 0.75, "input_shape": (40, 56, 3), "include_top": False, "pooling": "avg"},
])
def test_mobilenet_twin_parity_beyond_the_default(kwargs):
    """The twin test covers alpha=1 at 224; the other knobs must match keras too, with
    keras.applications' layer names (so weights also copy by name)."""
    twin = keras.applications.MobileNet(weights=None, classifier_activation=None, **kwargs)
    ours = mobilenet.mobilenet(classifier_activation=None, **kwargs)
    _transplant(ours, twin)
    x = np.random.default_rng(1).uniform(-1, 1, (2, *kwargs["input_shape"])).astype("float32")
    _assert_same_outputs(ours, twin, x)


def test_mobilenet_head_is_the_twins_and_clear_errors():
    model = mobilenet.mobilenet(input_shape=(32, 32, 3), classes=10, alpha=0.25,
                                classifier_activation="softmax")
    head = [layer.name for layer in model.layers[-5:]]
    assert head == ["avg_pool", "dropout", "conv_preds", "reshape_2", "predictions"]
    assert model.layers[-1].activation.__name__ == "softmax" and model.layers[-1].dtype == "float32"
    with pytest.raises(ValueError, match="classes"):
        mobilenet.mobilenet(input_shape=(32, 32, 3), classes=0)
    with pytest.raises(ValueError, match="depth_multiplier"):  # Keras's own error
        mobilenet.mobilenet(input_shape=(32, 32, 3), classes=10, depth_multiplier=0)
    with pytest.raises(ValueError, match="input_shape"):
        mobilenet.mobilenet(input_shape=(31, 31, 3), include_top=False)


# --- ResNeXt (Xie et al. 2017) ----------------------------------------------------------------


def test_resnext50_32x4d_matches_paper_table1():
    """Table 1: ResNeXt-50 (32x4d) has 25.0 x 10^6 parameters and 4.2 x 10^9 FLOPs.

    The paper prints three and two significant figures, so the tolerance is half the
    last digit: 0.05 M parameters and 0.05 G multiply-adds (the paper's "FLOPs" are
    multiply-adds: its ResNet-50 row, 4.1 G, is the multiply-add count). Parameters
    are the trainable ones: BatchNorm's moving statistics are not learned, and the
    authors' Torch code keeps them outside its parameter count.
    """
    model = resnext.resnext50_32x4d()  # input_shape=None with the top: 224x224x3
    assert abs(_trainable(model) - 25.0e6) <= 0.05e6
    assert abs(_macs(model) - 4.2e9) <= 0.05e9
    for stage, (width, out, size) in enumerate(((128, 256, 56), (256, 512, 28), (512, 1024, 14),
                                                (1024, 2048, 7)), start=2):
        grouped = model.get_layer(f"conv{stage}_block1_2_conv")
        assert (grouped.groups, grouped.filters) == (32, width)  # C = 32 paths, d = 4 * 2^(stage-2)
        assert grouped.strides == ((1, 1) if stage == 2 else (2, 2)), "stride on the 3x3 (Section 4)"
        assert model.get_layer(f"conv{stage}_block1_1_conv").strides == (1, 1)
        assert model.get_layer(f"conv{stage}_block1_out").output.shape[1:] == (size, size, out)


def test_resnext_knobs_are_the_papers():
    """`blocks` per stage, C = `cardinality`, d = `bottleneck_width`; `width` multiplies the
    stem and the block outputs (64 and 256 * 2^s filters at 1.0), not the C x d bottleneck."""
    model = resnext.resnext(input_shape=(32, 32, 3), classes=10, blocks=(1, 2, 1, 1), cardinality=4,
                            bottleneck_width=8, width=0.125)
    assert model.get_layer("conv1_conv").filters == 8
    assert model.get_layer("conv3_block2_out").output.shape[-1] == 64
    grouped = model.get_layer("conv3_block1_2_conv")
    assert (grouped.groups, grouped.filters) == (4, 4 * 8 * 2)
    assert resnext.feature_stages(model) == ["conv1_relu", "conv2_block1_out", "conv3_block2_out",
                                             "conv4_block1_out", "conv5_block1_out"]


def test_grouped_conv_is_the_sum_of_cardinality_paths():
    """Figure 3: the grouped conv equals `cardinality` separate convs on channel slices,
    concatenated. Checked numerically with the block's own kernel."""
    cardinality, width = 4, 16
    inputs = keras.Input((8, 8, 24))
    block = keras.Model(inputs, resnext.resnext_block(inputs, 32, width, cardinality, name="b"))
    grouped = block.get_layer("b_2_conv")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 10, 10, width)).astype("float32")  # the padded input of the 3x3
    kernel = keras.ops.convert_to_numpy(grouped.kernel)  # (3, 3, width / C, width)
    step = width // cardinality
    paths = [
        keras.ops.conv(x[..., i * step:(i + 1) * step], kernel[..., i * step:(i + 1) * step])
        for i in range(cardinality)
    ]
    expected = keras.ops.convert_to_numpy(keras.ops.concatenate(paths, axis=-1))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(grouped(x)), expected, rtol=1e-5, atol=1e-5)


def test_split_paths_is_the_same_block_as_the_grouped_conv():
    """Fig. 3(b) and 3(c) are equivalent: the split block, given the grouped block's
    weights cut into per-path slices, computes the same function."""
    cardinality, width, step = 4, 16, 4
    inputs = keras.Input((8, 8, 24))
    grouped = keras.Model(inputs, resnext.resnext_block(inputs, 32, width, cardinality, name="g"))
    split = keras.Model(inputs, resnext.resnext_block(inputs, 32, width, cardinality,
                                                      split_paths=True, name="s"))
    assert _trainable(split) == _trainable(grouped)
    _randomize(grouped, np.random.default_rng(0))
    values = {w.path.replace("g_", "", 1): keras.ops.convert_to_numpy(w) for w in grouped.weights}
    for weight in split.weights:
        key = weight.path.replace("s_", "", 1)
        if "_path" not in key:
            weight.assign(values[key])
            continue
        layer, _, variable = key.partition("/")
        unit, p, kind = layer.split("_")[0], int(layer.split("_path")[1].split("_")[0]), layer.split("_")[-1]
        full = values[f"{unit}_{kind}/{variable}"]  # e.g. 1_conv/kernel, 2_bn/moving_mean
        assert full.shape[-1] == cardinality * step
        # Path p owns output channels p*step..(p+1)*step of the 1x1, of the grouped 3x3 (whose
        # kernel already reads one input slice per group) and of their BatchNorms.
        weight.assign(full[..., p * step:(p + 1) * step])
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 24)).astype("float32")
    _assert_same_outputs(split, grouped, x)


def test_cardinality_that_does_not_divide_the_width_is_rejected():
    with pytest.raises(ValueError, match="cardinality"):
        resnext.resnext_block(keras.Input((8, 8, 32)), 64, group_width=30, cardinality=8, name="b")
    with pytest.raises(ValueError, match="cardinality"):
        resnext.resnext(input_shape=(32, 32, 3), cardinality=0)
    with pytest.raises(ValueError, match="weights"):
        resnext.resnext50_32x4d(weights="imagenet", include_top=False, width=0.125)


# --- AlexNet (Krizhevsky et al. 2012) -----------------------------------------------------------

# The paper's network, from Figure 2 and Section 3.5, one tower: (kernel weights + biases)
# of conv1-5 and fc6-8. Conv2, conv4 and conv5 read all the channels below them here; in
# the paper's two-GPU wiring (groups=2) they read half.
ALEXNET_LAYERS = {
    "conv1": 11 * 11 * 3 * 96 + 96, "conv2": 5 * 5 * 96 * 256 + 256, "conv3": 3 * 3 * 256 * 384 + 384,
    "conv4": 3 * 3 * 384 * 384 + 384, "conv5": 3 * 3 * 384 * 256 + 256,
    "fc6": 6 * 6 * 256 * 4096 + 4096, "fc7": 4096 * 4096 + 4096, "predictions": 4096 * 1000 + 1000,
}
ALEXNET_TWO_GPUS = {**ALEXNET_LAYERS, "conv2": 5 * 5 * 48 * 256 + 256, "conv4": 3 * 3 * 192 * 384 + 384,
                    "conv5": 3 * 3 * 192 * 256 + 256}


def test_alexnet_parameter_count_is_the_published_60_million():
    """The paper's abstract: "The neural network, which has 60 million parameters".

    That figure is rounded to one significant digit, and the paper does not give its
    exact wiring in parameters (two GPU towers, LRN without weights), so the band is
    60 M +- 5 %. The single tower lands at +4 %, because merging the two GPUs connects
    conv2, conv4 and conv5 to all channels; the paper's wiring (groups=2) at +1.6 %.
    Each layer is also checked against the count its shape in Figure 2 gives.
    """
    single = alexnet.alexnet()  # 224x224x3, 1000 classes
    assert abs(single.count_params() - 60e6) <= 0.05 * 60e6
    assert {name: single.get_layer(name).count_params() for name in ALEXNET_LAYERS} == ALEXNET_LAYERS
    assert single.count_params() == sum(ALEXNET_LAYERS.values()) == 62_378_344
    keras.backend.clear_session()
    two_towers = alexnet.alexnet(groups=2)
    assert abs(two_towers.count_params() - 60e6) <= 0.05 * 60e6
    assert two_towers.count_params() == sum(ALEXNET_TWO_GPUS.values()) == 60_965_224


def test_alexnet_layer_sizes_match_paper():
    """Section 3.5 lists the neurons of layers 2-8 as 186,624-64,896-64,896-43,264-4096-4096-1000
    (its layer-1 figure, 253,440, is a known misprint: 55x55x96 = 290,400). On the paper's
    224x224 input, conv1 padded by 2 pixels gives the 55x55 map of Figure 2."""
    model = alexnet.alexnet(include_top=True)
    assert model.input_shape == (None, 224, 224, 3)
    neurons = [int(np.prod(model.get_layer(name).output.shape[1:]))
               for name in ("conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "predictions")]
    assert neurons == [186_624, 64_896, 64_896, 43_264, 4096, 4096, 1000]
    assert model.get_layer("conv1").output.shape[1:] == (55, 55, 96)
    assert model.get_layer("flatten").output.shape[-1] == 6 * 6 * 256


def test_alexnet_minimum_input_and_knobs():
    """Three valid 3x3/2 pools need a 15x15 conv1 map: 63 px. At 64 px the maps are
    15, 7, 3, 3, 3, so conv2 (7x7) is the deepest with at least 6x6 for Grad-CAM."""
    with pytest.raises(ValueError, match="input_shape"):
        alexnet.alexnet(input_shape=(62, 62, 3), include_top=False)
    with pytest.raises(ValueError, match="input_shape"):
        alexnet.alexnet(input_shape=(None, None, 3))  # the top flattens a map of known size
    small = alexnet.alexnet(input_shape=(63, 63, 3), include_top=False, width=0.25)
    assert small.output_shape == (None, 1, 1, 64)
    demo = alexnet.alexnet(input_shape=(64, 64, 1), classes=10, width=0.25, fc_units=16)
    assert [demo.get_layer(f"conv{i}").output.shape[1] for i in range(1, 6)] == [15, 7, 3, 3, 3]
    assert demo.output_shape == (None, 10)
    with pytest.raises(ValueError, match="groups"):  # Keras's own error
        alexnet.alexnet(input_shape=(64, 64, 3), groups=3)
    with pytest.raises(ValueError, match="groups"):
        alexnet.conv_pool_block(keras.Input((27, 27, 16)), 32, 5, groups=3, name="c")
    with pytest.raises(ValueError, match="weights"):
        alexnet.alexnet(weights="imagenet", include_top=False)
