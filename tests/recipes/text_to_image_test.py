import json
import math
import os

import pytest

from recipes import text_to_image


def _minilm_available():
    from keras_lgvq.text_priors import minilm_assets

    return minilm_assets.is_available()


needs_minilm = pytest.mark.skipif(
    not _minilm_available(),
    reason="MiniLM text prior is not cached (python -m "
    "keras_lgvq.fetch_assets)",
)


def test_settings_per_mode_and_overrides():
    default = text_to_image.resolve_settings(
        text_to_image.parse_args(["--tokenizer", "a.keras"])
    )
    quick = text_to_image.resolve_settings(
        text_to_image.parse_args(["--tokenizer", "a.keras", "--quick"])
    )
    assert default["mode"] == "default" and quick["mode"] == "quick"
    with pytest.raises(ValueError, match="--eval-size must be >= 2"):
        text_to_image.resolve_settings(text_to_image.parse_args(
            ["--tokenizer", "a.keras", "--eval-size", "1"]))
    assert default["names"] == ["a"]
    assert default["sampling_guidance_scale"] == 3.0
    # The judge sees half its training scenes degraded unless told.
    assert default["judge_degradation"] == 0.5
    assert default["train_steps"] == 1000
    clean = text_to_image.resolve_settings(
        text_to_image.parse_args(
            ["--tokenizer", "scenes_lgvq_trained", "--judge-degradation", "0"]
        )
    )
    assert clean["judge_degradation"] == 0.0
    assert clean["names"] == ["scenes_lgvq_trained"]
    with pytest.raises(ValueError, match="judge-degradation"):
        text_to_image.resolve_settings(
            text_to_image.parse_args(
                ["--tokenizer", "a.keras", "--judge-degradation", "1.5"]
            )
        )
    custom = text_to_image.resolve_settings(
        text_to_image.parse_args(
            ["--tokenizer", "runs/x/lgvq/model.keras", "--tokenizer",
             "runs/x/vqgan/model.keras", "--train-steps", "7",
             "--guidance-scale", "1.5", "--top-k", "20"]
        )
    )
    assert custom["names"] == ["lgvq", "vqgan"]
    assert custom["train_steps"] == 7 and custom["warmup_steps"] == 1
    assert custom["sampling_guidance_scale"] == 1.5
    assert custom["sampling_top_k"] == 20
    with pytest.raises(ValueError, match="guidance-scale"):
        text_to_image.resolve_settings(
            text_to_image.parse_args(
                ["--tokenizer", "a.keras", "--guidance-scale", "-1"]
            )
        )
    with pytest.raises(ValueError, match="name"):
        text_to_image.resolve_settings(
            text_to_image.parse_args(
                ["--tokenizer", "a.keras", "--name", "x", "--name", "y"]
            )
        )
    with pytest.raises(SystemExit):
        text_to_image.parse_args(["--quick"])  # --tokenizer is required


def test_held_out_captions_ask_for_a_held_out_combination():
    from keras_lgvq.metrics.conditioning_accuracy import held_out_combinations
    from keras_lgvq.metrics.conditioning_accuracy import parse_scene_caption

    _, examples = text_to_image.scenes_examples(300, 32, "test")
    picked = text_to_image.held_out_captions(examples, 5)
    assert len(picked) == 5
    for index, caption in picked:
        assert caption in examples[index]["captions"]
        objects = parse_scene_caption(caption)["objects"]
        assert any(held_out_combinations(o) for o in objects)


@pytest.mark.end_to_end("torch")
@needs_minilm
def test_smoke_run_writes_the_report(tmp_path):
    from keras_lgvq import visualization
    from tests.models.tiny_configs import tiny_backbone

    tokenizer = tiny_backbone(num_embeddings=16)  # 32 px, 16x16 grid
    path = str(tmp_path / "tok" / "model.keras")
    os.makedirs(os.path.dirname(path))
    tokenizer.save(path)
    out = tmp_path / "out"
    args = ["--smoke", "--tokenizer", path, "--out", str(out),
            "--cache-dir", str(tmp_path / "cache"), "--verbose", "0"]
    summary = text_to_image.main(args)
    assert summary["settings"]["mode"] == "smoke"
    result = summary["models"]["tok"]
    for key in ("generated", "generated_mismatched", "unconditional",
                "tokenizer_reconstruction", "completion", "fid", "sampling",
                "history", "figures", "conditioning_tests"):
        assert key in result, key
    generated = result["generated"]
    assert set(generated["attributes"]) >= {"color", "shape", "relation"}
    for ref in ("chance", "ceiling"):
        assert 0.0 <= summary["references"][ref]["overall"] <= 1.0
    for kind in ("no_caption", "caption"):
        assert math.isfinite(result["completion"][kind]["psnr"])
    # FID is either computed or its absence explained.
    assert result["fid"]["available"] or result["fid"]["reason"]
    for name, figure in result["figures"].items():
        assert visualization.read_png(figure).ndim == 3, name
    with open(out / "summary.json") as f:
        assert json.load(f)["models"]["tok"]["num_codes"] == 16
    report = (out / "report.md").read_text()
    assert "Conditioning accuracy" in report and "Held-out" in report
    assert "Is the conditioning above chance?" in report
    assert "| tok | generated − own chance |" in report
    assert "color present" in report
    from keras_lgvq.evaluation.text_to_image_downstream import (
        CONDITIONING_TESTS,
    )

    tests = set(result["conditioning_tests"])
    assert tests >= {
        "generated_vs_mismatched", "presence_generated_vs_mismatched",
        "generated_vs_unconditional", "presence_generated_vs_unconditional",
        "presence_color_generated_vs_mismatched"}
    assert tests <= set(CONDITIONING_TESTS)
    assert "| tok | presence of color: generated − own chance |" in report
    assert os.path.exists(out / "tok" / "model.keras")
    # What every training recipe keeps (recipes/common.py `train`): 4 steps
    # as 4 epochs of 1, each validated on the held-out validation split.
    import csv
    import glob

    import keras

    with open(out / "tok" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    assert all(math.isfinite(float(r["val_loss"])) for r in rows)
    assert len(result["history"]["val_loss"]) == 4
    for value, row in zip(result["history"]["val_loss"], rows):
        assert math.isclose(value, float(row["val_loss"]), rel_tol=1e-5)
    for part in ("train", "validation"):
        assert glob.glob(str(out / "tok" / "logs" / part / "events.*"))
    for name in ("best.keras", "last.keras"):
        keras.saving.load_model(str(out / "tok" / name), safe_mode=True)
    # The trained generator evaluated again without training
    # (--generator): same captions, judge and seeded sampling, so the
    # same judged images.
    again = text_to_image.main(
        ["--smoke", "--tokenizer", path, "--out", str(tmp_path / "again"),
         "--cache-dir", str(tmp_path / "cache"), "--verbose", "0",
         "--generator", str(out / "tok" / "model.keras")])
    loaded = again["models"]["tok"]
    assert loaded["generator"] == str(out / "tok" / "model.keras")
    assert loaded["history"] is None and loaded["train_seconds"] is None
    for key in ("generated", "generated_mismatched", "unconditional"):
        assert loaded[key] == result[key], key
    assert "not trained in this run" in (
        tmp_path / "again" / "report.md").read_text()
    # Another tokenizer than the generator's: refused before sampling.
    other = str(tmp_path / "other" / "model.keras")
    os.makedirs(os.path.dirname(other))
    changed = keras.saving.load_model(path, safe_mode=True)
    weights = changed.get_weights()
    weights[0] = weights[0] + 0.5
    changed.set_weights(weights)
    changed.save(other)
    with pytest.raises(ValueError, match="another tokenizer"):
        text_to_image.main(
            ["--smoke", "--tokenizer", other, "--out",
             str(tmp_path / "bad"), "--cache-dir", str(tmp_path / "cache"),
             "--verbose", "0", "--generator",
             str(out / "tok" / "model.keras")])
    with pytest.raises(ValueError, match="one trained generator per"):
        text_to_image.resolve_settings(text_to_image.parse_args(
            ["--tokenizer", "a.keras", "--tokenizer", "b.keras",
             "--generator", "g.keras"]))
    assert not os.path.exists(out / "tok" / "backup")
    # The caches (codes, text features, judge) are found again, not rebuilt.
    settings = text_to_image.resolve_settings(text_to_image.parse_args(args))
    cache = str(tmp_path / "cache")
    stamps = {
        os.path.join(d, f): os.path.getmtime(os.path.join(d, f))
        for d, _, files in os.walk(cache) for f in files
    }
    from keras_lgvq import text_priors
    from keras_lgvq.models.text_to_image import load_tokenizer

    prior = text_priors.get("minilm")
    text_to_image.prepare_training_data(
        load_tokenizer(path), prior, settings, cache, verbose=0
    )
    judge, report = text_to_image.load_or_train_judge(
        text_to_image.parse_args(args), settings, 32, cache, verbose=0
    )
    assert report["source"].startswith(cache)
    assert stamps == {
        os.path.join(d, f): os.path.getmtime(os.path.join(d, f))
        for d, _, files in os.walk(cache) for f in files
    }
