"""What of the language model trains (frozen / full / LoRA through
keras-hub) and the from-scratch decoder, with a tiny GGUF Llama."""

import os

import keras
import numpy as np
import pytest
from keras import ops

from keras_lgvq.language_models import CausalLM
from keras_lgvq.language_models.causal_lm import check_scratch_config
from keras_lgvq.models.captioning import Captioner
from keras_lgvq.models.captioning import MLPPrefixMapper
from tests.models.captioning.tiny_lm import tiny_lm
from tests.models.captioning.tiny_lm import write_tiny_lm_gguf
from tests.models.tiny_configs import tiny_backbone

# Under TensorFlow the Keras steps here run eagerly (tf_eager, tests/conftest.py):
# this file checks what they compute; the trainers' own tests cover the graph.
pytestmark = pytest.mark.tf_eager


CAPTIONS = ["red cube", "blue ball", "two dots", "green star"]
GRID, CODE_DIM, K = 8, 16, 4


@pytest.fixture(scope="module")
def lm_path(tmp_path_factory):
    return write_tiny_lm_gguf(tmp_path_factory.mktemp("lm") / "tiny.gguf")


def _codes(n=4, seed=0):
    return np.random.default_rng(seed).integers(0, 32, (n, GRID, GRID))


def _mapper(lm_dim):
    return MLPPrefixMapper(GRID * GRID, CODE_DIM, K, lm_dim, hidden_dim=32,
                           name="mapper")


def _captioner(lm_path, **kwargs):
    lm = tiny_lm(lm_path)
    return Captioner(_mapper(lm.hidden_dim), lm,
                     tokenizer=tiny_backbone(resolution=16,
                                             attn_resolutions=()),
                     max_caption_length=12, **kwargs)


def _snapshot(variables):
    return {id(v): np.array(ops.convert_to_numpy(v)) for v in variables}


def _changed(before, variables):
    return {id(v) for v in variables
            if not np.array_equal(before[id(v)], ops.convert_to_numpy(v))}


def _lora_variables(lm):
    return [v for v in lm.weights if "lora_kernel" in v.path]


@pytest.mark.parametrize("mode", ["frozen", "full", "lora"])
def test_only_the_chosen_parts_of_the_lm_train(lm_path, mode):
    kwargs = {"lora_rank": 2} if mode == "lora" else {}
    model = _captioner(lm_path, language_model_training=mode, **kwargs)
    lm = model.language_model
    mapper_ids = {id(v) for v in model.mapper.trainable_weights}
    lora_ids = {id(v) for v in _lora_variables(lm)}
    lm_ids = {id(v) for v in lm.weights}
    want_lm = {"frozen": set(), "full": lm_ids, "lora": lora_ids}[mode]
    # LoRA on the query and value projection of the one attention block:
    # two (A, B) pairs; none without LoRA.
    assert len(lora_ids) == (4 if mode == "lora" else 0)
    assert {id(v) for v in model.trainable_variables} == mapper_ids | want_lm
    before = _snapshot(model.weights)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    # Two steps: LoRA's B factor starts at zero, so A moves from step 2 on.
    model.fit(model.prepare_inputs(CAPTIONS, codes=_codes()), epochs=2,
              batch_size=2, verbose=0)
    changed = _changed(before, model.weights)
    assert changed & lm_ids == want_lm
    assert mapper_ids <= changed
    assert not changed & {id(v) for v in model.tokenizer.weights}


def test_lora_model_saves_and_loads(lm_path, tmp_path):
    model = _captioner(lm_path, language_model_training="lora", lora_rank=2)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    data = model.prepare_inputs(CAPTIONS, codes=_codes())
    model.fit(data, epochs=3, batch_size=2, verbose=0)
    b = [ops.convert_to_numpy(v) for v in _lora_variables(model.language_model)
         if "lora_kernel_b" in v.path]
    assert all(np.abs(x).max() > 0 for x in b)
    want = ops.convert_to_numpy(model(data))
    path = str(tmp_path / "lora.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.language_model_training == "lora" and loaded.lora_rank == 2
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(data)), want,
                               atol=1e-5)
    # The adapters are merged into the kernels on save; training resumes
    # with fresh adapters (again only they and the mapper train).
    assert len(_lora_variables(loaded.language_model)) == 4
    preset = str(tmp_path / "preset")
    model.save_to_preset(preset)
    restored = Captioner.from_preset(preset)
    np.testing.assert_allclose(ops.convert_to_numpy(restored(data)), want,
                               atol=1e-5)
    assert {id(v) for v in restored.trainable_variables} == {
        id(v) for v in restored.mapper.trainable_weights
    } | {id(v) for v in _lora_variables(restored.language_model)}


def test_bad_training_options_are_clear_errors(lm_path):
    lm = tiny_lm(lm_path)
    mapper = _mapper(lm.hidden_dim)
    with pytest.raises(ValueError, match="language_model_training"):
        Captioner(mapper, lm, language_model_training="partial")
    with pytest.raises(ValueError, match="lora_rank"):
        Captioner(mapper, lm, language_model_training="full", lora_rank=4)
    with pytest.raises(ValueError, match="lora_rank"):
        Captioner(mapper, lm, language_model_training="lora", lora_rank=0)
    Captioner(mapper, lm, language_model_training="lora", lora_rank=2)
    # A second model on the same LM object cannot add adapters again.
    with pytest.raises(ValueError, match="already has LoRA"):
        Captioner(mapper, lm, language_model_training="lora")
    with pytest.raises(ValueError, match="decoder"):
        Captioner(mapper, lm, decoder="gpt")
    with pytest.raises(ValueError, match="decoder_config"):
        Captioner(mapper, tiny_lm(lm_path), decoder_config={"num_layers": 1})


def test_scratch_decoder_is_new_and_memorises_captions(lm_path, tmp_path):
    width = 48  # differs from the GGUF's 32: a new architecture
    scratch = {"hidden_dim": width, "num_layers": 1, "num_query_heads": 4,
               "num_key_value_heads": 2, "intermediate_dim": 64,
               "max_sequence_length": 64}
    model = Captioner(_mapper(width), lm_path, decoder="scratch",
                      decoder_config=scratch,
                      tokenizer=tiny_backbone(resolution=16,
                                              attn_resolutions=()),
                      max_caption_length=12)
    lm = model.language_model
    pretrained = tiny_lm(lm_path)
    assert lm.hidden_dim == width and lm.num_layers == 1
    # Same tokenizer (from the source), new weights.
    assert lm.vocabulary_size == pretrained.vocabulary_size
    assert lm.encode("red cube").tolist() == (
        pretrained.encode("red cube").tolist())
    assert lm.scratch["intermediate_dim"] == 64
    assert model.language_model_training == "full"
    assert {id(v) for v in lm.weights} <= {
        id(v) for v in model.trainable_variables}
    codes = _codes()
    data = model.prepare_inputs(CAPTIONS, codes=codes)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(data, epochs=60, batch_size=4, verbose=0)
    assert history.history["loss"][-1] < 0.1
    assert model.generate(codes=codes) == CAPTIONS
    want = ops.convert_to_numpy(model(data))
    path = str(tmp_path / "scratch.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.decoder == "scratch"
    assert loaded.language_model.scratch == lm.scratch
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(data)), want,
                               atol=1e-5)
    preset = str(tmp_path / "preset")
    model.save_to_preset(preset)
    assert os.path.isfile(os.path.join(preset, "tokenizer.json"))
    restored = Captioner.from_preset(preset)
    assert restored.decoder == "scratch"
    assert restored.language_model.hidden_dim == width
    np.testing.assert_allclose(ops.convert_to_numpy(restored(data)), want,
                               atol=1e-5)


def test_scratch_options_are_checked(lm_path):
    lm = tiny_lm(lm_path)
    with pytest.raises(ValueError, match="must train fully"):
        Captioner(_mapper(32), lm_path, decoder="scratch",
                  language_model_training="frozen")
    with pytest.raises(ValueError, match="pretrained `CausalLM`"):
        Captioner(_mapper(lm.hidden_dim), lm, decoder="scratch")
    with pytest.raises(ValueError, match="unknown fields"):
        check_scratch_config({"width": 3})
    with pytest.raises(ValueError, match="must divide"):
        check_scratch_config({"hidden_dim": 30, "num_query_heads": 4})
    with pytest.raises(ValueError, match="positive integer"):
        check_scratch_config({"num_layers": 0})
    # A mapper built for another width is refused with the fix.
    with pytest.raises(ValueError, match="lm_dim"):
        Captioner(_mapper(32), lm_path, decoder="scratch",
                  decoder_config={"hidden_dim": 64})
    scratch_lm = CausalLM(source=lm_path, scratch={"hidden_dim": 16},
                          trainable=True)
    assert scratch_lm.hidden_dim == 16
    Captioner(_mapper(16), scratch_lm, decoder="scratch")


def test_missing_or_corrupt_lm_asset_names_the_fetch_command(
    tmp_path, monkeypatch
):
    from keras_lgvq.language_models import smollm2_assets

    fetch = smollm2_assets.fetch_command()
    monkeypatch.setenv("KERAS_LGVQ_HOME", str(tmp_path))
    # The scratch decoder reads only the tokenizer, but from the same
    # verified asset.
    with pytest.raises(FileNotFoundError) as info:
        Captioner(_mapper(256), "smollm2", decoder="scratch")
    assert fetch in str(info.value)
    folder = smollm2_assets.smollm2_dir()
    with open(os.path.join(folder, smollm2_assets.GGUF_NAME), "wb") as f:
        f.write(b"GGUF damaged")
    with open(os.path.join(folder, smollm2_assets._MARKER), "w") as f:
        f.write("verified earlier\n")
    with pytest.raises(ValueError, match="corrupt") as info:
        Captioner(_mapper(576), "smollm2")
    assert f"{fetch} --force" in str(info.value)
