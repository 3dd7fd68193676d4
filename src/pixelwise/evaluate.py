"""Scoring a saved checkpoint on a labelled dataset (``pixelwise evaluate``)."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import DataLoader

from pixelwise.checkpoint import load_model
from pixelwise.data.datasets import SegmentationDataset, evaluation_items, parse_stems
from pixelwise.inference import resolve_precision
from pixelwise.train import evaluate


def evaluate_checkpoint(checkpoint: str | Path, data: str | Path, val_stems: str | None = None,
                        precision: str = "auto", tta: bool = False) -> dict:
    """Confusion-matrix metrics of ``checkpoint`` over the selected pairs of ``data``, with
    ``split`` (what was scored) and ``images`` (how many) added."""
    seg = load_model(checkpoint)
    items, split = evaluation_items(Path(data), parse_stems(val_stems))
    ds = SegmentationDataset(items, seg.num_classes, seg.encoding, seg.norm, channels=seg.in_channels)
    cm, _ = evaluate(seg.network, DataLoader(ds, batch_size=1), seg.num_classes, "cpu", resolve_precision(precision),
                     tta=tta, scale=seg.input_scale)
    return {"split": split, "images": len(items), "checkpoint": str(checkpoint), "tta": tta} | cm.summary(seg.class_names)
