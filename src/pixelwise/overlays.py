"""Pictures of predictions: class colours, instance colours with outlines, detection boxes."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def overlay(
    image: np.ndarray, mask: np.ndarray, palette: np.ndarray, alpha: float = 0.45
) -> Image.Image:
    """Blend class colours over an (H, W, C) image; class 0 (background) stays uncoloured."""
    base = (
        image
        if image.dtype == np.uint8
        else (image / max(int(image.max()), 1) * 255).astype(np.uint8)
    )
    if base.shape[-1] == 1:
        base = np.repeat(base, 3, axis=-1)
    colour = palette[mask.astype(np.intp)].astype(np.float32)
    blend = np.where((mask > 0)[..., None], (1 - alpha) * base + alpha * colour, base)
    return Image.fromarray(blend.round().astype(np.uint8), mode="RGB")


def instance_overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.45) -> Image.Image:
    """Each object in its own colour (fixed by its id) with a white outline."""
    from skimage.segmentation import find_boundaries

    palette = (
        np.random.default_rng(0).integers(40, 256, (int(labels.max()) + 1, 3)).astype(np.uint8)
    )
    palette[0] = 0
    ids = labels.astype(np.intp)
    shown = np.asarray(
        overlay(image, np.minimum(ids, 1), np.zeros((256, 3), np.uint8), alpha=0.0)
    ).copy()
    blend = np.where((ids > 0)[..., None], (1 - alpha) * shown + alpha * palette[ids], shown)
    blend[find_boundaries(labels, mode="inner")] = 255
    return Image.fromarray(blend.round().astype(np.uint8), mode="RGB")


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
