"""Reading a local weights file: pretrained weights are never downloaded."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch


def read_weights(path: str | Path):
    """What a local weights file holds (loaded with ``weights_only=True``: tensors and plain
    data, never code); ValueError naming the file when it is missing or no PyTorch file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"{path}: weights file not found (pretrained weights are never downloaded; give a local path)"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: cannot read as PyTorch weights ({first})") from None
