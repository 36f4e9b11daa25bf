"""DCGAN: a generator and a discriminator, both convolutional, trained against each other.

Paper: Radford, Metz and Chintala, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks" (ICLR 2016); the game itself is from
Goodfellow et al., "Generative Adversarial Nets" (NeurIPS 2014).

A generator G maps a random code z ~ N(0, I) to an image; a discriminator D maps an image
to a logit, "real" against "generated". D is trained to tell the training images from
G's, and G to make D call its images real:

    D maximizes  log sigmoid(D(x)) + log(1 - sigmoid(D(G(z))))
    G maximizes  log sigmoid(D(G(z)))     (the "non-saturating" loss of Goodfellow et al.)

The two take turns, one step each. Before DCGAN, convolutional GANs were hard to train;
the paper's guidelines (section 3) are what made them work, and this file follows them:

- no pooling: D halves the size with stride-2 convolutions, G doubles it with stride-2
  transpose convolutions, so both learn their own resampling;
- BatchNorm in both, except G's output layer and D's input layer;
- no hidden fully connected layers: G's code is projected and reshaped to a 4x4 map,
  D's last 4x4 map is flattened into a single logit;
- ReLU in G, tanh on its output (images in [-1, 1]); LeakyReLU (slope 0.2) in D;
- weights from N(0, 0.02), Adam with learning rate 2e-4 and beta_1 = 0.5.

No layer has a bias (BatchNorm's offset does that job), as in the PyTorch examples'
reference DCGAN: with ``filters=(64, 128, 256, 512)`` at 64x64x3 this file's G has that
model's 3,576,704 trainable parameters and D its 2,765,568.

The builder returns the game as one model. It takes a batch of real images in [0, 1]
and returns two logits per image: D on an image that G made from a fresh code (the
`LatentCode` layer draws one code per image), and D on the real image. (In that order:
Keras runs the later output's branch first, so a tool that stops at a shared D layer
sees the real image.) Both players' layers are top-level layers of that graph;
`generator(gan)` and `discriminator(gan)` are models that share them. A training step
needs two losses and two optimizers, one per player, so it cannot be a plain `fit`: the
cookbook's loop is `cookbook.gan.train_gan`.
"""

import keras
import numpy as np
from keras import layers, ops

INIT = keras.initializers.RandomNormal(0.0, 0.02)  # section 4: "zero-centered Normal, std 0.02"


def _check(ok, argument, expected, got):
    """The one argument check: what Keras would not say clearly, naming the argument."""
    if not ok:
        raise ValueError(f"{argument} must be {expected}, got {got!r}")


def _unique(prefix):
    """A fresh layer-name prefix, so a block called twice without a name does not collide."""
    return f"{prefix}{keras.backend.get_uid(prefix)}"


@keras.saving.register_keras_serializable(package="cookbook_dcgan")
class LatentCode(layers.Layer):
    """One code z ~ N(0, I) of ``latent_dim`` numbers per image of the input batch. Training
    draws fresh codes each call; inference draws the same codes for the same batch size (a
    fixed seed), so a prediction is repeatable."""

    def __init__(self, latent_dim, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim, self.seed = int(latent_dim), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=False):
        shape = (ops.shape(images)[0], self.latent_dim)
        seed = self.seed_generator if training else (self.seed or 0)  # an int: the same draws
        return keras.random.normal(shape, seed=seed)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.latent_dim)

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "seed": self.seed}


# --- blocks -----------------------------------------------------------------------------


def generator_block(x, filters, *, name=None):
    """Double the size: a stride-2 4x4 transpose conv, BatchNorm, ReLU."""
    name = name or _unique("gen_up")
    x = layers.Conv2DTranspose(int(filters), 4, strides=2, padding="same", use_bias=False,
                               kernel_initializer=INIT, name=f"{name}_tconv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def discriminator_block(x, filters, *, batch_norm=True, name=None):
    """Halve the size: a stride-2 4x4 conv, BatchNorm (not on the input layer), LeakyReLU.
    ``x`` may be a list of tensors: each goes through the same layers (the same weights)."""
    name = name or _unique("disc_down")
    steps = [layers.Conv2D(int(filters), 4, strides=2, padding="same", use_bias=False,
                           kernel_initializer=INIT, name=f"{name}_conv")]
    if batch_norm:
        steps.append(layers.BatchNormalization(name=f"{name}_bn"))
    steps.append(layers.LeakyReLU(0.2, name=f"{name}_lrelu"))
    return _each(steps, x)


def _each(steps, x):
    """Layers applied in turn to a tensor, or to each tensor of a list with shared weights."""
    if isinstance(x, (list, tuple)):
        return [_each(steps, tensor) for tensor in x]
    for step in steps:
        x = step(x)
    return x


# --- the builder ------------------------------------------------------------------------


def dcgan(input_shape=None, *, name="dcgan", weights=None, latent_dim=100,
          filters=(128, 256, 512, 1024), seed=None):
    """The DCGAN game for images of ``input_shape`` (64x64x3 by default, the paper's size).

    ``filters`` are D's widths from the input up, one stride-2 level each; G mirrors them
    from its projection down. The sides must be multiples of 2**len(filters); G projects
    the code to a map that much smaller (4x4 for the paper's 64x64 and four levels). The
    model maps real images in [0, 1] to ``[D(G(z)), D(real)]``, two logits per image."""
    _check(len(filters) >= 1 and min(filters) >= 1, "filters", "positive widths", filters)
    _check(int(latent_dim) >= 1, "latent_dim", "a positive integer", latent_dim)
    shape = tuple(input_shape or (64, 64, 3))
    step = 2 ** len(filters)
    fits = len(shape) == 3 and None not in shape and min(shape) >= 1
    fits = fits and shape[0] % step == shape[1] % step == 0
    _check(fits, "input_shape", f"(height, width, channels), sides multiples of {step}",
           input_shape)
    height, width, channels = (int(d) for d in shape)
    real = keras.Input(shape=(height, width, channels))

    # G: project the code to a small map (no hidden dense layer), then double the size per level.
    start = (height // step, width // step, int(filters[-1]))
    z = LatentCode(latent_dim, seed=seed, name="gen_code")(real)
    x = layers.Dense(int(np.prod(start)), use_bias=False, kernel_initializer=INIT,
                     name="gen_project")(z)
    x = layers.Reshape(start, name="gen_reshape")(x)
    x = layers.BatchNormalization(name="gen_project_bn")(x)
    x = layers.Activation("relu", name="gen_project_relu")(x)
    for i, f in enumerate(reversed(filters[:-1]), start=1):
        x = generator_block(x, f, name=f"gen_up{i}")
    fake = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", activation="tanh",
                                  use_bias=False, kernel_initializer=INIT, name="gen_image")(x)

    # D: the same layers score the real batch and the generated one.
    scaled = layers.Rescaling(2.0, offset=-1.0, name="disc_scale")(real)  # to G's [-1, 1]
    pair = [scaled, fake]
    for i, f in enumerate(filters, start=1):
        pair = discriminator_block(pair, f, batch_norm=i > 1, name=f"disc_down{i}")
    head = [layers.Flatten(name="disc_flatten"),
            layers.Dense(1, use_bias=False, kernel_initializer=INIT, name="disc_logit")]
    real_logit, fake_logit = _each(head, pair)
    # D(G(z)) first: Keras runs the last output's branch first, so a tool that taps a D layer
    # at its first call sees the real image.
    model = keras.Model(real, [fake_logit, real_logit], name=name)
    if weights is not None:
        model.load_weights(weights)
    return model


# --- using a trained GAN ----------------------------------------------------------------


def _apply(gan, prefix, x, start=None):
    """``x`` through ``gan``'s layers named ``prefix*`` (but ``start``), in graph order."""
    for layer in gan.layers:
        if layer.name.startswith(prefix) and layer.name != start:
            x = layer(x)
    return x


def generator(gan):
    """The model z -> image in [-1, 1] that shares ``gan``'s generator layers."""
    z = keras.Input(shape=(gan.get_layer("gen_code").latent_dim,))
    return keras.Model(z, _apply(gan, "gen_", z, start="gen_code"), name=f"{gan.name}_generator")


def discriminator(gan):
    """The model image in [0, 1] -> logit that shares ``gan``'s discriminator layers."""
    image = keras.Input(shape=gan.input_shape[1:])
    return keras.Model(image, _apply(gan, "disc_", image), name=f"{gan.name}_discriminator")


def feature_stages(model):
    """The discriminator's stride-2 levels, shallow to deep."""
    return [layer.name for layer in model.layers
            if layer.name.startswith("disc_down") and layer.name.endswith("_lrelu")]


# --- cookbook metadata: plain data the cookbook reads; a copied file can delete it ---

FAMILY = "Generative models"
PAPERS = (
    ("Radford, Metz, Chintala 2016. Unsupervised Representation Learning with Deep Convolutional "
     "Generative Adversarial Networks. ICLR."),
    "Goodfellow et al. 2014. Generative Adversarial Nets. NeurIPS.",
)
TASK = "adversarial"
DEFAULT_BUILDER = "dcgan"
BUILDERS = {"dcgan": {"params": 23_702_016}}
DEMO = {
    "builder": "dcgan",
    "kwargs": {"input_shape": (32, 32, 1), "latent_dim": 64, "filters": (16, 32, 64)},
    "epochs": 25,
    "batch_size": 32,
    "learning_rate": 2e-4,
    "optimizer": "adam",
}
