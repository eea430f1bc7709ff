"""VQCT training: the VQGAN objective on a VQCT tokenizer, with or without
LG-VQ's language guidance (VQCT+LG).

Nothing here is specific to training: `VQGAN` and `LGVQ` build a VQCT
backbone from a VQCT preset (its `backbone_class`), log the per-sub-codebook
terms the backbone names (`quantizer_log_names`) and wait for the prior
when deserializing (`ready_to_run`). `VQCT` and `VQCTLG` are those
trainers under the papers' names (VQCT; VQCT+LG in LG-VQ), restricted to
VQCT presets; they stay public and load the files saved under them.
"""

import keras

from keras_lgvq.models.lgvq.lgvq import LGVQ
from keras_lgvq.models.vqct.vqct_backbone import SUBCODEBOOK_LOGS
from keras_lgvq.models.vqgan.vqgan import VQGAN
from keras_lgvq.models.vqgan.vqgan_backbone import preset_backbone_class

__all__ = ["SUBCODEBOOK_LOGS", "VQCT", "VQCTLG"]


def _check_vqct_spec(cls, spec):
    from keras_lgvq.models.vqct.vqct_backbone import VQCTBackbone

    if not issubclass(preset_backbone_class(spec), VQCTBackbone):
        raise ValueError(
            f"{cls.__name__} builds VQCT presets (with a `prior` entry and "
            "`backbone_class` 'VQCTBackbone'); this spec is for another "
            "tokenizer. Use VQGAN / LGVQ for the other presets."
        )


@keras.saving.register_keras_serializable(package="keras_lgvq")
class VQCT(VQGAN):
    """Trains a VQCT tokenizer (Zhang et al., CVPR 2024).

    The `keras_lgvq.models.VQGAN` objective (L1 + `perceptual_weight` *
    LPIPS + `codebook_weight` * L_vq + the adaptive hinge GAN) on a
    `VQCTBackbone`, whose VQ loss is the sum of the adjective and noun
    halves' losses; each half's loss, perplexity and usage is logged
    (`adjective_loss`, `noun_loss`, `adjective_usage`, ...). The GCN that
    computes the codebook is trained through the codebook term only; the
    unused MLP of the official code is not carried over.

    Presets: `cub_vqct`, `coco_vqct`, `ade20k_vqct` (the paper configs;
    they need the paper prior built first, see the error they raise),
    `scenes_vqct` (CPU config with the packaged scenes prior). VQCT with
    language guidance is `VQCTLG` (or `LGVQ`) with the `scenes_vqct_lg`
    preset. `VQGAN.from_preset("scenes_vqct")` builds the same model.

    Args:
        backbone: `keras_lgvq.models.VQCTBackbone`.
        **kwargs: `keras_lgvq.models.VQGAN` arguments (discriminator,
            perceptual loss, GAN weights).

    Examples:

    ```python
    model = keras_lgvq.models.VQCT.from_preset("scenes_vqct")
    model.compile(learning_rate=1e-3)
    model.fit(images_dataset, epochs=1)
    indices = model.backbone.encode(images)  # (B, 16, 16, 3)
    ```
    """

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Builds a VQCT from a built-in preset name or a preset directory.

        Args:
            preset: string. A VQCT preset name or a local directory.
            load_weights: bool. Load the directory's weights.
            **kwargs: overrides: backbone / quantizer fields of a built-in
                preset (e.g. `resolution=128`, `top_k=1`), `prior=` a prior
                directory or official `.pkl`, and constructor arguments
                (e.g. `perceptual_loss=None`, `disc_start=...`).

        Examples:

        ```python
        model = keras_lgvq.models.VQCT.from_preset("scenes_vqct")
        model = keras_lgvq.models.VQCT.from_preset(
            "cub_vqct", prior="priors/cub_clip")
        ```
        """
        return super().from_preset(preset, load_weights=load_weights, **kwargs)

    @classmethod
    def _from_spec(cls, spec, **kwargs):
        _check_vqct_spec(cls, spec)
        return super()._from_spec(spec, **kwargs)


@keras.saving.register_keras_serializable(package="keras_lgvq")
class VQCTLG(LGVQ):
    """VQCT+LG: LG-VQ's language guidance on a VQCT tokenizer.

    Exactly `keras_lgvq.models.LGVQ` with a `VQCTBackbone` (the guidance
    attaches to the straight-through VQCT latent, both halves), with the
    per-sub-codebook logs of `VQCT`. `LGVQ.from_preset("scenes_vqct_lg")`
    and `LGVQ(backbone=VQCTBackbone(...))` build and train the same model
    through the same path as LG-VQ on a VQGAN; this name is kept for the
    VQCT+LG of the LG-VQ paper and accepts VQCT presets only.

    Args:
        backbone: `keras_lgvq.models.VQCTBackbone`.
        **kwargs: `keras_lgvq.models.LGVQ` arguments (text prior,
            guidance, GAN weights).

    Examples:

    ```python
    model = keras_lgvq.models.VQCTLG.from_preset("scenes_vqct_lg")
    model.compile(learning_rate=1e-3)
    ds = keras_lgvq.datasets.make_dataset(
        "scenes", split="train", batch_size=16, text_prior=model.text_prior)
    model.fit(ds, epochs=1)
    ```
    """

    @classmethod
    def _from_spec(cls, spec, **kwargs):
        _check_vqct_spec(cls, spec)
        return super()._from_spec(spec, **kwargs)
