"""Inception v1 (GoogLeNet): convolutions of several sizes side by side.

Paper: Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan, Vanhoucke and Rabinovich,
"Going Deeper with Convolutions" (CVPR 2015).

The object in an image may fill the frame or a corner of it, so which kernel size is
right? An Inception module does not choose: it runs a 1x1, a 3x3 and a 5x5 conv and a
3x3 max-pool on the same input, side by side, and concatenates their outputs along the
channel axis (the *naive* module). Stacked naively that is very expensive: a 5x5 conv
from 28x28x192 to 32 channels costs 28 * 28 * 32 * 5 * 5 * 192 = 120 M multiply-adds.
So the real module first *reduces* the channels with a 1x1 conv (to 16 there:
28 * 28 * 16 * 192 = 2.4 M, then 28 * 28 * 32 * 5 * 5 * 16 = 10 M, 12.4 M in all), and
projects the pool branch with a 1x1 as well. GoogLeNet stacks nine such modules (3a-5b,
the widths of the paper's Table 1) after a small conv stem, ends with global average
pooling and 40 % dropout, and during training adds two auxiliary classifiers on 4a and
4d whose losses, weighted 0.3, push gradient into the middle of the 22-layer network.

`googlenet()` builds Table 1 exactly (the 5x5 branches really are 5x5), about 7 M
parameters. The paper's local response normalization is left out: Keras has no such
layer and it holds no weights. `batch_norm=True` puts BatchNorm after every conv
instead, as Ioffe and Szegedy ("Batch Normalization", ICML 2015) did to GoogLeNet and
as torchvision's GoogLeNet does. With `aux_classifiers=True` the builder returns the
training model with three outputs (main head first; compile it with
`loss_weights=AUX_LOSS_WEIGHTS`), and `inference_model(model)` gives the one-output
model that shares its weights.
"""

import keras
from keras import layers

# Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj. A max-pool 3x3/2
# comes before 3a, 4a and 5a.
TABLE1 = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
AUX_ON = ("4a", "4d")  # the auxiliary classifiers read these modules' outputs
AUX_LOSS_WEIGHTS = (1.0, 0.3, 0.3)  # main head, aux on 4a, aux on 4d
MIN_SIZE = 32  # five stride-2 steps: 32 px leaves 5b a 1x1 map


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
    """keras.applications' head, with GoogLeNet's dropout before the classifier, which
    runs in float32 under mixed precision."""
    _check(pooling in (None, "avg", "max"), "pooling", "None, 'avg' or 'max'", pooling)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)  # the paper's 7x7/1 average pool
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


def _conv(x, filters, kernel, strides=1, batch_norm=False, *, name):
    """Conv -> [BatchNorm] -> ReLU: the paper puts a ReLU after every convolution."""
    x = layers.Conv2D(int(filters), kernel, strides=strides, padding="same", use_bias=not batch_norm,
                      name=name)(x)
    if batch_norm:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


# --- the two Inception modules of the paper's figure 2 ----------------------------------


def naive_inception_module(x, filters_1x1, filters_3x3, filters_5x5, *, name=None):
    """Figure 2(a): 1x1, 3x3 and 5x5 convs and a 3x3 max-pool, concatenated.

    The pool branch keeps all input channels, so the output has
    filters_1x1 + filters_3x3 + filters_5x5 + input channels.
    """
    name = name or _unique("naive_inception")
    branches = [
        _conv(x, filters_1x1, 1, name=f"{name}_1x1"),
        _conv(x, filters_3x3, 3, name=f"{name}_3x3"),
        _conv(x, filters_5x5, 5, name=f"{name}_5x5"),
        layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x),
    ]
    return layers.Concatenate(name=name)(branches)


def inception_module(x, filters_1x1, filters_3x3_reduce, filters_3x3, filters_5x5_reduce,
                     filters_5x5, pool_proj, *, batch_norm=False, name=None):
    """Figure 2(b): the module with dimension reductions, one column of Table 1.

    Branches: #1x1 | #3x3 reduce -> #3x3 | #5x5 reduce -> #5x5 | max-pool -> pool proj.
    """
    name = name or _unique("inception")
    branch_1x1 = _conv(x, filters_1x1, 1, batch_norm=batch_norm, name=f"{name}_1x1")
    branch_3x3 = _conv(x, filters_3x3_reduce, 1, batch_norm=batch_norm, name=f"{name}_3x3_reduce")
    branch_3x3 = _conv(branch_3x3, filters_3x3, 3, batch_norm=batch_norm, name=f"{name}_3x3")
    branch_5x5 = _conv(x, filters_5x5_reduce, 1, batch_norm=batch_norm, name=f"{name}_5x5_reduce")
    branch_5x5 = _conv(branch_5x5, filters_5x5, 5, batch_norm=batch_norm, name=f"{name}_5x5")
    branch_pool = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branch_pool = _conv(branch_pool, pool_proj, 1, batch_norm=batch_norm, name=f"{name}_pool_proj")
    return layers.Concatenate(name=name)([branch_1x1, branch_3x3, branch_5x5, branch_pool])


def _aux_classifier(x, classes, classifier_activation, scale, batch_norm, name):
    """5x5/3 average pool, 1x1 conv 128, FC 1024, dropout 0.7, linear to the classes.

    On a 14x14 map (224 px input) the pool leaves 4x4. On smaller inputs the window
    shrinks to the map, so the head still builds.
    """
    window = min(5, x.shape[1], x.shape[2])
    x = layers.AveragePooling2D(window, strides=3, name=f"{name}_pool")(x)
    x = _conv(x, scale(128), 1, batch_norm=batch_norm, name=f"{name}_conv")
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(scale(1024), activation="relu", name=f"{name}_fc")(x)
    x = layers.Dropout(0.7, name=f"{name}_dropout")(x)
    return layers.Dense(int(classes), activation=classifier_activation, dtype="float32",
                        name=f"{name}_predictions")(x)


# --- GoogLeNet ----------------------------------------------------------------------------


def googlenet(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
              classes=1000, classifier_activation="softmax", name="googlenet", *,
              width=1.0, aux_classifiers=False, dropout=0.4, batch_norm=False):
    """GoogLeNet (Szegedy et al. 2015) as in Table 1: about 7 M parameters at 1000 classes.

    ``width`` multiplies every channel count (1.0 is the paper). ``dropout`` is the rate
    before the classifier (the paper's 40 %). ``aux_classifiers=True`` adds the auxiliary
    heads on 4a and 4d: the model then has three outputs, main head first; train it with
    ``loss_weights=AUX_LOSS_WEIGHTS`` and predict with ``inference_model(model)``.
    ``batch_norm=True`` is the BN-GoogLeNet of Ioffe and Szegedy (2015): BatchNorm after
    every conv, and no conv biases.
    """
    _check(width > 0, "width", "> 0", width)
    _check(0 <= dropout < 1, "dropout", "in [0, 1)", dropout)
    _check(include_top or not aux_classifiers, "aux_classifiers", "False without a top", aux_classifiers)
    inputs = _inputs(input_tensor, input_shape, include_top, 224, MIN_SIZE)
    _check(not aux_classifiers or None not in inputs.shape[1:3], "input_shape",
           "a fixed size with aux_classifiers (their dense layers need one)", input_shape)

    def scale(channels):
        return max(1, round(channels * width))

    # Stem: conv 7x7/2, max-pool 3x3/2, conv 1x1 (the "3x3 reduce") and 3x3, max-pool 3x3/2.
    x = _conv(inputs, scale(64), 7, strides=2, batch_norm=batch_norm, name="conv1")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = _conv(x, scale(64), 1, batch_norm=batch_norm, name="conv2_reduce")
    x = _conv(x, scale(192), 3, batch_norm=batch_norm, name="conv2")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)

    aux_outputs = []
    for module, widths in TABLE1.items():
        if module in ("4a", "5a"):  # a stride-2 max-pool between the stages
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{int(module[0]) - 1}")(x)
        x = inception_module(x, *(scale(w) for w in widths), batch_norm=batch_norm,
                             name=f"inception_{module}")
        if aux_classifiers and module in AUX_ON:
            aux_outputs.append(_aux_classifier(x, classes, classifier_activation, scale, batch_norm,
                                               name=f"aux{len(aux_outputs) + 1}"))

    x = _top(x, include_top, pooling, classes, classifier_activation, dropout)
    return _model(inputs, [x, *aux_outputs] if aux_classifiers else x, weights, name)


def inference_model(model):
    """The one-output model (input -> ``predictions``) that shares ``model``'s weights.

    The auxiliary classifiers are dropped, as the paper does at inference time.
    """
    return keras.Model(model.inputs, model.get_layer("predictions").output, name=f"{model.name}_inference")


def feature_stages(model):
    """The names of `model`'s stage outputs, shallow to deep: the layers a feature pyramid,
    a U-Net encoder or Grad-CAM taps. The two stem convs, then the last Inception module
    before each max-pool and the last one: conv1_relu, conv2_relu, inception_3b,
    inception_4e and inception_5b (strides 2, 4, 8, 16 and 32)."""
    last = {}  # stage digit -> its last module, in the order the stages come
    for layer in model.layers:
        if layer.name.startswith("inception_") and layer.name.count("_") == 1:
            last[layer.name[len("inception_")]] = layer.name
    return ["conv1_relu", "conv2_relu", *last.values()]


# --- cookbook metadata: plain data the cookbook reads; a copied file can delete it ---

FAMILY = "Inception networks"
PAPERS = (
    "Szegedy et al. 2015. Going Deeper with Convolutions. CVPR.",
    ("Ioffe, Szegedy 2015. Batch Normalization: Accelerating Deep Network Training by "
     "Reducing Internal Covariate Shift. ICML."),
)
TASK = "classification"
DEFAULT_BUILDER = "googlenet"
BUILDERS = {"googlenet": {"params": 6_998_552}}
DEMO = {
    "builder": "googlenet",
    "kwargs": {"input_shape": (64, 64, 1), "classes": 10, "width": 0.25, "batch_norm": True},
    "epochs": 10,  # 2 seeds: test accuracy 0.950 and 0.950; in 8 epochs, 7 runs: 0.900-0.935
    "learning_rate": 5e-3,
    "augment": "translate",  # in 8 epochs without it, 4 runs of one seed: 0.862-0.925
}
