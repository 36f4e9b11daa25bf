"""Views of a layer over a dataset: activations, the units that respond most, and the
dataset examples that excite each unit most (Distill's "dataset examples", Olah et
al. 2017), with the input patch under each unit's receptive field."""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np

from ._backend import _activation_shape, _cached, _compile, _layer_outputs, _model_state, _probe
from ._common import (
    _check_images,
    _check_int,
    _check_model,
    _check_units,
    _find_layer,
    _spatial_axes,
)


def activations(model, images, layers):
    """The outputs of ``layers`` for a batch (inference mode), as numpy arrays.

    Args:
        model: a built ``keras.Model``; layers of nested models can be named.
        images: float array (N, H, W, C) ((N, samples, C) for a 1-D model).
        layers: a layer name, or a sequence of names/Layers.

    Returns:
        dict {layer name: float32 array}. Draw a map with
        ``make_grid(act[i].transpose(2, 0, 1)[..., None])``.
    """
    _check_model(model)
    x = _check_images(model, images)
    if isinstance(layers, (str, keras.layers.Layer)):
        layers = [layers]
    if not isinstance(layers, (list, tuple)) or not layers:
        raise ValueError(f"layers must be a layer name or a non-empty sequence of names, got {layers!r}")
    found = [_find_layer(model, layer, "layers") for layer in layers]
    key = ("activations", tuple(layer.name for layer in found))

    def build():
        def run(inputs, state):
            _, store = _probe(model, state, inputs, record=found, logits=False)
            return {layer.name: store[layer.name] for layer in found}

        return _compile(run)

    fn = _cached(model, key, build)
    out = fn(x, _model_state(model))
    return {name: keras.ops.convert_to_numpy(value) for name, value in out.items()}


def rank_units(model, layer, images, top=None, batch_size=32):
    """The layer's units (channels) sorted by their mean activation over ``images``.

    The mean is over images and positions of the layer's output (after its
    activation), so the units that respond most to the data come first: the ones
    worth a filter image.

    Args:
        model: a built ``keras.Model``; nested and Sequential models work.
        layer: name (or Layer) of a layer with a 4-D output (3-D for a 1-D model).
        images: float array (N, H, W, C) ((N, samples, C) for a 1-D model).
        top: keep only the first ``top`` units; None keeps them all.
        batch_size: images per forward pass.

    Returns:
        ``(units, means)``: int64 (U,) channel indices, highest mean first, and their
        float32 means (U,).
    """
    _check_model(model)
    x = _check_images(model, images)
    target = _find_layer(model, layer)
    batch_size = _check_int(batch_size, "batch_size")
    total = 0.0
    for _, act in _layer_outputs(model, target, x, batch_size):
        total = total + act.mean(axis=_spatial_axes(act.ndim), dtype="float64").sum(axis=0)
    means = total / len(x)
    top = len(means) if top is None else min(_check_int(top, "top"), len(means))
    order = np.argsort(-means, kind="stable")[:top]
    return order.astype("int64"), means[order].astype("float32")


@dataclasses.dataclass(frozen=True)
class TopActivating:
    """The dataset examples that excite each unit most (see :func:`top_activating`).

    Attributes:
        units: int64 (U,), the channel indices.
        indices: int64 (U, k), per unit the indices into ``images``, strongest first.
        values: float32 (U, k), the unit's maximum activation over positions on each.
        positions: int64 (U, k, D), where on the layer's map that maximum is (D = 2
            for images (row, column), 1 for 1-D models).
        boxes: int64 (U, k, D, 2), the receptive field of that position in input
            pixels, ``[first, last + 1)`` per axis, clipped to the image.
        patches: float32 (U, k, ph, pw, C) ((U, k, pl, C) for 1-D), the input around
            that position: the patch size is the receptive field's size, or the
            image's where that is smaller; the patch is centred on the field's centre
            and zero where it leaves the image, so patches of units near the border
            line up.
        receptive_field: the ``cookbook.cost.ReceptiveField`` of the layer.
    """

    units: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    positions: np.ndarray
    boxes: np.ndarray
    patches: np.ndarray
    receptive_field: object


def top_activating(model, layer, images, units=None, k=9, batch_size=32):
    """The ``k`` images that excite each unit most, with the patch each unit saw.

    An image's score for a unit is the unit's maximum activation over the layer's
    positions; the patch is the input under that position's receptive field
    (:func:`cookbook.cost.receptive_field`). Works for image and 1-D models.

    Args:
        model: a built functional or Sequential ``keras.Model`` (nested models work).
        layer: name (or Layer) of a layer with a 4-D output (3-D for a 1-D model).
        images: float array (N, H, W, C) ((N, samples, C) for 1-D), N >= k.
        units: channel indices; None takes every channel of the layer.
        k: images kept per unit.
        batch_size: images per forward pass.

    Returns:
        :class:`TopActivating` (arrays ``indices``, ``values``, ``positions``,
        ``boxes``, ``patches``, each with one row per unit).
    """
    from cookbook import cost

    _check_model(model)
    x = _check_images(model, images)
    target = _find_layer(model, layer)
    k = _check_int(k, "k")
    batch_size = _check_int(batch_size, "batch_size")
    if k > len(x):
        raise ValueError(f"k must be <= the number of images ({len(x)}), got {k}")
    map_shape = _activation_shape(model, target, x.shape[1:])
    units = _check_units(units, map_shape[-1], "units", target.name)
    field = cost.receptive_field(model, target)
    peaks, where = [], []
    for _, act in _layer_outputs(model, target, x, batch_size):
        flat = act[..., units].reshape(len(act), -1, len(units))  # (n, positions, U)
        peaks.append(flat.max(axis=1))
        where.append(flat.argmax(axis=1))
    peaks, where = np.concatenate(peaks).T, np.concatenate(where).T  # (U, N)
    indices = np.argsort(-peaks, axis=1, kind="stable")[:, :k]
    values = np.take_along_axis(peaks, indices, axis=1)
    flat_positions = np.take_along_axis(where, indices, axis=1)
    positions = np.stack(np.unravel_index(flat_positions, map_shape[:-1]), axis=-1)
    spatial = x.shape[1:-1]
    patch_size = [min(r, n) for r, n in zip(field.size, spatial)]
    patches = np.zeros((*indices.shape, *patch_size, x.shape[-1]), "float32")
    boxes = np.zeros((*indices.shape, len(spatial), 2), "int64")
    for u, j in np.ndindex(indices.shape):
        position = positions[u, j]
        boxes[u, j] = np.clip(field.bounds(position), 0, np.array(spatial)[:, None])
        source, target_slices = [], []
        for axis, n in enumerate(spatial):
            centre = field.start[axis] + position[axis] * field.jump[axis]
            low = math.floor(centre - (patch_size[axis] - 1) / 2 + 0.5)
            first, last = max(low, 0), min(low + patch_size[axis], n)
            source.append(slice(first, max(first, last)))
            target_slices.append(slice(first - low, max(first, last) - low))
        patches[(u, j, *target_slices)] = x[(indices[u, j], *source)]
    return TopActivating(units=units, indices=indices.astype("int64"), values=values.astype("float32"),
                         positions=positions.astype("int64"), boxes=boxes, patches=patches,
                         receptive_field=field)
