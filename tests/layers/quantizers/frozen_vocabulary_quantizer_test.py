"""FrozenVocabularyQuantizer (LQAE) against a numpy brute-force reference."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_lgvq.layers.quantizers.frozen_vocabulary_quantizer import (
    FrozenVocabularyQuantizer,
)
from tests.layers.grad_utils import input_grads
from tests.layers.grad_utils import is_zero_grad
from tests.layers.grad_utils import variable_grads

V, D = 97, 8


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _table(seed=1):
    rng = np.random.default_rng(seed)
    # Rows of very different norms: cosine and L2 nearest then disagree.
    scale = rng.uniform(0.1, 5.0, size=(V, 1))
    return (rng.normal(size=(V, D)) * scale).astype("float32")


def _features(shape=(3, 5, 7, D), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _np_cosine_argmax(z, table, excluded=()):
    z = z.reshape(-1, table.shape[1]).astype("float64")
    t = table.astype("float64")
    cos = (z / np.linalg.norm(z, axis=-1, keepdims=True)) @ (
        t / np.linalg.norm(t, axis=-1, keepdims=True)
    ).T
    cos[:, list(excluded)] = -np.inf
    return cos.argmax(-1)


@pytest.mark.parametrize("chunk_size", [1, 16, 4096])
def test_cosine_argmax_and_raw_output_match_numpy(chunk_size):
    z, table = _features(), _table()
    quantizer = FrozenVocabularyQuantizer(
        V, D, embedding_table=table, chunk_size=chunk_size
    )
    out = quantizer(z)
    idx = _np_cosine_argmax(z, table)
    l2_idx = (
        (z.reshape(-1, 1, D) - table[None]) ** 2
    ).sum(-1).argmin(-1)
    assert (idx != l2_idx).any()  # the test can tell cosine from L2
    assert keras.backend.standardize_dtype(out["indices"].dtype) == "int32"
    np.testing.assert_array_equal(_np(out["indices"]).reshape(-1), idx)
    # The raw (un-normalised) table row goes forward.
    np.testing.assert_allclose(
        _np(out["quantized"]), table[idx].reshape(z.shape), atol=1e-6
    )
    np.testing.assert_allclose(
        _np(quantizer.indices_to_codes(out["indices"])),
        table[idx].reshape(z.shape),
        atol=1e-6,
    )


def test_losses_usage_and_perplexity_match_numpy():
    z, table = _features(), _table()
    out = FrozenVocabularyQuantizer(
        V, D, embedding_table=table, commitment_weight=0.005
    )(z)
    idx = _np_cosine_argmax(z, table)
    mse = np.mean((table[idx] - z.reshape(-1, D)) ** 2)
    np.testing.assert_allclose(float(out["loss"]), 0.005 * mse, rtol=1e-5)
    np.testing.assert_allclose(
        float(out["commitment_loss"]), 0.005 * mse, rtol=1e-5
    )
    assert float(out["codebook_loss"]) == 0.0
    counts = np.bincount(idx, minlength=V)
    p = counts / counts.sum()
    np.testing.assert_allclose(
        float(out["perplexity"]), np.exp(-np.sum(p * np.log(p + 1e-10))),
        rtol=1e-5,
    )
    np.testing.assert_allclose(float(out["usage"]), np.mean(counts > 0))


def test_usage_counts_tokens_not_column_token_pairs():
    # lqae-spec §5: the official metric sums a (B, H, W, V) one-hot over
    # (B, H) only, so one token in 4 columns counts 4 times. Every patch
    # here picks token 3 or token 5.
    table = _table()
    grid = np.zeros((2, 2, 4, D), "float32")
    grid[..., :] = table[3]
    grid[:, 1] = table[5]
    out = FrozenVocabularyQuantizer(V, D, embedding_table=table)(grid)
    ids = _np(out["indices"])
    assert set(np.unique(ids)) == {3, 5}
    np.testing.assert_allclose(float(out["usage"]), 2 / V)
    one_hot = np.eye(V)[ids]  # the official (buggy) count
    official = np.sum(one_hot.sum(axis=(0, 1)) > 0) / V
    assert official == pytest.approx(8 / V)


def test_straight_through_and_commitment_gradients():
    z, table = _features((2, 3, 4, D), seed=3), _table()
    w = np.random.default_rng(4).normal(size=z.shape).astype("float32")
    quantizer = FrozenVocabularyQuantizer(
        V, D, embedding_table=table, commitment_weight=0.01
    )
    quantizer(z)
    _, (grad,) = input_grads(
        lambda x: ops.sum(
            quantizer(x)["quantized"] * ops.convert_to_tensor(w)
        ),
        [z],
    )
    np.testing.assert_allclose(grad, w, atol=1e-6)
    _, (grad,) = input_grads(lambda x: quantizer(x)["loss"], [z])
    idx = _np_cosine_argmax(z, table)
    flat = z.reshape(-1, D)
    expected = 0.01 * 2.0 / flat.size * (flat - table[idx])
    np.testing.assert_allclose(grad.reshape(-1, D), expected, atol=1e-7)
    # The table is frozen: non-trainable, and no gradient path reaches it.
    assert quantizer.trainable_variables == []
    assert not quantizer.codebook.trainable
    if keras.backend.backend() == "torch":
        # A non-trainable torch variable does not require grad at all.
        assert not quantizer.codebook.value.requires_grad
        return
    _, grads = variable_grads(
        lambda: quantizer(z)["loss"] + ops.sum(quantizer(z)["quantized"]),
        [quantizer.codebook],
    )
    assert is_zero_grad(grads[0])


def test_excluded_tokens_are_never_chosen():
    table = _table()
    z = table[[0, 3, 7, 3]][None].astype("float32")  # exact matches
    quantizer = FrozenVocabularyQuantizer(
        V, D, embedding_table=table, excluded_token_ids=(3, 0)
    )
    ids = _np(quantizer(z)["indices"])[0]
    expected = _np_cosine_argmax(z, table, excluded=(0, 3))
    np.testing.assert_array_equal(ids, expected)
    assert ids[2] == 7 and 3 not in ids and 0 not in ids
    # Output rows stay the raw embeddings of the chosen tokens.
    np.testing.assert_allclose(
        _np(quantizer(z)["quantized"])[0], table[ids], atol=1e-6
    )
    assert quantizer.get_config()["excluded_token_ids"] == [0, 3]


def test_table_is_set_later_and_config_has_no_table():
    table = _table()
    quantizer = FrozenVocabularyQuantizer(V, D, name="quantizer")
    with pytest.raises(ValueError, match="has no embedding table"):
        quantizer(_features())
    quantizer.set_embedding_table(table)
    np.testing.assert_allclose(_np(quantizer.embedding_table), table)
    config = quantizer.get_config()
    assert "codebook_initializer" not in config
    assert "embedding_table" not in config
    clone = FrozenVocabularyQuantizer.from_config(config)
    assert clone.vocabulary_size == V and clone.embedding_dim == D
    assert not clone.has_embedding_table
    with pytest.raises(ValueError, match=r"shape \(vocabulary_size"):
        quantizer.set_embedding_table(table[:, :4])


def test_a_table_from_the_language_model_is_not_saved():
    # `save_embedding_table=False` (what LQAEBackbone passes for its LM's
    # table): the saved state leaves the V x D table out, and loading keeps
    # the table set from the LM.
    table = _table()
    quantizer = FrozenVocabularyQuantizer(
        V, D, embedding_table=table, save_embedding_table=False
    )
    quantizer.build((None, D))
    store = {}
    quantizer.save_own_variables(store)
    # The table is the layer's only own state (its seed generator saves
    # itself).
    assert store == {}
    config = quantizer.get_config()
    assert config["save_embedding_table"] is False
    clone = FrozenVocabularyQuantizer.from_config(config)
    clone.set_embedding_table(table)
    clone.load_own_variables(store)
    assert clone.has_embedding_table
    np.testing.assert_array_equal(_np(clone.embedding_table), table)
    # A state saved with the table (the default, and older files) still
    # loads it over whatever was set.
    full = {}
    default = FrozenVocabularyQuantizer(V, D, embedding_table=table)
    default.build((None, D))
    default.save_own_variables(full)
    assert any(np.shape(v) == (V, D) for v in full.values())
    other = FrozenVocabularyQuantizer.from_config(config)
    other.set_embedding_table(_table(seed=2))
    other.load_own_variables(full)
    np.testing.assert_array_equal(_np(other.embedding_table), table)
    with pytest.raises(ValueError, match="`save_embedding_table` must be"):
        FrozenVocabularyQuantizer(V, D, save_embedding_table="no")


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="excluded_token_ids"):
        FrozenVocabularyQuantizer(V, D, excluded_token_ids=(V,))
    with pytest.raises(ValueError, match="whole vocabulary"):
        FrozenVocabularyQuantizer(4, D, excluded_token_ids=range(4))
    with pytest.raises(ValueError, match="commitment_weight"):
        FrozenVocabularyQuantizer(V, D, commitment_weight=-1.0)
    quantizer = FrozenVocabularyQuantizer(V, D, embedding_table=_table())
    with pytest.raises(ValueError, match="must equal `embedding_dim`=8"):
        quantizer(np.zeros((2, 4), "float32"))
