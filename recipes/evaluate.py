"""Evaluate a saved tokenizer (`.keras` file or preset directory).

Any trainer of the package: VQGAN, LG-VQ, VQCT or VQCT+LG. Writes
`evaluation.json` (every metric of `keras_lgvq.evaluation` that applies),
`report.md`, `reconstructions.png`, `codebook_usage.png` and retrieval
examples into `--out`. For VQCT (codes with adjective and noun
sub-codebooks) the table adds codebook usage and perplexity per
sub-codebook, and the usage figure has one panel per sub-codebook.

Usage:

```
python recipes/evaluate.py runs/scenes/lgvq/preset --out runs/eval_lgvq
python recipes/evaluate.py my_model.keras --dataset cub --split test
python -m keras_lgvq evaluate runs/scenes/vqgan/preset --quick
```
"""

import argparse
import os
import sys

try:
    from recipes import common
except ImportError:  # Run as `python recipes/evaluate.py`.
    sys.path.insert(
        0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    )
    from recipes import common


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=(
            "Evaluate a saved VQGAN / LG-VQ / VQCT / VQCT+LG tokenizer."
        )
    )
    parser.add_argument("model", help="A .keras file or a preset directory.")
    parser.add_argument("--out", default="runs/evaluation")
    parser.add_argument("--dataset", default="scenes")
    parser.add_argument("--split", default="test")
    parser.add_argument(
        "--quick", action="store_true", help="256 images, small probes."
    )
    parser.add_argument("--eval-size", type=int, help="Images scored.")
    parser.add_argument(
        "--probe-size",
        type=int,
        help="Training images the probes learn on (0: no probes).",
    )
    parser.add_argument("--probe-epochs", type=int)
    parser.add_argument("--probe-batch-size", type=int, default=32)
    parser.add_argument("--linear-epochs", type=int)
    parser.add_argument(
        "--probe-max-steps",
        type=int,
        help="Cap on the alignment probe's optimizer steps (bounds the "
        "longest phase; the cost per phase is printed and in "
        "evaluation.json 'seconds').",
    )
    parser.add_argument(
        "--probe-max-images",
        type=int,
        help="Train the alignment probe on at most this many of the probe "
        "images.",
    )
    parser.add_argument(
        "--text-prior",
        default=None,
        help="Text prior for the probes when the model has none "
        "(default: the model's own, else 'minilm' when it is fetched; "
        "without it the text metrics are skipped).",
    )
    parser.add_argument(
        "--train-size",
        type=int,
        default=None,
        help="Scenes only: size of the generated training split.",
    )
    parser.add_argument("--data-dir")
    parser.add_argument("--manual-dir", help="Raw files of a photo dataset.")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    return parser.parse_args(argv)


def load_model(path):
    """Load a `.keras` file (safe mode) or a `save_to_preset` directory.

    Every trainer subclasses `VQGAN` (LGVQ, VQCT, VQCTLG), so a preset
    directory of any of them loads as its own class.
    """
    import keras

    # Importing the models package registers every trainer class.
    from keras_lgvq.models import VQGAN

    if os.path.isdir(path):
        return VQGAN.from_preset(path)
    if path.endswith(".keras") and os.path.isfile(path):
        return keras.saving.load_model(path)
    raise ValueError(
        f"`model` must be a .keras file or a preset directory written by "
        f"`save_to_preset`. Received: {path!r}"
    )


def _text_prior(model, name, verbose):
    """The text prior of the text metrics: `name`, else the model's own,
    else MiniLM when it is fetched (None without it: the text metrics are
    skipped)."""
    prior = getattr(model, "text_prior", None)
    if prior is not None and name is None:
        return prior
    from keras_lgvq import text_priors

    if name is not None:
        # Asked for by name: a missing or unknown prior is an error.
        return text_priors.get(name)
    try:
        return text_priors.get("minilm")
    # Only the default prior's files being absent (not fetched) means
    # "evaluate without text"; a corrupt or incompatible prior propagates.
    except FileNotFoundError as error:
        if verbose:
            print(
                f"No text prior ({error}); retrieval, masked-word and "
                "relation metrics are skipped."
            )
        return None


def build_splits(args, model, prior, eval_size, probe_size):
    from keras_lgvq.datasets import make_dataset
    from keras_lgvq.evaluation import prepare_split

    resolution = model.backbone.resolution
    if args.dataset == "scenes":
        return common.scenes_splits(
            prior,
            eval_size=eval_size,
            probe_size=probe_size,
            image_size=resolution,
            train_size=args.train_size,
            seed=args.seed,
            data_dir=args.data_dir,
            verbose=args.verbose,
            eval_split_name=args.split,
        )
    common_args = dict(
        batch_size=64,
        image_size=resolution,
        training=False,
        seed=args.seed,
        text_prior=prior,
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
    )
    eval_split = prepare_split(
        make_dataset(args.dataset, split=args.split, **common_args),
        prior,
        max_images=eval_size,
        seed=args.seed,
        verbose=args.verbose,
    )
    probe_split = None
    if probe_size:
        probe_split = prepare_split(
            make_dataset(args.dataset, split="train", **common_args),
            prior,
            max_images=probe_size,
            seed=args.seed + 1,
            protocol_mask_counts=(),
            training_masks=True,
            verbose=args.verbose,
        )
    return eval_split, probe_split


def run(args):
    """Evaluate and write the files; returns the results dict."""
    from keras_lgvq import visualization
    from keras_lgvq.evaluation import evaluate_model
    from keras_lgvq.evaluation import flatten_metrics

    # Fail before the model runs if the figures cannot be drawn.
    visualization.require_matplotlib()
    common.quiet_tensorflow()
    watch = common.Stopwatch()
    eval_size = args.eval_size or (256 if args.quick else 512)
    probe_size = (
        args.probe_size
        if args.probe_size is not None
        else (384 if args.quick else 1536)
    )
    probe_config = dict(
        epochs=args.probe_epochs or (3 if args.quick else 4),
        batch_size=args.probe_batch_size,
        linear_epochs=args.linear_epochs or (100 if args.quick else 200),
        max_steps=args.probe_max_steps,
        max_train_images=args.probe_max_images,
    )
    os.makedirs(args.out, exist_ok=True)
    with watch.phase("load"):
        model = load_model(args.model)
        prior = _text_prior(model, args.text_prior, args.verbose)
    with watch.phase("data"):
        eval_split, probe_split = build_splits(
            args, model, prior, eval_size, probe_size
        )
    with watch.phase("evaluate"):
        results, artifacts = evaluate_model(
            model,
            eval_split,
            probe_split,
            text_prior=prior,
            probe_config=probe_config,
            batch_size=args.batch_size,
            seed=args.seed,
            verbose=args.verbose,
            return_artifacts=True,
        )
    results["figures"] = visualization.write_evaluation_figures(
        args.out, artifacts, name=results["model"]
    )
    results["source"] = {
        "model": os.path.abspath(args.model),
        "dataset": args.dataset,
        "split": args.split,
        "probe_images": probe_size,
        "probe_config": probe_config,
    }
    results["table_metrics"] = flatten_metrics(results)
    timing = watch.as_dict()
    timing["peak_rss_mb"] = common.peak_rss_mb()
    results["timing"] = timing
    results["machine"] = common.machine_info()
    common.write_json(os.path.join(args.out, "evaluation.json"), results)
    name = results["model"]
    flat = {name: results["table_metrics"]}
    rows = [r[:3] for r in visualization.comparison_rows(flat, names=(name,))]
    header = ("Metric", name, "Chance/baseline")
    table = visualization.text_table(rows, header)
    print("\n" + table)
    lines = [
        f"# Evaluation of {name}",
        "",
        f"Model `{args.model}` on `{args.dataset}`/`{args.split}` "
        f"({results['num_eval_images']} images); probes trained on "
        f"{probe_size} training images.",
        "",
        visualization.markdown_table(rows, header),
        "",
    ]
    lines += visualization.unavailable_notes(results)
    lines += [
        "",
        f"![reconstructions]({results['figures']['reconstructions.png']})",
        "",
        f"![codebook usage]({results['figures']['codebook_usage.png']})",
        "",
    ]
    for key, tag, title in visualization.report.RETRIEVAL_SOURCES:
        fig = results["figures"].get(f"retrieval_{tag}.png")
        if fig:
            lines += [f"![{title}]({fig})", ""]
            lines.append(
                visualization.retrieval_markdown(artifacts, key, title)
            )
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write("\n".join(lines))
    print(f"Wrote {args.out}/evaluation.json and report.md.")
    return results


def main(argv=None):
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
