"""Views of a layer over a dataset: activations, the units that respond most, the
dataset examples that excite each unit most (Distill's "dataset examples", Olah et
al. 2017) with the input patch under each unit's receptive field, and what a layer's
pooled features say about the data: nearest neighbours (Krizhevsky et al. 2012), 2-D
projections (PCA, t-SNE: van der Maaten and Hinton 2008) and linear probes per depth
(Alain and Bengio 2016)."""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np

from ._backend import _activation_shape, _cached, _compile, _layer_outputs, _model_state, _probe
from ._common import (
    _check_choice,
    _check_images,
    _check_int,
    _check_model,
    _check_units,
    _find_layer,
    _numeric_array,
    _spatial_axes,
    _walk,
)

_POOLING = {"avg": np.mean, "max": np.max}
_METRICS = ("cosine", "euclidean")
_PROJECTIONS = ("pca", "tsne")


def _find_layers(model, layers, argname="layers", flat=False):
    """The layers named by ``layers`` (a name, a Layer, or a non-empty sequence of them)."""
    if isinstance(layers, (str, keras.layers.Layer)):
        layers = [layers]
    if not isinstance(layers, (list, tuple)) or not layers:
        raise ValueError(f"{argname} must be a layer name or a non-empty sequence of names, got {layers!r}")
    return [_find_layer(model, layer, argname, flat=flat) for layer in layers]


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
    found = _find_layers(model, layers)
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


def field_patch(image, field, position, size):
    """The ``size`` input pixels (per axis) centred on the receptive field of the unit at
    ``position``: ``image`` is (H, W, C) or (samples, C), ``field`` a
    :class:`cookbook.cost.ReceptiveField`. What falls outside the image is zero."""
    patch = np.zeros((*size, image.shape[-1]), "float32")
    source = _field_slices(field, position, size, image.shape[:-1])
    target = [slice(s.start - low, s.stop - low) for s, low in zip(source, _field_lows(field, position, size))]
    patch[tuple(target)] = image[tuple(source)]
    return patch


def _field_lows(field, position, size):
    """Per axis, the first input index of the ``size`` window centred on the unit's field."""
    return [math.floor(field.start[axis] + position[axis] * field.jump[axis] - (size[axis] - 1) / 2 + 0.5)
            for axis in range(len(size))]


def _field_slices(field, position, size, input_shape):
    """Per axis, the slice of an input of ``input_shape`` (spatial axes) that :func:`field_patch`
    cuts out (the window clipped to the input)."""
    slices = []
    for low, n, width in zip(_field_lows(field, position, size), input_shape, size):
        first = max(low, 0)
        slices.append(slice(first, max(first, min(low + width, n))))
    return slices


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
        boxes[u, j] = np.clip(field.bounds(positions[u, j]), 0, np.array(spatial)[:, None])
        patches[u, j] = field_patch(x[indices[u, j]], field, positions[u, j], patch_size)
    return TopActivating(units=units, indices=indices.astype("int64"), values=values.astype("float32"),
                         positions=positions.astype("int64"), boxes=boxes, patches=patches,
                         receptive_field=field)


# --- features: neighbours, projections, linear probes -----------------------------------------


def _pooled_features(model, layer, x, pooling, batch_size):
    """float32 (N, D): the layer's output pooled over its positions, batch by batch."""
    pool = _POOLING[pooling]
    rows = [pool(act, axis=_spatial_axes(act.ndim)) for _, act in _layer_outputs(model, layer, x, batch_size)]
    return np.concatenate(rows).astype("float32")


def features(model, layer, images, *, pooling="avg", batch_size=32):
    """One feature vector per image: ``layer``'s output, pooled over its positions.

    The input to :func:`nearest_neighbours`, :func:`project` and (per layer)
    :func:`linear_probes`. Krizhevsky et al. (2012, Sec. 6.1) compare images by the
    feature vectors of the last hidden layer.

    Args:
        model: a built ``keras.Model``; nested and Sequential models work.
        layer: name (or Layer) of a layer with a map output (N, H, W, D) ((N, steps, D)
            for a 1-D model), or a vector output (N, D) (Dense, Flatten, global
            pooling), which is returned as is. None: the last layer with a map output.
        images: float array (N, H, W, C) ((N, samples, C) for a 1-D model).
        pooling: ``"avg"`` (global average) or ``"max"`` (global maximum) over the
            map's positions.
        batch_size: images per forward pass (inference mode).

    Returns:
        float32 (N, D).
    """
    _check_model(model)
    x = _check_images(model, images)
    target = _find_layer(model, layer, flat=True)
    pooling = _check_choice(pooling, "pooling", tuple(_POOLING))
    return _pooled_features(model, target, x, pooling, _check_int(batch_size, "batch_size"))


def _check_features(values, name):
    """float64 (N, D), N, D >= 1, finite."""
    array = _numeric_array(values)
    if array is None:
        raise TypeError(f"{name} must be a numeric array (N, D), got {type(values).__name__}")
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"{name} must have shape (N, D) with N, D >= 1, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds NaN or Inf values")
    return array.astype("float64")


def _distances(query, gallery, metric):
    """(Q, G) float64: 1 - cosine similarity (a zero vector is at 1 from everything), or
    the Euclidean distance."""
    if metric == "cosine":
        unit = lambda a: a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-300)
        return np.clip(1.0 - unit(query) @ unit(gallery).T, 0.0, 2.0)
    squared = (query**2).sum(1)[:, None] + (gallery**2).sum(1)[None] - 2.0 * query @ gallery.T
    return np.sqrt(np.maximum(squared, 0.0))


def nearest_neighbours(query_features, gallery_features, k=5, *, metric="cosine", exclude_self=False):
    """The ``k`` gallery items nearest to each query, nearest first.

    Krizhevsky et al. (2012, Fig. 4) retrieve the training images whose last-hidden-layer
    features are nearest (in Euclidean distance) to a test image's: images the network
    treats as alike, though their pixels differ. Ties go to the lower gallery index.

    Args:
        query_features: (Q, D) features, e.g. from :func:`features`.
        gallery_features: (G, D) features of the images to retrieve from.
        k: neighbours per query, 1 <= k <= G (G - 1 with ``exclude_self``).
        metric: ``"cosine"`` (1 - cosine similarity) or ``"euclidean"``.
        exclude_self: the queries are the gallery (Q == G): item i is not its own
            neighbour. Nothing is excluded by default.

    Returns:
        ``(indices, distances)``: int64 (Q, k) indices into the gallery and their float32
        (Q, k) distances, ascending.
    """
    query = _check_features(query_features, "query_features")
    gallery = _check_features(gallery_features, "gallery_features")
    if query.shape[1] != gallery.shape[1]:
        raise ValueError(f"query_features and gallery_features must have the same size D, got "
                         f"{query.shape[1]} and {gallery.shape[1]}")
    metric = _check_choice(metric, "metric", _METRICS)
    k = _check_int(k, "k")
    if exclude_self and len(query) != len(gallery):
        raise ValueError(f"exclude_self needs the queries to be the gallery, got {len(query)} queries "
                         f"and {len(gallery)} gallery items")
    available = len(gallery) - bool(exclude_self)
    if k > available:
        raise ValueError(f"k must be <= {available} (the gallery's size"
                         f"{' less the query itself' if exclude_self else ''}), got {k}")
    distances = _distances(query, gallery, metric)
    if exclude_self:
        np.fill_diagonal(distances, np.inf)
    indices = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return indices.astype("int64"), np.take_along_axis(distances, indices, axis=1).astype("float32")


def project(features, method="pca", *, dims=2, seed=0, **kwargs):
    """Features (N, D) projected to ``dims`` dimensions with scikit-learn, to plot.

    ``"pca"``: the principal components (``sklearn.decomposition.PCA``). ``"tsne"``:
    t-SNE (van der Maaten and Hinton 2008; ``sklearn.manifold.TSNE``), which keeps
    neighbours together rather than distances; its perplexity defaults to
    min(30, (N - 1) / 3), so that small sets work.

    Args:
        features: (N, D) numbers, N >= 2, e.g. from :func:`features`.
        method: ``"pca"`` or ``"tsne"``.
        dims: output dimensions: at most min(N, D) for PCA, 2 or 3 for t-SNE.
        seed: the random state (t-SNE's initialization; PCA's randomized solver).
        **kwargs: passed to ``PCA`` or ``TSNE`` (e.g. ``perplexity``, ``max_iter``).

    Returns:
        float32 (N, dims).

    t-SNE's gradient runs on OpenMP threads, which spin-wait when the CPU is busy with
    other work; there ``with threadpoolctl.threadpool_limits(1, "openmp"):`` around
    the call can be many times faster (10 points: 15 s against 0.2 s on 2 shared cores).
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = _check_features(features, "features")
    method = _check_choice(method, "method", _PROJECTIONS)
    dims, seed = _check_int(dims, "dims"), _check_int(seed, "seed", minimum=0)
    if len(x) < 2:
        raise ValueError(f"features must hold at least 2 rows to project, got {len(x)}")
    if method == "pca":
        if dims > min(x.shape):
            raise ValueError(f"dims must be <= min(N, D) = {min(x.shape)} for PCA, got {dims}")
        return PCA(n_components=dims, random_state=seed, **kwargs).fit_transform(x).astype("float32")
    if dims > 3:
        raise ValueError(f"dims must be 2 or 3 for t-SNE, got {dims}")
    kwargs.setdefault("perplexity", min(30.0, (len(x) - 1) / 3))
    return TSNE(n_components=dims, random_state=seed, **kwargs).fit_transform(x).astype("float32")


@dataclasses.dataclass(frozen=True)
class LinearProbes:
    """Linear-probe accuracy per layer (see :func:`linear_probes`).

    Attributes:
        layers: tuple of layer names, in order of depth.
        accuracies: float32 (L,), the probes' accuracy on the test set.
        train_accuracies: float32 (L,), their accuracy on the training set.
        chance: the test accuracy of always answering the most common training class.
    """

    layers: tuple
    accuracies: np.ndarray
    train_accuracies: np.ndarray
    chance: float


def _check_labelled(model, data, argname):
    """``(x, y)`` from a pair or a ``cookbook.data.Split``: float images, one int label each
    (one-hot rows become class indices)."""
    if hasattr(data, "x") and hasattr(data, "y"):
        data = (data.x, data.y)
    if not isinstance(data, (list, tuple)) or len(data) != 2:
        raise TypeError(f"{argname} must be a pair (x, y) or a cookbook.data.Split, got {type(data).__name__}")
    x = _check_images(model, data[0], argname)
    y = np.asarray(keras.ops.convert_to_numpy(data[1]))
    y = y.argmax(-1) if y.ndim == 2 else y
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise TypeError(f"{argname}: labels must be ints (N,) or one-hot (N, K), got {y.dtype} {y.shape}")
    if len(y) != len(x):
        raise ValueError(f"{argname}: {len(x)} images but {len(y)} labels")
    return x, y


def linear_probes(model, layers, train, test, *, pooling="avg", max_iter=1000, batch_size=32):
    """How linearly the classes can be read from each layer: a linear-probe accuracy per depth.

    Alain and Bengio (2016) fit a linear classifier on each layer's features of a
    trained network and find that the accuracy grows with depth, as it does from an
    ImageNet AlexNet's conv1 to its top layers. Here each probe is a logistic regression
    (scikit-learn, L2, lbfgs) on the standardized :func:`features` of ``train``, scored
    on ``test``. The model is not changed.

    Args:
        model: a built ``keras.Model``; nested and Sequential models work.
        layers: a layer name (or Layer) or a sequence of them, map or vector outputs;
            the result lists them in order of depth.
        train, test: pairs ``(x, y)`` (or ``cookbook.data.Split``): float images and
            int labels (N,) (one-hot (N, K) works too).
        pooling: ``"avg"`` or ``"max"``, as in :func:`features`.
        max_iter: the logistic regression's iterations.
        batch_size: images per forward pass.

    Returns:
        :class:`LinearProbes` (``layers``, ``accuracies``, ``train_accuracies``, ``chance``).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _check_model(model)
    depth = {id(layer): i for i, layer in enumerate(_walk(model))}
    found = sorted({id(layer): layer for layer in _find_layers(model, layers, flat=True)}.values(),
                   key=lambda layer: depth[id(layer)])
    x_train, y_train = _check_labelled(model, train, "train")
    x_test, y_test = _check_labelled(model, test, "test")
    pooling = _check_choice(pooling, "pooling", tuple(_POOLING))
    max_iter, batch_size = _check_int(max_iter, "max_iter"), _check_int(batch_size, "batch_size")
    classes, counts = np.unique(y_train, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"train must hold at least 2 classes, got only {classes.tolist()}")
    train_scores, test_scores = [], []
    for layer in found:
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
        f_train = _pooled_features(model, layer, x_train, pooling, batch_size)
        probe.fit(f_train, y_train)
        train_scores.append(probe.score(f_train, y_train))
        test_scores.append(probe.score(_pooled_features(model, layer, x_test, pooling, batch_size), y_test))
    return LinearProbes(layers=tuple(layer.name for layer in found),
                        accuracies=np.asarray(test_scores, "float32"),
                        train_accuracies=np.asarray(train_scores, "float32"),
                        chance=float(np.mean(y_test == classes[counts.argmax()])))
