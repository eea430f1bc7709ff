"""LG-VQ on textcaps with the paper's settings (lgvq-spec §6.2).

VQGAN f16 at 256 px, K=1024, batch 8, Adam 3.6e-5 (0.5, 0.9), GAN from
batch 10000, CLIP ViT-B/32 text prior with 30 tokens, LPIPS. Needs your
local files: the dataset (--manual-dir, upstream layout), CLIP
(--text-prior DIR) and VGG16 ImageNet weights for LPIPS (--vgg-weights).
Add --cvq for the CVQ quantizer variant.

    python recipes/textcaps.py --manual-dir DATA --text-prior CLIP_DIR \
        --vgg-weights vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 \
        --epochs 500 --out runs/textcaps
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import train_lgvq  # noqa: E402

if __name__ == "__main__":
    argv = sys.argv[1:]
    preset = "textcaps_cvq" if "--cvq" in argv else "textcaps"
    argv = [a for a in argv if a != "--cvq"]
    train_lgvq.main(argv, defaults={"preset": preset, "out": "runs/textcaps"})
