"""LanguageGuidance's loss weights (alpha, beta, gamma) must be finite and
non-negative: a NaN weight used to pass the `< 0` check and make every
LG-VQ loss NaN from the first step on."""

import pytest

from keras_lgvq.layers.guidance.language_guidance import LanguageGuidance

CONFIG = dict(code_dim=8, text_dim=8, vocabulary_size=12, num_tokens=4)


@pytest.mark.parametrize("name", ["alpha", "beta", "gamma"])
@pytest.mark.parametrize(
    "value, match",
    [
        (float("nan"), "must be finite"),
        (float("inf"), "must be finite"),
        (-0.1, ">= 0.0"),
        ("0.1", "must be a number"),
        (True, "must be a number"),
    ],
)
def test_bad_loss_weight_raises_naming_it(name, value, match):
    with pytest.raises(ValueError, match=match) as error:
        LanguageGuidance(**CONFIG, **{name: value})
    assert f"`{name}`" in str(error.value)


def test_zero_and_integer_weights_are_accepted():
    layer = LanguageGuidance(**CONFIG, alpha=0, beta=1, gamma=0.0)
    assert (layer.alpha, layer.beta, layer.gamma) == (0.0, 1.0, 0.0)
