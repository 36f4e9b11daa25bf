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

**Receptive fields** (:func:`receptive_field`): the size, jump and start of a layer's
output units in input pixels, from the layer graph.

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

__all__ = ["BLOCK_PATTERN", "BlockCost", "LayerCost", "ReceptiveField", "block_costs", "block_name",
           "format_cost", "layer_costs", "receptive_field"]

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
    """A table of parameters and MACs per layer (``by="layer"``) or block, with totals.

    The block table also gives the receptive field of each block's output, in input
    pixels (:func:`receptive_field`), where the block ends in a spatial map.
    """
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
        header = ["block", "layers", "params", "MACs", "receptive field"]
        align = "lrrrr"
        fields = _fields_or_none(model)
        rows = [[b.name, str(len(b.layers)), f"{b.params:,}", _human(b.macs), _field_text(fields.get(b.layers[-1]))]
                for b in block_costs(model, group)]
        rows.append(["total", str(len(records)), f"{total_params:,}", _human(total_macs), ""])
    if markdown:
        rows[-1] = [f"**{cell}**" if cell else cell for cell in rows[-1]]
    text = _table(header, rows, markdown, align)
    if uncounted:
        text += f"\n\nMACs not counted for: {', '.join(uncounted)}"
    return text


def _fields_or_none(model) -> dict:
    """Every top-level layer's receptive field, or {} for a model the arithmetic cannot read."""
    try:
        return _fields(model) if len(model.inputs) == 1 else {}
    except ValueError:
        return {}


def _field_text(field) -> str:
    """A block's receptive field as the table shows it: "7x7" (or "9" in 1-D); "-" for none."""
    if not isinstance(field, ReceptiveField):
        return "-"
    return "\u00d7".join(str(size) for size in field.size)


# --- receptive fields ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ReceptiveField:
    """The receptive field of a layer's output units, per spatial axis (H, W or time).

    Unit ``i`` along an axis sees the input pixels ``start + i * jump - (size - 1) / 2``
    to ``start + i * jump + (size - 1) / 2`` (inclusive; possibly outside the image,
    where the padding is). ``size`` and ``jump`` are ints; ``start`` is a float
    (a half-pixel for even-sized fields).
    """

    size: tuple
    jump: tuple
    start: tuple

    def bounds(self, position) -> tuple:
        """``(first, last + 1)`` input pixel per axis for the unit at ``position`` (unclipped)."""
        lows = [round(s + int(p) * j - (r - 1) / 2) for s, p, j, r in
                zip(self.start, position, self.jump, self.size)]
        return tuple((low, low + r) for low, r in zip(lows, self.size))


_KERNEL_LAYERS = (
    keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D, keras.layers.SeparableConv1D, keras.layers.SeparableConv2D,
)
_POOL_LAYERS = (keras.layers.MaxPooling1D, keras.layers.MaxPooling2D, keras.layers.MaxPooling3D,
                keras.layers.AveragePooling1D, keras.layers.AveragePooling2D, keras.layers.AveragePooling3D)
_PAD_LAYERS = (keras.layers.ZeroPadding1D, keras.layers.ZeroPadding2D, keras.layers.ZeroPadding3D)
_CROP_LAYERS = (keras.layers.Cropping1D, keras.layers.Cropping2D, keras.layers.Cropping3D)
# Layers that keep the spatial shape but mix every position (their field is the whole input),
# or move pixels in ways the arithmetic below does not model.
_UNMODELLED = (
    "MultiHeadAttention", "GroupedQueryAttention", "Attention", "AdditiveAttention", "LSTM", "GRU",
    "SimpleRNN", "RNN", "Bidirectional", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
    "UpSampling1D", "UpSampling2D", "Resizing", "Reshape", "Permute",
)


def _tuple(value, n):
    return tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else (int(value),) * n


def _layer_ops(layer, in_spatial):
    """Per axis ``(kernel, stride, offset)`` of one layer, where ``offset`` is the first
    output's centre in the layer's input pixels; None for a layer that keeps positions."""
    n = len(in_spatial)
    if isinstance(layer, _KERNEL_LAYERS + _POOL_LAYERS):
        size = layer.kernel_size if isinstance(layer, _KERNEL_LAYERS) else layer.pool_size
        kernel = _tuple(size, n)
        stride = _tuple(layer.strides, n)
        dilation = _tuple(getattr(layer, "dilation_rate", 1), n)
        ops = []
        for k, s, d, size_in in zip(kernel, stride, dilation, in_spatial):
            k = d * (k - 1) + 1
            if layer.padding == "same":  # Keras (and TF, and jax.lax "SAME") pad the end more
                out = -(-size_in // s) if size_in is not None else None
                total = max((out - 1) * s + k - size_in, 0) if out is not None else max(k - s, 0)
                left = total // 2
            else:
                left = k - 1 if layer.padding == "causal" else 0
            ops.append((k, s, (k - 1) / 2 - left))
        return ops
    if isinstance(layer, _PAD_LAYERS):  # (left, right) in 1-D, one such pair per axis above
        pads = [layer.padding] if n == 1 else layer.padding
        return [(1, 1, -float(p[0])) for p in pads]
    if isinstance(layer, _CROP_LAYERS):
        crops = [layer.cropping] if n == 1 else layer.cropping
        return [(1, 1, float(c[0])) for c in crops]
    return None


def _compose(field, ops):
    """The field after applying per-axis ``ops`` (kernel, stride, offset) to ``field``."""
    return ReceptiveField(
        size=tuple(r + (k - 1) * j for r, j, (k, _, _) in zip(field.size, field.jump, ops)),
        jump=tuple(j * s for j, (_, s, _) in zip(field.jump, ops)),
        start=tuple(float(st + o * j) for st, j, (_, _, o) in zip(field.start, field.jump, ops)),
    )


def _merge(fields, where):
    """Paths meeting at a merge: the union of their fields (they must share the jump)."""
    if len({f.jump for f in fields}) > 1:
        raise ValueError(f"receptive_field: paths with different strides meet at {where!r}: "
                         f"{[f.jump for f in fields]}")
    axes = range(len(fields[0].size))
    lows = [min(f.start[a] - (f.size[a] - 1) / 2 for f in fields) for a in axes]
    highs = [max(f.start[a] + (f.size[a] - 1) / 2 for f in fields) for a in axes]
    return ReceptiveField(tuple(round(h - lo) + 1 for lo, h in zip(lows, highs)), fields[0].jump,
                          tuple(float((lo + h) / 2) for lo, h in zip(lows, highs)))


def _tensor_refs(value):
    """``(layer name, input shape)`` of each tensor in a serialized call's arguments."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return [(value["config"]["keras_history"][0], tuple(value["config"]["shape"]))]
        return [ref for item in value.values() for ref in _tensor_refs(item)]
    if isinstance(value, (list, tuple)):
        return [ref for item in value for ref in _tensor_refs(item)]
    return []


def _graph(model):
    """``[(layer, [(parent layer name, input shape), ...])]`` in topological order.

    A Functional model's connections are read from its public config; the model's
    input is an ``InputLayer`` there, and ``None`` (named ``"input"``) in a Sequential.
    A layer called more than once (a GAN's discriminator scores two batches) gets the
    parents of its first call, the one cookbook.visualize's taps see.
    """
    if isinstance(model, keras.Sequential):
        graph, parent, shape = [(None, [])], "input", _shape(model.inputs[0])
        for layer in model.layers:
            if not isinstance(layer, keras.layers.InputLayer):
                graph.append((layer, [(parent, shape)]))
                parent, shape = layer.name, _shape(_first(layer.output))
        return graph
    config = model.get_config()
    if "layers" not in config:
        raise ValueError(f"receptive_field: model {model.name!r} is not functional or Sequential")
    graph = []
    for entry in config["layers"]:
        layer = model.get_layer(entry["name"])
        graph.append((layer, _tensor_refs(entry["inbound_nodes"][:1])))
    return graph


def _contains(model, layer) -> bool:
    return isinstance(model, keras.Model) and any(
        inner is layer or _contains(inner, layer) for inner in model.layers)


def _output_layer(model):
    if isinstance(model, keras.Sequential):
        return model.layers[-1]
    outputs = model.get_config()["output_layers"]
    return model.get_layer(outputs[0] if isinstance(outputs[0], str) else outputs[0][0])


_GLOBAL_POOLS = (keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D,
                 keras.layers.GlobalMaxPooling1D, keras.layers.GlobalMaxPooling2D)


def _layer_field(layer, parents, fields, rank, target):
    """A layer's field from its parents': a ReceptiveField, None where the output is no
    spatial map, or the ValueError to raise should a later layer need it."""
    out_shape = _shape(_first(layer.output))
    # Inputs without the output's spatial map (a squeeze-excite gate of shape (1, 1, C),
    # a vector) are broadcast over it: they add no spatial extent.
    spatial = [(name, shape) for name, shape in parents
               if len(shape) == len(out_shape) == rank
               and not (all(d == 1 for d in shape[1:-1]) and shape[1:-1] != out_shape[1:-1])]
    known = [fields[name] for name, _ in spatial]
    if isinstance(layer, _GLOBAL_POOLS) or not known or any(f is None for f in known):
        return None
    errors = [f for f in known if isinstance(f, Exception)]
    if errors:
        return errors[0]
    try:
        field = known[0] if len(known) == 1 else _merge(known, layer.name)
        if isinstance(layer, keras.Model):
            if len(layer.inputs) != 1:
                raise ValueError(f"receptive_field: nested model {layer.name!r} has several inputs")
            inner = _field_of(layer, target if _contains(layer, target) else _output_layer(layer))
            return _compose(field, list(zip(inner.size, inner.jump, inner.start)))
    except ValueError as error:
        return error
    kind = type(layer).__name__
    ops = _layer_ops(layer, spatial[0][1][1:-1])
    unknown_kernel = ops is None and (hasattr(layer, "kernel_size") or hasattr(layer, "pool_size"))
    if kind in _UNMODELLED or unknown_kernel or getattr(layer, "data_format", None) == "channels_first":
        return ValueError(f"receptive_field: layer {layer.name!r} ({kind}) is not modelled "
                          "(supported: convolutions, pooling, padding, cropping, channels last)")
    if ops is None and out_shape[1:-1] != spatial[0][1][1:-1]:
        return ValueError(f"receptive_field: layer {layer.name!r} ({kind}) changes the spatial size "
                          "in a way receptive_field does not model")
    return field if ops is None else _compose(field, ops)


def _field_of(model, target):
    """The field of ``target``'s output (in ``model`` or a nested model) in ``model``'s input pixels."""
    fields = _fields(model, target)
    if target.name not in fields:
        raise ValueError(f"receptive_field: layer {target.name!r} is not reached from {model.name!r}'s input")
    field = fields[target.name]
    if isinstance(field, Exception):
        raise field
    if field is None:
        raise ValueError(f"receptive_field: layer {target.name!r}'s output is not a spatial "
                         f"map of model {model.name!r}'s input")
    return field


def _fields(model, target=None) -> dict:
    """Layer name -> its field (ReceptiveField, None, or the error), in one pass over the
    graph; it stops at ``target`` (or the nested model holding it) when one is given."""
    n = len(model.inputs[0].shape) - 2
    fields = {}
    for layer, parents in _graph(model):
        if layer is None or isinstance(layer, keras.layers.InputLayer):
            fields["input" if layer is None else layer.name] = ReceptiveField((1,) * n, (1,) * n, (0.0,) * n)
            continue
        fields[layer.name] = _layer_field(layer, parents, fields, n + 2, target)
        if target is not None and (layer is target or _contains(layer, target)):
            fields[target.name] = fields.pop(layer.name)
            break
    return fields


def receptive_field(model, layer) -> ReceptiveField:
    """The receptive field of ``layer``'s output units, from the layer graph.

    Per spatial axis (1-D and 2-D models, channels last): the field's ``size`` in input
    pixels, its ``jump`` (the product of the strides: input pixels between neighbouring
    units) and its ``start`` (the input coordinate of the first unit's centre; negative
    where "same" padding adds pixels before the image), by the arithmetic of Araujo et
    al., "Computing receptive fields of convolutional neural networks", Distill 2019.
    Convolutions (any dilation, "valid", "same" and "causal" padding), pooling,
    ZeroPadding and Cropping change the field; layers that keep positions (BatchNorm,
    activations, 1x1 maps broadcast by a squeeze-excite gate) do not. Where paths
    meet (an Inception concatenation, a residual add) the field is the union of theirs.
    Nested models are walked into. Layers that mix every position (attention,
    recurrent layers) or resample (upsampling, transposed convs, reshapes) raise
    ValueError. A layer called more than once has the field of its first call.

    Args:
        model: a built functional or Sequential model with a ``keras.Input``.
        layer: a layer name or Layer of ``model`` or of a model nested in it.

    Returns:
        :class:`ReceptiveField` with ``size``, ``jump`` and ``start`` tuples (one entry per axis).
    """
    _check_model(model)
    if isinstance(layer, str):
        found = [inner for _, inner in _walk(model) if inner.name == layer]
        found += [inner for inner in _models(model) if inner.name == layer]
        if not found:
            raise ValueError(f"layer: no layer named {layer!r} in model {model.name!r}")
        layer = found[0]
    elif not isinstance(layer, keras.layers.Layer) or not _contains(model, layer):
        raise ValueError(f"layer must be a layer name or a Layer of model {model.name!r}, got {layer!r}")
    return _field_of(model, layer)


def _models(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield layer
            yield from _models(layer)
