"""Shared by the whole package: argument checks, layer lookup, map resizing.

Nothing here depends on the backend; the gradient and compilation code is in
``_backend``.
"""

from __future__ import annotations

import math
import numbers

import keras
import numpy as np
from keras import ops

CONV_TYPES = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
)


class NonFiniteGradientError(FloatingPointError):
    """A gradient held NaN or Inf, so the visualization cannot go on."""


# --- layers ---------------------------------------------------------------------------------


def _walk(model):
    """All layers, depth first, nested models expanded (the models themselves too)."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _walk(layer)


def _output_rank(layer):
    try:
        return len(layer.output.shape)
    except (AttributeError, ValueError, TypeError):
        return None


def conv_layer_names(model):
    """Names of the convolution layers of ``model`` (1-D and 2-D), nested models included, in order."""
    _check_model(model)
    return [layer.name for layer in _walk(model) if isinstance(layer, CONV_TYPES)]


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    if not model.built:
        raise ValueError("model must be built (call it once or give it an Input)")


def _input_rank(model):
    """4 for image models (N, H, W, C), 3 for 1-D models (N, samples, C)."""
    inputs = getattr(model, "inputs", None)
    return len(inputs[0].shape) if inputs else 4


def _layout(rank):
    return "(N, H, W, C)" if rank == 4 else "(N, steps, C)" if rank == 3 else f"rank-{rank}"


def _find_layer(model, layer, argname="layer", flat=False):
    """The layer called ``layer`` (a name or a Layer) whose output is a map like the
    model's input: 4-D (N, H, W, C) for images, 3-D (N, steps, C) for 1-D models; with
    ``flat``, a 2-D (N, D) output (Dense, Flatten, global pooling) is accepted too."""
    rank = _input_rank(model)
    candidates = [l for l in _walk(model) if not isinstance(l, (keras.Model, keras.layers.InputLayer))]
    if layer is None:
        spatial = [l for l in candidates if _output_rank(l) == rank]
        if not spatial:
            raise ValueError(f"{argname}: model {model.name!r} has no layer with a {rank}-D {_layout(rank)} output")
        return spatial[-1]
    if isinstance(layer, keras.layers.Layer):
        if not any(l is layer for l in candidates):
            raise ValueError(f"{argname}: layer {layer.name!r} is not part of model {model.name!r}")
        found = layer
    elif isinstance(layer, str):
        matches = [l for l in candidates if l.name == layer]
        if not matches:
            convs = ", ".join(conv_layer_names(model)) or "(none)"
            raise ValueError(
                f"{argname}: no layer named {layer!r} in model {model.name!r}. "
                f"Conv layers available: {convs}. Any layer with a {rank}-D output also works."
            )
        found = matches[0]
    else:
        raise TypeError(f"{argname} must be a layer name (str), a keras Layer or None, got {type(layer).__name__}")
    found_rank = _output_rank(found)
    if found_rank is not None and found_rank != rank and not (flat and found_rank == 2):
        raise ValueError(
            f"{argname}: layer {found.name!r} has a {found_rank}-D output; a {rank}-D {_layout(rank)} output "
            f"{'(or a 2-D (N, D) one) ' if flat else ''}is needed. "
            f"Conv layers available: {', '.join(conv_layer_names(model))}"
        )
    return found


def _num_classes(model):
    try:
        shape = model.output_shape
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(shape, list):
        shape = shape[0]
    return shape[-1] if shape and len(shape) == 2 else None


# --- arguments ------------------------------------------------------------------------------


def _check_images(model, images, argname="images"):
    """A float32 numpy batch of the model's input shape, or a clear error."""
    rank = _input_rank(model)
    if isinstance(images, (list, tuple)):
        raise TypeError(f"{argname} must be an array of shape {_layout(rank)}, got a {type(images).__name__}")
    try:
        array = np.asarray(keras.ops.convert_to_numpy(images))
    except Exception as error:  # noqa: BLE001 - any unconvertible object
        raise TypeError(f"{argname} must be an array, got {type(images).__name__}") from error
    if array.dtype.kind != "f":
        raise TypeError(
            f"{argname} must be a floating-point array (float16/32/64), got dtype {array.dtype}; "
            "convert integer pixels with images.astype('float32') (and scale them as in training)"
        )
    if array.ndim != rank:
        raise ValueError(f"{argname} must have rank {rank} {_layout(rank)}, got shape {array.shape}")
    if array.shape[0] < 1:
        raise ValueError(f"{argname} is an empty batch")
    expected = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else None
    if expected is not None and any(e is not None and e != g for e, g in zip(expected, array.shape[1:])):
        raise ValueError(
            f"{argname} must have per-image shape {expected} for model {model.name!r} "
            f"(None: any size), got {tuple(array.shape[1:])}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{argname} holds NaN or Inf values")
    return array.astype("float32")


def _check_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_number(value, name, minimum=None, strict=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum}, got {value}")
    return value


def _check_choice(value, name, choices):
    """``value`` if it is one of the strings ``choices``, else a ValueError naming ``name``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _check_units(units, count, name, where):
    """A non-empty int64 array of channel indices in [0, count); None means all of them."""
    if units is None:
        return np.arange(count)
    if isinstance(units, numbers.Integral) and not isinstance(units, bool):
        units = [int(units)]
    array = np.asarray(units)
    if array.ndim != 1 or array.size == 0 or array.dtype.kind not in "iu":
        raise ValueError(f"{name} must be a non-empty sequence of ints, got {units!r}")
    if array.min() < 0 or array.max() >= count:
        raise ValueError(f"{name} must be in [0, {count - 1}] for layer {where!r}, got {array.tolist()}")
    return array.astype("int64")


def _class_onehot(model, class_index, n):
    """(n, K) one-hot rows; an all-zero row means "the predicted class" (argmax)."""
    k = _num_classes(model)
    if class_index is None:
        if k is None:
            raise ValueError("class_index: the model's number of classes is unknown; give class_index")
        return np.zeros((n, k), "float32")
    if isinstance(class_index, bool):
        raise TypeError("class_index must be an int, a sequence of n ints or None, got bool")
    index = np.asarray(class_index)
    if index.dtype.kind not in "iu":
        raise TypeError(f"class_index must be an int, a sequence of ints or None, got {index.dtype}")
    if index.ndim == 0:
        index = np.full((n,), int(index))
    if index.shape != (n,):
        raise ValueError(f"class_index must be one int or {n} ints (one per image), got shape {index.shape}")
    if k is None:
        raise ValueError("class_index: the model's number of classes is unknown (output is not (N, K))")
    if index.min() < 0 or index.max() >= k:
        raise ValueError(f"class_index must be in [0, {k - 1}] for model {model.name!r}, got {index.tolist()}")
    return np.eye(k, dtype="float32")[index]


def _raise_if_nonfinite(finite, what):
    if not bool(np.all(keras.ops.convert_to_numpy(finite))):
        raise NonFiniteGradientError(
            f"{what}: the gradient holds NaN or Inf. Check the inputs' scale, the model's "
            "weights (did training diverge?) and, under mixed precision, overflowing float16 values."
        )


def _chunks(n, size):
    return [(i, min(i + size, n)) for i in range(0, n, size)]


# --- maps -----------------------------------------------------------------------------------


def _spatial_axes(rank):
    """The position axes of a (N, ..., C) tensor: (1, 2) for images, (1,) for 1-D maps."""
    return tuple(range(1, rank - 1))


def _crop_border(act, border):
    """``act`` (N, ..., C) without ``border`` positions at each end of every spatial axis."""
    if not border:
        return act
    return act[(slice(None), *[slice(border, -border)] * (len(act.shape) - 2), slice(None))]


def _resize_channels(act, size):
    """Activations (N, h, w, K) or (N, steps, K) resized (bilinear / linear) to ``size``."""
    act = np.asarray(act, "float32")
    if act.ndim == 3:  # a 1-D map is an image one pixel wide
        return _resize_channels(act[:, :, None], (size[0], 1))[:, :, 0]
    return keras.ops.convert_to_numpy(ops.image.resize(act, tuple(size), interpolation="bilinear"))


def _resize_maps(maps, size):
    """Maps (N, h, w) or (N, steps) resized (bilinear / linear) to ``size``, clipped at 0."""
    return np.maximum(_resize_channels(np.asarray(maps, "float32")[..., None], size)[..., 0], 0.0)


def _normalize_maps(maps, signed=False):
    """Each map divided by its maximum (its maximum absolute value if ``signed``); an
    all-zero map stays zero."""
    peak = (np.abs(maps) if signed else maps).reshape(len(maps), -1).max(axis=1)
    peak = peak.reshape(-1, *([1] * (maps.ndim - 1)))
    return np.where(peak > 0, maps / np.where(peak > 0, peak, 1.0), 0.0).astype("float32")


def _numeric_array(value):
    """``value`` as a numeric numpy array (a backend tensor too), or None if it is not one."""
    if isinstance(value, str):
        return None
    try:
        array = np.asarray(keras.ops.convert_to_numpy(value))
    except Exception:  # noqa: BLE001 - any unconvertible object
        return None
    return array if array.dtype.kind in "fiu" else None


def _check_baseline(model, x, baseline, argname="baseline"):
    """A reference input per image, float32 like ``x``: a number (a constant image), one
    image, or one image per image of ``x``."""
    if isinstance(baseline, bool):
        raise TypeError(f"{argname} must be a number or an array, got bool")
    if isinstance(baseline, (int, float, np.number)):
        return np.full_like(x, _check_number(baseline, argname))
    array = _numeric_array(baseline)
    if array is None:
        raise TypeError(f"{argname} must be a number or an array like the images, got {type(baseline).__name__}")
    if array.ndim == x.ndim - 1:
        array = array[None]
    array = _check_images(model, array.astype("float32"), argname)
    if len(array) not in (1, len(x)):
        raise ValueError(f"{argname} must hold one image or {len(x)} (one per image), got {len(array)}")
    return np.broadcast_to(array, x.shape).astype("float32")
