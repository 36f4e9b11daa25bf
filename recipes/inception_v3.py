"""Inception v3: factorized convolutions and efficient grid reduction.

Paper: Szegedy, Vanhoucke, Ioffe, Shlens and Wojna, "Rethinking the Inception
Architecture for Computer Vision" (CVPR 2016).

Inception v3 keeps GoogLeNet's side-by-side branches but makes every big convolution
cheaper by *factorizing* it. A 5x5 conv costs 25/9 = 2.78 times a 3x3, so two stacked
3x3 convs see the same 5x5 window for 18/25 of the price (figure 5). An n x n conv
becomes a 1 x n followed by an n x 1 (figure 6): for n = 3 that is 6/9 of the cost,
for the n = 7 used on the 17x17 grid 14/49. On the coarsest 8x8 grid the 1x3 and 3x1
run side by side to widen the filter bank (figure 7). Between grids, a reduction
module runs a stride-2 conv branch and a stride-2 pool branch in parallel and
concatenates them (figure 10), so the grid halves without a representational
bottleneck. Every conv is followed by BatchNorm and ReLU. With an auxiliary classifier
on the last 17x17 layer and label smoothing (0.1) this reaches 21.2% top-1 error at
about 5.7 G multiply-adds and 23.9 M parameters.

`inception_v3()` is layer for layer the keras.applications InceptionV3 (same weights in
the same order; concatenations named mixed0 to mixed10). That model follows the TF-slim
code rather than the paper's Table 1: its stem ends 1x1 -> 80, 3x3 -> 192, max-pool, it
keeps one 5x5 branch beside the double 3x3 in mixed0-2, and it has four modules at
17x17. `stem="low_res"` is the paper's section 9 variant for small images (first conv
stride 1, no max-pool after the first layers), `width` scales every channel count and
`blocks` sets how many modules each grid gets.
"""

import math

import keras
from keras import layers

FAMILY = "Inception networks"
PAPERS = (
    ("Szegedy, Vanhoucke, Ioffe, Shlens, Wojna 2016. Rethinking the Inception "
     "Architecture for Computer Vision. CVPR."),
)
TASK = "classification"
DEFAULT_BUILDER = "inception_v3"
BUILDERS = {
    "inception_v3": {"twin": "InceptionV3", "params": 23_851_784,
                     "small": {"input_shape": (75, 75, 3), "classes": 10}},
}
BLOCKS = {
    "inception_a": {"input_shape": (9, 9, 32), "kwargs": {"pool_proj": 32}},
    "reduction_a": {"input_shape": (9, 9, 32), "kwargs": {"filters_3x3": 384}},
    "inception_b": {"input_shape": (9, 9, 32), "kwargs": {"filters_7x7_reduce": 128, "n": 7}},
    "reduction_b": {"input_shape": (9, 9, 32), "kwargs": {"filters_3x3": 320, "n": 7}},
    "inception_c": {"input_shape": (5, 5, 32), "kwargs": {"filters_3x3dbl_reduce": 448}},
}
DEMO = {
    "builder": "inception_v3",
    "kwargs": {"input_shape": (64, 64, 1), "classes": 10, "stem": "low_res", "width": 0.125,
               "blocks": (1, 1, 1)},
    "epochs": 2,
    "learning_rate": 5e-3,
}
# In the demo (one module of each kind): mixed0 figure 5, mixed1 reduction to 17x17,
# mixed2 figure 6, mixed3 reduction to 8x8, mixed4 figure 7.
STAGES = ("conv3_relu", "conv5_relu", "mixed0", "mixed1", "mixed2", "mixed3", "mixed4")

STEMS = ("imagenet", "low_res")
MIN_SIZES = {"imagenet": 75, "low_res": 21}  # smaller inputs leave the 8x8 grid no pixel
AUX_LOSS_WEIGHTS = (1.0, 0.4)  # main head, auxiliary head (the TF-slim training code)


# --- argument checks: fail early, name the argument ----------------------------------


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _check_bool(value, name):
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")


def _check_ints(**values):
    for argument, value in values.items():
        _check_positive_int(value, argument)


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


def _check_reducible(x):
    """A reduction module's valid 3x3/2 conv and pool need a map of at least 3x3."""
    _check_channels_last()
    if any(side is not None and side < 3 for side in x.shape[1:3]):
        raise ValueError(f"x must be at least 3x3 pixels for a grid reduction, "
                         f"got {tuple(x.shape[1:3])}")


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


def conv_bn(x, filters, kernel, strides=1, padding="same", *, name):
    """Conv (no bias) -> BatchNorm (no scale: a ReLU follows) -> ReLU, as keras's conv2d_bn."""
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False, name=name)(x)
    x = layers.BatchNormalization(scale=False, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def _avg_pool_proj(x, filters, name):
    x = layers.AveragePooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    return conv_bn(x, filters, 1, name=f"{name}_pool_proj")


# --- the 35x35 grid: figure 5, a 5x5 becomes two 3x3 -------------------------------------


def inception_a(x, filters_1x1=64, filters_5x5_reduce=48, filters_5x5=64, filters_3x3_reduce=64,
                filters_3x3=96, pool_proj=32, *, name="mixed"):
    """Figure 5: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 (the factorized 5x5) | avg-pool -> 1x1."""
    _check_ints(filters_1x1=filters_1x1, filters_5x5_reduce=filters_5x5_reduce,
                filters_5x5=filters_5x5, filters_3x3_reduce=filters_3x3_reduce,
                filters_3x3=filters_3x3, pool_proj=pool_proj)
    _check_channels_last()
    branch_1x1 = conv_bn(x, filters_1x1, 1, name=f"{name}_1x1")
    branch_5x5 = conv_bn(x, filters_5x5_reduce, 1, name=f"{name}_5x5_reduce")
    branch_5x5 = conv_bn(branch_5x5, filters_5x5, 5, name=f"{name}_5x5")
    branch_3x3 = conv_bn(x, filters_3x3_reduce, 1, name=f"{name}_3x3dbl_reduce")
    branch_3x3 = conv_bn(branch_3x3, filters_3x3, 3, name=f"{name}_3x3dbl_1")
    branch_3x3 = conv_bn(branch_3x3, filters_3x3, 3, name=f"{name}_3x3dbl_2")
    branch_pool = _avg_pool_proj(x, pool_proj, name)
    return layers.Concatenate(name=name)([branch_1x1, branch_5x5, branch_3x3, branch_pool])


def reduction_a(x, filters_3x3=384, filters_3x3dbl_reduce=64, filters_3x3dbl=96, *, name="mixed"):
    """35x35 -> 17x17: stride-2 3x3 | 1x1 -> 3x3 -> stride-2 3x3 | stride-2 max-pool."""
    _check_ints(filters_3x3=filters_3x3, filters_3x3dbl_reduce=filters_3x3dbl_reduce,
                filters_3x3dbl=filters_3x3dbl)
    _check_reducible(x)
    branch_3x3 = conv_bn(x, filters_3x3, 3, strides=2, padding="valid", name=f"{name}_3x3")
    branch_dbl = conv_bn(x, filters_3x3dbl_reduce, 1, name=f"{name}_3x3dbl_reduce")
    branch_dbl = conv_bn(branch_dbl, filters_3x3dbl, 3, name=f"{name}_3x3dbl_1")
    branch_dbl = conv_bn(branch_dbl, filters_3x3dbl, 3, strides=2, padding="valid",
                         name=f"{name}_3x3dbl_2")
    branch_pool = layers.MaxPooling2D(3, strides=2, name=f"{name}_pool")(x)
    return layers.Concatenate(name=name)([branch_3x3, branch_dbl, branch_pool])


# --- the 17x17 grid: figure 6, n x n becomes 1 x n then n x 1 ----------------------------


def inception_b(x, filters_1x1=192, filters_7x7_reduce=128, filters_7x7=192, pool_proj=192, n=7, *,
                name="mixed"):
    """Figure 6: 1x1 | 1x1 -> 1xn -> nx1 | 1x1 -> (nx1 -> 1xn) x 2 | avg-pool -> 1x1."""
    _check_ints(filters_1x1=filters_1x1, filters_7x7_reduce=filters_7x7_reduce,
                filters_7x7=filters_7x7, pool_proj=pool_proj, n=n)
    _check_channels_last()
    c = filters_7x7_reduce
    branch_1x1 = conv_bn(x, filters_1x1, 1, name=f"{name}_1x1")
    branch_7x7 = conv_bn(x, c, 1, name=f"{name}_7x7_reduce")
    branch_7x7 = conv_bn(branch_7x7, c, (1, n), name=f"{name}_7x7_1xn")
    branch_7x7 = conv_bn(branch_7x7, filters_7x7, (n, 1), name=f"{name}_7x7_nx1")
    branch_dbl = conv_bn(x, c, 1, name=f"{name}_7x7dbl_reduce")
    branch_dbl = conv_bn(branch_dbl, c, (n, 1), name=f"{name}_7x7dbl_nx1_1")
    branch_dbl = conv_bn(branch_dbl, c, (1, n), name=f"{name}_7x7dbl_1xn_1")
    branch_dbl = conv_bn(branch_dbl, c, (n, 1), name=f"{name}_7x7dbl_nx1_2")
    branch_dbl = conv_bn(branch_dbl, filters_7x7, (1, n), name=f"{name}_7x7dbl_1xn_2")
    branch_pool = _avg_pool_proj(x, pool_proj, name)
    return layers.Concatenate(name=name)([branch_1x1, branch_7x7, branch_dbl, branch_pool])


def reduction_b(x, filters_3x3_reduce=192, filters_3x3=320, filters_7x7=192, n=7, *, name="mixed"):
    """17x17 -> 8x8: 1x1 -> stride-2 3x3 | 1x1 -> 1xn -> nx1 -> stride-2 3x3 | max-pool."""
    _check_ints(filters_3x3_reduce=filters_3x3_reduce, filters_3x3=filters_3x3,
                filters_7x7=filters_7x7, n=n)
    _check_reducible(x)
    branch_3x3 = conv_bn(x, filters_3x3_reduce, 1, name=f"{name}_3x3_reduce")
    branch_3x3 = conv_bn(branch_3x3, filters_3x3, 3, strides=2, padding="valid", name=f"{name}_3x3")
    branch_7x7 = conv_bn(x, filters_7x7, 1, name=f"{name}_7x7x3_reduce")
    branch_7x7 = conv_bn(branch_7x7, filters_7x7, (1, n), name=f"{name}_7x7x3_1xn")
    branch_7x7 = conv_bn(branch_7x7, filters_7x7, (n, 1), name=f"{name}_7x7x3_nx1")
    branch_7x7 = conv_bn(branch_7x7, filters_7x7, 3, strides=2, padding="valid",
                         name=f"{name}_7x7x3_3x3")
    branch_pool = layers.MaxPooling2D(3, strides=2, name=f"{name}_pool")(x)
    return layers.Concatenate(name=name)([branch_3x3, branch_7x7, branch_pool])


# --- the 8x8 grid: figure 7, the expanded filter bank --------------------------------------


def _split_1x3_3x1(x, filters, name):
    left = conv_bn(x, filters, (1, 3), name=f"{name}_1x3")
    right = conv_bn(x, filters, (3, 1), name=f"{name}_3x1")
    return layers.Concatenate(name=f"{name}_concat")([left, right])


def inception_c(x, filters_1x1=320, filters_3x3=384, filters_3x3dbl_reduce=448, pool_proj=192, *,
                name="mixed"):
    """Figure 7: 1x1 | 1x1 -> [1x3, 3x1] | 1x1 -> 3x3 -> [1x3, 3x1] | avg-pool -> 1x1."""
    _check_ints(filters_1x1=filters_1x1, filters_3x3=filters_3x3,
                filters_3x3dbl_reduce=filters_3x3dbl_reduce, pool_proj=pool_proj)
    _check_channels_last()
    branch_1x1 = conv_bn(x, filters_1x1, 1, name=f"{name}_1x1")
    branch_3x3 = conv_bn(x, filters_3x3, 1, name=f"{name}_3x3_reduce")
    branch_3x3 = _split_1x3_3x1(branch_3x3, filters_3x3, f"{name}_3x3")
    branch_dbl = conv_bn(x, filters_3x3dbl_reduce, 1, name=f"{name}_3x3dbl_reduce")
    branch_dbl = conv_bn(branch_dbl, filters_3x3, 3, name=f"{name}_3x3dbl_3x3")
    branch_dbl = _split_1x3_3x1(branch_dbl, filters_3x3, f"{name}_3x3dbl")
    branch_pool = _avg_pool_proj(x, pool_proj, name)
    return layers.Concatenate(name=name)([branch_1x1, branch_3x3, branch_dbl, branch_pool])


# --- the auxiliary classifier and the whole network ----------------------------------------


def _aux_classifier(x, classes, classifier_activation, scale):
    """Paper, section 4 (BN-auxiliary): 5x5/3 avg-pool, 1x1 conv 128, 5x5 conv 768, FC.

    On the 17x17 grid the pool leaves 5x5 and the 5x5 conv leaves 1x1; on smaller
    grids both windows shrink to fit.
    """
    window = min(5, x.shape[1], x.shape[2])
    x = layers.AveragePooling2D(window, strides=3, name="aux_pool")(x)
    x = conv_bn(x, scale(128), 1, name="aux_proj")
    x = conv_bn(x, scale(768), (x.shape[1], x.shape[2]), padding="valid", name="aux_conv")
    x = layers.GlobalAveragePooling2D(name="aux_flatten")(x)
    return layers.Dense(classes, activation=classifier_activation, name="aux_predictions")(x)


def inception_v3(
    input_shape=(299, 299, 3),
    include_top=True,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    stem="imagenet",
    width=1.0,
    aux_classifier=False,
    blocks=(3, 4, 2),
):
    """Inception v3, the keras.applications twin at the defaults (23.9 M parameters).

    ``blocks`` counts the figure-5, figure-6 and figure-7 modules (keras: 3, 4, 2).
    ``aux_classifier=True`` adds the auxiliary head on mixed7 (the last 17x17 layer):
    the model then has two outputs, main head first; train it with
    ``loss_weights=AUX_LOSS_WEIGHTS`` and predict with ``inference_model(model)``.
    """
    if stem not in STEMS:
        raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
    _check_head(input_shape, include_top, pooling, classes, MIN_SIZES[stem])
    if isinstance(width, bool) or not isinstance(width, (int, float)):
        raise TypeError(f"width must be a number, got {type(width).__name__}")
    if (isinstance(width, float) and not math.isfinite(width)) or width <= 0:
        raise ValueError(f"width must be a finite number > 0, got {width}")
    _check_bool(aux_classifier, "aux_classifier")
    _check_activation(classifier_activation, "classifier_activation")
    if not isinstance(blocks, (tuple, list)) or len(blocks) != 3:
        raise ValueError(f"blocks must be 3 module counts (35x35, 17x17, 8x8 grids), got {blocks!r}")
    for count in blocks:
        _check_positive_int(count, "blocks")
    if aux_classifier and not include_top:
        raise ValueError("aux_classifier=True needs include_top=True: the head is a classifier")

    def scale(channels):
        return max(1, round(channels * width))

    inputs = keras.Input(shape=tuple(input_shape), name="input")
    # Stem: 299 -> 35 (keras/TF-slim layout). low_res: stride 1 and no first max-pool.
    x = conv_bn(inputs, scale(32), 3, strides=2 if stem == "imagenet" else 1, padding="valid",
                name="conv1")
    x = conv_bn(x, scale(32), 3, padding="valid", name="conv2")
    x = conv_bn(x, scale(64), 3, name="conv3")
    if stem == "imagenet":
        x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = conv_bn(x, scale(80), 1, padding="valid", name="conv4")
    x = conv_bn(x, scale(192), 3, padding="valid", name="conv5")
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)

    # 35x35: figure-5 modules (pool proj 32 in the first, then 64), then the reduction.
    # Modules are numbered in order: with blocks=(3, 4, 2), mixed0 to mixed10 as in keras.
    index = iter(range(sum(blocks) + 2))
    for i in range(blocks[0]):
        x = inception_a(x, scale(64), scale(48), scale(64), scale(64), scale(96),
                        scale(32 if i == 0 else 64), name=f"mixed{next(index)}")
    x = reduction_a(x, scale(384), scale(64), scale(96), name=f"mixed{next(index)}")
    # 17x17: figure-6 modules with n = 7 (7x7 channels 128, then 160, and 192 in the last).
    for i in range(blocks[1]):
        channels = 128 if i == 0 else 192 if i == blocks[1] - 1 else 160
        x = inception_b(x, scale(192), scale(channels), scale(192), scale(192), name=f"mixed{next(index)}")
    last_17x17 = x
    x = reduction_b(x, scale(192), scale(320), scale(192), name=f"mixed{next(index)}")
    # 8x8: figure-7 modules.
    for _ in range(blocks[2]):
        x = inception_c(x, scale(320), scale(384), scale(448), scale(192), name=f"mixed{next(index)}")

    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    if aux_classifier:
        aux = _aux_classifier(last_17x17, classes, classifier_activation, scale)
        return keras.Model(inputs, [x, aux], name="inception_v3")
    return keras.Model(inputs, x, name="inception_v3")


def inference_model(training_model):
    """The one-output model (input -> ``predictions``) that shares the training model's weights."""
    if not isinstance(training_model, keras.Model):
        raise TypeError(f"training_model must be a keras.Model, got {type(training_model).__name__}")
    if "predictions" not in [layer.name for layer in training_model.layers]:
        raise ValueError("training_model must have a 'predictions' layer (build it with include_top=True)")
    outputs = training_model.get_layer("predictions").output
    return keras.Model(training_model.inputs, outputs, name=f"{training_model.name}_inference")
