"""The process environment, in one place: oneDNN, log level, Keras import, devices, versions.

The CLI, the render and the benchmarks import this module; it imports nothing of the
cookbook, so there is no import cycle, and it imports Keras only inside functions.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

__all__ = ["cpu_name", "device_scope", "gpu_names", "import_keras_quietly", "limit_threads", "prefer_onednn", "quiet_logs",
           "skip_grappler", "versions"]


def prefer_onednn() -> None:
    """Ask TensorFlow for its oneDNN CPU kernels, unless TF_ENABLE_ONEDNN_OPTS is set.

    TensorFlow turns them on by default only on CPUs with AVX-512 VNNI/BF16 or AMX; on
    an AVX2 CPU they train the demos about 1.3x faster (docs/performance.md). It must run
    before TensorFlow is imported; an explicit TF_ENABLE_ONEDNN_OPTS=0 still wins.
    """
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def limit_threads(threads: int) -> None:
    """Give TensorFlow (its op and inter-op pools) and OpenMP (PyTorch) ``threads`` threads.

    For a process that shares the CPU with other renders; it must run before the backend
    is imported. An explicit setting of these variables still wins.
    """
    for variable in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(variable, str(threads))


def quiet_logs(level: str = "2") -> None:
    """Silence TensorFlow's C++ info logs (unless TF_CPP_MIN_LOG_LEVEL is already set) and its
    Python warnings (such as retracing notes about the visualizations' per-layer functions)."""
    import logging

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", level)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def import_keras_quietly() -> None:
    """Import keras with the C++ start-up chatter of TensorFlow's CUDA build silenced."""
    if "keras" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def skip_grappler() -> None:
    """On TensorFlow, compile tf.functions without Grappler's graph rewrites.

    Grappler rewrites each new graph before its first run; for a deep demo that is
    seconds of the first training step (GoogLeNet's: 19.4 s with it, 14.0 s without),
    and on these small models the rewritten steps ran no faster (docs/performance.md,
    benchmarks/first_step.py). A no-op on JAX and PyTorch; call it after importing Keras.
    """
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


def device_scope(device):
    """(context manager placing the work, name of the device) for ``device`` in auto|cpu|gpu."""
    import keras

    backend = keras.backend.backend()
    gpus = gpu_names(backend)
    if device == "gpu" and not gpus:
        raise RuntimeError(f"device='gpu' but the {backend} backend sees no GPU")
    if gpus and device in ("auto", "gpu"):
        return keras.device("gpu:0"), f"GPU: {gpus[0]}"
    return keras.device("cpu:0"), f"CPU: {cpu_name()}"


def gpu_names(backend) -> list:
    """The names of the GPUs that ``backend`` sees (empty without a GPU runtime)."""
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            names = []
            for gpu in gpus:
                details = tf.config.experimental.get_device_details(gpu)
                names.append(details.get("device_name", gpu.name))
            return names
        if backend == "jax":
            import jax

            return [d.device_kind for d in jax.devices() if d.platform in ("gpu", "cuda", "rocm")]
        if backend == "torch":
            import torch

            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - no GPU runtime at all means no GPU
        return []
    return []


def cpu_name() -> str:
    """The CPU model and core count, for the pages and the benchmark reports."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def versions(backend) -> dict:
    """Python, Keras, NumPy and the backend library's versions."""
    import keras
    import numpy

    found = {"python": platform.python_version(), "keras": keras.__version__, "numpy": numpy.__version__}
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend)
    if module and module in sys.modules:
        found[module] = getattr(sys.modules[module], "__version__", "?")
    return found
