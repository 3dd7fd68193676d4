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

Then the same 2x images as one slide (a tiled TIFF, 7 across, a white gap around each), read
region by region (``segment_slide``, what ``pixelwise segment`` does over the pixel limit) as
it is and at ``--scale 0.5``: each image's part of the slide's labels scored as above, and the
wall time of each (the network sees a quarter of the pixels at 0.5). Last, the slide stored as a
pyramid (a second level of 2 x 2 block means, as scanners make them) at ``--scale 0.5``, which
reads that level rather than resizing the full-resolution pixels. ``--slide-only`` runs the
slide part alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

from pixelwise.checkpoint import load_model
from pixelwise.data.io import read_image, read_mask
from pixelwise.data.layouts import find_pairs
from pixelwise.data.transforms import resize_image, resize_mask
from pixelwise.inference import segment, segment_slide
from pixelwise.metrics import dsb_average_precision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nuclei_eval import otsu_watershed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", default="nuclei")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--slide-only", action="store_true", help="the slide part alone")
    args = parser.parse_args()
    seg = load_model(args.checkpoint)
    items = find_pairs(args.data / "nuclei_he" / "gbm40", "images", "instances")
    if args.slide_only:
        return slide_row(seg, items)
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
    slide_row(seg, items)


SLIDE_ACROSS, GAP = 7, 32  # the slide of slide_row: images across, white pixels between them


def slide_row(seg, items, resize: float = 2.0) -> None:
    """The images resized by ``resize`` as cells of one slide, segmented region by region as
    they are and at ``--scale 1 / resize``; each cell's labels scored against its truth."""
    images, truths = [], []
    for item in items:
        image, truth = read_image(item.image), read_mask(item.mask)
        size = (round(image.shape[0] * resize), round(image.shape[1] * resize))
        images.append(resize_image(image, size))
        truths.append(resize_mask(truth, size))
    cell = max(i.shape[0] for i in images) + GAP, max(i.shape[1] for i in images) + GAP
    down = -(-len(images) // SLIDE_ACROSS)
    slide = np.full((down * cell[0] + GAP, SLIDE_ACROSS * cell[1] + GAP, 3), 240, np.uint8)
    corners = [
        (GAP + k // SLIDE_ACROSS * cell[0], GAP + k % SLIDE_ACROSS * cell[1])
        for k in range(len(images))
    ]
    for (y, x), image in zip(corners, images):
        slide[y : y + image.shape[0], x : x + image.shape[1]] = image
    least = round(10 * resize**2)
    with tempfile.TemporaryDirectory() as tmp:
        flat, pyramid = Path(tmp) / "slide.tif", Path(tmp) / "pyramid.tif"
        stored = dict(tile=(512, 512), photometric="rgb", compression="zlib", metadata=None)
        tifffile.imwrite(flat, slide, **stored)
        with tifffile.TiffWriter(pyramid) as tif:
            tif.write(slide, **stored)
            tif.write(block_means(slide), subfiletype=1, **stored)
        for path, scale in [(flat, 1.0), (flat, 1 / resize), (pyramid, 1 / resize)]:
            model = dataclasses.replace(seg, input_scale=seg.input_scale * scale)
            start = time.perf_counter()
            count = segment_slide(model, path, Path(tmp) / "labels.tif", min_size=least)
            seconds = time.perf_counter() - start
            labels = tifffile.imread(Path(tmp) / "labels.tif")
            scores = [
                dsb_average_precision(truth, labels[y : y + truth.shape[0], x : x + truth.shape[1]])
                for (y, x), truth in zip(corners, truths)
            ]
            print(
                f"gbm40 resized by {resize:g} as one {slide.shape[1]} x {slide.shape[0]} slide, "
                f"{'a pyramid read from its half level' if path == pyramid else 'region by region'}"
                f", --scale {scale:g}: DSB mean AP "
                f"{np.mean([s['mean_ap'] for s in scores]):.4f}, {count} nuclei, {seconds:.1f} s",
                flush=True,
            )


def block_means(image: np.ndarray) -> np.ndarray:
    """Each 2 x 2 block's mean: a pyramid's next level as slide scanners make it."""
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    blocks = image[:h, :w].reshape(h // 2, 2, w // 2, 2, -1).astype(np.float32)
    return np.round(blocks.mean((1, 3))).astype(image.dtype)


if __name__ == "__main__":
    main()
