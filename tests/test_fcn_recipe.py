"""recipes/fcn.py: FCN-32s, FCN-16s and FCN-8s (Long, Shelhamer and Darrell, CVPR 2015).

What these tests prove: every variant returns per-pixel class probabilities at the input's
size, square or not; `bilinear_kernel` really is bilinear interpolation (a constant stays
constant, a ramp stays a ramp, any map matches separable np.interp away from the borders,
no channel leaks into another); FCN-8s fuses pool4 and pool3, FCN-16s pool4 only and
FCN-32s nothing, and their parameter counts differ by exactly the layers those fusions add,
counted by hand; bad arguments fail naming the argument. (tests/test_fcn.py tests
cookbook/fcn.py, a different thing: a classifier's dense head rewritten as convolutions.)
"""

import keras
import numpy as np
import pytest

from cookbook.recipes import fcn

SMALL = {"classes": 3, "width": 0.125, "fc_units": 16}
BUILDERS = {"fcn32s": fcn.fcn32s, "fcn16s": fcn.fcn16s, "fcn8s": fcn.fcn8s}
FUSED_POOLS = {"fcn32s": (), "fcn16s": (4,), "fcn8s": (4, 3)}  # the pools each variant fuses, in order


def _predict(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def _upsampled(values, factor):
    """``values`` (H, W, C) upsampled by one `upsample_scores` layer with its initial weights."""
    inputs = keras.Input(shape=values.shape)
    model = keras.Model(inputs, fcn.upsample_scores(inputs, factor))
    return _predict(model, values[None].astype("float32"))[0]


def _half_pixel(n, factor):
    """Input coordinates of the n * factor output pixels (pixel centres, as image resizing),
    and the interior: the outputs whose two nearest inputs both exist (no zero padding)."""
    u = (np.arange(n * factor) + 0.5) / factor - 0.5
    return u, (u >= 0) & (u <= n - 1)


# --- 1. the output: probabilities per pixel, at the input's size -------------------------


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("shape", [(64, 64, 1), (64, 96, 3)], ids=["64x64", "64x96"])
def test_output_is_a_softmax_map_at_the_input_size(builder, shape):
    model = BUILDERS[builder](input_shape=shape, **SMALL)
    assert model.name == builder
    assert model.output_shape == (None, shape[0], shape[1], SMALL["classes"])
    x = np.random.default_rng(0).uniform(0, 1, size=(2, *shape)).astype("float32")
    y = _predict(model, x)
    assert y.shape == (2, shape[0], shape[1], SMALL["classes"])
    assert y.min() >= 0
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, atol=1e-5)


def test_one_class_with_sigmoid_gives_a_mask_of_probabilities():
    model = fcn.fcn8s(input_shape=(64, 64, 1), classes=1, width=0.125, fc_units=16, output_activation="sigmoid")
    y = _predict(model, np.random.default_rng(0).uniform(0, 1, size=(1, 64, 64, 1)).astype("float32"))
    assert y.shape == (1, 64, 64, 1) and 0 < y.min() and y.max() < 1


def test_feature_stages_are_the_five_pools_at_strides_2_to_32():
    model = fcn.fcn8s(input_shape=(64, 96, 1), **SMALL)
    stages = fcn.feature_stages(model)
    assert stages == [f"block{i}_pool" for i in range(1, 6)]
    for i, stage in enumerate(stages, start=1):
        assert model.get_layer(stage).output.shape[1:3] == (64 // 2**i, 96 // 2**i)


def test_output_is_float32_under_mixed_precision():
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = fcn.fcn8s(input_shape=(64, 64, 1), **SMALL)
    finally:
        keras.config.set_dtype_policy("float32")
    assert model.outputs[0].dtype == "float32"
    assert model.get_layer("upscore8").compute_dtype == "float16", "the body runs in float16"


def test_numpy_integers_work():
    shape = tuple(np.int64(d) for d in (64, 64, 1))
    model = fcn.fcn16s(input_shape=shape, **{**SMALL, "classes": np.int64(2)})
    assert model.output_shape == (None, 64, 64, 2)


def test_weights_of_one_size_serve_another_and_survive_a_keras_round_trip(tmp_path):
    """fc6 keeps its 7x7 kernel whatever the map size, so the weight shapes do not depend on
    the input; and the bilinear initializer (a NumPy array) saves and loads in safe mode."""
    kwargs = {**SMALL, "batch_norm": True}
    model = fcn.fcn8s(input_shape=(64, 64, 1), **kwargs)
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(0, 0.1, w.shape).astype("float32") for w in model.get_weights()])
    model.save_weights(tmp_path / "fcn8s.weights.h5")
    wide = fcn.fcn8s(input_shape=(64, 96, 1), weights=str(tmp_path / "fcn8s.weights.h5"), **kwargs)
    for ours, theirs in zip(model.get_weights(), wide.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    model.save(tmp_path / "fcn8s.keras")
    loaded = keras.saving.load_model(tmp_path / "fcn8s.keras", safe_mode=True)
    x = rng.uniform(0, 1, size=(2, 64, 64, 1)).astype("float32")
    np.testing.assert_allclose(_predict(loaded, x), _predict(model, x), rtol=1e-6, atol=1e-6)


# --- 2. the upsampling starts as bilinear interpolation ----------------------------------


def test_bilinear_kernel_values_and_no_cross_channel_weights():
    tent4, tent3 = [0.25, 0.75, 0.75, 0.25], [0.5, 1.0, 0.5]  # stride 2: 3/4 of the nearer input, 1/4 of the other
    np.testing.assert_allclose(fcn.bilinear_kernel(4, 1)[..., 0, 0], np.outer(tent4, tent4))
    np.testing.assert_allclose(fcn.bilinear_kernel(3, 1)[..., 0, 0], np.outer(tent3, tent3))
    kernel = fcn.bilinear_kernel(8, 3)
    assert kernel.shape == (8, 8, 3, 3) and kernel.dtype == np.float32
    tent = 1 - np.abs(np.arange(8) - 3.5) / 4
    for i in range(3):
        for j in range(3):
            np.testing.assert_array_equal(kernel[:, :, i, j], np.outer(tent, tent) if i == j else 0.0)


def test_upsampling_layer_starts_with_the_bilinear_kernel_and_keeps_channels_apart():
    inputs = keras.Input(shape=(4, 4, 3))
    model = keras.Model(inputs, fcn.upsample_scores(inputs, 4, name="up"))
    (kernel,) = model.get_layer("up").get_weights()  # no bias, as in the paper
    np.testing.assert_array_equal(kernel, fcn.bilinear_kernel(8, 3))
    assert model.get_layer("up").trainable, "learnable, as in the paper"
    x = np.zeros((1, 4, 4, 3), "float32")
    x[..., 1] = np.random.default_rng(0).uniform(1, 2, size=(4, 4))
    y = _predict(model, x)
    assert y.shape == (1, 16, 16, 3)
    assert np.all(y[..., 0] == 0) and np.all(y[..., 2] == 0) and np.all(y[..., 1] > 0)


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_a_constant_map_stays_constant_in_the_interior(factor):
    y = _upsampled(np.full((6, 5, 2), [3.0, -1.5]), factor)
    assert y.shape == (6 * factor, 5 * factor, 2)
    inner = slice(factor // 2, -(factor // 2))  # the border reads zero padding
    np.testing.assert_allclose(y[inner, inner, 0], 3.0, rtol=1e-5)
    np.testing.assert_allclose(y[inner, inner, 1], -1.5, rtol=1e-5)
    assert abs(y[0, 0, 0]) < 3.0, "the corners do see the padding"


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_a_linear_ramp_stays_a_linear_ramp(factor):
    n = 6
    ramp = np.tile(2.0 * np.arange(n) - 3.0, (5, 1))[..., None]  # varies along the width only
    y = _upsampled(ramp, factor)[..., 0]
    u, inside = _half_pixel(n, factor)
    expected = 2.0 * u - 3.0  # the same line, read at the output pixels' input coordinates
    rows = slice(factor // 2, -(factor // 2))
    np.testing.assert_allclose(y[rows][:, inside], np.broadcast_to(expected[inside], y[rows][:, inside].shape),
                               atol=1e-5)
    np.testing.assert_allclose(expected[inside], np.interp(u[inside], np.arange(n), ramp[0, :, 0]), atol=1e-12)
    assert np.all(np.diff(y[rows][:, inside], axis=1) > 0), "strictly increasing: a ramp"


def test_any_map_is_interpolated_bilinearly_away_from_the_border():
    values = np.random.default_rng(2).normal(size=(5, 7))
    factor = 4
    y = _upsampled(values[..., None], factor)[..., 0]
    (uh, ih), (uw, iw) = _half_pixel(5, factor), _half_pixel(7, factor)
    along_w = np.stack([np.interp(uw, np.arange(7), row) for row in values])  # (5, 28)
    expected = np.stack([np.interp(uh, np.arange(5), col) for col in along_w.T], axis=1)  # (20, 28)
    np.testing.assert_allclose(y[np.ix_(ih, iw)], expected[np.ix_(ih, iw)], atol=1e-5)


# --- 3. the skips: which pools each variant fuses, and what they cost ---------------------


@pytest.mark.parametrize("builder", BUILDERS)
def test_each_variant_fuses_its_pools(builder):
    model = BUILDERS[builder](input_shape=(64, 64, 1), **SMALL)
    adds = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Add)]
    pools = FUSED_POOLS[builder]
    assert adds == [f"fuse_pool{p}_add" for p in pools]
    scores = [layer.name for layer in model.layers
              if isinstance(layer, keras.layers.Conv2D) and layer.kernel_size == (1, 1) and "score" in layer.name]
    assert sorted(scores) == sorted(["score_fr", *(f"fuse_pool{p}_score" for p in pools)])
    for p in pools:
        assert model.get_layer(f"fuse_pool{p}_score").input is model.get_layer(f"block{p}_pool").output
        assert model.get_layer(f"fuse_pool{p}_add").output.shape[1:3] == (64 // 2**p, 64 // 2**p)
        assert not model.get_layer(f"fuse_pool{p}_score").get_weights()[0].any(), "zero-initialised"
    ups = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    last = 32 // 2 ** len(pools)
    assert [(u.name, u.strides[0], u.kernel_size[0]) for u in ups] == (
        [(f"fuse_pool{p}_upscore", 2, 4) for p in pools] + [(f"upscore{last}", last, 2 * last)])
    assert model.get_layer("score_fr").output.shape[1:3] == (2, 2), "stride 32"


def test_parameter_counts_differ_by_exactly_the_skip_layers():
    k = SMALL["classes"]
    c3, c4 = int(256 * SMALL["width"]), int(512 * SMALL["width"])  # pool3 and pool4 channels

    def upsampling(factor):  # kernel 2f x 2f, k inputs, k outputs, no bias
        return (2 * factor) ** 2 * k * k

    def score(channels):  # 1x1 conv with bias
        return (channels + 1) * k

    counts = {name: build(input_shape=(64, 64, 1), **SMALL).count_params() for name, build in BUILDERS.items()}
    assert counts["fcn16s"] - counts["fcn32s"] == upsampling(2) + score(c4) + upsampling(16) - upsampling(32)
    assert counts["fcn8s"] - counts["fcn16s"] == upsampling(2) + score(c3) + upsampling(8) - upsampling(16)
    # and what they share is the backbone, fc6, fc7 and score_fr, counted by hand
    convs = [(1, 8), (8, 8), (8, 16), (16, 16), (16, 32), (32, 32), (32, 32), (32, 64), (64, 64), (64, 64),
             (64, 64), (64, 64), (64, 64)]
    backbone = sum(9 * cin * cout + cout for cin, cout in convs)
    head = 49 * 64 * 16 + 16 + 16 * 16 + 16 + score(16)
    assert counts["fcn32s"] == backbone + head + upsampling(32)


# --- 4. bad arguments fail naming the argument --------------------------------------------


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("shape", [(48, 64, 1), (64, 100, 3), (16, 16, 1), (None, None, 3), (64, 64)])
def test_input_shape_must_have_sides_that_are_multiples_of_32(builder, shape):
    with pytest.raises(ValueError, match="input_shape"):
        BUILDERS[builder](input_shape=shape, **SMALL)


@pytest.mark.parametrize("builder", BUILDERS)
def test_zero_classes_is_refused(builder):
    with pytest.raises(ValueError, match="classes"):
        BUILDERS[builder](input_shape=(64, 64, 1), **{**SMALL, "classes": 0})


def test_blocks_refuse_what_would_fail_deep_inside_keras():
    with pytest.raises(ValueError, match="factor"):
        fcn.upsample_scores(keras.Input(shape=(4, 4, 2)), 0)
    with pytest.raises(ValueError, match="skip"):
        fcn.fuse(keras.Input(shape=(4, 4, 2)), keras.Input(shape=(6, 6, 8)), 2)
