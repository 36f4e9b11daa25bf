"""What a model costs: parameters and multiply-accumulates, per layer and per block.

This is how the docs show why 1x1 reductions and factorized convolutions are cheaper.

* **Parameters** are ``layer.count_params()``: every weight, trainable or not (a
  BatchNormalization layer counts its gamma, beta, moving mean and moving variance).
* **MACs** (multiply-accumulates, the "ops" or "multiply-adds" of the papers) are
  counted for the layers that multiply by weights: for a convolution, one MAC per
  kernel weight per output position, ``output positions x prod(kernel shape)``, which
  covers grouped convs (the kernel holds ``in/groups`` input channels) and any kernel
  shape; depthwise and separable convs (depthwise + pointwise part); transposed convs
  (one MAC per kernel weight per *input* position); Dense and EinsumDense (per
  position when applied to a sequence or a map). Bias adds, normalization,
  activations, pooling and merges count as 0 MACs, as in the papers' tables.
  Recurrent and attention layers are reported with ``macs=None`` (not counted).
* **Blocks** group layers by their name prefix, so ``mixed3_1x1``, ``mixed3_3x3`` and
  ``mixed3`` form block ``mixed3``; ``inception_3a_5x5_reduce`` is in ``inception_3a``;
  ``conv3_block2_1_conv`` is in ``conv3_block2``; ``block14_sepconv1_bn`` in
  ``block14``. The rule is :data:`BLOCK_PATTERN` (optional word tokens, then an
  indexed token such as ``conv3``, ``3a``, ``mixed10``, ``block1a``, then an optional
  ``_blockN``). A name without an index groups by its first word when another layer
  shares it (``stem_conv``, ``stem_bn`` -> ``stem``), else stands alone (``avg_pool``).
  Pass ``group=`` (a callable from layer name to block name) to use another rule.

Layers that Keras named itself (``conv2d_3``) belong to no block and stand alone.
Nested models are walked: their layers appear as ``outer/inner``. A layer called more
than once (shared weights) is counted once, at its first call.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter

import keras

__all__ = ["BLOCK_PATTERN", "BlockCost", "LayerCost", "block_costs", "block_name", "format_cost",
           "layer_costs"]

BLOCK_PATTERN = re.compile(r"^(?:[A-Za-z]+_)*(?:[A-Za-z]*\d+[a-z]?)(?:_block\d+[a-z]?)?(?=_|$)")
_UNCOUNTED = (
    "LSTM", "GRU", "SimpleRNN", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "Bidirectional", "RNN",
    "MultiHeadAttention", "GroupedQueryAttention",
)


@dataclasses.dataclass(frozen=True)
class LayerCost:
    """One layer: its name, class, output shape (batch dim None), parameters and MACs."""

    name: str
    type: str
    output_shape: tuple
    params: int
    macs: int | None
    block: str


@dataclasses.dataclass(frozen=True)
class BlockCost:
    """One named block: the sum over its layers (``macs`` ignores uncounted layers)."""

    name: str
    params: int
    macs: int
    layers: tuple


# --- counting ----------------------------------------------------------------------------


def _prod(values) -> int:
    return int(math.prod(int(v) for v in values))


def _shape(tensor) -> tuple:
    return tuple(None if d is None else int(d) for d in tensor.shape)


def _first(tensors):
    return tensors[0] if isinstance(tensors, (list, tuple)) else tensors


def _positions(shape, data_format) -> int:
    """Number of spatial positions in a (batch, ..., channels) or (batch, channels, ...) shape."""
    spatial = shape[2:] if data_format == "channels_first" else shape[1:-1]
    if any(d is None for d in spatial):
        raise ValueError(f"cannot count MACs on an unknown spatial size {shape}; build the model "
                         "with a fixed input_shape")
    return _prod(spatial)


def _kernel_shape(layer, attribute="kernel") -> tuple:
    return tuple(int(d) for d in getattr(layer, attribute).shape)


def _layer_macs(layer, input_shape, output_shape):
    """MACs of one call of ``layer``; None where this module does not count them."""
    kind = type(layer).__name__
    data_format = getattr(layer, "data_format", "channels_last")
    if isinstance(layer, (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)):
        positions = _positions(output_shape, data_format)
        return positions * (_prod(_kernel_shape(layer, "depthwise_kernel"))
                            + _prod(_kernel_shape(layer, "pointwise_kernel")))
    if isinstance(layer, (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
                          keras.layers.Conv3DTranspose)):
        return _positions(input_shape, data_format) * _prod(_kernel_shape(layer))
    if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
                          keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)):
        return _positions(output_shape, data_format) * _prod(_kernel_shape(layer))
    if isinstance(layer, keras.layers.Dense):
        return _prod(output_shape[1:-1]) * _prod(_kernel_shape(layer))
    if isinstance(layer, keras.layers.EinsumDense):
        # Each output element sums over the kernel entries that do not index the output.
        out_dims = [d for d in output_shape[1:] if d is not None]
        free = layer.equation.split("->")[-1].replace(".", "")
        kernel_spec = layer.equation.split(",")[1].split("->")[0]
        summed = _prod(d for d, axis in zip(_kernel_shape(layer), kernel_spec) if axis not in free)
        return _prod(out_dims) * summed
    if kind in _UNCOUNTED or (layer.count_params() and not isinstance(layer, _ZERO_MAC)):
        return None
    return 0


_ZERO_MAC = (
    keras.layers.BatchNormalization, keras.layers.LayerNormalization,
    keras.layers.GroupNormalization, keras.layers.Normalization, keras.layers.Embedding,
    keras.layers.PReLU,
)


def block_name(layer_name: str, shared_first_words=frozenset()) -> str:
    """The block a layer belongs to, by the rule of :data:`BLOCK_PATTERN`."""
    if not isinstance(layer_name, str):
        raise TypeError(f"layer_name must be a str, got {type(layer_name).__name__}")
    prefix, _, local = layer_name.rpartition("/")
    match = BLOCK_PATTERN.match(local)
    if match:
        block = match.group(0)
    else:
        first = local.split("_", 1)[0]
        block = first if first in shared_first_words else local
    return f"{prefix}/{block}" if prefix else block


def _auto_named(layer) -> bool:
    """True for a name Keras generated from the class (``conv2d_3``): it names no block."""
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", type(layer).__name__).lower()
    snake = re.sub(r"_(?=\d)|(?<=\d)_(?=d\b)", "", snake)  # Conv2D -> conv2d, not conv_2_d
    return re.fullmatch(rf"{re.escape(snake)}(_\d+)?", layer.name) is not None


def _walk(model, prefix=""):
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model) and layer.layers:
            yield from _walk(layer, f"{prefix}{layer.name}/")
        else:
            yield prefix, layer


def _io_shapes(layer):
    try:
        return _shape(_first(layer.input)), _shape(_first(layer.output))
    except (AttributeError, ValueError) as error:
        raise ValueError(
            f"layer {layer.name!r} has no single symbolic input/output; cost needs a functional "
            f"or Sequential model built on a keras.Input ({error})"
        ) from None


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    if not model.built or not getattr(model, "inputs", None):
        raise ValueError("model must be a built functional or Sequential model with a keras.Input")


def layer_costs(model, group=None) -> list[LayerCost]:
    """One record per layer of ``model`` (nested models walked), in graph order.

    ``group`` optionally maps a layer name to its block name (default: :func:`block_name`).
    """
    _check_model(model)
    if group is not None and not callable(group):
        raise TypeError(f"group must be a callable from layer name to block name, got {group!r}")
    found = [(f"{prefix}{layer.name}", layer) for prefix, layer in _walk(model)]
    firsts = Counter(name.rpartition("/")[2].split("_", 1)[0] for name, _ in found)
    shared = frozenset(word for word, count in firsts.items() if count > 1)
    records = []
    for name, layer in found:
        input_shape, output_shape = _io_shapes(layer)
        if group is not None:
            block = group(name)
        else:
            block = name if _auto_named(layer) else block_name(name, shared)
        records.append(LayerCost(
            name=name,
            type=type(layer).__name__,
            output_shape=output_shape,
            params=int(layer.count_params()),
            macs=_layer_macs(layer, input_shape, output_shape),
            block=str(block),
        ))
    return records


def block_costs(model, group=None) -> list[BlockCost]:
    """Parameters and MACs summed per named block, in order of first appearance."""
    blocks: dict[str, list[LayerCost]] = {}
    for record in layer_costs(model, group):
        blocks.setdefault(record.block, []).append(record)
    return [
        BlockCost(name, sum(r.params for r in rs), sum(r.macs or 0 for r in rs),
                  tuple(r.name for r in rs))
        for name, rs in blocks.items()
    ]


# --- formatting -----------------------------------------------------------------------------


def _human(count) -> str:
    if count is None:
        return "-"
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(count) >= size:
            return f"{count / size:.2f} {unit}"
    return str(count)


def _table(header, rows, markdown, align):
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---:" if a == "r" else ":---" for a in align) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]

    def line(row):
        return "  ".join(cell.rjust(w) if a == "r" else cell.ljust(w)
                         for cell, w, a in zip(row, widths, align)).rstrip()

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    return "\n".join([line(header), rule, *(line(row) for row in rows[:-1]), rule, line(rows[-1])])


def format_cost(model, by="layer", markdown=False, group=None) -> str:
    """A table of parameters and MACs per layer (``by="layer"``) or block, with totals."""
    if by not in ("layer", "block"):
        raise ValueError(f"by must be 'layer' or 'block', got {by!r}")
    if not isinstance(markdown, bool):
        raise TypeError(f"markdown must be a bool, got {type(markdown).__name__}")
    records = layer_costs(model, group)
    total_params = sum(r.params for r in records)
    total_macs = sum(r.macs or 0 for r in records)
    uncounted = [r.name for r in records if r.macs is None]
    if by == "layer":
        header = ["layer", "type", "output shape", "params", "MACs"]
        align = "lllrr"
        rows = [[r.name, r.type, str(r.output_shape), f"{r.params:,}", _human(r.macs)]
                for r in records]
        rows.append(["total", "", "", f"{total_params:,}", _human(total_macs)])
    else:
        header = ["block", "layers", "params", "MACs"]
        align = "lrrr"
        rows = [[b.name, str(len(b.layers)), f"{b.params:,}", _human(b.macs)]
                for b in block_costs(model, group)]
        rows.append(["total", str(len(records)), f"{total_params:,}", _human(total_macs)])
    if markdown:
        rows[-1] = [f"**{cell}**" if cell else cell for cell in rows[-1]]
    text = _table(header, rows, markdown, align)
    if uncounted:
        text += f"\n\nMACs not counted for: {', '.join(uncounted)}"
    return text
