"""VQGAN training: reconstruction, perceptual, VQ and hinge-GAN losses."""

import os
import warnings

import keras
from keras import ops

from keras_lgvq import backend as lgvq_backend
from keras_lgvq.backend.nonfinite_skipping import SkipNonfiniteStepsFlag
from keras_lgvq.layers.vqgan.patch_discriminator import PatchDiscriminator
from keras_lgvq.losses.gan_losses import adaptive_generator_weight
from keras_lgvq.losses.gan_losses import discriminator_factor
from keras_lgvq.losses.gan_losses import generator_adversarial_loss
from keras_lgvq.losses.gan_losses import hinge_discriminator_loss
from keras_lgvq.optimizers.gan_optimizer import GANOptimizer
from keras_lgvq.optimizers.gan_optimizer import is_discriminator_variable
from keras_lgvq.utils.input_errors import input_errors_as_value_errors
from keras_lgvq.utils.names import DISCRIMINATOR_NAME
from keras_lgvq.utils.random_state import seed_generator_states
from keras_lgvq.utils.validation import TEXT_CHECK_PREFIX
from keras_lgvq.utils.validation import check_images
from keras_lgvq.utils.validation import check_int
from keras_lgvq.utils.validation import check_number
from keras_lgvq.version import __version__

# Inputs a training batch may carry that the models consume; strings and
# bookkeeping fields are dropped before they reach JAX or torch.
MODEL_INPUT_KEYS = (
    "images",
    "token_ids",
    "padding_mask",
    "token_features",
    "sentence_feature",
)
# Key prefix of the seed-generator states in a model's own weight store.
_SEED_STATE_KEY = "seed_generator_state_"


def _serialize(layer):
    return None if layer is None else keras.layers.serialize(layer)


def _deserialize(config):
    if config is None or isinstance(config, keras.layers.Layer):
        return config
    return keras.layers.deserialize(config)


@keras.saving.register_keras_serializable(package="keras_lgvq")
class VQGAN(SkipNonfiniteStepsFlag, lgvq_backend.GANTrainer, keras.Model):
    """Trains a VQ tokenizer with taming's VQGAN objective.

    Generator loss: `mean(|x - x_hat|) + perceptual_weight * LPIPS +
    codebook_weight * L_vq + d_weight * disc_factor * (-mean D(x_hat))`,
    where `d_weight` is taming's adaptive weight (gradient-norm ratio at the
    decoder's last layer, clipped to [0, 1e4], times `disc_weight`) and
    `disc_factor` switches the GAN terms on after `disc_start` batches.
    Each batch makes one generator update, then one discriminator update
    (hinge loss) on the same batch's reconstructions (with
    `two_forward_passes=True`, on a second forward pass of the updated
    generator, as the official Lightning loop does). The per-backend
    `train_step` lives in `keras_lgvq.backend`; every loss term, the
    codebook perplexity and usage are logged as metrics.

    **No discriminator work while the GAN is off.** Before `disc_start`
    (and always when `disc_factor=0`) the GAN terms are multiplied by 0, so
    `fit` and `train_on_batch` run a step without them: no discriminator
    forward or backward pass in either update, no adaptive weight. The
    host counts the batches and switches to the full step (one more trace
    or compile) for the first execution that reaches `disc_start`; with
    `steps_per_execution > 1` an execution that straddles it runs in full.
    Losses, gradients and every update are those of the full step: the
    discriminator's optimizer still steps on zero gradients (so Adam's step
    count matches), the discriminator's weights stay put, and with
    `two_forward_passes` the second generator pass still runs. One
    semantic change: the discriminator's batch-norm running statistics
    (never used in training, which runs it in training mode) only start
    updating at `disc_start`. While skipped, `g_loss`, `logits_real` and
    `logits_fake` (and `d_weight` when adaptive) are logged as 0 (not
    computed); `disc_loss` and `disc_factor` are 0 as before. A
    `train_step` called directly (custom loops) always runs the full step.

    Args:
        backbone: `keras_lgvq.models.VQGANBackbone` (or any backbone with the
            same `encode_decode` / `encode` / `decode` interface).
        discriminator: `keras.layers.Layer`, `"default"` or None. A PatchGAN
            discriminator; None trains without a GAN.
        perceptual_loss: `keras_lgvq.losses.LPIPS` or None.
        perceptual_weight: float. LPIPS weight (taming: 1.0).
        codebook_weight: float. Weight of the quantizer loss (taming: 1.0).
        disc_weight: float. Multiplier of the adaptive weight (taming: 0.8).
        disc_factor: float. Value of the GAN switch once on (taming: 1.0).
        disc_start: int. Batch at which the GAN terms switch on (the paper
            configs: 10000, counting batches).
        adaptive_disc_weight: bool. Use the adaptive weight; when False the
            generator GAN term is weighted by `disc_weight` alone.
        two_forward_passes: bool. Reproduce the official code's second
            forward pass per batch (lgvq-spec §9 item 10): Lightning calls
            the training step once per optimizer, so the discriminator
            update sees the reconstruction of the *already updated*
            generator, and the quantizer's running statistics (EMA, CVQ
            usage and re-initialisation) update twice per batch. Costs one
            more generator forward per batch. The text losses that the
            official second pass computes and discards are not recomputed
            (they change no weight). Defaults to `False`: one forward pass,
            the discriminator sees that pass's reconstruction and the
            statistics update once per batch.

    Examples:

    ```python
    backbone = keras_lgvq.models.VQGANBackbone(
        resolution=32, ch=32, ch_mult=(1, 2), attn_resolutions=(),
        z_channels=32, num_embeddings=64, embedding_dim=32,
    )
    model = keras_lgvq.models.VQGAN(backbone, disc_start=0)
    model.compile(learning_rate=1e-4)
    model.fit(images_dataset, epochs=1)
    ```
    """

    def __init__(
        self,
        backbone,
        discriminator="default",
        perceptual_loss=None,
        perceptual_weight=1.0,
        codebook_weight=1.0,
        disc_weight=0.8,
        disc_factor=1.0,
        disc_start=10000,
        adaptive_disc_weight=True,
        two_forward_passes=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        backbone = _deserialize(backbone)
        if isinstance(discriminator, str):
            if discriminator != "default":
                raise ValueError(
                    "`discriminator` must be a layer, 'default' or None; got "
                    f"{discriminator!r}."
                )
            discriminator = PatchDiscriminator(
                input_channels=backbone.in_channels, name=DISCRIMINATOR_NAME
            )
        discriminator = _deserialize(discriminator)
        if discriminator is not None and discriminator.name != (
            DISCRIMINATOR_NAME
        ):
            raise ValueError(
                f"The discriminator layer must be named "
                f"{DISCRIMINATOR_NAME!r} (the optimizer splits variables by "
                f"name); got {discriminator.name!r}."
            )
        # Counted in batches; a float such as 1e4 from a config file would
        # otherwise be truncated silently.
        disc_start = check_int("disc_start", disc_start, low=0)
        weights = {
            name: check_number(name, value, low=0.0)
            for name, value in (
                ("perceptual_weight", perceptual_weight),
                ("codebook_weight", codebook_weight),
                ("disc_weight", disc_weight),
                ("disc_factor", disc_factor),
            )
        }
        self.backbone = backbone
        self.discriminator = discriminator
        self.perceptual_loss = _deserialize(perceptual_loss)
        self.perceptual_weight = weights["perceptual_weight"]
        self.codebook_weight = weights["codebook_weight"]
        self.disc_weight = weights["disc_weight"]
        self.disc_factor = weights["disc_factor"]
        self.disc_start = disc_start
        self.adaptive_disc_weight = bool(adaptive_disc_weight)
        if not isinstance(two_forward_passes, bool):
            raise ValueError(
                "`two_forward_passes` must be a bool. Received: "
                f"two_forward_passes={two_forward_passes!r}"
            )
        self.two_forward_passes = two_forward_passes
        self._trackers = [
            keras.metrics.Mean(name=name) for name in self.log_names()
        ]
        # Reported only while `skip_nonfinite_steps` is on.
        self._skip_tracker = keras.metrics.Sum(name="skipped_steps")
        self._skip_nonfinite_steps = False
        # Read when a step is traced: True only while the host knows every
        # step of the next execution comes before `disc_start`.
        self._gan_skipped_phase = False
        # The train function built for that phase (identity), so a later
        # `fit` before `disc_start` reuses it instead of tracing again.
        self._gan_skipped_function = None

    # === Logging ===

    def log_names(self):
        """Names of the metrics the train step reports."""
        names = ["loss", "rec_loss"]
        if self.perceptual_loss is not None:
            names.append("perceptual_loss")
        names += [
            "nll_loss",
            "vq_loss",
            "codebook_loss",
            "commitment_loss",
            "perplexity",
            "usage",
        ]
        # Per-sub-codebook terms of a tokenizer that has them (VQCT).
        names += list(getattr(self.backbone, "quantizer_log_names", ()))
        if self.discriminator is not None:
            names += [
                "g_loss",
                "d_weight",
                "disc_factor",
                "disc_loss",
                "logits_real",
                "logits_fake",
            ]
        return names

    @property
    def metrics(self):
        if self._skip_nonfinite_steps:
            return list(self._trackers) + [self._skip_tracker]
        return list(self._trackers)

    def _record(self, logs):
        if self._skip_nonfinite_steps and getattr(
            self, "_in_train_step", False
        ):
            return self._record_or_skip(logs)
        results = {}
        for tracker in self._trackers:
            if tracker.name in logs:
                tracker.update_state(logs[tracker.name])
                results[tracker.name] = tracker.result()
        return results

    # === Non-finite steps ===

    # `skip_nonfinite_steps` (SkipNonfiniteStepsFlag): when on, a step
    # with a NaN or Inf logged term changes no variable, the epoch means
    # leave it out, `skipped_steps` counts it and the step's logs carry the
    # batch's own values, so a callback can name the offending term.

    def _record_or_skip(self, logs):
        finite = ops.convert_to_tensor(True)
        for name in self.log_names():
            if name in logs:
                value = ops.cast(logs[name], "float32")
                finite = ops.logical_and(finite, ops.all(ops.isfinite(value)))
        # A step is skipped on every replica if one replica saw a bad term.
        agreed = lgvq_backend.replica_mean(ops.cast(finite, "float32"))
        finite = ops.greater_equal(agreed, 1.0)
        weight = ops.cast(finite, "float32")
        results = {}
        for tracker in self._trackers:
            if tracker.name in logs:
                value = ops.cast(logs[tracker.name], "float32")
                tracker.update_state(
                    ops.where(finite, value, 0.0), sample_weight=weight
                )
                # A skipped step reports its own values (NaN included).
                results[tracker.name] = ops.where(
                    finite, tracker.result(), value
                )
        self._skip_tracker.update_state(1.0 - weight)
        results[self._skip_tracker.name] = self._skip_tracker.result()
        # Read back by `train_step` below, in the same trace.
        object.__setattr__(self, "_step_finite", finite)
        return results

    def train_step(self, *args):
        if not self._skip_nonfinite_steps:
            return super().train_step(*args)
        object.__setattr__(self, "_in_train_step", True)
        try:
            if len(args) == 2:
                # A stateless trainer (JAX): `(state, data) -> (logs,
                # state)`; keep the old trainable, non-trainable and
                # optimizer values when the step was not finite.
                state, data = args
                logs, new_state = super().train_step(state, data)
                keep = self._step_finite
                kept = [
                    [ops.where(keep, new, old) for new, old in zip(n, o)]
                    for n, o in zip(new_state[:3], state[:3])
                ]
                return logs, (*kept, new_state[3])
            variables = (
                list(self.trainable_variables)
                + list(self.non_trainable_variables)
                + list(self.optimizer.variables)
            )
            before = [ops.copy(v) for v in variables]
            logs = super().train_step(*args)
            for variable, old in zip(variables, before):
                variable.assign(ops.where(self._step_finite, variable, old))
            return logs
        finally:
            object.__setattr__(self, "_in_train_step", False)

    # === Training hooks (backend-agnostic; see keras_lgvq.backend) ===

    def _unpack_batch(self, data):
        x = keras.utils.unpack_x_y_sample_weight(data)[0]
        batch = dict(x) if isinstance(x, dict) else {"images": x}
        if "images" not in batch:
            raise ValueError(
                "Each batch must be an image tensor or a dict with an "
                f"'images' entry; got keys {sorted(batch)}."
            )
        check_images(batch["images"], self.backbone.in_channels, "images")
        return batch

    def _split_trainable_variables(self):
        variables = self.trainable_variables
        d_vars = [v for v in variables if is_discriminator_variable(v)]
        d_ids = {id(v) for v in d_vars}
        return [v for v in variables if id(v) not in d_ids], d_vars

    def _nll(self, images, reconstruction, training=False):
        images = ops.cast(images, "float32")
        reconstruction = ops.cast(reconstruction, "float32")
        rec_loss = ops.mean(ops.abs(images - reconstruction))
        if self.perceptual_loss is None:
            return rec_loss, rec_loss, None
        # `training` reaches LPIPS so its optional head dropout
        # (`use_dropout=True`, as in taming) is on in the generator step.
        perceptual = ops.mean(
            ops.cast(
                self.perceptual_loss(
                    images, reconstruction, training=training
                ),
                "float32",
            )
        )
        return rec_loss + self.perceptual_weight * perceptual, rec_loss, (
            perceptual
        )

    def _discriminator_logits_no_update(self, images):
        # Batch-norm statistics are updated once per call in the main graph;
        # the extra passes for the adaptive weight must leave them alone.
        d = self.discriminator
        logits, _ = d.stateless_call(
            [v.value for v in d.trainable_variables],
            [v.value for v in d.non_trainable_variables],
            images,
            training=True,
        )
        return logits

    def adaptive_weight_gradients(
        self, images, decoder_features, training=False
    ):
        """Gradients of the nll and GAN losses at the decoder's last kernel.

        The train step uses this on JAX; TensorFlow and torch take the same
        gradients from the step's own forward pass (`_kernel_gradient`).
        The decoder's last layer is linear in its kernel, so both gradients
        come from re-applying `decoder.conv_out` to the (constant) decoder
        features; nothing else of the graph is differentiated again. With
        `training=True` an LPIPS with dropout draws its own dropout mask
        here (taming differentiates the step's own loss tensor, whose mask
        this re-computation cannot share).
        """
        conv = self.backbone.decoder.conv_out
        dtype = conv.compute_dtype
        features = ops.cast(ops.stop_gradient(decoder_features), dtype)
        bias = ops.cast(ops.stop_gradient(conv.bias), dtype)

        def reconstruct(kernel):
            kernel = ops.cast(kernel, dtype)
            return ops.conv(features, kernel, padding="same") + bias

        def nll(kernel):
            return self._nll(images, reconstruct(kernel), training)[0]

        def adversarial(kernel):
            logits = self._discriminator_logits_no_update(reconstruct(kernel))
            return generator_adversarial_loss(logits)

        kernel = ops.stop_gradient(ops.convert_to_tensor(conv.kernel))
        # Under tf.distribute the norms must be those of the global batch.
        nll_grad = lgvq_backend.replica_mean(lgvq_backend.gradient(nll, kernel))
        g_grad = lgvq_backend.replica_mean(
            lgvq_backend.gradient(adversarial, kernel)
        )
        return nll_grad, g_grad

    def _extra_generator_losses(self, batch, outputs, training):
        """Hook for subclasses: returns (weighted loss, logs)."""
        return 0.0, {}

    def _tokenizer_losses(self, images, outputs, training=False, nll=None):
        """Reconstruction + perceptual + quantizer terms and their logs.

        `nll`: the `_nll` triple when the caller already computed it.
        """
        if nll is None:
            nll = self._nll(images, outputs["reconstruction"], training)
        nll, rec_loss, perceptual = nll
        logs = {
            "rec_loss": rec_loss,
            "nll_loss": nll,
            "vq_loss": outputs["loss"],
            "codebook_loss": outputs["codebook_loss"],
            "commitment_loss": outputs["commitment_loss"],
            "perplexity": outputs["perplexity"],
            "usage": outputs["usage"],
        }
        if perceptual is not None:
            logs["perceptual_loss"] = perceptual
        for key in getattr(self.backbone, "quantizer_log_names", ()):
            logs[key] = outputs[key]
        return nll + self.codebook_weight * outputs["loss"], logs

    def _gan_terms_skipped(self):
        """Whether the step being traced leaves the GAN terms out (they
        are multiplied by 0 in every step it runs)."""
        return self.discriminator is not None and (
            self.disc_factor == 0.0 or self._gan_skipped_phase
        )

    def _adversarial_terms(self, reconstruction, training=True):
        """`(generator GAN loss,)` on reconstructions, as a tuple for
        `value_and_input_gradient`."""
        logits_fake = self.discriminator(reconstruction, training=training)
        return (generator_adversarial_loss(logits_fake),)

    def _shares_adaptive_forward(self):
        """Whether this step takes the adaptive weight's gradients from the
        step's own LPIPS / discriminator forward (TensorFlow, torch)."""
        return (
            lgvq_backend.INPUT_GRADIENT_SHARES_FORWARD
            and self.discriminator is not None
            and self.adaptive_disc_weight
            and not self._gan_terms_skipped()
        )

    def _kernel_gradient(self, decoder_features, upstream):
        """Gradient at `decoder.conv_out.kernel` of a loss whose gradient at
        the reconstruction is `upstream`: the last layer is linear in its
        kernel, so this is one small conv's backward, not the loss's."""
        conv = self.backbone.decoder.conv_out
        dtype = conv.compute_dtype
        features = ops.cast(ops.stop_gradient(decoder_features), dtype)
        upstream = ops.cast(ops.stop_gradient(upstream), "float32")

        def linear(kernel):
            out = ops.conv(features, ops.cast(kernel, dtype), padding="same")
            return ops.sum(ops.cast(out, "float32") * upstream)

        kernel = ops.stop_gradient(ops.convert_to_tensor(conv.kernel))
        return lgvq_backend.replica_mean(lgvq_backend.gradient(linear, kernel))

    def _generator_step(self, batch, training=True):
        images = batch["images"]
        outputs = self.backbone.encode_decode(images, training=training)
        reconstruction = outputs["reconstruction"]
        shared = self._shares_adaptive_forward()
        nll = nll_upstream = None
        if shared:
            # The nll's gradient at the reconstruction from the forward the
            # loss itself uses (one LPIPS pass; its dropout mask is the
            # step's own, as in taming).
            nll, nll_upstream = lgvq_backend.value_and_input_gradient(
                lambda x: self._nll(images, x, training), reconstruction
            )
        total, logs = self._tokenizer_losses(
            images, outputs, training, nll=nll
        )
        factor = ops.zeros((), "float32")
        if self._gan_terms_skipped():
            # `total + d_weight * 0 * g_loss` is `total`: nothing to compute.
            zero = ops.zeros((), "float32")
            d_weight = zero
            if not self.adaptive_disc_weight:
                d_weight = ops.convert_to_tensor(self.disc_weight, "float32")
            logs.update(g_loss=zero, d_weight=d_weight, disc_factor=factor)
        elif self.discriminator is not None:
            factor = discriminator_factor(
                self.optimizer.iterations, self.disc_start, self.disc_factor
            )
            if shared:
                (g_loss,), g_upstream = lgvq_backend.value_and_input_gradient(
                    lambda x: self._adversarial_terms(x, training),
                    reconstruction,
                )
                features = outputs["decoder_features"]
                d_weight = adaptive_generator_weight(
                    self._kernel_gradient(features, nll_upstream),
                    self._kernel_gradient(features, g_upstream),
                    self.disc_weight,
                )
            else:
                (g_loss,) = self._adversarial_terms(reconstruction, training)
                d_weight = ops.convert_to_tensor(self.disc_weight, "float32")
                if self.adaptive_disc_weight:
                    nll_grad, g_grad = self.adaptive_weight_gradients(
                        images, outputs["decoder_features"], training
                    )
                    d_weight = adaptive_generator_weight(
                        nll_grad, g_grad, self.disc_weight
                    )
            total = total + d_weight * factor * g_loss
            logs.update(g_loss=g_loss, d_weight=d_weight, disc_factor=factor)
        extra, extra_logs = self._extra_generator_losses(
            batch, outputs, training
        )
        total = total + extra
        logs.update(extra_logs)
        logs["loss"] = total
        aux = {"reconstruction": reconstruction, "disc_factor": factor}
        return total, logs, aux

    def _discriminator_step(self, batch, reconstruction, factor):
        # `factor` comes from the generator step of the same batch, so both
        # updates see the same GAN switch.
        images = batch["images"]
        if self.two_forward_passes:
            # The official second pass: the updated generator, in training
            # mode (its quantizer statistics update again).
            outputs = self.backbone.encode_decode(images, training=True)
            reconstruction = ops.stop_gradient(outputs["reconstruction"])
        if self._gan_terms_skipped():
            # `factor * hinge(...)` is 0 with zero gradients; a loss of 0
            # tied to every discriminator weight gives the same zero
            # gradients (not "no gradient"), so the optimizer still steps
            # and its step count stays that of the full step.
            tie = [
                ops.sum(ops.cast(v, "float32"))
                for v in self.discriminator.trainable_variables
            ]
            loss = 0.0 * sum(tie)
            zero = ops.zeros((), "float32")
            return loss, {
                "disc_loss": loss,
                "logits_real": zero,
                "logits_fake": zero,
            }
        logits_real = self.discriminator(images, training=True)
        logits_fake = self.discriminator(reconstruction, training=True)
        loss = factor * hinge_discriminator_loss(logits_real, logits_fake)
        logs = {
            "disc_loss": loss,
            "logits_real": ops.mean(ops.cast(logits_real, "float32")),
            "logits_fake": ops.mean(ops.cast(logits_fake, "float32")),
        }
        return loss, logs

    def _evaluation_step(self, batch):
        images = batch["images"]
        outputs = self.backbone.encode_decode(images, training=False)
        total, logs = self._tokenizer_losses(images, outputs)
        extra, extra_logs = self._extra_evaluation_losses(batch, outputs)
        logs.update(extra_logs)
        logs["loss"] = total + extra
        return logs

    def _extra_evaluation_losses(self, batch, outputs):
        """Hook for subclasses: returns (weighted loss, logs) at evaluation."""
        return 0.0, {}

    # === Keras API ===

    def call(self, inputs, training=False):
        images = inputs["images"] if isinstance(inputs, dict) else inputs
        return self.backbone.encode_decode(images, training=training)[
            "reconstruction"
        ]

    def build(self, input_shape=None):
        if self.built:
            return
        res = self.backbone.resolution
        images = ops.zeros((1, res, res, self.backbone.in_channels))
        # A VQCT backbone being deserialized cannot run before its prior
        # arrives with the weights; it is already built (functional).
        if getattr(self.backbone, "ready_to_run", True):
            self.backbone.encode_decode(images)
        if self.discriminator is not None:
            self.discriminator(images)
        if self.perceptual_loss is not None:
            self.perceptual_loss(images, images)
        self._build_extra(images)
        self._seed_every_dropout()
        self.built = True

    def _seed_every_dropout(self):
        # On torch, Keras runs a Dropout whose SeedGenerator was given no
        # seed through `torch.nn.functional.dropout`, i.e. torch's global
        # RNG, which no checkpoint holds (TF and JAX always draw from the
        # generator's state). Recording the seed the state was drawn from
        # sends such layers through Keras's seeded path, which draws from
        # the saved `seed_generator_state`, so a resumed run replays
        # nothing and skips nothing.
        for layer in self._flatten_layers():
            generator = getattr(layer, "seed_generator", None)
            if (
                isinstance(layer, keras.layers.Dropout)
                and isinstance(generator, keras.random.SeedGenerator)
                and generator._initial_seed is None
            ):
                state = ops.convert_to_numpy(generator.state)
                generator._initial_seed = int(state[0])

    def _build_extra(self, images):
        """Hook for subclasses to create the variables of extra heads."""

    def compile(
        self,
        optimizer=None,
        learning_rate=3.6e-5,
        beta_1=0.5,
        beta_2=0.9,
        epsilon=1e-8,
        **kwargs,
    ):
        """Configures training with two Adam optimizers by default.

        Args:
            optimizer: `keras_lgvq.optimizers.GANOptimizer` or None. When None,
                generator and discriminator each get
                `Adam(learning_rate, beta_1, beta_2, epsilon)` (taming:
                3.6e-5 for batch 8 on one GPU, betas (0.5, 0.9), and
                PyTorch's epsilon 1e-8 rather than Keras's 1e-7).
            learning_rate: float. Used when `optimizer` is None.
            beta_1: float. Used when `optimizer` is None.
            beta_2: float. Used when `optimizer` is None.
            epsilon: float. Adam's epsilon, used when `optimizer` is None.
                Defaults to 1e-8, the official PyTorch value.
            **kwargs: passed to `keras.Model.compile` (e.g. `jit_compile`).
        """
        if kwargs.get("loss") is not None:
            raise ValueError(
                "VQGAN computes its own losses; do not pass `loss`."
            )
        if optimizer is None:

            def adam():
                return keras.optimizers.Adam(
                    learning_rate,
                    beta_1=beta_1,
                    beta_2=beta_2,
                    epsilon=epsilon,
                )

            optimizer = GANOptimizer(generator=adam(), discriminator=adam())
        if not isinstance(optimizer, GANOptimizer):
            raise ValueError(
                "`optimizer` must be a keras_lgvq.optimizers.GANOptimizer "
                "(generator and discriminator optimizers); got "
                f"{type(optimizer).__name__}."
            )
        super().compile(optimizer=optimizer, **kwargs)
        if not self.built:
            self.build()
        self.optimizer.build(self.trainable_variables)

    def compile_from_config(self, config):
        config = dict(config)
        config["optimizer"] = keras.optimizers.deserialize(config["optimizer"])
        for key in ("loss", "metrics", "weighted_metrics", "loss_weights"):
            config.pop(key, None)
        self.compile(**config)

    # === Saving: the random-number state too ===

    # Keras saves each layer's own variables but not the states of its
    # `SeedGenerator`s (MTP masking, dropout, codebook re-init), so a
    # restored model would replay the draws of the original run; the
    # model's own weights carry them.

    def save_own_variables(self, store):
        super().save_own_variables(store)
        for i, state in enumerate(seed_generator_states(self)):
            store[f"{_SEED_STATE_KEY}{i}"] = state

    def load_own_variables(self, store):
        keys = list(store.keys())
        seeds = [k for k in keys if k.startswith(_SEED_STATE_KEY)]
        super().load_own_variables(
            {k: store[k] for k in keys if not k.startswith(_SEED_STATE_KEY)}
        )
        if not seeds:
            return  # Saved before the seed states were stored.
        states = seed_generator_states(self)
        if len(seeds) != len(states):
            raise ValueError(
                f"The weights hold {len(seeds)} seed-generator states but "
                f"this {type(self).__name__} has {len(states)}: they come "
                "from a model with other layers. Load them into a model "
                "built from the same configuration."
            )
        for i, state in enumerate(states):
            state.assign(store[f"{_SEED_STATE_KEY}{i}"])

    def _filter_inputs(self, x):
        import tensorflow as tf

        if isinstance(x, tf.data.Dataset) and isinstance(
            x.element_spec, dict
        ):
            keys = [k for k in MODEL_INPUT_KEYS if k in x.element_spec]
            return x.map(
                lambda batch: {k: batch[k] for k in keys},
                num_parallel_calls=tf.data.AUTOTUNE,
            )
        return x

    def _check_ready_to_fit(self):
        """Hook: raise when the model would train into a wrong state."""

    def _check_host_data(self, x):
        """Checks the data `fit` / `evaluate` receive before any step runs.

        Refuses a `tf.data.Dataset` that is known to be empty; subclasses
        add value checks of in-memory arrays (they run here, on the host,
        because a check inside a `jax.jit` step cannot raise).
        """
        import tensorflow as tf

        if isinstance(x, tf.data.Dataset) and int(x.cardinality()) == 0:
            raise ValueError(_NO_BATCH_MESSAGE)

    # === The GAN-off step before `disc_start` ===

    def _gan_phase_for(self, first_step, num_steps):
        """True when steps `first_step ... first_step + num_steps - 1` all
        come before `disc_start` (their GAN factor is 0)."""
        return (
            self.discriminator is not None
            and self.disc_factor != 0.0
            and first_step + num_steps - 1 < self.disc_start
        )

    def _use_gan_phase(self, skipped):
        """Selects the step variant before a train function runs.

        A function is only ever traced with one value of the flag: a change
        of variant builds a new function (one more trace or compile,
        normally once per run, at `disc_start`).
        """
        function = self.train_function
        current = function is not None and (
            function is self._gan_skipped_function
        )
        self._gan_skipped_phase = skipped
        if function is not None and current == skipped:
            return
        self.make_train_function(force=True)
        self._gan_skipped_function = self.train_function if skipped else None

    def make_train_function(self, force=False):
        if self.train_function is not None and not force:
            return self.train_function
        # Each build traces a new step closure: JAX caches a trace by the
        # function it jits, so re-jitting the same bound `train_step` would
        # reuse the trace of the other variant (or of an older
        # `skip_nonfinite_steps` setting).
        method = type(self).train_step

        def train_step(*args):
            return method(self, *args)

        object.__setattr__(self, "train_step", train_step)
        return super().make_train_function(force=True)

    def _gan_phase_callbacks(self, callbacks):
        if self.discriminator is None or self.disc_factor == 0.0:
            # Never a GAN step, or no switch to make: nothing to track.
            return callbacks
        if getattr(self, "optimizer", None) is None:
            return callbacks  # `fit` itself reports the missing compile.
        if isinstance(callbacks, keras.callbacks.CallbackList):
            # A ready-made list is left alone: the step stays the full one
            # (same values, no skipping).
            return callbacks
        return list(callbacks or []) + [_GANPhase()]

    def fit(self, x=None, *args, validation_data=None, **kwargs):
        self._check_ready_to_fit()
        self._check_host_data(x)
        if validation_data is not None:
            validation_data = self._filter_inputs(validation_data)
        # `callbacks` is `fit`'s sixth parameter (after x, y, batch_size,
        # epochs, verbose).
        if len(args) >= 5:
            args = list(args)
            args[4] = self._gan_phase_callbacks(args[4])
        else:
            kwargs["callbacks"] = self._gan_phase_callbacks(
                kwargs.get("callbacks")
            )
        counter = _BatchCounter()
        if len(args) >= 5:
            args[4] = _with_callback(args[4], counter)
        else:
            kwargs["callbacks"] = _with_callback(
                kwargs.get("callbacks"), counter
            )
        try:
            with self._keep_state_on_error(), _input_errors_as_value_errors():
                history = super().fit(
                    self._filter_inputs(x),
                    *args,
                    validation_data=validation_data,
                    **kwargs,
                )
        except UnboundLocalError as error:
            # Keras's JAX loop fails this way after an epoch without a batch.
            if counter.epochs and not counter.batches:
                raise ValueError(_NO_BATCH_MESSAGE) from error
            raise
        finally:
            # A direct `train_step` (custom loop) runs the full step.
            self._gan_skipped_phase = False
        # TensorFlow and torch end an epoch without batches with a warning
        # only (and log stale values); a run that trained nothing must not
        # look like a result. (The optimizer's step count cannot tell: on
        # TensorFlow the end-of-data step of a dataset of unknown length
        # advances it too.)
        if counter.epochs and not counter.batches:
            raise ValueError(_NO_BATCH_MESSAGE)
        return history

    def train_on_batch(self, *args, **kwargs):
        self._check_ready_to_fit()
        if getattr(self, "optimizer", None) is None or (
            self.discriminator is None or self.disc_factor == 0.0
        ):
            return super().train_on_batch(*args, **kwargs)
        # Variables are in sync between `train_on_batch` calls.
        self._use_gan_phase(
            self._gan_phase_for(_count(self.optimizer.iterations), 1)
        )
        try:
            return super().train_on_batch(*args, **kwargs)
        finally:
            # A direct `train_step` (custom loop) runs the full step.
            self._gan_skipped_phase = False

    def evaluate(self, x=None, *args, **kwargs):
        self._check_host_data(x)
        with self._keep_state_on_error(), _input_errors_as_value_errors():
            return super().evaluate(self._filter_inputs(x), *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        return super().predict(self._filter_inputs(x), *args, **kwargs)

    # === Presets ===

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Builds a model from a built-in preset name or a preset directory.

        Names resolve as for every model of the package
        (`keras_lgvq.models.presets.resolve_preset`). Built-in names
        (`keras_lgvq.models.presets.list_presets()`) build the paper's
        architecture and training recipe; no public LG-VQ weights exist, so
        they start untrained. A directory written by `save_to_preset`
        restores a trained model. Either way the model comes back built.

        Args:
            preset: string. A preset name or a local directory.
            load_weights: bool. Load the directory's weights, or the
                tokenizer weights a built-in preset ships
                (`scenes_lgvq_trained`, `scenes_vqgan_trained`).
            **kwargs: overrides: backbone / quantizer fields of a built-in
                preset (e.g. `resolution=128`, `num_embeddings=512`), and
                constructor arguments (e.g. `text_prior=` a local path,
                `perceptual_loss=None`, `disc_start=...`).

        Examples:

        ```python
        model = keras_lgvq.LGVQ.from_preset("cub")
        model.count_params()
        model = keras_lgvq.LGVQ.from_preset("./my_trained_preset")
        ```
        """
        from keras_lgvq.models import presets

        kind, value = presets.resolve_preset(preset, cls.__name__)
        if kind == "directory":
            model = cls._from_directory(value, load_weights, **kwargs)
        else:
            model = cls._from_spec(value, **kwargs)
            model.build()
            # A preset with trained tokenizer weights in the package (not
            # into a backbone the caller passed in).
            if load_weights and "backbone" not in kwargs:
                from keras_lgvq.models.vqgan.vqgan_presets import load_shipped_weights

                load_shipped_weights(model.backbone, value)
        return model

    @classmethod
    def _from_spec(cls, spec, perceptual_loss="auto", **kwargs):
        from keras_lgvq.models.vqgan.vqgan_backbone import preset_backbone_class

        # The tokenizer family comes from the preset (`backbone_class`):
        # a VQGANBackbone, or e.g. a VQCTBackbone built from its prior. So
        # every trainer (VQGAN, LGVQ) builds every family the same way.
        backbone_class = preset_backbone_class(spec)
        backbone = kwargs.pop("backbone", None)
        names = backbone_class.preset_override_names(spec)
        overrides = {
            key: kwargs.pop(key) for key in list(kwargs) if key in names
        }
        if backbone is None:
            backbone = backbone_class._from_spec(spec, **overrides)
        elif overrides:
            raise ValueError(
                f"Pass either `backbone` or backbone overrides "
                f"{sorted(overrides)}, not both."
            )
        # An unknown name would otherwise surface as Keras's bare
        # "Unrecognized keyword arguments", with no list of valid ones.
        accepted = _constructor_arguments(cls)
        unknown = sorted(set(kwargs) - accepted)
        if unknown:
            raise ValueError(
                f"Unknown preset override(s) {unknown} for "
                f"{cls.__name__}.from_preset. Valid backbone / quantizer "
                f"fields: {sorted(names | {'in_channels'})}; constructor "
                f"arguments: {sorted(accepted)}."
            )
        if perceptual_loss == "auto":
            perceptual_loss = _lpips_or_warn(spec.get("perceptual"))
        options = dict(spec["model"])
        options.update(kwargs)
        return cls(backbone=backbone, perceptual_loss=perceptual_loss, **options)

    @classmethod
    def _from_directory(cls, preset, load_weights=True, **kwargs):
        from keras_lgvq.models import presets
        from keras_lgvq.models.vqgan.vqgan_backbone import VQGANBackbone

        if not os.path.exists(os.path.join(preset, presets.TASK_CONFIG_FILE)):
            raise ValueError(
                f"{preset!r} holds a backbone only (no "
                f"{presets.TASK_CONFIG_FILE}): load it with "
                "`VQGANBackbone.from_preset`, or pass the backbone to the "
                f"{cls.__name__} constructor."
            )
        config = presets.read_json(preset, presets.TASK_CONFIG_FILE)
        backbone = VQGANBackbone.from_preset(preset, load_weights=load_weights)
        config["config"]["backbone"] = backbone
        for key, value in kwargs.items():
            if isinstance(value, keras.layers.Layer):
                value = keras.layers.serialize(value)
            config["config"][key] = value
        registered = config.get("registered_name", config.get("class_name"))
        target = keras.saving.get_registered_object(registered)
        if target is None or not issubclass(target, cls):
            raise ValueError(
                f"{preset!r} holds a {registered}, not a {cls.__name__}: "
                f"load it with {str(registered).split('>')[-1]}.from_preset."
            )
        model = keras.saving.deserialize_keras_object(config)
        model.build()
        if load_weights:
            presets.load_task_weights(model, preset)
        return model

    def save_to_preset(self, preset_dir):
        """Writes the model to a preset directory in keras-hub's layout.

        The backbone is saved by keras-hub's saver (`config.json`,
        `model.weights.h5`), so `VQGANBackbone.from_preset(dir)` (or
        `keras_hub.models.Backbone.from_preset(dir)`) loads the trained
        tokenizer alone; `task.json` and `task.weights.h5` add the rest.

        Args:
            preset_dir: string. Directory to create or overwrite files in.

        Examples:

        ```python
        model.save_to_preset("./my_trained_preset")
        model = keras_lgvq.LGVQ.from_preset("./my_trained_preset")
        ```
        """
        from keras_lgvq.models import presets

        if not self.built:
            self.build()
        presets.save_task_preset(
            self,
            preset_dir,
            metadata={
                "class_name": type(self).__name__,
                "keras_lgvq_version": __version__,
                "task_parameter_count": self.count_params(),
                "quantizer": _quantizer_summary(self.backbone.quantizer),
            },
        )

    # === Export ===

    def _export_endpoints(self):
        return {
            "encode": ("images", self.backbone.encode),
            "decode": ("indices", self.backbone.decode),
        }

    def export(self, filepath, format="tf_saved_model", verbose=True, **kw):
        """Exports a SavedModel with `encode`, `decode` (and, for LG-VQ,
        `embed_image`) endpoints, for the TensorFlow and JAX backends.

        `encode(images (B, H, W, 3) float32 in [-1, 1]) -> indices`,
        `decode(indices) -> images`, `embed_image(images) -> (B, E)`. Reload
        with `tf.saved_model.load(filepath)`. `indices` are int32 of shape
        `(B,) + backbone.index_shape`: `(B, h, w)` for one codebook,
        `(B, h, w, top_k + 1)` for VQCT (adjective ids, then the noun id;
        see `VQCTBackbone`).
        """
        if format != "tf_saved_model":
            return super().export(filepath, format=format, verbose=verbose, **kw)
        if keras.backend.backend() == "torch":
            raise NotImplementedError(
                "SavedModel export with custom endpoints needs the "
                "tensorflow or jax backend (Keras's ExportArchive does not "
                "track torch models); save a `.keras` file and export from "
                "KERAS_BACKEND=tensorflow."
            )
        if not self.built:
            self.build()
        res = self.backbone.resolution
        specs = {
            "images": keras.InputSpec(
                shape=(None, res, res, self.backbone.in_channels),
                dtype="float32",
            ),
            "indices": keras.InputSpec(
                shape=(None,) + tuple(self.backbone.index_shape), dtype="int32"
            ),
        }
        archive = keras.export.ExportArchive()
        archive.track(self)
        for name, (kind, fn) in self._export_endpoints().items():
            archive.add_endpoint(name, fn, input_signature=[specs[kind]])
        archive.write_out(filepath, verbose=verbose)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "backbone": keras.layers.serialize(self.backbone),
                "discriminator": _serialize(self.discriminator),
                "perceptual_loss": _serialize(self.perceptual_loss),
                "perceptual_weight": self.perceptual_weight,
                "codebook_weight": self.codebook_weight,
                "disc_weight": self.disc_weight,
                "disc_factor": self.disc_factor,
                "disc_start": self.disc_start,
                "adaptive_disc_weight": self.adaptive_disc_weight,
                "two_forward_passes": self.two_forward_passes,
            }
        )
        return config


class _BatchCounter(keras.callbacks.Callback):
    """Counts the epochs begun and the training batches run in one `fit`."""

    def __init__(self):
        super().__init__()
        self.epochs = 0
        self.batches = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs += 1

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


def _with_callback(callbacks, callback):
    if isinstance(callbacks, keras.callbacks.CallbackList):
        # A caller's own list (`keras_lgvq.callbacks.fit_resumable` passes
        # one); Keras's CallbackList has no `append`.
        callbacks.callbacks.append(callback)
        return callbacks
    return list(callbacks or []) + [callback]


def _count(variable):
    # `int(variable)` fails on a tf.distribute MirroredVariable.
    return int(ops.convert_to_numpy(variable))


_QUANTIZER_SUMMARY_KEYS = (
    "num_embeddings",
    "embedding_dim",
    "beta",
    "legacy_beta",
    "reinit",
    "reinit_decay",
    "anchor",
    "ema_decay",
    "contrastive_weight",
    "l2_normalize",
)


def _quantizer_summary(quantizer):
    """The quantizer a preset really trains with, for `metadata.json`."""
    config = quantizer.get_config()
    summary = {"class_name": type(quantizer).__name__}
    summary.update(
        {key: config[key] for key in _QUANTIZER_SUMMARY_KEYS if key in config}
    )
    return summary


class _GANPhase(keras.callbacks.Callback):
    """Counts batches on the host during `fit` and selects the VQGAN step
    variant: without GAN terms while every step of the next execution comes
    before `disc_start`, the full step from then on.

    The optimizer's step count cannot be read during a JAX `fit` (its state
    lives outside the variables until the epoch ends), hence the counter.
    """

    def on_train_begin(self, logs=None):
        self._step = _count(self.model.optimizer.iterations)
        self._begin = 0

    def on_train_batch_begin(self, batch, logs=None):
        self._begin = batch
        self.model._use_gan_phase(
            self.model._gan_phase_for(
                self._step, int(self.model.steps_per_execution)
            )
        )

    def on_train_batch_end(self, batch, logs=None):
        # `batch` is the last step of the execution.
        self._step += batch - self._begin + 1


_NO_BATCH_MESSAGE = (
    "The data yielded no batch, so nothing was trained or evaluated. A "
    "dataset with fewer examples than its batch size loses its only "
    "(partial) batch to `drop_remainder=True`; a caption filter can also "
    "leave an epoch empty. Use a smaller batch size, more examples, or "
    "`drop_remainder=False`."
)


def _input_errors_as_value_errors():
    """Re-raises the input pipeline's text checks as ValueError.

    The host-side checks (`keras_lgvq.datasets.pipeline.
    validate_text_batch`) and TensorFlow's in-graph assertions fail the step
    with `tf.errors.InvalidArgumentError`; the ones keras_lgvq wrote carry
    `TEXT_CHECK_PREFIX`, and only those become a ValueError with their own
    message. An empty dataset that Keras reports as `StopIteration` (JAX)
    becomes the no-batch ValueError.
    """
    return input_errors_as_value_errors(
        [TEXT_CHECK_PREFIX], no_batch_message=_NO_BATCH_MESSAGE
    )


def _constructor_arguments(cls):
    """Named `__init__` arguments of `cls` and its bases up to
    `keras.Model` (plus the Model's own `name`, `dtype`, `trainable`)."""
    import inspect

    names = {"name", "dtype", "trainable"}
    for klass in cls.__mro__:
        if klass is keras.Model:
            break
        if "__init__" not in vars(klass):
            continue
        for parameter in inspect.signature(klass.__init__).parameters.values():
            if parameter.kind in (
                parameter.POSITIONAL_OR_KEYWORD,
                parameter.KEYWORD_ONLY,
            ):
                names.add(parameter.name)
    names.discard("self")
    return names


def _lpips_or_warn(kind):
    """The paper's LPIPS when its VGG16 weights are available, else None."""
    if kind is None:
        return None
    from keras_lgvq.losses.lpips import LPIPS

    try:
        return LPIPS(vgg_weights="auto")
    except (FileNotFoundError, ValueError) as error:
        warnings.warn(
            "Building without the LPIPS perceptual loss because its weights "
            "are missing; training then deviates from the paper recipe. "
            "Pass `perceptual_loss=keras_lgvq.losses.LPIPS(vgg_weights=...)` "
            f"to follow it. Details: {error}",
            stacklevel=3,
        )
        return None
