"""AlexNet: the deep convolutional network that won ImageNet 2012.

Paper: Krizhevsky, Sutskever and Hinton, "ImageNet Classification with Deep
Convolutional Neural Networks" (NeurIPS 2012).

AlexNet is eight learned layers: five convolutions and three fully connected
layers, ending in a 1000-way softmax. It made a handful of ideas standard at once:
ReLU instead of tanh (several times faster to train), overlapping 3x3/2 max-pooling,
dropout 0.5 on the first two fully connected layers, data augmentation, and
training on GPUs. The first conv is a large 11x11 kernel with stride 4; on the
paper's 224x224 input, zero-padded by 2 pixels, it gives a 55x55 map at once
((224 + 4 - 11) / 4 + 1 = 55), and the later convs (5x5, then 3x3) keep their size.
Three overlapping pools take 55 to 27, 13 and 6: the first fully connected layer
reads 6 * 6 * 256 = 9216 values, and needs a fixed input size.

This is the network in one tower: the paper's two GPU halves merged, every conv
seeing all channels of the layer below (conv1 96, conv2 256, conv3 384, conv4 384,
conv5 256; FC 4096, 4096, classes). At 224x224x3 with 1000 classes it has
62,378,344 parameters, the paper's "60 million". `groups=2` restores the paper's
two-GPU wiring, where conv2, conv4 and conv5 see only the kernels on their own GPU:
60,965,224 parameters. Local response normalization, which the paper applied after
conv1 and conv2, has no weights and no Keras layer, and later work found it
unnecessary, so it is left out (torchvision's AlexNet leaves it out too). `width`
multiplies the conv filters and `fc_units` sets the hidden fully connected layers.

Two options adapt it to small images. `stem="low_res"` makes conv1 a 5x5/2: the 11x11/4
stem on a 64 px image leaves conv5 a 3x3 map. `batch_norm=True` adds BatchNorm after
every conv: without it (or the paper's tens of epochs) the plain eight-layer network
barely moves from chance in a short run.
"""

import keras
from keras import layers

# conv1 as (kernel, stride) per stem. "low_res" is the 224 px stem scaled to 64 px inputs
# (3.5x smaller): a 5x5/2 conv, so that a 64 px digit still leaves a 7x7 conv5 map.
STEMS = {"imagenet": (11, 4), "low_res": (5, 2)}
# Three valid 3x3/2 pools need a 15x15 conv1 map: (63 + 2 * 2 - 11) / 4 + 1 = 15.
MIN_SIZES = {"imagenet": 63, "low_res": 29}


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
    """AlexNet's head: Flatten, fc6, fc7 (each with dropout), predictions, in float32."""
    _check(pooling in (None, "avg", "max"), "pooling", "None, 'avg' or 'max'", pooling)
    _check(0 <= dropout < 1, "dropout", "a rate in [0, 1)", dropout)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        for i in (6, 7):
            x = layers.Dense(int(fc_units), activation="relu", name=f"fc{i}")(x)
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


# --- the block: conv + ReLU, then overlapping max-pool -----------------------------------


def conv_pool_block(x, filters, kernel_size, strides=1, padding=0, groups=1, pool=True, *,
                    batch_norm=False, name=None):
    """``padding`` zeros on each side, conv ``kernel_size`` with ReLU, then an overlapping
    3x3/2 max-pool if ``pool``. ``groups`` splits the conv into independent towers, one
    per GPU in the paper. ``batch_norm`` puts BatchNorm between the conv and its ReLU
    (Ioffe and Szegedy 2015, after AlexNet); the ReLU keeps the block's name.
    """
    name = name or _unique("conv")
    kernel_size, strides, padding = int(kernel_size), int(strides), int(padding)  # Keras takes no NumPy ints
    if padding:  # as a pair, so that Keras rejects a negative padding
        x = layers.ZeroPadding2D((padding, padding), name=f"{name}_pad")(x)
    least = kernel_size + (2 * strides if pool else 0)  # the conv's window, then the 3x3/2 pool's
    _check(all(d is None or d >= least for d in x.shape[1:3]), "x (padded)", f"at least {least}x{least}", x.shape)
    if batch_norm:
        x = layers.Conv2D(int(filters), kernel_size, strides=strides, groups=groups,
                          use_bias=False, name=f"{name}_conv")(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        x = layers.ReLU(name=name)(x)
    else:
        x = layers.Conv2D(int(filters), kernel_size, strides=strides, groups=groups,
                          activation="relu", name=name)(x)
    if pool:
        x = layers.MaxPooling2D(3, strides=2, name=f"{name}_pool")(x)
    return x


# --- the network ---------------------------------------------------------------------------


def alexnet(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
            classes=1000, classifier_activation="softmax", name="alexnet", *, width=1.0,
            fc_units=4096, dropout=0.5, groups=1, batch_norm=False, stem="imagenet"):
    """AlexNet (Krizhevsky et al. 2012), one tower: 62,378,344 parameters at 224x224x3.

    ``groups=2`` is the paper's two-GPU wiring of conv2, conv4 and conv5 (60,965,224
    parameters); ``width`` multiplies the conv filters; ``fc_units`` and ``dropout``
    set fc6 and fc7. ``batch_norm`` adds BatchNorm to every conv (it trains in a few
    epochs where the plain network needs tens); ``stem="low_res"`` is conv1 as 5x5/2 for
    inputs of about 64 px.
    """
    _check(stem in STEMS, "stem", f"one of {tuple(STEMS)}", stem)
    inputs = _inputs(input_tensor, input_shape, include_top, 224, MIN_SIZES[stem])
    kernel, strides = STEMS[stem]
    # Figure 2; padded as in torchvision's AlexNet. Maps at 224 px: 55 -> 27, 27 -> 13, 13, 13 -> 6.
    x = conv_pool_block(inputs, 96 * width, kernel, strides, 2, batch_norm=batch_norm, name="conv1")
    x = conv_pool_block(x, 256 * width, 5, 1, 2, groups, batch_norm=batch_norm, name="conv2")
    x = conv_pool_block(x, 384 * width, 3, 1, 1, pool=False, batch_norm=batch_norm, name="conv3")
    x = conv_pool_block(x, 384 * width, 3, 1, 1, groups, pool=False, batch_norm=batch_norm,
                        name="conv4")
    x = conv_pool_block(x, 256 * width, 3, 1, 1, groups, batch_norm=batch_norm, name="conv5")
    outputs = _top(x, include_top, pooling, classes, classifier_activation, fc_units, dropout)
    return _model(inputs, outputs, weights, name)


def feature_stages(model):
    """The names of `model`'s stage outputs, shallow to deep: the layers a feature pyramid,
    a U-Net encoder or Grad-CAM taps. The five convs (after their ReLU, before any pool):
    conv1 (55x55 at 224 px), conv2 (27x27), conv3, conv4 and conv5 (13x13)."""
    return [f"conv{i}" for i in range(1, 6)]


# --- cookbook metadata: plain data the cookbook reads; a copied file can delete it ---

FAMILY = "Classic CNNs"
PAPERS = (
    "Krizhevsky, Sutskever, Hinton 2012. ImageNet Classification with Deep Convolutional Neural Networks. NeurIPS.",
)
TASK = "classification"
DEFAULT_BUILDER = "alexnet"
BUILDERS = {"alexnet": {"params": 62_378_344}}
DEMO = {
    "builder": "alexnet",
    "kwargs": {"input_shape": (64, 64, 1), "classes": 10, "width": 0.125, "fc_units": 256,
               "dropout": 0.0, "batch_norm": True, "stem": "low_res"},
    "epochs": 10,  # 3 seeds: test accuracy 0.924-0.958; in 8 epochs 0.895-0.942
    "learning_rate": 3e-3,
    "augment": "translate",
    "gradcam_layer": "conv5",
}
