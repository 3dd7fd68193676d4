"""A tiny labelled dataset made in code: noisy grey images of discs and squares.

Class 0 = background, 1 = disc, 2 = square. Used by the tests and by ``pixelwise demo`` so
that both run offline with no downloaded data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASS_NAMES = ["background", "disc", "square"]


def shapes_sample(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One (size, size) uint8 image and its class-id mask."""
    yy, xx = np.mgrid[:size, :size]
    mask = np.zeros((size, size), dtype=np.uint8)
    for _ in range(int(rng.integers(2, 5))):
        r = int(rng.integers(size // 10, size // 5))
        cy, cx = (int(v) for v in rng.integers(r, size - r, 2))
        if rng.random() < 0.5:
            mask[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
        else:
            mask[(abs(yy - cy) <= r * 0.8) & (abs(xx - cx) <= r * 0.8)] = 2
    levels = np.array([60, 170, 220], dtype=np.float32)
    image = levels[mask] + rng.normal(0, 18, (size, size))
    return np.clip(image, 0, 255).astype(np.uint8), mask


def write_shapes_dataset(
    root: str | Path, n_train: int = 16, n_val: int = 4, size: int = 64, seed: int = 0
) -> Path:
    """Write ``root/{train,val}/{images,masks}/NNN.png``; returns ``root``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        for sub in ("images", "masks"):
            (root / split / sub).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            image, mask = shapes_sample(size, rng)
            Image.fromarray(image, mode="L").save(root / split / "images" / f"{i:03d}.png")
            Image.fromarray(mask, mode="L").save(root / split / "masks" / f"{i:03d}.png")
    return root
