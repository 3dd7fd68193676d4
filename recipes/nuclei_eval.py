"""Score a nuclei model per image type, next to Otsu + watershed on the same images.

    python recipes/nuclei_eval.py CHECKPOINT [--data ../shared/data] [--tta] [--json OUT]
        [--exposure F] [--as-12-bit]

Sets: the 66 DSB2018 validation ids (recipes/dsb2018_val_ids.txt), split by image type from
colour statistics (stained tissue: mean |channel - grey| > 0.02; otherwise fluorescence when
the mean intensity is below 0.5, else brightfield), and the H&E sets of nuclei_he (gbm40 is
never trained on; cpm15 is in the bundled model's training data). Figures: DSB2018 mean AP
(IoU 0.5:0.05:0.95, averaged over images) and AP@0.5. The baseline thresholds the grey image
with Otsu (the polarity that makes nuclei the minority), fills holes and splits touching nuclei
by a distance-transform watershed. ``--tta`` averages the model's class probabilities over the
8 flips/rotations of each image.

Intensity shifts, applied to every image before both methods see it (a model normalised by
percentiles, ``train --normalize-percentiles``, should not notice them): ``--exposure F``
multiplies the values by F (an under- or over-exposed camera; clipped to the file's range), and
``--as-12-bit`` stores each 8-bit image as a 12-bit camera's 16-bit file would hold it (values
x 16, uint16), as in ``--input-range``'s example.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pixelwise.checkpoint import load_model
from pixelwise.data.io import read_image, read_mask
from pixelwise.data.layouts import find_pairs
from pixelwise.inference import segment
from pixelwise.instances import semantic_to_instances
from pixelwise.metrics import dsb_average_precision, mean_interval
from pixelwise.report import thresholds_line

HERE = Path(__file__).resolve().parent


def image_type(image: np.ndarray) -> str:
    x = image.astype(np.float32) / (65535.0 if image.dtype == np.uint16 else 255.0)
    if x.shape[-1] == 3 and float(np.abs(x - x.mean(-1, keepdims=True)).mean()) > 0.02:
        return "stained tissue"
    return "fluorescence" if x.mean() < 0.5 else "brightfield"


def otsu_watershed(image: np.ndarray, min_size: int = 10) -> np.ndarray:
    from skimage.filters import threshold_otsu

    grey = image.astype(np.float32).mean(-1)
    fg = grey > threshold_otsu(grey)
    if fg.mean() > 0.5:
        fg = ~fg
    return semantic_to_instances(
        fg.astype(np.uint8), "watershed", interior_class=1, min_size=min_size
    )


def sets(data: Path) -> dict[str, list]:
    dsb = {p.name: p for p in find_pairs(data / "dsb2018" / "train", "images", "instances")}
    out: dict[str, list] = {}
    for stem in (HERE / "dsb2018_val_ids.txt").read_text().split():
        item = dsb[stem]
        out.setdefault(f"dsb2018 val: {image_type(read_image(item.image))}", []).append(item)
    for name in ("gbm40", "cpm15"):
        out[f"nuclei_he/{name}"] = find_pairs(data / "nuclei_he" / name, "images", "instances")
    return out


def parse_args(doc: str) -> argparse.Namespace:
    """The options of the nuclei recipes: CHECKPOINT [--data] [--min-size] [--tta] [--json]."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--min-size", type=int, default=10)
    parser.add_argument("--tta", action="store_true", help="average over the 8 flips/rotations")
    parser.add_argument("--json")
    parser.add_argument("--exposure", type=float, default=1.0, help="multiply values by F")
    parser.add_argument("--as-12-bit", action="store_true", help="8-bit values x 16 as uint16")
    return parser.parse_args()


def shifted(image: np.ndarray, exposure: float = 1.0, as_12_bit: bool = False) -> np.ndarray:
    """``image`` under the intensity shifts of the module docstring."""
    if exposure != 1.0:
        top = np.iinfo(image.dtype).max
        image = np.clip(np.rint(image * np.float64(exposure)), 0, top).astype(image.dtype)
    if as_12_bit:
        if image.dtype != np.uint8:
            raise ValueError(f"--as-12-bit takes 8-bit images, got {image.dtype}")
        image = image.astype(np.uint16) * 16
    return image


def main() -> None:
    args = parse_args(__doc__)
    seg = load_model(args.checkpoint)
    print(f"{args.checkpoint}: {thresholds_line(seg.metadata())}")
    report, all_dsb = {}, {"model": [], "otsu": []}
    for name, items in sets(Path(args.data)).items():
        scores = {"model": [], "otsu": []}
        for item in items:
            image, truth = read_image(item.image), read_mask(item.mask)
            image = shifted(image, args.exposure, args.as_12_bit)
            for method, labels in (
                ("model", segment(seg, image, min_size=args.min_size, tta=args.tta)),
                ("otsu", otsu_watershed(image, args.min_size)),
            ):
                scores[method].append(dsb_average_precision(truth, labels))
        if name.startswith("dsb2018"):
            for m in scores:
                all_dsb[m] += scores[m]
        report[name] = summary(scores)
        print_row(name, len(items), report[name])
    report["dsb2018 val: all"] = summary(all_dsb)
    print_row("dsb2018 val: all", len(all_dsb["model"]), report["dsb2018 val: all"])
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


def summary(scores: dict) -> dict:
    """Each method's DSB mean AP (with its 95 % bootstrap interval over the images, from 5
    images on) and AP@0.5."""
    return {
        m: {
            "dsb_mean_ap": float(np.mean([s["mean_ap"] for s in v])),
            "dsb_mean_ap_interval": mean_interval([s["mean_ap"] for s in v]),
            "ap50": float(np.mean([s["ap"][0.5] for s in v])),
        }
        for m, v in scores.items()
    }


def interval_text(s: dict) -> str:
    """ " [LO-HI]": a method's 95 % interval, where there is one."""
    bounds = s["dsb_mean_ap_interval"]
    return "" if bounds is None else f" [{bounds[0]:.3f}-{bounds[1]:.3f}]"


def print_row(name: str, n: int, s: dict) -> None:
    print(
        f"{name:<30} images {n:>3}  model DSB mean AP {s['model']['dsb_mean_ap']:.4f}"
        f"{interval_text(s['model'])} (AP@0.5 {s['model']['ap50']:.4f})   Otsu+watershed "
        f"{s['otsu']['dsb_mean_ap']:.4f}{interval_text(s['otsu'])} ({s['otsu']['ap50']:.4f})",
        flush=True,
    )


if __name__ == "__main__":
    main()
