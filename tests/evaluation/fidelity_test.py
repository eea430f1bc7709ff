from keras_lgvq.evaluation import fidelity
from tests.models.tiny_configs import tiny_text_batch


def test_perceptual_metrics_report_missing_weights():
    images = tiny_text_batch(2)["images"]
    out = fidelity.perceptual_metrics(
        images,
        lambda x: x,
        lpips_weights="/nonexistent/vgg16.h5",
        inception_weights="/nonexistent/inception.h5",
    )
    for name in ("lpips", "rfid"):
        assert out[name]["available"] is False
        assert "nonexistent" in out[name]["reason"]
        assert "value" not in out[name]


def test_unavailable_reason_is_one_bounded_line():
    entry = fidelity._unavailable(FileNotFoundError("a\n  b " + "x" * 500))
    assert entry["available"] is False
    assert "\n" not in entry["reason"] and len(entry["reason"]) == 400
    assert entry["reason"].startswith("a b ")
