import subprocess
import sys

import keras

from keras_lgvq.utils import cache
from keras_lgvq.utils import machine


def test_machine_info_names_the_backend_and_versions():
    info = machine.machine_info()
    backend = keras.backend.backend()
    assert info["backend"] == backend
    assert info["keras"] == keras.__version__
    assert isinstance(info[backend], str) and info[backend]
    assert info["cpu_count"] >= 1
    assert info["gpu"] is None or all(isinstance(g, str) for g in info["gpu"])


def test_peak_rss_grows_with_an_allocation():
    # A fresh process, started from this (large) one: its own peak must not
    # include the parent's.
    code = (
        "import numpy as np\n"
        "from keras_lgvq.utils.machine import peak_rss_mb\n"
        "before = peak_rss_mb()\n"
        "block = np.ones(128 * 1024 * 1024)  # 1 GiB, pages touched\n"
        "print(before, peak_rss_mb(), block.sum())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    before, after, _ = map(float, out.stdout.split())
    # MiB, not KiB or bytes: the peak holds the whole block and is not
    # absurdly larger.
    assert after > before and 1024 <= after <= 1024 + before + 512


def test_keras_model_dirs_put_keras_home_first(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    dirs = cache.keras_model_dirs()
    assert dirs[0] == str(tmp_path / "models")
    assert len(dirs) == len(set(dirs)) >= 2


def test_cpu_facts_read_the_model_and_vector_extensions(tmp_path):
    from keras_lgvq.utils.machine import cpu_facts

    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nmodel name\t: Some CPU\n"
        "flags\t\t: fpu sse2 avx avx2 fma avx512f\n\n"
        "processor\t: 1\nmodel name\t: Some CPU\nflags\t\t: fpu\n"
    )
    assert cpu_facts(str(info)) == {
        "cpu_model": "Some CPU",
        "cpu_simd": ["avx", "avx2", "fma", "avx512f"],
    }
    assert cpu_facts(str(tmp_path / "missing")) == {
        "cpu_model": None, "cpu_simd": None,
    }
