"""The VQGAN adversarial losses (taming's hinge GAN with adaptive weight)."""

from keras import ops


def hinge_discriminator_loss(logits_real, logits_fake):
    """Hinge loss of the discriminator, as in taming.

    `0.5 * (mean(relu(1 - D(x))) + mean(relu(1 + D(x_hat))))`.

    Args:
        logits_real: tensor. Discriminator logits on real images.
        logits_fake: tensor. Discriminator logits on reconstructions.

    Examples:

    ```python
    loss = hinge_discriminator_loss(D(images), D(ops.stop_gradient(recon)))
    ```
    """
    logits_real = ops.cast(logits_real, "float32")
    logits_fake = ops.cast(logits_fake, "float32")
    return 0.5 * (
        ops.mean(ops.relu(1.0 - logits_real))
        + ops.mean(ops.relu(1.0 + logits_fake))
    )


def generator_adversarial_loss(logits_fake):
    """Generator side of the hinge GAN: `-mean(D(x_hat))`.

    Args:
        logits_fake: tensor. Discriminator logits on reconstructions.

    Examples:

    ```python
    g_loss = generator_adversarial_loss(D(recon))
    ```
    """
    return -ops.mean(ops.cast(logits_fake, "float32"))


def adaptive_generator_weight(
    nll_grad, g_grad, disc_weight=0.8, max_weight=1e4, epsilon=1e-4
):
    """taming's adaptive GAN weight from gradient norms.

    `clip(|grad nll| / (|grad g| + eps), 0, max_weight) * disc_weight`, both
    gradients taken at the decoder's last layer; the result carries no
    gradient.

    Args:
        nll_grad: tensor. Gradient of the reconstruction loss with respect
            to the decoder's output kernel.
        g_grad: tensor. Gradient of the generator adversarial loss with
            respect to the same kernel.
        disc_weight: float. Multiplier applied after clipping.
        max_weight: float. Upper clip of the ratio.
        epsilon: float. Added to the denominator.

    Examples:

    ```python
    w = adaptive_generator_weight(grad_nll, grad_g, disc_weight=0.8)
    ```
    """
    nll_norm = ops.sqrt(ops.sum(ops.square(ops.cast(nll_grad, "float32"))))
    g_norm = ops.sqrt(ops.sum(ops.square(ops.cast(g_grad, "float32"))))
    weight = ops.clip(nll_norm / (g_norm + epsilon), 0.0, max_weight)
    return ops.stop_gradient(weight * disc_weight)


def discriminator_factor(step, start, factor=1.0):
    """`factor` once `step >= start`, else 0 (taming's `adopt_weight`).

    Args:
        step: int tensor. Training step (batches seen).
        start: int. First step at which the GAN terms are switched on.
        factor: float. Value once switched on.

    Examples:

    ```python
    f = discriminator_factor(optimizer.iterations, start=10000)
    ```
    """
    step = ops.cast(step, "float32")
    return ops.where(step >= float(start), float(factor), 0.0)
