import numpy as np
import pytest
from keras import ops

from keras_lgvq.models.text_to_image.text_to_image_backbone import (
    NullTextToken,
)
from keras_lgvq.models.text_to_image.text_to_image_backbone import (
    TextToImageBackbone,
)

K, GRID, TEXT_DIM = 8, 4, 6


def _backbone(**overrides):
    kwargs = dict(
        num_codes=K,
        grid_size=GRID,
        text_dim=TEXT_DIM,
        hidden_dim=16,
        num_layers=2,
        num_heads=2,
        intermediate_dim=32,
    )
    kwargs.update(overrides)
    return TextToImageBackbone(**kwargs)


def _inputs(batch=2, length=5, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "code_ids": rng.integers(0, K + 1, (batch, GRID * GRID)).astype(
            "int32"
        ),
        "text_features": rng.normal(size=(batch, length, TEXT_DIM)).astype(
            "float32"
        ),
        "text_mask": np.ones((batch, length), bool),
    }


def _run(backbone, inputs):
    return np.asarray(ops.convert_to_numpy(backbone(inputs)))


def test_output_shape_and_config_round_trip():
    backbone = _backbone()
    out = _run(backbone, _inputs())
    assert out.shape == (2, GRID * GRID, 16)
    assert backbone.mask_id == K and backbone.sequence_length == 16
    clone = TextToImageBackbone.from_config(backbone.get_config())
    assert clone.count_params() == backbone.count_params()
    # Embedding rows: K codes plus the mask id.
    assert tuple(backbone.token_embedding.embeddings.shape) == (K + 1, 16)


def test_attention_is_bidirectional():
    # Changing the last code changes the first position's output: no causal
    # mask.
    backbone = _backbone()
    inputs = _inputs()
    before = _run(backbone, inputs)
    inputs["code_ids"][:, -1] = (inputs["code_ids"][:, -1] + 1) % K
    after = _run(backbone, inputs)
    assert np.abs(after[:, 0] - before[:, 0]).max() > 1e-6


def test_cross_attention_reads_visible_caption_tokens_only():
    backbone = _backbone()
    inputs = _inputs()
    inputs["text_mask"][:, 3:] = False
    base = _run(backbone, inputs)
    hidden = dict(inputs, text_features=inputs["text_features"].copy())
    hidden["text_features"][:, 3:] += 5.0
    np.testing.assert_allclose(_run(backbone, hidden), base, atol=1e-5)
    seen = dict(inputs, text_features=inputs["text_features"].copy())
    seen["text_features"][:, 0] += 5.0
    assert np.abs(_run(backbone, seen) - base).max() > 1e-4


def test_no_caption_row_ignores_its_features():
    # All caption tokens hidden: only the learned null token is attended.
    backbone = _backbone()
    a = _inputs(seed=1)
    a["text_mask"][:] = False
    b = dict(a, text_features=np.zeros_like(a["text_features"]))
    np.testing.assert_allclose(_run(backbone, a), _run(backbone, b), atol=1e-5)


def test_null_text_token_prepends_a_visible_slot():
    layer = NullTextToken(4)
    text, mask = layer(np.zeros((3, 2, 4), "float32"), np.zeros((3, 2), bool))
    assert tuple(text.shape) == (3, 3, 4)
    mask = np.asarray(ops.convert_to_numpy(mask))
    assert mask[:, 0].all() and not mask[:, 1:].any()


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(num_heads=3), "divide"),
        (dict(num_codes=1), "num_codes"),
        (dict(grid_size=0), "grid_size"),
        (dict(dropout=1.0), "dropout"),
    ],
)
def test_bad_arguments_name_the_argument(overrides, match):
    with pytest.raises(ValueError, match=match):
        _backbone(**overrides)


def test_paper_preset_builds_without_weights():
    # The paper's VQ-Diffusion size: 19 blocks of width 1024.
    backbone = TextToImageBackbone.from_preset("text_to_image_celeba_hq")
    assert backbone.num_layers == 19 and backbone.hidden_dim == 1024
    assert backbone.num_codes == 1024 and backbone.grid_size == 16
    # Per block: self-attention 4d^2, cross-attention 2d^2 + 2d^2 (keys and
    # values from the projected text), MLP 2 * d * 4d, plus biases / norms.
    d = 1024
    per_block = 4 * d * d + 4 * d * d + 8 * d * d
    assert backbone.count_params() > 19 * per_block
    assert backbone.count_params() < 19 * per_block * 1.05 + 5_000_000
