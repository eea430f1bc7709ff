"""VQA presets (scenes_vqa, coco_qa_vqa), preset round trips with the
answer vocabulary, and LoRA on the VQA model's LM; tiny GGUF Llama."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_lgvq.datasets import scenes
from keras_lgvq.datasets import scenes_questions
from keras_lgvq.models import presets
from keras_lgvq.models.vqa import VQAModel
from keras_lgvq.models.vqa.vqa_presets import SCENES_ANSWERS
from tests.models.captioning.tiny_lm import tiny_lm
from tests.models.captioning.tiny_lm import write_tiny_lm_gguf
from tests.models.tiny_configs import tiny_backbone

# Under TensorFlow the Keras steps here run eagerly (tf_eager, tests/conftest.py):
# this file checks what they compute; the trainers' own tests cover the graph.
pytestmark = pytest.mark.tf_eager


GRID = 8


@pytest.fixture(scope="module")
def lm_path(tmp_path_factory):
    return write_tiny_lm_gguf(tmp_path_factory.mktemp("lm") / "tiny.gguf")


def _tokenizer():
    return tiny_backbone(resolution=16, attn_resolutions=())


def _codes(n, seed=0):
    return np.random.default_rng(seed).integers(0, 32, (n, GRID, GRID))


def test_presets_are_registered_with_their_settings():
    assert presets.list_presets("VQAModel") == [
        "coco_qa_vqa", "scenes_cvq_lg_vqa", "scenes_lgvq_vqa",
        "scenes_lqae_vqa", "scenes_vqa", "scenes_vqct_vqa",
        "scenes_vqgan_vqa"]
    scenes_spec = presets.get_preset("scenes_vqa", "VQAModel")
    assert scenes_spec["tokenizer_preset"] == "scenes"
    coco = presets.get_preset("coco_qa_vqa", "VQAModel")
    assert coco["answer_vocabulary"] is None
    assert coco["training"]["batch_size"] == 60
    assert coco["training"]["epochs"] == 50
    with pytest.raises(ValueError, match="Valid names"):
        VQAModel.from_preset("scenes_vqq")
    with pytest.raises(ValueError, match="cannot be built by VQAModel"):
        VQAModel.from_preset("captioning_scenes_mlp")


def test_scenes_vocabulary_covers_every_generated_answer():
    # Independent: every answer the generator can give, by type.
    want = set(scenes.COLORS) | set(scenes.SHAPES) | set(scenes.SIZES) | {
        "zero", "one", "two", "three", "yes", "no"}
    assert set(SCENES_ANSWERS) == want
    assert SCENES_ANSWERS == sorted(SCENES_ANSWERS)
    questions = scenes_questions.generate_questions(
        40, seed=3, split="test", questions_per_image=6, balance=False,
        include_images=False)
    assert {q["answer"] for q in questions} <= set(SCENES_ANSWERS)


def test_scenes_vqa_builds_and_round_trips(lm_path, tmp_path):
    model = VQAModel.from_preset("scenes_vqa", tokenizer=_tokenizer(),
                                 language_model=tiny_lm(lm_path))
    assert model.answer_vocabulary == SCENES_ANSWERS
    assert model.prefix_length == 10
    assert model.max_question_length == 16
    assert model.language_model_training == "frozen"
    assert model.mapper.num_positions == GRID * GRID
    data = model.prepare_inputs(["what color is the star?"], ["red"],
                                codes=_codes(1))
    want = ops.convert_to_numpy(model(data))
    preset = str(tmp_path / "preset")
    model.save_to_preset(preset)
    restored = VQAModel.from_preset(preset, answer_vocabulary=SCENES_ANSWERS)
    assert restored.answer_vocabulary == SCENES_ANSWERS
    np.testing.assert_allclose(ops.convert_to_numpy(restored(data)), want,
                               atol=1e-5)
    swapped = list(SCENES_ANSWERS)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    with pytest.raises(ValueError, match="vocabulary mismatch"):
        VQAModel.from_preset(preset, answer_vocabulary=swapped)
    with pytest.raises(ValueError, match="vocabulary mismatch"):
        VQAModel.from_preset(preset, answer_vocabulary=SCENES_ANSWERS[:-1])


def test_coco_qa_preset_needs_the_training_answers(lm_path):
    with pytest.raises(ValueError, match="answer_vocabulary"):
        VQAModel.from_preset("coco_qa_vqa", tokenizer=_tokenizer(),
                             language_model=tiny_lm(lm_path))
    vocab = ["blue", "dog", "table", "two"]
    model = VQAModel.from_preset(
        "coco_qa_vqa", tokenizer=_tokenizer(),
        language_model=tiny_lm(lm_path), answer_vocabulary=vocab,
        num_layers=1, hidden_dim=32, num_heads=2)
    assert model.answer_vocabulary == vocab
    assert model.max_question_length == 32
    assert type(model.mapper).__name__ == "TransformerPrefixMapper"
    assert model.mapper.num_layers == 1  # mapper field overridden


def test_coco_qa_preset_builds_offline_with_its_tokenizer_architecture(
    lm_path,
):
    # No tokenizer passed: the preset's untrained 256 px f16 K=1024
    # architecture is built, with nothing downloaded.
    model = VQAModel.from_preset(
        "coco_qa_vqa", language_model=tiny_lm(lm_path),
        answer_vocabulary=["no", "yes"], num_layers=1)
    assert int(model.tokenizer.grid_size) == 16
    assert int(model.tokenizer.num_embeddings) == 1024
    assert model.mapper.num_positions == 256
    assert model.mapper.prefix_length == 10


def test_lora_vqa_trains_only_adapters_mapper_and_classifier(lm_path,
                                                             tmp_path):
    lm = tiny_lm(lm_path)
    model = VQAModel.from_preset(
        "scenes_vqa", tokenizer=_tokenizer(), language_model=lm,
        language_model_training="lora", lora_rank=2, hidden_dim=16,
        prefix_length=2)
    lora = [v for v in lm.weights if "lora_kernel" in v.path]
    assert len(lora) == 4
    heads = model.mapper.trainable_weights + model.classifier.trainable_weights
    assert {id(v) for v in model.trainable_variables} == {
        id(v) for v in heads + lora}
    before = {id(v): np.array(ops.convert_to_numpy(v)) for v in model.weights}
    questions = ["is there a red star?", "what color is the star?"] * 2
    answers = ["yes", "red", "no", "blue"]
    data = model.prepare_inputs(questions, answers, codes=_codes(4))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(data, epochs=2, batch_size=2, verbose=0)
    changed = {id(v) for v in model.weights
               if not np.array_equal(before[id(v)], ops.convert_to_numpy(v))}
    lm_ids = {id(v) for v in lm.weights}
    assert changed & lm_ids == {id(v) for v in lora}
    want = ops.convert_to_numpy(model(data))
    path = str(tmp_path / "vqa_lora.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.language_model_training == "lora"
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(data)), want,
                               atol=1e-5)


def test_preset_without_the_lm_asset_names_the_fetch_command(
    tmp_path, monkeypatch
):
    from keras_lgvq.language_models import smollm2_assets

    monkeypatch.setenv("KERAS_LGVQ_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        VQAModel.from_preset("scenes_vqa", tokenizer=_tokenizer())
    assert smollm2_assets.fetch_command() in str(info.value)
