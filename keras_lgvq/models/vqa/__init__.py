"""Stage 2: visual question answering over a frozen tokenizer's codes
([image prefix ; question] through a frozen causal LM, answer classifier).

Home of the VQA model and `vqa_presets.py`. Spec:
shared/reference/downstream-spec.md §3.
"""
