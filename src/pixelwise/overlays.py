"""Pictures of predictions: class colours, instance colours with outlines, detection boxes."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

BLEND_PIXELS = 1 << 22  # pixels blended at a time: the float temporaries stay near 100 MB


def row_bands(shape: tuple[int, ...]):
    """Slices of whole rows of about ``BLEND_PIXELS`` pixels covering an image of ``shape``."""
    rows = max(1, BLEND_PIXELS // max(1, shape[1]))
    return [slice(y, y + rows) for y in range(0, shape[0], rows)]


def display_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) for showing an (H, W, C) image: other dtypes scaled by the image's maximum,
    grey repeated."""
    top = None if image.dtype == np.uint8 else max(int(image.max()), 1)
    shown = np.empty((*image.shape[:2], 3), np.uint8)
    for band in row_bands(image.shape):
        part = image[band] if top is None else (image[band] / top * 255).astype(np.uint8)
        shown[band] = part  # broadcasts one grey channel to three
    return shown


def blended(base: np.ndarray, ids: np.ndarray, colours: np.ndarray, alpha: float) -> np.ndarray:
    """``base`` (H, W, 3) uint8 with ``colours[id]`` blended in by ``alpha`` where the id > 0,
    a band of rows at a time (an 80-megapixel overlay made whole held 6 GB of float copies)."""
    out = np.empty_like(base)
    for band in row_bands(base.shape):
        part, where = base[band], ids[band]
        colour = colours[where.astype(np.intp)].astype(np.float32)
        mixed = np.where((where > 0)[..., None], (1 - alpha) * part + alpha * colour, part)
        out[band] = mixed.round().astype(np.uint8)
    return out


def overlay(
    image: np.ndarray, mask: np.ndarray, palette: np.ndarray, alpha: float = 0.45
) -> Image.Image:
    """Blend class colours over an (H, W, C) image; class 0 (background) stays uncoloured."""
    return Image.fromarray(blended(display_rgb(image), mask, palette, alpha), mode="RGB")


def instance_overlay(
    image: np.ndarray, labels: np.ndarray, alpha: float = 0.45, cells: np.ndarray | None = None,
    colours: dict[int, tuple] | None = None,
) -> Image.Image:  # fmt: skip
    """Each object in its own colour (fixed by its id, or ``colours[id]``: a graded object's)
    with a white outline; ``cells`` (each object's cell, the same ids): their outlines in their
    objects' colours."""
    from skimage.segmentation import find_boundaries

    palette = (
        np.random.default_rng(0).integers(40, 256, (int(labels.max()) + 1, 3)).astype(np.uint8)
    )
    palette[0] = 0
    for k, colour in (colours or {}).items():
        if k < len(palette):
            palette[k] = colour
    shown = blended(display_rgb(image), labels, palette, alpha)
    shown[find_boundaries(labels, mode="inner")] = 255
    if cells is not None:
        edge = find_boundaries(cells, mode="inner") & (labels == 0)
        shown[edge] = palette[cells[edge]]
    return Image.fromarray(shown, mode="RGB")


def detection_overlay(
    image: np.ndarray,
    prediction: dict,
    class_names: list[str],
    labels: np.ndarray,
    alpha: float = 0.45,
) -> Image.Image:
    """Instance colours, boxes, class names and scores drawn over an image."""
    shown = instance_overlay(image, labels, alpha)
    draw = ImageDraw.Draw(shown)
    for box, label, score in zip(
        prediction["boxes"].tolist(), prediction["labels"].tolist(), prediction["scores"].tolist()
    ):
        draw.rectangle(box, outline=(255, 255, 0), width=2)
        draw.text((box[0] + 2, box[1] + 1), f"{class_names[label]} {score:.2f}", fill=(255, 255, 0))
    return shown
