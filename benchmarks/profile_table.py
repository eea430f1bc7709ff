"""Markdown tables of the step profiles of every backend.

Reads `benchmarks/results/step_profile_*.json` (written by
`step_profile_benchmark.py`) and prints, per config, one row per backend:
the full step time, each component's share of the full step (in-step
components; `-` where the model has no such component, components the
step does not run in brackets) and the residual share. Also a second table
of the backends' own profiler summaries (torch's top ops, XLA's FLOP
estimate). For benchmarks/README.md; this script does not edit it.

Usage:

```
python benchmarks/profile_table.py [--results benchmarks/results] [--out t.md]
```
"""

import argparse
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from step_profile_benchmark import COMPONENTS  # noqa: E402
from step_profile_benchmark import PROFILE_CONFIGS  # noqa: E402

SHORT = {
    "encoder": "enc",
    "quantizer": "VQ",
    "decoder": "dec",
    "lpips": "LPIPS",
    "discriminator_generator_side": "D (G side)",
    "discriminator_step": "D step",
    "adaptive_weight": "adapt. w",
    "code_transformer": "code tf",
    "gsa": "GSA",
    "mtp": "MTP",
    "ras": "RAS",
    "text_prior": "text prior",
    "optimizer": "Adam",
    "host_data": "host data*",
}


def _label(report, path):
    name = report["backend"]
    if name == "tensorflow":
        name = (
            "TF, no XLA" if "_noxla" in os.path.basename(path) else "TF, XLA"
        )
    return name


def load_reports(results_dir):
    reports = []
    for path in sorted(
        glob.glob(os.path.join(results_dir, "step_profile_*.json"))
    ):
        with open(path) as f:
            report = json.load(f)
        reports.append((_label(report, path), report))
    return reports


def _pct(value):
    # Whole percents from 10 % up, one decimal below.
    return (
        f"{100 * value:.0f} %" if abs(value) >= 0.1 else f"{100 * value:.1f} %"
    )


def component_table(reports):
    """One Markdown table per config: rows = backends, columns = shares."""
    lines = []
    configs = [
        c
        for c in PROFILE_CONFIGS
        if any(c in r["results"] for _, r in reports)
    ]
    for config in configs:
        rows = [
            (label, r["results"][config])
            for label, r in reports
            if config in r["results"]
        ]
        present = [
            c
            for c in COMPONENTS
            if any(c in res["components"] for _, res in rows)
        ]
        first = rows[0][1]
        desc = first["config"]
        factor = 2 ** (len(desc["ch_mult"]) - 1)
        lines.append(
            f"**{config}** ({desc['resolution']} px, f{factor}, "
            f"K={desc['codebook_size']}, batch {desc['batch_size']}, "
            f"{first['model_kind']}, GAN in step: {first['gan_in_step']})"
        )
        lines.append("")
        header = (
            ["backend", "step s"] + [SHORT[c] for c in present] + ["residual"]
        )
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * 1 + "---:|" * (len(header) - 1))
        for label, res in rows:
            cells = [label, f"{res['full_step_s']:.3f}"]
            for c in present:
                comp = res["components"].get(c)
                if comp is None:
                    cells.append("-")
                elif comp["in_step"]:
                    cells.append(_pct(comp["share_of_full_step"]))
                else:
                    cells.append(f"({_pct(comp['share_of_full_step'])})")
            cells.append(_pct(res["residual_share"]))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(
        "Shares of the full step (isolated, compiled forward+backward of "
        "each component; residual = full step - sum). Brackets: timed but "
        "not part of the step (*host data: the step reads in-memory "
        "arrays)."
    )
    return "\n".join(lines)


def profiler_table(reports, top=5):
    lines = ["| backend | config | profiler | summary |", "|---|---|---|---|"]
    for label, report in reports:
        for config, res in report["results"].items():
            prof = res.get("profiler", {})
            if "top_ops" in prof:
                summary = ", ".join(
                    f"{op['op']} {_pct(op['self_share'])}"
                    for op in prof["top_ops"][:top]
                )
            elif "xla_cost_analysis" in prof:
                cost = prof["xla_cost_analysis"]
                summary = (
                    f"XLA: {cost['gflop']} GFLOP, {cost['gbytes_accessed']} GB "
                    f"per step; trace {prof.get('trace_dir')}"
                )
            else:
                summary = f"trace {prof.get('trace_dir')}"
            lines.append(
                f"| {label} | {config} | {prof.get('tool', '-')} | {summary} |"
            )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--results",
        default=os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "results"
        ),
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    reports = load_reports(args.results)
    if not reports:
        parser.error(f"No step_profile_*.json in {args.results}")
    text = component_table(reports) + "\n\n" + profiler_table(reports) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
