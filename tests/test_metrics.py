"""Confusion-matrix and boundary metrics against naive loops and hand-computed cases."""

import math

import numpy as np
import pytest
import torch

from pixelwise.metrics import (
    ConfusionMatrix,
    ImageScores,
    boundary_f1,
    format_table,
    hausdorff95,
)


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
    class_acc = [tp[c] / (tp[c] + fn[c]) if tp[c] + fn[c] else math.nan for c in range(k)]
    return {"acc": correct / total, "iou": iou, "dice": dice, "class_acc": class_acc}


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
    assert s["mean_accuracy"] == pytest.approx(np.nanmean(ref["class_acc"]))
    freq = np.array([(target == c).sum() for c in range(k)]) / (target != 255).sum()
    assert s["frequency_weighted_iou"] == pytest.approx(np.nansum(freq * np.array(ref["iou"])))


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
    # class accuracy: class 0 1 of 2, class 1 2 of 2; class 2 has no reference pixel
    assert cm.class_accuracy()[:2].tolist() == [0.5, 1.0]
    assert cm.summary()["mean_accuracy"] == pytest.approx(0.75)
    # frequency weighted IoU: both classes have half the reference pixels
    assert cm.frequency_weighted_iou() == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    assert "mean class accuracy 0.7500" in format_table(cm.summary(["a", "b", "c"]))
    # the matrix itself, and the pairs most taken one for the other: a's 2 pixels, 1 taken for b
    assert cm.summary()["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    assert format_table(cm.summary(["a", "b", "c"])).endswith(
        "\nmost confused: a taken for b 50.0% of its pixels"
    )
    cm.update(torch.tensor([2] * 3 + [0] * 97), torch.tensor([1] * 100))  # b: 3 of 102 for c
    said = format_table(cm.summary(["a", "b", "c"]))
    assert "most confused: b taken for a 95.1% of its pixels, a taken for b 50.0% of its " in said
    assert "b taken for c 2.9% of its pixels" in said  # 3 of 102, over the 1 % shown
    two = ConfusionMatrix(2)
    two.update(torch.tensor([0, 1]), torch.tensor([1, 1]))
    assert "most confused" not in format_table(two.summary())  # the table says it for two


def test_bad_inputs():
    cm = ConfusionMatrix(2)
    with pytest.raises(ValueError, match=r"prediction shape \(3,\) != target shape \(2,\)"):
        cm.update(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match="class ids must lie in 0..1"):
        cm.update(torch.tensor([0, 5]), torch.tensor([0, 1]))


def naive_boundary_f1(ref: np.ndarray, pred: np.ndarray, k: int, ignore: int = 255) -> list:
    """BF score from its definition: a pixel of a class is on its outline when one of its four
    neighbours inside the image is of another class (ignored pixels are not of the class; the
    outline has no ignored pixel); each outline pixel's distance to the other outline by brute
    force over all its pixels; F1 of the shares within 0.75 % of the diagonal."""
    h, w = ref.shape
    theta = 0.0075 * math.hypot(h, w)
    valid = ref != ignore

    def outline(labels, c):
        points = []
        for y in range(h):
            for x in range(w):
                if labels[y, x] != c or not valid[y, x]:
                    continue
                near = [(y + dy, x + dx) for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1))]
                if any(0 <= v < h and 0 <= u < w and labels[v, u] != c for v, u in near):
                    points.append((y, x))
        return np.array(points, float).reshape(-1, 2)

    def share_near(a, b):
        d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)).min(1)
        return float((d <= theta).mean())

    out = []
    for c in range(k):
        r, p = ref == c, (pred == c) & valid
        if not r.any() and not p.any():
            out.append(math.nan)
            continue
        a, b = outline(np.where(valid, pred, -1), c), outline(ref, c)
        if not len(a) or not len(b):
            out.append(float(not len(a) and not len(b) and (r == p).all()))
            continue
        precision, recall = share_near(a, b), share_near(b, a)
        out.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return out


def blobs(rng, shape, k):
    """A random label image of a few overlapping rectangles of k classes."""
    labels = np.zeros(shape, np.int64)
    for _ in range(6):
        y, x = rng.integers(0, shape[0] - 4), rng.integers(0, shape[1] - 4)
        labels[y : y + rng.integers(3, 25), x : x + rng.integers(3, 25)] = rng.integers(0, k)
    return labels


@pytest.mark.parametrize("seed", range(6))
def test_boundary_f1_matches_a_brute_force_loop(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(20, 60)), int(rng.integers(20, 60)))
    ref, pred = blobs(rng, shape, 4), blobs(rng, shape, 4)
    if seed % 2:  # a void region, and predictions made near the reference
        ref[rng.integers(0, 10) : 15, 5:12] = 255
        pred = np.where(rng.random(shape) < 0.9, np.where(ref == 255, 0, ref), pred)
    ours = boundary_f1(ref, pred, 5)
    np.testing.assert_allclose(ours, naive_boundary_f1(ref, pred, 5), equal_nan=True)
    assert np.isnan(ours[4])  # in neither image


def test_boundary_f1_hand_computed_cases():
    ref = np.zeros((100, 100), np.int64)
    ref[20:60, 20:60] = 1
    assert boundary_f1(ref, ref, 2).tolist() == [1.0, 1.0]
    # tolerance 0.75 % of 141.4 = 1.06 px: one pixel off is on the outline, two are not
    assert boundary_f1(ref, np.roll(ref, 1, axis=1), 2).tolist() == [1.0, 1.0]
    # 4 px to the right: of the 156 outline pixels of the square, 37 of its top row, 37 of its
    # bottom row and the 2 ends of one side lie within 1.06 px of the other outline
    assert boundary_f1(ref, np.roll(ref, 4, axis=1), 2)[1] == pytest.approx(76 / 156)
    empty = np.zeros_like(ref)
    assert boundary_f1(ref, empty, 2)[1] == 0.0  # missed object: no predicted outline
    assert boundary_f1(empty, empty, 2).tolist()[0] == 1.0  # both all background: agree
    assert math.isnan(boundary_f1(empty, empty, 2)[1])
    assert boundary_f1(np.ones_like(ref), empty, 2).tolist() == [0.0, 0.0]
    # a ring of void around the square: the predicted outline inside it is not scored
    void = ref.copy()
    void[18:62, 18:62][(void[18:62, 18:62] == 0)] = 255
    grown = np.zeros_like(ref)
    grown[19:61, 19:61] = 1
    assert boundary_f1(void, grown, 2)[1] == 1.0


def naive_hd95(ref, pred, k, ignore=255):
    """MONAI's HD95 the slow way: edges from scipy's binary erosion, every pair of edge pixels'
    distance, then each direction's 95th percentile and the larger."""
    from scipy import ndimage

    valid = ref != ignore
    out = []
    for c in range(k):
        r, p = ref == c, (pred == c) & valid
        a = np.argwhere((p ^ ndimage.binary_erosion(p)) & valid)
        b = np.argwhere((r ^ ndimage.binary_erosion(r)) & valid)
        if not len(a) and not len(b):
            out.append(math.nan)
        elif not len(a) or not len(b):
            out.append(math.hypot(*ref.shape))
        else:
            d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
            out.append(max(np.percentile(d.min(1), 95), np.percentile(d.min(0), 95)))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_hd95_matches_a_brute_force_of_monais_definition(seed):
    rng = np.random.default_rng(seed + 10)
    shape = (int(rng.integers(20, 60)), int(rng.integers(20, 60)))
    ref, pred = blobs(rng, shape, 4), blobs(rng, shape, 4)
    if seed % 2:
        ref[rng.integers(0, 10) : 15, 5:12] = 255
        pred = np.where(rng.random(shape) < 0.9, np.where(ref == 255, 0, ref), pred)
    ours = hausdorff95(ref, pred, 5)
    np.testing.assert_allclose(ours, naive_hd95(ref, pred, 5), rtol=1e-5, equal_nan=True)
    assert np.isnan(ours[4])


def test_hd95_hand_computed_cases():
    ref = np.zeros((100, 100), np.int64)
    ref[20:60, 20:60] = 1
    assert hausdorff95(ref, ref, 2).tolist() == [0.0, 0.0]
    assert hausdorff95(ref, np.roll(ref, 4, axis=1), 2)[1] == 4.0  # the sides, 4 px apart
    assert hausdorff95(ref, np.zeros_like(ref), 2)[1] == pytest.approx(math.hypot(100, 100))
    # the image's edge is an edge of the mask that reaches it (as MONAI erodes): background
    # is the whole image but the square, its edge the image's border and the square's outline
    grown = np.zeros_like(ref)
    grown[20:70, 20:60] = 1  # 10 px longer downwards: most of both outlines agree
    assert (
        hausdorff95(ref, grown, 2)[1] == pytest.approx(naive_hd95(ref, grown, 2)[1])
        and 0 < hausdorff95(ref, grown, 2)[1] <= 10
    )


def test_image_scores_average_each_class_over_the_images_that_have_it():
    ref = np.zeros((50, 50), np.int64)
    ref[10:30, 10:30] = 1
    scores = ImageScores(3)
    scores.add(ref, ref)  # class 1: 1.0
    scores.add(np.roll(ref, 5, axis=0), ref)  # class 1 moved down beyond the tolerance
    scores.add(np.zeros_like(ref), np.zeros_like(ref))  # class 1 in neither: not averaged
    bf = boundary_f1(ref, np.roll(ref, 5, axis=0), 3)
    summary = scores.summary(["a", "b", "c"])
    assert summary["per_class"]["b"]["boundary_f1"] == pytest.approx((1.0 + bf[1]) / 2)
    assert summary["per_class"]["c"]["boundary_f1"] is None
    assert summary["mean_boundary_f1"] == pytest.approx(
        ((1.0 + bf[0] + 1.0) / 3 + (1.0 + bf[1]) / 2) / 2
    )
    assert scores.total.matrix.sum() == 3 * 50 * 50
    table = format_table(summary)
    assert "BF" in table and f"mean BF {summary['mean_boundary_f1']:.4f}" in table
    hd = hausdorff95(ref, np.roll(ref, 5, axis=0), 3)
    assert summary["per_class"]["b"]["hd95"] == pytest.approx(hd[1] / 2)  # 0 and hd[1]
    assert summary["per_class"]["c"]["hd95"] is None
    assert f"mean HD95 {summary['mean_hd95']:.2f} px" in table


def test_the_examples_in_the_metrics_docstrings_hold():
    import doctest

    import pixelwise.losses
    import pixelwise.metrics

    for module in (pixelwise.metrics, pixelwise.losses):
        assert doctest.testmod(module).failed == 0


def test_mean_iou_interval_is_the_bootstrap_of_the_images_a_naive_loop_computes():
    """Each draw of images with replacement sums their confusion matrices and takes the mean
    IoU, as a loop over ConfusionMatrix does; the interval is the draws' central 95 %."""
    rng = np.random.default_rng(3)
    scores = ImageScores(3)
    for i in range(8):
        target = rng.integers(0, 3, (12, 12))
        noise = rng.random((12, 12)) < 0.1 + 0.05 * i
        scores.add(np.where(noise, rng.integers(0, 3, (12, 12)), target), target)
    lo, hi = scores.mean_iou_interval(resamples=200, seed=5)
    draws = np.random.default_rng(5).integers(0, 8, (200, 8))
    means = []
    for draw in draws:
        total = ConfusionMatrix(3)
        for i in draw:
            total.merge(scores.images[i])
        means.append(total.iou().nanmean().item())
    assert (lo, hi) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])), abs=1e-12)
    assert lo < scores.total.iou().nanmean().item() < hi
    summary = scores.summary()
    assert summary["mean_iou_interval"] == scores.mean_iou_interval()
    assert "mean IoU 95 % interval" in format_table(summary)


def test_mean_iou_interval_of_alike_images_is_their_value_and_absent_for_few():
    scores = ImageScores(2)
    target = np.zeros((4, 4), np.int64)
    target[:2] = 1
    prediction = target.copy()
    prediction[0, 0] = 0
    for _ in range(5):
        scores.add(prediction, target)
    value = scores.total.iou().nanmean().item()
    assert scores.mean_iou_interval() == pytest.approx([value, value])
    few = ImageScores(2)
    for _ in range(4):
        few.add(prediction, target)
    assert few.mean_iou_interval() is None and "mean_iou_interval" not in few.summary()


def test_mean_interval_of_per_image_scores_against_a_naive_loop():
    """The DSB mean AP's interval: the mean of each draw of images, as a loop computes it."""
    from pixelwise.metrics import mean_interval

    values = np.random.default_rng(2).random(9)
    draws = np.random.default_rng(4).integers(0, 9, (300, 9))
    means = [values[draw].mean() for draw in draws]
    expected = tuple(np.percentile(means, [5, 95]))
    assert tuple(mean_interval(values, level=0.9, resamples=300, seed=4)) == pytest.approx(expected)
    assert mean_interval(values[:4]) is None
