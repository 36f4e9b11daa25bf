"""Faithfulness scores for heatmaps: the pointing game (Zhang et al. 2016)."""

from __future__ import annotations

import numpy as np

from ._common import _check_int


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
