"""Transfer learning: a pretrained backbone under a new classifier, three ways.

- ``"feature_extraction"``: the backbone is frozen; only the new head trains. The
  features are those the backbone learned on its first task (Razavian et al. 2014,
  "CNN Features off-the-shelf": ImageNet features with a linear classifier on top
  are a strong baseline for other recognition tasks).
- ``"fine_tune"``: the backbone's top stages (the layers from ``trainable_from`` on)
  train too, usually after the head has converged with the backbone frozen and at a
  learning rate about ten times smaller. Yosinski et al. 2014 ("How transferable are
  features in deep neural networks?") found the first layers general and the last
  ones specific to the first task, and fine-tuned transferred features to generalize
  better than features trained from scratch.
- ``"scratch"``: the same architecture, freshly initialized, all of it trained.

BatchNorm is the trap. A BatchNormalization layer in training mode normalizes with
the statistics of the current batch and moves its moving mean and variance towards
them. On a small batch from a differently distributed dataset that changes what
every later layer sees, and it overwrites the statistics the pretrained weights
were fitted to. The backbone's BatchNorm layers must therefore run in inference
mode while it is fine-tuned. The Keras guide says to call the backbone with
``training=False``, but in Keras 3 ``fit`` calls the whole model with
``training=True`` and that value reaches every layer of the graph, overriding the
``training=False`` recorded when the model was built (keras-team/keras#20285;
``tests/test_transfer.py`` checks it). What does hold in Keras 3 is that a
BatchNormalization layer with ``trainable = False`` runs in inference mode. So
:func:`transfer_model` and :func:`unfreeze` freeze every BatchNormalization layer
of the backbone (its scale and offset then do not train either, as in keras-io's
EfficientNet fine-tuning example), and call the backbone with ``training=False``
as well.
"""

from __future__ import annotations

import keras
import numpy as np

__all__ = ["MODES", "transfer_model", "unfreeze"]

MODES = ("feature_extraction", "fine_tune", "scratch")


def _check_float(value, name, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not low <= value < high:
        raise ValueError(f"{name} must be in [{low}, {high}), got {value}")


def _batchnorm_layers(model):
    """Every BatchNormalization layer of ``model``, nested models included."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found += _batchnorm_layers(layer)
    return found


def _freeze_below(backbone, trainable_from):
    """Unfreeze ``backbone`` from layer ``trainable_from`` on (all of it for None), BatchNorm excepted."""
    names = [layer.name for layer in backbone.layers]
    if trainable_from is not None:
        if not isinstance(trainable_from, str):
            raise TypeError(f"trainable_from must be a layer name (str) or None, got {type(trainable_from).__name__}")
        if trainable_from not in names:
            raise ValueError(f"trainable_from must name a layer of the backbone {backbone.name!r}, "
                             f"got {trainable_from!r}")
    start = names.index(trainable_from) if trainable_from is not None else 0
    backbone.trainable = True
    for layer in backbone.layers[:start]:
        layer.trainable = False
    for bn in _batchnorm_layers(backbone):
        bn.trainable = False  # Keras 3: a frozen BatchNormalization layer runs in inference mode


def _backbone_of(model):
    """The one nested model inside a :func:`transfer_model` model."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ValueError(f"model must be a transfer_model model (one nested backbone), "
                         f"found {len(nested)} nested models in {model.name!r}")
    return nested[0]


def transfer_model(backbone, classes, *, mode="feature_extraction", trainable_from=None, dropout=0.2,
                   classifier_activation="softmax", name=None):
    """A new classifier on a copy of ``backbone``: backbone → global average pooling → Dropout → Dense.

    ``backbone`` is a functional or Sequential model without its top, with one input
    and one output: a feature map (N, H, W, C) or (N, T, C), which is averaged over
    space or time, or features (N, C) already pooled (``pooling="avg"``). For
    ImageNet weights, ``keras.applications.Xception(weights="imagenet",
    include_top=False)`` or a recipe twin such as ``xception(weights="imagenet",
    include_top=False)``.

    The backbone is copied (``keras.models.clone_model``), so ``backbone`` itself is
    left as it is and one pretrained backbone can seed several models. ``mode``:

    - ``"feature_extraction"``: the copy has the backbone's weights and is frozen;
      only the head trains.
    - ``"fine_tune"``: the copy has the backbone's weights; its layers from the one
      named ``trainable_from`` on (in ``backbone.layers`` order) train, the earlier
      ones are frozen, and ``trainable_from=None`` trains all of them. Every
      BatchNormalization layer of the backbone is frozen, which in Keras 3 keeps it
      in inference mode: its moving statistics stay the pretrained ones and it
      normalizes with them (see the module docstring for why ``training=False``
      alone does not). Fine-tune at a small learning rate (about a tenth of the
      usual), ideally after the head has converged with the backbone frozen (see
      :func:`unfreeze`).
    - ``"scratch"``: the copy is freshly initialized (the clone's own initializers),
      and all of it trains, BatchNorm in training mode.

    The copy is nested as one layer, with the backbone's name, and called with
    ``training=False`` except from scratch. The head is ``avg_pool`` (unless the
    features are already pooled), ``dropout`` when ``dropout`` > 0, and
    ``predictions``, a Dense layer with ``classes`` units and
    ``classifier_activation``, in float32 under mixed precision. Returns an
    uncompiled ``keras.Model`` named ``name`` (default ``<backbone>_<mode>``); train
    it with :func:`cookbook.train.fit`, whose BatchNorm recalibration leaves frozen
    BatchNorm layers as they are.
    """
    if not isinstance(backbone, keras.Model):
        raise TypeError(f"backbone must be a keras.Model, got {type(backbone).__name__}")
    inputs, outputs = getattr(backbone, "inputs", None), getattr(backbone, "outputs", None)
    if not inputs or not outputs:
        raise TypeError("backbone must be a functional or Sequential model with a known input "
                        "(a subclassed model cannot be copied)")
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"backbone must have one input and one output, got {len(inputs)} and {len(outputs)}")
    rank = len(backbone.outputs[0].shape)
    if rank not in (2, 3, 4):
        raise ValueError(f"backbone must end in features (N, C), (N, T, C) or (N, H, W, C) (include_top=False), "
                         f"got an output of shape {tuple(backbone.outputs[0].shape)}")
    if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)):
        raise TypeError(f"classes must be an int, got {type(classes).__name__}")
    if classes < 1:
        raise ValueError(f"classes must be >= 1, got {classes}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if trainable_from is not None and mode != "fine_tune":
        raise ValueError(f"trainable_from applies to mode='fine_tune' only, got trainable_from={trainable_from!r} "
                         f"with mode={mode!r}")
    _check_float(dropout, "dropout", 0, 1)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str or None, got {type(name).__name__}")

    try:
        copy = keras.models.clone_model(backbone)
    except Exception as error:  # subclassed models cannot be cloned
        raise TypeError("backbone must be a functional or Sequential model (a subclassed model cannot be copied)") \
            from error
    if mode == "scratch":
        copy.trainable = True
    else:
        copy.set_weights(backbone.get_weights())
        if mode == "feature_extraction":
            copy.trainable = False
        else:
            _freeze_below(copy, trainable_from)

    inputs = keras.Input(shape=tuple(backbone.inputs[0].shape[1:]), name="input")
    x = copy(inputs, training=None if mode == "scratch" else False)
    if rank == 4:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif rank == 3:
        x = keras.layers.GlobalAveragePooling1D(name="avg_pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(int(classes), activation=classifier_activation, dtype="float32",
                                 name="predictions")(x)
    return keras.Model(inputs, outputs, name=name or f"{backbone.name}_{mode}")


def unfreeze(model, trainable_from=None):
    """Switch a :func:`transfer_model` model to fine-tuning, in place; returns ``model``.

    The second stage of the usual recipe: train the head with the backbone frozen
    (``mode="feature_extraction"``) until it converges, then unfreeze the backbone's
    layers from ``trainable_from`` on (all of them for None) and train again at a
    learning rate about ten times smaller. The backbone's BatchNormalization layers
    stay frozen, so they stay in inference mode with their pretrained statistics. The
    head's weights are kept. Compile again before fitting (:func:`cookbook.train.fit`
    compiles).
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    _freeze_below(_backbone_of(model), trainable_from)
    return model
