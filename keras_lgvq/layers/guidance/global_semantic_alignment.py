"""LG-VQ global semantic alignment: InfoNCE between image and sentence."""

import math

import keras
from keras import ops

# L2 normalisation adds NORM_EPSILON (1e-12) to the squared norm; the
# official code has no epsilon (spec §9 item 19), this only guards against
# an all-zero vector.
from keras_lgvq.utils.tensors import l2_normalize as _l2_normalize

# The official denominator offset: -log(exp(pos) / (den + 1e-6)).
DENOMINATOR_EPSILON = 1e-6
# CLIP's logit-scale cap.
MAX_LOGIT_SCALE = 100.0


@keras.saving.register_keras_serializable(package="keras_lgvq")
class GlobalSemanticAlignment(keras.layers.Layer):
    """InfoNCE between global image embeddings and sentence features (L_gsa).

    Both inputs are L2-normalised; the sentence feature is a frozen text
    prior, so it is passed through `stop_gradient`. With cosine matrix
    `S_ij = v_i . t_j` scaled by `s = 1 / temperature`, the faithful loss
    (LG-VQ spec §3.2) is the one-directional, image-to-text batch mean

    `L = mean_i [ -log( exp(s S_ii) / (sum_j exp(s S_ij) + 1e-6) ) ]`

    with `s = 1` (τ = 1, no learnable scale). It is evaluated as
    `logaddexp(logsumexp_j(s S_ij), log 1e-6) - s S_ii`, which is the same
    number but cannot overflow for large scales.

    Options that deviate from the official code (spec §9 item 7):
    `symmetric=True` averages the image-to-text and text-to-image losses;
    `learnable_temperature=True` adds a CLIP-style trainable log-scale
    initialised to `log(1 / 0.07)` and clamped so that the scale is at most
    100 (the only weight of this layer, and only in that mode).

    Args:
        symmetric: bool. Average both directions instead of image-to-text
            only. Defaults to `False` (faithful).
        learnable_temperature: bool. Learn the logit scale. Defaults to
            `False` (faithful).
        temperature: float. Fixed temperature τ (scale `1/τ`) when the
            temperature is not learned. Defaults to `1.0` (faithful).
        **kwargs: Standard `keras.layers.Layer` arguments.

    Call arguments:
        image_embedding: float tensor `(B, E)`, e.g. the code transformer's
            CLS output.
        sentence_feature: float tensor `(B, E)`, e.g. CLIP's projected EOT
            feature.

    Returns:
        Scalar float32 loss.

    Examples:

    ```python
    gsa = keras_lgvq.layers.guidance.global_semantic_alignment.GlobalSemanticAlignment()
    loss = gsa(np.random.normal(size=(8, 512)), np.random.normal(size=(8, 512)))
    ```
    """

    def __init__(
        self,
        symmetric=False,
        learnable_temperature=False,
        temperature=1.0,
        **kwargs,
    ):
        # The loss is computed in float32 from full-precision inputs.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        if not isinstance(temperature, (int, float)) or temperature <= 0:
            raise ValueError(
                "`temperature` must be a positive float. Received: "
                f"temperature={temperature}"
            )
        self.symmetric = bool(symmetric)
        self.learnable_temperature = bool(learnable_temperature)
        self.temperature = float(temperature)

    def build(self, input_shape):
        if self.learnable_temperature:
            self.logit_scale = self.add_weight(
                shape=(),
                initializer=keras.initializers.Constant(math.log(1 / 0.07)),
                dtype="float32",
                name="logit_scale",
            )

    def logit_scale_value(self):
        """Returns the (clamped) multiplicative logit scale as a tensor."""
        if self.learnable_temperature:
            return ops.exp(
                ops.minimum(
                    ops.cast(self.logit_scale, "float32"),
                    math.log(MAX_LOGIT_SCALE),
                )
            )
        return ops.convert_to_tensor(1.0 / self.temperature, "float32")

    def call(self, image_embedding, sentence_feature):
        if len(image_embedding.shape) != 2 or len(sentence_feature.shape) != 2:
            raise ValueError(
                "`image_embedding` and `sentence_feature` must have shape "
                f"(B, E). Received: {image_embedding.shape} and "
                f"{sentence_feature.shape}"
            )
        if image_embedding.shape[-1] != sentence_feature.shape[-1]:
            raise ValueError(
                "`image_embedding` and `sentence_feature` must have the same "
                f"width. Received: {image_embedding.shape} and "
                f"{sentence_feature.shape}"
            )
        v = _l2_normalize(ops.cast(image_embedding, "float32"))
        t = _l2_normalize(
            ops.stop_gradient(ops.cast(sentence_feature, "float32"))
        )
        logits = ops.matmul(v, ops.transpose(t)) * self.logit_scale_value()
        loss = self._one_direction(logits)
        if self.symmetric:
            loss = 0.5 * (loss + self._one_direction(ops.transpose(logits)))
        return loss

    @staticmethod
    def _one_direction(logits):
        # Rows are anchors, columns candidates; the positive is the diagonal.
        pos = ops.diagonal(logits)
        # log(sum_j exp(l_ij) + eps) as logaddexp(logsumexp(l), log eps):
        # exact, and overflow-free for large logit scales.
        log_den = ops.logaddexp(
            ops.logsumexp(logits, axis=-1),
            math.log(DENOMINATOR_EPSILON),
        )
        return ops.mean(log_den - pos)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "symmetric": self.symmetric,
                "learnable_temperature": self.learnable_temperature,
                "temperature": self.temperature,
            }
        )
        return config
