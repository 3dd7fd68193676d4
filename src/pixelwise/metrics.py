"""Semantic segmentation metrics, all derived from one confusion matrix.

The matrix is accumulated over the whole dataset with ``torch.bincount`` (rows: ground
truth, columns: prediction); IoU and Dice are then computed once from dataset totals, not
averaged per image.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from pixelwise.constants import IGNORE_INDEX


class ConfusionMatrix:
    """Accumulates a (K, K) matrix ``m[true, pred]`` over batches, skipping ignored pixels.

    Example:
        >>> cm = ConfusionMatrix(2)
        >>> cm.update(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]))
        >>> round(cm.pixel_accuracy(), 4)
        0.6667
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add predictions and targets of any matching shape (class ids)."""
        if pred.shape != target.shape:
            raise ValueError(
                f"prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}"
            )
        pred, target = pred.reshape(-1).long().cpu(), target.reshape(-1).long().cpu()
        keep = target != self.ignore_index
        pred, target = pred[keep], target[keep]
        k = self.num_classes
        if target.numel() and (
            target.min() < 0 or target.max() >= k or pred.min() < 0 or pred.max() >= k
        ):
            raise ValueError(
                f"class ids must lie in 0..{k - 1} (or be {self.ignore_index} in the target)"
            )
        self.matrix += torch.bincount(target * k + pred, minlength=k * k).reshape(k, k)

    def merge(self, other: ConfusionMatrix) -> None:
        self.matrix += other.matrix

    def pixel_accuracy(self) -> float:
        return (self.matrix.diag().sum() / self.matrix.sum().clamp_min(1)).item()

    def iou(self) -> torch.Tensor:
        """Per-class IoU = TP / (TP + FP + FN); NaN for classes absent from both."""
        tp = self.matrix.diag().double()
        denom = self.matrix.sum(0).double() + self.matrix.sum(1).double() - tp
        return torch.where(denom > 0, tp / denom, torch.full_like(tp, float("nan")))

    def class_accuracy(self) -> torch.Tensor:
        """Per-class accuracy (recall) = TP / (TP + FN); NaN for classes absent from the
        reference. Its mean is SegNet's "class average accuracy", FCN's "mean accuracy"."""
        tp, true = self.matrix.diag().double(), self.matrix.sum(1).double()
        return torch.where(true > 0, tp / true.clamp_min(1), torch.full_like(tp, float("nan")))

    def frequency_weighted_iou(self) -> float:
        """FCN's frequency weighted IU: each class's IoU weighted by its share of the reference
        pixels (NaN with no pixels)."""
        true, iou = self.matrix.sum(1).double(), self.iou()
        if true.sum() == 0:
            return float("nan")
        return (torch.nan_to_num(iou) * true).sum().item() / true.sum().item()

    def dice(self) -> torch.Tensor:
        """Per-class Dice = 2 TP / (2 TP + FP + FN); NaN for classes absent from both."""
        tp = self.matrix.diag().double()
        denom = self.matrix.sum(0).double() + self.matrix.sum(1).double()
        return torch.where(denom > 0, 2 * tp / denom, torch.full_like(tp, float("nan")))

    def summary(self, class_names: list[str] | None = None) -> dict:
        """Pixel accuracy, mean class accuracy, mean IoU/Dice (over classes present), frequency
        weighted IoU, per-class values and the ``confusion_matrix`` itself (pixel counts, a row
        per true class, a column per predicted one)."""
        names = class_names or [str(i) for i in range(self.num_classes)]
        iou, dice, accuracy = self.iou(), self.dice(), self.class_accuracy()
        return {
            "pixel_accuracy": self.pixel_accuracy(),
            "mean_accuracy": accuracy.nanmean().item(),
            "mean_iou": iou.nanmean().item(),
            "frequency_weighted_iou": self.frequency_weighted_iou(),
            "mean_dice": dice.nanmean().item(),
            "per_class": {
                name: {
                    "iou": _num(iou[i]),
                    "dice": _num(dice[i]),
                    "accuracy": _num(accuracy[i]),
                    "pixels": int(self.matrix[i].sum()),
                }
                for i, name in enumerate(names)
            },
            "pixels": int(self.matrix.sum()),
            "confusion_matrix": self.matrix.tolist(),
        }


def _num(x: torch.Tensor) -> float | None:
    v = x.item()
    return None if v != v else v


def format_table(summary: dict) -> str:
    """A plain-text table of a :meth:`ConfusionMatrix.summary`."""
    bf = "mean_boundary_f1" in summary  # scored image by image (ImageScores)
    head = ("IoU", "Dice", "BF", "HD95")[: 4 if bf else 2]
    lines = [f"{'class':<16}" + "".join(f"{h:>8}" for h in head) + f"{'pixels':>12}"]
    for name, m in summary["per_class"].items():
        cells = [m[key] for key in ("iou", "dice", "boundary_f1", "hd95")[: len(head)]]
        text = "".join(f"{'-' if v is None else f'{v:.4f}':>8}" for v in cells[:3])
        text += "".join(f"{'-' if v is None else f'{v:.2f}':>8}" for v in cells[3:])
        lines.append(f"{name:<16}{text}{m['pixels']:>12}")
    lines.append(
        f"pixel accuracy {summary['pixel_accuracy']:.4f}   mean IoU {summary['mean_iou']:.4f}   "
        f"mean Dice {summary['mean_dice']:.4f}"
        + (f"   mean BF {summary['mean_boundary_f1']:.4f}" if bf else "")
    )
    if "mean_accuracy" in summary:
        lines.append(
            f"mean class accuracy {summary['mean_accuracy']:.4f}   "
            f"frequency weighted IoU {summary['frequency_weighted_iou']:.4f}"
            + (f"   mean HD95 {summary['mean_hd95']:.2f} px" if bf else "")
        )
    if "mean_iou_interval" in summary:
        lo, hi = summary["mean_iou_interval"]
        lines.append(
            f"mean IoU 95 % interval {lo:.4f}-{hi:.4f} (the images drawn again 1000 times: how "
            "far it could move on other images like these)"
        )
    confused = most_confused(summary)
    if confused:
        lines.append(f"most confused: {confused}")
    if bf:
        lines.append(
            f"(BF: boundary F1 within {BOUNDARY_TOLERANCE:.2%} of the image diagonal; HD95: 95 % "
            "Hausdorff distance of the outlines in pixels; per image, then averaged)"
        )
    if "objects" in summary:
        lines += object_lines(summary["objects"], summary["pixel_accuracy"])
    return "\n".join(lines)


def object_lines(o: dict, pixel_accuracy: float) -> list[str]:
    """The lines of :func:`format_table` for the object scores ``o`` (a summary's ``objects``)."""
    lines = [
        f"objects: {o['predicted_objects']} predicted, {o['reference_objects']} true   "
        f"DSB mean AP {o['dsb_mean_ap']:.4f}   AP@0.5 {o['ap50']:.4f}   F1@0.5 {o['f1']:.4f}   SEG {o['seg']:.4f}",
        f"V_Rand {o['v_rand']:.4f}   V_Info {o['v_info']:.4f}   pixel error {1 - pixel_accuracy:.4f}",
    ]
    if "dsb_mean_ap_interval" in o:
        lo, hi = o["dsb_mean_ap_interval"]
        lines.append(f"DSB mean AP 95 % interval {lo:.4f}-{hi:.4f} (the images drawn again)")
    if "pq" in o:
        lines.append(
            f"PQ {o['pq']:.4f} (DQ {o['dq']:.4f} x SQ {o['sq']:.4f})   AJI {o['aji']:.4f}   "
            "(means over images)"
        )
    if "coco_mask_ap_skipped" in o:
        lines.append(f"COCO mask AP not computed: {o['coco_mask_ap_skipped']}")
    if "coco_mask_ap" in o:
        lines.append(
            f"COCO mask AP {o['coco_mask_ap']:.4f}   AP50 {o['coco_mask_ap50']:.4f}   "
            f"AP75 {o['coco_mask_ap75']:.4f}   (objects ranked by mean probability)"
        )
    if "coco_mask_ap_every" in o:
        every = o["coco_mask_ap_every"]
        lines.append(
            f"  the same counting every object (COCO counts the 100 best of an image; up to "
            f"{every['most']} here): AP {every['ap']:.4f}   AP50 {every['ap50']:.4f}   "
            f"AP75 {every['ap75']:.4f}"
        )
    return lines


def most_confused(summary: dict, shown: int = 3, least: float = 0.01) -> str:
    """The pairs of classes most often taken one for the other, by the share of the true
    class's pixels given to the other ("sidewalk taken for road 18.2 % of its pixels"), the
    ``shown`` largest of at least ``least``; "" for two classes (the table says it) or none."""
    matrix = np.asarray(summary.get("confusion_matrix", []), np.float64)
    if matrix.ndim != 2 or len(matrix) < 3:
        return ""
    share = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    np.fill_diagonal(share, 0)
    names = list(summary["per_class"])
    order = np.argsort(share, axis=None, kind="stable")[::-1][:shown]
    pairs = [np.unravel_index(i, share.shape) for i in order if share.flat[i] >= least]
    return ", ".join(
        f"{names[t]} taken for {names[p]} {share[t, p]:.1%} of its pixels" for t, p in pairs
    )


# ---------------------------------------------------------------------------------------------
# Boundary F1 (BF score; Csurka et al., BMVC 2013, the SegNet paper's third metric): how well
# each class's outline is placed, which region overlap barely sees on large regions.

BOUNDARY_TOLERANCE = 0.0075  # of the image diagonal, Csurka et al.'s choice


def inner_boundary(mask: np.ndarray, image_edge: bool = False) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it; the image's edge is no boundary, or
    with ``image_edge`` it is (what lies outside the image counts as outside the mask, as for
    scipy's ``binary_erosion`` with its default border)."""
    pad = np.pad(mask, 1, **({"constant_values": False} if image_edge else {"mode": "edge"}))
    inside = pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
    return mask & ~inside


def directed_distances(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact Euclidean distances from each pixel of the (non-empty) edge ``a`` to the nearest of
    edge ``b``, and from ``b``'s to ``a``: distance transforms within the box holding both."""
    import cv2

    rows, cols = np.nonzero((a | b).any(1))[0], np.nonzero((a | b).any(0))[0]
    box = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]  # holds both: exact there
    found = []
    for edge, other in ((a[box], b[box]), (b[box], a[box])):
        distance = cv2.distanceTransform(
            (~other).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE
        )
        found.append(distance[edge])
    return found[0], found[1]


def boundary_f1(
    reference: np.ndarray,
    prediction: np.ndarray,
    num_classes: int,
    ignore_index: int = IGNORE_INDEX,
    tolerance: float = BOUNDARY_TOLERANCE,
) -> np.ndarray:
    """Per-class BF score of one image's (H, W) class ids: F1 of the boundary pixels'
    precision (share of the predicted boundary within ``tolerance`` x the image diagonal of
    the reference boundary) and recall (the converse); boundaries are
    :func:`inner_boundary`'s, those on ignored reference pixels left out. NaN for a class
    absent from both images; 0 when only one has a boundary; with no boundary on either side
    (the class fills the image), 1 if the two agree.

    Example:
        >>> ref = np.zeros((100, 100), int); ref[20:60, 20:60] = 1
        >>> pred = np.roll(ref, 1, axis=1)  # 1 px off: within the tolerance, 1.06 px here
        >>> boundary_f1(ref, pred, 2).tolist()
        [1.0, 1.0]
        >>> pred = np.roll(ref, 4, axis=1)  # 4 px off: 76 of each side's 156 outline pixels
        >>> round(float(boundary_f1(ref, pred, 2)[1]), 3)
        0.487
    """
    theta = tolerance * float(np.hypot(*reference.shape[:2]))
    valid = reference != ignore_index
    scores = np.full(num_classes, np.nan)
    for c in range(num_classes):
        ref, pred = reference == c, (prediction == c) & valid
        if not ref.any() and not pred.any():
            continue
        ref_edge, pred_edge = inner_boundary(ref) & valid, inner_boundary(pred) & valid
        if not ref_edge.any() or not pred_edge.any():
            scores[c] = float(not ref_edge.any() and not pred_edge.any() and (ref == pred).all())
            continue
        precision, recall = (
            float((d <= theta).mean()) for d in directed_distances(pred_edge, ref_edge)
        )
        total = precision + recall
        scores[c] = 2 * precision * recall / total if total else 0.0
    return scores


def hausdorff95(
    reference: np.ndarray,
    prediction: np.ndarray,
    num_classes: int,
    ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
    """Per-class 95 % Hausdorff distance (HD95, pixels) of one image's (H, W) class ids, as
    MONAI computes it: each mask's edge is its pixels that an erosion (4-neighbours, the image
    outside) removes; the larger of the two directed 95th percentiles of the Euclidean
    distances from one edge's pixels to the other edge. Edges on ignored reference pixels are
    left out. NaN for a class absent from both images; the image diagonal (the worst distance
    there is) when only one has it.

    Example:
        >>> ref = np.zeros((100, 100), int); ref[20:60, 20:60] = 1
        >>> hausdorff95(ref, np.roll(ref, 4, axis=1), 2).tolist()  # 4 px off
        [4.0, 4.0]
    """
    valid = reference != ignore_index
    out = np.full(num_classes, np.nan)
    for c in range(num_classes):
        ref, pred = reference == c, (prediction == c) & valid
        ref_edge = inner_boundary(ref, image_edge=True) & valid
        pred_edge = inner_boundary(pred, image_edge=True) & valid
        if not ref_edge.any() and not pred_edge.any():
            continue
        if not ref_edge.any() or not pred_edge.any():
            out[c] = float(np.hypot(*reference.shape[:2]))
            continue
        directed = [np.percentile(d, 95) for d in directed_distances(pred_edge, ref_edge)]
        out[c] = float(max(directed))
    return out


class ImageScores:
    """Whole-image predictions scored image by image: one confusion matrix over them all,
    each image's own, and each image's per-class boundary F1 (:func:`boundary_f1`) and 95 %
    Hausdorff distance (:func:`hausdorff95`)."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.total = ConfusionMatrix(num_classes)
        self.images: list[ConfusionMatrix] = []
        self.boundary: list[np.ndarray] = []
        self.hd95: list[np.ndarray] = []

    def add(self, prediction: np.ndarray, target: np.ndarray) -> None:
        """One image's (H, W) predicted class ids against its target (ignored pixels 255)."""
        one = ConfusionMatrix(self.num_classes)
        one.update(torch.from_numpy(prediction), torch.from_numpy(target))
        self.total.merge(one)
        self.images.append(one)
        self.boundary.append(boundary_f1(target, prediction, self.num_classes))
        self.hd95.append(hausdorff95(target, prediction, self.num_classes))

    def summary(self, class_names: list[str] | None = None) -> dict:
        """:meth:`ConfusionMatrix.summary` with each class's boundary F1 and HD95 (means over
        the images that have the class on either side) and their means over the classes,
        ``mean_boundary_f1`` and ``mean_hd95``; ``mean_iou_interval`` from
        :meth:`mean_iou_interval` when there are enough images."""
        out = self.total.summary(class_names)
        interval = self.mean_iou_interval()
        if interval is not None:
            out["mean_iou_interval"] = interval
        for key, images in (("boundary_f1", self.boundary), ("hd95", self.hd95)):
            per_class = np.full(self.num_classes, np.nan)
            if images:
                stacked = np.stack(images)
                seen = ~np.isnan(stacked)
                sums = np.where(seen, stacked, 0.0).sum(0)
                per_class = np.where(seen.any(0), sums / np.maximum(seen.sum(0), 1), np.nan)
            for m, value in zip(out["per_class"].values(), per_class):
                m[key] = None if np.isnan(value) else float(value)
            kept = per_class[~np.isnan(per_class)]
            out[f"mean_{key}"] = float(kept.mean()) if kept.size else float("nan")
        return out

    def mean_iou_interval(
        self, level: float = 0.95, resamples: int = 1000, seed: int = 0
    ) -> list[float] | None:
        """How far the mean IoU could move on other images like these: the central ``level``
        of its values over ``resamples`` bootstrap draws of the images (with replacement, each
        draw's confusion matrices summed as the whole set's are); None under
        ``MIN_INTERVAL_IMAGES`` images or where no draw has a class to score."""
        n = len(self.images)
        if n < MIN_INTERVAL_IMAGES:
            return None
        hits_of, unions_of = [], []  # (K,) each: not the (N, K, K) matrices, with many classes
        for one in self.images:
            m = one.matrix.double()
            hits_of.append(m.diagonal().numpy())
            unions_of.append((m.sum(0) + m.sum(1) - m.diagonal()).numpy())
        sums = bootstrap_sums(np.stack([hits_of, unions_of], axis=1), resamples, seed)
        hits, unions = sums[:, 0], sums[:, 1]  # (resamples, K)
        iou = np.divide(hits, unions, out=np.full_like(hits, np.nan), where=unions > 0)
        scored = ~np.isnan(iou).all(1)
        if not scored.any():
            return None
        return central(np.nanmean(iou[scored], axis=1), level)


MIN_INTERVAL_IMAGES = 5  # fewer images give an interval that says little


def bootstrap_sums(values: np.ndarray, resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """(resamples, ...): the sums of ``values`` (one row per image) over each of ``resamples``
    bootstrap draws of as many images with replacement; a draw at a time, so that memory grows
    with the images, not with images x resamples."""
    rng, n = np.random.default_rng(seed), len(values)
    return np.stack([values[rng.integers(0, n, n)].sum(0) for _ in range(resamples)])


def central(values: np.ndarray, level: float) -> list[float]:
    """The bounds of the central ``level`` of ``values`` (percentiles)."""
    tail = (1 - level) / 2 * 100
    return [float(v) for v in np.percentile(values, [tail, 100 - tail])]


def mean_interval(
    values, level: float = 0.95, resamples: int = 1000, seed: int = 0
) -> list[float] | None:
    """The bootstrap interval of the mean of per-image ``values`` (e.g. each image's DSB2018
    mean AP), as :meth:`ImageScores.mean_iou_interval` draws images; None under
    ``MIN_INTERVAL_IMAGES`` values."""
    v = np.asarray(values, np.float64)
    if len(v) < MIN_INTERVAL_IMAGES:
        return None
    return central(bootstrap_sums(v, resamples, seed) / len(v), level)


# ---------------------------------------------------------------------------------------------
# Instance metrics: label images (0 = background, 1..N = objects) compared object by object.
# Everything derives from one contingency table of (reference label, predicted label) counts.


def contingency(reference: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """(R + 1, P + 1) pixel counts of every (reference label, predicted label) pair; row and
    column 0 are the backgrounds. Labels are relabelled to 1..N first, so any ids work. Dense:
    the scores below use :func:`overlaps`, whose memory follows the pairs that meet."""
    o = overlaps(reference, prediction)
    table = np.zeros((len(o.ref_area), len(o.pred_area)), np.int64)
    table[o.ref, o.pred] = o.count
    return table


def _consecutive(labels: np.ndarray) -> np.ndarray:
    values, inverse = np.unique(labels, return_inverse=True)
    inverse = inverse.reshape(labels.shape)
    return inverse if values[0] == 0 else inverse + 1


@dataclass
class Overlaps:
    """The label pairs that meet in two label images, sparse: ``ref``, ``pred`` (labels
    renumbered 0..R and 0..P, 0 the backgrounds) and ``count`` (their shared pixels) of every
    pair with at least one pixel, and each label's area. Memory follows the pairs that meet, not
    R x P: a whole slide of 50,000 objects is fine."""

    ref: np.ndarray
    pred: np.ndarray
    count: np.ndarray
    ref_area: np.ndarray
    pred_area: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """(R, P): the numbers of reference and predicted objects."""
        return len(self.ref_area) - 1, len(self.pred_area) - 1

    @cached_property
    def object_ious(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(reference object, predicted object, IoU, shared pixels) of the object pairs that meet,
        objects indexed from 0; computed once for all the scores of a pair of images."""
        both = (self.ref > 0) & (self.pred > 0)
        r, p, inter = self.ref[both], self.pred[both], self.count[both]
        iou = inter / (self.ref_area[r] + self.pred_area[p] - inter)
        return r - 1, p - 1, iou, inter


DENSE_PAIRS = 1 << 24  # below this many (R + 1) x (P + 1) label pairs, count them by bincount


def overlaps(reference, prediction) -> Overlaps:
    """:class:`Overlaps` of two label images of the same shape (any ids); given an
    :class:`Overlaps` (and None), that one: the scores below take either, so that one pair of
    images is counted once for all of them."""
    if isinstance(reference, Overlaps):
        return reference
    if reference.shape != prediction.shape:
        raise ValueError(
            f"reference shape {reference.shape} != prediction shape {prediction.shape}"
        )
    ref, pred = _consecutive(reference).ravel(), _consecutive(prediction).ravel()
    n_ref, n_pred = int(ref.max(initial=0)) + 1, int(pred.max(initial=0)) + 1
    keys = ref.astype(np.int64) * n_pred + pred
    if n_ref * n_pred <= DENSE_PAIRS:
        counts = np.bincount(keys, minlength=n_ref * n_pred)
        keys = np.flatnonzero(counts)
        counts = counts[keys]
    else:
        keys, counts = np.unique(keys, return_counts=True)
    return Overlaps(
        keys // n_pred,
        keys % n_pred,
        counts,
        np.bincount(ref, minlength=n_ref),
        np.bincount(pred, minlength=n_pred),
    )


def seg_score(reference, prediction=None) -> float:
    """Cell Tracking Challenge SEG: mean over reference objects R of the Jaccard index with the
    predicted object S covering more than half of R (|R ∩ S| > 0.5 |R|), 0 when none does."""
    o = overlaps(reference, prediction)
    n_ref = o.shape[0]
    if n_ref == 0:
        return float("nan")
    r, _, iou, inter = o.object_ious
    covers = inter > 0.5 * o.ref_area[r + 1]  # at most one S per R can cover more than half
    return float(iou[covers].sum() / n_ref)


def object_scores(reference, prediction=None, threshold: float = 0.5) -> dict:
    """Objects matched one-to-one at IoU > ``threshold`` (unique for thresholds >= 0.5):
    true/false positives, false negatives, precision, recall and F1."""
    if threshold < 0.5:
        raise ValueError(f"threshold must be >= 0.5 for a unique matching, got {threshold}")
    o = overlaps(reference, prediction)
    tp = int((o.object_ious[2] > threshold).sum())
    n_ref, n_pred = o.shape
    fp, fn = n_pred - tp, n_ref - tp
    precision = tp / n_pred if n_pred else float(n_ref == 0)
    recall = tp / n_ref if n_ref else float(n_pred == 0)
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1}


def panoptic_quality(reference, prediction=None) -> dict:
    """Panoptic quality of one image's objects (Kirillov et al., 2019; as HoVer-Net scores
    nuclei): objects matched one-to-one at IoU > 0.5, DQ = TP / (TP + FP/2 + FN/2) (detection),
    SQ = the mean IoU of the matches (segmentation), PQ = DQ x SQ; NaN without any object."""
    o = overlaps(reference, prediction)
    iou = o.object_ious[2]
    matched = iou[iou > 0.5]
    tp = len(matched)
    fp, fn = o.shape[1] - tp, o.shape[0] - tp
    if tp + fp + fn == 0:
        return {"pq": float("nan"), "dq": float("nan"), "sq": float("nan")}
    dq = tp / (tp + 0.5 * fp + 0.5 * fn)
    sq = float(matched.mean()) if tp else 0.0
    return {"pq": dq * sq, "dq": dq, "sq": sq}


def aggregated_jaccard(reference, prediction=None) -> float:
    """Aggregated Jaccard Index of one image (Kumar et al., 2017): each reference object with
    the predicted object of highest IoU (the lower number on a tie), C = sum of their
    intersections, U = sum of their unions plus the area of every reference object no
    prediction touches and of every predicted object paired with none; AJI = C / U, NaN
    without any object."""
    o = overlaps(reference, prediction)
    n_ref, n_pred = o.shape
    if n_ref + n_pred == 0:
        return float("nan")
    r, p, iou, inter = o.object_ious
    order = np.lexsort((p, -iou, r))  # by reference, best IoU first, then the lower number
    first = order[np.r_[True, r[order][1:] != r[order][:-1]]] if len(r) else order
    r, p, inter = r[first], p[first], inter[first]
    ref_area, pred_area = o.ref_area[1:], o.pred_area[1:]
    common = inter.sum()
    union = (ref_area[r] + pred_area[p] - inter).sum()
    union += ref_area.sum() - ref_area[r].sum()  # reference objects no prediction touches
    union += pred_area.sum() - pred_area[np.unique(p)].sum()  # predictions paired with none
    return float(common / union) if union else 0.0


DSB_THRESHOLDS = tuple(np.round(np.arange(0.5, 1.0, 0.05), 2))


def dsb_average_precision(
    reference, prediction=None, thresholds: tuple[float, ...] = DSB_THRESHOLDS
) -> dict:
    """Data Science Bowl 2018 score: mean over IoU thresholds 0.5:0.05:0.95 of TP / (TP + FP + FN)."""
    o = overlaps(reference, prediction)
    iou = o.object_ious[2]
    n_ref, n_pred = o.shape
    per_threshold = {}
    for t in thresholds:
        tp = int((iou > t).sum())
        denom = tp + (n_pred - tp) + (n_ref - tp)
        per_threshold[float(t)] = tp / denom if denom else 1.0
    return {"mean_ap": float(np.mean(list(per_threshold.values()))), "ap": per_threshold}


def image_mean(values: list[float]) -> float:
    """The mean over the images that have a value (NaN: no object on either side)."""
    kept = [v for v in values if v == v]
    return float(np.mean(kept)) if kept else float("nan")


def rand_info_scores(reference, prediction=None) -> dict:
    """ISBI 2012's foreground-restricted scores (Arganda-Carreras et al., 2015), over the
    pixels where the reference is not background; predicted label 0 counts as one segment.

    V_Rand = sum p_ij^2 / (0.5 sum s_i^2 + 0.5 sum t_j^2) and V_Info = I(S;T) / (0.5 H(S) + 0.5 H(T)),
    with p the joint distribution of (predicted i, reference j), s and t its marginals; split
    and merge variants divide by the reference or the prediction term alone. 1 is perfect.
    """
    o = overlaps(reference, prediction)
    fg = o.ref > 0  # drop the reference background
    rows, cols, counts = o.ref[fg], o.pred[fg], o.count[fg].astype(np.float64)
    total = counts.sum()
    if total == 0:
        raise ValueError("the reference has no foreground pixels")
    p = counts / total  # the joint distribution's nonzero entries (reference j, prediction i)
    t = np.bincount(rows, weights=p)[1:]
    s = np.bincount(cols, weights=p)
    sum_p2, sum_t2, sum_s2 = (p**2).sum(), (t**2).sum(), (s**2).sum()
    mutual = float((p * np.log(p / (t[rows - 1] * s[cols]))).sum())
    h_t, h_s = (
        float(-(t[t > 0] * np.log(t[t > 0])).sum()),
        float(-(s[s > 0] * np.log(s[s > 0])).sum()),
    )
    return {
        "v_rand": 2 * sum_p2 / (sum_s2 + sum_t2),
        "v_rand_split": sum_p2 / sum_t2,
        "v_rand_merge": sum_p2 / sum_s2,
        "v_info": 2 * mutual / (h_s + h_t) if h_s + h_t > 0 else 1.0,
        "v_info_split": mutual / h_s if h_s > 0 else 1.0,
        "v_info_merge": mutual / h_t if h_t > 0 else 1.0,
    }


# ---------------------------------------------------------------------------------------------
# COCO box and mask AP (pycocotools), for instance models.


def coco_average_precision(
    ground_truth: dict, results: list[dict], iou_types: tuple[str, ...] = ("bbox", "segm")
) -> dict:
    """COCO AP (IoU 0.5:0.95), AP50 and AP75 per IoU type, by pycocotools' COCOeval.

    ``ground_truth``: a COCO instances dict; ``results``: COCO result dicts (``image_id``,
    ``category_id``, ``score``, ``bbox`` [x, y, w, h] and/or ``segmentation`` RLE). Images
    of the ground truth without results count as all missed. With no results at all, AP = 0.
    """
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    out = {}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {k: v for k, v in ground_truth.items()}
        gt.dataset.setdefault("annotations", [])
        gt.dataset.setdefault(
            "info", {}
        )  # pycocotools <= 2.0.10's loadRes copies it unconditionally
        for ann in gt.dataset["annotations"]:  # COCOeval needs areas; derive them when absent
            if "area" not in ann:
                from pycocotools import mask as mask_utils

                h, w = next(
                    (im["height"], im["width"])
                    for im in gt.dataset["images"]
                    if im["id"] == ann["image_id"]
                )
                seg = ann["segmentation"]
                rle = (
                    mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
                    if isinstance(seg, list)
                    else seg
                )
                ann["area"] = float(mask_utils.area(rle))
        gt.createIndex()
        for iou_type in iou_types:
            usable = [
                r
                for r in results
                if (("segmentation" in r) if iou_type == "segm" else ("bbox" in r))
            ]
            if not usable:
                out[iou_type] = {"ap": 0.0, "ap50": 0.0, "ap75": 0.0}
                continue
            dt = gt.loadRes(usable)
            ev = COCOeval(gt, dt, iou_type)
            most = most_per_image(gt, dt)
            ev.params.maxDets = [1, 10, 100] + ([most] if most > 100 else [])
            ev.evaluate()
            ev.accumulate()
            out[iou_type] = average_precisions(ev, 2)
            if most > 100:  # the standard figure caps recall: also the one of every object
                out[iou_type]["every"] = average_precisions(ev, 3) | {"most": most}
    return out


def most_per_image(*sets) -> int:
    """The most objects (ground truth or results) that one image of these COCO sets has."""
    return max((len(ids) for coco in sets for ids in coco.imgToAnns.values()), default=0)


def average_precisions(ev, cap: int) -> dict:
    """AP (IoU 0.5:0.95), AP50 and AP75 of an accumulated COCOeval, all areas, at its
    ``cap``-th ``maxDets``, as its ``summarize`` computes them at the standard 100 detections
    per image; that cap limits the recall of an image of more objects, as nuclei images have
    (a perfect answer of 380 nuclei scores 0.36), so a figure at a higher cap goes beside it
    (LIVECell raises it the same way)."""
    thresholds = list(np.round(ev.params.iouThrs, 2))
    precision = ev.eval["precision"][:, :, :, 0, cap]  # IoU, recall, category; all areas

    def mean(values) -> float:
        valid = values[values > -1]
        return float(valid.mean()) if valid.size else -1.0

    return {
        "ap": mean(precision),
        "ap50": mean(precision[thresholds.index(0.5)]),
        "ap75": mean(precision[thresholds.index(0.75)]),
    }
