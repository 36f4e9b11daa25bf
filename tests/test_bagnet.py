"""BagNet against its reference: receptive fields, parameter counts, head, cropping.

The reference is the authors' PyTorch code (wielandbrendel/bag-of-local-features-models):
ResNet-50's bottleneck layout with a 3x3 only where ``kernel3`` says so, valid
padding everywhere, no max-pool, and the strided shortcut cropped at the bottom and
right. Each expected figure below is derived from that description or from a
published number, never from our own output.
"""

import keras
import numpy as np
import pytest
from conftest import input_gradient

from cookbook.recipes import bagnet

RECEPTIVE_FIELDS = {"bagnet9": 9, "bagnet17": 17, "bagnet33": 33}  # the paper's names
KERNEL3 = {"bagnet9": (1, 1, 0, 0), "bagnet17": (1, 1, 1, 0), "bagnet33": (1, 1, 1, 1)}
STAGE_FILTERS = (64, 128, 256, 512)  # ResNet-50 bottleneck widths
STAGE_BLOCKS = (3, 4, 6, 3)


# --- receptive field: the whole point of BagNet ----------------------------------------


@pytest.mark.parametrize("builder", sorted(RECEPTIVE_FIELDS))
def test_receptive_field_by_gradient(builder):
    """One location of the last feature map depends on exactly an RF x RF input patch."""
    field = RECEPTIVE_FIELDS[builder]
    model = getattr(bagnet, builder)(input_shape=(64, 64, 3), include_top=False)  # full width
    features_shape = model.output.shape
    assert features_shape[-1] == 2048
    row, col = 2, 3  # an interior location, not on the diagonal
    assert row < features_shape[1] and col < features_shape[2]
    x = np.random.default_rng(0).uniform(-1, 1, size=(1, 64, 64, 3)).astype("float32")

    grad = input_gradient(model, x, lambda y: keras.ops.sum(y[0, row, col, :]))
    touched = np.abs(grad[0]).sum(axis=-1) > 0
    rows, cols = np.nonzero(touched)
    # Height and width of the non-zero region, and that it is a full (dense) square.
    assert rows.max() - rows.min() + 1 == field
    assert cols.max() - cols.min() + 1 == field
    assert touched.sum() == field * field, "the receptive field must be a full square patch"
    # The patch starts at (location * total stride): 2 * 2 * 2 * 1 = 8, no padding offset.
    assert (rows.min(), cols.min()) == (8 * row, 8 * col)


@pytest.mark.parametrize("builder", sorted(RECEPTIVE_FIELDS))
def test_rejects_inputs_smaller_than_the_receptive_field(builder):
    field = RECEPTIVE_FIELDS[builder]
    build = getattr(bagnet, builder)
    with pytest.raises(ValueError, match="input_shape"):
        build(input_shape=(field - 1, field - 1, 3), width=1 / 16)
    with pytest.raises(ValueError, match="input_shape"):
        build(input_shape=(field, field - 1, 3), width=1 / 16)
    model = build(input_shape=(field, field, 3), include_top=False, width=1 / 16)
    assert tuple(model.output.shape[1:3]) == (1, 1)  # the smallest input gives one patch


def test_receptive_field_helper_matches_the_paper():
    for builder, field in RECEPTIVE_FIELDS.items():
        assert bagnet.receptive_field(KERNEL3[builder]) == field
    assert bagnet.receptive_field((0, 0, 0, 0)) == 3  # only the stem's 3x3 is left


# --- output size: valid-padding arithmetic of the reference ------------------------------


def _reference_map_side(side, kernel3):
    """PyTorch's floor((n - k) / s) + 1 for the stem 3x3 and each stage's first conv."""
    side = side - 3 + 1
    for k3, stride in zip(kernel3, (2, 2, 2, 1)):
        kernel = 3 if k3 else 1
        side = (side - kernel) // stride + 1
    return side


@pytest.mark.parametrize("builder", sorted(RECEPTIVE_FIELDS))
def test_feature_map_size_at_224(builder):
    width = 1 / 16
    model = getattr(bagnet, builder)(input_shape=(224, 224, 3), include_top=False, width=width)
    side = _reference_map_side(224, KERNEL3[builder])
    # ResNet-50's last stage: 512 bottleneck filters, expansion 4, times the width.
    assert tuple(model.output.shape[1:]) == (side, side, int(512 * 4 * width))
    if builder == "bagnet33":
        assert side == 24  # BagNet-33 sees a 24 x 24 grid of patches on a 224 image


@pytest.mark.heavy  # a full-size build or a short fit: keeps the default suite under 10 minutes
@pytest.mark.parametrize("side", [33, 34, 47, 64])
def test_any_input_size_without_a_fixed_shape(side):
    """Without the top the input size is free (keras.applications' (None, None, 3)), and
    every size gives the reference's valid-padding grid."""
    model = bagnet.bagnet33(include_top=False, width=1 / 16)
    assert tuple(model.inputs[0].shape[1:]) == (None, None, 3)
    x = np.random.default_rng(0).uniform(0, 1, size=(1, side, side, 3)).astype("float32")
    expected = _reference_map_side(side, KERNEL3["bagnet33"])
    assert tuple(model.predict(x, verbose=0).shape[1:3]) == (expected, expected)


# --- parameter counts: derived from ResNet-50, as the paper describes the layout -------


def _resnet50_pytorch_params():
    """ResNet-50's trainable parameters without conv biases (PyTorch's ResNet-50 has none).

    Taken from keras.applications.ResNet50 (whose convs carry biases) so that the
    figure is not typed in by hand; torchvision publishes 25,557,032.
    """
    model = keras.applications.ResNet50(weights=None)
    total = 0
    for layer in model.layers:
        for weight in layer.trainable_weights:
            if isinstance(layer, keras.layers.Conv2D) and weight is layer.bias:
                continue
            total += int(np.prod(weight.shape))
    return total


def _bagnet_params_from_resnet50(resnet50, kernel3, classes=1000):
    """ResNet-50 -> BagNet: a 1x1 replaces every 3x3 that kernel3 does not keep,
    and the 7x7/2 stem becomes a 1x1 conv then a 3x3 conv (3 -> 64 -> 64)."""
    total = resnet50 - 7 * 7 * 3 * 64 + (1 * 1 * 3 * 64 + 3 * 3 * 64 * 64)
    for planes, blocks, k3 in zip(STAGE_FILTERS, STAGE_BLOCKS, kernel3):
        ones = blocks - k3  # 3x3 convs (planes -> planes) that become 1x1
        total -= ones * (9 - 1) * planes * planes
    return total - (2048 * 1000 + 1000) + (2048 * classes + classes)


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.heavy  # a full-size build or a short fit: keeps the default suite under 10 minutes
def test_parameter_counts_match_the_reference_layout():
    resnet50 = _resnet50_pytorch_params()
    assert resnet50 == 25_557_032  # torchvision's published ResNet-50 count
    for builder, kernel3 in KERNEL3.items():
        model = getattr(bagnet, builder)()
        assert _trainable(model) == _bagnet_params_from_resnet50(resnet50, kernel3), builder
        # BN moving mean and variance: 2 per BN channel, as PyTorch's running stats.
        bn_channels = sum(
            layer.gamma.shape[0] for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
        )
        assert model.count_params() == _trainable(model) + 2 * bn_channels
        keras.backend.clear_session()
    # The published size of the reference BagNet-33: about 18.3 M parameters.
    assert round(_bagnet_params_from_resnet50(resnet50, KERNEL3["bagnet33"]) / 1e6, 1) == 18.3


# --- PyTorch BatchNorm defaults ----------------------------------------------------------


def test_batchnorm_uses_the_pytorch_defaults():
    model = bagnet.bagnet9(input_shape=(32, 32, 3), width=1 / 16)
    norms = {layer.name: layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert norms and all(layer.epsilon == 1e-5 for layer in norms.values())
    # PyTorch momentum m updates running = (1 - m) * running + m * batch; Keras's is 1 - m.
    assert norms.pop("conv1_bn").momentum == pytest.approx(1 - 0.001)  # the stem's BatchNorm2d(64, momentum=0.001)
    assert all(layer.momentum == pytest.approx(1 - 0.1) for layer in norms.values())


# --- the block: valid k x k conv and a shortcut cropped at the bottom and right --------


def test_shortcut_is_cropped_at_the_bottom_and_right():
    inputs = keras.Input(shape=(8, 8, 64))
    outputs = bagnet.bagnet_block(inputs, 16, kernel_size=3, name="probe")
    model = keras.Model(inputs, outputs)
    assert tuple(model.output.shape[1:]) == (6, 6, 64)  # valid 3x3: 8 -> 6
    # Silence the main path: the block is then relu(identity shortcut, cropped).
    last_bn = model.get_layer("probe_3_bn")
    last_bn.gamma.assign(np.zeros(64, "float32"))
    last_bn.beta.assign(np.zeros(64, "float32"))
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 64)).astype("float32")
    got = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(got, np.maximum(x[:, :6, :6, :], 0), atol=1e-6)  # PyTorch's [:-2, :-2]


@pytest.mark.parametrize("side", [15, 16, None])
def test_strided_shortcut_is_the_references_conv_then_crop(side):
    """The reference runs the strided 1x1 conv, which reads pixels 0, 2, 4, ..., then drops
    the last rows and columns down to the main path's size. We crop first, at any input
    size (also a dynamic one): the result must be those same pixels."""
    inputs = keras.Input(shape=(side, side, 32))
    model = keras.Model(inputs, bagnet.bagnet_block(inputs, 16, kernel_size=3, strides=2, name="probe"))
    assert model.get_layer("probe_0_conv").strides == (2, 2)
    assert model.get_layer("probe_2_conv").padding == "valid"
    last_bn = model.get_layer("probe_3_bn")  # silence the main path
    last_bn.gamma.assign(np.zeros(64, "float32"))
    last_bn.beta.assign(np.zeros(64, "float32"))
    n = side or 18
    x = np.random.default_rng(3).normal(size=(2, n, n, 32)).astype("float32")
    out = (n - 3) // 2 + 1  # PyTorch's floor((n - k) / s) + 1 for the valid 3x3
    kernel = keras.ops.convert_to_numpy(model.get_layer("probe_0_conv").kernel)[0, 0]
    expected = x[:, ::2, ::2, :][:, :out, :out, :] @ kernel / np.sqrt(1 + 1e-5)  # BN at its initial state
    got = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(got, np.maximum(expected, 0), rtol=1e-4, atol=1e-5)


# --- the head: per-patch logits average to the image logits ----------------------------


def test_patch_logits_average_to_the_pooled_logits():
    """Average pooling and the linear classifier commute: the image's logits are the
    mean of the per-patch logits (the bag-of-features model of the paper)."""
    kwargs = {"input_shape": (40, 40, 3), "classes": 5, "width": 1 / 8, "classifier_activation": None}
    pooled = bagnet.bagnet17(**kwargs)
    patches = bagnet.bagnet17(patch_logits=True, **kwargs)
    assert patches.get_layer(bagnet.PATCH_LOGITS) is patches.layers[-1]
    assert [tuple(w.shape) for w in patches.weights] == [tuple(w.shape) for w in pooled.weights]
    patches.set_weights(pooled.get_weights())
    x = np.random.default_rng(2).uniform(0, 1, size=(2, 40, 40, 3)).astype("float32")
    image_logits = keras.ops.convert_to_numpy(pooled(x, training=False))
    patch_map = keras.ops.convert_to_numpy(patches(x, training=False))
    side = _reference_map_side(40, KERNEL3["bagnet17"])
    assert patch_map.shape == (2, side, side, 5)
    np.testing.assert_allclose(patch_map.mean(axis=(1, 2)), image_logits, rtol=1e-4, atol=1e-5)


def test_patch_logits_needs_the_top():
    with pytest.raises(ValueError, match="patch_logits"):
        bagnet.bagnet33(include_top=False, patch_logits=True, width=1 / 16)


def test_general_builder_rejects_layouts_that_would_build_another_model():
    """A kernel3 that does not match the stages would otherwise be cut short by zip, or
    give a stage more 3x3s than it has blocks."""
    with pytest.raises(ValueError, match="kernel3"):
        bagnet.bagnet(kernel3=(1, 1, 1))
    with pytest.raises(ValueError, match="kernel3"):
        bagnet.bagnet(kernel3=(1, 1), blocks=(1, 1), width=1 / 16)  # strides still has 4 stages
    with pytest.raises(ValueError, match="kernel3"):
        bagnet.bagnet(kernel3=(4, 0, 0, 0), input_shape=(64, 64, 3), width=1 / 16)
    with pytest.raises(ValueError, match="kernel3"):
        bagnet.bagnet(kernel3=(-1, 0, 0, 0), input_shape=(64, 64, 3), width=1 / 16)


def test_demo_is_bagnet33_kernels_with_one_block_per_stage():
    """The demo keeps BagNet-33's 33 px patches with one block per stage, an eighth of
    the width: 8, 16, 32, 64 bottleneck filters."""
    model = bagnet.bagnet(**bagnet.DEMO["kwargs"])
    kwargs = bagnet.DEMO["kwargs"]
    assert bagnet.receptive_field(kwargs["kernel3"], kwargs["blocks"]) == 33
    assert [model.get_layer(f"conv{s}_block1_2_conv").filters for s in (2, 3, 4, 5)] == [8, 16, 32, 64]
