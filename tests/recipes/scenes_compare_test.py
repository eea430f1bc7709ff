import json
import os

import numpy as np
import pytest

from recipes import common
from recipes import scenes_compare


def test_settings_per_mode_and_overrides():
    quick = scenes_compare.resolve_settings(
        scenes_compare.parse_args(["--quick"])
    )
    default = scenes_compare.resolve_settings(scenes_compare.parse_args([]))
    assert quick["mode"] == "quick" and default["mode"] == "default"
    assert quick["total_steps"] == 768 // 16 * 1
    assert default["total_steps"] == 2560 // 16 * 3
    # Both runs end long before the preset's disc_start: no discriminator.
    assert not quick["discriminator"] and not default["discriminator"]
    custom = scenes_compare.resolve_settings(
        scenes_compare.parse_args(
            ["--quick", "--with-discriminator", "--epochs", "2",
             "--batch-size", "8", "--learning-rate", "2e-4"]
        )
    )
    assert custom["discriminator"]
    assert custom["total_steps"] == 2 * (768 // 8)
    assert custom["learning_rate"] == 2e-4
    with pytest.raises(ValueError, match="train-size"):
        scenes_compare.resolve_settings(
            scenes_compare.parse_args(["--train-size", "4"])
        )
    with pytest.raises(SystemExit):
        scenes_compare.parse_args(["--quick", "--tiny"])


def test_comparison_rows_pick_the_better_model():
    lgvq = {"psnr": 20.0, "relation_mse_probe": 0.2, "ssim": 0.5,
            "retrieval_i2t_R@1_own": 3.0, "rfid": None,
            "chance_retrieval_R@1": 0.5}
    vqgan = {"psnr": 21.0, "relation_mse_probe": 0.1, "ssim": 0.50001,
             "retrieval_i2t_R@1_own": None, "rfid": None}
    rows = {r[0]: r for r in common.comparison_rows(
        {"lgvq": lgvq, "vqgan": vqgan})}
    assert rows["PSNR (dB) ↑"][-1] == "vqgan"
    # Lower is better for the relation MSE.
    assert rows["Code-word relation MSE (probe match) ↓"][-1] == "vqgan"
    # Equal as displayed: a tie, not a win.
    assert rows["SSIM ↑"][-1] == "tie"
    own = rows["Image->text R@1 (own GSA head) ↑"]
    assert own[2] == "n/a" and own[-1] == "-"
    assert own[3] == "0.500" and rows["PSNR (dB) ↑"][3] == ""
    assert not any(label.startswith("rFID") for label in rows)
    table = common.text_table(list(rows.values()), ("M", "A", "B", "R", "C"))
    assert "PSNR" in table and table.count("\n") == len(rows) + 3


def _read_png(path):
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_figures_round_trip_through_png(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (20, 8, 8, 3)).astype("float32")
    recon = -images
    grid = common.reconstruction_grid(images, recon, count=12, columns=6,
                                      scale=1)
    path = tmp_path / "grid.png"
    common.write_png(str(path), grid)
    back = _read_png(str(path))
    np.testing.assert_array_equal(back, grid)
    # First tile: image 0; first tile of the second row: its reconstruction.
    np.testing.assert_array_equal(back[2:10, 2:10], common.to_uint8(images[0]))
    np.testing.assert_array_equal(
        back[12:20, 2:10], common.to_uint8(recon[0])
    )

    counts = np.array([0, 5, 1, 0, 100, 7])
    hist = common.usage_histogram(counts, height=50, width=60)
    bar = 60 // 6
    top = hist[: 50 + 6]
    heights = [(top[:51, 2 + i * bar] != 255).any(-1).sum() for i in range(6)]
    assert heights[4] == 50 and heights[0] == 0 and heights[3] == 0
    assert heights[1] > heights[2] > 0
    # Unused codes get a red tick under the baseline.
    assert tuple(top[53, 2]) == (220, 40, 40)

    ranking = np.array([[0, 3, 1], [2, 1, 0]])
    ret = common.retrieval_grid(images, ranking, scale=1)
    common.write_png(str(tmp_path / "ret.png"), ret)
    assert _read_png(str(tmp_path / "ret.png")).shape == ret.shape
    # Correct hit framed green, wrong one grey.
    pad = 3
    assert tuple(ret[pad, pad + (8 + pad)]) == (30, 180, 60)
    assert tuple(ret[pad, pad + 2 * (8 + pad)]) == (170, 170, 170)


def test_module_entry_point_dispatches(capsys):
    from keras_lgvq import __main__ as entry

    assert entry.main(["--help"]) == 0
    assert "compare" in capsys.readouterr().out
    assert entry.main(["nope"]) == 2


def _minilm_available():
    from keras_lgvq.text_priors import minilm_assets

    return minilm_assets.is_available()


@pytest.mark.slow
@pytest.mark.skipif(
    not _minilm_available(), reason="MiniLM text prior is not cached"
)
def test_scenes_compare_and_evaluate_tiny_end_to_end(tmp_path):
    from recipes import evaluate

    out = tmp_path / "run"
    data = str(tmp_path / "tfds")
    scenes_compare.main(
        ["--tiny", "--out", str(out), "--data-dir", data, "--verbose", "0"]
    )
    with open(out / "summary.json") as f:
        summary = json.load(f)
    for kind in ("lgvq", "vqgan"):
        result = summary[kind]
        for key in ("psnr", "ssim", "codebook_usage", "codebook_perplexity",
                    "retrieval_probe", "masked_word_probe",
                    "relation_mse_probe", "attribute_probe", "lpips", "rfid"):
            assert key in result, (kind, key)
        for name in ("reconstructions.png", "codebook_usage.png",
                     "retrieval_probe.png"):
            assert (out / kind / name).is_file()
        assert result["training"]["steps"] == 8
    assert "retrieval" in summary["lgvq"]["own_heads"]
    assert summary["vqgan"]["own_heads"]["available"] is False
    # Same initial backbone for both models.
    assert summary["lgvq"]["training"]["initial_backbone_abs_sum"] == (
        pytest.approx(summary["vqgan"]["training"]["initial_backbone_abs_sum"])
    )
    report = (out / "report.md").read_text()
    assert "| Metric | LG-VQ | VQGAN | Chance/baseline | Better |" in report

    evaluate.main([
        str(out / "lgvq" / "preset"), "--out", str(tmp_path / "eval"),
        "--eval-size", "16", "--probe-size", "0", "--train-size", "16",
        "--data-dir", data, "--verbose", "0",
    ])
    with open(tmp_path / "eval" / "evaluation.json") as f:
        result = json.load(f)
    assert result["model"] == "LGVQ" and result["num_eval_images"] == 16
    assert os.path.isfile(tmp_path / "eval" / "reconstructions.png")
