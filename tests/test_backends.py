"""Training compiles its step on every backend by default.

`make test` runs this file, with the backend-independent checks of tests/test_recipes.py
(marker ``backends``), under TensorFlow, JAX and PyTorch.
"""

import inspect

import keras
import numpy as np
import pytest

from cookbook import runtime, train

pytestmark = pytest.mark.backends


def test_fit_and_train_recipe_compile_by_default():
    assert inspect.signature(train.fit).parameters["jit_compile"].default == "auto"
    assert "jit_compile" not in inspect.signature(train.train_recipe).parameters  # passed through to fit


def test_fit_compiles_the_step_with_xla_where_keras_can():
    """"auto": XLA on JAX and on a TensorFlow GPU; eager PyTorch, graph-mode TensorFlow on a CPU."""
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    rng = np.random.default_rng(0)
    data = (rng.uniform(0, 1, (32, 8, 8, 1)).astype("float32"), rng.integers(0, 3, 32))
    history = train.fit(model, data, epochs=1, batch_size=16, early_stopping=None, verbose=0)
    backend = keras.backend.backend()
    expected = backend == "jax" or (backend == "tensorflow" and bool(runtime.gpu_names(backend)))
    assert history.model.jit_compile is expected
    assert np.isfinite(history.history["loss"][0])
    history = train.fit(model, data, epochs=1, batch_size=16, early_stopping=None, verbose=0, jit_compile=False)
    assert history.model.jit_compile is False
