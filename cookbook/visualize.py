"""What a convnet learned: filter visualization, Grad-CAM and friends.

Works on the TensorFlow and JAX backends. The only backend-specific code is the
short section "Backend" below: one function takes a gradient (``tf.GradientTape`` on
TensorFlow, ``jax.value_and_grad`` over ``model.stateless_call`` on JAX), one runs the
model, one compiles. Everything above it is shared and written with ``keras.ops``.

How a layer's activation is reached without building a sub-model: while a
visualization runs, the chosen layer's ``call`` is wrapped (a "tap") so that its
output is recorded, a zero tensor can be added to it (the gradient with respect to
that zero is the gradient with respect to the activation), and the forward pass can
stop right after it. That is why nested models (a base model inside a Functional or
Sequential model) and Sequential models work, where sub-model tricks raise "Graph
disconnected". The same tap swaps a final softmax (or sigmoid) for the identity, so
class scores are always the pre-softmax logits, also when the softmax is folded into
the last Dense layer.

Throughout: BatchNorm runs in inference mode (``training=False``); mixed-precision
models work, with objectives reduced and gradients returned in float32; non-finite
gradients stop with :class:`NonFiniteGradientError`.

Public functions: :func:`filter_images`, :func:`grad_cam`, :func:`grad_cam_plus_plus`,
:func:`saliency`, :func:`smoothgrad`, :func:`occlusion`, :func:`activations`,
:func:`first_layer_filters`, :func:`deep_dream`, :func:`pointing_game`, and the
drawing helpers :func:`make_grid`, :func:`plot_grid`, :func:`plot_filters`,
:func:`overlay`, :func:`to_display`.
"""

from __future__ import annotations

import contextlib
import math
import numbers

import keras
import numpy as np
from keras import ops

__all__ = [
    "NonFiniteGradientError",
    "filter_images",
    "grad_cam",
    "grad_cam_plus_plus",
    "saliency",
    "smoothgrad",
    "occlusion",
    "activations",
    "first_layer_filters",
    "deep_dream",
    "pointing_game",
    "make_grid",
    "plot_grid",
    "plot_filters",
    "overlay",
    "to_display",
    "conv_layer_names",
]

CONV_TYPES = (
    keras.layers.Conv2D,
    keras.layers.SeparableConv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.Conv2DTranspose,
)
# Lucid's colour-correlation square root (ImageNet statistics), used to decorrelate
# the three colour channels of the Fourier parameterization.
_COLOR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], "float32")
_COLOR_SQRT /= np.max(np.linalg.norm(_COLOR_SQRT, axis=0))


class NonFiniteGradientError(FloatingPointError):
    """A gradient held NaN or Inf, so the visualization cannot go on."""


# =====================================================================================
# Backend: the only code that differs between TensorFlow and JAX.
# =====================================================================================


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


# =====================================================================================
# Taps: record, perturb and stop at a layer; unfold the softmax head.
# =====================================================================================


class _Stop(Exception):
    """Raised by a tap to end the forward pass after the last layer needed."""


@contextlib.contextmanager
def _taps(record=(), perturb=None, stop=None, head=None, store=None):
    """Wrap layers' ``call`` for the duration of one (traced) forward pass.

    record: layers whose outputs go into ``store[layer.name]`` (cast to float32);
    perturb: {layer: tensor} added to that layer's output; stop: a layer after which
    ``_Stop`` is raised; head: the output layer whose softmax/sigmoid is bypassed.
    """
    perturb = perturb or {}
    layers = list(dict.fromkeys([*record, *perturb, *([stop] if stop else []), *([head] if head else [])]))
    saved = []
    for layer in layers:
        original = layer.call

        def call(*args, _layer=layer, _original=original, **kwargs):
            if _layer is head:
                if isinstance(_layer, keras.layers.Softmax):
                    out = args[0] if args else kwargs["inputs"]
                else:
                    activation = _layer.activation
                    object.__setattr__(_layer, "activation", keras.activations.linear)
                    try:
                        out = _original(*args, **kwargs)
                    finally:
                        object.__setattr__(_layer, "activation", activation)
            else:
                out = _original(*args, **kwargs)
            if _layer in perturb:
                out = out + ops.cast(perturb[_layer], out.dtype)
            if _layer in record:
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


def _probe(model, state, x, *, record=(), perturb=None, stop=None, logits=True):
    """Run ``model`` on ``x`` with taps; returns ``(float32 output or None, store)``."""
    store = {}
    head = _head_layer(model) if logits else None
    with _taps(record=record, perturb=perturb, stop=stop, head=head, store=store):
        try:
            out = _run_model(model, state, x)
        except _Stop:
            return None, store
    if isinstance(out, (list, tuple)):
        out = out[0]
    return ops.cast(out, "float32"), store


# =====================================================================================
# Layers, arguments and the compiled-function cache.
# =====================================================================================


def _walk(model):
    """All layers, depth first, nested models expanded (the models themselves too)."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _walk(layer)


def _output_rank(layer):
    try:
        return len(layer.output.shape)
    except (AttributeError, ValueError, TypeError):
        return None


def conv_layer_names(model):
    """Names of the convolution layers of ``model``, nested models included, in order."""
    _check_model(model)
    return [layer.name for layer in _walk(model) if isinstance(layer, CONV_TYPES)]


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    if not model.built:
        raise ValueError("model must be built (call it once or give it an Input)")


def _find_layer(model, layer, argname="layer"):
    """The layer called ``layer`` (a name or a Layer) with a 4-D output; clear errors."""
    candidates = [l for l in _walk(model) if not isinstance(l, (keras.Model, keras.layers.InputLayer))]
    if layer is None:
        spatial = [l for l in candidates if _output_rank(l) == 4]
        if not spatial:
            raise ValueError(f"{argname}: model {model.name!r} has no layer with a 4-D (N, H, W, C) output")
        return spatial[-1]
    if isinstance(layer, keras.layers.Layer):
        if not any(l is layer for l in candidates):
            raise ValueError(f"{argname}: layer {layer.name!r} is not part of model {model.name!r}")
        found = layer
    elif isinstance(layer, str):
        matches = [l for l in candidates if l.name == layer]
        if not matches:
            convs = ", ".join(conv_layer_names(model)) or "(none)"
            raise ValueError(
                f"{argname}: no layer named {layer!r} in model {model.name!r}. "
                f"Conv layers available: {convs}. Any layer with a 4-D output also works."
            )
        found = matches[0]
    else:
        raise TypeError(f"{argname} must be a layer name (str), a keras Layer or None, got {type(layer).__name__}")
    rank = _output_rank(found)
    if rank is not None and rank != 4:
        raise ValueError(
            f"{argname}: layer {found.name!r} has a {rank}-D output; a 4-D (N, H, W, C) output is needed. "
            f"Conv layers available: {', '.join(conv_layer_names(model))}"
        )
    return found


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


def _num_classes(model):
    try:
        shape = model.output_shape
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(shape, list):
        shape = shape[0]
    return shape[-1] if shape and len(shape) == 2 else None


def _check_images(model, images, argname="images", rank=4):
    """A float32 numpy batch of the model's input shape, or a clear error."""
    if isinstance(images, (list, tuple)):
        raise TypeError(f"{argname} must be an array of shape (N, H, W, C), got a {type(images).__name__}")
    try:
        array = np.asarray(keras.ops.convert_to_numpy(images))
    except Exception as error:  # noqa: BLE001 - any unconvertible object
        raise TypeError(f"{argname} must be an array, got {type(images).__name__}") from error
    if array.dtype.kind != "f":
        raise TypeError(
            f"{argname} must be a floating-point array (float16/32/64), got dtype {array.dtype}; "
            "convert integer pixels with images.astype('float32') (and scale them as in training)"
        )
    if array.ndim != rank:
        what = "(N, H, W, C)" if rank == 4 else "(H, W, C)"
        raise ValueError(f"{argname} must have rank {rank} {what}, got shape {array.shape}")
    if rank == 4 and array.shape[0] < 1:
        raise ValueError(f"{argname} is an empty batch")
    expected = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else None
    got = array.shape[1:] if rank == 4 else array.shape
    if expected is not None and len(expected) == len(got):
        if any(e is not None and e != g for e, g in zip(expected, got)):
            raise ValueError(
                f"{argname} must have per-image shape {expected} for model {model.name!r} "
                f"(None: any size), got {tuple(got)}"
            )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{argname} holds NaN or Inf values")
    return array.astype("float32")


def _check_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_number(value, name, minimum=None, strict=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum}, got {value}")
    return value


def _class_onehot(model, class_index, n):
    """(n, K) one-hot rows; an all-zero row means "the predicted class" (argmax)."""
    k = _num_classes(model)
    if class_index is None:
        if k is None:
            raise ValueError("class_index: the model's number of classes is unknown; give class_index")
        return np.zeros((n, k), "float32")
    if isinstance(class_index, bool):
        raise TypeError("class_index must be an int, a sequence of n ints or None, got bool")
    index = np.asarray(class_index)
    if index.dtype.kind not in "iu":
        raise TypeError(f"class_index must be an int, a sequence of ints or None, got {index.dtype}")
    if index.ndim == 0:
        index = np.full((n,), int(index))
    if index.shape != (n,):
        raise ValueError(f"class_index must be one int or {n} ints (one per image), got shape {index.shape}")
    if k is None:
        raise ValueError("class_index: the model's number of classes is unknown (output is not (N, K))")
    if index.min() < 0 or index.max() >= k:
        raise ValueError(f"class_index must be in [0, {k - 1}] for model {model.name!r}, got {index.tolist()}")
    return np.eye(k, dtype="float32")[index]


def _cached(model, key, build):
    cache = model.__dict__.get("_cookbook_visualize_cache")
    if cache is None:
        cache = {}
        object.__setattr__(model, "_cookbook_visualize_cache", cache)
    if key not in cache:
        cache[key] = build()
    return cache[key]


def _raise_if_nonfinite(finite, what):
    if not bool(np.all(keras.ops.convert_to_numpy(finite))):
        raise NonFiniteGradientError(
            f"{what}: the gradient holds NaN or Inf. Check the inputs' scale, the model's "
            "weights (did training diverge?) and, under mixed precision, overflowing float16 values."
        )


def _chunks(n, size):
    return [(i, min(i + size, n)) for i in range(0, n, size)]


def _activation_shape(model, layer, image_shape):
    """The layer's output shape for one image (a truncated forward, cached)."""

    def build():
        state = _model_state(model)
        _, store = _probe(model, state, np.zeros((1, *image_shape), "float32"), record=(layer,), stop=layer)
        return tuple(store[layer.name].shape[1:])

    return _cached(model, ("shape", layer.name, tuple(image_shape)), build)


# =====================================================================================
# Class-activation maps: Grad-CAM and Grad-CAM++.
# =====================================================================================


def _cam_function(model, layer, plus_plus, jit_compile):
    def run(x, onehot, delta, state):
        def objective(d):
            logits, store = _probe(model, state, x, record=(layer,), perturb={layer: d})
            chosen = ops.where(
                ops.sum(onehot, axis=-1, keepdims=True) > 0,
                onehot,
                ops.one_hot(ops.argmax(ops.stop_gradient(logits), axis=-1), ops.shape(logits)[-1]),
            )
            return ops.sum(logits * chosen), (store[layer.name], chosen)

        _, (act, chosen), grads = _value_and_grad(objective, delta)
        grads = ops.cast(grads, "float32")
        if plus_plus:
            g2, g3 = grads**2, grads**3
            denom = 2.0 * g2 + ops.sum(act, axis=(1, 2), keepdims=True) * g3
            alpha = g2 / ops.where(ops.abs(denom) > 0, denom, ops.ones_like(denom))
            weights = ops.sum(alpha * ops.relu(grads), axis=(1, 2), keepdims=True)
        else:
            weights = ops.mean(grads, axis=(1, 2), keepdims=True)
        cam = ops.relu(ops.sum(weights * act, axis=-1))
        return cam, ops.argmax(chosen, axis=-1), ops.all(ops.isfinite(grads))

    return _compile(run, jit_compile)


def _cam(model, images, layer, class_index, plus_plus, resize, normalize, batch_size, jit_compile, name):
    _check_model(model)
    x = _check_images(model, images)
    batch_size = _check_int(batch_size, "batch_size")
    target = _find_layer(model, layer)
    onehot = _class_onehot(model, class_index, len(x))
    fn = _cached(model, ("cam", target.name, plus_plus, bool(jit_compile)),
                 lambda: _cam_function(model, target, plus_plus, jit_compile))
    shape = _activation_shape(model, target, x.shape[1:])
    state = _model_state(model)
    maps, classes = [], []
    for a, b in _chunks(len(x), batch_size):
        delta = np.zeros((b - a, *shape), "float32")
        cam, cls, finite = fn(x[a:b], onehot[a:b], delta, state)
        _raise_if_nonfinite(finite, name)
        maps.append(keras.ops.convert_to_numpy(cam))
        classes.append(keras.ops.convert_to_numpy(cls))
    cam = np.concatenate(maps)
    if resize:
        cam = _resize_maps(cam, x.shape[1:3])
    if normalize:
        cam = _normalize_maps(cam)
    return cam, np.concatenate(classes)


def _resize_maps(maps, size):
    resized = ops.image.resize(maps[..., None].astype("float32"), tuple(size), interpolation="bilinear")
    return np.maximum(keras.ops.convert_to_numpy(resized)[..., 0], 0.0)


def _normalize_maps(maps):
    """Each map divided by its maximum (an all-zero map stays zero)."""
    peak = maps.reshape(len(maps), -1).max(axis=1).reshape(-1, *([1] * (maps.ndim - 1)))
    return np.where(peak > 0, maps / np.where(peak > 0, peak, 1.0), 0.0).astype("float32")


def grad_cam(model, images, layer=None, class_index=None, *, resize=True, normalize=True,
             return_classes=False, batch_size=32, jit_compile=False):
    """Grad-CAM heatmaps for a batch (Selvaraju et al. 2017).

    The map for class c is ReLU(sum_k alpha_k A_k), where A is the layer's activation
    and alpha_k is the spatial mean of d y_c / d A_k, with y_c the pre-softmax score.

    Args:
        model: a built ``keras.Model`` (Functional, Sequential, or with nested models).
        images: float array (N, H, W, C) in the model's input range.
        layer: name (or Layer) of a layer with a 4-D output, nested models included;
            None takes the last layer with a 4-D output (the last conv block's output).
            A wrong name raises ValueError listing the conv layers.
        class_index: None for each image's predicted class, an int, or N ints.
        resize: resize the maps to the input's H x W (bilinear); else the layer's grid.
        normalize: divide each map by its maximum, so it lies in [0, 1].
        return_classes: also return the class each map explains.
        batch_size: images per compiled call.
        jit_compile: compile with XLA on TensorFlow (JAX always compiles).

    Returns:
        float32 array (N, H, W) (or (N, h, w) with ``resize=False``), and the classes
        (N,) when ``return_classes``.
    """
    cam, classes = _cam(model, images, layer, class_index, False, resize, normalize, batch_size,
                        jit_compile, "grad_cam")
    return (cam, classes) if return_classes else cam


def grad_cam_plus_plus(model, images, layer=None, class_index=None, *, resize=True, normalize=True,
                       return_classes=False, batch_size=32, jit_compile=False):
    """Grad-CAM++ heatmaps for a batch (Chattopadhyay et al. 2018).

    With g = d y_c / d A: alpha = g^2 / (2 g^2 + sum_ij A g^3), w_k = sum_ij alpha ReLU(g),
    and the map is ReLU(sum_k w_k A_k). Arguments and return value as :func:`grad_cam`.
    """
    cam, classes = _cam(model, images, layer, class_index, True, resize, normalize, batch_size,
                        jit_compile, "grad_cam_plus_plus")
    return (cam, classes) if return_classes else cam


# =====================================================================================
# Sensitivity maps: saliency, SmoothGrad, occlusion.
# =====================================================================================


def _input_grad_function(model, jit_compile):
    def run(x, onehot, state):
        def objective(inputs):
            logits, _ = _probe(model, state, inputs)
            chosen = ops.where(
                ops.sum(onehot, axis=-1, keepdims=True) > 0,
                onehot,
                ops.one_hot(ops.argmax(ops.stop_gradient(logits), axis=-1), ops.shape(logits)[-1]),
            )
            return ops.sum(logits * chosen), chosen

        _, chosen, grads = _value_and_grad(objective, x)
        grads = ops.cast(grads, "float32")
        return grads, ops.argmax(chosen, axis=-1), ops.all(ops.isfinite(grads))

    return _compile(run, jit_compile)


def _logits_function(model, jit_compile):
    return _compile(lambda x, state: _probe(model, state, x)[0], jit_compile)


def _predict(model, x, batch_size, jit_compile=False):
    fn = _cached(model, ("logits", bool(jit_compile)), lambda: _logits_function(model, jit_compile))
    state = _model_state(model)
    out = [keras.ops.convert_to_numpy(fn(x[a:b], state)) for a, b in _chunks(len(x), batch_size)]
    return np.concatenate(out)


def _input_gradients(model, x, onehot, batch_size, jit_compile, name):
    fn = _cached(model, ("input_grad", bool(jit_compile)), lambda: _input_grad_function(model, jit_compile))
    state = _model_state(model)
    grads = []
    for a, b in _chunks(len(x), batch_size):
        g, _, finite = fn(x[a:b], onehot[a:b], state)
        _raise_if_nonfinite(finite, name)
        grads.append(keras.ops.convert_to_numpy(g))
    return np.concatenate(grads)


def _targets(model, x, class_index, batch_size):
    """Fixed one-hot targets: the given classes, or each image's prediction."""
    onehot = _class_onehot(model, class_index, len(x))
    if class_index is None:
        onehot = np.eye(onehot.shape[1], dtype="float32")[_predict(model, x, batch_size).argmax(-1)]
    return onehot


def saliency(model, images, class_index=None, *, normalize=True, batch_size=32, jit_compile=False):
    """Vanilla gradient saliency (Simonyan et al. 2014): max over channels of |d y_c / d x|.

    Args:
        model, images, class_index, batch_size, jit_compile: as in :func:`grad_cam`.
        normalize: divide each map by its maximum.

    Returns:
        float32 array (N, H, W).
    """
    _check_model(model)
    x = _check_images(model, images)
    batch_size = _check_int(batch_size, "batch_size")
    onehot = _class_onehot(model, class_index, len(x))
    maps = np.abs(_input_gradients(model, x, onehot, batch_size, jit_compile, "saliency")).max(axis=-1)
    return _normalize_maps(maps) if normalize else maps.astype("float32")


def smoothgrad(model, images, class_index=None, *, samples=25, noise=0.15, normalize=True,
               seed=0, batch_size=32, jit_compile=False):
    """SmoothGrad (Smilkov et al. 2017): the gradient averaged over noisy copies.

    Args:
        model, images, class_index, batch_size, jit_compile: as in :func:`grad_cam`;
            the class defaults to the prediction on the clean image.
        samples: noisy copies per image.
        noise: noise standard deviation as a fraction of each image's value range.
        normalize: divide each map by its maximum.
        seed: seed of the noise.

    Returns:
        float32 array (N, H, W): max over channels of |mean gradient|.
    """
    _check_model(model)
    x = _check_images(model, images)
    samples = _check_int(samples, "samples")
    noise = _check_number(noise, "noise", minimum=0.0)
    batch_size = _check_int(batch_size, "batch_size")
    onehot = _targets(model, x, class_index, batch_size)
    rng = np.random.default_rng(seed)
    spread = (x.reshape(len(x), -1).max(1) - x.reshape(len(x), -1).min(1)).reshape(-1, 1, 1, 1)
    spread = np.where(spread > 0, spread, 1.0)
    total = np.zeros_like(x)
    for _ in range(samples):
        noisy = (x + rng.normal(size=x.shape).astype("float32") * noise * spread).astype("float32")
        total += _input_gradients(model, noisy, onehot, batch_size, jit_compile, "smoothgrad")
    maps = np.abs(total / samples).max(axis=-1)
    return _normalize_maps(maps) if normalize else maps.astype("float32")


def occlusion(model, images, class_index=None, *, patch=8, stride=4, fill=None, normalize=True,
              batch_size=64, jit_compile=False):
    """Occlusion sensitivity (Zeiler & Fergus 2014): the score drop when a patch is hidden.

    Args:
        model, images, class_index, jit_compile: as in :func:`grad_cam`.
        patch: side of the square patch, in pixels.
        stride: step between patch positions.
        fill: value painted into the patch; None uses each image's mean.
        normalize: divide each map by its maximum (after clipping negative drops to 0).
        batch_size: occluded copies per compiled call.

    Returns:
        float32 array (N, H, W): each pixel's mean logit drop over the patches covering it.
    """
    _check_model(model)
    x = _check_images(model, images)
    patch = _check_int(patch, "patch")
    stride = _check_int(stride, "stride")
    batch_size = _check_int(batch_size, "batch_size")
    if fill is not None:
        fill = _check_number(fill, "fill")
    h, w = x.shape[1:3]
    if patch > min(h, w):
        raise ValueError(f"patch must be <= the image side {min(h, w)}, got {patch}")
    onehot = _targets(model, x, class_index, batch_size)
    ys = list(range(0, h - patch + 1, stride))
    xs = list(range(0, w - patch + 1, stride))
    if ys[-1] != h - patch:
        ys.append(h - patch)
    if xs[-1] != w - patch:
        xs.append(w - patch)
    corners = [(y, x0) for y in ys for x0 in xs]
    maps = np.zeros(x.shape[:3], "float32")
    base = (_predict(model, x, batch_size, jit_compile) * onehot).sum(-1)
    for i, image in enumerate(x):
        value = image.mean() if fill is None else fill
        drops = []
        for a, b in _chunks(len(corners), batch_size):
            batch = np.repeat(image[None], b - a, axis=0)
            for j, (y, x0) in enumerate(corners[a:b]):
                batch[j, y:y + patch, x0:x0 + patch] = value
            drops.append((_predict(model, batch, batch_size, jit_compile) * onehot[i]).sum(-1))
        drops = base[i] - np.concatenate(drops)
        total = np.zeros((h, w), "float64")
        count = np.zeros((h, w), "float64")
        for drop, (y, x0) in zip(drops, corners):
            total[y:y + patch, x0:x0 + patch] += drop
            count[y:y + patch, x0:x0 + patch] += 1
        maps[i] = total / np.maximum(count, 1)
    return _normalize_maps(np.maximum(maps, 0)) if normalize else maps


# =====================================================================================
# Filter visualization by gradient ascent in input space.
# =====================================================================================


def _spectrum_scale(h, w, decay_power=1.0):
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    freqs = np.sqrt(fx**2 + fy**2)
    return (1.0 / np.maximum(freqs, 1.0 / max(h, w)) ** decay_power).astype("float32")


def _fourier_to_image(params, channels, value_range):
    """Lucid's parameterization: scaled spectrum -> inverse FFT -> decorrelated colours -> sigmoid."""
    h, w = int(params.shape[-2]), int(params.shape[-1])
    scale = ops.convert_to_tensor(_spectrum_scale(h, w))
    real, imag = params[0] * scale, params[1] * scale  # (B, C, H, W) each
    image, _ = ops.ifft2((real, imag))
    image = ops.transpose(image, (0, 2, 3, 1)) * (float(h * w) ** 0.5) / 4.0
    if channels == 3:
        image = ops.matmul(image, ops.convert_to_tensor(_COLOR_SQRT.T))
    low, high = value_range
    return low + (high - low) * ops.sigmoid(image)


def _random_transforms(rng, n, h, w, jitter, scales, degrees):
    """One projective transform (keras.ops.image.affine_transform layout) per image:
    jitter, scale and rotation about the centre (Lucid's transformation robustness)."""
    angle = np.deg2rad(rng.uniform(-degrees, degrees, n))
    scale = rng.choice(np.asarray(scales, "float64"), n)
    ty, tx = rng.integers(-jitter, jitter + 1, (2, n)) if jitter else np.zeros((2, n))
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    # output (x, y) -> input: centre, rotate/scale (inverse), shift back, plus jitter.
    a0, a1 = cos, -sin
    b0, b1 = sin, cos
    a2 = cx - a0 * cx - a1 * cy + tx
    b2 = cy - b0 * cx - b1 * cy + ty
    zeros = np.zeros(n)
    return np.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1).astype("float32")


# Input pixels per filter_images batch when batch_size is None (2**19, 16 images at 180 px).
_AUTO_BATCH_PIXELS = 2**19


def _filter_step_function(model, layer, method, border, lr, channels, value_range, jit_compile):
    def objective_for(state, onehot, transform):
        def objective(param):
            if method == "plain":
                image = param
            else:
                image = _fourier_to_image(param, channels, value_range)
                image = ops.image.affine_transform(image, transform, fill_mode="reflect")
            _, store = _probe(model, state, image, record=(layer,), stop=layer, logits=False)
            act = store[layer.name]
            if border:
                act = act[:, border:-border, border:-border, :]
            per_image = ops.sum(ops.mean(act, axis=(1, 2)) * onehot, axis=-1)
            return ops.sum(per_image), per_image

        return objective

    def plain_step(image, onehot, state):
        _, values, grads = _value_and_grad(objective_for(state, onehot, None), image)
        grads = ops.cast(grads, "float32")
        norm = ops.sqrt(ops.sum(grads**2, axis=(1, 2, 3), keepdims=True))
        image = image + lr * grads / ops.maximum(norm, 1e-12)
        return image, values, ops.all(ops.isfinite(grads))

    def adam_step(param, m, v, t, onehot, transform, state):
        _, values, grads = _value_and_grad(objective_for(state, onehot, transform), param)
        grads = ops.cast(grads, "float32")
        m = 0.9 * m + 0.1 * grads
        v = 0.999 * v + 0.001 * grads**2
        m_hat = m / (1.0 - 0.9**t)
        v_hat = v / (1.0 - 0.999**t)
        param = param + lr * m_hat / (ops.sqrt(v_hat) + 1e-8)  # ascent
        return param, m, v, values, ops.all(ops.isfinite(grads))

    return _compile(plain_step if method == "plain" else adam_step, jit_compile)


def _measure_function(model, layer, border, jit_compile):
    def run(image, onehot, state):
        _, store = _probe(model, state, image, record=(layer,), stop=layer, logits=False)
        act = store[layer.name]
        if border:
            act = act[:, border:-border, border:-border, :]
        return ops.sum(ops.mean(act, axis=(1, 2)) * onehot, axis=-1)

    return _compile(run, jit_compile)


def filter_images(model, layer, filters=None, *, method="plain", steps=None, lr=None,
                  size=None, border=2, init=None, value_range=(0.0, 1.0), batch_size=None,
                  jitter=8, scales=(0.9, 0.95, 1.0, 1.05, 1.1), degrees=10.0, seed=0,
                  jit_compile=False):
    """Images that maximize filters, by gradient ascent in input space (one per filter).

    All filters go through one batched optimization: image i maximizes the mean
    activation of filter i over the layer's map, ``border`` pixels excluded.

    Args:
        model: a built ``keras.Model``; nested and Sequential models work.
        layer: name (or Layer) of a layer with a 4-D output. A wrong name raises
            ValueError listing the conv layers.
        filters: channel indices to render; None renders every channel.
        method: ``"plain"``, as keras-io does it: ``steps`` normalized-gradient steps
            ``x += lr * g / ||g||`` from gray plus small noise (defaults: 30 steps,
            lr 10). ``"regularized"``, as Lucid does it: a decorrelated Fourier
            parameterization optimized with Adam, with random jitter, scale and
            rotation applied at each step (defaults: 256 steps, lr 0.05).
        steps: number of optimization steps.
        lr: step size (plain) or Adam learning rate (regularized).
        size: (H, W) of the images; None takes the model's input size (it must be fixed).
        border: pixels excluded from each side of the activation map.
        init: optional start images (len(filters), H, W, C) for ``plain``.
        value_range: (low, high) of the model's inputs; the plain start is its middle
            plus 12.5% uniform noise, and regularized images are squashed into it.
        batch_size: filters optimized together per batch. None picks about half a
            megapixel of input per batch, at most 64 images (16 at 180x180, 64 at
            64x64): on a 2-core CPU larger batches of large images got slower per
            image, not faster (docs/performance.md).
        jitter, scales, degrees: the regularized method's random transformations
            (pixels of translation, scale factors to draw from, max rotation).
        seed: seed of the start noise and of the transformations.
        jit_compile: compile with XLA on TensorFlow (JAX always compiles).

    Returns:
        ``(images, activations)``: float32 (F, H, W, C) images in ``value_range``
        units, and each filter's final mean activation (F,) on its untransformed image.
    """
    _check_model(model)
    target = _find_layer(model, layer)
    if method not in ("plain", "regularized"):
        raise ValueError(f"method must be 'plain' or 'regularized', got {method!r}")
    steps = _check_int(30 if steps is None and method == "plain" else 256 if steps is None else steps,
                       "steps")
    lr = _check_number((10.0 if method == "plain" else 0.05) if lr is None else lr, "lr", 0.0, strict=True)
    border = _check_int(border, "border", minimum=0)
    if batch_size is not None:
        batch_size = _check_int(batch_size, "batch_size")
    jitter = _check_int(jitter, "jitter", minimum=0)
    degrees = _check_number(degrees, "degrees", minimum=0.0)
    if (not isinstance(scales, (tuple, list)) or not scales
            or not all(isinstance(s, numbers.Real) and s > 0 for s in scales)):
        raise ValueError(f"scales must be a non-empty sequence of positive numbers, got {scales!r}")
    if (not isinstance(value_range, (tuple, list)) or len(value_range) != 2
            or not all(isinstance(v, numbers.Real) for v in value_range) or value_range[0] >= value_range[1]):
        raise ValueError(f"value_range must be (low, high) with low < high, got {value_range!r}")
    input_shape = tuple(model.inputs[0].shape[1:])
    if size is None:
        if None in input_shape[:2]:
            raise ValueError("size must be given: the model's input size is not fixed")
        size = input_shape[:2]
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(s, numbers.Integral) and s > 0 for s in size)):
        raise ValueError(f"size must be (height, width) of positive ints, got {size!r}")
    channels = input_shape[-1]
    h, w = int(size[0]), int(size[1])
    if batch_size is None:
        batch_size = max(1, min(64, _AUTO_BATCH_PIXELS // (h * w)))
    shape = _activation_shape(model, target, (h, w, channels))
    if shape[0] <= 2 * border or shape[1] <= 2 * border:
        raise ValueError(f"border={border} leaves nothing of layer {target.name!r}'s {shape[:2]} map")
    n_filters = shape[-1]
    if filters is None:
        filters = list(range(n_filters))
    if isinstance(filters, numbers.Integral) and not isinstance(filters, bool):
        filters = [int(filters)]
    filters = np.asarray(filters)
    if filters.ndim != 1 or filters.size == 0 or filters.dtype.kind not in "iu":
        raise ValueError(f"filters must be a non-empty sequence of ints, got {filters!r}")
    if filters.min() < 0 or filters.max() >= n_filters:
        raise ValueError(f"filters must be in [0, {n_filters - 1}] for layer {target.name!r}, got {filters.tolist()}")
    if init is not None:
        if method != "plain":
            raise ValueError("init is only used by method='plain'")
        init = _check_images(model, init, "init")
        if init.shape != (len(filters), h, w, channels):
            raise ValueError(f"init must have shape {(len(filters), h, w, channels)}, got {init.shape}")

    key = ("filters", target.name, method, border, lr, channels, tuple(value_range), bool(jit_compile))
    step = _cached(model, key, lambda: _filter_step_function(
        model, target, method, border, lr, channels, tuple(value_range), jit_compile))
    measure = _cached(model, ("measure", target.name, border, bool(jit_compile)),
                      lambda: _measure_function(model, target, border, jit_compile))
    state = _model_state(model)
    rng = np.random.default_rng(seed)
    low, high = float(value_range[0]), float(value_range[1])
    onehot_all = np.eye(n_filters, dtype="float32")[filters]
    images, values = [], []
    for a, b in _chunks(len(filters), batch_size):
        n, onehot = b - a, onehot_all[a:b]
        if method == "plain":
            if init is not None:
                image = init[a:b]
            else:
                image = ((low + high) / 2 + (rng.uniform(size=(n, h, w, channels)) - 0.5)
                         * 0.125 * (high - low)).astype("float32")
            for _ in range(steps):
                image, _, finite = step(image, onehot, state)
                _raise_if_nonfinite(finite, "filter_images")
        else:
            param = (0.01 * rng.normal(size=(2, n, channels, h, w))).astype("float32")
            m, v = np.zeros_like(param), np.zeros_like(param)
            for t in range(1, steps + 1):
                transform = _random_transforms(rng, n, h, w, jitter, scales, degrees)
                param, m, v, _, finite = step(param, m, v, np.float32(t), onehot, transform, state)
                _raise_if_nonfinite(finite, "filter_images")
            image = _fourier_to_image(param, channels, (low, high))
        image = keras.ops.convert_to_numpy(image).astype("float32")
        values.append(keras.ops.convert_to_numpy(measure(image, onehot, state)))
        images.append(image)
    return np.concatenate(images), np.concatenate(values).astype("float32")


# =====================================================================================
# Activations, first-layer filters, DeepDream.
# =====================================================================================


def activations(model, images, layers):
    """The outputs of ``layers`` for a batch (inference mode), as numpy arrays.

    Args:
        model: a built ``keras.Model``; layers of nested models can be named.
        images: float array (N, H, W, C).
        layers: a layer name, or a sequence of names/Layers.

    Returns:
        dict {layer name: float32 array}. Draw a map with
        ``make_grid(act[i].transpose(2, 0, 1)[..., None])``.
    """
    _check_model(model)
    x = _check_images(model, images)
    if isinstance(layers, (str, keras.layers.Layer)):
        layers = [layers]
    if not isinstance(layers, (list, tuple)) or not layers:
        raise ValueError(f"layers must be a layer name or a non-empty sequence of names, got {layers!r}")
    found = [_find_layer(model, layer, "layers") for layer in layers]
    key = ("activations", tuple(layer.name for layer in found))

    def build():
        def run(inputs, state):
            _, store = _probe(model, state, inputs, record=found, logits=False)
            return {layer.name: store[layer.name] for layer in found}

        return _compile(run)

    fn = _cached(model, key, build)
    out = fn(x, _model_state(model))
    return {name: keras.ops.convert_to_numpy(value) for name, value in out.items()}


def first_layer_filters(model, layer=None):
    """The first conv layer's kernels as small images, scaled for display.

    Args:
        model: a built ``keras.Model``.
        layer: a conv layer's name; None takes the first Conv2D (or SeparableConv2D's
            depthwise kernel, or DepthwiseConv2D) in the model.

    Returns:
        float32 array (F, kh, kw, C) in [0, 1], 0.5 being zero weight. C is the input
        channels when that is 1 or 3, else 1 (the mean over input channels).
    """
    _check_model(model)
    convs = [l for l in _walk(model) if isinstance(l, CONV_TYPES)]
    if not convs:
        raise ValueError(f"model: {model.name!r} has no conv layers")
    if layer is None:
        conv = convs[0]
    else:
        conv = _find_layer(model, layer)
        if not isinstance(conv, CONV_TYPES):
            raise ValueError(f"layer {conv.name!r} is not a conv layer; conv layers: {', '.join(conv_layer_names(model))}")
    kernel = keras.ops.convert_to_numpy(conv.weights[0]).astype("float32")  # (kh, kw, cin, cout|mult)
    filters = np.transpose(kernel, (3, 0, 1, 2))
    if filters.shape[-1] not in (1, 3):
        filters = filters.mean(axis=-1, keepdims=True)
    peak = np.abs(filters).reshape(len(filters), -1).max(axis=1).reshape(-1, 1, 1, 1)
    return (0.5 + 0.5 * filters / np.where(peak > 0, peak, 1.0)).astype("float32")


def deep_dream(model, image, layers, *, octaves=3, octave_scale=1.4, steps=20, step_size=0.01,
               max_loss=None, border=2, value_range=None):
    """DeepDream (Mordvintsev et al. 2015) with octaves, as in the keras-io example.

    At each octave (small to large) the image is resized and ``steps`` normalized
    gradient-ascent steps raise the mean squared activation of ``layers``; the detail
    lost by downscaling is then added back.

    Args:
        model: a built ``keras.Model`` whose trunk accepts the octave sizes (an input
            shape of (None, None, C) or a fully convolutional stem).
        image: float array (H, W, C) or (1, H, W, C).
        layers: a layer name, a sequence of names, or {name: weight}.
        octaves: number of scales.
        octave_scale: size ratio between successive octaves.
        steps: ascent steps per octave.
        step_size: step, as a fraction of the gradient's mean absolute value's inverse.
        max_loss: stop an octave once the loss exceeds it (None: never).
        border: pixels excluded from each side of the activation maps.
        value_range: (low, high) to clip the image to; None does not clip.

    Returns:
        float32 array (H, W, C), the dreamed image.
    """
    _check_model(model)
    array = np.asarray(keras.ops.convert_to_numpy(image))
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3:
        raise ValueError(f"image must have shape (H, W, C) or (1, H, W, C), got {array.shape}")
    if array.dtype.kind != "f":
        raise TypeError(f"image must be a floating-point array, got dtype {array.dtype}")
    octaves = _check_int(octaves, "octaves")
    octave_scale = _check_number(octave_scale, "octave_scale", 1.0, strict=True)
    steps = _check_int(steps, "steps")
    step_size = _check_number(step_size, "step_size", 0.0, strict=True)
    border = _check_int(border, "border", minimum=0)
    if isinstance(layers, str):
        layers = {layers: 1.0}
    elif isinstance(layers, (list, tuple)):
        layers = {name: 1.0 for name in layers}
    if not isinstance(layers, dict) or not layers:
        raise ValueError(f"layers must be a name, a sequence of names or a {{name: weight}} dict, got {layers!r}")
    found = {_find_layer(model, name, "layers"): _check_number(weight, "layers weight")
             for name, weight in layers.items()}

    def build():
        def run(img, state):
            def objective(x):
                _, store = _probe(model, state, x, record=tuple(found), logits=False)
                loss = 0.0
                for layer, weight in found.items():
                    act = store[layer.name]
                    if border:
                        act = act[:, border:-border, border:-border, :]
                    loss = loss + weight * ops.mean(act**2)
                return loss, loss

            loss, _, grads = _value_and_grad(objective, img)
            grads = ops.cast(grads, "float32")
            grads = grads / ops.maximum(ops.mean(ops.abs(grads)), 1e-6)
            return img + step_size * grads, loss, ops.all(ops.isfinite(grads))

        return _compile(run)

    fn = _cached(model, ("dream", tuple((l.name, w) for l, w in found.items()), border, step_size), build)
    state = _model_state(model)
    original = array.astype("float32")[None]
    h, w = original.shape[1:3]
    shapes = [(max(1, round(h / octave_scale**i)), max(1, round(w / octave_scale**i)))
              for i in reversed(range(octaves))]

    def resize(img, shape):
        return keras.ops.convert_to_numpy(ops.image.resize(img, shape, interpolation="bilinear")).astype("float32")

    img = resize(original, shapes[0])
    shrunk = img
    for shape in shapes:
        img = resize(img, shape)
        for _ in range(steps):
            img, loss, finite = fn(img, state)
            _raise_if_nonfinite(finite, "deep_dream")
            img = keras.ops.convert_to_numpy(img)
            if value_range is not None:
                img = np.clip(img, value_range[0], value_range[1])
            if max_loss is not None and float(loss) > max_loss:
                break
        img = img + resize(original, shape) - resize(shrunk, shape)
        shrunk = resize(original, shape)
    return img[0]


# =====================================================================================
# The pointing game (Zhang et al. 2016).
# =====================================================================================


def pointing_game(heatmaps, boxes_or_masks, *, tolerance=0, labels=None, return_hits=False):
    """Pointing-game accuracy: a hit when a heatmap's maximum lies on the object.

    Args:
        heatmaps: array (N, H, W).
        boxes_or_masks: boxes (N, 4) as (y0, x0, y1, x1) with exclusive ends, in the
            heatmaps' pixels, or boolean masks (N, H, W).
        tolerance: a hit may lie up to this many pixels outside the object (Zhang et al.
            use 15 px on full-size images).
        labels: optional class labels (N,); the accuracy is then averaged over
            classes, as in the paper. None: hits / N.
        return_hits: also return the per-image hits (bool array).

    The point is the heatmap's maximum; where several pixels tie (a plateau, as an
    upsampled coarse map has), the tied pixel nearest their centroid. A constant
    heatmap (e.g. all zeros) counts as a miss.

    Returns:
        the accuracy in [0, 1] (and the hits with ``return_hits``).
    """
    maps = np.asarray(heatmaps)
    if maps.ndim != 3 or maps.shape[0] < 1:
        raise ValueError(f"heatmaps must have shape (N, H, W), got {maps.shape}")
    if maps.dtype.kind not in "fiu":
        raise TypeError(f"heatmaps must be numeric, got dtype {maps.dtype}")
    n, h, w = maps.shape
    tolerance = _check_int(tolerance, "tolerance", minimum=0)
    targets = np.asarray(boxes_or_masks)
    if targets.ndim == 2:
        if targets.shape != (n, 4):
            raise ValueError(f"boxes_or_masks as boxes must have shape ({n}, 4), got {targets.shape}")
        yy, xx = np.mgrid[0:h, 0:w]
        b = targets.astype("int64")
        masks = ((yy[None] >= b[:, 0, None, None]) & (yy[None] < b[:, 2, None, None])
                 & (xx[None] >= b[:, 1, None, None]) & (xx[None] < b[:, 3, None, None]))
    elif targets.ndim == 3:
        if targets.shape != maps.shape:
            raise ValueError(f"boxes_or_masks as masks must have the heatmaps' shape {maps.shape}, got {targets.shape}")
        masks = targets.astype(bool)
    else:
        raise ValueError(f"boxes_or_masks must be boxes (N, 4) or masks (N, H, W), got shape {targets.shape}")
    flat = maps.reshape(n, -1)
    constant = flat.max(axis=1) == flat.min(axis=1)
    hits = np.zeros(n, bool)
    py, px = np.zeros(n, int), np.zeros(n, int)
    for i in range(n):
        if constant[i] or not np.isfinite(flat[i]).all():
            continue
        # The maximum; on a plateau (an upsampled coarse map), the tied pixel nearest
        # the plateau's centroid.
        ys, xs = np.nonzero(maps[i] == flat[i].max())
        j = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
        py[i], px[i] = ys[j], xs[j]
        y0, y1 = max(0, py[i] - tolerance), min(h, py[i] + tolerance + 1)
        x0, x1 = max(0, px[i] - tolerance), min(w, px[i] + tolerance + 1)
        if tolerance:
            window = masks[i, y0:y1, x0:x1]
            yy, xx = np.mgrid[y0:y1, x0:x1]
            hits[i] = bool((window & ((yy - py[i]) ** 2 + (xx - px[i]) ** 2 <= tolerance**2)).any())
        else:
            hits[i] = bool(masks[i, py[i], px[i]])
    if labels is None:
        accuracy = float(hits.mean())
    else:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
        accuracy = float(np.mean([hits[labels == c].mean() for c in np.unique(labels)]))
    return (accuracy, hits) if return_hits else accuracy


# =====================================================================================
# Drawing helpers.
# =====================================================================================


def to_display(images, *, clip_std=0.15, crop=0):
    """Scale images for display, per image, as keras-io's ``deprocess_image`` does:
    centre, scale to std ``clip_std``, shift to 0.5, clip to [0, 1], crop ``crop`` px.

    Args:
        images: array (N, H, W, C) or (H, W, C).
        clip_std: target standard deviation before clipping.
        crop: pixels removed from each side.

    Returns:
        float32 array of the same rank, in [0, 1].
    """
    array = np.asarray(images, dtype="float32")
    if array.ndim not in (3, 4):
        raise ValueError(f"images must have shape (N, H, W, C) or (H, W, C), got {array.shape}")
    crop = _check_int(crop, "crop", minimum=0)
    single = array.ndim == 3
    batch = array[None] if single else array
    axes = (1, 2, 3)
    centred = batch - batch.mean(axis=axes, keepdims=True)
    std = centred.std(axis=axes, keepdims=True)
    out = np.clip(centred / np.where(std > 0, std, 1.0) * clip_std + 0.5, 0.0, 1.0)
    if crop:
        out = out[:, crop:-crop, crop:-crop]
    return out[0] if single else out


def make_grid(images, cols=None, pad=1, pad_value=1.0):
    """Tile images (N, H, W[, C]) into one image, ``cols`` per row.

    Returns:
        float32 array (rows*(H+pad)-pad, cols*(W+pad)-pad, C).
    """
    array = np.asarray(images, dtype="float32")
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[0] < 1:
        raise ValueError(f"images must have shape (N, H, W) or (N, H, W, C), got {array.shape}")
    n, h, w, c = array.shape
    cols = _check_int(cols if cols is not None else math.ceil(math.sqrt(n)), "cols")
    pad = _check_int(pad, "pad", minimum=0)
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, c), pad_value, "float32")
    for i in range(n):
        r, k = divmod(i, cols)
        grid[r * (h + pad):r * (h + pad) + h, k * (w + pad):k * (w + pad) + w] = array[i]
    return grid


def plot_grid(images, titles=None, *, cols=None, cmap=None, size=1.6, suptitle=None):
    """A matplotlib Figure with one labelled panel per image (no pyplot global state).

    Args:
        images: array (N, H, W) or (N, H, W, C) with values in [0, 1].
        titles: optional N strings.
        cols: panels per row (default: about sqrt(N)).
        cmap: colormap name for one-channel images (default ``"gray"``).
        size: inches per panel.
        suptitle: optional figure title.

    Returns:
        ``matplotlib.figure.Figure`` (save it with ``cookbook.io.save_figure``).
    """
    from matplotlib.figure import Figure

    array = np.asarray(images, dtype="float32")
    if array.ndim not in (3, 4) or array.shape[0] < 1:
        raise ValueError(f"images must have shape (N, H, W) or (N, H, W, C), got {array.shape}")
    n = len(array)
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles must have {n} entries, got {len(titles)}")
    cols = _check_int(cols if cols is not None else math.ceil(math.sqrt(n)), "cols")
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(cols * size, rows * size + (0.4 if suptitle else 0)))
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = array[i]
        if img.ndim == 3 and img.shape[-1] == 1:
            img = img[..., 0]
        ax.imshow(np.clip(img, 0, 1), cmap=(cmap or "gray") if img.ndim == 2 else None, vmin=0, vmax=1)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=7)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_filters(images, activations=None, filters=None, *, cols=None, layer_name=None, crop=0):
    """The labelled grid of :func:`filter_images` results.

    Args:
        images: (F, H, W, C) from :func:`filter_images` (any range; shown via :func:`to_display`).
        activations: optional (F,) final activations, shown under each panel.
        filters: optional (F,) filter indices for the labels (default 0..F-1).
        cols: panels per row.
        layer_name: optional title.
        crop: border pixels to crop off for display.

    Returns:
        ``matplotlib.figure.Figure``.
    """
    array = np.asarray(images, dtype="float32")
    if array.ndim != 4:
        raise ValueError(f"images must have shape (F, H, W, C), got {array.shape}")
    filters = list(range(len(array))) if filters is None else [int(f) for f in filters]
    if len(filters) != len(array):
        raise ValueError(f"filters must have {len(array)} entries, got {len(filters)}")
    if activations is not None and len(activations) != len(array):
        raise ValueError(f"activations must have {len(array)} entries, got {len(activations)}")
    titles = [f"#{f}" if activations is None else f"#{f}  {float(a):.3g}"
              for f, a in zip(filters, activations if activations is not None else filters)]
    return plot_grid(to_display(array, crop=crop), titles, cols=cols, suptitle=layer_name)


def overlay(image, heatmap, *, alpha=0.4, colormap="jet"):
    """A heatmap drawn over an image with ``matplotlib.colormaps[colormap]``.

    Args:
        image: array (H, W) or (H, W, C), values in [0, 1].
        heatmap: array (h, w) in [0, 1]; resized to (H, W) if needed.
        alpha: heatmap opacity in [0, 1].
        colormap: a name in ``matplotlib.colormaps``.

    Returns:
        float32 RGB array (H, W, 3) in [0, 1].
    """
    import matplotlib

    img = np.asarray(image, dtype="float32")
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[-1] not in (1, 3):
        raise ValueError(f"image must have shape (H, W), (H, W, 1) or (H, W, 3), got {img.shape}")
    heat = np.asarray(heatmap, dtype="float32")
    if heat.ndim != 2:
        raise ValueError(f"heatmap must have shape (H, W), got {heat.shape}")
    alpha = _check_number(alpha, "alpha", minimum=0.0)
    if alpha > 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if colormap not in matplotlib.colormaps:
        raise ValueError(f"colormap must be a name in matplotlib.colormaps, got {colormap!r}")
    if heat.shape != img.shape[:2]:
        heat = _resize_maps(heat[None], img.shape[:2])[0]
    colored = matplotlib.colormaps[colormap](np.clip(heat, 0, 1))[..., :3].astype("float32")
    rgb = np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img
    return np.clip((1 - alpha) * np.clip(rgb, 0, 1) + alpha * colored, 0, 1).astype("float32")
