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
