"""Gradient and perturbation attributions: saliency (Simonyan et al. 2014), SmoothGrad
(Smilkov et al. 2017), guided backpropagation (Springenberg et al. 2015), integrated
gradients (Sundararajan et al. 2017) and occlusion sensitivity (Zeiler & Fergus 2014),
for 2-D images and 1-D signals."""

from __future__ import annotations

import itertools

import keras
import numpy as np
from keras import ops

from ._backend import (
    _cached,
    _compile,
    _model_state,
    _predict,
    _probe,
    _relu_layers,
    _targets,
    _value_and_grad,
)
from ._common import (
    _check_baseline,
    _check_images,
    _check_int,
    _check_model,
    _check_number,
    _chunks,
    _class_onehot,
    _normalize_maps,
    _raise_if_nonfinite,
)


def _input_grad_function(model, jit_compile, guided):
    relus = _relu_layers(model) if guided else ()

    def run(x, onehot, state):
        def objective(inputs):
            logits, _ = _probe(model, state, inputs, guided=relus)
            chosen = ops.where(
                ops.sum(onehot, axis=-1, keepdims=True) > 0,
                onehot,
                ops.one_hot(ops.argmax(ops.stop_gradient(logits), axis=-1), ops.shape(logits)[-1]),
            )
            return ops.sum(logits * chosen), chosen

        _, chosen, grads = _value_and_grad(objective, x)
        grads = ops.cast(grads, "float32")
        return grads, ops.argmax(chosen, axis=-1), ops.all(ops.isfinite(grads))

    return _compile(run, jit_compile)


def _input_gradients(model, x, onehot, batch_size, jit_compile, name, guided=False):
    """d y_c / d x for each image, float32 like ``x``; with ``guided``, through guided ReLUs."""
    fn = _cached(model, ("input_grad", bool(jit_compile), guided),
                 lambda: _input_grad_function(model, jit_compile, guided))
    state = _model_state(model)
    grads = []
    for a, b in _chunks(len(x), batch_size):
        g, _, finite = fn(x[a:b], onehot[a:b], state)
        _raise_if_nonfinite(finite, name)
        grads.append(keras.ops.convert_to_numpy(g))
    return np.concatenate(grads)


def _guided_gradients(model, x, onehot, batch_size, jit_compile, name):
    return _input_gradients(model, x, onehot, batch_size, jit_compile, name, guided=True)


def _reduce(grads, channels, normalize):
    """The signed (N, ..., C) array, or its maximum absolute value over channels."""
    maps = grads if channels else np.abs(grads).max(axis=-1)
    return _normalize_maps(maps, signed=True) if normalize else maps.astype("float32")


def saliency(model, images, class_index=None, *, normalize=True, batch_size=32, jit_compile=False):
    """Vanilla gradient saliency (Simonyan et al. 2014): max over channels of |d y_c / d x|.

    y_c is the pre-softmax score (logit) of class c.

    Args:
        model, images, class_index, batch_size, jit_compile: as in :func:`grad_cam`;
            a 1-D model takes signals (N, samples, C).
        normalize: divide each map by its maximum.

    Returns:
        float32 array (N, H, W); (N, samples) for a 1-D model, which with
        ``normalize=False`` is |d logit_c / d x| per sample for a one-channel signal.
    """
    _check_model(model)
    x = _check_images(model, images)
    batch_size = _check_int(batch_size, "batch_size")
    onehot = _class_onehot(model, class_index, len(x))
    maps = np.abs(_input_gradients(model, x, onehot, batch_size, jit_compile, "saliency")).max(axis=-1)
    return _normalize_maps(maps) if normalize else maps.astype("float32")


def smoothgrad(model, images, class_index=None, *, samples=25, noise=0.15, normalize=True,
               seed=0, batch_size=32, jit_compile=False):
    """SmoothGrad (Smilkov et al. 2017): the gradient averaged over noisy copies.

    Args:
        model, images, class_index, batch_size, jit_compile: as in :func:`grad_cam`;
            the class defaults to the prediction on the clean image.
        samples: noisy copies per image.
        noise: noise standard deviation as a fraction of each image's value range.
        normalize: divide each map by its maximum.
        seed: seed of the noise.

    Returns:
        float32 array (N, H, W) ((N, samples) for 1-D): max over channels of |mean gradient|.
    """
    _check_model(model)
    x = _check_images(model, images)
    samples = _check_int(samples, "samples")
    noise = _check_number(noise, "noise", minimum=0.0)
    batch_size = _check_int(batch_size, "batch_size")
    onehot = _targets(model, x, class_index, batch_size)
    rng = np.random.default_rng(seed)
    flat = x.reshape(len(x), -1)
    spread = (flat.max(1) - flat.min(1)).reshape(-1, *[1] * (x.ndim - 1))
    spread = np.where(spread > 0, spread, 1.0)
    total = np.zeros_like(x)
    for _ in range(samples):
        noisy = (x + rng.normal(size=x.shape).astype("float32") * noise * spread).astype("float32")
        total += _input_gradients(model, noisy, onehot, batch_size, jit_compile, "smoothgrad")
    maps = np.abs(total / samples).max(axis=-1)
    return _normalize_maps(maps) if normalize else maps.astype("float32")


def guided_backprop(model, images, class_index=None, *, normalize=True, channels=False,
                    batch_size=32, jit_compile=False):
    """Guided backpropagation (Springenberg et al. 2015): d y_c / d x, where every ReLU
    passes back only positive gradients, and only where its input was positive.

    The user's model is not edited: for the duration of the call the ReLUs get the
    guided gradient through the same taps as the other methods, and are restored.
    Guided are ``keras.layers.ReLU`` layers (any threshold, slope or maximum: the
    gradient's positive part times the ReLU's slope) and every layer whose
    ``activation`` is ``relu`` or ``relu6``: ``Activation("relu")`` layers and ReLUs
    fused into Conv, Dense and the other layers that take ``activation=``. A ReLU
    computed inside another layer's ``call`` (``keras.ops.relu`` in a custom layer)
    keeps its plain gradient.

    Args:
        model, images, class_index, batch_size, jit_compile: as in :func:`grad_cam`;
            the class defaults to each image's prediction.
        channels: return the signed gradient (N, H, W, C), as the paper draws it;
            else its maximum absolute value over channels, (N, H, W).
        normalize: divide each map by its maximum absolute value.

    Returns:
        float32 array (N, H, W) ((N, samples) for 1-D), or (N, H, W, C) with ``channels``.
    """
    _check_model(model)
    x = _check_images(model, images)
    batch_size = _check_int(batch_size, "batch_size")
    onehot = _class_onehot(model, class_index, len(x))
    grads = _guided_gradients(model, x, onehot, batch_size, jit_compile, "guided_backprop")
    return _reduce(grads, channels, normalize)


def integrated_gradients(model, images, class_index=None, *, baseline=None, steps=32, normalize=True,
                         channels=False, return_delta=False, batch_size=32, jit_compile=False):
    """Integrated gradients (Sundararajan et al. 2017), batched.

    The attribution of input value i is (x_i - x'_i) times the integral over a in
    [0, 1] of d y_c / d x_i at x' + a (x - x'), with x' the baseline and y_c the
    class logit. The integral is taken by the trapezoidal rule over ``steps``
    intervals (steps + 1 gradients per image), exact where the gradient is linear
    along the path. Completeness: the attributions sum to y_c(x) - y_c(x'), up to
    the quadrature's error, which shrinks as ``steps`` grows (the paper finds 20 to
    300 steps bring it within 5 %; on a random ReLU network the tests hold it under
    5 % of |y_c(x) - y_c(x')| + 0.005 at 64 steps). ``return_delta`` reports it.

    Args:
        model, images, class_index, jit_compile: as in :func:`grad_cam`; the class
            defaults to each image's prediction, fixed along the path.
        baseline: the reference input x': None for zeros (a black image), a number
            (a constant image), one image, or one per image.
        steps: intervals of the path integral.
        normalize: divide each map by its maximum absolute value (the signs stay).
        channels: return the attributions per input value (N, H, W, C); else summed
            over channels, (N, H, W), which keeps completeness.
        return_delta: also return the completeness gap per image (N,):
            sum of the attributions - (y_c(x) - y_c(x')), before ``normalize``.
        batch_size: points of the paths per compiled call (all images' paths are
            batched together).

    Returns:
        float32 array (N, H, W) ((N, samples) for 1-D) or (N, H, W, C) with ``channels``;
        and the gap (N,) with ``return_delta``.
    """
    _check_model(model)
    x = _check_images(model, images)
    steps = _check_int(steps, "steps")
    batch_size = _check_int(batch_size, "batch_size")
    base = np.zeros_like(x) if baseline is None else _check_baseline(model, x, baseline)
    onehot = _targets(model, x, class_index, batch_size)
    weights = np.ones(steps + 1)
    weights[[0, -1]] = 0.5  # the trapezoidal rule
    total = np.zeros_like(x, dtype="float64")
    for a, b in _chunks(len(x) * (steps + 1), batch_size):  # (image, point) pairs, batched together
        image, point = np.divmod(np.arange(a, b), steps + 1)
        alpha = (point / steps).reshape(-1, *[1] * (x.ndim - 1))
        path = (base[image] + alpha * (x[image] - base[image])).astype("float32")
        grads = _input_gradients(model, path, onehot[image], batch_size, jit_compile, "integrated_gradients")
        grads = grads * weights[point].reshape(alpha.shape)
        for i in np.unique(image):
            total[i] += grads[image == i].sum(axis=0)
    attributions = (x - base) * total / steps
    maps = attributions if channels else attributions.sum(axis=-1)
    out = _normalize_maps(maps, signed=True) if normalize else maps.astype("float32")
    if not return_delta:
        return out
    gain = ((_predict(model, x, batch_size) - _predict(model, base, batch_size)) * onehot).sum(-1)
    delta = attributions.reshape(len(x), -1).sum(axis=1) - gain
    return out, delta.astype("float32")


def _starts(length, patch, stride):
    """Patch offsets along one axis, the last one flush with the end."""
    starts = list(range(0, length - patch + 1, stride))
    return starts if starts[-1] == length - patch else [*starts, length - patch]


def occlusion(model, images, class_index=None, *, patch=8, stride=4, fill=None, normalize=True,
              batch_size=64, jit_compile=False):
    """Occlusion sensitivity (Zeiler & Fergus 2014): the score drop when a patch is hidden.

    Args:
        model, images, class_index, jit_compile: as in :func:`grad_cam`.
        patch: side of the square patch, in pixels (its length in samples for 1-D).
        stride: step between patch positions.
        fill: value painted into the patch; None uses each image's mean.
        normalize: divide each map by its maximum (after clipping negative drops to 0).
        batch_size: occluded copies per compiled call.

    Returns:
        float32 array (N, H, W) ((N, samples) for 1-D): each pixel's mean logit drop
        over the patches covering it.
    """
    _check_model(model)
    x = _check_images(model, images)
    patch = _check_int(patch, "patch")
    stride = _check_int(stride, "stride")
    batch_size = _check_int(batch_size, "batch_size")
    if fill is not None:
        fill = _check_number(fill, "fill")
    spatial = x.shape[1:-1]
    if patch > min(spatial):
        raise ValueError(f"patch must be <= the image side {min(spatial)}, got {patch}")
    onehot = _targets(model, x, class_index, batch_size)
    windows = [tuple(slice(s, s + patch) for s in corner)
               for corner in itertools.product(*(_starts(n, patch, stride) for n in spatial))]
    maps = np.zeros(x.shape[:-1], "float32")
    base = (_predict(model, x, batch_size, jit_compile) * onehot).sum(-1)
    for i, image in enumerate(x):
        value = image.mean() if fill is None else fill
        drops = []
        for a, b in _chunks(len(windows), batch_size):
            batch = np.repeat(image[None], b - a, axis=0)
            for j, window in enumerate(windows[a:b]):
                batch[(j, *window)] = value
            drops.append((_predict(model, batch, batch_size, jit_compile) * onehot[i]).sum(-1))
        drops = base[i] - np.concatenate(drops)
        total = np.zeros(spatial, "float64")
        count = np.zeros(spatial, "float64")
        for drop, window in zip(drops, windows):
            total[window] += drop
            count[window] += 1
        maps[i] = total / np.maximum(count, 1)
    return _normalize_maps(np.maximum(maps, 0)) if normalize else maps
