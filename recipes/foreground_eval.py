"""Score background removal on held-out photos at full resolution, per source and per method:
mean per-image IoU of alpha > 0.5 with the mask, mean absolute alpha error, median seconds.

    python recipes/foreground_eval.py CHECKPOINT LIST [--data DIR] [--methods model,graphcut,grabcut]
        [--box-model BOX] [--grey]

LIST: a file of ``source/stem`` lines (recipes/foreground_splits.py writes one per held-out
source) or a folder with images/ + masks/. Every method runs on the same photos, so the
columns compare directly; ``grabcut`` needs no checkpoint. ``--box-model``: a box model (see
recipes/foreground_box_unet.sh) that refines the graph cut inside the box of its first cut
(``remove_background(..., box_model=BOX)``; the bundled pair does this by default).
``--grey``: the same photos as black-and-white ones (luma, ITU-R 601), as a user with old or
monochrome photos would give them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from pixelwise.cutout import get_model, mask_iou_and_alpha_error, remove_background
from pixelwise.data.io import read_image, read_mask
from pixelwise.data.layouts import find_items
from pixelwise.metrics import boundary_f1, mean_interval


def photos(listing: Path, data: Path) -> list[tuple[str, Path, Path]]:
    """(source, image, mask) triples of a ``source/stem`` list or an images/ + masks/ folder."""
    if listing.is_dir():
        return [(listing.name, item.image, item.mask) for item in find_items(listing)]
    out = []
    for line in listing.read_text().split("\n"):
        if line.strip():
            source, stem = line.strip().split("/", 1)
            out.append(
                (
                    source,
                    data / source / "images" / f"{stem}.jpg",
                    data / source / "masks" / f"{stem}.png",
                )
            )
    return out


def grey(image: np.ndarray) -> np.ndarray:
    """A colour photo as a black-and-white one (ITU-R 601 luma), kept as 3 equal channels."""
    if image.shape[-1] == 1:
        return np.repeat(image, 3, axis=-1)
    luma = np.asarray(Image.fromarray(image[..., :3]).convert("L"))
    return np.repeat(luma[..., None], 3, axis=-1)


def score(
    model, triples, methods: list[str], matting: bool = False, box_model=None, as_grey=False
) -> dict:
    """{method: {source: {"iou": [...], "boundary_f1": [...], "error": [...], "seconds": [...]}}}"""
    table: dict = {m: defaultdict(lambda: defaultdict(list)) for m in methods}
    for source, image_path, mask_path in triples:
        image, truth = read_image(image_path), read_mask(mask_path) > 0
        image = grey(image) if as_grey else image
        for method in methods:
            start = time.perf_counter()
            alpha = remove_background(
                image, model, method=method, matting=matting, mask_only=True, box_model=box_model
            )
            seconds = time.perf_counter() - start
            iou, err = mask_iou_and_alpha_error(np.asarray(alpha, np.float32) / 255, truth)
            cell = table[method][source]
            cell["iou"].append(iou)
            cell["boundary_f1"].append(outline_f1(alpha, truth))
            cell["error"].append(err)
            cell["seconds"].append(seconds)
            cell["stem"].append(image_path.stem)
    return table


def outline_f1(alpha, truth: np.ndarray) -> float:
    """Boundary F1 of the cut-out's outline (alpha > 127) against the mask's (0.75 % of the
    diagonal, :func:`pixelwise.metrics.boundary_f1`); 0 for an empty cut-out."""
    pred = np.asarray(alpha) > 127
    return float(boundary_f1(truth.astype(np.int64), pred.astype(np.int64), 2)[1])


def summarise(table: dict) -> dict:
    return {
        m: {
            s: {
                "images": len(c["iou"]),
                "mean_iou": float(np.mean(c["iou"])),
                "mean_iou_interval": mean_interval(c["iou"]),
                "mean_boundary_f1": float(np.mean(c["boundary_f1"])),
                "mean_abs_alpha_error": float(np.mean(c["error"])),
                "median_seconds": statistics.median(c["seconds"]),
                "per_image_iou": dict(zip(c["stem"], c["iou"])),
            }
            for s, c in by_source.items()
        }
        for m, by_source in table.items()
    }


def against_grabcut(summary: dict, baseline: str = "grabcut") -> list[str]:
    """Each method against GrabCut (``baseline``) on the same photos of each source: the mean of
    the per-photo IoU differences with its 95 % bootstrap interval (whether "at or above
    GrabCut" would hold on other photos of that source)."""
    lines = []
    for method, by_source in summary.items():
        for source, s in by_source.items():
            theirs = summary.get(baseline, {}).get(source, {}).get("per_image_iou", {})
            diffs = [v - theirs[stem] for stem, v in s["per_image_iou"].items() if stem in theirs]
            interval = mean_interval(diffs) if method != baseline else None
            if interval is not None:
                lines.append(
                    f"{method:<9} {source:<16} - {baseline}: {np.mean(diffs):+.4f} per photo, 95 % "
                    f"interval {interval[0]:+.4f} to {interval[1]:+.4f} ({len(diffs)} photos)"
                )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a checkpoint, a bundled name, or 'none' (grabcut only)")
    parser.add_argument("list")
    parser.add_argument("--data", default="../shared/data/foreground")
    parser.add_argument("--methods", default="model,graphcut,grabcut")
    parser.add_argument("--matting", action="store_true")
    parser.add_argument("--box-model", help="a box model that refines the graph cut")
    parser.add_argument("--limit", type=int, help="score only the first N photos")
    parser.add_argument("--json", help="write the figures (with per-image IoU) here")
    parser.add_argument("--grey", action="store_true", help="score black-and-white versions")
    args = parser.parse_args()
    methods = args.methods.split(",")
    model = get_model(args.checkpoint) if args.checkpoint != "none" else None
    triples = photos(Path(args.list), Path(args.data))[: args.limit]
    box_model = get_model(args.box_model) if args.box_model else None
    summary = summarise(score(model, triples, methods, args.matting, box_model, args.grey))
    for method, by_source in summary.items():
        for source, s in by_source.items():
            print(
                f"{method:<9} {source:<16} images {s['images']:>4}  mean IoU {s['mean_iou']:.4f}"
                f"{interval_text(s['mean_iou_interval'])}  BF {s['mean_boundary_f1']:.4f}  "
                f"|alpha error| {s['mean_abs_alpha_error']:.4f}  median {s['median_seconds']:.3f} s/photo",
                flush=True,
            )
    for line in against_grabcut(summary):
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))


def interval_text(bounds: list[float] | None) -> str:
    """ " [LO-HI]", a 95 % interval, where there is one."""
    return "" if bounds is None else f" [{bounds[0]:.3f}-{bounds[1]:.3f}]"


if __name__ == "__main__":
    main()
