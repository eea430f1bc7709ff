"""`recipes/evaluate.py`: which text prior the text metrics use."""

import pytest

from keras_lgvq import text_priors
from recipes import evaluate


class _Model:
    text_prior = None


def test_text_prior_falls_back_only_when_minilm_is_not_fetched(monkeypatch):
    def missing(name, **kwargs):
        raise FileNotFoundError(f"{name} is not in the cache")

    monkeypatch.setattr(text_priors, "get", missing)
    # Default prior absent: evaluate without the text metrics.
    assert evaluate._text_prior(_Model(), None, verbose=0) is None
    # Asked for by name: the missing files are an error.
    with pytest.raises(FileNotFoundError, match="clip"):
        evaluate._text_prior(_Model(), "clip", verbose=0)


def test_text_prior_errors_other_than_missing_files_propagate(monkeypatch):
    def corrupt(name, **kwargs):
        raise ValueError("config.json has model_type 'gpt2'")

    monkeypatch.setattr(text_priors, "get", corrupt)
    with pytest.raises(ValueError, match="gpt2"):
        evaluate._text_prior(_Model(), None, verbose=0)


def test_text_prior_prefers_the_model_own_unless_named(monkeypatch):
    own = object()
    model = _Model()
    model.text_prior = own
    assert evaluate._text_prior(model, None, verbose=0) is own
    monkeypatch.setattr(text_priors, "get", lambda name, **kw: name)
    assert evaluate._text_prior(model, "minilm", verbose=0) == "minilm"
