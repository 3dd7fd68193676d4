"""Score a background-removal model on held-out photos at full resolution: IoU of alpha > 0.5
with the mask and mean absolute alpha error, averaged over images, with and without matting.

    python recipes/foreground_eval.py CHECKPOINT VAL_DIR [--limit N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from pixelwise.cutout import get_model, mask_iou_and_alpha_error, remove_background
from pixelwise.data.datasets import find_items
from pixelwise.data.io import read_image, read_mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("val_dir")
    parser.add_argument("--limit", type=int, help="score only the first N images")
    parser.add_argument("--json", help="write the figures here as well")
    args = parser.parse_args()
    model = get_model(args.checkpoint)
    items = find_items(Path(args.val_dir))[: args.limit]
    report = {"images": len(items)}
    for matting in (False, True):
        ious, errors, seconds = [], [], []
        for item in items:
            image, truth = read_image(item.image), read_mask(item.mask) > 0
            start = time.perf_counter()
            alpha = np.asarray(remove_background(image, model, matting=matting, mask_only=True), np.float32) / 255
            seconds.append(time.perf_counter() - start)
            iou, err = mask_iou_and_alpha_error(alpha, truth)
            ious.append(iou)
            errors.append(err)
        key = "matting" if matting else "plain"
        report[key] = {"mean_iou": float(np.mean(ious)), "mean_abs_alpha_error": float(np.mean(errors)),
                       "median_seconds": statistics.median(seconds)}
        print(f"{key:<8} images {len(items)}  mean IoU {np.mean(ious):.4f}  mean |alpha error| {np.mean(errors):.4f}  "
              f"median {statistics.median(seconds):.3f} s/image", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
