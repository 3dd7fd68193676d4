"""Checkpoints that carry everything needed to rebuild a model, and the loaded form.

A checkpoint is a plain dict saved with ``torch.save`` and read back with
``weights_only=True`` (no pickled code is executed)::

    {"format": "pixelwise", "version": 1, "arch": "unet", "arch_kwargs": {...},
     "class_names": [...], "colours": [[r, g, b], ...], "normalization": {...},
     "mask_encoding": {...}, "input_scale": 1.0, "state_dict": {...}, "train_state": {...} | None}
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pixelwise.data.datasets import MaskEncoding, Normalization
from pixelwise.data.io import atomic_write_bytes
from pixelwise.models import create_model

FORMAT = "pixelwise"


def default_colours(num_classes: int) -> list[list[int]]:
    """Distinct display colours: black for class 0, then a fixed qualitative cycle."""
    base = [
        (0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
        (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128),
    ]
    return [list(base[i % len(base)]) for i in range(num_classes)]


@dataclass
class Segmenter:
    """A network plus what it needs to be used: classes, colours, input normalisation."""

    network: nn.Module
    arch: str
    arch_kwargs: dict
    class_names: list[str]
    norm: Normalization
    colours: list[list[int]] = field(default_factory=list)
    encoding: MaskEncoding = field(default_factory=MaskEncoding)
    input_scale: float = 1.0  # images are resized by this factor before the network sees them

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        return int(self.arch_kwargs.get("in_channels", 3))

    def palette(self) -> np.ndarray:
        """(256, 3) uint8 colour table indexed by class id (255 = ignore shown white)."""
        table = np.zeros((256, 3), dtype=np.uint8)
        colours = self.colours or default_colours(self.num_classes)
        table[: len(colours)] = np.asarray(colours, dtype=np.uint8)
        table[255] = 255
        return table


def checkpoint_dict(seg: Segmenter, train_state: dict | None = None) -> dict:
    return {
        "format": FORMAT,
        "version": 1,
        "arch": seg.arch,
        "arch_kwargs": dict(seg.arch_kwargs),
        "class_names": list(seg.class_names),
        "colours": [list(map(int, c)) for c in seg.colours],
        "normalization": seg.norm.to_dict(),
        "mask_encoding": seg.encoding.to_dict(),
        "input_scale": seg.input_scale,
        "state_dict": {k: v.detach().cpu() for k, v in seg.network.state_dict().items()},
        "train_state": train_state,
    }


def save_checkpoint(path: str | Path, seg: Segmenter, train_state: dict | None = None) -> None:
    """Write a checkpoint atomically."""
    buf = io.BytesIO()
    torch.save(checkpoint_dict(seg, train_state), buf)
    atomic_write_bytes(path, buf.getvalue())


BUNDLED_DIR = Path(__file__).parent / "zoo"
BUNDLED = {"nuclei": "nuclei.pt", "foreground": "foreground.pt"}  # models trained by this project and shipped in the package (model cards beside them)


def resolve_checkpoint(name_or_path: str | Path) -> Path:
    """A checkpoint file path, or the installed file of a bundled model name (``nuclei``)."""
    path = Path(name_or_path)
    if not path.exists() and str(name_or_path) in BUNDLED:
        path = BUNDLED_DIR / BUNDLED[str(name_or_path)]
        if not path.is_file():
            raise ValueError(f"{path}: bundled model {name_or_path!r} is missing from this installation")
    return path


def read_checkpoint(path: str | Path) -> dict:
    path = resolve_checkpoint(path)
    if not path.is_file():
        raise ValueError(f"{path}: checkpoint not found (a .pt file or a bundled model: {', '.join(BUNDLED)})")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path}: not a pixelwise checkpoint")
    return ckpt


def segmenter_from_checkpoint(ckpt: dict) -> Segmenter:
    """The Segmenter a checkpoint dict describes (an untrained network when ``state_dict`` is None)."""
    network = create_model(ckpt["arch"], **ckpt["arch_kwargs"])
    if ckpt.get("state_dict") is not None:
        network.load_state_dict(ckpt["state_dict"])
    network.eval()
    return Segmenter(
        network=network,
        arch=ckpt["arch"],
        arch_kwargs=ckpt["arch_kwargs"],
        class_names=ckpt["class_names"],
        norm=Normalization(**ckpt["normalization"]),
        colours=ckpt.get("colours") or default_colours(len(ckpt["class_names"])),
        encoding=MaskEncoding.from_dict(ckpt.get("mask_encoding", {})),
        input_scale=float(ckpt.get("input_scale", 1.0)),
    )


def load_model(path: str | Path, runtime: str = "torch") -> Segmenter:
    """Rebuild a trained model from a checkpoint file or a bundled model name (in eval mode,
    on CPU). ``runtime="onnx"`` runs it on ONNX Runtime; ``.onnx`` files always do."""
    if runtime not in ("torch", "onnx"):
        raise ValueError(f"unknown runtime {runtime!r}; choose torch or onnx")
    if str(path).endswith(".onnx"):
        from pixelwise.export import load_onnx

        return load_onnx(path)
    seg = segmenter_from_checkpoint(read_checkpoint(path))
    if runtime == "onnx":
        from pixelwise.export import to_onnx_runtime

        return to_onnx_runtime(seg)
    return seg
