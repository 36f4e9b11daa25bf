"""Gradient and perturbation attributions: saliency (Simonyan et al. 2014), SmoothGrad
(Smilkov et al. 2017) and occlusion sensitivity (Zeiler & Fergus 2014), for 2-D
images and 1-D signals."""

from __future__ import annotations

import itertools

import keras
import numpy as np
from keras import ops

from ._backend import _cached, _compile, _model_state, _predict, _probe, _value_and_grad
from ._common import (
    _check_images,
    _check_int,
    _check_model,
    _check_number,
    _chunks,
    _class_onehot,
    _normalize_maps,
    _raise_if_nonfinite,
)


def _input_grad_function(model, jit_compile):
    def run(x, onehot, state):
        def objective(inputs):
            logits, _ = _probe(model, state, inputs)
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


def _input_gradients(model, x, onehot, batch_size, jit_compile, name):
    fn = _cached(model, ("input_grad", bool(jit_compile)), lambda: _input_grad_function(model, jit_compile))
    state = _model_state(model)
    grads = []
    for a, b in _chunks(len(x), batch_size):
        g, _, finite = fn(x[a:b], onehot[a:b], state)
        _raise_if_nonfinite(finite, name)
        grads.append(keras.ops.convert_to_numpy(g))
    return np.concatenate(grads)


def _targets(model, x, class_index, batch_size):
    """Fixed one-hot targets: the given classes, or each image's prediction."""
    onehot = _class_onehot(model, class_index, len(x))
    if class_index is None:
        onehot = np.eye(onehot.shape[1], dtype="float32")[_predict(model, x, batch_size).argmax(-1)]
    return onehot


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
