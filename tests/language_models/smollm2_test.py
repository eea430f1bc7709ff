"""The real SmolLM2-135M-Instruct GGUF through keras-hub's LlamaBackbone.

These tests need the offline asset (CI fetches it with
`python -m keras_lgvq.fetch_assets`). Without it they FAIL with the fetch
command: a missing language model is a set-up error, not a reason to skip.
The model is loaded once per module.
"""

import numpy as np
import pytest
from keras import ops

from keras_lgvq.language_models import CausalLM
from keras_lgvq.language_models import load_causal_lm
from keras_lgvq.language_models import smollm2_assets
from tests.language_models import llama_numpy_reference as ref

PROMPT = "The capital of France is"
# Published SmolLM2-135M architecture (Hugging Face config.json).
SMOLLM2_135M = {
    "vocabulary_size": 49152,
    "num_layers": 30,
    "num_query_heads": 9,
    "num_key_value_heads": 3,
    "hidden_dim": 576,
    "intermediate_dim": 1536,
    "rope_max_wavelength": 100000.0,
    "layer_norm_epsilon": 1e-5,
}
TEXTS = [
    PROMPT,
    "A small red bird with white wingbars and grey feet.",
    "(hello) world  2024 items\n\nnew para",
    "I'll say it's 3.14, isn't it? They've 12 cats; we'd 7.",
    "tabs\tand   spaces   end  ",
    "naïve café 😀 — ünïcödé ДОМ 東京",
    "<|im_start|>user\nWhat colour is the cube?<|im_end|>\n",
    "x=10; y = [1, 2, 3]  # code\n    return x",
]


def _require_asset():
    if not smollm2_assets.is_available():
        pytest.fail(
            "The SmolLM2 language-model asset is missing from the keras_lgvq "
            f"cache ({smollm2_assets.smollm2_dir()}). Fetch it with:\n    "
            f"{smollm2_assets.fetch_command()}\n(or `python -m "
            "keras_lgvq.fetch_assets`, which scripts/test.sh runs).",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def lm():
    _require_asset()
    return load_causal_lm("smollm2", dtype="float32")


@pytest.fixture(scope="module")
def gguf_tensors():
    """The GGUF tensors, dequantized here with `gguf` (not the package)."""
    _require_asset()
    import gguf

    reader = gguf.GGUFReader(smollm2_assets.require_gguf(), "r")
    tensors = {
        t.name: gguf.quants.dequantize(t.data, t.tensor_type)
        for t in reader.tensors
    }
    fields = reader.fields
    tokens = fields["tokenizer.ggml.tokens"].contents()
    merges = fields["tokenizer.ggml.merges"].contents()
    types = fields["tokenizer.ggml.token_type"].contents()
    return tensors, tokens, merges, types


def _np(x):
    return ops.convert_to_numpy(x)


def test_config_read_from_metadata(lm):
    config = lm.backbone.get_config()
    for key, value in SMOLLM2_135M.items():
        assert config[key] == pytest.approx(value), key
    assert lm.backbone.tie_word_embeddings
    assert lm.backbone.count_params() == 134_515_008
    assert lm.max_sequence_length == 8192
    # Frozen by default: nothing trainable.
    assert not lm.trainable and not lm.trainable_weights
    assert lm.get_config()["source"] == "smollm2"


def test_greedy_continuation_is_paris(lm):
    assert lm.generate_greedy(PROMPT, max_new_tokens=2).startswith(" Paris")


def test_logits_match_independent_numpy_forward(lm, gguf_tensors):
    tensors = gguf_tensors[0]
    ids = lm.encode(PROMPT)
    got = _np(lm.logits(lm.hidden_states(lm.embed_tokens(ids[None]))))[0]
    want = ref.llama_cpp_forward(tensors, SMOLLM2_135M, ids)
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, atol=2e-4 * scale, rtol=0)
    # The reference itself reproduces the expected answer ...
    assert lm.tokenizer.id_to_token(int(want[-1].argmax())) == "ĠParis"
    # ... and the tolerance is discriminating: a loader that forgot to
    # un-permute Q/K rows (rotate-half RoPE on the raw GGUF rows) is far off.
    wrong = ref.rotate_half_forward(tensors, SMOLLM2_135M, ids)
    assert np.abs(got - wrong).max() > 100 * np.abs(got - want).max()


def test_tokenizer_matches_reference_bpe_and_round_trips(lm, gguf_tensors):
    _, tokens, merges, types = gguf_tensors
    control = [t for t, kind in zip(tokens, types) if kind == 3]
    reference = ref.ReferenceBPE(tokens, merges, control, split_digits=True)
    for text in TEXTS:
        ids = lm.encode(text)
        assert ids.tolist() == reference.encode(text), text
        assert lm.decode(ids) == text
    assert [lm.tokenizer.id_to_token(int(i)) for i in lm.encode(PROMPT)] == [
        "The", "Ġcapital", "Ġof", "ĠFrance", "Ġis"
    ]
    # Digits are single tokens (SmolLM's pre-tokenizer), control tokens whole.
    assert len(lm.encode("2024")) == 4
    assert lm.encode("<|im_end|>").tolist() == [lm.tokenizer.end_token_id]
    assert lm.tokenizer.end_token_id == 2 and lm.tokenizer.start_token_id == 1


def test_tokenizer_in_tf_data_matches_eager(lm):
    import tensorflow as tf

    texts = [t for t in TEXTS[:4] if "  2" not in t] + [
        "a large blue cube left of 3 small spheres"
    ]
    # One batch: a single trace of keras-hub's TensorFlow BPE graph.
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(len(texts))
    batch = next(iter(dataset.map(lm.tokenizer)))
    for text, ids in zip(texts, batch.to_list()):
        assert ids == lm.encode(text).tolist(), text


def test_embeddings_forward_equals_token_forward(lm):
    first, second = lm.encode(PROMPT), lm.encode("A red bird sat on the")
    n = min(len(first), len(second))
    ids = np.stack([first[:n], second[:n]])
    mask = np.ones_like(ids)
    from_ids = _np(lm.backbone({"token_ids": ids, "padding_mask": mask}))
    from_embeds = _np(lm(lm.embed_tokens(ids), padding_mask=mask))
    np.testing.assert_allclose(from_embeds, from_ids, atol=1e-5, rtol=0)


def test_prefix_and_right_padding(lm):
    rng = np.random.default_rng(0)
    prefix = rng.normal(0, 0.05, (1, 4, lm.hidden_dim)).astype("float32")
    short = lm.encode("a bird")
    longer = lm.encode("a bird with red wings")
    pad = len(longer) - len(short)
    rows = np.stack([np.pad(short, (0, pad)), longer])
    embeds = ops.concatenate(
        [ops.repeat(prefix, 2, axis=0), lm.embed_tokens(rows)], axis=1
    )
    mask = np.ones((2, 4 + len(longer)), "int32")
    mask[0, 4 + len(short):] = 0
    batched = _np(lm.hidden_states(embeds, padding_mask=mask))
    alone = _np(
        lm.hidden_states(
            ops.concatenate([prefix, lm.embed_tokens(short[None])], axis=1)
        )
    )
    n = 4 + len(short)
    np.testing.assert_allclose(batched[0, :n], alone[0], atol=1e-4, rtol=0)
    # The prefix changes what follows (it is not ignored).
    plain = _np(lm.hidden_states(lm.embed_tokens(short[None])))
    assert np.abs(plain[0, -1] - alone[0, -1]).max() > 1e-2


def test_cached_greedy_equals_uncached_argmax(lm):
    rng = np.random.default_rng(1)
    prefix = rng.normal(0, 0.05, (2, 3, lm.hidden_dim)).astype("float32")
    prompt = lm.embed_tokens(np.tile(lm.encode("A photo of")[None], (2, 1)))
    context = ops.concatenate([prefix, prompt], axis=1)
    ids, lengths = lm.greedy_decode(context, max_new_tokens=3,
                                    stop_token_ids=[])
    assert ids.shape == (2, 3) and lengths.tolist() == [3, 3]
    sequence = context
    for step in range(3):
        logits = _np(lm.logits(lm.hidden_states(sequence)))[:, -1]
        expected = logits.argmax(-1)
        assert ids[:, step].tolist() == expected.tolist()
        sequence = ops.concatenate(
            [sequence, lm.embed_tokens(expected[:, None].astype("int32"))],
            axis=1,
        )


def test_bad_inputs(lm):
    with pytest.raises(ValueError, match="inputs_embeds"):
        lm.hidden_states(np.zeros((1, 3, 8), "float32"))
    with pytest.raises(ValueError, match="padding_mask"):
        lm.hidden_states(
            np.zeros((1, 3, lm.hidden_dim), "float32"),
            padding_mask=np.ones((1, 4)),
        )
    with pytest.raises(ValueError, match="prompts"):
        lm.generate_greedy([""])
    with pytest.raises(ValueError, match="max_new_tokens"):
        lm.greedy_decode(np.zeros((1, 2, lm.hidden_dim), "float32"), 0)
    with pytest.raises(ValueError, match="context length"):
        lm.greedy_decode(np.zeros((1, 2, lm.hidden_dim), "float32"), 9000)
    assert isinstance(lm, CausalLM)
