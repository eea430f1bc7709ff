"""A tiny Llama-family LM for fast captioning and VQA tests.

Written as a GGUF file (the format of the real SmolLM2 asset) with a
character-level byte-BPE vocabulary, and loaded through the package's own
`load_causal_lm(source=path)`, so the real loading path is exercised and a
model holding it loads from `.keras` with `safe_mode=True`.
"""

import string

import numpy as np

from keras_lgvq.language_models import load_causal_lm

STOP = "<|endoftext|>"
# Byte-level BPE spells a leading space as "Ġ".
TOKENS = [STOP, "Ġ", "?"] + list(string.ascii_lowercase) + ["Ġa"]
MERGES = ["Ġ a"]


def write_tiny_lm_gguf(path, hidden_dim=32, num_layers=1, seed=0):
    """Writes a random tiny Llama GGUF (tied embeddings); returns its path."""
    import gguf

    heads, kv_heads, ffn = 4, 2, 2 * hidden_dim
    kv = kv_heads * hidden_dim // heads
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return rng.normal(0, 0.3, shape).astype("float32")

    tensors = {
        "token_embd.weight": normal(len(TOKENS), hidden_dim),
        "output_norm.weight": 1 + normal(hidden_dim),
    }
    for i in range(num_layers):
        p = f"blk.{i}."
        tensors.update({
            p + "attn_norm.weight": 1 + normal(hidden_dim),
            p + "ffn_norm.weight": 1 + normal(hidden_dim),
            p + "attn_q.weight": normal(hidden_dim, hidden_dim),
            p + "attn_k.weight": normal(kv, hidden_dim),
            p + "attn_v.weight": normal(kv, hidden_dim),
            p + "attn_output.weight": normal(hidden_dim, hidden_dim),
            p + "ffn_gate.weight": normal(ffn, hidden_dim),
            p + "ffn_up.weight": normal(ffn, hidden_dim),
            p + "ffn_down.weight": normal(hidden_dim, ffn),
        })
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(num_layers)
    writer.add_context_length(128)
    writer.add_embedding_length(hidden_dim)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(len(TOKENS))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(TOKENS)
    writer.add_token_merges(MERGES)
    writer.add_token_types([3] + [1] * (len(TOKENS) - 1))
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(0)
    for name, value in tensors.items():
        writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return str(path)


def tiny_lm(path):
    return load_causal_lm(source=str(path), dtype="float32")
