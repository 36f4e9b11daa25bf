"""One helper that compiles and fits a model, and one that trains a recipe's demo.

``fit`` has the defaults a short run needs: AdamW, a cosine (or one-cycle) schedule
with warmup, optional label smoothing, early stopping on the validation loss, a
progress bar, optional XLA and mixed precision, loss weights for models with
several outputs (GoogLeNet's auxiliary heads: 1, 0.3, 0.3), and a distribution
strategy. After fitting it recalibrates BatchNorm's moving statistics on training
data, so that inference-mode results are right after a few hundred steps.

``train_recipe`` trains a recipe's DEMO configuration on its built-in dataset and
returns a :class:`TrainResult`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time

import keras
import numpy as np

from cookbook import data as cdata
from cookbook import io

__all__ = [
    "SCHEDULES",
    "TARGETS",
    "TrainResult",
    "fit",
    "psnr",
    "recalibrate_batchnorm",
    "resolve_strategy",
    "train_recipe",
]

SCHEDULES = ("cosine", "onecycle", "constant")
OPTIMIZERS = {  # name -> f(learning rate or schedule, weight decay)
    "adamw": lambda rate, decay: keras.optimizers.AdamW(rate, weight_decay=decay),
    "sgd": lambda rate, decay: keras.optimizers.SGD(rate, momentum=0.9, nesterov=True, weight_decay=decay),
}
TARGETS = ("labels", "denoise", "masks", "superres", "reconstruct", "adversarial")


# --- argument checks ---------------------------------------------------------------------


def _check_int(value, name, minimum=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _check_float(value, name, low=None, high=None, low_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    too_low = low is not None and (value <= low if low_open else value < low)
    if too_low or (high is not None and value > high):
        raise ValueError(f"{name} must be in {'(' if low_open else '['}{low}, {high}], got {value}")


# --- metrics -----------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="cookbook")
def psnr(y_true, y_pred):
    """Peak signal-to-noise ratio in dB for images in [0, 1], per example."""
    y_true = keras.ops.cast(y_true, "float32")
    y_pred = keras.ops.cast(y_pred, "float32")
    axes = tuple(range(1, len(y_pred.shape)))
    mse = keras.ops.mean(keras.ops.square(y_true - y_pred), axis=axes)
    return 10.0 * keras.ops.log(1.0 / keras.ops.maximum(mse, 1e-10)) / math.log(10.0)


# --- distribution --------------------------------------------------------------------------


def resolve_strategy(strategy):
    """(object, scope factory, replica count) for ``strategy``.

    ``"mirrored"`` is ``tf.distribute.MirroredStrategy`` over the local GPUs (or the
    logical CPUs when there is no GPU) on the TensorFlow backend, and
    ``keras.distribution.DataParallel`` over all local devices on JAX
    (``"data_parallel"`` is the same). A ``tf.distribute.Strategy`` or a
    ``keras.distribution.Distribution`` instance is used as given.
    """
    backend = keras.backend.backend()
    if strategy is None:
        return None, contextlib.nullcontext, 1
    if isinstance(strategy, str):
        if strategy not in ("mirrored", "data_parallel"):
            raise ValueError(f"strategy must be None, 'mirrored' or 'data_parallel', got {strategy!r}")
        if backend == "tensorflow":
            import tensorflow as tf

            devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
            strategy = tf.distribute.MirroredStrategy(devices=[d.name for d in devices])
        elif backend == "jax":
            strategy = keras.distribution.DataParallel(devices=keras.distribution.list_devices())
        else:
            raise ValueError(f"strategy {strategy!r} is supported on the tensorflow and jax backends, not {backend}")
    if isinstance(strategy, (keras.distribution.DataParallel, keras.distribution.ModelParallel)):
        mesh = strategy.device_mesh
        replicas = int(mesh.shape[mesh.axis_names.index(strategy.batch_dim_name)])
        return strategy, strategy.scope, replicas
    if hasattr(strategy, "scope") and hasattr(strategy, "num_replicas_in_sync"):
        if backend != "tensorflow":
            raise ValueError("strategy: a tf.distribute strategy needs the tensorflow backend")
        return strategy, strategy.scope, int(strategy.num_replicas_in_sync)
    raise TypeError(f"strategy must be None, a name, a tf.distribute.Strategy or a keras Distribution, "
                    f"got {type(strategy).__name__}")


def _mixed_policy(mixed_precision):
    if mixed_precision in (None, False):
        return None
    if mixed_precision is True:
        gpu = False
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            gpu = bool(tf.config.list_physical_devices("GPU"))
        elif keras.backend.backend() == "jax":
            import jax

            gpu = jax.default_backend() == "gpu"
        return "mixed_float16" if gpu else "mixed_bfloat16"
    if mixed_precision in ("mixed_float16", "mixed_bfloat16"):
        return mixed_precision
    raise ValueError(f"mixed_precision must be a bool, 'mixed_float16' or 'mixed_bfloat16', got {mixed_precision!r}")


def _clone(model, policy=None):
    """A copy of a functional model (weights included), optionally under a dtype policy.

    The layers that produce the outputs stay float32, as mixed precision advises.
    """
    output_layers = {id(t._keras_history[0]) for t in model.outputs} if policy else set()

    def clone_layer(layer):
        config = layer.get_config()
        if policy and id(layer) not in output_layers and "dtype" in config:
            config["dtype"] = policy
        return layer.__class__.from_config(config)

    try:
        clone = keras.models.clone_model(model, clone_function=clone_layer)
    except Exception as error:  # subclassed models cannot be cloned
        raise ValueError(
            "model: a strategy or mixed precision needs a functional or Sequential model "
            "(or a zero-argument function that builds one)"
        ) from error
    clone.set_weights(model.get_weights())
    return clone


# --- BatchNorm recalibration ----------------------------------------------------------------


def _batchnorm_layers(model):
    """Every BatchNormalization layer of ``model``, nested models included."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found += _batchnorm_layers(layer)
    return found


def recalibrate_batchnorm(model, x, *, batch_size=512, samples=2048):
    """Set every BatchNormalization layer's moving statistics to the statistics of ``x``.

    With Keras's default momentum of 0.99 the moving mean and variance need a
    thousand steps or so to forget their initial values (0 and 1). After a short fit
    they are far from the statistics the layer normalizes with during training, and
    inference-mode outputs are wrong. This is "precise BN" (Wu and Johnson, 2021):
    forward passes in training mode over up to ``samples`` examples of ``x``, with
    each layer's momentum set so that its moving mean and variance end as the plain
    average of the per-batch statistics. It costs one eager forward pass per batch,
    however deep the model; batches are large because a deep model's eager pass costs
    nearly as much at 128 examples as at 512 (GoogLeNet's demo: 6.9 s against 2.8 s
    for 2,048 examples). Nested models are included, and the weights do not change
    (Dropout is active during the passes, which leaves means unchanged).
    Backend-agnostic. Returns the number of BN layers recalibrated.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    _check_int(batch_size, "batch_size", 1)
    _check_int(samples, "samples", 1)
    bns = _batchnorm_layers(model)
    if not bns:
        return 0
    x = np.asarray(x)[:samples]
    if len(x) == 0:
        raise ValueError("x must hold at least one example")
    momenta = [bn.momentum for bn in bns]
    try:
        for k, start in enumerate(range(0, len(x), batch_size)):
            for bn in bns:
                bn.momentum = k / (k + 1)  # the running average of the batch statistics so far
            model(x[start : start + batch_size], training=True)
    finally:
        for bn, momentum in zip(bns, momenta):
            bn.momentum = momentum
    return len(bns)


class _RecalibrateBeforeValidation(keras.callbacks.Callback):
    """Recalibrate BN at the last step of each epoch, so validation sees honest statistics."""

    def __init__(self, x, steps, samples=256):
        super().__init__()
        self.x, self.steps, self.samples = x, steps, samples

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.steps - 1:
            recalibrate_batchnorm(self.model, self.x, batch_size=self.samples, samples=self.samples)


# --- fit -------------------------------------------------------------------------------------


def _as_xy(value, name):
    if isinstance(value, cdata.Split):
        return value.x, value.y
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return value[0], value[1]
    raise TypeError(f"{name} must be a Splits, a Split or an (x, y) pair, got {type(value).__name__}")


def _schedule(schedule, learning_rate, total_steps, warmup):
    if schedule == "constant":
        return learning_rate
    if schedule == "onecycle":
        # Linear warmup from lr/25 over 30% of the steps, then cosine annealing to ~0.
        warm = max(1, int(0.3 * total_steps))
        return keras.optimizers.schedules.CosineDecay(
            learning_rate / 25, max(1, total_steps - warm), alpha=1e-3, warmup_target=learning_rate, warmup_steps=warm
        )
    warm = int(warmup * total_steps)
    if warm == 0:
        return keras.optimizers.schedules.CosineDecay(learning_rate, max(1, total_steps))
    return keras.optimizers.schedules.CosineDecay(
        learning_rate / 10, max(1, total_steps - warm), warmup_target=learning_rate, warmup_steps=warm
    )


def _default_loss(y, label_smoothing):
    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.integer) and y.ndim == 1:
        return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing), "labels"
    if y.dtype == bool:
        return "binary_crossentropy", "binary"
    return "mse", "regression"


def fit(
    model,
    data,
    *,
    validation_data=None,
    epochs=10,
    batch_size=64,
    learning_rate=1e-3,
    weight_decay=1e-4,
    optimizer="adamw",
    schedule="cosine",
    warmup=0.05,
    label_smoothing=0.0,
    loss=None,
    metrics=None,
    loss_weights=None,
    early_stopping=5,
    augment=None,
    jit_compile="auto",
    mixed_precision=False,
    strategy=None,
    recalibrate_bn=True,
    history_path=None,
    verbose=1,
    seed=0,
):
    """Compile and fit ``model`` on ``data``; return the ``keras.callbacks.History``.

    ``data`` is a :class:`cookbook.data.Splits` (train on ``train``, validate on
    ``val``), a :class:`Split` or an ``(x, y)`` pair. Integer labels train a
    classifier: they are one-hot encoded, the loss is categorical cross-entropy with
    ``label_smoothing``, and the metric is ``accuracy``. Bool targets (masks) use
    binary cross-entropy and float targets mean squared error, unless ``loss`` says
    otherwise.

    A model with several outputs gets the same target on each, and ``loss_weights``
    defaults to 1 for the first output and 0.3 for each other one (GoogLeNet's
    auxiliary heads); metrics are computed on the first output.

    ``schedule`` is ``"cosine"`` (linear warmup over a ``warmup`` fraction of the
    steps, then cosine decay), ``"onecycle"`` or ``"constant"``; the optimizer is
    AdamW with ``weight_decay``. ``early_stopping`` is a patience in epochs on the
    validation loss (restoring the best weights), or None. ``augment`` names Keras
    augmentation layers (see :func:`cookbook.data.pipeline`). ``jit_compile`` goes to
    ``model.compile``: ``"auto"`` compiles the step with XLA where Keras can (JAX,
    TensorFlow on a GPU); False runs it as plain graph or eager code.
    ``mixed_precision`` (True, or a policy name) runs a copy of the model under a
    mixed dtype policy. ``strategy`` (see :func:`resolve_strategy`)
    runs a copy of the model under that distribution; ``model`` may also be a
    zero-argument function that builds the model, which is then called in the
    strategy's scope. The trained model is ``history.model``.

    After fitting, BatchNorm statistics are recalibrated on the training inputs
    (:func:`recalibrate_batchnorm`) unless ``recalibrate_bn`` is False; they are also
    recalibrated on 256 examples at the end of every epoch, before validation, so
    that validation metrics (and early stopping) see inference-mode results as
    they will be. With
    ``history_path`` the history is saved, atomically, as JSON.
    """
    if not (isinstance(model, keras.Model) or callable(model)):
        raise TypeError(f"model must be a keras.Model or a function that builds one, got {type(model).__name__}")
    if isinstance(data, cdata.Splits):
        if validation_data is None:
            validation_data = data.val
        data = data.train
    x, y = _as_xy(data, "data")
    val = _as_xy(validation_data, "validation_data") if validation_data is not None else None
    if len(x) == 0:
        raise ValueError("data must hold at least one example")
    _check_int(epochs, "epochs", 1)
    _check_int(batch_size, "batch_size", 1)
    _check_float(learning_rate, "learning_rate", 0.0, None, low_open=True)
    _check_float(weight_decay, "weight_decay", 0.0, None)
    _check_float(warmup, "warmup", 0.0, 0.9)
    _check_float(label_smoothing, "label_smoothing", 0.0, 0.5)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {tuple(OPTIMIZERS)}, got {optimizer!r}")
    if schedule is None:
        schedule = "constant"
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES} or None, got {schedule!r}")
    if early_stopping is not None:
        _check_int(early_stopping, "early_stopping", 1)
    if jit_compile not in ("auto", True, False):
        raise ValueError(f"jit_compile must be 'auto', True or False, got {jit_compile!r}")
    _check_int(verbose, "verbose", 0)
    _check_int(seed, "seed", 0)
    policy = _mixed_policy(mixed_precision)
    strategy, scope, replicas = resolve_strategy(strategy)
    if replicas > 1 and batch_size % replicas:
        raise ValueError(f"batch_size must be a multiple of the {replicas} replicas, got {batch_size}")

    default_loss, kind = _default_loss(y, label_smoothing)
    classes = None
    keras.utils.set_random_seed(seed)
    with scope():
        if not isinstance(model, keras.Model):
            model = model()
            if not isinstance(model, keras.Model):
                raise TypeError(f"model: the builder returned {type(model).__name__}, not a keras.Model")
            if policy:
                model = _clone(model, policy)
        elif strategy is not None or policy:
            model = _clone(model, policy)
        n_out = len(model.outputs)
        if kind == "labels":
            classes = int(model.outputs[0].shape[-1])
            if classes < 2:
                raise ValueError("data: integer labels need a model with a softmax over >= 2 classes")
        if loss_weights is None:
            loss_weights = [1.0] + [0.3] * (n_out - 1)
        if len(loss_weights) != n_out:
            raise ValueError(f"loss_weights must have one weight per output ({n_out}), got {len(loss_weights)}")
        if metrics is None:
            metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")] if kind == "labels" else []
        loss = loss or default_loss
        if n_out > 1:
            metrics_arg = [list(metrics)] + [[] for _ in range(n_out - 1)]
            loss_arg = [loss] * n_out
        else:
            metrics_arg, loss_arg, loss_weights = list(metrics), loss, None

        drop = replicas > 1  # every replica needs an equal share of each batch
        train_ds = cdata.pipeline(
            x, y, batch_size=batch_size, shuffle=True, augment=augment, classes=classes, seed=seed,
            outputs=n_out, drop_remainder=drop,
        )
        val_ds = None
        if val is not None:
            val_ds = cdata.pipeline(
                val[0], val[1], batch_size=batch_size, classes=classes, outputs=n_out, drop_remainder=drop
            )
        steps = len(x) // batch_size if drop else math.ceil(len(x) / batch_size)
        if steps < 1:
            raise ValueError(f"batch_size ({batch_size}) must not exceed the training examples ({len(x)})")
        rate = _schedule(schedule, learning_rate, steps * epochs, warmup)
        model.compile(
            optimizer=OPTIMIZERS[optimizer](rate, weight_decay), loss=loss_arg, loss_weights=loss_weights, metrics=metrics_arg, jit_compile=jit_compile
        )
        # Create the optimizer's slots now: on TensorFlow, fit otherwise creates them while
        # tracing the first step, and a function that creates variables is traced twice
        # (GoogLeNet's demo reaches its first step 1.7x sooner; benchmarks/first_step.py).
        model.optimizer.build(model.trainable_variables)
        callbacks = []
        if recalibrate_bn and val_ds is not None:
            callbacks.append(_RecalibrateBeforeValidation(x, steps))
        if early_stopping is not None and val_ds is not None:
            callbacks.append(
                keras.callbacks.EarlyStopping(monitor="val_loss", patience=early_stopping, restore_best_weights=True)
            )
        start = time.perf_counter()
        history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=callbacks, verbose=verbose,
                            shuffle=False)
        if recalibrate_bn:
            recalibrate_batchnorm(model, x)
        seconds = time.perf_counter() - start
    history.set_model(model)
    history.history = {key: [float(v) for v in values] for key, values in history.history.items()}
    if history_path is not None:
        io.write_json(
            history_path,
            {
                "history": history.history,
                "epochs": len(history.epoch),
                "seconds": seconds,
                "config": {
                    "batch_size": batch_size, "optimizer": optimizer, "learning_rate": learning_rate,
                    "weight_decay": weight_decay,
                    "schedule": schedule, "label_smoothing": label_smoothing, "augment": str(augment),
                    "mixed_precision": policy, "strategy": type(strategy).__name__ if strategy else None,
                    "backend": keras.backend.backend(), "recalibrate_bn": bool(recalibrate_bn),
                },
            },
        )
    return history


# --- train a recipe's demo ------------------------------------------------------------------


@dataclasses.dataclass
class TrainResult:
    """What :func:`train_recipe` returns."""

    model: keras.Model
    history: dict
    metrics: dict
    seconds: float
    data: cdata.Splits
    recipe: str = ""
    target: str = "labels"
    samples: np.ndarray | None = None  # adversarial: G's images of SAMPLE_CODES fixed codes after each epoch


SAMPLE_CODES = 64


QUICK_SIZES = (1500, 100, 200)  # quick=True: enough to learn a little, in seconds
QUICK_EPOCHS = 2


def _builtin(dataset, shape, n, seed, data_kwargs):
    n_train, n_val, n_test = n
    if dataset == "cluttered_digits":
        size = data_kwargs.get("size", shape[0])
        if len(shape) != 3 or shape[:2] != (size, size) or shape[2] not in (1, 3):
            raise ValueError(f"dataset: cluttered_digits makes {size}x{size} images with 1 or 3 channels; "
                             f"the model takes {shape}")
        kwargs = {"rgb": shape[2] == 3, "seed": seed, **data_kwargs, "size": size}
        return cdata.cluttered_digits(n_train, n_val, n_test, **kwargs)
    if dataset == "synthetic_audio":
        if len(shape) != 2 or shape[1] != 1:
            raise ValueError(f"dataset: synthetic_audio makes (samples, 1) signals, not {shape}")
        rate = shape[0] if shape[0] in (8000, 16000) else 8000
        kwargs = {"sample_rate": rate, "duration": shape[0] / rate, "seed": seed, **data_kwargs}
        return cdata.synthetic_audio(n_train, n_val, n_test, **kwargs)
    raise ValueError(f"dataset must be 'cluttered_digits', 'synthetic_audio' or one of {sorted(cdata.REAL_DATASETS)}, "
                     f"got {dataset!r}")


def _downscale(x, factor):
    n, h, w, c = x.shape
    return x.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


def _make_target(splits, target, model, seed):
    """Map each split to the (input, target) pair the task trains on."""
    if target == "labels":
        return splits
    out = []
    for k, split in enumerate(splits):
        if target in ("reconstruct", "adversarial"):
            out.append(cdata.Split(split.x, split.x, split.boxes, split.masks, labels=split.y))
        elif target == "denoise":
            rng = np.random.default_rng([seed, 999, k])
            noisy = np.clip(split.x + rng.normal(0, 0.2, split.x.shape).astype("float32"), 0, 1)
            out.append(cdata.Split(noisy, split.x, split.boxes, split.masks))
        elif target == "masks":
            if split.masks is None:
                raise ValueError(f"target: the dataset {splits.name!r} has no masks")
            out.append(cdata.Split(split.x, split.masks[..., None].astype("float32"), split.boxes, split.masks,
                                   labels=split.y))
        else:  # superres
            factor = split.x.shape[1] // model.input_shape[1]
            if factor < 2 or split.x.shape[1] != factor * model.input_shape[1]:
                raise ValueError("target: superres needs a model whose output is an integer multiple of its input")
            out.append(cdata.Split(_downscale(split.x, factor), split.x, split.boxes, split.masks))
    return cdata.Splits(*out, classes=splits.classes, name=splits.name)


def _psnr_db(a, b):
    mse = np.mean(np.square(a.astype("float64") - b), axis=tuple(range(1, a.ndim)))
    return float(np.mean(10 * np.log10(1.0 / np.maximum(mse, 1e-10))))


def _evaluate(model, split, target, batch_size):
    # A GAN draws its inference codes per batch from a fixed seed: one batch gives every image its own code.
    pred = model.predict(split.x, batch_size=len(split.x) if target == "adversarial" else batch_size, verbose=0)
    if target == "adversarial":  # D's mean probability of "real": the held-out images, and as many of G's
        fake, real = (float(np.mean(1 / (1 + np.exp(-np.asarray(logits))))) for logits in pred)
        return {"test_d_real": real, "test_d_fake": fake}
    pred = pred[0] if isinstance(pred, (list, tuple)) else pred
    if target == "labels":
        return {"test_accuracy": float(np.mean(np.argmax(pred, axis=-1) == split.y))}
    if target == "masks":
        p, t = pred[..., 0] > 0.5, split.y[..., 0] > 0.5
        ious = [np.sum(p & t) / max(1, np.sum(p | t)), np.sum(~p & ~t) / max(1, np.sum(~p | ~t))]
        return {"test_mean_iou": float(np.mean(ious))}
    metrics = {"test_psnr": _psnr_db(pred, split.y)}
    if target == "denoise":  # what the model added: the noisy input's PSNR is the baseline
        metrics["input_psnr"] = _psnr_db(split.x, split.y)
        metrics["psnr_gain_db"] = metrics["test_psnr"] - metrics["input_psnr"]
    return metrics


def train_recipe(name, dataset=None, epochs=None, quick=False, seed=0, verbose=1, builder=None,
                 **fit_kwargs) -> TrainResult:
    """Train recipe ``name``'s DEMO configuration on its task's built-in data.

    The recipe's ``TASK`` names a row of :data:`cookbook.tasks.TASKS`: the dataset and
    its sizes (the same for every recipe of the task, so their demos compare), the
    target ("labels", or "denoise": the image plus Gaussian noise in, the clean image
    out), the loss and the test metric. The DEMO dict (see docs/contributing.md) gives
    the builder and its kwargs, and optionally ``epochs``, ``batch_size``,
    ``learning_rate`` and ``augment``. ``dataset`` overrides the task's dataset: a built-in one or a
    real one (``cookbook.data.REAL_DATASETS``), for which the model's input shape and
    classes follow the data. ``builder`` trains another builder of the recipe with the
    demo's kwargs and settings (FCN-32s beside the demo's FCN-8s). ``quick=True`` trains 2 epochs on 1,500 examples, for CI.
    Other keyword arguments go to :func:`fit` (``batch_size``, ``learning_rate``,
    ``jit_compile``, ...).

    The test metric is accuracy for labels, and PSNR (dB) for denoise and superres,
    with ``psnr_gain_db`` over the noisy input for denoise; mean IoU for masks. All are
    computed in inference mode. ``metrics["train_seconds"]`` is the wall time of the
    whole call: data, build, fit and evaluation.
    """
    from cookbook import registry, tasks

    start = time.perf_counter()
    recipe = registry.get(name)
    task = tasks.get(recipe.task)
    demo = recipe.demo
    if not isinstance(quick, bool):
        raise TypeError(f"quick must be a bool, got {type(quick).__name__}")
    _check_int(seed, "seed", 0)
    if epochs is not None:
        _check_int(epochs, "epochs", 1)
    target = task.target
    dataset = dataset or task.dataset
    if not isinstance(dataset, str):
        raise TypeError(f"dataset must be a str, got {type(dataset).__name__}")
    build = recipe.builder(builder or demo["builder"])
    kwargs = dict(demo["kwargs"])
    data_kwargs = dict(task.data_kwargs) if dataset == task.dataset else {}
    sizes = tuple(data_kwargs.pop(key, default) for key, default in
                  (("n_train", 5000), ("n_val", 1000), ("n_test", 1000)))
    n = QUICK_SIZES if quick else sizes

    if dataset in cdata.REAL_DATASETS:
        shape = kwargs.get("input_shape")
        image_size = tuple(shape[:2]) if shape and cdata.REAL_DATASETS[dataset][1] != "audio" else None
        splits = cdata.load(dataset, image_size=image_size, limit=QUICK_SIZES[0] if quick else None)
        kwargs["input_shape"] = tuple(splits.train.x.shape[1:])
        if target == "labels" and "classes" in kwargs:
            kwargs["classes"] = splits.classes
        model = build(**kwargs)
    else:
        model = build(**kwargs)
        out_shape = tuple(model.outputs[0].shape[1:])
        shape = out_shape if target in ("denoise", "superres") else tuple(model.input_shape[1:])
        splits = _builtin(dataset, shape, n, seed, data_kwargs)
    splits = _make_target(splits, target, model, seed)

    fit_args = {
        "epochs": QUICK_EPOCHS if quick else demo.get("epochs", 10),
        "batch_size": demo.get("batch_size", 64),
        "learning_rate": demo.get("learning_rate", 1e-3),
        "augment": demo.get("augment"),
        "optimizer": demo.get("optimizer", "adamw"),
        "verbose": verbose,
        "seed": seed,
    }
    if epochs is not None:
        fit_args["epochs"] = epochs
    if task.loss:
        fit_args["loss"] = task.loss
    if target in ("denoise", "superres", "reconstruct"):
        fit_args["metrics"] = [psnr]
    elif target == "masks":
        fit_args["metrics"] = [keras.metrics.BinaryIoU(target_class_ids=[0, 1], name="mean_iou")]
    fit_args.update(fit_kwargs)
    samples = None
    if target == "adversarial":  # two players, two losses: cookbook.gan's loop, not fit
        from cookbook import gan

        codes = np.random.default_rng(seed).normal(size=(SAMPLE_CODES, model.get_layer("gen_code").latent_dim))
        trained = gan.train_gan(model, splits.train.x, epochs=fit_args["epochs"], batch_size=fit_args["batch_size"],
                                learning_rate=fit_args["learning_rate"], seed=seed, codes=codes.astype("float32"),
                                verbose=verbose)
        history, samples = trained.history, trained.samples
    else:
        history = fit(model, splits, **fit_args)
        model, history = history.model, history.history
    metrics = _evaluate(model, splits.test, target, fit_args["batch_size"])
    metrics["epochs"] = int(fit_args["epochs"]) if target == "adversarial" else len(history["loss"])
    metrics["params"] = int(model.count_params())
    seconds = time.perf_counter() - start
    metrics["train_seconds"] = seconds
    return TrainResult(
        model=model, history=history, metrics=metrics, seconds=seconds,
        data=splits, recipe=name, target=target, samples=samples,
    )
