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


def test_other_prior_errors_propagate(monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("model.safetensors has the wrong shapes")

    monkeypatch.setattr(text_priors, "get", broken)
    with pytest.raises(ValueError, match="wrong shapes"):
        LGVQ.from_preset("scenes", resolution=32)
