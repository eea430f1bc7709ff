"""Where keras_lgvq keeps fetched assets (text priors, LPIPS heads, caches)."""

import os


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
