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
M18). On their 32,000-sample input (4 s at 8 kHz) the stem's stride and the first
pool leave 32000 / 4 / 4 = 2,000 steps, and every further pool divides by 4 again:
500, 125, 31. M5 has 80 * 128 + 3 * (128 * 128 + 128 * 256 + 256 * 512) conv weights,
0.5 M in all. The keras-io speaker classifier stacks residual blocks: a 1x1 Conv1D
shortcut beside a few 3-tap convs, then add, ReLU and a 2x max-pool. The last builder
goes the other way: `keras.layers.STFTSpectrogram` turns the waveform into a
log-spectrogram inside the model, and ordinary 2D convs read it like an image. The
model still takes raw audio, so it saves and loads as a plain `.keras` file.
Every builder takes input of shape (samples, channels).
"""

import keras
from keras import layers

# Dai et al. 2017, Table 1: the 80/4 stem's filters, then (filters, number of 3-tap
# convs) per group. M3 and M5 max-pool after their last group too; M11 and M18 do not.
DAI_LAYOUTS = {
    "m3": {"stem": 256, "groups": ((256, 1),), "pool_last": True},
    "m5": {"stem": 128, "groups": ((128, 1), (256, 1), (512, 1)), "pool_last": True},
    "m11": {"stem": 64, "groups": ((64, 2), (128, 2), (256, 3), (512, 2)), "pool_last": False},
    "m18": {"stem": 64, "groups": ((64, 4), (128, 4), (256, 4), (512, 4)), "pool_last": False},
}
STEM_KERNEL, STEM_STRIDE, POOL = 80, 4, 4
DAI_SAMPLES = 32_000  # 4 s at 8 kHz, the input of Dai et al.
# keras-io speaker recognition: (filters, convs) per residual block; input 8,000 FFT bins.
AUDIO_RESNET_LAYOUT = ((16, 2), (32, 2), (64, 3), (128, 3), (128, 3))
AUDIO_RESNET_SAMPLES = 8_000


def _check(ok, argument, expected, got):
    """The one argument check: what Keras would not say clearly, naming the argument."""
    if not ok:
        raise ValueError(f"{argument} must be {expected}, got {got!r}")


def _unique(prefix):
    """A fresh layer-name prefix, so a block called twice without a name does not collide."""
    return f"{prefix}{keras.backend.get_uid(prefix)}"


def _inputs(input_tensor, input_shape, include_top, default_size, min_size):
    """keras.applications' input rules in 1-D: (samples, 1) with a top, (None, 1) without."""
    if input_shape is None and input_tensor is not None:
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None:
        input_shape = (default_size, 1) if include_top else (None, 1)
    input_shape = tuple(None if d is None else int(d) for d in input_shape)
    least = (min_size, 1)  # per dimension; a None length is free
    fits = len(input_shape) == 2 and all(d is None or d >= m for d, m in zip(input_shape, least))
    _check(fits, "input_shape", f"(samples, channels) of at least {min_size}x1", input_shape)
    if input_tensor is None:
        return keras.Input(shape=input_shape)
    if not keras.backend.is_keras_tensor(input_tensor):
        return keras.Input(tensor=input_tensor, shape=input_shape)
    return input_tensor


def _top(x, include_top, pooling, classes, classifier_activation):
    """keras.applications' head, over time (or time and frequency for a spectrogram).
    The classifier runs in float32 under mixed precision."""
    _check(pooling in (None, "avg", "max"), "pooling", "None, 'avg' or 'max'", pooling)
    one_d = len(x.shape) == 3
    average = layers.GlobalAveragePooling1D if one_d else layers.GlobalAveragePooling2D
    if include_top:
        x = average(name="avg_pool")(x)
        return layers.Dense(int(classes), activation=classifier_activation, dtype="float32",
                            name="predictions")(x)
    if pooling == "avg":
        return average(name="avg_pool")(x)
    if pooling == "max":
        return (layers.GlobalMaxPooling1D if one_d else layers.GlobalMaxPooling2D)(name="max_pool")(x)
    return x


def _model(inputs, outputs, weights, name):
    """The model, with weights: None or a weights file (there are no ImageNet twins here)."""
    model = keras.Model(keras.utils.get_source_inputs(inputs)[0], outputs, name=name)
    _check(weights != "imagenet", "weights", "None or a weights file (this model has no ImageNet twin)", weights)
    if weights is not None:
        model.load_weights(weights)
    return model


# --- the two blocks --------------------------------------------------------------------


def conv_bn_relu_1d(x, filters, kernel_size=3, strides=1, *, name=None):
    """Conv1D (no bias: BN has one), BatchNorm, ReLU: the unit Dai et al. repeat."""
    name = name or _unique("conv_bn_relu")
    x = layers.Conv1D(int(filters), int(kernel_size), strides=int(strides), padding="same", use_bias=False,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def residual_block_1d(x, filters, num_convs=3, *, name=None):
    """keras-io speaker block: 1x1 shortcut beside (n-1) x [conv3, ReLU] + conv3; add, ReLU, pool 2."""
    _check(num_convs >= 1, "num_convs", "at least 1", num_convs)
    _check(x.shape[1] is None or x.shape[1] >= 2, "x", "at least 2 steps long for the pool", x.shape)
    name = name or _unique("residual_block")
    filters = int(filters)
    # The shortcut is created first, as in keras-io, so weights line up with its model.
    shortcut = layers.Conv1D(filters, 1, padding="same", name=f"{name}_shortcut")(x)
    for i in range(1, int(num_convs)):
        x = layers.Conv1D(filters, 3, padding="same", name=f"{name}_conv{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    x = layers.Conv1D(filters, 3, padding="same", name=f"{name}_conv{int(num_convs)}")(x)
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    x = layers.Activation("relu", name=f"{name}_out")(x)
    return layers.MaxPooling1D(2, strides=2, name=f"{name}_pool")(x)


# --- M3 / M5 / M11 / M18 (Dai et al. 2017) -------------------------------------------


def _dai_net(layout, include_top, weights, input_tensor, input_shape, pooling, classes,
             classifier_activation, name, width):
    """A Dai et al. network: the 80/4 stem, then 3-tap conv groups with 4x max-pools."""
    spec = DAI_LAYOUTS[layout]
    pools = len(spec["groups"]) + spec["pool_last"]  # each 4x pool needs 4 steps to pool
    inputs = _inputs(input_tensor, input_shape, include_top, DAI_SAMPLES, STEM_STRIDE * POOL**pools)
    # 80 taps, stride 4: at 8 kHz a 10 ms window every 0.5 ms, a learned filter bank.
    x = conv_bn_relu_1d(inputs, int(spec["stem"] * width), STEM_KERNEL, STEM_STRIDE, name="conv1")
    x = layers.MaxPooling1D(POOL, name="pool1")(x)
    for g, (filters, convs) in enumerate(spec["groups"], start=2):
        for i in range(1, convs + 1):
            x = conv_bn_relu_1d(x, int(filters * width), 3, name=f"conv{g}_{i}")
        if g - 1 < len(spec["groups"]) or spec["pool_last"]:
            x = layers.MaxPooling1D(POOL, name=f"pool{g}")(x)
    outputs = _top(x, include_top, pooling, classes, classifier_activation)
    return _model(inputs, outputs, weights, name)


def m3(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
       classes=1000, classifier_activation="softmax", name="m3", *, width=1.0):
    """M3 (Dai et al. 2017): an 80/4 stem of 256 filters, one 3-tap conv of 256."""
    return _dai_net("m3", include_top, weights, input_tensor, input_shape, pooling, classes,
                    classifier_activation, name, width)


def m5(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
       classes=1000, classifier_activation="softmax", name="m5", *, width=1.0):
    """M5 (Dai et al. 2017): an 80/4 stem of 128 filters, then 3-tap convs of 128, 256, 512."""
    return _dai_net("m5", include_top, weights, input_tensor, input_shape, pooling, classes,
                    classifier_activation, name, width)


def m11(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
        classes=1000, classifier_activation="softmax", name="m11", *, width=1.0):
    """M11 (Dai et al. 2017): an 80/4 stem of 64 filters, then 2, 2, 3, 2 3-tap convs of 64-512."""
    return _dai_net("m11", include_top, weights, input_tensor, input_shape, pooling, classes,
                    classifier_activation, name, width)


def m18(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
        classes=1000, classifier_activation="softmax", name="m18", *, width=1.0):
    """M18 (Dai et al. 2017): an 80/4 stem of 64 filters, then 4 x 4 3-tap convs of 64-512."""
    return _dai_net("m18", include_top, weights, input_tensor, input_shape, pooling, classes,
                    classifier_activation, name, width)


# --- the keras-io residual classifier ---------------------------------------------------


def audio_resnet(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                 classes=1000, classifier_activation="softmax", name="audio_resnet"):
    """keras-io speaker recognition: 5 residual blocks, avg-pool 3, Flatten, Dense 256, 128."""
    min_samples = 2 ** len(AUDIO_RESNET_LAYOUT) * 3  # five 2x pools, then the 3x average pool
    inputs = _inputs(input_tensor, input_shape, include_top, AUDIO_RESNET_SAMPLES, min_samples)
    x = inputs
    for i, (filters, convs) in enumerate(AUDIO_RESNET_LAYOUT, start=1):
        x = residual_block_1d(x, filters, convs, name=f"block{i}")
    if not include_top:
        return _model(inputs, _top(x, False, pooling, classes, classifier_activation), weights, name)
    # The keras-io head: a dense classifier on the flattened features, so a fixed length.
    _check(inputs.shape[1] is not None, "input_shape", "a fixed length with include_top", input_shape)
    x = layers.AveragePooling1D(3, strides=3, name="avg_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(256, activation="relu", name="fc1")(x)
    x = layers.Dense(128, activation="relu", name="fc2")(x)
    outputs = layers.Dense(int(classes), activation=classifier_activation, dtype="float32",
                           name="predictions")(x)
    return _model(inputs, outputs, weights, name)


# --- a spectrogram front end inside the model ---------------------------------------------


def spectrogram_cnn(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                    classes=1000, classifier_activation="softmax", name="spectrogram_cnn", *,
                    frame_length=256, frame_step=128, width=1.0, blocks=(1, 1, 1)):
    """Raw audio -> log STFT spectrogram (a layer) -> per stage s, ``blocks[s]`` x
    conv3x3-BN-ReLU of 32 * 2**s * ``width`` filters, then a 2x2 max-pool."""
    _check(min(blocks, default=0) > 0, "blocks", "a non-empty tuple of positive counts", blocks)
    # 'valid' framing gives (samples - frame_length) // frame_step + 1 frames; each
    # stage halves them, so there must be at least 2**stages.
    min_samples = int(frame_length) + (2 ** len(blocks) - 1) * int(frame_step)
    inputs = _inputs(input_tensor, input_shape, include_top, 16_000, min_samples)
    # Fixed DFT kernels (trainable=False): a front end, not a learned filter bank.
    x = layers.STFTSpectrogram(mode="log", frame_length=int(frame_length), frame_step=int(frame_step),
                               expand_dims=True, trainable=False, name="spectrogram")(inputs)
    x = layers.BatchNormalization(name="spectrogram_bn")(x)  # (frames, bins, channels)
    for s, convs in enumerate(blocks, start=1):
        for i in range(1, int(convs) + 1):
            x = layers.Conv2D(int(32 * 2 ** (s - 1) * width), 3, padding="same", use_bias=False,
                              name=f"conv{s}_{i}_conv")(x)
            x = layers.BatchNormalization(name=f"conv{s}_{i}_bn")(x)
            x = layers.Activation("relu", name=f"conv{s}_{i}_relu")(x)
        x = layers.MaxPooling2D(2, padding="same", name=f"pool{s}")(x)
    outputs = _top(x, include_top, pooling, classes, classifier_activation)
    return _model(inputs, outputs, weights, name)


def feature_stages(model):
    """The names of `model`'s stage outputs, shallow to deep: the layers a feature pyramid,
    a U-Net encoder or Grad-CAM taps. The M-networks and the spectrogram CNN: the last
    ReLU of each conv group (``conv1_relu``, ``conv2_1_relu``, ...); the residual
    classifier: each block's output ``blockI_out``. The spectrogram CNN's stages are
    2-D maps (frames x frequency bins); the others' run along time."""
    last = {}  # stage -> its last ReLU, in the order the stages come
    for layer in model.layers:
        if layer.name.startswith("conv") and layer.name.endswith("_relu"):
            last[layer.name.split("_")[0]] = layer.name
    return list(last.values()) or [layer.name for layer in model.layers if layer.name.endswith("_out")]


# --- cookbook metadata: plain data the cookbook reads; a copied file can delete it ---

FAMILY = "Audio and sequences"
PAPERS = (
    "Dai, Dai, Qu, Li, Das 2017. Very Deep Convolutional Neural Networks for Raw Waveforms. ICASSP.",
    "Badine 2020. Speaker Recognition (keras-io example, residual Conv1D on FFT features).",
)
TASK = "audio"
DEFAULT_BUILDER = "m5"
BUILDERS = {"m3": {}, "m5": {"params": 1_068_008}, "m11": {}, "m18": {}, "audio_resnet": {}, "spectrogram_cnn": {}}
DEMO = {
    "builder": "m5",
    "kwargs": {"input_shape": (8000, 1), "classes": 8, "width": 0.375},
    "epochs": 8,
    "learning_rate": 3e-3,
}
