"""The VAE recipe against closed forms and against Keras's own loss.

- The KL term `Sampling` adds equals the KL divergence of two Gaussians, written here the
  other way round (log(1/σ) + (σ² + μ²)/2 − 1/2) and checked by Monte Carlo.
- In training mode `Sampling` draws from N(μ, σ²); at inference it returns μ.
- The compiled loss (Keras's binary cross-entropy plus the added KL) times the pixels is
  −ELBO as `elbo` computes it in NumPy: the recipe's claim that the loss is the bound.
- `encoder` and `decoder` share the VAE's weights and compose to the VAE.
- The VAE trains with `fit` and loads in safe mode on every backend (marker ``backends``).
"""

import keras
import numpy as np
import pytest

from cookbook.recipes import vae

SMALL = {"input_shape": (16, 16, 1), "filters": (8, 16), "dense_units": 8}


def _binary_digits(n, seed=0):
    """Bars at random heights: an image set with one degree of freedom."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 16, 16, 1), dtype="float32")
    for image, row in zip(x, rng.integers(2, 12, size=n)):
        image[row:row + 3, 3:13] = 1.0
    return x


def test_sampling_adds_the_kl_divergence_of_two_gaussians():
    rng = np.random.default_rng(0)
    mean = rng.normal(0, 1.5, (5, 3)).astype("float32")
    log_var = rng.normal(0, 1.0, (5, 3)).astype("float32")
    layer = vae.Sampling(kl_weight=0.5)
    layer([mean, log_var], training=False)
    sigma = np.exp(0.5 * log_var.astype("float64"))
    kl = np.sum(np.log(1 / sigma) + (sigma**2 + mean**2) / 2 - 0.5, axis=-1)
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(layer.losses[0])), 0.5 * kl.mean(), rtol=1e-5)
    # The same by Monte Carlo: E_q[log q(z) - log p(z)] over draws from q.
    z = mean + sigma * rng.normal(size=(200_000, 5, 3))
    log_q = -0.5 * (((z - mean) / sigma) ** 2 + 2 * np.log(sigma))
    log_p = -0.5 * z**2
    np.testing.assert_allclose(np.sum(log_q - log_p, axis=-1).mean(axis=0), kl, rtol=0.02, atol=0.02)


def test_sampling_draws_from_the_posterior_when_training_and_returns_the_mean_at_inference():
    mean = np.tile(np.array([[1.0, -2.0]], dtype="float32"), (20_000, 1))
    log_var = np.tile(np.log(np.array([[0.25, 4.0]], dtype="float32")), (20_000, 1))
    layer = vae.Sampling(seed=3)
    z = keras.ops.convert_to_numpy(layer([mean, log_var], training=True))
    np.testing.assert_allclose(z.mean(axis=0), [1.0, -2.0], atol=0.05)
    np.testing.assert_allclose(z.std(axis=0), [0.5, 2.0], rtol=0.03)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer([mean, log_var], training=False)), mean)


def test_the_compiled_loss_is_minus_the_elbo_per_pixel():
    model = vae.conv_vae(**SMALL)
    # A near-zero posterior variance makes elbo's one draw of z the mean that evaluate uses.
    model.get_layer("z_log_var").bias.assign(np.full((2,), -30.0, dtype="float32"))
    model.compile(loss="binary_crossentropy")
    x = _binary_digits(32)
    loss = model.evaluate(x, x, batch_size=32, verbose=0)
    np.testing.assert_allclose(-vae.elbo(model, x).mean() / x[0].size, loss, rtol=1e-4)


def test_encoder_and_decoder_share_the_weights_and_compose_to_the_vae():
    model = vae.conv_vae(**SMALL)
    x = _binary_digits(4)
    mean, log_var = vae.encoder(model).predict(x, verbose=0)
    assert mean.shape == log_var.shape == (4, 2)
    np.testing.assert_allclose(vae.decoder(model).predict(mean, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    decoder_weights = {id(w) for w in vae.decoder(model).weights}
    assert decoder_weights <= {id(w) for w in model.weights}, "the decoder must not copy the weights"


@pytest.mark.backends
def test_vae_learns_and_loads_in_safe_mode(tmp_path):
    """fit lowers −ELBO on every backend; the saved model loads in safe mode (no Lambda)."""
    keras.utils.set_random_seed(0)
    model = vae.conv_vae(**SMALL, seed=1)
    x = _binary_digits(256)
    before = vae.elbo(model, x).mean()
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy", jit_compile=False)
    model.fit(x, x, epochs=8, batch_size=32, verbose=0)
    after = vae.elbo(model, x).mean()
    assert after > before + 50, (before, after)
    path = tmp_path / "vae.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.get_layer("z"), vae.Sampling)
    np.testing.assert_allclose(loaded.predict(x[:4], verbose=0), model.predict(x[:4], verbose=0), atol=1e-6)


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="latent_dim"):
        vae.conv_vae(**SMALL, latent_dim=0)
    with pytest.raises(ValueError, match="input_shape.*multiples of 4"):
        vae.conv_vae(input_shape=(18, 18, 1), filters=(8, 16))
