"""Make a classifier fully convolutional: its Flatten-Dense head becomes convolutions.

Paper: Long, Shelhamer and Darrell, "Fully Convolutional Networks for Semantic
Segmentation" (CVPR 2015), section 3.1; the idea is OverFeat's (Sermanet et al.,
"OverFeat: Integrated Recognition, Localization and Detection using Convolutional
Networks", ICLR 2014).

A Dense layer that reads a flattened h x w x c map is an h x w convolution whose kernel
is the Dense kernel reshaped to (h, w, c, units), and each Dense after it is a 1x1
convolution. Rewritten so, the classifier takes inputs of any size (at least the training
size) and returns a map of class scores: at the training size a 1x1 map equal to the
original output, on a larger image one score vector per training-size window, the windows
a total stride apart. It is a sliding-window classifier that computes the overlapping
windows' features once. A cell equals the original model on its crop exactly only where
the crop's convolutions see no padding: zero padding ("same" or ZeroPadding2D) makes a crop
read zeros at its edges where the large image has pixels.
"""

import keras

__all__ = ["fully_convolutional"]

_SHARED = ("activation", "use_bias", "kernel_regularizer", "bias_regularizer",
           "activity_regularizer")


def fully_convolutional(model, *, name=None):
    """``model`` (functional or Sequential, a trunk then Flatten, Dense and Dropout layers)
    on inputs of shape (None, None, channels), its head as convolutions: a model that
    returns (H', W', classes) score maps. The trunk's layers are shared with ``model``."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    model = _functional(model)
    flatten, head = _head(model)
    h, w, _ = _map_shape(flatten)
    convs = {}  # the first Dense reads the h x w map; the later ones read one cell
    for dense in (layer for layer in head if isinstance(layer, keras.layers.Dense)):
        convs[dense] = _as_conv(dense, (1, 1) if convs else (h, w))

    def call(layer, *args, **kwargs):
        if layer is flatten:
            return args[0]  # the conv replacing the first Dense reads the map itself
        layer = convs.get(layer, layer)
        if isinstance(layer, keras.Model) and any(None not in x.shape[1:-1] for x in layer.inputs):
            # it would build here on a None-size input, then refuse other sizes when run
            raise ValueError(f"layer {layer.name!r} is a model with a fixed input size; "
                             "build it on (None, None, channels) inputs")
        try:
            return layer(*args, **kwargs)
        except Exception as error:  # name the layer: Keras's message may not
            raise ValueError(f"layer {layer.name!r} does not take a variable-size input: "
                             f"{error}") from error

    source = model.inputs[0]
    input_layer = next((layer for layer in model.layers
                        if isinstance(layer, keras.layers.InputLayer)), None)
    inputs = keras.Input(shape=(None, None, source.shape[-1]), dtype=source.dtype,
                         name=input_layer and input_layer.name)
    # clone_model walks model's own graph; returning each layer itself shares its weights.
    rebuilt = keras.models.clone_model(
        model, input_tensors=keras.tree.map_structure(lambda _: inputs, model.input),
        clone_function=lambda layer: layer, call_function=call)
    return keras.Model(inputs, rebuilt.outputs, name=name or f"{model.name}_fcn")


def _functional(model):
    """``model`` as a functional graph; a built Sequential model is one already."""
    if isinstance(model, keras.Sequential) and model.built:
        model = keras.Model(model.inputs, model.outputs, name=model.name)
    try:  # subclassed and unbuilt models have no graph to walk
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs or len(inputs) != 1 or len(inputs[0].shape) != 4 or len(model.outputs) != 1:
        raise ValueError(f"model {model.name!r} must be a functional or built Sequential model "
                         "with one image input (batch, h, w, c) and one output")
    return model


def _head(model):
    """The last Flatten and the layers after it, which must be Dense or Dropout."""
    layers = model.layers  # in graph order: the head is what follows the Flatten
    at = [i for i, layer in enumerate(layers) if isinstance(layer, keras.layers.Flatten)]
    if not at:
        raise ValueError(f"model {model.name!r} has no Flatten layer: fully_convolutional "
                         "converts a Flatten-Dense classifier head")
    head = layers[at[-1] + 1:]
    other = [layer.name for layer in head
             if not isinstance(layer, (keras.layers.Dense, keras.layers.Dropout))]
    if other or not head or not isinstance(head[-1], keras.layers.Dense):
        raise ValueError(f"the layers after the Flatten must be Dense (last) and Dropout, "
                         f"got {[layer.name for layer in head]} ({other or 'no Dense last'})")
    return layers[at[-1]], head


def _map_shape(flatten):
    """(h, w, c) of the map that ``flatten`` reads, in the (h, w, c) order it flattens."""
    shape = tuple(flatten.input.shape[1:])  # its first call, the one that built ``model``
    if flatten.get_config()["data_format"] != "channels_last" or len(shape) != 3 or None in shape:
        raise ValueError(f"Flatten {flatten.name!r} must read a channels_last (h, w, c) map "
                         f"of a fixed size, got {shape}")
    return shape


def _as_conv(dense, kernel_size):
    """``dense`` as a Conv2D with the same weights, activation (over channels) and dtype.

    Flatten lays out an (h, w, c) map row-major, so the Dense kernel's rows are already
    in the order of an (h, w, c, units) conv kernel: a reshape, no transpose.
    """
    kernel = keras.ops.convert_to_numpy(dense.kernel)
    h, w = kernel_size
    (channels, rest), units = divmod(kernel.shape[0], h * w), kernel.shape[1]
    if rest:
        raise ValueError(f"Dense {dense.name!r} reads {kernel.shape[0]} values, not a multiple "
                         f"of its {h}x{w} map")
    config = dense.get_config()  # what a Dense and a Conv2D share, as the Dense has it
    shared = {key: config[key] for key in _SHARED if key in config}
    conv = keras.layers.Conv2D(units, kernel_size, dtype=dense.dtype_policy,
                               name=f"{dense.name}_conv", **shared)
    conv.build((None, None, None, channels))
    weights = [kernel.reshape(h, w, channels, units)]
    if dense.use_bias:
        weights.append(keras.ops.convert_to_numpy(dense.bias))
    conv.set_weights(weights)
    return conv
