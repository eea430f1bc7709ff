"""Stage 2: text-to-image generation and image completion over the codes of
a frozen tokenizer (a masked-token transformer, MaskGIT / Muse family).

Home of the generator backbone, its trainer / sampler and
`text_to_image_presets.py`. Spec: shared/reference/downstream-spec.md §1.
"""
