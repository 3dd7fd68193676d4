"""Prediction: class probabilities of a batch (with test-time flips/rotations or at reduced scale),
overlap-tile prediction of huge images, and the verbs ``predict`` (class ids) and ``segment``
(instance labels), which dispatch on the model's kind."""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import tempfile
from collections import OrderedDict
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pixelwise.checkpoint import load_model, resolve_checkpoint
from pixelwise.constants import AUTO_OVERLAP, AUTO_TILE, AUTO_TILE_PIXELS
from pixelwise.data.datasets import match_channels, to_tensor
from pixelwise.data.io import as_image
from pixelwise.data.slide import TiffRegions, enlarged_rows, mirrored, sample_step, scaled
from pixelwise.data.transforms import resize_image, resize_mask, scaled_size
from pixelwise.data.write import save_code_rows, save_mask_rows, save_probability_pages
from pixelwise.detection import detect, detections_to_classes, detections_to_labels
from pixelwise.instances import argmax_codes, check_object_class, decision_for, instances_for
from pixelwise.precision import autocast, memory_format, prepare
from pixelwise.runtime import resolve_precision
from pixelwise.segmenter import Segmenter
from pixelwise.tissue import TissueOnly


@torch.inference_mode()
def predict_logits(network: nn.Module, x: torch.Tensor, precision: str = "auto") -> torch.Tensor:
    """(N, C, H, W) normalised input -> float32 logits (N, K, H, W), network in eval mode.

    Networks whose ``forward`` returns a smaller output (the original U-Net) provide
    ``forward_full``, which is used instead.
    """
    precision = resolve_precision(precision, x.device)
    fmt = memory_format(precision)
    network = prepare(network, fmt)
    forward = getattr(network, "forward_full", network)
    with autocast(precision, x.device):
        return forward(x.contiguous(memory_format=fmt)).float()


def network_device(network: nn.Module) -> torch.device:
    """Where a network's weights are (the CPU for one without any, as ONNX Runtime's)."""
    return next((p.device for p in network.parameters()), torch.device("cpu"))


@torch.inference_mode()
def predict_probs(
    network: nn.Module,
    x: torch.Tensor,
    precision: str = "auto",
    tta: bool = False,
    scale: float = 1.0,
) -> torch.Tensor:
    """Class probabilities (N, K, H, W) at the input's resolution.

    ``tta``: the mean over the 8 flips/rotations of the input (each mapped back first).
    ``scale``: run the network on the input resized by this factor (models trained at reduced
    resolution), then resize the probabilities back bilinearly. The input moves to the
    network's device; the probabilities stay there.
    """
    x = x.to(network_device(network))
    size = x.shape[-2:]
    if scale != 1.0:  # at least a pixel on each side (a photo 1 pixel high, at scale 0.625)
        fit = (
            {"scale_factor": scale}
            if min(size) * scale >= 1
            else {"size": at_least_one(size, scale)}
        )
        x = F.interpolate(x, **fit, mode="bilinear", antialias=True, align_corners=False)
    if not tta:
        probs = predict_logits(network, x, precision).softmax(1)
    else:
        probs = torch.zeros(())
        for k in range(4):
            for flip in (False, True):
                t = torch.rot90(x, k, (2, 3))
                p = predict_logits(network, t.flip(3) if flip else t, precision).softmax(1)
                probs = probs + torch.rot90(p.flip(3) if flip else p, -k, (2, 3)) / 8
    if probs.shape[-2:] != size:
        probs = F.interpolate(probs, size=size, mode="bilinear", align_corners=False)
    return probs


def at_least_one(size, scale: float) -> list[int]:
    """``size`` scaled as interpolate's ``scale_factor`` would (rounded down), but never to 0."""
    return [max(1, int(d * scale)) for d in size]


def tile_starts(size: int, core: int) -> list[int]:
    """Start offsets of cores of length ``core`` covering ``size``; the last is shifted back to end at ``size``."""
    if size <= core:
        return [0]
    starts = list(range(0, size - core, core))
    return starts + [size - core]


class ArrayRegions:
    """An image in memory as :func:`tiled_rows` reads its regions (as :class:`TiffRegions` reads
    a file too large to hold)."""

    def __init__(self, image: np.ndarray) -> None:
        self.image, self.shape = image, image.shape[:2]

    def read(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return self.image[rows[:, None], cols]

    def sample(self, step: int) -> np.ndarray:
        return self.image[::step, ::step]


def tiled_rows(
    network: nn.Module,
    source,
    norm,
    bounds,
    tile: int = AUTO_TILE,
    overlap: int = AUTO_OVERLAP,
    precision: str = "auto",
    tta: bool = False,
    batch_size: int = 4,
    decide=argmax_codes,
):
    """Overlap-tile prediction one row of tiles at a time: yields ``(y, rows)``, the mask of
    image rows ``y`` to ``y + len(rows)`` (full width), top to bottom; the last row of tiles is
    shifted back to end at the image's bottom, so it may repeat rows of the one before (it
    wins, as it does in :func:`predict_tiled`). ``source``: ``shape`` (H, W) and ``read(rows,
    cols)`` (:class:`ArrayRegions`, :class:`~pixelwise.data.slide.TiffRegions`), so only a row
    of tiles is in memory at a time; ``bounds``: the whole image's (:meth:`Normalization.bounds`)."""
    core = tile - 2 * overlap
    if core < 1:
        raise ValueError(f"tile {tile} must be larger than twice the overlap {overlap}")
    h, w = source.shape
    core_h, core_w = min(core, h), min(core, w)
    mode = "reflect" if overlap < min(h, w) else "symmetric"
    starts = tile_starts(w, core_w)
    tile_w = core_w + 2 * overlap
    blanks: dict[bytes, np.ndarray] = {}  # the prediction of a window of one value, by value
    for y in tile_starts(h, core_h):
        rows = mirrored(y - overlap, y + core_h + overlap, h, mode)
        band = None  # (core_h, w) plus whatever per-pixel shape and dtype ``decide`` gives
        for i in range(0, len(starts), batch_size):
            batch = starts[i : i + batch_size]
            window = source.read(
                rows, mirrored(batch[0] - overlap, batch[-1] + core_w + overlap, w, mode)
            )
            windows = [window[:, x0 - batch[0] : x0 - batch[0] + tile_w] for x0 in batch]
            pred = tile_predictions(network, windows, norm, bounds, precision, tta, decide, blanks)
            if band is None:
                band = np.zeros((core_h, w, *pred.shape[3:]), dtype=pred.dtype)
            for x0, p in zip(batch, pred):
                band[:, x0 : x0 + core_w] = p[
                    overlap : overlap + core_h, overlap : overlap + core_w
                ]
        yield y, band


def tile_predictions(network, windows, norm, bounds, precision, tta, decide, blanks: dict):
    """``decide`` of each tile window's probabilities, (N, h, w, ...). A window holding one value
    everywhere (the glass a slide scanner leaves unscanned, filled white; a tile never written)
    goes through the network once per value and is remembered in ``blanks``: every such window
    of an image gets the same prediction, so the rest are skipped."""
    keys = [blank_key(window) for window in windows]
    todo = [i for i, key in enumerate(keys) if key is None or key not in blanks]
    done: dict[int, np.ndarray] = {}
    if todo:
        x = torch.stack([to_tensor(windows[i], norm, bounds) for i in todo])
        pred = decide(predict_probs(network, x, precision, tta)).cpu().numpy()
        for i, p in zip(todo, pred):
            done[i] = p
            if keys[i] is not None:
                blanks[keys[i]] = p
    return np.stack([done[i] if i in done else blanks[key] for i, key in enumerate(keys)])


def blank_key(window: np.ndarray) -> bytes | None:
    """The value of a window that holds one value everywhere (its bytes), else None."""
    first = window[0, 0]
    return first.tobytes() if (window == first).all() else None


def predict_tiled(
    network: nn.Module,
    image: np.ndarray,
    norm,
    tile: int = AUTO_TILE,
    overlap: int = AUTO_OVERLAP,
    precision: str = "auto",
    tta: bool = False,
    batch_size: int = 4,
    decide=argmax_codes,
) -> np.ndarray:
    """Overlap-tile prediction of an (H, W, C) image: class-id mask (H, W) uint8 (``decide``: the
    rule from (N, K, H, W) probabilities to (N, H, W, ...) masks; by default the argmax). A
    ``norm`` by percentiles takes them from the whole image, as the model saw its images.

    The image is mirror-extended by ``overlap`` on every side; tiles of ``tile`` x ``tile``
    pixels are predicted in batches and only each tile's central ``tile - 2 * overlap`` core
    is kept, so every output pixel comes from one tile that saw ``overlap`` pixels of context
    around it (no seams when the model's receptive field fits in the overlap). Memory is
    bounded by the tile batch and the uint8 output (:func:`tiled_rows` bounds it by a row of
    tiles, for an image read region by region).
    """
    bounds = None if norm is None else norm.bounds(image)
    rows = tiled_rows(
        network,
        ArrayRegions(image),
        norm,
        bounds,
        tile,
        overlap,
        precision,
        tta,
        batch_size,
        decide,
    )
    mask = None
    for y, band in rows:
        if mask is None:
            mask = np.zeros((image.shape[0], *band.shape[1:]), dtype=band.dtype)
        mask[y : y + len(band)] = band
    return mask


SAMPLE_PIXELS = 4096 * 4096  # a streamed image's percentiles come from this many of its pixels


class Mapped:
    """A region source (:func:`tiled_rows`) whose regions pass through ``fn`` as they are read
    (its ``pixel_size``, if any, the source's)."""

    def __init__(self, source, fn) -> None:
        self.source, self.fn, self.shape = source, fn, source.shape
        self.pixel_size = getattr(source, "pixel_size", None)

    def read(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return self.fn(self.source.read(rows, cols))

    def sample(self, step: int) -> np.ndarray:
        return self.fn(self.source.sample(step))


def predict_rows(
    seg: Segmenter,
    source,
    precision: str = "auto",
    tta: bool = False,
    tile: int | None = None,
    overlap: int = AUTO_OVERLAP,
    decide=argmax_codes,
):
    """:func:`tiled_rows` of a semantic model for an image read region by region (``source``:
    a :class:`~pixelwise.data.slide.TiffRegions`, a file too large to hold): the mask comes row
    of tiles by row, as :func:`predict` would tile it (``tile`` None: the automatic size). A
    model normalised by percentiles takes them from every pixel of a grid of at most
    ``SAMPLE_PIXELS`` over the image (:meth:`TiffRegions.sample`)."""
    if seg.kind == "instance":
        raise ValueError(
            "an image this large is predicted region by region, by a semantic model; an "
            "instance model (Mask R-CNN) needs it whole"
        )
    if tile == 0:
        raise ValueError("an image this large is predicted tile by tile: --tile 0 cannot apply")
    shape = source.shape
    if seg.input_scale != 1.0:  # the network sees the image resized, region by region
        source = scaled(source, seg.input_scale)
    source = Mapped(source, lambda image: match_channels(image, seg.in_channels))
    bounds = None
    if seg.norm.percentiles is not None:
        bounds = seg.norm.bounds(source.sample(sample_step(source.shape, SAMPLE_PIXELS)))
    tile = tile or AUTO_TILE
    rows = tiled_rows(
        seg.network, source, seg.norm, bounds, tile, overlap, precision, tta, decide=decide
    )
    return rows if source.shape == shape else enlarged_rows(rows, source.shape, shape)


# --scale's largest factor: an image is enlarged this much before the network (memory grows with
# its square)
MAX_SCALE = 4.0


def check_factor(factor: float, what: str) -> float:
    """``factor`` when it is a scale the images may take (0.05 to :data:`MAX_SCALE`)."""
    if not 0.05 <= factor <= MAX_SCALE:
        raise ValueError(f"{what} must be 0.05 to {MAX_SCALE:g}, got {factor:g}")
    return factor


def rescaled(seg, scale: float):
    """``seg`` seeing an image resized by ``scale`` on top of its own input scale
    (``predict``/``segment --scale``: objects at another magnification than the model learned
    them; outputs stay at the image's resolution); ValueError for an instance model."""
    if scale == 1.0:
        return seg
    if seg.kind == "instance":
        raise ValueError(
            "--scale resizes the images of semantic models; Mask R-CNN resizes its own"
        )
    return dataclasses.replace(seg, input_scale=seg.input_scale * scale)


def check_scale(seg, scale: float | str) -> None:
    """``--scale`` refused up front where no image could take it: an instance model, or
    ``auto`` for a model that records no pixel size of its training images."""
    rescaled(seg, 1.0 if scale == "auto" else scale)
    if scale == "auto" and seg.pixel_size is None:
        raise ValueError(
            "--scale auto resizes each image by its pixel size over the model's, and this model "
            "records none (its training images recorded none): give --scale F"
        )


def scale_factor(scale: float | str, size: float | None, learned: float | None) -> float:
    """What an image is resized by before the network for ``--scale`` ``scale``: the factor
    given, or with ``auto`` the image's recorded pixel size ``size`` over the one the model
    ``learned`` at (1 where either is unknown; ValueError where out of range)."""
    if scale != "auto":
        return scale
    if size is None or learned is None:
        return 1.0
    return check_factor(size / learned, f"--scale auto ({size:g} µm over {learned:g})")


def predict_slide(
    seg: Segmenter | str | os.PathLike,
    image,
    out: str | os.PathLike,
    precision: str = "auto",
    tta: bool = False,
    tile: int | None = None,
    overlap: int = AUTO_OVERLAP,
    through=None,
    tissue_only: bool = False,
    probabilities: str | os.PathLike | None = None,
) -> None:
    """Predict a TIFF of any size (a whole-slide scan) into ``out``, a tiled TIFF of class ids
    (a palette image in the model's colours; an OME-TIFF pyramid: :func:`save_mask_rows`),
    region by region: memory holds a row of tiles, not the image, and the mask is written as it
    comes (atomically). ``image``: the TIFF's path
    (read as the model reads images: its ``--channel``), or a region source
    (:func:`predict_rows`). ``through``: the mask's ``(y, rows)`` pieces pass through it on their
    way to the file (a progress bar, a preview). Same mask as :func:`predict` with the same
    tiles. ``tissue_only`` (a path): the glass read flat (:class:`~pixelwise.tissue.TissueOnly`,
    ``predict --tissue-only``). ``probabilities``: also the class probabilities there, laid
    out as for an image (:func:`~pixelwise.data.write.save_probability_pages`)."""
    seg = as_segmenter(seg)
    if isinstance(image, (str, os.PathLike)):
        with TiffRegions(image, seg.reads) as regions:
            source = TissueOnly.of(regions) if tissue_only else regions
            run = (precision, tta, tile, overlap, through)
            return predict_slide(seg, source, out, *run, probabilities=probabilities)
    if probabilities is not None:
        run = (precision, tta, tile, overlap)
        return predict_with_probabilities(seg, image, Path(out), Path(probabilities), run, through)
    rows = predict_rows(seg, image, precision, tta, tile, overlap)
    rows = rows if through is None else through(rows)
    size = getattr(image, "pixel_size", None)
    save_mask_rows(out, rows, image.shape, seg.mask_palette(), pixel_size=size)


def ids_and_probabilities(probs: torch.Tensor) -> torch.Tensor:
    """(N, K, H, W) probabilities -> (N, H, W, 1 + K) uint8: the most probable class, then each
    class's ``round(255 p)`` (as :func:`~pixelwise.data.write.save_probabilities` stores them)."""
    ids = probs.argmax(1, keepdim=True).to(torch.uint8)
    scaled = torch.round(probs.float() * 255).to(torch.uint8)
    return torch.cat([ids, scaled], 1).permute(0, 2, 3, 1).contiguous()


def predict_with_probabilities(seg, source, out: Path, probabilities: Path, run, through) -> None:
    """:func:`predict_slide` of a region source into ``out`` and its class probabilities into
    ``probabilities``: the network's one pass goes to a working file beside ``out`` (the class
    ids and each class's probability, :func:`ids_and_probabilities`), read back sample by
    sample into the two outputs."""
    with working_file(out) as codes:
        rows = predict_rows(seg, source, *run, decide=ids_and_probabilities)
        rows = rows if through is None else through(rows)
        save_code_rows(codes, rows, (*source.shape, 1 + seg.num_classes))
        size = getattr(source, "pixel_size", None)
        with TiffRegions(codes, channel=0, shown=False) as stored:
            palette = seg.mask_palette()
            save_mask_rows(out, stored.sample_rows(0), source.shape, palette, pixel_size=size)
            pages = [partial(stored.sample_rows, 1 + k) for k in range(seg.num_classes)]
            save_probability_pages(probabilities, pages, source.shape, size)


@contextlib.contextmanager
def working_file(out: Path):
    """The path of an empty working file beside ``out`` (the model's codes of a slide, read
    back into ``out``), removed when the block ends however it ends; the leftovers of a killed
    run go when the next one starts. Its name is not one that writing ``out`` atomically
    sweeps away as a stale temporary file (:func:`~pixelwise.data.write.atomic_save`), since it
    is still being read while ``out`` is written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{glob.escape(out.name)}.*.codes"):
        stale.unlink(missing_ok=True)
    fd, path = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".codes")
    os.close(fd)
    try:
        yield path
    finally:
        Path(path).unlink(missing_ok=True)


SLIDE_BLOCK, SLIDE_MARGIN = 2048, 128  # segment_slide: objects made block by block


def segment_slide(
    seg: Segmenter | str | os.PathLike,
    image,
    out: str | os.PathLike,
    precision: str = "auto",
    tta: bool = False,
    tile: int | None = None,
    overlap: int = AUTO_OVERLAP,
    min_size: int = 0,
    object_class: int | None = None,
    through=None,
    on_block=None,
    tissue_only: bool = False,
) -> int:
    """:func:`segment` for a TIFF of any size (a whole-slide scan): instance labels into ``out``,
    a tiled uint32 TIFF (0 = background, 1..N). The model's codes (:func:`decision_for`) are
    predicted region by region into a temporary TIFF beside ``out`` (as :func:`predict_slide`;
    ``through`` sees them pass), then made into objects block by block (:func:`label_blocks`),
    so memory follows a block and a row of blocks, not the image. ``image``: the TIFF's path or
    a region source. ``on_block``: see :func:`label_blocks`; ``tissue_only``: as for
    :func:`predict_slide`. Returns the number of objects."""
    seg = as_segmenter(seg)
    if isinstance(image, (str, os.PathLike)):
        with TiffRegions(image, seg.reads) as regions:
            source = TissueOnly.of(regions) if tissue_only else regions
            run = (precision, tta, tile, overlap, min_size, object_class, through, on_block)
            return segment_slide(seg, source, out, *run)
    object_class = check_object_class(seg, object_class)
    with working_file(Path(out)) as codes:
        rows = predict_rows(seg, image, precision, tta, tile, overlap, decision_for(seg))
        rows = rows if through is None else through(rows)
        size = getattr(image, "pixel_size", None)  # passed on to the labels
        save_mask_rows(codes, rows, image.shape, pyramid=False, pixel_size=size)
        with TiffRegions(codes, shown=False) as stored:
            return label_blocks(seg, stored, Path(out), object_class, min_size, on_block=on_block)


def label_blocks(
    seg: Segmenter,
    codes,
    out: Path,
    object_class: int | None,
    min_size: int,
    block: int = SLIDE_BLOCK,
    margin: int = SLIDE_MARGIN,
    on_block=None,
) -> int:
    """Objects of the codes read from ``codes`` (a region source), block by block: each block of
    ``block`` pixels a side is made into objects with ``margin`` pixels around it
    (:func:`instances_for`), and keeps those whose bounding box starts in it, numbered in the
    order they are found; where two blocks' objects claim a pixel the first keeps it. An object
    reaching more than ``margin`` beyond its block is cut there (nuclei and cells are far
    smaller). Written to ``out`` row of blocks by row; returns the number of objects.
    ``on_block(labels, rows, cols, first)`` sees each block's own objects as it is done: labels
    1..m over the image rows ``rows`` x columns ``cols`` around the block, which number
    ``first`` to ``first + m - 1`` in the output (to measure them)."""
    h, w = codes.shape
    count = 0

    def rows_of_blocks():
        nonlocal count
        carry = np.zeros((0, w), np.uint32)  # rows below the last row of blocks its objects reach
        for y0 in range(0, h, block):
            y1 = min(y0 + block, h)
            band = np.zeros((min(y1 + margin, h) - y0, w), np.uint32)
            band[: len(carry)] = carry
            for x0 in range(0, w, block):
                x1 = min(x0 + block, w)
                top, left = max(y0 - margin, 0), max(x0 - margin, 0)
                rows, cols = (
                    np.arange(top, min(y1 + margin, h)),
                    np.arange(left, min(x1 + margin, w)),
                )
                labels = instances_for(seg, codes.read(rows, cols)[..., 0], object_class, min_size)
                first = count + 1
                table = owned(labels, (y0 - top, y1 - top), (x0 - left, x1 - left), first)
                count = int(table.max(initial=count))
                if on_block is not None and count >= first:  # its own objects, numbered 1..
                    local = np.where(table > 0, table - (first - 1), 0).astype(np.uint32)
                    on_block(local[labels], rows, cols, first)
                painted = table[labels[y0 - top :]]  # owned objects start at row y0 or below
                shown = band[: len(painted), left : left + painted.shape[1]]
                free = (painted > 0) & (shown == 0)
                shown[free] = painted[free]
            yield y0, band[: y1 - y0]
            carry = band[y1 - y0 :]

    size = getattr(codes, "pixel_size", None)
    save_mask_rows(out, rows_of_blocks(), (h, w), dtype=np.uint32, pixel_size=size)
    return count


def expand_slide(
    stored, out: Path, distance: int, block: int = SLIDE_BLOCK, margin: int = SLIDE_MARGIN,
    on_block=None,
) -> None:  # fmt: skip
    """The cells of the objects of a label TIFF read as a region source (``stored``:
    :func:`segment_slide`'s labels), each object grown by up to ``distance`` pixels
    (:func:`~pixelwise.instances.expand_cells`), written to ``out`` (a tiled uint32 TIFF, the
    objects' numbers) block by block: each block is worked out with ``margin + 2 * distance``
    pixels around it, which hold its objects (they reach at most ``margin`` beyond the block
    their bounding box starts in) with their cells and every object near enough to them.
    ``on_block(labels, rows, cols, first, cells=...)`` sees the objects whose bounding box
    starts in each block as :func:`label_blocks` shows them, with their cells, in runs of
    consecutive numbers (``first`` the run's first)."""
    from skimage.segmentation import expand_labels

    h, w = stored.shape
    reach = margin + 2 * distance

    def rows_of_blocks():
        for y0 in range(0, h, block):
            y1 = min(y0 + block, h)
            band = np.zeros((y1 - y0, w), np.uint32)
            for x0 in range(0, w, block):
                x1 = min(x0 + block, w)
                top, left = max(y0 - reach, 0), max(x0 - reach, 0)
                rows = np.arange(top, min(y1 + reach, h))
                cols = np.arange(left, min(x1 + reach, w))
                labels = stored.read(rows, cols)[..., 0]
                cells = expand_labels(labels, distance)
                band[:, x0:x1] = cells[y0 - top : y1 - top, x0 - left : x1 - left]
                if on_block is not None:
                    core = ((y0 - top, y1 - top), (x0 - left, x1 - left))
                    for first, mine, theirs in own_runs(labels, cells, *core):
                        on_block(mine, rows, cols, first, cells=theirs)
            yield y0, band

    size = getattr(stored, "pixel_size", None)
    save_mask_rows(out, rows_of_blocks(), (h, w), dtype=np.uint32, pixel_size=size)


def own_runs(labels: np.ndarray, cells: np.ndarray, rows: tuple, cols: tuple):
    """The objects of ``labels`` whose bounding box starts within ``rows`` x ``cols`` (start,
    end), in runs of consecutive numbers: each run's first number and its objects and their
    ``cells``, numbered 1.. in the run."""
    ids = np.union1d([0], labels)  # 0 first, the background, even where none shows
    local = np.searchsorted(ids, labels)
    table = owned(local, rows, cols, 1)
    mine = np.nonzero(table)[0]  # places in ids of the objects owned, in number order
    breaks = np.nonzero(np.diff(ids[mine].astype(np.int64)) != 1)[0] + 1
    around = np.searchsorted(ids, cells)  # a cell's number is its object's
    for run in np.split(mine, breaks) if len(mine) else []:
        keep = np.zeros(len(ids), np.uint32)
        keep[run] = np.arange(1, len(run) + 1)
        yield int(ids[run[0]]), keep[local], keep[around]


def owned(labels: np.ndarray, rows: tuple[int, int], cols: tuple[int, int], first: int):
    """A table from ``labels``' objects to ``first``, ``first + 1``, ... for those whose bounding
    box starts within ``rows`` x ``cols`` (start, end), in label order; 0 for the others."""
    from scipy import ndimage

    table = np.zeros(int(labels.max(initial=0)) + 1, np.uint32)
    for k, box in enumerate(ndimage.find_objects(labels), start=1):
        if (
            box is not None
            and rows[0] <= box[0].start < rows[1]
            and cols[0] <= box[1].start < cols[1]
        ):
            table[k] = first
            first += 1
    return table


def class_probabilities(probs: torch.Tensor) -> torch.Tensor:
    """(N, K, H, W) probabilities -> (N, H, W, K) float32: the probabilities themselves, as a
    ``decide`` rule of :func:`predict`."""
    return probs.float().permute(0, 2, 3, 1).contiguous()


LOADED_MOST = 4  # models kept by as_segmenter for the next call
_LOADED: OrderedDict = OrderedDict()  # (resolved path, modification time) -> Segmenter


def as_segmenter(seg: Segmenter | str | os.PathLike) -> Segmenter:
    """``seg`` itself when it is a loaded model; else the checkpoint path or bundled name
    (``"nuclei"``) loaded, the last :data:`LOADED_MOST` kept for the next call (a loop over
    images loads its model once; a changed file is loaded again)."""
    if isinstance(seg, Segmenter):
        return seg
    path = resolve_checkpoint(seg)
    try:
        key = (str(path.resolve()), path.stat().st_mtime_ns)
    except OSError:
        return load_model(seg)  # which names what is wrong with it
    if key not in _LOADED:
        _LOADED[key] = load_model(seg)
        while len(_LOADED) > LOADED_MOST:
            _LOADED.popitem(last=False)
    _LOADED.move_to_end(key)
    return _LOADED[key]


def predict_probabilities(
    seg: Segmenter | str | os.PathLike,
    image: np.ndarray | str | os.PathLike,
    precision: str = "auto",
    tta: bool = False,
    tile: int | None = None,
    overlap: int = AUTO_OVERLAP,
) -> np.ndarray:
    """(H, W, K) float32 class probabilities of a semantic model for an image array or file
    (tiled and scaled as :func:`predict`; their argmax over K is :func:`predict`'s mask)."""
    seg = as_segmenter(seg)
    if seg.kind == "instance":
        raise ValueError(
            "class probabilities come from semantic models; an instance model gives detections "
            "with scores (predict writes them as COCO results)"
        )
    return predict(seg, image, precision, tta, tile, overlap, decide=class_probabilities)


def trained_on_floats(seg: Segmenter) -> bool:
    """Whether the model takes float images of any range: its training images were all float
    images (normalisation scale 1), as it was trained on them, or it normalises each image by
    its own percentiles."""
    return seg.norm.scale == 1.0 or seg.norm.percentiles is not None


def predict(
    seg: Segmenter | str | os.PathLike,
    image: np.ndarray | str | os.PathLike,
    precision: str = "auto",
    tta: bool = False,
    tile: int | None = None,
    overlap: int = AUTO_OVERLAP,
    score_threshold: float = 0.5,
    decide=argmax_codes,
) -> np.ndarray:
    """Class-id mask (H, W) uint8 for an (H, W, C) image array or an image file path.

    ``seg``: a loaded model, checkpoint path or bundled name (:func:`as_segmenter`).

    Semantic models: ``tile`` predicts by overlap-tile with tiles of this size (see
    :func:`predict_tiled`); ``None`` tiles automatically above 2048 x 2048 pixels, 0 never tiles.
    ``decide`` turns class probabilities into the mask (default: the most probable class).
    Instance models (Mask R-CNN): each pixel takes the class of the best-scoring detection
    (score >= ``score_threshold``) covering it.
    """
    seg = as_segmenter(seg)
    image = as_image(image, any_floats=trained_on_floats(seg), channel=seg.reads)
    if seg.kind == "instance":
        return detections_to_classes(detect(seg, image, score_threshold), score_threshold)
    return predict_semantic(
        seg, match_channels(image, seg.in_channels), precision, tta, tile, overlap, decide
    )


def predict_semantic(
    seg: Segmenter,
    image: np.ndarray,
    precision: str,
    tta: bool,
    tile: int | None,
    overlap: int,
    decide=argmax_codes,
) -> np.ndarray:
    if tile is None:
        tile = AUTO_TILE if image.shape[0] * image.shape[1] > AUTO_TILE_PIXELS else 0
    if not tile:
        x = to_tensor(image, seg.norm).unsqueeze(0)
        probs = predict_probs(seg.network, x, precision, tta, seg.input_scale)
        return decide(probs)[0].cpu().numpy()
    h, w = image.shape[:2]
    if seg.input_scale != 1.0:  # tile at the network's resolution, then nearest-upsample the mask
        image = resize_image(image, scaled_size(image.shape, seg.input_scale))
    mask = predict_tiled(seg.network, image, seg.norm, tile, overlap, precision, tta, decide=decide)
    return mask if mask.shape == (h, w) else resize_mask(mask, (h, w))


def segment(
    seg: Segmenter | str | os.PathLike,
    image: np.ndarray | str | os.PathLike,
    precision: str = "auto",
    min_size: int = 0,
    object_class: int | None = None,
    tile: int | None = None,
    overlap: int = AUTO_OVERLAP,
    score_threshold: float = 0.5,
    tta: bool = False,
) -> np.ndarray:
    """Instance labels (H, W) uint16 (0 = background, 1..N objects; uint32 beyond 65535 objects)
    for an image array or path.

    ``seg``: a loaded model, checkpoint path or bundled name (``"nuclei"``:
    :func:`as_segmenter`). Semantic models
    trained on instances split objects at their predicted borders (see
    :func:`pixelwise.instances.instances_for`; a boundary model's objects start and end at its
    ``thresholds``, chosen when it was trained: set them on a loaded model to change them;
    others need ``object_class``); instance models
    give one object per detection scoring at least ``score_threshold``. Objects under
    ``min_size`` pixels are dropped. ``tta`` (semantic models): class probabilities averaged
    over the 8 flips/rotations, as in :func:`predict`.
    """
    seg = as_segmenter(seg)
    image = as_image(image, any_floats=trained_on_floats(seg), channel=seg.reads)
    if seg.kind == "instance":
        pred = detect(seg, image, score_threshold)
        return detections_to_labels(pred, score_threshold, min_size=min_size)
    mask = predict(seg, image, precision, tta, tile, overlap, decide=decision_for(seg))
    return instances_for(seg, mask, object_class, min_size)
