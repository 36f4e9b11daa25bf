"""VGG: very deep networks of small 3x3 convolutions.

Paper: Simonyan and Zisserman, "Very Deep Convolutional Networks for Large-Scale
Image Recognition" (ICLR 2015).

VGG's one idea is depth built from the smallest useful kernel. Two stacked 3x3
convolutions see a 5x5 patch and three see 7x7, with fewer weights than one big
kernel (3 * 9 = 27 against 49 per channel pair) and a ReLU between each, so the
stack is more expressive too. The network is five blocks of 3x3 convs (64, 128,
256, 512, 512 filters), each closed by a 2x2 max-pool that halves the size, then
three fully connected layers (4096, 4096, classes). Configurations A, B, D and E of
the paper's Table 1 have 11, 13, 16 and 19 weight layers; almost all of their 133
to 144 million parameters sit in the first fully connected layer.

`vgg16` and `vgg19` are layer for layer the keras.applications VGG16 and VGG19, so
their weights can be transplanted. `vgg11` and `vgg13` are configurations A and B.
The knobs `width` (a multiplier on the conv filters), `fc_units`, `dropout` (the
paper puts 0.5 on the first two FC layers; keras.applications leaves it out) and
`batch_norm` (BN after every conv, the common "VGG-BN" variant) make small demos.
"""

import math

import keras
from keras import layers

FAMILY = "Classic CNNs"
PAPERS = (
    "Simonyan, Zisserman 2015. Very Deep Convolutional Networks for Large-Scale Image Recognition. ICLR.",
)
TASK = "classification"
DEFAULT_BUILDER = "vgg16"
_SMALL = {"input_shape": (32, 32, 3), "classes": 10, "width": 0.25, "fc_units": 64}
BUILDERS = {
    "vgg11": {"small": _SMALL},
    "vgg13": {"small": _SMALL},
    "vgg16": {"twin": "VGG16", "small": _SMALL, "params": 138_357_544},
    "vgg19": {"twin": "VGG19", "small": _SMALL},
}
BLOCKS = {
    "vgg_block": {"input_shape": (16, 16, 8), "kwargs": {"filters": 16, "convs": 2}},
}
DEMO = {
    "builder": "vgg11",
    "kwargs": {"input_shape": (64, 64, 1), "classes": 10, "width": 0.125, "fc_units": 128, "batch_norm": True},
    "epochs": 6,
    "learning_rate": 3e-3,
}
STAGES = ("block1_conv1", "block2_conv1", "block3_conv2", "block4_conv2", "block5_conv2")

MIN_SIZE = 32  # five 2x2 max-pools: 32 px leaves a 1x1 map
FILTERS = (64, 128, 256, 512, 512)
# Convs per block, the paper's configurations A, B, D and E.
DEPTHS = {
    "vgg11": (1, 1, 2, 2, 2),
    "vgg13": (2, 2, 2, 2, 2),
    "vgg16": (2, 2, 3, 3, 3),
    "vgg19": (2, 2, 4, 4, 4),
}


# --- argument checks: fail early, name the argument ----------------------------------


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _check_bool(value, name):
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")


def _check_number(value, name, low, high=None, low_inclusive=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    too_low = value < low if low_inclusive else value <= low
    if too_low or (high is not None and value >= high):
        bounds = f"{'>=' if low_inclusive else '>'} {low}" + (f" and < {high}" if high else "")
        raise ValueError(f"{name} must be {bounds}, got {value}")


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
    _check_bool(include_top, "include_top")
    _check_positive_int(classes, "classes")


# --- the VGG block ------------------------------------------------------------------------


def vgg_block(x, filters, convs=2, batch_norm=False, *, name="block"):
    """``convs`` 3x3 same-padded convs with ReLU, then a 2x2 max-pool that halves the size.

    With ``batch_norm`` each conv is followed by BatchNormalization before its ReLU
    (and has no bias, which the BN would cancel).
    """
    _check_positive_int(filters, "filters")
    _check_positive_int(convs, "convs")
    _check_bool(batch_norm, "batch_norm")
    _check_channels_last()
    if any(side is not None and side < 2 for side in x.shape[1:3]):
        raise ValueError(f"x must be at least 2x2 pixels for the 2x2 max-pool, "
                         f"got {tuple(x.shape[1:3])}")
    for i in range(1, convs + 1):
        conv_name = f"{name}_conv{i}"
        if batch_norm:
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=conv_name)(x)
            x = layers.BatchNormalization(name=f"{conv_name}_bn")(x)
            x = layers.Activation("relu", name=f"{conv_name}_relu")(x)
        else:
            x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=conv_name)(x)
    return layers.MaxPooling2D(2, strides=2, name=f"{name}_pool")(x)


# --- the network ---------------------------------------------------------------------------


def vgg(
    depths,
    input_shape=(224, 224, 3),
    include_top=True,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    width=1.0,
    fc_units=4096,
    dropout=0.0,
    batch_norm=False,
    name="vgg",
):
    """A VGG network with ``depths[i]`` convs in block i+1 (five blocks)."""
    _check_head(input_shape, include_top, pooling, classes, MIN_SIZE)
    if not isinstance(depths, (tuple, list)) or len(depths) != 5:
        raise ValueError(f"depths must be 5 conv counts, one per block, got {depths!r}")
    for depth in depths:
        _check_positive_int(depth, "depths")
    _check_number(width, "width", 0)
    if int(FILTERS[0] * width) < 1:
        raise ValueError(f"width must leave at least one filter per conv, got {width}")
    _check_positive_int(fc_units, "fc_units")
    _check_number(dropout, "dropout", 0, 1, low_inclusive=True)
    _check_bool(batch_norm, "batch_norm")
    _check_activation(classifier_activation, "classifier_activation")

    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = inputs
    for i, (filters, convs) in enumerate(zip(FILTERS, depths), start=1):
        x = vgg_block(x, int(filters * width), convs, batch_norm, name=f"block{i}")

    if include_top:
        x = layers.Flatten(name="flatten")(x)
        for i in (1, 2):
            x = layers.Dense(fc_units, activation="relu", name=f"fc{i}")(x)
            if dropout:
                x = layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    return keras.Model(inputs, x, name=name)


def _builder(name):
    depths = DEPTHS[name]

    def build(input_shape=(224, 224, 3), include_top=True, pooling=None, classes=1000,
              classifier_activation="softmax", width=1.0, fc_units=4096, dropout=0.0,
              batch_norm=False):
        return vgg(depths, input_shape, include_top, pooling, classes, classifier_activation,
                   width, fc_units, dropout, batch_norm, name)

    build.__name__ = name
    build.__doc__ = f"{name.upper()}: convs per block {list(depths)}, then FC, FC, classes."
    return build


vgg11 = _builder("vgg11")
vgg13 = _builder("vgg13")
vgg16 = _builder("vgg16")
vgg19 = _builder("vgg19")
