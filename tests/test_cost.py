"""cookbook.cost against published figures and the course notes' cost claims.

The claims are computed from the recipe blocks themselves: a 5x5 conv costs 25/9 of a
3x3; 1x3 then 3x1 costs 2/3 of a 3x3; two 3x3 cost 18/25 of a 5x5; a 5x5 conv from
28x28x192 to 32 channels costs 120.4 M MACs, and 2.4 M + 10.0 M = 12.4 M with a 1x1
reduction to 16 first. Whole-model totals are held against the papers' multiply-adds.
"""

import keras
import pytest

from cookbook import cost
from recipes import inception_v1 as v1
from recipes import inception_v3 as v3
from recipes import residual


def _probe(block, input_shape, *args, **kwargs):
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, block(inputs, *args, name="probe", **kwargs))


def _macs(model):
    return {record.name: record.macs for record in cost.layer_costs(model)}


# --- the course notes' claims, from the recipes' own blocks ---------------------------------


def test_5x5_costs_25_over_9_of_a_3x3():
    macs = _macs(_probe(v1.naive_inception_module, (28, 28, 64), 16, 32, 32))
    assert macs["probe_5x5"] / macs["probe_3x3"] == pytest.approx(25 / 9)


def test_1x3_then_3x1_costs_2_3_of_a_3x3():
    """Figure 6 with n = 3 and equal channels; n = 7 (the 17x17 grid) costs 14/49."""
    c = 32
    for n, ratio in ((3, 2 / 3), (7, 2 / 7)):
        keras.backend.clear_session()
        macs = _macs(_probe(v3.inception_b, (17, 17, c), c, c, c, c, n=n))
        inputs = keras.Input((17, 17, c))
        full = _macs(keras.Model(inputs, keras.layers.Conv2D(c, n, padding="same", name="full")(inputs)))
        factorized = macs["probe_7x7_1xn"] + macs["probe_7x7_nx1"]
        assert factorized / full["full"] == pytest.approx(ratio)


def test_two_3x3_cost_18_over_25_of_a_5x5():
    """Figure 5 with equal channels: the double-3x3 branch against the 5x5 branch."""
    macs = _macs(_probe(v3.inception_a, (35, 35, 48), 16, 48, 48, 48, 48, 16))
    assert (macs["probe_3x3dbl_1"] + macs["probe_3x3dbl_2"]) / macs["probe_5x5"] == pytest.approx(18 / 25)


def test_1x1_reduction_cuts_the_5x5_from_120_4_to_12_4_million():
    naive = _macs(_probe(v1.naive_inception_module, (28, 28, 192), 64, 128, 32))
    assert round(naive["probe_5x5"] / 1e6, 1) == 120.4
    keras.backend.clear_session()
    reduced = _macs(_probe(v1.inception_module, (28, 28, 192), *v1.TABLE1["3a"]))
    assert round(reduced["probe_5x5_reduce"] / 1e6, 1) == 2.4
    assert round(reduced["probe_5x5"] / 1e6, 1) == 10.0
    assert round((reduced["probe_5x5_reduce"] + reduced["probe_5x5"]) / 1e6, 1) == 12.4


# --- published whole-model figures ------------------------------------------------------------


@pytest.mark.parametrize("name, published_macs, tolerance", [
    ("MobileNet", 569e6, 0.005),  # Howard et al. 2017, Table 8: 569 M mult-adds
    ("MobileNetV2", 300e6, 0.01),  # Sandler et al. 2018: 300 M multiply-adds
])
def test_model_totals_match_papers(name, published_macs, tolerance):
    model = getattr(keras.applications, name)(weights=None)
    records = cost.layer_costs(model)
    assert sum(r.params for r in records) == model.count_params()
    assert sum(r.macs for r in records) == pytest.approx(published_macs, rel=tolerance)
    assert sum(b.params for b in cost.block_costs(model)) == model.count_params()


# --- every layer kind, by identities that do not depend on this module's formula ------------


def _single(layer, input_shape):
    inputs = keras.Input(input_shape)
    model = keras.Model(inputs, layer(inputs))
    (record,) = cost.layer_costs(model)
    return record


def test_layer_kinds_obey_cost_identities():
    full = _single(keras.layers.Conv2D(16, 3, padding="same"), (8, 8, 8)).macs
    assert full == 8 * 8 * 16 * 3 * 3 * 8
    # A grouped conv is g independent convs on C/g channels.
    assert _single(keras.layers.Conv2D(16, 3, padding="same", groups=4), (8, 8, 8)).macs == full // 4
    # Depthwise = a grouped conv with one group per channel; separable = depthwise + 1x1.
    depthwise = _single(keras.layers.DepthwiseConv2D(3, padding="same"), (8, 8, 8)).macs
    assert depthwise == _single(keras.layers.Conv2D(8, 3, padding="same", groups=8), (8, 8, 8)).macs
    pointwise = _single(keras.layers.Conv2D(16, 1), (8, 8, 8)).macs
    assert _single(keras.layers.SeparableConv2D(16, 3, padding="same"), (8, 8, 8)).macs == depthwise + pointwise
    # A transposed conv costs what the strided conv it inverts costs.
    up = _single(keras.layers.Conv2DTranspose(8, 3, strides=2, padding="same"), (8, 8, 16))
    assert up.output_shape == (None, 16, 16, 8)
    assert up.macs == _single(keras.layers.Conv2D(16, 3, strides=2, padding="same"), (16, 16, 8)).macs
    # Conv1D is a Conv2D with a 1-pixel-high kernel; Dense on a sequence is a 1x1 Conv1D.
    assert _single(keras.layers.Conv1D(16, 5, padding="same"), (50, 8)).macs == \
        _single(keras.layers.Conv2D(16, (1, 5), padding="same"), (1, 50, 8)).macs
    assert _single(keras.layers.Dense(16), (50, 8)).macs == _single(keras.layers.Conv1D(16, 1), (50, 8)).macs
    # BatchNorm: gamma, beta, moving mean and variance; no MACs.
    bn = _single(keras.layers.BatchNormalization(), (8, 8, 8))
    assert (bn.params, bn.macs, bn.type) == (32, 0, "BatchNormalization")


def test_nested_models_are_walked():
    inner = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="c")], name="inner")
    inputs = keras.Input((8, 8, 3))
    outer = keras.Model(inputs, keras.layers.Dense(2, name="head")(inner(inputs)))
    records = cost.layer_costs(outer)
    assert [r.name for r in records] == ["inner/c", "head"]
    assert sum(r.params for r in records) == outer.count_params()


# --- blocks and the table -----------------------------------------------------------------------


def test_blocks_follow_the_recipes_names():
    assert cost.block_name("conv3_block2_1_conv") == "conv3_block2"
    assert cost.block_name("inception_3a_5x5_reduce") == "inception_3a"
    assert cost.block_name("mixed9_3x3dbl_1x3_bn") == "mixed9"
    assert cost.block_name("block14_sepconv1_bn") == "block14"
    googlenet = {b.name for b in cost.block_costs(v1.googlenet(input_shape=(64, 64, 1), width=0.25))}
    assert {f"inception_{m}" for m in v1.TABLE1} | {"conv1", "conv2", "predictions"} <= googlenet
    model = v3.inception_v3(input_shape=(75, 75, 3), width=0.25)
    blocks = cost.block_costs(model)
    assert [b.name for b in blocks if b.name.startswith("mixed")] == [f"mixed{i}" for i in range(11)]
    assert sum(b.params for b in blocks) == model.count_params()
    resnet = {b.name for b in cost.block_costs(residual.resnet18(input_shape=(32, 32, 3), width=8))}
    assert {"conv1", "conv2_block1", "conv5_block2", "predictions"} <= resnet


def test_format_cost_tables_have_totals():
    model = v1.googlenet(input_shape=(64, 64, 1), classes=10, width=0.25)
    total = f"{model.count_params():,}"
    text = cost.format_cost(model)
    assert "inception_3a_5x5" in text and text.splitlines()[-1].startswith("total")
    assert total in text.splitlines()[-1]
    by_block = cost.format_cost(model, by="block", markdown=True)
    lines = by_block.splitlines()
    assert lines[0].startswith("| block") and lines[1].startswith("|")
    assert any(line.startswith("| inception_4d |") for line in lines)
    assert "**total**" in lines[-1] and f"**{total}**" in lines[-1]


def test_bad_arguments_name_the_argument():
    model = v1.googlenet(input_shape=(32, 32, 3), width=0.25)
    with pytest.raises(TypeError, match="model"):
        cost.layer_costs("googlenet")
    with pytest.raises(ValueError, match="by"):
        cost.format_cost(model, by="stage")
    with pytest.raises(TypeError, match="markdown"):
        cost.format_cost(model, markdown="yes")
    with pytest.raises(TypeError, match="group"):
        cost.block_costs(model, group="prefix")
