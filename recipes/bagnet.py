"""BagNet: a ResNet-50 whose every output sees only a small patch of the image.

Paper: Brendel and Bethge, "Approximating CNNs with Bag-of-local-Features models
works surprisingly well on ImageNet" (ICLR 2019). Reference code: the authors'
PyTorch models, github.com/wielandbrendel/bag-of-local-features-models.

BagNet asks how far ImageNet can be solved without any global shape: it keeps
ResNet-50's bottleneck layout (3, 4, 6, 3 blocks, expansion 4) but makes almost every
convolution 1x1. Only the first block of a stage may use a 3x3 (where `kernel3` says
so), every conv uses valid padding, and there is no max-pool, so the receptive field
of an output location is tiny: 9, 17 or 33 pixels for BagNet-9, -17 and -33. The
network classifies each patch on its own, and the image's class logits are the
average of the patch logits (average pooling and the linear classifier commute).
That makes the model interpretable by construction: applying the classifier at
every location (`patch_logits=True`) gives a heatmap of class evidence per patch.
BagNet-33 reaches 87.6% top-5 accuracy on ImageNet.

The builders reproduce the reference layout exactly: a 1x1 then a valid 3x3 stem with
no max-pool, the k x k conv carrying the stride, a strided 1x1 + BN shortcut cropped
at the bottom and right to the main path's size, PyTorch's BatchNorm defaults
(epsilon 1e-5, momentum 0.1, i.e. Keras momentum 0.9; the stem's momentum 0.001, i.e.
Keras 0.999), and weights created in the order of the reference's state_dict.
"""

import keras
from keras import layers

FAMILY = "Residual networks"
PAPERS = (
    "Brendel, Bethge 2019. Approximating CNNs with Bag-of-local-Features models works "
    "surprisingly well on ImageNet. ICLR.",
    "He, Zhang, Ren, Sun 2016. Deep Residual Learning for Image Recognition. CVPR.",
)
TASK = "classification"
DEFAULT_BUILDER = "bagnet33"
BUILDERS = {
    "bagnet9": {"small": {"input_shape": (9, 9, 3), "classes": 10, "width": 8}},
    "bagnet17": {"small": {"input_shape": (17, 17, 3), "classes": 10, "width": 8}},
    "bagnet33": {"params": 18_363_304,
                 "small": {"input_shape": (33, 33, 3), "classes": 10, "width": 8}},
    "bagnet": {"small": {"kernel3": (1, 1, 0, 0), "input_shape": (16, 16, 3), "classes": 10, "width": 8}},
}
BLOCKS = {
    "bagnet_block": {"input_shape": (16, 16, 32), "kwargs": {"filters": 16, "kernel_size": 3, "strides": 2}},
}
DEMO = {  # BagNet-33's kernels (33 px patches), one block per stage, an eighth of the width
    "builder": "bagnet",
    "kwargs": {"kernel3": (1, 1, 1, 1), "depths": (1, 1, 1, 1), "width": 8, "input_shape": (64, 64, 1),
               "classes": 10},
    "epochs": 6,
    "learning_rate": 3e-3,
}
STAGES = ("conv1_relu", "conv2_block1_out", "conv3_block1_out", "conv4_block1_out", "conv5_block1_out")

BN_EPSILON = 1e-5  # PyTorch's default
BN_MOMENTUM = 0.9  # PyTorch momentum 0.1; Keras counts the other way round
STEM_BN_MOMENTUM = 0.999  # the reference stem's BatchNorm2d(64, momentum=0.001)
PATCH_LOGITS = "patch_logits"  # the name of the per-patch evidence layer


# --- argument checks: fail early, name the argument ----------------------------------


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _check_bool(value, name):
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")


def _check_four(values, name, low):
    if not isinstance(values, (tuple, list)) or len(values) != 4:
        raise ValueError(f"{name} must be 4 ints, one per stage, got {values!r}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must hold ints, got {type(value).__name__}")
        if value < low:
            raise ValueError(f"{name} must hold ints >= {low}, got {values!r}")


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
        raise ValueError(
            f"input_shape must be at least {min_size}x{min_size} (the receptive field), "
            f"got {tuple(input_shape)}"
        )
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
    _check_bool(include_top, "include_top")
    _check_positive_int(classes, "classes")


def _bn(x, name, momentum=BN_MOMENTUM):
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=momentum, name=name)(x)


# --- the block: a ResNet bottleneck with valid padding and a cropped shortcut ----------


def bagnet_block(x, filters, kernel_size=1, strides=1, *, name="block"):
    """1x1 -> k x k (stride, valid padding) -> 1x1 to 4*filters, plus the shortcut.

    The shortcut is a strided 1x1 conv + BN when the stride or the channels change,
    else the identity; either way it keeps only the top-left part that the main path
    covers, because the valid k x k conv makes the main path smaller.
    """
    _check_positive_int(filters, "filters")
    _check_positive_int(kernel_size, "kernel_size")
    _check_positive_int(strides, "strides")
    _check_channels_last()
    if None in x.shape[1:3]:
        raise ValueError("x must have a static height and width (the shortcut is cropped to fit), "
                         f"got {tuple(x.shape[1:3])}")
    if min(x.shape[1:3]) < kernel_size:
        raise ValueError(f"kernel_size {kernel_size} is larger than the input map {tuple(x.shape[1:3])}")
    # The main path first, then the shortcut: the reference state_dict's order.
    y = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_1_conv")(x)
    y = layers.Activation("relu", name=f"{name}_1_relu")(_bn(y, f"{name}_1_bn"))
    y = layers.Conv2D(filters, kernel_size, strides=strides, use_bias=False, name=f"{name}_2_conv")(y)
    y = layers.Activation("relu", name=f"{name}_2_relu")(_bn(y, f"{name}_2_bn"))
    y = layers.Conv2D(4 * filters, 1, use_bias=False, name=f"{name}_3_conv")(y)
    y = _bn(y, f"{name}_3_bn")
    # Crop first, to the pixels the main path covers: a strided 1x1 conv reads only the
    # pixels its stride lands on, so this equals conv-then-crop (and it sidesteps a
    # oneDNN crash of TensorFlow 2.21 on a strided 1x1 conv over a 62x62 map).
    extra_h, extra_w = (x.shape[i] - ((y.shape[i] - 1) * strides + 1) for i in (1, 2))
    shortcut = x
    if extra_h or extra_w:
        shortcut = layers.Cropping2D(((0, extra_h), (0, extra_w)), name=f"{name}_0_crop")(shortcut)
    if strides != 1 or x.shape[-1] != 4 * filters:
        shortcut = layers.Conv2D(4 * filters, 1, strides=strides, use_bias=False, name=f"{name}_0_conv")(shortcut)
        shortcut = _bn(shortcut, f"{name}_0_bn")
    x = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(x)


# --- the network ------------------------------------------------------------------------


def _kernel_sizes(kernel3, depths):
    """The reference rule: block i of a stage uses a 3x3 when i < kernel3[stage]."""
    return [[3 if i < k3 else 1 for i in range(depth)] for k3, depth in zip(kernel3, depths)]


def receptive_field(kernel3, depths=(3, 4, 6, 3), strides=(2, 2, 2, 1)):
    """Side of the input patch one output location sees (also the smallest input):
    3 from the stem, plus 2 * (the stride so far) for every 3x3."""
    _check_four(kernel3, "kernel3", 0)
    _check_four(depths, "depths", 1)
    _check_four(strides, "strides", 1)
    field, jump = 3, 1
    for sizes, stride in zip(_kernel_sizes(kernel3, depths), strides):
        for i, size in enumerate(sizes):
            field += (size - 1) * jump
            if i == 0:
                jump *= stride
    return field


def bagnet(
    kernel3=(1, 1, 1, 1),
    depths=(3, 4, 6, 3),
    strides=(2, 2, 2, 1),
    width=64,
    input_shape=(224, 224, 3),
    include_top=True,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    patch_logits=False,
    name="bagnet",
):
    """A BagNet: ``kernel3[s]`` leading blocks of stage s use a 3x3, all else is 1x1.

    ``width`` is the first stage's bottleneck filters (64 in the paper). With
    ``patch_logits=True`` the classifier runs at every location of the last feature
    map instead of after the average pool: the output is the (rows, cols, classes)
    map of per-patch logits, from a layer named ``patch_logits`` whose weights have
    the same shapes as the pooled model's ``predictions`` layer.
    """
    field = receptive_field(kernel3, depths, strides)
    for depth, k3 in zip(depths, kernel3):
        if k3 > depth:
            raise ValueError(f"kernel3 must not exceed the blocks per stage {tuple(depths)}, got {tuple(kernel3)}")
    _check_positive_int(width, "width")
    _check_bool(patch_logits, "patch_logits")
    _check_head(input_shape, include_top, pooling, classes, field)
    _check_activation(classifier_activation, "classifier_activation")
    if patch_logits and not include_top:
        raise ValueError("patch_logits=True needs include_top=True (it is a classifier)")

    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = layers.Conv2D(width, 1, use_bias=False, name="conv1_1_conv")(inputs)
    x = layers.Conv2D(width, 3, use_bias=False, name="conv1_2_conv")(x)
    x = _bn(x, "conv1_bn", momentum=STEM_BN_MOMENTUM)
    x = layers.Activation("relu", name="conv1_relu")(x)

    for stage, (sizes, stride) in enumerate(zip(_kernel_sizes(kernel3, depths), strides)):
        for i, size in enumerate(sizes):
            x = bagnet_block(x, width * 2**stage, size, stride if i == 0 else 1,
                             name=f"conv{stage + 2}_block{i + 1}")

    if include_top and patch_logits:  # the reference's avg_pool=False: logits per location
        outputs = layers.Dense(classes, name=PATCH_LOGITS)(x)
    elif include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        outputs = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        outputs = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        outputs = layers.GlobalMaxPooling2D(name="max_pool")(x)
    else:
        outputs = x
    return keras.Model(inputs, outputs, name=name)


def _builder(kernel3, name):
    def build(input_shape=(224, 224, 3), include_top=True, pooling=None, classes=1000,
              classifier_activation="softmax", width=64, patch_logits=False):
        return bagnet(kernel3, (3, 4, 6, 3), (2, 2, 2, 1), width, input_shape, include_top,
                      pooling, classes, classifier_activation, patch_logits, name)

    build.__name__ = name
    build.__doc__ = (
        f"{name}: receptive field {receptive_field(kernel3)} px, kernel3={list(kernel3)}, "
        "the reference code's layout."
    )
    return build


bagnet9 = _builder((1, 1, 0, 0), "bagnet9")
bagnet17 = _builder((1, 1, 1, 0), "bagnet17")
bagnet33 = _builder((1, 1, 1, 1), "bagnet33")
