"""Background removal: ``remove_background(image) -> RGBA``.

The network sees the photo at a small size (``model_size`` on the longer side); its
foreground probability is upsampled to full resolution edge-aware, with a guided filter
steered by the full-resolution photo (He et al., 2010), so edges follow the photo rather than
the coarse prediction. ``matting=True`` refines further: closed-form matting (pymatting) on a
trimap derived from the mask (sure foreground / unknown band / sure background). Post-
processing keeps the largest connected component and fills its holes. ``method="grabcut"``
needs no weights (OpenCV's GrabCut from the central box) and serves as a classical fallback.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pixelwise.checkpoint import Segmenter, load_model

DEFAULT_MODEL = "foreground"
_MODELS: dict[tuple[str, str], Segmenter] = {}


def _rgb(image) -> np.ndarray:
    """uint8 (H, W, 3) from a path, PIL image or array (grey and RGBA converted)."""
    if isinstance(image, (str, os.PathLike)):
        from pixelwise.data.io import read_image

        image = read_image(image)
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.dtype != np.uint8:
        image = (image.astype(np.float32) / max(float(image.max()), 1.0) * 255).round().astype(np.uint8)
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return np.ascontiguousarray(image[..., :3])


def parse_colour(text: str | None) -> tuple[int, int, int] | None:
    if not text:
        return None
    value = text.strip().lstrip("#")
    if len(value) != 6 or any(c not in "0123456789abcdefABCDEF" for c in value):
        raise ValueError(f"background colour must look like #rrggbb, got {text!r}")
    return tuple(int(value[i : i + 2], 16) for i in (0, 2, 4))


def get_model(model: str | Path | Segmenter | None = None, runtime: str = "torch") -> Segmenter:
    """A Segmenter (cached per path/name and runtime); ``None`` is the bundled foreground model."""
    if isinstance(model, Segmenter):
        return model
    key = (str(model or DEFAULT_MODEL), runtime)
    if key not in _MODELS:
        _MODELS[key] = load_model(key[0], runtime)
    return _MODELS[key]


def foreground_probability(seg: Segmenter, rgb: np.ndarray, model_size: int = 320,
                           precision: str = "auto") -> np.ndarray:
    """P(foreground) (H', W') float32 at model size (longer side ``model_size``)."""
    from pixelwise.data.datasets import match_channels, to_tensor
    from pixelwise.data.transforms import resize_image
    from pixelwise.inference import predict_probs

    h, w = rgb.shape[:2]
    s = model_size / max(h, w)
    small = resize_image(rgb, (max(1, round(h * s)), max(1, round(w * s)))) if s < 1 else rgb
    x = to_tensor(match_channels(small, seg.in_channels), seg.norm)[None]
    probs = predict_probs(seg.network, x, precision)[0]
    return probs[1:].sum(0).numpy().astype(np.float32)  # every class but 0 is foreground


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int = 8, eps: float = 1e-3) -> np.ndarray:
    """He et al.'s guided filter with a grey guide: ``src`` smoothed, edges taken from ``guide``
    (both (H, W) float32 in [0, 1]); O(1) per pixel with box filters."""
    import cv2

    def box(x):
        return cv2.boxFilter(x, -1, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = box(guide), box(src)
    cov = box(guide * src) - mean_i * mean_p
    var = box(guide * guide) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return box(a) * guide + box(b)


def keep_largest(mask: np.ndarray, fill_holes: bool = True) -> np.ndarray:
    """The largest 8-connected component of a boolean mask, holes filled."""
    from scipy import ndimage

    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        mask = labels == int(sizes.argmax())
    return ndimage.binary_fill_holes(mask) if fill_holes else mask


def trimap(mask: np.ndarray, band: int) -> np.ndarray:
    """1 sure foreground (mask eroded by ``band``), 0 sure background (outside the mask dilated
    by ``band``), 0.5 unknown in between."""
    from scipy import ndimage

    sure = ndimage.binary_erosion(mask, iterations=band)
    maybe = ndimage.binary_dilation(mask, iterations=band)
    return np.where(sure, 1.0, np.where(maybe, 0.5, 0.0))


def estimate_alpha(rgb: np.ndarray, prob_small: np.ndarray | None = None, mask_small: np.ndarray | None = None,
                   matting: bool = False, largest_component: bool = True, fill_holes: bool = True) -> np.ndarray:
    """Full-resolution alpha (H, W) float32 in [0, 1] from a low-resolution probability or mask."""
    import cv2

    h, w = rgb.shape[:2]
    soft = prob_small if prob_small is not None else mask_small.astype(np.float32)
    up = cv2.resize(soft.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    mask = up > 0.5
    if largest_component and mask.any():
        mask = keep_largest(mask, fill_holes)
    elif fill_holes:
        from scipy import ndimage

        mask = ndimage.binary_fill_holes(mask)
    grey = rgb.astype(np.float32).mean(-1) / 255.0
    scale = max(h, w) / max(soft.shape)  # pixels of the photo per model pixel
    if matting:
        band = max(2, int(round(1.5 * scale)))
        tri = trimap(mask, band)
        if (tri == 1).any() and (tri == 0).any():  # matting needs sure foreground and background
            from pymatting import estimate_alpha_cf

            return estimate_alpha_cf(rgb.astype(np.float64) / 255.0, tri).astype(np.float32).clip(0, 1)
    # edge-aware upsampling of the cleaned mask: the photo's edges decide where alpha falls off
    alpha = guided_filter(grey, mask.astype(np.float32), radius=max(2, int(round(2 * scale))), eps=1e-3)
    return alpha.clip(0, 1)


def remove_background(image, model: str | Path | Segmenter | None = None, method: str = "model",
                      matting: bool = False, background: tuple[int, int, int] | np.ndarray | str | None = None,
                      mask_only: bool = False, largest_component: bool = True, fill_holes: bool = True,
                      model_size: int = 320, precision: str = "auto") -> Image.Image:
    """Cut the foreground out of a photo.

    Returns an RGBA image with the foreground's alpha at the photo's full resolution; with
    ``mask_only`` the alpha alone (mode L); with ``background`` (an RGB triple, an image array
    or a path) the foreground composited onto it (mode RGB).

    Args:
        image: a path, PIL image or (H, W[, C]) array.
        model: a checkpoint path, bundled model name or loaded Segmenter (default: the bundled
            ``foreground`` model). Class 0 is background, every other class foreground.
        method: ``"model"`` or ``"grabcut"`` (no weights needed).
        matting: refine the alpha by closed-form matting on a trimap (slower, finer hair).
    """
    rgb = _rgb(image)
    if method == "model":
        prob = foreground_probability(get_model(model), rgb, model_size, precision)
        alpha = estimate_alpha(rgb, prob_small=prob, matting=matting, largest_component=largest_component,
                               fill_holes=fill_holes)
    elif method == "grabcut":
        from pixelwise.classical import graphcut
        from pixelwise.data.transforms import resize_image

        h, w = rgb.shape[:2]
        s = min(1.0, model_size / max(h, w))
        small = resize_image(rgb, (max(1, round(h * s)), max(1, round(w * s)))) if s < 1 else rgb
        alpha = estimate_alpha(rgb, mask_small=graphcut(small), matting=matting,
                               largest_component=largest_component, fill_holes=fill_holes)
    else:
        raise ValueError(f"unknown method {method!r}; choose model or grabcut")
    a8 = (alpha * 255).round().astype(np.uint8)
    if mask_only:
        return Image.fromarray(a8, mode="L")
    if background is not None:
        if isinstance(background, (str, os.PathLike, Image.Image)) or (isinstance(background, np.ndarray) and background.ndim >= 2):
            bg = np.asarray(Image.fromarray(_rgb(background)).resize(rgb.shape[1::-1], Image.BILINEAR), np.float32)
        else:
            bg = np.broadcast_to(np.asarray(background, np.float32)[:3], rgb.shape)
        out = alpha[..., None] * rgb.astype(np.float32) + (1 - alpha[..., None]) * bg
        return Image.fromarray(out.round().clip(0, 255).astype(np.uint8), mode="RGB")
    return Image.fromarray(np.dstack([rgb, a8]), mode="RGBA")


def mask_iou_and_alpha_error(alpha: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(IoU of alpha > 0.5 with the binary truth, mean |alpha - truth|) for one image."""
    pred, truth = alpha > 0.5, truth.astype(bool)
    union = (pred | truth).sum()
    iou = float((pred & truth).sum() / union) if union else 1.0
    return iou, float(np.abs(alpha.astype(np.float64) - truth).mean())
