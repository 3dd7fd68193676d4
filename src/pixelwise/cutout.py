"""Background removal: ``remove_background(image) -> RGBA``.

The network sees the photo at a small size (``model_size`` on the longer side); its
foreground probability is upsampled to full resolution edge-aware, with a guided filter
steered by the full-resolution photo (He et al., 2010), so edges follow the photo rather than
the coarse prediction. ``matting=True`` refines further: closed-form matting
(:mod:`pixelwise.matting`) on a trimap derived from the mask (sure foreground / unknown band /
sure background). Post-processing keeps the largest connected component and fills its holes.
``method="grabcut"`` needs no weights (OpenCV's GrabCut from the central box) and serves as a
classical fallback.

A box model (``pixelwise train --box-crop``; the bundled ``foreground-box`` beside the bundled
``foreground``) sees only what a box around one object shows: inside a user's box its
probability is weighed with the whole-photo network's, the surer of the two counting more
(:func:`surer_weight`), and the automatic graph cut is made again with it inside the box of the
first cut (:func:`self_prompted`).
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from pixelwise.checkpoint import load_model
from pixelwise.classical import graphcut
from pixelwise.constants import (
    CUTOUT_METHODS,
    CUTOUT_TYPES,
    DEFAULT_CUTOUT,
    MATTING_MEGAPIXELS,
    Note,
    crop_margin,
)
from pixelwise.data.datasets import match_channels, to_tensor
from pixelwise.data.encoding import TWELVE_BIT, intensity_kind, map_range, to_unit
from pixelwise.data.io import as_image, decoded_bytes, image_and_transparency, rgb_profile
from pixelwise.data.transforms import crop_resize, grown_box, resize_image
from pixelwise.data.write import WEBP_SAVE, deep_png_bytes, png_bytes, tiff_bytes
from pixelwise.graphcut import (
    RELAX_REACH,
    STROKE_WEIGHT,
    STROKE_WEIGHT_WITHOUT_BOX,
    CutGraph,
    box_mask,
    box_window,
    graph_cut,
)
from pixelwise.inference import predict_probs
from pixelwise.instances import filled
from pixelwise.segmenter import Segmenter

DEFAULT_MODEL = "foreground"
_MODELS: dict[tuple[str, str], Segmenter] = {}


def _rgb(image) -> np.ndarray:
    """uint8 (H, W, 3) from a path, PIL image or array, read as every entry point reads images
    (:func:`pixelwise.data.io.as_image`: 16-bit and float images scaled by their dtype)."""
    return _rgb8(as_image(image))


def _rgb8(image: np.ndarray, dtype=np.uint8) -> np.ndarray:
    """uint8 (or ``dtype``: uint16) (H, W, 3) from an :func:`~pixelwise.data.io.as_image`
    array, scaled by its own dtype when that is another."""
    if image.dtype != dtype:
        image = np.rint(to_unit(image) * np.iinfo(dtype).max).astype(dtype)
    return np.ascontiguousarray(np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image)


def parse_colour(text: str | None) -> tuple[int, int, int] | None:
    """A background colour: ``#rrggbb``, ``#rgb`` or a CSS colour name such as ``white``."""
    if not text:
        return None
    from PIL import ImageColor

    value = text.strip()
    try:
        return ImageColor.getrgb(
            value if value.startswith("#") or not is_hex(value) else "#" + value
        )[:3]
    except ValueError:
        raise ValueError(
            f"background colour must be #rrggbb or a colour name such as white, got {text!r}"
        ) from None


def is_hex(text: str) -> bool:
    """Six hexadecimal digits (a colour given without its #, as the HTTP API takes it)."""
    return len(text) == 6 and all(c in "0123456789abcdefABCDEF" for c in text)


# --background blur: the photo's own background, blurred (a portrait mode's look)
BLUR = "blur"


def background_of(text: str):
    """``--background``: ``blur`` (:data:`BLUR`), a colour (:func:`parse_colour`), or an image
    file, read once (an existing file is taken for a file); ValueError naming what it is none
    of."""
    if not text.startswith("#") and Path(text).is_file():
        return _rgb(text)
    if text.strip().lower() == BLUR:
        return BLUR
    try:
        return parse_colour(text)
    except ValueError:
        raise ValueError(
            f"--background {text}: not a colour (#rrggbb or a name such as white), blur or an "
            "image file"
        ) from None


def get_model(model: str | Path | Segmenter | None = None, runtime: str = "torch") -> Segmenter:
    """A Segmenter (cached per path/name and runtime); ``None`` is the bundled foreground model."""
    if isinstance(model, Segmenter):
        seg = model
    else:
        key = (str(model or DEFAULT_MODEL), runtime)
        if key not in _MODELS:
            _MODELS[key] = load_model(key[0], runtime)
        seg = _MODELS[key]
    if seg.kind != "semantic":
        raise ValueError(
            f"{'the model' if model is seg else model}: a {seg.arch} model finds objects; a "
            "cut-out takes a semantic model (every class but 0 is the foreground)"
        )
    return seg


def foreground_probability(
    seg: Segmenter, rgb: np.ndarray, model_size: int = 320, precision: str = "auto"
) -> np.ndarray:
    """P(foreground) (H', W') float32 at model size (longer side ``model_size``)."""
    small = working_image(rgb, model_size)
    x = to_tensor(match_channels(small, seg.in_channels), seg.norm)[None]
    probs = predict_probs(seg.network, x, precision)[0]
    return probs[1:].sum(0).numpy().astype(np.float32)  # every class but 0 is foreground


def box_probability(
    seg: Segmenter, small: np.ndarray, box: Box, precision: str = "auto"
) -> np.ndarray:
    """P(foreground) (H', W') of the photo at working size from a box model: the box's window,
    resized to the model's input square, in; its probability resized back into the window out;
    0 outside the box."""
    import cv2

    x0, y0, x1, y1 = window = box_window(box, small.shape[:2])
    crop, _ = crop_resize(small, None, window, seg.box_input)
    bounds = seg.norm.bounds(match_channels(small, seg.in_channels))  # percentiles: the photo's
    x = to_tensor(match_channels(crop, seg.in_channels), seg.norm, bounds)[None]
    inside = predict_probs(seg.network, x, precision)[0][1:].sum(0).numpy().astype(np.float32)
    prob = np.zeros(small.shape[:2], np.float32)
    prob[y0:y1, x0:x1] = cv2.resize(inside, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    return prob


BOX_MODEL = "foreground-box"  # the bundled box model, paired with the bundled DEFAULT_MODEL


def box_helper_name(
    model: str | Path | Segmenter | None, box_model: str | Path | Segmenter | None
) -> str | Path | Segmenter | None:
    """Which box model helps ``model`` inside a user's box: ``box_model`` when given; else the
    bundled one's name, only beside the bundled default model (by name or as loaded by
    :func:`get_model`) and when it is installed."""
    if box_model is not None:
        return box_model
    if any(model is seg for (name, _), seg in _MODELS.items() if name == DEFAULT_MODEL):
        model = DEFAULT_MODEL
    if model not in (None, DEFAULT_MODEL):
        return None
    from pixelwise.checkpoint import BUNDLED, BUNDLED_DIR

    return BOX_MODEL if (BUNDLED_DIR / BUNDLED[BOX_MODEL]).is_file() else None


def box_helper(
    model: str | Path | Segmenter | None, box_model: str | Path | Segmenter | None
) -> Segmenter | None:
    """The box model :func:`box_helper_name` names, loaded (``None`` when there is none)."""
    name = box_helper_name(model, box_model)
    helper = get_model(name) if name is not None else None
    if helper is not None and not helper.box_input:
        raise ValueError(
            f"{'the box model' if name is helper else name}: not a box model (one trained with "
            "--box-crop sees the box's window); give it as --checkpoint, or a box model as "
            "--box-checkpoint"
        )
    return helper


def network_probability(
    seg: Segmenter,
    helper: Segmenter | None,
    small: np.ndarray,
    box: Box | None,
    model_size: int = 320,
    precision: str = "auto",
) -> np.ndarray:
    """P(foreground) at working size. A whole-photo model sees the photo; a box model sees the
    box (the whole photo when there is none); with a box, a ``helper`` box model's probability
    is weighed in (:func:`surer_weight`); without one, on a photo the network is unsure of, the
    helper's look at the whole photo is weighed in (:data:`WHOLE_PHOTO_LOOK`)."""
    frame = (0, 0, small.shape[1], small.shape[0])  # the whole photo as a box
    if seg.box_input:
        return box_probability(seg, small, box or frame, precision)
    prob = foreground_probability(seg, small, model_size, precision)
    if helper is None or helper is seg:
        return prob
    if box is not None:
        boxed = box_probability(helper, small, box, precision)
        weight = surer_weight(prob, boxed, box_mask(small.shape[:2], box))
        return (1 - weight) * prob + weight * boxed
    if WHOLE_PHOTO_LOOK and not familiar(prob):
        whole = box_probability(helper, small, frame, precision)
        return (1 - WHOLE_PHOTO_LOOK) * prob + WHOLE_PHOTO_LOOK * whole
    return prob


def surer_weight(prob: np.ndarray, boxed: np.ndarray, inside: np.ndarray | None = None) -> float:
    """The box model's weight beside the whole-photo network's inside a user's box: its share of
    the two networks' mean confidence ``|2p - 1|`` over the box (``inside``; None: every pixel,
    the two being the box's already), so that on a photo one of them hesitates over, the surer
    one leads. Half when both are as sure (or unsure).
    Chosen on the development photos, docs/results.md (as): from a box 0.782 -> 0.805 over the
    held-out sources against a fixed half (0.769 -> 0.780 on 60 more unseen photos per source);
    automatic (:func:`self_prompted`) 0.594 -> 0.596."""
    if inside is not None:
        if not inside.any():
            return 0.5
        prob, boxed = prob[inside], boxed[inside]
    sure = float(np.abs(2 * prob - 1).mean()), float(np.abs(2 * boxed - 1).mean())
    return sure[1] / (sure[0] + sure[1]) if sure[0] + sure[1] > 0 else 0.5


# Without a box, on a photo the whole-photo network is unsure of (not :func:`familiar`), the box
# model also looks at the whole photo, as if the user's box were its frame; its probability gets
# this weight beside the network's. docs/results.md (s).
WHOLE_PHOTO_LOOK = 0.3


def guided_filter(
    guide: np.ndarray, src: np.ndarray, radius: int = 8, eps: float = 1e-3, rows: int | None = None
) -> np.ndarray:
    """He et al.'s guided filter with a grey guide: ``src`` smoothed, edges taken from ``guide``
    ((H, W) float32 in [0, 1], or a uint8 photo (H, W, C), its :func:`grey_of`); ``src`` (H, W)
    in [0, 1] of any dtype, a boolean mask too; O(1) per pixel with box filters. Computed in
    bands of ``rows`` rows (default: about :data:`BAND_PIXELS` pixels, at least 8 radii), each
    with the ``2 * radius`` rows either side that its two rounds of box filters see, so that the
    working memory is a band's, not seven planes of the photo's size (a 48-megapixel photo's
    float32 plane is 192 MB)."""
    h, w = guide.shape[:2]
    step = rows or max(8 * radius, BAND_PIXELS // max(w, 1))
    out = np.empty((h, w), np.float32)
    margin = 2 * radius
    for y0 in range(0, h, step):
        y1 = min(h, y0 + step)
        a0, a1 = max(0, y0 - margin), min(h, y1 + margin)
        grey = guide[a0:a1] if guide.ndim == 2 else grey_of(guide[a0:a1])
        band = _guided_filter(grey, src[a0:a1].astype(np.float32), radius, eps)
        out[y0:y1] = band[y0 - a0 : y1 - a0]
    return out


BAND_PIXELS = 4_000_000  # pixels of a band of the guided filter: 16 MB per float32 plane


def _guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """:func:`guided_filter` of one band, its borders mirrored (OpenCV's BORDER_REFLECT)."""
    import cv2

    def box(x):
        return cv2.boxFilter(x, -1, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)

    # in place where it can be: the same arithmetic, so the same values
    mean_i, mean_p = box(guide), box(src)
    cov = box(guide * src)
    cov -= mean_i * mean_p
    var = box(guide * guide)
    var -= mean_i * mean_i
    var += np.float32(eps)
    a = np.divide(cov, var, out=cov)
    del var
    mean_i *= a
    b = np.subtract(mean_p, mean_i, out=mean_p)
    del mean_i
    out = box(a)
    out *= guide
    out += box(b)
    return out


# The full-resolution steps below label components with OpenCV rather than scipy.ndimage: the
# same masks, 3-4x faster on a 48-megapixel photo (0.29 -> 0.09 s to label, 1.13 -> 0.27 s to
# fill holes), where they took a quarter of the cut-out.


def keep_largest(mask: np.ndarray, fill_holes: bool = True) -> np.ndarray:
    """The largest 8-connected component of a boolean mask (the first in raster order on a
    tie), holes filled."""
    mask = stroked_objects(np.asarray(mask, bool), None)
    return filled(mask) if fill_holes else mask


def stroked_objects(mask: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    """The largest 8-connected component of a boolean mask (the first in raster order on a tie)
    and every component that the keep strokes ``keep`` touch: with strokes but no box, a stroke
    adds what it marks, and the specks the cut leaves elsewhere go, as without user input
    (docs/results.md (t))."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:  # label 0 is the background: one object or none
        return mask
    kept = np.zeros(n, bool)
    kept[1 + int(stats[1:, cv2.CC_STAT_AREA].argmax())] = True
    if keep is not None:
        kept[labels[keep]] = True
    kept[0] = False
    return kept[labels]


def grey_of(rgb: np.ndarray) -> np.ndarray:
    """The mean of the channels in [0, 1], float32: for the uint8 photos of the cut-out,
    ``rgb.astype(np.float32).mean(-1) / 255`` to the bit, without a float copy of every channel
    (8x faster on a 48-megapixel photo)."""
    total = rgb[..., 0].astype(np.float32)
    for c in range(1, rgb.shape[-1]):
        total += rgb[..., c]
    total /= np.float32(rgb.shape[-1])
    total /= np.float32(255.0)
    return total


def trimap(mask: np.ndarray, band: int) -> np.ndarray:
    """1 sure foreground (mask eroded by ``band``), 0 sure background (outside the mask dilated
    by ``band``), 0.5 unknown in between."""
    from scipy import ndimage

    sure = ndimage.binary_erosion(mask, iterations=band)
    maybe = ndimage.binary_dilation(mask, iterations=band)
    return np.where(sure, 1.0, np.where(maybe, 0.5, 0.0))


def matting_band(scale: float) -> int:
    """Width in photo pixels of the trimap's unknown band on either side of the mask's edge: 1.5
    network pixels (``scale`` photo pixels per network pixel), at least 2."""
    return max(2, int(round(1.5 * scale)))


def estimate_alpha(
    rgb: np.ndarray,
    prob_small: np.ndarray | None = None,
    mask_small: np.ndarray | None = None,
    matting: bool = False,
    largest_component: bool = True,
    fill_holes: bool = True,
    matting_megapixels: float | None = None,
) -> np.ndarray:
    """Full-resolution alpha (H, W) float32 in [0, 1] from a low-resolution probability or mask
    (with ``matting``: :func:`matted`)."""
    import cv2

    h, w = rgb.shape[:2]
    soft = prob_small if prob_small is not None else mask_small.astype(np.float32)
    mask = cv2.resize(soft.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) > 0.5
    if largest_component and mask.any():
        mask = keep_largest(mask, fill_holes)
    elif fill_holes:
        mask = filled(mask)
    scale = max(h, w) / max(soft.shape)  # pixels of the photo per model pixel
    if matting:
        alpha = matted(rgb, mask, scale, matting_megapixels)
        if alpha is not None:
            return alpha
    # edge-aware upsampling of the cleaned mask: the photo's edges decide where alpha falls off
    alpha = guided_filter(rgb, mask, radius=max(2, int(round(2 * scale))), eps=1e-3)
    return np.clip(alpha, 0, 1, out=alpha)


def matted(
    rgb: np.ndarray, mask: np.ndarray, scale: float, megapixels: float | None = None
) -> np.ndarray | None:
    """Closed-form matting's alpha on the trimap around ``mask`` (its unknown band
    :func:`matting_band` wide; ``scale``: photo pixels per network pixel); None when the trimap
    has no sure foreground or no sure background. A photo of more than ``megapixels`` (None:
    ``MATTING_MEGAPIXELS``; 0: no bound) is matted shrunk to that size (area means) and the alpha
    enlarged back by the guided filter with the photo as its guide: matting's time and memory
    grow with the photo (remove-bg on an enlarged photo, 12 megapixels: 23 s and 2.3 GB, shrunk
    to 2: 9 s and 1.2 GB; 48 megapixels: 101 s and 6.1 GB, shrunk to 2: 11 s and 1.7 GB;
    ``benchmarks/README.md``)."""
    import cv2

    from pixelwise.matting import closed_form_matting

    h, w = mask.shape
    megapixels = MATTING_MEGAPIXELS if megapixels is None else megapixels
    rgb_at, shrink = shrunk(rgb, megapixels)
    if shrink < 1:
        mask = shrunk(mask.astype(np.float32), megapixels)[0] > 0.5
        scale *= rgb_at.shape[1] / w
    tri = trimap(mask, matting_band(scale))
    if not ((tri == 1).any() and (tri == 0).any()):  # matting needs sure foreground and background
        return None
    alpha = closed_form_matting(rgb_at, tri)
    if shrink < 1:
        enlarged = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)
        alpha = guided_filter(rgb, enlarged, radius=max(2, round(1 / shrink)), eps=1e-4)
        np.clip(alpha, 0, 1, out=alpha)
    return alpha


def shrunk(pixels: np.ndarray, megapixels: float | None) -> tuple[np.ndarray, float]:
    """``pixels`` (H, W[, C]) shrunk by area means to at most ``megapixels`` megapixels, its
    aspect kept (each side floored, at least 1), and the factor; as they are and 1 when within
    them, or when ``megapixels`` is 0 or None. Matting's copy (:func:`matted`), the web page's
    copy of a photo the browser cannot show (``/api/shown``)."""
    import cv2

    h, w = pixels.shape[:2]
    shrink = 1.0 if not megapixels else min(1.0, math.sqrt(megapixels * 1e6 / (h * w)))
    if shrink == 1:
        return pixels, 1.0
    size = (max(1, int(w * shrink)), max(1, int(h * shrink)))
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA), shrink


MIN_FOREGROUND = (
    0.005  # a network foreground below this share of the photo counts as "found nothing"
)
Box = tuple[float, float, float, float]


def working_image(rgb: np.ndarray, model_size: int) -> np.ndarray:
    """The photo at the size the network and the graph cut work at (longer side ``model_size``
    at most); ValueError for a size outside 32..4096 (a 1-pixel look sees nothing)."""
    if not 32 <= model_size <= 4096:  # as --model-size
        raise ValueError(f"model_size must be 32 to 4096 pixels, got {model_size}")
    h, w = rgb.shape[:2]
    s = model_size / max(h, w)
    return resize_image(rgb, (max(1, round(h * s)), max(1, round(w * s)))) if s < 1 else rgb


def check_box(box, shape: tuple[int, int]) -> Box:
    """``(x0, y0, x1, y1)`` in pixels of the photo, validated."""
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"box must be four numbers x0, y0, x1, y1, got {box!r}") from None
    h, w = shape
    if not all(np.isfinite(v) for v in (x0, y0, x1, y1)) or not (x0 < x1 and y0 < y1):
        raise ValueError(f"box must have finite x0 < x1 and y0 < y1, got {box!r}")
    if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
        raise ValueError(f"box {box!r} lies outside the {w} x {h} image")
    return x0, y0, x1, y1


MAX_COORDINATE = 1_000_000  # a stroke point beyond it (1e308, say) would overflow the drawing


def rasterize_strokes(strokes, shape: tuple[int, int], scale: float) -> np.ndarray | None:
    """Strokes as a boolean mask at ``shape`` (the working size; ``scale`` = working / photo).

    ``strokes``: a boolean (H, W) mask at the photo's size, or a list of polylines, each
    ``{"points": [[x, y], ...], "radius": r}`` in photo pixels (a single point is a dot)."""
    import cv2

    if strokes is None:
        return None
    if isinstance(strokes, np.ndarray):
        if strokes.ndim != 2:
            raise ValueError(f"a stroke mask must be (H, W), got shape {strokes.shape}")
        return cv2.resize(strokes.astype(np.float32), shape[::-1], interpolation=cv2.INTER_AREA) > 0
    out = np.zeros(shape, np.uint8)
    for line in strokes:
        try:
            points = np.asarray(line["points"], np.float64).reshape(-1, 2)
            radius = float(line.get("radius", 5))
        except (TypeError, KeyError, ValueError, AttributeError):
            raise ValueError('each stroke must be {"points": [[x, y], ...], "radius": r}') from None
        far = len(points) == 0 or not (np.abs(points) <= MAX_COORDINATE).all()  # NaN too
        if far or not (0 < radius < 10_000):
            raise ValueError(
                f"a stroke needs at least one finite point within {MAX_COORDINATE:,} pixels of "
                "the photo's corner and a radius between 0 and 10000"
            )
        pts = np.rint(points * scale).astype(np.int32)
        thickness = max(1, int(round(2 * radius * scale)))
        cv2.polylines(out, [pts], False, 1, thickness=thickness)
        for x, y in pts[[0, -1]]:
            cv2.circle(out, (int(x), int(y)), max(1, thickness // 2), 1, -1)
    return out.astype(bool)


def central_box(shape: tuple[int, int], margin: float = 0.1) -> Box:
    """The photo inset by ``margin`` of its size: GrabCut's guess when nothing else is known."""
    h, w = shape
    return w * margin, h * margin, w * (1 - margin), h * (1 - margin)


# GrabCut's assumption, softened: the object is probably inside the (central) box
OUTSIDE_PRIOR = 0.25


def box_prior(shape: tuple[int, int], box: Box) -> np.ndarray:
    """What GrabCut assumes without a network: 0.5 (unsure) inside the box, unlikely outside."""
    return np.where(box_mask(shape, box), 0.5, OUTSIDE_PRIOR)


def trusted(prob: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """The network's probability where it is confident, the fallback where it is unsure:
    ``c * p + (1 - c) * fallback`` with confidence ``c = |2p - 1|``. On photos unlike its
    training data the network hesitates, and the graph cut then works like GrabCut."""
    confidence = np.abs(2 * prob - 1)
    return confidence * prob + (1 - confidence) * fallback


# True: with a network, the colour models of a box's graph cut start from the network's prior
# instead of the box (everything inside it foreground, as GrabCut does). On the development
# photos of docs/results.md (l) it lost 0.07 on the mean of five held-out sources (portraits
# 0.817 -> 0.448: an unsure prior seeds wrong colour models), so the box starts them.
PRIOR_STARTS_COLOURS = False
# On a familiar photo (a ``plain`` cut) they start from the network's probability: the box's
# assumption seeds the background model with the few pixels outside the box alone, and when
# the box covers (almost) the whole photo an erase stroke's colours become the whole background
# model, so every other colour turns foreground. On the 100 development photos, docs/results.md
# (n): bundled pair box 0.817 -> 0.822, box + one stroke 0.834 -> 0.844 (portraits 0.941 ->
# 0.979); held-out pairs (unfamiliar photos, rarely plain) 0.732 -> 0.734 and 0.770 -> 0.769.


# An automatic cut that keeps (almost) nothing hands over to GrabCut's central box too: a
# hesitant network's prior near 0.5 can leave colour models that find no foreground at all.
EMPTY_FALLBACK = True
# A user's box says there is an object inside it. When the cut keeps (almost) nothing of the box
# besides the keep strokes (under MIN_FOREGROUND of its area), the network's own best guess
# inside the box is kept instead, with the strokes (:func:`best_guess`). Seen on 2 of the 100
# development photos (small COCO objects: a skateboard, a toaster), where the cut, OpenCV's
# GrabCut from the same box and the cut without the network all kept nothing (IoU 0 -> 0.34 and
# 0.67 with it; docs/results.md (o)); an empty result is never right for a box.
BOX_EMPTY_FALLBACK = True


def best_guess(prob: np.ndarray, hints: UserInput) -> np.ndarray:
    """Inside the user's box, the pixels the network thinks likelier than not foreground, or,
    when it thinks none is, those at least half as likely as its likeliest one; strokes kept."""
    inside = box_mask(prob.shape, hints.box)
    if hints.background is not None:
        inside &= ~hints.background
    top = float(prob[inside].max()) if inside.any() else 0.0
    keep = inside & (prob >= min(0.5, top / 2))
    return keep | hints.foreground if hints.foreground is not None else keep


def central_cut(
    small: np.ndarray, hints: UserInput | None = None, graph: CutGraph | None = None
) -> np.ndarray:
    """GrabCut's assumption alone: the graph cut from the central box, an even prior inside;
    ``hints``' strokes (never a box) are hard constraints (a keep stroke outside the central
    box too)."""
    shape = small.shape[:2]
    hints = UserInput() if hints is None else hints
    return graph_cut(
        small,
        np.full(shape, 0.5),
        hints.foreground,
        hints.background,
        central_box(shape),
        graph=graph,
        stroke_weight=hints.stroke_weight,
    )


# A photo the network knows: its mean confidence |2p - 1| over the whole photo is at least this
# (the whole-photo network's probability; with a user's box, as weighed with the box model's
# inside the box). Chosen on development photos, docs/results.md (m): the bundled pair's mean is
# 0.76 on photos like its training data, the held-out pairs' 0.56 on collections they never saw.
FAMILIAR = 0.75


def familiar(prob: np.ndarray | None) -> bool:
    """Whether the network's probability ``prob`` is sure enough of the photo, on average over
    all its pixels, to be taken as it is."""
    return prob is not None and float(np.abs(2 * prob - 1).mean()) >= FAMILIAR


def cut_mask(
    small: np.ndarray,
    prob: np.ndarray | None,
    hints: UserInput,
    plain: bool = False,
    iterations: int = 3,
    graph: CutGraph | None = None,
) -> np.ndarray:
    """Graph cut at working size. The prior: the network's probability where it is confident,
    GrabCut's box assumption where it is not (the user's box, else the central one); with
    ``plain``, the network's probability as it is, which then also starts the colour models
    (:data:`PRIOR_STARTS_COLOURS`); without a network, that assumption alone.
    The user's box and strokes are hard constraints. Without a user's box, a network or a cut
    that finds (almost) nothing beyond the keep strokes hands over to GrabCut's central box
    (:func:`central_cut`, the strokes still hard constraints); a cut that keeps (almost)
    nothing of the user's box hands over to the network's best guess inside it
    (:data:`BOX_EMPTY_FALLBACK`). ``iterations``: rounds of colour models and min cut at most
    (:func:`graph_cut`); ``graph``: ``small``'s :class:`CutGraph`, to reuse between cuts of the
    same photo."""
    shape = small.shape[:2]
    found_nothing = prob is not None and (prob > 0.5).mean() < MIN_FOREGROUND
    if (not hints.given and prob is None) or (hints.box is None and found_nothing):
        return central_cut(small, hints, graph)
    fallback = box_prior(shape, hints.box if hints.box is not None else central_box(shape))
    prior = fallback if prob is None else prob if plain else trusted(prob, fallback)
    mask = graph_cut(
        small,
        prior,
        hints.foreground,
        hints.background,
        hints.box,
        iterations=iterations,
        reach=hints.stroke_reach(shape),
        start_from_prior=prob is not None and (PRIOR_STARTS_COLOURS or plain),
        graph=graph,
        stroke_weight=hints.stroke_weight,
    )
    if EMPTY_FALLBACK and hints.box is None and beyond(mask, hints).mean() < MIN_FOREGROUND:
        return central_cut(small, hints, graph)
    if BOX_EMPTY_FALLBACK and prob is not None and hints.box is not None:
        if beyond(mask, hints)[box_mask(shape, hints.box)].mean() < MIN_FOREGROUND:
            return best_guess(prob, hints)
    return mask


def beyond(mask: np.ndarray, hints: UserInput) -> np.ndarray:
    """What a cut keeps beyond the keep strokes."""
    return mask if hints.foreground is None else mask & ~hints.foreground


def remove_background(
    image,
    model: str | Path | Segmenter | None = None,
    method: str = DEFAULT_CUTOUT,
    matting: bool = False,
    background: tuple[int, int, int] | np.ndarray | str | None = None,
    mask_only: bool = False,
    largest_component: bool = True,
    fill_holes: bool = True,
    model_size: int = 320,
    precision: str = "auto",
    box=None,
    foreground_strokes=None,
    background_strokes=None,
    box_model: str | Path | Segmenter | None = None,
    input_range: tuple[float, float] | None = None,
    crop: int | str | None = None,
    matting_megapixels: float | None = None,
) -> Image.Image:
    """Cut the foreground out of a photo: RGBA, its alpha at full resolution; ``mask_only``: the
    alpha alone (mode L); ``background`` (an RGB triple, an image array or a path): composited
    onto it (mode RGB); the photo's colour profile kept, a 16-bit photo's 16 bits (:func:`compose`).

    Args:
        image: a path, PIL image or (H, W[, C]) array (with transparency: :func:`read_photo`).
        model: a checkpoint path, bundled model name or loaded Segmenter (default: the bundled
            ``foreground`` model). Class 0 is background, every other class foreground.
        method: ``"graphcut"`` (default: graph cut on the network's probability, snapping to the
            photo's edges, :func:`mask_of`), ``"model"`` (the network's mask) or ``"grabcut"``.
        matting: refine the alpha by closed-form matting on a trimap (slower, finer hair); a photo
            over ``matting_megapixels`` (None: 16; 0: no bound) is matted shrunk (:func:`matted`).
        box: ``(x0, y0, x1, y1)`` around the object, in pixels; everything outside is background.
        foreground_strokes, background_strokes: pixels to keep or to remove, as polylines
            ``[{"points": [[x, y], ...], "radius": r}, ...]`` or boolean (H, W) masks. A box or
            strokes always run the graph cut, strokes acting near themselves (:func:`mask_of`).
        box_model: a box model (``train --box-crop``) helping ``model`` (:func:`box_helper`).
        input_range: raw values ``(lo, hi)`` seen as the full range: ``(0, 4095)`` for a 12-bit
            photo in a 16-bit file, else seen 16 times darker (:class:`DimPhoto` warning).
        crop: cut to the subject with this margin (:func:`subject_box`); None: the photo's frame.
    """
    if method not in CUTOUT_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(CUTOUT_METHODS)}")
    rgb, given_alpha, box, profile, deep = read_photo(image, box, input_range)
    small = working_image(rgb, model_size)
    hints = UserInput.scaled(
        box, foreground_strokes, background_strokes, rgb.shape[:2], small.shape[:2]
    )
    prob, helper = None, None
    if method != "grabcut":
        seg, helper = get_model(model), box_helper(model, box_model)
        prob = network_probability(seg, helper, small, hints.box, model_size, precision)
    keep = dict(matting=matting, largest_component=largest_component and not hints.given)
    keep["matting_megapixels"] = matting_megapixels
    if method == "model" and not hints.given:
        alpha = estimate_alpha(rgb, prob_small=prob, fill_holes=fill_holes, **keep)
    else:
        mask = mask_of(method, small, prob, helper, hints, precision, largest_component)
        mask, fill_holes = erased_kept_open(mask, hints, fill_holes)
        alpha = estimate_alpha(rgb, mask_small=mask, fill_holes=fill_holes, **keep)
    return compose(rgb, alpha, background, mask_only, given_alpha, profile, crop, deep)


def erased_kept_open(
    mask: np.ndarray, hints: UserInput, fill_holes: bool
) -> tuple[np.ndarray, bool]:
    """A working-size cut with erase strokes: its holes filled now, except those an erase stroke
    lies in (the gap between an arm and the body), and ``False``: no holes left to fill at the
    photo's size, which would fill those back; without erase strokes, as given."""
    if not fill_holes or hints.background is None:
        return mask, fill_holes
    return filled(mask, kept_open=hints.background), False


class DimPhoto(Note):
    """A 16-bit photo whose values all lie under 4096 (a 12-bit camera's?), seen 16 times darker
    by its dtype: ``input_range=(0, 4095)`` (``remove-bg --input-range 0,4095``) shows it at
    full range."""


def read_photo(
    image, box=None, input_range: tuple[float, float] | None = None
) -> tuple[np.ndarray, np.ndarray | None, Box | None, bytes | None, np.ndarray | None]:
    """A photo as uint8 (H, W, 3), its alpha when it has transparency (an earlier cut-out, a
    sticker; :func:`pixelwise.data.io.transparency`), else None, its RGB colour profile
    (:func:`~pixelwise.data.io.rgb_profile`), its pixels as uint16 (H, W, 3) when they are
    deeper than 8 bits (16-bit, float), else None, and the box to cut inside:
    ``box`` when one is given, else the box around the pixels that are not transparent when it
    is smaller than the photo. What is transparent is background: the cut-out's alpha is at
    most the photo's (:func:`compose`). ``input_range``: raw values seen as the full range
    (:func:`~pixelwise.data.encoding.map_range`); without it a 12-bit photo in a 16-bit file
    warns (:class:`DimPhoto`)."""
    image = decoded_bytes(image)  # bytes and file objects read once
    profile = rgb_profile(image)
    image, alpha = image_and_transparency(image)
    if input_range is not None:
        image = map_range(image, *input_range)
    elif intensity_kind(image) == TWELVE_BIT:
        warnings.warn(
            "a 16-bit photo with values under 4096 (a 12-bit camera's?) is seen 16 times darker; "
            "input_range=(0, 4095) (remove-bg --input-range 0,4095) shows it at full range",
            DimPhoto,
            stacklevel=3,
        )
    rgb, deep = _rgb8(image), None if image.dtype == np.uint8 else _rgb8(image, np.uint16)
    if alpha is not None and box is None:
        rows, cols = np.flatnonzero(alpha.any(axis=1)), np.flatnonzero(alpha.any(axis=0))
        found = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1) if len(rows) else None
        if found is not None and found != (0, 0, rgb.shape[1], rgb.shape[0]):
            box = tuple(float(v) for v in found)
    return rgb, alpha, box, profile, deep


def mask_of(
    method: str,
    small: np.ndarray,
    prob: np.ndarray | None,
    helper: Segmenter | None,
    hints: UserInput,
    precision: str = "auto",
    largest_component: bool = True,
) -> np.ndarray:
    """The graph cut's mask at working size (OpenCV's GrabCut for ``grabcut`` without user
    input); without a user's box (no input, or strokes alone), a box model (``helper``) refines
    the first cut. On a :func:`familiar` photo the cut takes the network's probability as it
    is: with user input already in the first cut, and always in the second (the refined
    probability). With :data:`LOCAL_STROKES`, strokes change the cut-out without them (the
    automatic one, or the box's) only where the change touches a stroke (:func:`near_strokes`);
    with strokes alone and ``largest_component``, the largest object and those a keep stroke
    touches are kept (:func:`stroked_objects`). Cut-outs without strokes are remembered
    (:data:`CUT_OUTS`) for the strokes that may follow."""
    remembered = Remembered.key(method, small, prob, helper, hints.box, precision)
    if method == "grabcut" and not hints.given:
        try:
            return CUT_OUTS.keep(remembered, helper, graphcut(small))
        except ValueError as error:  # too small at the working size for GrabCut's central box
            raise ValueError(
                f"method grabcut on the photo at its working size: {error} (use the default method)"
            ) from None
    graph = CutGraph.of_image(small)  # both cuts are of the same photo
    mask = cut_mask(small, prob, hints, plain=hints.given and familiar(prob), graph=graph)
    if helper is not None and hints.box is None and mask.any():
        refined = self_prompted(helper, small, prob, mask, precision)
        mask = cut_mask(
            small,
            refined,
            hints,
            plain=familiar(prob),
            iterations=SECOND_CUT_ITERATIONS,
            graph=graph,
        )
    if not hints.strokes:
        return CUT_OUTS.keep(remembered, helper, mask)
    if LOCAL_STROKES:
        before = CUT_OUTS.get(remembered)
        if before is None:
            before = mask_of(method, small, prob, helper, UserInput(hints.box), precision)
        if hints.box is None and largest_component:  # as the automatic cut-out keeps it
            before = keep_largest(before)
        mask = near_strokes(before, mask, hints)
    if hints.box is not None:
        return mask
    return stroked_objects(mask, hints.foreground) if largest_component else mask


class Remembered:
    """The last few cut-outs without strokes, at working size, by what they were computed
    from: the cut-out that strokes change (:data:`LOCAL_STROKES`) is the one the web page
    showed before them, so a stroke costs one cut-out, not two. Only strokes look here (a
    cut-out without strokes is always computed), so a setting of this module changed between
    the cut-out and the strokes applies to the strokes only; :meth:`clear` forgets. Thread-safe
    (the server's)."""

    def __init__(self, size: int = 8):
        import threading
        from collections import OrderedDict

        self.size, self.lock, self.entries = size, threading.Lock(), OrderedDict()

    @staticmethod
    def key(method, small, prob, helper, box, precision) -> tuple:
        """The photo and the network's probability by their digest, the box model by its id
        (each entry holds its box model, so no other object takes that id meanwhile)."""
        import hashlib

        digest = hashlib.blake2b(small.tobytes(), digest_size=16)
        if prob is not None:
            digest.update(np.ascontiguousarray(prob).tobytes())
        return digest.hexdigest(), small.shape, method, box, precision, id(helper)

    def get(self, key) -> np.ndarray | None:
        with self.lock:
            if key not in self.entries:
                return None
            self.entries.move_to_end(key)
            return self.entries[key][1]

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()

    def keep(self, key, helper, mask: np.ndarray) -> np.ndarray:
        """Remember a read-only copy of ``mask`` under ``key``; returns ``mask``."""
        copy = mask.copy()
        copy.flags.writeable = False
        with self.lock:
            self.entries[key] = (helper, copy)
            self.entries.move_to_end(key)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
        return mask


CUT_OUTS = Remembered()


# Strokes change the cut-out without them only near themselves (:func:`near_strokes`): a stroke
# also moves the colour models, and on a photo the network is unsure of, an erase stroke at a
# car's edge could turn the road into foreground. On the 100 development photos of
# docs/results.md (v), held-out pairs, one stroke: without a box 0.587 -> 0.590 (photos worse than
# without the stroke 9 -> 1), after a box 0.786 -> 0.797 (15 -> 2). It needs the cut-out without
# the strokes: remembered from the request before (:data:`CUT_OUTS`), else computed again.
LOCAL_STROKES = True
STROKE_REACH = 2  # pixels at working size: a change this close to a stroke touches it


def near_strokes(before: np.ndarray, after: np.ndarray, hints: UserInput) -> np.ndarray:
    """``before`` (the cut-out without strokes) changed as ``after`` (with them) only where the
    change touches a stroke: what ``after`` adds, where it touches (within
    :data:`STROKE_REACH`) a keep stroke; what it removes, where it touches an erase stroke."""
    added = touching(after & ~before, hints.foreground)
    removed = touching(before & ~after, hints.background)
    return (before & ~removed) | added


def touching(changed: np.ndarray, strokes: np.ndarray | None) -> np.ndarray:
    """The 8-connected components of ``changed`` within :data:`STROKE_REACH` of ``strokes``."""
    import cv2

    if strokes is None or not changed.any():
        return np.zeros_like(changed)
    kernel = np.ones((2 * STROKE_REACH + 1,) * 2, np.uint8)
    near = cv2.dilate(strokes.astype(np.uint8), kernel) > 0
    n, labels = cv2.connectedComponents(changed.astype(np.uint8), connectivity=8)
    kept = np.zeros(n, bool)
    kept[labels[near & changed]] = True
    kept[0] = False
    return kept[labels]


# The automatic cut-out's second cut starts from the first cut's refined probability and needs
# fewer rounds: on the 100 development photos, docs/results.md (n), two rounds instead of three
# scored the same (bundled pair 0.680 -> 0.680, held-out pairs 0.503 -> 0.503) and save a min
# cut (benchmarks/remove_bg.py's photo, plain fp32: 0.471 -> 0.447 s end to end).
SECOND_CUT_ITERATIONS = 2

SELF_BOX_GROWTH = 0.2  # chosen on development photos, docs/results.md (l): 0.05 and 0.2 tried


def self_prompted(
    helper: Segmenter,
    small: np.ndarray,
    prob: np.ndarray,
    mask: np.ndarray,
    precision: str = "auto",
) -> np.ndarray:
    """The automatic cut-out's probability, refined as if the user had drawn a box: around the
    first cut's largest object, grown by ``SELF_BOX_GROWTH`` per side, the box model's
    probability is weighed in as for a user's box (:func:`surer_weight`; outside that box,
    ``prob`` unchanged). The box is no hard constraint: the second cut may still reach beyond
    it."""
    box = grown_box(keep_largest(mask), (SELF_BOX_GROWTH,) * 4)
    x0, y0, x1, y1 = box
    inside = box_probability(helper, small, box, precision)[y0:y1, x0:x1]
    before = prob[y0:y1, x0:x1]
    weight = surer_weight(before, inside)
    refined = prob.copy()
    refined[y0:y1, x0:x1] = (1 - weight) * before + weight * inside
    return refined


@dataclass
class UserInput:
    """A box and strokes at the working size (see :func:`remove_background`)."""

    box: Box | None = None
    foreground: np.ndarray | None = None
    background: np.ndarray | None = None

    @property
    def strokes(self) -> bool:
        return self.foreground is not None or self.background is not None

    @property
    def given(self) -> bool:
        return self.box is not None or self.strokes

    @property
    def stroke_weight(self) -> float:
        """A stroke's share of its colour model: less without a user's box, where the colour
        models are the whole photo's (:data:`~pixelwise.graphcut.STROKE_WEIGHT_WITHOUT_BOX`)."""
        return STROKE_WEIGHT if self.box is not None else STROKE_WEIGHT_WITHOUT_BOX

    # A stroke relaxes the network's prior within a tenth of the object's size around it. A tenth
    # of the photo's side covered most of the box of a small object, and an erase stroke then
    # left the colour models alone to decide, which could empty the box (an elephant of 1 % of
    # its photo: IoU 0.72 -> 0.00 after one erase stroke; 0.79 now). One corrective stroke after
    # a box, docs/results.md (av): half of the COCO128 instances that chose it 0.727 -> 0.734
    # (photos losing over 0.1: 8 -> 5), the other half 0.702 -> 0.705 (6 -> 3), the 100
    # development photos 0.877 -> 0.878, the 257 portraits 0.960 -> 0.960.
    def stroke_reach(self, shape: tuple[int, int]) -> float:
        """How far a stroke relaxes the prior (:func:`~pixelwise.graphcut.relax_near`), as the
        fraction of ``shape``'s longer side that :func:`~pixelwise.graphcut.graph_cut` takes:
        :data:`~pixelwise.graphcut.RELAX_REACH` of the user's box's longer side, else of the
        photo's."""
        if self.box is None:
            return RELAX_REACH
        x0, y0, x1, y1 = self.box
        return RELAX_REACH * max(x1 - x0, y1 - y0) / max(shape)

    @classmethod
    def scaled(
        cls, box, foreground, background, shape: tuple[int, int], work: tuple[int, int]
    ) -> UserInput:
        """Validated and scaled from the photo's ``shape`` to the working size ``work``."""
        scale = work[0] / shape[0]
        small_box = None
        if box is not None:
            small_box = tuple(v * scale for v in check_box(box, shape))
        return cls(
            small_box,
            rasterize_strokes(foreground, work, scale),
            rasterize_strokes(background, work, scale),
        )


def subject_box(alpha: np.ndarray, margin: int | str = 0) -> Box | None:
    """The box ``(x0, y0, x1, y1)`` around what a cut-out keeps (``alpha`` in [0, 1], the pixels
    whose 8-bit alpha is not 0; or that 8-bit alpha itself, uint8), grown on each side by
    ``margin``: pixels (``30``, ``"30px"``) or a percentage of the subject's width and height
    (``"10%"``), within the photo; None when it keeps nothing. remove-bg ``--crop``, the HTTP
    API's ``crop``."""
    pixels, relative = crop_margin(margin)
    kept = (alpha if alpha.dtype == np.uint8 else quantized(alpha)) > 0  # as compose rounds it
    rows, cols = np.flatnonzero(kept.any(axis=1)), np.flatnonzero(kept.any(axis=0))
    h, w = alpha.shape
    if not len(rows):
        return None
    x0, y0, x1, y1 = int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
    dx, dy = (pixels * (x1 - x0) / 100, pixels * (y1 - y0) / 100) if relative else (pixels, pixels)
    dx, dy = int(round(dx)), int(round(dy))
    return (max(0, x0 - dx), max(0, y0 - dy), min(w, x1 + dx), min(h, y1 + dy))


def compose(
    rgb: np.ndarray,
    alpha: np.ndarray,
    background,
    mask_only: bool,
    at_most=None,
    profile=None,
    crop: int | str | None = None,
    deep: np.ndarray | None = None,
) -> Image.Image:
    """The cut-out as RGBA (black where fully transparent), the alpha alone (``mask_only``) or
    composited onto ``background``; ``at_most``: the photo's own uint8 alpha, which the
    cut-out's may not exceed. ``profile``: the photo's ICC colour profile of RGB data (a phone's
    Display P3, a camera's Adobe RGB), which the cut-out carries (``info["icc_profile"]``;
    saving it as PNG, or by :func:`cutout_bytes`, embeds it) so that its colours show as the
    photo's; a mask carries none. ``crop``: cropped to the subject with this margin
    (:func:`subject_box`; not when it keeps nothing). ``deep``: the photo's pixels as uint16
    (H, W, 3) when it is deeper than 8 bits; the RGBA cut-out then also holds its 16-bit
    pixels, the alpha at 16 bits too, as ``deep_pixels`` ((H, W, 4) uint16; PIL images have
    no 16-bit colour), which :func:`cutout_bytes` writes as a 16-bit PNG."""
    if at_most is not None:
        alpha = np.minimum(alpha, at_most / 255.0)
    a8 = quantized(alpha)
    subject = None if crop is None else subject_box(a8, crop)
    if mask_only:
        cutout = Image.fromarray(a8, mode="L")
    else:
        cutout = compose_colours(rgb, alpha, a8, background)
    if profile and not mask_only:
        cutout.info["icc_profile"] = profile
    keep_deep = deep is not None and cutout.mode == "RGBA"
    deep = (
        np.dstack([np.where(a8[..., None] > 0, deep, 0), quantized(alpha, np.uint16)])
        if keep_deep
        else None
    )
    if subject is not None:
        cutout = cutout.crop(subject)
        deep = None if deep is None else deep[subject[1] : subject[3], subject[0] : subject[2]]
    if deep is not None:
        cutout.deep_pixels = np.ascontiguousarray(deep, np.uint16)
    return cutout


def quantized(alpha: np.ndarray, dtype=np.uint8) -> np.ndarray:
    """An alpha in [0, 1] as ``dtype``'s whole range (uint8 0..255, uint16 0..65535), rounded
    half to even, through one float plane."""
    scaled = alpha * np.iinfo(dtype).max
    return np.rint(scaled, out=scaled).astype(dtype)


def blurred_background(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The photo's background blurred (Gaussian, sigma 1.5 % of the longer side), float32
    (H, W, 3): each pixel a weighted mean of the background near it, the subject left out
    (weights 1 - alpha), so that the subject's colours do not spread around it as a halo.
    A blur wider than :data:`BLUR_SIGMA` pixels is computed on the photo shrunk to that width
    (:func:`shrunk_blur`): a 12-megapixel photo's sigma of 60 pixels took 11 s at full size
    (0.2-0.4 s so), a 48-megapixel one's 2.5 minutes; the blur is smooth, and the cut-outs
    differ by 1-2 grey levels at most, 95 % of their values not at all (two 12-megapixel
    photos, ``benchmarks/large_photo.py``)."""
    out = np.empty((*rgb.shape[:2], 3), np.float32)
    for c, plane in enumerate(blurred_channels(rgb, 1.0 - alpha)):
        out[..., c] = plane
    return out


def blurred_channels(rgb: np.ndarray, away: np.ndarray) -> Iterator[np.ndarray]:
    """:func:`blurred_background` a channel at a time (float32 (H, W) planes), so that a composite
    never holds the three (2.3 GB for a 48-megapixel photo); ``away``: 1 - alpha."""
    import cv2

    sigma = max(2.0, 0.015 * max(rgb.shape[:2]))
    step = int(sigma // BLUR_SIGMA)

    def blur(plane: np.ndarray) -> np.ndarray:
        if step <= 1:
            return cv2.GaussianBlur(plane, (0, 0), sigma)
        return shrunk_blur(plane, sigma, step)

    away = away.astype(np.float32, copy=False)
    weight = np.maximum(blur(away), np.float32(1e-6))
    for c in range(3):
        plane = blur(rgb[..., c] * away)
        plane /= weight
        yield plane
        del plane  # before the next channel's


def shrunk_blur(plane: np.ndarray, sigma: float, step: int) -> np.ndarray:
    """OpenCV's Gaussian blur of a float32 plane (its borders mirrored about the edge pixels,
    BORDER_REFLECT_101), computed on the plane shrunk ``step`` times (means of ``step`` x
    ``step`` pixels) and enlarged back (bilinear): for a sigma of many pixels, whose blur is
    smooth. The plane is mirrored by 4 sigmas first, so its edges are blurred as at full size."""
    import cv2

    h, w = plane.shape
    m = step * math.ceil(4 * sigma / step)  # the margin, whole cells of the shrunk plane
    padded = cv2.copyMakeBorder(
        plane, m, m + (-h) % step, m, m + (-w) % step, cv2.BORDER_REFLECT_101
    )
    small = cv2.resize(
        padded, (padded.shape[1] // step, padded.shape[0] // step), interpolation=cv2.INTER_AREA
    )
    del padded  # before the full-size plane it is enlarged to
    small = cv2.GaussianBlur(small, (0, 0), sigma / step)
    # photo pixel x lies at (x + m + 0.5) / step - 0.5 of the shrunk plane, as y does
    shift = (m + 0.5) / step - 0.5
    back = np.array([[1 / step, 0, shift], [0, 1 / step, shift]])
    return cv2.warpAffine(small, back, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)


BLUR_SIGMA = 4  # pixels: the widest blur :func:`blurred_background` computes at full size


def compose_colours(rgb: np.ndarray, alpha: np.ndarray, a8: np.ndarray, background) -> Image.Image:
    """:func:`compose`'s RGBA cut-out, or RGB onto ``background``: a colour, or an image scaled
    to cover the photo, its aspect kept, and centred (what overhangs is cropped), as CSS's
    ``background-size: cover`` shows one; or :data:`BLUR` (:func:`blurred_background`).
    Composited a channel at a time (a 48-megapixel photo's float32 colours are 576 MB)."""
    if background is not None:
        away = 1 - alpha
        if isinstance(background, str) and background == BLUR:
            channels = blurred_channels(rgb, away)
        elif isinstance(background, (str, os.PathLike, Image.Image)) or (
            isinstance(background, np.ndarray) and background.ndim >= 2
        ):
            cover = ImageOps.fit(
                Image.fromarray(_rgb(background)), rgb.shape[1::-1], Image.BILINEAR
            )
            bg = np.asarray(cover)  # uint8: as float32, each value the same
            channels = (bg[..., c] for c in range(3))
        else:
            channels = iter(np.asarray(background, np.float32)[:3])
        out = np.empty(rgb.shape, np.uint8)
        for c, plane in enumerate(channels):
            # float64 where the photo's own alpha capped the cut-out's (compose's at_most)
            mixed = rgb[..., c].astype(np.result_type(alpha, np.float32))
            mixed *= alpha
            mixed += away * plane
            del plane  # before the next channel's
            out[..., c] = np.clip(np.rint(mixed, out=mixed), 0, 255, out=mixed)
        return Image.fromarray(out, mode="RGB")
    # black under what is fully transparent, as other cut-out tools write it: the PNG is about 3x
    # smaller (median 265 -> 90 KiB over 20 cut-outs of the foreground sets)
    rgba = np.zeros((*a8.shape, 4), np.uint8)
    np.copyto(rgba[..., :3], rgb, where=(a8 > 0)[..., None])
    rgba[..., 3] = a8
    return Image.fromarray(rgba, mode="RGBA")


def mask_iou_and_alpha_error(alpha: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(IoU of alpha > 0.5 with the binary truth, mean |alpha - truth|) for one image."""
    pred, truth = alpha > 0.5, truth.astype(bool)
    union = (pred | truth).sum()
    iou = float((pred & truth).sum() / union) if union else 1.0
    return iou, float(np.abs(alpha.astype(np.float64) - truth).mean())


def read_strokes(path: str | Path) -> dict:
    """A strokes file as ``remove_background`` keyword arguments. Schema (coordinates in pixels
    of the photo)::

        {"foreground": [{"points": [[x, y], ...], "radius": 8}, ...],
         "background": [{"points": [[x, y], ...], "radius": 8}, ...]}

    Either list may be missing or empty."""
    import json

    try:
        spec = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a strokes file ({type(exc).__name__}: {exc})") from None
    if not isinstance(spec, dict) or not set(spec) <= {"foreground", "background"}:
        raise ValueError(f'{path}: expected {{"foreground": [...], "background": [...]}} polylines')
    return {f"{k}_strokes": v for k, v in spec.items() if v}


def read_boxes(path: str | Path) -> dict[str, tuple[float, ...]]:
    """A boxes file: ``{"photo.jpg": [x0, y0, x1, y1], "sub/other.png": [...]}``, keyed by the
    photo's path inside the folder given (or its file name)."""
    import json

    try:
        spec = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a boxes file ({type(exc).__name__}: {exc})") from None
    if not isinstance(spec, dict) or not all(
        isinstance(v, list) and len(v) == 4 for v in spec.values()
    ):
        raise ValueError(f'{path}: expected {{"file name": [x0, y0, x1, y1], ...}}')
    return {str(k): tuple(v) for k, v in spec.items()}


def cutout_bytes(cutout: Image.Image, fmt: str = "png") -> bytes:
    """A cut-out encoded as ``png`` (lossless), ``webp`` (the colours lossy at quality 90, the
    alpha lossless, so the outline is exact; several times smaller than the PNG) or ``jpg`` (no
    transparency: an RGBA cut-out is composited onto white first, as a background colour would
    be; quality 92) or ``tif`` (lossless, zlib; the alpha unassociated, as print software reads
    a cut-out's); each with the photo's colour profile when the cut-out carries one
    (``cutout.info["icc_profile"]``, :func:`remove_background`). A 16-bit photo's cut-out
    (``deep_pixels``, :func:`compose`) is a 16-bit PNG or TIFF; WebP and JPEG hold 8 bits."""
    deep = getattr(cutout, "deep_pixels", None)
    if fmt == "tif":
        pixels = deep if deep is not None else np.asarray(cutout)
        return tiff_bytes(pixels, cutout.info.get("icc_profile"))
    if fmt == "png" and deep is not None:
        return deep_png_bytes(deep, cutout.info.get("icc_profile"))
    if fmt == "png":
        return png_bytes(cutout)  # with the photo's colour profile, if any (cutout.info)
    if fmt not in CUTOUT_TYPES:
        raise ValueError(f"unknown format {fmt!r}; choose png, webp, jpg or tif")
    profile = {"icc_profile": cutout.info["icc_profile"]} if "icc_profile" in cutout.info else {}
    if fmt == "jpg" and cutout.mode == "RGBA":
        white = Image.new("RGBA", cutout.size, (255, 255, 255, 255))
        cutout = Image.alpha_composite(white, cutout).convert("RGB")
    buf = io.BytesIO()
    cutout.save(
        buf, **(WEBP_SAVE if fmt == "webp" else {"format": "JPEG", "quality": 92}), **profile
    )
    return buf.getvalue()


def kept_nothing(cutout) -> bool:
    """Whether a cut-out (RGBA, or its alpha alone) keeps no pixel at alpha > 0.5; a photo
    composited onto a background cannot tell, and counts as keeping something."""
    if cutout.mode not in ("RGBA", "L"):
        return False
    alpha = np.asarray(cutout.getchannel("A") if cutout.mode == "RGBA" else cutout)
    return not (alpha > 127).any()
