"""keras-lgvq: language-guided vector-quantized image tokenizers for Keras 3."""

import os

from setuptools import find_packages
from setuptools import setup

here = os.path.abspath(os.path.dirname(__file__))
version = {}
with open(os.path.join(here, "keras_lgvq", "version.py")) as f:
    exec(f.read(), version)

setup(
    name="keras-lgvq",
    version=version["__version__"],
    description=(
        "Language-guided vector-quantized image tokenizers (LG-VQ, VQGAN, "
        "CVQ) for Keras 3 on TensorFlow, JAX and PyTorch."
    ),
    long_description=open(os.path.join(here, "README.md")).read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["keras_lgvq", "keras_lgvq.*"]),
    package_data={"keras_lgvq": ["presets/*.json"]},
    python_requires=">=3.10",
    license="Apache-2.0",
    install_requires=[
        "keras>=3.15",
        "keras-hub>=0.32",
        "tensorflow>=2.20",
        # 2.21.0 broke keras-hub's tokenizers (keras-hub PR #2979 / #3058).
        "tensorflow-text>=2.20.1,!=2.21.0",
        "tensorflow-datasets>=4.9",
        "numpy",
        "safetensors",
        # tensorflow-datasets imports it but only declares it for old Pythons.
        "importlib_resources",
    ],
    extras_require={
        "jax": ["jax>=0.4.30"],
        # CPU wheels: install torch yourself first if you want a GPU build.
        "torch": ["torch>=2.1"],
        "tests": ["pytest>=8", "scipy", "pillow"],
    },
    entry_points={
        "console_scripts": ["keras-lgvq=keras_lgvq.__main__:main"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
