"""The GGUF -> LlamaBackbone loader on tiny synthetic GGUF files.

The files are written here with `gguf.GGUFWriter` from weights in Hugging
Face order, Q/K rows permuted the way llama.cpp's converter does; loading
must give back a model whose logits match the numpy references.
"""

import os

import numpy as np
import pytest
from keras import ops

from keras_lgvq.language_models import CausalLM
from keras_lgvq.language_models import gguf_llama
from tests.language_models import llama_numpy_reference as ref

CONFIG = {
    "num_layers": 2,
    "hidden_dim": 16,
    "intermediate_dim": 24,
    "num_query_heads": 4,
    "num_key_value_heads": 2,
    "rope_max_wavelength": 1000.0,
    "layer_norm_epsilon": 1e-5,
}
TOKENS = ["<|endoftext|>", "<|im_end|>", "a", "b", "Ġ", "1", "2", "ab", "Ġab"]
MERGES = ["a b", "Ġ ab"]


def _hf_weights(rng, tied):
    h, f = CONFIG["hidden_dim"], CONFIG["intermediate_dim"]
    kv = CONFIG["num_key_value_heads"] * h // CONFIG["num_query_heads"]
    v = len(TOKENS)

    def normal(*shape):
        return rng.normal(0, 0.3, shape).astype("float32")

    w = {"token_embd.weight": normal(v, h),
         "output_norm.weight": 1 + normal(h)}
    if not tied:
        w["output.weight"] = normal(v, h)
    for i in range(CONFIG["num_layers"]):
        p = f"blk.{i}."
        w.update({
            p + "attn_norm.weight": 1 + normal(h),
            p + "ffn_norm.weight": 1 + normal(h),
            p + "attn_q.weight": normal(h, h),
            p + "attn_k.weight": normal(kv, h),
            p + "attn_v.weight": normal(kv, h),
            p + "attn_output.weight": normal(h, h),
            p + "ffn_gate.weight": normal(f, h),
            p + "ffn_up.weight": normal(f, h),
            p + "ffn_down.weight": normal(h, f),
        })
    return w


def _to_gguf_layout(hf):
    """llama.cpp's converter: permute Q/K rows, everything else as is."""
    out = dict(hf)
    for name in hf:
        if name.endswith("attn_q.weight"):
            out[name] = ref.llama_cpp_permute(hf[name],
                                              CONFIG["num_query_heads"])
        elif name.endswith("attn_k.weight"):
            out[name] = ref.llama_cpp_permute(hf[name],
                                              CONFIG["num_key_value_heads"])
    return out


def write_gguf(path, tensors, arch="llama", tokenizer_model="gpt2",
               pre="smollm", skip=()):
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(CONFIG["num_layers"])
    writer.add_context_length(64)
    writer.add_embedding_length(CONFIG["hidden_dim"])
    writer.add_feed_forward_length(CONFIG["intermediate_dim"])
    writer.add_head_count(CONFIG["num_query_heads"])
    writer.add_head_count_kv(CONFIG["num_key_value_heads"])
    writer.add_rope_freq_base(CONFIG["rope_max_wavelength"])
    writer.add_layer_norm_rms_eps(CONFIG["layer_norm_epsilon"])
    writer.add_vocab_size(len(TOKENS))
    writer.add_tokenizer_model(tokenizer_model)
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(TOKENS)
    writer.add_token_merges(MERGES)
    writer.add_token_types([3, 3] + [1] * (len(TOKENS) - 2))
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(1)
    for name, value in tensors.items():
        if name not in skip:
            writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return str(path)


def _reference_config():
    return dict(CONFIG, vocabulary_size=len(TOKENS))


@pytest.mark.parametrize("tied", [True, False])
def test_loaded_backbone_matches_numpy_references(tmp_path, tied):
    hf = _hf_weights(np.random.default_rng(0), tied)
    stored = _to_gguf_layout(hf)
    path = write_gguf(tmp_path / "tiny.gguf", stored)
    backbone, config = gguf_llama.llama_backbone_from_gguf(path, "float32")
    for key, value in CONFIG.items():
        assert config[key] == pytest.approx(value), key
    assert config["vocabulary_size"] == len(TOKENS)
    assert config["tie_word_embeddings"] is tied
    assert config["max_sequence_length"] == 64
    ids = np.array([2, 3, 4, 7, 8, 5, 6], "int32")
    hidden = backbone({"token_ids": ids[None], "padding_mask": np.ones((1, 7))})
    logits = ops.convert_to_numpy(
        backbone.token_embedding(hidden, reverse=True)
    )[0]
    # llama.cpp layout + adjacent-pair RoPE, and HF layout + rotate-half.
    want = ref.llama_cpp_forward(stored, _reference_config(), ids)
    np.testing.assert_allclose(
        ref.rotate_half_forward(hf, _reference_config(), ids), want,
        atol=1e-9,
    )
    np.testing.assert_allclose(logits, want, atol=1e-4, rtol=1e-4)
    # Without the un-permute the answer would be different.
    wrong = ref.rotate_half_forward(stored, _reference_config(), ids)
    assert np.abs(wrong - want).max() > 1e-2


def test_unpermute_inverts_llama_cpp_permutation():
    rng = np.random.default_rng(1)
    for heads, head_dim in [(9, 64), (3, 64), (2, 8)]:
        w = rng.normal(size=(heads * head_dim, 5))
        permuted = ref.llama_cpp_permute(w, heads)
        assert not np.array_equal(permuted, w)
        np.testing.assert_array_equal(
            gguf_llama.unpermute_llama_qk(permuted, heads), w
        )
    with pytest.raises(ValueError, match="num_heads"):
        gguf_llama.unpermute_llama_qk(np.zeros((10, 2)), 3)


def test_tokenizer_from_gguf(tmp_path):
    path = write_gguf(tmp_path / "tiny.gguf",
                      _hf_weights(np.random.default_rng(0), True))
    tokenizer = gguf_llama.tokenizer_from_gguf(path)
    assert np.asarray(tokenizer("ab ab")).tolist() == [7, 8]
    # Digits isolated ("smollm"), control tokens kept whole.
    assert np.asarray(tokenizer("12<|im_end|>")).tolist() == [5, 6, 1]
    assert tokenizer.end_token_id == 1 and tokenizer.start_token_id == 0
    assert tokenizer.detokenize([7, 8]) == "ab ab"
    config = tokenizer.get_config()
    assert config["split_digits"] is True
    assert config["end_token"] == "<|im_end|>"


def test_gguf_file_as_causal_lm_source(tmp_path):
    hf = _hf_weights(np.random.default_rng(2), True)
    path = write_gguf(tmp_path / "tiny.gguf", _to_gguf_layout(hf))
    lm = CausalLM(source=path, dtype="float32")
    assert lm.hidden_dim == 16 and lm.stop_token_ids == (0, 1)
    ids = np.array([[2, 3, 4, 7]], "int32")
    logits = ops.convert_to_numpy(lm.logits(lm(lm.embed_tokens(ids))))[0]
    want = ref.rotate_half_forward(hf, _reference_config(), ids[0])
    np.testing.assert_allclose(logits, want, atol=1e-4, rtol=1e-4)
    out, n = lm.greedy_decode(lm.embed_tokens(ids), 3, stop_token_ids=[])
    assert out.shape == (1, 3) and n.tolist() == [3]
    assert out[0, 0] == int(want[-1].argmax())


def test_causal_lm_in_saved_model_round_trip(tmp_path):
    import keras

    path = write_gguf(tmp_path / "tiny.gguf",
                      _hf_weights(np.random.default_rng(3), True))
    lm = CausalLM(source=path, dtype="float32")
    # A fine-tuned value must come back from the archive, not the source.
    scale = lm.backbone.layer_norm.scale
    scale.assign(ops.convert_to_numpy(scale) * 2.0)
    embeds = keras.Input((None, 16))
    mask = keras.Input((None,), dtype="int32")
    model = keras.Model([embeds, mask], lm(embeds, padding_mask=mask))
    x = np.random.default_rng(4).normal(size=(2, 5, 16)).astype("float32")
    m = np.ones((2, 5), "int32")
    m[1, 3:] = 0
    want = ops.convert_to_numpy(model([x, m]))
    model.save(str(tmp_path / "m.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "m.keras"),
                                     safe_mode=True)
    np.testing.assert_allclose(
        ops.convert_to_numpy(loaded([x, m])), want, atol=1e-6
    )
    layer = next(la for la in loaded.layers if isinstance(la, CausalLM))
    assert layer.get_config()["source"] == path and not layer.trainable
    # The assigned weight is no longer the asset's, so the file holds the
    # whole LM (instead of a reference to the asset) and says so.
    assert layer.get_config()["saves_weights"] is True
    assert layer.get_config()["asset_sha256"] is None


def test_bad_files_are_refused(tmp_path):
    hf = _hf_weights(np.random.default_rng(0), True)
    other = write_gguf(tmp_path / "gpt2.gguf", hf, arch="gpt2")
    with pytest.raises(ValueError, match="gpt2"):
        gguf_llama.llama_backbone_from_gguf(other)
    missing = write_gguf(tmp_path / "missing.gguf", hf,
                         skip=("blk.1.ffn_up.weight",))
    with pytest.raises(ValueError, match="blk.1.ffn_up.weight"):
        gguf_llama.llama_backbone_from_gguf(missing)
    spm = write_gguf(tmp_path / "spm.gguf", hf, tokenizer_model="llama")
    with pytest.raises(ValueError, match="byte-level BPE"):
        gguf_llama.tokenizer_from_gguf(spm)
    pre = write_gguf(tmp_path / "pre.gguf", hf, pre="qwen2")
    with pytest.raises(ValueError, match="qwen2"):
        gguf_llama.tokenizer_from_gguf(pre)
    assert os.path.isfile(pre)
