"""Activation maximization: filter images by gradient ascent, first-layer kernels, DeepDream.

Filter images are batched: one optimization renders many filters, input i maximizing
filter i. Two methods: keras-io's plain normalized-gradient ascent on the pixels, and
Lucid's regularized one (Olah et al., "Feature Visualization", Distill 2017): a
decorrelated Fourier parameterization optimized with Adam, under random transformations.
Both work on 1-D models, where the input is a waveform.
"""

from __future__ import annotations

import math
import numbers

import keras
import numpy as np
from keras import ops

from ._backend import (
    _activation_shape,
    _cached,
    _compile,
    _layer_outputs,
    _model_state,
    _probe,
    _value_and_grad,
)
from ._common import (
    CONV_TYPES,
    _check_images,
    _check_int,
    _check_model,
    _check_number,
    _check_units,
    _chunks,
    _crop_border,
    _find_layer,
    _input_rank,
    _raise_if_nonfinite,
    _spatial_axes,
    _walk,
    conv_layer_names,
)
from .dataset import _field_slices

# Lucid's colour-correlation square root (ImageNet statistics), used to decorrelate
# the three colour channels of the Fourier parameterization.
_COLOR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], "float32")
_COLOR_SQRT /= np.max(np.linalg.norm(_COLOR_SQRT, axis=0))

# Input values per filter_images batch when batch_size is None (2**19, 16 images at 180 px).
_AUTO_BATCH_PIXELS = 2**19
# Default steps: plain as keras-io; regularized sized to a few seconds (docs/api/visualize.md).
_DEFAULT_STEPS = {"plain": 30, "regularized": 128}
_DEFAULT_LR = {"plain": 10.0, "regularized": 0.05}


# --- the regularized method's parameterization and transformations ---------------------------


def _spectrum_scale(h, w, decay_power=1.0):
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    freqs = np.sqrt(fx**2 + fy**2)
    return (1.0 / np.maximum(freqs, 1.0 / max(h, w)) ** decay_power).astype("float32")


def _fourier_to_image(params, channels, value_range):
    """Lucid's parameterization: scaled spectrum -> inverse FFT -> decorrelated colours -> sigmoid."""
    h, w = int(params.shape[-2]), int(params.shape[-1])
    scale = ops.convert_to_tensor(_spectrum_scale(h, w))
    real, imag = params[0] * scale, params[1] * scale  # (B, C, H, W) each
    image, _ = ops.ifft2((real, imag))
    image = ops.transpose(image, (0, 2, 3, 1)) * (float(h * w) ** 0.5) / 4.0
    if channels == 3:
        image = ops.matmul(image, ops.convert_to_tensor(_COLOR_SQRT.T))
    low, high = value_range
    return low + (high - low) * ops.sigmoid(image)


def _fourier_to_wave(params, length, value_range, window=None):
    """The 1-D analogue: a scaled real spectrum (B, C, length//2+1) -> waveform at a fixed loudness.

    The amplitude falls as 1/sqrt(f), not 1/f: that gives each octave the same energy,
    as 1/f does in 2-D (where an octave holds 4x the frequencies). In place of the
    sigmoid, the waveform is centred in ``value_range`` and scaled to an RMS of a sixth of
    it over the samples in ``window`` (a slice, or None for all), then clipped to it.
    Under a peak bound such as a sigmoid's, the input that most excites a unit is the
    sign of its matched filter, a square wave; under an RMS bound it is the matched
    filter itself, which for a unit tuned to a tone is that tone.
    """
    freqs = np.fft.rfftfreq(length)
    scale = ops.convert_to_tensor((1.0 / np.sqrt(np.maximum(freqs, 1.0 / length))).astype("float32"))
    wave = ops.irfft((params[0] * scale, params[1] * scale), fft_length=length)
    wave = ops.transpose(wave, (0, 2, 1))  # (B, length, C)

    def seen(signal):
        return signal if window is None else signal[:, window]

    wave = wave - ops.mean(seen(wave), axis=(1, 2), keepdims=True)
    rms = ops.sqrt(ops.mean(ops.square(seen(wave)), axis=(1, 2), keepdims=True))
    low, high = value_range
    return ops.clip((low + high) / 2 + wave * ((high - low) / 6) / (rms + 1e-12), low, high)


def _to_input(params, shape, value_range, window=None):
    """The regularized method's input (B, *shape) from its Fourier parameters."""
    if len(shape) == 2:  # (length, channels)
        return _fourier_to_wave(params, shape[0], value_range, window)
    return _fourier_to_image(params, shape[-1], value_range)


def _initial_params(rng, n, shape):
    """Small random Fourier parameters: (2, n, C, H, W), or (2, n, C, length//2+1) for 1-D."""
    spectrum = (shape[0] // 2 + 1,) if len(shape) == 2 else tuple(shape[:2])
    return (0.01 * rng.normal(size=(2, n, shape[-1], *spectrum))).astype("float32")


def _random_transforms(rng, n, h, w, jitter, scales, degrees):
    """One projective transform (keras.ops.image.affine_transform layout) per image:
    jitter, scale and rotation about the centre (Lucid's transformation robustness)."""
    angle = np.deg2rad(rng.uniform(-degrees, degrees, n))
    scale = rng.choice(np.asarray(scales, "float64"), n)
    ty, tx = rng.integers(-jitter, jitter + 1, (2, n)) if jitter else np.zeros((2, n))
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    # output (x, y) -> input: centre, rotate/scale (inverse), shift back, plus jitter.
    a0, a1 = cos, -sin
    b0, b1 = sin, cos
    a2 = cx - a0 * cx - a1 * cy + tx
    b2 = cy - b0 * cx - b1 * cy + ty
    zeros = np.zeros(n)
    return np.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1).astype("float32")


def _random_shifts(rng, n, length, channels, jitter):
    """Per waveform, the sample indices (n, length, channels) that shift it by up to
    ``jitter`` samples, reflected at the ends: 1-D transformation robustness."""
    shift = rng.integers(-jitter, jitter + 1, (n, 1)) if jitter else np.zeros((n, 1), int)
    index = np.abs(np.arange(length)[None] + shift)
    index = np.clip(length - 1 - np.abs(length - 1 - index), 0, length - 1)
    return np.repeat(index[..., None], channels, axis=-1).astype("int32")


def _random_transform(rng, n, shape, jitter, scales, degrees):
    if len(shape) == 2:
        return _random_shifts(rng, n, shape[0], shape[1], jitter)
    return _random_transforms(rng, n, shape[0], shape[1], jitter, scales, degrees)


def _apply_transform(signal, transform):
    if len(signal.shape) == 3:
        return ops.take_along_axis(signal, transform, axis=1)
    return ops.image.affine_transform(signal, transform, fill_mode="reflect")


# --- filter images ---------------------------------------------------------------------------


def _unit_activation(act, border, position):
    """(N, C): each channel's mean over the map (``border`` excluded), or its value at ``position``."""
    if position is not None:  # Lucid's neuron objective: one position of the map
        return act[(slice(None), *position)]
    return ops.mean(_crop_border(act, border), axis=_spatial_axes(len(act.shape)))


def _filter_step_function(model, layer, method, border, position, lr, shape, value_range, window, jit_compile):
    def objective_for(state, onehot, transform):
        def objective(param):
            if method == "plain":
                image = param
            else:
                image = _apply_transform(_to_input(param, shape, value_range, window), transform)
            _, store = _probe(model, state, image, record=(layer,), stop=layer, logits=False)
            per_image = ops.sum(_unit_activation(store[layer.name], border, position) * onehot, axis=-1)
            return ops.sum(per_image), per_image

        return objective

    def plain_step(image, onehot, state):
        _, values, grads = _value_and_grad(objective_for(state, onehot, None), image)
        grads = ops.cast(grads, "float32")
        norm = ops.sqrt(ops.sum(grads**2, axis=tuple(range(1, len(shape) + 1)), keepdims=True))
        image = image + lr * grads / ops.maximum(norm, 1e-12)
        return image, values, ops.all(ops.isfinite(grads))

    def adam_step(param, m, v, t, onehot, transform, state):
        _, values, grads = _value_and_grad(objective_for(state, onehot, transform), param)
        grads = ops.cast(grads, "float32")
        m = 0.9 * m + 0.1 * grads
        v = 0.999 * v + 0.001 * grads**2
        m_hat = m / (1.0 - 0.9**t)
        v_hat = v / (1.0 - 0.999**t)
        param = param + lr * m_hat / (ops.sqrt(v_hat) + 1e-8)  # ascent
        return param, m, v, values, ops.all(ops.isfinite(grads))

    return _compile(plain_step if method == "plain" else adam_step, jit_compile)


def _seen_samples(model, layer, position, shape):
    """For a 1-D unit at ``position``, the slice of samples its receptive field covers, over
    which the regularized waveform's loudness is set; None for images, a mean over the map,
    or a field that cannot be computed (a transposed convolution before it)."""
    if len(shape) != 2 or position is None:
        return None
    from cookbook import cost

    try:
        field = cost.receptive_field(model, layer)
    except ValueError:
        return None
    return _field_slices(field, position, (min(field.size[0], shape[0]),), shape[:1])[0]


def _filter_activations(model, layer, images, filters, border, position, batch_size):
    """Activation of filter ``filters[i]`` on ``images[i]``, as the ascent measured it."""
    values = np.empty(len(images), "float32")
    for a, act in _layer_outputs(model, layer, images, batch_size):
        units = keras.ops.convert_to_numpy(_unit_activation(act, border, position))
        values[a:a + len(act)] = units[np.arange(len(act)), filters[a:a + len(act)]]
    return values


def _check_position(position, map_shape, where):
    """``position`` as a tuple of ints inside a map of ``map_shape``."""
    if (not isinstance(position, (tuple, list)) or len(position) != len(map_shape)
            or not all(isinstance(p, numbers.Integral) and not isinstance(p, bool) and 0 <= p < n
                       for p, n in zip(position, map_shape))):
        raise ValueError(f"position must be {len(map_shape)} ints inside layer {where!r}'s "
                         f"{tuple(map_shape)} map, got {position!r}")
    return tuple(int(p) for p in position)


def _check_size(size, input_shape):
    """(H, W) for images, (samples,) for 1-D, from ``size`` or the model's fixed input size."""
    ndim = len(input_shape) - 1
    if size is None:
        if None in input_shape[:-1]:
            raise ValueError("size must be given: the model's input size is not fixed")
        return tuple(int(s) for s in input_shape[:-1])
    if ndim == 1 and isinstance(size, numbers.Integral) and not isinstance(size, bool) and size > 0:
        return (int(size),)
    if (not isinstance(size, (tuple, list)) or len(size) != ndim
            or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in size)):
        what = "(height, width)" if ndim == 2 else "samples (an int or a 1-tuple)"
        raise ValueError(f"size must be {what} of positive ints, got {size!r}")
    return tuple(int(s) for s in size)


def filter_images(model, layer, filters=None, *, method="regularized", steps=None, lr=None,
                  size=None, border=2, position=None, init=None, value_range=None, batch_size=None,
                  jitter=8, scales=(0.9, 0.95, 1.0, 1.05, 1.1), degrees=10.0, seed=0,
                  return_start=False, jit_compile=False):
    """Inputs that maximize filters, by gradient ascent in input space (one per filter).

    All filters go through one batched optimization: input i maximizes the mean
    activation of filter i over the layer's map, ``border`` positions excluded at each
    end of each axis, or with ``position`` its activation at that one position (Lucid's
    neuron objective, for units whose receptive field is smaller than the input). Works
    for image models and for 1-D models (the inputs are then waveforms (F, samples, C)
    and the map runs over time).

    Args:
        model: a built ``keras.Model``; nested and Sequential models work.
        layer: name (or Layer) of a layer with a 4-D output (3-D for a 1-D model). A
            wrong name raises ValueError listing the conv layers.
        filters: channel indices to render; None renders every channel.
        method: ``"regularized"`` (the default), as Lucid does it: a decorrelated
            Fourier parameterization (1/f-scaled spectrum, decorrelated colours,
            squashed into ``value_range`` by a sigmoid) optimized with Adam, with random
            jitter, scale and rotation at each step (defaults: 128 steps, lr 0.05; 8
            filters of a small conv layer took 2-4 s at 48 px and 6-7.5 s at 64 px on
            a 2-core CPU that a training job was also using). On 1-D
            models the same with a 1-D spectrum and random time shifts of up to
            ``jitter`` samples, but at a fixed loudness in place of the sigmoid: an
            RMS of a sixth of ``value_range`` over the samples the objective sees (the
            unit's receptive field with ``position``), clipped to the range. A peak
            bound makes the best waveform a square wave. ``"plain"``, as keras-io does
            it: ``steps`` normalized-gradient steps ``x += lr * g / ||g||`` from the middle of
            ``value_range`` plus 12.5% uniform noise (defaults: 30 steps, lr 10).
        steps: number of optimization steps.
        lr: step size (plain) or Adam learning rate (regularized).
        size: (H, W) of the images (samples, an int, for 1-D); None takes the model's
            input size (it must be fixed).
        border: positions excluded from each end of the activation map's axes.
        position: a map position, (row, column) ((step,) for 1-D): maximize each
            filter's activation there instead of its mean over the map (``border`` is
            then unused). Only the input under that position's receptive field
            (:func:`cookbook.cost.receptive_field`) can change its activation.
        init: optional start inputs (len(filters), *size, C) for ``plain``.
        value_range: (low, high) of the model's inputs; regularized images are squashed
            into it, waveforms centred and clipped in it. None: (0, 1) for images, (-1, 1)
            for 1-D signals.
        batch_size: filters optimized together per batch. None picks about half a
            million input values per batch, at most 64 inputs (16 at 180x180, 64 at
            64x64): on a 2-core CPU larger batches of large images got slower per
            image, not faster (docs/performance.md).
        jitter, scales, degrees: the regularized method's random transformations
            (pixels or samples of translation; scale factors to draw from and max
            rotation, for images only).
        seed: seed of the start noise and of the transformations.
        return_start: also return each filter's activation at the start input, to tell
            the filters whose ascent moved from those that stayed flat.
        jit_compile: compile with XLA on TensorFlow (JAX always compiles).

    Returns:
        ``(images, activations)``: float32 (F, H, W, C) images ((F, samples, C) for
        1-D) in ``value_range`` units, and each filter's final mean activation (F,) on
        its untransformed input. With ``return_start``, ``(images, activations,
        start_activations)``, the last (F,) measured the same way on the start inputs.
    """
    _check_model(model)
    target = _find_layer(model, layer)
    if method not in ("plain", "regularized"):
        raise ValueError(f"method must be 'plain' or 'regularized', got {method!r}")
    steps = _check_int(_DEFAULT_STEPS[method] if steps is None else steps, "steps")
    lr = _check_number(_DEFAULT_LR[method] if lr is None else lr, "lr", 0.0, strict=True)
    border = _check_int(border, "border", minimum=0)
    if batch_size is not None:
        batch_size = _check_int(batch_size, "batch_size")
    jitter = _check_int(jitter, "jitter", minimum=0)
    degrees = _check_number(degrees, "degrees", minimum=0.0)
    if (not isinstance(scales, (tuple, list)) or not scales
            or not all(isinstance(s, numbers.Real) and s > 0 for s in scales)):
        raise ValueError(f"scales must be a non-empty sequence of positive numbers, got {scales!r}")
    if value_range is None:
        value_range = (0.0, 1.0) if _input_rank(model) == 4 else (-1.0, 1.0)
    if (not isinstance(value_range, (tuple, list)) or len(value_range) != 2
            or not all(isinstance(v, numbers.Real) for v in value_range) or value_range[0] >= value_range[1]):
        raise ValueError(f"value_range must be (low, high) with low < high, got {value_range!r}")
    input_shape = tuple(model.inputs[0].shape[1:])
    shape = (*_check_size(size, input_shape), input_shape[-1])  # one input: (*size, C)
    if batch_size is None:
        batch_size = max(1, min(64, _AUTO_BATCH_PIXELS // math.prod(shape[:-1])))
    act_shape = _activation_shape(model, target, shape)
    if position is not None:
        position = _check_position(position, act_shape[:-1], target.name)
    elif any(s <= 2 * border for s in act_shape[:-1]):
        raise ValueError(f"border={border} leaves nothing of layer {target.name!r}'s {act_shape[:-1]} map")
    filters = _check_units(filters, act_shape[-1], "filters", target.name)
    if init is not None:
        if method != "plain":
            raise ValueError("init is only used by method='plain' (the default is 'regularized')")
        init = _check_images(model, init, "init")
        if init.shape != (len(filters), *shape):
            raise ValueError(f"init must have shape {(len(filters), *shape)}, got {init.shape}")

    low, high = float(value_range[0]), float(value_range[1])
    key = ("filters", target.name, method, border, position, lr, shape, (low, high), bool(jit_compile))
    window = _seen_samples(model, target, position, shape) if method == "regularized" else None
    step = _cached(model, key, lambda: _filter_step_function(
        model, target, method, border, position, lr, shape, (low, high), window, jit_compile))
    state = _model_state(model)
    rng = np.random.default_rng(seed)
    onehot_all = np.eye(act_shape[-1], dtype="float32")[filters]
    images, starts = [], []
    for a, b in _chunks(len(filters), batch_size):
        n, onehot = b - a, onehot_all[a:b]
        if method == "plain":
            if init is not None:
                image = init[a:b]
            else:
                image = ((low + high) / 2 + (rng.uniform(size=(n, *shape)) - 0.5)
                         * 0.125 * (high - low)).astype("float32")
            starts.append(image)
            for _ in range(steps):
                image, _, finite = step(image, onehot, state)
                _raise_if_nonfinite(finite, "filter_images")
        else:
            param = _initial_params(rng, n, shape)
            starts.append(keras.ops.convert_to_numpy(_to_input(param, shape, (low, high), window)))
            m, v = np.zeros_like(param), np.zeros_like(param)
            for t in range(1, steps + 1):
                transform = _random_transform(rng, n, shape, jitter, scales, degrees)
                param, m, v, _, finite = step(param, m, v, np.float32(t), onehot, transform, state)
                _raise_if_nonfinite(finite, "filter_images")
            image = _to_input(param, shape, (low, high), window)
        images.append(keras.ops.convert_to_numpy(image).astype("float32"))
    images = np.concatenate(images)
    values = _filter_activations(model, target, images, filters, border, position, batch_size)
    if not return_start:
        return images, values
    return images, values, _filter_activations(model, target, np.concatenate(starts).astype("float32"),
                                               filters, border, position, batch_size)


# --- first-layer filters and DeepDream --------------------------------------------------------


def first_layer_filters(model, layer=None):
    """The first conv layer's kernels as small images (or 1-D kernels), scaled for display.

    Args:
        model: a built ``keras.Model``.
        layer: a conv layer's name; None takes the first conv layer (for
            SeparableConv the depthwise kernel).

    Returns:
        float32 array (F, kh, kw, C) in [0, 1] ((F, k, C) for a 1-D conv), 0.5 being
        zero weight. C is the input channels when that is 1 or 3, else 1 (the mean
        over input channels).
    """
    _check_model(model)
    convs = [l for l in _walk(model) if isinstance(l, CONV_TYPES)]
    if not convs:
        raise ValueError(f"model: {model.name!r} has no conv layers")
    if layer is None:
        conv = convs[0]
    else:
        conv = _find_layer(model, layer)
        if not isinstance(conv, CONV_TYPES):
            raise ValueError(f"layer {conv.name!r} is not a conv layer; conv layers: {', '.join(conv_layer_names(model))}")
    kernel = keras.ops.convert_to_numpy(conv.weights[0]).astype("float32")  # (k..., cin, cout|mult)
    filters = np.moveaxis(kernel, -1, 0)
    if filters.shape[-1] not in (1, 3):
        filters = filters.mean(axis=-1, keepdims=True)
    peak = np.abs(filters).reshape(len(filters), -1).max(axis=1).reshape(-1, *[1] * (filters.ndim - 1))
    return (0.5 + 0.5 * filters / np.where(peak > 0, peak, 1.0)).astype("float32")


def deep_dream(model, image, layers, *, octaves=3, octave_scale=1.4, steps=20, step_size=0.01,
               max_loss=None, border=2, value_range=None):
    """DeepDream (Mordvintsev et al. 2015) with octaves, as in the keras-io example.

    At each octave (small to large) the image is resized and ``steps`` normalized
    gradient-ascent steps raise the mean squared activation of ``layers``; the detail
    lost by downscaling is then added back. Image models only.

    Args:
        model: a built ``keras.Model`` whose trunk accepts the octave sizes (an input
            shape of (None, None, C) or a fully convolutional stem).
        image: float array (H, W, C) or (1, H, W, C).
        layers: a layer name, a sequence of names, or {name: weight}.
        octaves: number of scales.
        octave_scale: size ratio between successive octaves.
        steps: ascent steps per octave.
        step_size: step, as a fraction of the gradient's mean absolute value's inverse.
        max_loss: stop an octave once the loss exceeds it (None: never).
        border: pixels excluded from each side of the activation maps.
        value_range: (low, high) to clip the image to; None does not clip.

    Returns:
        float32 array (H, W, C), the dreamed image.
    """
    _check_model(model)
    array = np.asarray(keras.ops.convert_to_numpy(image))
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3:
        raise ValueError(f"image must have shape (H, W, C) or (1, H, W, C), got {array.shape}")
    if array.dtype.kind != "f":
        raise TypeError(f"image must be a floating-point array, got dtype {array.dtype}")
    octaves = _check_int(octaves, "octaves")
    octave_scale = _check_number(octave_scale, "octave_scale", 1.0, strict=True)
    steps = _check_int(steps, "steps")
    step_size = _check_number(step_size, "step_size", 0.0, strict=True)
    border = _check_int(border, "border", minimum=0)
    if isinstance(layers, str):
        layers = {layers: 1.0}
    elif isinstance(layers, (list, tuple)):
        layers = {name: 1.0 for name in layers}
    if not isinstance(layers, dict) or not layers:
        raise ValueError(f"layers must be a name, a sequence of names or a {{name: weight}} dict, got {layers!r}")
    found = {_find_layer(model, name, "layers"): _check_number(weight, "layers weight")
             for name, weight in layers.items()}

    def build():
        def run(img, state):
            def objective(x):
                _, store = _probe(model, state, x, record=tuple(found), logits=False)
                loss = 0.0
                for layer, weight in found.items():
                    loss = loss + weight * ops.mean(_crop_border(store[layer.name], border) ** 2)
                return loss, loss

            loss, _, grads = _value_and_grad(objective, img)
            grads = ops.cast(grads, "float32")
            grads = grads / ops.maximum(ops.mean(ops.abs(grads)), 1e-6)
            return img + step_size * grads, loss, ops.all(ops.isfinite(grads))

        return _compile(run)

    fn = _cached(model, ("dream", tuple((l.name, w) for l, w in found.items()), border, step_size), build)
    state = _model_state(model)
    original = array.astype("float32")[None]
    h, w = original.shape[1:3]
    shapes = [(max(1, round(h / octave_scale**i)), max(1, round(w / octave_scale**i)))
              for i in reversed(range(octaves))]

    def resize(img, shape):
        return keras.ops.convert_to_numpy(ops.image.resize(img, shape, interpolation="bilinear")).astype("float32")

    img = resize(original, shapes[0])
    shrunk = img
    for shape in shapes:
        img = resize(img, shape)
        for _ in range(steps):
            img, loss, finite = fn(img, state)
            _raise_if_nonfinite(finite, "deep_dream")
            img = keras.ops.convert_to_numpy(img)
            if value_range is not None:
                img = np.clip(img, value_range[0], value_range[1])
            if max_loss is not None and float(loss) > max_loss:
                break
        img = img + resize(original, shape) - resize(shrunk, shape)
        shrunk = resize(original, shape)
    return img[0]
