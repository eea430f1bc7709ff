"""The evaluation package on VQCT codes: a trailing index axis of adjective
and noun ids, usage per sub-codebook, probes on flattened ids."""

import numpy as np
import pytest
from keras import ops

from keras_lgvq import visualization
from keras_lgvq.evaluation import evaluator
from keras_lgvq.evaluation import flatten_metrics
from keras_lgvq.evaluation import splits
from keras_lgvq.evaluation import tokenizer_runner
from keras_lgvq.metrics import code_features
from keras_lgvq.models import VQCT
from tests.evaluation.fakes import FakePrior
from tests.evaluation.fakes import batches
from tests.models.tiny_configs import tiny_lgvq
from tests.models.tiny_configs import tiny_text_batch
from tests.models.vqct.tiny_vqct import ADJECTIVES
from tests.models.vqct.tiny_vqct import NOUNS
from tests.models.vqct.tiny_vqct import TOP_K
from tests.models.vqct.tiny_vqct import tiny_vqct_backbone

# Under TensorFlow the Keras steps here run eagerly (tf_eager, tests/conftest.py):
# this file checks what they compute; the trainers' own tests cover the graph.
pytestmark = pytest.mark.tf_eager


N_ADJ, N_NOUN = len(ADJECTIVES), len(NOUNS)


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _usage_perplexity(counts):
    p = counts / counts.sum()
    nz = p[p > 0]
    return np.mean(counts > 0), np.exp(-np.sum(nz * np.log(nz)))


def test_run_tokenizer_keeps_the_index_axis_and_counts_each_sub_codebook():
    model = VQCT(tiny_vqct_backbone(), discriminator=None)
    model.build()
    backbone = model.backbone
    images = tiny_text_batch(10)["images"]
    out = tokenizer_runner.run_tokenizer(
        model, images, batch_size=4, verbose=0
    )
    indices = out["indices"]
    assert indices.shape == (10, 16, 16, TOP_K + 1)
    assert indices.dtype == np.int32
    # The same codes as the backbone's own encode.
    np.testing.assert_array_equal(indices, _np(backbone.encode(images)))
    # quantized = [mean of the adjective codes ; noun code] (numpy lookup).
    codebook = _np(backbone.quantizer.get_codebook(training=False))
    adjectives, nouns = codebook[:N_ADJ], codebook[N_ADJ:]
    expected = np.concatenate(
        [adjectives[indices[..., :TOP_K]].mean(-2), nouns[indices[..., TOP_K]]],
        axis=-1,
    )
    np.testing.assert_allclose(out["quantized"], expected, atol=1e-5)
    # Round trip: decode(indices) is the (clipped) reconstruction.
    decoded = np.clip(_np(backbone.decode(indices)), -1, 1)
    np.testing.assert_allclose(out["reconstructions"], decoded, atol=1e-4)

    adj_counts = np.bincount(indices[..., :TOP_K].ravel(), minlength=N_ADJ)
    noun_counts = np.bincount(indices[..., TOP_K].ravel(), minlength=N_NOUN)
    both = np.concatenate([adj_counts, noun_counts])
    # The (K,) histogram is over flattened ids: nouns offset by N_ADJ.
    np.testing.assert_array_equal(out["histogram"], both)
    np.testing.assert_array_equal(
        out["histogram"],
        np.bincount(
            backbone.flatten_indices(indices).ravel(),
            minlength=N_ADJ + N_NOUN,
        ),
    )
    usage, perplexity = _usage_perplexity(both)
    assert out["usage"] == pytest.approx(usage)
    assert out["perplexity"] == pytest.approx(perplexity, rel=1e-4)
    parts = out["sub_codebooks"]
    assert list(parts) == ["adjective", "noun"]
    for name, counts in (("adjective", adj_counts), ("noun", noun_counts)):
        usage, perplexity = _usage_perplexity(counts)
        assert parts[name]["usage"] == pytest.approx(usage)
        assert parts[name]["perplexity"] == pytest.approx(perplexity, rel=1e-4)
        assert parts[name]["codes_used"] == int((counts > 0).sum())
        np.testing.assert_array_equal(parts[name]["histogram"], counts)
    assert (parts["adjective"]["slots"], parts["noun"]["slots"]) == (TOP_K, 1)


def test_code_features_bag_of_flattened_ids():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 11, (3, 4, 4, 3))
    features = code_features(indices=ids, num_embeddings=11)
    # Each of the 4 * 4 * 3 slot entries counts once.
    expected = np.stack(
        [np.bincount(row.ravel(), minlength=11) / 48.0 for row in ids]
    )
    np.testing.assert_allclose(features, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="pass the quantized"):
        code_features(indices=ids, codebook=np.zeros((11, 2)))


@pytest.fixture(scope="module")
def prepared():
    prior = FakePrior()
    eval_split = splits.prepare_split(batches(16, seed=1), prior, verbose=0)
    probe_split = splits.prepare_split(
        batches(16, seed=2), prior, seed=1, protocol_mask_counts=(),
        training_masks=True, verbose=0,
    )
    return prior, eval_split, probe_split


def test_evaluate_vqct_plus_lg_reports_each_sub_codebook(prepared, tmp_path):
    prior, eval_split, probe_split = prepared
    model = tiny_lgvq(backbone=tiny_vqct_backbone(), discriminator=None)
    model.build()
    results, artifacts = evaluator.evaluate_model(
        model, eval_split, probe_split, text_prior=prior,
        probe_config=dict(epochs=1, batch_size=8, linear_epochs=2,
                          decoder_intermediate_dim=32),
        verbose=0, return_artifacts=True,
    )
    assert results["codebook_size"] == N_ADJ + N_NOUN
    parts = results["sub_codebooks"]
    assert set(parts) == {"adjective", "noun"}
    hist = artifacts["sub_codebook_histograms"]
    # Each position counts top_k adjectives and one noun.
    positions = 16 * 16 * 16
    assert hist["adjective"].sum() == TOP_K * positions
    assert hist["noun"].sum() == positions
    np.testing.assert_array_equal(
        artifacts["histogram"],
        np.concatenate([hist["adjective"], hist["noun"]]),
    )
    for name in ("adjective", "noun"):
        assert parts[name]["codes_used"] == int((hist[name] > 0).sum())
    # The probes ran on the VQCT codes (bag of flattened ids + vectors).
    assert results["attribute_probe"]["feature_dim"] == (
        N_ADJ + N_NOUN + 4 * 16
    )
    assert "retrieval" in results["own_heads"]
    assert "retrieval_probe" in results
    flat = flatten_metrics(results)
    assert flat["codebook_usage_pct_noun"] == pytest.approx(
        100.0 * parts["noun"]["usage"]
    )
    assert flat["codebook_perplexity_adjective"] == pytest.approx(
        parts["adjective"]["perplexity"]
    )
    rows = {r[0]: r for r in visualization.comparison_rows({"m": flat})}
    assert "Codebook usage, nouns (%) ↑" in rows
    figures = visualization.write_evaluation_figures(
        str(tmp_path), artifacts, name="VQCT+LG"
    )
    assert visualization.read_png(
        str(tmp_path / figures["codebook_usage.png"])
    ).ndim == 3


def test_flatten_metrics_of_a_one_codebook_model_has_no_sub_codebook_values():
    flat = flatten_metrics({"codebook_usage": 0.5, "sub_codebooks": None})
    assert flat["codebook_usage_pct"] == 50.0
    for part in ("adjective", "noun"):
        assert flat[f"codebook_usage_pct_{part}"] is None
        assert flat[f"codebook_perplexity_{part}"] is None
