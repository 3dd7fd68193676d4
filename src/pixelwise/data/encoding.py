"""How stored pixels become network inputs and targets: :class:`Normalization` for images,
:class:`MaskEncoding` for masks. Both travel in every checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pixelwise.constants import IGNORE_INDEX, INSTANCE_TARGETS

BLACK_AND_WHITE = ((0, 255), (0, 0xFFFFFF))  # binary masks, grey or RGB: background, foreground


def full_scale(dtype) -> float:
    """The stored value of full intensity: 255 for 8-bit images, 65535 for 16-bit, 1.0 for floats."""
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        return float(np.iinfo(dtype).max) if dtype.itemsize <= 2 else 65535.0
    return 1.0


def to_unit(image: np.ndarray) -> np.ndarray:
    """An image as float32 in [0, 1] by its dtype's full scale (see :func:`full_scale`)."""
    return image.astype(np.float32) / np.float32(full_scale(image.dtype))


def map_range(image: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``image``'s raw values ``lo``..``hi`` as float32 0..1, clipped: a 12-bit camera's image in a
    16-bit file (``0, 4095``) as a model trained on full-range images sees an image."""
    x = (image.astype(np.float32) - np.float32(lo)) / np.float32(hi - lo)
    return np.clip(x, 0.0, 1.0, out=x)


TWELVE_BIT = "12-bit in 16-bit"


def intensity_kind(image: np.ndarray) -> str:
    """How an image stores intensity, as bit-depth normalisation sees it: ``8-bit``, ``16-bit``,
    ``12-bit in 16-bit`` (values under 4096: a 12-bit camera's, 16x darker by its dtype),
    ``float 0..1`` or ``float`` (other ranges, taken as they are)."""
    if image.dtype.kind == "f":
        return "float 0..1" if image.min() >= 0 and image.max() <= 1 else "float"
    if image.dtype == np.uint16:
        return TWELVE_BIT if image.max() < 4096 else "16-bit"
    return f"{8 * image.dtype.itemsize}-bit"


FULL_RANGE_KINDS = {"8-bit", "16-bit", "float 0..1"}  # one scene, one brightness in each


def mixed_kinds_note(kinds: dict[str, int]) -> str | None:
    """The note for training images whose :func:`intensity_kind` s put one scene at different
    brightnesses under bit-depth normalisation (None when they do not)."""
    if len(kinds) < 2 or set(kinds) <= FULL_RANGE_KINDS:
        return None
    listed = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
    return (
        f"note: the images store intensity in different ways ({listed}); each is scaled by its "
        "type (12-bit values in a 16-bit file to at most 1/16, floats as they are), so one scene "
        "looks brighter or darker in each: --normalize-percentiles 1,99.8 normalises every image "
        "by its own intensities instead"
    )


# Pixels a percentile is taken over, at most: a larger image is subsampled on a regular grid
# (a 4000 x 3000 RGB photo holds 36 M values; every 3rd row and column keep 4 M).
PERCENTILE_SAMPLES = 4_000_000


def percentile_bounds(image: np.ndarray, percentiles) -> tuple[float, float]:
    """The ``percentiles`` ``(lo, hi)`` of ``image``'s values (all channels together, so colours
    keep their balance), from a regular subsample of large images (:data:`PERCENTILE_SAMPLES`)."""
    step = max(1, int(np.ceil(np.sqrt(image.size / PERCENTILE_SAMPLES))))
    values = image[::step, ::step].astype(np.float32, copy=False)
    lo, hi = np.percentile(values, percentiles)
    return float(lo), float(hi)


@dataclass
class Normalization:
    """``x = (raw / scale - mean) / std`` per channel; with ``percentiles = (lo, hi)``,
    ``raw / scale`` is replaced by ``(raw - P_lo) / (P_hi - P_lo)``, the image's own percentiles
    (StarDist's and Cellpose's normalisation), so that bit depth, exposure and offset do not
    matter."""

    mean: list[float] = field(default_factory=lambda: [0.5])
    std: list[float] = field(default_factory=lambda: [0.25])
    scale: float = 255.0
    percentiles: list[float] | None = None

    def bounds(self, image: np.ndarray) -> tuple[float, float] | None:
        """The raw values that become 0 and 1 for ``image`` (a whole image: a crop or tile of it
        takes the whole image's bounds); None without :attr:`percentiles`."""
        return None if self.percentiles is None else percentile_bounds(image, self.percentiles)

    def unit(self, image: np.ndarray, bounds: tuple[float, float] | None = None) -> np.ndarray:
        """``image`` as float32 on the model's unit scale: by its own dtype (8-bit / 255, 16-bit
        / 65535, floats as they are), so one photo gives one prediction whatever its bit depth;
        with :attr:`percentiles`, its percentiles (``bounds``, else computed from ``image``) go
        to 0 and 1 (not clipped)."""
        if self.percentiles is None:
            return to_unit(image)
        lo, hi = self.bounds(image) if bounds is None else bounds
        x = image.astype(np.float32) - np.float32(lo)
        return x / np.float32(hi - lo) if hi > lo else x * 0  # a flat image: all 0

    def apply(self, image: np.ndarray, bounds: tuple[float, float] | None = None) -> np.ndarray:
        """Normalised float32 of an (H, W, C) image (:meth:`unit`, then per-channel mean and
        std); ``scale`` records the range the model was trained on."""
        x = self.unit(image, bounds)
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        return (x - mean) / std

    def to_dict(self) -> dict:
        d = {"mean": list(self.mean), "std": list(self.std), "scale": self.scale}
        return d if self.percentiles is None else d | {"percentiles": list(self.percentiles)}


@dataclass(frozen=True)
class MaskEncoding:
    """How stored mask values become class ids.

    ``values``: the stored value of class 0, 1, ... (e.g. ``(0, 255)`` for black/white masks);
    ``None`` means stored values are the class ids. ``ignore_values``: stored values that
    become the ignore index 255 (e.g. CamVid's void id 11). ``instances``: the masks are
    instance labels (0 = background) turned into ``"foreground"`` (0/1) or ``"boundary"``
    (0 background, 1 interior, 2 the object's own boundary pixels) classes. ``soft``: the
    masks' edges are soft (anti-aliased, resized, alpha mattes), so each pixel takes the class
    of the nearest listed value, as a JPEG mask's pixels always do.
    """

    values: tuple[int, ...] | None = None
    ignore_values: tuple[int, ...] = ()
    instances: str | None = None
    soft: bool = False

    def apply(self, raw: np.ndarray, num_classes: int, path: Path | str = "<mask>") -> np.ndarray:
        """Class ids (H, W) int64 of stored values ``raw`` (from the file ``path``). A JPEG
        mask's values are blurred at edges by lossy compression: each of its pixels takes the
        class (or ignore) of the nearest listed value, grey level or colour (``soft``: every
        mask's)."""
        if self.instances is not None:
            return instances_to_classes(raw, self.instances)
        if self.values is not None and (self.soft or is_lossy(path)):
            return self.nearest(raw)
        if self.values is None:
            out = raw.astype(np.int64)
        else:
            out = np.full(raw.shape, -1, dtype=np.int64)
            for class_id, value in enumerate(self.values):
                out[raw == value] = class_id
        if self.ignore_values:
            out[np.isin(raw, self.ignore_values)] = IGNORE_INDEX
        bad = (out != IGNORE_INDEX) & ((out < 0) | (out >= num_classes))
        if bad.any():
            found = sorted(set(np.unique(raw[bad]).tolist()))
            raise ValueError(self.unknown_values(found, num_classes, path))
        return out

    def nearest(self, raw: np.ndarray) -> np.ndarray:
        """Each pixel's class: that of the nearest of ``values`` and ``ignore_values`` (ignored:
        255), by grey level, or by RGB distance when the values are packed colours."""
        listed = np.asarray([*self.values, *self.ignore_values], np.int64)
        classes = np.r_[np.arange(len(self.values)), np.full(len(self.ignore_values), IGNORE_INDEX)]
        found, where = np.unique(raw.astype(np.int64), return_inverse=True)  # each value once
        if max(listed.max(), found.max(initial=0)) > 255:  # colours 0xRRGGBB
            pixels, points = unpacked(found), unpacked(listed)
        else:
            pixels, points = found[:, None], listed[:, None]
        distance = ((pixels[:, None, :] - points[None]) ** 2).sum(-1)
        return classes[distance.argmin(-1)][where.reshape(raw.shape)]

    def unknown_values(self, found: list[int], num_classes: int, path: Path | str) -> str:
        """The error for stored values no class has (colours as #rrggbb in colour masks)."""
        from pixelwise.data.io import colour_name, is_colour_mask

        if is_colour_mask(path):  # False for a path that is no readable image
            named = ", ".join(colour_name(v) for v in found[:10])
            listed = ", ".join(colour_name(v) for v in self.values or ())
            return (
                f"{path}: colours {named} are not among the classes' colours ({listed or 'none'}: "
                "give every colour in the masks, in class order, with --mask-values or classes.json)"
            )
        if self.values:  # values between the listed ones: soft edges?
            listed = [*self.values, *self.ignore_values]
            between = min(listed) < min(found) and max(found) < max(listed)
        else:  # grey levels between 0 and 255 where two classes are ids 0 and 1
            between = num_classes == 2 and len(found) >= 3 and max(found) < 255
        return (
            f"{path}: mask values {found[:10]} are not class ids 0..{num_classes - 1} "
            f"(mask values {list(self.values) if self.values else 'identity'}, ignored "
            f"{list(self.ignore_values)}; instance labels need --instances"
            + ("; masks with soft edges need --soft-masks)" if between else ")")
        )

    def to_dict(self) -> dict:
        return {
            "values": list(self.values) if self.values is not None else None,
            "ignore_values": list(self.ignore_values),
            "instances": self.instances,
            "soft": self.soft,
        }

    @classmethod
    def from_dict(cls, d: dict) -> MaskEncoding:
        values = d.get("values")
        return cls(
            tuple(values) if values is not None else None,
            tuple(d.get("ignore_values", ())),
            d.get("instances"),
            d.get("soft", False),
        )


def unpacked(values: np.ndarray) -> np.ndarray:
    """Packed colours ``0xRRGGBB`` -> their (..., 3) RGB components."""
    return np.stack([values >> 16 & 255, values >> 8 & 255, values & 255], -1)


LOSSY_SUFFIXES = (".jpg", ".jpeg")


def is_lossy(path: Path | str) -> bool:
    """Whether a mask file is stored lossily (JPEG), so that its values are only approximate."""
    return Path(path).suffix.lower() in LOSSY_SUFFIXES


def instances_to_classes(labels: np.ndarray, target: str) -> np.ndarray:
    """Instance labels -> class ids: ``foreground`` (labels > 0) or ``boundary`` (0 background,
    1 interior, 2 pixels of an object touching another label or the background)."""
    if target not in INSTANCE_TARGETS:
        raise ValueError(
            f"unknown instance target {target!r}; choose one of {', '.join(INSTANCE_TARGETS)}"
        )
    classes = (labels > 0).astype(np.int64)
    if target == "boundary":
        from skimage.segmentation import find_boundaries

        classes[find_boundaries(labels, mode="inner") & (labels > 0)] = 2
    return classes
