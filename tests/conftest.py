"""Shared fixtures: a clean Keras session per test, and task-aware tiny batches."""

import numpy as np
import pytest
import keras


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
    if recipe.task == "autoencoder":
        return x, [rng.uniform(0, 1, size=(n, *shape[1:])).astype("float32") for shape in _output_shapes(model)]
    classes = _output_shapes(model)[0][-1]
    y = rng.integers(0, classes, size=(n,))
    return x, [y for _ in model.outputs]


def compile_for(recipe, model, optimizer):
    loss = "mse" if recipe.task == "autoencoder" else "sparse_categorical_crossentropy"
    model.compile(optimizer=optimizer, loss=[loss] * len(model.outputs), jit_compile=False)


def _output_shapes(model):
    return [tuple(output.shape) for output in model.outputs]
