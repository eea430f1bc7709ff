"""Independent numpy references for the language-model tests.

- `llama_cpp_forward`: a Llama forward over tensors in llama.cpp's own layout
  (Q/K rows as stored in the GGUF file, RoPE rotating adjacent pairs
  (x[2i], x[2i+1]) as llama.cpp's "normal" RoPE does). It never un-permutes,
  so it checks the loader's un-permute + keras-hub's rotate-half RoPE
  against the convention the file was written for.
- `rotate_half_forward`: the same forward with rotate-half RoPE; fed the raw
  GGUF rows it reproduces a loader that forgot to un-permute.
- `ReferenceBPE`: GPT-2's byte-level BPE (openai `encoder.py` algorithm),
  with SmolLM's digit isolation, written from scratch.
- `llama_cpp_permute`: llama.cpp's converter permutation of Q/K rows.
"""

import numpy as np
import regex


def rms_norm(x, weight, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def _rope_tables(length, head_dim, base):
    inv_freq = base ** (-np.arange(0, head_dim, 2, dtype="float64") / head_dim)
    angles = np.arange(length, dtype="float64")[:, None] * inv_freq[None]
    return np.cos(angles)[:, None, :], np.sin(angles)[:, None, :]


def rope_adjacent_pairs(x, base):
    """llama.cpp "normal" RoPE on (T, heads, head_dim): pairs (2i, 2i+1)."""
    cos, sin = _rope_tables(x.shape[0], x.shape[-1], base)
    even, odd = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = even * cos - odd * sin
    out[..., 1::2] = even * sin + odd * cos
    return out


def rope_rotate_half(x, base):
    """Hugging Face / keras-hub RoPE: pairs (i, i + head_dim / 2)."""
    cos, sin = _rope_tables(x.shape[0], x.shape[-1], base)
    half = x.shape[-1] // 2
    first, second = x[..., :half], x[..., half:]
    return np.concatenate(
        [first * cos - second * sin, first * sin + second * cos], axis=-1
    )


def _forward(weights, config, token_ids, rope):
    w = {k: np.asarray(v, dtype="float64") for k, v in weights.items()}
    hidden = config["hidden_dim"]
    heads = config["num_query_heads"]
    kv_heads = config["num_key_value_heads"]
    head_dim = hidden // heads
    eps = config["layer_norm_epsilon"]
    base = config["rope_max_wavelength"]
    length = len(token_ids)
    x = w["token_embd.weight"][np.asarray(token_ids)]
    causal = np.tril(np.ones((length, length), dtype=bool))
    for i in range(config["num_layers"]):
        p = f"blk.{i}."
        h = rms_norm(x, w[p + "attn_norm.weight"], eps)
        q = (h @ w[p + "attn_q.weight"].T).reshape(length, heads, head_dim)
        k = (h @ w[p + "attn_k.weight"].T).reshape(length, kv_heads, head_dim)
        v = (h @ w[p + "attn_v.weight"].T).reshape(length, kv_heads, head_dim)
        q, k = rope(q, base), rope(k, base)
        # Grouped-query attention: query head j reads kv head j // group.
        group = heads // kv_heads
        k = np.repeat(k, group, axis=1)
        v = np.repeat(v, group, axis=1)
        scores = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(head_dim)
        scores = np.where(causal[None], scores, -np.inf)
        scores = scores - scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        attended = np.einsum("hqk,khd->qhd", probs, v).reshape(length, hidden)
        x = x + attended @ w[p + "attn_output.weight"].T
        h = rms_norm(x, w[p + "ffn_norm.weight"], eps)
        gate = h @ w[p + "ffn_gate.weight"].T
        swish = gate / (1.0 + np.exp(-gate))
        x = x + (swish * (h @ w[p + "ffn_up.weight"].T)) @ w[
            p + "ffn_down.weight"
        ].T
    x = rms_norm(x, w["output_norm.weight"], eps)
    head = w.get("output.weight", w["token_embd.weight"])
    return x @ head.T


def llama_cpp_forward(weights, config, token_ids):
    """Logits (T, vocab) from GGUF-layout tensors with llama.cpp's RoPE."""
    return _forward(weights, config, token_ids, rope_adjacent_pairs)


def rotate_half_forward(weights, config, token_ids):
    """Logits (T, vocab) with rotate-half RoPE on the tensors as given."""
    return _forward(weights, config, token_ids, rope_rotate_half)


def llama_cpp_permute(weight, num_heads):
    """llama.cpp `convert_hf_to_gguf.py` permutation of HF-order Q/K rows."""
    rows = weight.shape[0]
    shaped = weight.reshape(num_heads, 2, rows // num_heads // 2, -1)
    return shaped.swapaxes(1, 2).reshape(weight.shape)


def _byte_to_unicode():
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


GPT2_SPLIT = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+"""
    r"""|\s+(?!\S)|\s+"""
)


class ReferenceBPE:
    """GPT-2 byte-level BPE over a vocabulary and ranked merges."""

    def __init__(self, tokens, merges, special_tokens, split_digits):
        self.vocab = {t: i for i, t in enumerate(tokens)}
        self.ranks = {tuple(m.split(" ")): r for r, m in enumerate(merges)}
        self.special = sorted(special_tokens, key=len, reverse=True)
        self.split_digits = split_digits
        self.byte_to_unicode = _byte_to_unicode()

    def _bpe(self, word):
        symbols = [self.byte_to_unicode[b] for b in word.encode("utf-8")]
        while len(symbols) > 1:
            pairs = set(zip(symbols, symbols[1:]))
            best = min(pairs, key=lambda p: self.ranks.get(p, np.inf))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(symbols):
                pair = tuple(symbols[i:i + 2])
                if pair == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        return [self.vocab[s] for s in symbols]

    def encode(self, text):
        ids = []
        if self.special:
            escaped = "|".join(regex.escape(s) for s in self.special)
            pattern = "(" + escaped + ")"
            pieces = regex.split(pattern, text)
        else:
            pieces = [text]
        for piece in pieces:
            if piece in self.special:
                ids.append(self.vocab[piece])
                continue
            chunks = regex.split(r"(\p{N})", piece) if self.split_digits else [
                piece
            ]
            for chunk in chunks:
                for word in GPT2_SPLIT.findall(chunk):
                    ids.extend(self._bpe(word))
        return ids
