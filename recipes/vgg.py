"""VGG: very deep networks of small 3x3 convolutions.

Paper: Simonyan and Zisserman, "Very Deep Convolutional Networks for Large-Scale
Image Recognition" (ICLR 2015).

VGG's one idea is depth built from the smallest useful kernel. Two stacked 3x3
convolutions see a 5x5 patch and three see 7x7, with fewer weights than one big
kernel (3 * 9 = 27 against 49 per channel pair) and a ReLU between each, so the
stack is more expressive too. The network is five blocks of 3x3 convs (64, 128,
256, 512, 512 filters), each closed by a 2x2 max-pool that halves the size, then
three fully connected layers (4096, 4096, classes). Configurations A, B, D and E of
the paper's Table 1 have 11, 13, 16 and 19 weight layers; almost all of their 133
to 144 million parameters sit in the first fully connected layer (7 * 7 * 512 * 4096
= 102.8 M at 224x224). That layer reads a flattened map, so a model with its top
needs a fixed input size; without the top the network is fully convolutional.

`vgg16` and `vgg19` are layer for layer the keras.applications VGG16 and VGG19, so
their weights can be transplanted. `vgg11` and `vgg13` are configurations A and B.
The knobs: `width` multiplies every conv's filters, `fc_units` sets the two hidden
fully connected layers, `dropout` (the paper puts 0.5 on them; keras.applications
leaves it out) and `batch_norm` (BN after every conv, the common "VGG-BN" variant).
"""

import keras
from keras import layers

# Convs per block, the paper's configurations A, B, D and E (Table 1).
CONVS_PER_BLOCK = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
FILTERS = (64, 128, 256, 512, 512)
MIN_SIZE = 32  # five 2x2 max-pools: 32 px leaves a 1x1 map


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
    least = (min_size, min_size, 1)  # per dimension; a None side is free without a top
    fits = len(input_shape) == 3 and all(d is None or d >= m for d, m in zip(input_shape, least))
    fixed = not include_top or None not in input_shape[:2]  # the top flattens the last map
    size = f"{min_size}x{min_size}x1" + (", of a fixed size with a top" if include_top else "")
    _check(fits and fixed, "input_shape", f"(height, width, channels) of at least {size}", input_shape)
    if input_tensor is None:
        return keras.Input(shape=input_shape)
    if not keras.backend.is_keras_tensor(input_tensor):
        return keras.Input(tensor=input_tensor, shape=input_shape)
    return input_tensor


def _top(x, include_top, pooling, classes, classifier_activation, fc_units, dropout):
    """VGG's head: Flatten, fc1, fc2, predictions. The classifier runs in float32."""
    _check(pooling in (None, "avg", "max"), "pooling", "None, 'avg' or 'max'", pooling)
    _check(0 <= dropout < 1, "dropout", "a rate in [0, 1)", dropout)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        for i in (1, 2):
            x = layers.Dense(int(fc_units), activation="relu", name=f"fc{i}")(x)
            if dropout:
                x = layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
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


# --- the VGG block ------------------------------------------------------------------------


def vgg_block(x, filters, convs=2, batch_norm=False, *, name=None):
    """``convs`` 3x3 same-padded convs with ReLU, then a 2x2 max-pool that halves the size.

    With ``batch_norm`` each conv is followed by BatchNormalization before its ReLU
    (and has no bias, which the BN would cancel).
    """
    _check(convs >= 1, "convs", "at least 1", convs)
    _check(all(d is None or d >= 2 for d in x.shape[1:3]), "x", "at least 2x2 for the max-pool", x.shape)
    name = name or _unique("vgg_block")
    for i in range(1, int(convs) + 1):
        conv = f"{name}_conv{i}"
        if batch_norm:
            x = layers.Conv2D(int(filters), 3, padding="same", use_bias=False, name=conv)(x)
            x = layers.BatchNormalization(name=f"{conv}_bn")(x)
            x = layers.Activation("relu", name=f"{conv}_relu")(x)
        else:
            x = layers.Conv2D(int(filters), 3, padding="same", activation="relu", name=conv)(x)
    return layers.MaxPooling2D(2, strides=2, name=f"{name}_pool")(x)


# --- the networks --------------------------------------------------------------------------


def _vgg(depth, include_top, weights, input_tensor, input_shape, pooling, classes,
         classifier_activation, name, width, fc_units, dropout, batch_norm):
    """Configuration ``depth`` of Table 1: five VGG blocks, then the top."""
    inputs = _inputs(input_tensor, input_shape, include_top, 224, MIN_SIZE)
    x = inputs
    for i, (filters, convs) in enumerate(zip(FILTERS, CONVS_PER_BLOCK[depth]), start=1):
        x = vgg_block(x, int(filters * width), convs, batch_norm, name=f"block{i}")
    outputs = _top(x, include_top, pooling, classes, classifier_activation, fc_units, dropout)
    # keras.applications has VGG16 and VGG19 with the paper's widths (dropout has no weights).
    paper = (width, fc_units, batch_norm) == (1.0, 4096, False)
    twin = f"VGG{depth}" if depth in (16, 19) and paper else None
    return _model(inputs, outputs, weights, name, twin, include_top=include_top, pooling=pooling,
                  input_shape=tuple(inputs.shape[1:]), classes=classes,
                  classifier_activation=classifier_activation)


def vgg11(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
          classes=1000, classifier_activation="softmax", name="vgg11", *, width=1.0,
          fc_units=4096, dropout=0.0, batch_norm=False):
    """VGG-11, configuration A (Simonyan and Zisserman 2015): convs per block (1, 1, 2, 2, 2)."""
    return _vgg(11, include_top, weights, input_tensor, input_shape, pooling, classes,
                classifier_activation, name, width, fc_units, dropout, batch_norm)


def vgg13(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
          classes=1000, classifier_activation="softmax", name="vgg13", *, width=1.0,
          fc_units=4096, dropout=0.0, batch_norm=False):
    """VGG-13, configuration B (Simonyan and Zisserman 2015): convs per block (2, 2, 2, 2, 2)."""
    return _vgg(13, include_top, weights, input_tensor, input_shape, pooling, classes,
                classifier_activation, name, width, fc_units, dropout, batch_norm)


def vgg16(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
          classes=1000, classifier_activation="softmax", name="vgg16", *, width=1.0,
          fc_units=4096, dropout=0.0, batch_norm=False):
    """VGG-16, configuration D (Simonyan and Zisserman 2015): convs per block (2, 2, 3, 3, 3);
    keras.applications VGG16."""
    return _vgg(16, include_top, weights, input_tensor, input_shape, pooling, classes,
                classifier_activation, name, width, fc_units, dropout, batch_norm)


def vgg19(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
          classes=1000, classifier_activation="softmax", name="vgg19", *, width=1.0,
          fc_units=4096, dropout=0.0, batch_norm=False):
    """VGG-19, configuration E (Simonyan and Zisserman 2015): convs per block (2, 2, 4, 4, 4);
    keras.applications VGG19."""
    return _vgg(19, include_top, weights, input_tensor, input_shape, pooling, classes,
                classifier_activation, name, width, fc_units, dropout, batch_norm)


def feature_stages(model):
    """The names of `model`'s stage outputs, shallow to deep: the layers a feature pyramid,
    a U-Net encoder or Grad-CAM taps. The last conv of each block, before its pool (its
    ReLU with ``batch_norm``): for VGG-16 block1_conv2, block2_conv2, block3_conv3,
    block4_conv3, block5_conv3."""
    last = {}  # block -> its last conv (or that conv's ReLU), in the order the blocks come
    for layer in model.layers:
        block, _, rest = layer.name.partition("_")
        if block.startswith("block") and rest.startswith("conv") and not rest.endswith("_bn"):
            last[block] = layer.name
    return list(last.values())


def preprocess_input(x, data_format=None):
    """keras.applications.vgg16.preprocess_input (VGG19's is the same): RGB to BGR, then
    subtract the ImageNet mean per channel, without scaling ("caffe" mode)."""
    return keras.applications.vgg16.preprocess_input(x, data_format=data_format)


# --- cookbook metadata: plain data the cookbook reads; a copied file can delete it ---

FAMILY = "Classic CNNs"
PAPERS = (
    "Simonyan, Zisserman 2015. Very Deep Convolutional Networks for Large-Scale Image Recognition. ICLR.",
)
TASK = "classification"
DEFAULT_BUILDER = "vgg16"
BUILDERS = {
    "vgg11": {},
    "vgg13": {},
    "vgg16": {"twin": "VGG16", "params": 138_357_544},
    "vgg19": {"twin": "VGG19"},
}
DEMO = {
    "builder": "vgg11",
    "kwargs": {"input_shape": (64, 64, 1), "classes": 10, "width": 0.125, "fc_units": 128,
               "batch_norm": True},
    "epochs": 8,
    "learning_rate": 3e-3,
}
