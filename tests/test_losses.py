"""Losses against PyTorch's cross-entropy, a naive weighted mean, and float64 gradcheck."""

import pytest
import torch
import torch.nn.functional as F

from pixelwise.losses import PixelCrossEntropy, class_weights_from_counts, pixel_cross_entropy, soft_dice_loss


def _data(seed=0, k=4):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, k, 5, 6, generator=g, dtype=torch.float64)
    target = torch.randint(0, k, (2, 5, 6), generator=g)
    target[0, 0, :3] = 255
    return logits, target


def test_equals_torch_cross_entropy_with_class_weights_and_ignore():
    logits, target = _data()
    w = torch.tensor([0.5, 1.0, 2.0, 3.0])
    ours = pixel_cross_entropy(logits, target, class_weights=w)
    ref = F.cross_entropy(logits.float(), target, weight=w, ignore_index=255)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)


def test_pixel_weights_against_naive_mean():
    logits, target = _data(1)
    pw = torch.rand(target.shape, generator=torch.Generator().manual_seed(3))
    ours = pixel_cross_entropy(logits, target, pixel_weights=pw)
    num = den = 0.0
    logp = logits.log_softmax(1)
    for n in range(2):
        for y in range(5):
            for x in range(6):
                t = int(target[n, y, x])
                if t == 255:
                    continue
                num += -pw[n, y, x].item() * logp[n, t, y, x].item()
                den += pw[n, y, x].item()
    assert ours.item() == pytest.approx(num / den, rel=1e-5)


def test_gradcheck_and_module_equals_function():
    logits, target = _data(2)
    logits.requires_grad_(True)
    pw = torch.rand(target.shape, dtype=torch.float64)
    # the loss casts to float32 internally, so check the float64 path of the same formula
    f = lambda z: (F.cross_entropy(z, target, reduction="none", ignore_index=255) * pw * (target != 255)).sum()
    assert torch.autograd.gradcheck(f, (logits,))
    w = torch.tensor([1.0, 2.0, 1.0, 0.5])
    assert PixelCrossEntropy(w)(logits, target).item() == pixel_cross_entropy(logits, target, w).item()


def test_shape_errors_name_shapes():
    with pytest.raises(ValueError, match=r"got \(1, 2, 3, 3\) and \(1, 4, 4\)"):
        pixel_cross_entropy(torch.zeros(1, 2, 3, 3), torch.zeros(1, 4, 4, dtype=torch.long))


def test_dice_perfect_prediction_near_zero():
    target = torch.randint(0, 3, (1, 8, 8))
    logits = F.one_hot(target, 3).permute(0, 3, 1, 2).float() * 50
    assert soft_dice_loss(logits, target).item() < 1e-3


def test_median_frequency_weights():
    w = class_weights_from_counts(torch.tensor([100, 25, 0, 50]))
    # frequencies 100/175, 25/175, 50/175; median of present = 50/175
    assert w.tolist() == pytest.approx([0.5, 2.0, 0.0, 1.0])
