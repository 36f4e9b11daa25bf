"""Shared fixtures: a clean Keras session per test, task-aware tiny batches, an input gradient on
every backend, and the ``backends`` marker on the recipe checks that `make test` repeats under JAX
and PyTorch."""

import os

# TensorFlow 2.21's oneDNN kernels crashed the process (a segfault or abort in eager
# ReluGrad) in tests/test_cost.py's gradient checks on an AMX Xeon, where oneDNN is on by
# default; with it off they pass. The suite runs without it unless told otherwise.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

# The checks of tests/test_recipes.py that hold on every backend: build, forward and
# backward passes, the .keras round trip, twin parity. `make test` runs them (without
# the `heavy` ones) again with KERAS_BACKEND=jax and KERAS_BACKEND=torch.
BACKEND_CHECKS = {
    "test_builder_builds_small",
    "test_demo_trains_every_weight_and_lowers_the_loss",
    "test_demo_keras_round_trip",
    "test_twin_parity",
}


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.name == "test_recipes.py" and getattr(item, "originalname", None) in BACKEND_CHECKS:
            item.add_marker(pytest.mark.backends)
        if item.name in getattr(item.module, "RECIPE_BUGS", ()):
            item.add_marker(pytest.mark.xfail(strict=True, reason="a recipe bug the suite found (RECIPE_BUGS)"))


@pytest.fixture(autouse=True)
def _fresh_session():
    # free_memory=False skips a full gc.collect (0.3 s a call, twice per test adds minutes).
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(0)
    yield


def tiny_batch(recipe, model, n=4, seed=0):
    """Inputs and targets that fit ``model`` for the recipe's task."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, size=(n, *model.input_shape[1:])).astype("float32")
    if _predicts_images(recipe):
        return x, [rng.uniform(0, 1, size=(n, *shape[1:])).astype("float32") for shape in _output_shapes(model)]
    classes = _output_shapes(model)[0][-1]
    y = rng.integers(0, classes, size=(n,))
    return x, [y for _ in model.outputs]


def compile_for(recipe, model, optimizer):
    loss = "mse" if _predicts_images(recipe) else "sparse_categorical_crossentropy"
    model.compile(optimizer=optimizer, loss=[loss] * len(model.outputs), jit_compile=False)


def _output_shapes(model):
    return [tuple(output.shape) for output in model.outputs]


def _predicts_images(recipe):
    from cookbook import tasks

    return tasks.get(recipe.task).target != "labels"


def input_gradient(model, x, objective):
    """d objective(model(x)) / dx in inference mode, with each backend's own autodiff (tests only)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = objective(model(x, training=False))
        return tape.gradient(value, x).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(lambda v: objective(model(v, training=False)))(x))
    if backend == "torch":
        import torch

        x = torch.tensor(x, requires_grad=True)
        objective(model(x, training=False)).backward()
        return x.grad.cpu().numpy()
    pytest.skip(f"no gradient helper for backend {backend}")
