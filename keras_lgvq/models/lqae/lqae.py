"""LQAE training: pixel MSE + commitment + the frozen masked LM's loss."""

import os

import keras
from keras import ops

from keras_lgvq.models.lqae.lqae_backbone import check_image_range
from keras_lgvq.models.vqgan.vqgan import VQGAN
from keras_lgvq.optimizers.gan_optimizer import GANOptimizer
from keras_lgvq.utils.validation import check_images
from keras_lgvq.utils.validation import check_int
from keras_lgvq.utils.validation import check_number

# Variable names that weight decay skips (unless `faithful=True`): biases,
# LayerNorm scales / offsets and the learned position embeddings.
NO_DECAY_NAMES = ("bias", "output_bias", "gamma", "beta", "position_embedding")
# README run (lqae-spec §1.5).
README_MASK_RATIO = 0.5
README_MLM_WEIGHT = 1e-4


def weight_decay_exempt(variable):
    """Whether LQAE's corrected decay mask exempts `variable`.

    Args:
        variable: a `keras.Variable`.
    """
    return variable.name in NO_DECAY_NAMES or variable.name.endswith("_bias")


def lqae_learning_rate(learning_rate, warmup_steps=0, total_steps=None):
    """The official schedule: linear warm-up from 0, then cosine to 0.

    `optax.warmup_cosine_decay_schedule(0, peak, warmup, total, 0)`: the
    cosine runs over `total_steps - warmup_steps` steps. With
    `total_steps=None` the rate stays at `learning_rate` after warm-up.

    Args:
        learning_rate: float > 0. Peak rate (official: 1.5e-4 x batch / 256).
        warmup_steps: int >= 0. Linear warm-up steps.
        total_steps: int or None. Warm-up + decay steps.

    Returns:
        A float (constant rate) or a `keras.optimizers.schedules.CosineDecay`.

    Examples:

    ```python
    schedule = keras_lgvq.models.lqae.lqae.lqae_learning_rate(
        3e-4, warmup_steps=5 * 2502, total_steps=100 * 2502)
    ```
    """
    learning_rate = check_number(
        "learning_rate", learning_rate, low=0.0, low_open=True
    )
    warmup_steps = check_int("warmup_steps", warmup_steps, low=0)
    total_steps = check_int("total_steps", total_steps, allow_none=True)
    if total_steps is not None and total_steps <= warmup_steps:
        raise ValueError(
            f"`total_steps` ({total_steps}) must exceed `warmup_steps` "
            f"({warmup_steps}): the cosine decay runs over the difference."
        )
    if total_steps is None and warmup_steps == 0:
        return learning_rate
    if total_steps is None:
        # alpha=1: the "decay" ends where it starts, i.e. constant.
        decay_steps, alpha = 1, 1.0
    else:
        decay_steps, alpha = total_steps - warmup_steps, 0.0
    if warmup_steps == 0:
        return keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps, alpha=alpha
        )
    return keras.optimizers.schedules.CosineDecay(
        0.0,
        decay_steps,
        alpha=alpha,
        warmup_target=learning_rate,
        warmup_steps=warmup_steps,
    )


@keras.saving.register_keras_serializable(package="keras_lgvq")
class LQAE(VQGAN):
    """Trains an `LQAEBackbone` with the language model in the loop.

    Each batch (lqae-spec §1.3-1.4):

    1. the image is tokenized onto the frozen LM's vocabulary;
    2. every token is masked i.i.d. with probability `mask_ratio`
       (Bernoulli; the README run: 0.5), i.e. replaced by the LM's mask
       embedding;
    3. the frozen LM (dropout off) reads the sequence of embeddings; the
       decoder reconstructs from its last hidden states (or the predicted
       tokens, see `LQAEBackbone.decoder_input`);
    4. loss = `reconstruction_weight * MSE` on [0, 1] pixels
       + the quantizer's commitment loss
       + `mlm_weight * CE`, the masked-LM cross-entropy of the LM's logits
       against the image's **own** token ids, averaged over the masked
       positions of each image, then over the batch (an image with no
       masked token contributes 0). The LM is frozen, so this gradient
       reaches the encoder only through the straight-through embeddings of
       the unmasked tokens.

    The LM and the token table get no update: their variables are
    non-trainable. The one exception is an LM shipped without an MLM head
    (`has_pretrained_head=False`, e.g. MiniLM): its new head (dense + norm +
    bias, tied to the frozen embeddings) is trained with the autoencoder.
    Without a language model (the VQAE baseline) the loss is MSE + the
    codebook's VQ loss.

    Optimizer (`compile`): AdamW (0.9, 0.95) with linear warm-up and
    cosine decay to 0 (`lqae_learning_rate`); weight decay skips biases,
    LayerNorm parameters and position embeddings (the official code defines
    this mask but never uses it; `faithful=True` decays everything, as the
    official run did).

    The per-backend `train_step` is the package's
    (`keras_lgvq.backend.GANTrainer`), with no discriminator: every batch
    makes one update of `optimizer.generator`.

    Logged: `loss`, `rec_loss` (MSE on [0, 1]), `vq_loss`,
    `commitment_loss`, `mlm_loss` (unweighted CE), `mlm_accuracy` (LM
    top-1 = own token at masked positions), `mask_fraction`, `perplexity`,
    `usage`.

    Args:
        backbone: `keras_lgvq.models.LQAEBackbone`.
        mask_ratio: float in [0, 1]. Probability that a token is masked.
            Defaults to `0.5` (README run; code default 0.15).
        mlm_weight: float >= 0. Weight of the masked-LM cross-entropy.
            Defaults to `1e-4` (README run).
        reconstruction_weight: float >= 0. Weight of the pixel MSE.
            Defaults to `1.0`.
        faithful: bool. Weight decay on every trainable variable, as the
            official run. Defaults to `False` (the corrected mask).
        seed: int or None. Seed of the masks.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Examples:

    ```python
    model = keras_lgvq.models.LQAE.from_preset("scenes_lqae")
    model.compile(learning_rate=1e-3, warmup_steps=100, total_steps=2000)
    model.fit(images_dataset, epochs=1)     # images in [-1, 1]
    ids = model.backbone.encode(images)     # (B, 8, 8) word-piece ids
    ```
    """

    def __init__(
        self,
        backbone,
        mask_ratio=README_MASK_RATIO,
        mlm_weight=README_MLM_WEIGHT,
        reconstruction_weight=1.0,
        faithful=False,
        seed=None,
        **kwargs,
    ):
        for key in ("discriminator", "perceptual_loss"):
            if kwargs.get(key) is not None:
                raise ValueError(
                    f"LQAE has no `{key}` (its loss is MSE + commitment + "
                    f"masked LM). Received: {key}={kwargs[key]!r}"
                )
            kwargs.pop(key, None)
        mask_ratio = check_number("mask_ratio", mask_ratio, 0.0, 1.0)
        mlm_weight = check_number("mlm_weight", mlm_weight, low=0.0)
        reconstruction_weight = check_number(
            "reconstruction_weight", reconstruction_weight, low=0.0
        )
        if seed is not None:
            seed = check_int("seed", seed, low=0)
        super().__init__(
            backbone,
            discriminator=None,
            perceptual_loss=None,
            codebook_weight=1.0,
            **kwargs,
        )
        self.mask_ratio = mask_ratio
        self.mlm_weight = mlm_weight
        self.reconstruction_weight = reconstruction_weight
        self.faithful = bool(faithful)
        self.seed = seed
        self.mask_seed_generator = keras.random.SeedGenerator(seed)

    # === Logging ===

    def log_names(self):
        return [
            "loss",
            "rec_loss",
            "vq_loss",
            "commitment_loss",
            "mlm_loss",
            "mlm_accuracy",
            "mask_fraction",
            "perplexity",
            "usage",
        ]

    # === Masking and losses ===

    @property
    def uses_language_model(self):
        return self.backbone.language_model is not None

    def draw_token_mask(self, batch_size):
        """Bernoulli(`mask_ratio`) token mask, bool `(batch_size, g, g)`."""
        grid = self.backbone.grid_size
        noise = keras.random.uniform(
            (batch_size, grid, grid), seed=self.mask_seed_generator
        )
        return noise < self.mask_ratio

    def masked_lm_loss(self, logits, token_ids, token_mask):
        """Masked-LM cross-entropy and top-1 accuracy at masked positions.

        Per image: the mean over its masked positions (0 when none is
        masked); then the mean over the batch, as the official loss.

        Args:
            logits: float `(B, L, V)`.
            token_ids: int `(B, g, g)` or `(B, L)`, the image's own ids.
            token_mask: bool, same layout as `token_ids`.

        Returns:
            `(loss, accuracy)` float32 scalars.
        """
        batch = ops.shape(logits)[0]
        ids = ops.reshape(ops.cast(token_ids, "int32"), (batch, -1))
        mask = ops.cast(ops.reshape(token_mask, (batch, -1)), "float32")
        logits = ops.cast(logits, "float32")
        log_probs = ops.log_softmax(logits, axis=-1)
        picked = ops.take_along_axis(log_probs, ids[..., None], axis=-1)
        ce = -picked[..., 0]
        count = ops.sum(mask, axis=-1)
        denominator = ops.maximum(count, 1.0)
        loss = ops.mean(ops.sum(ce * mask, axis=-1) / denominator)
        correct = ops.cast(
            ops.equal(ops.cast(ops.argmax(logits, axis=-1), "int32"), ids),
            "float32",
        )
        accuracy = ops.sum(correct * mask) / ops.maximum(ops.sum(mask), 1.0)
        return loss, accuracy

    def compute_losses(self, images, outputs, token_mask):
        """Total loss and logs of one batch (all float32 scalars).

        Args:
            images: float `(B, H, W, C)` in [-1, 1].
            outputs: `LQAEBackbone.encode_decode` dict.
            token_mask: bool `(B, g, g)` or None (no masking).
        """
        images = ops.cast(images, "float32")
        reconstruction = ops.cast(outputs["reconstruction"], "float32")
        # MSE in the [0, 1] pixel space of the official code.
        rec_loss = ops.mean(ops.square((reconstruction - images) * 0.5))
        vq_loss = ops.cast(outputs["loss"], "float32")
        total = self.reconstruction_weight * rec_loss + vq_loss
        logs = {
            "rec_loss": rec_loss,
            "vq_loss": vq_loss,
            "commitment_loss": outputs["commitment_loss"],
            "perplexity": outputs["perplexity"],
            "usage": outputs["usage"],
        }
        if token_mask is not None and "lm_logits" in outputs:
            mlm_loss, accuracy = self.masked_lm_loss(
                outputs["lm_logits"], outputs["indices"], token_mask
            )
            total = total + self.mlm_weight * mlm_loss
            logs.update(
                mlm_loss=mlm_loss,
                mlm_accuracy=accuracy,
                mask_fraction=ops.mean(ops.cast(token_mask, "float32")),
            )
        logs["loss"] = total
        return total, logs

    # === Training hooks (see keras_lgvq.backend) ===

    def _unpack_batch(self, data):
        batch = super()._unpack_batch(data)
        check_image_range(batch["images"], "images")
        return batch

    def _generator_step(self, batch, training=True):
        images = batch["images"]
        token_mask = None
        if self.uses_language_model and self.mask_ratio > 0.0:
            token_mask = self.draw_token_mask(ops.shape(images)[0])
        outputs = self.backbone.encode_decode(
            images, training=training, token_mask=token_mask
        )
        total, logs = self.compute_losses(images, outputs, token_mask)
        aux = {
            "reconstruction": outputs["reconstruction"],
            "disc_factor": ops.zeros((), "float32"),
        }
        return total, logs, aux

    def _evaluation_step(self, batch):
        # The official validation runs at masking ratio 0.
        images = batch["images"]
        outputs = self.backbone.encode_decode(images, training=False)
        _, logs = self.compute_losses(images, outputs, None)
        return logs

    # === Keras API ===

    def build(self, input_shape=None):
        # The backbone builds its variables at construction (it may lack
        # its LM, so nothing is run here).
        self.built = True

    def weight_decay_variables(self):
        """`(decayed, exempt)` lists of trainable variables."""
        decayed, exempt = [], []
        for variable in self.trainable_variables:
            if not self.faithful and weight_decay_exempt(variable):
                exempt.append(variable)
            else:
                decayed.append(variable)
        return decayed, exempt

    def compile(
        self,
        optimizer=None,
        learning_rate=3e-4,
        weight_decay=5e-4,
        beta_1=0.9,
        beta_2=0.95,
        warmup_steps=0,
        total_steps=None,
        **kwargs,
    ):
        """Configures AdamW with warm-up + cosine decay and the decay mask.

        Args:
            optimizer: None, a `keras.optimizers.Optimizer` (used for the
                whole model) or a `keras_lgvq.optimizers.GANOptimizer`
                (its `generator` is used). When None: `AdamW(schedule,
                weight_decay, beta_1, beta_2)`.
            learning_rate: float. Peak rate (README: 1.5e-4 x 512 / 256).
            weight_decay: float >= 0. AdamW decay (README: 5e-4).
            beta_1: float. Defaults to `0.9`.
            beta_2: float. Defaults to `0.95`.
            warmup_steps: int. Linear warm-up steps (README: 5 epochs).
            total_steps: int or None. Warm-up + cosine steps (README: 100
                epochs); None keeps the peak rate after warm-up.
            **kwargs: passed to `keras.Model.compile` (e.g. `jit_compile`).

        Unless `faithful=True`, the optimizer's weight decay skips biases,
        LayerNorm parameters and position embeddings
        (`optimizer.exclude_from_weight_decay`, which replaces exclusions set
        on that optimizer before).
        """
        if kwargs.get("loss") is not None:
            raise ValueError(
                "LQAE computes its own losses; do not pass `loss`."
            )
        if optimizer is None:
            weight_decay = check_number("weight_decay", weight_decay, low=0.0)
            optimizer = keras.optimizers.AdamW(
                lqae_learning_rate(learning_rate, warmup_steps, total_steps),
                weight_decay=weight_decay,
                beta_1=beta_1,
                beta_2=beta_2,
            )
        if not isinstance(optimizer, GANOptimizer):
            if not isinstance(optimizer, keras.optimizers.Optimizer):
                raise ValueError(
                    "`optimizer` must be a keras optimizer (or None for the "
                    f"LQAE AdamW); got {type(optimizer).__name__}."
                )
            # The package's train step applies `optimizer.generator`; there
            # is no discriminator, so the second optimizer never updates.
            optimizer = GANOptimizer(
                generator=optimizer,
                discriminator=keras.optimizers.SGD(0.0),
            )
        keras.Model.compile(self, optimizer=optimizer, **kwargs)
        if not self.built:
            self.build()
        generator = self.optimizer.generator
        if getattr(generator, "weight_decay", None) and not self.faithful:
            _, exempt = self.weight_decay_variables()
            generator.exclude_from_weight_decay(var_list=exempt)
        self.optimizer.build(self.trainable_variables)

    def fit(self, x=None, *args, **kwargs):
        # Traced train steps cannot raise on values: check arrays here.
        self._check_host_images(x)
        return super().fit(x, *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        self._check_host_images(x)
        return super().evaluate(x, *args, **kwargs)

    def _check_host_images(self, x):
        self.backbone.check_ready()
        if isinstance(x, dict) and "images" in x:
            x = x["images"]
        if hasattr(x, "shape") and hasattr(x, "dtype") and len(x.shape) == 4:
            check_images(x, self.backbone.in_channels, "images")
            check_image_range(x, "images")

    # === Presets ===

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Builds an LQAE (or VQAE) from a built-in preset or a directory.

        Args:
            preset: string. `"imagenet_lqae"`, `"scenes_lqae"`,
                `"imagenet_vqae"`, `"scenes_vqae"`, or a directory written
                by `save_to_preset`.
            load_weights: bool. Load the directory's weights.
            **kwargs: overrides: backbone fields (e.g. `image_size=32`),
                `language_model=` (a `MaskedLanguageModel`, a name or a
                local directory, e.g. RoBERTa-base for `imagenet_lqae`),
                and constructor arguments (`mask_ratio`, `mlm_weight`, ...).

        Examples:

        ```python
        model = keras_lgvq.models.LQAE.from_preset("scenes_lqae")
        model = keras_lgvq.models.LQAE.from_preset(
            "imagenet_lqae", language_model="/data/roberta-base")
        model = keras_lgvq.models.LQAE.from_preset("./trained_lqae")
        ```
        """
        return super().from_preset(preset, load_weights=load_weights, **kwargs)

    @classmethod
    def _from_spec(cls, spec, **kwargs):
        from keras_lgvq.models.lqae.lqae_backbone import LQAEBackbone
        from keras_lgvq.models.lqae.lqae_presets import backbone_from_spec

        backbone = kwargs.pop("backbone", None)
        fields = set(spec["backbone"]) | set(spec.get("quantizer") or {})
        fields |= {"in_channels", "dtype", "language_model"}
        overrides = {k: kwargs.pop(k) for k in list(kwargs) if k in fields}
        if backbone is None:
            backbone = backbone_from_spec(LQAEBackbone, spec, **overrides)
        elif overrides:
            raise ValueError(
                f"Pass either `backbone` or backbone overrides "
                f"{sorted(overrides)}, not both."
            )
        options = dict(spec["model"])
        options.update(kwargs)
        return cls(backbone=backbone, **options)

    @classmethod
    def _from_directory(cls, preset, load_weights=True, **kwargs):
        from keras_lgvq.models import presets
        from keras_lgvq.models.lqae.lqae_backbone import LQAEBackbone

        if not os.path.exists(os.path.join(preset, presets.TASK_CONFIG_FILE)):
            raise ValueError(
                f"{preset!r} holds a backbone only (no "
                f"{presets.TASK_CONFIG_FILE}): load it with "
                "`LQAEBackbone.from_preset`, or pass the backbone to the "
                f"{cls.__name__} constructor."
            )
        config = presets.read_json(preset, presets.TASK_CONFIG_FILE)
        registered = config.get("registered_name", config.get("class_name"))
        target = keras.saving.get_registered_object(registered)
        if target is None or not issubclass(target, cls):
            raise ValueError(
                f"{preset!r} holds a {registered}, not a {cls.__name__}: "
                f"load it with {str(registered).split('>')[-1]}.from_preset."
            )
        backbone = LQAEBackbone.from_preset(preset, load_weights=load_weights)
        config["config"]["backbone"] = backbone
        config["config"].update(kwargs)
        model = keras.saving.deserialize_keras_object(config)
        model.build()
        if load_weights:
            presets.load_task_weights(model, preset)
        return model

    def get_config(self):
        config = keras.Model.get_config(self)
        config.update(
            {
                "backbone": keras.layers.serialize(self.backbone),
                "mask_ratio": self.mask_ratio,
                "mlm_weight": self.mlm_weight,
                "reconstruction_weight": self.reconstruction_weight,
                "faithful": self.faithful,
                "seed": self.seed,
            }
        )
        return config
