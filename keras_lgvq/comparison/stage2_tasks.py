"""The table of the comparison's stage-2 tasks (trained over a frozen
tokenizer's codes after the tokenizer is trained and evaluated).

Every task has the same wiring in `runner.run_comparison`: a row rule
(`has`), a reason the run has none (`unavailable`), a run per (system,
seed) whose JSON-ready result is stored in the unit's folder (`save` /
`load`, reused on resume, deleted by `run_state.save_unit` when the
tokenizer is retrained), flat metrics (`metrics`, described by `specs`)
and per-item lists for the paired bootstrap between rows (`items`), a
progress phase and the keys of the summary. `STAGE2_TASKS` lists them in
run and report order; a new task is one more `Stage2Task` here (plus its
budget, report section and flag).

Keys, per task `t`: the unit and the summary entry of a row keep the
result under `t.name` and its flat metrics under `t.metrics_key`; the
summary's `comparison` lists the rows that ran it under `t.rows_key` and
the reason it did not run under `t.skipped_key`.
"""

import dataclasses

from keras_lgvq.comparison import captioning
from keras_lgvq.comparison import run_state
from keras_lgvq.comparison import text_to_image
from keras_lgvq.comparison import vqa


@dataclasses.dataclass(frozen=True)
class Stage2Task:
    """One stage-2 task of the comparison.

    Args:
        name: str. Key of the result in a unit and a summary entry
            (`"captioning"`); its flat metrics go under `<name>_metrics`.
        phase: str. Progress phase and `Stopwatch` phase prefix.
        heading: str. Printed before a run; `{model}` and `{seed}` are
            filled in.
        label: str. Names the task in the line printed when it is
            unavailable.
        rows_key: str. `summary["comparison"]` key listing its rows.
        skipped_key: str. `summary["comparison"]` key of why it did not
            run (None when it ran).
        has: callable. `has(kind)`: whether row `kind` gets the task.
        unavailable: callable. `unavailable(settings)`: None or why the
            run has no such task.
        run: callable. `run(tokenizer, settings, seed, folder)`: the
            JSON-ready result of one (system, seed); `folder` is the
            unit's folder (for figures).
        metrics: callable. `metrics(result)`: flat metrics.
        items: callable. `items(result)`: per-item lists keyed like the
            flat metrics.
        save: callable. `save(out, kind, seed, result)`.
        load: callable. `load(out, kind, seed)`: the stored result or None.
        specs: dict. Flat key -> `MetricSpec`.

    Examples:

    ```python
    task = STAGE2_TASKS[0]
    task.name, task.phase, task.metrics_key   # "captioning", "caption", ...
    ```
    """

    name: str
    phase: str
    heading: str
    label: str
    rows_key: str
    skipped_key: str
    has: object
    unavailable: object
    run: object
    metrics: object
    items: object
    save: object
    load: object
    specs: dict

    @property
    def metrics_key(self):
        return f"{self.name}_metrics"


def recorded_seconds(result):
    """The total duration a stored task result records, or None.

    Every task stores `seconds` as a dict with a `total`; text-to-image
    results stored before that (2026-12-03) hold the total as a number, and
    a resumed run still reads them.

    Args:
        result: dict. A stored stage-2 result (`Stage2Task.load`).

    Returns:
        float or None.

    Examples:

    ```python
    recorded_seconds({"seconds": {"total": 296.6, "image": {}}})  # 296.6
    ```
    """
    seconds = result.get("seconds")
    if isinstance(seconds, dict):
        return seconds.get("total")
    return seconds


# The task modules' `run_*` are read when called (not bound here), so a
# test can replace them on their module.
def _run_captioning(tokenizer, settings, seed, folder):
    return captioning.run_captioning(tokenizer, settings, seed)


def _run_vqa(tokenizer, settings, seed, folder):
    return vqa.run_vqa(tokenizer, settings, seed)


def _run_text_to_image(tokenizer, settings, seed, folder):
    return text_to_image.run_text_to_image(tokenizer, settings, seed,
                                           folder=folder)


def _task(module, name, run, specs, **wording):
    """The `Stage2Task` of task module `module`, whose functions follow the
    naming of the task modules (`has_<name>`, `<name>_unavailable`,
    `<name>_metrics`, `<name>_items`; `run_state.save_<name>` /
    `load_<name>`).

    Args:
        module: the task module (`captioning`).
        name: str. The task's name (`"captioning"`).
        run: callable. The `Stage2Task.run` wrapper.
        specs: dict. Flat key -> `MetricSpec`.
        **wording: the other `Stage2Task` fields (`phase`, `heading`,
            `label`, `rows_key`, `skipped_key`).

    Examples:

    ```python
    _task(vqa, "vqa", _run_vqa, vqa.VQA_SPECS, phase="vqa", ...)
    ```
    """
    return Stage2Task(
        name=name,
        has=getattr(module, f"has_{name}"),
        unavailable=getattr(module, f"{name}_unavailable"),
        run=run,
        metrics=getattr(module, f"{name}_metrics"),
        items=getattr(module, f"{name}_items"),
        save=getattr(run_state, f"save_{name}"),
        load=getattr(run_state, f"load_{name}"),
        specs=specs,
        **wording,
    )


CAPTIONING = _task(
    captioning, "captioning", _run_captioning, captioning.CAPTIONING_SPECS,
    phase="caption",
    heading="Captioning over {model} codes (seed {seed}): image and blind "
    "captioners",
    label="Captioning task",
    rows_key="captioned",
    skipped_key="captioning_skipped",
)
VQA = _task(
    vqa, "vqa", _run_vqa, vqa.VQA_SPECS,
    phase="vqa",
    heading="VQA over {model} codes (seed {seed}): image and blind models",
    label="VQA task",
    rows_key="answered",
    skipped_key="vqa_skipped",
)
TEXT_TO_IMAGE = _task(
    text_to_image, "text_to_image", _run_text_to_image,
    text_to_image.TEXT_TO_IMAGE_SPECS,
    phase="t2i",
    heading="Text-to-image and completion over {model} codes (seed "
    "{seed}): generator and judge",
    label="Text-to-image task",
    rows_key="drawn",
    skipped_key="text_to_image_skipped",
)
# In run and report order.
STAGE2_TASKS = (CAPTIONING, VQA, TEXT_TO_IMAGE)
