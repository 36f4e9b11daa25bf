"""Xception: depthwise separable convolutions with residual connections.

Papers: Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions"
(CVPR 2017). The mini network is the small Xception-like model of Chollet, "Deep
Learning with Python" (2nd ed., 2021), chapter 9.

An ordinary convolution learns spatial patterns and cross-channel patterns with one
kernel. Xception takes the Inception idea to its extreme and separates them: a
depthwise 3x3 filters each channel on its own, then a pointwise 1x1 mixes channels.
For a 3x3 layer from M to N channels the cost per pixel drops from 9 * M * N to
9 * M + M * N multiply-adds: at M = N = 728, from 4.77 M to 0.54 M, 8.9 times fewer,
and the parameters shrink by the same factor. It works as well or better. There is no
activation between the depthwise and the pointwise part. Every module also has a
residual connection (a strided 1x1 conv when the size changes), so 36 convolution
layers still train easily.

`xception` is layer for layer the keras.applications Xception: entry flow (two
convs, then modules of 128, 256 and 728 filters), middle flow (8 identity-shortcut
modules of three 728-filter separable convs) and exit flow. `mini_xception` is the
book's small network: a 5x5 conv, then for each size BN, ReLU, SeparableConv twice,
a 3x3/2 max-pool and a strided 1x1 residual.
"""

import keras
from keras import layers

# Chollet 2017, Figure 5: the entry flow's modules, the middle flow, the exit flow.
ENTRY_FILTERS = (128, 256, 728)  # block2..block4, each halves the grid
MIDDLE_MODULES = 8  # block5..block12, 728 channels, identity shortcuts
EXIT_FILTERS = ((728, 1024), (1536, 2048))  # block13 (a module), block14 (two separable convs)


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


def _top(x, include_top, pooling, classes, classifier_activation, dropout=0.0):
    """keras.applications' head, with dropout before the classifier (the mini network's).
    The classifier runs in float32 under mixed precision."""
    _check(pooling in (None, "avg", "max"), "pooling", "None, 'avg' or 'max'", pooling)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout:
            x = layers.Dropout(dropout, name="dropout")(x)
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


def _sepconv_bn(x, filters, name, relu_first=True):
    """[ReLU] -> SeparableConv 3x3 -> BN: the motif Xception repeats 34 times."""
    if relu_first:
        x = layers.Activation("relu", name=f"{name}_act")(x)
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
    return layers.BatchNormalization(name=f"{name}_bn")(x)


# --- the book's block: pre-activation separable convs, max-pool, strided residual ----------


def separable_residual_block(x, filters, *, name=None):
    """BN-ReLU-SepConv twice, max-pool 3/2, plus a strided 1x1 residual."""
    name = name or _unique("separable_block")
    residual = x
    for i in (1, 2):
        x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sepconv{i}")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
    residual = layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False,
                             name=f"{name}_residual")(residual)
    return layers.Add(name=f"{name}_out")([x, residual])


def mini_xception(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                  classes=1000, classifier_activation="softmax", name="mini_xception", *,
                  filters=(32, 64, 128, 256, 512), dropout=0.5):
    """The small Xception-like network of Deep Learning with Python (Chollet 2021, ch. 9).

    A 5x5 conv with ``filters[0]`` filters, then one ``separable_residual_block`` per
    entry of ``filters`` (each halves the grid), global average pooling, ``dropout`` and
    the classifier. The 5x5 conv has stride 2, as the first conv of Xception's entry
    flow (Chollet 2017, Figure 5), where the book's has stride 1 on 180x180 images. Inputs
    are expected in [0, 1]: the book's Rescaling(1/255) belongs to the data pipeline.
    """
    _check(0 <= dropout < 1, "dropout", "a rate in [0, 1)", dropout)
    _check(min(filters, default=0) > 0, "filters", "a non-empty tuple of positive counts", filters)
    inputs = _inputs(input_tensor, input_shape, include_top, 180, 5)
    x = layers.Conv2D(int(filters[0]), 5, strides=2, use_bias=False, name="stem_conv")(inputs)
    for i, size in enumerate(filters, start=1):
        x = separable_residual_block(x, int(size), name=f"block{i}")
    outputs = _top(x, include_top, pooling, classes, classifier_activation, dropout)
    return _model(inputs, outputs, weights, name)


# --- the full Xception (keras.applications layout and names) ---------------------------


def xception_module(x, filters, out_filters=None, relu_first=True, *, name=None):
    """Entry/exit flow module: two separable convs, max-pool 3/2, strided 1x1 shortcut."""
    name = name or _unique("xception_module")
    out_filters = int(out_filters or filters)
    # keras.applications creates the shortcut first: keep that weight order.
    residual = layers.Conv2D(out_filters, 1, strides=2, padding="same", use_bias=False,
                             name=f"{name}_shortcut_conv")(x)
    residual = layers.BatchNormalization(name=f"{name}_shortcut_bn")(residual)
    x = _sepconv_bn(x, int(filters), f"{name}_sepconv1", relu_first)
    x = _sepconv_bn(x, out_filters, f"{name}_sepconv2")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
    return layers.Add(name=f"{name}_add")([x, residual])


def middle_flow_module(x, *, name=None):
    """Three ReLU-SepConv-BN at the input's channel count, with an identity shortcut."""
    name = name or _unique("middle_flow_module")
    residual = x
    for i in (1, 2, 3):
        x = _sepconv_bn(x, x.shape[-1], f"{name}_sepconv{i}")
    return layers.Add(name=f"{name}_add")([x, residual])


def xception(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
             classes=1000, classifier_activation="softmax", name="xception"):
    """Xception (Chollet 2017), keras.applications Xception: 22.9 M parameters at 1000 classes."""
    inputs = _inputs(input_tensor, input_shape, include_top, 299, 71)  # keras.applications' sizes

    # Entry flow: two plain convs, then three downsampling modules.
    x = layers.Conv2D(32, 3, strides=2, use_bias=False, name="block1_conv1")(inputs)
    x = layers.BatchNormalization(name="block1_conv1_bn")(x)
    x = layers.Activation("relu", name="block1_conv1_act")(x)
    x = layers.Conv2D(64, 3, use_bias=False, name="block1_conv2")(x)
    x = layers.BatchNormalization(name="block1_conv2_bn")(x)
    x = layers.Activation("relu", name="block1_conv2_act")(x)
    for i, filters in enumerate(ENTRY_FILTERS, start=2):  # block2 follows a ReLU already
        x = xception_module(x, filters, relu_first=i > 2, name=f"block{i}")

    # Middle flow: eight identical modules at 728 channels.
    for i in range(5, 5 + MIDDLE_MODULES):
        x = middle_flow_module(x, name=f"block{i}")

    # Exit flow: a module to 1024 channels, then two separable convs with BN-ReLU after them.
    x = xception_module(x, *EXIT_FILTERS[0], name="block13")
    for i, filters in enumerate(EXIT_FILTERS[1], start=1):
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"block14_sepconv{i}")(x)
        x = layers.BatchNormalization(name=f"block14_sepconv{i}_bn")(x)
        x = layers.Activation("relu", name=f"block14_sepconv{i}_act")(x)

    outputs = _top(x, include_top, pooling, classes, classifier_activation)
    return _model(inputs, outputs, weights, name, "Xception", include_top=include_top, pooling=pooling,
                  input_shape=tuple(inputs.shape[1:]), classes=classes,
                  classifier_activation=classifier_activation)


def feature_stages(model):
    """The names of `model`'s stage outputs, shallow to deep: the layers a feature pyramid,
    a U-Net encoder or Grad-CAM taps. Xception, one per stride 2, 4, 8, 16, 32:
    block1_conv2_act, block2_add, block3_add, block12_add (the end of the middle flow),
    block14_sepconv2_act. mini_xception: stem_conv, then every block's output."""
    names = [layer.name for layer in model.layers]
    if "block14_sepconv2_act" in names:
        return ["block1_conv2_act", "block2_add", "block3_add", "block12_add", "block14_sepconv2_act"]
    return ["stem_conv", *(n for n in names if n.startswith("block") and n.endswith("_out"))]


def preprocess_input(x, data_format=None):
    """keras.applications.xception.preprocess_input: scale pixels from [0, 255] to [-1, 1] ("tf" mode)."""
    return keras.applications.xception.preprocess_input(x, data_format=data_format)


# --- cookbook metadata: plain data the cookbook reads; a copied file can delete it ---

FAMILY = "Residual networks"
PAPERS = (
    "Chollet 2017. Xception: Deep Learning with Depthwise Separable Convolutions. CVPR.",
    "Chollet 2021. Deep Learning with Python, 2nd ed., chapter 9.",
)
TASK = "classification"
DEFAULT_BUILDER = "xception"
BUILDERS = {"xception": {"twin": "Xception", "params": 22_910_480}, "mini_xception": {}}
DEMO = {
    "builder": "mini_xception",
    "kwargs": {"input_shape": (64, 64, 1), "classes": 10, "filters": (16, 32, 64), "dropout": 0.2},
    "epochs": 8,
    "learning_rate": 5e-3,
}
