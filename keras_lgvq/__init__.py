"""keras-lgvq: language-guided vector-quantized image tokenizers for Keras 3.

```python
import keras_lgvq

model = keras_lgvq.LGVQ.from_preset("scenes")
model.compile(learning_rate=1e-3)
ds = keras_lgvq.datasets.make_dataset(
    "scenes", split="train", batch_size=16, text_prior=model.text_prior)
model.fit(ds, epochs=1)
```

Sub-packages load on first use, so `import keras_lgvq` is cheap and the
procedural scenes generator (`keras_lgvq.datasets.scenes`) runs with numpy
alone, e.g. in data-generation worker processes.
"""

import importlib

from keras_lgvq.version import __version__

_SUBPACKAGES = (
    "backend",
    "callbacks",
    "datasets",
    "evaluation",
    "layers",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "text_priors",
    "visualization",
)
_MODELS = (
    "LGVQ",
    "LQAE",
    "LQAEBackbone",
    "VQCT",
    "VQCTBackbone",
    "VQCTLG",
    "VQGAN",
    "VQGANBackbone",
)

__all__ = list(_SUBPACKAGES) + list(_MODELS) + ["__version__"]


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"keras_lgvq.{name}")
    if name in _MODELS:
        return getattr(importlib.import_module("keras_lgvq.models"), name)
    raise AttributeError(f"module 'keras_lgvq' has no attribute {name!r}")


def __dir__():
    return __all__
