"""Variational autoencoders: an encoder to a distribution, a sample, a decoder back.

Paper: Kingma and Welling, "Auto-Encoding Variational Bayes" (ICLR 2014).

An autoencoder squeezes an image into a code and rebuilds it; nothing makes the codes
between the training images mean anything, so a random code decodes to a smudge. A
VAE makes the code space a probability space. The encoder maps an image x to a
Gaussian q(z | x) with mean mu and log-variance log sigma^2 (one pair per latent
dimension); a code z is drawn from it and the decoder maps z to the pixel
probabilities p(x | z). Training maximizes the evidence lower bound

    ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || N(0, I))   <=   log p(x),

a reconstruction term (binary cross-entropy summed over the pixels) minus a term that
pulls every q(z | x) towards the prior N(0, I). For Gaussians the KL has a closed form,
-1/2 * sum(1 + log sigma^2 - mu^2 - sigma^2) over the latent dimensions. To let the
gradient through the draw, z is written as mu + sigma * eps with eps ~ N(0, I): the
reparameterization trick. The randomness sits in eps, which needs no gradient.

Because the KL term packs the codes of the training images around the origin, decoding
draws from N(0, I) gives new images, and with two latent dimensions the whole code space
can be laid out as a grid of decoded images.

`Sampling` is the one custom layer: it draws z during training, returns mu at inference
(so predictions are deterministic), and adds the KL term with `add_loss`. It is
registered for `.keras` files, so a saved VAE loads in safe mode without a Lambda layer.
Compiled with the mean binary cross-entropy per pixel, the model's loss is exactly
-ELBO / pixels: `Sampling` divides the KL by the number of pixels for that reason.
"""

import keras
import numpy as np
from keras import layers, ops


def _check(ok, argument, expected, got):
    """The one argument check: what Keras would not say clearly, naming the argument."""
    if not ok:
        raise ValueError(f"{argument} must be {expected}, got {got!r}")


def _unique(prefix):
    """A fresh layer-name prefix, so a block called twice without a name does not collide."""
    return f"{prefix}{keras.backend.get_uid(prefix)}"


@keras.saving.register_keras_serializable(package="cookbook_vae")
class Sampling(layers.Layer):
    """z = mu + exp(log_var / 2) * eps during training, mu at inference; adds
    ``kl_weight`` * KL(N(mu, sigma^2) || N(0, I)), averaged over the batch, as a loss."""

    def __init__(self, kl_weight=1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.kl_weight, self.seed = float(kl_weight), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        z_mean, z_log_var = inputs
        kl = -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)
        self.add_loss(self.kl_weight * ops.mean(kl))
        if not training:
            return z_mean
        eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def get_config(self):
        return {**super().get_config(), "kl_weight": self.kl_weight, "seed": self.seed}


# --- blocks -----------------------------------------------------------------------------


def encoder_block(x, filters, *, name=None):
    """Halve the size with a stride-2 3x3 conv and a ReLU."""
    name = name or _unique("enc")
    x = layers.Conv2D(int(filters), 3, strides=2, padding="same", name=f"{name}_conv")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def decoder_block(x, filters, *, name=None):
    """Double the size with a stride-2 3x3 transpose conv and a ReLU."""
    name = name or _unique("dec")
    x = layers.Conv2DTranspose(int(filters), 3, strides=2, padding="same", name=f"{name}_tconv")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


# --- the builder ------------------------------------------------------------------------


def conv_vae(input_shape=None, *, name="conv_vae", weights=None, filters=(32, 64), latent_dim=2,
             dense_units=16, kl_weight=1.0, seed=None):
    """A convolutional VAE: stride-2 convs and a dense layer to (mu, log sigma^2), a
    ``Sampling`` layer, then a dense layer and stride-2 transpose convs back to sigmoid
    pixel probabilities. The output is the reconstruction; ``kl_weight`` scales the KL term
    (1: the ELBO; above 1: a beta-VAE, Higgins et al. 2017). Input 28x28x1 by default."""
    _check(len(filters) >= 1, "filters", "at least 1 level", filters)
    _check(int(latent_dim) >= 1, "latent_dim", "a positive integer", latent_dim)
    _check(kl_weight >= 0, "kl_weight", "a number >= 0", kl_weight)
    shape = tuple(input_shape or (28, 28, 1))
    step = 2 ** len(filters)
    fits = len(shape) == 3 and None not in shape and shape[0] % step == shape[1] % step == 0 and min(shape) >= 1
    _check(fits, "input_shape", f"(height, width, channels) with sides that are multiples of {step}", input_shape)
    inputs = keras.Input(shape=tuple(int(d) for d in shape))

    x = inputs
    for i, f in enumerate(filters, start=1):
        x = encoder_block(x, f, name=f"enc{i}")
    code_shape = tuple(int(d) for d in x.shape[1:])
    x = layers.Flatten(name="enc_flatten")(x)
    x = layers.Dense(int(dense_units), activation="relu", name="enc_dense")(x)
    z_mean = layers.Dense(int(latent_dim), name="z_mean")(x)
    z_log_var = layers.Dense(int(latent_dim), name="z_log_var")(x)
    pixels = int(np.prod(shape))  # the loss is -ELBO per pixel: the KL is shared out over them
    z = Sampling(kl_weight=kl_weight / pixels, seed=seed, name="z")([z_mean, z_log_var])

    x = layers.Dense(int(np.prod(code_shape)), activation="relu", name="dec_dense")(z)
    x = layers.Reshape(code_shape, name="dec_reshape")(x)
    for i, f in enumerate(reversed(filters), start=1):
        x = decoder_block(x, f, name=f"dec{i}")
    outputs = layers.Conv2D(shape[-1], 3, padding="same", activation="sigmoid", name="reconstruction")(x)
    model = keras.Model(inputs, outputs, name=name)
    if weights is not None:
        model.load_weights(weights)
    return model


# --- using a trained VAE ----------------------------------------------------------------


def encoder(vae):
    """The model x -> (mu, log sigma^2) that shares ``vae``'s weights."""
    return keras.Model(vae.inputs, [vae.get_layer("z_mean").output, vae.get_layer("z_log_var").output],
                       name=f"{vae.name}_encoder")


def decoder(vae):
    """The model z -> pixel probabilities that shares ``vae``'s weights (every layer after ``z``)."""
    names = [layer.name for layer in vae.layers]
    z = keras.Input(shape=(vae.get_layer("z_mean").output.shape[-1],))
    x = z
    for layer_name in names[names.index("z") + 1:]:
        x = vae.get_layer(layer_name)(x)
    return keras.Model(z, x, name=f"{vae.name}_decoder")


def elbo(vae, images, seed=0):
    """The ELBO of each image in nats, from one draw of z per image: the log-likelihood of
    the image under the decoder's pixel probabilities minus the KL term."""
    x = np.asarray(images, dtype="float32")
    mean, log_var = (np.asarray(a, dtype="float64") for a in encoder(vae).predict(x, verbose=0))
    eps = np.random.default_rng(seed).normal(size=mean.shape)
    probs = np.asarray(decoder(vae).predict(mean + np.exp(0.5 * log_var) * eps, verbose=0), dtype="float64")
    probs = np.clip(probs, 1e-7, 1 - 1e-7)
    log_likelihood = np.sum(x * np.log(probs) + (1 - x) * np.log(1 - probs), axis=(1, 2, 3))
    kl = -0.5 * np.sum(1 + log_var - mean**2 - np.exp(log_var), axis=-1)
    return log_likelihood - kl


def feature_stages(model):
    """The encoder's stride-2 levels, shallow to deep."""
    return [layer.name for layer in model.layers if layer.name.startswith("enc") and layer.name.endswith("_relu")]


# --- cookbook metadata: plain data the cookbook reads; a copied file can delete it ---

FAMILY = "Generative models"
PAPERS = (
    "Kingma, Welling 2014. Auto-Encoding Variational Bayes. ICLR.",
    "Higgins et al. 2017. beta-VAE: Learning Basic Visual Concepts with a Constrained Variational Framework. ICLR.",
)
TASK = "generative"
DEFAULT_BUILDER = "conv_vae"
BUILDERS = {"conv_vae": {"params": 134_165}}
DEMO = {
    "builder": "conv_vae",
    "kwargs": {"input_shape": (32, 32, 1), "latent_dim": 2},
    "epochs": 15,
    "learning_rate": 3e-3,
}
