"""Argument normalisation and input validation shared by the from-scratch operations."""

from __future__ import annotations

import torch


def pair(v) -> tuple[int, int]:
    """``3`` -> ``(3, 3)``; ``(2, 3)`` stays; negative values are refused."""
    t = (int(v), int(v)) if isinstance(v, int) else tuple(int(x) for x in v)
    if len(t) != 2 or min(t) < 0:
        raise ValueError(f"expected a non-negative int or pair, got {v!r}")
    return t


def check_float(name: str, x: torch.Tensor, ndim: int) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(
            f"{name}: expected a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}"
        )
    if x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}D tensor, got shape {tuple(x.shape)}")


def autocast_inputs(x: torch.Tensor, *others: torch.Tensor | None) -> tuple:
    """Cast floating inputs to the active autocast dtype, as native convolutions do, so the
    custom autograd functions see one dtype in forward and backward."""
    device = x.device.type
    if not torch.is_autocast_enabled(device):
        return (x, *others)
    dtype = torch.get_autocast_dtype(device)
    return tuple(
        t.to(dtype) if t is not None and t.is_floating_point() else t for t in (x, *others)
    )
