"""The render's figures: training curves, tile tables, waveforms.

Every tile is drawn at ``TILE_INCHES * DPI`` pixels (160 px) and the tables have at
most ``MAX_COLUMNS`` columns, so that a page shown in a 1400 px wide window displays
each tile at 128 px or more; the page's ``data-cols`` attribute tells the browser
test how many tiles share the width.
"""

from __future__ import annotations

import numpy as np

from cookbook import io

DPI = 100
TILE_INCHES = 1.6
MAX_COLUMNS = 4


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def display(image):
    """A 2-D (gray) or (h, w, 3) array in [0, 1] for imshow, stretched only when it leaves [0, 1]."""
    image = np.asarray(image, dtype="float32")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    low, high = float(image.min()), float(image.max())
    if low < 0 or high > 1:
        image = (image - low) / (high - low + 1e-8)
    return image


def save(figure, path):
    """Save ``figure`` atomically at the tile resolution and close it."""
    io.save_figure(figure, path, dpi=DPI)
    pyplot().close(figure)
    return path


def training_curve(history, path):
    """Loss and the first metric per epoch, train against validation."""
    plt = pyplot()
    series = sorted((key for key in history if not key.startswith("val_")), key=lambda k: (k != "loss", k))[:2]
    figure, axes = plt.subplots(1, max(1, len(series)), figsize=(8, 3), squeeze=False)
    for ax, key in zip(axes[0], series):
        epochs = range(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], marker="o", label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.set_xticks(list(epochs)[:: max(1, len(epochs) // 10)])  # whole epochs only, at most ~10 ticks
        ax.set_title(key.replace("_", " "))
        ax.legend(frameon=False)
    figure.tight_layout()
    return save(figure, path)


def tile_table(rows, path, row_labels=None, titles=None, boxes=None, cmap="gray"):
    """A table of image tiles: ``rows`` is a list of rows, each a list of 2-D/3-D arrays
    (or None for an empty cell). ``titles`` and ``boxes`` ((y0, x0, y1, x1) drawn in
    green) have the same layout, or are None."""
    plt = pyplot()
    n_rows, n_cols = len(rows), max(len(row) for row in rows)
    figure, axes = plt.subplots(n_rows, n_cols, figsize=(TILE_INCHES * n_cols + (0.5 if row_labels else 0),
                                                         (TILE_INCHES + 0.3) * n_rows), squeeze=False)
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            tile = row[c] if c < len(row) else None
            if tile is None:
                ax.axis("off")
                continue
            tile = display(tile)
            ax.imshow(tile, cmap=cmap if tile.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
            if titles and titles[r][c]:
                ax.set_title(titles[r][c], fontsize=9)
            if boxes and boxes[r][c] is not None:
                _box(ax, *boxes[r][c])
        if row_labels:
            axes[r, 0].set_ylabel(row_labels[r], fontsize=9)
    figure.tight_layout(pad=0.4)
    return save(figure, path)


def mosaic(images, path, columns):
    """Images side by side in one picture, ``columns`` to a row, one pixel of gray between them."""
    images = [display(image) for image in images]
    height, width = images[0].shape[:2]
    rows = -(-len(images) // columns)
    canvas = np.full((rows * (height + 1) - 1, columns * (width + 1) - 1), 0.5, dtype="float32")
    for k, image in enumerate(images):
        r, c = divmod(k, columns)
        canvas[r * (height + 1): r * (height + 1) + height, c * (width + 1): c * (width + 1) + width] = image
    plt = pyplot()
    figure = plt.figure(figsize=(6.4, 6.4 * canvas.shape[0] / canvas.shape[1]))
    ax = figure.add_axes((0, 0, 1, 1))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    return save(figure, path)


def scatter_by_class(points, labels, path, xlabel, ylabel):
    """2-D points coloured by their integer class, with a legend."""
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(6.4, 5.2))
    for label in np.unique(labels):
        chosen = labels == label
        ax.scatter(points[chosen, 0], points[chosen, 1], s=6, alpha=0.7, label=str(int(label)),
                   color=plt.get_cmap("tab10")(int(label) % 10))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(title="digit", markerscale=3, frameon=False, loc="center left", bbox_to_anchor=(1, 0.5))
    figure.tight_layout()
    return save(figure, path)


def probe_curve(layers, test_accuracies, train_accuracies, chance, path):
    """Linear-probe accuracy per layer, shallow to deep, with the chance level."""
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(6.4, 4.2))
    steps = range(len(layers))
    ax.plot(steps, train_accuracies, marker="o", color="tab:gray", alpha=0.6, label="train")
    ax.plot(steps, test_accuracies, marker="o", color="tab:blue", label="held-out")
    ax.axhline(chance, color="tab:red", linestyle="--", linewidth=1, label="chance")
    for step, value in zip(steps, test_accuracies):
        ax.annotate(f"{value:.2f}", (step, value), textcoords="offset points", xytext=(0, -14), ha="center",
                    fontsize=9, color="tab:blue")
    ax.set_xticks(list(steps))
    ax.set_xticklabels(layers, rotation=25, ha="right", fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("linear-probe accuracy")
    ax.legend(frameon=False, loc="lower right")
    figure.tight_layout()
    return save(figure, path)


def score_map(canvas, probabilities, window, stride, path):
    """``canvas`` with, at the centre of each ``window``-px window (``stride`` apart), the class a
    fully convolutional classifier gives it: bold where its probability is over 0.9."""
    plt = pyplot()
    figure = plt.figure(figsize=(6.4, 6.4))
    ax = figure.add_axes((0, 0, 1, 1))
    ax.imshow(display(canvas), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    for i in range(probabilities.shape[0]):
        for j in range(probabilities.shape[1]):
            p = probabilities[i, j]
            confident = p.max() > 0.9
            ax.text(j * stride + window / 2 - 0.5, i * stride + window / 2 - 0.5, str(int(np.argmax(p))),
                    ha="center", va="center", fontsize=15 if confident else 10,
                    fontweight="bold" if confident else "normal", color="lime" if confident else "orange",
                    alpha=1.0 if confident else 0.8)
    half = canvas.shape[0] / 2 - 0.5
    ax.axhline(half, color="white", linewidth=0.6, linestyle="--")
    ax.axvline(half, color="white", linewidth=0.6, linestyle="--")
    ax.axis("off")
    return save(figure, path)


def wave_table(rows, path, titles=None):
    """Like :func:`tile_table`, for 1-D signals: one small line plot per cell."""
    plt = pyplot()
    n_rows, n_cols = len(rows), max(len(row) for row in rows)
    figure, axes = plt.subplots(n_rows, n_cols, figsize=(TILE_INCHES * n_cols, (TILE_INCHES * 0.8 + 0.3) * n_rows),
                                squeeze=False)
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(row) or row[c] is None:
                ax.axis("off")
                continue
            ax.plot(np.asarray(row[c]).reshape(-1), linewidth=0.7)
            if titles and titles[r][c]:
                ax.set_title(titles[r][c], fontsize=9)
    figure.tight_layout(pad=0.4)
    return save(figure, path)


def _box(ax, y0, x0, y1, x1):
    """Draw a box given in pixels (exclusive ends) on an imshow axis."""
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor="lime", linewidth=1.5))
