"""Independent numpy / pure-python references for the text-prior tests.

Nothing here uses keras or keras-hub: a tiny random CLIP written in the
Hugging Face file format, the OpenAI CLIP BPE tokenizer algorithm, and numpy
forward passes of the CLIP text tower and of BERT.
"""

import functools
import html
import json
import os

import numpy as np
import regex

SOT, EOT = "<|startoftext|>", "<|endoftext|>"

# Merges of the tiny BPE vocabulary (rank = order). Each result becomes a
# token; enough to exercise multi-step merges, `</w>` and shared prefixes.
TINY_MERGES = [
    "t h",
    "th e</w>",
    "r e",
    "re d</w>",
    "b i",
    "bi r",
    "bir d</w>",
    "w i",
    "t h</w>",
    "wi th</w>",
    "s m",
    "sm a",
    "l l</w>",
    "sma ll</w>",
    "c r",
    "cr o",
    "cro w",
    "crow n</w>",
    "o n</w>",
    "i n",
    "in g</w>",
    "a n",
    "an d</w>",
]


@functools.lru_cache(None)
def bytes_to_unicode():
    """GPT-2/CLIP reversible byte -> printable unicode character table."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def tiny_clip_vocab():
    """Vocabulary and merges laid out like OpenAI CLIP's, but tiny."""
    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars]
    merges = []
    for merge in TINY_MERGES:
        a, b = merge.split(" ")
        assert a in tokens and b in tokens, merge
        merges.append(merge)
        if a + b not in tokens:
            tokens.append(a + b)
    tokens += [SOT, EOT]
    return {t: i for i, t in enumerate(tokens)}, merges


def clip_tokenize_reference(texts, vocab, merges, context_length):
    """OpenAI CLIP tokenization (without ftfy) + LG-VQ truncation."""
    ranks = {tuple(m.split(" ")): i for i, m in enumerate(merges)}
    byte_encoder = bytes_to_unicode()
    pattern = regex.compile(
        r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|"""
        r"""[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
        regex.IGNORECASE,
    )

    def bpe(token):
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
            if best not in ranks:
                break
            first, second = best
            merged, i = [], 0
            while i < len(word):
                if (
                    i < len(word) - 1
                    and word[i] == first
                    and word[i + 1] == second
                ):
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        return word

    rows = []
    for text in texts:
        text = html.unescape(html.unescape(text)).strip()
        text = regex.sub(r"\s+", " ", text).strip().lower()
        ids = [vocab[SOT]]
        for token in pattern.findall(text):
            token = "".join(byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(vocab[piece] for piece in bpe(token))
        ids.append(vocab[EOT])
        if len(ids) > context_length:
            ids = ids[:context_length]
            ids[-1] = vocab[EOT]
        rows.append(ids + [0] * (context_length - len(ids)))
    return np.array(rows, dtype=np.int32)


def write_tiny_hf_clip(
    directory,
    hidden=32,
    heads=4,
    layers=2,
    intermediate=64,
    projection=24,
    positions=77,
    seed=0,
):
    """Write a random CLIP (HF key names) with the tiny BPE vocabulary."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    vocab, merges = tiny_clip_vocab()
    vocab_size = len(vocab)

    def normal(*shape, scale=0.2):
        return (rng.standard_normal(shape) * scale).astype("float32")

    t = {
        "text_model.embeddings.token_embedding.weight": normal(
            vocab_size, hidden, scale=0.5
        ),
        "text_model.embeddings.position_embedding.weight": normal(
            positions, hidden, scale=0.5
        ),
        "text_model.final_layer_norm.weight": 1.0 + normal(hidden),
        "text_model.final_layer_norm.bias": normal(hidden),
        "text_projection.weight": normal(projection, hidden),
        # A vision tensor that the text loader must ignore.
        "vision_model.post_layernorm.weight": normal(8),
    }
    for i in range(layers):
        p = f"text_model.encoder.layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            t[p + f"self_attn.{name}.weight"] = normal(hidden, hidden)
            t[p + f"self_attn.{name}.bias"] = normal(hidden)
        for name in ("layer_norm1", "layer_norm2"):
            t[p + f"{name}.weight"] = 1.0 + normal(hidden)
            t[p + f"{name}.bias"] = normal(hidden)
        t[p + "mlp.fc1.weight"] = normal(intermediate, hidden)
        t[p + "mlp.fc1.bias"] = normal(intermediate)
        t[p + "mlp.fc2.weight"] = normal(hidden, intermediate)
        t[p + "mlp.fc2.bias"] = normal(hidden)
    os.makedirs(directory, exist_ok=True)
    save_file(t, os.path.join(directory, "model.safetensors"))
    config = {
        "model_type": "clip",
        "projection_dim": projection,
        "text_config": {
            "model_type": "clip_text_model",
            "vocab_size": vocab_size,
            "hidden_size": hidden,
            "intermediate_size": intermediate,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "max_position_embeddings": positions,
            "hidden_act": "quick_gelu",
            "layer_norm_eps": 1e-5,
        },
    }
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f)
    with open(os.path.join(directory, "vocab.json"), "w") as f:
        json.dump(vocab, f)
    with open(os.path.join(directory, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    return t, config


def _layer_norm(x, gamma, beta, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def clip_text_reference(tensors, config, token_ids):
    """OpenAI-style CLIP text forward (fp64): (per-token, EOT projected)."""
    cfg = config["text_config"]
    heads = cfg["num_attention_heads"]
    eps = cfg["layer_norm_eps"]
    t = {k: v.astype("float64") for k, v in tensors.items()}
    ids = np.asarray(token_ids)
    batch, length = ids.shape
    x = t["text_model.embeddings.token_embedding.weight"][ids]
    x = x + t["text_model.embeddings.position_embedding.weight"][:length]
    hidden = x.shape[-1]
    dh = hidden // heads
    causal = np.triu(np.full((length, length), -np.inf), 1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"text_model.encoder.layers.{i}."

        def lin(v, name):
            return v @ t[p + name + ".weight"].T + t[p + name + ".bias"]

        h = _layer_norm(
            x, t[p + "layer_norm1.weight"], t[p + "layer_norm1.bias"], eps
        )
        q, k, v = (
            lin(h, f"self_attn.{n}").reshape(batch, length, heads, dh)
            for n in ("q_proj", "k_proj", "v_proj")
        )
        scores = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(dh) + causal
        attn = np.einsum("bhqk,bkhd->bqhd", _softmax(scores), v)
        x = x + lin(attn.reshape(batch, length, hidden), "self_attn.out_proj")
        h = _layer_norm(
            x, t[p + "layer_norm2.weight"], t[p + "layer_norm2.bias"], eps
        )
        h = lin(h, "mlp.fc1")
        h = h / (1.0 + np.exp(-1.702 * h))  # QuickGELU
        x = x + lin(h, "mlp.fc2")
    x = _layer_norm(
        x,
        t["text_model.final_layer_norm.weight"],
        t["text_model.final_layer_norm.bias"],
        eps,
    )
    # Official: EOT found as argmax of the ids (EOT is the largest id).
    eot = x[np.arange(batch), ids.argmax(-1)]
    return x, eot @ t["text_projection.weight"].T


def bert_reference(directory, token_ids):
    """numpy BERT forward with tanh-approximate GELU (as keras-hub).

    Returns the last hidden states (B, L, H) for unpadded `token_ids` rows
    of equal length (no attention mask needed).
    """
    from safetensors.numpy import load_file

    with open(os.path.join(directory, "config.json")) as f:
        config = json.load(f)
    weights = load_file(os.path.join(directory, "model.safetensors"))
    t = {k: v.astype("float64") for k, v in weights.items()}
    eps = config.get("layer_norm_eps", 1e-12)
    heads = config["num_attention_heads"]
    ids = np.asarray(token_ids)
    batch, length = ids.shape
    x = (
        t["embeddings.word_embeddings.weight"][ids]
        + t["embeddings.position_embeddings.weight"][:length]
        + t["embeddings.token_type_embeddings.weight"][0]
    )
    x = _layer_norm(
        x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"], eps
    )
    hidden = x.shape[-1]
    dh = hidden // heads
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def lin(v, name):
            return v @ t[p + name + ".weight"].T + t[p + name + ".bias"]

        q, k, v = (
            lin(x, f"attention.self.{n}").reshape(batch, length, heads, dh)
            for n in ("query", "key", "value")
        )
        scores = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(dh)
        attn = np.einsum("bhqk,bkhd->bqhd", _softmax(scores), v)
        attn = attn.reshape(batch, length, hidden)
        attn = lin(attn, "attention.output.dense")
        x = _layer_norm(
            x + attn,
            t[p + "attention.output.LayerNorm.weight"],
            t[p + "attention.output.LayerNorm.bias"],
            eps,
        )
        h = lin(x, "intermediate.dense")
        h = 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h**3)))
        x = _layer_norm(
            x + lin(h, "output.dense"),
            t[p + "output.LayerNorm.weight"],
            t[p + "output.LayerNorm.bias"],
            eps,
        )
    return x


TINY_BERT_VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "a",
    "small",
    "bird",
    "red",
    "crown",
    "the",
    ".",
    "##s",
    "with",
]


def write_tiny_hf_bert(directory, hidden=16, heads=2, layers=2, seed=0):
    """Write a random BERT in the Hugging Face file layout."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)

    def normal(*shape, scale=0.3):
        return (rng.standard_normal(shape) * scale).astype("float32")

    vocab, positions, intermediate = len(TINY_BERT_VOCAB), 40, 2 * hidden
    t = {
        "embeddings.word_embeddings.weight": normal(vocab, hidden),
        "embeddings.position_embeddings.weight": normal(positions, hidden),
        "embeddings.token_type_embeddings.weight": normal(2, hidden),
        "embeddings.LayerNorm.weight": 1.0 + normal(hidden),
        "embeddings.LayerNorm.bias": normal(hidden),
        "pooler.dense.weight": normal(hidden, hidden),
        "pooler.dense.bias": normal(hidden),
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
    os.makedirs(directory, exist_ok=True)
    save_file(t, os.path.join(directory, "model.safetensors"))
    config = {
        "model_type": "bert",
        "vocab_size": vocab,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": intermediate,
        "max_position_embeddings": positions,
        "type_vocab_size": 2,
        "layer_norm_eps": 1e-12,
        "hidden_act": "gelu",
    }
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f)
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": True, "strip_accents": None}, f)
    with open(os.path.join(directory, "vocab.txt"), "w") as f:
        f.write("\n".join(TINY_BERT_VOCAB) + "\n")
    return t, config
