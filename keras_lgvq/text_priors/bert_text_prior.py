"""A BERT-family sentence encoder (default: offline MiniLM) as a text prior."""

import json
import os

import keras
from keras import ops

from keras_lgvq.text_priors import minilm_assets
from keras_lgvq.text_priors.text_prior import TextPrior

try:
    import tensorflow as tf
except ImportError:  # pragma: no cover
    tf = None

MINILM_NAMES = ("minilm", "all-minilm-l6-v2", "all_minilm_l6_v2")
# Characters kept per token slot before WordPiece: bounds the cost of huge
# inputs without changing the kept tokens (longer words become [UNK]).
_CHARS_PER_TOKEN = 100


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def is_hf_bert_dir(directory):
    """Whether `directory` holds a Hugging Face BERT checkpoint."""
    path = os.path.join(directory, "config.json")
    return os.path.isfile(path) and _read_json(path).get("model_type") == "bert"


def is_keras_bert_dir(directory):
    """Whether `directory` is a keras-hub `BertBackbone` preset."""
    path = os.path.join(directory, "config.json")
    if not os.path.isfile(path):
        return False
    name = str(_read_json(path).get("registered_name", ""))
    return name.split(">")[-1] == "BertBackbone"


def _tokenizer_settings(directory):
    """Return (vocabulary list, lowercase, strip_accents) for a BERT dir."""
    hf_vocab = os.path.join(directory, "vocab.txt")
    keras_vocab = os.path.join(
        directory, "assets", "tokenizer", "vocabulary.txt"
    )
    if os.path.isfile(hf_vocab):
        settings = {}
        config_path = os.path.join(directory, "tokenizer_config.json")
        if os.path.isfile(config_path):
            settings = _read_json(config_path)
        lowercase = bool(settings.get("do_lower_case", True))
        strip_accents = settings.get("strip_accents")
        # Hugging Face: `strip_accents=None` means "follow do_lower_case".
        strip_accents = lowercase if strip_accents is None else strip_accents
        vocab_path = hf_vocab
    elif os.path.isfile(keras_vocab):
        settings = {}
        config_path = os.path.join(directory, "tokenizer.json")
        if os.path.isfile(config_path):
            settings = _read_json(config_path).get("config", {})
        lowercase = bool(settings.get("lowercase", False))
        strip_accents = bool(settings.get("strip_accents", False))
        vocab_path = keras_vocab
    else:
        raise FileNotFoundError(
            f"No BERT vocabulary in {directory}: expected `vocab.txt` "
            "(Hugging Face) or `assets/tokenizer/vocabulary.txt` (keras-hub)."
        )
    with open(vocab_path, encoding="utf-8") as f:
        vocabulary = [line.rstrip("\n") for line in f]
    while vocabulary and vocabulary[-1] == "":
        vocabulary.pop()
    return vocabulary, lowercase, bool(strip_accents)


@keras.saving.register_keras_serializable(package="keras_lgvq")
class BertTextPrior(TextPrior):
    """Frozen BERT-family encoder (default: all-MiniLM-L6-v2) as a text prior.

    Runs keras-hub's `BertBackbone` and `BertTokenizer` on a local
    Hugging Face-format (or keras-hub preset) directory. The default,
    `"minilm"`, is all-MiniLM-L6-v2 from the keras_lgvq cache, fetched once
    at set-up with `python -m keras_lgvq.text_priors.minilm_assets` (no
    network at run time).

    - Packing: `[CLS] + wordpieces + [SEP]` with keras-hub's
      `StartEndPacker`; longer captions keep [SEP] last; padding `[PAD]`.
    - `token_features`: last hidden states (B, L, hidden_dim).
    - `sentence_feature`: mean of the hidden states over valid tokens, then
      l2-normalised (sentence-transformers' Pooling(mean) + Normalize).

    Deviation from LG-VQ: MiniLM's 384-d space is not image-aligned the way
    CLIP's is, and keras-hub's BERT uses the tanh approximation of GELU
    (Hugging Face: exact erf; cosine 0.9999995 between the two).
    Tokenization equals Hugging Face's except that special-token strings
    typed in a caption ("[SEP]") are split as text rather than honoured,
    and keras-hub case-folds (e.g. "ß" becomes "ss").

    Args:
        name_or_path: str. `"minilm"`, a local Hugging Face BERT directory
            (`config.json` with `model_type: bert`, `model.safetensors`,
            `vocab.txt`, `tokenizer_config.json`), a local keras-hub
            `BertBackbone` preset, or a keras-hub BERT preset name (needs
            network access).
        sequence_length: int. Token length including [CLS] and [SEP].
            Defaults to 30.
        **kwargs: Standard layer arguments.

    Examples:

    ```python
    prior = keras_lgvq.text_priors.BertTextPrior("minilm")
    out = prior.encode(["a photo of a red car"])
    out["sentence_feature"].shape  # (1, 384), unit norm
    ```
    """

    def __init__(self, name_or_path="minilm", sequence_length=30, **kwargs):
        super().__init__(name_or_path, sequence_length, **kwargs)
        import keras_hub

        if name_or_path.lower() in MINILM_NAMES:
            directory = minilm_assets.require_minilm()
        elif os.path.isdir(name_or_path):
            directory = name_or_path
        else:
            from keras_lgvq.text_priors.clip_text_prior import (
                _resolve_preset_dir,
            )

            directory = _resolve_preset_dir(name_or_path)
        if not (is_hf_bert_dir(directory) or is_keras_bert_dir(directory)):
            raise ValueError(
                f"{directory} is neither a Hugging Face BERT checkpoint "
                "(config.json with model_type 'bert') nor a keras-hub "
                "BertBackbone preset."
            )
        backbone = keras_hub.models.BertBackbone.from_preset(
            directory, dtype="float32"
        )
        vocabulary, lowercase, strip_accents = _tokenizer_settings(directory)
        # Vocabulary passed as data, not a path: keras-hub refuses file
        # paths in Keras safe mode, i.e. while a `.keras` model loads.
        tokenizer = keras_hub.models.BertTokenizer(
            vocabulary=vocabulary,
            lowercase=lowercase,
            strip_accents=strip_accents,
            dtype="int32",
        )
        self._check_sequence_length(backbone.max_sequence_length)
        self.vocabulary_size = int(backbone.vocabulary_size)
        self.hidden_dim = int(backbone.hidden_dim)
        self.sentence_dim = int(backbone.hidden_dim)
        self.start_token_id = int(tokenizer.cls_token_id)
        self.end_token_id = int(tokenizer.sep_token_id)
        self.pad_token_id = int(tokenizer.pad_token_id)
        self.mask_token_id = int(tokenizer.mask_token_id)
        if tokenizer.vocabulary_size() > self.vocabulary_size:
            raise ValueError(
                f"The tokenizer of {directory} has "
                f"{tokenizer.vocabulary_size()} tokens but the encoder only "
                f"{self.vocabulary_size} embeddings."
            )
        packer = keras_hub.layers.StartEndPacker(
            sequence_length=self.sequence_length,
            start_value=self.start_token_id,
            end_value=self.end_token_id,
            pad_value=self.pad_token_id,
            return_padding_mask=True,
        )
        self._set_frozen_modules(
            backbone.weights,
            backbone=backbone,
            tokenizer=tokenizer,
            packer=packer,
            token_embedding_variable=backbone.token_embedding.embeddings,
        )

    def _token_ids_and_mask(self, strings):
        x = tf.strings.substr(
            strings,
            0,
            _CHARS_PER_TOKEN * self.sequence_length,
            unit="UTF8_CHAR",
        )
        return self._frozen.packer(self._frozen.tokenizer(x))

    def _encode(self, token_ids, padding_mask):
        outputs = self._frozen.backbone(
            {
                "token_ids": token_ids,
                "segment_ids": ops.zeros_like(token_ids),
                "padding_mask": padding_mask,
            },
            training=False,
        )
        hidden = outputs["sequence_output"]
        weights = ops.cast(padding_mask, hidden.dtype)[:, :, None]
        total = ops.sum(hidden * weights, axis=1)
        count = ops.maximum(ops.sum(weights, axis=1), 1e-9)
        mean = total / count
        norm = ops.sqrt(ops.sum(ops.square(mean), axis=-1, keepdims=True))
        # Same epsilon as torch.nn.functional.normalize.
        return hidden, mean / ops.maximum(norm, 1e-12)
