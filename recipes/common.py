"""Shared helpers of the recipes: timing, machine info, data, figures, tables.

Figures are written as PNG with `keras_lgvq.datasets.scenes.encode_png`
(numpy + zlib), so no plotting library is needed.
"""

import json
import os
import resource
import time

import numpy as np

# Re-exported: recipes record these next to their results.
from keras_lgvq.utils.machine import load_average  # noqa: F401
from keras_lgvq.utils.machine import machine_info  # noqa: F401
from keras_lgvq.utils.machine import peak_rss_mb  # noqa: F401

# === Timing and machine information ===


def cpu_seconds():
    """User + system CPU seconds of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (
        own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    )


class Stopwatch:
    """Wall-clock and CPU seconds of named phases.

    Examples:

    ```python
    watch = Stopwatch()
    with watch.phase("train"):
        ...
    watch.as_dict()  # {"train": {"wall_s": ..., "cpu_s": ...}, ...}
    ```
    """

    def __init__(self):
        self.start_wall = time.time()
        self.start_cpu = cpu_seconds()
        self.phases = {}

    def phase(self, name):
        watch = self

        class _Phase:
            def __enter__(self):
                self.wall = time.time()
                self.cpu = cpu_seconds()
                return self

            def __exit__(self, *exc):
                entry = watch.phases.setdefault(
                    name, {"wall_s": 0.0, "cpu_s": 0.0}
                )
                entry["wall_s"] += time.time() - self.wall
                entry["cpu_s"] += cpu_seconds() - self.cpu
                return False

        return _Phase()

    def as_dict(self):
        out = {
            k: {kk: round(vv, 1) for kk, vv in v.items()}
            for k, v in self.phases.items()
        }
        out["total"] = {
            "wall_s": round(time.time() - self.start_wall, 1),
            "cpu_s": round(cpu_seconds() - self.start_cpu, 1),
        }
        return out


def quiet_tensorflow():
    """Silence TensorFlow's retracing warnings (probes build many models)."""
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass


def write_json(path, data):
    def default(value):
        if isinstance(value, (np.integer,)):
            return int(value)
        if isinstance(value, (np.floating,)):
            return float(value)
        if isinstance(value, np.ndarray):
            return value.tolist()
        return str(value)

    with open(path, "w") as f:
        json.dump(data, f, indent=2, default=default)


# === Data ===


def scenes_splits(
    text_prior,
    eval_size,
    probe_size,
    image_size=64,
    train_size=None,
    seed=0,
    data_dir=None,
    verbose=1,
    eval_split_name="test",
):
    """The shared evaluation and probe-training splits of the scenes set.

    Args:
        text_prior: `TextPrior` (MiniLM for the scenes preset).
        eval_size: int. Images of `eval_split_name` scored.
        probe_size: int. Training-split images the probes learn from.
        image_size: int. Scene size in pixels.
        train_size: int or None. Size of the generated training split (at
            least `probe_size`).
        seed: int. Caption sampling and mask seed.
        data_dir: str or None. TFDS folder.
        verbose: int. Progress bars.
        eval_split_name: str. "test" or "validation".

    Returns:
        `(eval_split, probe_split)` dicts from
        `keras_lgvq.evaluation.prepare_split`.
    """
    from keras_lgvq.datasets import make_dataset
    from keras_lgvq.evaluation import prepare_split

    train_size = max(train_size or probe_size, probe_size)
    sizes = scenes_sizes(train_size, eval_size)
    common = dict(
        batch_size=64,
        image_size=image_size,
        training=False,
        seed=seed,
        text_prior=text_prior,
        include_attributes=True,
        data_dir=data_dir,
        **sizes,
    )
    eval_ds = make_dataset("scenes", split=eval_split_name, **common)
    eval_split = prepare_split(
        eval_ds, text_prior, max_images=eval_size, seed=seed, verbose=verbose
    )
    probe_split = None
    if probe_size:
        probe_ds = make_dataset("scenes", split="train", **common)
        probe_split = prepare_split(
            probe_ds,
            text_prior,
            max_images=probe_size,
            seed=seed + 1,
            protocol_mask_counts=(),
            training_masks=True,
            verbose=verbose,
        )
    return eval_split, probe_split


def scenes_sizes(train_size, eval_size):
    """Split sizes of the generated scenes set (validation kept small)."""
    return dict(
        train_size=int(train_size),
        validation_size=min(256, int(eval_size)),
        test_size=int(eval_size),
    )


# === Figures ===


def to_uint8(images):
    """Images in [-1, 1] to uint8."""
    images = np.clip(np.asarray(images, "float32"), -1.0, 1.0)
    return np.round((images + 1.0) * 127.5).astype("uint8")


def _upscale(image, scale):
    if scale == 1:
        return image
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def tile(images, columns, pad=2, value=255):
    """Tile uint8 (N, H, W, 3) images into one grid image."""
    images = np.asarray(images, "uint8")
    n, h, w, c = images.shape
    rows = -(-n // columns)
    grid = np.full(
        (rows * (h + pad) + pad, columns * (w + pad) + pad, c),
        value,
        "uint8",
    )
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y : y + h, x : x + w] = image
    return grid


def reconstruction_grid(images, reconstructions, count=16, columns=8,
                        scale=2):
    """Rows of originals, each followed by a row of their reconstructions."""
    count = min(count, len(images), len(reconstructions))
    x = to_uint8(images[:count])
    y = to_uint8(reconstructions[:count])
    ordered = []
    for start in range(0, count, columns):
        ordered += list(x[start : start + columns])
        ordered += [np.full_like(x[0], 255)] * (
            columns - len(x[start : start + columns])
        )
        ordered += list(y[start : start + columns])
        ordered += [np.full_like(x[0], 255)] * (
            columns - len(y[start : start + columns])
        )
    grid = tile(np.stack(ordered), columns)
    return _upscale(grid, scale)


def usage_histogram(counts, height=120, width=512):
    """Two bar panels: counts per code index, then sorted (log scale).

    Bar heights are `log(1 + count) / log(1 + max)`, so rarely used codes
    stay visible; unused codes show no bar (a red tick marks them in the
    index panel).
    """
    counts = np.asarray(counts, "float64")
    k = len(counts)
    bar = max(1, width // k)
    panel_w = bar * k
    scale = np.log1p(counts.max()) if counts.max() > 0 else 1.0

    def panel(values, mark_unused):
        image = np.full((height + 6, panel_w + 4, 3), 255, "uint8")
        image[height + 1, :] = 0  # baseline
        for i, v in enumerate(values):
            x = 2 + i * bar
            h = int(round(height * np.log1p(v) / scale)) if v > 0 else 0
            if h:
                image[height + 1 - h : height + 1, x : x + bar] = (40, 70, 160)
            elif mark_unused:
                image[height + 2 : height + 6, x : x + bar] = (220, 40, 40)
        return image

    top = panel(counts, True)
    bottom = panel(np.sort(counts)[::-1], False)
    gap = np.full((8, top.shape[1], 3), 255, "uint8")
    return np.concatenate([top, gap, bottom], axis=0)


def _frame(image, color, width=2):
    out = image.copy()
    out[:width], out[-width:] = color, color
    out[:, :width], out[:, -width:] = color, color
    return out


def retrieval_grid(images, ranking, scale=2):
    """Text->image retrieval: per query row, its image then the top hits.

    Args:
        images: float (N, H, W, 3) in [-1, 1], the evaluation images.
        ranking: int (Q, k). Retrieved image rows for caption q (caption q
            describes image q).
        scale: int. Pixel upscaling.

    Returns:
        uint8 image: column 0 the query's own image (black frame), then the
        k retrieved images, framed green when correct, grey otherwise.
    """
    x = to_uint8(images)
    tiles = []
    for q, row in enumerate(np.asarray(ranking)):
        tiles.append(_frame(x[q], (0, 0, 0)))
        for r in row:
            color = (30, 180, 60) if r == q else (170, 170, 170)
            tiles.append(_frame(x[r], color))
    grid = tile(np.stack(tiles), 1 + np.asarray(ranking).shape[1], pad=3)
    return _upscale(grid, scale)


def write_png(path, image):
    from keras_lgvq.datasets.scenes import encode_png

    with open(path, "wb") as f:
        f.write(encode_png(np.ascontiguousarray(image, dtype="uint8")))


def write_figures(directory, artifacts, prefix=""):
    """Reconstruction grid, usage histogram and retrieval examples.

    Returns:
        dict name -> written path (relative to `directory`).
    """
    os.makedirs(directory, exist_ok=True)
    written = {}

    def save(name, image):
        write_png(os.path.join(directory, prefix + name), image)
        written[name] = prefix + name

    save(
        "reconstructions.png",
        reconstruction_grid(artifacts["images"], artifacts["reconstructions"]),
    )
    save("codebook_usage.png", usage_histogram(artifacts["histogram"]))
    rankings = artifacts.get("retrieval_rankings") or {}
    full_images = artifacts.get("eval_images")
    if full_images is not None:
        for key, tag in (
            ("probe_image_embeddings", "probe"),
            ("own_image_embeddings", "own"),
        ):
            if key in rankings:
                save(
                    f"retrieval_{tag}.png",
                    retrieval_grid(
                        full_images, rankings[key]["text_to_image_top5"]
                    ),
                )
    return written


# === Tables and reports ===

# (flat key, label, higher is better, reference key or None)
TABLE_ROWS = (
    ("psnr", "PSNR (dB)", True, None),
    ("ssim", "SSIM", True, None),
    ("lpips", "LPIPS", False, None),
    ("rfid", "rFID", False, None),
    ("codebook_usage_pct", "Codebook usage (%)", True, None),
    ("codebook_perplexity", "Codebook perplexity", True, None),
    ("retrieval_i2t_R@1_probe", "Image->text R@1 (probe)", True,
     "chance_retrieval_R@1"),
    ("retrieval_i2t_R@5_probe", "Image->text R@5 (probe)", True,
     "chance_retrieval_R@5"),
    ("retrieval_i2t_R@10_probe", "Image->text R@10 (probe)", True,
     "chance_retrieval_R@10"),
    ("retrieval_t2i_R@1_probe", "Text->image R@1 (probe)", True,
     "chance_retrieval_R@1"),
    ("retrieval_t2i_R@5_probe", "Text->image R@5 (probe)", True,
     "chance_retrieval_R@5"),
    ("retrieval_t2i_R@10_probe", "Text->image R@10 (probe)", True,
     "chance_retrieval_R@10"),
    ("retrieval_i2t_R@1_own", "Image->text R@1 (own GSA head)", True,
     "chance_retrieval_R@1"),
    ("retrieval_i2t_R@5_own", "Image->text R@5 (own GSA head)", True,
     "chance_retrieval_R@5"),
    ("retrieval_i2t_R@10_own", "Image->text R@10 (own GSA head)", True,
     "chance_retrieval_R@10"),
    ("mask1_recall_probe", "Masked-word R@1, Mask-1 (probe)", True,
     "baseline_mask1"),
    ("mask3_recall_probe", "Masked-word R@1, Mask-3 (probe)", True,
     "baseline_mask3"),
    ("mask1_recall_own", "Masked-word R@1, Mask-1 (own MTP head)", True,
     "baseline_mask1"),
    ("mask3_recall_own", "Masked-word R@1, Mask-3 (own MTP head)", True,
     "baseline_mask3"),
    ("relation_mse_probe", "Code-word relation MSE (probe match)", False,
     None),
    ("relation_mse_own", "Code-word relation MSE (own RAS head)", False,
     None),
    ("attr_shape_acc", "Linear probe: shape acc (%)", True,
     "chance_attr_shape"),
    ("attr_color_acc", "Linear probe: color acc (%)", True,
     "chance_attr_color"),
    ("attr_size_acc", "Linear probe: size acc (%)", True, "chance_attr_size"),
    ("attr_fill_acc", "Linear probe: fill acc (%)", True, "chance_attr_fill"),
    ("attr_num_objects_acc", "Linear probe: object count acc (%)", True,
     "chance_attr_num_objects"),
)


def _fmt(value):
    if value is None:
        return "n/a"
    if abs(value) >= 100 or value == int(value):
        return f"{value:.1f}"
    if abs(value) < 0.1:
        return f"{value:.4f}"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}"


def comparison_rows(flat_by_model, names=("lgvq", "vqgan")):
    """Rows `(label, value per model..., reference, better)` of the table.

    `reference` is what an uninformed model scores (retrieval chance
    `K / N`, the majority-token baseline of the masked-word protocol, the
    majority class of an attribute), or "" when none applies. `better`
    names the model with the better value, "tie" when equal as displayed,
    or "-" when only one model has the metric.
    """
    rows = []
    for key, label, higher, ref_key in TABLE_ROWS:
        values = [flat_by_model[n].get(key) for n in names]
        if all(v is None for v in values):
            continue
        reference = ""
        if ref_key is not None:
            refs = [flat_by_model[n].get(ref_key) for n in names]
            refs = [r for r in refs if r is not None]
            reference = _fmt(refs[0]) if refs else ""
        better = "-"
        present = [(v, n) for v, n in zip(values, names) if v is not None]
        if len(present) == len(names):
            best = max(present) if higher else min(present)
            # Equal as displayed counts as a tie (no false precision).
            ties = [n for v, n in present if _fmt(v) == _fmt(best[0])]
            better = "tie" if len(ties) > 1 else best[1]
        arrow = "↑" if higher else "↓"
        rows.append(
            (f"{label} {arrow}",)
            + tuple(map(_fmt, values))
            + (reference, better)
        )
    return rows


def text_table(rows, header):
    widths = [
        max(len(str(r[i])) for r in [header] + rows)
        for i in range(len(header))
    ]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def fmt(row):
        return "| " + " | ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(row, widths))
        ) + " |"

    return "\n".join([line, fmt(header), line] + [fmt(r) for r in rows] + [
        line
    ])


def markdown_table(rows, header):
    out = ["| " + " | ".join(header) + " |"]
    out.append("|" + "|".join(
        ["---"] + ["---:"] * (len(header) - 2) + [":---:"]
    ) + "|")
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(out)


def retrieval_markdown(artifacts, key, title, rows=4):
    """Captions of the text->image queries and image->text top-3 lists."""
    rankings = (artifacts.get("retrieval_rankings") or {}).get(key)
    captions = artifacts.get("captions")
    if rankings is None or not captions:
        return ""
    lines = [f"**{title}** — text→image queries (rows of the figure):", ""]
    for q, hits in enumerate(rankings["text_to_image_top5"][:rows]):
        mark = "hit@1" if hits[0] == q else (
            "hit@5" if q in hits else "miss"
        )
        lines.append(f"{q + 1}. “{captions[q]}” ({mark})")
    lines += ["", "Image→text, top-3 captions for the first images:", ""]
    for i, hits in enumerate(rankings["image_to_text_top3"][:rows]):
        listed = "; ".join(
            ("**" if h == i else "") + captions[h] + ("**" if h == i else "")
            for h in hits
        )
        lines.append(f"- image {i + 1}: {listed}")
    return "\n".join(lines) + "\n"


def unavailable_notes(results):
    """Lines explaining metrics recorded as unavailable."""
    notes = []
    for name in ("lpips", "rfid"):
        entry = results.get(name) or {}
        if entry and not entry.get("available", True):
            notes.append(f"- {name.upper()} not computed: {entry['reason']}")
    return notes
