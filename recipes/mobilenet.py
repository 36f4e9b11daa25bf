"""MobileNet: depthwise separable convolutions for small, fast networks.

Paper: Howard, Zhu, Chen, Kalenichenko, Wang, Weyand, Andreetto and Adam,
"MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications" (2017).

A standard 3x3 convolution from M to N channels costs 9*M*N multiply-adds per
pixel. MobileNet factors it in two: a depthwise 3x3 that filters each of the M
channels on its own (9*M), then a pointwise 1x1 that mixes them (M*N). The cost
drops by a factor of 1/N + 1/9, eight to nine times less, for a small loss in
accuracy. Unlike Xception, each half has its own BatchNorm and ReLU6. The network
is one plain strided conv and 13 such blocks; the spatial size is halved five
times, by strided depthwise convs instead of pooling. Two knobs trade accuracy for
cost: the width multiplier `alpha` thins every layer (cost and parameters fall
roughly as alpha squared), and the input size (the paper's resolution multiplier)
scales the multiply-adds. `depth_multiplier` gives each depthwise conv several
filters per channel.

`mobilenet` is layer for layer keras.applications MobileNet (v1): default input
224, and the top is a 1x1 conv on the pooled features, with dropout before it.
"""

import math

import keras
from keras import layers

FAMILY = "Efficient CNNs"
PAPERS = (
    "Howard et al. 2017. MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications. arXiv:1704.04861.",
)
TASK = "classification"
DEFAULT_BUILDER = "mobilenet"
BUILDERS = {
    "mobilenet": {
        "twin": "MobileNet",
        "params": 4_253_864,
        "small": {"input_shape": (32, 32, 3), "classes": 10, "alpha": 0.25},
    },
}
BLOCKS = {
    "depthwise_separable_block": {
        "input_shape": (16, 16, 8),
        "kwargs": {"filters": 16, "strides": 2, "depth_multiplier": 1},
    },
}
DEMO = {
    "builder": "mobilenet",
    "kwargs": {"input_shape": (64, 64, 1), "classes": 10, "alpha": 0.25},
    "epochs": 8,
    "learning_rate": 3e-3,
}
STAGES = ("conv1_relu", "block3_pw_relu", "block5_pw_relu", "block11_pw_relu", "block13_pw_relu")

MIN_SIZE = 32  # five stride-2 steps, as keras.applications requires
# (pointwise filters, stride) of the 13 depthwise separable blocks, from the paper's Table 1.
LAYOUT = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
    (1024, 2), (1024, 1),
)


# --- argument checks: fail early, name the argument ----------------------------------


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _check_number(value, name, low, high=None):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if value < low or (high is not None and value >= high):
        raise ValueError(f"{name} must be in [{low}, {high}), got {value}")


def _check_channels_last():
    if keras.config.image_data_format() != "channels_last":
        raise ValueError("image_data_format must be 'channels_last' for this recipe")


def _check_activation(value, name):
    """None, a callable, or a name that keras.activations.get knows."""
    if value is None or callable(value):
        return
    try:
        keras.activations.get(value)
    except (ValueError, TypeError):
        raise ValueError(f"{name} must be None, a callable or a Keras activation name, "
                         f"got {value!r}") from None


def _check_head(input_shape, include_top, pooling, classes, min_size):
    _check_channels_last()
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
    for dim in input_shape:
        _check_positive_int(dim, "input_shape")
    if min(input_shape[:2]) < min_size:
        raise ValueError(f"input_shape must be at least {min_size}x{min_size}, got {tuple(input_shape)}")
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
    if not isinstance(include_top, bool):
        raise TypeError(f"include_top must be a bool, got {type(include_top).__name__}")
    _check_positive_int(classes, "classes")


def _bn_relu6(x, name):
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x)


# --- the depthwise separable block -----------------------------------------------------


def depthwise_separable_block(x, filters, strides=1, depth_multiplier=1, *, name="block"):
    """Depthwise 3x3 -> BN -> ReLU6, then pointwise 1x1 to ``filters`` -> BN -> ReLU6.

    A strided block pads only bottom and right and uses a valid conv, as the
    TensorFlow reference does, so the output is exactly half the size.
    """
    _check_positive_int(filters, "filters")
    _check_positive_int(strides, "strides")
    _check_positive_int(depth_multiplier, "depth_multiplier")
    _check_channels_last()
    smallest = 1 if strides == 1 else 2  # a strided block pads to size + 1 for its valid 3x3
    if any(side is not None and side < smallest for side in x.shape[1:3]):
        raise ValueError(f"x must be at least {smallest}x{smallest} pixels for strides={strides}, "
                         f"got {tuple(x.shape[1:3])}")
    if strides == 1:
        padding = "same"
    else:
        x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"{name}_pad")(x)
        padding = "valid"
    x = layers.DepthwiseConv2D(3, strides=strides, padding=padding, depth_multiplier=depth_multiplier,
                               use_bias=False, name=f"{name}_dw")(x)
    x = _bn_relu6(x, f"{name}_dw")
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
    return _bn_relu6(x, f"{name}_pw")


# --- the network ---------------------------------------------------------------------------


def mobilenet(
    input_shape=(224, 224, 3),
    alpha=1.0,
    depth_multiplier=1,
    dropout=1e-3,
    include_top=True,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
):
    """MobileNet v1; at alpha=1 the keras.applications twin (4.25 M parameters)."""
    _check_head(input_shape, include_top, pooling, classes, MIN_SIZE)
    _check_number(alpha, "alpha", 0)
    if alpha == 0 or int(32 * alpha) < 1:
        raise ValueError(f"alpha must leave at least one filter per layer, got {alpha}")
    _check_positive_int(depth_multiplier, "depth_multiplier")
    _check_number(dropout, "dropout", 0, 1)
    _check_activation(classifier_activation, "classifier_activation")

    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = layers.Conv2D(int(32 * alpha), 3, strides=2, padding="same", use_bias=False, name="conv1")(inputs)
    x = _bn_relu6(x, "conv1")
    for i, (filters, strides) in enumerate(LAYOUT, start=1):
        x = depthwise_separable_block(x, int(filters * alpha), strides, depth_multiplier, name=f"block{i}")

    if include_top:  # a 1x1 conv as the classifier, exactly as keras.applications builds it
        x = layers.GlobalAveragePooling2D(keepdims=True, name="avg_pool")(x)
        x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Conv2D(classes, 1, padding="same", name="conv_preds")(x)
        x = layers.Reshape((classes,), name="reshape")(x)
        x = layers.Activation(classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    return keras.Model(inputs, x, name=f"mobilenet_{alpha:0.2f}_{input_shape[0]}")
