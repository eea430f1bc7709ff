"""Code caches of a VQCT tokenizer: the trailing index axis is stored as
`encode` returns it, so `decode(cache.codes)` inverts the cache."""

import json
import os

import numpy as np
import pytest
from keras import ops

from keras_lgvq.datasets import code_cache
from keras_lgvq.models import VQCT
from tests.models.tiny_configs import tiny_images
from tests.models.vqct.tiny_vqct import NOUNS
from tests.models.vqct.tiny_vqct import TOP_K
from tests.models.vqct.tiny_vqct import tiny_vqct_backbone

# Under TensorFlow the Keras steps here run eagerly (tf_eager, tests/conftest.py):
# this file checks what they compute; the trainers' own tests cover the graph.
pytestmark = pytest.mark.tf_eager


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _batches(images, batch=3):
    return [
        {
            "images": images[i : i + batch],
            "image_id": [
                f"img{j}" for j in range(i, min(i + batch, len(images)))
            ],
        }
        for i in range(0, len(images), batch)
    ]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("vqct_cache")
    model = VQCT(tiny_vqct_backbone(), discriminator=None)
    model.build()
    images = tiny_images(5, seed=2)
    # From the saved file, as a stage-2 recipe would (safe-mode load).
    path = str(root / "vqct.keras")
    model.save(path)
    out = str(root / "scenes" / "train" / "vqct")
    cache = code_cache.build_code_cache(
        path, _batches(images), out, dataset="scenes", split="train",
        verbose=0,
    )
    return model.backbone, images, cache, out


def test_cache_stores_the_vqct_layout_and_round_trips(built):
    backbone, images, cache, out = built
    codes = cache.codes
    assert codes.shape == (5, 16, 16, TOP_K + 1) and codes.dtype == np.int32
    np.testing.assert_array_equal(codes, _np(backbone.encode(images)))
    assert cache.index_depth == TOP_K + 1
    assert [p.name for p in cache.sub_codebooks] == ["adjective", "noun"]
    assert cache.num_codes == backbone.num_embeddings
    manifest = cache.manifest
    assert manifest["sub_codebooks"][1] == {
        "name": "noun", "size": len(NOUNS), "slots": 1,
    }
    # Local ids fit uint16 (the largest sub-codebook decides).
    assert np.load(os.path.join(out, "codes.npy")).dtype == np.uint16
    # encode -> cache -> decode == encode -> decode.
    np.testing.assert_allclose(
        _np(backbone.decode(codes)),
        _np(backbone.decode(backbone.encode(images))),
        atol=1e-5,
    )
    # The fingerprint matches the tokenizer the file was saved from.
    code_cache.CodeCache(out, tokenizer=backbone, dataset="scenes")


def test_dataset_batches_keep_the_index_axis(built):
    _, _, cache, _ = built
    ds = code_cache.make_code_dataset(cache, batch_size=2, training=False)
    batch = next(iter(ds))
    assert tuple(batch["codes"].shape) == (2, 16, 16, TOP_K + 1)
    np.testing.assert_array_equal(batch["codes"].numpy(), cache.codes[:2])


def test_inconsistent_manifest_is_refused(built, tmp_path):
    _, _, cache, out = built
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("codes.npy", "image_ids.npy"):
        (copy / name).write_bytes(open(os.path.join(out, name), "rb").read())
    manifest = dict(cache.manifest, index_depth=None, sub_codebooks=None)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="inconsistent"):
        code_cache.CodeCache(str(copy))
    manifest["index_depth"] = TOP_K + 2
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="4 index slots"):
        code_cache.CodeCache(str(copy))
