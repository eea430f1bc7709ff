"""Independent numpy references for the taming VQGAN blocks.

Shared by `vqgan_blocks_test.py`, `vqgan_encoder_test.py` and
`vqgan_decoder_test.py`: float64 NHWC re-implementations of the conv,
GroupNorm, swish, residual and attention blocks written from the spec, the
parameter-count formulas, and the configs the encoder and decoder tests use.
Weights are dicts `{path relative to the layer: float64 array}`.
"""

import math

import keras
import numpy as np

# The tiny encoder/decoder config (add `in_channels` or `out_channels`).
TINY_CODER = dict(
    resolution=32,
    ch=32,
    ch_mult=(1, 2),
    num_res_blocks=1,
    attn_resolutions=(16,),
    z_channels=8,
    dropout=0.0,
)

# The paper's f16 model (Esser et al., 2021, ImageNet), without dropout.
TAMING_F16 = dict(
    resolution=256,
    ch=128,
    ch_mult=(1, 1, 2, 2, 4),
    num_res_blocks=2,
    attn_resolutions=(16,),
    z_channels=256,
)


def to_np(x):
    return np.asarray(keras.ops.convert_to_numpy(x), "float64")


def weights_of(layer):
    """{path relative to `layer`: float64 array}."""
    prefix = layer.path + "/"
    return {v.path[len(prefix) :]: to_np(v) for v in layer.weights}


def randomize_norms(layer, rng):
    """Give GroupNorm gammas/betas non-trivial values (they init to 1/0)."""
    for v in layer.weights:
        if v.path.endswith("/gamma"):
            v.assign(1.0 + 0.2 * rng.standard_normal(v.shape).astype("float32"))
        elif v.path.endswith("/beta"):
            v.assign(0.2 * rng.standard_normal(v.shape).astype("float32"))


def np_conv(x, kernel, bias, stride=1, pad=(1, 1, 1, 1)):
    """NHWC conv, HWIO kernel; pad = (top, bottom, left, right) zeros."""
    top, bottom, left, right = pad
    x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    kh, kw = kernel.shape[:2]
    out_h = (x.shape[1] - kh) // stride + 1
    out_w = (x.shape[2] - kw) // stride + 1
    out = np.zeros(x.shape[:1] + (out_h, out_w, kernel.shape[-1]))
    for i in range(kh):
        for j in range(kw):
            patch = x[
                :,
                i : i + stride * (out_h - 1) + 1 : stride,
                j : j + stride * (out_w - 1) + 1 : stride,
            ]
            out += patch @ kernel[i, j]
    return out + bias


def np_group_norm(x, gamma, beta, groups=32, eps=1e-6):
    b, h, w, c = x.shape
    g = x.reshape(b, h, w, groups, c // groups)
    mean = g.mean(axis=(1, 2, 4), keepdims=True)
    var = g.var(axis=(1, 2, 4), keepdims=True)
    g = (g - mean) / np.sqrt(var + eps)
    return g.reshape(x.shape) * gamma + beta


def np_norm(x, w, name):
    """`np_group_norm` with the gamma/beta of the GroupNorm `name` in `w`."""
    return np_group_norm(x, w[name + "/gamma"], w[name + "/beta"])


def np_swish(x):
    return x / (1.0 + np.exp(-x))


def np_resnet_block(x, w, prefix=""):
    """Taming `ResnetBlock`; `prefix` is e.g. `""` or `"mid_block_1/"`."""
    p = prefix
    h = np_swish(np_norm(x, w, p + "norm1"))
    h = np_conv(h, w[p + "conv1/kernel"], w[p + "conv1/bias"])
    h = np_swish(np_norm(h, w, p + "norm2"))
    h = np_conv(h, w[p + "conv2/kernel"], w[p + "conv2/bias"])
    if p + "nin_shortcut/kernel" in w:
        x = np_conv(
            x,
            w[p + "nin_shortcut/kernel"],
            w[p + "nin_shortcut/bias"],
            pad=(0,) * 4,
        )
    return x + h


def np_attention(x, w, prefix=""):
    """Taming `AttnBlock`; `prefix` is e.g. `""` or `"mid_attn_1/"`."""
    p = prefix
    b, hh, ww, c = x.shape
    h = np_norm(x, w, p + "norm")

    def proj(name, t):
        return np_conv(
            t, w[p + name + "/kernel"], w[p + name + "/bias"], pad=(0,) * 4
        )

    q = proj("q", h).reshape(b, hh * ww, c)
    k = proj("k", h).reshape(b, hh * ww, c)
    v = proj("v", h).reshape(b, hh * ww, c)
    out = np.zeros_like(q)
    for n in range(b):
        logits = q[n] @ k[n].T / math.sqrt(c)
        att = np.exp(logits - logits.max(axis=-1, keepdims=True))
        att /= att.sum(axis=-1, keepdims=True)
        out[n] = att @ v[n]
    return x + proj("proj_out", out.reshape(b, hh, ww, c))


# ---------------------------------------------------------- param formulas


def conv_params(k, cin, cout):
    return k * k * cin * cout + cout


def res_params(cin, cout):
    shortcut = conv_params(1, cin, cout) if cin != cout else 0
    return (
        2 * cin
        + conv_params(3, cin, cout)
        + 2 * cout
        + conv_params(3, cout, cout)
        + shortcut
    )


def attn_params(c):
    return 2 * c + 4 * conv_params(1, c, c)
