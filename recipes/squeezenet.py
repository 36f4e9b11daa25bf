"""SqueezeNet: AlexNet-level accuracy with 50x fewer parameters.

Paper: Iandola, Han, Moskewicz, Ashraf, Dally and Keutzer, "SqueezeNet: AlexNet-level
accuracy with 50x fewer parameters and <0.5MB model size" (2016, arXiv:1602.07360).
Reference implementation: github.com/forresti/SqueezeNet (Caffe).

The paper designs for few parameters with three strategies: (1) replace 3x3 filters by
1x1 filters, which have 9x fewer weights; (2) feed the remaining 3x3 filters fewer input
channels; (3) downsample late, so that most convolutions see large activation maps
(more accuracy for the same parameters). The *fire module* does (1) and (2): a 1x1
*squeeze* conv to s channels, then an *expand* layer of e1 1x1 filters and e3 3x3
filters side by side, concatenated (e1 + e3 channels out), with s < e1 + e3. From C
input channels it has

    (C*s + s) + (s*e1 + e1) + (9*s*e3 + e3) weights,

fire2 of SqueezeNet 1.0 (C=96, s=16, e1=e3=64): 1,552 + 1,088 + 9,280 = 11,920, against
110,720 for a 3x3 conv from 96 to 128 channels (9.3x fewer); fire9 (C=512, s=64,
e1=e3=256): 197,184 against 2,359,808 (12x). There are no fully connected layers: conv10,
a 1x1 conv to the classes, then global average pooling, as in Network in Network.
SqueezeNet 1.0 has 1,248,424 parameters (AlexNet: 62.4 M, 50x more) at 1000 classes.

SqueezeNet 1.1 (the reference's README) keeps the fire modules and nearly the parameter
count (1,235,496) but takes 2.4x less computation (819 M against 349 M multiply-adds at
224 px): conv1 is 64 3x3 filters instead of 96 7x7, and the max-pools come earlier
(after conv1, fire3 and fire5 instead of conv1, fire4 and fire8), so most fire modules
work on smaller maps: strategy (3) traded for speed.

`width` multiplies every conv's filters but conv10's; `batch_norm=True` (not in the
paper) adds BatchNorm before every ReLU, for short runs from scratch.
"""

import keras
from keras import layers

# Table 1: (squeeze s1x1, expand e1x1, expand e3x3) of fire2 ... fire9, in both versions.
FIRES = {2: (16, 64, 64), 3: (16, 64, 64), 4: (32, 128, 128), 5: (32, 128, 128),
         6: (48, 192, 192), 7: (48, 192, 192), 8: (64, 256, 256), 9: (64, 256, 256)}
# Per version: conv1 (filters, kernel, stride), and the layers a 3x3/2 max-pool follows
# (1 is conv1, n is fire n): Table 1 for 1.0, the reference's README for 1.1.
VERSIONS = {"1_0": ((96, 7, 2), (1, 4, 8)), "1_1": ((64, 3, 2), (1, 3, 5))}


def _check(ok, argument, expected, got):
    """The one argument check: what Keras would not say clearly, naming the argument."""
    if not ok:
        raise ValueError(f"{argument} must be {expected}, got {got!r}")


def _unique(prefix):
    """A fresh layer-name prefix, so a block called twice without a name does not collide."""
    return f"{prefix}{keras.backend.get_uid(prefix)}"


def _inputs(input_tensor, input_shape, include_top, default_size, min_size):
    """keras.applications' input rules: (size, size, 3) with a top, (None, None, 3) without
    (the network is fully convolutional, its top too)."""
    if input_shape is None and input_tensor is not None:
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None:
        input_shape = (default_size, default_size, 3) if include_top else (None, None, 3)
    input_shape = tuple(None if d is None else int(d) for d in input_shape)
    least = (min_size, min_size, 1)  # per dimension; a None side is free
    fits = len(input_shape) == 3 and all(d is None or d >= m for d, m in zip(input_shape, least))
    _check(fits, "input_shape", f"(height, width, channels) of at least {min_size}x{min_size}x1", input_shape)
    if input_tensor is None or not keras.backend.is_keras_tensor(input_tensor):
        return keras.Input(tensor=input_tensor, shape=input_shape)
    return input_tensor


def _top(x, include_top, pooling, classes, classifier_activation, dropout, batch_norm):
    """The paper's head: dropout 0.5, conv10 (1x1 to the classes) with ReLU, global average
    pooling, the softmax; the softmax runs in float32 under mixed precision. With
    ``batch_norm``, conv10 gets its BatchNorm too: without it, the class scores can all
    fall below zero in the first steps, where their ReLU passes no gradient, and the
    network sits at chance (its loss at ln(classes)) for epochs."""
    _check(pooling in (None, "avg", "max"), "pooling", "None, 'avg' or 'max'", pooling)
    _check(0 <= dropout < 1, "dropout", "a rate in [0, 1)", dropout)
    if include_top:
        _check(int(classes) >= 1, "classes", "at least 1", classes)  # Keras would name `filters`
        x = layers.Dropout(dropout, name="drop9")(x)
        x = _conv_relu(x, int(classes), 1, "conv10", batch_norm=batch_norm)
        x = layers.GlobalAveragePooling2D(name="pool10")(x)
        return layers.Activation(classifier_activation, dtype="float32", name="predictions")(x)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def _model(inputs, outputs, weights, name):
    """The model, with weights: None or a weights file (SqueezeNet has no ImageNet twin)."""
    _check(weights != "imagenet", "weights", "None or a weights file (this model has no ImageNet twin)", weights)
    model = keras.Model(keras.utils.get_source_inputs(inputs)[0], outputs, name=name)
    if weights is not None:
        model.load_weights(weights)
    return model


def _conv_relu(x, filters, kernel_size, name, strides=1, batch_norm=False, padding="same"):
    """Conv -> ReLU, the paper's one motif. With ``batch_norm``, BatchNorm goes in between,
    the conv drops its bias (the BN's shift replaces it) and the ReLU keeps the name."""
    if not batch_norm:
        return layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, activation="relu",
                             name=name)(x)
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=name)(x)


def _max_pool(x, name):
    """3x3/2 max-pool in Caffe's ceil mode, which the paper's map sizes assume: one zero row
    and column at the bottom and right, then a valid pool. The inputs are ReLU outputs
    (>= 0), so the zero never wins a max; an n-pixel side becomes n // 2 (Caffe:
    ceil((n - 3) / 2) + 1, the same). Valid alone would give 54 -> 26 where Caffe gives 27."""
    x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"{name}_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name=name)(x)


# --- the fire module (section 3.2, Figure 1) -----------------------------------------------


def fire_module(x, squeeze, expand1x1, expand3x3, *, batch_norm=False, name=None):
    """Squeeze 1x1 conv to ``squeeze`` channels -> ReLU, then expand: ``expand1x1`` 1x1 and
    ``expand3x3`` 3x3 convs (padding same) -> ReLU, side by side, concatenated on the
    channels (``expand1x1 + expand3x3`` out). Layers: <name>_squeeze1x1,
    <name>_expand1x1, <name>_expand3x3, <name>_concat."""
    name = name or _unique("fire")
    x = _conv_relu(x, int(squeeze), 1, f"{name}_squeeze1x1", batch_norm=batch_norm)
    left = _conv_relu(x, int(expand1x1), 1, f"{name}_expand1x1", batch_norm=batch_norm)
    right = _conv_relu(x, int(expand3x3), 3, f"{name}_expand3x3", batch_norm=batch_norm)
    return layers.Concatenate(name=f"{name}_concat")([left, right])


# --- the networks --------------------------------------------------------------------------


def _squeezenet(version, include_top, weights, input_tensor, input_shape, pooling, classes,
                classifier_activation, name, width, dropout, batch_norm):
    """Table 1's network in either version: conv1, fire2 ... fire9 with max-pools after the
    version's layers, dropout, conv10, global average pooling."""
    (filters, kernel, strides), pools = VERSIONS[version]
    # conv1 must leave an 8-pixel map, which the three pools halve to at least 1 pixel.
    inputs = _inputs(input_tensor, input_shape, include_top, 224, kernel + 7 * strides)
    # conv1 is valid (Table 1: 224 -> 111 is Caffe's 227 crop; 224 gives 109).
    x = _conv_relu(inputs, int(filters * width), kernel, "conv1", strides, batch_norm, padding="valid")
    x = _max_pool(x, "pool1")
    for i, (squeeze, expand1x1, expand3x3) in FIRES.items():
        x = fire_module(x, int(squeeze * width), int(expand1x1 * width), int(expand3x3 * width),
                        batch_norm=batch_norm, name=f"fire{i}")
        if i in pools:
            x = _max_pool(x, f"pool{i}")
    outputs = _top(x, include_top, pooling, classes, classifier_activation, dropout, batch_norm)
    return _model(inputs, outputs, weights, name)


def squeezenet1_0(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                  classes=1000, classifier_activation="softmax", name="squeezenet1_0", *, width=1.0,
                  dropout=0.5, batch_norm=False):
    """SqueezeNet 1.0 (Table 1): conv1 96 7x7/2, fire2-4, fire5-8, fire9, pools after conv1,
    fire4 and fire8; 1,248,424 parameters at 1000 classes. Maps at 224 px: 109, 54, 27, 13."""
    return _squeezenet("1_0", include_top, weights, input_tensor, input_shape, pooling, classes,
                       classifier_activation, name, width, dropout, batch_norm)


def squeezenet1_1(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                  classes=1000, classifier_activation="softmax", name="squeezenet1_1", *, width=1.0,
                  dropout=0.5, batch_norm=False):
    """SqueezeNet 1.1 (the reference's README): conv1 64 3x3/2, pools after conv1, fire3 and
    fire5; 1,235,496 parameters at 1000 classes, 2.4x less computation than 1.0."""
    return _squeezenet("1_1", include_top, weights, input_tensor, input_shape, pooling, classes,
                       classifier_activation, name, width, dropout, batch_norm)


def feature_stages(model):
    """The names of `model`'s stage outputs, shallow to deep: the layers a feature pyramid,
    a U-Net encoder or Grad-CAM taps. The layer before each max-pool, then the last fire
    module: conv1, fire4_concat, fire8_concat, fire9_concat for 1.0 (maps 109, 54, 27 and 13
    at 224 px); conv1, fire3_concat, fire5_concat, fire9_concat for 1.1 (111, 55, 27, 13)."""
    pools = [layer.name[4:-4] for layer in model.layers  # pool<i>_pad opens the pool after layer i
             if layer.name.startswith("pool") and layer.name.endswith("_pad")]
    return [f"fire{i}_concat" if i != "1" else "conv1" for i in pools] + ["fire9_concat"]


# --- cookbook metadata: plain data the cookbook reads; a copied file can delete it ---

FAMILY = "Efficient CNNs"
PAPERS = (
    "Iandola, Han, Moskewicz, Ashraf, Dally, Keutzer 2016. SqueezeNet: AlexNet-level accuracy with 50x fewer "
    "parameters and <0.5MB model size. arXiv:1602.07360.",
)
TASK = "classification"
DEFAULT_BUILDER = "squeezenet1_0"
BUILDERS = {"squeezenet1_0": {"params": 1_248_424}, "squeezenet1_1": {"params": 1_235_496}}
DEMO = {
    "builder": "squeezenet1_1",
    "kwargs": {"input_shape": (64, 64, 1), "classes": 10, "width": 0.5, "batch_norm": True},
    "epochs": 10,
    "learning_rate": 5e-3,
}
