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

`resnext50_32x4d` is that network; `resnext` takes the paper's knobs: `blocks` per
stage, `cardinality` C, `bottleneck_width` d (each path's channels in the first stage,
so the grouped conv of stage s has C * d * 2**s), and `width`, a multiplier on the stem
and on every block's output (64 and 256 * 2**s filters); the bottleneck is set by C and
d alone. `split_paths=True` builds the paper's Fig. 3(b) form of the same function.
"""

import keras
from keras import layers

RESNEXT50 = (3, 4, 6, 3)  # blocks per stage of ResNeXt-50, the paper's Table 1
BN_EPSILON = 1e-5  # the authors' Torch default


def _check(ok, argument, expected, got):
    """The one argument check: what Keras would not say clearly, naming the argument."""
    if not ok:
        raise ValueError(f"{argument} must be {expected}, got {got!r}")


def _unique(prefix):
    """A fresh layer-name prefix, so a block called twice without a name does not collide."""
    return f"{prefix}{keras.backend.get_uid(prefix)}"


def _inputs(input_tensor, input_shape, include_top, default_size, min_size):
    """keras.applications' input rules: (size, size, 3) with a top, (None, None, 3) without."""
    if input_shape is None and input_tensor is not None:
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None:
        input_shape = (default_size, default_size, 3) if include_top else (None, None, 3)
    input_shape = tuple(None if d is None else int(d) for d in input_shape)
    least = (min_size, min_size, 1)  # per dimension; a None side is free
    fits = len(input_shape) == 3 and all(d is None or d >= m for d, m in zip(input_shape, least))
    _check(fits, "input_shape", f"(height, width, channels) of at least {min_size}x{min_size}x1", input_shape)
    if input_tensor is None:
        return keras.Input(shape=input_shape)
    if not keras.backend.is_keras_tensor(input_tensor):
        return keras.Input(tensor=input_tensor, shape=input_shape)
    return input_tensor


def _top(x, include_top, pooling, classes, classifier_activation):
    """keras.applications' head. The classifier runs in float32 under mixed precision."""
    _check(pooling in (None, "avg", "max"), "pooling", "None, 'avg' or 'max'", pooling)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        return layers.Dense(int(classes), activation=classifier_activation, dtype="float32",
                            name="predictions")(x)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def _model(inputs, outputs, weights, name, twin=None, **twin_kwargs):
    """The model, with weights: None, a weights file, or "imagenet" through the keras.applications twin."""
    model = keras.Model(keras.utils.get_source_inputs(inputs)[0], outputs, name=name)
    if weights == "imagenet":
        _check(twin is not None, "weights", "None or a weights file (this model has no ImageNet twin)", weights)
        model.set_weights(getattr(keras.applications, twin)(weights="imagenet", **twin_kwargs).get_weights())
    elif weights is not None:
        model.load_weights(weights)
    return model


def _conv_bn(x, filters, kernel, name, strides=1, groups=1, relu=True):
    """Conv (no bias) -> BN [-> ReLU]: the motif every ResNeXt layer repeats."""
    if kernel > 1:
        x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
    x = layers.Conv2D(int(filters), kernel, strides=strides, groups=groups, use_bias=False,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x) if relu else x


# --- the aggregated residual block ------------------------------------------------------


def resnext_block(x, filters, group_width, cardinality=32, strides=1, split_paths=False, *,
                  name=None):
    """1x1 to ``group_width`` -> grouped 3x3 (``cardinality`` paths) -> 1x1 to ``filters``.

    ``group_width`` is the paper's "width of group conv." (Table 2), C * d: each of the
    ``cardinality`` paths carries group_width / cardinality channels. The shortcut is a
    strided 1x1 conv + BN when the size or the channel count changes.
    ``split_paths=True`` builds the same function as the paper's Fig. 3(b): each path
    its own 1x1 and 3x3 convs, concatenated. It trains far faster on TensorFlow's CPU
    kernels, whose grouped-convolution gradient is about 20x slower than a dense one.
    """
    _check(cardinality > 0 and group_width % cardinality == 0, "cardinality",
           "a divisor of group_width", cardinality)
    name, strides = name or _unique("resnext_block"), int(strides)
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, f"{name}_0", strides=strides, relu=False)
    else:
        shortcut = x
    if split_paths:  # Fig. 3(b): per-path BN is the fused BN, channel by channel
        d = group_width // cardinality
        paths = [_conv_bn(_conv_bn(x, d, 1, f"{name}_1_path{p}"), d, 3, f"{name}_2_path{p}",
                          strides=strides) for p in range(cardinality)]
        x = layers.Concatenate(name=f"{name}_2_concat")(paths)
    else:
        x = _conv_bn(x, group_width, 1, f"{name}_1")
        x = _conv_bn(x, group_width, 3, f"{name}_2", strides=strides, groups=cardinality)
    x = _conv_bn(x, filters, 1, f"{name}_3", relu=False)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


# --- the networks --------------------------------------------------------------------------


def resnext(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
            classes=1000, classifier_activation="softmax", name="resnext", *, blocks=RESNEXT50,
            cardinality=32, bottleneck_width=4, width=1.0, split_paths=False):
    """A ResNeXt (Xie et al. 2017): ``blocks`` per stage, ``cardinality`` paths of
    ``bottleneck_width`` channels in the first stage, doubling with each stage.

    Stage s (0, 1, ...) outputs 256 * 2**s * width channels and its grouped conv has
    cardinality * bottleneck_width * 2**s; the stem has 64 * width filters.
    ``split_paths``: see :func:`resnext_block`.
    """
    cardinality, bottleneck_width = int(cardinality), int(bottleneck_width)
    _check(min(blocks, default=0) > 0, "blocks", "a non-empty tuple of positive counts", blocks)
    # The stem, the max-pool and every stage after the first halve the grid.
    inputs = _inputs(input_tensor, input_shape, include_top, 224, 2 ** (len(blocks) + 1))
    x = _conv_bn(inputs, 64 * width, 7, "conv1", strides=2)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, count in enumerate(blocks):
        filters = int(256 * 2**stage * width)
        group_width = cardinality * bottleneck_width * 2**stage  # C * d, doubling with each stage
        for i in range(1, int(count) + 1):  # the stride is on the first block's grouped 3x3
            x = resnext_block(x, filters, group_width, cardinality,
                              strides=2 if i == 1 and stage > 0 else 1, split_paths=split_paths,
                              name=f"conv{stage + 2}_block{i}")
    outputs = _top(x, include_top, pooling, classes, classifier_activation)
    return _model(inputs, outputs, weights, name)


def resnext50_32x4d(include_top=True, weights=None, input_tensor=None, input_shape=None,
                    pooling=None, classes=1000, classifier_activation="softmax",
                    name="resnext50_32x4d", *, width=1.0, split_paths=False):
    """ResNeXt-50 (32x4d) of the paper's Table 1: 25.0 M parameters, 4.2 G multiply-adds."""
    return resnext(include_top, weights, input_tensor, input_shape, pooling, classes,
                   classifier_activation, name, blocks=RESNEXT50, cardinality=32,
                   bottleneck_width=4, width=width, split_paths=split_paths)


def feature_stages(model):
    """The names of `model`'s stage outputs, shallow to deep: the layers a feature pyramid,
    a U-Net encoder or Grad-CAM taps. The stem's ReLU and the last block of each stage:
    for ResNeXt-50 conv1_relu, conv2_block3_out, conv3_block4_out, conv4_block6_out,
    conv5_block3_out."""
    last = {}  # stage -> its last block's output, in the order the stages come
    for layer in model.layers:
        if layer.name.startswith("conv") and layer.name.endswith("_out"):
            last[layer.name.split("_")[0]] = layer.name
    return ["conv1_relu", *last.values()]


# --- cookbook metadata: plain data the cookbook reads; a copied file can delete it ---

FAMILY = "Residual networks"
PAPERS = (
    "Xie, Girshick, Dollar, Tu, He 2017. Aggregated Residual Transformations for Deep Neural Networks. CVPR.",
)
TASK = "classification"
DEFAULT_BUILDER = "resnext50_32x4d"
BUILDERS = {"resnext50_32x4d": {"params": 25_097_128}, "resnext": {}}
DEMO = {
    "builder": "resnext",
    "kwargs": {"input_shape": (64, 64, 1), "classes": 10, "blocks": (1, 1, 1, 1), "cardinality": 4,
               "bottleneck_width": 8, "width": 0.25, "split_paths": True},
    "epochs": 10,
    "learning_rate": 5e-3,
}
