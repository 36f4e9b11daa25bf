"""Inception-ResNet-v2: Inception modules with scaled residual connections.

Paper: Szegedy, Ioffe, Vanhoucke and Alemi, "Inception-v4, Inception-ResNet and the
Impact of Residual Connections on Learning" (AAAI 2017, arXiv:1602.07261).

The paper asks whether Inception needs residual connections. Its hybrid, Inception-
ResNet, makes every module a residual block (figure 20): the module's branches are
concatenated, a *linear* 1x1 conv (no ReLU) projects them back to the input's channel
count, and the result is added to the input before the ReLU: y = relu(x + s * F(x)).
The 1x1 projection is what lets a concatenation of 128 channels (figure 16) join a
320-channel trunk. With more than about 1000 filters the residual networks "died" early
in training (only zeros came out before the pooling layer); scaling the residual by
s = 0.1 to 0.3 before the add kept them stable, where a lower learning rate or an extra
BatchNorm did not. keras/TF-slim use s = 0.17, 0.1 and 0.2 on the 35x35, 17x17 and 8x8 grids. Between
grids, reduction modules run stride-2 conv towers beside a stride-2 max-pool and
concatenate them, so the grid halves as the channels grow (Reduction-A's filter counts
k, l, m, n are the paper's Table 1). Residuals mainly speed training up: Inception-
ResNet-v2 trains clearly faster than the pure Inception-v4 (recipes/inception_v4.py), at
a similar cost, and ends slightly better: 19.9% against 20.0% top-1 single-crop error.

`inception_resnet_v2()` is layer for layer keras.applications InceptionResNetV2 (same
weights in the same order, its layer names). Like the TF-slim code it follows, that
model is not the paper's figure 15: its stem is Inception v3's plus one v3 module
(mixed_5b, 35x35x320), it has 10, 20 and 10 residual blocks rather than 5, 10, 5, and
its last block is unscaled and has no ReLU. `width` scales every channel count,
`blocks` sets how many residual blocks each grid gets, and `stem="low_res"` keeps
resolution for small inputs: the max-pool after conv3 is gone, so the grid shrinks 4x
rather than 8x before the residual blocks (a 64x64 input reaches a 13x13 grid).
"""

import re

import keras
from keras import layers

# Table 1: Reduction-A's filter counts (k, l, m, n) per network.
REDUCTION_A = {"inception_v4": (192, 224, 256, 384), "inception_resnet_v1": (192, 192, 256, 384),
               "inception_resnet_v2": (256, 256, 384, 384)}
RESIDUAL_SCALES = (0.17, 0.1, 0.2)  # TF-slim's scale on the 35, 17 and 8 grids (paper: 0.1 to 0.3)
STEMS = ("imagenet", "low_res")
MIN_SIZES = {"imagenet": 75, "low_res": 39}  # smaller inputs leave the 8x8 grid no pixel
STEM_MIN_SIZES = {False: 27, True: 15}  # by low_res: the smallest input the stem's valid convs and pools take


def _check(ok, argument, expected, got):
    """The one argument check: what Keras would not say clearly, naming the argument."""
    if not ok:
        raise ValueError(f"{argument} must be {expected}, got {got!r}")


def _unique(prefix):
    """A fresh layer-name prefix, so a block called twice without a name does not collide."""
    return f"{prefix}{keras.backend.get_uid(prefix)}"


def _scaler(width):
    _check(0 < width < float("inf"), "width", "a finite number > 0", width)
    return lambda filters: max(1, round(filters * width))


def _inputs(input_tensor, input_shape, include_top, default_size, min_size):
    """keras.applications' input rules: (size, size, 3) with a top, (None, None, 3) without."""
    if input_shape is None and input_tensor is not None:
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None:
        input_shape = (default_size, default_size, 3) if include_top else (None, None, 3)
    input_shape = tuple(None if d is None else int(d) for d in input_shape)
    fits = len(input_shape) == 3 and all(d is None or d >= m for d, m in zip(input_shape, (min_size, min_size, 1)))
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
        return layers.Dense(int(classes), activation=classifier_activation, dtype="float32", name="predictions")(x)
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


def _conv_bn(x, filters, kernel, strides=1, padding="same", *, name):
    """Conv (no bias) -> BatchNorm (no scale: a ReLU follows) -> ReLU, as keras's conv2d_bn."""
    x = layers.Conv2D(int(filters), kernel, strides=strides, padding=padding, use_bias=False, name=name)(x)
    x = layers.BatchNormalization(scale=False, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_ac")(x)


def _tower(x, name, *convs):
    """A chain of conv-BN-ReLUs; each conv is (name suffix, filters, kernel[, strides, padding])."""
    for suffix, *conv in convs:
        x = _conv_bn(x, *conv, name=f"{name}_{suffix}")
    return x


def _pool_branch(x, filters, name):
    x = layers.AveragePooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    return _conv_bn(x, filters, 1, name=f"{name}_pool_proj")


# --- the stem: 299x299 -> 35x35x320 ----------------------------------------------------------


def slim_stem(x, width=1.0, low_res=False, *, name=None):
    """The keras/TF-slim Inception-ResNet-v2 stem: Inception v3's stem (3x3/2 32, 3x3 32, 3x3 64,
    max-pool, 1x1 80, 3x3 192, max-pool), then a v3 module (mixed_5b): 35x35x320.
    ``low_res``: no max-pool after conv3, for small inputs."""
    name, s = name or _unique("slim_stem"), _scaler(width)
    least = STEM_MIN_SIZES[bool(low_res)]
    _check(all(d is None or d >= least for d in x.shape[1:3]), "x", f"at least {least}x{least}", x.shape)
    x = _tower(x, name, ("conv1", s(32), 3, 2, "valid"), ("conv2", s(32), 3, 1, "valid"),
               ("conv3", s(64), 3))
    if not low_res:
        x = layers.MaxPooling2D(3, strides=2, name=f"{name}_pool1")(x)
    x = _tower(x, name, ("conv4", s(80), 1, 1, "valid"), ("conv5", s(192), 3, 1, "valid"))
    x = layers.MaxPooling2D(3, strides=2, name=f"{name}_pool2")(x)
    return layers.Concatenate(name=name)([
        _tower(x, name, ("1x1", s(96), 1)),
        _tower(x, name, ("5x5_reduce", s(48), 1), ("5x5", s(64), 5)),
        _tower(x, name, ("3x3dbl_reduce", s(64), 1), ("3x3dbl_1", s(96), 3), ("3x3dbl_2", s(96), 3)),
        _pool_branch(x, s(64), name)])


# --- Inception-ResNet-v2's residual blocks (figures 16, 17, 19, 20) ----------------------------


def _scaled_residual(x, branches, scale, activation, name):
    """Figure 20: concatenate, project back to x's channels with a linear 1x1 conv (with bias,
    no BN), scale, add to x, then the activation (None: the add's output)."""
    _check(0 < scale < float("inf"), "scale", "a finite number > 0", scale)
    mixed = layers.Concatenate(name=f"{name}_mixed")(branches)
    up = layers.Conv2D(x.shape[-1], 1, name=f"{name}_conv")(mixed)
    # Rescaling has no weights, so this is keras's x + scale * up (its CustomScaleLayer).
    x = layers.Add(name=f"{name}_add")([x, layers.Rescaling(scale, name=f"{name}_scale")(up)])
    return x if activation is None else layers.Activation(activation, name=f"{name}_ac")(x)


def inception_resnet_a(x, scale=0.17, width=1.0, *, activation="relu", name=None):
    """Figure 16 (keras block35): 1x1 32 | 1x1 32 -> 3x3 32 | 1x1 32 -> 3x3 48 -> 3x3 64, added to x."""
    name, s = name or _unique("inception_resnet_a"), _scaler(width)
    return _scaled_residual(x, [
        _tower(x, name, ("1x1", s(32), 1)),
        _tower(x, name, ("3x3_reduce", s(32), 1), ("3x3", s(32), 3)),
        _tower(x, name, ("3x3dbl_reduce", s(32), 1), ("3x3dbl_1", s(48), 3), ("3x3dbl_2", s(64), 3))],
        scale, activation, name)


def inception_resnet_b(x, scale=0.1, width=1.0, *, activation="relu", name=None):
    """Figure 17 (keras block17): 1x1 192 | 1x1 128 -> 1x7 160 -> 7x1 192, added to x."""
    name, s = name or _unique("inception_resnet_b"), _scaler(width)
    return _scaled_residual(x, [
        _tower(x, name, ("1x1", s(192), 1)),
        _tower(x, name, ("7x7_reduce", s(128), 1), ("7x7_1x7", s(160), (1, 7)), ("7x7_7x1", s(192), (7, 1)))],
        scale, activation, name)


def inception_resnet_c(x, scale=0.2, width=1.0, *, activation="relu", name=None):
    """Figure 19 (keras block8): 1x1 192 | 1x1 192 -> 1x3 224 -> 3x1 256, added to x."""
    name, s = name or _unique("inception_resnet_c"), _scaler(width)
    return _scaled_residual(x, [
        _tower(x, name, ("1x1", s(192), 1)),
        _tower(x, name, ("3x3_reduce", s(192), 1), ("3x3_1x3", s(224), (1, 3)), ("3x3_3x1", s(256), (3, 1)))],
        scale, activation, name)


# --- the grid reductions (figures 7 and 18) ---------------------------------------------------


def _reduction(x, name, *towers):
    """Stride-2 conv towers beside a 3x3/2 max-pool, concatenated: the grid halves, the channels grow."""
    _check(min(d or 3 for d in x.shape[1:3]) >= 3, "x", "at least 3x3 for a grid reduction", x.shape)
    branches = [_tower(x, name, *tower) for tower in towers]
    return layers.Concatenate(name=name)([*branches, layers.MaxPooling2D(3, 2, name=f"{name}_pool")(x)])


def reduction_a(x, filters=REDUCTION_A["inception_resnet_v2"], *, name=None):
    """Figure 7, 35x35 -> 17x17: 3x3/2 n | 1x1 k -> 3x3 l -> 3x3/2 m | 3x3/2 max-pool.
    ``filters`` is Table 1's (k, l, m, n) for the network."""
    _check(len(filters) == 4 and min(filters) > 0, "filters", "(k, l, m, n): four counts > 0", filters)
    k, l, m, n = filters
    return _reduction(x, name or _unique("reduction_a"), [("3x3", n, 3, 2, "valid")],
                      [("3x3dbl_reduce", k, 1), ("3x3dbl_1", l, 3), ("3x3dbl_2", m, 3, 2, "valid")])


def reduction_b(x, width=1.0, *, name=None):
    """Figure 18, 17x17 -> 8x8 (keras's mixed_7a): 1x1 256 -> 3x3/2 384
    | 1x1 256 -> 3x3/2 288 | 1x1 256 -> 3x3 288 -> 3x3/2 320 | 3x3/2 max-pool."""
    s = _scaler(width)
    return _reduction(x, name or _unique("reduction_b"),
                      [("3x3a_reduce", s(256), 1), ("3x3a", s(384), 3, 2, "valid")],
                      [("3x3b_reduce", s(256), 1), ("3x3b", s(288), 3, 2, "valid")],
                      [("3x3dbl_reduce", s(256), 1), ("3x3dbl_1", s(288), 3), ("3x3dbl_2", s(320), 3, 2, "valid")])


# --- the networks -------------------------------------------------------------------------------


def inception_resnet_v2(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                        classes=1000, classifier_activation="softmax", name="inception_resnet_v2", *,
                        width=1.0, blocks=(10, 20, 10), stem="imagenet"):
    """Inception-ResNet-v2; keras.applications InceptionResNetV2 at the defaults (55.9 M).

    ``blocks`` counts the residual blocks per grid (keras block35, block17, block8); the
    last block8 is unscaled and has no ReLU, as in keras. ``stem="low_res"``: no max-pool
    after conv3, for small inputs (151x151 by default, which reaches the 35x35 grid)."""
    _check(stem in STEMS, "stem", f"one of {STEMS}", stem)
    _check(len(blocks) == 3 and min(blocks) >= 1, "blocks", "3 block counts >= 1 (35, 17, 8 grids)", blocks)
    _check(width > 0, "width", "> 0", width)
    inputs = _inputs(input_tensor, input_shape, include_top, 299 if stem == "imagenet" else 151, MIN_SIZES[stem])
    s = _scaler(width)
    x = slim_stem(inputs, width, low_res=stem == "low_res", name="mixed_5b")
    for i in range(blocks[0]):
        x = inception_resnet_a(x, RESIDUAL_SCALES[0], width, name=f"block35_{i + 1}")
    x = reduction_a(x, tuple(s(f) for f in REDUCTION_A["inception_resnet_v2"]), name="mixed_6a")
    for i in range(blocks[1]):
        x = inception_resnet_b(x, RESIDUAL_SCALES[1], width, name=f"block17_{i + 1}")
    x = reduction_b(x, width, name="mixed_7a")
    for i in range(blocks[2]):
        last = i == blocks[2] - 1
        x = inception_resnet_c(x, 1.0 if last else RESIDUAL_SCALES[2], width, activation=None if last else "relu",
                               name=f"block8_{i + 1}")
    x = _conv_bn(x, s(1536), 1, name="conv_7b")
    x = _top(x, include_top, pooling, classes, classifier_activation)
    twin = "InceptionResNetV2" if (width, tuple(blocks), stem) == (1, (10, 20, 10), "imagenet") else None
    return _model(inputs, x, weights, name, twin, include_top=include_top, input_shape=tuple(inputs.shape[1:]),
                  pooling=pooling, classes=classes, classifier_activation=classifier_activation)


def feature_stages(model):
    """The names of `model`'s stage outputs, shallow to deep: the layers a feature pyramid,
    a U-Net encoder or Grad-CAM taps. The stem's conv3 and conv5, the last residual block
    on the 35 and 17 grids, and conv_7b: at the defaults mixed_5b_conv3_ac,
    mixed_5b_conv5_ac, block35_10_ac, block17_20_ac and conv_7b_ac (the 147, 71, 35, 17
    and 8 pixel grids of a 299 input)."""
    names = [layer.name for layer in model.layers]
    last_35 = [n for n in names if re.fullmatch(r"block35_\d+_ac", n)][-1]
    last_17 = [n for n in names if re.fullmatch(r"block17_\d+_ac", n)][-1]
    return ["mixed_5b_conv3_ac", "mixed_5b_conv5_ac", last_35, last_17, "conv_7b_ac"]


def preprocess_input(x, data_format=None):
    """keras.applications.inception_resnet_v2.preprocess_input: scale pixels from [0, 255]
    to [-1, 1] ("tf" mode)."""
    return keras.applications.inception_resnet_v2.preprocess_input(x, data_format=data_format)


# --- cookbook metadata: plain data the cookbook reads; a copied file can delete it ---

FAMILY = "Inception networks"
PAPERS = (
    ("Szegedy, Ioffe, Vanhoucke, Alemi 2017. Inception-v4, Inception-ResNet and the Impact "
     "of Residual Connections on Learning. AAAI."),
)
TASK = "classification"
DEFAULT_BUILDER = "inception_resnet_v2"
BUILDERS = {"inception_resnet_v2": {"twin": "InceptionResNetV2", "params": 55_873_736}}
DEMO = {
    "builder": "inception_resnet_v2",
    "kwargs": {"input_shape": (64, 64, 1), "classes": 10, "width": 0.25, "blocks": (1, 1, 1),
               "stem": "low_res"},
    "epochs": 3,
    "learning_rate": 5e-3,
    "gradcam_layer": "block35_1_ac",  # the 13x13 grid; block17_1_ac's is 6x6
}
