"""A cut-out cut again: photos made transparent by their hand masks, then given to remove-bg.

    python recipes/cutout_again_eval.py [CHECKPOINT] [--data DIR] [--limit N] [--zeroed]

For the first ``--limit`` test photos of each foreground source (recipes/foreground_splits.py's
``test_set``), the photo is turned into a cut-out by its mask (alpha 255 on the mask, 0
elsewhere; the colours under alpha 0 kept, as some tools keep them, or black with ``--zeroed``,
as remove-bg writes them) and cut out again by ``remove_background`` with
CHECKPOINT (default: the bundled ``foreground`` model): once from its colours alone (``alpha
ignored``, what remove-bg did before it read transparency) and once as the transparent image
(``alpha kept``). Scored: IoU of the result's alpha > 0.5 with the mask, per source and over all.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
from foreground_splits import SOURCES, test_set

from pixelwise.cutout import get_model, mask_iou_and_alpha_error, remove_background
from pixelwise.data.io import read_image, read_mask


def as_cut_out(image: np.ndarray, truth: np.ndarray, zeroed: bool = False) -> np.ndarray:
    """(H, W, 4) uint8: ``image`` with the mask as its alpha."""
    rgb = np.repeat(image, 3, -1) if image.shape[-1] == 1 else image
    rgb = np.where(truth[..., None], rgb, 0) if zeroed else rgb
    return np.dstack([rgb, np.where(truth, 255, 0)]).astype(np.uint8)


def scores(model, image: np.ndarray, truth: np.ndarray, zeroed: bool = False) -> dict[str, float]:
    rgba = as_cut_out(image, truth, zeroed)
    out = {}
    for name, given in (("alpha ignored", rgba[..., :3]), ("alpha kept", rgba)):
        alpha = np.asarray(remove_background(given, model, mask_only=True), np.float32) / 255
        out[name] = mask_iou_and_alpha_error(alpha, truth)[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", default="foreground")
    parser.add_argument("--data", default="../shared/data/foreground")
    parser.add_argument("--limit", type=int, default=6, help="photos per source")
    parser.add_argument("--zeroed", action="store_true", help="black under alpha 0")
    args = parser.parse_args()
    model, data = get_model(args.checkpoint), Path(args.data)
    every: dict[str, list[float]] = {}
    for source in SOURCES:
        by: dict[str, list[float]] = {}
        for stem in test_set(data, source)[: args.limit]:
            image = read_image(data / source / "images" / f"{stem}.jpg")
            truth = read_mask(data / source / "masks" / f"{stem}.png") > 0
            for name, value in scores(model, image, truth, args.zeroed).items():
                by.setdefault(name, []).append(value)
                every.setdefault(name, []).append(value)
        print(f"{source:<16} " + "  ".join(f"{m} {np.mean(v):.3f}" for m, v in by.items()))
    print(
        f"{'all':<16} "
        + "  ".join(
            f"{m} {np.mean(v):.3f} (median {statistics.median(v):.3f}, lowest {min(v):.3f})"
            for m, v in every.items()
        )
        + f"  ({len(next(iter(every.values())))} photos)",
        flush=True,
    )


if __name__ == "__main__":
    main()
