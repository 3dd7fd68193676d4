"""Appearance augmentation: changes to how an image looks that leave its labels valid.

From-scratch models see a few collections of photos or slides; users bring others (another
camera, stain, exposure, compression). Training with these random changes is what lets a model
trained here hold up on images it never saw. Each function maps an (H, W, C) ``uint8`` or
``uint16`` image to one of the same shape and dtype, drawing its randomness from the given
``numpy.random.Generator`` (so a sample stays a pure function of seed, epoch and draw).

Presets (``pixelwise train --appearance``):

- ``photo``: brightness, contrast, saturation and hue jitter, greyscale, Gaussian blur, sensor
  noise, JPEG re-compression.
- ``microscopy``: stain jitter in haematoxylin-eosin-DAB space (colour images), brightness,
  contrast and gamma jitter, inversion (fluorescence <-> brightfield look), greyscale, blur,
  noise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pixelwise.constants import APPEARANCES
from pixelwise.data.encoding import full_scale, to_unit


def _back(x: np.ndarray, top: float, dtype) -> np.ndarray:
    return (
        np.clip(np.rint(x * top), 0, top).astype(dtype)
        if np.dtype(dtype).kind in "ui"
        else x.astype(dtype)
    )


def _grey(x: np.ndarray) -> np.ndarray:
    return x @ np.array([0.299, 0.587, 0.114], np.float32) if x.shape[-1] == 3 else x[..., 0]


def colour_jitter(
    x: np.ndarray, rng: np.random.Generator, strength: float = 0.4, hue: float = 0.05
) -> np.ndarray:
    """Brightness, contrast and saturation scaled by factors in [1 - strength, 1 + strength], hue
    rotated by up to ``hue`` of a turn, in random order (x float in [0, 1])."""
    ops = rng.permutation(4)
    for op in ops:
        f = float(rng.uniform(1 - strength, 1 + strength))
        if op == 0:
            x = x * f
        elif op == 1:
            x = (x - _grey(x).mean()) * f + _grey(x).mean()
        elif op == 2 and x.shape[-1] == 3:
            g = _grey(x)[..., None]
            x = (x - g) * f + g
        elif op == 3 and x.shape[-1] == 3 and hue > 0:
            x = rotate_hue(np.clip(x, 0, 1), float(rng.uniform(-hue, hue)))
    return np.clip(x, 0, 1)


def rotate_hue(x: np.ndarray, turns: float) -> np.ndarray:
    """Rotate the hue of an RGB image (float in [0, 1]) by ``turns`` of the colour circle, as a
    rotation about the grey axis (luminance-preserving up to clipping)."""
    angle = 2 * np.pi * turns
    c, s = np.cos(angle), np.sin(angle)
    k = np.full((3, 3), (1 - c) / 3, np.float32) + np.eye(3, dtype=np.float32) * c
    k += np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], np.float32) * s / np.sqrt(3)
    return x @ k.T


def gaussian_blur(x: np.ndarray, rng: np.random.Generator, max_sigma: float = 1.5) -> np.ndarray:
    import cv2

    sigma = float(rng.uniform(0.3, max_sigma))
    return cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT).reshape(x.shape)


def sensor_noise(x: np.ndarray, rng: np.random.Generator, max_sigma: float = 0.04) -> np.ndarray:
    return np.clip(
        x + rng.normal(0, rng.uniform(0.005, max_sigma), x.shape).astype(np.float32), 0, 1
    )


def jpeg_recompress(
    x: np.ndarray, rng: np.random.Generator, quality: tuple[int, int] = (30, 90)
) -> np.ndarray:
    import cv2

    q = int(rng.integers(quality[0], quality[1] + 1))
    u8 = np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)
    bgr = u8[..., ::-1] if u8.shape[-1] == 3 else u8[..., 0]
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(bgr), [cv2.IMWRITE_JPEG_QUALITY, q])
    decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    decoded = decoded[..., ::-1] if decoded.ndim == 3 else decoded[..., None]
    return decoded.astype(np.float32) / 255


def stain_jitter(
    x: np.ndarray, rng: np.random.Generator, scale: float = 0.25, shift: float = 0.03
) -> np.ndarray:
    """Scale and shift each stain's optical density (Ruifrok-Johnston haematoxylin, eosin, DAB):
    another lab's staining of the same tissue."""
    from skimage.color import hed2rgb, rgb2hed

    hed = rgb2hed(np.clip(x, 0, 1))
    hed = hed * rng.uniform(1 - scale, 1 + scale, 3) + rng.uniform(-shift, shift, 3)
    return np.clip(hed2rgb(hed), 0, 1).astype(np.float32)


def gamma_jitter(x: np.ndarray, rng: np.random.Generator, spread: float = 0.5) -> np.ndarray:
    return np.power(np.clip(x, 0, 1), float(np.exp(rng.uniform(-spread, spread)))).astype(
        np.float32
    )


def _photo(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.8:
        x = colour_jitter(x, rng)
    if rng.random() < 0.1:
        x = np.repeat(_grey(x)[..., None], x.shape[-1], -1)
    if rng.random() < 0.2:
        x = gaussian_blur(x, rng)
    if rng.random() < 0.2:
        x = sensor_noise(x, rng)
    if rng.random() < 0.3:
        x = jpeg_recompress(x, rng)
    return x


def _microscopy(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    colour = x.shape[-1] == 3 and float(np.abs(x - x.mean(-1, keepdims=True)).mean()) > 0.02
    if colour and rng.random() < 0.7:
        x = stain_jitter(x, rng)
    if rng.random() < 0.8:
        x = colour_jitter(x, rng, strength=0.3, hue=0.03 if colour else 0.0)
    if rng.random() < 0.5:
        x = gamma_jitter(x, rng)
    if rng.random() < 0.2:
        x = 1 - x
    if rng.random() < 0.2:
        x = np.repeat(_grey(x)[..., None], x.shape[-1], -1)
    if rng.random() < 0.2:
        x = gaussian_blur(x, rng, 1.0)
    if rng.random() < 0.2:
        x = sensor_noise(x, rng, 0.03)
    return x


PRESETS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "photo": _photo,
    "microscopy": _microscopy,
}


def random_appearance(image: np.ndarray, rng: np.random.Generator, preset: str) -> np.ndarray:
    """``image`` with the random appearance changes of ``preset`` (see the module docstring)."""
    if preset == "none":
        return image
    if preset not in PRESETS:
        raise ValueError(f"unknown appearance {preset!r}; choose one of {', '.join(APPEARANCES)}")
    return _back(PRESETS[preset](to_unit(image), rng), full_scale(image.dtype), image.dtype)
