"""`drawn_captions` replays the training pipeline's caption draws."""

import collections

import keras
import pytest

from keras_lgvq.datasets import drawn_captions
from keras_lgvq.datasets import make_dataset

pytestmark = pytest.mark.host_only

# 20 scenes in batches of 6: 3 batches a pass (2 scenes dropped each pass,
# which ones set by the shuffle), so 13 batches read five passes.
KWARGS = dict(
    split="train", batch_size=6, image_size=32, seed=3, train_size=20,
    validation_size=4, test_size=4,
)
PASS = 20


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def _real_passes(data_dir, steps, **overrides):
    """Captions of the first `steps` batches of the repeated pipeline,
    grouped by pass (3 batches each)."""
    kwargs = {**KWARGS, "data_dir": data_dir, **overrides}
    passes = collections.defaultdict(list)
    for i, batch in enumerate(make_dataset("scenes", **kwargs).repeat()):
        if i == steps:
            break
        passes[i // 3].extend(c.decode() for c in batch["captions"].numpy())
    return [passes[p] for p in sorted(passes)]


def _covers(replayed, real_passes):
    """Each real pass's captions are among the replay's same pass."""
    for p, real in enumerate(real_passes):
        replay = collections.Counter(replayed[p * PASS:(p + 1) * PASS])
        if collections.Counter(real) - replay:
            return False
    return True


def test_replay_holds_every_pass_the_steps_read(data_dir):
    keras.utils.set_random_seed(3)
    replayed = drawn_captions("scenes", steps=13, data_dir=data_dir, **KWARGS)
    keras.utils.set_random_seed(3)
    real = _real_passes(data_dir, 13)
    # Five passes, whole: the 2 scenes a pass drops drew a caption too.
    assert len(real) == 5 and len(replayed) == 5 * PASS
    assert _covers(replayed, real)
    # The first pass: all 18 batched captions plus the 2 dropped ones.
    assert len(real[0]) == 18
    # Each pass draws anew: a cache of the first pass alone would miss.
    assert set(replayed[PASS:]) - set(replayed[:PASS])


def test_replay_follows_the_seed(data_dir):
    keras.utils.set_random_seed(0)
    other = drawn_captions(
        "scenes", steps=13, data_dir=data_dir, **{**KWARGS, "seed": 4}
    )
    keras.utils.set_random_seed(0)
    assert _covers(other, _real_passes(data_dir, 13, seed=4))
    keras.utils.set_random_seed(0)
    assert not _covers(other, _real_passes(data_dir, 13))


def test_steps_count_the_training_batches_of_a_pass(data_dir):
    keras.utils.set_random_seed(3)
    assert len(drawn_captions("scenes", data_dir=data_dir, **KWARGS)) == PASS
    # 3 batches a pass with drop_remainder (training), 4 without.
    assert len(drawn_captions(
        "scenes", steps=4, data_dir=data_dir, **KWARGS
    )) == 2 * PASS
    assert len(drawn_captions(
        "scenes", steps=4, drop_remainder=False, data_dir=data_dir, **KWARGS
    )) == PASS


def test_captions_only_batches_hold_no_images(data_dir):
    batch = next(iter(make_dataset(
        "scenes", captions_only=True, data_dir=data_dir, **KWARGS
    )))
    assert set(batch) == {"captions", "image_id"}


def test_bad_arguments_name_themselves(data_dir):
    with pytest.raises(ValueError, match="captions_only"):
        make_dataset(
            "scenes", captions_only=True, text_prior=object(),
            data_dir=data_dir, **KWARGS,
        )
    with pytest.raises(ValueError, match="feature_cache"):
        drawn_captions(
            "scenes", feature_cache=object(), data_dir=data_dir, **KWARGS
        )
    with pytest.raises(ValueError, match="steps"):
        drawn_captions("scenes", steps=0, data_dir=data_dir, **KWARGS)
    with pytest.raises(ValueError, match="batch_size"):
        drawn_captions(
            "scenes", steps=2, data_dir=data_dir,
            **{**KWARGS, "batch_size": 32},
        )
