"""Timing of the comparison: phase stopwatch and progress lines with an ETA.

`Stopwatch` adds up wall-clock and CPU seconds per named phase (the
report's timing table). `ComparisonProgress` knows every step of the run
(train / evaluate each system for each seed) and prints, as each step
starts, a line such as

    [3/8] train LG-VQ seed 1 ... elapsed 4m12s, ETA 9m

The ETA is the sum of the estimated durations of the steps still to run,
each estimated from the measured durations of earlier steps: the same
phase of the same system (other seeds, or a resumed run's recorded time)
when there is one, else the mean of that phase over the systems measured
so far.
"""

import resource
import sys
import time


def cpu_seconds():
    """User + system CPU seconds of this process and its finished children.

    Examples:

    ```python
    start = cpu_seconds()
    ```
    """
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (
        own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    )


class Stopwatch:
    """Wall-clock and CPU seconds of named phases (summed over repeats).

    Args:
        clock: callable returning wall seconds (default `time.time`).
        cpu_clock: callable returning CPU seconds (default `cpu_seconds`).

    Examples:

    ```python
    watch = Stopwatch()
    with watch.phase("train"):
        ...
    watch.as_dict()  # {"train": {"wall_s": ..., "cpu_s": ...}, "total": ...}
    ```
    """

    def __init__(self, clock=time.time, cpu_clock=cpu_seconds):
        self.clock = clock
        self.cpu_clock = cpu_clock
        self.start_wall = clock()
        self.start_cpu = cpu_clock()
        self.phases = {}

    def phase(self, name):
        """A context manager adding its duration to phase `name`.

        Args:
            name: str. The phase (repeats add up).
        """
        watch = self

        class _Phase:
            def __enter__(self):
                self.wall = watch.clock()
                self.cpu = watch.cpu_clock()
                return self

            def __exit__(self, *exc):
                entry = watch.phases.setdefault(
                    name, {"wall_s": 0.0, "cpu_s": 0.0}
                )
                entry["wall_s"] += watch.clock() - self.wall
                entry["cpu_s"] += watch.cpu_clock() - self.cpu
                return False

        return _Phase()

    def elapsed(self):
        """Wall seconds since the stopwatch was made."""
        return self.clock() - self.start_wall

    def as_dict(self):
        """`{phase: {"wall_s", "cpu_s"}, "total": {...}}`, rounded to 0.1 s."""
        out = {
            k: {kk: round(vv, 1) for kk, vv in v.items()}
            for k, v in self.phases.items()
        }
        out["total"] = {
            "wall_s": round(self.clock() - self.start_wall, 1),
            "cpu_s": round(self.cpu_clock() - self.start_cpu, 1),
        }
        return out


def format_duration(seconds):
    """Seconds as a short duration: "45s", "4m12s", "1h05m".

    Args:
        seconds: float >= 0.

    Examples:

    ```python
    format_duration(252)    # "4m12s"
    format_duration(3900)   # "1h05m"
    ```
    """
    seconds = max(int(round(seconds)), 0)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class ComparisonProgress:
    """Numbered progress lines with an ETA for every step of a comparison.

    Args:
        steps: list of `(phase, system, seed)` tuples, in run order (e.g.
            `("train", "lgvq", 0)`).
        names: dict system -> display name (default: the key).
        clock: callable returning wall seconds (default `time.monotonic`).
        stream: file object of the lines (default `sys.stdout`).

    Examples:

    ```python
    steps = [("train", "lgvq", 0), ("evaluate", "lgvq", 0)]
    progress = ComparisonProgress(steps)
    with progress.step("train", "lgvq", 0):
        ...   # prints "[1/2] train lgvq seed 0 ... elapsed 0s, ETA unknown ..."
    progress.skip("evaluate", "lgvq", 0, seconds=12.0)  # a resumed step
    ```
    """

    def __init__(self, steps, names=None, clock=time.monotonic, stream=None):
        self.steps = [tuple(s) for s in steps]
        if len(set(self.steps)) != len(self.steps):
            raise ValueError(f"`steps` has repeated entries: {self.steps}.")
        self.names = dict(names or {})
        self.clock = clock
        self.stream = stream
        self.start = clock()
        self.done = set()
        self.measured = {}
        self.lines = []

    def _position(self, key):
        if key not in self.steps:
            raise ValueError(f"Unknown step {key}; the steps are {self.steps}.")
        return self.steps.index(key) + 1

    def record(self, phase, system, seconds):
        """Add a measured duration of `phase` of `system` to the estimates.

        Args:
            phase: str. E.g. "train".
            system: str. E.g. "lgvq".
            seconds: float. The measured wall seconds.
        """
        self.measured.setdefault((phase, system), []).append(float(seconds))

    def estimate(self, phase, system):
        """Estimated seconds of one step, or None when nothing is known.

        The mean of the same phase of the same system, else the mean over
        every system of that phase, else None.

        Args:
            phase: str. E.g. "train".
            system: str. E.g. "lgvq".
        """
        same = self.measured.get((phase, system))
        if same:
            return sum(same) / len(same)
        other = [
            s for (p, _), values in self.measured.items() if p == phase
            for s in values
        ]
        return sum(other) / len(other) if other else None

    def eta(self, include=None):
        """`(seconds, unknown_steps)` of the steps not done (and `include`).

        Args:
            include: a step counted as still to run (the one starting).
        """
        total, unknown = 0.0, 0
        for key in self.steps:
            if key in self.done and key != include:
                continue
            guess = self.estimate(key[0], key[1])
            if guess is None:
                unknown += 1
            else:
                total += guess
        return total, unknown

    def _line(self, key, text):
        print(text, file=self.stream or sys.stdout, flush=True)
        self.lines.append(text)
        return text

    def announce(self, phase, system, seed):
        """Print and return the line of a starting step.

        Args:
            phase, system, seed: the step (one of `steps`).
        """
        key = (phase, system, seed)
        position = self._position(key)
        seconds, unknown = self.eta(include=key)
        if unknown:
            eta = (
                "ETA unknown (no step of this kind timed yet)"
                if seconds == 0.0 else
                f"ETA > {format_duration(seconds)} ({unknown} step(s) not "
                "yet timed)"
            )
        else:
            eta = f"ETA {format_duration(seconds)}"
        name = self.names.get(system, system)
        return self._line(
            key,
            f"[{position}/{len(self.steps)}] {phase} {name} seed {seed} ... "
            f"elapsed {format_duration(self.clock() - self.start)}, {eta}",
        )

    def finish(self, phase, system, seed, seconds):
        """Mark a step done after `seconds` (and learn from them).

        Args:
            phase, system, seed: the step (one of `steps`).
            seconds: float. Its measured wall seconds.
        """
        self.done.add((phase, system, seed))
        self.record(phase, system, seconds)

    def skip(self, phase, system, seed, seconds=None, reason="reused"):
        """Mark a step done without running it (a resumed result).

        Args:
            phase, system, seed: the step (one of `steps`).
            seconds: float or None. Its recorded duration from the run that
                made it (improves the estimates of the remaining steps).
            reason: str. Printed after the step.
        """
        key = (phase, system, seed)
        position = self._position(key)
        self.done.add(key)
        if seconds is not None:
            self.record(phase, system, seconds)
        name = self.names.get(system, system)
        return self._line(
            key,
            f"[{position}/{len(self.steps)}] {phase} {name} seed {seed}: "
            f"{reason}",
        )

    def step(self, phase, system, seed):
        """Context manager: announce the step, time it, mark it done (a
        step that raises is not marked done).

        Args:
            phase, system, seed: the step (one of `steps`).
        """
        progress = self

        class _Step:
            def __enter__(self):
                progress.announce(phase, system, seed)
                self.start = progress.clock()
                return self

            def __exit__(self, kind, value, traceback):
                if kind is None:
                    progress.finish(
                        phase, system, seed, progress.clock() - self.start
                    )
                return False

        return _Step()
