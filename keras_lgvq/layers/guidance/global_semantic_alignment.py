"""LG-VQ global semantic alignment: InfoNCE between image and sentence."""

import math

import keras
from keras import ops

from keras_lgvq import backend as lgvq_backend
# L2 normalisation adds NORM_EPSILON (1e-12) to the squared norm; the
# official code has no epsilon (spec §9 item 19), this only guards against
# an all-zero vector.
from keras_lgvq.utils.tensors import l2_normalize as _l2_normalize

# The official denominator offset: -log(exp(pos) / (den + 1e-6)).
DENOMINATOR_EPSILON = 1e-6
# CLIP's logit-scale cap.
MAX_LOGIT_SCALE = 100.0
# Logit of a masked (false) negative: exp() of it is exactly 0 in float32,
# and it stays finite, so no backend meets inf - inf.
MASKED_LOGIT = -1e9


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

    Data parallelism: with `global_batch=True` (the default) the negatives
    are the **global** batch. Under `tf.distribute` each replica gathers
    the sentence features (and, for the symmetric loss, the image
    embeddings, differentiably) of all replicas and scores its own anchors
    against all of them, so 2 replicas x B/2 give the loss and gradients of
    1 x B. `global_batch=False` keeps each replica's in-batch negatives
    only, which is what per-GPU DDP code (the official Lightning code on
    several GPUs) computes. On JAX (`keras.distribution`, SPMD) the layer
    always sees the global batch, and on one device the two are the same.

    Options that deviate from the official code (spec §9 item 7):
    `symmetric=True` averages the image-to-text and text-to-image losses;
    `learnable_temperature=True` adds a CLIP-style trainable log-scale
    initialised to `log(1 / 0.07)` and clamped so that the scale is at most
    100 (the only weight of this layer, and only in that mode).

    False negatives (not in the paper, off by default and in every paper
    preset): with `mask_duplicate_captions=True`, an in-batch candidate
    whose caption is identical to the anchor's positive caption (the same
    `token_ids` row, compared exactly inside the layer, so no new input is
    needed) is left out of the denominator instead of being pushed away;
    with class-style captions ("a photo of a cat" on many images) these
    are not negatives at all. The positive itself stays. Under
    `global_batch` the token ids are gathered with the features, so the
    mask spans the global batch.

    Args:
        symmetric: bool. Average both directions instead of image-to-text
            only. Defaults to `False` (faithful).
        learnable_temperature: bool. Learn the logit scale. Defaults to
            `False` (faithful).
        temperature: float. Fixed temperature τ (scale `1/τ`) when the
            temperature is not learned. Defaults to `1.0` (faithful).
        global_batch: bool. Under `tf.distribute`, use the negatives of the
            global batch (see above). Defaults to `True`.
        mask_duplicate_captions: bool. Leave candidates with the positive's
            caption out of the denominator (see above); needs `token_ids`
            at call time. Defaults to `False` (faithful).
        **kwargs: Standard `keras.layers.Layer` arguments.

    Call arguments:
        image_embedding: float tensor `(B, E)`, e.g. the code transformer's
            CLS output.
        sentence_feature: float tensor `(B, E)`, e.g. CLIP's projected EOT
            feature.
        token_ids: int tensor `(B, L)` or None. The captions' token ids;
            required with `mask_duplicate_captions=True` (ignored
            otherwise).

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
        global_batch=True,
        mask_duplicate_captions=False,
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
        self.global_batch = bool(global_batch)
        self.mask_duplicate_captions = bool(mask_duplicate_captions)

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

    def call(self, image_embedding, sentence_feature, token_ids=None):
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
        if self.mask_duplicate_captions:
            if token_ids is None or len(token_ids.shape) != 2:
                raise ValueError(
                    "`mask_duplicate_captions=True` needs the captions' "
                    "`token_ids` (B, L) at call time: "
                    "`gsa(image_embedding, sentence_feature, token_ids=...)`."
                    f" Received: {token_ids!r:.80}"
                )
            token_ids = ops.cast(token_ids, "int32")
        else:
            token_ids = None
        scale = self.logit_scale_value()
        if self.global_batch and lgvq_backend.num_replicas() > 1:
            return self._global_batch_loss(v, t, scale, token_ids)
        logits = ops.matmul(v, ops.transpose(t)) * scale
        if token_ids is not None:
            count = ops.shape(token_ids)[0]
            positives = ops.arange(count, dtype="int32")
            logits = self._mask_false_negatives(
                logits, token_ids, token_ids, positives
            )
        loss = self._one_direction(logits)
        if self.symmetric:
            loss = 0.5 * (loss + self._one_direction(ops.transpose(logits)))
        return loss

    @staticmethod
    def _mask_false_negatives(logits, row_ids, column_ids, positives):
        """`MASKED_LOGIT` where a column's caption equals the row's, except
        at the row's positive column."""
        same = ops.all(
            ops.equal(
                ops.expand_dims(row_ids, 1), ops.expand_dims(column_ids, 0)
            ),
            axis=-1,
        )
        columns = ops.arange(ops.shape(column_ids)[0], dtype="int32")
        not_positive = ops.not_equal(
            ops.expand_dims(columns, 0), ops.expand_dims(positives, 1)
        )
        drop = ops.logical_and(same, not_positive)
        return ops.where(drop, ops.full_like(logits, MASKED_LOGIT), logits)

    def _global_batch_loss(self, v, t, scale, token_ids=None):
        """This replica's share of the global-batch loss.

        Rows are this replica's anchors, columns every replica's candidates;
        the positive of local row i is global column `offset + i`. The
        result is `num_replicas * sum(local rows) / global_batch`: the
        trainer divides each replica's loss by the replica count and sums
        the gradients, which makes the global mean.
        """
        offset, total = lgvq_backend.replica_batch_offset(ops.shape(v)[0])
        positives = offset + ops.arange(ops.shape(v)[0], dtype="int32")
        # The text side is frozen: a constant gather.
        t_all = lgvq_backend.replica_all_gather(t)
        logits = ops.matmul(v, ops.transpose(t_all)) * scale
        ids_all = None
        if token_ids is not None:
            # Caption identity across the global batch (constant ids).
            ids_all = lgvq_backend.replica_all_gather(token_ids)
            logits = self._mask_false_negatives(
                logits, token_ids, ids_all, positives
            )
        loss = self._rows_sum(logits, positives)
        if self.symmetric:
            # Other replicas' text anchors score this replica's images, so
            # the images are gathered with their gradient.
            v_all = lgvq_backend.replica_all_gather(v)
            back_logits = ops.matmul(t, ops.transpose(v_all)) * scale
            if ids_all is not None:
                back_logits = self._mask_false_negatives(
                    back_logits, token_ids, ids_all, positives
                )
            back = self._rows_sum(back_logits, positives)
            loss = 0.5 * (loss + back)
        replicas = float(lgvq_backend.num_replicas())
        return loss * replicas / ops.cast(total, "float32")

    @staticmethod
    def _rows_sum(logits, positives):
        pos = ops.take_along_axis(
            logits, ops.expand_dims(positives, -1), axis=-1
        )[:, 0]
        log_den = ops.logaddexp(
            ops.logsumexp(logits, axis=-1),
            math.log(DENOMINATOR_EPSILON),
        )
        return ops.sum(log_den - pos)

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
                "global_batch": self.global_batch,
                "mask_duplicate_captions": self.mask_duplicate_captions,
            }
        )
        return config
