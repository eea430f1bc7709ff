"""The `TextPrior` interface: a frozen pretrained text encoder as a layer."""

import numpy as np

import keras
from keras import ops

try:
    import tensorflow as tf
except ImportError:  # pragma: no cover - keras-hub needs TensorFlow anyway.
    tf = None


class _Untracked:
    """Holds objects Keras must not track (see `TextPrior` on saving)."""

    def __init__(self, **values):
        self.__dict__.update(values)


def _check_tf():
    if tf is None:
        raise ImportError(
            "Text priors tokenize with TensorFlow ops (keras-hub tokenizers); "
            "install `tensorflow` and `tensorflow-text`."
        )


@keras.saving.register_keras_serializable(package="keras_lgvq")
class TextPrior(keras.layers.Layer):
    """Base class of the frozen pretrained text encoders (text priors).

    A text prior turns captions into per-token features and a sentence
    feature. It is a Keras layer with **no trainable weights**: its
    pretrained weights are non-trainable variables that are loaded from
    `name_or_path` at construction time.

    Two halves:

    - `tokenize(strings)` runs TensorFlow ops built from keras-hub
      tokenizers, so it works eagerly and inside `tf.data.Dataset.map` on
      every Keras backend. It returns `(token_ids, padding_mask)` of shape
      `inputs.shape + (sequence_length,)`, with the start token at position
      0 and the end token at the last valid position (longer captions are
      truncated keeping the end token last).
    - `prior(token_ids, padding_mask)` (or `prior({"token_ids": ...,
      "padding_mask": ...})`) runs the encoder with `keras.ops` and returns a
      dict with `"token_features"` (..., L, hidden_dim) float32,
      `"sentence_feature"` (..., sentence_dim) float32 and
      `"padding_mask"` (..., L) bool. Features at padded positions are
      whatever the encoder computes there; consumers must apply the mask.
      Ids longer than `sequence_length` raise a ValueError (they are not
      truncated: only `tokenize` truncates, keeping the end token); a
      length that is dynamic in a traced function is checked at run time.

    Saving: `get_config` holds only `name_or_path` and `sequence_length`,
    and `save_own_variables`/`load_own_variables` are no-ops. The pretrained
    weights are tens of megabytes (MiniLM) to hundreds (CLIP), are frozen,
    and are re-read from `name_or_path` whenever the layer is re-created, so
    copying them into every `.keras` file or checkpoint would only bloat it
    (and could silently pair a checkpoint with different weights). The
    keras-hub sub-models and tokenizers are therefore held outside Keras's
    object tracking; their variables are tracked as this layer's own
    non-trainable variables, so they still reach `jax.jit`/`tf.function`
    traces through the normal stateless-call machinery.

    Args:
        name_or_path: str. What the weights are loaded from (a registered
            name, a local directory, or a keras-hub preset name).
        sequence_length: int. Fixed token length L, counting the start and
            end tokens. Defaults to 30 (LG-VQ).
        **kwargs: Standard `keras.layers.Layer` arguments (`name`, `dtype`,
            ...). The dtype defaults to `"float32"`; the encoder always runs
            in float32 because the official features are fp32.

    Examples:

    ```python
    prior = keras_lgvq.text_priors.get("minilm")
    token_ids, padding_mask = prior.tokenize(["a small red bird"])
    out = prior(token_ids, padding_mask)
    out["token_features"].shape  # (1, 30, 384)
    ```
    """

    def __init__(self, name_or_path, sequence_length=30, **kwargs):
        if kwargs.get("dtype") is None:
            kwargs["dtype"] = "float32"
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        if not isinstance(name_or_path, str) or not name_or_path:
            raise ValueError(
                "`name_or_path` must be a non-empty string. "
                f"Received: name_or_path={name_or_path!r}"
            )
        if (
            isinstance(sequence_length, bool)
            or not isinstance(sequence_length, (int, np.integer))
            or sequence_length < 2
        ):
            raise ValueError(
                "`sequence_length` must be an int >= 2 (it counts the start "
                "and end tokens). Received: "
                f"sequence_length={sequence_length!r}"
            )
        self.name_or_path = name_or_path
        self.sequence_length = int(sequence_length)
        # Filled in by subclasses through `_set_frozen_modules`.
        self._frozen = _Untracked()

    # === Subclass hooks ===

    def _set_frozen_modules(self, weights, **modules):
        """Store keras-hub objects untracked and track their weights here."""
        for layer in modules.values():
            if isinstance(layer, keras.layers.Layer):
                layer.trainable = False
        # The traced tokenizer graph and predict models live here too, so
        # TF's object tracking (SavedModel export) never sees them.
        self._frozen = _Untracked(
            tokenize_fn=None, predict_models={}, **modules
        )
        # A list attribute of variables makes them this layer's own
        # (non-trainable) variables: visible to `model.variables`, hence to
        # stateless JAX calls, but saved only through `save_own_variables`.
        self._frozen_weights = list(weights)
        for variable in self._frozen_weights:
            variable.trainable = False
        self.built = True

    def _check_sequence_length(self, max_sequence_length):
        if self.sequence_length > max_sequence_length:
            raise ValueError(
                f"`sequence_length` must be <= {max_sequence_length}, the "
                f"number of position embeddings of {self.name_or_path!r}. "
                f"Received: sequence_length={self.sequence_length}"
            )

    def _token_ids_and_mask(self, strings):
        """Graph code: flat tf.string (N,) -> (int32 (N, L), bool (N, L))."""
        raise NotImplementedError

    def _encode(self, token_ids, padding_mask):
        """Backend code: (B, L) ids and mask -> (token, sentence) features."""
        raise NotImplementedError

    # === Properties ===

    @property
    def token_embeddings(self):
        """The (vocabulary_size, hidden_dim) input token-embedding matrix."""
        return ops.convert_to_tensor(self._frozen.token_embedding_variable)

    # === Tokenization ===

    def _get_tokenize_fn(self):
        if self._frozen.tokenize_fn is None:
            _check_tf()

            # One traced graph for every batch size; reused eagerly and
            # callable from inside other graphs (tf.data, tf.function).
            @tf.function(
                input_signature=[tf.TensorSpec([None], tf.string)],
                autograph=False,
            )
            def tokenize_flat(strings):
                # Invalid UTF-8 would make the normalisers fail inside the
                # graph; replace bad bytes with U+FFFD instead.
                strings = tf.strings.unicode_transcode(
                    strings,
                    "UTF-8",
                    "UTF-8",
                    errors="replace",
                    replacement_char=0xFFFD,
                )
                token_ids, padding_mask = self._token_ids_and_mask(strings)
                length = self.sequence_length
                token_ids = tf.ensure_shape(
                    tf.cast(token_ids, tf.int32), [None, length]
                )
                padding_mask = tf.ensure_shape(
                    tf.cast(padding_mask, tf.bool), [None, length]
                )
                return token_ids, padding_mask

            self._frozen.tokenize_fn = tokenize_flat
        return self._frozen.tokenize_fn

    def _validate_python_strings(self, strings):
        def check(value, index):
            if isinstance(value, bytes):
                try:
                    return value.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise ValueError(
                        f"`strings`{index} is bytes that are not valid UTF-8 "
                        f"({e}). Decode it first."
                    ) from None
            if not isinstance(value, str):
                raise ValueError(
                    f"`strings`{index} must be a str. Received "
                    f"{type(value).__name__}: {value!r:.80}"
                )
            return value

        if isinstance(strings, (str, bytes)):
            return check(strings, ""), ()
        if isinstance(strings, np.ndarray):
            if strings.dtype.kind not in "USO":
                raise ValueError(
                    "`strings` must hold strings. Received a numpy array of "
                    f"dtype {strings.dtype}."
                )
            shape = strings.shape
            flat = [
                check(v, f"[{i}]") for i, v in enumerate(strings.reshape(-1))
            ]
            return flat, shape
        if isinstance(strings, (list, tuple)):

            def walk(value, index):
                if not isinstance(value, (list, tuple)):
                    return (), [check(value, index)]
                inner, flat = None, []
                for i, item in enumerate(value):
                    shape, items = walk(item, f"{index}[{i}]")
                    if inner is not None and shape != inner:
                        raise ValueError(
                            "`strings` must be rectangular: "
                            f"`strings`{index}[{i}] has shape {shape}, its "
                            f"siblings {inner}."
                        )
                    inner = shape
                    flat.extend(items)
                return (len(value),) + (inner or ()), flat

            shape, flat = walk(strings, "")
            return flat, shape
        raise ValueError(
            "`strings` must be a str, a list of str, a numpy string array or "
            f"a tf.string tensor. Received {type(strings).__name__}."
        )

    def tokenize(self, strings):
        """Tokenize captions to fixed-length ids and a padding mask.

        Works eagerly (python strings, numpy or tf.string tensors) and
        inside `tf.data.Dataset.map` / `tf.function` (tf.string tensors of
        any rank, e.g. a scalar caption or a (C,) vector of captions).
        Empty strings give `[start, end, pad, ...]`; invalid UTF-8 bytes
        inside a graph are replaced by U+FFFD; python inputs that are not
        strings raise `ValueError`.

        Args:
            strings: str, nested list of str, numpy string array or
                tf.string tensor.

        Returns:
            `(token_ids, padding_mask)`: int32 and bool tensors of shape
            `shape(strings) + (sequence_length,)`. Backend tensors when run
            eagerly, `tf.Tensor`s inside a TF graph.
        """
        _check_tf()
        fn = self._get_tokenize_fn()
        if isinstance(strings, tf.RaggedTensor):
            raise ValueError(
                "`strings` must be a dense tf.string tensor, not ragged."
            )
        if isinstance(strings, tf.Tensor):
            if strings.dtype != tf.string:
                raise ValueError(
                    "`strings` must be a tf.string tensor. Received dtype "
                    f"{strings.dtype.name}."
                )
            shape = tf.shape(strings)
            token_ids, mask = fn(tf.reshape(strings, [-1]))
            out_shape = tf.concat([shape, [self.sequence_length]], axis=0)
            token_ids = tf.reshape(token_ids, out_shape)
            mask = tf.reshape(mask, out_shape)
            static = strings.shape.concatenate([self.sequence_length])
            token_ids.set_shape(static)
            mask.set_shape(static)
            if not tf.executing_eagerly():
                return token_ids, mask
            return (
                ops.convert_to_tensor(token_ids.numpy()),
                ops.convert_to_tensor(mask.numpy()),
            )
        if not tf.executing_eagerly():
            raise ValueError(
                "Inside a TF graph `strings` must be a tf.string tensor. "
                f"Received {type(strings).__name__}."
            )
        flat, shape = self._validate_python_strings(strings)
        if isinstance(flat, str):
            flat = [flat]
        token_ids, mask = fn(
            tf.constant(flat, dtype=tf.string, shape=[len(flat)])
        )
        out_shape = tuple(shape) + (self.sequence_length,)
        return (
            ops.convert_to_tensor(token_ids.numpy().reshape(out_shape)),
            ops.convert_to_tensor(mask.numpy().reshape(out_shape)),
        )

    # === Encoding ===

    def _mask_from_ids(self, token_ids):
        # Valid up to and including the first end token.
        is_end = ops.cast(ops.equal(token_ids, self.end_token_id), "int32")
        ends_before = ops.cumsum(is_end, axis=-1) - is_end
        return ops.equal(ends_before, 0)

    def call(self, token_ids, padding_mask=None):
        if isinstance(token_ids, dict):
            if padding_mask is not None:
                raise ValueError(
                    "Pass `padding_mask` inside the dict or as an argument, "
                    "not both."
                )
            inputs = token_ids
            if "token_ids" not in inputs:
                raise ValueError(
                    "A dict input needs a 'token_ids' key (and optionally "
                    f"'padding_mask'). Received keys: {sorted(inputs)}"
                )
            token_ids = inputs["token_ids"]
            padding_mask = inputs.get("padding_mask")
        token_ids = ops.cast(token_ids, "int32")
        if padding_mask is None:
            padding_mask = self._mask_from_ids(token_ids)
        padding_mask = ops.cast(padding_mask, "bool")
        shape = ops.shape(token_ids)
        if len(shape) < 2:
            raise ValueError(
                "`token_ids` must have shape (..., sequence_length). "
                f"Received shape {shape}."
            )
        length = shape[-1]
        self._check_length(token_ids)
        flat_ids = ops.reshape(token_ids, (-1, length))
        flat_mask = ops.reshape(padding_mask, (-1, length))
        token_features, sentence_feature = self._encode(flat_ids, flat_mask)
        lead = tuple(shape[:-1])
        return {
            "token_features": ops.reshape(
                ops.cast(token_features, "float32"),
                lead + (length, self.hidden_dim),
            ),
            "sentence_feature": ops.reshape(
                ops.cast(sentence_feature, "float32"),
                lead + (self.sentence_dim,),
            ),
            "padding_mask": padding_mask,
        }

    def _check_length(self, token_ids):
        # Longer rows would read position embeddings past the length the
        # prior (and every model built on it) was set up for; `tokenize`
        # never makes them, so they are a caller's mistake.
        length = token_ids.shape[-1]
        message = (
            f"`token_ids` has {{}} tokens per caption, more than this "
            f"prior's sequence_length={self.sequence_length}. Tokenize with "
            "`prior.tokenize` (it truncates to sequence_length, keeping the "
            "end token), or build the prior with a longer sequence_length."
        )
        if length is not None:
            if length > self.sequence_length:
                raise ValueError(message.format(length))
            return
        # A trace with a relaxed (dynamic) length: check at run time.
        from keras_lgvq import backend as lgvq_backend
        from keras_lgvq.utils.validation import TEXT_CHECK_PREFIX

        lgvq_backend.runtime_assert(
            ops.shape(token_ids)[-1] <= self.sequence_length,
            TEXT_CHECK_PREFIX + message.format("(at run time)"),
        )

    def compute_output_spec(self, token_ids, padding_mask=None):
        if isinstance(token_ids, dict):
            token_ids = token_ids["token_ids"]
        shape = tuple(token_ids.shape)
        return {
            "token_features": keras.KerasTensor(
                shape + (self.hidden_dim,), dtype="float32"
            ),
            "sentence_feature": keras.KerasTensor(
                shape[:-1] + (self.sentence_dim,), dtype="float32"
            ),
            "padding_mask": keras.KerasTensor(shape, dtype="bool"),
        }

    def build(self, *args, **kwargs):
        # Built at construction: the weights come from `name_or_path`.
        self.built = True

    def encode(self, strings, batch_size=64):
        """Tokenize and encode python captions; return numpy arrays.

        Runs the prior through a compiled predict function in fixed-size
        batches (the last one padded), which is much faster than eager
        calls. Used by the feature cache and the benchmark.

        Args:
            strings: list of str. Captions.
            batch_size: int. Captions per forward pass.

        Returns:
            dict of numpy arrays `token_ids` (N, L) int32, `padding_mask`
            (N, L) bool, `token_features` (N, L, D) float32 and
            `sentence_feature` (N, E) float32.
        """
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(
                f"`batch_size` must be a positive int. Received: {batch_size!r}"
            )
        flat, _ = self._validate_python_strings(list(strings))
        if not flat:
            length = self.sequence_length
            return {
                "token_ids": np.zeros((0, length), "int32"),
                "padding_mask": np.zeros((0, length), bool),
                "token_features": np.zeros(
                    (0, length, self.hidden_dim), "float32"
                ),
                "sentence_feature": np.zeros(
                    (0, self.sentence_dim), "float32"
                ),
            }
        token_ids, mask = self.tokenize(flat)
        return self.encode_tokens(token_ids, mask, batch_size=batch_size)

    def encode_tokens(self, token_ids, padding_mask, batch_size=64):
        """Encode already tokenized (N, L) ids in compiled fixed-size batches.

        Args:
            token_ids: int array (N, L).
            padding_mask: bool array (N, L).
            batch_size: int. Rows per forward pass.

        Returns:
            dict of numpy arrays as in `encode`.
        """
        token_ids = np.asarray(ops.convert_to_numpy(token_ids), "int32")
        mask = np.asarray(ops.convert_to_numpy(padding_mask), bool)
        if token_ids.ndim != 2 or token_ids.shape != mask.shape:
            raise ValueError(
                "`token_ids` and `padding_mask` must both be (N, L). "
                f"Received {token_ids.shape} and {mask.shape}."
            )
        model = self._predict_model(token_ids.shape[1])
        count = token_ids.shape[0]
        pieces = {"token_features": [], "sentence_feature": []}
        for start in range(0, count, batch_size):
            ids = token_ids[start : start + batch_size]
            m = mask[start : start + batch_size]
            rows = ids.shape[0]
            if rows < batch_size:
                # Fixed shapes: no retrace / recompile for the last batch.
                pad = batch_size - rows
                ids = np.concatenate([ids, np.repeat(ids[-1:], pad, 0)])
                m = np.concatenate([m, np.repeat(m[-1:], pad, 0)])
            out = model.predict_on_batch([ids, m])
            for key in pieces:
                pieces[key].append(np.asarray(out[key][:rows], "float32"))
        return {
            "token_ids": token_ids,
            "padding_mask": mask,
            "token_features": np.concatenate(pieces["token_features"]),
            "sentence_feature": np.concatenate(pieces["sentence_feature"]),
        }

    def _predict_model(self, length):
        models = self._frozen.predict_models
        if length not in models:
            ids = keras.Input((length,), dtype="int32", name="token_ids")
            mask = keras.Input((length,), dtype="bool", name="padding_mask")
            out = self(ids, mask)
            models[length] = keras.Model(
                [ids, mask],
                {
                    "token_features": out["token_features"],
                    "sentence_feature": out["sentence_feature"],
                },
            )
        return models[length]

    # === Serialization ===

    def save_own_variables(self, store):
        # Frozen pretrained weights are re-read from `name_or_path`.
        pass

    def load_own_variables(self, store):
        # See `save_own_variables`: nothing of ours is in the store.
        pass

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "name_or_path": self.name_or_path,
                "sequence_length": self.sequence_length,
            }
        )
        return config
