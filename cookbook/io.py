"""Atomic file writes: a temp file in the same folder, then a rename.

A killed process leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path, suffix=None):
    """Yield a temp path beside ``path``; on success it is renamed onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; a written file should read like any other
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=float) + "\n")


def save_figure(figure, path, **savefig_kwargs) -> Path:
    """Save a matplotlib figure atomically (the format comes from the path's suffix)."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png", **savefig_kwargs)
    return Path(path)


def copy_matching_weights(source, target) -> list[str]:
    """Copy the weights of every layer of ``source`` whose name and weight shapes match a
    layer of ``target``; return the names copied, in ``target``'s order.

    This starts a changed copy of a recipe (another head, another stage) from a
    keras.applications model's ImageNet weights wherever the layers still match: the
    twins keep keras.applications' layer names.
    """
    by_name = {layer.name: layer for layer in source.layers}
    copied = []
    for layer in target.layers:
        match = by_name.get(layer.name)
        if match is None or not layer.weights:
            continue
        if [tuple(w.shape) for w in match.weights] == [tuple(w.shape) for w in layer.weights]:
            layer.set_weights(match.get_weights())
            copied.append(layer.name)
    return copied
