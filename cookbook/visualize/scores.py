"""Scores that say which heatmap to trust: the pointing game (Zhang et al. 2016),
deletion and insertion (Petsiuk et al. 2018), average drop and increase in confidence
(Chattopadhyay et al. 2018), and the cascading-randomization sanity check (Adebayo et
al. 2018). All batched; the model-based ones read the softmax probability of the class."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from ._backend import _probabilities, _targets
from ._common import (
    _check_baseline,
    _check_images,
    _check_int,
    _check_model,
    _check_number,
    _normalize_maps,
    _spatial_axes,
    _walk,
)


def pointing_game(heatmaps, boxes_or_masks, *, tolerance=0, labels=None, return_hits=False):
    """Pointing-game accuracy: a hit when a heatmap's maximum lies on the object.

    Args:
        heatmaps: array (N, H, W).
        boxes_or_masks: boxes (N, 4) as (y0, x0, y1, x1) with exclusive ends, in the
            heatmaps' pixels, or boolean masks (N, H, W).
        tolerance: a hit may lie up to this many pixels outside the object (Zhang et al.
            use 15 px on full-size images).
        labels: optional class labels (N,); the accuracy is then averaged over
            classes, as in the paper. None: hits / N.
        return_hits: also return the per-image hits (bool array).

    The point is the heatmap's maximum; where several pixels tie (a plateau, as an
    upsampled coarse map has), the tied pixel nearest their centroid. A constant
    heatmap (e.g. all zeros) counts as a miss.

    Returns:
        the accuracy in [0, 1] (and the hits with ``return_hits``).
    """
    maps = np.asarray(heatmaps)
    if maps.ndim != 3 or maps.shape[0] < 1:
        raise ValueError(f"heatmaps must have shape (N, H, W), got {maps.shape}")
    if maps.dtype.kind not in "fiu":
        raise TypeError(f"heatmaps must be numeric, got dtype {maps.dtype}")
    n, h, w = maps.shape
    tolerance = _check_int(tolerance, "tolerance", minimum=0)
    targets = np.asarray(boxes_or_masks)
    if targets.ndim == 2:
        if targets.shape != (n, 4):
            raise ValueError(f"boxes_or_masks as boxes must have shape ({n}, 4), got {targets.shape}")
        yy, xx = np.mgrid[0:h, 0:w]
        b = targets.astype("int64")
        masks = ((yy[None] >= b[:, 0, None, None]) & (yy[None] < b[:, 2, None, None])
                 & (xx[None] >= b[:, 1, None, None]) & (xx[None] < b[:, 3, None, None]))
    elif targets.ndim == 3:
        if targets.shape != maps.shape:
            raise ValueError(f"boxes_or_masks as masks must have the heatmaps' shape {maps.shape}, got {targets.shape}")
        masks = targets.astype(bool)
    else:
        raise ValueError(f"boxes_or_masks must be boxes (N, 4) or masks (N, H, W), got shape {targets.shape}")
    flat = maps.reshape(n, -1)
    constant = flat.max(axis=1) == flat.min(axis=1)
    hits = np.zeros(n, bool)
    py, px = np.zeros(n, int), np.zeros(n, int)
    for i in range(n):
        if constant[i] or not np.isfinite(flat[i]).all():
            continue
        # The maximum; on a plateau (an upsampled coarse map), the tied pixel nearest
        # the plateau's centroid.
        ys, xs = np.nonzero(maps[i] == flat[i].max())
        j = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
        py[i], px[i] = ys[j], xs[j]
        y0, y1 = max(0, py[i] - tolerance), min(h, py[i] + tolerance + 1)
        x0, x1 = max(0, px[i] - tolerance), min(w, px[i] + tolerance + 1)
        if tolerance:
            window = masks[i, y0:y1, x0:x1]
            yy, xx = np.mgrid[y0:y1, x0:x1]
            hits[i] = bool((window & ((yy - py[i]) ** 2 + (xx - px[i]) ** 2 <= tolerance**2)).any())
        else:
            hits[i] = bool(masks[i, py[i], px[i]])
    if labels is None:
        accuracy = float(hits.mean())
    else:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
        accuracy = float(np.mean([hits[labels == c].mean() for c in np.unique(labels)]))
    return (accuracy, hits) if return_hits else accuracy


# --- deletion and insertion (Petsiuk et al. 2018) --------------------------------------------


def _start(model, images, maps, class_index, batch_size):
    """The checks the model-based scores start with: ``(images, maps, one-hot, batch_size)``."""
    _check_model(model)
    x = _check_images(model, images)
    batch_size = _check_int(batch_size, "batch_size")
    array = np.asarray(keras.ops.convert_to_numpy(maps))
    if array.shape != x.shape[:-1]:
        raise ValueError(f"maps must have shape {x.shape[:-1]}, one map per image at the images' size "
                         f"(make them with resize=True), got {array.shape}")
    if array.dtype.kind not in "fiu" or not np.all(np.isfinite(array)):
        raise ValueError("maps must hold finite numbers")
    return x, array.astype("float32"), _targets(model, x, class_index, batch_size), batch_size


def _curves(model, start, finish, maps, onehot, steps, batch_size):
    """The class probability as pixels go from ``start`` to ``finish``, most salient first.

    Step s (0..steps) has the round(s * P / steps) highest-ranked of the P positions
    switched (all channels; ties in raster order). Returns the switched fractions
    (steps + 1,) and the probabilities (N, steps + 1).
    """
    n, positions = len(maps), maps[0].size
    order = np.argsort(-maps.reshape(n, -1), axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(positions), order.shape), axis=1)
    rank = rank.reshape(maps.shape)[..., None]
    counts = np.round(np.linspace(0, positions, steps + 1)).astype("int64")
    curves = [(_probabilities(model, np.where(rank < c, finish, start), batch_size) * onehot).sum(-1)
              for c in counts]
    return counts / positions, np.stack(curves, axis=1).astype("float32")


def _auc(fractions, curves):
    """The area under each curve over [0, 1] (trapezoidal rule)."""
    return ((curves[:, 1:] + curves[:, :-1]) / 2 * np.diff(fractions)).sum(axis=1).astype("float32")


def deletion_auc(model, images, maps, class_index=None, *, steps=32, fill=0.0, batch_size=32,
                 return_curves=False):
    """Deletion score (Petsiuk et al. 2018, RISE): lower is better.

    The pixels are removed (set to ``fill``, all channels) in the order of the map,
    most salient first, in ``steps`` equal steps; the score is the area under the
    softmax probability of the class against the fraction removed. A map that finds
    what the model uses makes the probability fall at once.

    Args:
        model: a built ``keras.Model``; images: as in :func:`grad_cam`.
        maps: one map per image at the images' size, (N, H, W) ((N, samples) for 1-D),
            as the methods return with ``resize=True``; only their order counts.
        class_index: None for each image's predicted class, an int, or N ints.
        steps: removal steps (Petsiuk et al. remove 224 pixels a step at 224 x 224,
            224 steps); step s has round(s * H * W / steps) pixels removed.
        fill: what a removed pixel becomes: a number (0, black, as in the paper), an
            image, or one image per image.
        batch_size: images per forward pass.
        return_curves: also return the curves, (N, steps + 1) probabilities.

    Returns:
        float32 array (N,) of areas in [0, 1] (and the curves with ``return_curves``).
    """
    x, maps, onehot, batch_size = _start(model, images, maps, class_index, batch_size)
    steps = _check_int(steps, "steps")
    fractions, curves = _curves(model, x, _check_baseline(model, x, fill, "fill"), maps, onehot, steps,
                                batch_size)
    return (_auc(fractions, curves), curves) if return_curves else _auc(fractions, curves)


def _blur(x, sigma):
    """Each image blurred along its spatial axes by a Gaussian of std ``sigma`` pixels."""
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    for axis in _spatial_axes(x.ndim):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (radius, radius)
        padded, n = np.pad(x, pad, mode="reflect"), x.shape[axis]
        x = sum(t * np.take(padded, np.arange(j, j + n), axis=axis) for j, t in enumerate(taps))
    return x.astype("float32")


def insertion_auc(model, images, maps, class_index=None, *, steps=32, baseline="blur", sigma=None,
                  batch_size=32, return_curves=False):
    """Insertion score (Petsiuk et al. 2018, RISE): higher is better.

    Starting from a baseline that hides the content, the image's pixels are put back
    in the order of the map, most salient first, in ``steps`` equal steps; the score
    is the area under the softmax probability of the class against the fraction
    inserted.

    Args:
        model, images, maps, class_index, steps, batch_size, return_curves: as in
            :func:`deletion_auc`.
        baseline: ``"blur"`` (the paper's choice: each image blurred by a Gaussian of
            std ``sigma`` pixels, reflected at the borders), or what
            :func:`deletion_auc` takes as ``fill`` (a number such as 0, or images).
        sigma: the blur's std in pixels; None takes 1/10 of the longest side (RISE
            blurs 224-pixel images with an 11-pixel kernel of std 5; on the small
            images of the cookbook that would leave the content visible).

    Returns:
        float32 array (N,) of areas in [0, 1] (and the curves with ``return_curves``).
    """
    x, maps, onehot, batch_size = _start(model, images, maps, class_index, batch_size)
    steps = _check_int(steps, "steps")
    if isinstance(baseline, str):
        if baseline != "blur":
            raise ValueError(f"baseline must be 'blur', a number or images, got {baseline!r}")
        sigma = max(x.shape[1:-1]) / 10 if sigma is None else _check_number(sigma, "sigma", 0, strict=True)
        start = _blur(x, sigma)
    else:
        start = _check_baseline(model, x, baseline)
    fractions, curves = _curves(model, start, x, maps, onehot, steps, batch_size)
    return (_auc(fractions, curves), curves) if return_curves else _auc(fractions, curves)


# --- average drop and increase in confidence (Chattopadhyay et al. 2018) -----------------------


def _confidences(model, images, maps, class_index, batch_size):
    """The class probability on each image (Y) and on its explanation map (O): the image
    times its map, clipped at 0 and divided by its maximum."""
    x, maps, onehot, batch_size = _start(model, images, maps, class_index, batch_size)
    masked = x * _normalize_maps(np.maximum(maps, 0.0))[..., None]
    y = (_probabilities(model, x, batch_size) * onehot).sum(-1)
    return y, (_probabilities(model, masked, batch_size) * onehot).sum(-1)


def average_drop(model, images, maps, class_index=None, *, batch_size=32):
    """Drop in confidence per image (Chattopadhyay et al. 2018): lower is better.

    With Y the softmax probability of the class on the image and O the one on the
    explanation map (the image times its map, the map clipped at 0 and scaled to
    [0, 1], so 0 is what a hidden pixel becomes), the figure is max(0, Y - O) / Y. The
    paper's "Average Drop %" is 100 times its mean over images.

    Args:
        model, images, maps, class_index, batch_size: as in :func:`deletion_auc`.

    Returns:
        float32 array (N,) in [0, 1].
    """
    y, o = _confidences(model, images, maps, class_index, batch_size)
    return (np.maximum(y - o, 0.0) / np.maximum(y, 1e-12)).astype("float32")


def increase_in_confidence(model, images, maps, class_index=None, *, batch_size=32):
    """Whether the explanation map raises the confidence (Chattopadhyay et al. 2018):
    1.0 where O > Y (see :func:`average_drop`), else 0.0. The paper's "% Increase in
    Confidence" is 100 times the mean over images; higher is better.

    Returns:
        float32 array (N,) of 0.0 and 1.0.
    """
    y, o = _confidences(model, images, maps, class_index, batch_size)
    return (o > y).astype("float32")


# --- the sanity check (Adebayo et al. 2018) --------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RandomizationCheck:
    """The result of :func:`randomization_check`.

    Attributes:
        layers: the names of the layers randomized, in order (output first); step s
            has layers[0..s] randomized.
        correlation: float32 (L,), the mean over images of the Spearman rank
            correlation between the original map and the map after step s.
        per_image: float32 (L, N), the same per image.
        maps: with ``keep_maps``, float32 (L + 1, N, ...): the original maps, then
            the maps after each step, as compared (absolute values with ``absolute``);
            else None.
    """

    layers: tuple
    correlation: np.ndarray
    per_image: np.ndarray
    maps: np.ndarray | None = None


def _ranks(values):
    """Ranks of each row (N, P), ties sharing their mean rank."""
    order = np.argsort(values, axis=1, kind="stable")
    ranks = np.empty(values.shape, "float64")
    for i, (row, idx) in enumerate(zip(values, order)):
        ordered = row[idx]
        first = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        sizes = np.diff(np.r_[first, len(row)])
        ranks[i, idx] = np.repeat(first + (sizes - 1) / 2, sizes)
    return ranks


def _spearman(a, b):
    """Spearman's rank correlation of each pair of rows; 0 where a map is constant."""
    ra, rb = _ranks(a), _ranks(b)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    norm = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    return np.where(norm > 0, (ra * rb).sum(axis=1) / np.where(norm > 0, norm, 1.0), 0.0)


def _randomizable(clone, layers):
    """The clone's layers with trainable weights (or those named), output first."""
    found = [layer for layer in _walk(clone) if not isinstance(layer, keras.Model) and layer.trainable_weights]
    if layers is not None:
        if isinstance(layers, str) or not all(isinstance(name, str) for name in layers) or not layers:
            raise TypeError(f"layers must be a non-empty sequence of layer names or None, got {layers!r}")
        names = {layer.name for layer in found}
        missing = [name for name in layers if name not in names]
        if missing:
            raise ValueError(f"layers: {missing} are not layers with trainable weights of model "
                             f"{clone.name!r}; these are: {', '.join(layer.name for layer in found)}")
        found = [layer for layer in found if layer.name in set(layers)]
    return found[::-1]


def randomization_check(method, model, images, class_index=None, *, layers=None, absolute=True, seed=0,
                        keep_maps=False, batch_size=32, **kwargs):
    """The cascading model-randomization test (Adebayo et al. 2018, "Sanity Checks for
    Saliency Maps"): does the map change when the weights it should explain are lost?

    A copy of the model (``keras.models.clone_model``; the user's model is never
    touched) has its layers' trainable weights replaced one layer after another, from
    the output down, each by zero-mean Gaussian noise with the root mean square of
    the weights it replaces (a re-initialization at the trained scale, so activations
    keep their size; an all-zero bias stays zero); after each step the maps are made
    again and compared with the originals by Spearman's rank correlation (0 where a
    map is constant). A method that explains the model gives maps that
    decorrelate from the originals as more layers are randomized; one that mostly
    shows the image (guided backpropagation, in the paper) stays correlated.

    Args:
        method: a map function called as ``method(model, images, class_index=..., **kwargs)``,
            such as :func:`grad_cam` or :func:`saliency`, returning one map per image.
        model: a built Functional or Sequential ``keras.Model``.
        images: as in :func:`grad_cam`.
        class_index: None for the original model's prediction per image; the class
            stays fixed as the weights change.
        layers: names of the layers to randomize; None takes every layer with
            trainable weights. They are randomized in model order reversed.
        absolute: compare the maps' absolute values, as the paper does.
        seed: seed of the noise.
        keep_maps: also keep every map, in the result's ``maps``.
        batch_size: images per forward pass of the prediction.
        kwargs: passed to ``method``.

    Returns:
        :class:`RandomizationCheck`: the layers in order and the mean Spearman rank
        correlation with the original maps after each step (and per image).
    """
    if not callable(method):
        raise TypeError(f"method must be a map function such as grad_cam, got {type(method).__name__}")
    _check_model(model)
    x = _check_images(model, images)
    classes = _targets(model, x, class_index, _check_int(batch_size, "batch_size")).argmax(-1)
    try:
        clone = keras.models.clone_model(model, recursive=True)
    except Exception as error:  # clone_model raises several kinds
        raise ValueError(f"model: randomization_check needs a Functional or Sequential model that "
                         f"keras.models.clone_model can copy ({error})") from error
    clone.set_weights(model.get_weights())
    order = _randomizable(clone, layers)
    rng = np.random.default_rng(seed)

    def maps_now():
        maps = np.asarray(method(clone, x, class_index=classes, **kwargs), "float32")
        return np.abs(maps) if absolute else maps

    maps = [maps_now()]
    correlations = []
    for layer in order:
        for variable in layer.trainable_weights:
            value = keras.ops.convert_to_numpy(variable)
            scale = np.sqrt(np.mean(value.astype("float64") ** 2))
            variable.assign(rng.normal(0.0, scale, value.shape).astype(value.dtype))
        maps.append(maps_now())
        correlations.append(_spearman(maps[0].reshape(len(x), -1), maps[-1].reshape(len(x), -1)))
        if not keep_maps:
            maps = maps[:1]
    per_image = np.asarray(correlations, "float32").reshape(len(order), len(x))
    return RandomizationCheck(layers=tuple(layer.name for layer in order), correlation=per_image.mean(axis=1),
                              per_image=per_image, maps=np.stack(maps) if keep_maps else None)
