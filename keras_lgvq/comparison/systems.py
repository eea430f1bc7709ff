"""The rows of the scenes comparison: which systems, built how.

`MODELS` maps a key (`lgvq`, `vqgan`, ...) to a `ComparedModel`: the
trainer class and preset, whether it is language-guided, its unguided twin
(the pair tested for significance), how `--smoke` shrinks it and what asset
it needs. A new family is one more `MODELS` entry; `parse_models` turns
the `--models` text into keys.
"""

import dataclasses

from keras_lgvq.comparison.budgets import SMOKE_BACKBONE
from keras_lgvq.comparison.budgets import SMOKE_LQAE
from keras_lgvq.comparison.budgets import SMOKE_VQCT


def _smoke_vqgan_backbone():
    from keras_lgvq.models import VQGANBackbone

    return VQGANBackbone(**SMOKE_BACKBONE)


def _smoke_vqct_backbone():
    from keras_lgvq.models import VQCTBackbone

    return VQCTBackbone.from_preset("scenes_vqct", **SMOKE_VQCT)


def _smoke_lqae_overrides():
    return dict(SMOKE_LQAE)


def _needs_splade(settings):
    from keras_lgvq.language_models import splade_assets

    if splade_assets.is_available():
        return None
    return (
        "the splade-tiny language model (its codebook and masked LM) is not "
        "fetched: run `python -m keras_lgvq.language_models.splade_assets`"
    )


@dataclasses.dataclass(frozen=True)
class ComparedModel:
    """One system of the comparison (one entry of `MODELS`).

    Args:
        label: str. Its column and figure label.
        model_class: str. The trainer class in `keras_lgvq.models`.
        preset: str. The built-in preset it is built from.
        guided: bool. Trained with language guidance (gets the text prior
            and the guidance options: smoke-sized heads).
        baseline: str or None. The key of the same model without guidance
            (its initial backbone is the same); the pair is tested for
            significance.
        smoke_backbone: callable or None. Builds the tiny tokenizer of
            `--smoke` (None: `smoke_overrides` instead).
        note: str. A note for the report when the model is compared (one
            per distinct text).
        backbone: callable or None. `backbone(smoke)` builds the tokenizer
            passed to `from_preset` at every size (e.g. the `scenes`
            backbone with the CVQ quantizer); None: the preset's.
        smoke_overrides: callable or None. `from_preset` arguments of the
            `--smoke` size when there is no `smoke_backbone`.
        family: str. "vqgan" (taming VQGAN trainer: Adam, GAN/LPIPS
            settings of the preset) or "lqae" (LQAE trainer: AdamW with
            warm-up, no GAN, no LPIPS; its rows also get the LQAE
            downstream evaluations).
        requires: callable or None. `requires(settings)` -> None when the
            row can run, else the reason it is skipped (a missing asset).

    Examples:

    ```python
    row = ComparedModel("LG-VQ", "LGVQ", "scenes", True, "vqgan", None)
    MODELS["lgvq"].label   # "LG-VQ"
    ```
    """

    label: str
    model_class: str
    preset: str
    guided: bool
    baseline: object
    smoke_backbone: object
    note: str = ""
    backbone: object = None
    smoke_overrides: object = None
    family: str = "vqgan"
    requires: object = None


_VQCT_NOTE = (
    "VQCT models: the codebook is computed by a GCN from the packaged "
    "scenes prior (adjective and noun words, MiniLM vectors); each position "
    "has top-k adjective codes and one noun code. Codebook usage and "
    "perplexity are reported over all codes (adjectives and nouns together, "
    "every slot counted) and per sub-codebook; the usage figure has one "
    "panel per sub-codebook."
)
_CVQ_NOTE = (
    "CVQ models: the `scenes` backbone and guidance with the CVQ quantizer "
    "of lgvq-spec §1.3 (online re-initialisation of rarely used codes from "
    "encoder features, decay 0.99, 'probrandom' anchors, contrastive "
    "weight 1.0) instead of the plain cosine quantizer."
)
_LQAE_NOTE = (
    "LQAE models: a different tokenizer family (ViT encoder/decoder, "
    "`scenes_lqae` / `scenes_vqae`), trained by the LQAE trainer (AdamW "
    "with warm-up, MSE + commitment + masked-LM loss, no GAN, no LPIPS) "
    "for the same steps, batches and seed. LQAE's codebook is the frozen "
    "splade-tiny vocabulary (30,522 word pieces), VQAE's a learned "
    "1024-code one; compare LQAE with VQAE, not with the VQGAN rows."
)
def _cvq_backbone(smoke):
    """The `scenes` backbone (or `--smoke`'s) with the scenes quantizer
    settings plus the CVQ re-initialisation and contrastive loss."""
    from keras_lgvq.layers.quantizers.vector_quantizer import VectorQuantizer
    from keras_lgvq.models import VQGANBackbone
    from keras_lgvq.models.lgvq.lgvq_presets import SCENES_CVQ_QUANTIZER
    from keras_lgvq.models.presets import get_preset

    spec = get_preset("scenes")
    args = dict(SMOKE_BACKBONE if smoke else spec["backbone"])
    quantizer = VectorQuantizer(
        args["num_embeddings"],
        args["embedding_dim"],
        name="quantizer",
        **{**spec["quantizer"], **SCENES_CVQ_QUANTIZER},
    )
    return VQGANBackbone(**args, quantizer=quantizer)


# The systems `--models` can select, in table order.
MODELS = {
    "lgvq": ComparedModel(
        "LG-VQ", "LGVQ", "scenes", True, "vqgan", _smoke_vqgan_backbone
    ),
    "vqgan": ComparedModel(
        "VQGAN", "VQGAN", "scenes", False, None, _smoke_vqgan_backbone
    ),
    "cvq_lg": ComparedModel(
        "CVQ+LG", "LGVQ", "scenes", True, "cvq", None, _CVQ_NOTE,
        backbone=_cvq_backbone,
    ),
    "cvq": ComparedModel(
        "CVQ", "VQGAN", "scenes", False, None, None, _CVQ_NOTE,
        backbone=_cvq_backbone,
    ),
    "vqct_lg": ComparedModel(
        "VQCT+LG", "VQCTLG", "scenes_vqct_lg", True, "vqct",
        _smoke_vqct_backbone, _VQCT_NOTE,
    ),
    "vqct": ComparedModel(
        "VQCT", "VQCT", "scenes_vqct", False, None, _smoke_vqct_backbone,
        _VQCT_NOTE,
    ),
    "lqae": ComparedModel(
        "LQAE", "LQAE", "scenes_lqae", False, "vqae", None, _LQAE_NOTE,
        smoke_overrides=_smoke_lqae_overrides, family="lqae",
        requires=_needs_splade,
    ),
    "vqae": ComparedModel(
        "VQAE", "LQAE", "scenes_vqae", False, None, None, _LQAE_NOTE,
        smoke_overrides=_smoke_lqae_overrides, family="lqae",
    ),
}
# The default rows: the main comparison at its measured budget.
DEFAULT_MODELS = ("lgvq", "vqgan")
# Display names of the rows.
MODEL_NAMES = {kind: spec.label for kind, spec in MODELS.items()}


def model_name(kind):
    """The display label of `MODELS[kind]` (the key itself if unknown).

    Args:
        kind: str. A `MODELS` key.

    Examples:

    ```python
    model_name("lgvq")   # "LG-VQ"
    ```
    """
    spec = MODELS.get(kind)
    return spec.label if spec is not None else str(kind)


def parse_models(text, all_rows=False):
    """`--models` text -> tuple of `MODELS` keys (order kept, no repeats).

    Args:
        text: str or None. Comma-separated keys of `MODELS`, or "all";
            None gives `DEFAULT_MODELS`.
        all_rows: bool. `--all`: every row (then `text` must be None).

    Returns:
        tuple of `MODELS` keys.

    Raises:
        ValueError: an unknown key (the valid ones are listed), none, or
            both `--all` and `--models`.

    Examples:

    ```python
    parse_models("vqct_lg, vqct")   # ("vqct_lg", "vqct")
    parse_models(None, all_rows=True) == tuple(MODELS)   # True
    ```
    """
    if all_rows:
        if text is not None:
            raise ValueError(
                "Pass either --all (every row) or --models, not both."
            )
        return tuple(MODELS)
    if text is None:
        return DEFAULT_MODELS
    kinds = [k.strip() for k in str(text).split(",") if k.strip()]
    if kinds == ["all"]:
        return tuple(MODELS)
    unknown = [k for k in kinds if k not in MODELS]
    if unknown or not kinds:
        raise ValueError(
            f"--models must be a comma-separated list of {list(MODELS)} "
            f"(or 'all'); received {text!r}"
            + (f" (unknown: {unknown})" if unknown else "")
            + "."
        )
    return tuple(dict.fromkeys(kinds))
