"""MaskedLanguageModel: loaders, embeddings-in forward, head, freezing, saving.

The numerics are checked against an independent numpy BERT / RoBERTa
forward pass (written below) over the same safetensors tensors.
"""

import json
import os

import keras
import numpy as np
import pytest
from keras import ops

from keras_lgvq.language_models import MaskedLanguageModel
from keras_lgvq.language_models import splade_assets

SPLADE_FETCH = "python -m keras_lgvq.language_models.splade_assets"
needs_splade = pytest.mark.skipif(
    not splade_assets.is_available(),
    reason=(
        "splade-tiny is not fetched; run "
        f"`{SPLADE_FETCH}` (CI does this in set-up)."
    ),
)
# "[CLS] the capital of france is [MASK] . [SEP]" in bert-base-uncased ids.
SENTENCE = [101, 1996, 3007, 1997, 2605, 2003, 103, 1012, 102]
MASK_POSITION = 6


# ------------------------------------------------------ numpy reference
def _layer_norm(x, gamma, beta, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _gelu(x, kind):
    if kind == "tanh":
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    from math import erf

    return 0.5 * x * (1 + np.vectorize(erf)(x / np.sqrt(2)))


def _normalized(tensors):
    out = {}
    for key, value in tensors.items():
        for prefix in ("bert.", "roberta."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        key = key.replace("LayerNorm.gamma", "LayerNorm.weight")
        key = key.replace("LayerNorm.beta", "LayerNorm.bias")
        out[key] = np.asarray(value, "float64")
    return out


def numpy_mlm(tensors, config, inputs_embeds, mask=None, gelu="tanh"):
    """Hugging Face BertForMaskedLM / RobertaForMaskedLM on input embeddings.

    Returns (embedding output, last hidden states, logits).
    """
    t = _normalized(tensors)
    arch = config["model_type"]
    eps = config["layer_norm_eps"]
    heads = config["num_attention_heads"]
    x = np.asarray(inputs_embeds, "float64")
    batch, length, hidden = x.shape
    offset = 2 if arch == "roberta" else 0
    x = (
        x
        + t["embeddings.position_embeddings.weight"][offset : offset + length]
        + t["embeddings.token_type_embeddings.weight"][0]
    )
    x = _layer_norm(
        x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"], eps
    )
    embedded = x
    if mask is None:
        mask = np.ones((batch, length))
    bias = (1.0 - np.asarray(mask, "float64"))[:, None, None, :] * -1e9
    dh = hidden // heads
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def lin(v, name, p=p):
            return v @ t[p + name + ".weight"].T + t[p + name + ".bias"]

        q, k, v = (
            lin(x, f"attention.self.{n}").reshape(batch, length, heads, dh)
            for n in ("query", "key", "value")
        )
        scores = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(dh) + bias
        scores = scores - scores.max(-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(-1, keepdims=True)
        attn = np.einsum("bhqk,bkhd->bqhd", probs, v).reshape(x.shape)
        x = _layer_norm(
            x + lin(attn, "attention.output.dense"),
            t[p + "attention.output.LayerNorm.weight"],
            t[p + "attention.output.LayerNorm.bias"],
            eps,
        )
        h = _gelu(lin(x, "intermediate.dense"), gelu)
        x = _layer_norm(
            x + lin(h, "output.dense"),
            t[p + "output.LayerNorm.weight"],
            t[p + "output.LayerNorm.bias"],
            eps,
        )
    if arch == "bert":
        dense, norm = "cls.predictions.transform.dense", (
            "cls.predictions.transform.LayerNorm"
        )
        out_bias, decoder = "cls.predictions.bias", "cls.predictions.decoder"
    else:
        dense, norm = "lm_head.dense", "lm_head.layer_norm"
        out_bias, decoder = "lm_head.bias", "lm_head.decoder"
    h = x @ t[dense + ".weight"].T + t[dense + ".bias"]
    # The MLM head's GELU is the exact one in both libraries.
    h = _gelu(h, "erf")
    h = _layer_norm(h, t[norm + ".weight"], t[norm + ".bias"], eps)
    table = t.get(decoder + ".weight", t["embeddings.word_embeddings.weight"])
    logits = h @ table.T + t[out_bias]
    return embedded, x, logits


def _load_safetensors(directory):
    from safetensors.numpy import load_file

    with open(os.path.join(directory, "config.json")) as f:
        config = json.load(f)
    return load_file(os.path.join(directory, "model.safetensors")), config


# --------------------------------------------- tiny synthetic checkpoints
BERT_VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "red", "bird",
    "sing", "##s", "on", "the", "tree", ".", "blue", "sky",
]
ROBERTA_VOCAB = [
    "<s>", "<pad>", "</s>", "<unk>", "a", "Ġred", "Ġbird", "Ġsing", "s",
    "Ġon", "Ġthe", "Ġtree", ".", "Ġblue", "Ġsky", "<mask>",
]


def write_tiny_checkpoint(directory, arch="bert", head=True, tied=True,
                          vocabulary=None, hidden=16, heads=2, layers=2,
                          seed=0):
    """A random BERT / RoBERTa MLM in the Hugging Face file layout."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)

    def normal(*shape, scale=0.3):
        return (rng.standard_normal(shape) * scale).astype("float32")

    if vocabulary is None:
        vocabulary = BERT_VOCAB if arch == "bert" else ROBERTA_VOCAB
    vocab, positions, intermediate = len(vocabulary), 24, 2 * hidden
    eps = 1e-12 if arch == "bert" else 1e-5
    prefix = "bert." if arch == "bert" else "roberta."
    t = {
        "embeddings.word_embeddings.weight": normal(vocab, hidden),
        "embeddings.position_embeddings.weight": normal(positions, hidden),
        "embeddings.token_type_embeddings.weight": normal(
            2 if arch == "bert" else 1, hidden
        ),
        # Old gamma / beta spelling for the embedding LayerNorm.
        "embeddings.LayerNorm.gamma": 1.0 + normal(hidden),
        "embeddings.LayerNorm.beta": normal(hidden),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            t[p + f"attention.self.{name}.weight"] = normal(hidden, hidden)
            t[p + f"attention.self.{name}.bias"] = normal(hidden)
        for name, shape in (
            ("attention.output.dense", (hidden, hidden)),
            ("intermediate.dense", (intermediate, hidden)),
            ("output.dense", (hidden, intermediate)),
        ):
            t[p + name + ".weight"] = normal(*shape)
            t[p + name + ".bias"] = normal(shape[0])
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[p + name + ".weight"] = 1.0 + normal(hidden)
            t[p + name + ".bias"] = normal(hidden)
    t = {prefix + k: v for k, v in t.items()}
    if head:
        if arch == "bert":
            names = ("cls.predictions.transform.dense",
                     "cls.predictions.transform.LayerNorm",
                     "cls.predictions.bias", "cls.predictions.decoder")
        else:
            names = ("lm_head.dense", "lm_head.layer_norm", "lm_head.bias",
                     "lm_head.decoder")
        t[names[0] + ".weight"] = normal(hidden, hidden)
        t[names[0] + ".bias"] = normal(hidden)
        t[names[1] + ".weight"] = 1.0 + normal(hidden)
        t[names[1] + ".bias"] = normal(hidden)
        t[names[2]] = normal(vocab)
        if not tied:
            t[names[3] + ".weight"] = normal(vocab, hidden)
    os.makedirs(directory, exist_ok=True)
    save_file(t, os.path.join(directory, "model.safetensors"))
    config = {
        "model_type": arch,
        "vocab_size": vocab,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": intermediate,
        "max_position_embeddings": positions,
        "type_vocab_size": 2 if arch == "bert" else 1,
        "layer_norm_eps": eps,
        "hidden_act": "gelu",
    }
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f)
    if arch == "bert":
        with open(os.path.join(directory, "vocab.txt"), "w") as f:
            f.write("\n".join(vocabulary) + "\n")
    else:
        with open(os.path.join(directory, "vocab.json"), "w") as f:
            json.dump({tok: i for i, tok in enumerate(vocabulary)}, f)
        with open(os.path.join(directory, "merges.txt"), "w") as f:
            f.write("#version: 0.2\nĠ r\n")
    return t, config


def _np(x):
    return ops.convert_to_numpy(x)


def _tiny_random(**kwargs):
    args = dict(vocabulary_size=24, hidden_dim=16, num_layers=2, num_heads=2,
                intermediate_dim=32, max_sequence_length=16, seed=3)
    args.update(kwargs)
    return MaskedLanguageModel.random(**args)


@pytest.fixture(scope="module")
def splade():
    if not splade_assets.is_available():
        pytest.skip(f"splade-tiny is not fetched; run `{SPLADE_FETCH}`.")
    return MaskedLanguageModel.from_name_or_path("splade-tiny")


# --------------------------------------------------------------- splade
@needs_splade
def test_splade_logits_match_numpy_bert(splade):
    tensors, config = _load_safetensors(splade_assets.splade_dir())
    ids = np.asarray([SENTENCE], "int32")
    table = _np(splade.token_embedding_matrix())
    np.testing.assert_array_equal(
        table, tensors["bert.embeddings.word_embeddings.weight"]
    )
    out = splade(table[ids])
    embedded, hidden, logits = numpy_mlm(tensors, config, table[ids])
    np.testing.assert_allclose(
        _np(out["layer_outputs"][0]), embedded, atol=2e-5
    )
    np.testing.assert_allclose(_np(out["hidden_states"]), hidden, atol=1e-4)
    np.testing.assert_allclose(_np(out["logits"]), logits, atol=5e-4,
                               rtol=1e-4)
    assert len(out["layer_outputs"]) == config["num_hidden_layers"] + 1
    np.testing.assert_array_equal(
        _np(out["layer_outputs"][-1]), _np(out["hidden_states"])
    )
    # Hugging Face's exact-erf GELU: the documented keras-hub deviation.
    _, _, exact = numpy_mlm(tensors, config, table[ids], gelu="erf")
    assert np.abs(_np(out["logits"]) - exact).max() < 0.05


@needs_splade
def test_splade_mask_prediction(splade):
    tensors, config = _load_safetensors(splade_assets.splade_dir())
    ids = np.asarray([SENTENCE], "int32")
    logits = _np(splade(splade.embed_tokens(ids))["logits"])[0, MASK_POSITION]
    assert np.isfinite(logits).all()
    assert logits.shape == (30522,)
    table = tensors["bert.embeddings.word_embeddings.weight"]
    _, _, reference = numpy_mlm(tensors, config, table[ids])
    top = np.argsort(-logits)[:10]
    assert set(top) == set(np.argsort(-reference[0, MASK_POSITION])[:10])
    # Ordinary word pieces, not special or unused slots.
    words = splade.id_to_token(top)
    assert not set(top) & set(splade.special_token_ids)
    assert not any(w.startswith("[") for w in words)
    # A different context changes the prediction.
    other = list(SENTENCE)
    other[1:6] = [1996, 2158, 2253, 2000, 1996]  # "the man went to the"
    other_logits = _np(splade(splade.embed_tokens([other]))["logits"])
    assert set(np.argsort(-other_logits[0, MASK_POSITION])[:10]) != set(top)


@needs_splade
def test_splade_attributes_and_text(splade):
    assert splade.vocabulary_size == 30522
    assert splade.hidden_dim == 128
    assert splade.mask_token_id == 103
    assert splade.pad_token_id == 0
    assert splade.special_token_ids == (0, 100, 101, 102, 103)
    assert splade.has_pretrained_head
    assert splade.architecture == "bert"
    assert tuple(splade.token_embedding_matrix().shape) == (30522, 128)
    assert splade.id_to_token(103) == "[MASK]"
    text = "the birds sing on a tree"
    ids = np.asarray(splade.tokenizer(text))
    assert splade.detokenize(ids) == text
    assert splade.detokenize(SENTENCE) == (
        "[CLS] the capital of france is [MASK] . [SEP]"
    )
    assert splade.detokenize([SENTENCE, SENTENCE])[1].startswith("[CLS] the")


@needs_splade
def test_splade_embeddings_equal_ids_and_save(splade, tmp_path):
    ids = np.asarray([SENTENCE, SENTENCE[::-1]], "int32")
    mask = np.ones_like(ids)
    mask[1, -3:] = 0
    out = splade(splade.embed_tokens(ids), padding_mask=mask)
    ref = splade.backbone(
        {"token_ids": ids, "segment_ids": np.zeros_like(ids),
         "padding_mask": mask}
    )["sequence_output"]
    np.testing.assert_allclose(_np(out["hidden_states"]), _np(ref), atol=1e-6)
    # Saved file holds no frozen weights; reload re-reads them.
    inputs = keras.Input((len(SENTENCE), 128))
    model = keras.Model(inputs, splade(inputs)["logits"])
    path = str(tmp_path / "splade.keras")
    model.save(path)
    assert os.path.getsize(path) < 200_000
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = _np(splade.embed_tokens(ids[:1]))
    np.testing.assert_allclose(
        _np(loaded(x)), _np(model(x)), atol=1e-5
    )


# -------------------------------------------------- embeddings vs ids
@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_embeddings_in_equals_backbone_on_ids(arch):
    lm = _tiny_random(architecture=arch)
    ids = np.asarray([[2, 5, 7, 9, 11, 3, 0, 0], [4, 4, 6, 8, 10, 12, 14, 3]],
                     "int32")
    mask = (ids != 0).astype("int32")
    mask[1] = 1
    out = lm(ops.take(lm.token_embedding_matrix(), ids, axis=0), mask)
    inputs = {"token_ids": ids, "padding_mask": mask}
    if arch == "bert":
        inputs["segment_ids"] = np.zeros_like(ids)
        ref = lm.backbone(inputs)["sequence_output"]
    else:
        ref = lm.backbone(inputs)
    np.testing.assert_allclose(_np(out["hidden_states"]), _np(ref), atol=1e-6)
    # The head is keras-hub's MaskedLMHead on every position.
    positions = np.tile(np.arange(ids.shape[1], dtype="int32"), (2, 1))
    head = lm.masked_lm_head(out["hidden_states"], mask_positions=positions)
    np.testing.assert_allclose(_np(out["logits"]), _np(head), atol=1e-6)
    assert tuple(out["logits"].shape) == (2, 8, 24)
    assert len(out["layer_outputs"]) == 3


def test_random_is_reproducible_and_seeded():
    x = np.random.default_rng(0).normal(size=(2, 5, 16)).astype("float32")
    a = _np(_tiny_random(seed=1)(x)["logits"])
    b = _np(_tiny_random(seed=1)(x)["logits"])
    c = _np(_tiny_random(seed=2)(x)["logits"])
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


# ---------------------------------------------------- Hugging Face dirs
@pytest.mark.parametrize("arch", ["bert", "roberta"])
@pytest.mark.parametrize("tied", [True, False])
def test_hf_directory_matches_numpy(arch, tied, tmp_path):
    directory = str(tmp_path / arch)
    tensors, config = write_tiny_checkpoint(directory, arch=arch, tied=tied)
    lm = MaskedLanguageModel.from_name_or_path(directory)
    assert lm.architecture == arch
    assert lm.has_pretrained_head
    assert lm.trainable_weights == []
    vocab = BERT_VOCAB if arch == "bert" else ROBERTA_VOCAB
    mask_token = "[MASK]" if arch == "bert" else "<mask>"
    assert lm.mask_token_id == vocab.index(mask_token)
    assert lm.pad_token_id == vocab.index("[PAD]" if arch == "bert" else "<pad>")
    ids = np.asarray([[2, 5, 6, 7, lm.mask_token_id, 13, 3],
                      [2, 14, 15, 10, 11, 12, 3]], "int32")
    mask = np.ones_like(ids)
    mask[1, -2:] = 0
    table = _np(lm.token_embedding_matrix())
    out = lm(table[ids], mask)
    gelu = "tanh" if arch == "bert" else "erf"
    embedded, hidden, logits = numpy_mlm(tensors, config, table[ids], mask,
                                         gelu=gelu)
    np.testing.assert_allclose(_np(out["layer_outputs"][0]), embedded,
                               atol=1e-5)
    np.testing.assert_allclose(_np(out["hidden_states"]), hidden, atol=1e-4)
    np.testing.assert_allclose(_np(out["logits"]), logits, atol=2e-4)


def test_hf_directory_texts(tmp_path):
    bert_dir, roberta_dir = str(tmp_path / "b"), str(tmp_path / "r")
    write_tiny_checkpoint(bert_dir, arch="bert")
    write_tiny_checkpoint(roberta_dir, arch="roberta")
    bert = MaskedLanguageModel.from_name_or_path(bert_dir)
    assert bert.detokenize([6, 7, 8, 9]) == "red bird sings"
    assert list(bert.id_to_token([[4, 5]])[0]) == ["[MASK]", "a"]
    roberta = MaskedLanguageModel.from_name_or_path(roberta_dir)
    assert roberta.detokenize([4, 5, 6, 7, 8, 12]) == "a red bird sings."
    assert roberta.special_token_ids == (0, 1, 2, 3, 15)
    assert roberta.mask_token_id == 15


def test_hf_directory_without_head_trains_only_the_head(tmp_path):
    directory = str(tmp_path / "nohead")
    write_tiny_checkpoint(directory, arch="bert", head=False)
    lm = MaskedLanguageModel.from_name_or_path(directory)
    assert not lm.has_pretrained_head
    trainable = {id(v) for v in lm.trainable_weights}
    assert trainable == {id(v) for v in lm._head_variables}
    assert len(trainable) == 5
    frozen = {id(v) for v in lm.backbone.weights}
    assert not frozen & trainable


# ------------------------------------------------------ keras-hub preset
def _keras_hub_bert(tmp_path, with_task):
    import keras_hub

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(BERT_VOCAB), num_layers=1, num_heads=2,
        hidden_dim=8, intermediate_dim=16, max_sequence_length=12,
    )
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=BERT_VOCAB)
    directory = str(tmp_path / "preset")
    if with_task:
        preprocessor = keras_hub.models.BertMaskedLMPreprocessor(
            tokenizer, sequence_length=12
        )
        task = keras_hub.models.BertMaskedLM(backbone, preprocessor)
        # Non-trivial head values, so a wrong head would show.
        rng = np.random.default_rng(0)
        for v in task.masked_lm_head.weights:
            if v is not backbone.token_embedding.embeddings:
                v.assign(rng.normal(size=v.shape).astype("float32"))
        task.save_to_preset(directory)
        return directory, task
    backbone.save_to_preset(directory)
    tokenizer.save_to_preset(directory)
    return directory, backbone


def test_keras_hub_preset_with_masked_lm_task(tmp_path):
    directory, task = _keras_hub_bert(tmp_path, with_task=True)
    lm = MaskedLanguageModel.from_name_or_path(directory)
    assert lm.has_pretrained_head
    ids = np.asarray([[2, 5, 6, 4, 3]], "int32")
    out = lm(lm.embed_tokens(ids))
    positions = np.arange(5, dtype="int32")[None]
    expected = task({"token_ids": ids, "segment_ids": np.zeros_like(ids),
                     "padding_mask": np.ones_like(ids),
                     "mask_positions": positions})
    np.testing.assert_allclose(_np(out["logits"]), _np(expected), atol=1e-5)
    assert lm.mask_token_id == 4
    assert lm.detokenize([6, 7, 8, 9]) == "red bird sings"


def test_keras_hub_backbone_preset_gets_a_trainable_head(tmp_path):
    directory, _ = _keras_hub_bert(tmp_path, with_task=False)
    lm = MaskedLanguageModel.from_name_or_path(directory)
    assert not lm.has_pretrained_head
    assert len(lm.trainable_weights) == 5


# ------------------------------------------------------------ frozen
class ProbeModel(keras.Model):
    """Dense -> frozen masked LM -> summed logits (a loss through the LM)."""

    def __init__(self, lm, **kwargs):
        super().__init__(**kwargs)
        self.proj = keras.layers.Dense(lm.hidden_dim)
        self.lm = lm

    def call(self, x):
        return ops.mean(self.lm(self.proj(x))["logits"], axis=(1, 2))


@pytest.mark.parametrize("pretrained_head", [True, False])
def test_frozen_lm_gets_no_update(pretrained_head):
    lm = _tiny_random(has_pretrained_head=pretrained_head)
    model = ProbeModel(lm)
    x = np.random.default_rng(0).normal(size=(4, 6, 5)).astype("float32")
    y = np.full((4,), 3.0, "float32")
    model(x)
    before_lm = [_np(v).copy() for v in lm.backbone.weights]
    before_head = [_np(v).copy() for v in lm._head_variables]
    before_proj = _np(model.proj.kernel).copy()
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    model.fit(x, y, epochs=1, batch_size=2, verbose=0)
    for a, v in zip(before_lm, lm.backbone.weights):
        np.testing.assert_array_equal(a, _np(v))
    head_changed = any(
        not np.array_equal(a, _np(v))
        for a, v in zip(before_head, lm._head_variables)
    )
    assert head_changed == (not pretrained_head)
    # The loss reached the layer before the LM: gradients flow through it.
    assert np.abs(_np(model.proj.kernel) - before_proj).max() > 0
    expected = 0 if pretrained_head else 5
    assert len(lm.trainable_weights) == expected
    assert len(model.trainable_weights) == 2 + expected


# ------------------------------------------------------------ save / load
def test_keras_round_trip_random_and_trainable_head(tmp_path):
    lm = _tiny_random(has_pretrained_head=False, architecture="roberta")
    # Trained head values must survive the round trip.
    rng = np.random.default_rng(1)
    for v in lm._head_variables:
        v.assign(rng.normal(size=v.shape).astype("float32"))
    inputs = keras.Input((5, 16))
    model = keras.Model(inputs, lm(inputs)["logits"])
    path = str(tmp_path / "lm.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = rng.normal(size=(2, 5, 16)).astype("float32")
    np.testing.assert_allclose(_np(loaded(x)), _np(model(x)), atol=1e-6)
    inner = [l for l in loaded.layers if isinstance(l, MaskedLanguageModel)]
    assert inner[0].get_config()["random_config"]["seed"] == 3
    assert inner[0].architecture == "roberta"


def test_config_round_trip_hf_dir(tmp_path):
    directory = str(tmp_path / "bert")
    write_tiny_checkpoint(directory)
    lm = MaskedLanguageModel.from_name_or_path(directory, name="lm")
    clone = MaskedLanguageModel.from_config(lm.get_config())
    x = np.random.default_rng(0).normal(size=(1, 4, 16)).astype("float32")
    np.testing.assert_array_equal(_np(clone(x)["logits"]), _np(lm(x)["logits"]))
    assert clone.name == "lm"


# ------------------------------------------------------------ bad inputs
def test_bad_inputs_raise_clear_errors(tmp_path):
    lm = _tiny_random()
    with pytest.raises(ValueError, match="hidden size"):
        lm(np.zeros((1, 4, 8), "float32"))
    with pytest.raises(ValueError, match="position embeddings"):
        lm(np.zeros((1, 17, 16), "float32"))
    with pytest.raises(ValueError, match="padding_mask"):
        lm(np.zeros((1, 4, 16), "float32"), np.ones((1, 5)))
    with pytest.raises(ValueError, match="no vocabulary"):
        lm.id_to_token([1])
    assert lm.mask_token_id == 23 and lm.pad_token_id == 0
    with pytest.raises(ValueError, match="no mask token"):
        _tiny_random(vocabulary=["[PAD]"] + [f"t{i}" for i in range(23)])
    with pytest.raises(ValueError, match="vocabulary_size"):
        _tiny_random(vocabulary=BERT_VOCAB)
    with pytest.raises(ValueError, match="num_heads"):
        _tiny_random(num_heads=3)
    with pytest.raises(ValueError, match="hidden_dim"):
        _tiny_random(hidden_dim=0)
    with pytest.raises(ValueError, match="architecture"):
        _tiny_random(architecture="gpt2")
    named = _tiny_random(vocabulary=BERT_VOCAB + [f"x{i}" for i in range(8)])
    with pytest.raises(ValueError, match=r"\[0, 24\)"):
        named.id_to_token([24])
    with pytest.raises(ValueError, match="integer"):
        named.id_to_token([1.5])
    with pytest.raises(ValueError, match="1-D"):
        named.detokenize(np.zeros((1, 1, 1), "int32"))
    with pytest.raises(ValueError, match="exactly one"):
        MaskedLanguageModel()
    with pytest.raises(FileNotFoundError, match="no such directory"):
        MaskedLanguageModel.from_name_or_path(str(tmp_path / "missing"))


def test_bad_checkpoints(tmp_path):
    no_mask = str(tmp_path / "nomask")
    vocabulary = [t if t != "[MASK]" else "[MSK]" for t in BERT_VOCAB]
    write_tiny_checkpoint(no_mask, vocabulary=vocabulary)
    with pytest.raises(ValueError, match=r"no mask token '\[MASK\]'"):
        MaskedLanguageModel.from_name_or_path(no_mask)
    no_weights = str(tmp_path / "noweights")
    write_tiny_checkpoint(no_weights)
    os.remove(os.path.join(no_weights, "model.safetensors"))
    with pytest.raises(FileNotFoundError, match="noweights"):
        MaskedLanguageModel.from_name_or_path(no_weights)
    gpt = str(tmp_path / "gpt")
    write_tiny_checkpoint(gpt)
    with open(os.path.join(gpt, "config.json"), "w") as f:
        json.dump({"model_type": "gpt2"}, f)
    with pytest.raises(ValueError, match="model_type 'gpt2'"):
        MaskedLanguageModel.from_name_or_path(gpt)
    no_vocab = str(tmp_path / "novocab")
    write_tiny_checkpoint(no_vocab)
    os.remove(os.path.join(no_vocab, "vocab.txt"))
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        MaskedLanguageModel.from_name_or_path(no_vocab)


def test_missing_splade_names_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_LGVQ_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        MaskedLanguageModel.from_name_or_path("splade-tiny")
    assert SPLADE_FETCH in str(info.value)
    assert str(tmp_path) in str(info.value)


def test_minilm_has_a_trainable_head_and_matches_keras_hub_converter():
    import keras_hub

    from keras_lgvq.text_priors import minilm_assets

    if not minilm_assets.is_available():
        pytest.skip(
            f"MiniLM is not fetched; run `{minilm_assets.fetch_command()}`."
        )
    lm = MaskedLanguageModel.from_name_or_path("minilm")
    assert not lm.has_pretrained_head
    assert (lm.hidden_dim, lm.vocabulary_size, lm.mask_token_id) == (
        384, 30522, 103
    )
    assert len(lm.trainable_weights) == 5
    # The manual safetensors mapping equals keras-hub's own BERT converter.
    reference = keras_hub.models.BertBackbone.from_preset(
        minilm_assets.minilm_dir(), dtype="float32"
    )
    ids = np.asarray([SENTENCE], "int32")
    want = reference(
        {"token_ids": ids, "segment_ids": np.zeros_like(ids),
         "padding_mask": np.ones_like(ids)}
    )["sequence_output"]
    got = lm(lm.embed_tokens(ids))["hidden_states"]
    np.testing.assert_allclose(_np(got), _np(want), atol=1e-5)
