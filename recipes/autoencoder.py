"""Conv-transpose autoencoders: going down with strides, coming back up.

Papers: Dumoulin and Visin, "A guide to convolution arithmetic for deep learning"
(2016); Odena, Dumoulin and Olah, "Deconvolution and Checkerboard Artifacts"
(Distill 2016); Shi et al., "Real-Time Single Image and Video Super-Resolution Using
an Efficient Sub-Pixel Convolutional Neural Network" (CVPR 2016); Ronneberger, Fischer
and Brox, "U-Net" (MICCAI 2015); Vincent et al., "Extracting and Composing Robust
Features with Denoising Autoencoders" (ICML 2008).

An image-to-image network first compresses and then expands. The encoder goes down
with stride-2 convolutions rather than pooling: a strided conv learns how to
downsample and keeps its attention on local regions. The decoder comes back up with
the transpose of a convolution (Conv2DTranspose), which spreads each input pixel over
a kernel-sized patch of a larger output. When the kernel size is not a multiple of the
stride, those patches overlap unevenly and print a checkerboard on the output; a resize
followed by an ordinary conv, or a sub-pixel conv (a conv to r*r times the channels,
then depth-to-space), avoids it. `conv_autoencoder` offers all three decoders side by
side. Trained on noisy inputs with clean targets, an autoencoder becomes a denoiser;
with a sub-pixel output it is ESPCN super-resolution; with skip connections from each
encoder level to the decoder level of the same size it is a U-Net for segmentation.
"""

import keras
from keras import layers

FAMILY = "Autoencoders and upsampling"
PAPERS = (
    "Dumoulin, Visin 2016. A guide to convolution arithmetic for deep learning. arXiv:1603.07285.",
    "Odena, Dumoulin, Olah 2016. Deconvolution and Checkerboard Artifacts. Distill.",
    "Shi et al. 2016. Real-Time Single Image and Video Super-Resolution Using an Efficient "
    "Sub-Pixel Convolutional Neural Network. CVPR.",
    "Ronneberger, Fischer, Brox 2015. U-Net: Convolutional Networks for Biomedical Image Segmentation. MICCAI.",
    "Vincent, Larochelle, Bengio, Manzagol 2008. Extracting and Composing Robust Features with "
    "Denoising Autoencoders. ICML.",
)
TASK = "autoencoder"
DEFAULT_BUILDER = "conv_autoencoder"
BUILDERS = {
    "conv_autoencoder": {"params": 47_889,
                         "small": {"input_shape": (32, 32, 1), "filters": (8, 16), "bottleneck": 4}},
    "denoising_autoencoder": {"small": {"input_shape": (28, 28, 1)}},
    "espcn": {"small": {"input_shape": (16, 16, 1), "upscale_factor": 2}},
    "unet": {"small": {"input_shape": (32, 32, 1), "filters": (8, 16)}},
}
BLOCKS = {
    "downsample": {"input_shape": (16, 16, 4), "kwargs": {"filters": 8, "kernel_size": 3}},
    "upsample": {"input_shape": (8, 8, 4), "kwargs": {"filters": 8, "method": "subpixel", "factor": 2}},
    "double_conv": {"input_shape": (16, 16, 4), "kwargs": {"filters": 8}},
}
DEMO = {
    "builder": "denoising_autoencoder",
    "kwargs": {"input_shape": (48, 48, 1)},
    "epochs": 10,
    "learning_rate": 3e-3,
}
STAGES = ("conv1", "conv2", "tconv1", "tconv2")

UPSAMPLING = ("transpose", "resize", "subpixel")


# --- argument checks: fail early, name the argument ----------------------------------


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


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


def _check_image_shape(input_shape, multiple=1, min_size=1):
    _check_channels_last()
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
    for dim in input_shape:
        _check_positive_int(dim, "input_shape")
    height, width = input_shape[:2]
    if min(height, width) < max(min_size, multiple) or height % multiple or width % multiple:
        raise ValueError(f"input_shape must have height and width multiples of {multiple} and at "
                         f"least {max(min_size, multiple)}, got {tuple(input_shape)}")


def _check_filters(filters):
    if not isinstance(filters, (tuple, list)) or not filters:
        raise ValueError(f"filters must be a non-empty tuple of ints, got {filters!r}")
    for f in filters:
        _check_positive_int(f, "filters")


def transpose_output_size(i, k, s, padding="valid", output_padding=None):
    """Output length of Conv2DTranspose along one axis (Dumoulin and Visin, section 4).

    A transpose conv puts each of the ``i`` inputs ``s`` apart and adds a ``k``-wide
    kernel at each, so the full result spans (i - 1) * s + k. 'same' crops that back
    to i * s. Keras's rule when ``output_padding`` is None: 'valid' gives
    i * s + max(k - s, 0) and 'same' gives i * s. With an explicit ``output_padding``
    (0 <= output_padding < s), 'valid' gives (i - 1) * s + k + output_padding and 'same'
    removes k // 2 from each side first. (The TensorFlow backend cannot run an even
    kernel with 'same' padding and an explicit output_padding; JAX can.)
    """
    for value, name in ((i, "i"), (k, "k"), (s, "s")):
        _check_positive_int(value, name)
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    if output_padding is None:
        return i * s + (max(k - s, 0) if padding == "valid" else 0)
    if isinstance(output_padding, bool) or not isinstance(output_padding, int):
        raise TypeError(f"output_padding must be None or an int, got {type(output_padding).__name__}")
    if not 0 <= output_padding < s:
        raise ValueError(f"output_padding must be in [0, s), got {output_padding} with s={s}")
    crop = 2 * (k // 2) if padding == "same" else 0
    length = (i - 1) * s + k - crop + output_padding
    if length < 1:
        raise ValueError(f"i={i}, k={k}, s={s}, padding={padding!r}, output_padding={output_padding} "
                         f"give an empty output")
    return length


# --- blocks -----------------------------------------------------------------------------


def downsample(x, filters, kernel_size=3, *, name="down"):
    """Halve the size with a stride-2 conv (no pooling: the network learns how to shrink)."""
    _check_positive_int(filters, "filters")
    _check_positive_int(kernel_size, "kernel_size")
    _check_channels_last()
    x = layers.Conv2D(filters, kernel_size, strides=2, padding="same", name=f"{name}_conv")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def depth_to_space(x, factor, *, name="shuffle"):
    """(H, W, C*r*r) -> (H*r, W*r, C) with Reshape and Permute, in tf.nn.depth_to_space order."""
    _check_positive_int(factor, "factor")
    _check_channels_last()
    height, width, channels = x.shape[1:]
    if height is None or width is None or channels % (factor * factor):
        raise ValueError(f"factor {factor}: depth_to_space needs a static size and channels "
                         f"divisible by factor**2, got shape {tuple(x.shape[1:])}")
    out_channels = channels // (factor * factor)
    # Channel index (dy * r + dx) * C + c holds output pixel (h*r + dy, w*r + dx), channel c.
    x = layers.Reshape((height, width, factor, factor, out_channels), name=f"{name}_split")(x)
    x = layers.Permute((1, 3, 2, 4, 5), name=f"{name}_permute")(x)  # (H, r, W, r, C)
    return layers.Reshape((height * factor, width * factor, out_channels), name=f"{name}_merge")(x)


def upsample(x, filters, method="transpose", factor=2, kernel_size=3, activation="relu", *, name="up"):
    """Grow the size by ``factor``: a transpose conv, a resize then a conv, or a sub-pixel conv."""
    _check_positive_int(filters, "filters")
    _check_positive_int(factor, "factor")
    _check_positive_int(kernel_size, "kernel_size")
    if method not in UPSAMPLING:
        raise ValueError(f"method must be one of {UPSAMPLING}, got {method!r}")
    _check_activation(activation, "activation")
    _check_channels_last()
    if method == "transpose":  # kernel_size % factor != 0 overlaps unevenly: a checkerboard
        x = layers.Conv2DTranspose(filters, kernel_size, strides=factor, padding="same", name=f"{name}_tconv")(x)
    elif method == "resize":  # Odena et al.'s fix: nearest-neighbour resize, then a plain conv
        x = layers.UpSampling2D(factor, interpolation="nearest", name=f"{name}_resize")(x)
        x = layers.Conv2D(filters, kernel_size, padding="same", name=f"{name}_conv")(x)
    else:  # ESPCN: a conv to factor**2 times the channels, then rearrange channels into space
        x = layers.Conv2D(filters * factor * factor, kernel_size, padding="same", name=f"{name}_conv")(x)
        x = depth_to_space(x, factor, name=f"{name}_shuffle")
    return layers.Activation(activation, name=f"{name}_{activation or 'linear'}")(x)


def double_conv(x, filters, *, name="level"):
    """U-Net's unit: two 3x3 conv-BN-ReLU at one resolution."""
    _check_positive_int(filters, "filters")
    _check_channels_last()
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return x


# --- 1. the strided conv / conv-transpose autoencoder -------------------------------------


def conv_autoencoder(input_shape=(28, 28, 1), filters=(32, 64), bottleneck=16, upsampling="transpose",
                     output_activation="sigmoid"):
    """Strided convs down, a 1x1 conv bottleneck of ``bottleneck`` channels, ``upsampling`` back up.

    The code is (H / 2**n) x (W / 2**n) x bottleneck numbers for n = len(filters) stages.
    """
    _check_filters(filters)
    _check_positive_int(bottleneck, "bottleneck")
    if upsampling not in UPSAMPLING:
        raise ValueError(f"upsampling must be one of {UPSAMPLING}, got {upsampling!r}")
    _check_activation(output_activation, "output_activation")
    _check_image_shape(input_shape, multiple=2 ** len(filters))
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    for i, f in enumerate(filters, start=1):
        x = downsample(x, f, name=f"enc{i}")
    x = layers.Conv2D(bottleneck, 1, activation="relu", name="bottleneck")(x)
    for i, f in enumerate(reversed(filters), start=1):
        x = upsample(x, f, method=upsampling, name=f"dec{i}")
    outputs = layers.Conv2D(input_shape[-1], 3, padding="same", activation=output_activation,
                            name="reconstruction")(x)
    return keras.Model(inputs, outputs, name=f"conv_autoencoder_{upsampling}")


# --- 2. the keras-io denoising autoencoder, as published ----------------------------------


def denoising_autoencoder(input_shape=(28, 28, 1), filters=32):
    """keras-io "Convolutional autoencoder for image denoising": 2 x [conv, max-pool], 2 x conv-T.

    Unlike `conv_autoencoder` it downsamples with max-pooling, as the example does. Train it
    with noisy images as inputs and the clean images as targets. 28,353 parameters at 28x28x1.
    """
    _check_positive_int(filters, "filters")
    _check_image_shape(input_shape, multiple=4)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Conv2D(filters, 3, activation="relu", padding="same", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, padding="same", name="pool1")(x)
    x = layers.Conv2D(filters, 3, activation="relu", padding="same", name="conv2")(x)
    x = layers.MaxPooling2D(2, padding="same", name="pool2")(x)
    x = layers.Conv2DTranspose(filters, 3, strides=2, activation="relu", padding="same", name="tconv1")(x)
    x = layers.Conv2DTranspose(filters, 3, strides=2, activation="relu", padding="same", name="tconv2")(x)
    outputs = layers.Conv2D(input_shape[-1], 3, activation="sigmoid", padding="same", name="reconstruction")(x)
    return keras.Model(inputs, outputs, name="denoising_autoencoder")


# --- 3. ESPCN super-resolution ------------------------------------------------------------

ESPCN_RECEPTIVE_FIELD = 11  # 5x5 + three 3x3 convs


def espcn(input_shape=(100, 100, 1), upscale_factor=3, filters=(64, 64, 32)):
    """Efficient sub-pixel CNN: all convs at low resolution, one depth-to-space at the end.

    The layout of the keras-io example (5x5 conv, 3x3 convs of 64 and 32, a 3x3 conv to
    channels * r**2, depth-to-space): 59,657 parameters at r = 3 on one channel. The last
    conv is linear here, so the model can output any intensity.
    """
    _check_positive_int(upscale_factor, "upscale_factor")
    _check_filters(filters)
    _check_image_shape(input_shape, min_size=ESPCN_RECEPTIVE_FIELD)
    channels = input_shape[-1]
    inputs = keras.Input(shape=tuple(input_shape), name="low_res")
    x = inputs
    for i, f in enumerate(filters, start=1):
        x = layers.Conv2D(f, 5 if i == 1 else 3, padding="same", activation="relu",
                          kernel_initializer="orthogonal", name=f"conv{i}")(x)
    x = layers.Conv2D(channels * upscale_factor**2, 3, padding="same", kernel_initializer="orthogonal",
                      name=f"conv{len(filters) + 1}")(x)
    outputs = depth_to_space(x, upscale_factor, name="pixel_shuffle")
    return keras.Model(inputs, outputs, name="espcn")


# --- 4. U-Net: an encoder-decoder with skip connections, for masks ------------------------


def unet(input_shape=(64, 64, 1), filters=(16, 32, 64), classes=1, output_activation="sigmoid"):
    """U-Net: double conv + max-pool down, 2x2 conv-T up, concatenated with the encoder level.

    The last stride-2 step lands on the bottom level of ``filters[-1]`` channels. The output
    has ``classes`` channels (one sigmoid mask by default) at the input resolution.
    """
    _check_filters(filters)
    _check_positive_int(classes, "classes")
    _check_activation(output_activation, "output_activation")
    if len(filters) < 2:
        raise ValueError(f"filters must have at least 2 levels, got {filters!r}")
    # the bottom level should be at least 2x2, so its 3x3 convs see more than padding
    _check_image_shape(input_shape, multiple=2 ** (len(filters) - 1), min_size=2 ** len(filters))
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x, skips = inputs, []
    for i, f in enumerate(filters[:-1], start=1):
        x = double_conv(x, f, name=f"down{i}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{i}_pool")(x)
    x = double_conv(x, filters[-1], name="bottom")
    for i, (f, skip) in enumerate(zip(reversed(filters[:-1]), reversed(skips)), start=1):
        # kernel 2 = stride 2: every output pixel gets exactly one kernel tap, no checkerboard
        x = upsample(x, f, method="transpose", kernel_size=2, activation=None, name=f"up{i}")
        x = layers.Concatenate(name=f"up{i}_concat")([x, skip])
        x = double_conv(x, f, name=f"up{i}")
    outputs = layers.Conv2D(classes, 1, activation=output_activation, name="mask")(x)
    return keras.Model(inputs, outputs, name="unet")
