"""The DCGAN recipe against the paper's guidelines and a reference implementation, and the
cookbook's GAN loop against what a GAN step must do.

- Parameters: with the PyTorch examples' reference DCGAN widths (ngf = ndf = 64, nz = 100,
  64x64x3), G has 3,576,704 trainable parameters and D 2,765,568. Those are the sums of
  that model's layers: ConvTranspose 100->512 (4x4), 512->256, 256->128, 128->64, 64->3
  without biases plus BatchNorm's two per channel; Conv 3->64, 64->128, 128->256,
  256->512, 512->1 (4x4 over the last 4x4 map) without biases plus BatchNorm.
- The paper's section-3 guidelines, layer by layer.
- The model's two outputs are D(G(z)) and D(real), with one set of D weights; a tool that
  stops at a D layer (the filter views) sees the real image.
- `train_gan` moves only D's weights in D's step and only G's in G's, and a generator
  trained on one image learns to draw it (TensorFlow and JAX: marker ``backends``).
- `sample_quality` on classifiers whose answers are known.
"""

import keras
import numpy as np
import pytest

from cookbook import gan as cgan
from cookbook.recipes import dcgan

SMALL = {"input_shape": (16, 16, 1), "filters": (8, 16), "latent_dim": 8}
ON_TORCH = keras.backend.backend() == "torch"


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_parameters_match_the_reference_dcgan():
    model = dcgan.dcgan(input_shape=(64, 64, 3), latent_dim=100, filters=(64, 128, 256, 512))
    assert _trainable(dcgan.generator(model)) == 3_576_704
    assert _trainable(dcgan.discriminator(model)) == 2_765_568
    assert _trainable(model) == 3_576_704 + 2_765_568


def test_follows_the_papers_guidelines():
    model = dcgan.dcgan()  # the paper's figure 1: 100-d code, 4x4x1024 up to 64x64x3
    kinds = {layer.name: type(layer).__name__ for layer in model.layers}
    assert not any("Pool" in kind for kind in kinds.values()), "strided convolutions, no pooling"
    assert [name for name, kind in kinds.items() if kind == "Dense"] == ["gen_project", "disc_logit"]
    assert model.get_layer("gen_reshape").output.shape[1:] == (4, 4, 1024)
    ups = [l for l in model.layers if isinstance(l, keras.layers.Conv2DTranspose)]
    downs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D) and not isinstance(l, keras.layers.Conv2DTranspose)]
    assert [l.filters for l in ups] == [512, 256, 128, 3] and [l.filters for l in downs] == [128, 256, 512, 1024]
    assert all(l.strides == (2, 2) for l in ups + downs)
    bn = {name.rsplit("_", 1)[0] for name, kind in kinds.items() if kind == "BatchNormalization"}
    assert "gen_image" not in bn and "disc_down1" not in bn, "no BatchNorm on G's output or D's input layer"
    assert {"gen_project", "gen_up1", "gen_up2", "gen_up3", "disc_down2", "disc_down3", "disc_down4"} <= bn
    assert model.get_layer("gen_image").activation.__name__ == "tanh"
    assert all(model.get_layer(f"gen_up{i}_relu").activation.__name__ == "relu" for i in (1, 2, 3))
    assert all(abs(float(model.get_layer(f"disc_down{i}_lrelu").negative_slope) - 0.2) < 1e-6 for i in range(1, 5))
    kernel = keras.ops.convert_to_numpy(model.get_layer("disc_down4_conv").kernel)
    assert abs(kernel.mean()) < 1e-3 and abs(kernel.std() - 0.02) < 1e-3, "weights from N(0, 0.02)"


def test_outputs_are_d_on_real_and_on_generated_images_with_one_discriminator():
    model = dcgan.dcgan(**SMALL, seed=3)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (5, 16, 16, 1)).astype("float32")
    for weight in model.weights:  # random weights, and BatchNorm statistics a variance can be
        shape = tuple(weight.shape)
        value = rng.uniform(0.5, 1.5, shape) if "variance" in weight.path else rng.normal(0, 0.1, shape)
        weight.assign(value.astype("float32"))
    fake_logit, real_logit = (keras.ops.convert_to_numpy(t) for t in model(x, training=False))
    d, g = dcgan.discriminator(model), dcgan.generator(model)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(d(x)), real_logit, rtol=1e-5, atol=1e-5)
    z = model.get_layer("gen_code")(x, training=False)  # the codes inference draws
    fake = keras.ops.convert_to_numpy(g(z))
    assert fake.min() >= -1 and fake.max() <= 1
    np.testing.assert_allclose(keras.ops.convert_to_numpy(d((fake + 1) / 2)), fake_logit, rtol=1e-4, atol=1e-4)
    assert len({id(v) for v in d.trainable_weights} & {id(v) for v in g.trainable_weights}) == 0


def test_tools_that_stop_at_a_discriminator_layer_see_the_real_image():
    """D's layers run twice per forward pass; cookbook.visualize taps the first run, and
    cookbook.cost takes its receptive field, which must be the run on the model's input
    (the filter and dataset views of the page use both)."""
    from cookbook import cost, visualize

    model = dcgan.dcgan(**SMALL, seed=0)
    x = np.random.default_rng(0).uniform(0, 1, (6, 16, 16, 1)).astype("float32")
    stage = dcgan.feature_stages(model)[-1]
    ours = visualize.activations(model, x, [stage])[stage]
    direct = x
    for layer in [layer for layer in model.layers if layer.name.startswith("disc_")]:  # D's layers, in order
        direct = layer(direct)
        if layer.name == stage:
            break
    np.testing.assert_allclose(np.asarray(ours), keras.ops.convert_to_numpy(direct), rtol=1e-5, atol=1e-5)
    # Its receptive field too: 4x4 kernels, stride 2, so 4 then 4 + 3 * 2 = 10 pixels.
    assert [cost.receptive_field(model, s).size for s in dcgan.feature_stages(model)] == [(4, 4), (10, 10)]


def test_latent_code_is_fresh_in_training_and_repeatable_at_inference():
    layer = dcgan.LatentCode(6, seed=1)
    x = np.zeros((4000, 2), dtype="float32")
    a, b = (keras.ops.convert_to_numpy(layer(x, training=True)) for _ in range(2))
    assert a.shape == (4000, 6) and not np.allclose(a, b)
    assert abs(a.mean()) < 0.05 and abs(a.std() - 1) < 0.05
    np.testing.assert_array_equal(*(keras.ops.convert_to_numpy(layer(x, training=False)) for _ in range(2)))


@pytest.mark.parametrize("override, argument", [({"input_shape": (18, 18, 1)}, "input_shape"),
                                                ({"input_shape": (16, 16, 0)}, "input_shape"),
                                                ({"filters": ()}, "filters"), ({"latent_dim": 0}, "latent_dim")])
def test_bad_arguments_name_themselves(override, argument):
    with pytest.raises(ValueError, match=argument):
        dcgan.dcgan(**{**SMALL, **override})


# --- the loop -------------------------------------------------------------------------------------


def _one_image(n=256):
    """Every training image is the same bar: the simplest distribution a generator can learn."""
    x = np.zeros((n, 16, 16, 1), dtype="float32")
    x[:, 6:10, 2:14] = 1.0
    return x


@pytest.mark.backends
@pytest.mark.skipif(ON_TORCH, reason="train_gan runs on TensorFlow and JAX")
@pytest.mark.parametrize("mover", ["d", "g"])
def test_each_player_moves_only_its_own_weights(mover):
    """One step with one player's learning rate at zero: only the other player's weights move."""
    model = dcgan.dcgan(**SMALL, seed=0)
    is_generator = cgan._players(model)
    optimizers = []
    for player, own in (("d", False), ("g", True)):
        optimizer = keras.optimizers.SGD(0.1 if player == mover else 0.0, name=f"{player}_sgd")
        optimizer.build([v for v, g in zip(model.trainable_variables, is_generator) if g == own])
        optimizers.append(optimizer)
    before = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
    run, write_back = cgan._STEPS[keras.backend.backend()](model, *optimizers, is_generator)
    run(_one_image(32))
    write_back()
    moved = [not np.array_equal(keras.ops.convert_to_numpy(v), old) for v, old in zip(model.trainable_variables, before)]
    mine = [m for m, g in zip(moved, is_generator) if g == (mover == "g")]
    theirs = [m for m, g in zip(moved, is_generator) if g != (mover == "g")]
    assert all(mine) and not any(theirs), (mine, theirs)


@pytest.mark.backends
@pytest.mark.skipif(ON_TORCH, reason="train_gan runs on TensorFlow and JAX")
def test_generator_learns_a_one_image_distribution():
    keras.utils.set_random_seed(0)
    model = dcgan.dcgan(**SMALL, seed=0)
    data = _one_image(512)  # 16 steps an epoch, 192 in all: enough for BatchNorm's moving statistics
    codes = np.random.default_rng(0).normal(size=(16, 8)).astype("float32")
    start = (keras.ops.convert_to_numpy(dcgan.generator(model)(codes)) + 1) / 2
    # 12 epochs, not 8: the error falls about 0.06 an epoch (0.50 -> 0.18 by epoch 8 on an AVX2 CPU),
    # and on another CPU the run can lag an epoch and miss the bar (CI: 0.253); by epoch 12 it is ~0.06.
    result = cgan.train_gan(model, data, epochs=12, batch_size=32, learning_rate=2e-3, codes=codes, verbose=0)
    assert set(result.history) == {"d_loss", "g_loss", "p_real", "p_fake"}
    assert all(len(values) == 12 for values in result.history.values())
    assert result.samples.shape == (12, 16, 16, 16, 1)
    assert result.samples.min() >= 0 and result.samples.max() <= 1
    error_before = np.mean(np.abs(start - data[:1]))
    error_after = np.mean(np.abs(result.samples[-1] - data[:1]))
    assert error_after < 0.5 * error_before, (error_before, error_after)
    # The Keras variables hold the trained weights: the model's own generator draws the bar too.
    drawn = (keras.ops.convert_to_numpy(dcgan.generator(model)(codes)) + 1) / 2
    np.testing.assert_allclose(drawn, result.samples[-1], atol=1e-4)


@pytest.mark.backends
def test_train_gan_rejects_bad_input():
    model = dcgan.dcgan(**SMALL)
    if ON_TORCH:
        with pytest.raises(ValueError, match="TensorFlow and JAX"):
            cgan.train_gan(model, _one_image(64), epochs=1)
        return
    with pytest.raises(ValueError, match="images must have shape"):
        cgan.train_gan(model, np.zeros((64, 32, 32, 1)), epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        cgan.train_gan(model, _one_image(64), epochs=0)
    with pytest.raises(ValueError, match="fewer than one batch"):
        cgan.train_gan(model, _one_image(10), batch_size=32)
    with pytest.raises(ValueError, match="gen_"):
        cgan.train_gan(dcgan.discriminator(model), _one_image(64))


# --- judging samples -------------------------------------------------------------------------------


class _Fixed:
    """A 'classifier' whose probabilities are given."""

    def __init__(self, probabilities):
        self.probabilities = np.asarray(probabilities, dtype="float32")

    def predict(self, x, verbose=0):
        return self.probabilities[: len(x)]


def test_sample_quality_counts_confident_samples_and_their_spread():
    sure = np.eye(10)[np.arange(40) % 10] * 0.95 + 0.005  # every class 4 times, p = 0.955
    unsure = np.full((10, 10), 0.1)
    quality = cgan.sample_quality(_Fixed(np.concatenate([sure, unsure])), np.zeros((50, 2, 2, 1)))
    assert quality["confident_share"] == pytest.approx(40 / 50)
    assert quality["class_counts"] == [4] * 10
    assert quality["class_entropy_bits"] == pytest.approx(np.log2(10))
    collapsed = cgan.sample_quality(_Fixed(np.eye(10)[[3] * 20]), np.zeros((20, 2, 2, 1)))
    assert collapsed["confident_share"] == 1.0 and collapsed["class_entropy_bits"] == 0.0
    assert collapsed["class_counts"][3] == 20
