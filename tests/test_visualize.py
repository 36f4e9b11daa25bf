"""Tests for cookbook.visualize, run under both backends:

    KERAS_BACKEND=tensorflow .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_visualize.py
    KERAS_BACKEND=jax        .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_visualize.py

Each method is checked against its published definition, computed independently:
Grad-CAM on a conv -> global-average-pool -> dense head equals CAM (Selvaraju et al.
2017, Sec. 3.1: alpha_k = w_k^c / Z), Grad-CAM++ against its closed form on the same
head, saliency/SmoothGrad/occlusion against a linear model's closed forms, keras-io's
filter-visualization update against its closed form on a linear layer. The dataset views
are checked on models with a known answer (a channel scaled to be the largest, a single
bright pixel under a 1x1, pooled or 3x3 field), and the 1-D paths on a tiny linear Conv1D model.
"""

import inspect

import keras
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from cookbook import visualize as V

RNG = np.random.default_rng(0)


def _head_model(activation="softmax", bn=True, classes=4, shape=(16, 16, 3)):
    """conv -> [BN] -> relu -> conv 'feat' -> GAP -> dense: Grad-CAM here is CAM."""
    inputs = keras.Input(shape, name="image")
    x = keras.layers.Conv2D(6, 3, padding="same", name="c1")(inputs)
    if bn:
        x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="r1")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="feat")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(classes, activation=activation, name="pred")(x)
    model = keras.Model(inputs, outputs, name="head_model")
    if bn:  # non-trivial moving statistics: training-mode BN would give other maps
        bn_layer = model.get_layer("bn")
        bn_layer.moving_mean.assign(RNG.normal(size=6).astype("float32"))
        bn_layer.moving_variance.assign(RNG.uniform(0.5, 2.0, size=6).astype("float32"))
    return model


def _images(n=3, shape=(16, 16, 3), seed=1):
    return np.random.default_rng(seed).uniform(0, 1, size=(n, *shape)).astype("float32")


def _features(model, x, name="feat"):
    sub = keras.Model(model.inputs, model.get_layer(name).output)
    return keras.ops.convert_to_numpy(sub(x, training=False))


def _cam_closed_form(model, x, classes):
    a = _features(model, x)
    w = keras.ops.convert_to_numpy(model.get_layer("pred").kernel)
    z = a.shape[1] * a.shape[2]
    return np.maximum(np.einsum("nhwk,kn->nhw", a, w[:, classes]) / z, 0)


def _logits(model, x):
    sub = keras.Model(model.inputs, model.get_layer("gap").output)
    dense = model.get_layer("pred")
    feats = keras.ops.convert_to_numpy(sub(x, training=False))
    return feats @ keras.ops.convert_to_numpy(dense.kernel) + keras.ops.convert_to_numpy(dense.bias)


# --- Grad-CAM and Grad-CAM++ --------------------------------------------------------------


def test_grad_cam_equals_cam_on_a_gap_head_with_softmax_folded_into_dense():
    model, x = _head_model(), _images()
    heat, classes = V.grad_cam(model, x, "feat", resize=False, normalize=False, return_classes=True)
    np.testing.assert_array_equal(classes, _logits(model, x).argmax(-1))
    np.testing.assert_allclose(heat, _cam_closed_form(model, x, classes), rtol=1e-4, atol=1e-6)


def test_grad_cam_default_layer_is_the_last_conv_output_and_maps_are_resized():
    model, x = _head_model(), _images()
    heat = V.grad_cam(model, x, class_index=[0, 1, 2])
    assert heat.shape == (3, 16, 16) and heat.dtype == np.float32
    peaks = heat.max(axis=(1, 2))
    assert (np.isclose(peaks, 1.0) | (peaks == 0)).all() and heat.min() >= 0
    small = V.grad_cam(model, x, "feat", class_index=[0, 1, 2], resize=False)
    np.testing.assert_allclose(V.grad_cam(model, x, None, [0, 1, 2], resize=False), small, atol=1e-6)


def test_grad_cam_plus_plus_matches_its_closed_form():
    model, x = _head_model(bn=False), _images()
    heat = V.grad_cam_plus_plus(model, x, "feat", class_index=1, resize=False, normalize=False)
    a = _features(model, x)
    w = keras.ops.convert_to_numpy(model.get_layer("pred").kernel)[:, 1]
    g = np.broadcast_to(w / (a.shape[1] * a.shape[2]), a.shape)  # d y_c / d A, constant in space
    denom = 2 * g**2 + a.sum(axis=(1, 2), keepdims=True) * g**3
    alpha = g**2 / np.where(denom != 0, denom, 1)
    weights = (alpha * np.maximum(g, 0)).sum(axis=(1, 2))
    expected = np.maximum(np.einsum("nhwk,nk->nhw", a, weights), 0)
    np.testing.assert_allclose(heat, expected, rtol=1e-3, atol=1e-7)


@pytest.mark.parametrize("head", ["dense_softmax", "activation_layer", "softmax_layer"])
def test_class_scores_are_the_pre_softmax_logits(head):
    linear = _head_model(activation=None)
    if head == "dense_softmax":
        model = _head_model(activation="softmax")
        model.set_weights(linear.get_weights())
    else:
        out = keras.layers.Activation("softmax")(linear.output) if head == "activation_layer" \
            else keras.layers.Softmax()(linear.output)
        model = keras.Model(linear.inputs, out)
    x = _images()
    expected = V.grad_cam(linear, x, "feat", class_index=2, resize=False, normalize=False)
    np.testing.assert_allclose(_cam_closed_form(linear, x, np.full(3, 2)), expected, rtol=1e-4, atol=1e-6)
    got = V.grad_cam(model, x, "feat", class_index=2, resize=False, normalize=False)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_nested_and_sequential_models():
    flat, x = _head_model(bn=False), _images()
    expected = _cam_closed_form(flat, x, np.zeros(3, int))
    # A base model inside a Functional model, and inside a Sequential model.
    base = keras.Model(flat.inputs, flat.get_layer("feat").output, name="base")
    head_layers = lambda: [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4, activation="softmax")]  # noqa: E731
    inputs = keras.Input((16, 16, 3))
    y = inputs
    for layer in [base, *head_layers()]:
        y = layer(y)
    functional = keras.Model(inputs, y)
    sequential = keras.Sequential([keras.Input((16, 16, 3)), base, *head_layers()])
    for model in (functional, sequential):
        model.layers[-1].set_weights(flat.get_layer("pred").get_weights())
        got = V.grad_cam(model, x, "feat", class_index=0, resize=False, normalize=False)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
        assert V.grad_cam(model, x).shape == (3, 16, 16)  # default layer found inside the base
    # A plain Sequential model.
    seq = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(5, 3, name="sc"),
                            keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")])
    a = keras.ops.convert_to_numpy(seq.layers[0](x))
    w = keras.ops.convert_to_numpy(seq.layers[-1].kernel)[:, 1]
    expected = np.maximum(a @ w / (a.shape[1] * a.shape[2]), 0)
    got = V.grad_cam(seq, x, "sc", class_index=1, resize=False, normalize=False)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_mixed_precision_model_gives_float32_maps_close_to_float32():
    reference, x = _head_model(), _images()
    expected = V.grad_cam(reference, x, "feat", class_index=1, resize=False)
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = _head_model()
    finally:
        keras.config.set_dtype_policy("float32")
    model.set_weights(reference.get_weights())
    got = V.grad_cam(model, x, "feat", class_index=1, resize=False)
    assert got.dtype == np.float32 and np.isfinite(got).all()
    np.testing.assert_allclose(got, expected, atol=2e-2)
    assert V.saliency(model, x).dtype == np.float32


# --- clear errors ---------------------------------------------------------------------------


def test_wrong_layer_name_lists_the_conv_layers():
    with pytest.raises(ValueError, match=r"layer.*'nope'.*Conv layers available: c1, feat"):
        V.grad_cam(_head_model(), _images(), "nope")
    with pytest.raises(ValueError, match="layer.*'gap'.*4-D"):
        V.grad_cam(_head_model(), _images(), "gap")
    with pytest.raises(ValueError, match="Conv layers available"):
        V.filter_images(_head_model(), "feet")


def test_bad_images_and_class_index_raise_clear_errors():
    model = _head_model()
    with pytest.raises(ValueError, match="images must have rank 4"):
        V.grad_cam(model, _images()[0])
    with pytest.raises(ValueError, match=r"images must have per-image shape \(16, 16, 3\)"):
        V.grad_cam(model, _images(shape=(8, 8, 3)))
    with pytest.raises(TypeError, match="images must be a floating-point array"):
        V.saliency(model, (_images() * 255).astype("uint8"))
    with pytest.raises(ValueError, match="images holds NaN"):
        V.grad_cam(model, np.full((1, 16, 16, 3), np.nan, "float32"))
    with pytest.raises(ValueError, match=r"class_index must be in \[0, 3\]"):
        V.grad_cam(model, _images(), class_index=4)
    with pytest.raises(ValueError, match="class_index must be one int or 3 ints"):
        V.grad_cam_plus_plus(model, _images(), class_index=[0, 1])
    with pytest.raises(TypeError, match="model must be a keras.Model"):
        V.grad_cam("model", _images())
    with pytest.raises(ValueError, match="method"):
        V.filter_images(model, "feat", method="fancy")
    with pytest.raises(ValueError, match="filters must be in"):
        V.filter_images(model, "feat", [8])
    with pytest.raises(ValueError, match="batch_size"):
        V.filter_images(model, "feat", [0], batch_size=0)


def test_non_finite_gradients_stop_with_a_clear_error():
    model = _head_model(bn=False)
    kernel = model.get_layer("pred").kernel
    kernel.assign(np.full(kernel.shape, np.inf, "float32"))
    with pytest.raises(V.NonFiniteGradientError, match="NaN or Inf"):
        V.grad_cam(model, _images(), "feat", class_index=0)
    with pytest.raises(FloatingPointError):
        V.saliency(model, _images(), class_index=0)


# --- sensitivity maps on a linear model: closed forms --------------------------------------


def _linear_model():
    model = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Flatten(), keras.layers.Dense(3)])
    return model, keras.ops.convert_to_numpy(model.layers[-1].kernel).reshape(6, 6, 2, 3)


def test_saliency_and_smoothgrad_of_a_linear_model_are_its_weights():
    model, w = _linear_model()
    x = _images(2, (6, 6, 2))
    expected = np.abs(w[..., 2]).max(axis=-1)
    np.testing.assert_allclose(V.saliency(model, x, 2, normalize=False)[1], expected, rtol=1e-5)
    smooth = V.smoothgrad(model, x, 2, samples=3, normalize=False)
    np.testing.assert_allclose(smooth[0], expected, rtol=1e-4)


def test_occlusion_of_a_linear_model_is_the_pixel_contribution():
    model, w = _linear_model()
    x = _images(1, (6, 6, 2))
    got = V.occlusion(model, x, 0, patch=1, stride=1, fill=0.0, normalize=False)
    np.testing.assert_allclose(got[0], (x[0] * w[..., 0]).sum(-1), rtol=1e-4, atol=1e-5)
    assert V.occlusion(model, x, patch=3, stride=2).shape == (1, 6, 6)


# --- filter visualization -------------------------------------------------------------------


def _conv_model(shape=(12, 12, 1)):
    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(4, 3, padding="same", name="lin")(inputs)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.Conv2D(6, 3, name="conv")(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


def test_plain_method_follows_keras_io_update_in_closed_form():
    # On a linear layer the gradient of mean(act[:, 2:-2, 2:-2, k]) is constant, so
    # 30 keras-io steps give x0 + 30 * 10 * g / |g| exactly.
    model, n = _conv_model(), 3
    init = np.random.default_rng(0).uniform(0.45, 0.55, (n, 12, 12, 1)).astype("float32")
    images, acts = V.filter_images(model, "lin", [0, 2, 3], method="plain", init=init)
    kernel = keras.ops.convert_to_numpy(model.get_layer("lin").kernel)[:, :, 0, :]  # (3, 3, 4)
    for i, k in enumerate([0, 2, 3]):
        g = np.zeros((12, 12))
        for y in range(2, 10):
            for x in range(2, 10):
                g[y - 1:y + 2, x - 1:x + 2] += kernel[:, :, k]
        expected = init[i, ..., 0] + 300.0 * g / np.linalg.norm(g)
        np.testing.assert_allclose(images[i, ..., 0], expected, rtol=1e-4, atol=1e-3)
    sub = keras.Model(model.inputs, model.get_layer("lin").output)
    act = keras.ops.convert_to_numpy(sub(images))[:, 2:-2, 2:-2, :].mean(axis=(1, 2))
    np.testing.assert_allclose(acts, act[np.arange(3), [0, 2, 3]], rtol=1e-4)


def test_batched_filters_equal_one_at_a_time_and_regularized_raises_activation():
    model = _conv_model()
    init = np.random.default_rng(0).uniform(0.45, 0.55, (3, 12, 12, 1)).astype("float32")
    together, acts = V.filter_images(model, "conv", [0, 1, 5], method="plain", init=init, steps=5, border=1)
    for i, k in enumerate([0, 1, 5]):
        alone, _ = V.filter_images(model, "conv", [k], method="plain", init=init[i:i + 1], steps=5, border=1)
        np.testing.assert_allclose(together[i], alone[0], rtol=1e-4, atol=1e-4)
    in_pairs, pair_acts = V.filter_images(model, "conv", [0, 1, 5], method="plain", init=init, steps=5,
                                          border=1, batch_size=2)
    np.testing.assert_allclose(in_pairs, together, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(pair_acts, acts, rtol=1e-4, atol=1e-4)
    images, reg = V.filter_images(model, "conv", [0, 1], method="regularized", steps=20, border=1, jitter=1)
    assert images.shape == (2, 12, 12, 1) and images.min() >= 0 and images.max() <= 1
    gray = V.filter_images(model, "conv", [0, 1], steps=1, lr=1e-9, border=1)[1]
    assert (reg > gray).all()


# --- activations, first-layer filters, DeepDream -------------------------------------------


def test_activations_match_a_sub_model_and_reach_into_nested_models():
    model, x = _head_model(), _images()
    got = V.activations(model, x, ["r1", "feat"])
    np.testing.assert_allclose(got["feat"], _features(model, x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["r1"], _features(model, x, "r1"), rtol=1e-5, atol=1e-6)
    outer = keras.Sequential([keras.Input((16, 16, 3)), model])
    np.testing.assert_allclose(V.activations(outer, x, "feat")["feat"], got["feat"], rtol=1e-5, atol=1e-6)


def test_first_layer_filters_are_the_kernels():
    model = _head_model()
    kernel = keras.ops.convert_to_numpy(model.get_layer("c1").kernel)
    filters = V.first_layer_filters(model)
    assert filters.shape == (6, 3, 3, 3)
    k = np.transpose(kernel, (3, 0, 1, 2))
    np.testing.assert_allclose(filters, 0.5 + 0.5 * k / np.abs(k).max(axis=(1, 2, 3), keepdims=True), rtol=1e-6)
    assert V.make_grid(filters, cols=3).shape == (2 * 4 - 1, 3 * 4 - 1, 3)


def test_deep_dream_raises_the_activation_energy():
    model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(4, 3, activation="relu", name="a"),
                              keras.layers.Conv2D(4, 3, name="b")])
    image = _images(1, (24, 24, 3))[0]
    dreamed = V.deep_dream(model, image, "b", octaves=2, steps=5)
    assert dreamed.shape == image.shape
    energy = lambda im: float((V.activations(model, im[None], "b")["b"] ** 2).mean())  # noqa: E731
    assert energy(dreamed) > energy(image)


# --- filters worth looking at: start and end activations, unit ranking ----------------------


def test_filter_images_reports_the_start_activation_and_ascent_raises_it():
    model = _conv_model()
    init = np.random.default_rng(0).uniform(0.45, 0.55, (2, 12, 12, 1)).astype("float32")
    images, end, start = V.filter_images(model, "lin", [1, 3], method="plain", init=init, steps=3,
                                         return_start=True)
    sub = keras.Model(model.inputs, model.get_layer("lin").output)
    measured = keras.ops.convert_to_numpy(sub(init))[:, 2:-2, 2:-2, :].mean(axis=(1, 2))
    np.testing.assert_allclose(start, measured[np.arange(2), [1, 3]], rtol=1e-4, atol=1e-6)
    assert (end > start + 1.0).all()  # 3 steps of length 10 along a constant gradient
    # The default (regularized) method moves every unit of a linear layer up.
    images, end, start = V.filter_images(model, "lin", None, steps=16, border=1, return_start=True)
    assert images.shape == (4, 12, 12, 1) and end.shape == start.shape == (4,)
    assert (end > start).all(), (start, end)


def test_filter_images_at_a_position_changes_only_the_input_that_position_sees():
    # Lucid's neuron objective: conv (3x3 valid) after lin (3x3 same) puts unit (4, 4) of the
    # 10x10 map over input rows and columns 3-7, so plain ascent leaves every other pixel as it was.
    model = _conv_model()
    init = np.random.default_rng(0).uniform(0.45, 0.55, (2, 12, 12, 1)).astype("float32")
    images, end, start = V.filter_images(model, "conv", [0, 5], method="plain", init=init, steps=3,
                                         position=(4, 4), return_start=True)
    outside = np.ones((12, 12), bool)
    outside[3:8, 3:8] = False
    np.testing.assert_array_equal(images[:, outside], init[:, outside])
    assert (np.abs(images - init)[:, 3:8, 3:8] > 0).any(axis=(1, 2, 3)).all()
    sub = keras.Model(model.inputs, model.get_layer("conv").output)
    at_centre = keras.ops.convert_to_numpy(sub(images))[:, 4, 4, :]
    np.testing.assert_allclose(end, at_centre[np.arange(2), [0, 5]], rtol=1e-4, atol=1e-6)
    assert (end > start).all(), (start, end)
    # The same on a linear layer: its unit (5, 6) sees rows 4-6 and columns 5-7 only.
    images, _ = V.filter_images(model, "lin", [2], method="plain", init=init[:1], steps=2, position=(5, 6))
    changed = np.argwhere(np.abs(images[0, ..., 0] - init[0, ..., 0]) > 0)
    assert changed.min(axis=0).tolist() == [4, 5] and changed.max(axis=0).tolist() == [6, 7]


@pytest.mark.parametrize("position", [(10, 0), (4,), (4, -1), (4.0, 4)])
def test_filter_images_rejects_a_position_outside_the_map(position):
    with pytest.raises(ValueError, match=r"position must be 2 ints inside layer 'conv'.s \(10, 10\) map"):
        V.filter_images(_conv_model(), "conv", [0], steps=1, position=position)


def _scaled_channels_model(gains, shape=(8, 8, 1)):
    """A 1x1 conv whose channel c is gains[c] * x: a known ranking on positive images."""
    model = keras.Sequential([keras.Input(shape), keras.layers.Conv2D(len(gains), 1, use_bias=False, name="mix")])
    model.get_layer("mix").kernel.assign(np.asarray(gains, "float32").reshape(1, 1, 1, -1))
    return model


def test_rank_units_puts_the_largest_channel_first():
    gains = [1.0, 2.0, 5.0, 0.5, -3.0]
    model = _scaled_channels_model(gains)
    x = _images(5, (8, 8, 1), seed=3)
    units, means = V.rank_units(model, "mix", x, batch_size=2)
    assert units.tolist() == [2, 1, 0, 3, 4]
    np.testing.assert_allclose(means, np.asarray(gains)[units] * x.mean(), rtol=1e-5)
    top, top_means = V.rank_units(model, "mix", x, top=2)
    assert top.tolist() == [2, 1] and top_means.shape == (2,)


# --- dataset examples and receptive-field patches ------------------------------------------


def _bright_pixel_images():
    """Six dark images; image 3 holds a 1.0 at (5, 7), image 1 a 0.5 at (2, 2)."""
    x = np.zeros((6, 12, 12, 1), "float32")
    x[3, 5, 7] = 1.0
    x[1, 2, 2] = 0.5
    return x


def test_top_activating_finds_the_bright_pixel_its_position_and_patch():
    x = _bright_pixel_images()
    identity = _scaled_channels_model([1.0, 2.0], (12, 12, 1))
    top = V.top_activating(identity, "mix", x, k=2, batch_size=4)
    assert top.indices.shape == (2, 2) and top.patches.shape == (2, 2, 1, 1, 1)
    assert top.indices[:, 0].tolist() == [3, 3] and top.indices[:, 1].tolist() == [1, 1]
    np.testing.assert_allclose(top.values[1], [2.0, 1.0])
    assert top.positions[0, 0].tolist() == [5, 7] and top.positions[0, 1].tolist() == [2, 2]
    assert top.patches[0, 0, 0, 0, 0] == 1.0 and top.boxes[0, 0].tolist() == [[5, 6], [7, 8]]
    # After a 2x2 max pool each unit sees a 2x2 patch: unit (2, 3) sees rows 4-5, columns 6-7.
    pooled = keras.Sequential([keras.Input((12, 12, 1)), *identity.layers, keras.layers.MaxPooling2D(name="pool")])
    top = V.top_activating(pooled, "pool", x, units=[0], k=1)
    assert top.positions[0, 0].tolist() == [2, 3] and top.boxes[0, 0].tolist() == [[4, 6], [6, 8]]
    np.testing.assert_array_equal(top.patches[0, 0, ..., 0], x[3, 4:6, 6:8, 0])


def test_top_activating_patches_are_zero_padded_at_the_border():
    x = _bright_pixel_images()
    x[4, 0, 0] = 2.0  # in the corner: the unit's 3x3 field hangs over the edge
    model = keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Conv2D(1, 3, padding="same", use_bias=False,
                                                                              name="box")])
    model.get_layer("box").kernel.assign(np.full((3, 3, 1, 1), 1.0, "float32"))
    top = V.top_activating(model, "box", x, k=3)
    assert top.indices[0].tolist() == [4, 3, 1] and top.positions[0, 0].tolist() == [0, 0]
    assert top.receptive_field.size == (3, 3) and top.boxes[0, 0].tolist() == [[0, 2], [0, 2]]
    expected = np.zeros((3, 3), "float32")
    expected[1, 1] = 2.0  # the field's centre is the corner pixel; the rest is padding
    np.testing.assert_array_equal(top.patches[0, 0, ..., 0], expected)
    with pytest.raises(ValueError, match="k must be <= the number of images"):
        V.top_activating(model, "box", x, k=7)
    with pytest.raises(ValueError, match="units must be in"):
        V.top_activating(model, "box", x, units=[1], k=1)


# --- features: pooling, nearest neighbours, projections, linear probes ---------------------


def test_features_pool_the_activations_over_space_batch_by_batch():
    model, x = _head_model(), _images(5)
    act = _features(model, x)  # 'feat' from a sub-model: (5, 8, 8, 8)
    np.testing.assert_allclose(V.features(model, "feat", x, batch_size=2), act.mean(axis=(1, 2)), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(V.features(model, "feat", x, pooling="max"), act.max(axis=(1, 2)), rtol=1e-5)
    gap = V.features(model, "gap", x, pooling="max")  # a (N, D) output comes back as is
    assert gap.shape == (5, 8) and gap.dtype == np.float32
    np.testing.assert_allclose(gap, act.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    outer = keras.Sequential([keras.Input((16, 16, 3)), model])  # a layer of a nested model
    np.testing.assert_allclose(V.features(outer, "feat", x), act.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    waves = _wave_model()
    w = _waves(3)
    np.testing.assert_allclose(V.features(waves, "feat", w), V.activations(waves, w, "feat")["feat"].mean(axis=1),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_nearest_neighbours_match_a_brute_force_search(metric):
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(5)
    query, gallery = rng.normal(size=(6, 7)), rng.normal(size=(15, 7)).astype("float32")
    expected = cdist(query, gallery.astype("float64"), metric)
    indices, distances = V.nearest_neighbours(query, gallery, k=4, metric=metric)
    assert indices.shape == distances.shape == (6, 4) and indices.dtype == np.int64
    np.testing.assert_array_equal(indices, np.argsort(expected, axis=1)[:, :4])
    np.testing.assert_allclose(distances, np.sort(expected, axis=1)[:, :4], rtol=1e-5, atol=1e-6)
    # Against itself, each item is its own nearest neighbour unless exclude_self.
    own, own_distances = V.nearest_neighbours(gallery, gallery, k=1, metric=metric)
    assert own[:, 0].tolist() == list(range(15)) and np.allclose(own_distances, 0, atol=1e-5)
    others, _ = V.nearest_neighbours(gallery, gallery, k=14, metric=metric, exclude_self=True)
    self_distances = cdist(gallery, gallery, metric) + np.diag(np.full(15, np.inf))
    np.testing.assert_array_equal(others, np.argsort(self_distances, axis=1)[:, :14])


def test_project_pca_is_the_svd_and_tsne_keeps_clusters_apart_on_a_small_set():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(12, 5)) * [5.0, 3.0, 1.0, 0.5, 0.1] + 2.0
    centred = x - x.mean(axis=0)
    u, sv, _ = np.linalg.svd(centred, full_matrices=False)
    expected = u[:, :2] * sv[:2]
    got = V.project(x)
    assert got.shape == (12, 2) and got.dtype == np.float32
    signs = np.sign((got * expected).sum(axis=0))
    np.testing.assert_allclose(got * signs, expected, rtol=1e-4, atol=1e-4)
    # Two far-apart blobs of 5: t-SNE with sklearn's default perplexity (30) would refuse
    # 10 points; min(30, (N - 1) / 3) works, and each point's neighbour stays in its blob.
    blobs = np.concatenate([rng.normal(size=(5, 8)), rng.normal(size=(5, 8)) + 20.0])
    # One OpenMP thread: t-SNE's threads spin-wait on a busy 2-core machine (0.2 s became 15 s).
    with threadpool_limits(1, "openmp"):
        embedded = V.project(blobs, "tsne", seed=1)
        np.testing.assert_array_equal(V.project(blobs, "tsne", seed=1), embedded)  # the seed fixes it
    assert embedded.shape == (10, 2) and np.all(np.isfinite(embedded))
    neighbour, _ = V.nearest_neighbours(embedded, embedded, k=1, metric="euclidean", exclude_self=True)
    assert (neighbour[:, 0] // 5 == np.arange(10) // 5).all(), embedded


def _contrast_model():
    """Layer 'raw' passes the image x on; layer 'folded' computes relu(x) and relu(-x), so
    its average over the image holds mean |x|."""
    model = keras.Sequential([keras.Input((4, 4, 1)),
                              keras.layers.Conv2D(1, 1, use_bias=False, name="raw"),
                              keras.layers.Conv2D(2, 1, use_bias=False, activation="relu", name="folded"),
                              keras.layers.GlobalAveragePooling2D(name="gap")])
    model.get_layer("raw").kernel.assign(np.ones((1, 1, 1, 1), "float32"))
    model.get_layer("folded").kernel.assign(np.array([1.0, -1.0], "float32").reshape(1, 1, 1, 2))
    return model


def _contrast_data(n, seed):
    """Images m + 2 y s: a level m ~ U(-1, 1) and, in class y = 1, a pattern s of eight +1
    and eight -1. Every image's mean is m whatever its class (nothing linear to find in
    the pooled 'raw'), while mean |x| is |m| < 1 in class 0 and 2 in class 1."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    pattern = np.stack([rng.permutation(np.repeat([1.0, -1.0], 8)) for _ in range(n)]).reshape(n, 4, 4, 1)
    x = rng.uniform(-1, 1, (n, 1, 1, 1)) + 2.0 * y[:, None, None, None] * pattern
    return x.astype("float32"), y


def test_linear_probes_find_the_layer_where_the_classes_become_linear():
    model = _contrast_model()
    train, test = _contrast_data(200, 7), _contrast_data(200, 8)
    probes = V.linear_probes(model, ["folded", "gap", "raw"], train, test, batch_size=64)
    assert probes.layers == ("raw", "folded", "gap")  # in order of depth
    assert probes.accuracies.shape == probes.train_accuracies.shape == (3,)
    assert probes.accuracies[0] < 0.65 and abs(probes.chance - 0.5) < 0.1, probes
    assert (probes.accuracies[1:] > 0.95).all(), probes
    # The maximum over the image is m + 2 y in 'raw': linear. A Split-like object and
    # one-hot labels are read too.
    split = type("Split", (), {"x": test[0], "y": np.eye(2, dtype="float32")[test[1]]})()
    again = V.linear_probes(model, "raw", train, split, pooling="max")
    assert again.layers == ("raw",) and again.accuracies[0] > 0.95, again


def test_feature_functions_name_their_bad_arguments():
    model, x = _head_model(), _images(2)
    f = np.ones((4, 3))
    with pytest.raises(ValueError, match="layer: no layer named 'nope'"):
        V.features(model, "nope", x)
    with pytest.raises(ValueError, match="pooling must be one of 'avg', 'max'"):
        V.features(model, "feat", x, pooling="mean")
    with pytest.raises(ValueError, match="metric must be one of 'cosine', 'euclidean'"):
        V.nearest_neighbours(f, f, k=1, metric="manhattan")
    with pytest.raises(ValueError, match="k must be >= 1"):
        V.nearest_neighbours(f, f, k=0)
    with pytest.raises(ValueError, match=r"k must be <= 3 \(the gallery's size less the query itself\)"):
        V.nearest_neighbours(f, f, k=4, exclude_self=True)
    with pytest.raises(ValueError, match="k must be <= 4"):
        V.nearest_neighbours(f, f, k=5)
    with pytest.raises(ValueError, match="same size D, got 3 and 2"):
        V.nearest_neighbours(f, f[:, :2], k=1)
    with pytest.raises(ValueError, match="exclude_self needs the queries to be the gallery"):
        V.nearest_neighbours(f[:2], f, k=1, exclude_self=True)
    with pytest.raises(ValueError, match=r"gallery_features must have shape \(N, D\)"):
        V.nearest_neighbours(f, f[0], k=1)
    with pytest.raises(ValueError, match="method must be one of 'pca', 'tsne'"):
        V.project(f, "umap")
    with pytest.raises(ValueError, match=r"dims must be <= min\(N, D\) = 3"):
        V.project(f, dims=4)
    with pytest.raises(TypeError, match="features must be a numeric array"):
        V.project("features")
    with pytest.raises(ValueError, match="train: 2 images but 3 labels"):
        V.linear_probes(model, "feat", (x, np.arange(3)), (x, np.arange(2)))
    with pytest.raises(TypeError, match=r"test must be a pair \(x, y\)"):
        V.linear_probes(model, "feat", (x, np.arange(2)), x)
    with pytest.raises(ValueError, match="layers: no layer named 'nope'"):
        V.linear_probes(model, ["feat", "nope"], (x, np.arange(2)), (x, np.arange(2)))


# --- 1-D models -----------------------------------------------------------------------------


def _wave_model(samples=32, activation=None):
    """conv1d 'lin' -> conv1d 'feat' -> GAP -> dense: a tiny 1-D classifier, linear by default."""
    inputs = keras.Input((samples, 1))
    x = keras.layers.Conv1D(4, 5, padding="same", activation=activation, name="lin")(inputs)
    x = keras.layers.Conv1D(6, 3, name="feat")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="pred")(x))


def _waves(n=2, samples=32, seed=4):
    return np.random.default_rng(seed).uniform(-1, 1, (n, samples, 1)).astype("float32")


def test_1d_saliency_and_occlusion_are_a_linear_models_closed_form():
    model, x = _wave_model(), _waves()
    # The model is linear up to its softmax, which saliency skips: d logit_c / d x_t is the
    # logit change from a unit impulse at t.
    impulses = np.concatenate([np.zeros((1, 32, 1)), np.eye(32).reshape(32, 32, 1)]).astype("float32")
    pred = model.get_layer("pred")
    body = keras.Model(model.inputs, model.get_layer(index=-2).output)
    logits = keras.ops.convert_to_numpy(body(impulses)) @ keras.ops.convert_to_numpy(pred.kernel)
    weights = logits[1:] - logits[0]  # (32, 3)
    got = V.saliency(model, x, [2, 0], normalize=False)
    assert got.shape == (2, 32)
    np.testing.assert_allclose(got, np.abs(weights[:, [2, 0]]).T, rtol=1e-3, atol=1e-5)
    occ = V.occlusion(model, x, 1, patch=1, stride=1, fill=0.0, normalize=False)
    np.testing.assert_allclose(occ, x[..., 0] * weights[:, 1], rtol=1e-3, atol=1e-4)


def test_1d_grad_cam_equals_cam_on_a_gap_head():
    model, x = _wave_model(), _waves()
    feats = _features(model, x)  # (2, 30, 6)
    w = keras.ops.convert_to_numpy(model.get_layer("pred").kernel)[:, 1]
    expected = np.maximum(feats @ w / feats.shape[1], 0)
    got = V.grad_cam(model, x, "feat", class_index=1, resize=False, normalize=False)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    assert V.grad_cam(model, x, class_index=1).shape == (2, 32)  # default layer: the last 1-D map


def test_1d_filter_images_plain_closed_form_and_regularized_ascent():
    model = _wave_model()
    init = np.random.default_rng(0).uniform(-0.05, 0.05, (2, 32, 1)).astype("float32")
    waves, acts = V.filter_images(model, "lin", [0, 3], method="plain", init=init, steps=4, lr=1.0)
    kernel = keras.ops.convert_to_numpy(model.get_layer("lin").kernel)[:, 0, :]  # (5, 4)
    for i, k in enumerate([0, 3]):
        g = np.zeros(32)  # d mean(act[2:-2, k]) / d x: output t ('same' padding) reads x[t-2 .. t+2]
        for t in range(2, 30):
            g[t - 2:t + 3] += kernel[:, k]
        np.testing.assert_allclose(waves[i, :, 0], init[i, :, 0] + 4.0 * g / np.linalg.norm(g), rtol=1e-4, atol=1e-4)
    assert acts.shape == (2,)
    waves, end, start = V.filter_images(model, "feat", [0, 1, 2], steps=20, return_start=True, jitter=2)
    assert waves.shape == (3, 32, 1) and waves.min() >= -1 and waves.max() <= 1  # default range (-1, 1)
    assert (end > start).all(), (start, end)
    with pytest.raises(ValueError, match="size must be"):
        V.filter_images(model, "feat", [0], size=(8, 8))


def test_1d_regularized_ascent_at_a_position_is_the_matched_filter_at_a_fixed_loudness():
    # A linear unit's activation is its kernel dotted with the 5 samples it sees. Under an
    # RMS bound the best zero-mean input there is the kernel (less its mean), scaled; under
    # a peak bound (the sigmoid the images use) it would be a square wave, the kernel's sign.
    model = _wave_model()
    kernel = keras.ops.convert_to_numpy(model.get_layer("lin").kernel)[:, 0, :]  # (5, 4)
    waves, end, start = V.filter_images(model, "lin", [0, 3], position=(16,), jitter=0, steps=200,
                                        return_start=True)
    seen = waves[:, 14:19, 0]  # 'same' padding: output 16 reads x[14 .. 18]
    np.testing.assert_allclose(seen.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.sqrt((seen**2).mean(axis=1)), 1 / 3, rtol=1e-4)  # a sixth of (-1, 1)
    for row, unit in zip(seen, [0, 3]):
        matched = kernel[:, unit] - kernel[:, unit].mean()
        assert np.dot(row, matched) / np.linalg.norm(row) / np.linalg.norm(matched) > 0.99
    assert (end > start).all()



def test_1d_top_activating_finds_the_spike_and_its_window():
    x = np.zeros((4, 24, 1), "float32")
    x[2, 10, 0] = 1.0
    model = keras.Sequential([keras.Input((24, 1)), keras.layers.Conv1D(1, 3, use_bias=False, name="tri")])
    model.get_layer("tri").kernel.assign(np.array([1.0, 2.0, 1.0], "float32").reshape(3, 1, 1))
    top = V.top_activating(model, "tri", x, k=2)
    # Output t reads x[t .. t+2] and weighs the middle twice: the spike wins at t = 9.
    assert top.indices[0, 0] == 2 and top.values[0, 0] == 2.0 and top.positions[0, 0].tolist() == [9]
    assert top.patches.shape == (1, 2, 3, 1) and top.boxes[0, 0].tolist() == [[9, 12]]
    np.testing.assert_array_equal(top.patches[0, 0, :, 0], [0.0, 1.0, 0.0])
    units, means = V.rank_units(model, "tri", x)
    assert units.tolist() == [0] and np.isclose(means[0], 4.0 / (4 * 22))

# --- the pointing game ----------------------------------------------------------------------


def test_pointing_game_definition():
    heat = np.zeros((4, 10, 10), "float32")
    heat[0, 2, 3] = 1  # inside box 0
    heat[1, 9, 9] = 1  # outside box 1
    heat[2, 5, 4] = 1  # just outside: box ends are exclusive; a hit with tolerance 1
    boxes = np.array([[1, 1, 5, 5], [0, 0, 3, 3], [0, 0, 5, 5], [0, 0, 9, 9]])  # map 3 is constant: a miss
    acc, hits = V.pointing_game(heat, boxes, return_hits=True)
    assert acc == 0.25 and hits.tolist() == [True, False, False, False]
    assert V.pointing_game(heat, boxes, tolerance=1) == 0.5
    masks = np.zeros((4, 10, 10), bool)
    masks[1, 9, 9] = True
    assert V.pointing_game(heat, masks) == 0.25
    # Averaged over classes, as in Zhang et al.: class 0 -> 1/1, class 1 -> 0/3.
    assert V.pointing_game(heat, boxes, labels=[0, 1, 1, 1]) == 0.5
    with pytest.raises(ValueError, match="boxes_or_masks"):
        V.pointing_game(heat, boxes[:2])


# --- drawing helpers and documentation ------------------------------------------------------


def test_overlay_uses_matplotlib_colormaps_and_plots_build():
    import matplotlib

    out = V.overlay(np.zeros((8, 8)), np.ones((4, 4)), alpha=1.0, colormap="viridis")
    np.testing.assert_allclose(out[0, 0], matplotlib.colormaps["viridis"](1.0)[:3], rtol=1e-6)
    with pytest.raises(ValueError, match="colormap"):
        V.overlay(np.zeros((8, 8)), np.ones((8, 8)), colormap="nope")
    fig = V.plot_filters(np.random.rand(3, 8, 8, 3), [1.0, 2.0, 3.0], [4, 5, 6], layer_name="x")
    assert len(fig.axes) == 4 and fig.axes[0].get_title().startswith("#4")


def test_every_public_function_is_documented():
    for name in V.__all__:
        obj = getattr(V, name)
        assert inspect.getdoc(obj) and len(inspect.getdoc(obj)) > 30, name


# --- quality: a briefly trained model's Grad-CAM points at the digit ------------------------


def test_grad_cam_on_a_briefly_trained_model_points_at_the_digit_well_above_chance():
    from cookbook import data

    d = data.cluttered_digits(400, 10, 300, size=40, scale=(1.5, 2.0), distractors=3, seed=0)
    inputs = keras.Input(d.train.x.shape[1:])
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="feat")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(d.train.x, d.train.y, epochs=2, batch_size=32, verbose=0)
    boxes = np.asarray(d.test.boxes)
    chance = float(((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).mean() / 40**2)
    score = V.pointing_game(V.grad_cam(model, d.test.x, "feat"), boxes)
    # A random point hits with probability `chance` (the mean box area); require the
    # score to exceed it by 4 binomial standard errors (p < 1e-4 under chance) and 1.8x.
    margin = 4 * np.sqrt(chance * (1 - chance) / len(boxes))
    assert score > max(chance + margin, 1.8 * chance), (score, chance)


# --- guided backpropagation and Guided Grad-CAM ---------------------------------------------


def _three_relu_model():
    """A ReLU of each kind: fused into a conv, a ReLU layer, an Activation('relu') layer."""
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(4, 3, activation="relu", name="c1"),
        keras.layers.Conv2D(3, 1, name="mix"),
        keras.layers.ReLU(name="r2"),
        keras.layers.Flatten(),
        keras.layers.Dense(5, name="d3"),
        keras.layers.Activation("relu", name="a3"),
        keras.layers.Dense(2, activation="softmax", name="pred"),
    ])
    rng = np.random.default_rng(5)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    return model


def _backward(model, x, c, guided):
    """d logit_c / d x of _three_relu_model by hand, ReLU by ReLU; ``guided`` lets only
    positive gradients back (Springenberg et al. 2015)."""
    k1, b1, m, bm, w3, b3, w4, _ = [np.asarray(w, "float64") for w in model.get_weights()]
    k1, m = k1.reshape(9, 4), m.reshape(4, 3)
    offsets = [(i, j) for i in range(3) for j in range(3)]
    h1 = np.stack([x[:, i:i + 6, j:j + 6, 0] for i, j in offsets], -1) @ k1 + b1  # the 3x3 'valid' conv
    h2 = np.maximum(h1, 0) @ m + bm
    h3 = np.maximum(h2, 0).reshape(len(x), -1) @ w3 + b3
    gate = (lambda g, h: np.maximum(g, 0) * (h > 0)) if guided else (lambda g, h: g * (h > 0))
    g = gate(np.broadcast_to(w4[:, c], h3.shape), h3)
    g = gate((g @ w3.T).reshape(h2.shape), h2)
    g = gate(g @ m.T, h1)
    gx = np.zeros(x.shape[:-1])
    for t, (i, j) in enumerate(offsets):
        gx[:, i:i + 6, j:j + 6] += g @ k1[t]
    return gx


def test_guided_backprop_is_the_hand_computed_guided_backward_pass():
    model, x = _three_relu_model(), _images(3, (8, 8, 1), seed=6) - 0.3
    got = V.guided_backprop(model, x, class_index=1, channels=True, normalize=False)
    expected = _backward(model, x, 1, guided=True)
    np.testing.assert_allclose(got[..., 0], expected, rtol=1e-4, atol=1e-6)
    plain = _backward(model, x, 1, guided=False)  # the same hand code, unguided, is saliency
    np.testing.assert_allclose(V.saliency(model, x, 1, normalize=False), np.abs(plain), rtol=1e-4, atol=1e-6)
    assert np.abs(expected - plain).max() > 0.1 * np.abs(plain).max()  # guiding changes the map
    maps = V.guided_backprop(model, x, class_index=1)
    np.testing.assert_allclose(maps, np.abs(expected) / np.abs(expected).max(axis=(1, 2), keepdims=True),
                               rtol=1e-4, atol=1e-6)


def test_guided_methods_leave_the_model_as_it_was():
    model, x = _three_relu_model(), _images(2, (8, 8, 1), seed=6)
    outputs = keras.ops.convert_to_numpy(model(x))
    attributes = {layer.name: dict(vars(layer)) for layer in model.layers}
    V.guided_backprop(model, x)
    V.guided_grad_cam(model, x, "c1")
    for layer in model.layers:
        now = vars(layer)
        assert "call" not in now, layer.name
        assert now.keys() == attributes[layer.name].keys(), layer.name
        assert all(now[key] is value for key, value in attributes[layer.name].items()), layer.name
    assert model.get_layer("c1").activation is keras.activations.relu
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x)), outputs)
    # and plain gradients, after the guided ones, are plain again
    np.testing.assert_allclose(V.saliency(model, x, 0, normalize=False), np.abs(_backward(model, x, 0, False)),
                               rtol=1e-4, atol=1e-6)


def test_guided_grad_cam_is_guided_backprop_times_the_upsampled_grad_cam():
    model, x = _head_model(), _images()
    guided = V.guided_backprop(model, x, class_index=2, channels=True, normalize=False)
    cam = V.grad_cam(model, x, "feat", class_index=2, normalize=False)
    got = V.guided_grad_cam(model, x, "feat", class_index=2, channels=True, normalize=False)
    np.testing.assert_allclose(got, guided * cam[..., None], rtol=1e-4, atol=1e-8)
    maps, classes = V.guided_grad_cam(model, x, "feat", return_classes=True)
    np.testing.assert_array_equal(classes, _logits(model, x).argmax(-1))
    assert maps.shape == (3, 16, 16) and np.allclose(maps.max(axis=(1, 2)), 1.0)


# --- integrated gradients -------------------------------------------------------------------


def test_integrated_gradients_are_exact_on_a_quadratic_model():
    # y_c = sum_i w_ic x_i^2: the gradient grows linearly along the path, so the trapezoidal
    # rule is exact even with 2 steps and IG_i = w_ic (x_i^2 - x'_i^2); a Riemann sum is not.
    inputs = keras.Input((5, 5, 2))
    square = keras.layers.Multiply()([inputs, inputs])
    model = keras.Model(inputs, keras.layers.Dense(3, name="w")(keras.layers.Flatten()(square)))
    w = keras.ops.convert_to_numpy(model.get_layer("w").kernel).reshape(5, 5, 2, 3)
    x, base = _images(2, (5, 5, 2)), _images(1, (5, 5, 2), seed=9)[0]
    got = V.integrated_gradients(model, x, [0, 2], baseline=base, steps=2, channels=True, normalize=False)
    expected = np.moveaxis(w[..., [0, 2]], -1, 0) * (x**2 - base**2)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    maps = V.integrated_gradients(model, x, [0, 2], baseline=base, steps=2)
    summed = expected.sum(-1)
    np.testing.assert_allclose(maps, summed / np.abs(summed).max(axis=(1, 2), keepdims=True), rtol=1e-4, atol=1e-6)


def _relu_net():
    """A random ReLU classifier with He-scaled numpy weights (the same on every backend)."""
    model = keras.Sequential([keras.Input((12, 12, 3)), keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.Conv2D(8, 3, strides=2), keras.layers.ReLU(), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax", name="pred")])
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, np.sqrt(2 / np.prod(w.shape[:-1])), w.shape) if w.ndim > 1
                       else rng.uniform(0, 1, w.shape) for w in model.get_weights()])
    return model


def test_integrated_gradients_completeness_on_a_relu_network():
    # Sundararajan et al. 2017: the attributions sum to y_c(x) - y_c(x'), within 5 % at
    # 20 to 300 steps; here 5 % of |y_c(x) - y_c(x')| + 0.005 at 64 steps.
    model = _relu_net()
    x = _images(6, (12, 12, 3), seed=2)
    body, pred = keras.Model(model.inputs, model.layers[-2].output), model.get_layer("pred")
    logit = lambda z: (keras.ops.convert_to_numpy(body(z)) @ keras.ops.convert_to_numpy(pred.kernel)
                       + keras.ops.convert_to_numpy(pred.bias))[:, 1]
    for baseline, reference in ((None, np.zeros_like(x)), (0.5, np.full_like(x, 0.5))):
        maps, delta = V.integrated_gradients(model, x, 1, baseline=baseline, steps=64, normalize=False,
                                             return_delta=True)
        gain = logit(x) - logit(reference)
        gap = maps.sum(axis=(1, 2)) - gain
        assert (np.abs(gap) <= 0.05 * np.abs(gain) + 5e-3).all(), (gap, gain)
        np.testing.assert_allclose(delta, gap, atol=1e-5)
    _, coarse = V.integrated_gradients(model, x, 1, steps=1, return_delta=True)
    assert np.abs(coarse).max() > 4 * np.abs(gap).max()  # one step is visibly off: the check can fail


# --- CAM variants ---------------------------------------------------------------------------


def _flatten_head_model():
    """conv -> conv 'feat' (4 x 4 x 5) -> Flatten -> dense: the gradient at 'feat' is the dense weight."""
    inputs = keras.Input((10, 10, 2))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(5, 3, strides=2, padding="same", activation="relu", name="feat")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="pred")(x))


def test_hires_cam_and_layer_cam_weigh_each_position_by_its_own_gradient():
    # Through Flatten -> Dense, d y_c / d A[p, k] = W[p, k, c]: HiResCAM is each position's
    # contribution to the logit (Draelos & Carin 2020), LayerCAM its positive-weight part.
    model, x = _flatten_head_model(), _images(3, (10, 10, 2))
    a = _features(model, x)
    w = keras.ops.convert_to_numpy(model.get_layer("pred").kernel).reshape(4, 4, 5, 3)[..., 1]
    hires = V.hires_cam(model, x, "feat", class_index=1, resize=False, normalize=False)
    np.testing.assert_allclose(hires, np.maximum((a * w).sum(-1), 0), rtol=1e-4, atol=1e-6)
    layer = V.layer_cam(model, x, "feat", class_index=1, resize=False, normalize=False)
    np.testing.assert_allclose(layer, np.maximum((a * np.maximum(w, 0)).sum(-1), 0), rtol=1e-4, atol=1e-6)
    grad = V.grad_cam(model, x, "feat", class_index=1, resize=False, normalize=False)
    assert np.abs(grad - hires).max() > 0.1 * hires.max()  # Grad-CAM averages the gradient first
    # On a global-average-pooling head, HiResCAM is CAM and LayerCAM keeps its positive weights.
    model, x = _head_model(), _images()
    np.testing.assert_allclose(V.hires_cam(model, x, "feat", class_index=2, resize=False, normalize=False),
                               _cam_closed_form(model, x, np.full(3, 2)), rtol=1e-4, atol=1e-6)
    feats = _features(model, x)
    w = keras.ops.convert_to_numpy(model.get_layer("pred").kernel)[:, 2] / (feats.shape[1] * feats.shape[2])
    np.testing.assert_allclose(V.layer_cam(model, x, "feat", class_index=2, resize=False, normalize=False),
                               np.maximum(feats @ np.maximum(w, 0), 0), rtol=1e-4, atol=1e-6)
    assert V.layer_cam(model, x).shape == (3, 16, 16)


def test_score_cam_weighs_channels_by_the_softmax_of_the_masked_images_scores():
    model, x = _head_model(), _images(2)
    a = _features(model, x, "r1")  # (2, 16, 16, 6): at the input's size, so no upsampling
    low, high = a.min(axis=(1, 2), keepdims=True), a.max(axis=(1, 2), keepdims=True)
    masks = np.where(high > low, (a - low) / np.where(high > low, high - low, 1), 0)
    masked = x[:, None] * np.moveaxis(masks, -1, 1)[..., None]  # (2, 6, 16, 16, 3)
    classes = _logits(model, x).argmax(-1)
    scores = _logits(model, masked.reshape(-1, 16, 16, 3)).reshape(2, 6, 4)[np.arange(2), :, classes]
    weights = np.exp(scores - scores.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    expected = np.maximum(np.einsum("nhwk,nk->nhw", a, weights), 0)
    got, got_classes = V.score_cam(model, x, "r1", resize=False, normalize=False, return_classes=True,
                                   batch_size=4)
    np.testing.assert_array_equal(got_classes, classes)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    assert V.score_cam(model, x).shape == (2, 16, 16)  # the last 4-D layer, upsampled


def test_eigen_cam_is_the_projection_on_the_first_principal_direction():
    # A rank-one activation (channel k = g_k * x, a 1x1 conv of a one-channel image) projects
    # onto the image itself, whatever the signs of g.
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(3, 1, use_bias=False, name="mix"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    model.get_layer("mix").kernel.assign(np.array([2.0, -1.0, 0.5], "float32").reshape(1, 1, 1, 3))
    x = _images(2, (8, 8, 1))
    np.testing.assert_allclose(V.eigen_cam(model, x, "mix", resize=False), x[..., 0] / x[..., 0].max(axis=(1, 2), keepdims=True),
                               rtol=1e-5)
    # In general, A v with v the top eigenvector of A^T A, signed so that the map sums > 0.
    model, x = _head_model(), _images()
    expected = []
    for act in _features(model, x).reshape(3, -1, 8).astype("float64"):
        projection = act @ np.linalg.eigh(act.T @ act)[1][:, -1]
        expected.append(np.maximum(projection * np.sign(projection.sum()), 0))
    got = V.eigen_cam(model, x, "feat", resize=False, normalize=False)
    np.testing.assert_allclose(got.reshape(3, -1), expected, rtol=1e-4, atol=1e-6)
    maps, classes = V.eigen_cam(model, x, class_index=[1, 2, 3], return_classes=True)
    assert maps.shape == (3, 16, 16) and classes.tolist() == [1, 2, 3]  # class-agnostic maps


def test_new_methods_on_a_1d_model():
    model, x = _wave_model(), _waves()
    feats = _features(model, x)
    w = keras.ops.convert_to_numpy(model.get_layer("pred").kernel)[:, 1]
    np.testing.assert_allclose(V.hires_cam(model, x, "feat", class_index=1, resize=False, normalize=False),
                               np.maximum(feats @ w / feats.shape[1], 0), rtol=1e-4, atol=1e-6)
    # Linear up to the softmax: integrated gradients from 0 are x * d logit / d x, summing to the gain.
    ig, delta = V.integrated_gradients(model, x, 1, steps=2, normalize=False, return_delta=True)
    saliency = V.saliency(model, x, 1, normalize=False)
    np.testing.assert_allclose(np.abs(ig), np.abs(x[..., 0]) * saliency, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(delta, 0, atol=1e-5)
    for method in (V.layer_cam, V.score_cam, V.eigen_cam, V.guided_grad_cam):
        assert method(model, x, class_index=1).shape == (2, 32), method.__name__
    assert V.deletion_auc(model, x, saliency, steps=4).shape == (2,)


# --- faithfulness: deletion, insertion, average drop, increase in confidence ---------------


def _quadrant_model(gain=4.0):
    """Class 0's logit is gain * (mean of the top-left 4x4 quadrant - mean of the bottom-right
    one), class 1's its negative: the decision depends on those two regions only."""
    q = np.zeros((8, 8))
    q[:4, :4], q[4:, 4:] = 1 / 16, -1 / 16
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(2, activation="softmax")])
    model.set_weights([(gain * q.reshape(64, 1) * [1, -1]).astype("float32"), np.zeros(2, "float32")])
    return model, lambda images: 1 / (1 + np.exp(-2 * gain * (images.reshape(len(images), 64) @ q.ravel())))


def _quadrant_images(n=4):
    x = _images(n, (8, 8, 1), seed=7) * 0.5
    x[:, :4, :4] += 0.5  # a bright top-left: class 0, with probability about 0.98
    return x


def _hand_curves(probability, maps, start, finish, steps):
    """Petsiuk et al.'s curves by hand: the round(s * 64 / steps) top pixels switched at step s."""
    counts = np.round(np.linspace(0, 64, steps + 1)).astype(int)
    curves = []
    for m, a, b in zip(maps, start.reshape(len(maps), 64), finish.reshape(len(maps), 64)):
        order = np.argsort(-m.ravel(), kind="stable")
        for c in counts:
            image = a.copy()
            image[order[:c]] = b[order[:c]]
            curves.append(probability(image[None])[0])
    return np.reshape(curves, (len(maps), steps + 1))


def test_deletion_and_insertion_rank_the_right_map_above_the_wrong_one():
    model, probability = _quadrant_model()
    x = _quadrant_images()
    right = x[..., 0] * np.where(np.arange(8)[:, None] < 4, 1, -1) * np.where(np.arange(8) < 4, 1, -1)
    right[:, :4, 4:] = right[:, 4:, :4] = 0  # each pixel's share of the logit: what the model uses
    zeros = np.zeros_like(x)
    scores = {}
    for name, maps in (("right", right), ("wrong", -right)):
        deletion, curves = V.deletion_auc(model, x, maps, steps=8, return_curves=True)
        expected = _hand_curves(probability, maps, x, zeros, 8)
        np.testing.assert_allclose(curves, expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(deletion, ((expected[:, 1:] + expected[:, :-1]) / 2).mean(1), rtol=1e-5)
        insertion, curves = V.insertion_auc(model, x, maps, steps=8, baseline=0.0, return_curves=True)
        np.testing.assert_allclose(curves, _hand_curves(probability, maps, zeros, x, 8), rtol=1e-5, atol=1e-6)
        scores[name] = deletion, insertion
    assert (scores["right"][0] + 0.3 < scores["wrong"][0]).all(), scores  # deletion: lower is better
    assert (scores["right"][1] > scores["wrong"][1] + 0.3).all(), scores  # insertion: higher is better
    # The other class's probability is one minus this one's.
    np.testing.assert_allclose(V.deletion_auc(model, x, right, class_index=1, steps=8),
                               1 - scores["right"][0], rtol=1e-5)


def test_insertion_starts_from_a_gaussian_blur():
    from scipy.ndimage import gaussian_filter

    model, probability = _quadrant_model()
    x = _quadrant_images()
    _, curves = V.insertion_auc(model, x, x[..., 0], steps=4, sigma=1.0, return_curves=True)
    blurred = gaussian_filter(x, sigma=(0, 1, 1, 0), mode="mirror", truncate=3.0)
    np.testing.assert_allclose(curves[:, 0], probability(blurred), rtol=1e-5)
    np.testing.assert_allclose(curves[:, -1], probability(x), rtol=1e-5)
    assert V.insertion_auc(model, x, x[..., 0]).shape == (4,)  # sigma: a tenth of the side


def test_average_drop_and_increase_in_confidence_on_the_quadrant_model():
    model, probability = _quadrant_model()
    x = _quadrant_images()
    rows = np.arange(8)[:, None] < 4
    keep_top_left = np.broadcast_to(rows & (np.arange(8) < 4), (4, 8, 8)).astype("float32")
    keep_bottom_right = np.broadcast_to(~rows & (np.arange(8) >= 4), (4, 8, 8)).astype("float32")
    y = probability(x)
    # Keeping the evidence and hiding the counter-evidence raises the confidence: no drop.
    assert (probability(x * keep_top_left[..., None]) > y).all()
    assert V.average_drop(model, x, keep_top_left).tolist() == [0.0] * 4
    assert V.increase_in_confidence(model, x, keep_top_left).tolist() == [1.0] * 4
    o = probability(x * keep_bottom_right[..., None])
    np.testing.assert_allclose(V.average_drop(model, x, 3 * keep_bottom_right), (y - o) / y, rtol=1e-5)
    assert V.increase_in_confidence(model, x, keep_bottom_right).tolist() == [0.0] * 4


# --- the sanity check: cascading randomization (Adebayo et al. 2018) ------------------------


def test_randomization_check_works_on_a_copy_and_measures_rank_correlation():
    from scipy.stats import spearmanr

    model, _ = _linear_model()
    x = _images(2, (6, 6, 2))
    weights = model.get_weights()

    def weight_map(m, images, class_index=None):  # rounded weights: a map with ties
        kernel = keras.ops.convert_to_numpy(m.layers[-1].kernel).reshape(6, 6, 2, 3).sum(2)
        return np.round(np.moveaxis(kernel[..., class_index], -1, 0), 1)

    result = V.randomization_check(weight_map, model, x, class_index=[0, 2], keep_maps=True, seed=3)
    assert result.layers == (model.layers[-1].name,) and result.maps.shape == (2, 2, 6, 6)
    for i in range(2):
        expected = spearmanr(result.maps[0, i].ravel(), result.maps[1, i].ravel())[0]
        np.testing.assert_allclose(result.per_image[0, i], expected, rtol=1e-5)
    np.testing.assert_allclose(result.correlation, result.per_image.mean(axis=1))
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)  # the user's model is untouched
    image_map = lambda m, images, class_index=None: images[..., 0]  # ignores the weights
    assert V.randomization_check(image_map, model, x).correlation.tolist() == [1.0]


def _bars(n, seed=0, size=24):
    """Class 0: a horizontal bar, 1: a vertical bar, 2: a square outline, placed at random."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.2, (n, size, size, 1)).astype("float32")
    y = rng.integers(0, 3, n)
    for image, label in zip(x, y):
        r, c = rng.integers(2, size - 10, 2)
        if label == 0:
            image[r + 3:r + 5, c:c + 8] = 1
        elif label == 1:
            image[r:r + 8, c + 3:c + 5] = 1
        else:
            image[r:r + 8, c:c + 8] = 1
            image[r + 2:r + 6, c + 2:c + 6] = 0.1
    return x, y


def test_randomization_check_tells_grad_cam_from_guided_backprop():
    # Adebayo et al. 2018: as the weights are randomized from the top, Grad-CAM loses the
    # original map while guided backprop stays close to it. Calibrated on 10 trainings (6 TF,
    # 4 JAX; two noise seeds each): the mean margin was 0.30 to 0.61, guided's first step
    # 0.64 to 0.87; a single step of Grad-CAM is bimodal (a random class vector over
    # channels with one shared pattern only flips the map's sign), so the test uses the mean.
    keras.utils.set_random_seed(0)
    x, y = _bars(576)
    inputs = keras.Input((24, 24, 1))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="feat")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="pred")(h))
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    test_x, test_y = _bars(64, seed=1)
    assert (keras.ops.convert_to_numpy(model(test_x)).argmax(-1) == test_y).mean() > 0.9  # it learned
    grad = V.randomization_check(V.grad_cam, model, test_x[:16], layer="feat")
    guided = V.randomization_check(V.guided_backprop, model, test_x[:16])
    assert grad.layers == guided.layers and grad.layers[0] == "pred" and len(grad.layers) == 4
    assert guided.correlation[0] > 0.5, guided
    assert guided.correlation.mean() > grad.correlation.mean() + 0.15, (grad, guided)


# --- bad arguments to the new methods and scores --------------------------------------------


def test_new_functions_name_their_bad_arguments():
    model, x = _head_model(), _images(2)
    maps = np.ones((2, 16, 16), "float32")
    with pytest.raises(ValueError, match="steps must be >= 1"):
        V.integrated_gradients(model, x, steps=0)
    with pytest.raises(ValueError, match=r"baseline must have per-image shape \(16, 16, 3\)"):
        V.integrated_gradients(model, x, baseline=np.zeros((8, 8, 3), "float32"))
    with pytest.raises(TypeError, match="baseline must be a number or an array"):
        V.integrated_gradients(model, x, baseline="black")
    with pytest.raises(ValueError, match="layer.*'nope'"):
        V.score_cam(model, x, "nope")
    with pytest.raises(ValueError, match=r"class_index must be in \[0, 3\]"):
        V.eigen_cam(model, x, class_index=7)
    with pytest.raises(ValueError, match=r"maps must have shape \(2, 16, 16\)"):
        V.deletion_auc(model, x, maps[:, :8])
    with pytest.raises(ValueError, match="baseline must be 'blur'"):
        V.insertion_auc(model, x, maps, baseline="fuzzy")
    with pytest.raises(ValueError, match="sigma must be > 0"):
        V.insertion_auc(model, x, maps, sigma=0)
    with pytest.raises(TypeError, match="fill must be a number"):
        V.deletion_auc(model, x, maps, fill=None)
    with pytest.raises(ValueError, match="maps must hold finite"):
        V.average_drop(model, x, np.full((2, 16, 16), np.nan))
    with pytest.raises(TypeError, match="method must be a map function"):
        V.randomization_check("grad_cam", model, x)
    with pytest.raises(ValueError, match=r"layers: \['gap'\] are not layers with trainable weights"):
        V.randomization_check(V.grad_cam, model, x, layers=["gap"])
