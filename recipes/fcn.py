"""Fully convolutional networks: a classifier that labels every pixel.

Papers: Long, Shelhamer and Darrell, "Fully Convolutional Networks for Semantic
Segmentation" (CVPR 2015); the backbone is VGG-16 from Simonyan and Zisserman, "Very
Deep Convolutional Networks for Large-Scale Image Recognition" (ICLR 2015).

A classifier's dense layers are convolutions in disguise. VGG-16's fc6 reads the
7x7x512 map of pool5 at 224x224: it is a 7x7 convolution with 4096 filters, and fc7,
which reads one vector, is a 1x1 convolution. Rewritten so, the network slides over an
image of any size and returns a coarse map of features, one vector per cell of 32x32
pixels: five 2x2 max-pools give an output stride of 2**5 = 32, so a 512x384 image gives
a 16x12 map. A 1x1 "score" convolution turns each cell's vector into ``classes`` scores.

To label every pixel, the coarse scores are upsampled in the network by a transposed
convolution of stride f and kernel 2f, initialised to bilinear interpolation and then
learned (section 3.3). `bilinear_kernel` builds that kernel: a tent 1 - |t - c| / f along
each axis, on the channel diagonal, so each class is interpolated on its own. With
'same' padding the layer crops f/2 pixels on each side and output pixel j reads the
input at (j + 1/2) / f - 1/2, the half-pixel-centre convention of an image resize.

Upsampling by 32 cannot bring back the detail that five pools threw away: FCN-32s paints
blobs. Skips bring it back from shallower layers, whose cells are finer (section 4.2).
FCN-16s scores pool4 (stride 16) with a 1x1 conv, upsamples the stride-32 scores by 2,
adds the two, and upsamples the sum by 16; FCN-8s fuses pool3 (stride 8) the same way
and upsamples by 8: 32 = 2 x 16 = 2 x 2 x 8, each fusion halves the last step. The skip
score layers start at zero, as in the paper, so a fused net starts out predicting what
its coarser parent does. On PASCAL VOC 2011 val the paper reports 59.4, 62.4 and 62.7
mean IU for FCN-32s, -16s and -8s (Table 2): most of the gain comes with the first skip.

One change from the paper: it pads the input by 100 pixels and crops the upsampled scores
back into register; here every conv, fc6 included, uses 'same' padding, so the map after
block i is exactly H / 2**i and nothing needs cropping, hence input sides that are
multiples of 32. fc6 keeps its 7x7 kernel (VGG-16's fc1 weights, 7 * 7 * 512 * 4096 =
102.8 M, fit it), so one set of weights serves any input size; on a map smaller than
7x7 its outer taps read only padding. The knobs: `width` multiplies the backbone's
filters, `fc_units` sets fc6 and fc7 (4096), `batch_norm` puts BN after every conv.
"""

import keras
import numpy as np
from keras import layers

# VGG-16, configuration D of Simonyan and Zisserman's Table 1: filters and convs per block.
FILTERS = (64, 128, 256, 512, 512)
CONVS_PER_BLOCK = (2, 2, 3, 3, 3)
STRIDE = 32  # five 2x2 max-pools
DROPOUT = 0.5  # on fc6 and fc7, as VGG and the paper train them


def _check(ok, argument, expected, got):
    """The one argument check: what Keras would not say clearly, naming the argument."""
    if not ok:
        raise ValueError(f"{argument} must be {expected}, got {got!r}")


def _unique(prefix):
    """A fresh layer-name prefix, so a block called twice without a name does not collide."""
    return f"{prefix}{keras.backend.get_uid(prefix)}"


def _inputs(input_shape):
    """An image input whose sides are multiples of 32, so every pool halves the map exactly."""
    shape = tuple(input_shape or (224, 224, 3))
    known = len(shape) == 3 and None not in shape and min(shape) >= 1
    fits = known and shape[0] % STRIDE == shape[1] % STRIDE == 0
    _check(fits, "input_shape", f"(height, width, channels) with sides multiples of {STRIDE}", input_shape)
    return keras.Input(shape=tuple(int(d) for d in shape))


def _model(inputs, outputs, weights, name):
    """The model, with weights: None or a weights file."""
    model = keras.Model(inputs, outputs, name=name)
    if weights is not None:
        model.load_weights(weights)
    return model


def _conv_relu(x, filters, kernel_size, batch_norm, name):
    """The repeated motif: a same-padded conv and a ReLU, with BN between them on request
    (then the conv has no bias, which the BN would cancel)."""
    if not batch_norm:
        return layers.Conv2D(int(filters), kernel_size, padding="same", activation="relu", name=name)(x)
    x = layers.Conv2D(int(filters), kernel_size, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def bilinear_kernel(size, channels):
    """A (size, size, channels, channels) Conv2DTranspose kernel that upsamples each channel
    by bilinear interpolation (stride f = size // 2 for an even size) and mixes no channels.

    Along each axis the weights are the tent 1 - |t - c| / f, centred at c = (size - 1) / 2:
    for f = 2 they are (0.25, 0.75, 0.75, 0.25), so an output pixel takes 3/4 of its nearer
    input and 1/4 of the other. The 2-D kernel is the outer product of two tents.
    """
    factor = (size + 1) // 2
    tent = 1 - np.abs(np.arange(size) - (size - 1) / 2) / factor
    kernel = np.zeros((size, size, channels, channels), dtype="float32")
    kernel[:, :, np.arange(channels), np.arange(channels)] = np.outer(tent, tent)[:, :, None]
    return kernel


# --- blocks -------------------------------------------------------------------------------


def vgg_block(x, filters, convs=2, batch_norm=False, *, name=None):
    """``convs`` 3x3 convs with ReLU (BN on request), then a 2x2 max-pool that halves the map.
    Its layers are named like keras.applications VGG16's: ``{name}_conv{j}``, ``{name}_pool``."""
    _check(int(convs) >= 1, "convs", "at least 1", convs)
    _check(all(d is None or d >= 2 for d in x.shape[1:3]), "x", "at least 2x2 for the 2x2 pool", x.shape)
    name = name or _unique("block")
    for j in range(1, int(convs) + 1):
        x = _conv_relu(x, filters, 3, batch_norm, f"{name}_conv{j}")
    return layers.MaxPooling2D(2, strides=2, name=f"{name}_pool")(x)


def score(x, classes, *, zeros=False, name=None):
    """A 1x1 conv from features to ``classes`` scores per cell: the classifier, slid over the
    map. ``zeros`` starts it at zero, as the paper starts the skip layers (section 4.2)."""
    return layers.Conv2D(int(classes), 1, kernel_initializer="zeros" if zeros else "glorot_uniform",
                         name=name or _unique("score"))(x)


def upsample_scores(x, factor, *, name=None):
    """Upsample a map of class scores (one channel each) by ``factor``: a transposed conv of kernel
    2 * factor and stride factor, initialised to bilinear interpolation and learnable. Like
    the paper's, it has no bias; 'same' padding makes the output exactly factor times larger."""
    factor = int(factor)
    _check(factor >= 1, "factor", "a positive integer", factor)
    classes = int(x.shape[-1])
    layer = layers.Conv2DTranspose(classes, 2 * factor, strides=factor, padding="same", use_bias=False,
                                   name=name or _unique("upscore"))
    x = layer(x)
    # Set after the call builds it, not through an initializer: an array initializer would be
    # written whole into the model's config (10 MB of JSON for FCN-32s at 21 classes).
    layer.kernel.assign(bilinear_kernel(2 * factor, classes))
    return x


def fuse(scores, skip, classes, *, name=None):
    """The skip connection: upsample the coarse ``scores`` by 2, score ``skip`` (a map twice
    as fine) with a zero-initialised 1x1 conv, and add the two score maps. It merges two
    tensors, so its first parameter is not the one input ``x`` of a block."""
    name = name or _unique("fuse")
    fits = all(None in (s, d) or s == 2 * d for s, d in zip(skip.shape[1:3], scores.shape[1:3]))
    _check(fits, "skip", f"twice the size of scores, {tuple(scores.shape[1:3])}", tuple(skip.shape[1:3]))
    up = upsample_scores(scores, 2, name=f"{name}_upscore")
    fine = score(skip, classes, zeros=True, name=f"{name}_score")
    return layers.Add(name=f"{name}_add")([up, fine])


# --- the networks --------------------------------------------------------------------------


def _fcn(skips, input_shape, name, weights, classes, width, fc_units, batch_norm, output_activation):
    """VGG-16 convolutionalized, scored at stride 32, fused with ``skips`` of pool4 and pool3,
    then upsampled to the input size: FCN-32s, FCN-16s or FCN-8s."""
    _check(classes >= 1, "classes", "a positive integer", classes)
    inputs = _inputs(input_shape)
    x, pools = inputs, []
    for i, (filters, convs) in enumerate(zip(FILTERS, CONVS_PER_BLOCK), start=1):
        x = vgg_block(x, int(filters * width), convs, batch_norm, name=f"block{i}")
        pools.append(x)
    # fc6 and fc7 as convolutions: a 7x7 window over pool5 (the map fc6 reads at 224x224), then 1x1.
    for layer, kernel_size in (("fc6", 7), ("fc7", 1)):
        x = _conv_relu(x, fc_units, kernel_size, batch_norm, layer)
        x = layers.Dropout(DROPOUT, name=f"{layer}_dropout")(x)
    x = score(x, classes, name="score_fr")  # stride 32
    for pool in (4, 3)[:skips]:  # pool4 at stride 16, pool3 at stride 8
        x = fuse(x, pools[pool - 1], classes, name=f"fuse_pool{pool}")
    factor = STRIDE // 2**skips
    x = upsample_scores(x, factor, name=f"upscore{factor}")
    outputs = layers.Activation(output_activation, dtype="float32", name="predictions")(x)
    return _model(inputs, outputs, weights, name)


def fcn32s(input_shape=None, *, name="fcn32s", weights=None, classes=21, width=1.0, fc_units=4096,
           batch_norm=False, output_activation="softmax"):
    """FCN-32s: the stride-32 scores upsampled by 32 in one step (kernel 64).

    The output is (H, W, classes) at the input's size, ``output_activation`` over the
    classes (softmax; "sigmoid" for one-class masks). The default input is 224x224x3 and
    21 classes (PASCAL VOC's 20 and background).
    """
    return _fcn(0, input_shape, name, weights, classes, width, fc_units, batch_norm, output_activation)


def fcn16s(input_shape=None, *, name="fcn16s", weights=None, classes=21, width=1.0, fc_units=4096,
           batch_norm=False, output_activation="softmax"):
    """FCN-16s: the stride-32 scores upsampled by 2 and added to pool4's scores, then
    upsampled by 16 (kernel 32). Output as `fcn32s`."""
    return _fcn(1, input_shape, name, weights, classes, width, fc_units, batch_norm, output_activation)


def fcn8s(input_shape=None, *, name="fcn8s", weights=None, classes=21, width=1.0, fc_units=4096,
          batch_norm=False, output_activation="softmax"):
    """FCN-8s: FCN-16s's stride-16 scores upsampled by 2 and added to pool3's scores, then
    upsampled by 8 (kernel 16). The finest of the three. Output as `fcn32s`."""
    return _fcn(2, input_shape, name, weights, classes, width, fc_units, batch_norm, output_activation)


def feature_stages(model):
    """The names of `model`'s stage outputs, shallow to deep: the backbone's pools,
    block1_pool (stride 2) to block5_pool (stride 32), the layers a feature pyramid or
    Grad-CAM taps; pool3 and pool4 are also the ones FCN-8s and FCN-16s fuse."""
    names = {layer.name for layer in model.layers}
    return [f"block{i}_pool" for i in range(1, 6) if f"block{i}_pool" in names]


# --- cookbook metadata: plain data the cookbook reads; a copied file can delete it ---

FAMILY = "Segmentation"
PAPERS = (
    "Long, Shelhamer, Darrell 2015. Fully Convolutional Networks for Semantic Segmentation. CVPR.",
    "Simonyan, Zisserman 2015. Very Deep Convolutional Networks for Large-Scale Image Recognition. ICLR.",
)
TASK = "segmentation"
DEFAULT_BUILDER = "fcn8s"
BUILDERS = {"fcn32s": {}, "fcn16s": {}, "fcn8s": {"params": 134_489_759}}
DEMO = {
    "builder": "fcn8s",
    "kwargs": {"input_shape": (64, 64, 1), "classes": 1, "width": 0.125, "fc_units": 64, "batch_norm": True,
               "output_activation": "sigmoid"},
    "epochs": 5,  # 3 seeds: mean IoU 0.859-0.860; in 3 epochs 0.765-0.841
    "learning_rate": 1e-2,
}
