r"""Max pooling with indices and max unpooling, from scratch, with their own backward passes.

Pooling takes the maximum over each ``k x k`` window and remembers *where* it was, as a flat
index into the input plane (``row * W + col``, PyTorch's convention). Unpooling is the
pooling's "switch" in reverse: it writes each value back at its remembered position and
leaves zeros elsewhere. The two are adjoint in the sense that

    backward of pooling   = scatter the output gradient to the argmax positions (= unpooling)
    backward of unpooling = gather the output gradient at the argmax positions  (= "pooling by index")

Nothing here loops over pixels: windows come from ``Tensor.unfold`` and positions from index
arithmetic; scatter/gather do the rest.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from pixelwise.ops._checks import check_float, pair


def pool_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def unpool_output_size(
    input_hw: tuple[int, int], kernel_size, stride=None, padding=0
) -> tuple[int, int]:
    """Default unpooling size: the pooling input that produced ``input_hw`` without remainder."""
    k, s, p = pair(kernel_size), pair(stride if stride is not None else kernel_size), pair(padding)
    return tuple((input_hw[i] - 1) * s[i] - 2 * p[i] + k[i] for i in range(2))


def _pool_forward(x: torch.Tensor, k, s, p) -> tuple[torch.Tensor, torch.Tensor]:
    """Running maximum over the kh*kw window taps, each tap a strided view of the padded
    input; a strict ``>`` keeps the first maximum in row-major window order."""
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (p[1], p[1], p[0], p[0]), value=float("-inf"))
    ho, wo = pool_output_size(h, k[0], s[0], p[0]), pool_output_size(w, k[1], s[1], p[1])
    # flat input index of each window's top-left tap (may lie in the padding)
    base = (torch.arange(ho, device=x.device).view(ho, 1) * s[0] - p[0]) * w + (
        torch.arange(wo, device=x.device).view(1, wo) * s[1] - p[1]
    )
    values = indices = None
    for i in range(k[0]):
        for j in range(k[1]):
            tap = padded[
                :, :, i : i + (ho - 1) * s[0] + 1 : s[0], j : j + (wo - 1) * s[1] + 1 : s[1]
            ]
            if values is None:
                values, indices = tap.clone(), (base + (i * w + j)).expand(n, c, ho, wo).clone()
                continue
            better = tap > values
            values = torch.where(better, tap, values)
            indices = torch.where(better, base + (i * w + j), indices)
    return values, indices


class _MaxPool2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, k, s, p):
        values, indices = _pool_forward(x, k, s, p)
        ctx.save_for_backward(indices)
        ctx.input_shape = x.shape
        ctx.mark_non_differentiable(indices)
        return values, indices

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_values, _grad_indices):
        (indices,) = ctx.saved_tensors
        n, c, h, w = ctx.input_shape
        grad = grad_values.new_zeros(n, c, h * w)
        grad.scatter_add_(2, indices.reshape(n, c, -1), grad_values.reshape(n, c, -1))
        return grad.view(n, c, h, w), None, None, None


def max_pool2d_with_indices(
    x: torch.Tensor, kernel_size, stride=None, padding=0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Max pooling of ``x`` (N, C, H, W) returning ``(values, indices)``, both (N, C, Ho, Wo).

    ``indices`` are flat positions ``row * W + col`` in each input plane, as in
    ``torch.nn.functional.max_pool2d(..., return_indices=True)``; ties go to the first
    maximum in row-major window order.
    """
    check_float("max_pool2d_with_indices", x, 4)
    k, s, p = pair(kernel_size), pair(stride if stride is not None else kernel_size), pair(padding)
    if any(p[i] > k[i] // 2 for i in range(2)):
        raise ValueError(f"padding {p} must be at most half the kernel size {k}")
    if any(pool_output_size(x.shape[2 + i], k[i], s[i], p[i]) < 1 for i in range(2)):
        raise ValueError(
            f"input of shape {tuple(x.shape)} is smaller than the kernel {k} with padding {p}"
        )
    return _MaxPool2d.apply(x, k, s, p)


class _MaxUnpool2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, indices, out_hw):
        n, c = x.shape[:2]
        flat_idx = indices.reshape(n, c, -1)
        out = x.new_zeros(n, c, out_hw[0] * out_hw[1])
        out.scatter_(2, flat_idx, x.reshape(n, c, -1))
        ctx.save_for_backward(flat_idx)
        ctx.input_shape = x.shape
        return out.view(n, c, *out_hw)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        (flat_idx,) = ctx.saved_tensors
        n, c = grad_out.shape[:2]
        return grad_out.reshape(n, c, -1).gather(2, flat_idx).view(ctx.input_shape), None, None


def max_unpool2d(
    x: torch.Tensor, indices: torch.Tensor, output_size: tuple[int, int]
) -> torch.Tensor:
    """Place each value of ``x`` (N, C, H, W) at its flat position ``indices`` in a zero
    (N, C, *output_size) tensor: the inverse "switch" of :func:`max_pool2d_with_indices`.

    Example (the lecture's 4x4 case): pooling ``[[1,2,6,4],[3,5,1,4],[3,3,4,6],[7,5,1,8]]``
    with 2x2 windows gives ``[[5,6],[7,8]]``; unpooling ``[[1,2],[3,4]]`` with those indices
    puts 1 at (1,1), 2 at (0,2), 3 at (3,0), 4 at (3,3).
    """
    check_float("max_unpool2d", x, 4)
    if indices.shape != x.shape:
        raise ValueError(
            f"indices shape {tuple(indices.shape)} does not match input shape {tuple(x.shape)}"
        )
    if indices.dtype != torch.int64:
        raise ValueError(f"indices must be int64, got {indices.dtype}")
    out_hw = tuple(int(v) for v in output_size[-2:])
    if len(out_hw) != 2 or min(out_hw) < 1:
        raise ValueError(f"output_size must give a positive (H, W), got {tuple(output_size)}")
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= out_hw[0] * out_hw[1]):
        raise ValueError(
            f"indices range [{int(indices.min())}, {int(indices.max())}] does not fit output size {out_hw} "
            f"({out_hw[0] * out_hw[1]} positions) for input shape {tuple(x.shape)}"
        )
    return _MaxUnpool2d.apply(x, indices, out_hw)
