"""ResNeXt: aggregated residual transformations.

Paper: Xie, Girshick, Dollar, Tu and He, "Aggregated Residual Transformations for
Deep Neural Networks" (CVPR 2017).

A ResNeXt block is a ResNet bottleneck whose 3x3 conv is split into `cardinality`
parallel paths. Each path sees only its own slice of the channels, so the block sums
32 small transformations instead of one big one. Written out, that is an Inception
module with identical branches; implemented, it is a single grouped convolution,
`Conv2D(groups=cardinality)`, which costs 1/cardinality of the dense conv. The saved
weights are spent on a wider bottleneck: at the same parameter count and
multiply-adds as ResNet-50, ResNeXt-50 (32x4d) has 32 paths of width 4 in its first
stage (128 channels where ResNet-50 has 64) and a lower ImageNet error. The name
reads "cardinality x width of each path"; both double at each stage's start
together with the output width (256, 512, 1024, 2048).

The layout is the paper's Table 1: a 7x7/2 stem and 3x3/2 max-pool, then stages of
[3, 4, 6, 3] blocks, with the stride on the grouped 3x3 of each stage's first block
and a 1x1 projection shortcut there. Convs have no bias (BN follows every one), as
in the authors' Torch code, so the trainable parameter count is the paper's.
"""

import keras
from keras import layers

FAMILY = "Residual networks"
PAPERS = (
    "Xie, Girshick, Dollar, Tu, He 2017. Aggregated Residual Transformations for Deep Neural Networks. CVPR.",
)
TASK = "classification"
DEFAULT_BUILDER = "resnext50_32x4d"
BUILDERS = {
    "resnext50_32x4d": {"params": 25_097_128, "small": {"input_shape": (32, 32, 3), "classes": 10,
                                                        "width": 16, "cardinality": 8}},
    "resnext": {"small": {"input_shape": (32, 32, 3), "classes": 10, "depths": (1, 1, 1, 1),
                          "width": 16, "cardinality": 4}},
}
BLOCKS = {
    "resnext_block": {
        "input_shape": (16, 16, 32),
        "kwargs": {"filters": 64, "group_width": 32, "cardinality": 8, "strides": 2},
    },
}
DEMO = {  # the split form: TensorFlow's CPU gradient of a grouped convolution is slow
    "builder": "resnext",
    "kwargs": {"input_shape": (64, 64, 1), "classes": 10, "depths": (1, 1, 1, 1), "cardinality": 4,
               "base_width": 4, "width": 8, "split_paths": True},
    "epochs": 10,
    "learning_rate": 5e-3,
}
STAGES = ("conv1_relu", "conv2_block1_out", "conv3_block1_out", "conv4_block1_out", "conv5_block1_out")

MIN_SIZE = 32  # five stride-2 steps: 32 px leaves a 1x1 map
BN_EPSILON = 1e-5  # the authors' Torch default


# --- argument checks: fail early, name the argument ----------------------------------


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


def _conv_bn(x, filters, kernel, name, strides=1, groups=1, relu=True):
    """Conv (no bias) -> BN [-> ReLU]: the motif every ResNeXt layer repeats."""
    if kernel > 1:
        x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
    x = layers.Conv2D(filters, kernel, strides=strides, groups=groups, use_bias=False,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x) if relu else x


# --- the aggregated residual block ------------------------------------------------------


def resnext_block(x, filters, group_width, cardinality=32, strides=1, split_paths=False, *, name="block"):
    """1x1 to ``group_width`` -> grouped 3x3 (``cardinality`` paths) -> 1x1 to ``filters``.

    Each of the ``cardinality`` paths carries group_width / cardinality channels; the
    shortcut is a strided 1x1 conv + BN when the size or the channel count changes.
    ``split_paths=True`` builds the same function as the paper's Fig. 3(b): each path
    its own 1x1 and 3x3 convs, concatenated. It trains far faster on TensorFlow's CPU
    kernels, whose grouped-convolution gradient is about 20x slower than a dense one.
    """
    _check_positive_int(filters, "filters")
    _check_positive_int(group_width, "group_width")
    _check_positive_int(cardinality, "cardinality")
    _check_positive_int(strides, "strides")
    if not isinstance(split_paths, bool):
        raise TypeError(f"split_paths must be a bool, got {type(split_paths).__name__}")
    _check_channels_last()
    if group_width % cardinality:
        raise ValueError(
            f"cardinality must divide group_width: {cardinality} paths cannot split "
            f"{group_width} channels evenly"
        )
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, f"{name}_0", strides=strides, relu=False)
    else:
        shortcut = x
    if split_paths:  # Fig. 3(b): per-path BN is the fused BN, channel by channel
        width = group_width // cardinality
        paths = [_conv_bn(_conv_bn(x, width, 1, f"{name}_1_path{p}"), width, 3, f"{name}_2_path{p}",
                          strides=strides) for p in range(cardinality)]
        x = layers.Concatenate(name=f"{name}_2_concat")(paths)
    else:
        x = _conv_bn(x, group_width, 1, f"{name}_1")
        x = _conv_bn(x, group_width, 3, f"{name}_2", strides=strides, groups=cardinality)
    x = _conv_bn(x, filters, 1, f"{name}_3", relu=False)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


# --- the network ---------------------------------------------------------------------------


def resnext(
    input_shape=(224, 224, 3),
    include_top=True,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    depths=(3, 4, 6, 3),
    cardinality=32,
    base_width=4,
    width=64,
    split_paths=False,
):
    """A ResNeXt: ``depths`` blocks per stage, ``cardinality`` paths of ``base_width`` channels.

    ``width`` is the stem's filters; stage s (0..3) outputs 4 * width * 2**s channels and
    its grouped conv has cardinality * base_width * 2**s channels. ``split_paths``: see
    :func:`resnext_block`.
    """
    _check_head(input_shape, include_top, pooling, classes, MIN_SIZE)
    if not isinstance(depths, (tuple, list)) or len(depths) != 4:
        raise ValueError(f"depths must be 4 block counts, got {depths!r}")
    for depth in depths:
        _check_positive_int(depth, "depths")
    _check_positive_int(cardinality, "cardinality")
    _check_positive_int(base_width, "base_width")
    _check_positive_int(width, "width")
    _check_activation(classifier_activation, "classifier_activation")
    name = f"resnext{3 * sum(depths) + 2}_{cardinality}x{base_width}d"

    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = _conv_bn(inputs, width, 7, "conv1", strides=2)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, depth in enumerate(depths):
        for i in range(1, depth + 1):
            x = resnext_block(
                x,
                filters=4 * width * 2**stage,
                group_width=cardinality * base_width * 2**stage,
                cardinality=cardinality,
                strides=2 if i == 1 and stage > 0 else 1,
                split_paths=split_paths,
                name=f"conv{stage + 2}_block{i}",
            )

    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    return keras.Model(inputs, x, name=name)


def resnext50_32x4d(
    input_shape=(224, 224, 3),
    include_top=True,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    cardinality=32,
    base_width=4,
    width=64,
):
    """ResNeXt-50 (32x4d) of the paper's Table 1: 25.0 M parameters, 4.2 G multiply-adds."""
    return resnext(input_shape, include_top, pooling, classes, classifier_activation,
                   (3, 4, 6, 3), cardinality, base_width, width)
