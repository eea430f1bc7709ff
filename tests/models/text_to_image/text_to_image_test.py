import math
import zipfile

import keras
import numpy as np
import pytest
from keras import ops

from keras_lgvq.models.text_to_image.text_to_image import TextToImage
from keras_lgvq.models.text_to_image.text_to_image import load_tokenizer
from keras_lgvq.models.text_to_image.text_to_image import mask_ratio
from keras_lgvq.models.text_to_image.text_to_image import masked_code_loss
from keras_lgvq.models.text_to_image.text_to_image_backbone import TextToImageBackbone
from tests.models.tiny_configs import tiny_backbone

BACKEND = keras.backend.backend()
K, GRID, TEXT_DIM, LENGTH = 8, 4, 6, 3
N = GRID * GRID


def _model(seed=0, **overrides):
    backbone = TextToImageBackbone(
        num_codes=overrides.pop("num_codes", K),
        grid_size=overrides.pop("grid_size", GRID),
        text_dim=TEXT_DIM,
        hidden_dim=32,
        num_layers=overrides.pop("num_layers", 2),
        num_heads=2,
        intermediate_dim=64,
    )
    model = TextToImage(backbone, seed=seed, **overrides)
    # Tiny models: compiling each decoding-step shape costs more than it
    # saves (the jit path is covered by the learning test).
    model.compile(optimizer="adam", jit_compile=False)
    return model


def _text(batch, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "token_features": rng.normal(size=(batch, LENGTH, TEXT_DIM)).astype(
            "float32"
        ),
        "padding_mask": np.ones((batch, LENGTH), bool),
    }


def _numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


# === Masking schedule ===


def test_mask_ratio_schedules_match_numpy():
    progress = np.linspace(0.0, 1.0, 11)
    np.testing.assert_allclose(
        mask_ratio(progress), np.cos(np.pi / 2 * progress), atol=1e-12
    )
    np.testing.assert_allclose(mask_ratio(progress, "linear"), 1 - progress)
    tensor = _numpy(mask_ratio(ops.convert_to_tensor(progress, "float32")))
    np.testing.assert_allclose(tensor, np.cos(np.pi / 2 * progress), atol=1e-6)
    with pytest.raises(ValueError, match="schedule"):
        mask_ratio(0.5, "square")


def test_training_mask_statistics_follow_the_cosine_schedule():
    model = _model()
    rows = 4000
    mask = _numpy(model.training_mask(rows, seed=keras.random.SeedGenerator(3)))
    assert mask.shape == (rows, N) and mask.dtype == bool
    counts = mask.sum(axis=1)
    # At least one position, at most all of them.
    assert counts.min() >= 1 and counts.max() <= N
    # Numpy reference: count = clip(ceil(cos(pi/2 u) N), 1, N), u ~ U(0, 1).
    u = (np.arange(200000) + 0.5) / 200000
    reference = np.clip(np.ceil(np.cos(np.pi / 2 * u) * N), 1, N)
    tolerance = 4 * reference.std() / math.sqrt(rows)
    assert abs(counts.mean() - reference.mean()) < tolerance
    # Whole distribution: P(count <= k) within a KS band.
    for k in (2, 6, 10, 14):
        expected = np.mean(reference <= k)
        assert abs(np.mean(counts <= k) - expected) < 0.03, k
    # Positions are chosen uniformly.
    per_position = mask.mean(axis=0)
    assert np.abs(per_position - per_position.mean()).max() < 0.04


# === Loss ===


def _numpy_masked_ce(logits, targets, mask):
    logits = logits - logits.max(-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_probs, targets[..., None], -1)[..., 0]
    return -(picked * mask).sum() / max(mask.sum(), 1)


def test_masked_loss_matches_numpy_and_ignores_unmasked_targets():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, N, K)).astype("float32")
    targets = rng.integers(0, K, (3, N)).astype("int32")
    mask = rng.random((3, N)) < 0.4
    loss = float(_numpy(masked_code_loss(logits, targets, mask)))
    np.testing.assert_allclose(
        loss, _numpy_masked_ce(logits, targets, mask), rtol=1e-5
    )
    changed = targets.copy()
    changed[~mask] = (changed[~mask] + 3) % K
    same = float(_numpy(masked_code_loss(logits, changed, mask)))
    assert same == pytest.approx(loss, abs=1e-6)
    changed = targets.copy()
    changed[mask] = (changed[mask] + 3) % K
    assert float(_numpy(masked_code_loss(logits, changed, mask))) != (
        pytest.approx(loss, abs=1e-4)
    )


def test_model_loss_counts_masked_positions_only():
    model = _model()
    rng = np.random.default_rng(1)
    codes = rng.integers(0, K, (4, GRID, GRID)).astype("int32")
    mask = rng.random((4, N)) < 0.5
    x = {"codes": codes, "mask": mask, **_text(4)}
    y_pred = model(x, training=False)
    np.testing.assert_array_equal(_numpy(y_pred["mask"]), mask)
    loss = float(_numpy(model.compute_loss(x=x, y_pred=y_pred)))
    reference = _numpy_masked_ce(
        _numpy(y_pred["logits"]), codes.reshape(4, N), mask
    )
    np.testing.assert_allclose(loss, reference, rtol=1e-5)
    flat = codes.reshape(4, N).copy()
    flat[~mask] = (flat[~mask] + 1) % K
    other = dict(x, codes=flat.reshape(4, GRID, GRID))
    assert float(_numpy(model.compute_loss(x=other, y_pred=y_pred))) == (
        pytest.approx(loss, abs=1e-6)
    )
    # The masked inputs carry no information about the masked codes.
    hidden = flat.copy()
    hidden[mask] = (hidden[mask] + 1) % K
    again = model(dict(x, codes=hidden.reshape(4, GRID, GRID)), training=False)
    unmasked_same = dict(x, codes=flat.reshape(4, GRID, GRID))
    np.testing.assert_allclose(
        _numpy(again["logits"]),
        _numpy(model(unmasked_same, training=False)["logits"]),
        atol=1e-5,
    )


# === Learning and sampling ===


def _toy_problem():
    """Four captions, each mapped to its own fixed code pattern."""
    rng = np.random.default_rng(7)
    # Distinct captions: each puts weight on its own feature.
    features = 0.3 * rng.normal(size=(4, LENGTH, TEXT_DIM)).astype("float32")
    features[np.arange(4), :, np.arange(4)] += 2.0
    patterns = rng.integers(0, K, (4, GRID, GRID)).astype("int32")
    return features, patterns


def test_tiny_model_learns_caption_to_pattern_and_samples_it_back():
    features, patterns = _toy_problem()
    reps = 24
    model = _model(seed=0, caption_dropout=0.1)
    # jit_compile: XLA on TensorFlow and JAX (torch runs eagerly).
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        jit_compile=BACKEND != "torch",
    )
    index = np.tile(np.arange(4), reps)
    history = model.fit(
        {
            "codes": patterns[index],
            "token_features": features[index],
            "padding_mask": np.ones((len(index), LENGTH), bool),
        },
        batch_size=32,
        epochs=40,
        verbose=0,
    )
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    text = {"token_features": features, "padding_mask": np.ones((4, 3), bool)}
    # Greedy conditional decoding returns each caption's pattern.
    greedy = model.generate_codes(
        text_features=text, steps=4, top_k=1, guidance_scale=1.0, seed=0
    )
    assert np.mean(greedy == patterns) >= 0.97
    # Sampling at temperature 1 with guidance mostly does too.
    samples = model.generate_codes(
        text_features=text, steps=4, guidance_scale=2.0, seed=0
    )
    assert np.mean(samples == patterns) >= 0.9
    # Without the caption the model cannot know which pattern to draw.
    unconditional = model.generate_codes(num_samples=4, steps=4, seed=0)
    assert np.mean(unconditional == patterns) < 0.7
    # Completion from half a grid with the caption recovers the rest.
    known = np.zeros((GRID, GRID), bool)
    known[: GRID // 2] = True
    completed = model.complete(
        patterns, known, text_features=text, steps=3, seed=1,
        guidance_scale=2.0,
    )
    np.testing.assert_array_equal(completed[:, known], patterns[:, known])
    assert np.mean(completed == patterns) >= 0.9


def test_guidance_zero_equals_the_unconditional_logits():
    model = _model()
    rng = np.random.default_rng(2)
    codes = rng.integers(0, K + 1, (3, N)).astype("int32")
    text = _text(3, seed=4)
    guided = _numpy(
        model.guided_logits(
            codes, text["token_features"], text["padding_mask"], 0.0
        )
    )
    unconditional = _numpy(
        model.code_logits(
            codes, text["token_features"], np.zeros((3, LENGTH), bool)
        )
    )
    np.testing.assert_allclose(guided, unconditional, atol=1e-5)
    conditional = _numpy(
        model.code_logits(codes, text["token_features"], text["padding_mask"])
    )
    assert np.abs(conditional - unconditional).max() > 1e-5
    scaled = _numpy(
        model.guided_logits(
            codes, text["token_features"], text["padding_mask"], 2.5
        )
    )
    np.testing.assert_allclose(
        scaled, unconditional + 2.5 * (conditional - unconditional), atol=1e-4
    )
    # The same holds for whole samples: guidance 0 with a caption is the
    # unconditional sampler.
    with_caption = model.generate_codes(
        text_features=text, guidance_scale=0.0, steps=3, seed=5
    )
    without = model.generate_codes(num_samples=3, steps=3, seed=5)
    np.testing.assert_array_equal(with_caption, without)


@pytest.mark.parametrize("with_text", [False, True])
def test_completion_never_changes_the_given_codes(with_text):
    model = _model()
    rng = np.random.default_rng(3)
    codes = rng.integers(0, K, (5, GRID, GRID)).astype("int32")
    known = rng.random((5, GRID, GRID)) < 0.5
    known[0] = False  # nothing known: plain generation
    known[1] = True  # everything known: nothing to do
    text = _text(5) if with_text else None
    out = model.complete(
        codes, known, text_features=text, steps=4, seed=0, temperature=2.0
    )
    np.testing.assert_array_equal(out[known], codes[known])
    assert out.min() >= 0 and out.max() < K


def test_sampling_is_deterministic_per_seed_and_batch_independent():
    model = _model()
    text = _text(6, seed=1)
    kwargs = dict(text_features=text, steps=5, temperature=1.5)
    a = model.generate_codes(seed=11, batch_size=6, **kwargs)
    b = model.generate_codes(seed=11, batch_size=6, **kwargs)
    c = model.generate_codes(seed=11, batch_size=4, **kwargs)
    d = model.generate_codes(seed=12, batch_size=6, **kwargs)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert (a != d).any()
    assert a.shape == (6, GRID, GRID) and a.min() >= 0 and a.max() < K
    # Top-k 1 is greedy: the noise no longer matters.
    g1 = model.generate_codes(seed=1, top_k=1, remask_temperature=0.0,
                              **kwargs)
    g2 = model.generate_codes(seed=2, top_k=1, remask_temperature=0.0,
                              **kwargs)
    np.testing.assert_array_equal(g1, g2)
    repeated = model.generate_codes(
        text_features=_text(2), samples_per_caption=3, steps=2, seed=0
    )
    assert repeated.shape == (6, GRID, GRID)


def test_decoding_update_decides_the_most_confident_positions():
    model = _model()
    codes = np.full((1, N), K, "int32")
    codes[0, :4] = [1, 2, 3, 4]  # already decided
    logits = np.full((1, N, K), -10.0, "float32")
    # Position p is confident in code p % K with a margin growing with p.
    for p in range(N):
        logits[0, p, p % K] = float(p)
    out = _numpy(
        model.decoding_update(
            codes,
            logits,
            temperature=np.ones(1, "float32"),
            uniform=np.full((1, N), 0.5, "float32"),
            gumbel=np.zeros((1, N), "float32"),
            noise_scale=np.zeros(1, "float32"),
            num_masked=np.array([5], "int32"),
            top_k=1,
        )
    )[0]
    np.testing.assert_array_equal(out[:4], [1, 2, 3, 4])
    # The five least confident undecided positions (4..8) stay masked.
    np.testing.assert_array_equal(out[4:9], K)
    np.testing.assert_array_equal(out[9:], np.arange(9, N) % K)


# === Saving ===


def test_keras_file_and_preset_round_trip_with_a_tokenizer(tmp_path):
    tokenizer = tiny_backbone(num_embeddings=K)  # 32 px, f2: 16x16 grid
    backbone = TextToImageBackbone(
        num_codes=K, grid_size=tokenizer.grid_size, text_dim=TEXT_DIM,
        hidden_dim=16, num_layers=1, num_heads=2,
    )
    model = TextToImage(backbone, tokenizer=tokenizer, seed=0)
    text = _text(2)
    before = model.generate_codes(text_features=text, steps=2, seed=3)
    path = str(tmp_path / "t2i.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(
        loaded.generate_codes(text_features=text, steps=2, seed=3), before
    )
    images = loaded.decode_codes(before)
    assert images.shape == (2, 32, 32, 3)
    np.testing.assert_allclose(images, model.decode_codes(before), atol=1e-5)
    preset = str(tmp_path / "preset")
    model.save_to_preset(preset)
    restored = TextToImage.from_preset(preset)
    np.testing.assert_array_equal(
        restored.generate_codes(text_features=text, steps=2, seed=3), before
    )
    assert restored.tokenizer is not None
    with zipfile.ZipFile(path) as archive:
        assert not any(n.endswith(".pkl") for n in archive.namelist())


def test_model_sampling_defaults_apply_save_and_yield_to_arguments(tmp_path):
    plain = _model()
    tuned = _model(sampling={"remask_temperature": 50.0, "steps": 3})
    tuned.set_weights(plain.get_weights())
    text = _text(3, seed=2)
    # The model's defaults equal passing them; unset ones stay global.
    expected = plain.generate_codes(
        text_features=text, remask_temperature=50.0, steps=3, seed=5
    )
    np.testing.assert_array_equal(
        tuned.generate_codes(text_features=text, seed=5), expected
    )
    # An argument wins over the model's default.
    np.testing.assert_array_equal(
        tuned.generate_codes(text_features=text, steps=12, seed=5,
                             remask_temperature=4.5),
        plain.generate_codes(text_features=text, seed=5),
    )
    assert tuned.get_config()["sampling"] == {
        "remask_temperature": 50.0, "steps": 3
    }
    assert plain.get_config()["sampling"] is None
    path = str(tmp_path / "tuned.keras")
    tuned.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(
        loaded.generate_codes(text_features=text, seed=5), expected
    )


def test_presets_carry_their_measured_sampling():
    model = TextToImage.from_preset(
        "text_to_image_scenes", text_prior=None, num_layers=1
    )
    assert model.sampling["remask_temperature"] == 50.0
    assert model.sampling["steps"] == 12
    other = TextToImage.from_preset(
        "text_to_image_scenes", text_prior=None, num_layers=1,
        sampling={"remask_temperature": 1.0},
    )
    assert other.sampling == {"remask_temperature": 1.0}


def test_bad_sampling_defaults_name_the_key():
    with pytest.raises(ValueError, match="unknown keys.*remask"):
        _model(sampling={"remask": 1.0})
    with pytest.raises(ValueError, match=r"sampling\['steps'\]"):
        _model(sampling={"steps": 0})
    with pytest.raises(ValueError, match=r"sampling\['top_k'\]"):
        _model(sampling={"top_k": K + 1})
    with pytest.raises(ValueError, match="must be a dict"):
        _model(sampling=[("steps", 3)])


def test_builtin_presets_build():
    model = TextToImage.from_preset(
        "text_to_image_scenes", text_prior=None, num_layers=1
    )
    assert model.built and model.grid_size == 16 and model.num_codes == 256
    assert model.backbone.num_layers == 1
    with pytest.raises(ValueError, match="Valid names"):
        TextToImage.from_preset("text_to_image_sceens")


# === Bad input ===


def test_bad_sampling_arguments_name_the_argument():
    model = _model()
    text = _text(2)
    with pytest.raises(ValueError, match="guidance_scale"):
        model.generate_codes(text_features=text, guidance_scale=-1.0)
    with pytest.raises(ValueError, match="steps"):
        model.generate_codes(text_features=text, steps=0)
    with pytest.raises(ValueError, match="top_k"):
        model.generate_codes(text_features=text, top_k=K + 1)
    with pytest.raises(ValueError, match="temperature"):
        model.generate_codes(text_features=text, temperature=0.0)
    with pytest.raises(ValueError, match="captions"):
        model.generate_codes(captions=[1, 2])
    with pytest.raises(ValueError, match="captions"):
        model.generate_codes(captions=5)
    with pytest.raises(ValueError, match="text prior"):
        model.generate_codes(captions=["a red star"])
    with pytest.raises(ValueError, match="text_features"):
        model.generate_codes(text_features={"token_features": np.zeros(3)})
    with pytest.raises(ValueError, match="num_samples"):
        model.generate_codes()


def test_bad_codes_name_the_argument():
    model = _model()
    codes = np.zeros((2, GRID, GRID), "int32")
    known = np.ones((GRID, GRID), bool)
    with pytest.raises(ValueError, match="outside"):
        model.complete(codes + K, known)
    with pytest.raises(ValueError, match="known_codes.*grid"):
        model.complete(np.zeros((2, GRID + 1, GRID + 1), "int32"),
                       np.ones((GRID + 1, GRID + 1), bool))
    with pytest.raises(ValueError, match="integer"):
        model.complete(codes.astype("float32"), known)
    # Unknown positions are not read: any placeholder is fine there.
    placeholder = codes.copy()
    placeholder[:, 0, 0] = -1
    part = known.copy()
    part[0, 0] = False
    out = model.complete(placeholder, part, steps=2)
    assert out.min() >= 0


def test_tokenizer_checks(tmp_path):
    tokenizer = tiny_backbone(num_embeddings=K)
    backbone = TextToImageBackbone(
        num_codes=K, grid_size=GRID, text_dim=TEXT_DIM, hidden_dim=16,
        num_layers=1, num_heads=2,
    )
    with pytest.raises(ValueError, match="grid"):
        TextToImage(backbone, tokenizer=tokenizer)
    wrong_codes = TextToImageBackbone(
        num_codes=K + 1, grid_size=tokenizer.grid_size, text_dim=TEXT_DIM,
        hidden_dim=16, num_layers=1, num_heads=2,
    )
    with pytest.raises(ValueError, match="codes"):
        TextToImage(wrong_codes, tokenizer=tokenizer)
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    plain_path = str(tmp_path / "plain.keras")
    plain.save(plain_path)
    with pytest.raises(ValueError, match="not a keras_lgvq tokenizer"):
        load_tokenizer(plain_path)
    text_file = tmp_path / "notes.keras"
    text_file.write_text("hello")
    with pytest.raises(ValueError, match="not a `.keras` file"):
        load_tokenizer(str(text_file))
    with pytest.raises(FileNotFoundError, match="tokenizer"):
        load_tokenizer(str(tmp_path / "missing.keras"))
    with pytest.raises(ValueError, match="tokenizer"):
        load_tokenizer(keras.layers.Dense(3))
    # VQCT codes hold several ids per position: refused, with the reason.
    from tests.models.vqct.tiny_vqct import tiny_vqct_backbone

    vqct = tiny_vqct_backbone()
    assert load_tokenizer(vqct) is vqct  # the code cache reads VQCT codes
    with pytest.raises(ValueError, match="one code id per position"):
        TextToImage(wrong_codes, tokenizer=vqct)
    # A tokenizer saved by the package loads, frozen.
    path = str(tmp_path / "tokenizer.keras")
    tokenizer.save(path)
    loaded = load_tokenizer(path)
    assert loaded.grid_size == tokenizer.grid_size and not loaded.trainable


def test_load_tokenizer_takes_a_shipped_preset_name():
    from keras_lgvq.models.vqgan.vqgan_backbone import VQGANBackbone

    tokenizer = load_tokenizer("scenes_vqgan_trained")
    assert tokenizer.grid_size == 16 and tokenizer.num_embeddings == 256
    assert not tokenizer.trainable
    # The shipped weights, not a fresh initialisation.
    untrained = VQGANBackbone.from_preset(
        "scenes_vqgan_trained", load_weights=False
    )
    trained = [np.asarray(w) for w in tokenizer.get_weights()]
    fresh = [np.asarray(w) for w in untrained.get_weights()]
    assert any(not np.allclose(a, b) for a, b in zip(trained, fresh))
    # A built-in preset without shipped weights would give random codes.
    with pytest.raises(ValueError, match="without trained weights"):
        load_tokenizer("scenes")
    with pytest.raises(FileNotFoundError, match="scenes_lgvq_trained"):
        load_tokenizer("no_such_tokenizer")


def test_training_batches_must_carry_codes():
    model = _model()
    with pytest.raises(ValueError, match="codes"):
        model({"images": np.zeros((1, 32, 32, 3), "float32")})
