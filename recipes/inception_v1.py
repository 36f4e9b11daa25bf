"""Inception v1 (GoogLeNet): convolutions of several sizes side by side.

Paper: Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan, Vanhoucke and Rabinovich,
"Going Deeper with Convolutions" (CVPR 2015).

The object in an image may fill the frame or a corner of it, so which kernel size is
right? An Inception module does not choose: it runs a 1x1, a 3x3 and a 5x5 conv and a
3x3 max-pool on the same input, side by side, and concatenates their outputs along the
channel axis (the *naive* module). Stacked naively that is very expensive: a 5x5 conv
from 28x28x192 to 32 channels costs 120 M multiply-adds. So the real module first
*reduces* the channels with a 1x1 conv (to 16 there: 2.4 M + 10 M = 12.4 M), and
projects the pool branch with a 1x1 as well. GoogLeNet stacks nine such modules
(3a-5b, the widths of the paper's Table 1) after a small conv stem, ends with global
average pooling, and during training adds two auxiliary classifiers on 4a and 4d whose
losses, weighted 0.3, push gradient into the middle of the 22-layer network.

`googlenet()` builds Table 1 exactly (the 5x5 branches really are 5x5). The paper's
local response normalization is left out: Keras has no such layer, it holds no
weights, and BatchNorm (`batch_norm=True`, off by default, as v1 had none) replaced it
in every later Inception. With `aux_classifiers=True` the builder returns the
training model with three outputs (main head first; compile it with
`loss_weights=AUX_LOSS_WEIGHTS`), and `inference_model(training_model)` gives the
one-output model that shares its weights.
"""

import math

import keras
from keras import layers

FAMILY = "Inception networks"
PAPERS = ("Szegedy et al. 2015. Going Deeper with Convolutions. CVPR.",)
TASK = "classification"
DEFAULT_BUILDER = "googlenet"
BUILDERS = {
    "googlenet": {"params": 6_998_552,
                  "small": {"input_shape": (32, 32, 3), "classes": 10, "width": 0.25}},
}
BLOCKS = {
    "naive_inception_module": {
        "input_shape": (28, 28, 1),
        "kwargs": {"filters_1x1": 64, "filters_3x3": 128, "filters_5x5": 32},
    },
    "inception_module": {
        "input_shape": (28, 28, 192),
        "kwargs": {"filters_1x1": 64, "filters_3x3_reduce": 96, "filters_3x3": 128,
                   "filters_5x5_reduce": 16, "filters_5x5": 32, "pool_proj": 32,
                   "batch_norm": False},
    },
}
DEMO = {  # BatchNorm on (v1 had none): it trains far faster
    "builder": "googlenet",
    "kwargs": {"input_shape": (64, 64, 1), "classes": 10, "width": 0.25, "batch_norm": True},
    "epochs": 8,
    "learning_rate": 5e-3,
}
# The eleven stages the course notes walk through: edges, textures, parts, objects.
STAGES = ("conv1_relu", "conv2_relu", "inception_3a", "inception_3b", "inception_4a",
          "inception_4b", "inception_4c", "inception_4d", "inception_4e", "inception_5a",
          "inception_5b")

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


# --- argument checks: fail early, name the argument ----------------------------------


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _check_bool(value, name):
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")


def _check_fraction(value, name, low=0.0, high=1.0, closed_high=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if not (low <= value <= high if closed_high else low <= value < high):
        raise ValueError(f"{name} must be in [{low}, {high}{']' if closed_high else ')'}, got {value}")


def _check_channels_last():
    if keras.config.image_data_format() != "channels_last":
        raise ValueError("image_data_format must be 'channels_last' for this recipe")


def _check_activation(value, name):
    """None, a callable, or a name that keras.activations.get knows."""
    if value is None or callable(value):
        return
    try:
        keras.activations.get(value)
    except (ValueError, TypeError):
        raise ValueError(f"{name} must be None, a callable or a Keras activation name, "
                         f"got {value!r}") from None


def _check_head(input_shape, include_top, pooling, classes, min_size):
    _check_channels_last()
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
    for dim in input_shape:
        _check_positive_int(dim, "input_shape")
    if min(input_shape[:2]) < min_size:
        raise ValueError(f"input_shape must be at least {min_size}x{min_size}, got {tuple(input_shape)}")
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
    _check_bool(include_top, "include_top")
    _check_positive_int(classes, "classes")


def _conv(x, filters, kernel, strides=1, batch_norm=False, *, name):
    """Conv -> [BatchNorm] -> ReLU: the paper puts a ReLU after every convolution."""
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=not batch_norm,
                      name=name)(x)
    if batch_norm:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


# --- the two Inception modules of the paper's figure 2 ----------------------------------


def naive_inception_module(x, filters_1x1, filters_3x3, filters_5x5, *, name="inception"):
    """Figure 2(a): 1x1, 3x3 and 5x5 convs and a 3x3 max-pool, concatenated.

    The pool branch keeps all input channels, so the output has
    filters_1x1 + filters_3x3 + filters_5x5 + input channels.
    """
    _check_positive_int(filters_1x1, "filters_1x1")
    _check_positive_int(filters_3x3, "filters_3x3")
    _check_positive_int(filters_5x5, "filters_5x5")
    _check_channels_last()
    branches = [
        _conv(x, filters_1x1, 1, name=f"{name}_1x1"),
        _conv(x, filters_3x3, 3, name=f"{name}_3x3"),
        _conv(x, filters_5x5, 5, name=f"{name}_5x5"),
        layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x),
    ]
    return layers.Concatenate(name=name)(branches)


def inception_module(x, filters_1x1, filters_3x3_reduce, filters_3x3, filters_5x5_reduce,
                     filters_5x5, pool_proj, batch_norm=False, *, name="inception"):
    """Figure 2(b): the module with dimension reductions, one column of Table 1.

    Branches: #1x1 | #3x3 reduce -> #3x3 | #5x5 reduce -> #5x5 | max-pool -> pool proj.
    """
    for value, argument in ((filters_1x1, "filters_1x1"), (filters_3x3_reduce, "filters_3x3_reduce"),
                            (filters_3x3, "filters_3x3"), (filters_5x5_reduce, "filters_5x5_reduce"),
                            (filters_5x5, "filters_5x5"), (pool_proj, "pool_proj")):
        _check_positive_int(value, argument)
    _check_bool(batch_norm, "batch_norm")
    _check_channels_last()
    branch_1x1 = _conv(x, filters_1x1, 1, batch_norm=batch_norm, name=f"{name}_1x1")
    branch_3x3 = _conv(x, filters_3x3_reduce, 1, batch_norm=batch_norm, name=f"{name}_3x3_reduce")
    branch_3x3 = _conv(branch_3x3, filters_3x3, 3, batch_norm=batch_norm, name=f"{name}_3x3")
    branch_5x5 = _conv(x, filters_5x5_reduce, 1, batch_norm=batch_norm, name=f"{name}_5x5_reduce")
    branch_5x5 = _conv(branch_5x5, filters_5x5, 5, batch_norm=batch_norm, name=f"{name}_5x5")
    branch_pool = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branch_pool = _conv(branch_pool, pool_proj, 1, batch_norm=batch_norm, name=f"{name}_pool_proj")
    return layers.Concatenate(name=name)([branch_1x1, branch_3x3, branch_5x5, branch_pool])


# --- the auxiliary classifier -------------------------------------------------------------


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
    return layers.Dense(classes, activation=classifier_activation, name=f"{name}_predictions")(x)


# --- GoogLeNet ----------------------------------------------------------------------------


def googlenet(
    input_shape=(224, 224, 3),
    include_top=True,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    width=1.0,
    aux_classifiers=False,
    batch_norm=False,
    dropout=0.4,
):
    """GoogLeNet as in Table 1 of the paper (about 7 M parameters at 1000 classes).

    ``width`` multiplies every channel count (1.0 is the paper). With
    ``aux_classifiers=True`` the model has three outputs: the main head, then the
    auxiliary heads on 4a and 4d; train it with ``loss_weights=AUX_LOSS_WEIGHTS`` and
    predict with ``inference_model(model)``.
    """
    _check_head(input_shape, include_top, pooling, classes, MIN_SIZE)
    if isinstance(width, bool) or not isinstance(width, (int, float)):
        raise TypeError(f"width must be a number, got {type(width).__name__}")
    if (isinstance(width, float) and not math.isfinite(width)) or width <= 0:
        raise ValueError(f"width must be a finite number > 0, got {width}")
    _check_bool(aux_classifiers, "aux_classifiers")
    _check_bool(batch_norm, "batch_norm")
    _check_fraction(dropout, "dropout")
    _check_activation(classifier_activation, "classifier_activation")
    if aux_classifiers and not include_top:
        raise ValueError("aux_classifiers=True needs include_top=True: the heads are classifiers")

    def scale(channels):
        return max(1, round(channels * width))

    inputs = keras.Input(shape=tuple(input_shape), name="input")
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
            aux_name = f"aux{len(aux_outputs) + 1}"
            aux_outputs.append(_aux_classifier(x, classes, classifier_activation, scale, batch_norm,
                                               aux_name))

    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)  # the 7x7/1 average pool
        x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    outputs = [x, *aux_outputs] if aux_classifiers else x
    return keras.Model(inputs, outputs, name="googlenet")


def inference_model(training_model):
    """The one-output model (input -> ``predictions``) that shares the training model's weights.

    The auxiliary classifiers are dropped, as the paper does at inference time.
    """
    if not isinstance(training_model, keras.Model):
        raise TypeError(f"training_model must be a keras.Model, got {type(training_model).__name__}")
    names = [layer.name for layer in training_model.layers]
    if "predictions" not in names:
        raise ValueError("training_model must have a 'predictions' layer (build it with include_top=True)")
    outputs = training_model.get_layer("predictions").output
    return keras.Model(training_model.inputs, outputs, name=f"{training_model.name}_inference")
