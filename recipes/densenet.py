"""DenseNet: every layer sees the feature maps of all the layers before it.

Paper: Huang, Liu, van der Maaten and Weinberger, "Densely Connected Convolutional
Networks" (CVPR 2017).

A ResNet *adds* a block's output to its input. A DenseNet *concatenates* it: inside a
dense block, layer l receives the feature maps of layers 0..l-1 stacked along the
channel axis, and contributes only k new maps of its own (k is the growth rate, 32 on
ImageNet). Low-level features such as edges stay directly available to every later
layer, gradients reach early layers through short paths, and because each layer adds
so few channels the network is narrow and cheap in parameters. Each dense layer is
BN -> ReLU -> 1x1 conv to 4k channels (the "bottleneck", DenseNet-B) -> BN -> ReLU ->
3x3 conv to k channels. Between dense blocks a transition layer compresses the
channels by a factor theta (0.5, DenseNet-C) with a 1x1 conv and halves the grid with
a 2x2 average pool. With both, the network is called DenseNet-BC.

`densenet121`, `densenet169` and `densenet201` are layer for layer the
keras.applications models (same weights in the same order). `densenet` is the general
builder: any number of dense blocks, any growth rate and compression, and the
CIFAR stem (one 3x3 conv, no pooling) for 32x32 inputs, as in the paper's DenseNet-BC
(L=100, k=12): `densenet((16, 16, 16), growth_rate=12, stem="cifar", input_shape=(32, 32, 3))`.
"""

import keras
from keras import layers

FAMILY = "Densely connected networks"
PAPERS = ("Huang, Liu, van der Maaten, Weinberger 2017. Densely Connected Convolutional Networks. CVPR.",)
TASK = "classification"
DEFAULT_BUILDER = "densenet121"
_SMALL = {"input_shape": (32, 32, 3), "classes": 10}
BUILDERS = {
    "densenet121": {"twin": "DenseNet121", "small": _SMALL, "params": 8_062_504},
    "densenet169": {"twin": "DenseNet169", "small": _SMALL},
    "densenet201": {"twin": "DenseNet201", "small": _SMALL},
    "densenet": {"small": {"blocks": (2, 2, 2), "growth_rate": 12, "stem": "cifar", **_SMALL}},
}
BLOCKS = {
    "dense_layer": {"input_shape": (8, 8, 16), "kwargs": {"growth_rate": 12}},
    "dense_block": {"input_shape": (8, 8, 16), "kwargs": {"num_layers": 3, "growth_rate": 12}},
    "transition_block": {"input_shape": (8, 8, 32), "kwargs": {"compression": 0.5}},
}
DEMO = {
    "builder": "densenet",
    "kwargs": {"blocks": (2, 2, 2), "growth_rate": 12, "input_shape": (64, 64, 1), "classes": 10},
    "epochs": 6,
    "learning_rate": 3e-3,
}
STAGES = ("conv1_relu", "conv2_block2_concat", "conv3_block2_concat", "conv4_block2_concat", "relu")

STEMS = ("imagenet", "cifar")
BN_EPSILON = 1.001e-5  # the value keras.applications uses


# --- argument checks: fail early, name the argument ----------------------------------


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _check_fraction(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in (0, 1], got {type(value).__name__}")
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be in (0, 1], got {value}")


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


def _bn_relu(x, name):
    """BN -> ReLU: DenseNet puts it in front of every convolution (pre-activation)."""
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


# --- the three blocks -------------------------------------------------------------------


def dense_layer(x, growth_rate, *, name="block"):
    """One dense layer: BN-ReLU-1x1 conv (4k) - BN-ReLU-3x3 conv (k), concatenated to x."""
    _check_positive_int(growth_rate, "growth_rate")
    _check_channels_last()
    y = _bn_relu(x, f"{name}_0")
    y = layers.Conv2D(4 * growth_rate, 1, use_bias=False, name=f"{name}_1_conv")(y)
    y = _bn_relu(y, f"{name}_1")
    y = layers.Conv2D(growth_rate, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(y)
    return layers.Concatenate(name=f"{name}_concat")([x, y])


def dense_block(x, num_layers, growth_rate=32, *, name="dense"):
    """``num_layers`` dense layers: the channels grow from C to C + num_layers * k."""
    _check_positive_int(num_layers, "num_layers")
    _check_positive_int(growth_rate, "growth_rate")
    _check_channels_last()
    for i in range(1, num_layers + 1):
        x = dense_layer(x, growth_rate, name=f"{name}_block{i}")
    return x


def transition_block(x, compression=0.5, *, name="transition"):
    """BN-ReLU-1x1 conv to floor(C * compression) channels, then 2x2 average pool."""
    _check_fraction(compression, "compression")
    _check_channels_last()
    channels = int(x.shape[-1] * compression)
    if channels < 1:
        raise ValueError(f"compression {compression} leaves no channels out of {x.shape[-1]}")
    if min(side or 2 for side in x.shape[1:3]) < 2:
        raise ValueError(f"x must be at least 2x2 pixels for the 2x2 average pool, "
                         f"got {tuple(x.shape[1:3])}")
    x = _bn_relu(x, name)
    x = layers.Conv2D(channels, 1, use_bias=False, name=f"{name}_conv")(x)
    return layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


# --- the network ------------------------------------------------------------------------


def _head(x, include_top, pooling, classes, classifier_activation):
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def min_input_size(num_blocks, stem="imagenet"):
    """The smallest input side the network takes: every transition halves the grid,
    the ImageNet stem quarters it (32 px for the four-block models, as keras.applications)."""
    _check_positive_int(num_blocks, "num_blocks")
    if stem not in STEMS:
        raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
    return 2 ** (num_blocks - 1) * (4 if stem == "imagenet" else 1)


def densenet(
    blocks=(6, 12, 24, 16),
    growth_rate=32,
    compression=0.5,
    stem="imagenet",
    input_shape=(224, 224, 3),
    include_top=True,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="densenet",
):
    """A DenseNet-BC with ``blocks`` dense layers per dense block.

    ``stem="imagenet"``: 7x7/2 conv with 2k filters, BN, ReLU, 3x3/2 max-pool.
    ``stem="cifar"``: one 3x3 conv with 2k filters and no pooling, for 32x32 inputs.
    A transition with ``compression`` sits between consecutive dense blocks; the last
    block is followed by BN and ReLU.
    """
    if not isinstance(blocks, (tuple, list)) or not blocks:
        raise ValueError(f"blocks must be a non-empty list of layer counts, got {blocks!r}")
    for count in blocks:
        _check_positive_int(count, "blocks")
    _check_positive_int(growth_rate, "growth_rate")
    _check_fraction(compression, "compression")
    if stem not in STEMS:
        raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
    _check_head(input_shape, include_top, pooling, classes, min_input_size(len(blocks), stem))
    _check_activation(classifier_activation, "classifier_activation")

    inputs = keras.Input(shape=tuple(input_shape), name="input")
    if stem == "imagenet":
        x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
        x = layers.Conv2D(2 * growth_rate, 7, strides=2, use_bias=False, name="conv1_conv")(x)
        x = _bn_relu(x, "conv1")
        x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    else:  # the first dense layer starts with BN-ReLU, so the stem needs neither
        x = layers.Conv2D(2 * growth_rate, 3, padding="same", use_bias=False, name="conv1_conv")(inputs)

    # Dense blocks conv2, conv3, ... with transitions pool2, pool3, ... between them
    # (the keras.applications names).
    for i, count in enumerate(blocks, start=2):
        x = dense_block(x, count, growth_rate, name=f"conv{i}")
        if i < len(blocks) + 1:
            x = transition_block(x, compression, name=f"pool{i}")
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="bn")(x)
    x = layers.Activation("relu", name="relu")(x)
    outputs = _head(x, include_top, pooling, classes, classifier_activation)
    return keras.Model(inputs, outputs, name=name)


def _builder(blocks, name):
    def build(input_shape=(224, 224, 3), include_top=True, pooling=None, classes=1000,
              classifier_activation="softmax", growth_rate=32, compression=0.5):
        return densenet(blocks, growth_rate, compression, "imagenet", input_shape, include_top,
                        pooling, classes, classifier_activation, name)

    build.__name__ = name
    build.__doc__ = f"{name}: the keras.applications twin, dense blocks of {list(blocks)} layers, k=32."
    return build


densenet121 = _builder((6, 12, 24, 16), "densenet121")
densenet169 = _builder((6, 12, 32, 32), "densenet169")
densenet201 = _builder((6, 12, 48, 32), "densenet201")
