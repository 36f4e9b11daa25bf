"""Class-activation maps: Grad-CAM (Selvaraju et al. 2017) and Grad-CAM++
(Chattopadhyay et al. 2018), batched, for 2-D and 1-D models."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from ._backend import _activation_shape, _cached, _compile, _model_state, _probe, _value_and_grad
from ._common import (
    _check_images,
    _check_int,
    _check_model,
    _chunks,
    _class_onehot,
    _find_layer,
    _normalize_maps,
    _raise_if_nonfinite,
    _resize_maps,
    _spatial_axes,
)


def _cam_function(model, layer, plus_plus, jit_compile):
    def run(x, onehot, delta, state):
        def objective(d):
            logits, store = _probe(model, state, x, record=(layer,), perturb={layer: d})
            chosen = ops.where(
                ops.sum(onehot, axis=-1, keepdims=True) > 0,
                onehot,
                ops.one_hot(ops.argmax(ops.stop_gradient(logits), axis=-1), ops.shape(logits)[-1]),
            )
            return ops.sum(logits * chosen), (store[layer.name], chosen)

        _, (act, chosen), grads = _value_and_grad(objective, delta)
        grads = ops.cast(grads, "float32")
        axes = _spatial_axes(len(act.shape))
        if plus_plus:
            g2, g3 = grads**2, grads**3
            denom = 2.0 * g2 + ops.sum(act, axis=axes, keepdims=True) * g3
            alpha = g2 / ops.where(ops.abs(denom) > 0, denom, ops.ones_like(denom))
            weights = ops.sum(alpha * ops.relu(grads), axis=axes, keepdims=True)
        else:
            weights = ops.mean(grads, axis=axes, keepdims=True)
        cam = ops.relu(ops.sum(weights * act, axis=-1))
        return cam, ops.argmax(chosen, axis=-1), ops.all(ops.isfinite(grads))

    return _compile(run, jit_compile)


def _cam(model, images, layer, class_index, plus_plus, resize, normalize, batch_size, jit_compile, name):
    _check_model(model)
    x = _check_images(model, images)
    batch_size = _check_int(batch_size, "batch_size")
    target = _find_layer(model, layer)
    onehot = _class_onehot(model, class_index, len(x))
    fn = _cached(model, ("cam", target.name, plus_plus, bool(jit_compile)),
                 lambda: _cam_function(model, target, plus_plus, jit_compile))
    shape = _activation_shape(model, target, x.shape[1:])
    state = _model_state(model)
    maps, classes = [], []
    for a, b in _chunks(len(x), batch_size):
        delta = np.zeros((b - a, *shape), "float32")
        cam, cls, finite = fn(x[a:b], onehot[a:b], delta, state)
        _raise_if_nonfinite(finite, name)
        maps.append(keras.ops.convert_to_numpy(cam))
        classes.append(keras.ops.convert_to_numpy(cls))
    cam = np.concatenate(maps)
    if resize:
        cam = _resize_maps(cam, x.shape[1:-1])
    if normalize:
        cam = _normalize_maps(cam)
    return cam, np.concatenate(classes)


def grad_cam(model, images, layer=None, class_index=None, *, resize=True, normalize=True,
             return_classes=False, batch_size=32, jit_compile=False):
    """Grad-CAM heatmaps for a batch (Selvaraju et al. 2017).

    The map for class c is ReLU(sum_k alpha_k A_k), where A is the layer's activation
    and alpha_k is the spatial mean of d y_c / d A_k, with y_c the pre-softmax score.
    1-D models work the same way, with a map over time.

    Args:
        model: a built ``keras.Model`` (Functional, Sequential, or with nested models).
        images: float array (N, H, W, C) in the model's input range; (N, samples, C)
            for a 1-D model.
        layer: name (or Layer) of a layer with a 4-D output (3-D for a 1-D model),
            nested models included; None takes the last such layer (the last conv
            block's output). A wrong name raises ValueError listing the conv layers.
        class_index: None for each image's predicted class, an int, or N ints.
        resize: resize the maps to the input's H x W (bilinear; linear over time for
            1-D); else the layer's grid.
        normalize: divide each map by its maximum, so it lies in [0, 1].
        return_classes: also return the class each map explains.
        batch_size: images per compiled call.
        jit_compile: compile with XLA on TensorFlow (JAX always compiles).

    Returns:
        float32 array (N, H, W) (or (N, h, w) with ``resize=False``; (N, samples) or
        (N, steps) for 1-D), and the classes (N,) when ``return_classes``.
    """
    cam, classes = _cam(model, images, layer, class_index, False, resize, normalize, batch_size,
                        jit_compile, "grad_cam")
    return (cam, classes) if return_classes else cam


def grad_cam_plus_plus(model, images, layer=None, class_index=None, *, resize=True, normalize=True,
                       return_classes=False, batch_size=32, jit_compile=False):
    """Grad-CAM++ heatmaps for a batch (Chattopadhyay et al. 2018).

    With g = d y_c / d A: alpha = g^2 / (2 g^2 + sum_ij A g^3), w_k = sum_ij alpha ReLU(g),
    and the map is ReLU(sum_k w_k A_k). Arguments and return value as :func:`grad_cam`.
    """
    cam, classes = _cam(model, images, layer, class_index, True, resize, normalize, batch_size,
                        jit_compile, "grad_cam_plus_plus")
    return (cam, classes) if return_classes else cam
