"""Stage 2: image captioning from a frozen tokenizer's codes (ClipCap-style
prefix into a frozen causal language model).

Home of the prefix mapper, the captioner and `captioning_presets.py`.
Spec: shared/reference/downstream-spec.md §2.
"""
