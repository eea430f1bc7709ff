"""LGVQ presets: a missing text prior warns, any other prior error raises."""

import pytest

from keras_lgvq import text_priors
from keras_lgvq.models import LGVQ


def test_missing_prior_asset_warns_and_builds_without_prior(monkeypatch):
    def missing(*args, **kwargs):
        raise FileNotFoundError("MiniLM is not in the cache; run fetch")

    monkeypatch.setattr(text_priors, "get", missing)
    with pytest.warns(UserWarning, match="not available offline"):
        model = LGVQ.from_preset("scenes", resolution=32)
    assert model.text_prior is None
    # The scenes preset's leak-free MTP still builds: the preset records
    # MiniLM's [MASK] id for exactly this case.
    assert model.guidance.mtp_leak_free
    assert model.guidance.mask_token_id == 103


def test_other_prior_errors_propagate(monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("model.safetensors has the wrong shapes")

    monkeypatch.setattr(text_priors, "get", broken)
    with pytest.raises(ValueError, match="wrong shapes"):
        LGVQ.from_preset("scenes", resolution=32)


@pytest.mark.parametrize("name", ["scenes", "cub", "celeba_hq_cvq"])
def test_scenes_preset_uses_the_fixes_and_paper_presets_stay_faithful(name):
    from keras_lgvq.models.presets import get_preset

    guidance = get_preset(name)["guidance"]
    fixes = (
        "gsa_symmetric",
        "gsa_learnable_temperature",
        "mtp_leak_free",
        "mtp_self_attention_mask",
    )
    if name == "scenes":
        assert all(guidance[k] is True for k in fixes)
        assert "fixes" in get_preset(name)["description"]
    else:
        assert not any(guidance.get(k, False) for k in fixes)
