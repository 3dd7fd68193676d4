"""Augmentation for appearance shift: geometry stays joint, labels stay valid, seeded."""

import numpy as np
import pytest

from pixelwise.data.appearance import APPEARANCES, random_appearance, rotate_hue
from pixelwise.data.datasets import SegmentationDataset
from pixelwise.data.encoding import MaskEncoding, Normalization
from pixelwise.data.layouts import Item
from pixelwise.data.transforms import (
    IGNORE_INDEX,
    Augmentation,
    composite,
    fill_foreground,
    grown_box,
    random_box_crop,
    random_resized_crop,
    random_rotate,
    resize_mask,
)


def _blob(h=60, w=80, value=200):
    """A bright rectangle (class 1) on a dark noisy background: the image encodes the mask."""
    rng = np.random.default_rng(0)
    mask = np.zeros((h, w), np.int64)
    mask[15:45, 20:60] = 1
    image = np.where(mask[..., None] == 1, value, rng.integers(0, 40, (h, w, 3))).astype(np.uint8)
    return image, mask


def _agree(image, mask):
    """Away from edges, the bright pixels are exactly the class-1 pixels."""
    from scipy import ndimage

    inside = ndimage.binary_erosion(mask == 1, iterations=2)
    outside = ndimage.binary_erosion(mask == 0, iterations=2)
    return image[..., 0][inside].min() > 150 and image[..., 0][outside].max() < 100


def test_random_resized_crop_is_joint_and_in_range():
    image, mask = _blob()
    seen = set()
    for seed in range(20):
        img, m = random_resized_crop(image, mask, 32, np.random.default_rng(seed), area=(0.3, 1.0))
        assert img.shape == (32, 32, 3) and img.dtype == np.uint8 and m.shape == (32, 32)
        assert set(np.unique(m)) <= {0, 1}
        if (m == 1).sum() > 20 and (m == 0).sum() > 20:
            assert _agree(img, m)
        seen.add(int((m == 1).sum()))
    assert len(seen) > 10  # windows differ in place and scale


def test_random_resized_crop_whole_image_when_area_is_one():
    image, mask = _blob(40, 40)
    img, m = random_resized_crop(
        image, mask, 40, np.random.default_rng(0), area=(1.0, 1.0), ratio=(1.0, 1.0)
    )
    assert np.array_equal(m, mask) and np.array_equal(img, image)


def test_grown_box_by_hand():
    fg = np.zeros((60, 80), bool)
    fg[15:45, 20:60] = True  # 40 wide, 30 high
    assert grown_box(fg, (0, 0, 0, 0)) == (20, 15, 60, 45)
    assert grown_box(fg, (0.25, 0.1, 0.5, -0.1)) == (10, 12, 80, 42)  # right side clipped at 80
    assert grown_box(fg, (-0.1, 0, 0, 0)) == (24, 15, 60, 45)  # a negative growth cuts in
    assert grown_box(np.zeros((5, 5), bool), (0, 0, 0, 0)) is None


def test_random_box_crop_frames_the_object():
    image, mask = _blob()  # object rows 15:45, columns 20:60 of 60 x 80
    img, m = random_box_crop(image, mask, 32, np.random.default_rng(0), grow=(0.0, 0.0))
    assert img.shape == (32, 32, 3) and (m == 1).all() and img[..., 0].min() > 150
    # grown by half its size on every side: the whole 80 x 60 image, resized
    img, m = random_box_crop(image, mask, 40, np.random.default_rng(0), grow=(0.5, 0.5))
    assert np.array_equal(m, resize_mask(mask, (40, 40)))
    sizes = {
        int(random_box_crop(image, mask, 32, np.random.default_rng(s), (0.0, 0.3))[1].sum())
        for s in range(10)
    }
    assert len(sizes) > 5 and all(s >= 32 * 32 / 1.6**2 for s in sizes)  # the object fills most
    empty = np.zeros_like(mask)
    assert random_box_crop(image, empty, 40, np.random.default_rng(0))[1].shape == (40, 40)


def test_random_rotate_moves_image_and_mask_together():
    image, mask = _blob()
    img, m = random_rotate(image, mask, np.random.default_rng(3), 30)
    assert img.shape == image.shape and img.dtype == image.dtype
    assert set(np.unique(m)) <= {0, 1, IGNORE_INDEX}
    assert not np.array_equal(m, mask)
    valid = np.where(m == IGNORE_INDEX, 0, m)
    assert _agree(img, valid)
    assert (m[0, 0] == IGNORE_INDEX) or (m[-1, -1] == IGNORE_INDEX)  # corners come from outside
    assert (m == IGNORE_INDEX).mean() < 0.3


def test_fill_foreground_removes_the_object():
    image, mask = _blob()
    plate = fill_foreground(image, mask == 1)
    assert plate.shape == image.shape and plate.dtype == image.dtype
    assert plate[..., 0][mask == 1].max() < 100  # the bright object is gone
    assert np.array_equal(plate[mask == 0], image[mask == 0])  # the rest untouched


def test_composite_pastes_foreground_on_other_background():
    image, mask = _blob(value=200)
    other, other_mask = _blob(value=120)
    other = other.copy()
    other[..., 1] = 90  # a distinct background colour
    other_mask = np.roll(other_mask, 5, axis=1)
    out = composite(image, mask, other, other_mask)
    from scipy import ndimage

    inside = ndimage.binary_erosion(mask == 1, iterations=2)
    assert np.array_equal(out[inside], image[inside])  # the labelled object is kept
    outside = ndimage.binary_erosion(mask == 0, iterations=2)
    assert np.abs(out[..., 1][outside].astype(int) - 90).max() <= 1  # the other photo's background
    assert out[..., 0][outside].max() < 100  # not the other photo's (unlabelled) object


def test_rotate_hue_identity_and_grey():
    x = np.random.default_rng(0).random((5, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(rotate_hue(x, 0.0), x, atol=1e-6)
    np.testing.assert_allclose(rotate_hue(x, 1.0), x, atol=1e-5)
    grey = np.repeat(x[..., :1], 3, -1)
    np.testing.assert_allclose(rotate_hue(grey, 0.3), grey, atol=1e-5)


@pytest.mark.parametrize("preset", [p for p in APPEARANCES if p != "none"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_appearance_keeps_shape_dtype_and_is_seeded(preset, dtype):
    rng = np.random.default_rng(0)
    top = np.iinfo(dtype).max
    image = (rng.random((48, 48, 3)) * top).astype(dtype)
    outs = [random_appearance(image, np.random.default_rng(s), preset) for s in range(8)]
    assert all(o.shape == image.shape and o.dtype == dtype for o in outs)
    assert np.array_equal(outs[0], random_appearance(image, np.random.default_rng(0), preset))
    assert sum(not np.array_equal(o, image) for o in outs) >= 6


def test_appearance_none_is_identity_and_unknown_refused():
    image = np.zeros((4, 4, 1), np.uint8)
    assert random_appearance(image, np.random.default_rng(0), "none") is image
    with pytest.raises(ValueError, match="unknown appearance 'x'"):
        random_appearance(image, np.random.default_rng(0), "x")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"zoom": (0.5, 1.5)}, "zoom must be two area fractions"),
        ({"composite": 2.0}, "composite is a probability"),
        ({"appearance": "sepia"}, "unknown appearance 'sepia'"),
    ],
)
def test_augmentation_settings_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Augmentation(**kwargs)


def _blob_dataset(tmp_path, augmentation, n=4):
    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    items = []
    for i in range(n):
        image, mask = _blob(value=150 + 20 * i)
        Image.fromarray(image).save(tmp_path / "images" / f"{i}.png")
        Image.fromarray((mask * 255).astype(np.uint8)).save(tmp_path / "masks" / f"{i}.png")
        items.append(
            Item(tmp_path / "images" / f"{i}.png", tmp_path / "masks" / f"{i}.png", str(i))
        )
    return SegmentationDataset(
        items,
        2,
        MaskEncoding((0, 255)),
        Normalization([0.0] * 3, [1.0] * 3, 1.0),
        crop=32,
        augment=True,
        flips="horizontal",
        augmentation=augmentation,
    )


def test_dataset_augmentation_is_a_function_of_seed_epoch_and_draw(tmp_path):
    ds = _blob_dataset(tmp_path, Augmentation((0.3, 1.0), 15.0, "photo", 0.5))
    a, b = ds[1], ds[1]
    assert all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(a, b))
    assert not np.array_equal(ds[1][0].numpy(), ds[5][0].numpy())  # another draw of the same item
    ds.set_epoch(1)
    assert not np.array_equal(ds[1][0].numpy(), a[0].numpy())
    image, target = ds[2]
    assert image.shape == (3, 32, 32) and set(np.unique(target.numpy())) <= {0, 1, IGNORE_INDEX}


def test_a_pasted_background_keeps_its_look_across_bit_depths_and_percentiles(tmp_path):
    """Compositing a 16-bit image's object onto an 8-bit photo's background: the background is
    moved into the 16-bit range (not pasted as 8-bit values, 257x too dark); with percentile
    normalisation each image's own percentiles map onto the other's. Checked on the training
    sample: the pasted background is the plate's grey as the model sees the plate."""
    from PIL import Image

    from pixelwise.data.datasets import SegmentationDataset
    from pixelwise.data.encoding import MaskEncoding, Normalization
    from pixelwise.data.layouts import find_pairs
    from pixelwise.data.transforms import Augmentation

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 1
    deep = np.full((32, 32), 1000, np.uint16)  # a dim 16-bit slide, object at 3000
    deep[mask == 1] = 3000
    Image.fromarray(deep).save(tmp_path / "images" / "a.png")
    Image.fromarray(np.full((32, 32), 128, np.uint8)).save(tmp_path / "images" / "b.png")
    for name in ("a", "b"):
        Image.fromarray(mask if name == "a" else np.zeros_like(mask)).save(
            tmp_path / "masks" / f"{name}.png"
        )
    outside = np.zeros((32, 32), bool)
    outside[:5], outside[-5:] = True, True
    for percentiles, expected in ((None, 128 / 255), ([0.0, 100.0], 0.0)):
        norm = Normalization([0.0], [1.0], 65535.0, percentiles)
        ds = SegmentationDataset(
            find_pairs(tmp_path), 2, MaskEncoding(), norm, seed=0,
            augmentation=Augmentation(composite=1.0),
        )  # fmt: skip
        x = ds[0][0][0].numpy()
        # the plate, grey 128 of 255: by bit depth 0.502 of full scale; by its own (flat)
        # percentiles 0, the value of its darkest pixel
        assert np.allclose(x[outside], expected, atol=2e-3), (percentiles, x[outside].mean())
        inside = x[12:20, 12:20]
        assert np.allclose(inside, 3000 / 65535 if percentiles is None else 1.0, atol=2e-3)
