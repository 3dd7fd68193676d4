"""Paired transforms: every geometric change is applied to the image and its mask together.

Arrays are (H, W, C) images and (H, W) masks, as returned by :mod:`pixelwise.data.io`.
Randomness comes from an explicit ``numpy.random.Generator`` so that a sample's
augmentation is a pure function of (seed, epoch, index): resumed runs replay it exactly.
"""

from __future__ import annotations

import numpy as np

IGNORE_INDEX = 255


def pad_to(image: np.ndarray, mask: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pad to at least (height, width): image by reflection, mask with the ignore index."""
    ph, pw = max(0, height - image.shape[0]), max(0, width - image.shape[1])
    if ph == 0 and pw == 0:
        return image, mask
    mode = "reflect" if ph < image.shape[0] and pw < image.shape[1] else "symmetric"
    image = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode=mode)
    mask = np.pad(mask, ((0, ph), (0, pw)), constant_values=IGNORE_INDEX)
    return image, mask


def random_crop(
    image: np.ndarray, mask: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A random ``size`` x ``size`` window of both arrays (padded first when smaller)."""
    image, mask = pad_to(image, mask, size, size)
    top = int(rng.integers(0, image.shape[0] - size + 1))
    left = int(rng.integers(0, image.shape[1] - size + 1))
    return image[top : top + size, left : left + size], mask[top : top + size, left : left + size]


def random_flip_rotate(
    image: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Random horizontal/vertical flips, plus a random multiple of 90 degrees for square arrays."""
    if rng.random() < 0.5:
        image, mask = image[:, ::-1], mask[:, ::-1]
    if rng.random() < 0.5:
        image, mask = image[::-1], mask[::-1]
    k = int(rng.integers(0, 4))
    if image.shape[0] == image.shape[1] and k:
        image, mask = np.rot90(image, k), np.rot90(mask, k)
    return image, mask


def elastic_deform(
    image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, grid: int = 3, sigma: float = 10.0
) -> tuple[np.ndarray, np.ndarray]:
    """U-Net's elastic deformation: random displacements on a coarse ``grid`` x ``grid`` grid
    (Gaussian, ``sigma`` pixels), interpolated bicubically to every pixel; the image is
    resampled bicubically, the mask by nearest neighbour, both with mirrored borders."""
    from scipy import ndimage

    h, w = mask.shape
    coarse = rng.normal(0.0, sigma, (2, grid, grid))
    field = [ndimage.zoom(c, (h / grid, w / grid), order=3, mode="nearest", grid_mode=False) for c in coarse]
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    coords = np.stack([yy + field[0].astype(np.float32), xx + field[1].astype(np.float32)])
    lo, hi = (0, 255) if image.dtype == np.uint8 else (0, np.iinfo(image.dtype).max if image.dtype.kind in "ui" else None)
    channels = [ndimage.map_coordinates(image[..., c].astype(np.float32), coords, order=3, mode="mirror")
                for c in range(image.shape[-1])]
    warped = np.stack(channels, axis=-1)
    if hi is not None:
        warped = np.clip(np.rint(warped), lo, hi)
    warped_mask = ndimage.map_coordinates(mask, coords, order=0, mode="mirror")
    return warped.astype(image.dtype), warped_mask.astype(mask.dtype)
