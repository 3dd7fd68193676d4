"""Nuclei at another magnification: the held-out H&E slides resized, segmented as they are and
with ``segment --scale`` undoing the resize.

    python recipes/nuclei_magnification.py [CHECKPOINT] [--data ../shared/data]

nuclei_he/gbm40 (39 images the bundled ``nuclei`` model never trained on) resized by 2 (as if
scanned at twice the magnification: nuclei twice as large; bilinear, labels nearest) and by 0.5
(half the magnification), each segmented by the model as it is (``--scale 1``) and with
``--scale`` the inverse of the resize (the network sees the nuclei at their original size; the
objects come back at the resized image's resolution). DSB2018 mean AP per image against the
resized labels, beside the images at their own size and Otsu + distance-transform watershed
(``recipes/nuclei_eval.py``'s baseline) on the same resized images.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

from pixelwise.checkpoint import load_model
from pixelwise.data.io import read_image, read_mask
from pixelwise.data.layouts import find_pairs
from pixelwise.data.transforms import resize_image, resize_mask
from pixelwise.inference import segment
from pixelwise.metrics import dsb_average_precision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nuclei_eval import otsu_watershed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", default="nuclei")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    seg = load_model(args.checkpoint)
    items = find_pairs(args.data / "nuclei_he" / "gbm40", "images", "instances")
    rows = {"own size": (1.0, [1.0])}
    rows |= {f"resized by {m:g}": (m, [1.0, 1 / m]) for m in (2.0, 0.5)}
    for name, (resize, scales) in rows.items():
        scores, otsu = {s: [] for s in scales}, []
        for item in items:
            image, truth = read_image(item.image), read_mask(item.mask)
            if resize != 1.0:
                size = (round(image.shape[0] * resize), round(image.shape[1] * resize))
                image, truth = resize_image(image, size), resize_mask(truth, size)
            least = round(10 * resize**2)
            for scale in scales:
                model = dataclasses.replace(seg, input_scale=seg.input_scale * scale)
                labels = segment(model, image, min_size=least)
                scores[scale].append(dsb_average_precision(truth, labels)["mean_ap"])
            otsu.append(dsb_average_precision(truth, otsu_watershed(image, least))["mean_ap"])
        shown = ", ".join(f"--scale {s:g}: {np.mean(v):.4f}" for s, v in scores.items())
        print(
            f"gbm40 {name} ({len(items)} images): DSB mean AP {shown}; Otsu + watershed "
            f"{np.mean(otsu):.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
