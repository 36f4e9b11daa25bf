"""cookbook.cost against published figures and the course notes' cost claims.

The claims are computed from the recipe blocks themselves: a 5x5 conv costs 25/9 of a
3x3; 1x3 then 3x1 costs 2/3 of a 3x3; two 3x3 cost 18/25 of a 5x5; a 5x5 conv from
28x28x192 to 32 channels costs 120.4 M MACs, and 2.4 M + 10.0 M = 12.4 M with a 1x1
reduction to 16 first. Whole-model totals are held against the papers' multiply-adds.
"""

import keras
import numpy as np
import pytest
from conftest import input_gradient

from cookbook import cost
from cookbook.recipes import bagnet, residual, vgg
from cookbook.recipes import inception_v1 as v1
from cookbook.recipes import inception_v3 as v3


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
    resnet = {b.name for b in cost.block_costs(residual.resnet18(input_shape=(32, 32, 3), width=0.125))}
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


def test_block_table_gives_each_stage_its_receptive_field():
    """VGG-16's stages end in fields of 6, 16, 44, 100 and 212 pixels (212: Araujo et al.,
    Distill 2019); the dense head and a 1-D model's stages read as such."""
    rows = {line.split()[0]: line.split()[-1] for line in
            cost.format_cost(vgg.vgg16(weights=None), by="block").splitlines()[2:-2]}
    assert [rows[f"block{i}"] for i in range(1, 6)] == ["6\u00d76", "16\u00d716", "44\u00d744", "100\u00d7100",
                                                        "212\u00d7212"]
    assert rows["fc1"] == rows["predictions"] == "-"
    inputs = keras.Input((100, 1))
    x = keras.layers.Conv1D(4, 9, name="conv1_a")(inputs)
    x = keras.layers.MaxPooling1D(2, name="conv1_pool")(x)
    x = keras.layers.Conv1D(4, 3, name="conv2_a")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling1D(name="gap")(x))
    table = cost.format_cost(model, by="block", markdown=True)
    assert "| conv1 | 2 | 40 | 3.31 K | 10 |" in table  # MACs 92 * 9 * 4; field 9 + (2 - 1) * 1
    assert "| conv2 | 1 | 52 | 2.11 K | 14 |" in table  # MACs 44 * 3 * 4 * 4; field 10 + (3 - 1) * 2


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


# --- receptive fields: the graph arithmetic against the gradient ------------------------------


def _positive(layer_class, *args, **kwargs):
    """A bias-free layer with positive random weights: no cancellation hides a pixel."""
    return layer_class(*args, use_bias=False, kernel_initializer=keras.initializers.RandomUniform(0.1, 1.0),
                       **kwargs)


def _conv(*args, **kwargs):
    return _positive(keras.layers.Conv2D, 1, *args, **kwargs)


def _gradient_extent(model, layer_name, position):
    """Per axis ``(first, last + 1)`` of the input pixels p with d unit / d x_p != 0 for
    some channel of the layer at ``position`` (a concatenation's channels see different fields).

    The model is linear and bias-free, so that gradient at pixel p is the unit's
    response to an impulse at p; one batch of impulses gives them all.
    """
    spatial = tuple(model.inputs[0].shape[1:-1])
    n = int(np.prod(spatial))
    impulses = np.eye(n, dtype="float32").reshape(n, *spatial, 1)
    sub = keras.Model(model.inputs, model.get_layer(layer_name).output)
    response = np.abs(keras.ops.convert_to_numpy(sub(impulses))[(slice(None), *position)]).max(-1)
    response = response.reshape(spatial)
    extents = []
    for axis in range(len(spatial)):
        hit = np.nonzero(response.max(axis=tuple(a for a in range(len(spatial)) if a != axis)) > 0)[0]
        extents.append((int(hit.min()), int(hit.max()) + 1))
    return extents


def _check_field(model, layer_name, positions):
    field = cost.receptive_field(model, layer_name)
    for position in positions:
        assert [tuple(b) for b in field.bounds(position)] == _gradient_extent(model, layer_name, position), position
    return field


def _functional(shape, build):
    inputs = keras.Input(shape)
    return keras.Model(inputs, build(inputs))


def test_receptive_field_of_stacked_3x3_convs_matches_the_gradient():
    two = _functional((16, 16, 1), lambda x: _conv(3, name="b")(_conv(3, name="a")(x)))
    assert _check_field(two, "b", [(5, 5), (0, 3)]) == cost.ReceptiveField((5, 5), (1, 1), (2.0, 2.0))
    three = _functional((16, 16, 1), lambda x: _conv(3, padding="same", name="c")(
        _conv(3, padding="same")(_conv(3, padding="same")(x))))
    assert _check_field(three, "c", [(8, 8), (7, 9)]).size == (7, 7)


def test_receptive_field_of_strided_conv_and_pool_matches_the_gradient():
    model = _functional((32, 32, 1), lambda x: _conv(3, name="top")(
        keras.layers.AveragePooling2D(2, name="pool")(_conv(3, strides=2, padding="same")(x))))
    field = _check_field(model, "top", [(3, 3), (3, 4), (2, 3)])
    assert (field.size, field.jump) == ((13, 13), (4, 4))
    assert _check_field(model, "pool", [(4, 5)]).jump == (4, 4)


def test_receptive_field_of_branches_is_the_union_of_the_paths():
    def residual(x):
        x = _conv(3, strides=2, padding="same", name="stem")(x)
        y = _conv(3, padding="same")(_conv(3, padding="same")(x))
        return keras.layers.Add(name="add")([x, y])

    field = _check_field(_functional((32, 32, 1), residual), "add", [(8, 8), (8, 9)])
    assert (field.size, field.jump) == ((3 + 4 * 2, 3 + 4 * 2), (2, 2))  # stem 3, then 5 at jump 2

    def inception(x):
        branches = [_conv(1)(x), _conv(5, padding="same")(x),
                    _conv(1)(keras.layers.AveragePooling2D(3, 1, padding="same")(x))]
        return keras.layers.Concatenate(name="mixed")(branches)

    assert _check_field(_functional((16, 16, 1), inception), "mixed", [(8, 8)]).size == (5, 5)


def test_receptive_field_of_1d_dilated_and_causal_convs_and_nested_models():
    def conv1d(*args, **kwargs):
        return _positive(keras.layers.Conv1D, 1, *args, **kwargs)

    model = _functional((64, 1), lambda x: conv1d(3, dilation_rate=2, padding="causal", name="causal")(
        keras.layers.MaxPooling1D(2, name="pool")(conv1d(5, name="first")(x))))
    field = cost.receptive_field(model, "causal")
    # first: 5, start 2; pool 2/2: 6, jump 2, start 2.5; causal k_eff 5 looks 4 steps back: 14, start -1.5.
    assert field == cost.ReceptiveField((14,), (2,), (-1.5,))
    avg = _functional((64, 1), lambda x: conv1d(3, dilation_rate=2, padding="causal", name="causal")(
        keras.layers.AveragePooling1D(2)(conv1d(5)(x))))
    assert _check_field(avg, "causal", [(10,), (11,)]) == field
    # A base model nested behind padding and cropping: walked into, in the outer input's pixels.
    base = _functional((None, None, 1), lambda x: _conv(3, name="inner")(_conv(3)(x)))
    outer = _functional((20, 20, 1), lambda x: base(keras.layers.Cropping2D(((2, 0), (0, 0)))(
        keras.layers.ZeroPadding2D(1)(x))))
    assert cost.receptive_field(outer, "inner") == cost.ReceptiveField((5, 5), (1, 1), (3.0, 1.0))
    assert cost.receptive_field(outer, base.name) == cost.receptive_field(outer, "inner")


def test_receptive_field_of_a_vgg16_stack_by_hand():
    """VGG16's conv stack (Simonyan & Zisserman 2015): 3x3 'same' convs, 2x2 pools.

    Each 3x3 conv adds 2 * jump; each pool adds jump and doubles it. block3_conv3:
    1 + 2*2 (block 1) + 1 -> 6, then + 2*2*2 -> 14, + 2 -> 16, then + 3*2*4 -> 40.
    block5_pool: 212 (the figure Araujo et al., Distill 2019, give for VGG-16).
    """
    def vgg(x):
        for block, convs in enumerate((2, 2, 3, 3, 3), start=1):
            for i in range(convs):
                x = keras.layers.Conv2D(2, 3, padding="same", activation="relu",
                                        name=f"block{block}_conv{i + 1}")(x)
            x = keras.layers.MaxPooling2D(name=f"block{block}_pool")(x)
        return x

    model = _functional((224, 224, 3), vgg)
    assert cost.receptive_field(model, "block1_conv2") == cost.ReceptiveField((5, 5), (1, 1), (0.0, 0.0))
    assert cost.receptive_field(model, "block3_conv3") == cost.ReceptiveField((40, 40), (4, 4), (1.5, 1.5))
    assert cost.receptive_field(model, "block5_pool") == cost.ReceptiveField((212, 212), (32, 32), (15.5, 15.5))


def test_receptive_field_matches_resnet50s_published_figure():
    # Araujo et al., Distill 2019, Table 1: ResNet-50's receptive field is 483 pixels.
    model = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(64, 64, 3))
    assert cost.receptive_field(model, "conv5_block3_out").size == (483, 483)


def test_receptive_field_errors_name_the_layer():
    model = _functional((16, 16, 1), lambda x: keras.layers.Dense(2, name="head")(
        keras.layers.Flatten()(keras.layers.UpSampling2D(name="up")(_conv(3, name="c")(x)))))
    with pytest.raises(ValueError, match="'up'.*UpSampling2D"):
        cost.receptive_field(model, "up")
    with pytest.raises(ValueError, match="'head'.*not a spatial map"):
        cost.receptive_field(model, "head")
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        cost.receptive_field(model, "nope")


# --- receptive fields of the recipes, against a real input gradient ---------------------------


def _averaging(model):
    """``model`` with every conv a positive local average (kernel 1 / fan-in, no bias) and
    every max-pool an average pool of the same size, strides and padding (a copy if it
    has max-pools; else the model itself, changed in place).

    For a positive input every activation is then positive, so each ReLU passes its
    gradient and no cancellation hides a pixel: the input pixels with a nonzero gradient
    are exactly the unit's receptive field. A max-pool would send its gradient to one
    input of each window only, and show the part of the field its argmax picks; the
    graph arithmetic treats both pools alike. (BatchNorm at its initial statistics is
    x / sqrt(1 + eps): positive too.)
    """
    def clone(layer):
        if isinstance(layer, keras.layers.MaxPooling2D):
            return keras.layers.AveragePooling2D(layer.pool_size, layer.strides, layer.padding, name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    has_max_pools = any(isinstance(layer, keras.layers.MaxPooling2D) for layer in model.layers)
    averaged = keras.models.clone_model(model, clone_function=clone) if has_max_pools else model
    for layer in averaged.layers:
        if isinstance(layer, keras.layers.Conv2D):
            layer.kernel.assign(np.full(layer.kernel.shape, 1 / np.prod(layer.kernel.shape[:-1]), "float32"))
            if layer.use_bias:
                layer.bias.assign(np.zeros(layer.bias.shape, "float32"))
    return averaged


def _gradient_box(model, layer_name, position):
    """Rows and columns ``(first, last + 1)`` of the input pixels where the gradient of the
    unit at ``position`` of ``layer_name`` (summed over its channels) is nonzero; the
    pixels must fill that box."""
    sub = keras.Model(model.input, model.get_layer(layer_name).output)
    x = np.ones((1, *model.input_shape[1:]), "float32")
    gradient = input_gradient(sub, x, lambda y: keras.ops.sum(y[(0, *position)]))
    rows, cols = np.nonzero(np.abs(gradient[0]).sum(-1) > 0)
    box = ((int(rows.min()), int(rows.max()) + 1), (int(cols.min()), int(cols.max()) + 1))
    assert len(rows) == (box[0][1] - box[0][0]) * (box[1][1] - box[1][0]), "the field is a full rectangle"
    return box


def _check_recipe_field(model, averaged, layer_name, size, jump):
    """The graph arithmetic on the recipe's model: ``size`` and ``jump``; and where its
    central unit's field lies (inside the image), the gradient of the averaging model."""
    field = cost.receptive_field(model, layer_name)
    assert (field.size, field.jump) == ((size, size), (jump, jump)), field
    centre = tuple(d // 2 for d in model.get_layer(layer_name).output.shape[1:3])
    bounds = tuple(tuple(b) for b in field.bounds(centre))
    assert all(0 <= low and high <= side for (low, high), side in zip(bounds, model.input_shape[1:3])), bounds
    assert _gradient_box(averaged, layer_name, centre) == bounds, layer_name


def test_stacked_3x3_convs_see_5x5_and_7x7_by_gradient():
    """Simonyan and Zisserman 2015, section 2.3: two stacked 3x3 convs see 5x5, three see 7x7."""
    inputs = keras.Input((15, 15, 1))
    model = keras.Model(inputs, vgg.vgg_block(inputs, 2, convs=3, name="b"))
    averaged = _averaging(model)
    for layer_name, size in (("b_conv1", 3), ("b_conv2", 5), ("b_conv3", 7), ("b_pool", 8)):
        _check_recipe_field(model, averaged, layer_name, size, 2 if layer_name == "b_pool" else 1)


def test_vgg16_stage_fields_by_gradient():
    """VGG-16 (recipes/vgg.py): blocks of 2, 2, 3, 3, 3 same-padded 3x3 convs, each then a
    2x2/2 max-pool. A conv widens the field by 2 * jump, a pool by jump and doubles the
    jump: block1_pool 1 + 2 * 2 + 1 = 6 (jump 2); block2_pool 6 + 2 * 2 * 2 + 2 = 16 (4);
    block3_pool 16 + 3 * 2 * 4 + 4 = 44 (8); block4_pool 44 + 3 * 2 * 8 + 8 = 100 (16);
    block5_pool 100 + 3 * 2 * 16 + 16 = 212 (32), VGG-16's 212 in Araujo et al. (Distill
    2019, Table 1). At 224 px the central unit's 212 px field lies inside the image.
    """
    model = vgg.vgg16(include_top=False, input_shape=(224, 224, 1), width=1 / 64)  # 1 to 8 channels
    averaged = _averaging(model)
    for stage, (size, jump) in enumerate(((6, 2), (16, 4), (44, 8), (100, 16), (212, 32)), start=1):
        _check_recipe_field(model, averaged, f"block{stage}_pool", size, jump)


@pytest.mark.parametrize("builder, size", [("bagnet9", 9), ("bagnet17", 17), ("bagnet33", 33)])
def test_bagnet_fields_are_the_papers_by_gradient(builder, size):
    """Brendel and Bethge 2019: BagNet-9, -17 and -33 classify 9, 17 and 33 px patches, at
    the last stage's total stride 2 * 2 * 2 = 8 (valid padding: the shortcut's crop and
    1x1 convs add nothing)."""
    model = getattr(bagnet, builder)(include_top=False, input_shape=(48, 48, 1), width=1 / 16)
    stage = bagnet.feature_stages(model)[-1]
    field = cost.receptive_field(model, stage)  # before _averaging changes the weights in place
    _check_recipe_field(model, _averaging(model), stage, size, 8)
    assert cost.receptive_field(model, stage) == field

