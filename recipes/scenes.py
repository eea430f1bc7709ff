"""Train the `scenes` LG-VQ preset on the embedded captioned-scenes set (CPU).

Generates the procedural scenes (no download), uses the offline MiniLM text
prior (`python -m keras_lgvq.fetch_assets`), and prints per-epoch losses,
codebook usage and perplexity. Each epoch ends with validation on 256
held-out scenes; checkpoints and logs are kept (see `train_lgvq.py`; rerun
the same command after an interruption to resume). A few minutes on a 2-core CPU:

    python recipes/scenes.py --epochs 3 --out runs/scenes
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import train_lgvq  # noqa: E402

if __name__ == "__main__":
    train_lgvq.main(
        sys.argv[1:],
        defaults={
            "preset": "scenes",
            "out": "runs/scenes",
            "epochs": 3,
            "scenes_train_size": 4096,
            # 256 of the 2,000 validation scenes each epoch.
            "validation_steps": 16,
        },
    )
