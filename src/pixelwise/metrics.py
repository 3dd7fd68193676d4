"""Semantic segmentation metrics, all derived from one confusion matrix.

The matrix is accumulated over the whole dataset with ``torch.bincount`` (rows: ground
truth, columns: prediction); IoU and Dice are then computed once from dataset totals, not
averaged per image.
"""

from __future__ import annotations

import torch

IGNORE_INDEX = 255


class ConfusionMatrix:
    """Accumulates a (K, K) matrix ``m[true, pred]`` over batches, skipping ignored pixels.

    Example:
        >>> cm = ConfusionMatrix(2)
        >>> cm.update(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]))
        >>> cm.pixel_accuracy()
        0.6666666666666666
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add predictions and targets of any matching shape (class ids)."""
        if pred.shape != target.shape:
            raise ValueError(f"prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
        pred, target = pred.reshape(-1).long().cpu(), target.reshape(-1).long().cpu()
        keep = target != self.ignore_index
        pred, target = pred[keep], target[keep]
        k = self.num_classes
        if target.numel() and (target.min() < 0 or target.max() >= k or pred.min() < 0 or pred.max() >= k):
            raise ValueError(f"class ids must lie in 0..{k - 1} (or be {self.ignore_index} in the target)")
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

    def dice(self) -> torch.Tensor:
        """Per-class Dice = 2 TP / (2 TP + FP + FN); NaN for classes absent from both."""
        tp = self.matrix.diag().double()
        denom = self.matrix.sum(0).double() + self.matrix.sum(1).double()
        return torch.where(denom > 0, 2 * tp / denom, torch.full_like(tp, float("nan")))

    def summary(self, class_names: list[str] | None = None) -> dict:
        """Pixel accuracy, mean IoU/Dice (over classes present) and per-class values."""
        names = class_names or [str(i) for i in range(self.num_classes)]
        iou, dice = self.iou(), self.dice()
        return {
            "pixel_accuracy": self.pixel_accuracy(),
            "mean_iou": iou.nanmean().item(),
            "mean_dice": dice.nanmean().item(),
            "per_class": {
                name: {"iou": _num(iou[i]), "dice": _num(dice[i]), "pixels": int(self.matrix[i].sum())}
                for i, name in enumerate(names)
            },
            "pixels": int(self.matrix.sum()),
        }


def _num(x: torch.Tensor) -> float | None:
    v = x.item()
    return None if v != v else v


def format_table(summary: dict) -> str:
    """A plain-text table of a :meth:`ConfusionMatrix.summary`."""
    lines = [f"{'class':<16}{'IoU':>8}{'Dice':>8}{'pixels':>12}"]
    for name, m in summary["per_class"].items():
        iou = "-" if m["iou"] is None else f"{m['iou']:.4f}"
        dice = "-" if m["dice"] is None else f"{m['dice']:.4f}"
        lines.append(f"{name:<16}{iou:>8}{dice:>8}{m['pixels']:>12}")
    lines.append(
        f"pixel accuracy {summary['pixel_accuracy']:.4f}   mean IoU {summary['mean_iou']:.4f}   "
        f"mean Dice {summary['mean_dice']:.4f}"
    )
    return "\n".join(lines)
