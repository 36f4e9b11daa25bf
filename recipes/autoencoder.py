"""Conv-transpose autoencoders: going down with strides, coming back up.

Papers: Dumoulin and Visin, "A guide to convolution arithmetic for deep learning"
(2016); Odena, Dumoulin and Olah, "Deconvolution and Checkerboard Artifacts" (Distill
2016); Shi et al., "Real-Time Single Image and Video Super-Resolution Using an Efficient
Sub-Pixel Convolutional Neural Network" (CVPR 2016); Ronneberger, Fischer and Brox,
"U-Net" (MICCAI 2015); Vincent et al., "Extracting and Composing Robust Features with
Denoising Autoencoders" (ICML 2008).

An image-to-image network first compresses and then expands. The encoder goes down
with stride-2 convolutions rather than pooling: a strided conv learns how to
downsample and keeps its attention on local regions. The decoder comes back up with
the transpose of a convolution (Conv2DTranspose), which spreads each input pixel over
a kernel-sized patch of a larger output: with i inputs, stride s and kernel k the
patches span (i - 1) * s + k pixels, and 'same' padding crops that to i * s. When k is
not a multiple of s, the patches overlap unevenly (a 3-wide kernel at stride 2 covers
some pixels once, some twice) and print a checkerboard on the output; a resize followed
by an ordinary conv, or a sub-pixel conv (a conv to r*r times the channels, then
depth-to-space), avoids it. `conv_autoencoder` offers all three decoders side by side.
Trained on noisy inputs with clean targets, an autoencoder becomes a denoiser; with a
sub-pixel output it is ESPCN super-resolution; with skip connections from each encoder
level to the decoder level of the same size it is a U-Net for segmentation.
"""

import keras
from keras import layers

UPSAMPLING = ("transpose", "resize", "subpixel")
ESPCN_RECEPTIVE_FIELD = 11  # 5x5 + three 3x3 convs


def _check(ok, argument, expected, got):
    """The one argument check: what Keras would not say clearly, naming the argument."""
    if not ok:
        raise ValueError(f"{argument} must be {expected}, got {got!r}")


def _unique(prefix):
    """A fresh layer-name prefix, so a block called twice without a name does not collide."""
    return f"{prefix}{keras.backend.get_uid(prefix)}"


def _inputs(input_shape, default_shape, multiple=1, min_size=1):
    """An image input of a known size whose sides are multiples of ``multiple`` (the
    decoder must land back on the input's size) and at least ``min_size``."""
    shape = tuple(input_shape or default_shape)
    smallest, sides = max(multiple, min_size), f", with sides that are multiples of {multiple}" * (multiple > 1)
    known = len(shape) == 3 and None not in shape and min(shape) >= 1
    fits = known and min(shape[:2]) >= smallest and shape[0] % multiple == shape[1] % multiple == 0
    _check(fits, "input_shape", f"(height, width, channels) of at least {smallest}x{smallest}x1{sides}", input_shape)
    return keras.Input(shape=tuple(int(d) for d in shape))


def _model(inputs, outputs, weights, name):
    """The model, with weights: None or a weights file."""
    model = keras.Model(inputs, outputs, name=name)
    if weights is not None:
        model.load_weights(weights)
    return model


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
    _check(padding in ("valid", "same"), "padding", "'valid' or 'same'", padding)
    if output_padding is None:
        return i * s + (max(k - s, 0) if padding == "valid" else 0)
    _check(0 <= output_padding < s, "output_padding", f"None or in [0, s) = [0, {s})", output_padding)
    length = (i - 1) * s + k - (2 * (k // 2) if padding == "same" else 0) + output_padding
    _check(length >= 1, "(i, k, s)", "sizes that give a non-empty output", (i, k, s))
    return length


def _depth_to_space(x, factor, name):
    """(H, W, C*r*r) -> (H*r, W*r, C) with Reshape and Permute, in tf.nn.depth_to_space order."""
    factor = int(factor)
    height, width, channels = x.shape[1:]
    # Channel index (dy * r + dx) * C + c holds output pixel (h*r + dy, w*r + dx), channel c.
    x = layers.Reshape((height, width, factor, factor, channels // factor**2), name=f"{name}_split")(x)
    x = layers.Permute((1, 3, 2, 4, 5), name=f"{name}_permute")(x)  # (H, r, W, r, C)
    return layers.Reshape((height * factor, width * factor, channels // factor**2), name=f"{name}_merge")(x)


# --- blocks -----------------------------------------------------------------------------


def downsample(x, filters, kernel_size=3, *, name=None):
    """Halve the size with a stride-2 conv (no pooling: the network learns how to shrink)."""
    name = name or _unique("down")
    x = layers.Conv2D(int(filters), int(kernel_size), strides=2, padding="same", name=f"{name}_conv")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def upsample(x, filters, method="transpose", factor=2, kernel_size=3, activation="relu", *, name=None):
    """Grow the size by ``factor``: a transpose conv, a resize then a conv, or a sub-pixel conv."""
    _check(method in UPSAMPLING, "method", f"one of {UPSAMPLING}", method)
    _check(factor >= 1, "factor", "a positive integer", factor)
    name = name or _unique("up")
    filters, factor, kernel_size = int(filters), int(factor), int(kernel_size)
    if method == "transpose":  # kernel_size % factor != 0 overlaps unevenly: a checkerboard
        x = layers.Conv2DTranspose(filters, kernel_size, strides=factor, padding="same", name=f"{name}_tconv")(x)
    elif method == "resize":  # Odena et al.'s fix: nearest-neighbour resize, then a plain conv
        x = layers.UpSampling2D(factor, interpolation="nearest", name=f"{name}_resize")(x)
        x = layers.Conv2D(filters, kernel_size, padding="same", name=f"{name}_conv")(x)
    else:  # ESPCN: a conv to factor**2 times the channels, then rearrange channels into space
        x = layers.Conv2D(filters * factor * factor, kernel_size, padding="same", name=f"{name}_conv")(x)
        x = _depth_to_space(x, factor, name=f"{name}_shuffle")
    return layers.Activation(activation, name=f"{name}_{activation or 'linear'}")(x)


def double_conv(x, filters, *, name=None):
    """U-Net's unit: two 3x3 conv-BN-ReLU at one resolution."""
    name = name or _unique("level")
    for i in (1, 2):
        x = layers.Conv2D(int(filters), 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return x


# --- 1. the strided conv / conv-transpose autoencoder -------------------------------------


def conv_autoencoder(input_shape=None, *, name="conv_autoencoder", weights=None, filters=(32, 64),
                     bottleneck=16, upsampling="transpose", output_activation="sigmoid"):
    """Strided convs down, a 1x1 conv bottleneck of ``bottleneck`` channels, ``upsampling`` back up.

    The code is (H / 2**n) x (W / 2**n) x bottleneck numbers for n = len(filters) stages
    (input 28x28x1 by default: 7 x 7 x 16 = 784 numbers, as many as the pixels).
    """
    _check(upsampling in UPSAMPLING, "upsampling", f"one of {UPSAMPLING}", upsampling)
    _check(len(filters) >= 1, "filters", "at least 1 level", filters)
    inputs = _inputs(input_shape, (28, 28, 1), multiple=2 ** len(filters))
    x = inputs
    for i, f in enumerate(filters, start=1):
        x = downsample(x, f, name=f"enc{i}")
    x = layers.Conv2D(int(bottleneck), 1, activation="relu", name="bottleneck")(x)
    for i, f in enumerate(reversed(filters), start=1):
        x = upsample(x, f, method=upsampling, name=f"dec{i}")
    outputs = layers.Conv2D(inputs.shape[-1], 3, padding="same", activation=output_activation,
                            name="reconstruction")(x)
    return _model(inputs, outputs, weights, name)


# --- 2. the keras-io denoising autoencoder, as published ----------------------------------


def denoising_autoencoder(input_shape=None, *, name="denoising_autoencoder", weights=None, filters=32):
    """keras-io "Convolutional autoencoder for image denoising": 2 x [conv, max-pool], 2 x conv-T.

    Unlike `conv_autoencoder` it downsamples with max-pooling, as the example does. Train it
    with noisy images as inputs and the clean images as targets. 28,353 parameters at 28x28x1.
    """
    inputs = _inputs(input_shape, (28, 28, 1), multiple=4)
    x = layers.Conv2D(filters, 3, activation="relu", padding="same", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, padding="same", name="pool1")(x)
    x = layers.Conv2D(filters, 3, activation="relu", padding="same", name="conv2")(x)
    x = layers.MaxPooling2D(2, padding="same", name="pool2")(x)
    x = layers.Conv2DTranspose(filters, 3, strides=2, activation="relu", padding="same", name="tconv1")(x)
    x = layers.Conv2DTranspose(filters, 3, strides=2, activation="relu", padding="same", name="tconv2")(x)
    outputs = layers.Conv2D(inputs.shape[-1], 3, activation="sigmoid", padding="same", name="reconstruction")(x)
    return _model(inputs, outputs, weights, name)


# --- 3. ESPCN super-resolution ------------------------------------------------------------


def espcn(input_shape=None, *, name="espcn", weights=None, upscale_factor=3, filters=(64, 64, 32)):
    """Efficient sub-pixel CNN: all convs at low resolution, one depth-to-space at the end.

    The layout of the keras-io example (5x5 conv, 3x3 convs of 64 and 32, a 3x3 conv to
    channels * r**2, depth-to-space): 59,657 parameters at r = 3 on one 100x100 channel.
    The last conv is linear here, so the model can output any intensity.
    """
    _check(upscale_factor >= 1, "upscale_factor", "a positive integer", upscale_factor)
    _check(len(filters) >= 1, "filters", "at least 1 conv before the last", filters)
    inputs = _inputs(input_shape, (100, 100, 1), min_size=ESPCN_RECEPTIVE_FIELD)
    x = inputs
    for i, f in enumerate(filters, start=1):
        x = layers.Conv2D(int(f), 5 if i == 1 else 3, padding="same", activation="relu",
                          kernel_initializer="orthogonal", name=f"conv{i}")(x)
    x = layers.Conv2D(inputs.shape[-1] * int(upscale_factor) ** 2, 3, padding="same",
                      kernel_initializer="orthogonal", name=f"conv{len(filters) + 1}")(x)
    outputs = _depth_to_space(x, upscale_factor, name="pixel_shuffle")
    return _model(inputs, outputs, weights, name)


# --- 4. U-Net: an encoder-decoder with skip connections, for masks ------------------------


def unet(input_shape=None, *, name="unet", weights=None, filters=(16, 32, 64), classes=1,
         output_activation="sigmoid"):
    """U-Net: double conv + max-pool down, 2x2 conv-T up, concatenated with the encoder level.

    The last stride-2 step lands on the bottom level of ``filters[-1]`` channels. The output
    has ``classes`` channels (one sigmoid mask by default) at the input resolution.
    """
    _check(len(filters) >= 2, "filters", "at least 2 levels (one skip connection)", filters)
    # the bottom level should be at least 2x2, so its 3x3 convs see more than padding
    inputs = _inputs(input_shape, (64, 64, 1), multiple=2 ** (len(filters) - 1), min_size=2 ** len(filters))
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
    outputs = layers.Conv2D(int(classes), 1, activation=output_activation, name="mask")(x)
    return _model(inputs, outputs, weights, name)


def feature_stages(model):
    """The names of `model`'s stage outputs, shallow to deep: the encoder's levels, the
    layers a feature pyramid, a U-Net encoder or Grad-CAM taps. U-Net: each level's
    double conv, then the bottom; the strided autoencoder: each stride-2 conv, then the
    bottleneck; ESPCN: its low-resolution convs; the keras-io denoiser: conv1, conv2 and
    the code, pool2."""
    names = [layer.name for layer in model.layers]
    if "bottom_relu2" in names:
        return [n for n in names if n.startswith("down") and n.endswith("_relu2")] + ["bottom_relu2"]
    if "bottleneck" in names:
        return [n for n in names if n.startswith("enc") and n.endswith("_relu")] + ["bottleneck"]
    if "pixel_shuffle_merge" in names:
        return [n for n in names if n.startswith("conv")][:-1]
    return ["conv1", "conv2", "pool2"]


# --- cookbook metadata: plain data the cookbook reads; a copied file can delete it ---

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
BUILDERS = {"conv_autoencoder": {"params": 47_889}, "denoising_autoencoder": {}, "espcn": {}, "unet": {}}
DEMO = {
    "builder": "denoising_autoencoder",
    "kwargs": {"input_shape": (48, 48, 1)},
    "epochs": 10,
    "learning_rate": 3e-3,
}
