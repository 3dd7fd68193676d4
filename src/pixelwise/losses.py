"""Per-pixel losses: cross-entropy with class and pixel weights, and soft Dice.

Each loss is a function plus a thin module that calls it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pixelwise.constants import IGNORE_INDEX


def _check(logits: torch.Tensor, target: torch.Tensor) -> None:
    if (
        logits.ndim != 4
        or target.ndim != 3
        or logits.shape[0] != target.shape[0]
        or logits.shape[2:] != target.shape[1:]
    ):
        raise ValueError(
            f"expected logits (N,K,H,W) and target (N,H,W); got {tuple(logits.shape)} and {tuple(target.shape)}"
        )


def pixel_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    class_weights: torch.Tensor | None = None,
    pixel_weights: torch.Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    r"""Weighted per-pixel cross-entropy, averaged over non-ignored pixels.

    .. math:: L = \frac{\sum_x w(x)\, c_{t(x)}\, (-\log p_{t(x)}(x))}{\sum_x w(x)\, c_{t(x)}}

    with class weights :math:`c` (default 1) and pixel weights :math:`w` (default 1; e.g. the
    U-Net border weight map). Pixels whose target is ``ignore_index`` contribute nothing.

    Args:
        logits: (N, K, H, W) unnormalised scores.
        target: (N, H, W) int64 class ids.
        class_weights: (K,) or None.
        pixel_weights: (N, H, W) or None.

    Example:
        >>> logits = torch.zeros(1, 2, 1, 2); target = torch.tensor([[[0, 1]]])
        >>> round(pixel_cross_entropy(logits, target).item(), 4)  # log 2
        0.6931
    """
    _check(logits, target)
    if pixel_weights is not None and pixel_weights.shape != target.shape:
        raise ValueError(
            f"pixel_weights shape {tuple(pixel_weights.shape)} != target shape {tuple(target.shape)}"
        )
    nll = F.cross_entropy(logits.float(), target, reduction="none", ignore_index=ignore_index)
    valid = target != ignore_index
    weight = valid.float()
    if class_weights is not None:
        weight = (
            weight * class_weights.to(logits.device).float()[target.clamp(0, logits.shape[1] - 1)]
        )
    if pixel_weights is not None:
        weight = weight * pixel_weights.float()
    return (nll * weight).sum() / weight.sum().clamp_min(1e-12)


class PixelCrossEntropy(nn.Module):
    """Module form of :func:`pixel_cross_entropy` with fixed class weights."""

    def __init__(
        self, class_weights: torch.Tensor | None = None, ignore_index: int = IGNORE_INDEX
    ) -> None:
        super().__init__()
        self.register_buffer("class_weights", class_weights, persistent=False)
        self.ignore_index = ignore_index

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, pixel_weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        return pixel_cross_entropy(
            logits, target, self.class_weights, pixel_weights, self.ignore_index
        )


def soft_dice_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE_INDEX, eps: float = 1.0
) -> torch.Tensor:
    r"""1 - mean over classes of :math:`(2|P \cap T| + \epsilon) / (|P| + |T| + \epsilon)` with soft P = softmax."""
    _check(logits, target)
    valid = (target != ignore_index).unsqueeze(1).float()
    probs = logits.float().softmax(1) * valid
    onehot = (
        F.one_hot(target.clamp(0, logits.shape[1] - 1), logits.shape[1]).permute(0, 3, 1, 2).float()
        * valid
    )
    inter = (probs * onehot).sum((0, 2, 3))
    total = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    return 1 - ((2 * inter + eps) / (total + eps)).mean()


def class_weights_from_counts(counts: torch.Tensor, method: str = "median") -> torch.Tensor:
    """Class weights from pixel counts: ``median`` frequency balancing (SegNet) or ``inverse``."""
    freq = counts.double() / counts.sum().clamp_min(1)
    present = freq > 0
    if method == "median":
        w = freq[present].median() / freq.clamp_min(1e-12)
    elif method == "inverse":
        w = 1.0 / (freq.clamp_min(1e-12) * present.sum())
    else:
        raise ValueError(f"unknown class weighting {method!r}; choose median or inverse")
    return torch.where(present, w, torch.zeros_like(w)).float()
