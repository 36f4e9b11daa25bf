"""The only code that differs between backends, and the model probing built on it.

One function takes a gradient (``tf.GradientTape`` on TensorFlow, ``jax.value_and_grad``
over ``model.stateless_call`` on JAX), one runs the model, one compiles. TensorFlow is
imported only on the TensorFlow backend.

How a layer's activation is reached without building a sub-model: while a
visualization runs, the chosen layer's ``call`` is wrapped (a "tap") so that its
output is recorded, a zero tensor can be added to it (the gradient with respect to
that zero is the gradient with respect to the activation), and the forward pass can
stop right after it. That is why nested models (a base model inside a Functional or
Sequential model) and Sequential models work, where sub-model tricks raise "Graph
disconnected". The same tap swaps a final softmax (or sigmoid) for the identity, so
class scores are always the pre-softmax logits, also when the softmax is folded into
the last Dense layer. For guided backpropagation a tap gives each ReLU, for that one
pass, a gradient that lets only positive signals back (``keras.ops.custom_gradient``);
the layers are restored when the pass ends, so the user's model is never edited.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np
from keras import ops

from ._common import _chunks, _class_onehot, _walk


def _backend():
    name = keras.backend.backend()
    if name not in ("tensorflow", "jax"):
        raise NotImplementedError(
            f"cookbook.visualize supports the tensorflow and jax backends, not {name!r}"
        )
    return name


def _value_and_grad(fn, arg):
    """``fn(arg) -> (scalar, aux)``; returns ``(scalar, aux, d scalar / d arg)``."""
    if _backend() == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(arg)
            value, aux = fn(arg)
        return value, aux, tape.gradient(value, arg)
    import jax

    (value, aux), grad = jax.value_and_grad(fn, has_aux=True)(arg)
    return value, aux, grad


def _model_state(model):
    """What the compiled functions take as the model's weights (JAX: their values)."""
    if _backend() == "jax":
        return (
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
        )
    return None


def _run_model(model, state, x):
    """A forward pass in inference mode; on JAX a pure ``stateless_call``."""
    if state is None:
        return model(x, training=False)
    return model.stateless_call(state[0], state[1], x, training=False)[0]


def _compile(fn, jit_compile=False):
    if _backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True, jit_compile=bool(jit_compile), autograph=False)
    import jax

    return jax.jit(fn)


def _cached(model, key, build):
    """``build()``, once per model and key (compiled functions live on the model)."""
    cache = model.__dict__.get("_cookbook_visualize_cache")
    if cache is None:
        cache = {}
        object.__setattr__(model, "_cookbook_visualize_cache", cache)
    if key not in cache:
        cache[key] = build()
    return cache[key]


# --- taps: record, perturb and stop at a layer; unfold the softmax head ---------------------


class _Stop(Exception):
    """Raised by a tap to end the forward pass after the last layer needed."""


def _guided(forward, slope):
    """``forward`` with the guided-backpropagation gradient (Springenberg et al. 2015):
    the upstream gradient's positive part times the ReLU's slope at the input."""

    @ops.custom_gradient
    def guided(x):
        def grad(*args, upstream=None):
            upstream = args[0] if upstream is None else upstream
            return ops.relu(upstream) * ops.cast(slope(x), upstream.dtype)

        return forward(x), grad

    return guided


def _relu_slope(layer):
    """The slope of the layer's ReLU as a function of its input, or None if it has none:
    ``ReLU`` layers (any threshold, negative slope, maximum), and ``relu``/``relu6`` as
    the ``activation`` of any layer (``Activation``, and fused into Conv, Dense, ...)."""
    if isinstance(layer, keras.layers.ReLU):
        top, low, threshold = layer.max_value, float(layer.negative_slope), float(layer.threshold)

        def slope(t):
            s = ops.where(t > threshold, 1.0, low)
            return s if top is None else ops.where(t < float(top), s, 0.0)

        return slope
    name = getattr(getattr(layer, "activation", None), "__name__", None)
    if name == "relu":
        return lambda t: t > 0
    if name == "relu6":
        return lambda t: ops.logical_and(t > 0, t < 6)
    return None


def _relu_layers(model):
    """The layers whose ReLU guided backpropagation guides (see :func:`_relu_slope`)."""
    return tuple(layer for layer in _walk(model) if _relu_slope(layer) is not None)


def _call_with_activation(layer, activation, original, args, kwargs):
    """``original(*args, **kwargs)`` with ``layer.activation`` swapped for the call only."""
    saved = layer.activation
    object.__setattr__(layer, "activation", activation)
    try:
        return original(*args, **kwargs)
    finally:
        object.__setattr__(layer, "activation", saved)


@contextlib.contextmanager
def _taps(record=(), perturb=None, stop=None, head=None, store=None, guided=()):
    """Wrap layers' ``call`` for the duration of one (traced) forward pass.

    record: layers whose outputs go into ``store[layer.name]`` (cast to float32);
    perturb: {layer: tensor} added to that layer's output; stop: a layer after which
    ``_Stop`` is raised; head: the output layer whose softmax/sigmoid is bypassed;
    guided: ReLU layers (see :func:`_relu_layers`) given the guided gradient.
    """
    perturb = perturb or {}
    layers = list(dict.fromkeys([*record, *perturb, *([stop] if stop else []), *([head] if head else []),
                                 *guided]))
    saved = []
    for layer in layers:
        original = layer.call

        def call(*args, _layer=layer, _original=original, **kwargs):
            if _layer is head and isinstance(_layer, keras.layers.Softmax):
                out = args[0] if args else kwargs["inputs"]
            elif _layer is head:
                out = _call_with_activation(_layer, keras.activations.linear, _original, args, kwargs)
            elif _layer in guided and isinstance(_layer, keras.layers.ReLU):
                out = _guided(_original, _relu_slope(_layer))(args[0] if args else kwargs["inputs"])
            elif _layer in guided:
                activation = _guided(_layer.activation, _relu_slope(_layer))
                out = _call_with_activation(_layer, activation, _original, args, kwargs)
            else:
                out = _original(*args, **kwargs)
            if _layer in perturb:
                out = out + ops.cast(perturb[_layer], out.dtype)
            if _layer in record and _layer.name not in store:  # a shared layer: its first call, as stop has it
                store[_layer.name] = ops.cast(out, "float32")
            if _layer is stop:
                raise _Stop()
            return out

        saved.append((layer, "call" in layer.__dict__, layer.__dict__.get("call")))
        object.__setattr__(layer, "call", call)
    try:
        yield
    finally:
        for layer, had, value in saved:
            if had:
                object.__setattr__(layer, "call", value)
            else:
                object.__delattr__(layer, "call")


def _head_layer(model):
    """The output layer, if it ends in softmax/sigmoid (which the tap then bypasses)."""
    layer = model.layers[-1] if model.layers else None
    while isinstance(layer, keras.Model) and layer.layers:
        layer = layer.layers[-1]
    if isinstance(layer, keras.layers.Softmax):
        return layer
    activation = getattr(layer, "activation", None)
    if getattr(activation, "__name__", None) in ("softmax", "sigmoid"):
        return layer
    return None


def _probe(model, state, x, *, record=(), perturb=None, stop=None, logits=True, guided=()):
    """Run ``model`` on ``x`` with taps; returns ``(float32 output or None, store)``."""
    store = {}
    head = _head_layer(model) if logits else None
    with _taps(record=record, perturb=perturb, stop=stop, head=head, store=store, guided=guided):
        try:
            out = _run_model(model, state, x)
        except _Stop:
            return None, store
    if isinstance(out, (list, tuple)):
        out = out[0]
    return ops.cast(out, "float32"), store


# --- forward passes used by several modules -------------------------------------------------


def _activation_shape(model, layer, image_shape):
    """The layer's output shape for one image (a truncated forward, cached)."""

    def build():
        state = _model_state(model)
        _, store = _probe(model, state, np.zeros((1, *image_shape), "float32"), record=(layer,), stop=layer)
        return tuple(store[layer.name].shape[1:])

    return _cached(model, ("shape", layer.name, tuple(image_shape)), build)


def _layer_outputs(model, layer, x, batch_size):
    """Yield ``(start index, float32 numpy output of layer)`` batch by batch (a truncated forward)."""

    def build():
        return _compile(lambda inputs, state: _probe(model, state, inputs, record=(layer,), stop=layer,
                                                     logits=False)[1][layer.name])

    fn = _cached(model, ("layer_output", layer.name), build)
    state = _model_state(model)
    for a, b in _chunks(len(x), batch_size):
        yield a, keras.ops.convert_to_numpy(fn(x[a:b], state))


def _predict(model, x, batch_size, jit_compile=False):
    """The pre-softmax logits of ``x``, batch by batch."""
    fn = _cached(model, ("logits", bool(jit_compile)),
                 lambda: _compile(lambda inputs, state: _probe(model, state, inputs)[0], jit_compile))
    state = _model_state(model)
    out = [keras.ops.convert_to_numpy(fn(x[a:b], state)) for a, b in _chunks(len(x), batch_size)]
    return np.concatenate(out)


def _targets(model, x, class_index, batch_size):
    """Fixed one-hot targets: the given classes, or each image's prediction."""
    onehot = _class_onehot(model, class_index, len(x))
    if class_index is None:
        onehot = np.eye(onehot.shape[1], dtype="float32")[_predict(model, x, batch_size).argmax(-1)]
    return onehot


def _probabilities(model, x, batch_size):
    """The model's class probabilities for ``x``: the softmax of the logits (the sigmoid
    where the head is a sigmoid), so a model that outputs logits is scored the same way."""
    logits = _predict(model, x, batch_size).astype("float64")
    head = _head_layer(model)
    if head is not None and getattr(getattr(head, "activation", None), "__name__", None) == "sigmoid":
        return 1.0 / (1.0 + np.exp(-logits))
    logits -= logits.max(axis=-1, keepdims=True)
    return np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
