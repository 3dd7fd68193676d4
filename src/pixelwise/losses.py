"""Per-pixel losses: cross-entropy with class and pixel weights, and soft Dice.

Each loss is a function plus a thin module that calls it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

IGNORE_INDEX = 255


def _check(logits: torch.Tensor, target: torch.Tensor) -> None:
    if logits.ndim != 4 or target.ndim != 3 or logits.shape[0] != target.shape[0] or logits.shape[2:] != target.shape[1:]:
        raise ValueError(f"expected logits (N,K,H,W) and target (N,H,W); got {tuple(logits.shape)} and {tuple(target.shape)}")


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
        raise ValueError(f"pixel_weights shape {tuple(pixel_weights.shape)} != target shape {tuple(target.shape)}")
    nll = F.cross_entropy(logits.float(), target, reduction="none", ignore_index=ignore_index)
    valid = target != ignore_index
    weight = valid.float()
    if class_weights is not None:
        weight = weight * class_weights.to(logits.device).float()[target.clamp(0, logits.shape[1] - 1)]
    if pixel_weights is not None:
        weight = weight * pixel_weights.float()
    return (nll * weight).sum() / weight.sum().clamp_min(1e-12)


class PixelCrossEntropy(nn.Module):
    """Module form of :func:`pixel_cross_entropy` with fixed class weights."""

    def __init__(self, class_weights: torch.Tensor | None = None, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.register_buffer("class_weights", class_weights, persistent=False)
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor, pixel_weights: torch.Tensor | None = None) -> torch.Tensor:
        return pixel_cross_entropy(logits, target, self.class_weights, pixel_weights, self.ignore_index)


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE_INDEX, eps: float = 1.0) -> torch.Tensor:
    r"""1 - mean over classes of :math:`(2|P \cap T| + \epsilon) / (|P| + |T| + \epsilon)` with soft P = softmax."""
    _check(logits, target)
    valid = (target != ignore_index).unsqueeze(1).float()
    probs = logits.float().softmax(1) * valid
    onehot = F.one_hot(target.clamp(0, logits.shape[1] - 1), logits.shape[1]).permute(0, 3, 1, 2).float() * valid
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


def unet_weight_map(labels: np.ndarray, w0: float = 10.0, sigma: float = 5.0, balance: bool = True,
                    cutoff: float = 1e-6) -> np.ndarray:
    r"""U-Net's pixel weights from an instance label image (0 = background, 1..N = cells).

    .. math:: w(x) = w_c(x) + w_0 \exp\left(-\frac{(d_1(x) + d_2(x))^2}{2\sigma^2}\right)

    for background pixels, where :math:`d_1, d_2` are the distances to the nearest and the
    second-nearest cell; cell pixels get :math:`w_c(x)` alone. :math:`w_c` balances the two
    classes (``0.5 / frequency``, so its mean over the image is 1; all ones without
    ``balance``). The border term is dropped where it is below ``cutoff * w0``: each cell's
    distance transform is computed only within its bounding box grown by the radius beyond
    which that holds, which keeps 300 cells on 1024 x 1024 well under a second.

    Returns float32 (H, W).
    """
    from scipy import ndimage

    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 2D integer image, got {labels.dtype} of shape {labels.shape}")
    foreground = labels > 0
    weights = np.ones(labels.shape, dtype=np.float32)
    if balance and 0 < foreground.mean() < 1:
        freq = foreground.mean()
        weights = np.where(foreground, 0.5 / freq, 0.5 / (1 - freq)).astype(np.float32)
    reach = int(np.ceil(sigma * np.sqrt(2 * np.log(1 / cutoff))))  # d1 + d2 beyond this: term < cutoff * w0
    d1 = np.full(labels.shape, np.inf, dtype=np.float32)
    d2 = np.full(labels.shape, np.inf, dtype=np.float32)
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        window = tuple(slice(max(s.start - reach, 0), s.stop + reach) for s in box)
        dist = ndimage.distance_transform_edt(labels[window] != index).astype(np.float32)
        a, b = d1[window], d2[window]
        b[...] = np.where(dist < a, a, np.minimum(b, dist))
        a[...] = np.minimum(a, dist)
    border = w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2))
    return weights + np.where(foreground, 0.0, border).astype(np.float32)
