"""VQGAN training: reconstruction, perceptual, VQ and hinge-GAN losses."""

import os
import warnings

import keras
from keras import ops

from keras_lgvq import backend as lgvq_backend
from keras_lgvq.layers.vqgan.patch_discriminator import PatchDiscriminator
from keras_lgvq.losses.gan_losses import adaptive_generator_weight
from keras_lgvq.losses.gan_losses import discriminator_factor
from keras_lgvq.losses.gan_losses import generator_adversarial_loss
from keras_lgvq.losses.gan_losses import hinge_discriminator_loss
from keras_lgvq.optimizers.gan_optimizer import GANOptimizer
from keras_lgvq.optimizers.gan_optimizer import is_discriminator_variable
from keras_lgvq.utils.names import DISCRIMINATOR_NAME
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


def _serialize(layer):
    return None if layer is None else keras.layers.serialize(layer)


def _deserialize(config):
    if config is None or isinstance(config, keras.layers.Layer):
        return config
    return keras.layers.deserialize(config)


@keras.saving.register_keras_serializable(package="keras_lgvq")
class VQGAN(lgvq_backend.GANTrainer, keras.Model):
    """Trains a VQ tokenizer with taming's VQGAN objective.

    Generator loss: `mean(|x - x_hat|) + perceptual_weight * LPIPS +
    codebook_weight * L_vq + d_weight * disc_factor * (-mean D(x_hat))`,
    where `d_weight` is taming's adaptive weight (gradient-norm ratio at the
    decoder's last layer, clipped to [0, 1e4], times `disc_weight`) and
    `disc_factor` switches the GAN terms on after `disc_start` batches.
    Each batch makes one generator update, then one discriminator update
    (hinge loss) on the same batch's reconstructions. The per-backend
    `train_step` lives in `keras_lgvq.backend`; every loss term, the
    codebook perplexity and usage are logged as metrics.

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
        self._trackers = [
            keras.metrics.Mean(name=name) for name in self.log_names()
        ]

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
        return list(self._trackers)

    def _record(self, logs):
        results = {}
        for tracker in self._trackers:
            if tracker.name in logs:
                tracker.update_state(logs[tracker.name])
                results[tracker.name] = tracker.result()
        return results

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

    def _nll(self, images, reconstruction):
        images = ops.cast(images, "float32")
        reconstruction = ops.cast(reconstruction, "float32")
        rec_loss = ops.mean(ops.abs(images - reconstruction))
        if self.perceptual_loss is None:
            return rec_loss, rec_loss, None
        perceptual = ops.mean(
            ops.cast(self.perceptual_loss(images, reconstruction), "float32")
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

    def adaptive_weight_gradients(self, images, decoder_features):
        """Gradients of the nll and GAN losses at the decoder's last kernel.

        The decoder's last layer is linear in its kernel, so both gradients
        come from re-applying `decoder.conv_out` to the (constant) decoder
        features; nothing else of the graph is differentiated again.
        """
        conv = self.backbone.decoder.conv_out
        dtype = conv.compute_dtype
        features = ops.cast(ops.stop_gradient(decoder_features), dtype)
        bias = ops.cast(ops.stop_gradient(conv.bias), dtype)

        def reconstruct(kernel):
            kernel = ops.cast(kernel, dtype)
            return ops.conv(features, kernel, padding="same") + bias

        def nll(kernel):
            return self._nll(images, reconstruct(kernel))[0]

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

    def _tokenizer_losses(self, images, outputs):
        """Reconstruction + perceptual + quantizer terms and their logs."""
        nll, rec_loss, perceptual = self._nll(
            images, outputs["reconstruction"]
        )
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
        return nll + self.codebook_weight * outputs["loss"], logs

    def _generator_step(self, batch, training=True):
        images = batch["images"]
        outputs = self.backbone.encode_decode(images, training=training)
        reconstruction = outputs["reconstruction"]
        total, logs = self._tokenizer_losses(images, outputs)
        factor = ops.zeros((), "float32")
        if self.discriminator is not None:
            factor = discriminator_factor(
                self.optimizer.iterations, self.disc_start, self.disc_factor
            )
            logits_fake = self.discriminator(reconstruction, training=training)
            g_loss = generator_adversarial_loss(logits_fake)
            if self.adaptive_disc_weight:
                nll_grad, g_grad = self.adaptive_weight_gradients(
                    images, outputs["decoder_features"]
                )
                d_weight = adaptive_generator_weight(
                    nll_grad, g_grad, self.disc_weight
                )
            else:
                d_weight = ops.convert_to_tensor(self.disc_weight, "float32")
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
        self.backbone.encode_decode(images)
        if self.discriminator is not None:
            self.discriminator(images)
        if self.perceptual_loss is not None:
            self.perceptual_loss(images, images)
        self._build_extra(images)
        self.built = True

    def _build_extra(self, images):
        """Hook for subclasses to create the variables of extra heads."""

    def compile(
        self,
        optimizer=None,
        learning_rate=3.6e-5,
        beta_1=0.5,
        beta_2=0.9,
        **kwargs,
    ):
        """Configures training with two Adam optimizers by default.

        Args:
            optimizer: `keras_lgvq.optimizers.GANOptimizer` or None. When None,
                generator and discriminator each get
                `Adam(learning_rate, beta_1, beta_2)` (taming: 3.6e-5 for
                batch 8 on one GPU, betas (0.5, 0.9)).
            learning_rate: float. Used when `optimizer` is None.
            beta_1: float. Used when `optimizer` is None.
            beta_2: float. Used when `optimizer` is None.
            **kwargs: passed to `keras.Model.compile` (e.g. `jit_compile`).
        """
        if kwargs.get("loss") is not None:
            raise ValueError(
                "VQGAN computes its own losses; do not pass `loss`."
            )
        if optimizer is None:

            def adam():
                return keras.optimizers.Adam(
                    learning_rate, beta_1=beta_1, beta_2=beta_2
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

    def fit(self, x=None, *args, validation_data=None, **kwargs):
        if validation_data is not None:
            validation_data = self._filter_inputs(validation_data)
        return super().fit(
            self._filter_inputs(x),
            *args,
            validation_data=validation_data,
            **kwargs,
        )

    def evaluate(self, x=None, *args, **kwargs):
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
            load_weights: bool. Load the directory's weights.
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
        return model

    @classmethod
    def _from_spec(cls, spec, perceptual_loss="auto", **kwargs):
        from keras_lgvq.models.vqgan.vqgan_backbone import VQGANBackbone

        backbone = kwargs.pop("backbone", None)
        overrides = {
            key: kwargs.pop(key)
            for key in list(kwargs)
            if key in spec["backbone"] or key in (spec.get("quantizer") or {})
        }
        if backbone is None:
            backbone = VQGANBackbone._from_spec(spec, **overrides)
        elif overrides:
            raise ValueError(
                f"Pass either `backbone` or backbone overrides "
                f"{sorted(overrides)}, not both."
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

        `encode(images (B, H, W, 3) float32 in [-1, 1]) -> indices (B, h, w)`,
        `decode(indices) -> images`, `embed_image(images) -> (B, E)`. Reload
        with `tf.saved_model.load(filepath)`.
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
            }
        )
        return config


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
