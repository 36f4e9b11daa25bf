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
