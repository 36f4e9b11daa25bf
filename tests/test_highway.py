"""Highway networks against their papers' equation.

Srivastava, Greff and Schmidhuber 2015 ("Highway Networks", "Training Very Deep
Networks", section 2): y = H(x) * T(x) + x * (1 - T(x)), with the transform gate
T(x) = sigmoid(W_T x + b_T) and b_T initialized negative, so that a layer starts close
to the identity (the carry behaviour). A highway layer keeps its input's width.
tests/test_recipes.py checks highway_net like every builder (build, gradients, the
.keras round trip, bad arguments); these tests check the arithmetic with NumPy.
"""

import keras
import numpy as np
import pytest

from cookbook.recipes import highway


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _relu(z):
    return np.maximum(z, 0.0)


def _randomize(model, seed=0):
    """Random weights, biases included, so that no term of the equation can hide behind a zero."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])


def _numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


@pytest.mark.backends
def test_highway_dense_is_the_papers_equation():
    inputs = keras.Input(shape=(6,))
    model = keras.Model(inputs, highway.highway_dense(inputs, carry_bias=1.5, name="hw"))
    _randomize(model)
    x = np.random.default_rng(1).normal(size=(5, 6)).astype("float32")
    w_h, b_h = model.get_layer("hw_h").get_weights()
    w_t, b_t = model.get_layer("hw_t").get_weights()
    h, t = _relu(x @ w_h + b_h), _sigmoid(x @ w_t + b_t)
    np.testing.assert_allclose(_numpy(model(x)), h * t + x * (1 - t), rtol=1e-5, atol=1e-5)


@pytest.mark.backends
def test_highway_conv_1x1_is_the_papers_equation():
    """A 1x1 kernel makes H and T per-pixel matrix products: the whole layer in NumPy."""
    inputs = keras.Input(shape=(5, 5, 4))
    model = keras.Model(inputs, highway.highway_conv(inputs, kernel_size=1, name="hw"))
    _randomize(model, seed=2)
    x = np.random.default_rng(3).normal(size=(2, 5, 5, 4)).astype("float32")
    k_h, b_h = model.get_layer("hw_h_conv").get_weights()
    k_t, b_t = model.get_layer("hw_t_conv").get_weights()
    h, t = _relu(x @ k_h[0, 0] + b_h), _sigmoid(x @ k_t[0, 0] + b_t)
    np.testing.assert_allclose(_numpy(model(x)), h * t + x * (1 - t), rtol=1e-5, atol=1e-5)


@pytest.mark.backends
@pytest.mark.parametrize("batch_norm", [False, True])
def test_highway_conv_3x3_combines_its_transform_and_gate_as_the_paper(batch_norm):
    """With 3x3 kernels (and BatchNorm in H): the output is H * T + x * (1 - T) of the layer's own
    H and T, T in (0, 1) comes from the gate conv alone, and the gate conv has no BatchNorm."""
    inputs = keras.Input(shape=(6, 6, 3))
    model = keras.Model(inputs, highway.highway_conv(inputs, batch_norm=batch_norm, name="hw"))
    _randomize(model, seed=4)
    if batch_norm:  # positive moving variance
        bn = model.get_layer("hw_h_bn")
        gamma, beta, mean, variance = bn.get_weights()
        bn.set_weights([gamma, beta, mean, np.abs(variance) + 0.5])
    probe = keras.Model(inputs, [model.get_layer("hw_h_act").output, model.get_layer("hw_t_conv").output,
                                 model.output])
    x = np.random.default_rng(5).normal(size=(2, 6, 6, 3)).astype("float32")
    h, t, y = (_numpy(v) for v in probe(x, training=False))
    assert np.all((t > 0) & (t < 1))
    np.testing.assert_allclose(y, h * t + x * (1 - t), rtol=1e-5, atol=1e-5)
    assert not model.get_layer("hw_h_conv").use_bias == batch_norm  # BN's shift replaces H's bias
    assert model.get_layer("hw_t_conv").use_bias
    assert "hw_t_bn" not in [layer.name for layer in model.layers]


@pytest.mark.parametrize("carry_bias", [0.0, 1.0, 3])
def test_gate_bias_starts_at_minus_carry_bias(carry_bias):
    inputs = keras.Input(shape=(8, 8, 4))
    y = highway.highway_conv(inputs, carry_bias=carry_bias, name="conv")
    dense_in = keras.Input(shape=(4,))
    z = highway.highway_dense(dense_in, carry_bias=carry_bias, name="dense")
    conv_model, dense_model = keras.Model(inputs, y), keras.Model(dense_in, z)
    np.testing.assert_array_equal(conv_model.get_layer("conv_t_conv").get_weights()[1], -carry_bias)
    np.testing.assert_array_equal(dense_model.get_layer("dense_t").get_weights()[1], -carry_bias)


def test_every_gate_of_the_network_starts_at_minus_carry_bias():
    model = highway.highway_net(input_shape=(16, 16, 3), classes=10, filters=(4, 8), blocks=(2, 3), carry_bias=2.5)
    gates = [layer for layer in model.layers if layer.name.endswith("_t_conv")]
    assert len(gates) == 5
    for gate in gates:
        np.testing.assert_array_equal(gate.get_weights()[1], -2.5)


def test_a_closed_gate_carries_the_input():
    """With a very negative gate bias, T = sigmoid(-30 + W_T x) is ~1e-13: the layer is the identity."""
    conv_in, dense_in = keras.Input(shape=(8, 8, 4)), keras.Input(shape=(5,))
    conv = keras.Model(conv_in, highway.highway_conv(conv_in, carry_bias=30.0, batch_norm=True))
    dense = keras.Model(dense_in, highway.highway_dense(dense_in, carry_bias=30.0))
    rng = np.random.default_rng(6)
    x, v = rng.normal(size=(2, 8, 8, 4)).astype("float32"), rng.normal(size=(3, 5)).astype("float32")
    np.testing.assert_allclose(_numpy(conv(x, training=False)), x, rtol=0, atol=1e-6)
    np.testing.assert_allclose(_numpy(dense(v)), v, rtol=0, atol=1e-6)


def test_at_the_default_bias_a_layer_starts_mostly_carrying():
    """carry_bias=2: T ~ sigmoid(-2) = 0.12 on average, so y is mostly x (the papers' init)."""
    inputs = keras.Input(shape=(16, 16, 8))
    model = keras.Model(inputs, highway.highway_conv(inputs, name="hw"))
    probe = keras.Model(inputs, model.get_layer("hw_t_conv").output)
    x = np.random.default_rng(7).uniform(0, 1, size=(4, 16, 16, 8)).astype("float32")
    mean_gate = float(np.mean(_numpy(probe(x))))
    assert 0.05 < mean_gate < 0.25, mean_gate


def test_a_highway_layer_costs_two_plain_layers():
    """The docstring's arithmetic: H and T each have 9 * C * C + C weights (C = 64: 73,856 in all)."""
    inputs = keras.Input(shape=(8, 8, 64))
    assert keras.Model(inputs, highway.highway_conv(inputs)).count_params() == 2 * (9 * 64 * 64 + 64) == 73_856
    dense_in = keras.Input(shape=(50,))
    assert keras.Model(dense_in, highway.highway_dense(dense_in)).count_params() == 2 * (50 * 50 + 50)


def test_default_network_has_19_weight_layers_and_its_plain_twin_has_no_gates():
    """Three plain convs, 15 highway layers and the classifier; highway=False replaces each highway
    layer by one plain conv: the same depth, without the gates (and their 9 * C * C + C weights each)."""
    net = highway.highway_net()
    plain = highway.highway_net(highway=False)
    gates = [layer for layer in net.layers if layer.name.endswith("_t_conv")]
    weighted = [layer for layer in net.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    assert len(weighted) - len(gates) == 19 and len(gates) == 15
    assert net.count_params() == highway.BUILDERS["highway_net"]["params"] == 2_159_848
    assert not any(isinstance(layer, (keras.layers.Multiply, keras.layers.Add)) for layer in plain.layers)
    assert net.count_params() - plain.count_params() == sum(gate.count_params() for gate in gates)
    assert highway.feature_stages(plain) == highway.feature_stages(net) == [
        "stage1_block5_out", "stage2_block5_out", "stage3_block5_out"]


def test_strided_stem_halves_the_input_first():
    model = highway.highway_net(input_shape=(64, 64, 1), classes=10, filters=(8, 16, 32), blocks=(1, 1, 1),
                                stem="strided")
    sizes = [tuple(model.get_layer(stage).output.shape[1:]) for stage in highway.feature_stages(model)]
    assert sizes == [(32, 32, 8), (16, 16, 16), (8, 8, 32)]


@pytest.mark.parametrize("call, argument", [
    (lambda: highway.highway_dense(keras.Input(shape=(8,)), units=16), "units"),
    (lambda: highway.highway_conv(keras.Input(shape=(8, 8, 8)), filters=16), "filters"),
    (lambda: highway.highway_conv(keras.Input(shape=(8, 8, 8)), carry_bias=-1.0), "carry_bias"),
    (lambda: highway.highway_dense(keras.Input(shape=(8,)), carry_bias=float("nan")), "carry_bias"),
    (lambda: highway.highway_net(blocks=(1, 1)), "blocks"),
    (lambda: highway.highway_net(blocks=(1, 0, 1)), "blocks"),
    (lambda: highway.highway_net(filters=()), "filters"),
    (lambda: highway.highway_net(stem="imagenet"), "stem"),
    (lambda: highway.highway_net(input_shape=(7, 7, 3), stem="strided", blocks=(1, 1, 1)), "input_shape"),
])
def test_bad_arguments_name_the_argument(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


def test_widths_that_match_are_accepted_as_numpy_integers():
    inputs = keras.Input(shape=(4, 4, 8))
    assert highway.highway_conv(inputs, filters=np.int64(8), kernel_size=np.int32(3)).shape[-1] == 8
    assert highway.highway_dense(keras.Input(shape=(8,)), units=np.int64(8)).shape[-1] == 8
