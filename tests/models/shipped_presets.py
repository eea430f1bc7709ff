"""Shared checks of the trained-preset tests of the shipped stage-2 models
(captioners, VQA models, text-to-image generators)."""

import os

import pytest

from keras_lgvq.models import presets
from keras_lgvq.models.captioning import shipped

MAX_BYTES = 10 * 1024 * 1024


def spread_over_backends(names, backends):
    """pytest params checking each shipped preset under one backend.

    Each name is marked `one_backend(backend)` (tests/conftest.py): the
    code that loads and runs the presets is tested on every backend, so a
    preset's recorded figure is checked under one, and a family's three
    presets cover the three backends.

    Args:
        names: preset names.
        backends: one backend name per preset, in order.
    """
    names, backends = tuple(names), tuple(backends)
    if len(names) != len(backends):
        raise ValueError(
            f"spread_over_backends: {len(names)} presets but "
            f"{len(backends)} backends."
        )
    return [
        pytest.param(name, marks=pytest.mark.one_backend(b))
        for name, b in zip(names, backends)
    ]


def installed_spec(name, class_name, asset, asset_what):
    """The preset dict of a shipped model, or a skip saying what is missing.

    Args:
        name: str. Shipped preset name.
        class_name: str. The class `from_preset` builds.
        asset: module with `is_available()` and `fetch_command()`: the
            offline asset the model needs (SmolLM2, MiniLM).
        asset_what: str. What that asset is to this model, for the message.
    """
    spec = presets.get_preset(name, class_name)
    if not shipped.is_installed(spec):
        pytest.skip(
            f"{name} is not installed in this checkout (no trained files in "
            f"{shipped.shipped_model_dir(spec)}): run "
            f"`{shipped.install_command(spec)}`."
        )
    if not asset.is_available():
        pytest.skip(
            f"{asset_what} is not fetched: `{asset.fetch_command()}`."
        )
    return spec


def checked_record(name, spec):
    """The preset's `training.json`, after checking that it names the
    preset and that the shipped files fit the 10 MB limit."""
    record = shipped.read_shipped_model_record(spec)
    directory = shipped.shipped_model_dir(spec)
    size = sum(
        os.path.getsize(os.path.join(directory, f))
        for f in (
            shipped.SHIPPED_TASK_CONFIG_FILE,
            shipped.SHIPPED_TASK_WEIGHTS_FILE,
        )
    )
    assert size <= MAX_BYTES, (name, size)
    assert record["preset"] == name
    return record
