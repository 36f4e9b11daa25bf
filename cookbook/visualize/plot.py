"""Drawing helpers: display scaling, grids, labelled figures and heatmap overlays.

Figures are ``matplotlib.figure.Figure`` objects built without pyplot's global state.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import _check_int, _check_number, _resize_maps


def to_display(images, *, clip_std=0.15, crop=0):
    """Scale images for display, per image, as keras-io's ``deprocess_image`` does:
    centre, scale to std ``clip_std``, shift to 0.5, clip to [0, 1], crop ``crop`` px.

    Args:
        images: array (N, H, W, C) or (H, W, C).
        clip_std: target standard deviation before clipping.
        crop: pixels removed from each side.

    Returns:
        float32 array of the same rank, in [0, 1].
    """
    array = np.asarray(images, dtype="float32")
    if array.ndim not in (3, 4):
        raise ValueError(f"images must have shape (N, H, W, C) or (H, W, C), got {array.shape}")
    crop = _check_int(crop, "crop", minimum=0)
    single = array.ndim == 3
    batch = array[None] if single else array
    axes = (1, 2, 3)
    centred = batch - batch.mean(axis=axes, keepdims=True)
    std = centred.std(axis=axes, keepdims=True)
    out = np.clip(centred / np.where(std > 0, std, 1.0) * clip_std + 0.5, 0.0, 1.0)
    if crop:
        out = out[:, crop:-crop, crop:-crop]
    return out[0] if single else out


def make_grid(images, cols=None, pad=1, pad_value=1.0):
    """Tile images (N, H, W[, C]) into one image, ``cols`` per row.

    Returns:
        float32 array (rows*(H+pad)-pad, cols*(W+pad)-pad, C).
    """
    array = np.asarray(images, dtype="float32")
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[0] < 1:
        raise ValueError(f"images must have shape (N, H, W) or (N, H, W, C), got {array.shape}")
    n, h, w, c = array.shape
    cols = _check_int(cols if cols is not None else math.ceil(math.sqrt(n)), "cols")
    pad = _check_int(pad, "pad", minimum=0)
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, c), pad_value, "float32")
    for i in range(n):
        r, k = divmod(i, cols)
        grid[r * (h + pad):r * (h + pad) + h, k * (w + pad):k * (w + pad) + w] = array[i]
    return grid


def plot_grid(images, titles=None, *, cols=None, cmap=None, size=1.6, suptitle=None):
    """A matplotlib Figure with one labelled panel per image (no pyplot global state).

    Args:
        images: array (N, H, W) or (N, H, W, C) with values in [0, 1].
        titles: optional N strings.
        cols: panels per row (default: about sqrt(N)).
        cmap: colormap name for one-channel images (default ``"gray"``).
        size: inches per panel.
        suptitle: optional figure title.

    Returns:
        ``matplotlib.figure.Figure`` (save it with ``cookbook.io.save_figure``).
    """
    from matplotlib.figure import Figure

    array = np.asarray(images, dtype="float32")
    if array.ndim not in (3, 4) or array.shape[0] < 1:
        raise ValueError(f"images must have shape (N, H, W) or (N, H, W, C), got {array.shape}")
    n = len(array)
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles must have {n} entries, got {len(titles)}")
    cols = _check_int(cols if cols is not None else math.ceil(math.sqrt(n)), "cols")
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(cols * size, rows * size + (0.4 if suptitle else 0)))
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = array[i]
        if img.ndim == 3 and img.shape[-1] == 1:
            img = img[..., 0]
        ax.imshow(np.clip(img, 0, 1), cmap=(cmap or "gray") if img.ndim == 2 else None, vmin=0, vmax=1)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=7)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_filters(images, activations=None, filters=None, *, cols=None, layer_name=None, crop=0):
    """The labelled grid of :func:`filter_images` results.

    Args:
        images: (F, H, W, C) from :func:`filter_images` (any range; shown via :func:`to_display`).
        activations: optional (F,) final activations, shown under each panel.
        filters: optional (F,) filter indices for the labels (default 0..F-1).
        cols: panels per row.
        layer_name: optional title.
        crop: border pixels to crop off for display.

    Returns:
        ``matplotlib.figure.Figure``.
    """
    array = np.asarray(images, dtype="float32")
    if array.ndim != 4:
        raise ValueError(f"images must have shape (F, H, W, C), got {array.shape}")
    filters = list(range(len(array))) if filters is None else [int(f) for f in filters]
    if len(filters) != len(array):
        raise ValueError(f"filters must have {len(array)} entries, got {len(filters)}")
    if activations is not None and len(activations) != len(array):
        raise ValueError(f"activations must have {len(array)} entries, got {len(activations)}")
    titles = [f"#{f}" if activations is None else f"#{f}  {float(a):.3g}"
              for f, a in zip(filters, activations if activations is not None else filters)]
    return plot_grid(to_display(array, crop=crop), titles, cols=cols, suptitle=layer_name)


def overlay(image, heatmap, *, alpha=0.4, colormap="jet"):
    """A heatmap drawn over an image with ``matplotlib.colormaps[colormap]``.

    Args:
        image: array (H, W) or (H, W, C), values in [0, 1].
        heatmap: array (h, w) in [0, 1]; resized to (H, W) if needed.
        alpha: heatmap opacity in [0, 1].
        colormap: a name in ``matplotlib.colormaps``.

    Returns:
        float32 RGB array (H, W, 3) in [0, 1].
    """
    import matplotlib

    img = np.asarray(image, dtype="float32")
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[-1] not in (1, 3):
        raise ValueError(f"image must have shape (H, W), (H, W, 1) or (H, W, 3), got {img.shape}")
    heat = np.asarray(heatmap, dtype="float32")
    if heat.ndim != 2:
        raise ValueError(f"heatmap must have shape (H, W), got {heat.shape}")
    alpha = _check_number(alpha, "alpha", minimum=0.0)
    if alpha > 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if colormap not in matplotlib.colormaps:
        raise ValueError(f"colormap must be a name in matplotlib.colormaps, got {colormap!r}")
    if heat.shape != img.shape[:2]:
        heat = _resize_maps(heat[None], img.shape[:2])[0]
    colored = matplotlib.colormaps[colormap](np.clip(heat, 0, 1))[..., :3].astype("float32")
    rgb = np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img
    return np.clip((1 - alpha) * np.clip(rgb, 0, 1) + alpha * colored, 0, 1).astype("float32")
