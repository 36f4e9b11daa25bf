"""cookbook.transfer: feature extraction, fine-tuning with BatchNorm kept in inference mode, from scratch.

Every check compares against values taken before training, from the pretrained
backbone itself, or from a model built here by hand, never against the helper's own
output.
"""

import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest

from cookbook import train, transfer

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("stage1_conv", "stage1_bn", "stage1_relu", "stage1_pool", "stage2_conv", "stage2_bn", "stage2_relu")


def backbone_net():
    """Two conv-BN-ReLU stages, no top: the shape of a keras.applications model with include_top=False."""
    inputs = keras.Input((16, 16, 1), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="stage1_conv")(inputs)
    x = keras.layers.BatchNormalization(name="stage1_bn")(x)
    x = keras.layers.Activation("relu", name="stage1_relu")(x)
    x = keras.layers.MaxPooling2D(name="stage1_pool")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", use_bias=False, name="stage2_conv")(x)
    x = keras.layers.BatchNormalization(name="stage2_bn")(x)
    x = keras.layers.Activation("relu", name="stage2_relu")(x)
    return keras.Model(inputs, x, name="tiny_backbone")


def squares(n, seed, *, scale=1.0, shift=0.0):
    """3 classes (a bright square top-left, top-right or bottom) on noise, times ``scale`` plus ``shift``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    x = rng.normal(0.2, 0.1, size=(n, 16, 16, 1)).astype("float32")
    corners = ((2, 2), (2, 9), (9, 5))
    for i, k in enumerate(y):
        r, c = corners[k]
        x[i, r : r + 5, c : c + 5] += 1.0
    return (x * scale + shift).astype("float32"), y.astype("int64")


@pytest.fixture(scope="module")
def pretrained_weights():
    """The backbone's weights after pretraining on the original data, BN statistics those of that data."""
    keras.utils.set_random_seed(1)
    backbone = backbone_net()
    inputs = keras.Input((16, 16, 1))
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(backbone(inputs)))
    model = keras.Model(inputs, outputs)
    x, y = squares(192, seed=0)
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", jit_compile=False)
    model.fit(x, y, batch_size=32, epochs=3, verbose=0)
    train.recalibrate_batchnorm(model, x)
    return backbone.get_weights()


@pytest.fixture
def backbone(pretrained_weights):
    model = backbone_net()
    model.set_weights(pretrained_weights)
    return model


def _weights_by_layer(model):
    return {layer.name: [np.array(w) for w in layer.weights] for layer in model.layers}


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


def _moving_statistics(model):
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    return {bn.name: (np.array(bn.moving_mean), np.array(bn.moving_variance)) for bn in bns}


def _fit(model, x, y, *, learning_rate=1e-3, batch_size=4, epochs=2):
    """Plain Keras: compile and fit, as a user would."""
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy", jit_compile=False)
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=False)


# --- the three modes --------------------------------------------------------------------------


def test_feature_extraction_trains_the_head_only(backbone):
    before = _weights_by_layer(backbone)
    model = transfer.transfer_model(backbone, 3, mode="feature_extraction")
    assert [w.path for w in model.trainable_weights] == [w.path for w in model.get_layer("predictions").weights]
    head = [np.array(w) for w in model.get_layer("predictions").weights]
    x, y = squares(32, seed=1, scale=2.0, shift=0.5)
    _fit(model, x, y, learning_rate=1e-2)

    inner = model.get_layer("tiny_backbone")
    for name, weights in _weights_by_layer(inner).items():  # moving statistics included
        assert _same(weights, before[name]), f"{name} changed during feature extraction"
    assert not _same([np.array(w) for w in model.get_layer("predictions").weights], head), "the head did not train"
    for name, weights in _weights_by_layer(backbone).items():
        assert _same(weights, before[name]), "the backbone passed in was modified"
    # The copy computes exactly what the pretrained backbone computes.
    np.testing.assert_array_equal(inner.predict(x, verbose=0), backbone.predict(x, verbose=0))


def test_fine_tuning_changes_only_the_layers_from_trainable_from_on(backbone):
    before = _weights_by_layer(backbone)
    model = transfer.transfer_model(backbone, 3, mode="fine_tune", trainable_from="stage2_conv")
    x, y = squares(32, seed=2, scale=2.0, shift=0.5)
    # cookbook.train.fit, whose BatchNorm recalibration runs the model in training mode afterwards.
    train.fit(model, (x, y), epochs=2, batch_size=4, learning_rate=1e-2, early_stopping=None, verbose=0)

    after = _weights_by_layer(model.get_layer("tiny_backbone"))
    start = LAYERS.index("stage2_conv")
    for i, name in enumerate(LAYERS):
        if name.endswith("_bn") or i < start:  # frozen: BN always, and everything below trainable_from
            assert _same(after[name], before[name]), f"{name} changed but should be frozen"
        elif before[name]:
            assert not _same(after[name], before[name]), f"{name} is at or after trainable_from but did not train"


def test_fine_tuning_everything_still_freezes_batchnorm(backbone):
    model = transfer.transfer_model(backbone, 3, mode="fine_tune")
    inner = model.get_layer("tiny_backbone")
    trainable = {w.path for w in model.trainable_weights}
    expected = {w.path for name in ("stage1_conv", "stage2_conv") for w in inner.get_layer(name).weights}
    expected |= {w.path for w in model.get_layer("predictions").weights}
    assert trainable == expected


def test_unfreeze_keeps_the_trained_head_and_opens_the_top_stage(backbone):
    model = transfer.transfer_model(backbone, 3)
    x, y = squares(32, seed=3)
    _fit(model, x, y, learning_rate=1e-2, epochs=1)
    head = [np.array(w) for w in model.get_layer("predictions").weights]
    assert transfer.unfreeze(model, "stage2_conv") is model
    inner = model.get_layer("tiny_backbone")
    assert {w.path for w in model.trainable_weights} == (
        {w.path for w in inner.get_layer("stage2_conv").weights} | {w.path for w in model.get_layer("predictions").weights})
    assert _same([np.array(w) for w in model.get_layer("predictions").weights], head)


def test_scratch_reinitializes_and_trains_everything(backbone, pretrained_weights):
    model = transfer.transfer_model(backbone, 3, mode="scratch")
    inner = model.get_layer("tiny_backbone")
    for name in ("stage1_conv", "stage2_conv"):
        fresh, trained = np.array(inner.get_layer(name).kernel), np.array(backbone.get_layer(name).kernel)
        assert fresh.shape == trained.shape and not np.allclose(fresh, trained), f"{name} kept pretrained weights"
    assert len(model.trainable_weights) == len(backbone.weights) - 4 + 2  # all but the moving statistics, + head
    stats = _moving_statistics(inner)
    x, y = squares(32, seed=4, scale=2.0, shift=0.5)
    _fit(model, x, y)
    for name, (mean, _) in _moving_statistics(inner).items():  # BN in training mode, as it must be from scratch
        assert not np.allclose(mean, stats[name][0]), f"{name} kept its statistics while training from scratch"
    assert _same(backbone.get_weights(), pretrained_weights), "the backbone passed in was modified"


# --- the BatchNorm pitfall, shown -----------------------------------------------------------


def _naive(backbone, training=None):
    """The way that looks right: the backbone (a copy) under a new head, unfrozen, BatchNorm and all."""
    copy = keras.models.clone_model(backbone)
    copy.set_weights(backbone.get_weights())
    inputs = keras.Input((16, 16, 1))
    x = copy(inputs) if training is None else copy(inputs, training=training)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    copy.trainable = True
    return model, copy


def _feature_drift(inner, backbone, x):
    """How far ``inner``'s features on ``x`` are from the pretrained backbone's, relative to their size."""
    reference = backbone.predict(x, verbose=0)
    return float(np.mean(np.abs(inner.predict(x, verbose=0) - reference)) / np.mean(np.abs(reference)))


@pytest.mark.heavy  # a full-size build or a short fit: keeps the default suite under 10 minutes
def test_batchnorm_pitfall_ours_keeps_pretrained_statistics_the_naive_way_does_not(backbone):
    pretrained = _moving_statistics(backbone)
    ours = transfer.transfer_model(backbone, 3, mode="fine_tune", dropout=0.0)
    naive, naive_backbone = _naive(backbone)
    naive.get_layer("predictions").set_weights(ours.get_layer("predictions").get_weights())  # same start
    # New data with other statistics (scaled and shifted), small batches.
    x_new, y_new = squares(48, seed=5, scale=3.0, shift=1.5)
    for model in (ours, naive):
        keras.utils.set_random_seed(0)
        _fit(model, x_new, y_new, learning_rate=1e-4, batch_size=4, epochs=2)  # a fine-tuning rate

    for name, (mean, variance) in _moving_statistics(ours.get_layer("tiny_backbone")).items():
        np.testing.assert_array_equal(mean, pretrained[name][0], err_msg=f"ours: {name} moving mean changed")
        np.testing.assert_array_equal(variance, pretrained[name][1], err_msg=f"ours: {name} moving variance changed")
    moved = {name: float(np.max(np.abs(mean - pretrained[name][0])))
             for name, (mean, _) in _moving_statistics(naive_backbone).items()}
    assert all(value > 1e-3 for value in moved.values()), f"the naive way kept its statistics: {moved}"

    # On the ORIGINAL data, the naive backbone's features drifted further from the pretrained ones.
    x_original, _ = squares(64, seed=6)
    ours_drift = _feature_drift(ours.get_layer("tiny_backbone"), backbone, x_original)
    naive_drift = _feature_drift(naive_backbone, backbone, x_original)
    print(f"feature drift on the original data: naive {naive_drift:.4f}, ours {ours_drift:.4f}")
    assert naive_drift > 3 * ours_drift, f"naive drift {naive_drift:.4f} vs ours {ours_drift:.4f}"


def test_keras_overrides_training_false_under_fit(backbone):
    """Why transfer_model freezes BatchNorm: in Keras 3, fit's training=True reaches a backbone called with
    training=False (keras-team/keras#20285). If this starts failing, Keras honours training=False again:
    update the module docstring and docs/transfer.md."""
    pretrained = _moving_statistics(backbone)
    guide, guide_backbone = _naive(backbone, training=False)  # the Keras guide's pattern
    x_new, y_new = squares(16, seed=7, scale=3.0, shift=1.5)
    _fit(guide, x_new, y_new, epochs=1)
    mean, _ = _moving_statistics(guide_backbone)["stage1_bn"]
    assert not np.allclose(mean, pretrained["stage1_bn"][0])


# --- serialization and shapes ---------------------------------------------------------------


def test_transfer_model_round_trips_in_safe_mode(backbone, tmp_path):
    model = transfer.transfer_model(backbone, 3, mode="fine_tune", trainable_from="stage2_conv")
    path = tmp_path / "transfer.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    x, _ = squares(8, seed=8)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    inner = loaded.get_layer("tiny_backbone")
    assert not inner.get_layer("stage2_bn").trainable and inner.get_layer("stage2_conv").trainable
    assert not inner.get_layer("stage1_conv").trainable


def test_sequence_and_pooled_backbones():
    inputs = keras.Input((32, 2))
    x = keras.layers.Conv1D(4, 3, name="conv")(inputs)
    model = transfer.transfer_model(keras.Model(inputs, x), 5)
    assert model.output_shape == (None, 5) and "avg_pool" in [layer.name for layer in model.layers]
    pooled = keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(x))
    model = transfer.transfer_model(pooled, 2, dropout=0)
    assert [layer.name for layer in model.layers][-1] == "predictions"
    assert "avg_pool" not in [layer.name for layer in model.layers] and "dropout" not in [
        layer.name for layer in model.layers]


# --- bad arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, error, word", [
    ({"mode": "finetune"}, ValueError, "mode"),
    ({"mode": "fine_tune", "trainable_from": "stage9_conv"}, ValueError, "trainable_from"),
    ({"mode": "fine_tune", "trainable_from": 3}, TypeError, "trainable_from"),
    ({"trainable_from": "stage2_conv"}, ValueError, "trainable_from"),
    ({"mode": "scratch", "trainable_from": "stage2_conv"}, ValueError, "trainable_from"),
    ({"dropout": 1.0}, ValueError, "dropout"),
    ({"dropout": "0.2"}, TypeError, "dropout"),
    ({"name": 3}, TypeError, "name"),
])
def test_bad_arguments_name_themselves(backbone, kwargs, error, word):
    with pytest.raises(error, match=word):
        transfer.transfer_model(backbone, 3, **kwargs)


@pytest.mark.parametrize("classes, error", [(0, ValueError), (2.5, TypeError), ("3", TypeError), (True, TypeError)])
def test_bad_classes(backbone, classes, error):
    with pytest.raises(error, match="classes"):
        transfer.transfer_model(backbone, classes)


def test_bad_backbones():
    with pytest.raises(TypeError, match="backbone"):
        transfer.transfer_model("xception", 3)
    inputs = keras.Input((4, 4, 4, 1))
    with pytest.raises(ValueError, match="backbone"):
        transfer.transfer_model(keras.Model(inputs, keras.layers.Conv3D(2, 3)(inputs)), 3)
    a, b = keras.Input((8, 8, 1)), keras.Input((8, 8, 1))
    with pytest.raises(ValueError, match="backbone"):
        transfer.transfer_model(keras.Model([a, b], keras.layers.Add()([a, b])), 3)

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(2, 3)

        def call(self, x):
            return self.conv(x)

    sub = Sub()
    sub(np.zeros((1, 8, 8, 1), "float32"))
    with pytest.raises((TypeError, ValueError), match="backbone"):
        transfer.transfer_model(sub, 3)


def test_unfreeze_bad_arguments(backbone):
    with pytest.raises(TypeError, match="model"):
        transfer.unfreeze("model")
    with pytest.raises(ValueError, match="model"):
        transfer.unfreeze(backbone)  # no nested backbone: not a transfer_model model
    model = transfer.transfer_model(backbone, 3)
    with pytest.raises(ValueError, match="trainable_from"):
        transfer.unfreeze(model, "nope")


# --- the docs page says what the benchmark measured --------------------------------------------


def test_docs_table_matches_the_benchmark_results():
    results = json.loads((ROOT / "benchmarks/results/transfer.json").read_text(encoding="utf-8"))
    page = (ROOT / "docs/transfer.md").read_text(encoding="utf-8")
    assert results["cpu"] in page, "docs/transfer.md must name the CPU the results come from"
    rows = dict(re.findall(r"^\| `(\w+)` \|(.*)\|\s*$", page, flags=re.MULTILINE))
    for method, summary in results["summary"].items():
        assert method in rows, f"docs/transfer.md has no row for {method}"
        cells = rows[method]
        assert f"{summary['accuracy_mean']:.3f} ± {summary['accuracy_spread']:.3f}" in cells, method
        assert f"{summary['seconds_mean']:.0f} s" in cells, method


def test_docs_top_two_stages_table_matches_its_results():
    results = json.loads((ROOT / "benchmarks/results/transfer_top2.json").read_text(encoding="utf-8"))
    assert results["settings"]["trainable_from"] == "block2_bn1"
    page = (ROOT / "docs/transfer.md").read_text(encoding="utf-8")
    table = page[page.index("| method (top two stages) |"):]
    rows = re.findall(r"^\|[^|]+\|([^|]+)\|([^|]+)\|([^|]+)\|\s*$", table, flags=re.MULTILINE)[1:]  # past the rule
    rows = [tuple(cell.strip() for cell in row) for row in rows if "±" in row[0]][: len(results["summary"])]
    order = ("feature_extraction", "fine_tune", "fine_tune_naive", "fine_tune_naive_recalibrated", "scratch")
    summaries = [results["summary"][method] for method in order]
    expected = [(f"{s['accuracy_mean']:.3f} ± {s['accuracy_spread']:.3f}", ", ".join(f"{a:.3f}" for a in s["accuracy"]),
                 f"{s['seconds_mean']:.0f} s") for s in summaries]
    assert rows == expected
