import pytest

from keras_lgvq import visualization
from keras_lgvq.evaluation import METRIC_SPECS
from keras_lgvq.evaluation import flatten_metrics
from tests.evaluation.metric_table_test import _results

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only


def _rows(flat_by_model):
    rows = visualization.comparison_rows(flat_by_model)
    return {r[0]: r for r in rows}


def test_comparison_rows_pick_the_better_model():
    lgvq = {"psnr": 20.0, "relation_mse_probe": 0.2, "ssim": 0.5,
            "retrieval_i2t_R@1_own": 3.0, "rfid": None,
            "chance_retrieval_R@1": 0.5}
    vqgan = {"psnr": 21.0, "relation_mse_probe": 0.1, "ssim": 0.50001,
             "retrieval_i2t_R@1_own": None, "rfid": None}
    rows = _rows({"lgvq": lgvq, "vqgan": vqgan})
    assert rows["PSNR (dB) ↑"][-1] == "vqgan"
    # Lower is better for the relation MSE.
    assert rows["Code-word relation MSE (probe match) ↓"][-1] == "vqgan"
    # Equal as displayed: a tie, not a win.
    assert rows["SSIM ↑"][-1] == "tie"
    own = rows["Image->text R@1 (own GSA head) ↑"]
    assert own[2] == "n/a" and own[-1] == "-"
    assert own[3] == "0.500" and rows["PSNR (dB) ↑"][3] == ""
    # No model has an rFID: no row; references are a column, not rows.
    assert not any(label.startswith("rFID") for label in rows)
    assert not any("chance" in label for label in rows)
    table = visualization.text_table(
        list(rows.values()), ("M", "A", "B", "R", "C")
    )
    assert "PSNR" in table and table.count("\n") == len(rows) + 3


def test_every_flat_metric_gets_a_row():
    flat = flatten_metrics(_results())
    rows = visualization.comparison_rows({"a": flat, "b": dict(flat)})
    labels = [r[0].rstrip(" ↑↓") for r in rows]
    expected = [
        spec.label for key, spec in METRIC_SPECS.items()
        if flat[key] is not None
    ]
    assert labels == expected


def test_a_renamed_metric_key_still_appears_in_the_report():
    # The rows come from the keys of the summary: renaming a metric (here
    # as if `flatten_metrics` emitted "psnr_db") shows the new key instead
    # of silently dropping the value.
    flat = flatten_metrics(_results())
    renamed = {("psnr_db" if k == "psnr" else k): v for k, v in flat.items()}
    rows = _rows({"a": renamed, "b": dict(renamed)})
    assert "psnr_db" in rows
    assert rows["psnr_db"][1:3] == ("21.0", "21.0")
    assert rows["psnr_db"][-1] == "-"  # not ranked without a spec
    assert "PSNR (dB) ↑" not in rows
    markdown = visualization.markdown_table(
        list(rows.values()), ("Metric", "A", "B", "Chance", "Better")
    )
    assert "| psnr_db | 21.0 | 21.0 |" in markdown


def test_format_value():
    fmt = visualization.format_value
    assert fmt(None) == "n/a"
    assert fmt(123.456) == "123.5" and fmt(3.0) == "3.0"
    assert fmt(0.01234) == "0.0123" and fmt(1.23456) == "1.235"
    assert fmt(12.345) == "12.35" and fmt(float("nan")) == "nan"
