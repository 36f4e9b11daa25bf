"""Highway networks: gated shortcuts that let very deep plain-style networks train.

Papers: Srivastava, Greff and Schmidhuber, "Highway Networks" (ICML Deep Learning
Workshop 2015, arXiv:1505.00387) and "Training Very Deep Networks" (NeurIPS 2015).

A plain layer computes y = H(x). A highway layer adds a *transform gate*
T(x) = sigmoid(W_T x + b_T), of the same width as x, and a *carry gate* C = 1 - T:

    y = H(x) * T(x) + x * (1 - T(x))

Where T = 0 the layer passes x through unchanged (dy/dx = I); where T = 1 it is the
plain layer H. Between the two, each unit decides, input by input, how much to
transform and how much to carry: an "information highway" along which signals and
gradients cross many layers without being squashed, as through the cell of an LSTM,
whose gates inspired the design. The trick that makes it work from the first step is
the gate's bias: b_T starts negative (the papers use values from -1 to -3), so with
b_T = -2 and W_T x still small, T = sigmoid(-2) = 0.12 and y = 0.88 x + 0.12 H(x):
every layer starts close to the identity, a shallow network that grows deeper as the
gates open. Plain nets grow harder to optimize with every layer added; highway nets of
50 to 100 layers trained by plain SGD as easily as shallow ones. Because the gate mixes
x into y, H and T keep the input's width: a highway layer cannot change the channel
count (a plain layer does that).
A highway layer costs twice a plain one: H and T have the same shape of weights,
2 * (9 * C * C + C) for a 3x3 conv on C channels (C = 64: 73.9 K against 36.9 K).

ResNet's y = F(x) + x is what is left with both gates fixed open (T = C = 1, without
the coupling C = 1 - T): He et al. (2016) note that highway gates are data-dependent and
have parameters, where identity shortcuts have none, and in "Identity Mappings in Deep
Residual Networks" shortcuts gated this way did worse than the plain identity.

`highway_net` is a convolutional highway network in the manner of the papers' CIFAR-10
nets (which follow FitNets: 3x3 convolutions, stages separated by max-pooling; the
papers report 19- and 32-layer highway nets): per stage, a plain 3x3 conv sets the
width, then ``blocks`` highway conv layers. With the defaults it has 19 weight layers
(3 plain convs, 15 highway layers, the classifier). ``highway=False`` builds the same
network with plain conv layers in place of the highway layers, for comparison.
``carry_bias`` is -b_T, how far the gates start closed.
"""

import keras
from keras import layers

# The first conv's stride per stem: "cifar", the papers' 32 px nets; "strided" halves
# larger inputs first (the cookbook's 64 px demo), so every stage works on a quarter of the pixels.
STEMS = {"cifar": 1, "strided": 2}


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
    if input_tensor is None or not keras.backend.is_keras_tensor(input_tensor):
        return keras.Input(tensor=input_tensor, shape=input_shape)
    return input_tensor


def _top(x, include_top, pooling, classes, classifier_activation):
    """keras.applications' head. The classifier runs in float32 under mixed precision."""
    _check(pooling in (None, "avg", "max"), "pooling", "None, 'avg' or 'max'", pooling)
    if include_top or pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    return layers.Dense(int(classes), activation=classifier_activation, dtype="float32",
                        name="predictions")(x) if include_top else x


def _model(inputs, outputs, weights, name):
    """The model, with weights: None or a weights file (highway networks have no ImageNet twin)."""
    _check(weights != "imagenet", "weights", "None or a weights file (this model has no ImageNet twin)", weights)
    model = keras.Model(keras.utils.get_source_inputs(inputs)[0], outputs, name=name)
    if weights is not None:
        model.load_weights(weights)
    return model


def _conv(x, filters, kernel_size, name, strides=1, batch_norm=False, activation="relu", out=None):
    """Conv -> [BN] -> activation: a plain layer, and the H of a highway conv layer. With
    ``batch_norm`` the conv has no bias (the BN's shift replaces it)."""
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=not batch_norm,
                      name=f"{name}_conv")(x)
    if batch_norm:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation(activation, name=out or f"{name}_act")(x)


def _highway(x, h, t, name):
    """y = H(x) * T(x) + x * (1 - T(x)), from public layers: the carry gate C = 1 - T is a
    Rescaling of T (scale -1, offset 1), the products are Multiply layers, the sum an Add."""
    c = layers.Rescaling(-1.0, offset=1.0, name=f"{name}_carry")(t)
    transformed = layers.Multiply(name=f"{name}_transformed")([h, t])
    carried = layers.Multiply(name=f"{name}_carried")([x, c])
    return layers.Add(name=f"{name}_out")([transformed, carried])


def _gate_check(width, size, carry_bias, argument):
    """The highway constraint (the output keeps the input's width) and the gate's bias."""
    _check(size is None or size == width, argument, f"None or the input's width {width} (y mixes H(x) with x)", size)
    _check(0 <= carry_bias < float("inf"), "carry_bias", "a finite number >= 0 (the gate's bias)", carry_bias)


# --- the highway layers (Srivastava et al. 2015, section 2) --------------------------------


def highway_dense(x, units=None, *, carry_bias=2.0, activation="relu", name=None):
    """A fully connected highway layer, as in the papers' MNIST nets: H = Dense(activation),
    T = Dense(sigmoid) with its bias initialized to -``carry_bias``; ``units`` (if given)
    must equal the input's width."""
    name, width = name or _unique("highway_dense"), x.shape[-1]
    _gate_check(width, units, carry_bias, "units")
    h = layers.Dense(width, activation=activation, name=f"{name}_h")(x)
    t = layers.Dense(width, activation="sigmoid", name=f"{name}_t",
                     bias_initializer=keras.initializers.Constant(-float(carry_bias)))(x)
    return _highway(x, h, t, name)


def highway_conv(x, filters=None, kernel_size=3, *, carry_bias=2.0, activation="relu", batch_norm=False,
                 name=None):
    """A convolutional highway layer ("Training Very Deep Networks", section 3: H and T are
    convolutions with the same receptive field, zero-padded to keep the map's size). With
    ``batch_norm`` only H is normalized: a BatchNorm after T's conv would cancel its bias."""
    name, width = name or _unique("highway_conv"), x.shape[-1]
    kernel_size = int(kernel_size)  # Keras takes no NumPy integers
    _gate_check(width, filters, carry_bias, "filters")
    h = _conv(x, width, kernel_size, f"{name}_h", batch_norm=batch_norm, activation=activation)
    t = layers.Conv2D(width, kernel_size, padding="same", activation="sigmoid", name=f"{name}_t_conv",
                      bias_initializer=keras.initializers.Constant(-float(carry_bias)))(x)
    return _highway(x, h, t, name)


# --- the network --------------------------------------------------------------------------


def highway_net(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                classes=1000, classifier_activation="softmax", name="highway_net", *,
                filters=(32, 64, 128), blocks=(5, 5, 5), carry_bias=2.0, highway=True, batch_norm=False,
                stem="cifar"):
    """A convolutional highway network: per stage a 2x2 max-pool (but the first), a plain
    3x3 conv to ``filters[i]`` (stride 2 in the first with ``stem="strided"``), then
    ``blocks[i]`` highway conv layers (plain 3x3 conv layers with ``highway=False``), then
    global average pooling and the classifier. The defaults: 19 weight layers, 2.16 M
    weights at 1000 classes, default input 32x32 (CIFAR-10's)."""
    counts = len(filters) == len(blocks) > 0 and min(*filters, *blocks) > 0
    _check(counts, "filters and blocks", "tuples of positive counts, one of each per stage", (filters, blocks))
    _check(stem in STEMS, "stem", f"one of {tuple(STEMS)}", stem)
    # Each stage after the first halves the grid (and the strided stem once more): the last map is at least 1x1.
    inputs = _inputs(input_tensor, input_shape, include_top, 32, 2 ** (len(filters) - 1) * STEMS[stem])
    x = inputs
    for s, (width, count) in enumerate(zip(filters, blocks), start=1):
        if s > 1:
            x = layers.MaxPooling2D(2, name=f"stage{s}_pool")(x)
        x = _conv(x, int(width), 3, f"stage{s}", STEMS[stem] if s == 1 else 1, batch_norm)
        for i in range(1, int(count) + 1):
            block = f"stage{s}_block{i}"
            if highway:
                x = highway_conv(x, carry_bias=carry_bias, batch_norm=batch_norm, name=block)
            else:
                x = _conv(x, int(width), 3, block, batch_norm=batch_norm, out=f"{block}_out")
    outputs = _top(x, include_top, pooling, classes, classifier_activation)
    return _model(inputs, outputs, weights, name)


def feature_stages(model):
    """The names of `model`'s stage outputs, shallow to deep: the layers a feature pyramid,
    a U-Net encoder or Grad-CAM taps. Each stage's last layer, highway or plain, before the
    next stage's pool: for the defaults stage1_block5_out, stage2_block5_out, stage3_block5_out."""
    last = {}  # stage -> its last block's output, in the order the stages come
    for layer in model.layers:
        stage, _, rest = layer.name.partition("_")
        if stage.startswith("stage") and rest.startswith("block") and rest.endswith("_out"):
            last[stage] = layer.name
    return list(last.values())


# --- cookbook metadata: plain data the cookbook reads; a copied file can delete it ---

FAMILY = "Residual networks"
PAPERS = (
    "Srivastava, Greff, Schmidhuber 2015. Highway Networks. ICML Deep Learning Workshop, arXiv:1505.00387.",
    "Srivastava, Greff, Schmidhuber 2015. Training Very Deep Networks. NeurIPS.",
)
TASK = "classification"
DEFAULT_BUILDER = "highway_net"
BUILDERS = {"highway_net": {"params": 2_159_848}}
DEMO = {
    "builder": "highway_net",
    "kwargs": {"input_shape": (64, 64, 1), "classes": 10, "filters": (8, 16, 32), "blocks": (1, 2, 2),
               "batch_norm": True, "stem": "strided"},
    "epochs": 5,
    "learning_rate": 3e-3,
}
