"""MobileNet: depthwise separable convolutions for small, fast networks.

Paper: Howard, Zhu, Chen, Kalenichenko, Wang, Weyand, Andreetto and Adam,
"MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications" (2017).

A standard 3x3 convolution from M to N channels costs 9*M*N multiply-adds per
pixel. MobileNet factors it in two: a depthwise 3x3 that filters each of the M
channels on its own (9*M), then a pointwise 1x1 that mixes them (M*N). The cost
drops by a factor of 1/N + 1/9, eight to nine times less, for a small loss in
accuracy. Unlike Xception, each half has its own BatchNorm and ReLU6. The network
is one plain strided conv and 13 such blocks; the spatial size is halved five
times, by strided depthwise convs instead of pooling. Two knobs trade accuracy for
cost: the width multiplier `alpha` thins every layer (cost and parameters fall
roughly as alpha squared), and the input size (the paper's resolution multiplier)
scales the multiply-adds. `depth_multiplier` gives each depthwise conv several
filters per channel. `shallow=True` is the paper's third option (Table 6): drop the
five middle blocks instead of thinning, 8 blocks deep instead of 13.

`mobilenet` is layer for layer keras.applications MobileNet (v1), with its layer
names: default input 224, and the top is a 1x1 conv on the pooled features, with
dropout before it.
"""

import keras
from keras import layers

# (pointwise filters, stride) of the 13 depthwise separable blocks, from the paper's Table 1.
LAYOUT = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
    (1024, 2), (1024, 1),
)
# The paper's "Shallow MobileNet" (Table 6) drops the five 512-filter blocks at stride 16.
SHALLOW_SKIPS = (7, 8, 9, 10, 11)
MIN_SIZE = 32  # five stride-2 steps, as keras.applications requires


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


def _top(x, include_top, pooling, classes, classifier_activation, dropout):
    """keras.applications MobileNet's head: a 1x1 conv on the pooled features. The
    classifier's activation runs in float32 under mixed precision."""
    _check(pooling in (None, "avg", "max"), "pooling", "None, 'avg' or 'max'", pooling)
    _check(0 <= dropout < 1, "dropout", "a rate in [0, 1)", dropout)
    if include_top:
        _check(int(classes) >= 1, "classes", "at least 1", classes)  # Keras would name `filters`
        x = layers.GlobalAveragePooling2D(keepdims=True, name="avg_pool")(x)
        x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Conv2D(int(classes), 1, padding="same", name="conv_preds")(x)
        x = layers.Reshape((int(classes),), name="reshape_2")(x)
        return layers.Activation(classifier_activation, dtype="float32", name="predictions")(x)
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


def _bn_relu6(x, name):
    """BN -> ReLU6 after every conv (the paper says ReLU; its TensorFlow reference caps it at 6)."""
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x)


# --- the depthwise separable block -----------------------------------------------------


def depthwise_separable_block(x, filters, strides=1, depth_multiplier=1, *, name=None):
    """Depthwise 3x3 -> BN -> ReLU6, then pointwise 1x1 to ``filters`` -> BN -> ReLU6.

    A strided block pads only bottom and right and uses a valid conv, as the
    TensorFlow reference does, so the output is exactly half the size. Layers are named
    as in keras.applications, with ``name`` as the block id: conv_dw_<name>, conv_pw_<name>.
    """
    name, strides = name or _unique("block"), int(strides)  # Keras takes no NumPy ints for strides
    _check(strides == 1 or all(d is None or d >= 2 for d in x.shape[1:3]), "x", "at least 2x2 when strided", x.shape)
    if strides == 1:
        padding = "same"
    else:
        x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{name}")(x)
        padding = "valid"
    x = layers.DepthwiseConv2D(3, strides=strides, padding=padding,
                               depth_multiplier=depth_multiplier, use_bias=False,
                               name=f"conv_dw_{name}")(x)
    x = _bn_relu6(x, f"conv_dw_{name}")
    x = layers.Conv2D(int(filters), 1, use_bias=False, name=f"conv_pw_{name}")(x)
    return _bn_relu6(x, f"conv_pw_{name}")


# --- the network ---------------------------------------------------------------------------


def mobilenet(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
              classes=1000, classifier_activation="softmax", name="mobilenet", *, alpha=1.0,
              depth_multiplier=1, dropout=1e-3, shallow=False):
    """MobileNet v1 (Howard et al. 2017); keras.applications MobileNet (4.25 M parameters
    at alpha=1). ``alpha`` thins every layer, ``depth_multiplier`` widens the depthwise
    convs, ``dropout`` is the rate before the classifier. ``shallow=True`` drops blocks
    7-11 (the paper's Shallow MobileNet; the others keep their names); it has no twin."""
    inputs = _inputs(input_tensor, input_shape, include_top, 224, MIN_SIZE)
    x = layers.Conv2D(int(32 * alpha), 3, strides=2, padding="same", use_bias=False,
                      name="conv1")(inputs)
    x = _bn_relu6(x, "conv1")
    for i, (filters, strides) in enumerate(LAYOUT, start=1):
        if shallow and i in SHALLOW_SKIPS:
            continue
        x = depthwise_separable_block(x, int(filters * alpha), strides, depth_multiplier,
                                      name=str(i))
    outputs = _top(x, include_top, pooling, classes, classifier_activation, dropout)
    twin = None if shallow else "MobileNet"
    return _model(inputs, outputs, weights, name, twin, include_top=include_top,
                  pooling=pooling, input_shape=tuple(inputs.shape[1:]), classes=classes,
                  classifier_activation=classifier_activation, alpha=alpha,
                  depth_multiplier=depth_multiplier, dropout=dropout)


def feature_stages(model):
    """The names of `model`'s stage outputs, shallow to deep: the layers a feature pyramid,
    a U-Net encoder or Grad-CAM taps. The last block at each resolution, the one before
    each strided block and the last: conv_pw_1_relu, conv_pw_3_relu, conv_pw_5_relu,
    conv_pw_11_relu (conv_pw_6_relu when shallow), conv_pw_13_relu (strides 2, 4, 8, 16, 32)."""
    names = [layer.name for layer in model.layers]  # a chain: each layer feeds the next
    # conv_pad_<i> opens each strided block, so the layer before it ends a resolution.
    ends = [names[i - 1] for i, name in enumerate(names) if name.startswith("conv_pad_")]
    return [*ends, [n for n in names if n.startswith("conv_pw_") and n.endswith("_relu")][-1]]


def preprocess_input(x, data_format=None):
    """keras.applications.mobilenet.preprocess_input: scale pixels from [0, 255] to
    [-1, 1] ("tf" mode)."""
    return keras.applications.mobilenet.preprocess_input(x, data_format=data_format)


# --- cookbook metadata: plain data the cookbook reads; a copied file can delete it ---

FAMILY = "Efficient CNNs"
PAPERS = (
    "Howard et al. 2017. MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications. arXiv:1704.04861.",
)
TASK = "classification"
DEFAULT_BUILDER = "mobilenet"
BUILDERS = {"mobilenet": {"twin": "MobileNet", "params": 4_253_864}}
DEMO = {
    "builder": "mobilenet",
    "kwargs": {"input_shape": (64, 64, 1), "classes": 10, "alpha": 0.5, "shallow": True},
    "epochs": 8,
    "batch_size": 64,
    "optimizer": "sgd",
    "learning_rate": 0.1,
    "augment": "translate",
}
