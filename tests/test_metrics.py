"""Confusion-matrix metrics against a naive per-pixel loop and hand-computed cases."""

import math

import numpy as np
import pytest
import torch

from pixelwise.metrics import ConfusionMatrix, format_table


def naive_scores(pred: np.ndarray, target: np.ndarray, k: int, ignore: int = 255) -> dict:
    """Per-pixel loop: count TP/FP/FN per class directly from the definitions."""
    tp, fp, fn = [0] * k, [0] * k, [0] * k
    correct = total = 0
    for p, t in zip(pred.ravel().tolist(), target.ravel().tolist()):
        if t == ignore:
            continue
        total += 1
        if p == t:
            correct += 1
            tp[t] += 1
        else:
            fp[p] += 1
            fn[t] += 1
    iou = [tp[c] / (tp[c] + fp[c] + fn[c]) if tp[c] + fp[c] + fn[c] else math.nan for c in range(k)]
    dice = [
        2 * tp[c] / (2 * tp[c] + fp[c] + fn[c]) if tp[c] + fp[c] + fn[c] else math.nan
        for c in range(k)
    ]
    return {"acc": correct / total, "iou": iou, "dice": dice}


@pytest.mark.parametrize("seed", range(5))
def test_matches_naive_loop_over_batches(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 7))
    batches = []
    cm = ConfusionMatrix(k)
    for _ in range(3):
        pred = rng.integers(0, k, (2, 9, 11))
        target = rng.integers(0, k, (2, 9, 11))
        target[rng.random(target.shape) < 0.1] = 255
        cm.update(torch.from_numpy(pred), torch.from_numpy(target))
        batches.append((pred, target))
    pred = np.concatenate([b[0] for b in batches])
    target = np.concatenate([b[1] for b in batches])
    ref = naive_scores(pred, target, k)
    assert cm.pixel_accuracy() == pytest.approx(ref["acc"])
    np.testing.assert_allclose(cm.iou().numpy(), ref["iou"], equal_nan=True)
    np.testing.assert_allclose(cm.dice().numpy(), ref["dice"], equal_nan=True)
    s = cm.summary()
    assert s["mean_iou"] == pytest.approx(np.nanmean(ref["iou"]))


def test_hand_computed_case():
    # target 0 0 1 1 / pred 0 1 1 1: class 0 TP1 FN1 -> IoU 1/2; class 1 TP2 FP1 -> IoU 2/3
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([0, 1, 1, 1]), torch.tensor([0, 0, 1, 1]))
    assert cm.matrix.tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    assert cm.pixel_accuracy() == pytest.approx(0.75)
    iou = cm.iou()
    assert iou[0].item() == pytest.approx(0.5) and iou[1].item() == pytest.approx(2 / 3)
    assert math.isnan(iou[2].item())  # absent class is excluded from the mean
    assert cm.summary()["mean_iou"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert cm.dice()[1].item() == pytest.approx(0.8)
    assert "pixel accuracy 0.7500" in format_table(cm.summary(["a", "b", "c"]))


def test_bad_inputs():
    cm = ConfusionMatrix(2)
    with pytest.raises(ValueError, match=r"prediction shape \(3,\) != target shape \(2,\)"):
        cm.update(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match="class ids must lie in 0..1"):
        cm.update(torch.tensor([0, 5]), torch.tensor([0, 1]))
