"""Paired transforms: every geometric change is applied to the image and its mask together.

Arrays are (H, W, C) images and (H, W) masks, as returned by :mod:`pixelwise.data.io`. A mask
may carry extra per-pixel planes as (H, W, K) (e.g. class ids and a pixel-weight map stacked):
every plane is moved exactly like the labels (nearest neighbour, padded with the ignore index).
Randomness comes from an explicit ``numpy.random.Generator`` so that a sample's
augmentation is a pure function of (seed, epoch, index): resumed runs replay it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pixelwise.constants import APPEARANCES, FLIPS, IGNORE_INDEX


@dataclass(frozen=True)
class Augmentation:
    """Augmentation for appearance shift, beyond crops, flips and elastic deformation.

    ``zoom``: random resized crops covering this range of the image's area (with aspect jitter)
    instead of plain crops; ``rotate``: random rotation up to this many degrees; ``appearance``:
    a preset of :mod:`pixelwise.data.appearance`; ``composite``: the probability of pasting the
    sample's foreground (class 1) onto another training image's background; ``box``: crop to
    the foreground's bounding box grown by a fraction of its size in this range on each side
    (:func:`random_box_crop`), for a network that cuts out the object in a user's box.
    """

    zoom: tuple[float, float] | None = None
    rotate: float = 0.0
    appearance: str = "none"
    composite: float = 0.0
    box: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.zoom is not None and not 0 < self.zoom[0] <= self.zoom[1] <= 1:
            raise ValueError(f"zoom must be two area fractions 0 < lo <= hi <= 1, got {self.zoom}")
        if self.box is not None and not -0.5 < self.box[0] <= self.box[1] <= 2:
            raise ValueError(
                f"box must be two growth fractions -0.5 < lo <= hi <= 2, got {self.box}"
            )
        if not 0 <= self.composite <= 1:
            raise ValueError(f"composite is a probability in [0, 1], got {self.composite}")
        if self.appearance not in APPEARANCES:
            raise ValueError(
                f"unknown appearance {self.appearance!r}; choose one of {', '.join(APPEARANCES)}"
            )

    @property
    def active(self) -> bool:
        return (
            self.zoom is not None
            or self.box is not None
            or self.rotate > 0
            or self.appearance != "none"
            or self.composite > 0
        )


def pad_to(
    image: np.ndarray, mask: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pad to at least (height, width): image by reflection, mask with the ignore index."""
    ph, pw = max(0, height - image.shape[0]), max(0, width - image.shape[1])
    if ph == 0 and pw == 0:
        return image, mask
    mode = "reflect" if ph < image.shape[0] and pw < image.shape[1] else "symmetric"
    image = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode=mode)
    mask = np.pad(
        mask, ((0, ph), (0, pw)) + ((0, 0),) * (mask.ndim - 2), constant_values=IGNORE_INDEX
    )
    return image, mask


def in_dtype(x: np.ndarray, dtype) -> np.ndarray:
    """Float values computed from an image, back in its ``dtype``: integers rounded and clipped
    to their range, floats as they are."""
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        return np.clip(np.rint(x), 0, np.iinfo(dtype).max).astype(dtype)
    return x.astype(dtype)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, C) image to ``size`` = (height, width) by antialiased bilinear interpolation, dtype kept."""
    import torch
    import torch.nn.functional as F

    if image.shape[-1] > 1 and image.size > BIG_IMAGE:  # a channel at a time: the same values
        return np.concatenate(
            [resize_image(image[..., c : c + 1], size) for c in range(image.shape[-1])], -1
        )
    x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]
    x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return in_dtype(x[0].permute(1, 2, 0).numpy(), image.dtype)


# values of an image above which :func:`resize_image` takes its channels one at a time: a float32
# copy of one channel of a 48-megapixel photo instead of three (192 MB instead of 576 MB)
BIG_IMAGE = 1 << 24


def resize_weights(out: np.ndarray, in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`resize_image`'s interpolation along one axis for the output pixels ``out``
    (indices into ``out_size``) of a line of ``in_size`` input pixels: ``(taps, weights)``, both
    (len(out), k), output pixel ``out[i]`` being ``weights[i] @ line[taps[i]]``. Antialiased
    bilinear as PyTorch computes it (``align_corners=False``): a triangle filter widened by the
    scale when shrinking, normalised to sum 1; so a region of a resized image can be made from
    a region of the original."""
    scale = in_size / out_size
    support, stretch = (scale, 1 / scale) if scale >= 1 else (1.0, 1.0)
    centre = scale * (np.asarray(out, np.float64) + 0.5)
    lo = np.maximum((centre - support + 0.5).astype(np.int64), 0)
    hi = np.minimum((centre + support + 0.5).astype(np.int64), in_size)
    taps = lo[:, None] + np.arange(int((hi - lo).max()))
    weights = np.clip(1 - np.abs((taps - centre[:, None] + 0.5) * stretch), 0, None)
    weights[taps >= hi[:, None]] = 0
    weights /= weights.sum(1, keepdims=True)
    return np.minimum(taps, in_size - 1), weights.astype(np.float32)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) label image to ``size`` by nearest neighbour at pixel centres: ids stay ids."""
    h, w = mask.shape[:2]
    rows = np.minimum(((np.arange(size[0]) + 0.5) * h / size[0]).astype(np.intp), h - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * w / size[1]).astype(np.intp), w - 1)
    return mask[rows[:, None], cols[None, :]]


def scaled_size(shape: tuple[int, ...], scale: float) -> tuple[int, int]:
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))


def resize_pair(image: np.ndarray, mask: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Resize both by ``scale``: the image bilinearly (antialiased), the mask by nearest neighbour."""
    size = scaled_size(mask.shape, scale)
    return resize_image(image, size), resize_mask(mask, size)


def pad_context(image: np.ndarray, mask: np.ndarray, border: int) -> tuple[np.ndarray, np.ndarray]:
    """Mirror ``border`` pixels around the image (context for valid convolutions); the mask's
    border is the ignore index, so only real pixels are ever scored."""
    mode = "reflect" if border < min(image.shape[:2]) else "symmetric"
    image = np.pad(image, ((border, border), (border, border), (0, 0)), mode=mode)
    widths = ((border, border), (border, border)) + ((0, 0),) * (mask.ndim - 2)
    return image, np.pad(mask, widths, constant_values=IGNORE_INDEX)


def random_crop(
    image: np.ndarray, mask: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A random ``size`` x ``size`` window of both arrays (padded first when smaller)."""
    image, mask = pad_to(image, mask, size, size)
    top = int(rng.integers(0, image.shape[0] - size + 1))
    left = int(rng.integers(0, image.shape[1] - size + 1))
    return image[top : top + size, left : left + size], mask[top : top + size, left : left + size]


def random_flip_rotate(
    image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, flips: str = "all"
) -> tuple[np.ndarray, np.ndarray]:
    """Random horizontal/vertical flips, plus a random multiple of 90 degrees for square arrays
    (``flips="all"``), or only random left-right mirroring (``flips="horizontal"``: for labels
    that are not symmetric under vertical flips and rotations, e.g. drawn with a vertical offset)."""
    if flips not in FLIPS:
        raise ValueError(f"unknown flips {flips!r}; choose {', '.join(FLIPS)}")
    if rng.random() < 0.5:
        image, mask = image[:, ::-1], mask[:, ::-1]
    if flips == "horizontal":
        return image, mask
    if rng.random() < 0.5:
        image, mask = image[::-1], mask[::-1]
    k = int(rng.integers(0, 4))
    if image.shape[0] == image.shape[1] and k:
        image, mask = np.rot90(image, k), np.rot90(mask, k)
    return image, mask


def elastic_deform(
    image: np.ndarray,
    mask: np.ndarray,
    rng: np.random.Generator,
    grid: int = 3,
    sigma: float = 10.0,
) -> tuple[np.ndarray, np.ndarray]:
    """U-Net's elastic deformation: random displacements on a coarse ``grid`` x ``grid`` grid
    (Gaussian, ``sigma`` pixels), interpolated bicubically to every pixel; the image is
    resampled bicubically, the mask by nearest neighbour, both with mirrored borders."""
    from scipy import ndimage

    h, w = mask.shape[:2]
    coarse = rng.normal(0.0, sigma, (2, grid, grid))
    field = [
        ndimage.zoom(c, (h / grid, w / grid), order=3, mode="nearest", grid_mode=False)
        for c in coarse
    ]
    yy, xx = np.meshgrid(
        np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij"
    )
    coords = np.stack([yy + field[0].astype(np.float32), xx + field[1].astype(np.float32)])
    channels = [
        ndimage.map_coordinates(image[..., c].astype(np.float32), coords, order=3, mode="mirror")
        for c in range(image.shape[-1])
    ]
    warped = np.stack(channels, axis=-1)
    planes = mask[..., None] if mask.ndim == 2 else mask
    warped_mask = np.stack(
        [
            ndimage.map_coordinates(planes[..., k], coords, order=0, mode="mirror")
            for k in range(planes.shape[-1])
        ],
        axis=-1,
    ).reshape(mask.shape)
    return in_dtype(warped, image.dtype), warped_mask.astype(mask.dtype)


def random_resized_crop(
    image: np.ndarray,
    mask: np.ndarray,
    size: int,
    rng: np.random.Generator,
    area: tuple[float, float] = (0.3, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> tuple[np.ndarray, np.ndarray]:
    """A random window covering a fraction in ``area`` of the image with an aspect ratio
    (width / height, log-uniform) in ``ratio``, resized to ``size`` x ``size``: a wide range of
    object scales and some aspect distortion. The image is resized with area averaging or
    bilinear interpolation, the mask by nearest neighbour. When no window fits after 10 tries,
    the whole image is used."""
    import cv2

    h, w = mask.shape[:2]
    top, left, ch, cw = 0, 0, h, w
    for _ in range(10):
        a = h * w * rng.uniform(*area)
        r = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
        cw_, ch_ = int(round(np.sqrt(a * r))), int(round(np.sqrt(a / r)))
        if 0 < cw_ <= w and 0 < ch_ <= h:
            top, left = int(rng.integers(0, h - ch_ + 1)), int(rng.integers(0, w - cw_ + 1))
            ch, cw = ch_, cw_
            break
    window = image[top : top + ch, left : left + cw]
    interpolation = cv2.INTER_AREA if ch * cw > size * size else cv2.INTER_LINEAR
    out = cv2.resize(np.ascontiguousarray(window), (size, size), interpolation=interpolation)
    return out.reshape(size, size, image.shape[-1]), resize_mask(
        mask[top : top + ch, left : left + cw], (size, size)
    )


def grown_box(
    foreground: np.ndarray, grow: tuple[float, float, float, float]
) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)``: the bounding box of a boolean (H, W) ``foreground``, each side
    (left, top, right, bottom) moved out by ``grow`` times the box's width or height (in
    by a negative fraction), clipped to the image; ``None`` without foreground."""
    ys, xs = np.nonzero(foreground)
    if len(ys) == 0:
        return None
    h, w = foreground.shape
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    bw, bh = x1 - x0, y1 - y0
    left, top = int(np.floor(x0 - grow[0] * bw)), int(np.floor(y0 - grow[1] * bh))
    right, bottom = int(np.ceil(x1 + grow[2] * bw)), int(np.ceil(y1 + grow[3] * bh))
    left, top = min(max(0, left), x1 - 1), min(max(0, top), y1 - 1)
    return left, top, max(min(w, right), left + 1), max(min(h, bottom), top + 1)


def crop_resize(
    image: np.ndarray, mask: np.ndarray | None, box: tuple[int, int, int, int], size: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """The window ``box = (x0, y0, x1, y1)`` (integer pixels inside the image) resized to
    ``size`` x ``size`` (aspect not kept): the image with area averaging or bilinear
    interpolation, the mask by nearest neighbour."""
    import cv2

    x0, y0, x1, y1 = box
    window = np.ascontiguousarray(image[y0:y1, x0:x1])
    interpolation = cv2.INTER_AREA if (y1 - y0) * (x1 - x0) > size * size else cv2.INTER_LINEAR
    out = cv2.resize(window, (size, size), interpolation=interpolation)
    out = out.reshape(size, size, *image.shape[2:])
    return out, None if mask is None else resize_mask(mask[y0:y1, x0:x1], (size, size))


def random_box_crop(
    image: np.ndarray,
    mask: np.ndarray,
    size: int,
    rng: np.random.Generator,
    grow: tuple[float, float] = (0.0, 0.15),
) -> tuple[np.ndarray, np.ndarray]:
    """The foreground's bounding box (every class but 0 and the ignore index), each side grown
    by a fraction of the box's size drawn uniformly from ``grow``, clipped to the image and
    resized to ``size`` x ``size``: what a user's box around the object shows. Without
    foreground, the whole image."""
    labels = mask[..., 0] if mask.ndim == 3 else mask
    box = grown_box((labels != 0) & (labels != IGNORE_INDEX), tuple(rng.uniform(*grow, 4)))
    if box is None:
        box = (0, 0, mask.shape[1], mask.shape[0])
    return crop_resize(image, mask, box, size)


def random_rotate(
    image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, degrees: float
) -> tuple[np.ndarray, np.ndarray]:
    """Rotate both by an angle uniform in [-degrees, degrees] about the centre; the image
    bilinearly, the mask by nearest neighbour; corners that come from outside are mirrored
    for the image and ignored (255) in the mask."""
    import cv2

    h, w = mask.shape[:2]
    m = cv2.getRotationMatrix2D(
        (w / 2 - 0.5, h / 2 - 0.5), float(rng.uniform(-degrees, degrees)), 1.0
    )
    rotated = cv2.warpAffine(
        image.astype(np.float32),
        m,
        (w, h),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT_101,
    ).reshape(image.shape)
    planes = mask[..., None] if mask.ndim == 2 else mask
    turned = np.stack(
        [
            cv2.warpAffine(
                np.ascontiguousarray(planes[..., k]).astype(np.float32),
                m,
                (w, h),
                flags=cv2.INTER_NEAREST,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=IGNORE_INDEX,
            )
            for k in range(planes.shape[-1])
        ],
        -1,
    )
    return in_dtype(rotated, image.dtype), turned.reshape(mask.shape).astype(mask.dtype)


def fill_foreground(image: np.ndarray, foreground: np.ndarray, work_size: int = 64) -> np.ndarray:
    """``image`` with its ``foreground`` pixels replaced by a smooth fill from the surrounding
    background (inpainted at low resolution, then upsampled): a background plate without the
    object, for pasting another object onto."""
    import cv2

    if not foreground.any():
        return image
    h, w = foreground.shape
    s = min(1.0, work_size / max(h, w))
    size = (max(1, round(w * s)), max(1, round(h * s)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], -1)
    hole = cv2.resize(foreground.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    hole = cv2.dilate(hole, np.ones((3, 3), np.uint8))
    filled = np.stack(
        [
            cv2.inpaint(np.ascontiguousarray(small[..., c]), hole, 3, cv2.INPAINT_TELEA)
            for c in range(small.shape[-1])
        ],
        -1,
    )
    plate = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR).reshape(image.shape)
    return np.where(foreground[..., None], plate, image)


def composite(
    image: np.ndarray,
    mask: np.ndarray,
    background: np.ndarray,
    background_mask: np.ndarray,
    foreground_class: int = 1,
) -> np.ndarray:
    """Paste the labelled foreground of ``image`` onto another photo's background (mask-aware:
    the other photo's own foreground is filled from its surroundings first, so no unlabelled
    object shows behind the pasted one). ``background`` is resized to the image. The pasted
    edge is feathered by one pixel; the labels of ``image`` stay valid."""
    import cv2

    h, w = mask.shape[:2]
    labels = mask if mask.ndim == 2 else mask[..., 0]
    plate = cv2.resize(background, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, -1)
    plate_fg = resize_mask(
        background_mask if background_mask.ndim == 2 else background_mask[..., 0], (h, w)
    )
    plate = fill_foreground(plate, plate_fg == foreground_class)
    alpha = cv2.GaussianBlur((labels == foreground_class).astype(np.float32), (3, 3), 0.7)[
        ..., None
    ]
    out = alpha * image.astype(np.float32) + (1 - alpha) * plate[..., : image.shape[-1]].astype(
        np.float32
    )
    return in_dtype(out, image.dtype)


def rescaled(image: np.ndarray, source: tuple, target: tuple, dtype) -> np.ndarray:
    """``image``'s values with ``source`` (lo, hi) moved to ``target`` (lo, hi), as ``dtype``
    (:func:`in_dtype`): another image pasted in
    looks as it would to the model on its own (an 8-bit photo into a 16-bit one, or by each
    image's own percentiles)."""
    (a, b), (c, d) = source, target
    x = (image.astype(np.float32) - np.float32(a)) * np.float32((d - c) / (b - a) if b > a else 0)
    return in_dtype(x + np.float32(c), dtype)
