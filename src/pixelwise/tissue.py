"""Tissue on a brightfield slide (``predict``/``segment --tissue-only``): where a whole-slide scan
holds tissue, found on a coarse grid of its pixels, so that the tiles over bare glass go through
the network once instead of one by one.

Glass is what is both bright (at least :data:`GLASS_BRIGHTNESS` of the slide's white, its 99th
percentile of brightness) and grey (saturation, (max - min) / max of the colours, under
:data:`GLASS_SATURATION`); everything else is tissue (pen marks too), but for pieces smaller
than :data:`TISSUE_MIN_PIXELS` of the slide (dust, which would keep a whole tile of glass
from being skipped), grown by :data:`TISSUE_MARGIN` grid cells so that no object at the
tissue's edge is cut. :class:`TissueOnly` reads a slide with the glass's pixels set to one
colour, the glass's median: a tile of glass alone is then a window of one value, which
:func:`~pixelwise.inference.tile_predictions` predicts once for the whole slide; a tile that
holds tissue sees the glass around it flattened, and the tissue as it is.
"""

from __future__ import annotations

import numpy as np

from pixelwise.data.slide import sample_step

GLASS_BRIGHTNESS = 0.85  # of the slide's white (99th percentile of the mean of the colours)
GLASS_SATURATION = 0.08  # (max - min) / max of the colours
TISSUE_MARGIN = 2  # grid cells the tissue is grown by
TISSUE_PIXELS = 2048 * 2048  # the grid: at most this many of the slide's pixels
TISSUE_MIN_PIXELS = 128 * 128  # smaller pieces of "tissue" are dust on the glass


def tissue_mask(sample: np.ndarray, step: int = 1) -> np.ndarray:
    """(h, w) bool: tissue at each pixel of ``sample``, an (h, w, 3) RGB image (every
    ``step``-th pixel of a slide: a piece of :data:`TISSUE_MIN_PIXELS` slide pixels is that
    divided by step squared here), grown by :data:`TISSUE_MARGIN`; ValueError for other
    images."""
    from scipy import ndimage

    if sample.ndim != 3 or sample.shape[-1] != 3:
        channels = 1 if sample.ndim == 2 else sample.shape[-1]
        raise ValueError(
            f"--tissue-only finds tissue on brightfield RGB slides; this one has {channels} "
            "channel(s)"
        )
    rgb = sample.astype(np.float32)
    brightness = rgb.mean(-1)
    top, bottom = rgb.max(-1), rgb.min(-1)
    saturation = (top - bottom) / np.maximum(top, np.finfo(np.float32).tiny)
    white = np.percentile(brightness, 99)
    glass = (brightness >= GLASS_BRIGHTNESS * white) & (saturation < GLASS_SATURATION)
    pieces, count = ndimage.label(~glass, np.ones((3, 3), bool))
    sizes = np.bincount(pieces.ravel(), minlength=count + 1) * step**2
    sizes[0] = 0
    grow = np.ones((2 * TISSUE_MARGIN + 1,) * 2, bool)
    return ndimage.binary_dilation((sizes >= TISSUE_MIN_PIXELS)[pieces], grow)


class TissueOnly:
    """A region source (``shape``, ``read(rows, cols)``, ``sample(step)``) that reads
    ``source`` with the pixels outside ``mask`` (tissue on the grid of every ``step``-th pixel,
    :func:`tissue_mask`) set to ``fill``; its ``sample`` is the source's, unchanged."""

    def __init__(self, source, mask: np.ndarray, step: int, fill: np.ndarray) -> None:
        self.source, self.mask, self.step, self.fill = source, mask, step, fill
        self.shape = source.shape
        self.pixel_size = getattr(source, "pixel_size", None)  # the slide's, for its outputs

    @classmethod
    def of(cls, source) -> TissueOnly:
        """``source`` read with its glass flattened, the tissue found on a grid of at most
        :data:`TISSUE_PIXELS` of its pixels; ValueError when it is not RGB."""
        step = sample_step(source.shape, TISSUE_PIXELS)
        sample = source.sample(step)
        mask = tissue_mask(sample, step)
        glass = sample[~mask] if (~mask).any() else sample.reshape(-1, sample.shape[-1])
        fill = np.median(glass, axis=0).astype(sample.dtype)
        return cls(source, mask, step, fill)

    @property
    def share(self) -> float:
        """The share of the slide found to be tissue (of the grid's cells)."""
        return float(self.mask.mean())

    def read(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        h, w = self.mask.shape
        keep = self.mask[
            np.minimum(rows // self.step, h - 1)[:, None], np.minimum(cols // self.step, w - 1)
        ]
        if not keep.any():
            return np.broadcast_to(self.fill, (len(rows), len(cols), len(self.fill))).copy()
        region = self.source.read(rows, cols)
        if keep.all():
            return region
        region = region.copy()
        region[~keep] = self.fill
        return region

    def sample(self, step: int) -> np.ndarray:
        return self.source.sample(step)
