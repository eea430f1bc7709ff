"""Command line: `python -m keras_lgvq compare|evaluate ...` (or `keras-lgvq`).

A thin dispatcher to the recipes in the source checkout's `recipes/`
folder:

- `compare`: `recipes/scenes_compare.py`, LG-VQ against its VQGAN baseline
  on the scenes set (`--quick`, `--out DIR`, ...).
- `evaluate`: `recipes/evaluate.py`, evaluate a saved model.

Run `python -m keras_lgvq compare --help` for a command's options.
"""

import importlib
import os
import sys

COMMANDS = {
    "compare": (
        "recipes.scenes_compare",
        "train LG-VQ and its VQGAN baseline on the scenes set, compare",
    ),
    "evaluate": ("recipes.evaluate", "evaluate a saved .keras / preset"),
}


def _usage():
    lines = ["usage: python -m keras_lgvq {compare,evaluate} [options]", ""]
    for name, (_, text) in COMMANDS.items():
        lines.append(f"  {name:<9} {text}")
    return "\n".join(lines)


def _load(module):
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name not in ("recipes", module):
            raise
    # The recipes sit next to the package in a source checkout (an
    # editable install), not inside the installed package.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isdir(os.path.join(root, "recipes")):
        raise SystemExit(
            "The recipes are not installed with the package: run this from "
            "a source checkout of keras-lgvq (`pip install -e .`)."
        )
    sys.path.insert(0, root)
    return importlib.import_module(module)


def main(argv=None):
    """Entry point of `python -m keras_lgvq` and the `keras-lgvq` script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] not in COMMANDS:
        print(f"Unknown command {argv[0]!r}.\n\n{_usage()}", file=sys.stderr)
        return 2
    module = _load(COMMANDS[argv[0]][0])
    return module.main(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
