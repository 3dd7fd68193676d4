"""Numeric precision and memory layout of a network's forward pass (torch fp32 or bf16 autocast)."""

from __future__ import annotations

import contextlib
import threading

import torch
from torch import nn

from pixelwise.constants import PRECISIONS

# what "auto" becomes; fp32-cl is fp32 in channels_last layout
RESOLVED = ("fp32", "fp32-cl", "bf16")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS and precision not in RESOLVED:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return precision


def autocast(
    precision: str, device: torch.device | str = "cpu"
) -> contextlib.AbstractContextManager:
    """The autocast context for a resolved precision (a no-op for fp32)."""
    device_type = torch.device(device).type
    if precision == "bf16":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def memory_format(precision: str) -> torch.memory_format:
    """channels_last for bf16 (oneDNN's bf16 kernels want it) and fp32-cl; else the default layout."""
    return torch.channels_last if precision in ("bf16", "fp32-cl") else torch.contiguous_format


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
