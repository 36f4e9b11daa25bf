"""Inception-v4: a uniform, pure Inception network.

Paper: Szegedy, Ioffe, Vanhoucke and Alemi, "Inception-v4, Inception-ResNet and the
Impact of Residual Connections on Learning" (AAAI 2017, arXiv:1602.07261).

Inception-v4 is the paper's answer without residual connections: Inception v3's ideas
made uniform, one module design per grid, with the whole network in one figure
(figure 9). The stem (figure 3) takes a 299x299x3 image to 35x35x384 by three
concatenations of a conv branch beside a max-pool or another conv branch (so the grid
shrinks without a pooling bottleneck). Then 4 Inception-A modules at 35x35x384
(figure 4: the factorized 5x5 as two 3x3s), Reduction-A to 17x17x1024 (figure 7, with
Table 1's k, l, m, n = 192, 224, 256, 384: 384 + 256 + the 384 pooled channels),
7 Inception-B modules at 17x17x1024 (figure 5: 7x7 factorized as 1x7 and 7x1),
Reduction-B to 8x8x1536 (figure 8: 192 + 320 + 1024 pooled), 3 Inception-C modules at
8x8x1536 (figure 6: 1x3 and 3x1 side by side), average pooling, dropout with keep
probability 0.8 and the softmax: 42.7 M parameters. Every conv is followed by BatchNorm
and ReLU. It reaches 20.0% top-1 / 5.0% top-5 single-crop error, about what the residual
Inception-ResNet-v2 (recipes/inception_resnet.py) reaches, but trains more slowly.

keras.applications has no Inception-v4, so `inception_v4()` follows the paper's figures.
TF-slim's inception_v4 has the same layers (it swaps a few 1xn / nx1 pairs, which
changes no count); its module names, mixed_5a to mixed_7d, name ours. `width` scales
every channel count, `blocks` sets how many modules each grid gets (4, 7, 3), `dropout`
is the rate before the classifier (0.2), and `stem="low_res"` keeps resolution for small
inputs: mixed_3a has stride 1, so a 64x64 input reaches a 12x12 grid.
"""

import keras
from keras import layers

# Table 1: Reduction-A's filter counts (k, l, m, n) per network.
REDUCTION_A = {"inception_v4": (192, 224, 256, 384), "inception_resnet_v1": (192, 192, 256, 384),
               "inception_resnet_v2": (256, 256, 384, 384)}
MODULES = (4, 7, 3)  # figure 9: how many Inception-A, -B and -C modules
STEMS = ("imagenet", "low_res")
MIN_SIZES = {"imagenet": 75, "low_res": 43}  # smaller inputs leave the 8x8 grid no pixel
STEM_MIN_SIZES = {False: 27, True: 19}  # by low_res: the smallest input the stem's valid convs and pools take


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


def _top(x, include_top, pooling, classes, classifier_activation, dropout):
    """keras.applications' head. The classifier runs in float32 under mixed precision."""
    _check(pooling in (None, "avg", "max"), "pooling", "None, 'avg' or 'max'", pooling)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(dropout, name="dropout")(x) if dropout else x
        return layers.Dense(int(classes), activation=classifier_activation, dtype="float32", name="predictions")(x)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


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


# --- the stem: 299x299 -> 35x35x384 ----------------------------------------------------------


def inception_stem(x, width=1.0, low_res=False, *, name=None):
    """Figure 3, 299x299 -> 35x35x384 (also the paper's Inception-ResNet-v2 stem). Three times
    a conv branch runs beside a max-pool or another conv branch, and the two are
    concatenated (TF-slim's mixed_3a, 4a and 5a). ``low_res``: mixed_3a has stride 1, for
    small inputs."""
    name, s, strides = name or _unique("stem"), _scaler(width), 1 if low_res else 2
    least = STEM_MIN_SIZES[bool(low_res)]
    _check(all(d is None or d >= least for d in x.shape[1:3]), "x", f"at least {least}x{least}", x.shape)
    x = _tower(x, name, ("conv1", s(32), 3, 2, "valid"), ("conv2", s(32), 3, 1, "valid"), ("conv3", s(64), 3))
    pool = layers.MaxPooling2D(3, strides=strides, name=f"{name}_3a_pool")(x)
    x = layers.Concatenate(name=f"{name}_3a")([pool, _tower(x, name, ("3a_3x3", s(96), 3, strides, "valid"))])
    left = _tower(x, name, ("4a_3x3_reduce", s(64), 1), ("4a_3x3", s(96), 3, 1, "valid"))
    right = _tower(x, name, ("4a_7x7_reduce", s(64), 1), ("4a_7x1", s(64), (7, 1)), ("4a_1x7", s(64), (1, 7)),
                   ("4a_7x7_3x3", s(96), 3, 1, "valid"))
    x = layers.Concatenate(name=f"{name}_4a")([left, right])
    conv = _tower(x, name, ("5a_3x3", s(192), 3, 2, "valid"))
    return layers.Concatenate(name=name)([conv, layers.MaxPooling2D(3, strides=2, name=f"{name}_5a_pool")(x)])


# --- the modules: figures 4 (35x35), 5 (17x17) and 6 (8x8) ------------------------------------


def inception_a(x, width=1.0, *, name=None):
    """Figure 4, 35x35x384: 1x1 96 | 1x1 64 -> 3x3 96 | 1x1 64 -> 3x3 96 -> 3x3 96 | avg-pool -> 1x1 96."""
    name, s = name or _unique("inception_a"), _scaler(width)
    return layers.Concatenate(name=name)([
        _tower(x, name, ("1x1", s(96), 1)),
        _tower(x, name, ("3x3_reduce", s(64), 1), ("3x3", s(96), 3)),
        _tower(x, name, ("3x3dbl_reduce", s(64), 1), ("3x3dbl_1", s(96), 3), ("3x3dbl_2", s(96), 3)),
        _pool_branch(x, s(96), name)])


def inception_b(x, width=1.0, *, name=None):
    """Figure 5, 17x17x1024: 1x1 384 | 1x1 192 -> 1x7 224 -> 7x1 256
    | 1x1 192 -> 1x7 192 -> 7x1 224 -> 1x7 224 -> 7x1 256 | avg-pool -> 1x1 128."""
    name, s = name or _unique("inception_b"), _scaler(width)
    return layers.Concatenate(name=name)([
        _tower(x, name, ("1x1", s(384), 1)),
        _tower(x, name, ("7x7_reduce", s(192), 1), ("7x7_1x7", s(224), (1, 7)), ("7x7_7x1", s(256), (7, 1))),
        _tower(x, name, ("7x7dbl_reduce", s(192), 1), ("7x7dbl_1x7_1", s(192), (1, 7)),
               ("7x7dbl_7x1_1", s(224), (7, 1)), ("7x7dbl_1x7_2", s(224), (1, 7)), ("7x7dbl_7x1_2", s(256), (7, 1))),
        _pool_branch(x, s(128), name)])


def _split_1x3_3x1(x, filters, name):
    left, right = _tower(x, name, ("1x3", filters, (1, 3))), _tower(x, name, ("3x1", filters, (3, 1)))
    return layers.Concatenate(name=f"{name}_concat")([left, right])


def inception_c(x, width=1.0, *, name=None):
    """Figure 6, 8x8x1536: 1x1 256 | 1x1 384 -> [1x3 256, 3x1 256]
    | 1x1 384 -> 1x3 448 -> 3x1 512 -> [1x3 256, 3x1 256] | avg-pool -> 1x1 256."""
    name, s = name or _unique("inception_c"), _scaler(width)
    branch_1x1 = _tower(x, name, ("1x1", s(256), 1))
    branch_3x3 = _split_1x3_3x1(_tower(x, name, ("3x3_reduce", s(384), 1)), s(256), f"{name}_3x3_split")
    branch_dbl = _tower(x, name, ("3x3dbl_reduce", s(384), 1), ("3x3dbl_1x3", s(448), (1, 3)),
                        ("3x3dbl_3x1", s(512), (3, 1)))
    branch_dbl = _split_1x3_3x1(branch_dbl, s(256), f"{name}_3x3dbl_split")
    return layers.Concatenate(name=name)([branch_1x1, branch_3x3, branch_dbl, _pool_branch(x, s(256), name)])


# --- the grid reductions: figures 7 and 8 -------------------------------------------------------


def _reduction(x, name, *towers):
    """Stride-2 conv towers beside a 3x3/2 max-pool, concatenated: the grid halves, the channels grow."""
    _check(min(d or 3 for d in x.shape[1:3]) >= 3, "x", "at least 3x3 for a grid reduction", x.shape)
    branches = [_tower(x, name, *tower) for tower in towers]
    return layers.Concatenate(name=name)([*branches, layers.MaxPooling2D(3, 2, name=f"{name}_pool")(x)])


def reduction_a(x, filters=REDUCTION_A["inception_v4"], *, name=None):
    """Figure 7, 35x35 -> 17x17: 3x3/2 n | 1x1 k -> 3x3 l -> 3x3/2 m | 3x3/2 max-pool.
    ``filters`` is Table 1's (k, l, m, n) for the network."""
    _check(len(filters) == 4 and min(filters) > 0, "filters", "(k, l, m, n): four counts > 0", filters)
    k, l, m, n = filters
    return _reduction(x, name or _unique("reduction_a"), [("3x3", n, 3, 2, "valid")],
                      [("3x3dbl_reduce", k, 1), ("3x3dbl_1", l, 3), ("3x3dbl_2", m, 3, 2, "valid")])


def reduction_b(x, width=1.0, *, name=None):
    """Figure 8, 17x17 -> 8x8: 1x1 192 -> 3x3/2 192
    | 1x1 256 -> 1x7 256 -> 7x1 320 -> 3x3/2 320 | 3x3/2 max-pool."""
    s = _scaler(width)
    return _reduction(x, name or _unique("reduction_b"), [("3x3_reduce", s(192), 1), ("3x3", s(192), 3, 2, "valid")],
                      [("7x7x3_reduce", s(256), 1), ("7x7x3_1x7", s(256), (1, 7)), ("7x7x3_7x1", s(320), (7, 1)),
                       ("7x7x3_3x3", s(320), 3, 2, "valid")])


# --- the network (figure 9) --------------------------------------------------------------------


def inception_v4(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                 classes=1000, classifier_activation="softmax", name="inception_v4", *,
                 width=1.0, blocks=MODULES, dropout=0.2, stem="imagenet"):
    """Inception-v4 (Szegedy et al. 2017, figure 9): stem, 4 x A, Reduction-A, 7 x B,
    Reduction-B, 3 x C, average pool, dropout (keep 0.8), softmax. Modules are named as
    in TF-slim: mixed_5a (the stem), mixed_5b.. (A), mixed_6a (Reduction-A), mixed_6b..
    (B), mixed_7a (Reduction-B), mixed_7b.. (C). ``weights`` is None or a weights file:
    keras.applications has no Inception-v4. ``stem="low_res"``: mixed_3a has stride 1, for
    small inputs (155x155 by default, which reaches the 35x35 grid)."""
    _check(stem in STEMS, "stem", f"one of {STEMS}", stem)
    _check(len(blocks) == 3 and min(blocks) >= 1, "blocks", "3 module counts >= 1 (35, 17, 8 grids)", blocks)
    _check(width > 0, "width", "> 0", width)
    _check(0 <= dropout < 1, "dropout", "a rate in [0, 1)", dropout)
    _check(weights != "imagenet", "weights", "None or a weights file (this model has no ImageNet twin)", weights)
    inputs = _inputs(input_tensor, input_shape, include_top, 299 if stem == "imagenet" else 155, MIN_SIZES[stem])
    s = _scaler(width)
    x = inception_stem(inputs, width, low_res=stem == "low_res", name="mixed_5a")
    for i in range(blocks[0]):  # TF-slim's names: mixed_5b, mixed_5c, ...
        x = inception_a(x, width, name=f"mixed_5{chr(ord('b') + i)}")
    x = reduction_a(x, tuple(s(f) for f in REDUCTION_A["inception_v4"]), name="mixed_6a")
    for i in range(blocks[1]):
        x = inception_b(x, width, name=f"mixed_6{chr(ord('b') + i)}")
    x = reduction_b(x, width, name="mixed_7a")
    for i in range(blocks[2]):
        x = inception_c(x, width, name=f"mixed_7{chr(ord('b') + i)}")
    x = _top(x, include_top, pooling, classes, classifier_activation, dropout)
    model = keras.Model(keras.utils.get_source_inputs(inputs)[0], x, name=name)
    if weights is not None:
        model.load_weights(weights)
    return model


def feature_stages(model):
    """The names of `model`'s stage outputs, shallow to deep: the layers a feature pyramid,
    a U-Net encoder or Grad-CAM taps. The stem's conv3 and its mixed_4a, then the last
    module on the 35, 17 and 8 grids: at the defaults mixed_5a_conv3_ac, mixed_5a_4a,
    mixed_5e, mixed_6h and mixed_7d (the 147, 71, 35, 17 and 8 pixel grids of a 299 input)."""
    last = {}
    for layer in model.layers:  # modules are named mixed_<grid><letter>; keep the last on each grid
        if layer.name[:6] == "mixed_" and len(layer.name) == 8:
            last[layer.name[:7]] = layer.name
    return ["mixed_5a_conv3_ac", "mixed_5a_4a", last["mixed_5"], last["mixed_6"], last["mixed_7"]]


# --- cookbook metadata: plain data the cookbook reads; a copied file can delete it ---

FAMILY = "Inception networks"
PAPERS = (
    ("Szegedy, Ioffe, Vanhoucke, Alemi 2017. Inception-v4, Inception-ResNet and the Impact "
     "of Residual Connections on Learning. AAAI."),
)
TASK = "classification"
DEFAULT_BUILDER = "inception_v4"
BUILDERS = {"inception_v4": {"params": 42_711_400}}
DEMO = {
    "builder": "inception_v4",
    "kwargs": {"input_shape": (64, 64, 1), "classes": 10, "width": 0.25, "blocks": (1, 1, 1),
               "stem": "low_res"},
    "epochs": 6,  # without residuals it learns more slowly than inception_resnet's demo
    "learning_rate": 5e-3,
}
