"""AlexNet: the deep convolutional network that won ImageNet 2012.

Paper: Krizhevsky, Sutskever and Hinton, "ImageNet Classification with Deep
Convolutional Neural Networks" (NeurIPS 2012).

AlexNet is eight learned layers: five convolutions and three fully connected
layers, ending in a 1000-way softmax. It made a handful of ideas standard at once:
ReLU instead of tanh (several times faster to train), overlapping 3x3/2 max-pooling,
dropout 0.5 on the first two fully connected layers, data augmentation, and
training on GPUs. The first conv is a large 11x11 kernel with stride 4, which
shrinks a 227x227 image to 55x55 at once; the next convs are 5x5 and then 3x3.

This is the single-tower network of the course notes: the paper's two GPU halves
merged into one, every conv seeing all channels of the layer below (conv1 96,
conv2 256, conv3 384, conv4 384, conv5 256; FC 4096, 4096, classes). At 227x227x3
with 1000 classes it has 62,378,344 parameters, which the notes round to "60
million". `groups=2` restores the paper's two-GPU wiring, where conv2, conv4 and
conv5 see only the kernels on their own GPU: 60,965,224 parameters. Local response
normalization, which the paper applied after conv1 and conv2, has no weights and no
Keras layer, and later work found it unnecessary, so it is left out. `width`,
`fc_units` and `stem_strides` shrink the network for small images.
"""

import math

import keras
from keras import layers

FAMILY = "Classic CNNs"
PAPERS = (
    "Krizhevsky, Sutskever, Hinton 2012. ImageNet Classification with Deep Convolutional Neural Networks. NeurIPS.",
)
TASK = "classification"
DEFAULT_BUILDER = "alexnet"
BUILDERS = {
    "alexnet": {"params": 62_378_344,
                "small": {"input_shape": (67, 67, 3), "classes": 10, "width": 0.25, "fc_units": 64}},
}
BLOCKS = {
    "conv_pool_block": {"input_shape": (27, 27, 16), "kwargs": {"filters": 32, "kernel_size": 5}},
}
DEMO = {  # no BatchNorm and no dropout: a small rate, for many cheap epochs
    "builder": "alexnet",
    "kwargs": {"input_shape": (64, 64, 1), "classes": 10, "width": 0.25, "fc_units": 256, "dropout": 0.0,
               "stem_strides": 2},
    "epochs": 20,
    "learning_rate": 1e-3,
}
STAGES = ("conv1", "conv2", "conv3", "conv4", "conv5")

# (filters, kernel, max-pool after it) for the five convs; conv1 also has the stride.
CONVS = ((96, 11, True), (256, 5, True), (384, 3, False), (384, 3, False), (256, 3, True))
GROUPED = (False, True, False, True, True)  # the convs the paper split across two GPUs


# --- argument checks: fail early, name the argument ----------------------------------


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _check_number(value, name, low, high=None, low_inclusive=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    too_low = value < low if low_inclusive else value <= low
    if too_low or (high is not None and value >= high):
        bounds = f"{'>=' if low_inclusive else '>'} {low}" + (f" and < {high}" if high else "")
        raise ValueError(f"{name} must be {bounds}, got {value}")


def min_size(stem_strides=4):
    """The smallest input side that leaves a 1x1 map after the third max-pool."""
    size = 1
    for _ in range(3):  # undo a valid 3x3/2 pool; the padded convs keep the size
        size = 2 * (size - 1) + 3
    return stem_strides * (size - 1) + 11  # undo the valid 11x11 stem


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


def _check_head(input_shape, include_top, pooling, classes, smallest):
    _check_channels_last()
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
    for dim in input_shape:
        _check_positive_int(dim, "input_shape")
    if min(input_shape[:2]) < smallest:
        raise ValueError(f"input_shape must be at least {smallest}x{smallest}, got {tuple(input_shape)}")
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
    if not isinstance(include_top, bool):
        raise TypeError(f"include_top must be a bool, got {type(include_top).__name__}")
    _check_positive_int(classes, "classes")


# --- the block: conv + ReLU, then overlapping max-pool -----------------------------------


def conv_pool_block(x, filters, kernel_size, strides=1, groups=1, pool=True, *, name="conv"):
    """Conv ``kernel_size`` with ReLU, then an overlapping 3x3/2 max-pool if ``pool``.

    The stride-1 convs are zero-padded to keep the size; a strided conv (the stem) is
    valid, as in the paper. ``groups`` splits the conv into independent towers.
    """
    _check_positive_int(filters, "filters")
    _check_positive_int(kernel_size, "kernel_size")
    _check_positive_int(strides, "strides")
    _check_positive_int(groups, "groups")
    if not isinstance(pool, bool):
        raise TypeError(f"pool must be a bool, got {type(pool).__name__}")
    _check_channels_last()
    need = 3 if pool else 1  # the valid 3x3 pool needs a 3x3 map
    smallest = need if strides == 1 else kernel_size + (need - 1) * strides
    if any(side is not None and side < smallest for side in x.shape[1:3]):
        raise ValueError(f"x must be at least {smallest}x{smallest} pixels for "
                         f"kernel_size={kernel_size}, strides={strides}, pool={pool}, "
                         f"got {tuple(x.shape[1:3])}")
    if filters % groups or x.shape[-1] % groups:
        raise ValueError(f"groups must divide the input ({x.shape[-1]}) and output ({filters}) "
                         f"channels, got {groups}")
    padding = "same" if strides == 1 else "valid"
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, groups=groups,
                      activation="relu", name=name)(x)
    if pool:
        x = layers.MaxPooling2D(3, strides=2, name=f"{name}_pool")(x)
    return x


# --- the network ---------------------------------------------------------------------------


def alexnet(
    input_shape=(227, 227, 3),
    include_top=True,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    width=1.0,
    fc_units=4096,
    dropout=0.5,
    groups=1,
    stem_strides=4,
):
    """AlexNet, single tower: 62,378,344 parameters at 227x227x3 and 1000 classes.

    ``groups=2`` is the paper's two-GPU wiring (60,965,224 parameters). ``width``
    multiplies the conv filters; ``stem_strides`` < 4 suits images under 67 px.
    """
    _check_positive_int(stem_strides, "stem_strides")
    _check_head(input_shape, include_top, pooling, classes, min_size(stem_strides))
    _check_number(width, "width", 0)
    _check_positive_int(fc_units, "fc_units")
    _check_number(dropout, "dropout", 0, 1, low_inclusive=True)
    _check_positive_int(groups, "groups")
    _check_activation(classifier_activation, "classifier_activation")
    filters = [int(f * width) for f, _, _ in CONVS]
    if min(filters) < 1:
        raise ValueError(f"width must leave at least one filter per conv, got {width}")
    if any(f % groups for f, grouped in zip(filters, GROUPED) if grouped):
        raise ValueError(f"groups must divide the filters of conv2, conv4 and conv5 {filters}, got {groups}")

    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = inputs
    for i, ((_, kernel, pool), n, grouped) in enumerate(zip(CONVS, filters, GROUPED), start=1):
        x = conv_pool_block(x, n, kernel, strides=stem_strides if i == 1 else 1,
                            groups=groups if grouped else 1, pool=pool, name=f"conv{i}")

    if include_top:
        x = layers.Flatten(name="flatten")(x)
        for i in (6, 7):
            x = layers.Dense(fc_units, activation="relu", name=f"fc{i}")(x)
            x = layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    return keras.Model(inputs, x, name="alexnet")
