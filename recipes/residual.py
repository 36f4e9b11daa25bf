"""Residual networks: the residual block, ResNet v1 and v2, CIFAR ResNets, stochastic depth.

Papers: He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition" (CVPR 2016)
and "Identity Mappings in Deep Residual Networks" (ECCV 2016); Huang, Sun, Liu, Sedra and
Weinberger, "Deep Networks with Stochastic Depth" (ECCV 2016).

A deeper plain network is harder to train: even its *training* error rises (He et al.,
Figure 6). A residual block adds a shortcut around a few layers, y = F(x) + x, so the layers
only learn a correction to the identity and the gradient has a direct path back to the input.
Where the block changes the channels or the size, the shortcut is a 1x1 convolution
("projection", option B) or, with no weights, the input subsampled and padded with zero
channels (option A). ResNet-18/34 stack *basic* blocks (two 3x3 convs); ResNet-50/101/152
stack *bottleneck* blocks (1x1 down, 3x3, 1x1 up by 4x). A basic block at 64 channels has
2 * 9 * 64 * 64 = 73.7 K weights; a bottleneck block on 256 channels has 256 * 64 + 9 * 64 *
64 + 64 * 256 = 69.6 K: four times the channels for the same cost. Depth counts the weighted
layers: ResNet-50 = 1 stem conv + 3 * (3 + 4 + 6 + 3) block convs + 1 classifier. ResNet v2
moves BatchNorm and ReLU in front of the convolutions ("pre-activation"): the shortcut path
is a clean identity end to end. The CIFAR-10 nets (section 4.2) have depth 6n + 2, option A
shortcuts and plain twins; stochastic depth skips their residual branches at random in training.

The v1 and v2 builders are keras.applications ResNet50/101/152(V2) layer for layer (names,
weight order), so weights transplant. `width` multiplies every layer's filters (1.0: the paper's).
"""

import sys

import keras
from keras import layers

# Blocks per stage (He et al. 2016, Table 1): basic blocks below 50 layers, bottlenecks above.
BLOCK_COUNTS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
STAGE_FILTERS = (64, 128, 256, 512)  # conv2..conv5; a bottleneck's output has 4x as many
BN_EPSILON = 1.001e-5  # the value keras.applications uses
MIN_SIZE = 32  # five stride-2 steps: 32 px leaves a 1x1 map
CIFAR_FILTERS = (16, 32, 64)  # CIFAR nets' conv2..conv4, on 32, 16, 8 px maps (He et al. 2016, section 4.2)


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


def _model(inputs, outputs, weights, name, twin=None, **twin_kwargs):
    """The model, with weights: None, a weights file, or "imagenet" through the keras.applications twin."""
    model = keras.Model(keras.utils.get_source_inputs(inputs)[0], outputs, name=name)
    if weights == "imagenet":
        _check(twin is not None, "weights", "None or a weights file (this model has no ImageNet twin)", weights)
        model.set_weights(getattr(keras.applications, twin)(weights="imagenet", **twin_kwargs).get_weights())
    elif weights is not None:
        model.load_weights(weights)
    return model


def _bn_relu(x, name, relu=True):
    """BN [-> ReLU], named {name}_bn and {name}_relu: after every conv in v1, before it in v2."""
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x) if relu else x


# --- the residual block, without BatchNorm (He et al. 2016, Figure 2) ---------------------
def residual_block(x, filters, pooling=False, *, name=None):
    """Two 3x3 convs plus the shortcut, y = F(x) + x; a 1x1 projection when the filters or
    the size (``pooling``: a 2x2 max-pool) change."""
    name, filters, shortcut = name or _unique("residual"), int(filters), x
    x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv1")(x)
    x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv2")(x)
    if pooling:
        x = layers.MaxPooling2D(2, padding="same", name=f"{name}_pool")(x)
        shortcut = layers.Conv2D(filters, 1, strides=2, name=f"{name}_proj")(shortcut)
    elif shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, name=f"{name}_proj")(shortcut)
    return layers.Add(name=f"{name}_out")([x, shortcut])


# --- ResNet v1: post-activation blocks ------------------------------------------------
def basic_block(x, filters, strides=1, *, shortcut="B", residual=True, survival_probability=None, use_bias=True,
                name=None):
    """ResNet-18/34 and CIFAR block: 3x3 (stride) -> 3x3, plus the shortcut; where the shape changes, option
    "B" projects (1x1 conv + BN), "A" subsamples and appends zero channels. ``residual=False``: no shortcut.
    ``use_bias`` as keras.applications' v1 (the paper's convs have none); ``survival_probability``: resnet_cifar."""
    name, filters, strides, p = name or _unique("basic_block"), int(filters), int(strides), survival_probability
    _check(shortcut in ("A", "B"), "shortcut", "'A' or 'B'", shortcut)
    _check(p is None or residual and 0 < p <= 1, "survival_probability", "None, or in (0, 1] if residual", p)
    skip, channels = x, x.shape[-1]
    if residual and (strides != 1 or channels != filters) and shortcut == "B":
        skip = layers.Conv2D(filters, 1, strides=strides, use_bias=use_bias, name=f"{name}_0_conv")(x)
        skip = _bn_relu(skip, f"{name}_0", relu=False)
    elif residual and (strides != 1 or channels != filters):  # "A": every stride-th pixel (a 1x1 max-pool)
        _check(filters % channels == 0, "filters", f"a multiple of the input's {channels} channels", filters)
        skip = layers.MaxPooling2D(1, strides=strides, name=f"{name}_0_pool")(x)
        zeros = layers.Rescaling(0.0, name=f"{name}_0_zeros")(skip)  # x * 0: zeros shaped like x
        skip = layers.Concatenate(name=f"{name}_0_pad")([skip] + [zeros] * (filters // channels - 1))
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=use_bias, name=f"{name}_1_conv")(x)
    x = layers.Conv2D(filters, 3, padding="same", use_bias=use_bias, name=f"{name}_2_conv")(_bn_relu(x, f"{name}_1"))
    x = _bn_relu(x, f"{name}_2", relu=False)
    if p is not None:  # one draw per sample (noise_shape) drops its whole branch
        x = layers.Dropout(1 - p, noise_shape=(None, 1, 1, 1), name=f"{name}_drop")(x)
    if residual:
        x = layers.Add(name=f"{name}_add")([skip, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def bottleneck_block(x, filters, strides=1, *, name=None):
    """ResNet-50/101/152 block: 1x1 (stride) -> 3x3 -> 1x1 to 4 * filters, plus the
    shortcut (a 1x1 projection when the shape changes, created first as in keras.applications)."""
    name, filters, strides, shortcut = name or _unique("bottleneck_block"), int(filters), int(strides), x
    if strides != 1 or x.shape[-1] != 4 * filters:
        shortcut = layers.Conv2D(4 * filters, 1, strides=strides, name=f"{name}_0_conv")(x)
        shortcut = _bn_relu(shortcut, f"{name}_0", relu=False)
    x = layers.Conv2D(filters, 1, strides=strides, name=f"{name}_1_conv")(x)
    x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_2_conv")(_bn_relu(x, f"{name}_1"))
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(_bn_relu(x, f"{name}_2"))
    x = layers.Add(name=f"{name}_add")([shortcut, _bn_relu(x, f"{name}_3", relu=False)])
    return layers.Activation("relu", name=f"{name}_out")(x)


# --- ResNet v2: the pre-activation block (He et al. 2016b, Figure 4e) ------------------
def preact_bottleneck_block(x, filters, strides=1, *, name=None):
    """ResNet v2 block: BN-ReLU first, then 1x1 -> 3x3 (stride) -> 1x1 to 4 * filters. The
    shortcut is a 1x1 conv of the pre-activation when the channels change, else x itself
    (subsampled by a 1x1 max-pool when strided): nothing else on the identity path."""
    name, filters, strides = name or _unique("preact_block"), int(filters), int(strides)
    preact, shortcut = _bn_relu(x, f"{name}_preact"), x
    if x.shape[-1] != 4 * filters:
        shortcut = layers.Conv2D(4 * filters, 1, strides=strides, name=f"{name}_0_conv")(preact)
    elif strides != 1:
        shortcut = layers.MaxPooling2D(1, strides=strides, name=f"{name}_0_pool")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_1_conv")(preact)
    x = layers.ZeroPadding2D(1, name=f"{name}_2_pad")(_bn_relu(x, f"{name}_1"))
    x = layers.Conv2D(filters, 3, strides=strides, use_bias=False, name=f"{name}_2_conv")(x)
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(_bn_relu(x, f"{name}_2"))
    return layers.Add(name=f"{name}_out")([shortcut, x])


# --- the networks: a 7x7/2 stem, a 3x3/2 max-pool, stages conv2..conv5 -------------------
def _resnet(depth, preact, width, include_top, weights, input_tensor, input_shape, pooling,
            classes, classifier_activation, name):
    """ResNet-``depth`` (v2 with ``preact``), filters times ``width``; the builders pass their ``**locals()``."""
    inputs = _inputs(input_tensor, input_shape, include_top, 224, MIN_SIZE)
    x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = layers.Conv2D(int(64 * width), 7, strides=2, name="conv1_conv")(x)
    x = x if preact else _bn_relu(x, "conv1")  # in v2 the first block's pre-activation normalizes the stem
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    block = preact_bottleneck_block if preact else bottleneck_block if depth >= 50 else basic_block
    for stage, (blocks, filters) in enumerate(zip(BLOCK_COUNTS[depth], STAGE_FILTERS), start=2):
        for i in range(1, blocks + 1):
            # v1 halves the grid in conv3..5's first block, keras.applications' v2 in conv2..4's last
            strided = (i == blocks and stage < 5) if preact else (i == 1 and stage > 2)
            x = block(x, int(filters * width), 2 if strided else 1, name=f"conv{stage}_block{i}")
    x = _bn_relu(x, "post") if preact else x
    outputs = _top(x, include_top, pooling, classes, classifier_activation)
    twin = f"ResNet{depth}{'V2' if preact else ''}" if depth >= 50 and width == 1 else None
    return _model(inputs, outputs, weights, name, twin, include_top=include_top, pooling=pooling,
                  input_shape=tuple(inputs.shape[1:]), classes=classes, classifier_activation=classifier_activation)


def resnet18(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
             classes=1000, classifier_activation="softmax", name="resnet18", *, width=1.0):
    """ResNet-18 (He et al. 2016): basic blocks (2, 2, 2, 2)."""
    return _resnet(18, False, **locals())

def resnet34(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
             classes=1000, classifier_activation="softmax", name="resnet34", *, width=1.0):
    """ResNet-34 (He et al. 2016): basic blocks (3, 4, 6, 3)."""
    return _resnet(34, False, **locals())

def resnet50(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
             classes=1000, classifier_activation="softmax", name="resnet50", *, width=1.0):
    """ResNet-50 (He et al. 2016): bottleneck blocks (3, 4, 6, 3); keras.applications ResNet50."""
    return _resnet(50, False, **locals())

def resnet101(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
              classes=1000, classifier_activation="softmax", name="resnet101", *, width=1.0):
    """ResNet-101 (He et al. 2016): bottleneck blocks (3, 4, 23, 3); keras.applications ResNet101."""
    return _resnet(101, False, **locals())

def resnet152(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
              classes=1000, classifier_activation="softmax", name="resnet152", *, width=1.0):
    """ResNet-152 (He et al. 2016): bottleneck blocks (3, 8, 36, 3); keras.applications ResNet152."""
    return _resnet(152, False, **locals())

def resnet50v2(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
               classes=1000, classifier_activation="softmax", name="resnet50v2", *, width=1.0):
    """ResNet-50 v2 (He et al. 2016b): pre-activation bottlenecks (3, 4, 6, 3); keras.applications ResNet50V2."""
    return _resnet(50, True, **locals())

def resnet101v2(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                classes=1000, classifier_activation="softmax", name="resnet101v2", *, width=1.0):
    """ResNet-101 v2 (He et al. 2016b): pre-activation bottlenecks (3, 4, 23, 3); keras.applications ResNet101V2."""
    return _resnet(101, True, **locals())

def resnet152v2(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                classes=1000, classifier_activation="softmax", name="resnet152v2", *, width=1.0):
    """ResNet-152 v2 (He et al. 2016b): pre-activation bottlenecks (3, 8, 36, 3); keras.applications ResNet152V2."""
    return _resnet(152, True, **locals())


# --- CIFAR ResNets and their plain twins (He et al. 2016, section 4.2) ----------------------
def resnet_cifar(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                 classes=10, classifier_activation="softmax", name="resnet_cifar", *, depth=20,
                 shortcut="A", residual=True, survival_probability=None):
    """ResNet-``depth`` for CIFAR-10: a 3x3 conv to 16 filters, stages conv2..conv4 of n = (depth - 2) / 6
    basic blocks at 16, 32, 64 filters (stride 2 entering conv3 and conv4), the classifier; Table 6: 0.27 M
    weights at depth 20, 1.7 M at 110, 19.4 M at 1202. ``survival_probability`` p_L: stochastic depth,
    block l of L = 3n keeps its branch with probability p_l = 1 - l / L * (1 - p_L) in training (the paper's
    p_L = 0.5 keeps (3L - 1) / 4 on average). The paper scales the branch by p_l at test time; this Dropout scales
    a kept branch by 1 / p_l in training instead. Either way the branch at test time is its expected training
    value, and the branch's last BatchNorm absorbs the constant factor between the two forms."""
    _check(hasattr(depth, "__index__") and depth > 2 and (depth - 2) % 6 == 0, "depth", "6n + 2", depth)
    _check(survival_probability is None or residual and 0 < survival_probability <= 1, "survival_probability",
           "None, or p_L in (0, 1] with residual=True", survival_probability)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5 * int(depth)))  # Keras walks the graph recursively
    inputs = _inputs(input_tensor, input_shape, include_top, 32, 4)  # two stride-2 steps: 4 px leave 1x1
    x = _bn_relu(layers.Conv2D(16, 3, padding="same", use_bias=False, name="conv1_conv")(inputs), "conv1")
    n = (int(depth) - 2) // 6
    for stage, filters in enumerate(CIFAR_FILTERS, start=2):
        for i in range(1, n + 1):
            l = (stage - 2) * n + i  # block l of L = 3n
            p = None if survival_probability is None else 1 - l / (3 * n) * (1 - survival_probability)
            x = basic_block(x, filters, 2 if i == 1 and stage > 2 else 1, shortcut=shortcut, residual=residual,
                            survival_probability=p, use_bias=False, name=f"conv{stage}_block{i}")
    return _model(inputs, _top(x, include_top, pooling, classes, classifier_activation), weights, name)


def feature_stages(model):
    """The names of `model`'s stage outputs, shallow to deep: the layers a feature pyramid,
    a U-Net encoder or Grad-CAM taps, one per stride 2, 4, 8, 16, 32. v1: the stem's ReLU
    and each stage's last block (ResNet-50: conv1_relu, conv2_block3_out, conv3_block4_out,
    conv4_block6_out, conv5_block3_out). v2 strides in a stage's last block, so the block
    before it (ResNet-50 v2: conv1_conv, conv2_block2_out, conv3_block3_out, conv4_block5_out, post_relu);
    the CIFAR nets: each stage's last block, at strides 1, 2, 4 (ResNet-20: conv2_block3_out ... conv4_block3_out)."""
    names = [layer.name for layer in model.layers]
    outs = {}  # stage -> its block outputs, in order
    for layer_name in names:
        if layer_name.startswith("conv") and "_block" in layer_name and layer_name.endswith("_out"):
            outs.setdefault(layer_name.split("_")[0], []).append(layer_name)
    if "pool1_pool" not in names:  # the CIFAR nets
        return [blocks[-1] for blocks in outs.values()]
    if "post_relu" not in names:
        return ["conv1_relu", *(blocks[-1] for blocks in outs.values())]
    return ["conv1_conv", *(blocks[-2] for blocks in list(outs.values())[:-1]), "post_relu"]


# The twins' input preprocessing: v1 RGB to BGR minus the ImageNet mean ("caffe"), v2 scaled to [-1, 1] ("tf").
preprocess_input = keras.applications.resnet.preprocess_input
preprocess_input_v2 = keras.applications.resnet_v2.preprocess_input


# --- cookbook metadata: plain data the cookbook reads; a copied file can delete it ---

FAMILY = "Residual networks"
PAPERS = (
    "He, Zhang, Ren, Sun 2016. Deep Residual Learning for Image Recognition. CVPR.",
    "He, Zhang, Ren, Sun 2016. Identity Mappings in Deep Residual Networks. ECCV.",
    "Huang, Sun, Liu, Sedra, Weinberger 2016. Deep Networks with Stochastic Depth. ECCV.",
)
TASK = "classification"
DEFAULT_BUILDER = "resnet50"
BUILDERS = {"resnet18": {}, "resnet34": {}, "resnet50": {"twin": "ResNet50", "params": 25_636_712},
            "resnet101": {"twin": "ResNet101"}, "resnet152": {"twin": "ResNet152"}, "resnet50v2": {"twin": "ResNet50V2"},
            "resnet101v2": {"twin": "ResNet101V2"}, "resnet152v2": {"twin": "ResNet152V2"}, "resnet_cifar": {}}
DEMO = {
    "builder": "resnet18",
    "kwargs": {"input_shape": (64, 64, 1), "classes": 10, "width": 0.25},
    "epochs": 9,
    "learning_rate": 4e-3,
}
