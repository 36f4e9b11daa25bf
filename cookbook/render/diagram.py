"""Block-level diagrams: one box per stem, block, module or head, not one per layer.

A layer-level plot of a 90-layer MobileNet is 20 times taller than it is wide. Here the
layers are grouped into the blocks of the cost table (:func:`cookbook.cost.block_name`:
``conv3_block2_1_conv`` is in ``conv3_block2``, ``mixed5_3x3`` in ``mixed5``), so the
diagram and the table agree. Each box says what the block holds ("2 conv, 2 BN, add"),
the shape of the tensor leaving it and its parameter count. Arrows follow the layer
graph, one per path up to four: an Inception module fed by a pool gets four arrows from
it, a residual block two (its path and its shortcut); a shortcut with a layer of its own,
or a U-Net skip, is an arrow between the boxes it joins.

Long models are shortened: beyond ``max_nodes`` boxes, every run of blocks of one stage
with the same layers at the same map size (DenseNet's ``conv4_block1`` ... ``conv4_block24``,
Xception's middle flow) becomes one box, "conv4_block1 … conv4_block24 (×24)"; then the
blocks of a stage (``conv4``) merge; then neighbours. Long chains are laid out in columns
side by side, so that the picture stays about as wide as it is tall.

Only public Keras API: ``model.layers``, ``layer.output``, ``layer.count_params()`` and the
functional config (``model.get_config()``), which names each layer's inputs.
"""

from __future__ import annotations

import dataclasses
import html
import itertools
import math
import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import keras

from cookbook import cost, io

__all__ = ["BlockNode", "block_diagram_dot", "block_graph", "write_block_diagram"]


@dataclasses.dataclass(frozen=True)
class BlockNode:
    """One box of the diagram.

    ``name`` is the first block's name (a prefix of its layers' names) and the DOT node id;
    ``label`` is what the box shows; ``blocks`` are the cost-table blocks it holds (several
    once collapsed); ``kind`` is ``"input"``, ``"block"`` or ``"output"`` (holds a model
    output); ``output_shape`` is that of the tensor leaving it (batch dim None).
    """

    name: str
    label: str
    kind: str
    blocks: tuple
    layers: tuple
    ops: str
    output_shape: tuple
    params: int


# --- the layer graph ----------------------------------------------------------------------------


def _shape(tensor) -> tuple:
    return tuple(None if d is None else int(d) for d in tensor.shape)


def _out_shape(layer) -> tuple:
    return _shape(keras.tree.flatten(layer.output)[0])


def _tensor_parents(value) -> list:
    """Names of the layers whose tensors appear in a serialized call's arguments."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return [value["config"]["keras_history"][0]]
        return [name for item in value.values() for name in _tensor_parents(item)]
    if isinstance(value, (list, tuple)):
        return [name for item in value for name in _tensor_parents(item)]
    return []


def _first_names(refs) -> list:
    """Layer names of a config's ``input_layers`` / ``output_layers`` (one ref or a list)."""
    if refs and isinstance(refs[0], str):
        return [refs[0]]
    return [ref[0] for ref in refs]


def _layer_graph(model):
    """``(inputs, layers, parents, outputs)``: input name -> shape; the other layers in
    topological order; each layer's parent layer names (over all its calls); the names of
    the layers that give the model's outputs.

    Read from the public functional config; a Sequential model is a chain.
    """
    if isinstance(model, keras.Sequential):
        layers = [x for x in model.layers if not isinstance(x, keras.layers.InputLayer)]
        name = model.inputs[0].name
        name = "input" if re.fullmatch(r"keras_tensor(_\d+)?", name) else name
        chain = [name, *(layer.name for layer in layers)]
        parents = {b: [a] for a, b in itertools.pairwise(chain)}
        return {name: _shape(model.inputs[0])}, layers, parents, [chain[-1]]
    config = model.get_config()
    known = {layer.name: layer for layer in model.layers}
    inputs, layers, parents, through = {}, [], {}, {}
    for entry in config["layers"]:
        refs = [q for p in _tensor_parents(entry["inbound_nodes"]) for q in through.get(p, [p])]
        refs = list(dict.fromkeys(refs))
        layer = known.get(entry["name"])
        if layer is None:  # a keras.ops call: no weights, no box; its inputs pass through
            through[entry["name"]] = refs
        elif isinstance(layer, keras.layers.InputLayer):
            inputs[layer.name] = _out_shape(layer)
        else:
            layers.append(layer)
            parents[layer.name] = refs
    outputs = [q for p in _first_names(config["output_layers"]) for q in through.get(p, [p])]
    return inputs, layers, parents, outputs


def _groups(layers) -> dict:
    """Block name -> its layers, in order of first appearance, by the rule of the cost
    table (:func:`cookbook.cost.layer_costs`); a nested model is one layer here."""
    firsts = Counter(layer.name.split("_", 1)[0] for layer in layers)
    shared = frozenset(word for word, count in firsts.items() if count > 1)
    groups: dict[str, list] = {}
    for layer in layers:
        if isinstance(layer, keras.Model) or cost._auto_named(layer):
            block = layer.name
        else:
            block = cost.block_name(layer.name, shared)
        groups.setdefault(block, []).append(layer)
    return groups


# --- labels -------------------------------------------------------------------------------------

_SHORT = [  # (class name pattern, short name); the first match wins
    (r"SeparableConv\dD", "sep conv"), (r"DepthwiseConv\dD", "dw conv"),
    (r"Conv\dDTranspose", "tconv"), (r"Conv\dD", "conv"), (r"BatchNormalization", "BN"),
    (r"LayerNormalization", "LN"), (r"GroupNormalization", "GN"), (r"(Einsum)?Dense", "dense"),
    (r"MaxPooling\dD", "max pool"), (r"AveragePooling\dD", "avg pool"),
    (r"GlobalAveragePooling\dD", "global avg pool"), (r"GlobalMaxPooling\dD", "global max pool"),
    (r"Concatenate", "concat"), (r"UpSampling\dD", "upsample"),
    (r"(Spatial)?Dropout(\dD)?", "dropout"), (r"ZeroPadding\dD", "pad"), (r"ReLU", "relu"),
]
# Shown only when a block holds nothing else.
_MINOR = {"relu", "pad", "dropout", "activation", "leakyrelu", "prelu", "elu", "softmax",
          "sigmoid", "swish", "silu", "gelu", "tanh", "linear"}
# The order of a summary; ops not listed go just before the merges.
_ORDER = ["sep conv", "dw conv", "conv", "tconv", "dense", "BN", "LN", "GN", "max pool",
          "avg pool", "upsample", "concat", "add"]


def _short(layer) -> str:
    if isinstance(layer, keras.Model):
        return "model"
    kind = type(layer).__name__
    if kind == "Activation":
        return getattr(layer.activation, "__name__", "activation")
    for pattern, short in _SHORT:
        if re.fullmatch(pattern, kind):
            return short
    return kind.lower()


def _ops(layers) -> str:
    """A short summary of the layer types: "2 sep conv, conv, 2 BN, max pool, add"."""
    counts = Counter(_short(layer) for layer in layers)
    major = {op: n for op, n in counts.items() if op not in _MINOR} or counts
    rank = {op: i for i, op in enumerate(_ORDER)}
    ops = sorted(major, key=lambda op: rank.get(op, rank["concat"] - 0.5))
    items = [op if major[op] == 1 else f"{major[op]} {op}" for op in ops]
    return ", ".join(items[:5]) + (", …" if len(items) > 5 else "")


def _format_shape(shape) -> str:
    return "×".join("?" if d is None else str(d) for d in shape[1:]) or "scalar"


def _format_count(count: int) -> str:
    for unit, size in (("M", 1e6), ("K", 1e3)):
        if count >= size:
            value = count / size
            return f"{value:.3g}{unit}" if value < 100 else f"{value:.0f}{unit}"
    return str(count)


# --- the block graph ----------------------------------------------------------------------------


@dataclasses.dataclass
class _Group:
    name: str
    kind: str
    blocks: list
    layers: list
    exit_shape: tuple
    signature: tuple = ()  # layer types and map size; () once different blocks are merged
    stage: str | None = None


_STAGE = re.compile(r"^(.+?)(?:_block\d+[a-z]?|(?<=\d)[a-z])$")  # conv4_block3, inception_4a


def _merge(groups, start, stop) -> _Group:
    run = groups[start:stop]
    return _Group(
        run[0].name, "block", [b for g in run for b in g.blocks],
        [x for g in run for x in g.layers], run[-1].exit_shape,
        signature=run[0].signature if len({g.signature for g in run}) == 1 else (),
        stage=run[0].stage if len({g.stage for g in run}) == 1 else None,
    )


def _links(groups, block_links) -> Counter:
    """``{(from group, to group): number of layer-to-layer links}``, in order of first link."""
    owner = {block: g.name for g in groups for block in g.blocks}
    return Counter((owner[a], owner[b]) for a, b in block_links if owner[a] != owner[b])


def _runs(groups, block_links) -> list:
    """``(start, stop)`` of each run of ≥ 2 neighbouring blocks of one stage with the same
    layers at the same map size (the channels may grow, as in a dense block), each fed by
    the one before."""
    linked = set(_links(groups, block_links))
    runs, start = [], 0
    for i in range(1, len(groups) + 1):
        same = (i < len(groups) and groups[i].kind == groups[start].kind == "block"
                and groups[i].signature == groups[i - 1].signature
                and groups[i].stage == groups[i - 1].stage
                and (groups[i - 1].name, groups[i].name) in linked)
        if not same:
            if i - start > 1:
                runs.append((start, i))
            start = i
    return runs


def _shrink(groups, block_links, max_nodes) -> list:
    """Merge groups until at most ``max_nodes`` remain: every run of identical blocks (all
    of them, so that like stages read alike); then the blocks of a stage; then the pair of
    neighbouring blocks with the fewest layers. Inputs and outputs stay."""
    if len(groups) > max_nodes:
        for start, stop in reversed(_runs(groups, block_links)):
            groups[start:stop] = [_merge(groups, start, stop)]
    i = 0
    while len(groups) > max_nodes and i < len(groups):
        stop = i + 1
        while (stop < len(groups) and groups[i].kind == groups[stop].kind == "block"
               and groups[i].stage is not None and groups[stop].stage == groups[i].stage):
            stop += 1
        if stop - i > 1:
            groups[i:stop] = [_merge(groups, i, stop)]
        i += 1
    while len(groups) > max_nodes:
        pairs = [i for i in range(len(groups) - 1)
                 if groups[i].kind == groups[i + 1].kind == "block"]
        if not pairs:
            break
        i = min(pairs, key=lambda i: len(groups[i].layers) + len(groups[i + 1].layers))
        groups[i:i + 2] = [_merge(groups, i, i + 2)]
    return groups


def _node(group, layer_by_name) -> BlockNode:
    members = [layer_by_name[name] for name in group.layers]
    if group.kind == "input":
        ops = "input"
    elif len(group.blocks) > 1 and group.signature:  # identical blocks: what each one holds
        ops = "each " + _ops(members[: len(members) // len(group.blocks)])
    else:
        ops = _ops(members)
    label = group.blocks[0]
    if len(group.blocks) > 1:
        label = f"{group.blocks[0]} … {group.blocks[-1]} (×{len(group.blocks)})"
    return BlockNode(group.name, label, group.kind, tuple(group.blocks), tuple(group.layers), ops,
                     group.exit_shape, sum(int(x.count_params()) for x in members))


def _block_graph(model, max_nodes):
    """``(nodes, links)``: :func:`block_graph`'s nodes, and ``{(from, to): number of
    layer-to-layer links}`` (a residual block fed by one block has two: path and shortcut)."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    if not model.built or not getattr(model, "inputs", None):
        raise ValueError("model must be a built functional or Sequential model with a keras.Input")
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
        raise ValueError(f"max_nodes must be a positive int, got {max_nodes!r}")
    inputs, layers, parents, outputs = _layer_graph(model)
    by_block = _groups(layers)
    block_of = {name: name for name in inputs}
    block_of.update({x.name: block for block, members in by_block.items() for x in members})
    crossing = [(p, x.name) for x in layers for p in parents[x.name]
                if block_of[p] != block_of[x.name]]
    block_links = [(block_of[p], block_of[x]) for p, x in crossing]  # one per layer-to-layer link
    leaving = {p for p, _ in crossing}
    groups = [_Group(name, "input", [name], [], shape) for name, shape in inputs.items()]
    for block, members in by_block.items():
        outs = [x for x in members if x.name in outputs]
        exit_shape = _out_shape((outs or [x for x in members if x.name in leaving] or members)[-1])
        stage = _STAGE.match(block)
        groups.append(_Group(
            block, "output" if outs else "block", [block], [x.name for x in members], exit_shape,
            signature=(tuple(type(x).__name__ for x in members), exit_shape[1:-1]),
            stage=stage.group(1) if stage else None,
        ))
    groups = _shrink(groups, block_links, max_nodes)
    layer_by_name = {layer.name: layer for layer in layers}
    return [_node(g, layer_by_name) for g in groups], _links(groups, block_links)


def block_graph(model, max_nodes: int = 40) -> tuple[list[BlockNode], list[tuple[str, str]]]:
    """The block-level graph of ``model``: ``(nodes, edges)``.

    ``nodes`` are :class:`BlockNode` in topological order: one per model input, then one
    per block of the cost table (:func:`cookbook.cost.block_costs`; a layer that Keras named
    itself stands alone); the blocks holding a model output are ``kind="output"``. Past
    ``max_nodes`` nodes, blocks are merged (see the module docstring). ``edges`` are
    ``(from name, to name)`` pairs, one per pair of nodes that some layer connects.
    """
    nodes, links = _block_graph(model, max_nodes)
    return nodes, list(links)


# --- drawing ------------------------------------------------------------------------------------

_FONT = "Helvetica"
_STYLE = {  # kind -> node attributes
    "input": 'shape=box, style="rounded", color="#777777", fontsize=12, margin="0.1,0.03"',
    "block": 'shape=box, style="rounded,filled", color="#4a6fa5", fillcolor="#eaf1fb"',
    "output": 'shape=box, style="rounded,filled", color="#b36b1f", fillcolor="#fcefdf"',
}
_ROW_IN = 0.95  # height of one rank (box and gap) in inches, for the column layout
_CHAR_IN = 13 * 0.55 / 72  # width of one character at 13 pt


def _quote(text) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _html(text) -> str:
    return html.escape(str(text), quote=False)


def _node_label(node) -> str:
    """An HTML-like label: a one-column table, so that the lines do not touch (a bold
    name's underscores would sit on the next line's digits)."""
    rows = [f"<b>{_html(node.label)}</b>"]
    if node.kind == "input":
        rows.append(_html(_format_shape(node.output_shape)))
    else:
        detail = f"{_format_shape(node.output_shape)} · {_format_count(node.params)} params"
        rows += [f'<font point-size="12">{_html(node.ops)}</font>',
                 f'<font point-size="12" color="#444444">{_html(detail)}</font>']
    cells = "".join(f"<tr><td>{row}</td></tr>" for row in rows)
    return f'<<table border="0" cellborder="0" cellspacing="0" cellpadding="1">{cells}</table>>'


def _columns(nodes, links) -> list[list[str]]:
    """Split the topological order into columns (at most 4), so that the drawing is at most
    about 3 times as tall as it is wide; each cut goes near the even split, where the fewest
    layer-to-layer links cross it."""
    names = [node.name for node in nodes]
    width = max(len(text) for node in nodes for text in (node.label, node.ops)) * _CHAR_IN + 0.6
    count = 1
    while math.ceil(len(names) / count) * _ROW_IN > 3 * count * width and count < 4:
        count += 1
    index = {name: i for i, name in enumerate(names)}
    crossing = [sum(n for (a, b), n in links.items() if index[a] < k <= index[b])
                for k in range(len(names) + 1)]
    cuts, rows = [0], len(names) / count
    for c in range(1, count):
        target = round(c * rows)
        near = [k for k in range(target - 2, target + 3) if cuts[-1] < k < len(names)]
        if near:
            cuts.append(min(near, key=lambda k: (crossing[k], abs(k - target))))
    cuts.append(len(names))
    return [names[a:b] for a, b in itertools.pairwise(cuts) if b > a]


def block_diagram_dot(model, title: str | None = None, max_nodes: int = 40) -> str:
    """Graphviz DOT text of :func:`block_graph`: top to bottom, one rounded box per node
    (its name in bold; its layer types; its output shape and parameters), long chains in
    columns side by side."""
    nodes, links = _block_graph(model, max_nodes)
    columns = _columns(nodes, links)
    column_of = {name: c for c, names in enumerate(columns) for name in names}
    label = f", label=<<b>{_html(title)}</b>>" if title else ""
    lines = [
        f"digraph {_quote(model.name)} {{",
        ("  graph [rankdir=TB, splines=spline, nodesep=0.3, ranksep=0.3, pad=0.15, "
         f'fontname="{_FONT}", fontsize=16, labelloc=t{label}];'),
        f'  node [fontname="{_FONT}", fontsize=13, margin="0.14,0.05", penwidth=1.2];',
        '  edge [color="#666666", arrowsize=0.7, penwidth=1.1];',
    ]
    lines += [f"  {_quote(n.name)} [{_STYLE[n.kind]}, label={_node_label(n)}];" for n in nodes]
    for (a, b), count in links.items():
        # One arrow per path, up to 4 (an Inception module's branches, a residual
        # shortcut); one from a column to the next.
        if column_of[a] == column_of[b]:
            lines += [f"  {_quote(a)} -> {_quote(b)};"] * min(count, 4)
        else:
            lines.append(f"  {_quote(a)} -> {_quote(b)} [constraint=false];")
    if len(columns) > 1:  # the columns side by side, left to right, each from the top
        tops = " -> ".join(_quote(names[0]) for names in columns)
        lines.append(f"  {{ rank=same; {tops} [style=invis, weight=0]; }}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_block_diagram(model, path, title: str | None = None, max_nodes: int = 40) -> Path:
    """Draw :func:`block_diagram_dot` with graphviz's ``dot`` to ``path``, atomically.

    The format follows the suffix: ``.svg`` (for the docs: crisp at any width), ``.png``
    or ``.pdf``. Raises RuntimeError when graphviz is not installed or ``dot`` fails.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in ("svg", "png", "pdf"):
        raise ValueError(f"path must end in .svg, .png or .pdf, got {str(path)!r}")
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError("graphviz is not installed (no `dot` executable on PATH); install "
                           "it (apt-get install graphviz, brew install graphviz) to draw block "
                           "diagrams")
    text = block_diagram_dot(model, title=title, max_nodes=max_nodes)
    with io.atomic_path(path) as tmp:
        try:
            done = subprocess.run([dot, f"-T{fmt}", "-o", os.fspath(tmp)], input=text.encode(),
                                  capture_output=True, timeout=300, check=False)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"dot took over 300 s on the diagram of {model.name!r}") from None
        if done.returncode != 0:
            error = done.stderr.decode(errors="replace").strip()[:300]
            raise RuntimeError(f"dot failed on the diagram of {model.name!r}: {error}")
    return path
