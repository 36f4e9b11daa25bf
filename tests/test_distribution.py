"""fit(strategy="mirrored") on 2 logical devices: MirroredStrategy (TensorFlow), DataParallel (JAX).

Each case runs in a subprocess, so that the device setup (logical CPUs, XLA flags,
the Keras backend) does not leak into the test process.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    {setup}
    import keras
    from cookbook import train
    from tests.test_train import bn_net, quadrants

    split = quadrants(n=256)
    history = train.fit(bn_net(), split, epochs=4, batch_size=32, learning_rate=1e-2,
                        strategy="mirrored", verbose=0, early_stopping=None)
    model = history.model
    variable = model.get_layer("conv0").kernel
    print("RESULT " + json.dumps({{
        "backend": keras.backend.backend(),
        "replicas": {replicas},
        "variable_type": type(getattr(variable, "value", variable)).__name__ + "|" + type(variable).__name__,
        "loss": history.history["loss"],
        "bn_mean": float(np.abs(np.asarray(model.get_layer("bn0").moving_mean)).mean()),
        "test_accuracy": float(np.mean(np.argmax(model.predict(split.x, verbose=0), -1) == split.y)),
    }}))
    """
)

TF_SETUP = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
"""
TF_REPLICAS = "train.resolve_strategy('mirrored')[2]"
JAX_SETUP = """
import jax
assert len(jax.devices()) == 2, jax.devices()
"""
JAX_REPLICAS = "len(model.get_layer('conv0').kernel.value.sharding.device_set)"


def run(backend, setup, replicas, extra_env=None):
    env = {**os.environ, "KERAS_BACKEND": backend, "CUDA_VISIBLE_DEVICES": "", **(extra_env or {})}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.path.join(root, "tests"), env.get("PYTHONPATH")]))
    code = SCRIPT.format(setup=setup, replicas=replicas)
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=False,
                          timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.mark.heavy  # subprocesses / long training: runs in make test, not the default suite
def test_mirrored_strategy_on_two_logical_cpus():
    result = run("tensorflow", TF_SETUP, TF_REPLICAS)
    assert result["backend"] == "tensorflow" and result["replicas"] == 2
    assert "Mirrored" in result["variable_type"]  # the model was rebuilt in the strategy's scope
    assert result["loss"][-1] < result["loss"][0]
    assert result["bn_mean"] > 0.1  # recalibrated: the inputs sit on an offset of 3
    assert result["test_accuracy"] > 0.5


@pytest.mark.heavy  # subprocesses / long training: runs in make test, not the default suite
def test_jax_data_parallel_on_two_host_devices():
    pytest.importorskip("jax")
    flags = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
    result = run("jax", JAX_SETUP, JAX_REPLICAS, {"XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"})
    assert result["backend"] == "jax" and result["replicas"] == 2  # variables replicated on both devices
    assert result["loss"][-1] < result["loss"][0]
    assert result["bn_mean"] > 0.1
    assert result["test_accuracy"] > 0.5
