"""The block-level diagram: one node per block, edges from the layer graph, and a DOT
text that graphviz draws at a readable size."""

import re
import shutil
import subprocess

import keras
import pytest

from cookbook import cost, registry
from cookbook.render import diagram
from recipe_fixtures import SMALL

HAVE_DOT = shutil.which("dot") is not None
# The default builds are full size (seconds each): under `heavy`, so the default suite stays
# under 10 minutes; the demo builds check every recipe's diagram there.
CASES = [pytest.param(recipe.name, which, marks=[pytest.mark.heavy] if which == "default" else [])
         for recipe in registry.all_recipes() for which in ("demo", "default")]


def _build(name, which):
    recipe = registry.get(name)
    if which == "demo":
        return recipe.build_demo()
    builder = recipe.default_builder
    return recipe.builder(builder)(**SMALL[name][builder])


def _svg_size(svg: str):
    width, height = re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups()
    return float(width), float(height)


def _render(dot_text: str) -> str:
    done = subprocess.run(["dot", "-Tsvg"], input=dot_text, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("name,which", CASES)
def test_recipe_block_graph(name, which):
    model = _build(name, which)
    nodes, edges = diagram.block_graph(model)
    assert 3 <= len(nodes) <= 40
    names = [node.name for node in nodes]
    assert len(set(names)) == len(names)
    layer_names = [layer.name for layer in model.layers]
    for node in nodes:  # every node is named by a real layer-name prefix
        for block in (node.name, *node.blocks):
            assert any(x == block or x.startswith(block + "_") for x in layer_names), block
    # Every layer is in exactly one node, and the grouping is the cost table's.
    inner = [layer for node in nodes for layer in node.layers]
    assert sorted(inner) == sorted(n for n in layer_names
                                   if not isinstance(model.get_layer(n), keras.layers.InputLayer))
    blocks = [block for node in nodes if node.kind != "input" for block in node.blocks]
    assert blocks == [b.name for b in cost.block_costs(model)]
    assert sum(node.params for node in nodes) == model.count_params()
    outputs = [node for node in nodes if node.kind == "output"]
    # One node per layer that gives an output (a DCGAN's one D layer gives both of its outputs).
    output_layers = {ref[0]: shape for ref, shape in zip(model.get_config()["output_layers"],
                                                         [tuple(o.shape) for o in model.outputs])}
    assert [node.output_shape for node in outputs] == list(output_layers.values())
    assert [node.kind for node in nodes].count("input") == len(model.inputs)
    # Edges join known nodes, once each, never a node to itself; every block is reached.
    assert len(set(edges)) == len(edges)
    assert all(a in names and b in names and a != b for a, b in edges)
    assert {b for _, b in edges} == {node.name for node in nodes if node.kind != "input"}

    text = diagram.block_diagram_dot(model, title=f"{name} ({which})")
    assert "ortho" not in text
    sizes = [int(size) for size in re.findall(r"(?:fontsize|point-size)=\"?(\d+)", text)]
    assert sizes and min(sizes) >= 12
    if HAVE_DOT:
        width, height = _svg_size(_render(text))
        # Readable on a page ~800 px wide: not too wide to shrink, not a ribbon.
        assert width <= 900 and height <= 4 * width, (width, height)


def _residual_model():
    """A stem, an identity residual block, a block with its projection shortcut in a
    layer of its own (``proj``), and a head."""
    layers = keras.layers
    inputs = keras.Input((8, 8, 3), name="image")
    x = layers.Conv2D(4, 3, padding="same", name="stem_conv")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    y = layers.Conv2D(4, 3, padding="same", name="conv2_block1_1_conv")(x)
    y = layers.BatchNormalization(name="conv2_block1_1_bn")(y)
    y = layers.ReLU(name="conv2_block1_1_relu")(y)
    y = layers.Conv2D(4, 3, padding="same", name="conv2_block1_2_conv")(y)
    y = layers.BatchNormalization(name="conv2_block1_2_bn")(y)
    x = layers.Add(name="conv2_block1_add")([x, y])
    x = layers.ReLU(name="conv2_block1_out")(x)
    y = layers.Conv2D(8, 3, strides=2, padding="same", name="conv3_block1_1_conv")(x)
    shortcut = layers.Conv2D(8, 1, strides=2, name="proj")(x)
    x = layers.Add(name="conv3_block1_add")([shortcut, y])
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(5, name="predictions")(x)
    return keras.Model(inputs, outputs, name="tiny_resnet")


def test_residual_block_graph_exact():
    model = _residual_model()
    nodes, edges = diagram.block_graph(model)

    def params(*names):
        return sum(model.get_layer(n).count_params() for n in names)

    assert [(n.name, n.kind, n.ops, n.output_shape, n.params) for n in nodes] == [
        ("image", "input", "input", (None, 8, 8, 3), 0),
        ("stem", "block", "conv, BN", (None, 8, 8, 4), params("stem_conv", "stem_bn")),
        ("conv2_block1", "block", "2 conv, 2 BN, add", (None, 8, 8, 4),
         params("conv2_block1_1_conv", "conv2_block1_1_bn", "conv2_block1_2_conv",
                "conv2_block1_2_bn")),
        ("proj", "block", "conv", (None, 4, 4, 8), params("proj")),
        ("conv3_block1", "block", "conv, add", (None, 4, 4, 8), params("conv3_block1_1_conv")),
        ("avg_pool", "block", "global avg pool", (None, 8), 0),
        ("predictions", "output", "dense", (None, 5), params("predictions")),
    ]
    assert nodes[1].layers == ("stem_conv", "stem_bn", "stem_relu")
    assert edges == [
        ("image", "stem"), ("stem", "conv2_block1"), ("conv2_block1", "proj"),
        ("conv2_block1", "conv3_block1"), ("proj", "conv3_block1"), ("conv3_block1", "avg_pool"),
        ("avg_pool", "predictions"),
    ]
    # The identity shortcut is a second link stem -> conv2_block1: the DOT draws two arrows.
    _, links = diagram._block_graph(model, 40)
    assert links[("stem", "conv2_block1")] == 2 and links[("conv2_block1", "proj")] == 1
    text = diagram.block_diagram_dot(model)
    assert text.count('"stem" -> "conv2_block1"') == 2
    assert text.count('"conv2_block1" -> "proj"') == 1


def _chain_model(stages):
    """``stages``: {stage: [channels per block]}; a block is conv, BN, ReLU."""
    inputs = keras.Input((8, 8, 1), name="input")
    x = inputs
    for stage, widths in stages.items():
        for i, width in enumerate(widths, 1):
            x = keras.layers.Conv2D(width, 3, padding="same", name=f"{stage}_block{i}_conv")(x)
            x = keras.layers.BatchNormalization(name=f"{stage}_block{i}_bn")(x)
            x = keras.layers.ReLU(name=f"{stage}_block{i}_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="predictions")(x))


def test_identical_blocks_collapse_past_max_nodes():
    model = _chain_model({"conv2": [4, 8], "conv3": [8] * 10})
    nodes, _ = diagram.block_graph(model)
    assert len(nodes) == 15  # no collapse below max_nodes
    nodes, edges = diagram.block_graph(model, max_nodes=10)
    labels = [node.label for node in nodes]
    # A run keeps to its stage; conv2's blocks have the same layers at the same map size
    # (the channels may differ, as in a dense block), so they form a run of their own.
    assert labels == ["input", "conv2_block1 … conv2_block2 (×2)",
                      "conv3_block1 … conv3_block10 (×10)", "avg_pool", "predictions"]
    assert nodes[2].blocks == tuple(f"conv3_block{i}" for i in range(1, 11))
    assert nodes[2].ops == "each conv, BN" and nodes[2].output_shape == (None, 8, 8, 8)
    assert edges == [("input", "conv2_block1"), ("conv2_block1", "conv3_block1"),
                     ("conv3_block1", "avg_pool"), ("avg_pool", "predictions")]
    assert sum(node.params for node in nodes) == model.count_params()


def test_stage_merge_and_hard_limit():
    model = _residual_model()
    nodes, edges = diagram.block_graph(model, max_nodes=4)
    assert len(nodes) == 4 and nodes[0].kind == "input" and nodes[-1].kind == "output"
    assert sum(node.params for node in nodes) == model.count_params()
    assert [b for node in nodes for b in node.blocks] == [
        "image", "stem", "conv2_block1", "proj", "conv3_block1", "avg_pool", "predictions"]
    assert all(a != b for a, b in edges)
    # Different layers in each block: no run to collapse, so the blocks of a stage merge.
    layers = keras.layers
    inputs = keras.Input((8, 8, 1), name="input")
    x = inputs
    for i in range(1, 7):
        x = layers.Conv2D(4, 3, padding="same", name=f"conv2_block{i}_conv")(x)
        if i % 2:
            x = layers.BatchNormalization(name=f"conv2_block{i}_bn")(x)
    x = layers.Flatten(name="flatten")(x)
    model = keras.Model(inputs, layers.Dense(2, name="predictions")(x))
    nodes, _ = diagram.block_graph(model, max_nodes=5)
    assert [node.label for node in nodes] == [
        "input", "conv2_block1 … conv2_block6 (×6)", "flatten", "predictions"]
    assert nodes[1].ops == "6 conv, 3 BN"


def test_sequential_and_keras_ops_models():
    model = keras.Sequential([
        keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="conv1"),
        keras.layers.Flatten(name="flatten"), keras.layers.Dense(2, name="predictions"),
    ])
    nodes, edges = diagram.block_graph(model)
    assert [node.name for node in nodes] == ["input", "conv1", "flatten", "predictions"]
    assert edges == [("input", "conv1"), ("conv1", "flatten"), ("flatten", "predictions")]
    # A keras.ops call has no box: its inputs connect straight to its consumers.
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    dense = keras.layers.Dense(4, name="fc1")
    summed = keras.ops.add(dense(a), dense(b))
    model = keras.Model([a, b], keras.layers.Dense(3, name="predictions")(summed))
    nodes, edges = diagram.block_graph(model)
    assert [node.name for node in nodes] == ["a", "b", "fc1", "predictions"]
    assert edges == [("a", "fc1"), ("b", "fc1"), ("fc1", "predictions")]


def test_bad_arguments():
    with pytest.raises(TypeError, match="keras.Model"):
        diagram.block_graph("resnet")
    with pytest.raises(ValueError, match="max_nodes"):
        diagram.block_graph(_residual_model(), max_nodes=0)
    with pytest.raises(ValueError, match=r"\.svg"):
        diagram.write_block_diagram(_residual_model(), "diagram.gif")


def test_dot_escapes_and_layout_columns():
    model = _chain_model({"conv2": [4, 8, 16, 32, 64, 4, 8, 16, 32, 64, 4, 8]})
    text = diagram.block_diagram_dot(model, title='a <b> & "c"')
    assert "a &lt;b&gt; &amp; \"c\"" in text and "rankdir=TB" in text
    assert "rank=same" in text  # 15 nodes: more than one column
    if HAVE_DOT:
        width, height = _svg_size(_render(text))
        assert height <= 2 * width


@pytest.mark.skipif(not HAVE_DOT, reason="graphviz is not installed")
def test_write_block_diagram_is_atomic_svg(tmp_path):
    path = diagram.write_block_diagram(_residual_model(), tmp_path / "diagram.svg", title="tiny")
    assert path == tmp_path / "diagram.svg"
    svg = path.read_text(encoding="utf-8")
    assert "<svg" in svg and "conv2_block1" in svg
    assert [p.name for p in tmp_path.iterdir()] == ["diagram.svg"]  # no temp file left


def test_write_block_diagram_without_graphviz(tmp_path, monkeypatch):
    monkeypatch.setattr(diagram.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="graphviz is not installed"):
        diagram.write_block_diagram(_residual_model(), tmp_path / "diagram.svg")
    assert list(tmp_path.iterdir()) == []
