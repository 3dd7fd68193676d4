"""Numeric precision and memory layout of a network's forward pass (torch fp32 or bf16 autocast)."""

from __future__ import annotations

import contextlib
import threading

import torch
from torch import nn

from pixelwise.constants import PRECISIONS


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """``auto`` means bf16 where the hardware runs it natively (AVX512-BF16/AMX CPUs, CUDA), else fp32.

    bf16 autocast with channels_last measured 2.6x faster than fp32 for U-Net inference on
    this project's CPUs (see benchmarks/); fp32 stays available for exact comparisons.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    if torch.device(device).type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"


def autocast(
    precision: str, device: torch.device | str = "cpu"
) -> contextlib.AbstractContextManager:
    """The autocast context for a resolved precision (a no-op for fp32)."""
    device_type = torch.device(device).type
    if precision == "bf16":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def memory_format(precision: str) -> torch.memory_format:
    """channels_last pays off with oneDNN's bf16 kernels; fp32 keeps the default layout."""
    return torch.channels_last if precision == "bf16" else torch.contiguous_format


_PREPARE_LOCK = threading.Lock()


def prepare(network: nn.Module, fmt: torch.memory_format) -> None:
    """Eval mode and the weights' memory format, converted once per format and under a lock:
    converting reassigns every parameter, which must not happen while another thread (an
    HTTP worker) runs the same network."""
    with _PREPARE_LOCK:
        if network.training:
            network.eval()
        if getattr(network, "_pixelwise_memory_format", None) != fmt:
            network.to(memory_format=fmt)
            network._pixelwise_memory_format = fmt
