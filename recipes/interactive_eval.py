"""Box-prompted and stroke-corrected cut-outs on photos with known masks.

    python recipes/interactive_eval.py CHECKPOINT LIST [--box-model BOX] [--data DIR] [--json OUT]
        [--limit N] [--strokes K] [--grey] [--without-box]

For each photo the box is the mask's bounding box grown by 5 % of its size on every side (as
interactive-segmentation benchmarks do). Scored, IoU of alpha > 0.5 with the mask at full
resolution, on the same photos:

- ``opencv-grabcut``: OpenCV's GrabCut from the box (5 iterations, full resolution);
- ``box``: ``remove_background(photo, model, box=box, box_model=BOX)``: graph cut with the
  network's probability (averaged with the box model's, when one is given) as data term inside
  the box;
- ``box, no network``: the same graph cut with colour models only (``method="grabcut"``);
- ``box + 1 stroke``: the ``box`` result corrected by one stroke (radius 1 % of the longer side)
  at the centre of its largest error region (the photo's border counting as the region's edge):
  a keep stroke where foreground was missed, an erase stroke where background was kept, as a
  user would draw it;
- ``box + K strokes`` (``--strokes K``): then a second stroke at the largest error region of
  that result, and so on, the strokes accumulating (a user correcting what is still wrong);
  with ``--strokes-without-network`` the same for the ``box, no network`` result.

With ``--without-box`` no box is drawn (a user who only paints): ``automatic`` is the cut-out
without input (``remove_background(photo, model, box_model=BOX)``) and ``automatic + K strokes``
that result corrected stroke by stroke the same way, without a box.

Then each method against ``opencv-grabcut`` per source, as recipes/foreground_eval.py sets its
methods against GrabCut: the mean per-photo IoU difference and its 95 % bootstrap interval;
``--json`` keeps every photo's IoU too (``per_image_iou``, by method).

LIST as for recipes/foreground_eval.py (``source/stem`` lines or an images/ + masks/ folder);
``--grey`` as there (the photos as black-and-white ones).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from foreground_eval import against_grabcut, grey, photos
from scipy import ndimage

from pixelwise.classical import graphcut
from pixelwise.cutout import get_model, mask_iou_and_alpha_error, remove_background
from pixelwise.data.io import read_image, read_mask


def grown_box(truth: np.ndarray, margin: float = 0.05) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(truth)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    dx, dy = margin * (x1 - x0), margin * (y1 - y0)
    h, w = truth.shape
    return max(0, x0 - dx), max(0, y0 - dy), min(w, x1 + dx), min(h, y1 + dy)


def opencv_grabcut(image: np.ndarray, box) -> np.ndarray:
    """OpenCV GrabCut from the box, 5 iterations (``classical.graphcut``, seeded)."""
    import cv2

    x0, y0, x1, y1 = (int(round(v)) for v in box)
    try:
        rect = (x0, y0, max(1, x1 - x0), max(1, y1 - y0))
        return graphcut(image, box=rect, iterations=5).astype(np.float32)
    except (ValueError, cv2.error):  # a box covering the whole photo: no background sample
        return np.pad(
            np.ones((y1 - y0, x1 - x0), np.float32),
            ((y0, image.shape[0] - y1), (x0, image.shape[1] - x1)),
        )


def corrective_stroke(alpha: np.ndarray, truth: np.ndarray) -> tuple[str, dict]:
    """A stroke at the centre of the largest error region: its pixel farthest from the region's
    edge, the photo's border counting as an edge (a user strokes inside a missed region, not on
    the photo's border; interactive benchmarks such as RITM's place their clicks so)."""
    errors = (alpha > 0.5) != truth
    labels, n = ndimage.label(errors)
    if n == 0:
        return "foreground_strokes", {"points": [], "radius": 1}
    largest = labels == (np.bincount(labels.ravel())[1:].argmax() + 1)
    inside = ndimage.distance_transform_edt(np.pad(largest, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(inside.argmax(), largest.shape)
    kind = "foreground_strokes" if truth[y, x] else "background_strokes"
    return kind, {"points": [[float(x), float(y)]], "radius": max(2.0, 0.01 * max(truth.shape))}


def iou_of(alpha, truth: np.ndarray) -> float:
    return mask_iou_and_alpha_error(
        np.asarray(alpha, np.float32) / (255 if np.max(alpha) > 1 else 1), truth
    )[0]


def corrected(image, truth, result: np.ndarray, strokes: int, **cut) -> list[float]:
    """IoU after each of ``strokes`` corrective strokes, each drawn at the largest error of the
    result so far and kept (``remove_background(image, **cut)`` with all strokes so far)."""
    drawn: dict[str, list] = {"foreground_strokes": [], "background_strokes": []}
    scores = []
    for _ in range(strokes):
        kind, stroke = corrective_stroke(result, truth)
        if stroke["points"]:
            drawn[kind].append(stroke)
            result = np.asarray(remove_background(image, **cut, **drawn), np.float32) / 255
        scores.append(iou_of(result, truth))
    return scores


def score_photo(
    model, image: np.ndarray, truth: np.ndarray, box_model=None, strokes: int = 1, both=False
) -> dict[str, float]:
    box = grown_box(truth)
    out = {"opencv-grabcut": iou_of(opencv_grabcut(image, box), truth)}
    cut = {"model": model, "box": box, "mask_only": True, "box_model": box_model}
    boxed = np.asarray(remove_background(image, **cut), np.float32) / 255
    out["box"] = iou_of(boxed, truth)
    plain = {"model": None, "method": "grabcut", "box": box, "mask_only": True}
    no_net = np.asarray(remove_background(image, **plain), np.float32) / 255
    out["box, no network"] = iou_of(no_net, truth)
    out |= stroke_scores("box", corrected(image, truth, boxed, strokes, **cut))
    if both:
        out |= stroke_scores("no network", corrected(image, truth, no_net, strokes, **plain))
    return out


def score_without_box(
    model, image: np.ndarray, truth: np.ndarray, box_model=None, strokes: int = 1
) -> dict[str, float]:
    """The automatic cut-out, then ``strokes`` corrective strokes one by one, no box drawn."""
    cut = {"model": model, "mask_only": True, "box_model": box_model}
    automatic = np.asarray(remove_background(image, **cut), np.float32) / 255
    out = {"automatic": iou_of(automatic, truth)}
    return out | stroke_scores("automatic", corrected(image, truth, automatic, strokes, **cut))


def stroke_scores(start: str, scores: list[float]) -> dict[str, float]:
    """``{"START + 1 stroke": ..., "START + 2 strokes": ...}``."""
    return {f"{start} + {k} stroke" + ("s" if k > 1 else ""): v for k, v in enumerate(scores, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("list")
    parser.add_argument("--data", default="../shared/data/foreground")
    parser.add_argument("--box-model", help="a box model (train --box-crop) to help inside the box")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--strokes", type=int, default=1, help="corrective strokes, one by one")
    parser.add_argument(
        "--strokes-without-network",
        action="store_true",
        help="also correct the 'box, no network' result with its own strokes",
    )
    parser.add_argument("--json")
    parser.add_argument("--grey", action="store_true", help="score black-and-white versions")
    parser.add_argument(
        "--without-box",
        action="store_true",
        help="no box: the automatic cut-out, then the strokes alone",
    )
    args = parser.parse_args()
    model = get_model(args.checkpoint)
    box_model = get_model(args.box_model) if args.box_model else None
    table: dict = defaultdict(lambda: defaultdict(dict))  # source -> method -> photo -> IoU
    seconds = []
    for source, image_path, mask_path in photos(Path(args.list), Path(args.data))[: args.limit]:
        image, truth = read_image(image_path), read_mask(mask_path) > 0
        image = grey(image) if args.grey else image
        start = time.perf_counter()
        scores = (
            score_without_box(model, image, truth, box_model, args.strokes)
            if args.without_box
            else score_photo(
                model, image, truth, box_model, args.strokes, args.strokes_without_network
            )
        )
        for method, value in scores.items():
            table[source][method][image_path.stem] = value
        seconds.append(time.perf_counter() - start)
    summary = {
        s: {m: float(np.mean(list(v.values()))) for m, v in by.items()}
        | {"images": len(next(iter(by.values())))}
        for s, by in table.items()
    }
    for source, row in summary.items():
        print(
            f"{source:<16} "
            + "  ".join(f"{m} {v:.4f}" for m, v in row.items() if m != "images")
            + f"  ({row['images']} photos)"
        )
    print(f"median {statistics.median(seconds):.2f} s per photo for all of them", flush=True)
    paired: dict = defaultdict(dict)  # as foreground_eval summarises: method -> source -> ...
    for source, by in table.items():
        for method, ious in by.items():
            paired[method][source] = {"per_image_iou": ious}
    for line in against_grabcut(paired, baseline="opencv-grabcut"):
        print(line)
    if args.json:
        for source, row in summary.items():
            row["per_image_iou"] = table[source]
        Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
