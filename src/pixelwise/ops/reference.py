"""NumPy references of the from-scratch operations: the same math, no autograd.

Loops run over kernel taps only (at most kh*kw iterations), never over pixels.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from pixelwise.ops._checks import pair


def max_pool2d_with_indices(
    x: np.ndarray, kernel_size, stride=None, padding=0
) -> tuple[np.ndarray, np.ndarray]:
    """(N, C, H, W) -> values and flat indices ``row * W + col``, both (N, C, Ho, Wo)."""
    k, s, p = pair(kernel_size), pair(stride if stride is not None else kernel_size), pair(padding)
    w = x.shape[3]
    padded = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])), constant_values=-np.inf)
    windows = sliding_window_view(padded, k, axis=(2, 3))[
        :, :, :: s[0], :: s[1]
    ]  # (N, C, Ho, Wo, kh, kw)
    flat = windows.reshape(*windows.shape[:4], -1)
    local = flat.argmax(-1)
    ho, wo = local.shape[2:]
    rows = np.arange(ho)[:, None] * s[0] - p[0] + local // k[1]
    cols = np.arange(wo)[None, :] * s[1] - p[1] + local % k[1]
    return np.take_along_axis(flat, local[..., None], -1)[..., 0], rows * w + cols


def max_unpool2d(x: np.ndarray, indices: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
    n, c = x.shape[:2]
    out = np.zeros((n, c, output_size[0] * output_size[1]), dtype=x.dtype)
    np.put_along_axis(out, indices.reshape(n, c, -1), x.reshape(n, c, -1), axis=2)
    return out.reshape(n, c, *output_size)


def conv2d(
    x: np.ndarray, weight: np.ndarray, bias=None, stride=1, padding=0, dilation=1
) -> np.ndarray:
    """Sum over kernel taps of a strided slice of the padded input times that tap's weights."""
    s, p, d = pair(stride), pair(padding), pair(dilation)
    kh, kw = weight.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    ho = (xp.shape[2] - d[0] * (kh - 1) - 1) // s[0] + 1
    wo = (xp.shape[3] - d[1] * (kw - 1) - 1) // s[1] + 1
    out = np.zeros((x.shape[0], weight.shape[0], ho, wo), dtype=np.result_type(x, weight))
    for i in range(kh):
        for j in range(kw):
            patch = xp[
                :,
                :,
                i * d[0] : i * d[0] + (ho - 1) * s[0] + 1 : s[0],
                j * d[1] : j * d[1] + (wo - 1) * s[1] + 1 : s[1],
            ]
            out += np.einsum("nchw,oc->nohw", patch, weight[:, :, i, j])
    return out if bias is None else out + bias[None, :, None, None]


def conv_transpose2d(
    y: np.ndarray, weight: np.ndarray, bias=None, stride=1, padding=0, output_padding=0, dilation=1
) -> np.ndarray:
    """Each input value stamps the kernel onto the output at stride spacing; overlaps add."""
    s, p, op, d = pair(stride), pair(padding), pair(output_padding), pair(dilation)
    n, _, h, w = y.shape
    kh, kw = weight.shape[2:]
    full = np.zeros(
        (
            n,
            weight.shape[1],
            (h - 1) * s[0] + d[0] * (kh - 1) + 1 + op[0],
            (w - 1) * s[1] + d[1] * (kw - 1) + 1 + op[1],
        ),
        dtype=np.result_type(y, weight),
    )
    for i in range(kh):
        for j in range(kw):
            full[
                :,
                :,
                i * d[0] : i * d[0] + (h - 1) * s[0] + 1 : s[0],
                j * d[1] : j * d[1] + (w - 1) * s[1] + 1 : s[1],
            ] += np.einsum("nchw,co->nohw", y, weight[:, :, i, j])
    out = full[:, :, p[0] : full.shape[2] - p[0], p[1] : full.shape[3] - p[1]]
    return out if bias is None else out + bias[None, :, None, None]
