"""VQCT training: the VQGAN objective on a VQCT tokenizer, with or without
LG-VQ's language guidance (VQCT+LG)."""

import keras
from keras import ops

from keras_lgvq.models.lgvq.lgvq import LGVQ
from keras_lgvq.models.vqgan.vqgan import VQGAN

# Per-sub-codebook quantizer outputs logged next to VQGAN's terms.
SUBCODEBOOK_LOGS = (
    "adjective_loss",
    "noun_loss",
    "adjective_perplexity",
    "noun_perplexity",
    "adjective_usage",
    "noun_usage",
)


class _VQCTTrainerMixin:
    """What a VQCT backbone changes in a VQGAN-family trainer: the logs of
    both sub-codebooks, preset building, and building before the prior is
    loaded (a saved model gets its prior with its weights)."""

    def log_names(self):
        return super().log_names() + list(SUBCODEBOOK_LOGS)

    def _tokenizer_losses(self, images, outputs):
        total, logs = super()._tokenizer_losses(images, outputs)
        for key in SUBCODEBOOK_LOGS:
            logs[key] = outputs[key]
        return total, logs

    def build(self, input_shape=None):
        if self.built:
            return
        if getattr(self.backbone, "has_prior", True):
            super().build(input_shape)
            return
        # Deserializing (`.keras`, `compile_from_config`): the quantizer's
        # prior arrives with the weights, so it cannot run yet. The
        # functional backbone is already built; build the other parts.
        res = self.backbone.resolution
        images = ops.zeros((1, res, res, self.backbone.in_channels))
        if self.discriminator is not None:
            self.discriminator(images)
        if self.perceptual_loss is not None:
            self.perceptual_loss(images, images)
        self._build_extra(images)
        self.built = True

    @classmethod
    def _from_spec(cls, spec, prior=None, **kwargs):
        from keras_lgvq.models.vqct.vqct_backbone import VQCTBackbone

        if "prior" not in spec:
            raise ValueError(
                f"{cls.__name__} builds VQCT presets (with a `prior` entry); "
                "this spec has none. Use VQGAN / LGVQ for the other presets."
            )
        backbone = kwargs.pop("backbone", None)
        fields = set(spec["backbone"]) | set(spec["quantizer"])
        fields |= {"in_channels", "dtype"}
        overrides = {k: kwargs.pop(k) for k in list(kwargs) if k in fields}
        if backbone is None:
            backbone = VQCTBackbone._from_spec(spec, prior=prior, **overrides)
        elif overrides or prior is not None:
            raise ValueError(
                "Pass either `backbone` or backbone / prior overrides "
                f"{sorted(overrides) + (['prior'] if prior else [])}, not "
                "both."
            )
        return super()._from_spec(spec, backbone=backbone, **kwargs)


@keras.saving.register_keras_serializable(package="keras_lgvq")
class VQCT(_VQCTTrainerMixin, VQGAN):
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
    language guidance is `VQCTLG` / the `scenes_vqct_lg` preset.

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


@keras.saving.register_keras_serializable(package="keras_lgvq")
class VQCTLG(_VQCTTrainerMixin, LGVQ):
    """VQCT+LG: LG-VQ's language guidance on a VQCT tokenizer.

    Exactly `keras_lgvq.models.LGVQ` with a `VQCTBackbone` (the guidance
    attaches to the straight-through VQCT latent, both halves), plus the
    per-sub-codebook logs of `VQCT`. `LGVQ(backbone=VQCTBackbone(...))`
    trains the same model; this class exists so that the `scenes_vqct_lg`
    preset name builds a VQCT backbone from its prior and so that a model
    saved before its prior is loaded can be rebuilt.

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
        if "guidance" not in spec:
            raise ValueError(
                "This VQCT preset has no language guidance; build it with "
                "`VQCT.from_preset`, or use a VQCT+LG preset such as "
                "'scenes_vqct_lg'."
            )
        return super()._from_spec(spec, **kwargs)
