"""Layer names other parts of the package rely on."""

# The GAN optimizer splits variables by this path segment.
DISCRIMINATOR_NAME = "discriminator"
