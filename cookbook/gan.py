"""Training a GAN, and scoring its samples with a classifier.

``keras.Model.fit`` lowers one loss over all of a model's trainable weights. A GAN step
needs two: the discriminator D lowers its loss over its own weights, then the generator G
lowers its loss over its own. So the cookbook trains a GAN with its own short loop,
:func:`train_gan`, on the one-model form of ``recipes/dcgan.py`` (real images in,
``[D(G(z)), D(real)]`` out; G's layers are named ``gen_*``, D's ``disc_*``).

Each backend takes its gradients in its own small function (``tf.GradientTape`` inside a
``tf.function``; ``jax.value_and_grad`` over ``stateless_call`` inside ``jax.jit``).
Everything around them (batches, epochs, history, samples per epoch) is shared.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from cookbook.recipes import dcgan

__all__ = ["GANHistory", "sample_quality", "train_gan"]


@dataclasses.dataclass
class GANHistory:
    """Per-epoch means (``d_loss``, ``g_loss``, and ``p_real``/``p_fake``: D's mean
    probability of "real" for the real and the generated images), and G's images of the
    fixed ``codes`` after each epoch (``samples[epoch]``; None without codes)."""

    history: dict
    samples: np.ndarray | None
    seconds: float


def _bce(logits, target):
    from keras import ops

    return ops.mean(ops.binary_crossentropy(ops.full(ops.shape(logits), target), logits, from_logits=True))


def _losses(fake_logit, real_logit):
    """D's loss (real -> 1, fake -> 0), G's non-saturating loss (fake -> 1), and D's mean
    probabilities of "real"."""
    from keras import ops

    d_loss = _bce(real_logit, 1.0) + _bce(fake_logit, 0.0)
    g_loss = _bce(fake_logit, 1.0)
    return d_loss, g_loss, ops.mean(ops.sigmoid(real_logit)), ops.mean(ops.sigmoid(fake_logit))


def _players(gan):
    """For each of gan.trainable_variables: True when it is G's (a ``gen_*`` layer's)."""
    generator = {id(v) for layer in gan.layers if layer.name.startswith("gen_") for v in layer.trainable_variables}
    if not generator or len(generator) == len(gan.trainable_variables):
        raise ValueError("gan must have trainable generator layers named gen_* and discriminator layers (disc_*), "
                         "as recipes/dcgan.py builds it")
    return [id(v) in generator for v in gan.trainable_variables]


def _tensorflow_step(gan, d_optimizer, g_optimizer, is_generator):
    import tensorflow as tf

    d_vars = [v for v, g in zip(gan.trainable_variables, is_generator) if not g]
    g_vars = [v for v, g in zip(gan.trainable_variables, is_generator) if g]

    @tf.function
    def step(real):
        with tf.GradientTape() as tape:
            d_loss, _, d_real, d_fake = _losses(*gan(real, training=True))
        d_optimizer.apply(tape.gradient(d_loss, d_vars), d_vars)
        with tf.GradientTape() as tape:
            _, g_loss, _, _ = _losses(*gan(real, training=True))
        g_optimizer.apply(tape.gradient(g_loss, g_vars), g_vars)
        return d_loss, g_loss, d_real, d_fake

    return lambda real: [float(v) for v in step(tf.convert_to_tensor(real))], lambda: None


def _jax_step(gan, d_optimizer, g_optimizer, is_generator):
    import jax

    def split(values):
        return ([v for v, g in zip(values, is_generator) if g], [v for v, g in zip(values, is_generator) if not g])

    def join(g_values, d_values):
        g_values, d_values = iter(g_values), iter(d_values)
        return [next(g_values) if g else next(d_values) for g in is_generator]

    def objective(player):
        def loss(own, other, non_trainable, real):
            values = join(own, other) if player == "g" else join(other, own)
            logits, non_trainable = gan.stateless_call(values, non_trainable, real, training=True)
            d_loss, g_loss, d_real, d_fake = _losses(*logits)
            return (g_loss if player == "g" else d_loss), (non_trainable, d_loss, g_loss, d_real, d_fake)
        return jax.value_and_grad(loss, has_aux=True)

    d_grad, g_grad = objective("d"), objective("g")

    @jax.jit
    def step(state, real):
        g_values, d_values, non_trainable, d_opt, g_opt = state
        (_, (non_trainable, d_loss, _, d_real, d_fake)), grads = d_grad(d_values, g_values, non_trainable, real)
        d_values, d_opt = d_optimizer.stateless_apply(d_opt, grads, d_values)
        (_, (non_trainable, _, g_loss, _, _)), grads = g_grad(g_values, d_values, non_trainable, real)
        g_values, g_opt = g_optimizer.stateless_apply(g_opt, grads, g_values)
        return (g_values, d_values, non_trainable, d_opt, g_opt), (d_loss, g_loss, d_real, d_fake)

    g_values, d_values = split([v.value for v in gan.trainable_variables])
    state = [(g_values, d_values, [v.value for v in gan.non_trainable_variables],
              [v.value for v in d_optimizer.variables], [v.value for v in g_optimizer.variables])]

    def run(real):
        state[0], figures = step(state[0], real)
        return [float(v) for v in figures]

    def write_back():  # the jitted state into the Keras variables, so predict and save see it
        g_values, d_values, non_trainable, d_opt, g_opt = state[0]
        pairs = [*zip(gan.trainable_variables, join(g_values, d_values)),
                 *zip(gan.non_trainable_variables, non_trainable),
                 *zip(d_optimizer.variables, d_opt), *zip(g_optimizer.variables, g_opt)]
        for variable, value in pairs:  # copies: Keras's predict may donate a variable's buffer
            variable.assign(jax.numpy.copy(value))

    return run, write_back


_STEPS = {"tensorflow": _tensorflow_step, "jax": _jax_step}


def train_gan(gan, images, *, epochs=20, batch_size=64, learning_rate=2e-4, beta_1=0.5, seed=0, codes=None,
              verbose=1) -> GANHistory:
    """Train ``gan`` on ``images`` (N, H, W, C in [0, 1]): per batch, one Adam step of D on a
    real and a generated batch, then one of G (DCGAN's settings: 2e-4, beta_1 0.5). A last
    partial batch is dropped, so every step has the same shape. ``codes`` (K, latent_dim):
    G's images of them after every epoch, in [0, 1]. Runs on the TensorFlow and JAX backends."""
    import keras

    backend = keras.backend.backend()
    if backend not in _STEPS:
        raise ValueError(f"train_gan runs on the TensorFlow and JAX backends, not {backend!r}")
    images = np.asarray(images, dtype="float32")
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(gan.input_shape[1:]):
        raise ValueError(f"images must have shape (N, {', '.join(map(str, gan.input_shape[1:]))}), "
                         f"got {images.shape}")
    for value, name in ((epochs, "epochs"), (batch_size, "batch_size")):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if len(images) < batch_size:
        raise ValueError(f"images: {len(images)} is fewer than one batch of {batch_size}")
    is_generator = _players(gan)
    generator = dcgan.generator(gan)
    optimizers = [keras.optimizers.Adam(learning_rate, beta_1=beta_1, name=f"{p}_adam") for p in ("d", "g")]
    optimizers[0].build([v for v, g in zip(gan.trainable_variables, is_generator) if not g])
    optimizers[1].build([v for v, g in zip(gan.trainable_variables, is_generator) if g])
    run, write_back = _STEPS[backend](gan, *optimizers, is_generator)

    keys = ("d_loss", "g_loss", "p_real", "p_fake")
    history, samples = {key: [] for key in keys}, []
    rng = np.random.default_rng(seed)
    steps = len(images) // batch_size
    started = time.perf_counter()
    for epoch in range(epochs):
        bar = keras.utils.Progbar(steps, verbose=verbose, stateful_metrics=keys) if verbose else None
        if bar:
            print(f"Epoch {epoch + 1}/{epochs}")
        order = rng.permutation(len(images))
        totals = np.zeros(len(keys))
        for i in range(steps):
            figures = run(images[order[i * batch_size:(i + 1) * batch_size]])
            totals += figures
            if bar:
                bar.update(i + 1, list(zip(keys, figures)))
        for key, total in zip(keys, totals):
            history[key].append(float(total / steps))
        if codes is not None:
            write_back()
            samples.append((np.asarray(generator.predict(codes, verbose=0)) + 1) / 2)
    write_back()
    return GANHistory(history, np.stack(samples) if samples else None, time.perf_counter() - started)


def sample_quality(classifier, samples, *, threshold=0.9) -> dict:
    """How a trained classifier sees generated images: the share it assigns to a class with
    probability >= ``threshold`` (``confident_share``), and how those confident samples
    spread over the classes (``class_counts``, and their entropy in bits: log2(classes) when
    every class is equally common, 0 when G makes one class only: mode collapse)."""
    probabilities = np.asarray(classifier.predict(np.asarray(samples, dtype="float32"), verbose=0))
    if probabilities.ndim != 2:
        raise ValueError(f"classifier must output (N, classes) probabilities, got shape {probabilities.shape}")
    confident = probabilities.max(axis=1) >= threshold
    counts = np.bincount(probabilities.argmax(axis=1)[confident], minlength=probabilities.shape[1])
    shares = counts[counts > 0] / max(1, counts.sum())
    return {"confident_share": float(confident.mean()), "class_counts": [int(c) for c in counts],
            "class_entropy_bits": float(-np.sum(shares * np.log2(shares))), "samples": len(probabilities)}
