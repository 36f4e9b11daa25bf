"""BagNet: a ResNet-50 whose every output sees only a small patch of the image.

Paper: Brendel and Bethge, "Approximating CNNs with Bag-of-local-Features models
works surprisingly well on ImageNet" (ICLR 2019). Reference code: the authors'
PyTorch models, github.com/wielandbrendel/bag-of-local-features-models.

BagNet asks how far ImageNet can be solved without any global shape: it keeps
ResNet-50's bottleneck layout (3, 4, 6, 3 blocks, expansion 4) but makes almost every
convolution 1x1. Only the first block of a stage may use a 3x3 (where `kernel3` says
so), every conv uses valid padding, and there is no max-pool, so the receptive field
of an output location is tiny. It grows by 2 * (the stride so far) per 3x3: the stem's
3x3 gives 3, then the first blocks of the four stages add 2, 4, 8 and 16 (strides 1, 2,
4, 8 before them), so 3 + 2 + 4 = 9, + 8 = 17 and + 16 = 33 pixels for BagNet-9, -17
and -33. The network classifies each patch on its own, and the image's class logits
are the average of the patch logits (average pooling and the linear classifier
commute). That makes the model interpretable by construction: applying the classifier
at every location (`patch_logits=True`) gives a heatmap of class evidence per patch.
BagNet-33 reaches 87.6% top-5 accuracy on ImageNet.

The builders reproduce the reference layout exactly: a 1x1 then a valid 3x3 stem with
no max-pool, the k x k conv carrying the stride, a strided 1x1 + BN shortcut cropped
at the bottom and right to the main path's size, PyTorch's BatchNorm defaults
(epsilon 1e-5, momentum 0.1, i.e. Keras momentum 0.9; the stem's momentum 0.001, i.e.
Keras 0.999), and weights created in the order of the reference's state_dict. `width`
multiplies every layer's filters (1.0 is the paper's network).
"""

import keras
from keras import layers

# How many leading blocks of each stage use a 3x3 (the reference code's `kernel3`).
KERNEL3 = {9: (1, 1, 0, 0), 17: (1, 1, 1, 0), 33: (1, 1, 1, 1)}
BN_EPSILON = 1e-5  # PyTorch's default
BN_MOMENTUM = 0.9  # PyTorch momentum 0.1; Keras counts the other way round
STEM_BN_MOMENTUM = 0.999  # the reference stem's BatchNorm2d(64, momentum=0.001)
PATCH_LOGITS = "patch_logits"  # the name of the per-patch evidence layer


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


def _top(x, include_top, pooling, classes, classifier_activation, patch_logits=False):
    """keras.applications' head; with ``patch_logits`` the classifier runs at every location
    instead (the reference's avg_pool=False). The classifier runs in float32 under mixed precision."""
    _check(pooling in (None, "avg", "max"), "pooling", "None, 'avg' or 'max'", pooling)
    _check(include_top or not patch_logits, "patch_logits", "False without the top", patch_logits)
    if include_top and patch_logits:
        return layers.Dense(int(classes), dtype="float32", name=PATCH_LOGITS)(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
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


def _conv_bn(x, filters, kernel_size, name, strides=1, relu=True):
    """Valid conv without bias -> BN [-> ReLU]: the reference's motif, PyTorch's BN defaults."""
    x = layers.Conv2D(filters, kernel_size, strides=strides, use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x) if relu else x


# --- the block: a ResNet bottleneck with valid padding and a cropped shortcut ----------


def bagnet_block(x, filters, kernel_size=1, strides=1, *, name=None):
    """1x1 -> k x k (stride, valid padding) -> 1x1 to 4 * filters, plus the shortcut.

    The valid k x k conv loses k - 1 rows and columns, so the shortcut drops the last
    k - 1 at the bottom and right, then is a strided 1x1 conv + BN when the stride or
    the channels change. From n pixels both paths then keep ceil((n - k + 1) / s) =
    floor((n - k) / s) + 1, at any input size. Cropping first reads the same pixels as
    the reference's conv-then-crop (a strided 1x1 conv reads only the pixels its stride
    lands on), and it sidesteps a oneDNN crash of TensorFlow 2.21 on a strided 1x1 conv
    over a 62x62 map.
    """
    name, filters, k, strides = name or _unique("bagnet_block"), int(filters), int(kernel_size), int(strides)
    _check(all(d is None or d >= k for d in x.shape[1:3]), "x", f"at least {k}x{k} (kernel_size)", x.shape)
    # The main path first, then the shortcut: the reference state_dict's order.
    y = _conv_bn(x, filters, 1, f"{name}_1")
    y = _conv_bn(y, filters, k, f"{name}_2", strides)
    y = _conv_bn(y, 4 * filters, 1, f"{name}_3", relu=False)
    shortcut = x
    if k > 1:
        shortcut = layers.Cropping2D(((0, k - 1), (0, k - 1)), name=f"{name}_0_crop")(shortcut)
    if strides != 1 or x.shape[-1] != 4 * filters:
        shortcut = _conv_bn(shortcut, 4 * filters, 1, f"{name}_0", strides, relu=False)
    x = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(x)


# --- the network ------------------------------------------------------------------------


def _kernel_sizes(kernel3, blocks):
    """The reference rule: block i of a stage uses a 3x3 when i < kernel3[stage]."""
    return [[3 if i < k3 else 1 for i in range(int(n))] for k3, n in zip(kernel3, blocks)]


def receptive_field(kernel3, blocks=(3, 4, 6, 3), strides=(2, 2, 2, 1)):
    """Side of the input patch one output location sees (also the smallest input):
    3 from the stem, plus 2 * (the stride so far) for every 3x3."""
    field, jump = 3, 1
    for sizes, stride in zip(_kernel_sizes(kernel3, blocks), strides):
        for i, size in enumerate(sizes):
            field += (size - 1) * jump
            jump *= int(stride) if i == 0 else 1
    return field


def bagnet(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
           classes=1000, classifier_activation="softmax", name="bagnet", *, kernel3=(1, 1, 1, 1),
           blocks=(3, 4, 6, 3), strides=(2, 2, 2, 1), width=1.0, patch_logits=False):
    """A BagNet: ``kernel3[s]`` leading blocks of stage s use a 3x3, all else is 1x1.

    ``blocks`` and ``strides`` give each stage's blocks and stride (ResNet-50's by
    default). With ``patch_logits=True`` the classifier runs at every location of the
    last feature map instead of after the average pool: the output is the (rows, cols,
    classes) map of per-patch logits, from a layer named ``patch_logits`` whose weights
    have the same shapes as the pooled model's ``predictions`` layer.
    """
    _check(min(blocks, default=0) > 0, "blocks", "a non-empty tuple of positive counts", blocks)
    _check(len(kernel3) == len(blocks) == len(strides), "kernel3", "as long as blocks and strides", kernel3)
    _check(all(0 <= k <= n for k, n in zip(kernel3, blocks)), "kernel3", f"between 0 and {tuple(blocks)}", kernel3)
    inputs = _inputs(input_tensor, input_shape, include_top, 224, receptive_field(kernel3, blocks, strides))
    x = layers.Conv2D(int(64 * width), 1, use_bias=False, name="conv1_1_conv")(inputs)
    x = layers.Conv2D(int(64 * width), 3, use_bias=False, name="conv1_2_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=STEM_BN_MOMENTUM, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)

    # Stages conv2, conv3, ... with ResNet-50's bottleneck widths 64, 128, 256, 512 (times width).
    for stage, (sizes, stride) in enumerate(zip(_kernel_sizes(kernel3, blocks), strides)):
        for i, size in enumerate(sizes):
            x = bagnet_block(x, int(64 * width * 2**stage), size, stride if i == 0 else 1,
                             name=f"conv{stage + 2}_block{i + 1}")

    outputs = _top(x, include_top, pooling, classes, classifier_activation, patch_logits)
    return _model(inputs, outputs, weights, name)


def bagnet9(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
            classes=1000, classifier_activation="softmax", name="bagnet9", *, width=1.0,
            patch_logits=False):
    """BagNet-9 (Brendel and Bethge 2019): 3x3s in the first block of conv2 and conv3, 9 px patches."""
    return bagnet(include_top, weights, input_tensor, input_shape, pooling, classes,
                  classifier_activation, name, kernel3=KERNEL3[9], width=width, patch_logits=patch_logits)


def bagnet17(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
             classes=1000, classifier_activation="softmax", name="bagnet17", *, width=1.0,
             patch_logits=False):
    """BagNet-17 (Brendel and Bethge 2019): 3x3s in the first block of conv2..conv4, 17 px patches."""
    return bagnet(include_top, weights, input_tensor, input_shape, pooling, classes,
                  classifier_activation, name, kernel3=KERNEL3[17], width=width, patch_logits=patch_logits)


def bagnet33(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
             classes=1000, classifier_activation="softmax", name="bagnet33", *, width=1.0,
             patch_logits=False):
    """BagNet-33 (Brendel and Bethge 2019): 3x3s in the first block of every stage, 33 px patches."""
    return bagnet(include_top, weights, input_tensor, input_shape, pooling, classes,
                  classifier_activation, name, kernel3=KERNEL3[33], width=width, patch_logits=patch_logits)


def feature_stages(model):
    """The names of `model`'s stage outputs, shallow to deep: the layers a feature pyramid,
    a U-Net encoder or Grad-CAM taps. The stem's ReLU and each stage's last block
    (BagNet-33: conv1_relu, conv2_block3_out, conv3_block4_out, conv4_block6_out, conv5_block3_out)."""
    last = {}  # stage -> its last block output, in the order the stages come
    for layer in model.layers:
        if layer.name.startswith("conv") and "_block" in layer.name and layer.name.endswith("_out"):
            last[layer.name.split("_")[0]] = layer.name
    return ["conv1_relu", *last.values()]


# --- cookbook metadata: plain data the cookbook reads; a copied file can delete it ---

FAMILY = "Residual networks"
PAPERS = (
    "Brendel, Bethge 2019. Approximating CNNs with Bag-of-local-Features models works surprisingly well on ImageNet. ICLR.",
    "He, Zhang, Ren, Sun 2016. Deep Residual Learning for Image Recognition. CVPR.",
)
TASK = "classification"
DEFAULT_BUILDER = "bagnet33"
BUILDERS = {"bagnet9": {}, "bagnet17": {}, "bagnet33": {"params": 18_363_304}, "bagnet": {}}
DEMO = {
    "builder": "bagnet",
    "kwargs": {"input_shape": (64, 64, 1), "classes": 10, "kernel3": (1, 1, 1, 1), "blocks": (1, 1, 1, 1),
               "strides": (2, 2, 1, 1), "width": 0.125},  # 25 px patches; a 12x12 map at conv4
    "epochs": 4,
    "batch_size": 128,
    "learning_rate": 5e-3,
    "augment": "translate",  # a bag of local features overfits the 5,000 canvases without it
    "gradcam_layer": "conv4_block1_out",
}
