"""Machine facts recorded next to measurements (recipes and benchmarks)."""

import os
import platform
import resource
import sys


def peak_rss_mb():
    """Peak resident set size of this process in MiB.

    Examples:

    ```python
    keras_lgvq.utils.machine.peak_rss_mb()  # e.g. 2260.6
    ```
    """
    # Linux: VmHWM is this process's own peak. ru_maxrss is not: it carries
    # the parent's peak over fork + exec, which would hide a subprocess
    # worker's real figure.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    scale = 1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0
    return round(peak / scale, 1)


def load_average():
    """The 1/5/15-minute load averages, or `None` where unsupported."""
    if not hasattr(os, "getloadavg"):
        return None
    return [round(x, 2) for x in os.getloadavg()]


# Vector extensions that decide CPU matmul speed: the same 2-core job ran
# 2.7x slower on an AVX2-only machine than on the one with AVX-512 where
# the earlier figures were measured
# (benchmarks/results/text_to_image_measurements.md section 5).
_SIMD_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")


def cpu_facts(path="/proc/cpuinfo"):
    """The CPU model name and its vector extensions, from `/proc/cpuinfo`.

    Args:
        path: str. The cpuinfo file (Linux); elsewhere nothing is read.

    Returns:
        Dict with `cpu_model` (str or None) and `cpu_simd` (the flags of
        `_SIMD_FLAGS` the CPU has, or None when the file is missing).

    Examples:

    ```python
    keras_lgvq.utils.machine.cpu_facts()
    # {'cpu_model': 'AMD EPYC', 'cpu_simd': ['avx', 'avx2', 'fma']}
    ```
    """
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return {"cpu_model": None, "cpu_simd": None}
    model, flags = None, set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    return {
        "cpu_model": model,
        "cpu_simd": [f for f in _SIMD_FLAGS if f in flags],
    }


def machine_info():
    """Platform, CPU count, load average, library versions and GPUs.

    Returns:
        Dict with `platform`, `processor`, `python`, `cpu_count`,
        `load_average`, `cpu_model` and `cpu_simd` (`cpu_facts`),
        `backend`, `keras`, `numpy`, the backend's version
        under its name, and `gpu` (a list of device names, or `None`); on
        torch also `torch_threads`.

    Examples:

    ```python
    info = keras_lgvq.utils.machine.machine_info()
    ```
    """
    import keras
    import numpy as np

    backend = keras.backend.backend()
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "load_average": load_average(),
        **cpu_facts(),
        "backend": backend,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "gpu": None,
    }
    if backend == "tensorflow":
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        gpus = tf.config.list_physical_devices("GPU")
        info["gpu"] = [g.name for g in gpus] or None
    elif backend == "jax":
        import jax

        info["jax"] = jax.__version__
        gpus = [str(d) for d in jax.devices() if d.platform != "cpu"]
        info["gpu"] = gpus or None
    elif backend == "torch":
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = [torch.cuda.get_device_name(0)]
    return info


def quiet_tensorflow():
    """Silences TensorFlow's retracing warnings (probes build many models).

    Examples:

    ```python
    keras_lgvq.utils.machine.quiet_tensorflow()
    ```
    """
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        import absl.logging
    except ImportError:  # absl comes with TensorFlow; nothing to quiet.
        return
    absl.logging.set_verbosity(absl.logging.ERROR)
