"""The CIFAR ResNets and stochastic depth against their papers.

He, Zhang, Ren and Sun 2016 ("Deep Residual Learning for Image Recognition", section
4.2): depth 6n + 2, a 3x3 conv to 16 filters, three stages of n basic blocks at 16, 32
and 64 filters on 32, 16 and 8 px maps, option A shortcuts (identity, and zero-padded
channels where a stage doubles them: no extra parameters, so a plain net and its ResNet
have the same count), Table 6's parameter counts. Huang, Sun, Liu, Sedra and Weinberger
2016 ("Deep Networks with Stochastic Depth"): block l of L keeps its residual branch with
probability p_l = 1 - l / L * (1 - p_L) in training, and inference is deterministic.
tests/test_recipes.py checks resnet_cifar like every builder; the tests marked
``backends`` run again under JAX and PyTorch in `make test`.
"""

import keras
import numpy as np
import pytest

from cookbook.recipes import residual

# Table 6 (He et al. 2016): "# params" of the CIFAR-10 ResNets with option A, as printed.
TABLE6 = {20: "0.27", 32: "0.46", 44: "0.66", 56: "0.85", 110: "1.7", 1202: "19.4"}


def _trainable(model):
    """The learnable parameters, as the paper counts them (not BatchNorm's moving statistics)."""
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _as_printed(count, printed):
    """``count`` in millions, rounded to as many decimals as the paper prints."""
    return f"{count / 1e6:.{len(printed.split('.')[1])}f}"


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_parameter_counts_match_table6(depth):
    model = residual.resnet_cifar(depth=depth)
    assert _as_printed(_trainable(model), TABLE6[depth]) == TABLE6[depth]
    assert sum(layer.name.endswith("_conv") for layer in model.layers) == depth - 1  # + the classifier


@pytest.mark.heavy
def test_resnet1202_matches_table6():
    """ResNet-1202 takes about 40 s to build on the 2-core machine, hence `heavy`."""
    model = residual.resnet_cifar(depth=1202)
    assert _as_printed(_trainable(model), TABLE6[1202]) == TABLE6[1202]


def test_layout_is_section_4_2s():
    model = residual.resnet_cifar(depth=20)
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 10)
    stages = residual.feature_stages(model)
    assert stages == ["conv2_block3_out", "conv3_block3_out", "conv4_block3_out"]
    assert [model.get_layer(s).output.shape[1:] for s in stages] == [(32, 32, 16), (16, 16, 32), (8, 8, 64)]
    assert model.get_layer("conv3_block1_1_conv").strides == (2, 2)
    assert not any(layer.weights for layer in model.layers if "_0_" in layer.name), "option A has no weights"


def test_option_a_subsamples_and_pads_zero_channels():
    model = residual.resnet_cifar(depth=8, include_top=False, input_shape=(12, 12, 3))
    probe = keras.Model(model.input, [model.get_layer("conv2_block1_out").output,
                                       model.get_layer("conv3_block1_0_pad").output])
    x = np.random.default_rng(0).uniform(size=(2, 12, 12, 3)).astype("float32")
    before, shortcut = (keras.ops.convert_to_numpy(t) for t in probe(x, training=False))
    np.testing.assert_array_equal(shortcut[..., :16], before[:, ::2, ::2, :])
    np.testing.assert_array_equal(shortcut[..., 16:], 0.0)


def test_plain_net_has_the_resnets_parameters_and_option_b_more():
    """Section 4.2: option A adds no parameter, so plain-20 and ResNet-20 are the same size;
    option B adds a 1x1 projection + BN where conv3 and conv4 begin."""
    resnet = _trainable(residual.resnet_cifar(depth=20))
    plain = residual.resnet_cifar(depth=20, residual=False)
    assert _trainable(plain) == resnet
    assert not any(isinstance(layer, keras.layers.Add) for layer in plain.layers)
    projections = (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)  # 1x1 kernels, BN gamma and beta
    assert _trainable(residual.resnet_cifar(depth=20, shortcut="B")) == resnet + projections


@pytest.mark.parametrize("kwargs, argument", [
    ({"depth": 21}, "depth"), ({"depth": 2}, "depth"), ({"depth": 20.0}, "depth"), ({"depth": "20"}, "depth"),
    ({"shortcut": "C"}, "shortcut"),
    ({"survival_probability": 0.0}, "survival_probability"),
    ({"survival_probability": -0.5}, "survival_probability"),
    ({"survival_probability": 1.5}, "survival_probability"),
    ({"survival_probability": float("nan")}, "survival_probability"),
    ({"survival_probability": 0.5, "residual": False}, "survival_probability"),  # no branch to skip
])
def test_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        residual.resnet_cifar(**{"depth": 8, **kwargs})


def test_depth_takes_numpy_integers():
    assert residual.resnet_cifar(depth=np.int64(8)).count_params() == residual.resnet_cifar(depth=8).count_params()


# --- stochastic depth (Huang et al. 2016) ---------------------------------------------------


def _branches(model):
    """The stochastic-depth Dropout layers, block 1 .. L in order."""
    return [layer for layer in model.layers if layer.name.endswith("_drop")]


@pytest.mark.backends
def test_stochastic_depth_keeps_each_branch_with_the_linear_schedule():
    """Block l of L = 9 (ResNet-20) keeps its branch with p_l = 1 - l / 9 * (1 - p_L), a whole
    sample's branch at once, scaled by 1 / p_l when kept (the "inverted" form).

    Tolerance: each block's kept fraction over N = 2048 samples is a binomial mean with
    standard deviation sqrt(p_l (1 - p_l) / N) <= 0.011; 4.5 of them leave a false failure
    probability under 1e-5 per block, 1e-4 for the nine. The mean number of active blocks
    per sample (expected 9 - 45 / 9 * 0.5 = 6.5 at p_L = 0.5) gets the same 4.5 sigma.
    """
    p_last, n = 0.5, 2048
    model = residual.resnet_cifar(depth=20, include_top=False, input_shape=(8, 8, 3), survival_probability=p_last)
    drops = _branches(model)
    schedule = np.array([1 - l / 9 * (1 - p_last) for l in range(1, 10)])
    assert len(drops) == 9
    np.testing.assert_allclose([1 - d.rate for d in drops], schedule, rtol=1e-6)
    probe = keras.Model(model.input, [t for d in drops for t in (d.input, d.output)])
    x = np.random.default_rng(0).uniform(size=(n, 8, 8, 3)).astype("float32")
    values = [keras.ops.convert_to_numpy(t) for t in probe(x, training=True)]
    kept = []
    for l, (branch, out) in enumerate(zip(values[::2], values[1::2])):
        zeroed = np.all(out == 0, axis=(1, 2, 3))
        assert not np.any(np.all(branch == 0, axis=(1, 2, 3))), "a live branch is never all zeros"
        np.testing.assert_allclose(out[~zeroed], branch[~zeroed] / schedule[l], rtol=1e-5, atol=1e-6)
        kept.append(~zeroed)
    kept = np.array(kept)  # (block, sample)
    sigma = np.sqrt(schedule * (1 - schedule) / n)
    assert np.all(np.abs(kept.mean(axis=1) - schedule) < 4.5 * sigma), (kept.mean(axis=1), schedule)
    active = kept.sum(axis=0)
    assert abs(active.mean() - schedule.sum()) < 4.5 * np.sqrt(np.sum(schedule * (1 - schedule)) / n)


@pytest.mark.backends
def test_stochastic_depth_inference_is_deterministic_and_survives_a_round_trip(tmp_path):
    """Dropout with a per-sample noise_shape, and option A's Rescaling(0) and 1x1 max-pool:
    public, serializable layers that reload in safe mode."""
    model = residual.resnet_cifar(depth=8, input_shape=(16, 16, 3), survival_probability=0.5)
    x = np.random.default_rng(0).uniform(size=(4, 16, 16, 3)).astype("float32")
    training = [keras.ops.convert_to_numpy(model(x, training=True)) for _ in range(4)]
    assert any(not np.array_equal(training[0], t) for t in training[1:]), "training draws differ"
    first = keras.ops.convert_to_numpy(model(x, training=False))  # after training calls moved BN's statistics
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x, training=False)), first)
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))
    path = tmp_path / "sd.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert [d.rate for d in _branches(loaded)] == [d.rate for d in _branches(model)]
    assert [tuple(d.noise_shape) for d in _branches(loaded)] == [(None, 1, 1, 1)] * 3
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x, training=False)), first, rtol=1e-6, atol=1e-6)
