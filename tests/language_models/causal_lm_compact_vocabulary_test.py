"""A scratch decoder over a compact vocabulary (`scratch["vocabulary_ids"]`):
the id map is exact, saved, enforced, and generation stays inside it."""

import os
import zipfile

import keras
import numpy as np
import pytest
from keras import ops

from keras_lgvq.language_models import CausalLM
from keras_lgvq.language_models import compact_vocabulary
from keras_lgvq.language_models import smollm2_assets
from keras_lgvq.language_models.causal_lm import check_scratch_config
from keras_lgvq.language_models.causal_lm import special_token_ids
from keras_lgvq.models.captioning import Captioner
from keras_lgvq.models.captioning import MLPPrefixMapper
from tests.models.captioning.tiny_lm import write_tiny_lm_gguf
from tests.models.tiny_configs import tiny_backbone

# Under TensorFlow the Keras steps here run eagerly (tf_eager, tests/conftest.py):
# this file checks what they compute; the trainers' own tests cover the graph.
pytestmark = pytest.mark.tf_eager


CAPTIONS = ["red cube", "blue ball", "two dots", "green star"]
GRID, CODE_DIM, K = 8, 16, 4
SCRATCH = {"hidden_dim": 32, "num_layers": 1, "num_query_heads": 4,
           "num_key_value_heads": 2, "intermediate_dim": 48,
           "max_sequence_length": 64}


@pytest.fixture(scope="module")
def lm_path(tmp_path_factory):
    return write_tiny_lm_gguf(tmp_path_factory.mktemp("lm") / "tiny.gguf")


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), "float64")


def _rms_norm(x, scale, eps):
    return x / np.sqrt(np.mean(x * x, -1, keepdims=True) + eps) * scale


def test_compact_vocabulary_holds_the_text_ids_and_the_specials(lm_path):
    full = CausalLM(lm_path, trainable=True, scratch=SCRATCH)
    ids = compact_vocabulary(lm_path, CAPTIONS)
    text_ids = {int(t) for c in CAPTIONS for t in full.tokenizer(c)}
    assert ids == sorted(text_ids | set(special_token_ids(full.tokenizer)))
    assert full.stop_token_ids[0] in ids and full.pad_token_id in ids
    # A CausalLM gives the same list; extra ids are added.
    assert compact_vocabulary(full, CAPTIONS) == ids
    question = int(full.tokenizer("?")[0])
    assert question not in ids
    assert question in compact_vocabulary(full, CAPTIONS,
                                          extra_ids=[question])
    with pytest.raises(ValueError, match="extra_ids"):
        compact_vocabulary(full, CAPTIONS, extra_ids=[10_000])
    with pytest.raises(ValueError, match="texts"):
        compact_vocabulary(full, [])


def test_vocabulary_ids_are_validated(lm_path):
    for bad, match in (([5, 3], "strictly increasing"),
                       ([1, 1, 2], "strictly increasing"),
                       ([-1, 2], "non-negative"),
                       ([1], "at least 2"),
                       ("abc", "sorted list")):
        with pytest.raises(ValueError, match=match):
            check_scratch_config({"vocabulary_ids": bad})
    assert check_scratch_config({"vocabulary_ids": np.array([0, 4])})[
        "vocabulary_ids"] == [0, 4]
    assert check_scratch_config({})["vocabulary_ids"] is None
    with pytest.raises(ValueError, match="tokenizer has 30 ids"):
        CausalLM(lm_path, trainable=True,
                 scratch=dict(SCRATCH, vocabulary_ids=[0, 99]))
    # The stop / pad id (0 here) must be in the list.
    with pytest.raises(ValueError, match="special ids"):
        CausalLM(lm_path, trainable=True,
                 scratch=dict(SCRATCH, vocabulary_ids=[4, 5, 6]))


def test_compact_logits_equal_the_full_model_gathered(lm_path):
    ids = compact_vocabulary(lm_path, CAPTIONS)
    keras.utils.set_random_seed(1)
    full = CausalLM(lm_path, trainable=True, scratch=SCRATCH, dtype="float32")
    compact = CausalLM(lm_path, trainable=True, dtype="float32",
                       scratch=dict(SCRATCH, vocabulary_ids=ids))
    assert compact.vocabulary_size == len(ids) < full.vocabulary_size
    assert compact.tokenizer_vocabulary_size == full.vocabulary_size
    # Same weights, the embedding restricted to the listed rows.
    for a, b in zip(compact.backbone.weights, full.backbone.weights):
        value = _np(b)
        if a.path.endswith("token_embedding/embeddings"):
            value = value[ids]
        a.assign(value.astype("float32"))
    tokens = np.stack([full.encode("red cube"),
                       full.encode("blue ball")[:8]]).astype("int32")
    h_full = full.hidden_states(full.embed_tokens(tokens))
    h_compact = compact.hidden_states(compact.embed_tokens(tokens))
    np.testing.assert_allclose(_np(h_compact), _np(h_full), atol=1e-5)
    logits_full = _np(full.logits(h_full))
    logits_compact = _np(compact.logits(h_compact))
    assert logits_compact.shape == tokens.shape + (len(ids),)
    np.testing.assert_allclose(logits_compact, logits_full[..., ids],
                               atol=1e-4)
    # numpy reference of the tied head over the compact rows.
    table = _np(full.backbone.token_embedding.embeddings)[ids]
    np.testing.assert_allclose(logits_compact, _np(h_full) @ table.T,
                               atol=1e-4)
    # The id maps are each other's inverse.
    compact_ids = _np(compact.to_compact_ids(np.asarray(ids, "int32")))
    np.testing.assert_array_equal(compact_ids, np.arange(len(ids)))
    np.testing.assert_array_equal(
        compact.to_tokenizer_ids(np.arange(len(ids))), ids)


def test_text_outside_the_vocabulary_is_refused(lm_path):
    ids = compact_vocabulary(lm_path, CAPTIONS)
    lm = CausalLM(lm_path, trainable=True,
                  scratch=dict(SCRATCH, vocabulary_ids=ids))
    with pytest.raises(ValueError) as info:
        lm.encode("red fox")
    message = str(info.value)
    fox_f = int(lm.tokenizer("f")[0])
    assert "'f'" in message and f"id {fox_f}" in message
    assert f"{len(ids)} ids" in message and "compact_vocabulary" in message
    assert "vocabulary_ids=None" in message
    model = Captioner(
        MLPPrefixMapper(GRID * GRID, CODE_DIM, K, 32, hidden_dim=32),
        lm, decoder="scratch", max_caption_length=12,
        tokenizer=tiny_backbone(resolution=16, attn_resolutions=()))
    codes = np.zeros((1, GRID, GRID), "int32")
    with pytest.raises(ValueError, match="compact vocabulary"):
        model.prepare_inputs(["a fox"], codes=codes)
    # Token ids made elsewhere are checked before training, too.
    data = model.prepare_inputs(["red cube"], codes=codes)
    data["token_ids"][0, 1] = fox_f
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=f"id {fox_f}"):
        model.fit(data, epochs=1, verbose=0)


def test_compact_captioner_trains_generates_inside_and_round_trips(
        lm_path, tmp_path):
    ids = compact_vocabulary(lm_path, CAPTIONS)
    keras.utils.set_random_seed(0)
    model = Captioner(
        MLPPrefixMapper(GRID * GRID, CODE_DIM, K, 32, hidden_dim=32,
                        name="mapper"),
        lm_path, decoder="scratch",
        decoder_config=dict(SCRATCH, vocabulary_ids=ids),
        tokenizer=tiny_backbone(resolution=16, attn_resolutions=()),
        max_caption_length=12)
    codes = np.random.default_rng(0).integers(0, 32, (4, GRID, GRID))
    data = model.prepare_inputs(CAPTIONS, codes=codes)
    # Untrained: greedy and beam outputs are tokenizer ids in the list.
    for beam in (1, 3):
        for seq in model.generate_ids(codes=codes, beam_size=beam,
                                      max_new_tokens=6):
            assert set(np.asarray(seq).tolist()) <= set(ids)
    # The loss is the numpy cross-entropy over the compact columns.
    logits = _np(model(data))
    targets = np.vectorize({t: j for j, t in enumerate(ids)}.get)(
        data["token_ids"])
    shifted = logits - logits.max(-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, targets[..., None], -1)[..., 0]
    mask = data["padding_mask"]
    want = (nll * mask).sum() / mask.sum()
    got = float(ops.convert_to_numpy(model.compute_loss(x=data,
                                                        y_pred=logits)))
    np.testing.assert_allclose(got, want, rtol=1e-4)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(data, epochs=60, batch_size=4, verbose=0)
    assert history.history["loss"][-1] < 0.1
    assert model.generate(codes=codes) == CAPTIONS
    assert model.generate(codes=codes, beam_size=2) == CAPTIONS
    want = _np(model(data))
    path = str(tmp_path / "compact.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.language_model.scratch["vocabulary_ids"] == ids
    np.testing.assert_array_equal(loaded.language_model.vocabulary_ids, ids)
    np.testing.assert_allclose(_np(loaded(data)), want, atol=1e-5)
    assert loaded.generate(codes=codes) == CAPTIONS
    preset = str(tmp_path / "preset")
    model.save_to_preset(preset)
    restored = Captioner.from_preset(preset)
    np.testing.assert_array_equal(restored.language_model.vocabulary_ids,
                                  ids)
    assert restored.generate(codes=codes) == CAPTIONS


@pytest.mark.skipif(not smollm2_assets.is_available(),
                    reason="SmolLM2 asset not fetched: run `python -m "
                    "keras_lgvq.language_models.smollm2_assets`")
def test_smollm2_compact_decoder_file_is_small(tmp_path):
    """On SmolLM2's 49,152-id tokenizer the saved file shrinks by the
    embedding: 49,152 x 32 floats (6.3 MB) -> a few dozen rows."""
    texts = ["a small red circle above a large blue square",
             "two green triangles on a dark background"]
    ids = compact_vocabulary("smollm2", texts)
    assert len(ids) < 40
    scratch = {"hidden_dim": 32, "num_layers": 1, "num_query_heads": 4,
               "num_key_value_heads": 2, "intermediate_dim": 48}
    sizes = {}
    for name, vocab in (("full", None), ("compact", ids)):
        lm = CausalLM("smollm2", trainable=True,
                      scratch=dict(scratch, vocabulary_ids=vocab))
        model = Captioner(
            MLPPrefixMapper(GRID * GRID, CODE_DIM, K, 32, hidden_dim=32),
            lm, decoder="scratch", max_caption_length=16)
        path = str(tmp_path / f"{name}.keras")
        model.save(path)
        sizes[name] = os.path.getsize(path)
        with zipfile.ZipFile(path) as archive:
            sizes[name + " weights"] = archive.getinfo(
                "model.weights.h5").file_size
        loaded = keras.saving.load_model(path, safe_mode=True)
        ref = loaded.language_model
        assert ref.vocabulary_size == (len(ids) if vocab else 49152)
        assert ref.encode(texts[0]).tolist() == lm.encode(texts[0]).tolist()
    # The weights lose (49,152 - len(ids)) x 32 float32 rows; the file also
    # holds the BPE tokenizer's vocabulary and merges (~1.5 MB) either way.
    assert sizes["full weights"] > 6_300_000
    assert sizes["compact weights"] < 300_000
    assert sizes["full"] - sizes["compact"] > 6_000_000
    with pytest.raises(ValueError, match="compact vocabulary"):
        loaded.language_model.encode("a purple hexagon")
