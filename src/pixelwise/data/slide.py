"""Regions of an image too large to hold in memory: a TIFF over the pixel limit (a whole-slide
scan, a stitched mosaic) is decoded tile by tile (or strip by strip) as regions of it are asked
for, so memory follows the region, not the image. Each region comes back as :func:`read_image`
would give that part of the image, (h, w, C) with C in {1, 3}."""

from __future__ import annotations

import copy
import os
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np

from pixelwise.constants import first_time
from pixelwise.data.calibration import recorded
from pixelwise.data.io import (
    ImageReadError,
    _channel_layout,
    _channels_text,
    _check_file,
    _first_is_base,
    _normalise_channels,
    _open_tiff,
    _pick_channel,
    _pixel_type,
    _separate_samples,
    _uniform,
    as_shown,
    check_shown,
    drawn_as_stored,
    is_tiff,
    max_pixels_limit,
    read_image,
    tiff_profile,
)
from pixelwise.data.joins import Joins
from pixelwise.data.transforms import in_dtype, resize_weights, scaled_size
from pixelwise.data.write import mask_bands

SAMPLE_WIDTH = 4096  # columns :meth:`TiffRegions.sample` reads at a time
CACHE_BYTES = 64 * 2**20  # decoded tiles kept for the regions that share them (their overlaps)


def base_page(tif):
    """The full-resolution page of a TIFF that holds one image (a single page, or a slide or
    pyramid whose first page is the largest), else None (a stack, channels as pages, a file
    whose first page is not the largest: :func:`read_image` says why it refuses them)."""
    pages = tif.pages
    if len(pages) == 0 or _channel_layout(tif) is not None:
        return None
    if len(pages) > 1 and (_uniform(pages) or not _first_is_base(tif)):
        return None
    return pages[0]


def pyramid_levels(tif, base) -> list:
    """The smaller copies of ``base`` (a TIFF's full-resolution page, :func:`base_page`) that
    the file stores as its pyramid (a slide scanner's levels, an OME-TIFF's SubIFDs, pages
    marked as reduced images), largest first: the pages whose pixels are the full image's
    shrunk by one factor both ways (within a pixel of rounding), of the same samples and type."""
    series = tif.series[0]
    h, w = base.imagelength, base.imagewidth
    if series.levels[0].shape[:2] != (h, w):
        return []
    found = []
    for level in series.levels[1:]:
        page = level.keyframe
        if len(level.pages) != 1 or (page.samplesperpixel, page.dtype, page.planarconfig) != (
            base.samplesperpixel,
            base.dtype,
            base.planarconfig,
        ):
            continue
        down = w / page.imagewidth
        if down > 1 and abs(h / down - page.imagelength) <= 1:
            found.append(page)
    return sorted(found, key=lambda page: -page.imagewidth)


def is_streamed(path: str | os.PathLike, max_pixels: int | None = None) -> bool:
    """Whether ``path`` is read region by region (:class:`TiffRegions`): a TIFF holding one
    image with more pixels than the limit (``max_pixels``, else ``PIXELWISE_MAX_PIXELS``, else
    the default), which :func:`read_image` refuses as a whole."""
    if not isinstance(path, (str, os.PathLike)):  # a page of a stack
        return False
    path = Path(path)
    if not (path.is_file() and is_tiff(path)):
        return False
    try:
        with _open_tiff(path) as tif:
            page = base_page(tif)
            return page is not None and page.imagewidth * page.imagelength > max_pixels_limit(
                max_pixels
            )
    except ImageReadError:
        return False  # read_image reports it


class TiffRegions:
    """The full-resolution image of a TIFF, read region by region: ``shape`` (H, W), and
    ``read(rows, cols)``, the pixels at the integer index arrays ``rows`` x ``cols`` (any order,
    repeats allowed: a mirrored border), (len(rows), len(cols), C). Only the tiles or strips
    that a region touches are decoded, and the last ``CACHE_BYTES`` of them are kept.
    ``pixel_size``: µm a pixel as the file records it, or None (:mod:`~pixelwise.data.calibration`).
    ``channel`` reads that channel alone, as :func:`read_image` does. Pixels are read as shown
    (:func:`~pixelwise.data.io.as_shown`: a palette's colours, CMYK inks as printed), or with
    ``shown=False`` as stored (a mask's class ids). Use as a context manager (or call
    :meth:`close`)."""

    def __init__(
        self, path: str | os.PathLike, channel: int | None = None, shown: bool = True
    ) -> None:
        self.path, self.channel, self._mapped, self.shown = Path(path), channel, None, shown
        _check_file(self.path)
        self._context = _open_tiff(self.path)
        tif = self._context.__enter__()
        page = base_page(tif)
        if page is None:
            self.close()
            raise ImageReadError(self.path, "is not one image (a stack or channels as pages)")
        if channel is None and _separate_samples(page):
            self.close()
            raise ImageReadError(
                self.path, _channels_text(page.samplesperpixel, "grey samples per pixel")
            )
        if shown:
            try:
                check_shown(self.path, page)
            except ImageReadError:
                self.close()
                raise
        self._tif = tif
        self._use(page)
        self.pixel_size = recorded(tif)  # µm, or None: what the slide's outputs record too
        # stored uncompressed in one piece (ImageJ writes large images so, often as one strip):
        # mapped, so that a region reads only its own rows rather than decoding the strip
        if page.is_memmappable and self._planes == 1:
            import tifffile

            mapped = tifffile.memmap(self.path, page=0, mode="r")
            self._mapped = mapped.reshape(*self.shape, page.samplesperpixel)

    def _use(self, page) -> None:
        """Read regions of ``page``: the full-resolution image, or a smaller level of it."""
        self._page, self._mapped = page, None
        self._profile = tiff_profile(page)  # regions are read as shown (io.as_shown)
        self.shape = (page.imagelength, page.imagewidth)
        if page.is_tiled:
            self._chunk = (page.tilelength, page.tilewidth)
        else:
            self._chunk = (min(page.rowsperstrip, page.imagelength), page.imagewidth)
        self._across = -(-page.imagewidth // self._chunk[1])
        # samples stored as separate planes (RRR...GGG...): a plane of segments per sample
        self._planes = page.samplesperpixel if page.planarconfig == 2 else 1
        self._per_plane = len(page.dataoffsets) // self._planes
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cached = 0

    def levels(self) -> list:
        """:func:`pyramid_levels` of the page read."""
        return pyramid_levels(self._tif, self._page)

    def level(self, shape: tuple[int, int]) -> TiffRegions:
        """Regions of the smallest level of the pyramid (:meth:`levels`) that holds at least
        ``shape`` (H, W) pixels (less one each way: rounding), else of the full image (this
        object): what an image shrunk to ``shape`` is best made from, reading fewer pixels. It
        shares the open file: use it while this object is open."""
        fits = [
            p
            for p in self.levels()
            if p.imagelength >= shape[0] - 1 and p.imagewidth >= shape[1] - 1
        ]
        if not fits:
            return self
        level = copy.copy(self)
        level._context = None  # the file is this object's to close
        level._use(fits[-1])
        if self.pixel_size is not None:
            level.pixel_size = self.pixel_size * self.shape[1] / level.shape[1]
        return level

    def __enter__(self) -> TiffRegions:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._mapped = None
        if self._context is not None:
            self._context.__exit__(None, None, None)
            self._context = None

    def _segment(self, index: int) -> np.ndarray:
        """Tile or strip ``index`` decoded, (chunk height, chunk width, samples)."""
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        page = self._page
        count = page.databytecounts[index]
        shape = (*self._chunk, page.samplesperpixel // self._planes)
        if count == 0:  # a tile never written (sparse slides): the background
            segment = np.zeros(shape, page.dtype)
        else:
            decode = page.decode  # made on first use, which moves the file's position
            handle = self._tif.filehandle
            handle.seek(page.dataoffsets[index])
            try:
                decoded = decode(handle.read(count), index, jpegtables=page.jpegtables)[0]
            except Exception as exc:  # a damaged tile: the codec's own error type
                what = "tile" if page.is_tiled else "strip"
                raise ImageReadError(
                    self.path, f"cannot decode TIFF {what} {index} ({type(exc).__name__}: {exc})"
                ) from None
            segment = decoded.reshape(decoded.shape[-3:])
        self._cache[index] = segment
        self._cached += segment.nbytes
        while self._cached > CACHE_BYTES and len(self._cache) > 1:
            self._cached -= self._cache.popitem(last=False)[1].nbytes
        return segment

    def _block(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Rows y0..y1 and columns x0..x1 (ends excluded) as stored, (h, w, samples)."""
        if self._mapped is not None:
            return np.array(self._mapped[y0:y1, x0:x1])
        th, tw = self._chunk
        out = np.empty((y1 - y0, x1 - x0, self._page.samplesperpixel), self._page.dtype)
        for ty in range(y0 // th, (y1 - 1) // th + 1):
            for tx in range(x0 // tw, (x1 - 1) // tw + 1):
                index = ty * self._across + tx
                if self._planes == 1:
                    segment = self._segment(index)
                else:  # one segment per sample plane
                    planes = range(self._planes)
                    segment = np.concatenate(
                        [self._segment(index + s * self._per_plane) for s in planes], -1
                    )
                top, left = ty * th, tx * tw
                a, b = max(y0, top), min(y1, top + th)
                c, d = max(x0, left), min(x1, left + tw)
                out[a - y0 : b - y0, c - x0 : d - x0] = segment[
                    a - top : b - top, c - left : d - left
                ]
        return out

    def stored(self, y0: int, y1: int, x0: int, x1: int, sample: int = 0) -> np.ndarray:
        """Rows y0..y1 and columns x0..x1 (ends excluded) of a sample (the first) as stored,
        (h, w): a palette mask's class ids rather than their colours."""
        return self._block(y0, y1, x0, x1)[..., sample]

    def sample_rows(self, sample: int, band: int = 512):
        """``(y, rows)``: one sample as stored, ``band`` rows at a time, top to bottom."""
        h, w = self.shape
        for y in range(0, h, band):
            yield y, self.stored(y, min(h, y + band), 0, w, sample)

    def read(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        rows, cols = np.asarray(rows), np.asarray(cols)
        y0, x0 = int(rows.min()), int(cols.min())
        block = self._block(y0, int(rows.max()) + 1, x0, int(cols.max()) + 1)
        region = block[(rows - y0)[:, None], cols - x0]
        if self.shown:
            region = as_shown(self._page, region, self._profile, inks=self.channel is None)
        region = _pick_channel(self.path, region, self.channel)
        if self.shown:  # as read_image reads the whole (labels kept as stored: uint32)
            region = _pixel_type(self.path, region)
        return _normalise_channels(self.path, region)

    def sample(self, step: int) -> np.ndarray:
        """Every ``step``-th pixel of every ``step``-th row (:func:`sample_step`): what a
        whole-image statistic (percentiles, the tissue) or a preview is taken from. From a
        pyramid, the nearest pixels of the smallest level that holds that grid
        (:meth:`level`; a level's pixel is the mean of the block under it): far fewer tiles
        decoded."""
        (h, w) = self.shape
        rows, cols = np.arange(0, h, step), np.arange(0, w, step)
        level = self.level((len(rows), len(cols)))
        if level is not self:
            (small_h, small_w) = level.shape
            rows = np.minimum(((rows + 0.5) * small_h / h).astype(np.intp), small_h - 1)
            cols = np.minimum(((cols + 0.5) * small_w / w).astype(np.intp), small_w - 1)
        return level.gathered(rows, cols)

    def gathered(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``read(rows, cols)`` for a grid over the whole image (ascending indices): a row of
        tiles and a few tiles across at a time, each tile decoded once."""
        (h, w), (th, tw) = self.shape, self._chunk
        across = tw * max(1, SAMPLE_WIDTH // tw)  # columns read at a time
        groups = [cols[(cols >= x) & (cols < x + across)] for x in range(0, w, across)]
        groups = [c for c in groups if len(c)]
        bands = []
        for top in range(0, h, th):
            r = rows[(rows >= top) & (rows < top + th)]
            if len(r):
                bands.append(np.concatenate([self.read(r, c) for c in groups], 1))
        return np.concatenate(bands)


class Resized:
    """A region source (``shape``, ``read(rows, cols)``, ``sample(step)``) that is ``source``
    resized by ``factor`` (its shape :func:`~pixelwise.data.transforms.scaled_size`'s): each
    region is interpolated from the source's pixels under it, as
    :func:`~pixelwise.data.transforms.resize_image` would resize the whole image (the same
    weights), so a slide can be predicted at another magnification region by region."""

    def __init__(self, source, factor: float, shape: tuple[int, int] | None = None) -> None:
        self.source, self.factor = source, factor
        self.shape = shape or scaled_size(source.shape, factor)

    def read(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        rows, cols = np.asarray(rows), np.asarray(cols)
        (h, w), (big_h, big_w) = self.shape, self.source.shape
        down, by_row = resize_weights(rows, big_h, h)
        across, by_col = resize_weights(cols, big_w, w)
        top, left = int(down.min()), int(across.min())
        block = self.source.read(
            np.arange(top, int(down.max()) + 1), np.arange(left, int(across.max()) + 1)
        )
        region = np.zeros((len(rows), block.shape[1], block.shape[2]), np.float32)
        for k in range(down.shape[1]):  # each output row: its few rows of the block, weighted
            region += by_row[:, k, None, None] * block[down[:, k] - top]
        out = np.zeros((len(rows), len(cols), block.shape[2]), np.float32)
        for k in range(across.shape[1]):
            out += by_col[None, :, k, None] * region[:, across[:, k] - left]
        return in_dtype(out, block.dtype)

    def sample(self, step: int) -> np.ndarray:
        """About every ``step``-th pixel of the resized image: the source's every
        ``step / factor``-th (a statistic's sample, not its exact pixels)."""
        return self.source.sample(max(1, round(step / self.factor)))


def scaled(source, factor: float):
    """``source`` (a region source) resized by ``factor`` (to
    :func:`~pixelwise.data.transforms.scaled_size`'s shape). A slide that stores a pyramid is
    shrunk from the smallest of its levels that is at least that large
    (:meth:`TiffRegions.level`), read as it is when it is that size: a scanner's 10x level for
    a 40x slide at 0.25, rather than every full-resolution pixel resized."""
    shape = scaled_size(source.shape, factor)
    if isinstance(source, TiffRegions):
        source = source.level(shape)
    if source.shape == shape:
        return source
    return Resized(source, shape[1] / source.shape[1], shape)


def enlarged_rows(rows, small: tuple[int, int], shape: tuple[int, int]):
    """A mask of ``small`` (H, W) arriving as ``(y, rows)`` pieces (:func:`mask_bands`), as
    ``(y, rows)`` pieces of the mask resized to ``shape`` by nearest neighbour at pixel centres
    (:func:`~pixelwise.data.transforms.resize_mask`'s pixels), top to bottom."""
    (h, w), (small_h, small_w) = shape, small
    down = np.minimum(((np.arange(h) + 0.5) * small_h / h).astype(np.intp), small_h - 1)
    across = np.minimum(((np.arange(w) + 0.5) * small_w / w).astype(np.intp), small_w - 1)
    for y, band in mask_bands(rows, small):
        start, stop = np.searchsorted(down, [y, y + len(band)])
        if stop > start:
            yield int(start), band[(down[start:stop] - y)[:, None], across]


def item_image(item, channel: int | None = None, as_stored: bool = False) -> np.ndarray:
    """A dataset item's image as :func:`read_image` reads it (``as_stored``: not turned upright
    by its EXIF orientation), or for an item that is a window of a slide (``item.window`` = (y0,
    y1, x0, x1): regions annotated on a TIFF over the pixel limit), that window of its
    full-resolution page."""
    window = getattr(item, "window", None)
    if window is None:
        page = getattr(item, "image_page", None)
        return read_image(item.image, page, channel=channel, as_stored=as_stored)
    y0, y1, x0, x1 = window
    with TiffRegions(item.image, channel) as regions:
        return regions.read(np.arange(y0, y1), np.arange(x0, x1))


def annotated_image(item, shape: tuple[int, int], channel: int | None = None, image=None):
    """A dataset item's image as its annotation (``shape``: height, width) was drawn on it:
    ``image`` (read upright, :func:`item_image`, when not given) if it has that shape, else
    the file's pixels as stored when those have it (a labelling tool that ignored a phone
    photo's EXIF orientation drew there; said once per folder); None when neither has."""
    image = item_image(item, channel) if image is None else image
    if image.shape[:2] == tuple(shape):
        return image
    if getattr(item, "window", None) is not None:
        return None
    if not read_as_stored(item.image, shape, image.shape[:2]):
        return None
    return item_image(item, channel, as_stored=True)


def read_as_stored(image: Path, shape: tuple[int, int], upright: tuple[int, int]) -> bool:
    """Whether an annotation of ``shape`` was drawn on the pixels of ``image`` as stored
    (:func:`~pixelwise.data.io.drawn_as_stored`; ``upright``: the image's shape upright), so
    that the image is read so; said once per folder (see :func:`annotated_image`)."""
    if not drawn_as_stored(image, shape, upright):
        return False
    if first_time(("drawn as stored", Path(image).parent)):
        print(
            f"pixelwise: {Path(image).parent}: {Path(image).name} carries an EXIF orientation (a "
            "quarter turn) that its annotation ignores: the annotation fits the pixels as stored, "
            "so the image is read as stored, not turned upright (and so are others like it)",
            file=sys.stderr,
        )
    return True


def slide_size(path: Path) -> tuple[int, int]:
    """(height, width) of a TIFF's full-resolution page, read from its header."""
    with TiffRegions(path) as regions:
        return regions.shape


def windows(boxes: list[tuple[int, int, int, int]]) -> tuple[list[tuple], list[int]]:
    """Boxes (y0, y1, x0, x1) merged until none overlaps another: each window the smallest box
    around a group of the given ones that overlap one another (directly, through others, or
    through a window made of others), in the order of their first box; and each box's window.
    Overlaps are found by a sweep over x, so sparse boxes cost about n log n."""
    current = [tuple(int(v) for v in b) for b in boxes]
    owner = list(range(len(current)))
    while True:
        groups = _overlapping(current)
        if len(groups) == len(current):
            return current, owner
        index = {member: k for k, group in enumerate(groups) for member in group}
        owner = [index[o] for o in owner]
        current = [
            (
                min(current[m][0] for m in group),
                max(current[m][1] for m in group),
                min(current[m][2] for m in group),
                max(current[m][3] for m in group),
            )
            for group in groups
        ]


def _overlapping(boxes: list[tuple]) -> list[list[int]]:
    """The groups of boxes that overlap one another (union-find), each sorted, in the order of
    their first box."""
    joins = Joins(len(boxes))
    active: list[int] = []  # boxes the sweep line at the current x0 may still cut
    for i in sorted(range(len(boxes)), key=lambda k: boxes[k][2]):
        y0, y1, x0, _ = boxes[i]
        active = [j for j in active if boxes[j][3] > x0]
        for j in active:
            if y0 < boxes[j][1] and boxes[j][0] < y1:
                joins.join(i, j)
        active.append(i)
    return joins.groups()


def sample_step(shape: tuple[int, int], most: int) -> int:
    """The smallest step that keeps at most ``most`` pixels of an (H, W) image, every step-th
    pixel of every step-th row."""
    h, w = shape
    step = max(1, int(np.sqrt(h * w / most)))
    while -(-h // step) * -(-w // step) > most:
        step += 1
    return step


def mirrored(start: int, stop: int, size: int, mode: str) -> np.ndarray:
    """Indices ``start..stop`` (end excluded) of a line of ``size`` pixels extended beyond its
    ends as ``np.pad`` extends it (``mode`` "reflect": the edge pixel once; "symmetric": twice)."""
    i = np.arange(start, stop)
    if size == 1:
        return np.zeros_like(i)
    if mode == "reflect":
        period = 2 * (size - 1)
        i = np.mod(i, period)
        return np.where(i < size, i, period - i)
    period = 2 * size
    i = np.mod(i, period)
    return np.where(i < size, i, period - 1 - i)
