"""Audio convolutions: raw-waveform Conv1D networks and a spectrogram front end.

Papers: Dai, Dai, Qu, Li and Das, "Very Deep Convolutional Neural Networks for Raw
Waveforms" (ICASSP 2017); the residual Conv1D classifier of the keras-io example
"Speaker Recognition" (Fadi Badine, 2020).

A recording is a sequence of amplitudes, so the 1D convolution does for audio what
the 2D convolution does for images: a small filter slides along time and responds to
a local pattern, and stacking filters and pools grows what a unit sees. Raw audio is
long (8,000 samples a second), so Dai et al. open with one large, strided filter,
80 taps with stride 4 (10 ms at 8 kHz), that acts as a learned filter bank. Then
come only small 3-tap convs, each followed by BatchNorm and ReLU, with a 4x max-pool
between groups, and global average pooling in place of dense layers (M3, M5, M11,
M18). The keras-io speaker classifier stacks residual blocks: a 1x1 Conv1D shortcut
beside a few 3-tap convs, then add, ReLU and a 2x max-pool. The last builder goes
the other way: `keras.layers.STFTSpectrogram` turns the waveform into a
log-spectrogram inside the model, and ordinary 2D convs read it like an image. The
model still takes raw audio, so it saves and loads as a plain `.keras` file.
Every builder takes input of shape (samples, channels).
"""

import keras
from keras import layers

FAMILY = "Audio and sequences"
PAPERS = (
    "Dai, Dai, Qu, Li, Das 2017. Very Deep Convolutional Neural Networks for Raw Waveforms. ICASSP.",
    "Badine 2020. Speaker Recognition (keras-io example, residual Conv1D on FFT features).",
)
TASK = "audio"
DEFAULT_BUILDER = "m5"
_SMALL = {"input_shape": (2048, 1), "classes": 4}
BUILDERS = {
    "m3": {"small": _SMALL},
    "m5": {"small": _SMALL, "params": 560_138},
    "m11": {"small": _SMALL},
    "m18": {"small": _SMALL},
    "audio_resnet": {"small": {"input_shape": (512, 1), "classes": 4}},
    "spectrogram_cnn": {"small": {"input_shape": (2048, 1), "classes": 4, "width": 8}},
}
BLOCKS = {
    "conv_bn_relu_1d": {"input_shape": (256, 4), "kwargs": {"filters": 8, "kernel_size": 3, "strides": 2}},
    "residual_block_1d": {"input_shape": (256, 4), "kwargs": {"filters": 8, "num_convs": 3}},
}
DEMO = {
    "builder": "m5",
    "kwargs": {"input_shape": (8000, 1), "classes": 8, "width": 48},
    "epochs": 12,
    "learning_rate": 3e-3,
}
STAGES = ("conv1_relu", "conv2_1_relu", "conv3_1_relu", "conv4_1_relu")

# Dai et al., Table 1: (filters, number of 3-tap convs) per group, after the 80/4 stem.
# Widths are multiples of the stem width `width`; `pool_last` says whether the last
# group is followed by a 4x max-pool too (M3 and M5 are, M11 and M18 are not).
DAI_LAYOUTS = {
    "m3": {"width": 256, "groups": ((1, 1),), "pool_last": True},
    "m5": {"width": 128, "groups": ((1, 1), (2, 1), (4, 1)), "pool_last": True},
    "m11": {"width": 64, "groups": ((1, 2), (2, 2), (4, 3), (8, 2)), "pool_last": False},
    "m18": {"width": 64, "groups": ((1, 4), (2, 4), (4, 4), (8, 4)), "pool_last": False},
}
STEM_KERNEL, STEM_STRIDE, POOL = 80, 4, 4
# keras-io speaker recognition: (filters, convs) per residual block.
AUDIO_RESNET_BLOCKS = ((16, 2), (32, 2), (64, 3), (128, 3), (128, 3))


# --- argument checks: fail early, name the argument ----------------------------------


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _check_channels_last():
    # Conv1D and the pools read keras.config.image_data_format(); BatchNorm and the
    # (samples, channels) input layout assume channels_last.
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


def _check_head(input_shape, include_top, pooling, classes, min_samples):
    _check_channels_last()
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 2:
        raise ValueError(f"input_shape must be (samples, channels), got {input_shape!r}")
    for dim in input_shape:
        _check_positive_int(dim, "input_shape")
    if input_shape[0] < min_samples:
        raise ValueError(f"input_shape must have at least {min_samples} samples, got {tuple(input_shape)}")
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
    if not isinstance(include_top, bool):
        raise TypeError(f"include_top must be a bool, got {type(include_top).__name__}")
    _check_positive_int(classes, "classes")


def _head(x, include_top, pooling, classes, classifier_activation, rank=1):
    avg = layers.GlobalAveragePooling1D if rank == 1 else layers.GlobalAveragePooling2D
    if include_top:
        x = avg(name="avg_pool")(x)
        return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    if pooling == "avg":
        return avg(name="avg_pool")(x)
    if pooling == "max":
        glob = layers.GlobalMaxPooling1D if rank == 1 else layers.GlobalMaxPooling2D
        return glob(name="max_pool")(x)
    return x


# --- the two blocks --------------------------------------------------------------------


def conv_bn_relu_1d(x, filters, kernel_size=3, strides=1, *, name="conv"):
    """Conv1D (no bias: BN has one), BatchNorm, ReLU: the unit Dai et al. repeat."""
    _check_positive_int(filters, "filters")
    _check_positive_int(kernel_size, "kernel_size")
    _check_positive_int(strides, "strides")
    _check_channels_last()
    x = layers.Conv1D(filters, kernel_size, strides=strides, padding="same", use_bias=False,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def residual_block_1d(x, filters, num_convs=3, *, name="block"):
    """keras-io speaker block: 1x1 shortcut beside (n-1) x [conv3, ReLU] + conv3; add, ReLU, pool 2."""
    _check_positive_int(filters, "filters")
    _check_positive_int(num_convs, "num_convs")
    _check_channels_last()
    if x.shape[1] is not None and x.shape[1] < 2:
        raise ValueError(f"x must be at least 2 steps long for the 2x max-pool, got {x.shape[1]}")
    # The shortcut is created first, as in keras-io, so weights line up with its model.
    shortcut = layers.Conv1D(filters, 1, padding="same", name=f"{name}_shortcut")(x)
    for i in range(1, num_convs):
        x = layers.Conv1D(filters, 3, padding="same", name=f"{name}_conv{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    x = layers.Conv1D(filters, 3, padding="same", name=f"{name}_conv{num_convs}")(x)
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    x = layers.Activation("relu", name=f"{name}_out")(x)
    return layers.MaxPooling1D(2, strides=2, name=f"{name}_pool")(x)


# --- M3 / M5 / M11 / M18 (Dai et al. 2017) -------------------------------------------


def dai_min_samples(layout):
    """Shortest input that leaves at least one step after the stem stride and every pool."""
    pools = len(DAI_LAYOUTS[layout]["groups"]) + DAI_LAYOUTS[layout]["pool_last"]
    return max(STEM_KERNEL, STEM_STRIDE * POOL**pools)


def dai_net(layout, input_shape=(32000, 1), include_top=True, pooling=None, classes=10,
            classifier_activation="softmax", width=None):
    """A Dai et al. network; ``layout`` is one of DAI_LAYOUTS, ``width`` the stem filters."""
    if layout not in DAI_LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(DAI_LAYOUTS)}, got {layout!r}")
    spec = DAI_LAYOUTS[layout]
    width = spec["width"] if width is None else width
    _check_positive_int(width, "width")
    _check_head(input_shape, include_top, pooling, classes, dai_min_samples(layout))
    _check_activation(classifier_activation, "classifier_activation")

    inputs = keras.Input(shape=tuple(input_shape), name="waveform")
    # 80 taps, stride 4: at 8 kHz a 10 ms window every 0.5 ms, a learned filter bank.
    x = conv_bn_relu_1d(inputs, width, STEM_KERNEL, strides=STEM_STRIDE, name="conv1")
    x = layers.MaxPooling1D(POOL, name="pool1")(x)
    groups = spec["groups"]
    for g, (multiple, convs) in enumerate(groups, start=2):
        for i in range(1, convs + 1):
            x = conv_bn_relu_1d(x, multiple * width, 3, name=f"conv{g}_{i}")
        if g - 1 < len(groups) or spec["pool_last"]:
            x = layers.MaxPooling1D(POOL, name=f"pool{g}")(x)
    outputs = _head(x, include_top, pooling, classes, classifier_activation)
    return keras.Model(inputs, outputs, name=layout)


def _dai_builder(layout):
    def build(input_shape=(32000, 1), include_top=True, pooling=None, classes=10,
              classifier_activation="softmax", width=None):
        return dai_net(layout, input_shape, include_top, pooling, classes, classifier_activation, width)

    spec = DAI_LAYOUTS[layout]
    build.__name__ = layout
    build.__doc__ = (f"{layout.upper()} of Dai et al.: an 80/4 stem of {spec['width']} filters, then "
                     f"3-tap conv groups {[(m * spec['width'], n) for m, n in spec['groups']]}.")
    return build


m3 = _dai_builder("m3")
m5 = _dai_builder("m5")
m11 = _dai_builder("m11")
m18 = _dai_builder("m18")


# --- the keras-io residual classifier ---------------------------------------------------


def audio_resnet(input_shape=(8000, 1), include_top=True, pooling=None, classes=5,
                 classifier_activation="softmax"):
    """keras-io speaker recognition: 5 residual blocks, avg-pool 3, Flatten, Dense 256, 128."""
    min_samples = 2 ** len(AUDIO_RESNET_BLOCKS) * 3
    _check_head(input_shape, include_top, pooling, classes, min_samples)
    _check_activation(classifier_activation, "classifier_activation")
    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = inputs
    for i, (filters, convs) in enumerate(AUDIO_RESNET_BLOCKS, start=1):
        x = residual_block_1d(x, filters, convs, name=f"block{i}")
    if include_top:  # the keras-io head: a dense classifier on the flattened features
        x = layers.AveragePooling1D(3, strides=3, name="avg_pool")(x)
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(256, activation="relu", name="fc1")(x)
        x = layers.Dense(128, activation="relu", name="fc2")(x)
        outputs = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        outputs = _head(x, False, pooling, classes, classifier_activation)
    return keras.Model(inputs, outputs, name="audio_resnet")


# --- a spectrogram front end inside the model ---------------------------------------------


def spectrogram_cnn(input_shape=(16000, 1), include_top=True, pooling=None, classes=10,
                    classifier_activation="softmax", frame_length=256, frame_step=128,
                    width=32, num_stages=3):
    """Raw audio -> log STFT spectrogram (a layer) -> ``num_stages`` x [conv3x3-BN-ReLU, pool 2]."""
    _check_positive_int(frame_length, "frame_length")
    _check_positive_int(frame_step, "frame_step")
    _check_positive_int(width, "width")
    _check_positive_int(num_stages, "num_stages")
    if frame_length < 4:
        raise ValueError(f"frame_length must be >= 4, got {frame_length}")
    # 'valid' framing gives (samples - frame_length) // frame_step + 1 frames; each
    # stage halves them, so there must be at least 2**num_stages.
    min_samples = frame_length + (2**num_stages - 1) * frame_step
    _check_head(input_shape, include_top, pooling, classes, min_samples)
    _check_activation(classifier_activation, "classifier_activation")

    inputs = keras.Input(shape=tuple(input_shape), name="waveform")
    # Fixed DFT kernels (trainable=False): a front end, not a learned filter bank.
    x = layers.STFTSpectrogram(mode="log", frame_length=frame_length, frame_step=frame_step,
                               expand_dims=True, trainable=False, name="spectrogram")(inputs)
    x = layers.BatchNormalization(name="spectrogram_bn")(x)  # (frames, bins, channels)
    for s in range(1, num_stages + 1):
        x = layers.Conv2D(width * 2 ** (s - 1), 3, padding="same", use_bias=False, name=f"conv{s}_conv")(x)
        x = layers.BatchNormalization(name=f"conv{s}_bn")(x)
        x = layers.Activation("relu", name=f"conv{s}_relu")(x)
        x = layers.MaxPooling2D(2, padding="same", name=f"pool{s}")(x)
    outputs = _head(x, include_top, pooling, classes, classifier_activation, rank=2)
    return keras.Model(inputs, outputs, name="spectrogram_cnn")
