"""DenseNet: every layer sees the feature maps of all the layers before it.

Paper: Huang, Liu, van der Maaten and Weinberger, "Densely Connected Convolutional
Networks" (CVPR 2017).

A ResNet *adds* a block's output to its input. A DenseNet *concatenates* it: inside a
dense block, layer l receives the feature maps of layers 0..l-1 stacked along the
channel axis, and contributes only k new maps of its own (k is the growth rate, 32 on
ImageNet). Layer l of a block that starts with k0 channels therefore reads
k0 + k(l - 1) of them, and the block ends with k0 + k * layers. Low-level features such
as edges stay directly available to every later layer, gradients reach early layers
through short paths, and because each layer adds so few channels the network is narrow
and cheap in parameters. Each dense layer is BN -> ReLU -> 1x1 conv to 4k channels (the
"bottleneck", DenseNet-B) -> BN -> ReLU -> 3x3 conv to k channels. Between dense blocks
a transition layer compresses the C channels to floor(theta * C) (theta = 0.5,
DenseNet-C) with a 1x1 conv and halves the grid with a 2x2 average pool. With both, the
network is called DenseNet-BC. DenseNet-121 ends with 64 + 6k = 256 -> 128,
128 + 12k = 512 -> 256, 256 + 24k = 1024 -> 512 and 512 + 16k = 1024 channels.

`densenet121`, `densenet169` and `densenet201` are layer for layer the
keras.applications models (same weights in the same order). `densenet` is the general
builder: any number of dense blocks, any growth rate and compression, and the paper's
CIFAR stem (section 3: one 3x3 conv, no pooling) for 32x32 inputs, as in its
DenseNet-BC (L=100, k=12): `densenet(input_shape=(32, 32, 3), classes=10,
blocks=(16, 16, 16), growth_rate=12, stem="cifar")`.
"""

import keras
from keras import layers

# Dense layers per dense block (Huang et al. 2017, Table 1), k = 32, theta = 0.5.
DENSE_LAYERS = {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32)}
STEMS = ("imagenet", "cifar")
BN_EPSILON = 1.001e-5  # the value keras.applications uses


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


def _bn_relu(x, name):
    """BN -> ReLU: DenseNet puts it in front of every convolution (pre-activation)."""
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


# --- the three blocks -------------------------------------------------------------------


def dense_layer(x, growth_rate, *, name=None):
    """One dense layer: BN-ReLU-1x1 conv (4k) - BN-ReLU-3x3 conv (k), concatenated to x."""
    name = name or _unique("dense_layer")
    y = _bn_relu(x, f"{name}_0")
    y = layers.Conv2D(4 * int(growth_rate), 1, use_bias=False, name=f"{name}_1_conv")(y)
    y = _bn_relu(y, f"{name}_1")
    y = layers.Conv2D(int(growth_rate), 3, padding="same", use_bias=False, name=f"{name}_2_conv")(y)
    return layers.Concatenate(name=f"{name}_concat")([x, y])


def dense_block(x, num_layers, growth_rate=32, *, name=None):
    """``num_layers`` dense layers: the channels grow from C to C + num_layers * k."""
    _check(num_layers >= 1, "num_layers", "at least 1", num_layers)
    name = name or _unique("dense_block")
    for i in range(1, int(num_layers) + 1):
        x = dense_layer(x, growth_rate, name=f"{name}_block{i}")
    return x


def transition_block(x, compression=0.5, *, name=None):
    """BN-ReLU-1x1 conv to floor(C * compression) channels, then 2x2 average pool."""
    _check(0 < compression <= 1, "compression", "in (0, 1]", compression)
    _check(all(d is None or d >= 2 for d in x.shape[1:3]), "x", "at least 2x2 for the 2x2 pool", x.shape)
    name = name or _unique("transition")
    x = _bn_relu(x, name)
    x = layers.Conv2D(int(x.shape[-1] * compression), 1, use_bias=False, name=f"{name}_conv")(x)
    return layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


# --- the networks -----------------------------------------------------------------------


def densenet(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
             classes=1000, classifier_activation="softmax", name="densenet", *,
             blocks=(6, 12, 24, 16), growth_rate=32, compression=0.5, stem="imagenet"):
    """A DenseNet-BC with ``blocks`` dense layers per dense block (Huang et al. 2017).

    ``stem="imagenet"``: 7x7/2 conv with 2k filters, BN, ReLU, 3x3/2 max-pool (default
    input 224x224). ``stem="cifar"``: one 3x3 conv with 2k filters and no pooling, the
    paper's network for 32x32 inputs (the default input then). A transition with
    ``compression`` sits between consecutive dense blocks; the last block is followed by
    BN and ReLU. With the defaults this is DenseNet-121, and ``weights="imagenet"`` works
    whenever the knobs give DenseNet-121, -169 or -201.
    """
    _check(stem in STEMS, "stem", f"one of {STEMS}", stem)
    _check(min(blocks, default=0) > 0, "blocks", "a non-empty tuple of positive counts", blocks)
    # Each transition halves the grid and the ImageNet stem quarters it: 32 px for four blocks.
    min_size = 2 ** (len(blocks) - 1) * (4 if stem == "imagenet" else 1)
    inputs = _inputs(input_tensor, input_shape, include_top, 224 if stem == "imagenet" else 32, min_size)
    if stem == "imagenet":
        x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
        x = layers.Conv2D(2 * int(growth_rate), 7, strides=2, use_bias=False, name="conv1_conv")(x)
        x = _bn_relu(x, "conv1")
        x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    else:  # the first dense layer starts with BN-ReLU, so the stem needs neither
        x = layers.Conv2D(2 * int(growth_rate), 3, padding="same", use_bias=False, name="conv1_conv")(inputs)

    # Dense blocks conv2, conv3, ... with transitions pool2, pool3, ... between them
    # (the keras.applications names).
    for i, count in enumerate(blocks, start=2):
        x = dense_block(x, count, growth_rate, name=f"conv{i}")
        if i < len(blocks) + 1:
            x = transition_block(x, compression, name=f"pool{i}")
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="bn")(x)
    x = layers.Activation("relu", name="relu")(x)
    outputs = _top(x, include_top, pooling, classes, classifier_activation)

    twins = {blocks_: f"DenseNet{depth}" for depth, blocks_ in DENSE_LAYERS.items()}
    twin = twins.get(tuple(blocks)) if (growth_rate, compression, stem) == (32, 0.5, "imagenet") else None
    return _model(inputs, outputs, weights, name, twin, include_top=include_top, pooling=pooling,
                  input_shape=tuple(inputs.shape[1:]), classes=classes,
                  classifier_activation=classifier_activation)


def densenet121(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                classes=1000, classifier_activation="softmax", name="densenet121"):
    """DenseNet-121 (Huang et al. 2017): blocks (6, 12, 24, 16), k = 32; keras.applications DenseNet121."""
    return densenet(include_top, weights, input_tensor, input_shape, pooling, classes,
                    classifier_activation, name, blocks=DENSE_LAYERS[121])


def densenet169(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                classes=1000, classifier_activation="softmax", name="densenet169"):
    """DenseNet-169 (Huang et al. 2017): blocks (6, 12, 32, 32), k = 32; keras.applications DenseNet169."""
    return densenet(include_top, weights, input_tensor, input_shape, pooling, classes,
                    classifier_activation, name, blocks=DENSE_LAYERS[169])


def densenet201(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                classes=1000, classifier_activation="softmax", name="densenet201"):
    """DenseNet-201 (Huang et al. 2017): blocks (6, 12, 48, 32), k = 32; keras.applications DenseNet201."""
    return densenet(include_top, weights, input_tensor, input_shape, pooling, classes,
                    classifier_activation, name, blocks=DENSE_LAYERS[201])


def feature_stages(model):
    """The names of `model`'s stage outputs, shallow to deep: the layers a feature pyramid,
    a U-Net encoder or Grad-CAM taps. The stem, the last dense layer of every block but the
    last, and the final BN-ReLU (the last block's output): for DenseNet-121 conv1_relu,
    conv2_block6_concat, conv3_block12_concat, conv4_block24_concat, relu."""
    names = [layer.name for layer in model.layers]
    last = {}  # dense block -> its last concatenation, in the order the blocks come
    for layer_name in names:
        if layer_name.startswith("conv") and layer_name.endswith("_concat"):
            last[layer_name.split("_")[0]] = layer_name
    stem = "conv1_relu" if "conv1_relu" in names else "conv1_conv"
    return [stem, *list(last.values())[:-1], "relu"]


def preprocess_input(x, data_format=None):
    """keras.applications.densenet.preprocess_input: scale to [0, 1], then subtract the
    ImageNet mean and divide by its standard deviation, per channel ("torch" mode)."""
    return keras.applications.densenet.preprocess_input(x, data_format=data_format)


# --- cookbook metadata: plain data the cookbook reads; a copied file can delete it ---

FAMILY = "Densely connected networks"
PAPERS = ("Huang, Liu, van der Maaten, Weinberger 2017. Densely Connected Convolutional Networks. CVPR.",)
TASK = "classification"
DEFAULT_BUILDER = "densenet121"
BUILDERS = {
    "densenet121": {"twin": "DenseNet121", "params": 8_062_504},
    "densenet169": {"twin": "DenseNet169"},
    "densenet201": {"twin": "DenseNet201"},
    "densenet": {},
}
DEMO = {
    "builder": "densenet",
    "kwargs": {"input_shape": (64, 64, 1), "classes": 10, "blocks": (2, 2, 2), "growth_rate": 12},
    "epochs": 6,
    "learning_rate": 3e-3,
}
