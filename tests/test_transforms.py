"""Paired transforms: geometry applied jointly, class ids preserved, seeded."""

import numpy as np
import pytest
import torch

from pixelwise.data.transforms import (
    IGNORE_INDEX,
    elastic_deform,
    pad_context,
    random_crop,
    random_flip_rotate,
    resize_pair,
)


def _pair(h=40, w=56):
    rng = np.random.default_rng(0)
    mask = np.zeros((h, w), np.int64)
    mask[10:25, 8:30] = 1
    mask[28:, 35:] = 2
    image = (mask * 80 + rng.integers(0, 20, (h, w)))[..., None].astype(np.uint8)
    return image, mask


def test_elastic_is_joint_seeded_and_keeps_ids():
    image, mask = _pair()
    a = elastic_deform(image, mask, np.random.default_rng(5))
    b = elastic_deform(image, mask, np.random.default_rng(5))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    warped, warped_mask = a
    assert (
        warped.shape == image.shape and warped.dtype == np.uint8 and warped_mask.shape == mask.shape
    )
    assert set(np.unique(warped_mask)) <= {0, 1, 2}
    assert not np.array_equal(warped_mask, mask)  # it did deform
    # image and mask moved together: the bright class-2 region stays bright
    assert warped[..., 0][warped_mask == 2].mean() > warped[..., 0][warped_mask == 0].mean() + 100


def _dihedral(a):
    """The 8 flips/rotations of a square array, as bytes (hashable)."""
    return [np.rot90(b, k).tobytes() for b in (a, a[:, ::-1]) for k in range(4)]


@pytest.mark.parametrize("flips, expected", [("all", 8), ("horizontal", 2)])
def test_flips_reach_the_expected_views_jointly(flips, expected):
    image, mask = _pair(24, 24)
    views = set()
    for seed in range(64):
        im, m = random_flip_rotate(image, mask, np.random.default_rng(seed), flips)
        assert _dihedral(image[..., 0]).index(im[..., 0].tobytes()) == _dihedral(mask).index(
            m.tobytes()
        )
        views.add(m.tobytes())
    assert len(views) == expected
    if flips == "horizontal":  # only the mirror: a label's vertical offset keeps its direction
        assert views == {mask.tobytes(), mask[:, ::-1].tobytes()}
    with pytest.raises(ValueError, match="unknown flips 'up'"):
        random_flip_rotate(image, mask, np.random.default_rng(0), "up")


def test_elastic_zero_sigma_is_identity():
    image, mask = _pair()
    warped, warped_mask = elastic_deform(image, mask, np.random.default_rng(0), sigma=0.0)
    assert np.array_equal(warped, image) and np.array_equal(warped_mask, mask)


def test_resize_pair_halves_and_keeps_ids():
    image, mask = _pair(40, 56)
    small_img, small_mask = resize_pair(image, mask, 0.5)
    assert small_img.shape == (20, 28, 1) and small_mask.shape == (20, 28)
    np.testing.assert_array_equal(small_mask, mask[1::2, 1::2])  # nearest at pixel centres
    assert set(np.unique(small_mask)) <= {0, 1, 2}


def test_pad_context_mirrors_image_and_ignores_mask():
    image, mask = _pair(10, 12)
    img, m = pad_context(image, mask, 3)
    assert img.shape == (16, 18, 1) and m.shape == (16, 18)
    np.testing.assert_array_equal(img[3:-3, 3:-3], image)
    np.testing.assert_array_equal(img[2, 3:-3], image[1])  # reflection
    assert (m[:3] == IGNORE_INDEX).all() and np.array_equal(m[3:-3, 3:-3], mask)


def test_random_crop_pads_small_images_with_ignore():
    image, mask = _pair(10, 12)
    img, m = random_crop(image, mask, 16, np.random.default_rng(0))
    assert img.shape == (16, 16, 1) and (m[10:] == IGNORE_INDEX).all()


def test_tta_equals_plain_for_an_equivariant_model():
    from pixelwise.inference import predict_probs

    net = torch.nn.Conv2d(1, 3, 1)  # pointwise: commutes with flips and rotations
    x = torch.randn(2, 1, 9, 7)
    torch.testing.assert_close(
        predict_probs(net, x, "fp32", tta=True), predict_probs(net, x, "fp32")
    )
    assert predict_probs(net, x, "fp32", scale=0.5).shape == (2, 3, 9, 7)


def test_resizing_keeps_float_images_as_they_are():
    """A float image (a TIFF of 0..1 intensities, or a background-subtracted one with negative
    values) resized for --scale keeps its values; it was rounded to integers and clipped at 0,
    so 0.3 became 0. Integer images are still rounded and clipped to their range."""
    from pixelwise.data.transforms import resize_image

    x = np.full((8, 8, 1), 0.3, np.float32)
    x[:, 4:] = -0.25
    small = resize_image(x, (4, 4))
    assert small.dtype == np.float32
    np.testing.assert_allclose(small[:, :1], 0.3, atol=1e-6)
    np.testing.assert_allclose(small[:, -1:], -0.25, atol=1e-6)
    u8 = resize_image(np.full((8, 8, 1), 200, np.uint8), (3, 3))
    assert u8.dtype == np.uint8 and (u8 == 200).all()


@pytest.mark.parametrize("in_size, out_size", [(100, 50), (101, 37), (37, 101), (64, 64), (7, 1)])
def test_resize_weights_are_torchs_antialiased_bilinear(in_size, out_size):
    """Each output pixel of a line, from its taps and weights, is what PyTorch's antialiased
    bilinear resize gives (shrinking and enlarging), for any set of output pixels."""
    import torch
    import torch.nn.functional as F

    from pixelwise.data.transforms import resize_weights

    line = np.random.default_rng(0).random(in_size).astype(np.float32)
    x = torch.from_numpy(line)[None, None, None]
    size = (1, out_size)
    expected = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    expected = expected[0, 0, 0].numpy()
    some = np.array([out_size - 1, 0, out_size // 2, 0])  # any order, repeats
    for out in (np.arange(out_size), some):
        taps, weights = resize_weights(out, in_size, out_size)
        assert taps.shape == weights.shape and taps.min() >= 0 and taps.max() < in_size
        np.testing.assert_allclose((weights * line[taps]).sum(1), expected[out], atol=1e-5)


def test_resize_image_of_a_large_photo_a_channel_at_a_time(monkeypatch):
    """Above BIG_IMAGE values, resize_image converts one channel to float32 at a time (a
    48-megapixel photo's copy: 192 MB, not 576 MB), with the same values as all at once."""
    import tracemalloc

    from pixelwise.data import transforms

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    deep = rng.integers(0, 65536, (300, 400, 3), dtype=np.uint16)
    at_once = {a.dtype: transforms.resize_image(a, (75, 133)) for a in (photo, deep)}
    monkeypatch.setattr(transforms, "BIG_IMAGE", photo.size - 1, raising=False)
    tracemalloc.start()
    try:
        small = transforms.resize_image(photo, (75, 133))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(small, at_once[np.dtype(np.uint8)])
    np.testing.assert_array_equal(transforms.resize_image(deep, (75, 133)), at_once[deep.dtype])
    assert peak < 2 * 4 * 300 * 400, f"{peak / (300 * 400):.1f} bytes per pixel"
