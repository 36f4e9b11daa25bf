"""Residual networks: the residual block, ResNet v1 and ResNet v2.

Papers: He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition"
(CVPR 2016), and "Identity Mappings in Deep Residual Networks" (ECCV 2016).

A deep plain network is hard to train: the gradient that reaches its first layers
is tiny. A residual block adds a shortcut around a few layers, y = F(x) + x, so the
layers only learn a correction to the identity and the gradient has a direct path
back to the input. When the block changes the number of channels or the spatial
size, the shortcut becomes a 1x1 convolution (a "projection") so the two tensors can
be added. ResNet-18/34 stack *basic* blocks (two 3x3 convs); ResNet-50/101/152 stack
*bottleneck* blocks (1x1 down, 3x3, 1x1 up by 4x). ResNet v2 moves BatchNorm and
ReLU in front of the convolutions ("pre-activation"), so the shortcut path is a
clean identity from end to end.

The v1 builders reproduce keras.applications ResNet50/101/152 and the v2 builders
ResNet50V2/101V2/152V2 layer for layer, so their weights can be transplanted.
"""

import keras
from keras import layers

FAMILY = "Residual networks"
PAPERS = (
    "He, Zhang, Ren, Sun 2016. Deep Residual Learning for Image Recognition. CVPR.",
    "He, Zhang, Ren, Sun 2016. Identity Mappings in Deep Residual Networks. ECCV.",
)
TASK = "classification"
DEFAULT_BUILDER = "resnet50"
_SMALL = {"input_shape": (32, 32, 3), "classes": 10}
BUILDERS = {
    "resnet18": {"small": _SMALL},
    "resnet34": {"small": _SMALL},
    "resnet50": {"twin": "ResNet50", "small": _SMALL, "params": 25_636_712},
    "resnet101": {"twin": "ResNet101", "small": _SMALL},
    "resnet152": {"twin": "ResNet152", "small": _SMALL},
    "resnet50v2": {"twin": "ResNet50V2", "small": _SMALL},
    "resnet101v2": {"twin": "ResNet101V2", "small": _SMALL},
    "resnet152v2": {"twin": "ResNet152V2", "small": _SMALL},
}
BLOCKS = {
    "residual_block": {"input_shape": (16, 16, 32), "kwargs": {"filters": 64, "pooling": True}},
    "basic_block": {"input_shape": (16, 16, 32), "kwargs": {"filters": 64, "strides": 2}},
    "bottleneck_block": {"input_shape": (16, 16, 64), "kwargs": {"filters": 32, "strides": 2}},
    "preact_bottleneck_block": {
        "input_shape": (16, 16, 64),
        "kwargs": {"filters": 32, "strides": 2, "projection": True},
    },
}
DEMO = {
    "builder": "resnet18",
    "kwargs": {"input_shape": (64, 64, 1), "classes": 10, "width": 16},
    "epochs": 9,
    "learning_rate": 4e-3,
}
STAGES = ("conv1_relu", "conv2_block2_out", "conv3_block2_out", "conv4_block2_out", "conv5_block2_out")

MIN_SIZE = 32  # five stride-2 steps: 32 px leaves a 1x1 map
BN_EPSILON = 1.001e-5  # the value keras.applications uses


# --- argument checks: fail early, name the argument ----------------------------------


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _check_bool(value, name):
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")


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


def _bn(x, name):
    return layers.BatchNormalization(epsilon=BN_EPSILON, name=name)(x)


# --- the residual block of the course notes (Deep Learning with Python, listing 9.2) ---


def residual_block(x, filters, pooling=False, *, name="residual"):
    """Two 3x3 convs plus a shortcut; a 1x1 projection when filters or size change."""
    _check_positive_int(filters, "filters")
    _check_bool(pooling, "pooling")
    _check_channels_last()
    shortcut = x
    x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv1")(x)
    x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv2")(x)
    if pooling:
        x = layers.MaxPooling2D(2, padding="same", name=f"{name}_pool")(x)
        shortcut = layers.Conv2D(filters, 1, strides=2, name=f"{name}_proj")(shortcut)
    elif shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, name=f"{name}_proj")(shortcut)
    return layers.Add(name=f"{name}_out")([x, shortcut])


# --- ResNet v1: post-activation blocks --------------------------------------------------


def basic_block(x, filters, strides=1, *, name="block"):
    """ResNet-18/34 block: 3x3, 3x3, with a 1x1 projection shortcut when needed."""
    _check_positive_int(filters, "filters")
    _check_positive_int(strides, "strides")
    _check_channels_last()
    if strides != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, name=f"{name}_0_conv")(x)
        shortcut = _bn(shortcut, f"{name}_0_bn")
    else:
        shortcut = x
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", name=f"{name}_1_conv")(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(_bn(x, f"{name}_1_bn"))
    x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_2_conv")(x)
    x = _bn(x, f"{name}_2_bn")
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def bottleneck_block(x, filters, strides=1, projection=True, *, name="block"):
    """ResNet-50 block: 1x1 (stride) -> 3x3 -> 1x1 to 4*filters, plus the shortcut."""
    _check_positive_int(filters, "filters")
    _check_positive_int(strides, "strides")
    _check_bool(projection, "projection")
    _check_channels_last()
    if not projection and (strides != 1 or x.shape[-1] != 4 * filters):
        raise ValueError("projection=False needs strides=1 and 4*filters input channels")
    if projection:  # keras.applications creates the shortcut first: keep that weight order
        shortcut = layers.Conv2D(4 * filters, 1, strides=strides, name=f"{name}_0_conv")(x)
        shortcut = _bn(shortcut, f"{name}_0_bn")
    else:
        shortcut = x
    x = layers.Conv2D(filters, 1, strides=strides, name=f"{name}_1_conv")(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(_bn(x, f"{name}_1_bn"))
    x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_2_conv")(x)
    x = layers.Activation("relu", name=f"{name}_2_relu")(_bn(x, f"{name}_2_bn"))
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    x = _bn(x, f"{name}_3_bn")
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


# --- ResNet v2: pre-activation block ---------------------------------------------------


def preact_bottleneck_block(x, filters, strides=1, projection=False, *, name="block"):
    """ResNet v2 block: BN-ReLU first; the stride sits on the 3x3, as in keras.applications."""
    _check_positive_int(filters, "filters")
    _check_positive_int(strides, "strides")
    _check_bool(projection, "projection")
    _check_channels_last()
    if not projection and x.shape[-1] != 4 * filters:
        raise ValueError("projection=False needs 4*filters input channels")
    preact = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_preact_bn")(x)
    preact = layers.Activation("relu", name=f"{name}_preact_relu")(preact)
    if projection:
        shortcut = layers.Conv2D(4 * filters, 1, strides=strides, name=f"{name}_0_conv")(preact)
    elif strides > 1:
        shortcut = layers.MaxPooling2D(1, strides=strides, name=f"{name}_0_pool")(x)
    else:
        shortcut = x
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_1_conv")(preact)
    x = layers.Activation("relu", name=f"{name}_1_relu")(_bn(x, f"{name}_1_bn"))
    x = layers.ZeroPadding2D(1, name=f"{name}_2_pad")(x)
    x = layers.Conv2D(filters, 3, strides=strides, use_bias=False, name=f"{name}_2_conv")(x)
    x = layers.Activation("relu", name=f"{name}_2_relu")(_bn(x, f"{name}_2_bn"))
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    return layers.Add(name=f"{name}_out")([shortcut, x])


# --- stages: a stack of blocks named conv{2..5}_block{i} --------------------------------


def _v1_stage(x, block, filters, blocks, strides, name):
    for i in range(1, blocks + 1):
        kwargs = {"strides": strides if i == 1 else 1, "name": f"{name}_block{i}"}
        if block is bottleneck_block:
            kwargs["projection"] = i == 1
        x = block(x, filters, **kwargs)
    return x


def _v2_stage(x, filters, blocks, strides, name):
    # keras.applications puts the stride on the stage's last block in v2.
    x = preact_bottleneck_block(x, filters, projection=True, name=f"{name}_block1")
    for i in range(2, blocks):
        x = preact_bottleneck_block(x, filters, name=f"{name}_block{i}")
    return preact_bottleneck_block(x, filters, strides=strides, name=f"{name}_block{blocks}")


def _head(x, include_top, pooling, classes, classifier_activation):
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def resnet(
    depths,
    block="bottleneck",
    preact=False,
    width=64,
    input_shape=(224, 224, 3),
    include_top=True,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="resnet",
):
    """A ResNet with ``depths`` blocks per stage; ``width`` is the first stage's filters."""
    _check_head(input_shape, include_top, pooling, classes, MIN_SIZE)
    _check_activation(classifier_activation, "classifier_activation")
    _check_positive_int(width, "width")
    if not isinstance(depths, (tuple, list)) or len(depths) != 4:
        raise ValueError(f"depths must be 4 block counts, got {depths!r}")
    for depth in depths:
        _check_positive_int(depth, "depths")
    if block not in ("basic", "bottleneck"):
        raise ValueError(f"block must be 'basic' or 'bottleneck', got {block!r}")
    if preact and (block != "bottleneck" or min(depths) < 2):
        raise ValueError("preact=True needs block='bottleneck' and depths >= 2")

    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = layers.Conv2D(width, 7, strides=2, name="conv1_conv")(x)
    if not preact:
        x = layers.Activation("relu", name="conv1_relu")(_bn(x, "conv1_bn"))
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)

    for stage, depth in enumerate(depths):
        filters, stage_name = width * 2**stage, f"conv{stage + 2}"
        if preact:  # v2 downsamples at the end of stages 2-4
            x = _v2_stage(x, filters, depth, 1 if stage == 3 else 2, stage_name)
        else:
            block_fn = bottleneck_block if block == "bottleneck" else basic_block
            x = _v1_stage(x, block_fn, filters, depth, 1 if stage == 0 else 2, stage_name)
    if preact:
        x = layers.Activation("relu", name="post_relu")(_bn(x, "post_bn"))

    outputs = _head(x, include_top, pooling, classes, classifier_activation)
    return keras.Model(inputs, outputs, name=name)


def _builder(depths, block, preact, name):
    def build(input_shape=(224, 224, 3), include_top=True, pooling=None, classes=1000,
              classifier_activation="softmax", width=64):
        return resnet(depths, block, preact, width, input_shape, include_top, pooling,
                      classes, classifier_activation, name)

    build.__name__ = name
    build.__doc__ = f"{name}: blocks per stage {list(depths)}, {block} blocks" + (
        ", pre-activation (v2)." if preact else "."
    )
    return build


resnet18 = _builder((2, 2, 2, 2), "basic", False, "resnet18")
resnet34 = _builder((3, 4, 6, 3), "basic", False, "resnet34")
resnet50 = _builder((3, 4, 6, 3), "bottleneck", False, "resnet50")
resnet101 = _builder((3, 4, 23, 3), "bottleneck", False, "resnet101")
resnet152 = _builder((3, 8, 36, 3), "bottleneck", False, "resnet152")
resnet50v2 = _builder((3, 4, 6, 3), "bottleneck", True, "resnet50v2")
resnet101v2 = _builder((3, 4, 23, 3), "bottleneck", True, "resnet101v2")
resnet152v2 = _builder((3, 8, 36, 3), "bottleneck", True, "resnet152v2")
