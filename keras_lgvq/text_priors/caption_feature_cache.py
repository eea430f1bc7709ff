"""Text-prior features keyed by caption: each distinct caption encoded once.

`FeatureCache` (TFRecord shards, one record per image) stores every
caption of every image; when many images share few captions (class-style
captions such as "a photo of a cat"), that repeats the same features tens
of thousands of times. `CaptionFeatureCache` keys features by the
caption instead: the captions are normalised the way the input pipeline
normalises them (lower case, runs of white space collapsed, stripped),
hashed (SHA-256 of the UTF-8 bytes), and only captions whose hash is new
are encoded. Every image that repeats a caption shares its row.

`make_dataset(..., feature_cache=CaptionFeatureCache)` looks the sampled
caption up (a `tf.lookup.StaticHashTable` over the same normalised
strings) and adds `token_ids`, `padding_mask`, `token_features` and
`sentence_feature`, like the per-image cache; a caption missing from the
cache fails the iteration naming it. The cache lives in memory (float16
token features) and saves to / loads from a folder of `manifest.json`,
`captions.json` and `features.npz` (no pickle).
"""

import datetime
import hashlib
import json
import os
import shutil

import numpy as np

from keras_lgvq.text_priors.feature_cache import prior_cache_name
from keras_lgvq.utils.validation import check_int

try:
    import tensorflow as tf
except ImportError:  # pragma: no cover
    tf = None

FORMAT = "keras_lgvq.caption_feature_cache"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CAPTIONS = "captions.json"
FEATURES = "features.npz"
ARRAY_KEYS = ("token_ids", "padding_mask", "token_features", "sentence_feature")
_DTYPES = {
    "token_ids": "int32",
    "padding_mask": "bool",
    "token_features": "float16",
    "sentence_feature": "float32",
}
_PRIOR_FIELDS = (
    "sequence_length",
    "hidden_dim",
    "sentence_dim",
    "vocabulary_size",
    "start_token_id",
    "end_token_id",
    "pad_token_id",
    "mask_token_id",
)


def normalize_captions(captions):
    """Captions as the input pipeline samples them (its lookup keys).

    Lower case (UTF-8 aware), runs of white space as one space, stripped:
    the same TensorFlow ops as `keras_lgvq.datasets.make_dataset`'s caption
    sampling, so a key built here is found there.

    Args:
        captions: list of str (or bytes).

    Returns:
        list of str.

    Examples:

    ```python
    normalize_captions(["A  Photo of a CAT "])  # ["a photo of a cat"]
    ```
    """
    if tf is None:  # pragma: no cover
        raise ImportError("The caption feature cache needs TensorFlow.")
    if isinstance(captions, (str, bytes)):
        raise ValueError(
            "`captions` must be a list of str, not one str. Received "
            f"{captions!r:.80}"
        )
    captions = list(captions)
    for index, caption in enumerate(captions):
        if not isinstance(caption, (str, bytes)):
            raise ValueError(
                f"`captions`[{index}] must be a str. Received "
                f"{type(caption).__name__}: {caption!r:.80}"
            )
    if not captions:
        return []
    values = tf.constant(captions, tf.string)
    values = tf.strings.lower(values, encoding="utf-8")
    values = tf.strings.regex_replace(values, r"\s+", " ")
    values = tf.strings.strip(values)
    return [v.decode("utf-8") for v in values.numpy().tolist()]


def caption_key(normalized_caption):
    """SHA-256 hex digest of a normalised caption: its key in the cache.

    Args:
        normalized_caption: str, from `normalize_captions`.

    Examples:

    ```python
    caption_key("a photo of a cat")[:8]
    ```
    """
    return hashlib.sha256(normalized_caption.encode("utf-8")).hexdigest()


def _prior_manifest(prior):
    missing = [
        name
        for name in ("tokenize", "encode_tokens")
        if not callable(getattr(prior, name, None))
    ]
    if missing:
        raise ValueError(
            "`prior` must be a text prior with `tokenize(strings)` and "
            "`encode_tokens(token_ids, padding_mask)` "
            f"(keras_lgvq.text_priors.get(...)); {type(prior).__name__} "
            f"lacks {missing}."
        )
    name = getattr(prior, "name_or_path", None)
    manifest = {
        "prior": prior_cache_name(name) if isinstance(name, str) else None,
        "prior_class": type(prior).__name__,
    }
    for field in _PRIOR_FIELDS:
        value = getattr(prior, field, None)
        manifest[field] = None if value is None else int(value)
    return manifest


class CaptionFeatureCache:
    """Frozen text features of each distinct caption, encoded once.

    Keys are SHA-256 hashes of the normalised captions (see the module
    docstring); `add` encodes only captions whose key is new, in batches,
    so `encoded_rows` (rows sent to the text encoder) equals the number of
    distinct captions however often they repeat.

    Args:
        prior: a `keras_lgvq.text_priors.TextPrior` (anything with
            `tokenize` and `encode_tokens`), or None for a loaded cache that
            is only read (then `add` of a new caption raises).
        batch_size: int. Captions per encoder forward pass.

    Examples:

    ```python
    prior = keras_lgvq.text_priors.get("minilm")
    cache = CaptionFeatureCache(prior)
    cache.add(["a photo of a cat", "a photo of a dog", "a photo of a cat"])
    len(cache)  # 2
    ds = keras_lgvq.datasets.make_dataset(
        keras_lgvq.datasets.from_folder("photos/train"), batch_size=16,
        image_size=64, feature_cache=cache)
    cache.save("caches/photos-minilm")
    ```
    """

    # The input pipeline looks rows up by the sampled caption.
    keyed_by_caption = True

    def __init__(self, prior=None, batch_size=256):
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.prior = prior
        self._manifest = _prior_manifest(prior) if prior is not None else {}
        self._rows = {}  # caption key -> row
        self._captions = []
        self._arrays = {key: [] for key in ARRAY_KEYS}
        self._stacked = None
        self._table = None
        self.encoded_rows = 0
        self.encoder_calls = 0

    # --- contents ----------------------------------------------------------
    def __len__(self):
        return len(self._captions)

    def __contains__(self, caption):
        if not isinstance(caption, (str, bytes)):
            return False
        return caption_key(normalize_captions([caption])[0]) in self._rows

    @property
    def captions(self):
        """The distinct normalised captions, in row order."""
        return list(self._captions)

    @property
    def manifest(self):
        """Prior fields (`sequence_length`, `vocabulary_size`, ...)."""
        return dict(self._manifest, num_captions=len(self))

    @property
    def sequence_length(self):
        return self._manifest.get("sequence_length")

    def arrays(self):
        """`{key: array}` of all rows (row `i` is `captions[i]`)."""
        if self._stacked is None:
            self._stacked = {
                key: (
                    np.concatenate(parts).astype(_DTYPES[key])
                    if parts
                    else np.zeros((0,), _DTYPES[key])
                )
                for key, parts in self._arrays.items()
            }
            self._arrays = {
                key: [value] if len(value) else []
                for key, value in self._stacked.items()
            }
        return self._stacked

    def add(self, captions):
        """Encode the captions whose key is new; return how many were new.

        Args:
            captions: list of str. Repeats (after normalisation) and
                captions already in the cache are not encoded again.

        Returns:
            int. Distinct captions added.

        Examples:

        ```python
        cache.add(["a cat", "A  cat"])  # 1: both normalise to "a cat"
        ```
        """
        normalized = normalize_captions(captions)
        new, seen = [], set()
        for caption in normalized:
            key = caption_key(caption)
            if key not in self._rows and key not in seen:
                seen.add(key)
                new.append(caption)
        if not new:
            return 0
        if self.prior is None:
            raise ValueError(
                f"{len(new)} caption(s) are not in the cache (e.g. "
                f"{new[0]!r}) and it has no `prior` to encode them: "
                "construct it with `CaptionFeatureCache(prior)` or "
                "`CaptionFeatureCache.load(path, prior=prior)`."
            )
        for start in range(0, len(new), self.batch_size):
            chunk = new[start : start + self.batch_size]
            token_ids, padding_mask = self.prior.tokenize(chunk)
            out = self.prior.encode_tokens(
                np.asarray(token_ids), np.asarray(padding_mask),
                batch_size=self.batch_size,
            )
            self.encoder_calls += 1
            self.encoded_rows += len(chunk)
            for key in ARRAY_KEYS:
                self._arrays[key].append(
                    np.asarray(out[key]).astype(_DTYPES[key])
                )
            for caption in chunk:
                self._rows[caption_key(caption)] = len(self._captions)
                self._captions.append(caption)
        self._stacked = None
        self._table = None
        return len(new)

    def rows_of(self, captions, add_missing=True):
        """Row index of each caption (int64 array), encoding new ones.

        Args:
            captions: list of str.
            add_missing: bool. Encode captions not yet in the cache; when
                False a missing caption raises a ValueError naming it.
        """
        if add_missing:
            self.add(captions)
        rows = []
        for caption in normalize_captions(captions):
            row = self._rows.get(caption_key(caption))
            if row is None:
                raise ValueError(
                    f"Caption {caption!r} is not in the cache; `add` it "
                    "first."
                )
            rows.append(row)
        return np.asarray(rows, np.int64)

    def features(self, captions, add_missing=True):
        """Features of each caption, in order, as numpy arrays.

        Args:
            captions: list of str (repeats allowed).
            add_missing: bool. See `rows_of`.

        Returns:
            dict of `token_ids` (N, L) int32, `padding_mask` (N, L) bool,
            `token_features` (N, L, D) float16, `sentence_feature` (N, E)
            float32.
        """
        rows = self.rows_of(captions, add_missing=add_missing)
        arrays = self.arrays()
        return {key: arrays[key][rows] for key in ARRAY_KEYS}

    @classmethod
    def from_examples(cls, prior, examples, batch_size=256):
        """A cache of every caption of a split, each distinct one once.

        Args:
            prior: text prior (see the class).
            examples: `tf.data.Dataset` of dicts with `captions` (what
                `from_folder`, `from_table`, `from_arrays` and `from_tfds`
                return, before `make_dataset`) or an iterable of caption
                lists.
            batch_size: int. Captions per encoder forward pass.

        Examples:

        ```python
        cache = CaptionFeatureCache.from_examples(prior, from_folder("photos"))
        ```
        """
        cache = cls(prior, batch_size=batch_size)
        if tf is not None and isinstance(examples, tf.data.Dataset):
            spec = examples.element_spec
            if not isinstance(spec, dict) or "captions" not in spec:
                raise ValueError(
                    "`examples` must yield dicts with 'captions'. Received "
                    f"element_spec {spec!r}."
                )
            examples = (
                e["captions"]
                for e in examples.map(lambda e: {"captions": e["captions"]})
                .as_numpy_iterator()
            )
        pending = []
        for index, captions in enumerate(examples):
            values = np.asarray(captions).reshape(-1).tolist()
            for caption in values:
                if not isinstance(caption, (str, bytes)):
                    raise ValueError(
                        f"`examples`[{index}] holds a caption that is not a "
                        f"str: {type(caption).__name__}."
                    )
            pending.extend(values)
            # Bound memory: fold repeats in as we go.
            if len(pending) >= 16 * batch_size:
                cache.add(pending)
                pending = []
        cache.add(pending)
        if not len(cache):
            raise ValueError("`examples` holds no caption.")
        return cache

    # --- input pipeline ------------------------------------------------------
    def tf_lookup(self):
        """The lookup the input pipeline uses, built eagerly.

        Returns:
            `(table, arrays)`: a `tf.lookup.StaticHashTable` from normalised
            caption (`sample_caption`'s output) to row (int64, `-1` when
            absent) and a dict of the cache's arrays as constant tensors
            (gather the row from them).

        Examples:

        ```python
        table, arrays = cache.tf_lookup()
        row = table.lookup(tf.constant("a photo of a cat"))
        ```
        """
        if not len(self):
            raise ValueError(
                "The caption feature cache is empty; `add` captions first."
            )
        if self._table is None:
            arrays = self.arrays()
            keys = tf.constant(self._captions, tf.string)
            values = tf.range(len(self._captions), dtype=tf.int64)
            table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(keys, values),
                default_value=tf.constant(-1, tf.int64),
            )
            constants = {
                key: tf.constant(arrays[key]) for key in ARRAY_KEYS
            }
            self._table = (table, constants)
        return self._table

    # --- saving --------------------------------------------------------------
    def save(self, path, overwrite=False):
        """Write `manifest.json`, `captions.json` and `features.npz`.

        Args:
            path: str. Folder to create.
            overwrite: bool. Replace an existing cache there.
        """
        if os.path.exists(os.path.join(path, MANIFEST)) and not overwrite:
            raise FileExistsError(
                f"A caption feature cache already exists in {path}; pass "
                "overwrite=True to replace it."
            )
        staging = os.path.abspath(path) + ".partial"
        if os.path.exists(staging):
            shutil.rmtree(staging)
        os.makedirs(staging)
        np.savez(os.path.join(staging, FEATURES), **self.arrays())
        with open(os.path.join(staging, CAPTIONS), "w") as f:
            json.dump(self._captions, f, ensure_ascii=False)
        manifest = dict(
            self.manifest,
            format=FORMAT,
            format_version=FORMAT_VERSION,
            key="sha256 of the normalised caption (lower, spaces, strip)",
            dtypes=_DTYPES,
            created=datetime.datetime.now(datetime.timezone.utc).isoformat(),
        )
        with open(os.path.join(staging, MANIFEST), "w") as f:
            json.dump(manifest, f, indent=2)
        if os.path.exists(path):
            shutil.rmtree(path)
        os.replace(staging, path)

    @classmethod
    def load(cls, path, prior=None, batch_size=256):
        """Read a saved cache; with `prior`, check it matches and allow `add`.

        Args:
            path: str. Folder written by `save`.
            prior: text prior or None.
            batch_size: int. For later `add` calls.
        """
        manifest_path = os.path.join(path, MANIFEST)
        if not os.path.isfile(manifest_path):
            raise FileNotFoundError(
                f"No caption feature cache in {path} (missing {MANIFEST})."
            )
        with open(manifest_path) as f:
            manifest = json.load(f)
        if manifest.get("format") != FORMAT or (
            manifest.get("format_version") != FORMAT_VERSION
        ):
            raise ValueError(
                f"{manifest_path} is not a keras_lgvq caption feature cache "
                f"of format_version {FORMAT_VERSION}."
            )
        cache = cls(prior, batch_size=batch_size)
        if prior is not None:
            mismatches = [
                f"{k}: cache {manifest.get(k)!r}, prior {v!r}"
                for k, v in cache._manifest.items()
                if k in _PRIOR_FIELDS + ("prior",) and manifest.get(k) != v
            ]
            if mismatches:
                raise ValueError(
                    f"The caption feature cache in {path} was built with "
                    "another prior (" + "; ".join(mismatches) + "). "
                    "Rebuild it for this prior."
                )
        cache._manifest = {
            k: manifest.get(k)
            for k in ("prior", "prior_class") + _PRIOR_FIELDS
        }
        with open(os.path.join(path, CAPTIONS)) as f:
            captions = json.load(f)
        with np.load(os.path.join(path, FEATURES), allow_pickle=False) as data:
            arrays = {key: data[key] for key in ARRAY_KEYS}
        if any(len(a) != len(captions) for a in arrays.values()):
            raise ValueError(
                f"{path}: features and captions.json disagree in length."
            )
        cache._captions = list(captions)
        cache._rows = {caption_key(c): i for i, c in enumerate(captions)}
        cache._arrays = {k: [v] for k, v in arrays.items()}
        return cache
