"""cookbook.train: fit's defaults, multi-output loss weights, BN recalibration, train_recipe."""

import json

import keras
import numpy as np
import pytest

from cookbook import data, registry, tasks, train


def quadrants(n=384, size=16, offset=3.0, seed=0):
    """4 classes: a bright square in quadrant k, on a large constant offset.

    The offset puts every BN layer's input statistics far from the initial moving
    statistics (mean 0, variance 1), which is what a short fit leaves them near.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, size=n)
    x = rng.normal(0, 0.3, size=(n, size, size, 1)).astype("float32") + offset
    h = size // 2
    for i, k in enumerate(y):
        r, c = divmod(int(k), 2)
        x[i, r * h + 2 : r * h + h - 2, c * h + 2 : c * h + h - 2] += 2.0
    return data.Split(x, y.astype("int64"))


def bn_net(input_shape=(16, 16, 1), classes=4, aux=False):
    inputs = keras.Input(input_shape)
    x = inputs
    heads = []
    for i, filters in enumerate((8, 16)):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.Activation("relu", name=f"relu{i}")(x)
        x = keras.layers.MaxPooling2D(name=f"pool{i}")(x)
        if aux:
            pooled = keras.layers.GlobalAveragePooling2D(name=f"aux{i}_gap")(x)
            heads.append(keras.layers.Dense(classes, activation="softmax", name=f"aux{i}")(pooled))
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    main = keras.layers.Dense(classes, activation="softmax", name="main")(x)
    return keras.Model(inputs, [main, *heads] if aux else main)


def accuracy(model, x, y, training):
    preds = [keras.ops.convert_to_numpy(model(x[i : i + 64], training=training)) for i in range(0, len(x), 64)]
    return float(np.mean(np.concatenate(preds).argmax(-1) == y))


@pytest.mark.heavy  # a full-size build or a short fit: keeps the default suite under 10 minutes
def test_bn_recalibration_makes_inference_match_training_after_a_short_fit():
    split = quadrants()
    kwargs = {"epochs": 3, "batch_size": 32, "learning_rate": 1e-2, "verbose": 0, "early_stopping": None}
    stale = train.fit(bn_net(), split, recalibrate_bn=False, **kwargs).model
    fixed = train.fit(bn_net(), split, recalibrate_bn=True, **kwargs).model
    test = quadrants(seed=1)
    for model in (stale, fixed):
        assert accuracy(model, test.x, test.y, training=True) > 0.85  # it did learn
    # Without recalibration the moving statistics are still near (0, 1): collapse.
    assert accuracy(stale, test.x, test.y, training=False) < 0.6
    # With it, inference mode is as good as training mode.
    gap = accuracy(fixed, test.x, test.y, training=True) - accuracy(fixed, test.x, test.y, training=False)
    assert abs(gap) < 0.05
    # And the statistics are those of the data: bn0 sees conv0 of the inputs.
    conv = keras.Model(fixed.inputs, fixed.get_layer("conv0").output)
    feats = keras.ops.convert_to_numpy(conv(split.x, training=False)).reshape(-1, 8)
    np.testing.assert_allclose(fixed.get_layer("bn0").moving_mean.numpy(), feats.mean(0), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(fixed.get_layer("bn0").moving_variance.numpy(), feats.var(0), rtol=1e-3, atol=1e-4)


def test_three_outputs_use_googlenet_loss_weights(tmp_path):
    split = quadrants(n=128)
    path = tmp_path / "history.json"
    history = train.fit(bn_net(aux=True), (split.x, split.y), epochs=1, batch_size=32, verbose=0,
                        history_path=path)
    h = history.history
    assert len(history.model.outputs) == 3
    weighted = h["main_loss"][0] + 0.3 * h["aux0_loss"][0] + 0.3 * h["aux1_loss"][0]
    assert h["loss"][0] == pytest.approx(weighted, rel=1e-3)
    assert "main_accuracy" in h or "accuracy" in h
    saved = json.loads(path.read_text())
    assert saved["history"] == h and saved["config"]["schedule"] == "cosine"
    assert not list(tmp_path.glob(".*"))  # the atomic write left no temp file


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="how TensorFlow traces tf.function")
def test_fit_traces_the_training_step_once():
    """fit creates the optimizer's slots before the first step: on TensorFlow a step that
    creates variables is traced twice (GoogLeNet's demo: 34 s to its first step, not 20 s)."""
    model, traces = bn_net(), []
    step = model.train_step

    def counting_step(batch):
        traces.append(1)  # Python runs once per trace (every call, when eager)
        return step(batch)

    model.train_step = counting_step
    split = quadrants(n=96)
    train.fit(model, split, epochs=2, batch_size=32, verbose=0)
    assert model.optimizer.built
    assert len(traces) == 1


def test_label_smoothing_and_early_stopping_are_wired(tmp_path):
    split = quadrants(n=96)
    history = train.fit(bn_net(), data.Splits(split, split.take(32), split.take(32)), epochs=2, batch_size=32,
                        label_smoothing=0.1, early_stopping=1, verbose=0)
    loss = history.model.loss
    assert isinstance(loss, keras.losses.CategoricalCrossentropy) and loss.label_smoothing == 0.1
    assert "val_loss" in history.history


def test_sgd_is_nesterov_momentum_with_the_schedule_and_decay():
    split = quadrants(n=64)
    model = train.fit(bn_net(), split, epochs=1, batch_size=32, verbose=0, optimizer="sgd",
                      learning_rate=0.1, weight_decay=1e-4).model
    optimizer = model.optimizer
    assert isinstance(optimizer, keras.optimizers.SGD) and optimizer.nesterov
    assert optimizer.momentum == 0.9 and optimizer.weight_decay == 1e-4


def test_schedules_have_their_shape():
    lr = 1e-3
    one = train._schedule("onecycle", lr, 1000, 0.05)
    assert float(one(0)) == pytest.approx(lr / 25, rel=1e-3)
    assert float(one(300)) == pytest.approx(lr, rel=1e-2)
    assert float(one(999)) < lr / 100
    cos = train._schedule("cosine", lr, 1000, 0.05)
    assert float(cos(50)) == pytest.approx(lr, rel=1e-2) and float(cos(525)) == pytest.approx(lr / 2, rel=2e-2)
    assert train._schedule("constant", lr, 1000, 0.05) == lr


def test_mixed_precision_runs_a_mixed_copy():
    split = quadrants(n=64)
    model = train.fit(bn_net(), split, epochs=1, batch_size=32, verbose=0,
                      mixed_precision="mixed_bfloat16").model
    assert model.get_layer("conv0").compute_dtype == "bfloat16"
    assert model.get_layer("main").compute_dtype == "float32"  # outputs stay float32


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"epochs": 0}, ValueError, "epochs"),
        ({"batch_size": 2.0}, TypeError, "batch_size"),
        ({"schedule": "step"}, ValueError, "schedule"),
        ({"optimizer": "adam"}, ValueError, "optimizer"),
        ({"strategy": "tpu"}, ValueError, "strategy"),
        ({"label_smoothing": 0.9}, ValueError, "label_smoothing"),
        ({"loss_weights": [1.0, 0.3]}, ValueError, "loss_weights"),
        ({"mixed_precision": "half"}, ValueError, "mixed_precision"),
        ({"jit_compile": "yes"}, ValueError, "jit_compile"),
    ],
)
def test_fit_rejects_bad_arguments(kwargs, error, name):
    split = quadrants(n=32)
    with pytest.raises(error, match=name):
        train.fit(bn_net(), split, verbose=0, **kwargs)


def test_fit_rejects_bad_data():
    with pytest.raises(TypeError, match="data"):
        train.fit(bn_net(), "digits")
    with pytest.raises(TypeError, match="model"):
        train.fit("resnet", quadrants(n=8))


@pytest.mark.slow  # one epoch of the mini Xception: tens of seconds on 2 busy cores
def test_train_recipe_quick_returns_everything():
    result = train.train_recipe("xception", quick=True, verbose=0)
    assert isinstance(result.model, keras.Model) and result.recipe == "xception"
    assert set(result.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert result.metrics["epochs"] == train.QUICK_EPOCHS
    # Held-out accuracy recomputed here from the model and the test split.
    predicted = np.argmax(result.model.predict(result.data.test.x, verbose=0), axis=-1)
    assert result.metrics["test_accuracy"] == pytest.approx(float(np.mean(predicted == result.data.test.y)))
    assert result.metrics["params"] == result.model.count_params() > 0
    demo_shape = registry.get("xception").demo["kwargs"]["input_shape"]
    assert result.data.train.x.shape[1:] == demo_shape and len(result.data.train) == train.QUICK_SIZES[0]
    assert result.seconds > 0


def test_train_recipe_rejects_unknown_names():
    with pytest.raises(registry.UnknownNameError, match="xceptoin"):
        train.train_recipe("xceptoin")
    with pytest.raises(ValueError, match="dataset"):
        train.train_recipe("xception", dataset="mnist-m", quick=True)


def test_every_recipe_task_is_in_the_task_table_with_its_own_data():
    """train_recipe takes data, target and loss from cookbook.tasks: one row per recipe task."""
    for recipe in registry.all_recipes():
        task = tasks.get(recipe.task)
        assert task.target in train.TARGETS
        assert {"n_train", "n_val", "n_test"} <= set(task.data_kwargs)
        assert "dataset" not in recipe.demo and "data_kwargs" not in recipe.demo, (
            f"{recipe.name}: the demo's data comes from the task table, so every recipe of a task compares")
    with pytest.raises(ValueError, match="task"):
        tasks.get("regression")


def test_targets_map_to_their_tasks():
    splits = data.cluttered_digits(n_train=8, n_val=8, n_test=8)
    inputs = keras.Input((32, 32, 1))
    sr = keras.Model(inputs, keras.layers.UpSampling2D()(inputs))
    up = train._make_target(splits, "superres", sr, 0)
    assert up.train.x.shape == (8, 32, 32, 1) and up.train.y.shape == (8, 64, 64, 1)
    np.testing.assert_allclose(up.train.x[0, 0, 0, 0], splits.train.x[0, :2, :2, 0].mean(), rtol=1e-5)
    noisy = train._make_target(splits, "denoise", sr, 0)
    np.testing.assert_array_equal(noisy.train.y, splits.train.x)
    assert np.abs(noisy.train.x - splits.train.x).mean() > 0.05
    masks = train._make_target(splits, "masks", sr, 0)
    np.testing.assert_array_equal(masks.test.y[..., 0] > 0.5, splits.test.masks)
    np.testing.assert_array_equal(masks.test.labels, splits.test.y)  # the class labels stay, for the views
    same = train._make_target(splits, "reconstruct", sr, 0)
    np.testing.assert_array_equal(same.train.y, splits.train.x)
    np.testing.assert_array_equal(same.train.labels, splits.train.y)
    # PSNR of a known error: an MSE of 0.01 is 20 dB.
    value = train.psnr(np.zeros((1, 4, 4, 1)), np.full((1, 4, 4, 1), 0.1))
    assert float(keras.ops.convert_to_numpy(value)[0]) == pytest.approx(20.0, rel=1e-4)
