"""Load a Llama-architecture GGUF file into keras-hub's `LlamaBackbone`.

The file is read with the `gguf` package (pure Python + numpy; no llama.cpp,
no torch): every tensor is dequantized to float32, the hyper-parameters come
from the GGUF metadata, and the byte-level BPE vocabulary and merges stored
in the metadata build a keras-hub BPE tokenizer.

llama.cpp's converter permutes the rows of the query and key projections so
that its RoPE kernel can rotate adjacent pairs (x[2i], x[2i+1]). keras-hub's
`LlamaRotaryEmbedding` rotates halves (x[i], x[i + d/2]), as Hugging Face
does, so the permutation is undone on load (`unpermute_llama_qk`).
"""

import numpy as np

SUPPORTED_ARCHITECTURES = ("llama",)
# llama.cpp pre-tokenizer name -> whether digits are isolated first.
# "smollm" is StarCoder's split: `\p{N}` then GPT-2's regular expression.
_PRE_TOKENIZERS = {"smollm": True, "starcoder": True, "gpt-2": False}
# GGUF token types (llama.cpp `llama_token_type`): control and user-defined
# tokens are matched whole, never split by BPE.
_CONTROL_TOKEN_TYPES = (3, 4)


def _require_gguf():
    try:
        import gguf
    except ImportError as error:
        raise ImportError(
            "Reading GGUF files needs the `gguf` package (pure Python + "
            "numpy): `pip install gguf`."
        ) from error
    return gguf


def open_gguf(path):
    """Open a GGUF file with `gguf.GGUFReader` (memory-mapped, read-only).

    Args:
        path: str. The `.gguf` file.

    Examples:

    ```python
    reader = keras_lgvq.language_models.gguf_llama.open_gguf("m.gguf")
    ```
    """
    gguf = _require_gguf()
    return gguf.GGUFReader(path, "r")


def gguf_metadata(reader, keys=None):
    """Return GGUF metadata values as Python scalars, strings or lists.

    Args:
        reader: `gguf.GGUFReader`. An open file.
        keys: iterable of str or None. The keys to read; all if None.

    Examples:

    ```python
    meta = keras_lgvq.language_models.gguf_llama.gguf_metadata(
        reader, ["general.architecture"])
    ```
    """
    names = reader.fields.keys() if keys is None else keys
    return {
        name: reader.fields[name].contents()
        for name in names
        if name in reader.fields
    }


def llama_config_from_gguf(reader):
    """Read the `LlamaBackbone` hyper-parameters from GGUF metadata.

    Args:
        reader: `gguf.GGUFReader`. An open Llama-architecture file.

    Returns:
        dict of `LlamaBackbone` constructor arguments plus
        `max_sequence_length` (the trained context length).

    Examples:

    ```python
    config = keras_lgvq.language_models.gguf_llama.llama_config_from_gguf(
        keras_lgvq.language_models.gguf_llama.open_gguf("m.gguf"))
    ```
    """
    fields = reader.fields
    if "general.architecture" not in fields:
        raise ValueError("The GGUF file has no `general.architecture` key.")
    arch = fields["general.architecture"].contents()
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ValueError(
            f"The GGUF file holds a `{arch}` model; only "
            f"{SUPPORTED_ARCHITECTURES} maps onto keras-hub's LlamaBackbone."
        )

    def get(key, default=None):
        name = f"{arch}.{key}"
        if name in fields:
            return fields[name].contents()
        if default is None:
            raise ValueError(f"The GGUF file has no `{name}` metadata key.")
        return default

    scaling = get("rope.scaling.type", "none")
    if scaling not in ("none", ""):
        raise ValueError(
            f"The GGUF file uses RoPE scaling `{scaling}`, which this loader "
            "does not map; only unscaled RoPE is supported."
        )
    num_heads = int(get("attention.head_count"))
    hidden_dim = int(get("embedding_length"))
    head_dim = hidden_dim // num_heads
    rope_dim = int(get("rope.dimension_count", head_dim))
    if hidden_dim % num_heads or rope_dim != head_dim:
        raise ValueError(
            f"hidden size {hidden_dim}, {num_heads} heads and RoPE dimension "
            f"{rope_dim}: LlamaBackbone needs head_dim = hidden / heads and "
            "RoPE over the whole head."
        )
    if "tokenizer.ggml.tokens" in fields:
        default_vocab = len(fields["tokenizer.ggml.tokens"].data)
    else:
        default_vocab = None
    return {
        "vocabulary_size": int(get("vocab_size", default_vocab)),
        "num_layers": int(get("block_count")),
        "num_query_heads": num_heads,
        "hidden_dim": hidden_dim,
        "intermediate_dim": int(get("feed_forward_length")),
        "num_key_value_heads": int(get("attention.head_count_kv", num_heads)),
        "rope_max_wavelength": float(get("rope.freq_base", 10000.0)),
        "layer_norm_epsilon": float(get("attention.layer_norm_rms_epsilon")),
        "tie_word_embeddings": "output.weight" not in _tensor_index(reader),
        "max_sequence_length": int(get("context_length")),
    }


def _tensor_index(reader):
    return {tensor.name: tensor for tensor in reader.tensors}


def dequantize_tensor(tensor):
    """Return one GGUF tensor as float32 numpy, in row-major (out, in) order.

    A GGUF shape lists the fastest-varying dimension first, so a projection
    stored as `[in, out]` comes back as an `(out, in)` array, the layout of
    a `torch.nn.Linear` weight.

    Args:
        tensor: `gguf.ReaderTensor`. One tensor of an open file.

    Examples:

    ```python
    w = keras_lgvq.language_models.gguf_llama.dequantize_tensor(
        reader.tensors[0])
    ```
    """
    gguf = _require_gguf()
    values = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
    shape = tuple(int(n) for n in reversed(tensor.shape))
    return np.asarray(values, dtype="float32").reshape(shape)


def unpermute_llama_qk(weight, num_heads):
    """Undo llama.cpp's row permutation of a query or key projection.

    llama.cpp stores, per head, the rows of the two RoPE halves interleaved
    (reshape `(heads, 2, head_dim / 2, in)`, swap the middle axes). This
    applies the inverse so that rotate-half RoPE (keras-hub, Hugging Face)
    sees the original order.

    Args:
        weight: array `(num_heads * head_dim, in)`. The GGUF projection.
        num_heads: int. Query heads for Q, key-value heads for K.

    Examples:

    ```python
    q = keras_lgvq.language_models.gguf_llama.unpermute_llama_qk(q, 9)
    ```
    """
    weight = np.asarray(weight)
    rows = weight.shape[0]
    if rows % (2 * num_heads):
        raise ValueError(
            f"`weight` has {rows} rows, not a multiple of 2 * num_heads "
            f"({2 * num_heads})."
        )
    half = rows // num_heads // 2
    shaped = weight.reshape(num_heads, half, 2, *weight.shape[1:])
    return shaped.swapaxes(1, 2).reshape(weight.shape)


def _expect(name, array, shape):
    if tuple(array.shape) != tuple(shape):
        raise ValueError(
            f"GGUF tensor `{name}` has shape {tuple(array.shape)}; the "
            f"metadata implies {tuple(shape)}."
        )
    return array


def llama_backbone_from_gguf(path, dtype=None, reader=None):
    """Build a `keras_hub.models.LlamaBackbone` holding a GGUF file's weights.

    Args:
        path: str. A Llama-architecture `.gguf` file.
        dtype: str, `keras.DTypePolicy` or None. The backbone's dtype policy
            (e.g. "float32", "bfloat16"); Keras' default if None.
        reader: `gguf.GGUFReader` or None. An already open reader of `path`.

    Returns:
        `(backbone, config)`: the backbone and the dict read by
        `llama_config_from_gguf`.

    Examples:

    ```python
    backbone, config = (
        keras_lgvq.language_models.gguf_llama.llama_backbone_from_gguf(
            "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ```
    """
    import keras_hub

    reader = reader or open_gguf(path)
    config = llama_config_from_gguf(reader)
    tensors = _tensor_index(reader)

    def weight(name, shape):
        if name not in tensors:
            raise ValueError(f"The GGUF file has no tensor `{name}`.")
        return _expect(name, dequantize_tensor(tensors[name]), shape)

    vocab = config["vocabulary_size"]
    hidden = config["hidden_dim"]
    ffn = config["intermediate_dim"]
    q_heads = config["num_query_heads"]
    kv_heads = config["num_key_value_heads"]
    head_dim = hidden // q_heads
    kwargs = {
        k: v for k, v in config.items() if k != "max_sequence_length"
    }
    backbone = keras_hub.models.LlamaBackbone(**kwargs, dtype=dtype)

    embedding = backbone.token_embedding
    embedding.embeddings.assign(weight("token_embd.weight", (vocab, hidden)))
    if not config["tie_word_embeddings"]:
        output = weight("output.weight", (vocab, hidden))
        embedding.reverse_embeddings.assign(output.T)
    backbone.layer_norm.scale.assign(weight("output_norm.weight", (hidden,)))
    for i, layer in enumerate(backbone.transformer_layers):
        attention = layer._self_attention_layer
        q = weight(f"blk.{i}.attn_q.weight", (q_heads * head_dim, hidden))
        k = weight(f"blk.{i}.attn_k.weight", (kv_heads * head_dim, hidden))
        v = weight(f"blk.{i}.attn_v.weight", (kv_heads * head_dim, hidden))
        o = weight(f"blk.{i}.attn_output.weight", (hidden, q_heads * head_dim))
        q = unpermute_llama_qk(q, q_heads)
        k = unpermute_llama_qk(k, kv_heads)
        # (out, in) -> EinsumDense kernels "bqm,muh" / "bquh,uhm".
        attention._query_dense.kernel.assign(
            q.T.reshape(hidden, q_heads, head_dim)
        )
        attention._key_dense.kernel.assign(
            k.T.reshape(hidden, kv_heads, head_dim)
        )
        attention._value_dense.kernel.assign(
            v.T.reshape(hidden, kv_heads, head_dim)
        )
        attention._output_dense.kernel.assign(
            o.T.reshape(q_heads, head_dim, hidden)
        )
        layer._feedforward_gate_dense.kernel.assign(
            weight(f"blk.{i}.ffn_gate.weight", (ffn, hidden)).T
        )
        layer._feedforward_intermediate_dense.kernel.assign(
            weight(f"blk.{i}.ffn_up.weight", (ffn, hidden)).T
        )
        layer._feedforward_output_dense.kernel.assign(
            weight(f"blk.{i}.ffn_down.weight", (hidden, ffn)).T
        )
        layer._self_attention_layernorm.scale.assign(
            weight(f"blk.{i}.attn_norm.weight", (hidden,))
        )
        layer._feedforward_layernorm.scale.assign(
            weight(f"blk.{i}.ffn_norm.weight", (hidden,))
        )
    return backbone, config


def tokenizer_from_gguf(path, reader=None):
    """Build the byte-level BPE tokenizer stored in a GGUF file's metadata.

    Args:
        path: str. A `.gguf` file whose `tokenizer.ggml.model` is "gpt2"
            (byte-level BPE).
        reader: `gguf.GGUFReader` or None. An already open reader of `path`.

    Returns:
        `keras_lgvq.language_models.ByteLevelBPETokenizer` with
        `start_token_id`, `end_token_id` and `pad_token_id` from the file.

    Examples:

    ```python
    tokenizer = keras_lgvq.language_models.gguf_llama.tokenizer_from_gguf(
        "SmolLM2-135M-Instruct.Q4_1.gguf")
    tokenizer("The capital of France is")
    ```
    """
    from keras_lgvq.language_models.bpe_tokenizer import ByteLevelBPETokenizer

    reader = reader or open_gguf(path)
    fields = reader.fields
    for key in ("tokenizer.ggml.model", "tokenizer.ggml.tokens",
                "tokenizer.ggml.merges"):
        if key not in fields:
            raise ValueError(f"The GGUF file has no `{key}` metadata key.")
    model = fields["tokenizer.ggml.model"].contents()
    if model != "gpt2":
        raise ValueError(
            f"The GGUF tokenizer is `{model}`; only byte-level BPE (`gpt2`) "
            "is supported."
        )
    pre = "gpt-2"
    if "tokenizer.ggml.pre" in fields:
        pre = fields["tokenizer.ggml.pre"].contents()
    if pre not in _PRE_TOKENIZERS:
        raise ValueError(
            f"The GGUF pre-tokenizer is `{pre}`; supported: "
            f"{sorted(_PRE_TOKENIZERS)}."
        )
    if "tokenizer.ggml.add_space_prefix" in fields and fields[
        "tokenizer.ggml.add_space_prefix"
    ].contents():
        raise ValueError("GGUF tokenizers with a space prefix are not mapped.")
    tokens = fields["tokenizer.ggml.tokens"].contents()
    merges = fields["tokenizer.ggml.merges"].contents()
    if "tokenizer.ggml.token_type" in fields:
        types = fields["tokenizer.ggml.token_type"].contents()
    else:
        types = [1] * len(tokens)
    vocabulary = {token: i for i, token in enumerate(tokens)}
    if len(vocabulary) != len(tokens):
        raise ValueError("The GGUF vocabulary has duplicate tokens.")
    control = [t for t, kind in zip(tokens, types)
               if kind in _CONTROL_TOKEN_TYPES]

    def special(key):
        name = f"tokenizer.ggml.{key}_token_id"
        if name not in fields:
            return None
        return tokens[int(fields[name].contents())]

    return ByteLevelBPETokenizer(
        vocabulary=vocabulary,
        merges=merges,
        split_digits=_PRE_TOKENIZERS[pre],
        start_token=special("bos"),
        end_token=special("eos"),
        pad_token=special("padding"),
        unsplittable_tokens=control,
    )
