"""ClipCap-style captioning from a frozen tokenizer's codes: a prefix mapper
feeds k vectors to a (by default frozen) causal LM, which is trained with
teacher forcing on the caption tokens and decodes greedily or by beam
search."""

import json
import os

import keras
import numpy as np
from keras import ops

from keras_lgvq.backend.nonfinite_skipping import NonFiniteStepSkipping
from keras_lgvq.datasets.code_batch_checks import validate_code_batch
from keras_lgvq.datasets.id_batch_checks import validate_id_batch
from keras_lgvq.language_models.causal_lm import CausalLM
from keras_lgvq.models.captioning.beam_search import beam_search
from keras_lgvq.models.captioning.prefix_mapper import build_prefix_mapper
from keras_lgvq.models.checked_input_fit import CheckedInputFit
from keras_lgvq.models.text_to_image.text_to_image import load_tokenizer
from keras_lgvq.models.text_to_image.text_to_image import masked_code_loss
from keras_lgvq.utils.code_layout import check_code_layout
from keras_lgvq.utils.code_layout import index_depth
from keras_lgvq.utils.code_layout import sub_codebooks_of
from keras_lgvq.utils.validation import CODE_CHECK_PREFIX
from keras_lgvq.utils.validation import TEXT_CHECK_PREFIX
from keras_lgvq.utils.validation import check_code_range
from keras_lgvq.utils.validation import check_int
from keras_lgvq.utils.validation import check_number
from keras_lgvq.version import __version__

# Batch keys the models consume; strings and bookkeeping are dropped.
INPUT_KEYS = ("codes", "code_vectors", "token_ids", "padding_mask")
# How the causal LM is trained: not at all, every weight, or low-rank
# adapters on the attention's query / value projections (keras-hub LoRA).
LANGUAGE_MODEL_TRAINING = ("frozen", "full", "lora")
DEFAULT_LORA_RANK = 8
# The captioner's decoder: the loaded LM, or a new one trained from scratch.
DECODERS = ("pretrained", "scratch")


def as_text_list(texts, name):
    """Validates texts: a str or a non-empty sequence of non-empty str.

    Args:
        texts: str, list / tuple of str (bytes are decoded as UTF-8) or a
            numpy array of strings.
        name: string. The argument's name for error messages.

    Returns:
        A list of str.

    Examples:

    ```python
    as_text_list("a red cube", "captions")  # ["a red cube"]
    ```
    """
    if isinstance(texts, (str, bytes)):
        texts = [texts]
    if isinstance(texts, np.ndarray) and texts.dtype.kind in "USO":
        texts = texts.reshape(-1).tolist()
    if not isinstance(texts, (list, tuple)) or not texts:
        raise ValueError(
            f"`{name}` must be a str or a non-empty list of str; received "
            f"{type(texts).__name__}: {texts!r:.60}."
        )
    out = []
    for i, text in enumerate(texts):
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        if not isinstance(text, str):
            raise ValueError(
                f"`{name}`[{i}] must be a str; received "
                f"{type(text).__name__}: {text!r:.60}."
            )
        if not text.strip():
            raise ValueError(
                f"`{name}`[{i}] is empty; every entry needs at least one "
                "non-space character."
            )
        out.append(text)
    return out


def tokenize_texts(language_model, texts, max_length, name="captions",
                   append_stop=True):
    """Right-padded LM token ids of texts, with a documented truncation rule.

    Truncation: a text longer than the budget keeps its FIRST tokens. With
    `append_stop=True` (captions: the model learns where to stop) the
    budget is `max_length - 1` tokens followed by the LM's stop token, so a
    truncated caption still ends with a stop; otherwise (questions) it is
    `max_length` tokens.

    Args:
        language_model: a `CausalLM`.
        texts: str or list of str (see `as_text_list`).
        max_length: int. Tokens per row after padding.
        name: string. Argument name for error messages.
        append_stop: bool. End each text with the LM's stop token.

    Returns:
        `(token_ids, padding_mask)`: int32 and bool numpy `(B, max_length)`;
        padding uses the LM's `pad_token_id`.

    Examples:

    ```python
    ids, mask = tokenize_texts(lm, ["a red cube"], max_length=16)
    ```
    """
    texts = as_text_list(texts, name)
    max_length = check_int("max_length", max_length, low=2 if append_stop else 1)
    ids = np.full((len(texts), max_length), language_model.pad_token_id,
                  "int32")
    mask = np.zeros((len(texts), max_length), bool)
    stop = _stop_token(language_model)
    for i, text in enumerate(texts):
        tokens = list(language_model.encode(text))
        if append_stop:
            tokens = tokens[: max_length - 1] + [stop]
        else:
            tokens = tokens[:max_length]
        ids[i, : len(tokens)] = tokens
        mask[i, : len(tokens)] = True
    return ids, mask


def _stop_token(language_model):
    stops = tuple(language_model.stop_token_ids)
    return int(stops[0]) if stops else int(language_model.pad_token_id)


def check_language_model_training(language_model_training, lora_rank):
    """Validates the LM training mode; returns `(mode, lora_rank)`.

    Args:
        language_model_training: `"frozen"`, `"full"` or `"lora"`.
        lora_rank: int >= 1 or None. Only for `"lora"` (default
            `DEFAULT_LORA_RANK`); must be None otherwise.

    Examples:

    ```python
    check_language_model_training("lora", 4)  # ("lora", 4)
    ```
    """
    if language_model_training not in LANGUAGE_MODEL_TRAINING:
        raise ValueError(
            "`language_model_training` must be one of "
            f"{list(LANGUAGE_MODEL_TRAINING)}; received "
            f"{language_model_training!r}."
        )
    if language_model_training != "lora":
        if lora_rank is not None:
            raise ValueError(
                f"`lora_rank`={lora_rank!r} is only used with "
                "`language_model_training='lora'`; received "
                f"{language_model_training!r}. Drop `lora_rank` or use LoRA."
            )
        return language_model_training, None
    if lora_rank is None:
        lora_rank = DEFAULT_LORA_RANK
    return "lora", check_int("lora_rank", lora_rank, low=1)


def configure_language_model(language_model, mode, lora_rank=None):
    """Sets which weights of a `CausalLM` train.

    `"frozen"`: none; `"full"`: all; `"lora"`: only keras-hub LoRA adapters
    (`backbone.enable_lora(rank)`: rank-`lora_rank` factors on every
    attention block's query and value projections, the rest frozen).

    Args:
        language_model: a `CausalLM`.
        mode: one of `LANGUAGE_MODEL_TRAINING`.
        lora_rank: int. For `"lora"`.

    Examples:

    ```python
    configure_language_model(lm, "lora", 4)
    ```
    """
    backbone = language_model.backbone
    has_lora = bool(getattr(backbone, "_lora_enabled_layers", None))
    # Not `language_model.trainable = ...`: TF's tracking `__setattr__` skips
    # an assignment equal to the current value, which would leave the
    # backbone's own flags untouched.
    keras.layers.Layer.trainable.fset(language_model, mode != "frozen")
    if mode != "lora":
        if has_lora:
            raise ValueError(
                "The language model already has LoRA adapters (another "
                "model enabled them); load a fresh `CausalLM` for "
                f"`language_model_training={mode!r}`."
            )
        return
    if has_lora:
        raise ValueError(
            "The language model already has LoRA adapters (another model "
            "enabled them on this same `CausalLM`); load a fresh one per "
            "model, e.g. `load_causal_lm(source)`."
        )
    backbone.enable_lora(int(lora_rank))
    if not backbone._lora_enabled_layers:
        raise ValueError(
            f"`language_model_training='lora'`: the {type(backbone).__name__}"
            " has no layers LoRA can adapt (keras-hub targets "
            f"{backbone.default_lora_layer_names()})."
        )


# Added to the mean square before the prefix's RMS normalisation; far below
# any real prefix's mean square (a mapper at init gives ~1e-3).
PREFIX_NORM_EPSILON = 1e-12


def token_embedding_rms(language_model):
    """Root-mean-square of a `CausalLM`'s token-embedding matrix (float).

    The default `prefix_scale` of prefix models: SmolLM2-135M's is 0.136.

    Args:
        language_model: a `CausalLM`.

    Examples:

    ```python
    token_embedding_rms(load_causal_lm("smollm2"))  # ~0.136
    ```
    """
    table = language_model.backbone.token_embedding.embeddings
    return float(np.sqrt(np.mean(np.square(
        np.asarray(ops.convert_to_numpy(table), "float64")))))


def _load_language_model(language_model, scratch=None):
    """A `CausalLM` from an instance, its config or a source (new decoder
    of architecture `scratch` when given)."""
    if isinstance(language_model, dict):
        language_model = keras.layers.deserialize(language_model)
    if isinstance(language_model, (str, os.PathLike)):
        language_model = CausalLM(source=os.fspath(language_model),
                                  scratch=scratch)
    if not isinstance(language_model, CausalLM):
        raise ValueError(
            "`language_model` must be a keras_lgvq CausalLM or its source "
            '("smollm2", a .gguf path or a keras-hub preset directory); '
            f"received {type(language_model).__name__}."
        )
    return language_model


def _check_host_ids(values, name, size, hint):
    """ValueError unless `values` are integer ids in `[0, size)`."""
    values = np.asarray(ops.convert_to_numpy(values))
    if values.dtype.kind not in "iu":
        raise ValueError(
            f"`{name}` must hold integer ids; got dtype {values.dtype}. {hint}"
        )
    if values.size and (values.min() < 0 or values.max() >= size):
        raise ValueError(
            f"`{name}` must be ids in [0, {size}); got values from "
            f"{values.min()} to {values.max()}. {hint}"
        )


class PrefixLanguageModel(
    CheckedInputFit, NonFiniteStepSkipping, keras.Model
):
    """Shared base: code grid -> prefix mapper -> frozen causal LM.

    Subclasses (`Captioner`, `VQAModel`) add their heads and losses. Inputs
    are dicts with either `codes` (int `(B, h, w)` code grids, or
    `(B, h, w, S)` for a tokenizer with S ids per position such as VQCT,
    turned into code vectors by the frozen tokenizer's
    `quantizer.indices_to_codes`)
    or `code_vectors` (float `(B, h * w, D)`, e.g. from a code cache).
    `language_model_training` (`"frozen"`, `"full"`, `"lora"`) and
    `lora_rank` choose what of the LM trains (`configure_language_model`).

    Each prefix vector is RMS-normalised and scaled to `prefix_scale`, the
    root-mean-square of the LM's token embeddings by default
    (`token_embedding_rms`): the mapper chooses the directions, the LM
    sees prefix vectors on the scale of the tokens it was trained on. An
    unnormalised mapper over a flattened code grid (16,384 inputs for a
    16 x 16 grid of 64-d codes) trained with Adam at 1e-3 grew its prefix
    to ~9x the token scale within 30 steps, with most of it varying per
    image at random; the frozen LM then trained worse with the image than
    a constant (blind) prefix and often generated only a newline
    (benchmarks/results/stage2_measurements.md).
    `prefix_scale=0` turns the normalisation off (raw mapper outputs).
    """

    def __init__(self, mapper, language_model="smollm2", tokenizer=None,
                 language_model_training="frozen", lora_rank=None,
                 prefix_scale=None, **kwargs):
        super().__init__(**kwargs)
        mode, lora_rank = check_language_model_training(
            language_model_training, lora_rank
        )
        if isinstance(mapper, dict):
            mapper = keras.layers.deserialize(mapper)
        if not all(
            hasattr(mapper, n)
            for n in ("num_positions", "code_dim", "prefix_length", "lm_dim")
        ):
            raise ValueError(
                "`mapper` must be a prefix mapper (MLPPrefixMapper, "
                "TransformerPrefixMapper); received "
                f"{type(mapper).__name__}."
            )
        language_model = _load_language_model(language_model)
        if mapper.lm_dim != language_model.hidden_dim:
            raise ValueError(
                f"`mapper` outputs width lm_dim={mapper.lm_dim} but the "
                f"language model's hidden size is {language_model.hidden_dim};"
                " build the mapper with `lm_dim=language_model.hidden_dim`."
            )
        if isinstance(tokenizer, dict):
            tokenizer = keras.layers.deserialize(tokenizer)
        if tokenizer is not None:
            tokenizer = load_tokenizer(tokenizer)
            positions = int(tokenizer.grid_size) ** 2
            code_dim = int(tokenizer.quantizer.embedding_dim)
            if (positions, code_dim) != (mapper.num_positions,
                                         mapper.code_dim):
                raise ValueError(
                    f"`tokenizer` gives {positions} code vectors of width "
                    f"{code_dim} but the mapper expects num_positions="
                    f"{mapper.num_positions}, code_dim={mapper.code_dim}."
                )
        self.mapper = mapper
        self.language_model = language_model
        self.tokenizer = tokenizer
        self.language_model_training = mode
        self.lora_rank = lora_rank
        if prefix_scale is None:
            # Measured once at construction and saved in the config, so a
            # reloaded model (whose LM may have been fine-tuned) uses the
            # scale it was trained with.
            prefix_scale = token_embedding_rms(language_model)
        self.prefix_scale = check_number("prefix_scale", prefix_scale,
                                         low=0.0)
        # The LM stays frozen unless asked; the tokenizer always is.
        configure_language_model(language_model, mode, lora_rank)
        if not self.mapper.built:
            self.mapper.build((None, mapper.num_positions, mapper.code_dim))

    @property
    def prefix_length(self):
        return self.mapper.prefix_length

    def code_vectors(self, inputs):
        """Code vectors `(B, N, D)` of a batch dict (`codes` or
        `code_vectors`)."""
        if not isinstance(inputs, dict) or not (
            "codes" in inputs or "code_vectors" in inputs
        ):
            keys = sorted(inputs) if isinstance(inputs, dict) else type(inputs)
            raise ValueError(
                f"{type(self).__name__} batches must be dicts with `codes` "
                "(int code grids) or `code_vectors` (float (B, h*w, D)); "
                f"received {keys}."
            )
        if "code_vectors" in inputs:
            return ops.convert_to_tensor(inputs["code_vectors"])
        if self.tokenizer is None:
            raise ValueError(
                "`codes` need the image tokenizer to look up code vectors: "
                f"build the {type(self).__name__} with `tokenizer=` or pass "
                "`code_vectors`."
            )
        codes = ops.cast(inputs["codes"], "int32")
        vectors = self.tokenizer.quantizer.indices_to_codes(codes)
        return ops.reshape(
            vectors, (-1, self.mapper.num_positions, self.mapper.code_dim)
        )

    def prefix(self, inputs, training=None):
        """The k prefix vectors `(B, k, lm_dim)` of a batch dict."""
        vectors = ops.stop_gradient(self.code_vectors(inputs))
        prefix = ops.cast(self.mapper(vectors, training=training), "float32")
        if self.prefix_scale > 0:
            prefix = prefix * (self.prefix_scale * ops.rsqrt(
                ops.mean(ops.square(prefix), axis=-1, keepdims=True)
                + PREFIX_NORM_EPSILON
            ))
        return ops.cast(prefix, self.language_model.backbone.compute_dtype)

    def _image_inputs(self, codes, code_vectors):
        if (codes is None) == (code_vectors is None):
            raise ValueError("Pass exactly one of `codes` or `code_vectors`.")
        if codes is not None:
            codes = self._check_codes(codes)
            return {"codes": codes.astype("int32")}, len(codes)
        vectors = np.asarray(ops.convert_to_numpy(code_vectors), "float32")
        return {"code_vectors": vectors}, len(vectors)

    def build(self, input_shape=None):
        self.built = True

    def _check_codes(self, codes):
        """Host-side check of integer code grids; returns them as numpy.

        `(B, h, w)` ids in `[0, K)` for a single codebook; VQCT-like
        tokenizers give S ids per position (a trailing axis,
        `keras_lgvq.utils.code_layout`), each in its sub-codebook's range.
        `h * w` must be the mapper's `num_positions`.
        """
        if self.tokenizer is None:
            raise ValueError(
                "`codes` need the image tokenizer to look up code vectors: "
                f"build the {type(self).__name__} with `tokenizer=` or pass "
                "`code_vectors`."
            )
        codes = np.asarray(ops.convert_to_numpy(codes))
        sub_codebooks = sub_codebooks_of(self.tokenizer)
        depth = index_depth(sub_codebooks)
        expected = "(batch, h, w)" if depth is None else (
            f"(batch, h, w, {depth})")
        if (
            codes.ndim != (3 if depth is None else 4)
            or codes.dtype.kind not in "iu"
            or (depth is not None and codes.shape[-1] != depth)
        ):
            raise ValueError(
                f"`codes` must be integer code grids {expected}; "
                f"received shape {codes.shape}, dtype {codes.dtype}."
            )
        positions = codes.shape[1] * codes.shape[2]
        if positions != self.mapper.num_positions:
            raise ValueError(
                f"`codes` grids hold {codes.shape[1]}x{codes.shape[2]} = "
                f"{positions} positions but the mapper reads num_positions="
                f"{self.mapper.num_positions}; the codes come from another "
                "tokenizer or image size."
            )
        if depth is not None:
            check_code_layout(codes, sub_codebooks, name="codes")
        else:
            check_code_range(codes, self.tokenizer.num_embeddings,
                             name="codes")
        return codes

    def _id_checks(self):
        """`(key, size, allowed, hint)` of the integer id inputs."""
        lm = self.language_model
        allowed = None
        if lm._compact_table is not None:
            allowed = lm._compact_table >= 0
        return [(
            "token_ids", lm.tokenizer_vocabulary_size, allowed,
            "Token ids come from the model's language-model tokenizer "
            "(`prepare_inputs`); a compact decoder reads only its "
            "`vocabulary_ids`.",
        )]

    def _filter_inputs(self, x):
        import tensorflow as tf

        if isinstance(x, tf.data.Dataset) and isinstance(
            x.element_spec, dict
        ):
            keys = [k for k in self.input_keys if k in x.element_spec]
            code_check = None
            if "codes" in keys:
                if self.tokenizer is None:
                    self._check_codes(None)  # raises: no tokenizer
                code_check = (
                    self.tokenizer.num_embeddings,
                    self.mapper.num_positions,
                    sub_codebooks_of(self.tokenizer),
                )
            id_checks = self._id_checks()

            def keep_and_check(batch):
                # In the pipeline, on the host: a jitted step cannot raise
                # on a bad id (JAX would gather a wrong row silently).
                batch = {k: batch[k] for k in keys}
                if code_check is not None:
                    batch = validate_code_batch(batch, *code_check)
                for key, size, allowed, hint in id_checks:
                    batch = validate_id_batch(batch, key, size, allowed, hint)
                return batch

            return x.map(keep_and_check, num_parallel_calls=tf.data.AUTOTUNE)
        if isinstance(x, dict):
            x = {k: v for k, v in x.items() if k in self.input_keys}
            if "codes" in x:
                self._check_codes(x["codes"])
            if "token_ids" in x:
                # Host side: a token outside a compact decoder vocabulary
                # is an error, never another id.
                self.language_model.check_token_ids(x["token_ids"])
            for key, size, _, hint in self._id_checks():
                if key in x and key != "token_ids":
                    _check_host_ids(x[key], key, size, hint)
            return x
        return x

    input_keys = INPUT_KEYS

    input_check_prefixes = (CODE_CHECK_PREFIX, TEXT_CHECK_PREFIX)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "mapper": keras.layers.serialize(self.mapper),
                "language_model": keras.layers.serialize(self.language_model),
                "tokenizer": None
                if self.tokenizer is None
                else keras.layers.serialize(self.tokenizer),
                "language_model_training": self.language_model_training,
                "lora_rank": self.lora_rank,
                "prefix_scale": self.prefix_scale,
            }
        )
        return config

    # === Presets ===

    def save_to_preset(self, preset_dir):
        """Writes the model in keras-hub's preset layout.

        The language model is the keras-hub backbone: its `LlamaBackbone`
        and tokenizer go through keras-hub's savers (`config.json`,
        `model.weights.h5`, `tokenizer.json`, assets), so the directory is
        also a `source` for `load_causal_lm`; `task.json` holds this model's
        config and `task.weights.h5` the mapper, heads and image tokenizer.
        The copy of the LM makes the preset self-contained (SmolLM2 adds
        about 0.5 GB in float32).

        Args:
            preset_dir: string. Directory to create or overwrite files in.

        Examples:

        ```python
        captioner.save_to_preset("runs/captioning/preset")
        captioner = Captioner.from_preset("runs/captioning/preset")
        ```
        """
        from keras_lgvq.models import presets

        os.makedirs(preset_dir, exist_ok=True)
        lm = self.language_model
        lm.backbone.save_to_preset(preset_dir)
        lm.tokenizer.save_to_preset(preset_dir)
        _record_tied_embeddings(lm.backbone, preset_dir)
        config = keras.saving.serialize_keras_object(self)
        presets._drop_keys(config, ("compile_config", "build_config"))
        with open(os.path.join(preset_dir, presets.TASK_CONFIG_FILE), "w") as f:
            json.dump(config, f, indent=2)
        # The LM (LoRA merged into its kernels) is in the keras-hub files;
        # `lm` itself is skipped too, since a LoRA LM saved by reference
        # would add its factors (`CausalLM.save_own_variables`).
        keras.saving.save_weights(
            self,
            os.path.join(preset_dir, presets.TASK_WEIGHTS_FILE),
            objects_to_skip=[lm] + list(lm.backbone._flatten_layers()),
        )
        path = os.path.join(preset_dir, presets.METADATA_FILE)
        with open(path) as f:
            metadata = json.load(f)
        metadata.update(
            {
                "class_name": type(self).__name__,
                "keras_lgvq_version": __version__,
                "language_model_source": lm.source,
            }
        )
        with open(path, "w") as f:
            json.dump(metadata, f, indent=2)

    @classmethod
    def _from_directory(cls, preset, tokenizer=None, load_weights=True,
                        **kwargs):
        from keras_lgvq.models import presets

        if not os.path.exists(os.path.join(preset, presets.TASK_CONFIG_FILE)):
            raise ValueError(
                f"{preset!r} holds a backbone only (no "
                f"{presets.TASK_CONFIG_FILE}); it was not written by "
                f"`{cls.__name__}.save_to_preset`."
            )
        config = presets.read_json(preset, presets.TASK_CONFIG_FILE)
        registered = config.get("registered_name", config.get("class_name"))
        target = keras.saving.get_registered_object(registered)
        if target is None or not issubclass(target, cls):
            raise ValueError(
                f"{preset!r} holds a {registered}, not a {cls.__name__}."
            )
        inner = config["config"]
        # The LM (with any fine-tuned weights; LoRA adapters merged into
        # their kernels by Keras' saver) comes from the directory; the
        # constructor then applies `language_model_training`.
        saved_lm = inner.get("language_model") or {}
        saved_lm = saved_lm.get("config", {}) if isinstance(
            saved_lm, dict) else {}
        vocabulary_ids = (saved_lm.get("scratch") or {}).get(
            "vocabulary_ids", saved_lm.get("vocabulary_ids"))
        inner["language_model"] = CausalLM(source=preset,
                                           vocabulary_ids=vocabulary_ids)
        replace_tokenizer = tokenizer is not None
        if replace_tokenizer:
            inner["tokenizer"] = load_tokenizer(tokenizer)
        inner.update(kwargs)
        model = keras.saving.deserialize_keras_object(config)
        if load_weights:
            skip = [model.language_model] + list(
                model.language_model.backbone._flatten_layers()
            )
            if replace_tokenizer:
                skip += list(model.tokenizer._flatten_layers())
            keras.saving.load_weights(
                model,
                os.path.join(preset, presets.TASK_WEIGHTS_FILE),
                objects_to_skip=skip,
            )
        return model

    @classmethod
    def _from_spec(cls, spec, tokenizer=None, language_model=None,
                   **kwargs):
        from keras_lgvq.models.vqgan.vqgan_backbone import VQGANBackbone

        if tokenizer is None:
            # Architecture only (untrained): pass a trained tokenizer.
            tokenizer = VQGANBackbone.from_preset(spec["tokenizer_preset"])
        tokenizer = load_tokenizer(tokenizer)
        language_model = _load_language_model(
            spec["language_model"] if language_model is None
            else language_model
        )
        mapper_args = dict(spec["mapper"])
        kind = mapper_args.pop("kind")
        for key in list(kwargs):
            if key in mapper_args:
                mapper_args[key] = kwargs.pop(key)
        mapper = build_prefix_mapper(
            kind,
            num_positions=int(tokenizer.grid_size) ** 2,
            code_dim=int(tokenizer.quantizer.embedding_dim),
            lm_dim=int(language_model.hidden_dim),
            name="mapper",
            **mapper_args,
        )
        options = dict(spec.get("model", {}))
        options.update(kwargs)
        return cls(
            mapper=mapper,
            language_model=language_model,
            tokenizer=tokenizer,
            **options,
        )

    @classmethod
    def from_preset(cls, preset, tokenizer=None, language_model=None,
                    load_weights=True, **kwargs):
        """Builds the model from a built-in preset or a preset directory.

        Names resolve as for every model of the package
        (`keras_lgvq.models.presets.resolve_preset`). A built-in name builds
        an untrained mapper for `tokenizer` (else the preset's tokenizer
        architecture, untrained) and `language_model` (else the preset's,
        `"smollm2"`); a built-in name that ships a trained model (e.g.
        `scenes_lgvq_captioner`, `keras_lgvq.models.captioning.shipped`)
        loads it with its shipped tokenizer preset attached, no training
        (`load_weights=False`: the same architecture, untrained); a
        directory written by `save_to_preset` restores the trained model,
        its LM and tokenizer.

        Args:
            preset: string. A built-in name or a local directory.
            tokenizer: optional tokenizer (model, layer or path; see
                `keras_lgvq.models.text_to_image.load_tokenizer`).
            language_model: optional `CausalLM` or LM source (built-in
                names only).
            load_weights: bool. Load a directory's weights.
            **kwargs: mapper fields (`prefix_length=5`, ...) and
                constructor arguments overriding the preset's.

        Examples:

        ```python
        captioner = keras_lgvq.models.Captioner.from_preset(
            "captioning_scenes_mlp", tokenizer="runs/lgvq/model.keras")
        ```
        """
        from keras_lgvq.models import presets

        kind, value = presets.resolve_preset(preset, cls.__name__)
        if kind == "directory":
            if language_model is not None:
                raise ValueError(
                    "`language_model` cannot replace the LM of a preset "
                    "directory (its weights are part of it); build a new "
                    "model from a built-in name instead."
                )
            return cls._from_directory(value, tokenizer, load_weights,
                                       **kwargs)
        if value.get("shipped_model"):
            # A trained model in the package (`shipped.py`); its LM is part
            # of it.
            if language_model is not None:
                raise ValueError(
                    f"Preset {preset!r} ships a trained model with its own "
                    "decoder; `language_model` cannot replace it."
                )
            from keras_lgvq.models.captioning.shipped import load_shipped_model

            return load_shipped_model(cls, value, tokenizer, load_weights,
                                      **kwargs)
        return cls._from_spec(value, tokenizer, language_model, **kwargs)


@keras.saving.register_keras_serializable(package="keras_lgvq")
class Captioner(PrefixLanguageModel):
    """ClipCap-style image captioning over a frozen tokenizer's codes.

    A prefix mapper turns the code vectors of an image into `k` vectors in
    the LM's embedding space; the LM reads `[prefix ; caption tokens]` and
    is trained with teacher forcing: the output at prefix position `k - 1`
    predicts the first caption token, and so on; the loss is the mean
    cross-entropy over real caption tokens only (the prefix positions and
    padding carry no loss). Each caption ends with the LM's stop token, so
    the model learns where to stop. The LM is frozen by default
    (`language_model_training`: `"full"` fine-tunes it, `"lora"` trains
    keras-hub LoRA adapters only); the image tokenizer is always frozen.

    `decoder="scratch"` replaces the pretrained LM by a small decoder
    trained from scratch with the mapper (for users who want no pretrained
    LM): a keras-hub Llama decoder stack with a tied `ReversibleEmbedding`
    over the LM source's tokenizer vocabulary (`CausalLM(scratch=...)`);
    only the source's tokenizer is used. `decoder_config={"vocabulary_ids":
    ids}` (`keras_lgvq.language_models.compact_vocabulary(source,
    captions)`) restricts its embedding and output layer to the ids of the
    training captions plus the special ids: a modelling choice, exact for
    captions inside that vocabulary (a caption with another token is a
    ValueError), that makes the model a few MB instead of ~50 MB and its
    output layer a few hundred columns wide instead of 49,152. Generation
    returns tokenizer ids either way.

    Train with plain `compile` / `fit`: the loss is built in (`compute_loss`)
    and batches are dicts with `codes` (or `code_vectors`), `token_ids` and
    `padding_mask` (`prepare_inputs` makes them from captions).

    Args:
        mapper: an `MLPPrefixMapper` or `TransformerPrefixMapper` whose
            `lm_dim` is the LM's hidden size.
        language_model: a `keras_lgvq.language_models.CausalLM` or its
            source (default `"smollm2"`).
        tokenizer: optional frozen image tokenizer (see
            `keras_lgvq.models.text_to_image.load_tokenizer`); needed for
            `codes` inputs, not for `code_vectors`.
        max_caption_length: int. Caption tokens per example including the
            stop token; longer captions keep their first
            `max_caption_length - 1` tokens (see `tokenize_texts`). Also the
            default generation budget.
        language_model_training: `"frozen"` (default for a pretrained
            decoder), `"full"` (fine-tune every LM weight; the only mode,
            and the default, for a scratch decoder) or `"lora"`.
        lora_rank: int or None. LoRA rank for `"lora"` (default 8).
        decoder: `"pretrained"` (default: `language_model` as loaded) or
            `"scratch"` (a new decoder over `language_model`'s tokenizer;
            `language_model` is then a source string, or a `CausalLM` built
            with `scratch=` or restored from a preset directory).
        decoder_config: dict or None. The scratch decoder's architecture
            (fields of `keras_lgvq.language_models.causal_lm.
            SCRATCH_DEFAULTS`); only with `decoder="scratch"` and a source
            string. Saved as part of the language model's config.
        prefix_scale: float >= 0 or None (keyword). RMS of every prefix
            vector (see `PrefixLanguageModel`): None (default) takes the
            LM's token-embedding RMS (`token_embedding_rms`), 0 leaves the
            mapper's outputs unnormalised.
        **kwargs: `keras.Model` arguments (`name`).

    Examples:

    ```python
    lm = keras_lgvq.language_models.load_causal_lm("smollm2")
    mapper = MLPPrefixMapper(num_positions=256, code_dim=64,
                             prefix_length=10, lm_dim=lm.hidden_dim)
    captioner = Captioner(mapper, lm, tokenizer="runs/lgvq/model.keras")
    captioner.compile(optimizer=keras.optimizers.AdamW(1e-3))
    captioner.fit(captioner.prepare_inputs(captions, codes=codes), epochs=5)
    captioner.generate(codes=codes[:4], beam_size=3)

    # No pretrained LM: a 2-block decoder of width 128 trained from scratch.
    mapper = MLPPrefixMapper(256, 64, prefix_length=4, lm_dim=128)
    captioner = Captioner(mapper, "smollm2", decoder="scratch",
                          decoder_config={"hidden_dim": 128})
    ```
    """

    def __init__(self, mapper, language_model="smollm2", tokenizer=None,
                 max_caption_length=32, language_model_training=None,
                 lora_rank=None, decoder="pretrained", decoder_config=None,
                 **kwargs):
        if decoder not in DECODERS:
            raise ValueError(
                f"`decoder` must be one of {list(DECODERS)}; received "
                f"{decoder!r}."
            )
        if decoder == "pretrained":
            if decoder_config is not None:
                raise ValueError(
                    "`decoder_config` describes a scratch decoder; pass "
                    "`decoder='scratch'` with it, or drop it."
                )
            mode = language_model_training or "frozen"
        else:
            if language_model_training not in (None, "full"):
                raise ValueError(
                    "A scratch decoder starts from random weights and must "
                    "train fully: `language_model_training` must be 'full' "
                    f"(or None) with `decoder='scratch'`; received "
                    f"{language_model_training!r}."
                )
            mode = "full"
            language_model = _scratch_language_model(
                language_model, decoder_config
            )
        super().__init__(
            mapper, language_model=language_model, tokenizer=tokenizer,
            language_model_training=mode, lora_rank=lora_rank, **kwargs,
        )
        self.decoder = decoder
        self.max_caption_length = check_int(
            "max_caption_length", max_caption_length, low=2
        )
        self.token_accuracy = keras.metrics.Mean(name="token_accuracy")
        self.built = True

    def prepare_inputs(self, captions, codes=None, code_vectors=None):
        """A training batch dict from captions and codes (numpy arrays).

        Args:
            captions: str or list of str, one per image (non-empty).
            codes: int `(B, h, w)` (or `(B, h, w, S)`) code grids, or
            code_vectors: float `(B, h * w, D)` (exactly one of the two).

        Examples:

        ```python
        data = captioner.prepare_inputs(["a red cube"], codes=codes[:1])
        ```
        """
        images, count = self._image_inputs(codes, code_vectors)
        ids, mask = tokenize_texts(
            self.language_model, captions, self.max_caption_length,
            name="captions", append_stop=True,
        )
        if len(ids) != count:
            raise ValueError(
                f"`captions` has {len(ids)} entries but there are {count} "
                "images; pass one caption per image."
            )
        return {**images, "token_ids": ids, "padding_mask": mask}

    def call(self, inputs, training=False):
        """Teacher-forced next-token logits of the caption tokens.

        Returns:
            float32 `(B, L, language_model.vocabulary_size)`: row `i`
            predicts `token_ids[:, i]`; with a compact decoder vocabulary
            column `j` is tokenizer id `language_model.vocabulary_ids[j]`.
        """
        for key in ("token_ids", "padding_mask"):
            if key not in inputs:
                raise ValueError(
                    f"Captioner batches need `{key}` (see `prepare_inputs`);"
                    f" received keys {sorted(inputs)}."
                )
        prefix = self.prefix(inputs, training=training)
        ids = ops.cast(inputs["token_ids"], "int32")
        mask = ops.cast(inputs["padding_mask"], "int32")
        tokens = self.language_model.embed_tokens(ids[:, :-1])
        embeds = ops.concatenate([prefix, ops.cast(tokens, prefix.dtype)], 1)
        prefix_mask = ops.repeat(
            ops.ones_like(mask[:, :1]), self.prefix_length, axis=1
        )
        lm_mask = ops.concatenate([prefix_mask, mask[:, :-1]], axis=1)
        hidden = self.language_model.hidden_states(
            embeds, padding_mask=lm_mask, training=training
        )
        return self.language_model.logits(hidden[:, self.prefix_length - 1:])

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        # Logits have one column per (compact) vocabulary id.
        targets = self.language_model.to_compact_ids(x["token_ids"])
        loss = masked_code_loss(y_pred, targets, x["padding_mask"])
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        targets = ops.cast(
            self.language_model.to_compact_ids(x["token_ids"]), "int32"
        )
        self.token_accuracy.update_state(
            ops.cast(ops.equal(predicted, targets), "float32"),
            sample_weight=ops.cast(x["padding_mask"], "float32"),
        )
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def generate_ids(self, codes=None, code_vectors=None, max_new_tokens=None,
                     beam_size=1, length_penalty=0.0):
        """Generated caption token ids (stop token excluded).

        Greedy decoding when `beam_size == 1` (the LM's cached greedy loop),
        else beam search (`beam_search`): the sequence with the highest
        total log-probability among those the beam keeps, stop token
        included in the score.

        Args:
            codes: int `(B, h, w)` (or `(B, h, w, S)`), or code_vectors:
                float `(B, h*w, D)`.
            max_new_tokens: int or None. At most this many tokens
                (default `max_caption_length`).
            beam_size: int >= 1.
            length_penalty: float >= 0. Beam scores divided by
                `length ** length_penalty` at the final choice.

        Returns:
            A list of B int32 numpy arrays.

        Examples:

        ```python
        ids = captioner.generate_ids(codes=codes, beam_size=3)
        ```
        """
        if max_new_tokens is None:
            max_new_tokens = self.max_caption_length
        max_new_tokens = check_int("max_new_tokens", max_new_tokens)
        beam_size = check_int("beam_size", beam_size)
        check_number("length_penalty", length_penalty, low=0.0)
        inputs, _ = self._image_inputs(codes, code_vectors)
        prefix = self.prefix(inputs, training=False)
        lm = self.language_model
        stops = list(lm.stop_token_ids)
        if beam_size == 1:
            ids, lengths = lm.greedy_decode(
                prefix, max_new_tokens=max_new_tokens, stop_token_ids=stops
            )
            return [ids[i, : lengths[i]] for i in range(len(ids))]
        batch = int(ops.shape(prefix)[0])
        k = self.prefix_length
        # The beam works on logit columns (compact ids when the decoder has
        # a compact vocabulary); tokens are mapped back to tokenizer ids to
        # embed them and in the result.
        stops = [int(i) for i in lm.to_compact_ids(np.asarray(stops, "int32"))]
        cache = lm.init_cache(batch, k + max_new_tokens)
        hidden, cache = lm.call_with_cache(prefix, cache, 0)
        first = _log_softmax(ops.convert_to_numpy(lm.logits(hidden[:, -1])))
        state = {"cache": ops.repeat(cache, beam_size, axis=0)}

        def step(tokens, parents, count):
            cache = ops.take(state["cache"], parents, axis=0)
            embeds = lm.embed_tokens(lm.to_tokenizer_ids(tokens)[:, None])
            hidden, state["cache"] = lm.call_with_cache(
                embeds, cache, k + count - 1
            )
            return _log_softmax(
                ops.convert_to_numpy(lm.logits(hidden[:, -1]))
            )

        sequences, _ = beam_search(
            first, step, beam_size, max_new_tokens, stop_token_ids=stops,
            length_penalty=length_penalty,
        )
        return [lm.to_tokenizer_ids(seq) for seq in sequences]

    def generate(self, codes=None, code_vectors=None, max_new_tokens=None,
                 beam_size=1, length_penalty=0.0):
        """Captions (list of str) of code grids or code vectors.

        See `generate_ids` for the arguments.

        Examples:

        ```python
        captioner.generate(codes=codes[:4])            # greedy
        captioner.generate(codes=codes[:4], beam_size=5)
        ```
        """
        return [
            self.language_model.decode(ids)
            for ids in self.generate_ids(
                codes, code_vectors, max_new_tokens, beam_size,
                length_penalty,
            )
        ]

    def get_config(self):
        config = super().get_config()
        # A scratch decoder's architecture is in the language model's
        # config (`CausalLM.scratch`), so `decoder_config` is not repeated.
        config.update({"max_caption_length": self.max_caption_length,
                       "decoder": self.decoder})
        return config


def _scratch_language_model(language_model, decoder_config):
    """The scratch decoder of `Captioner(decoder="scratch")`."""
    if isinstance(language_model, dict):
        language_model = keras.layers.deserialize(language_model)
    if isinstance(language_model, (str, os.PathLike)):
        return _load_language_model(language_model, decoder_config or {})
    if isinstance(language_model, CausalLM):
        if decoder_config is not None:
            raise ValueError(
                "`decoder_config` builds a new decoder from a source: pass "
                "`language_model` as a source string (e.g. 'smollm2', whose "
                "tokenizer is used), not a `CausalLM`."
            )
        # A directory source is a decoder restored by `from_preset` (its
        # trained weights live there).
        if language_model.scratch is None and not os.path.isdir(
            language_model.source
        ):
            raise ValueError(
                "`decoder='scratch'` got a pretrained `CausalLM` "
                f"(source {language_model.source!r}). Pass the source "
                "string instead (its tokenizer is used for a new decoder), "
                "or a `CausalLM` built with `scratch=`."
            )
        return language_model
    return _load_language_model(language_model)


def _record_tied_embeddings(backbone, preset_dir):
    """keras-hub 0.32's LlamaBackbone leaves `tie_word_embeddings` out of its
    config, so a tied LM (SmolLM2) would reload untied and fail to load its
    weights; write the flag into `config.json`."""
    from keras_lgvq.models import presets

    tied = getattr(backbone, "tie_word_embeddings", None)
    if tied is None:
        return
    path = os.path.join(preset_dir, presets.BACKBONE_CONFIG_FILE)
    with open(path) as f:
        config = json.load(f)
    config["config"].setdefault("tie_word_embeddings", bool(tied))
    with open(path, "w") as f:
        json.dump(config, f, indent=4)


def _log_softmax(logits):
    logits = np.asarray(logits, "float64")
    logits = logits - logits.max(axis=-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
