"""Training data at two magnifications: the bundled ``nuclei`` model fine-tuned on H&E tiles of
which half are enlarged 2x (as from a scanner of twice the magnification), as they are and with
``train --at-pixel-size``, then scored on the held-out gbm40 slides at their own size and
enlarged 2x.

    python recipes/nuclei_pixel_size.py [--data ../shared/data] [--out runs/pixel-size] [--seed 0]

nuclei_he/cpm15 (15 tiles the bundled model trained on) written as TIFFs that record their
pixel size: even tiles as they are at a nominal 0.25 µm a pixel, odd ones enlarged 2x (labels
nearest) at 0.125 µm. Two fine-tunings from ``nuclei`` with the same seed and budget
(``pixelwise train --weights nuclei``, 3 tiles validate): "mixed", the tiles as they are (the
network sees nuclei at two sizes), and "at 0.25 µm" (``--at-pixel-size 0.25``: the enlarged
tiles shrunk back). Both are scored with ``evaluate`` (DSB2018 mean AP) on the 39 gbm40 tiles
(never trained on) recorded at 0.25 µm, and on the same tiles enlarged 2x recorded at 0.125 µm:
"mixed" as the images are, "at 0.25 µm" with ``--scale auto`` (which resizes the enlarged ones
back), beside the bundled model as it is. The pixel sizes are nominal: the sets record none;
what matters is that they are consistent within the run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import tifffile

from pixelwise.data.io import read_image, read_mask
from pixelwise.data.layouts import find_pairs
from pixelwise.data.transforms import resize_image, resize_mask
from pixelwise.evaluate import evaluate_checkpoint

NATIVE = 0.25  # µm a pixel, nominal


def write_set(items, folder: Path, enlarge) -> None:
    """``items`` as calibrated TIFF images and PNG instance labels under ``folder``; item ``k``
    enlarged 2x where ``enlarge(k)``."""
    from PIL import Image

    for sub in ("images", "instances"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for k, item in enumerate(items):
        image, labels = read_image(item.image), read_mask(item.mask)
        size = NATIVE
        if enlarge(k):
            shape = (2 * image.shape[0], 2 * image.shape[1])
            image, labels, size = resize_image(image, shape), resize_mask(labels, shape), NATIVE / 2
        per_cm = {"resolution": (1e4 / size, 1e4 / size), "resolutionunit": "CENTIMETER"}
        tifffile.imwrite(folder / "images" / f"{item.name}.tif", image, photometric="rgb", **per_cm)
        Image.fromarray(labels.astype(np.uint16)).save(folder / "instances" / f"{item.name}.png")


def score(model, data: Path, scale: str) -> float:
    found = evaluate_checkpoint(model, data, precision="auto", scale=scale)
    return found["objects"]["dsb_mean_ap"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("runs/pixel-size"))
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train = find_pairs(args.data / "nuclei_he" / "cpm15", "images", "instances")
    test = find_pairs(args.data / "nuclei_he" / "gbm40", "images", "instances")
    write_set(train, args.out / "cpm15", lambda k: k % 2 == 1)
    write_set(test, args.out / "gbm40", lambda k: False)
    write_set(test, args.out / "gbm40-2x", lambda k: True)
    val = ",".join(item.name for item in train[:3])
    models = {}
    for name, extra in (("mixed", []), ("at 0.25 µm", ["--at-pixel-size", str(NATIVE)])):
        out = args.out / ("at" if extra else "mixed")
        command = ["train", str(args.out / "cpm15"), "--out", str(out), "--weights", "nuclei"]
        command += ["--instances", "boundary", "--loss", "weighted-ce", "--appearance"]
        command += ["microscopy", "--epochs", str(args.epochs), "--epoch-size", "96"]
        command += ["--batch-size", "8", "--crop", "256", "--lr", "5e-4", "--val-stems", val]
        command += ["--seed", str(args.seed), "--no-progress", "--no-calibrate", *extra]
        subprocess.run([sys.executable, "-m", "pixelwise", *command], check=True)
        models[name] = (out / "best.pt", "auto" if extra else 1.0)
    rows = {"bundled nuclei (before)": ("nuclei", 1.0)} | models
    table = {}
    for name, (model, scale) in rows.items():
        table[name] = {s: score(model, args.out / s, scale) for s in ("gbm40", "gbm40-2x")}
        shown = ", ".join(f"{s} {v:.4f}" for s, v in table[name].items())
        print(f"{name} (--scale {scale}): DSB mean AP {shown}", flush=True)
    (args.out / "table.json").write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
