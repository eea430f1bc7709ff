import io

import pytest

from keras_lgvq.comparison.progress import ComparisonProgress
from keras_lgvq.comparison.progress import Stopwatch
from keras_lgvq.comparison.progress import format_duration

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only


class Clock:
    """A hand-advanced clock: the durations below are exact."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_format_duration():
    assert format_duration(0) == "0s"
    assert format_duration(59.4) == "59s"
    assert format_duration(252) == "4m12s"
    assert format_duration(540) == "9m00s"
    assert format_duration(3900) == "1h05m"
    assert format_duration(-3) == "0s"


def test_eta_from_measured_steps():
    clock = Clock()
    stream = io.StringIO()
    steps = [(phase, kind, seed) for seed in (0, 1)
             for kind in ("lgvq", "vqgan") for phase in ("train", "evaluate")]
    progress = ComparisonProgress(
        steps, names={"lgvq": "LG-VQ", "vqgan": "VQGAN"}, clock=clock,
        stream=stream,
    )
    # Nothing timed yet: no number is invented.
    line = progress.announce("train", "lgvq", 0)
    assert line.startswith("[1/8] train LG-VQ seed 0 ... elapsed 0s")
    assert line.endswith("ETA unknown (no step of this kind timed yet)")
    durations = {("train", "lgvq"): 60.0, ("evaluate", "lgvq"): 30.0,
                 ("train", "vqgan"): 40.0, ("evaluate", "vqgan"): 20.0}
    for key in steps[:4]:
        with progress.step(*key):
            clock.now += durations[key[:2]]
    # Seed 1: each step is estimated by the same phase of the same system.
    line = progress.announce("train", "lgvq", 1)
    assert line == (
        "[5/8] train LG-VQ seed 1 ... elapsed 2m30s, ETA 2m30s"
    )
    assert stream.getvalue().splitlines()[-1] == line
    progress.finish("train", "lgvq", 1, 90.0)
    # Two lgvq training times now: their mean (75 s) is no longer needed;
    # the remaining steps: evaluate lgvq (30) + train vqgan (40) + eval (20).
    assert progress.eta() == (90.0, 0)
    assert progress.estimate("train", "lgvq") == pytest.approx(75.0)


def test_unknown_system_uses_the_phase_mean_and_skips_count():
    clock = Clock()
    progress = ComparisonProgress(
        [("train", "a", 0), ("train", "b", 0), ("train", "c", 0)],
        clock=clock, stream=io.StringIO(),
    )
    # A resumed step: done, and its recorded time informs the estimates.
    line = progress.skip("train", "a", 0, seconds=100.0, reason="reused")
    assert line == "[1/3] train a seed 0: reused"
    assert progress.estimate("train", "b") == 100.0
    assert progress.eta() == (200.0, 0)
    line = progress.announce("train", "b", 0)
    assert line.endswith("ETA 3m20s")
    # A step that fails is not marked done.
    with pytest.raises(RuntimeError):
        with progress.step("train", "b", 0):
            raise RuntimeError("killed")
    assert ("train", "b", 0) not in progress.done
    with pytest.raises(ValueError, match="Unknown step"):
        progress.announce("train", "z", 0)
    with pytest.raises(ValueError, match="repeated"):
        ComparisonProgress([("train", "a", 0), ("train", "a", 0)])


def test_eta_with_some_steps_untimed():
    progress = ComparisonProgress(
        [("train", "a", 0), ("evaluate", "a", 0)], clock=Clock(),
        stream=io.StringIO(),
    )
    progress.record("train", "a", 30.0)
    line = progress.announce("train", "a", 0)
    assert line.endswith("ETA > 30s (1 step(s) not yet timed)")


def test_stopwatch_sums_phases():
    wall, cpu = Clock(), Clock()
    watch = Stopwatch(clock=wall, cpu_clock=cpu)
    for seconds in (2.0, 3.0):
        with watch.phase("train"):
            wall.now += seconds
            cpu.now += seconds / 2
    wall.now += 1.0
    timing = watch.as_dict()
    assert timing["train"] == {"wall_s": 5.0, "cpu_s": 2.5}
    assert timing["total"] == {"wall_s": 6.0, "cpu_s": 2.5}
    assert watch.elapsed() == 6.0
