"""Class-activation maps, batched, for 2-D and 1-D models: Grad-CAM (Selvaraju et al.
2017), Grad-CAM++ (Chattopadhyay et al. 2018), HiResCAM (Draelos & Carin 2020),
LayerCAM (Jiang et al. 2021), Score-CAM (Wang et al. 2020), Eigen-CAM (Muhammad &
Yeasin 2020) and Guided Grad-CAM (Selvaraju et al. 2017)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from ._backend import (
    _activation_shape,
    _cached,
    _compile,
    _layer_outputs,
    _model_state,
    _predict,
    _probe,
    _targets,
    _value_and_grad,
)
from ._common import (
    _check_images,
    _check_int,
    _check_model,
    _chunks,
    _class_onehot,
    _find_layer,
    _normalize_maps,
    _raise_if_nonfinite,
    _resize_channels,
    _resize_maps,
    _spatial_axes,
)


def _combine(kind, act, grads):
    """The map before its ReLU: the activation weighted by the gradient, per method."""
    axes = _spatial_axes(len(act.shape))
    if kind == "layer":  # LayerCAM: a positive weight per position and channel
        return ops.sum(ops.relu(grads) * act, axis=-1)
    if kind == "hires":  # HiResCAM: the gradient itself, position by position
        return ops.sum(grads * act, axis=-1)
    if kind == "plus_plus":
        g2, g3 = grads**2, grads**3
        denom = 2.0 * g2 + ops.sum(act, axis=axes, keepdims=True) * g3
        alpha = g2 / ops.where(ops.abs(denom) > 0, denom, ops.ones_like(denom))
        weights = ops.sum(alpha * ops.relu(grads), axis=axes, keepdims=True)
    else:  # Grad-CAM: one weight per channel, the gradient's spatial mean
        weights = ops.mean(grads, axis=axes, keepdims=True)
    return ops.sum(weights * act, axis=-1)


def _cam_function(model, layer, kind, jit_compile):
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
        cam = ops.relu(_combine(kind, act, grads))
        return cam, ops.argmax(chosen, axis=-1), ops.all(ops.isfinite(grads))

    return _compile(run, jit_compile)


def _finish(cam, classes, x, resize, normalize, return_classes):
    """Resize and normalize the maps as the keywords say; add the classes if asked."""
    if resize:
        cam = _resize_maps(cam, x.shape[1:-1])
    if normalize:
        cam = _normalize_maps(cam)
    cam = cam.astype("float32")
    return (cam, classes) if return_classes else cam


def _start(model, images, layer, batch_size):
    """The checks every CAM method starts with: ``(images, batch_size, layer)``."""
    _check_model(model)
    x = _check_images(model, images)
    return x, _check_int(batch_size, "batch_size"), _find_layer(model, layer)


def _gradient_cam(kind, model, images, layer, class_index, batch_size, jit_compile, name):
    """Maps at the layer's grid and the classes they explain, for a gradient CAM."""
    x, batch_size, target = _start(model, images, layer, batch_size)
    onehot = _class_onehot(model, class_index, len(x))
    fn = _cached(model, ("cam", target.name, kind, bool(jit_compile)),
                 lambda: _cam_function(model, target, kind, jit_compile))
    shape = _activation_shape(model, target, x.shape[1:])
    state = _model_state(model)
    maps, classes = [], []
    for a, b in _chunks(len(x), batch_size):
        delta = np.zeros((b - a, *shape), "float32")
        cam, cls, finite = fn(x[a:b], onehot[a:b], delta, state)
        _raise_if_nonfinite(finite, name)
        maps.append(keras.ops.convert_to_numpy(cam))
        classes.append(keras.ops.convert_to_numpy(cls))
    return x, np.concatenate(maps), np.concatenate(classes)


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
    x, cam, classes = _gradient_cam("grad", model, images, layer, class_index, batch_size, jit_compile,
                                    "grad_cam")
    return _finish(cam, classes, x, resize, normalize, return_classes)


def grad_cam_plus_plus(model, images, layer=None, class_index=None, *, resize=True, normalize=True,
                       return_classes=False, batch_size=32, jit_compile=False):
    """Grad-CAM++ heatmaps for a batch (Chattopadhyay et al. 2018).

    With g = d y_c / d A: alpha = g^2 / (2 g^2 + sum_ij A g^3), w_k = sum_ij alpha ReLU(g),
    and the map is ReLU(sum_k w_k A_k). Arguments and return value as :func:`grad_cam`.
    """
    x, cam, classes = _gradient_cam("plus_plus", model, images, layer, class_index, batch_size,
                                    jit_compile, "grad_cam_plus_plus")
    return _finish(cam, classes, x, resize, normalize, return_classes)


def hires_cam(model, images, layer=None, class_index=None, *, resize=True, normalize=True,
              return_classes=False, batch_size=32, jit_compile=False):
    """HiResCAM heatmaps for a batch (Draelos & Carin 2020).

    The map is ReLU(sum_k d y_c / d A_k * A_k), the gradient multiplied position by
    position instead of averaged first as in Grad-CAM. Where the layer feeds one
    Dense layer (through Flatten), sum_k of that product at a position is exactly the
    position's contribution to the logit y_c, so the map shows the evidence the model
    used; on a global-average-pooling head it equals Grad-CAM. Clipped at zero like the
    other CAMs. Arguments and return value as :func:`grad_cam`.
    """
    x, cam, classes = _gradient_cam("hires", model, images, layer, class_index, batch_size, jit_compile,
                                    "hires_cam")
    return _finish(cam, classes, x, resize, normalize, return_classes)


def layer_cam(model, images, layer=None, class_index=None, *, resize=True, normalize=True,
              return_classes=False, batch_size=32, jit_compile=False):
    """LayerCAM heatmaps for a batch (Jiang et al. 2021).

    The map is ReLU(sum_k ReLU(d y_c / d A_k) * A_k): each position and channel weighted
    by its own positive gradient, which keeps fine detail at early layers. Arguments
    and return value as :func:`grad_cam`.
    """
    x, cam, classes = _gradient_cam("layer", model, images, layer, class_index, batch_size, jit_compile,
                                    "layer_cam")
    return _finish(cam, classes, x, resize, normalize, return_classes)


def _min_max(masks):
    """Each channel of (N, ..., K) masks scaled to [0, 1] over positions (constant: 0)."""
    axes = _spatial_axes(masks.ndim)
    low, high = masks.min(axis=axes, keepdims=True), masks.max(axis=axes, keepdims=True)
    return np.where(high > low, (masks - low) / np.where(high > low, high - low, 1.0), 0.0)


def score_cam(model, images, layer=None, class_index=None, *, resize=True, normalize=True,
              return_classes=False, batch_size=32, jit_compile=False):
    """Score-CAM heatmaps for a batch (Wang et al. 2020): no gradients.

    Each channel A_k of the layer, upsampled to the input size and scaled to [0, 1],
    masks the image; the class logit of each masked image, softmaxed over the channels,
    is the channel's weight (Algorithm 1 of the paper; the baseline's score cancels in
    that softmax), and the map is ReLU(sum_k w_k A_k). It costs one forward pass per
    channel and image. Arguments as :func:`grad_cam`; ``batch_size`` counts masked
    images per compiled call. The class defaults to the prediction on the image.
    """
    x, batch_size, target = _start(model, images, layer, batch_size)
    onehot = _targets(model, x, class_index, batch_size)
    acts = np.concatenate([act for _, act in _layer_outputs(model, target, x, batch_size)])
    channels = acts.shape[-1]
    per_call = max(1, batch_size // channels)
    weights = []
    for a, b in _chunks(len(x), per_call):
        masks = np.moveaxis(_min_max(_resize_channels(acts[a:b], x.shape[1:-1])), -1, 1)[..., None]
        masked = (x[a:b, None] * masks).reshape(-1, *x.shape[1:])  # image i, channel k at i * K + k
        scores = _predict(model, masked, batch_size, jit_compile).reshape(b - a, channels, -1)
        scores = (scores * onehot[a:b, None]).sum(-1)
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        weights.append(scores / scores.sum(axis=1, keepdims=True))
    weights = np.concatenate(weights).reshape(len(x), *[1] * (acts.ndim - 2), channels)
    cam = np.maximum((acts * weights).sum(-1), 0.0)
    return _finish(cam, onehot.argmax(-1), x, resize, normalize, return_classes)


def eigen_cam(model, images, layer=None, class_index=None, *, resize=True, normalize=True,
              return_classes=False, batch_size=32, jit_compile=False):
    """Eigen-CAM heatmaps for a batch (Muhammad & Yeasin 2020): no gradients, no class.

    The layer's activation, as a (positions x channels) matrix A = U S V^T, is
    projected on its first right singular vector: the map is A v_1 (the sign of v_1
    chosen so that the map sums to a positive value), clipped at zero. The map does
    not depend on the class: ``class_index`` is checked and only decides the classes
    returned with ``return_classes``. Other arguments as :func:`grad_cam`.
    """
    x, batch_size, target = _start(model, images, layer, batch_size)
    classes = None
    if class_index is not None or return_classes:
        classes = _class_onehot(model, class_index, len(x)).argmax(-1)
        if class_index is None:
            classes = _predict(model, x, batch_size, jit_compile).argmax(-1)
    acts = np.concatenate([act for _, act in _layer_outputs(model, target, x, batch_size)])
    flat = acts.reshape(len(x), -1, acts.shape[-1]).astype("float64")
    _, _, vt = np.linalg.svd(flat, full_matrices=False)
    projection = np.einsum("npk,nk->np", flat, vt[:, 0])
    sign = np.where(projection.sum(axis=1, keepdims=True) < 0, -1.0, 1.0)
    cam = np.maximum(projection * sign, 0.0).reshape(acts.shape[:-1])
    return _finish(cam, classes, x, resize, normalize, return_classes)


def guided_grad_cam(model, images, layer=None, class_index=None, *, normalize=True, channels=False,
                    return_classes=False, batch_size=32, jit_compile=False):
    """Guided Grad-CAM for a batch (Selvaraju et al. 2017): the guided-backpropagation
    gradient (:func:`guided_backprop`, Springenberg et al. 2015) times the Grad-CAM map
    upsampled to the input, pixel by pixel: fine detail, where the class is.

    Args:
        model, images, layer, class_index, return_classes, batch_size, jit_compile: as
            in :func:`grad_cam`.
        channels: return the signed (N, H, W, C) product, as the paper draws it; else
            its maximum absolute value over channels, (N, H, W).
        normalize: divide each map by its maximum absolute value.

    Returns:
        float32 array (N, H, W) ((N, samples) for 1-D), or (N, H, W, C) with
        ``channels``; and the classes (N,) when ``return_classes``.
    """
    from .attribution import _guided_gradients

    cam, classes = grad_cam(model, images, layer, class_index, normalize=False, return_classes=True,
                            batch_size=batch_size, jit_compile=jit_compile)
    x = _check_images(model, images)
    onehot = np.eye(_class_onehot(model, None, len(x)).shape[1], dtype="float32")[classes]
    product = _guided_gradients(model, x, onehot, batch_size, jit_compile, "guided_grad_cam") * cam[..., None]
    maps = product if channels else np.abs(product).max(axis=-1)
    maps = _normalize_maps(maps, signed=True) if normalize else maps.astype("float32")
    return (maps, classes) if return_classes else maps
