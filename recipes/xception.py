"""Xception: depthwise separable convolutions with residual connections.

Paper: Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions"
(CVPR 2017). The mini network follows Chollet, "Deep Learning with Python", 2nd ed.

An ordinary convolution learns spatial patterns and cross-channel patterns with one
kernel. Xception takes the Inception idea to its extreme and separates them: a
depthwise 3x3 filters each channel on its own, then a pointwise 1x1 mixes channels.
That is far cheaper, in parameters and in multiply-adds, than a full 3x3, and it
works as well or better. There is no activation between the depthwise and the
pointwise part. Every module also has a residual connection (a strided 1x1 conv
when the size changes), so 36 convolution layers still train easily.

`xception` is layer for layer the keras.applications Xception: entry flow (two
convs, then modules of 128, 256 and 728 filters), middle flow (8 identity-shortcut
modules of three 728-filter separable convs) and exit flow. `mini_xception` is the
small network of the course notes: BN, ReLU, SeparableConv twice, max-pool, with a
strided 1x1 residual, for each size in 32..512.
"""

import math

import keras
from keras import layers

FAMILY = "Residual networks"
PAPERS = (
    "Chollet 2017. Xception: Deep Learning with Depthwise Separable Convolutions. CVPR.",
    "Chollet 2021. Deep Learning with Python, 2nd ed., chapter 9.",
)
TASK = "classification"
DEFAULT_BUILDER = "xception"
BUILDERS = {
    "xception": {"twin": "Xception", "params": 22_910_480,
                 "small": {"input_shape": (71, 71, 3), "classes": 10}},
    "mini_xception": {"small": {"input_shape": (32, 32, 3), "classes": 10}},
}
BLOCKS = {
    "separable_residual_block": {"input_shape": (16, 16, 32), "kwargs": {"filters": 64}},
    "xception_module": {"input_shape": (16, 16, 64), "kwargs": {"filters": 128}},
    "middle_flow_module": {"input_shape": (8, 8, 64), "kwargs": {"filters": 64}},
}
DEMO = {
    "builder": "mini_xception",
    "kwargs": {"input_shape": (64, 64, 1), "classes": 10, "sizes": (16, 32, 64), "rescale": None,
               "dropout": 0.2, "stem_strides": 2},
    "epochs": 8,
    "learning_rate": 5e-3,
}
STAGES = ("stem_conv", "block1_out", "block2_out", "block3_out")

MIN_SIZE = 71  # keras.applications' minimum for Xception
MINI_MIN_SIZE = 5  # the mini network starts with a valid 5x5 conv


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


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


def _head(x, include_top, pooling, classes, classifier_activation, dropout=0.0):
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout:
            x = layers.Dropout(dropout, name="dropout")(x)
        return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def _sepconv_bn(x, filters, name, relu_first=True):
    """[ReLU] -> SeparableConv 3x3 -> BN: the motif Xception repeats 34 times."""
    if relu_first:
        x = layers.Activation("relu", name=f"{name}_act")(x)
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
    return layers.BatchNormalization(name=f"{name}_bn")(x)


def _strided_shortcut(x, filters, name):
    x = layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False, name=f"{name}_conv")(x)
    return layers.BatchNormalization(name=f"{name}_bn")(x)


# --- the course notes' block (Deep Learning with Python, listing 9.x) ------------------


def separable_residual_block(x, filters, *, name="block"):
    """BN-ReLU-SepConv twice, max-pool 3/2, plus a strided 1x1 residual."""
    _check_positive_int(filters, "filters")
    _check_channels_last()
    residual = x
    for i in (1, 2):
        x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sepconv{i}")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
    residual = layers.Conv2D(
        filters, 1, strides=2, padding="same", use_bias=False, name=f"{name}_residual"
    )(residual)
    return layers.Add(name=f"{name}_out")([x, residual])


def mini_xception(
    input_shape=(180, 180, 3),
    include_top=True,
    pooling=None,
    classes=1,
    classifier_activation="auto",
    sizes=(32, 64, 128, 256, 512),
    rescale=1.0 / 255,
    dropout=0.5,
    stem_strides=1,
):
    """The small Xception-like network of the course notes.

    ``classifier_activation="auto"`` is a sigmoid for one class, else a softmax.
    ``rescale`` multiplies the input first (None to skip, for inputs already in [0, 1]).
    ``stem_strides=2`` makes the 5x5 stem conv strided: every block then works on a
    quarter of the pixels, which is most of the cost on a CPU.
    """
    _check_head(input_shape, include_top, pooling, classes, MINI_MIN_SIZE)
    if isinstance(stem_strides, bool) or not isinstance(stem_strides, int):
        raise TypeError(f"stem_strides must be an int, got {type(stem_strides).__name__}")
    if stem_strides not in (1, 2):
        raise ValueError(f"stem_strides must be 1 or 2, got {stem_strides}")
    if not isinstance(sizes, (tuple, list)) or not sizes:
        raise ValueError(f"sizes must be a non-empty list of filter counts, got {sizes!r}")
    for size in sizes:
        _check_positive_int(size, "sizes")
    if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    if rescale is not None and not isinstance(rescale, (int, float)):
        raise TypeError(f"rescale must be a number or None, got {type(rescale).__name__}")
    if isinstance(rescale, float) and not math.isfinite(rescale):
        raise ValueError(f"rescale must be a finite number or None, got {rescale}")
    if isinstance(classifier_activation, str) and classifier_activation == "auto":
        classifier_activation = "sigmoid" if classes == 1 else "softmax"
    _check_activation(classifier_activation, "classifier_activation")

    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = layers.Rescaling(rescale, name="rescale")(inputs) if rescale is not None else inputs
    x = layers.Conv2D(sizes[0], 5, strides=stem_strides, use_bias=False, name="stem_conv")(x)
    for i, size in enumerate(sizes, start=1):
        x = separable_residual_block(x, size, name=f"block{i}")
    outputs = _head(x, include_top, pooling, classes, classifier_activation, dropout)
    return keras.Model(inputs, outputs, name="mini_xception")


# --- the full Xception (keras.applications layout and names) ---------------------------


def xception_module(x, filters, out_filters=None, relu_first=True, *, name="block"):
    """Entry/exit flow module: two separable convs, max-pool 3/2, strided 1x1 shortcut."""
    _check_positive_int(filters, "filters")
    out_filters = filters if out_filters is None else out_filters
    _check_positive_int(out_filters, "out_filters")
    if not isinstance(relu_first, bool):
        raise TypeError(f"relu_first must be a bool, got {type(relu_first).__name__}")
    _check_channels_last()
    # keras.applications creates the shortcut first: keep that weight order.
    residual = _strided_shortcut(x, out_filters, f"{name}_shortcut")
    x = _sepconv_bn(x, filters, f"{name}_sepconv1", relu_first)
    x = _sepconv_bn(x, out_filters, f"{name}_sepconv2")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
    return layers.Add(name=f"{name}_add")([x, residual])


def middle_flow_module(x, filters=728, *, name="block"):
    """Three ReLU-SepConv-BN with an identity shortcut."""
    _check_positive_int(filters, "filters")
    _check_channels_last()
    if x.shape[-1] != filters:
        raise ValueError(f"filters must equal the input channels ({x.shape[-1]}), got {filters}")
    residual = x
    for i in (1, 2, 3):
        x = _sepconv_bn(x, filters, f"{name}_sepconv{i}")
    return layers.Add(name=f"{name}_add")([x, residual])


def xception(
    input_shape=(299, 299, 3),
    include_top=True,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
):
    """Xception, the keras.applications twin (22.9 M parameters at 1000 classes)."""
    _check_head(input_shape, include_top, pooling, classes, MIN_SIZE)
    _check_activation(classifier_activation, "classifier_activation")
    inputs = keras.Input(shape=tuple(input_shape), name="input")

    # Entry flow: two plain convs, then three downsampling modules.
    x = layers.Conv2D(32, 3, strides=2, use_bias=False, name="block1_conv1")(inputs)
    x = layers.BatchNormalization(name="block1_conv1_bn")(x)
    x = layers.Activation("relu", name="block1_conv1_act")(x)
    x = layers.Conv2D(64, 3, use_bias=False, name="block1_conv2")(x)
    x = layers.BatchNormalization(name="block1_conv2_bn")(x)
    x = layers.Activation("relu", name="block1_conv2_act")(x)
    x = xception_module(x, 128, relu_first=False, name="block2")
    x = xception_module(x, 256, name="block3")
    x = xception_module(x, 728, name="block4")

    # Middle flow: eight identical modules at 728 channels.
    for i in range(5, 13):
        x = middle_flow_module(x, 728, name=f"block{i}")

    # Exit flow.
    x = xception_module(x, 728, out_filters=1024, name="block13")
    for i, filters in ((1, 1536), (2, 2048)):
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"block14_sepconv{i}")(x)
        x = layers.BatchNormalization(name=f"block14_sepconv{i}_bn")(x)
        x = layers.Activation("relu", name=f"block14_sepconv{i}_act")(x)

    outputs = _head(x, include_top, pooling, classes, classifier_activation)
    return keras.Model(inputs, outputs, name="xception")
