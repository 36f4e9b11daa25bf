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
17x17. `width` scales every channel count, `blocks` sets how many modules each grid
gets, and `stem="low_res"` is the paper's network for low-resolution input (section 9).
"""

import keras
from keras import layers

STEMS = ("imagenet", "low_res")
MIN_SIZES = {"imagenet": 75, "low_res": 21}  # smaller inputs leave the 8x8 grid no pixel
AUX_LOSS_WEIGHTS = (1.0, 0.4)  # main head, auxiliary head (the TF-slim training code)


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


def _conv_bn(x, filters, kernel, strides=1, padding="same", *, name):
    """Conv (no bias) -> BatchNorm (no scale: a ReLU follows) -> ReLU, as keras's conv2d_bn."""
    x = layers.Conv2D(int(filters), kernel, strides=strides, padding=padding, use_bias=False, name=name)(x)
    x = layers.BatchNormalization(scale=False, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def _avg_pool_proj(x, filters, name):
    x = layers.AveragePooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    return _conv_bn(x, filters, 1, name=f"{name}_pool_proj")


# --- the 35x35 grid: figure 5, a 5x5 becomes two 3x3 -------------------------------------


def inception_a(x, filters_1x1=64, filters_5x5_reduce=48, filters_5x5=64, filters_3x3_reduce=64,
                filters_3x3=96, pool_proj=32, *, name=None):
    """Figure 5: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 (the factorized 5x5) | avg-pool -> 1x1."""
    name = name or _unique("inception_a")
    branch_1x1 = _conv_bn(x, filters_1x1, 1, name=f"{name}_1x1")
    branch_5x5 = _conv_bn(x, filters_5x5_reduce, 1, name=f"{name}_5x5_reduce")
    branch_5x5 = _conv_bn(branch_5x5, filters_5x5, 5, name=f"{name}_5x5")
    branch_3x3 = _conv_bn(x, filters_3x3_reduce, 1, name=f"{name}_3x3dbl_reduce")
    branch_3x3 = _conv_bn(branch_3x3, filters_3x3, 3, name=f"{name}_3x3dbl_1")
    branch_3x3 = _conv_bn(branch_3x3, filters_3x3, 3, name=f"{name}_3x3dbl_2")
    branch_pool = _avg_pool_proj(x, pool_proj, name)
    return layers.Concatenate(name=name)([branch_1x1, branch_5x5, branch_3x3, branch_pool])


def reduction_a(x, filters_3x3=384, filters_3x3dbl_reduce=64, filters_3x3dbl=96, *, name=None):
    """35x35 -> 17x17: stride-2 3x3 | 1x1 -> 3x3 -> stride-2 3x3 | stride-2 max-pool."""
    _check(min(d or 3 for d in x.shape[1:3]) >= 3, "x", "at least 3x3 for a grid reduction", x.shape)
    name = name or _unique("reduction_a")
    branch_3x3 = _conv_bn(x, filters_3x3, 3, strides=2, padding="valid", name=f"{name}_3x3")
    branch_dbl = _conv_bn(x, filters_3x3dbl_reduce, 1, name=f"{name}_3x3dbl_reduce")
    branch_dbl = _conv_bn(branch_dbl, filters_3x3dbl, 3, name=f"{name}_3x3dbl_1")
    branch_dbl = _conv_bn(branch_dbl, filters_3x3dbl, 3, strides=2, padding="valid", name=f"{name}_3x3dbl_2")
    branch_pool = layers.MaxPooling2D(3, strides=2, name=f"{name}_pool")(x)
    return layers.Concatenate(name=name)([branch_3x3, branch_dbl, branch_pool])


# --- the 17x17 grid: figure 6, n x n becomes 1 x n then n x 1 ----------------------------


def inception_b(x, filters_1x1=192, filters_7x7_reduce=128, filters_7x7=192, pool_proj=192, n=7, *,
                name=None):
    """Figure 6: 1x1 | 1x1 -> 1xn -> nx1 | 1x1 -> (nx1 -> 1xn) x 2 | avg-pool -> 1x1."""
    name = name or _unique("inception_b")
    c, n = filters_7x7_reduce, int(n)
    branch_1x1 = _conv_bn(x, filters_1x1, 1, name=f"{name}_1x1")
    branch_7x7 = _conv_bn(x, c, 1, name=f"{name}_7x7_reduce")
    branch_7x7 = _conv_bn(branch_7x7, c, (1, n), name=f"{name}_7x7_1xn")
    branch_7x7 = _conv_bn(branch_7x7, filters_7x7, (n, 1), name=f"{name}_7x7_nx1")
    branch_dbl = _conv_bn(x, c, 1, name=f"{name}_7x7dbl_reduce")
    branch_dbl = _conv_bn(branch_dbl, c, (n, 1), name=f"{name}_7x7dbl_nx1_1")
    branch_dbl = _conv_bn(branch_dbl, c, (1, n), name=f"{name}_7x7dbl_1xn_1")
    branch_dbl = _conv_bn(branch_dbl, c, (n, 1), name=f"{name}_7x7dbl_nx1_2")
    branch_dbl = _conv_bn(branch_dbl, filters_7x7, (1, n), name=f"{name}_7x7dbl_1xn_2")
    branch_pool = _avg_pool_proj(x, pool_proj, name)
    return layers.Concatenate(name=name)([branch_1x1, branch_7x7, branch_dbl, branch_pool])


def reduction_b(x, filters_3x3_reduce=192, filters_3x3=320, filters_7x7=192, n=7, *, name=None):
    """17x17 -> 8x8: 1x1 -> stride-2 3x3 | 1x1 -> 1xn -> nx1 -> stride-2 3x3 | max-pool."""
    _check(min(d or 3 for d in x.shape[1:3]) >= 3, "x", "at least 3x3 for a grid reduction", x.shape)
    name, n = name or _unique("reduction_b"), int(n)
    branch_3x3 = _conv_bn(x, filters_3x3_reduce, 1, name=f"{name}_3x3_reduce")
    branch_3x3 = _conv_bn(branch_3x3, filters_3x3, 3, strides=2, padding="valid", name=f"{name}_3x3")
    branch_7x7 = _conv_bn(x, filters_7x7, 1, name=f"{name}_7x7x3_reduce")
    branch_7x7 = _conv_bn(branch_7x7, filters_7x7, (1, n), name=f"{name}_7x7x3_1xn")
    branch_7x7 = _conv_bn(branch_7x7, filters_7x7, (n, 1), name=f"{name}_7x7x3_nx1")
    branch_7x7 = _conv_bn(branch_7x7, filters_7x7, 3, strides=2, padding="valid", name=f"{name}_7x7x3_3x3")
    branch_pool = layers.MaxPooling2D(3, strides=2, name=f"{name}_pool")(x)
    return layers.Concatenate(name=name)([branch_3x3, branch_7x7, branch_pool])


# --- the 8x8 grid: figure 7, the expanded filter bank --------------------------------------


def _split_1x3_3x1(x, filters, name):
    left = _conv_bn(x, filters, (1, 3), name=f"{name}_1x3")
    right = _conv_bn(x, filters, (3, 1), name=f"{name}_3x1")
    return layers.Concatenate(name=f"{name}_concat")([left, right])


def inception_c(x, filters_1x1=320, filters_3x3=384, filters_3x3dbl_reduce=448, pool_proj=192, *,
                name=None):
    """Figure 7: 1x1 | 1x1 -> [1x3, 3x1] | 1x1 -> 3x3 -> [1x3, 3x1] | avg-pool -> 1x1."""
    name = name or _unique("inception_c")
    branch_1x1 = _conv_bn(x, filters_1x1, 1, name=f"{name}_1x1")
    branch_3x3 = _conv_bn(x, filters_3x3, 1, name=f"{name}_3x3_reduce")
    branch_3x3 = _split_1x3_3x1(branch_3x3, filters_3x3, f"{name}_3x3")
    branch_dbl = _conv_bn(x, filters_3x3dbl_reduce, 1, name=f"{name}_3x3dbl_reduce")
    branch_dbl = _conv_bn(branch_dbl, filters_3x3, 3, name=f"{name}_3x3dbl_3x3")
    branch_dbl = _split_1x3_3x1(branch_dbl, filters_3x3, f"{name}_3x3dbl")
    branch_pool = _avg_pool_proj(x, pool_proj, name)
    return layers.Concatenate(name=name)([branch_1x1, branch_3x3, branch_dbl, branch_pool])


# --- the auxiliary classifier and the whole network ----------------------------------------


def _aux_classifier(x, classes, classifier_activation, scale):
    """Paper, section 4 (BN-auxiliary): 5x5/3 avg-pool, 1x1 conv 128, 5x5 conv 768, FC.

    On the 17x17 grid the pool leaves 5x5 and the 5x5 conv leaves 1x1; on smaller
    grids both windows shrink to fit.
    """
    x = layers.AveragePooling2D(min(5, x.shape[1], x.shape[2]), strides=3, name="aux_pool")(x)
    x = _conv_bn(x, scale(128), 1, name="aux_proj")
    x = _conv_bn(x, scale(768), (x.shape[1], x.shape[2]), padding="valid", name="aux_conv")
    x = layers.GlobalAveragePooling2D(name="aux_flatten")(x)
    return layers.Dense(int(classes), activation=classifier_activation, dtype="float32", name="aux_predictions")(x)


def inception_v3(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                 classes=1000, classifier_activation="softmax", name="inception_v3", *,
                 width=1.0, blocks=(3, 4, 2), aux_classifiers=False, stem="imagenet"):
    """Inception v3 (Szegedy et al. 2016); keras.applications InceptionV3 at the defaults (23.9 M).

    ``blocks`` counts the figure-5, figure-6 and figure-7 modules (keras: 3, 4, 2).
    ``aux_classifiers=True`` adds the auxiliary head on the last 17x17 module (mixed7):
    the model then has two outputs, main head first; train it with
    ``loss_weights=AUX_LOSS_WEIGHTS`` and predict with ``inference_model(model)``.
    ``stem="low_res"`` is the paper's section 9 network for low-resolution input: the
    first conv has stride 1 and the max-pool after it is gone: a 79x79 input (the default
    size then) reaches a 36x36 grid, and costs almost what a 299x299 one does (Table 2).
    """
    _check(stem in STEMS, "stem", f"one of {STEMS}", stem)
    _check(len(blocks) == 3 and min(blocks) >= 1, "blocks", "3 module counts >= 1 (35, 17, 8 grids)", blocks)
    _check(width > 0, "width", "> 0", width)
    _check(include_top or not aux_classifiers, "aux_classifiers", "False without a top", aux_classifiers)
    inputs = _inputs(input_tensor, input_shape, include_top, 299 if stem == "imagenet" else 79, MIN_SIZES[stem])
    _check(not aux_classifiers or None not in inputs.shape[1:3], "input_shape",
           "a fixed size with aux_classifiers (its 5x5 conv needs one)", input_shape)

    def scale(channels):
        return max(1, round(channels * width))

    # Stem: 299 -> 35 (keras/TF-slim layout). low_res: stride 1 and no first max-pool.
    x = _conv_bn(inputs, scale(32), 3, strides=2 if stem == "imagenet" else 1, padding="valid", name="conv1")
    x = _conv_bn(x, scale(32), 3, padding="valid", name="conv2")
    x = _conv_bn(x, scale(64), 3, name="conv3")
    if stem == "imagenet":
        x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = _conv_bn(x, scale(80), 1, padding="valid", name="conv4")
    x = _conv_bn(x, scale(192), 3, padding="valid", name="conv5")
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)

    # Modules are numbered in order: with blocks=(3, 4, 2), mixed0 to mixed10 as in keras.
    index = iter(range(sum(blocks) + 2))
    # 35x35: figure-5 modules (pool proj 32 in the first, then 64), then the reduction.
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

    x = _top(x, include_top, pooling, classes, classifier_activation)
    if aux_classifiers:
        x = [x, _aux_classifier(last_17x17, classes, classifier_activation, scale)]
    twin = "InceptionV3" if (width, tuple(blocks), aux_classifiers, stem) == (1, (3, 4, 2), False, "imagenet") else None
    return _model(inputs, x, weights, name, twin, include_top=include_top, input_shape=tuple(inputs.shape[1:]),
                  pooling=pooling, classes=classes, classifier_activation=classifier_activation)


def inference_model(model):
    """The one-output model (input -> ``predictions``) that shares ``model``'s weights."""
    return keras.Model(model.inputs, model.get_layer("predictions").output, name=f"{model.name}_inference")


def feature_stages(model):
    """The names of `model`'s stage outputs, shallow to deep: the layers a feature pyramid,
    a U-Net encoder or Grad-CAM taps. The stem's conv3 and conv5, the module before each
    grid reduction and the last module: at the defaults conv3_relu, conv5_relu, mixed2,
    mixed7 and mixed10 (the 147, 71, 35, 17 and 8 pixel grids of a 299 input)."""
    mixed = [layer.name for layer in model.layers if layer.name[:5] == "mixed" and layer.name[5:].isdigit()]
    # A reduction module's pool is a stride-2 max-pool; the other modules' pool is an average.
    before = [mixed[i - 1] for i, module in enumerate(mixed)
              if isinstance(model.get_layer(f"{module}_pool"), layers.MaxPooling2D)]
    return ["conv3_relu", "conv5_relu", *before, mixed[-1]]


def preprocess_input(x, data_format=None):
    """keras.applications.inception_v3.preprocess_input: scale pixels from [0, 255] to
    [-1, 1] ("tf" mode)."""
    return keras.applications.inception_v3.preprocess_input(x, data_format=data_format)


# --- cookbook metadata: plain data the cookbook reads; a copied file can delete it ---

FAMILY = "Inception networks"
PAPERS = (
    ("Szegedy, Vanhoucke, Ioffe, Shlens, Wojna 2016. Rethinking the Inception "
     "Architecture for Computer Vision. CVPR."),
)
TASK = "classification"
DEFAULT_BUILDER = "inception_v3"
BUILDERS = {"inception_v3": {"twin": "InceptionV3", "params": 23_851_784}}
DEMO = {
    "builder": "inception_v3",
    "kwargs": {"input_shape": (64, 64, 1), "classes": 10, "width": 0.125, "blocks": (1, 1, 1),
               "stem": "low_res"},
    "epochs": 3,
    "learning_rate": 5e-3,
}
