import numpy as np
import pytest

from keras_lgvq.evaluation import linear_attribute_probes


def _make(rng, n):
    shape = rng.integers(0, 8, n)
    count = rng.integers(1, 4, n)
    indices = np.zeros((n, 4, 4), "int32")
    indices[:, 0, :] = shape[:, None]
    indices[:, 3, :] = 8 + count[:, None]
    split = {
        k: rng.integers(0, c, (n, 3)).astype("int32")
        for k, c in (("color", 10), ("size", 3), ("fill", 3))
    }
    split["shape"] = np.stack([shape, shape, shape], 1).astype("int32")
    split["num_objects"] = count.astype("int32")
    codes = {
        "indices": indices,
        "quantized": rng.normal(size=(n, 4, 4, 4)).astype("float32"),
    }
    return codes, split


def test_attribute_probes_read_separable_codes():
    rng = np.random.default_rng(0)
    train_codes, train_split = _make(rng, 300)
    test_codes, test_split = _make(rng, 120)
    result = linear_attribute_probes.attribute_probes(
        train_codes, train_split, test_codes, test_split, 16,
        config=dict(linear_epochs=60, linear_grid=1),
    )
    assert result["shape"] >= 90.0
    assert result["num_objects"] >= 90.0
    # Colour is noise here: well below the perfect score.
    assert result["color"] < 60.0
    single = test_split["num_objects"] == 1
    labels = test_split["color"][single, 0]
    assert result["chance_majority"]["color"] == pytest.approx(
        100.0 * np.bincount(labels).max() / len(labels)
    )
    assert result["train_images_single_object"] == int(
        (train_split["num_objects"] == 1).sum()
    )
    # Bag of 16 codes + 4-dim code vectors on a 1x1 grid.
    assert result["feature_dim"] == 16 + 4


def test_attribute_probes_need_attributes():
    rng = np.random.default_rng(0)
    codes, split = _make(rng, 10)
    del split["num_objects"]
    with pytest.raises(ValueError, match="num_objects"):
        linear_attribute_probes.attribute_probes(
            codes, split, codes, split, 16
        )
