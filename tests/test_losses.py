"""Losses against PyTorch's cross-entropy, a naive weighted mean, and float64 gradcheck."""

import pytest
import torch
import torch.nn.functional as F

from pixelwise.losses import (
    PixelCrossEntropy,
    class_weights_from_counts,
    pixel_cross_entropy,
    soft_dice_loss,
)


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
    f = lambda z: (
        F.cross_entropy(z, target, reduction="none", ignore_index=255) * pw * (target != 255)
    ).sum()
    assert torch.autograd.gradcheck(f, (logits,))
    w = torch.tensor([1.0, 2.0, 1.0, 0.5])
    assert (
        PixelCrossEntropy(w)(logits, target).item() == pixel_cross_entropy(logits, target, w).item()
    )


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


def _cells(size=28, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = np.zeros((size, size), np.int32)
    yy, xx = np.mgrid[:size, :size]
    for i in range(1, 5):
        cy, cx, r = rng.integers(4, size - 4), rng.integers(4, size - 4), rng.integers(2, 5)
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = i
    return labels


def naive_weight_map(labels, w0=10.0, sigma=5.0):
    """Per-pixel loop over every cell pixel: the definition, nothing clever."""
    import numpy as np

    fg = labels > 0
    freq = fg.mean()
    out = np.where(fg, 0.5 / freq, 0.5 / (1 - freq)).astype(np.float64)
    cells = [np.argwhere(labels == i) for i in np.unique(labels) if i > 0]
    for y, x in np.argwhere(~fg):
        d = sorted(np.sqrt(((pts - (y, x)) ** 2).sum(1)).min() for pts in cells)
        if len(d) >= 2:
            out[y, x] += w0 * np.exp(-((d[0] + d[1]) ** 2) / (2 * sigma**2))
    return out


@pytest.mark.parametrize("seed", range(3))
def test_weight_map_equals_naive_reference(seed):
    import numpy as np

    from pixelwise.data.weight_map import unet_weight_map

    labels = _cells(seed=seed)
    np.testing.assert_allclose(
        unet_weight_map(labels), naive_weight_map(labels), rtol=1e-5, atol=1e-4
    )


def test_weight_map_hand_case_and_errors():
    import numpy as np

    from pixelwise.data.weight_map import unet_weight_map

    labels = np.zeros((1, 5), np.int32)
    labels[0, 0], labels[0, 4] = 1, 2  # the middle pixel is 2 from each cell
    w = unet_weight_map(labels, w0=10, sigma=5, balance=False)
    assert w[0, 2] == pytest.approx(1 + 10 * np.exp(-16 / 50))
    assert w[0, 0] == 1.0  # cell pixels get the class weight alone
    with pytest.raises(ValueError, match="labels must be a 2D integer image"):
        unet_weight_map(np.zeros((3, 3), np.float32))
