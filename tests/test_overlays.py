"""Overlays blended a band of rows at a time are the overlay blended whole (a naive per-pixel
reference), for every image kind the readers return."""

import numpy as np
import pytest

import pixelwise.overlays as overlays


def _reference(image: np.ndarray, mask: np.ndarray, palette: np.ndarray, alpha: float):
    """Pixel by pixel: the image as uint8 RGB (scaled by its maximum unless uint8), and where the
    mask is not 0, (1 - alpha) * pixel + alpha * colour, rounded half to even."""
    scaled = image.dtype != np.uint8
    top = max(int(image.max()), 1)
    out = np.zeros((*mask.shape, 3), np.uint8)
    for y in range(mask.shape[0]):
        for x in range(mask.shape[1]):
            pixel = (image[y, x] / top * 255).astype(np.uint8) if scaled else image[y, x]
            pixel = np.broadcast_to(pixel, 3).astype(np.float64)
            if mask[y, x]:
                pixel = (1 - alpha) * pixel + alpha * palette[mask[y, x]].astype(np.float64)
            out[y, x] = np.round(pixel)
    return out


@pytest.mark.parametrize(
    "dtype, channels, top",
    [(np.uint8, 3, 255), (np.uint8, 1, 255), (np.uint16, 1, 4000), (np.float32, 3, 1.0)],
)
def test_banded_overlay_is_the_whole_overlay(monkeypatch, dtype, channels, top):
    rng = np.random.default_rng(0)
    image = (rng.random((23, 31, channels)) * top).astype(dtype)
    mask = rng.integers(0, 4, (23, 31)).astype(np.uint8)
    palette = rng.integers(0, 256, (256, 3)).astype(np.uint8)
    results = []
    for pixels in (1 << 22, 70, 1):  # the whole image at once, a few rows, one row per band
        monkeypatch.setattr(overlays, "BLEND_PIXELS", pixels)
        results.append(np.asarray(overlays.overlay(image, mask, palette)))
        np.testing.assert_array_equal(results[-1], results[0])  # banding changes no pixel
    # the colour term is float32 in the library: halves may round the other way
    difference = results[0].astype(int) - _reference(image, mask, palette, 0.45)
    assert np.abs(difference).max() <= 1 and (difference != 0).mean() < 0.05


def test_instance_overlay_colours_objects_and_outlines_them(monkeypatch):
    monkeypatch.setattr(overlays, "BLEND_PIXELS", 40)
    image = np.full((20, 24, 1), 100, np.uint8)
    labels = np.zeros((20, 24), np.uint16)
    labels[4:12, 5:15] = 1
    labels[14:18, 2:6] = 2
    shown = np.asarray(overlays.instance_overlay(image, labels))
    assert (shown[0, 0] == 100).all()  # background untouched
    assert (shown[4, 5:15] == 255).all() and (shown[4:12, 5] == 255).all()  # inner outline
    inside = shown[6:10, 7:13].reshape(-1, 3)
    assert (inside == inside[0]).all() and not (inside[0] == 100).all()  # one colour per object
    assert not np.array_equal(shown[15, 3], shown[7, 8])  # another object, another colour
