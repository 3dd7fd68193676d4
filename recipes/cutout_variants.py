"""Variants of the cut-out, scored on the development photos of each held-out source.

    python recipes/cutout_variants.py RUNS [--data DIR] [--photos 20] [--json OUT]

RUNS holds the leave-one-source-out runs of docs/results.md (i) (``RUNS/loso-SOURCE/best.pt``).
For each source, its model (which never saw the source) cuts out the source's 20 development
photos (``foreground_splits.dev_set``: never trained on by any run and not among the test
photos), so a variant can be chosen here and confirmed on the test photos afterwards. Mean
per-image IoU of alpha > 0.5 at full resolution, per source and over the five.

Variants (each changes one thing of the shipped code for the duration of its call):

- automatic cut-out (no user input): the default graph cut; GrabCut; the network's probability
  averaged over a left-right flip, over the 8 flips/rotations, or over three scales; the
  network trusted less (confidence ``|2p - 1| ** gamma``, gamma 2 and 4) or weighted half;
- box prompt (the mask's bounding box + 5 %): the default; without the network; the network
  weighted half; 6 colour-model iterations instead of 3; working size 448 instead of 320;
  smoothness 10 or 40 instead of 20; colour weight 2; the colour models started from the
  network's prior instead of the box (GrabCut's way, the default); the held-out source's box model
  (``RUNS/box-SOURCE/best.pt``, ``recipes/foreground_box_unet.sh``) averaged in, or alone; both
  networks averaged over a left-right flip or over the 8 flips/rotations.

``--only TEXT`` runs the variants whose name contains TEXT.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
from pathlib import Path

import numpy as np
import torch
from foreground_splits import SOURCES, dev_set
from interactive_eval import grown_box

import pixelwise.cutout as cutout
from pixelwise.data.io import read_image, read_mask
from pixelwise.inference import predict_probs


def averaged_probability(views: str):
    """``predict_probs`` as ``foreground_probability`` calls it, averaged over ``views``: a
    left-right flip (hflip), the 8 flips/rotations (tta8) or three scales (scales)."""

    def probs(net, x, precision="auto"):
        if views == "hflip":
            return (
                predict_probs(net, x, precision) + predict_probs(net, x.flip(3), precision).flip(3)
            ) / 2
        if views == "tta8":
            return predict_probs(net, x, precision, tta=True)
        return sum(predict_probs(net, x, precision, scale=s) for s in (0.75, 1.0, 1.3)) / 3

    return probs


def trusted_less(gamma: float):
    def trusted(prob, fallback):
        confidence = np.abs(2 * prob - 1) ** gamma
        return confidence * prob + (1 - confidence) * fallback

    return trusted


GRAPH_CUT = cutout.graph_cut
# name -> (prompted with a box?, keyword arguments of remove_background, patches of pixelwise.cutout)
VARIANTS = {
    "auto: default": (False, {}, {}),
    "auto: grabcut": (False, {"method": "grabcut"}, {}),
    "auto: flip-averaged network": (
        False,
        {},
        {"predict_probs": averaged_probability("hflip")},
    ),
    "auto: 8-view network": (False, {}, {"predict_probs": averaged_probability("tta8")}),
    "auto: 3-scale network": (
        False,
        {},
        {"predict_probs": averaged_probability("scales")},
    ),
    "auto: trust gamma 2": (False, {}, {"trusted": trusted_less(2)}),
    "auto: trust gamma 4": (False, {}, {"trusted": trusted_less(4)}),
    "auto: prior weight 0.5": (
        False,
        {},
        {"graph_cut": functools.partial(GRAPH_CUT, prior_weight=0.5)},
    ),
    "box: default": (True, {}, {}),
    "box: colours from the prior": (True, {}, {"PRIOR_STARTS_COLOURS": True}),
    "box: + box model, colours from the box": (
        True,
        {"box_model": "box"},
        {"PRIOR_STARTS_COLOURS": False},
    ),
    "box: + box model, colours from the prior": (
        True,
        {"box_model": "box"},
        {"PRIOR_STARTS_COLOURS": True},
    ),
    "box: + box model, flip-averaged networks": (
        True,
        {"box_model": "box"},
        {"predict_probs": averaged_probability("hflip")},
    ),
    "box: + box model, 8-view networks": (
        True,
        {"box_model": "box"},
        {"predict_probs": averaged_probability("tta8")},
    ),
    "box: box model alone": (True, {"model": "box"}, {}),
    "box: no network": (True, {"method": "grabcut"}, {}),
    "box: prior weight 0.5": (
        True,
        {},
        {"graph_cut": functools.partial(GRAPH_CUT, prior_weight=0.5)},
    ),
    "box: 6 iterations": (True, {}, {"graph_cut": functools.partial(GRAPH_CUT, iterations=6)}),
    "box: working size 448": (True, {"model_size": 448}, {}),
    "box: smoothness 10": (True, {}, {"graph_cut": functools.partial(GRAPH_CUT, smoothness=10.0)}),
    "box: smoothness 40": (True, {}, {"graph_cut": functools.partial(GRAPH_CUT, smoothness=40.0)}),
    "box: colour weight 2": (
        True,
        {},
        {"graph_cut": functools.partial(GRAPH_CUT, colour_weight=2.0)},
    ),
}


@contextlib.contextmanager
def patched(changes: dict):
    saved = {name: getattr(cutout, name) for name in changes}
    for name, value in changes.items():
        setattr(cutout, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(cutout, name, value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/foreground"))
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--only", default="", help="the variants whose name contains this")
    parser.add_argument("--json")
    args = parser.parse_args()
    variants = {k: v for k, v in VARIANTS.items() if args.only in k}
    torch.set_num_threads(min(2, torch.get_num_threads()))
    table = {}
    for source in SOURCES:
        model = cutout.get_model(args.runs / f"loso-{source}" / "best.pt")
        box = args.runs / f"box-{source}" / "best.pt"  # "box" in a variant's options
        scores = {name: [] for name in variants}
        for stem in dev_set(args.data, source)[: args.photos]:
            image = read_image(args.data / source / "images" / f"{stem}.jpg")
            truth = read_mask(args.data / source / "masks" / f"{stem}.png") > 0
            for name, (boxed, options, changes) in variants.items():
                options = {"model": model} | {
                    k: cutout.get_model(box) if v == "box" else v for k, v in options.items()
                }
                with patched(changes):
                    alpha = cutout.remove_background(
                        image, mask_only=True, box=grown_box(truth) if boxed else None, **options
                    )
                iou, _ = cutout.mask_iou_and_alpha_error(np.asarray(alpha, np.float32) / 255, truth)
                scores[name].append(iou)
        table[source] = {name: float(np.mean(v)) for name, v in scores.items()}
        print(source, flush=True)
    print(f"{'variant':<30}" + "".join(f"{s[:12]:>14}" for s in SOURCES) + f"{'mean':>10}")
    for name in variants:
        row = [table[s][name] for s in SOURCES]
        print(f"{name:<30}" + "".join(f"{v:>14.3f}" for v in row) + f"{np.mean(row):>10.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
