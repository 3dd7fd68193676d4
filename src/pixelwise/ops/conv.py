r"""Convolution and transposed convolution from scratch, as matrix products.

Convolution is a matrix product after ``im2col``: every receptive field of the input becomes
a column (``unfold``), and the kernel, flattened to a (C_out, C_in*kh*kw) matrix ``K``,
multiplies them all at once::

    conv2d(x)            = K @ unfold(x)                       (then reshape to (N, C_out, Ho, Wo))
    conv_transpose2d(y)  = fold(K^T @ y)                       (the adjoint: the matrix transposed)

``fold`` is ``unfold``'s adjoint: it adds each column back onto the positions it came from,
so overlapping windows sum. The backward passes are the same pieces in the other order: the
gradient of a convolution with respect to its input *is* a transposed convolution, and vice
versa.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from pixelwise.ops._checks import autocast_inputs, check_float, pair


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_transpose_output_size(
    size: int, kernel: int, stride: int, padding: int, output_padding: int, dilation: int
) -> int:
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def _im2col(x, k, s, p, d) -> torch.Tensor:
    return F.unfold(x, k, dilation=d, padding=p, stride=s)  # (N, C*kh*kw, L)


def _col2im(cols: torch.Tensor, out_hw, k, s, p, d) -> torch.Tensor:
    """``fold``: add every column entry back onto the input position it was taken from.

    One strided slice-add per kernel tap (kh*kw of them) instead of ``F.fold``, which is
    about 2x slower on CPU; overlapping windows sum either way.
    """
    n, ckk, length = cols.shape
    c = ckk // (k[0] * k[1])
    counts = [conv_output_size(out_hw[i], k[i], s[i], p[i], d[i]) for i in range(2)]
    if counts[0] * counts[1] != length:
        raise ValueError(
            f"{length} columns do not tile an output of {tuple(out_hw)} with kernel {k}, stride {s}"
        )
    full = cols.new_zeros(n, c, out_hw[0] + 2 * p[0], out_hw[1] + 2 * p[1])
    windows = cols.view(n, c, k[0], k[1], counts[0], counts[1])
    for i in range(k[0]):
        for j in range(k[1]):
            rows = slice(i * d[0], i * d[0] + (counts[0] - 1) * s[0] + 1, s[0])
            cols_ = slice(j * d[1], j * d[1] + (counts[1] - 1) * s[1] + 1, s[1])
            full[:, :, rows, cols_] += windows[:, :, i, j]
    if p == (0, 0):
        return full
    return full[:, :, p[0] : p[0] + out_hw[0], p[1] : p[1] + out_hw[1]]


class _Conv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, s, p, d):
        n, _, h, w = x.shape
        c_out, _, kh, kw = weight.shape
        k = (kh, kw)
        cols = _im2col(x, k, s, p, d)
        out = weight.reshape(c_out, -1) @ cols  # (N, C_out, L)
        if bias is not None:
            out = out + bias.view(1, -1, 1)
        ctx.save_for_backward(x, weight)
        ctx.conf = (k, s, p, d, bias is not None)
        ho, wo = (conv_output_size((h, w)[i], k[i], s[i], p[i], d[i]) for i in range(2))
        return out.view(n, c_out, ho, wo)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        k, s, p, d, has_bias = ctx.conf
        n, c_out = grad_out.shape[:2]
        g = grad_out.reshape(n, c_out, -1)  # (N, C_out, L)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:  # transposed convolution of the output gradient
            grad_x = _col2im(weight.reshape(c_out, -1).t() @ g, x.shape[2:], k, s, p, d)
        if ctx.needs_input_grad[1]:
            grad_w = (g @ _im2col(x, k, s, p, d).transpose(1, 2)).sum(0).view_as(weight)
        if has_bias and ctx.needs_input_grad[2]:
            grad_b = g.sum((0, 2))
        return grad_x, grad_w, grad_b, None, None, None


def _pad_or_crop(x: torch.Tensor, pads: tuple[int, int, int, int]) -> torch.Tensor:
    return x if not any(pads) else F.pad(x, pads)  # negative pads crop


class _ConvTranspose2d(torch.autograd.Function):
    """Fold onto the full extent E = (H-1)*s + d*(k-1) + 1 the windows cover, then crop
    ``padding`` rows from the top and ``padding - output_padding`` from the bottom (a
    negative crop adds zero rows). The backward pass pads the gradient back and unfolds it."""

    @staticmethod
    def forward(ctx, y, weight, bias, s, p, op, d):
        n, c_in, h, w = y.shape
        _, c_out, kh, kw = weight.shape
        k = (kh, kw)
        extent = tuple(((h, w)[i] - 1) * s[i] + d[i] * (k[i] - 1) + 1 for i in range(2))
        cols = weight.reshape(c_in, -1).t() @ y.reshape(n, c_in, -1)  # (N, C_out*kh*kw, L)
        out = _pad_or_crop(
            _col2im(cols, extent, k, s, (0, 0), d), (-p[1], op[1] - p[1], -p[0], op[0] - p[0])
        )
        out = out + bias.view(1, -1, 1, 1) if bias is not None else out.contiguous()
        ctx.save_for_backward(y, weight)
        ctx.conf = (k, s, p, op, d, bias is not None)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        y, weight = ctx.saved_tensors
        k, s, p, op, d, has_bias = ctx.conf
        n, c_in = y.shape[:2]
        full = _pad_or_crop(grad_out, (p[1], p[1] - op[1], p[0], p[0] - op[0]))
        cols = _im2col(full, k, s, (0, 0), d)  # (N, C_out*kh*kw, L): a plain convolution
        grad_y = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_y = (weight.reshape(c_in, -1) @ cols).view_as(y)
        if ctx.needs_input_grad[1]:
            grad_w = (y.reshape(n, c_in, -1) @ cols.transpose(1, 2)).sum(0).view_as(weight)
        if has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum((0, 2, 3))
        return grad_y, grad_w, grad_b, None, None, None, None


def _check_conv(
    name: str, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, s, d, in_axis: int
) -> None:
    """Shared input checks; ``in_axis`` is the weight axis of the input channels (0 or 1)."""
    check_float(name, x, 4)
    check_float(name + " weight", weight, 4)
    if x.dtype != weight.dtype:
        raise ValueError(f"{name}: input dtype {x.dtype} differs from weight dtype {weight.dtype}")
    if min(s) < 1 or min(d) < 1:
        raise ValueError(f"{name}: stride {s} and dilation {d} must be >= 1")
    if weight.shape[in_axis] != x.shape[1]:
        raise ValueError(
            f"{name}: weight {tuple(weight.shape)} expects {weight.shape[in_axis]} input channels, "
            f"input {tuple(x.shape)} has {x.shape[1]}"
        )
    if bias is not None and (
        bias.ndim != 1 or bias.dtype != weight.dtype or bias.shape[0] != weight.shape[1 - in_axis]
    ):
        raise ValueError(
            f"{name}: bias shape {tuple(bias.shape)} ({bias.dtype}) does not match weight "
            f"{tuple(weight.shape)} ({weight.dtype})"
        )


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
) -> torch.Tensor:
    """Cross-correlation of ``x`` (N, C_in, H, W) with ``weight`` (C_out, C_in, kh, kw), as
    ``torch.nn.functional.conv2d`` (groups = 1)."""
    s, p, d = pair(stride), pair(padding), pair(dilation)
    x, weight, bias = autocast_inputs(x, weight, bias)
    _check_conv("conv2d", x, weight, bias, s, d, in_axis=1)
    for i in range(2):
        if conv_output_size(x.shape[2 + i], weight.shape[2 + i], s[i], p[i], d[i]) < 1:
            raise ValueError(
                f"conv2d: input {tuple(x.shape)} with padding {p} is smaller than the dilated "
                f"kernel {tuple(weight.shape[2:])} (dilation {d})"
            )
    return _Conv2d.apply(x, weight, bias, s, p, d)


def conv_transpose2d(
    y: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride=1,
    padding=0,
    output_padding=0,
    dilation=1,
) -> torch.Tensor:
    """Transposed convolution of ``y`` (N, C_in, H, W) with ``weight`` (C_in, C_out, kh, kw),
    as ``torch.nn.functional.conv_transpose2d`` (groups = 1).

    Output size per axis: ``(H - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1``;
    ``output_padding`` must be smaller than ``stride`` or ``dilation``.
    """
    s, p, op, d = pair(stride), pair(padding), pair(output_padding), pair(dilation)
    y, weight, bias = autocast_inputs(y, weight, bias)
    _check_conv("conv_transpose2d", y, weight, bias, s, d, in_axis=0)
    if any(op[i] >= max(s[i], d[i]) for i in range(2)):
        raise ValueError(
            f"conv_transpose2d: output_padding {op} must be smaller than stride {s} or dilation {d}"
        )
    out_hw = tuple(
        conv_transpose_output_size(y.shape[2 + i], weight.shape[2 + i], s[i], p[i], op[i], d[i])
        for i in range(2)
    )
    if min(out_hw) < 1:
        raise ValueError(
            f"conv_transpose2d: input {tuple(y.shape)} with kernel {tuple(weight.shape[2:])}, "
            f"stride {s}, padding {p} gives an impossible output size {out_hw}"
        )
    return _ConvTranspose2d.apply(y, weight, bias, s, p, op, d)
