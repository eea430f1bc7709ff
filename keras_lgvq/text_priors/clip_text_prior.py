"""CLIP's text tower (keras-hub `CLIPTextEncoder`) as an LG-VQ text prior."""

import json
import os

import numpy as np

import keras
from keras import ops

from keras_lgvq.text_priors.text_prior import TextPrior
from keras_lgvq.utils.cache import cache_dir

try:
    import tensorflow as tf
except ImportError:  # pragma: no cover
    tf = None

# OpenAI CLIP (and Hugging Face) use 1e-5 in every LayerNorm; keras-hub's
# CLIPTextEncoder hard-codes 1e-6 for the final one. LG-VQ's features come
# from the OpenAI model, so the final LayerNorm is set back to 1e-5.
OPENAI_LAYER_NORM_EPSILON = 1e-5
# Literal special-token strings inside a caption would otherwise become real
# start/end tokens in the middle of the sequence.
_SPECIAL_STRINGS = r"<\|startoftext\|>|<\|endoftext\|>"
# Python's `\s` (used by CLIP's whitespace_clean) is Unicode-aware; RE2's is
# ASCII only, so spell out the Unicode separators.
_WHITESPACE = r"[\s\p{Z}\x{85}\x{1c}-\x{1f}]+"
# Short names for LG-VQ's CLIP ViT-B/32: a local copy in the keras_lgvq
# cache wins, else keras-hub's Kaggle preset (network).
CLIP_NAMES = ("clip", "clip-vit-b-32", "clip_vit_b32")
CLIP_PRESET = "clip_vit_base_patch32"
# Characters kept per token slot before BPE: bounds the cost of huge inputs
# and cannot change the kept tokens (no CLIP BPE piece is that long).
_CHARS_PER_TOKEN = 100


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _read_merges(path):
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    return [m for m in lines if m.strip() and not m.lstrip().startswith("#")]


def _clip_tokenizer_files(directory):
    """Return (vocab.json, merges.txt) of a keras or Hugging Face CLIP dir."""
    for vocab, merges in (
        ("assets/tokenizer/vocabulary.json", "assets/tokenizer/merges.txt"),
        ("vocab.json", "merges.txt"),
    ):
        vocab = os.path.join(directory, vocab)
        merges = os.path.join(directory, merges)
        if os.path.isfile(vocab) and os.path.isfile(merges):
            return vocab, merges
    raise FileNotFoundError(
        f"No CLIP tokenizer in {directory}: expected `vocab.json` + "
        "`merges.txt` (Hugging Face) or `assets/tokenizer/vocabulary.json` + "
        "`assets/tokenizer/merges.txt` (keras-hub preset)."
    )


def is_hf_clip_dir(directory):
    """Whether `directory` holds a Hugging Face CLIP (text) checkpoint."""
    path = os.path.join(directory, "config.json")
    if not os.path.isfile(path):
        return False
    config = _read_json(path)
    return config.get("model_type") in ("clip", "clip_text_model")


def is_keras_clip_dir(directory):
    """Whether `directory` is a keras-hub CLIP preset."""
    path = os.path.join(directory, "config.json")
    if not os.path.isfile(path):
        return False
    name = str(_read_json(path).get("registered_name", ""))
    return name.split(">")[-1] in ("CLIPBackbone", "CLIPTextEncoder")


def _read_safetensors(directory, prefix_filter):
    """Read the tensors whose names pass `prefix_filter` as numpy arrays."""
    from safetensors import safe_open

    index = os.path.join(directory, "model.safetensors.index.json")
    if os.path.isfile(index):
        files = sorted(set(_read_json(index)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors = {}
    for name in files:
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Missing weights file {path}.")
        with safe_open(path, framework="np") as f:
            for key in f.keys():
                if prefix_filter(key):
                    tensors[key] = f.get_tensor(key)
    return tensors


def load_hf_clip_text(directory, dtype="float32"):
    """Build a keras-hub CLIP text tower from a Hugging Face CLIP checkpoint.

    Maps `text_model.*` and `text_projection.weight` of a `CLIPModel` or
    `CLIPTextModelWithProjection` `model.safetensors` (optionally sharded)
    onto `keras_hub.models.CLIPTextEncoder` plus a bias-free projection
    `keras.layers.Dense`. Only text tensors are read.

    Args:
        directory: str. Folder with `config.json` (`model_type` "clip" or
            "clip_text_model") and `model.safetensors`.
        dtype: str. Variable and compute dtype.

    Returns:
        `(text_encoder, text_projection, layer_norm_epsilon)`.

    Examples:

    ```python
    encoder, projection, eps = load_hf_clip_text("/models/clip-vit-b-32")
    ```
    """
    import keras_hub

    config = _read_json(os.path.join(directory, "config.json"))
    text_config = dict(config.get("text_config") or config)
    if "projection_dim" not in text_config and "projection_dim" in config:
        text_config["projection_dim"] = config["projection_dim"]
    required = (
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "max_position_embeddings",
    )
    missing = [k for k in required if k not in text_config]
    if missing:
        raise ValueError(
            f"{directory}/config.json lacks text config keys {missing}."
        )
    hidden = int(text_config["hidden_size"])
    heads = int(text_config["num_attention_heads"])
    head_dim = hidden // heads
    layers = int(text_config["num_hidden_layers"])
    activation = text_config.get("hidden_act", "quick_gelu")
    if activation not in ("quick_gelu", "gelu", "relu"):
        raise ValueError(
            f"Unsupported CLIP `hidden_act` {activation!r} in {directory}."
        )
    tensors = _read_safetensors(
        directory,
        lambda k: k.startswith("text_model.") or k == "text_projection.weight",
    )
    if "text_projection.weight" not in tensors:
        raise ValueError(
            f"{directory} has no `text_projection.weight`; the sentence "
            "feature needs CLIP's text projection (save a CLIPModel or "
            "CLIPTextModelWithProjection)."
        )

    def get(key):
        key = "text_model." + key
        if key not in tensors:
            raise ValueError(f"Missing tensor {key!r} in {directory}.")
        return np.asarray(tensors[key], dtype="float32")

    encoder = keras_hub.models.CLIPTextEncoder(
        vocabulary_size=int(text_config["vocab_size"]),
        embedding_dim=hidden,
        hidden_dim=hidden,
        num_layers=layers,
        num_heads=heads,
        intermediate_dim=int(text_config["intermediate_size"]),
        intermediate_activation=activation,
        max_sequence_length=int(text_config["max_position_embeddings"]),
        dtype=dtype,
    )
    emb = encoder.embedding
    emb.token_embedding.embeddings.assign(
        get("embeddings.token_embedding.weight")
    )
    emb.position_embedding.position_embeddings.assign(
        get("embeddings.position_embedding.weight")
    )
    for i, block in enumerate(encoder.encoder_layers):
        prefix = f"encoder.layers.{i}."
        attention = block.attention
        for name, dense in (
            ("q_proj", attention._query_dense),
            ("k_proj", attention._key_dense),
            ("v_proj", attention._value_dense),
        ):
            weight = get(prefix + f"self_attn.{name}.weight")
            dense.kernel.assign(weight.T.reshape(hidden, heads, head_dim))
            dense.bias.assign(
                get(prefix + f"self_attn.{name}.bias").reshape(heads, head_dim)
            )
        out_weight = get(prefix + "self_attn.out_proj.weight")
        attention._output_dense.kernel.assign(
            out_weight.T.reshape(heads, head_dim, hidden)
        )
        attention._output_dense.bias.assign(
            get(prefix + "self_attn.out_proj.bias")
        )
        for hf, norm in (
            ("layer_norm1", block.layer_norm_1),
            ("layer_norm2", block.layer_norm_2),
        ):
            norm.gamma.assign(get(prefix + f"{hf}.weight"))
            norm.beta.assign(get(prefix + f"{hf}.bias"))
        for hf, dense in (("fc1", block.dense_1), ("fc2", block.dense_2)):
            dense.kernel.assign(get(prefix + f"mlp.{hf}.weight").T)
            dense.bias.assign(get(prefix + f"mlp.{hf}.bias"))
    encoder.layer_norm.gamma.assign(get("final_layer_norm.weight"))
    encoder.layer_norm.beta.assign(get("final_layer_norm.bias"))
    projection_weight = np.asarray(tensors["text_projection.weight"], "float32")
    projection = keras.layers.Dense(
        projection_weight.shape[0],
        use_bias=False,
        dtype=dtype,
        name="text_projection",
    )
    projection.build((None, hidden))
    projection.kernel.assign(projection_weight.T)
    epsilon = text_config.get("layer_norm_eps", OPENAI_LAYER_NORM_EPSILON)
    epsilon = float(epsilon)
    return encoder, projection, epsilon


def local_clip_dir():
    """Where a local copy of CLIP ViT-B/32 is looked for by `get("clip")`.

    `<keras_lgvq cache>/text_priors/clip-vit-b-32`: put a keras-hub CLIP
    preset or a Hugging Face CLIP checkpoint there (not created here).

    Examples:

    ```python
    print(keras_lgvq.text_priors.clip_text_prior.local_clip_dir())
    ```
    """
    return os.path.join(cache_dir("text_priors"), "clip-vit-b-32")


def resolve_clip_name(name_or_path):
    """Map `"clip"` to the cached local copy or the keras-hub preset name."""
    if name_or_path.lower() not in CLIP_NAMES:
        return name_or_path
    local = local_clip_dir()
    if os.path.isfile(os.path.join(local, "config.json")):
        return local
    return CLIP_PRESET


def _resolve_preset_dir(preset):
    """Download (needs network) a keras-hub preset; return its local dir."""
    try:
        from keras_hub.src.utils.preset_utils import get_file
    except ImportError as e:  # pragma: no cover - keras-hub internals moved
        raise RuntimeError(
            f"Cannot resolve keras-hub preset {preset!r} with this keras-hub "
            "version; pass a local preset directory instead."
        ) from e
    try:
        return os.path.dirname(get_file(preset, "config.json"))
    except Exception as e:
        raise RuntimeError(
            f"Could not fetch keras-hub preset {preset!r}. keras-hub CLIP "
            "presets live on Kaggle and need network access (and Kaggle "
            "credentials). Download it once where you have access "
            "(e.g. `keras_hub.models.CLIPBackbone.from_preset(...)` then "
            "`save_to_preset(dir)` with the tokenizer), and pass that local "
            f"directory instead, or place it in {local_clip_dir()} so that "
            f'"clip" finds it. Cause: {type(e).__name__}: {e}'
        ) from e


@keras.saving.register_keras_serializable(package="keras_lgvq")
class CLIPTextPrior(TextPrior):
    """Frozen CLIP text encoder producing LG-VQ's text features.

    Reproduces the features of the official LG-VQ code (OpenAI CLIP
    ViT-B/32 text tower, fp32):

    - captions are lower-cased and whitespace-collapsed, BPE-tokenized with
      keras-hub's `CLIPTokenizer`, and packed as `[SOT] + bpe + [EOT]`;
      longer captions keep the first `sequence_length - 1` tokens and then
      EOT (the same as truncating to L and overwriting the last id with
      EOT); padding id 0;
    - `token_features` are the per-position outputs after the final
      LayerNorm, **not** projected (B, L, width);
    - `sentence_feature` is the feature at the EOT position (the last valid
      position) through the bias-free `text_projection` (B, projection_dim).

    Because CLIP's attention is causal, features at length 30 equal the
    first 30 positions of a length-77 run on the same (truncated) ids.

    CLIP has no mask token, so `mask_token_id` is `None`: LG-VQ's masked
    text prediction replaces masked *features* by learned vectors and never
    feeds a mask id to CLIP.

    Deviations from OpenAI's tokenizer: `ftfy.fix_text` and HTML unescaping
    are not applied; literal `<|startoftext|>`/`<|endoftext|>` inside a
    caption are removed; the padding mask is positional (the official code
    uses `tokens != 0`, which also hides the rare BPE piece "!" whose id is
    0). The final LayerNorm epsilon is OpenAI's 1e-5 (keras-hub uses 1e-6).

    Sources (`name_or_path`):

    - a local keras-hub CLIP preset directory (a saved `CLIPBackbone`, with
      the tokenizer assets `assets/tokenizer/vocabulary.json` and
      `merges.txt`, or `vocab.json` + `merges.txt` beside `config.json`);
    - a local Hugging Face CLIP directory (`config.json` with `model_type`
      "clip" or "clip_text_model", `model.safetensors`, `vocab.json`,
      `merges.txt`), mapped by this package (keras-hub has no converter);
    - a keras-hub preset name such as `"clip_vit_base_patch32"` (Kaggle,
      needs network access);
    - `"clip"`: the copy in `local_clip_dir()` if there is one, else the
      `"clip_vit_base_patch32"` preset.

    Args:
        name_or_path: str. See above.
        sequence_length: int. Token length including SOT and EOT; at most
            the model's position count (77). Defaults to 30 as in LG-VQ.
        **kwargs: Standard layer arguments.

    Examples:

    ```python
    prior = keras_lgvq.text_priors.CLIPTextPrior("/models/clip-vit-b-32")
    ids, mask = prior.tokenize(["a bird with a red crown"])
    out = prior(ids, mask)
    out["token_features"].shape, out["sentence_feature"].shape
    # ((1, 30, 512), (1, 512))
    ```
    """

    def __init__(self, name_or_path, sequence_length=30, **kwargs):
        super().__init__(name_or_path, sequence_length, **kwargs)
        import keras_hub

        directory = resolve_clip_name(name_or_path)
        if not os.path.isdir(directory):
            directory = _resolve_preset_dir(directory)
        if is_hf_clip_dir(directory):
            encoder, projection, epsilon = load_hf_clip_text(directory)
        elif is_keras_clip_dir(directory):
            config = _read_json(os.path.join(directory, "config.json"))
            if config["registered_name"].endswith("CLIPTextEncoder"):
                raise ValueError(
                    f"{directory} holds a CLIPTextEncoder preset without "
                    "CLIP's text projection, which the sentence feature "
                    "needs. Save the full `CLIPBackbone` with "
                    "`save_to_preset` instead."
                )
            backbone = keras_hub.models.CLIPBackbone.from_preset(
                directory, dtype="float32"
            )
            encoder = backbone.text_encoder
            projection = backbone.text_projection
            epsilon = OPENAI_LAYER_NORM_EPSILON
        else:
            raise ValueError(
                f"{directory} is neither a keras-hub CLIP preset nor a "
                "Hugging Face CLIP checkpoint (config.json with model_type "
                "'clip')."
            )
        encoder.layer_norm.epsilon = epsilon
        vocab_path, merges_path = _clip_tokenizer_files(directory)
        # Vocabulary passed as data, not paths: keras-hub refuses file paths
        # in Keras safe mode, i.e. while a `.keras` model is being loaded.
        tokenizer = keras_hub.models.CLIPTokenizer(
            vocabulary=_read_json(vocab_path),
            merges=_read_merges(merges_path),
            dtype="int32",
        )
        self._check_sequence_length(encoder.max_sequence_length)
        self.vocabulary_size = int(encoder.vocabulary_size)
        self.hidden_dim = int(encoder.hidden_dim)
        self.sentence_dim = int(projection.units)
        self.start_token_id = int(tokenizer.start_token_id)
        self.end_token_id = int(tokenizer.end_token_id)
        self.pad_token_id = 0
        self.mask_token_id = None
        for name in ("start_token_id", "end_token_id"):
            if getattr(self, name) >= self.vocabulary_size:
                raise ValueError(
                    f"Tokenizer {name}={getattr(self, name)} is outside the "
                    f"encoder vocabulary ({self.vocabulary_size})."
                )
        packer = keras_hub.layers.StartEndPacker(
            sequence_length=self.sequence_length,
            start_value=self.start_token_id,
            end_value=self.end_token_id,
            pad_value=self.pad_token_id,
            return_padding_mask=True,
        )
        self._set_frozen_modules(
            encoder.weights + projection.weights,
            text_encoder=encoder,
            text_projection=projection,
            tokenizer=tokenizer,
            packer=packer,
            token_embedding_variable=(
                encoder.embedding.token_embedding.embeddings
            ),
        )

    def _token_ids_and_mask(self, strings):
        x = tf.strings.lower(strings, encoding="utf-8")
        x = tf.strings.regex_replace(x, _SPECIAL_STRINGS, " ")
        x = tf.strings.strip(tf.strings.regex_replace(x, _WHITESPACE, " "))
        # CLIP's pre-tokenizer splits every digit on its own ([\p{N}]);
        # keras-hub's TF path uses GPT-2's digit runs. Spaces restore CLIP's.
        x = tf.strings.regex_replace(x, r"(\pN)", r" \1 ")
        x = tf.strings.substr(
            x, 0, _CHARS_PER_TOKEN * self.sequence_length, unit="UTF8_CHAR"
        )
        token_ids = self._frozen.tokenizer(x)
        return self._frozen.packer(token_ids)

    def _encode(self, token_ids, padding_mask):
        features = self._frozen.text_encoder(
            {"token_ids": token_ids}, training=False
        )
        # EOT sits at the last valid position (the official code's argmax
        # over ids finds the same place, EOT being the largest id).
        length = ops.sum(ops.cast(padding_mask, "int32"), axis=-1)
        eot_index = ops.maximum(length - 1, 0)
        eot = ops.take_along_axis(
            features, eot_index[:, None, None], axis=1
        )[:, 0, :]
        return features, self._frozen.text_projection(eot)
