"""Where keras_lgvq keeps fetched assets (text priors, LPIPS heads, caches)."""

import os
import tempfile


def cache_dir(*parts):
    """Return (and create) a folder under the keras_lgvq cache.

    The root is `$KERAS_LGVQ_HOME` when set, else `~/.cache/keras_lgvq`.

    Args:
        *parts: strings. Sub-folders below the cache root.

    Examples:

    ```python
    path = keras_lgvq.utils.cache.cache_dir("lpips")
    ```
    """
    root = os.environ.get("KERAS_LGVQ_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache", "keras_lgvq"
    )
    path = os.path.join(root, *parts)
    os.makedirs(path, exist_ok=True)
    return path


def keras_model_dirs():
    """Folders where `keras.applications` caches downloaded weights.

    `$KERAS_HOME/models` when set, `~/.keras/models`, and the temporary
    folder Keras falls back to when the home folder is read-only.

    Examples:

    ```python
    keras_lgvq.utils.cache.keras_model_dirs()
    ```
    """
    dirs = []
    if os.environ.get("KERAS_HOME"):
        dirs.append(os.path.join(os.environ["KERAS_HOME"], "models"))
    dirs.append(os.path.join(os.path.expanduser("~"), ".keras", "models"))
    # The fallback of `keras.utils.get_file` for a read-only home, as Keras
    # picks it.
    fallback = "/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()
    dirs.append(os.path.join(fallback, ".keras", "models"))
    return list(dict.fromkeys(dirs))
