"""``pixelwise inspect``: what a dataset holds as ``train`` would read it, before training on
it: where the training and validation images come from, their sizes, the classes with each
one's share of the pixels per split, and what is likely to go wrong (a class no validation
image shows, images smaller than the crop)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pixelwise.config import TrainConfig
from pixelwise.constants import IGNORE_INDEX, first_ten
from pixelwise.data.coco import oriented_size
from pixelwise.data.encoding import MaskEncoding
from pixelwise.semantic import read_data, validation_source


def dataset_report(cfg: TrainConfig, progress: bool = True) -> dict:
    """The report of ``cfg.data`` read with ``cfg``'s data options: splits, sizes, classes and
    pixel counts (every mask is read once), warnings."""
    _, train, val, names, encoding = read_data(cfg)
    values = encoding.values
    splits = {"train": train, "val": val}
    counts = {
        split: pixel_counts(items, encoding, len(names), progress)
        for split, items in splits.items()
    }
    sizes = [oriented_size(item.image) for item in train + val]
    report = {
        "data": str(Path(cfg.data)),
        "validation": validation_source(cfg, where=True),
        "images": {split: len(items) for split, items in splits.items()},
        "sizes": {
            "min": [int(v) for v in np.min(sizes, 0)],
            "max": [int(v) for v in np.max(sizes, 0)],
        },
        "classes": [
            {
                "name": name,
                "stored_value": None if values is None else values[k],
                **{split: int(counts[split][k]) for split in splits},
            }
            for k, name in enumerate(names)
        ],  # fmt: skip
        "ignored": {split: int(counts[split][-1]) for split in splits},
    }
    return report | {"warnings": warnings(report, cfg)}


def pixel_counts(
    items: list, encoding: MaskEncoding, num_classes: int, progress: bool
) -> np.ndarray:
    """Pixels of each class over ``items``, the ignored ones last."""
    from tqdm import tqdm

    total = np.zeros(num_classes + 1, np.int64)
    for item in tqdm(items, desc="masks", unit="mask", disable=not progress or not items):
        target = encoding.apply(
            item.read_mask(encoding.instances is not None), num_classes, item.mask
        )
        target = np.where(target == IGNORE_INDEX, num_classes, target)
        total += np.bincount(target.ravel(), minlength=num_classes + 1)
    return total


def warnings(report: dict, cfg: TrainConfig) -> list[str]:
    """What would make training or its validation figures mislead."""
    found = []
    untrained = [c["name"] for c in report["classes"] if not c["train"]]
    unscored = [c["name"] for c in report["classes"] if c["train"] and not c["val"]]
    if untrained:
        found.append(f"no pixel in the training images: {first_ten(untrained, 'classes')}")
    if unscored and report["images"]["val"]:
        found.append(
            f"no pixel in the validation images (IoU not measured): {first_ten(unscored, 'classes')}"
        )
    if report["images"]["val"] < 2:
        found.append(
            f"{report['images']['val']} validation image(s): the figures that pick best.pt rest on it"
        )
    if cfg.crop and max(report["sizes"]["max"]) * cfg.scale < cfg.crop:
        found.append(f"every image is smaller than --crop {cfg.crop}: train with --crop 0 or less")
    ignored = sum(report["ignored"].values())
    total = ignored + sum(c["train"] + c["val"] for c in report["classes"])
    if total and ignored / total > MOSTLY_IGNORED:
        found.append(f"{ignored / total:.0%} of the pixels are ignored")
    return found


MOSTLY_IGNORED = 0.5


def format_report(report: dict) -> str:
    """The report as text: one line per split, a table of the classes, the warnings."""
    (h0, w0), (h1, w1) = report["sizes"]["min"], report["sizes"]["max"]
    sizes = f"{w0} x {h0}" if (h0, w0) == (h1, w1) else f"{w0} x {h0} to {w1} x {h1}"
    lines = [
        f"{report['data']}: {report['images']['train']} training and {report['images']['val']} "
        f"validation images (validation: {report['validation']}); sizes {sizes} (width x height)",
        f"{'id':>3}  {'class':<20} {'value':>10} {'train pixels':>14} {'val pixels':>12}",
    ]
    totals = {
        s: sum(c[s] for c in report["classes"]) + report["ignored"][s] for s in ("train", "val")
    }

    def share(n: int, split: str) -> str:
        return f"{n / totals[split]:.2%}" if totals[split] else "-"

    for k, c in enumerate(report["classes"]):
        value = str(k if c["stored_value"] is None else c["stored_value"])
        lines.append(
            f"{k:>3}  {c['name'][:20]:<20} {value:>10} {share(c['train'], 'train'):>14} {share(c['val'], 'val'):>12}"
        )
    ignored = report["ignored"]
    lines.append(
        f"{'':>3}  {'(ignored)':<20} {'':>10} {share(ignored['train'], 'train'):>14} {share(ignored['val'], 'val'):>12}"
    )
    lines += [f"warning: {w}" for w in report["warnings"]]
    return "\n".join(lines)
