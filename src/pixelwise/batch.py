"""Files in, files out: what predict and segment do with each file (whole, or a slide region by
region) and write for it (masks, probabilities, overlays, label images, GeoJSON, LabelMe, COCO,
measurements), run by :mod:`pixelwise.runner`'s loop."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from pixelwise.constants import (
    AUTO_TILE,
    parse_range,
)
from pixelwise.data.calibration import pixel_size_um, scale_note
from pixelwise.data.coco import object_annotations
from pixelwise.data.encoding import TWELVE_BIT, intensity_kind, map_range
from pixelwise.data.geojson import (
    FeatureWriter,
    object_features,
    region_features,
    region_tables,
    tiled_region_features,
    write_features,
)
from pixelwise.data.io import (
    StackPage,
    read_channels,
    read_image,
)
from pixelwise.data.labelme import BACKGROUND_LABEL, IGNORE_LABEL, annotation_json, shapes_of
from pixelwise.data.slide import TiffRegions, is_streamed, sample_step
from pixelwise.data.transforms import scaled_size
from pixelwise.data.write import (
    atomic_write_bytes,
    save_label_image,
    save_mask,
    save_png,
    save_probabilities,
)
from pixelwise.detection import (
    categories_of,
    detect,
    detections_to_classes,
    detections_to_coco,
    detections_to_labels,
)
from pixelwise.inference import (
    Mapped,
    check_factor,
    check_scale,
    expand_slide,
    predict,
    predict_probabilities,
    predict_slide,
    rescaled,
    scale_factor,
    segment,
    segment_slide,
    tile_starts,
)
from pixelwise.instances import expand_cells
from pixelwise.measure import (
    Grading,
    check_stains,
    grade_colours,
    in_micrometres,
    measure_objects,
    stain_vectors,
)
from pixelwise.overlays import detection_overlay, display_rgb, instance_overlay, overlay
from pixelwise.runner import (
    BatchResult,
    input_name,
    output_names,
    run_batch,
)
from pixelwise.tissue import TissueOnly

# --expand's largest distance: a slide's block of 2048 pixels is read with 128 + 2 x this around
# it (inference.expand_slide), about 6300 x 6300 pixels and 1.5 GB for the distance transform at
# 1000. Cells are a few tens of pixels across at any scanner's resolution.
MAX_EXPAND = 1000


@dataclass
class PredictOptions:
    """How ``predict`` and ``segment`` run a model (see :func:`pixelwise.inference.predict`)."""

    precision: str = "auto"
    tta: bool = False
    tile: int | None = None
    overlap: int = 64
    score_threshold: float = 0.5  # instance models
    min_object_size: int = 0  # segment
    object_class: int | None = None  # segment, semantic models not trained on instances
    skip_existing: bool = False  # leave inputs whose main output exists alone
    probabilities: bool = False  # predict, semantic models: also each class's probability
    labelme: bool = False  # predict: also the regions as LabelMe polygons, to correct by hand
    geojson: bool = False  # also the regions (objects) as GeoJSON polygons, for QuPath & co.
    coco: str | None = None  # segment: also every object in this one COCO instances file
    measure: str | None = None  # segment: also every object's measurements in this one CSV
    expand: int = 0  # segment: also each object's cell, the object grown by this many pixels
    stains: bool = False  # segment --measure: also each stain's optical density (RGB images)
    stain_vectors: str | np.ndarray | None = None  # --stains with these vectors, not Ruifrok's
    positive: str | Grading | None = None  # segment --measure: each object graded by a column
    input_range: tuple[float, float] | str | None = None  # raw LO..HI seen as full range
    channel: int | None = None  # read this channel of each image alone, as grey
    tissue_only: bool = False  # slides over the pixel limit: tiles over bare glass predicted once
    pixel_size: float | None = None  # segment --measure: µm a pixel, where files do not say
    # images resized by this before the network (on top of the model's own); "auto": each by its
    # pixel size over the one the model learned at
    scale: float | str = 1.0

    def __post_init__(self) -> None:
        self.input_range = parse_range(self.input_range)
        # checked once here rather than failing every file of a batch the same way
        for name in ("coco", "measure"):
            if getattr(self, name) is not None and self.skip_existing:
                raise ValueError(
                    f"--{name} lists the objects of every image, --skip-existing leaves some "
                    "alone: give one of them"
                )
        if self.overlap < 0:
            raise ValueError(f"--overlap must be 0 or more, got {self.overlap}")
        if not 0 <= self.expand <= MAX_EXPAND:
            raise ValueError(
                f"--expand must be 0 (no cells) to {MAX_EXPAND} pixels, got {self.expand} (a "
                "slide's cells are made block by block, each read with twice that around it)"
            )
        if self.stains and self.measure is None:
            raise ValueError("--stains adds columns to --measure's rows: give --measure FILE too")
        if self.stain_vectors is not None and not self.stains:
            raise ValueError("--stain-vectors are what --stains measures with: give --stains too")
        if isinstance(self.stain_vectors, str):
            self.stain_vectors = stain_vectors(self.stain_vectors)
        if self.pixel_size is not None and not (self.pixel_size > 0 and self.measure):
            raise ValueError(
                f"--pixel-size gives --measure's sizes in µm: a size above 0 with --measure FILE, "
                f"got {self.pixel_size}" + ("" if self.measure else " without --measure")
            )
        self.check_grading()
        if self.scale != "auto":
            check_factor(self.scale, "--scale")
        if self.tile is not None and self.tile < 0:
            raise ValueError(f"--tile must be 0 (never tile) or more, got {self.tile}")
        if self.tile and self.tile <= 2 * self.overlap:
            raise ValueError(
                f"--tile {self.tile} must be larger than twice --overlap {self.overlap}; "
                "pass a smaller --overlap or a larger --tile"
            )

    def unmixing(self) -> bool | np.ndarray:
        """What :func:`~pixelwise.measure.measure_objects` takes as ``stains``."""
        return self.stain_vectors if self.stain_vectors is not None else self.stains

    def check_grading(self) -> None:
        """``positive`` parsed (:meth:`Grading.parse`), with the options its column needs."""
        if self.positive is None:
            return
        if isinstance(self.positive, str):
            self.positive = Grading.parse(self.positive)
        if self.measure is None:
            raise ValueError("--positive grades --measure's rows: give --measure FILE too")
        given = {"expand": self.expand > 0, "stains": self.stains}
        given["channel"] = self.channel is not None
        for option, why in self.positive.needs().items():
            if not given[option]:
                raise ValueError(f"--positive {self.positive.column}: {why}")


class ModelView:
    """The image as the model sees it (and the overlays show it): ``options.input_range`` mapped
    to 0..1, else as it was read; without a range, the 16-bit inputs whose values stay under 4096
    are listed in ``dim`` for a model that normalises by bit depth and was trained on 8-bit
    images (a 12-bit camera's image, 16x too dark for it)."""

    def __init__(self, seg, options: PredictOptions) -> None:
        self.input_range = options.input_range
        self.channel = seg.reads if options.channel is None else options.channel
        self.eight_bit = seg.norm.scale == 255.0 and seg.norm.percentiles is None
        self.rgb_only = options.stains  # segment --stains: RGB images only
        self.tissue_only = options.tissue_only
        self.dim: list[str] = []
        self.notes: list[str] = []  # what --tissue-only found on each slide, scales
        self.whole = 0  # images read whole (under the pixel limit)
        self.learned = seg.pixel_size  # µm a pixel of the model's training images, or None
        self.scale = options.scale  # what the network sees of each image: resized by this
        self.given_size = options.pixel_size  # --pixel-size: every image's, for --measure
        self.sizes: dict[str, float | None] = {}  # each file's recorded pixel size, read once
        self.sized: set[str] = set()  # files whose pixel size was compared with the model's

    def __call__(self, image: np.ndarray, src) -> np.ndarray:
        if self.input_range is not None:
            return map_range(image, *self.input_range)
        if self.eight_bit and intensity_kind(image) == TWELVE_BIT and str(src) not in self.dim:
            self.dim.append(str(src))  # once (a file over the limit is read region by region)
        return image

    def read(self, src) -> np.ndarray:
        """The input as stored (its ``--channel`` alone when one is chosen); with ``--stains``,
        ValueError for an image that is not RGB, before any work on it."""
        image = read_image(src, channel=self.channel)
        if self.rgb_only:
            check_stains(image)
        self.whole += 1
        self.compare_scale(src)
        return image

    def recorded_size(self, src) -> float | None:
        """µm a pixel as the file of ``src`` (a path or a page of a stack) records it
        (:func:`~pixelwise.data.calibration.pixel_size_um`), read once per file."""
        path = getattr(src, "path", src)
        if str(path) not in self.sizes:
            recorded = isinstance(path, (str, os.PathLike))
            self.sizes[str(path)] = pixel_size_um(path) if recorded else None
        return self.sizes[str(path)]

    def pixel_size_of(self, src) -> float | None:
        """µm a pixel of ``src`` for ``--measure``: ``--pixel-size``, else as its file records
        it, else None."""
        return self.given_size if self.given_size is not None else self.recorded_size(src)

    def compare_scale(self, src) -> None:
        """A note when ``src``'s file records another pixel size than the model learned at
        (:func:`~pixelwise.data.calibration.scale_note`), once per file."""
        path = str(getattr(src, "path", src))
        if self.learned is None or path in self.sized:
            return
        self.sized.add(path)
        note = scale_note(path, self.recorded_size(src), self.learned, self.factor(src))
        if note:
            self.notes.append(note)

    def factor(self, src) -> float:
        """What ``src`` is resized by before the network: ``--scale``, or with ``auto`` its
        file's pixel size over the model's (1 where the file records none; ValueError where
        the factor is out of range)."""
        return scale_factor(self.scale, self.recorded_size(src), self.learned)

    def model_for(self, seg, src):
        """``seg`` seeing ``src`` resized by :meth:`factor`."""
        return rescaled(seg, self.factor(src))

    def all_notes(self) -> list[str]:
        """The notes on the run: each slide's tissue, scales, images ``--tissue-only`` passed by
        and files ``--scale auto`` found no pixel size in."""
        found = list(self.notes)
        if self.tissue_only and self.whole:
            found.append(
                f"--tissue-only finds the tissue of slides read region by region (over the pixel "
                f"limit); {self.whole} image(s) under it were read whole and predicted everywhere"
            )
        unsized = [path for path, size in self.sizes.items() if size is None]
        if self.scale == "auto" and unsized:
            found.append(
                f"--scale auto: {len(unsized)} file(s) record no pixel size and were taken "
                f"as they are, such as {unsized[0]}"
            )
        return found

    def stains(self, src) -> np.ndarray | None:
        """Every channel of a multi-channel input of which one was read: each is measured."""
        if self.channel is None:
            return None
        channels, colour = read_channels(src)
        return None if colour else channels


def predict_files(
    seg,
    inputs: list[str | os.PathLike],
    out_dir: str | os.PathLike,
    options: PredictOptions = PredictOptions(),
    progress: bool = True,
    shard: tuple[int, int] = (0, 1),
) -> BatchResult:
    """Per image: ``masks/<name>.png`` (palette PNG of class ids) and ``overlays/<name>.png``,
    with ``options.probabilities`` also ``probabilities/<name>.tif`` (one 8-bit page per class);
    for instance models also ``instances/<name>.png`` (uint16 labels) and ``coco/<name>.json``
    (COCO results with RLE masks; ``image_id`` 0, category ids as trained). Bad files are
    recorded and skipped; ``shard=(rank, world)`` takes every world-th input from rank."""
    if options.labelme:  # the model's class order, for training on the corrected files
        write_labels_txt(Path(out_dir), seg.class_names[1:])
    check_scale(seg, options.scale)
    if seg.kind == "instance":
        return detection_files(seg, inputs, out_dir, options, progress, shard)
    out_dir, palette, mask_palette = Path(out_dir), seg.palette(), seg.mask_palette()

    run = (options.precision, options.tta, options.tile, options.overlap)
    view = ModelView(seg, options)
    pairs = output_names(inputs, out_dir, pages=True)
    names = dict(pairs)  # each input's output name

    def compute(src):
        if is_streamed(src):  # over the pixel limit: written as it is predicted
            model = view.model_for(seg, src)
            return predict_streamed(model, src, out_dir, names[src], options, view, progress)
        image, model = view(view.read(src), src), view.model_for(seg, src)
        if not options.probabilities:
            return image, predict(model, image, *run), None
        probabilities = predict_probabilities(model, image, *run)
        return image, probabilities.argmax(-1).astype(np.uint8), probabilities

    def write(src, rel, value):
        if isinstance(value, Streamed):
            return value.finish(out_dir / "overlays" / rel, palette)
        image, mask, probabilities = value
        if probabilities is not None:
            save_probabilities(out_dir / "probabilities" / rel.with_suffix(".tif"), probabilities)
        save_mask(out_dir / "masks" / rel, mask, mask_palette)
        if options.labelme:
            names = dict(enumerate(seg.class_names))
            del names[0]  # the background is what no shape covers
            shapes = shapes_of(mask, names, options.min_object_size)
            write_labelme(out_dir, src, rel, shapes, image)
        if options.geojson:
            regions = region_features(mask, *region_tables(seg), options.min_object_size)
            write_features(geojson_path(out_dir, rel), regions)
        save_png(out_dir / "overlays" / rel, overlay(image, mask, palette))
        return out_dir / "masks" / rel, None

    result = run_into(
        out_dir, "masks", options, inputs, compute, write, "predict", progress, shard, pairs=pairs
    )
    result.dim, result.notes = view.dim, view.all_notes()
    return result


PREVIEW_PIXELS = 4096 * 4096  # the overlay of an image too large to hold: a grid of its pixels


@dataclass
class Streamed:
    """What ``predict`` or ``segment`` made of an image over the pixel limit: its mask or labels,
    written already as a tiled TIFF at ``path``; every step-th pixel of the image and of what was
    written, for the overlay; and for ``segment`` the number of objects."""

    path: Path
    image: np.ndarray
    written: np.ndarray
    count: int | None = None
    measured: list[dict] | None = None  # segment --measure: a row per object
    cells: np.ndarray | None = None  # segment --expand: every step-th pixel of the cells

    def finish(self, overlay_path: Path, palette: np.ndarray | None = None):
        """Write the overlay (last: it marks a finished image); ``write``'s (path, count)."""
        if self.count is None:
            shown = overlay(self.image, self.written, palette)
        else:
            colours = grade_colours(self.measured)
            shown = instance_overlay(self.image, self.written, cells=self.cells, colours=colours)
        save_png(overlay_path, shown)
        return self.path, self.count


def streamed(
    seg, src: Path, path: Path, options: PredictOptions, view, progress, slide, *extra, **named
):
    """``slide`` (:func:`~pixelwise.inference.predict_slide` or ``segment_slide``, with ``extra``
    after the options they share, and ``named``) run on a TIFF over the pixel limit read region
    by region, as the model sees it, into ``path``, with a progress bar over the rows of tiles:
    the :class:`Streamed` record of it, with every step-th pixel (:data:`PREVIEW_PIXELS`)."""
    run = (options.precision, options.tta, options.tile, options.overlap, *extra)
    view.compare_scale(src)
    with TiffRegions(src, view.channel) as regions:
        source = Mapped(regions, lambda image: view(image, src))
        if view.tissue_only:  # the glass's tiles predicted once
            source = TissueOnly.of(source)
            view.notes.append(f"{src}: tissue in {source.share:.0%} of it (--tissue-only)")
        height = scaled_size(regions.shape, seg.input_scale)[0]  # as the network sees it
        core = min((options.tile or AUTO_TILE) - 2 * options.overlap, height)
        total = len(tile_starts(height, core))

        def shown(rows):
            bar = dict(desc=f"{src.name}: rows of tiles", leave=False, disable=not progress)
            return tqdm(rows, total=total, **bar)

        count = slide(seg, source, path, *run, through=shown, **named)
        step = sample_step(regions.shape, PREVIEW_PIXELS)
        return Streamed(path, source.sample(step), preview_of(path, step), count)


REGION_BLOCK = 4096  # predict --geojson on a slide: its mask read back in blocks this size


def predict_streamed(
    seg, src: Path, out_dir: Path, rel: Path, options: PredictOptions, view, progress: bool
) -> Streamed:
    """Predict a TIFF over the pixel limit (a whole-slide scan) region by region
    (:func:`~pixelwise.inference.predict_slide`) into ``OUT/masks/<rel>.tif``, a tiled palette
    TIFF written row of tiles by row; memory follows the tiles, not the image. With
    ``--geojson``, the mask's regions are then written to ``OUT/geojson``, read back from the
    mask block by block; with ``--probabilities``, the class probabilities go to
    ``OUT/probabilities/<rel>.tif`` (:func:`~pixelwise.data.write.save_probability_pages`)."""
    path = out_dir / "masks" / rel.with_suffix(".tif")
    geojson = geojson_path(out_dir, rel) if options.geojson else None
    probabilities = out_dir / "probabilities" / rel.with_suffix(".tif")
    probabilities = probabilities if options.probabilities else None
    if options.labelme:
        raise ValueError(
            "is over the pixel limit and predicted region by region into a tiled TIFF mask; "
            "--labelme is written for images under the limit"
        )
    done = streamed(
        seg, src, path, options, view, progress, predict_slide, probabilities=probabilities
    )
    if geojson is not None:
        bar = dict(desc=f"{src.name}: regions, blocks", leave=False, disable=not progress)
        with TiffRegions(path, shown=False) as mask:
            tables, least = region_tables(seg), options.min_object_size
            found = tiled_region_features(
                mask.stored, mask.shape, *tables, least, REGION_BLOCK, partial(tqdm, **bar)
            )
            write_features(geojson, found)
    return done


def segment_streamed(
    seg, src: Path, path: Path, options: PredictOptions, view, progress: bool, geojson=None,
    cells: Path | None = None,
) -> Streamed:  # fmt: skip
    """Segment a TIFF over the pixel limit region by region
    (:func:`~pixelwise.inference.segment_slide`) into ``path``, a tiled uint32 TIFF of labels;
    with ``options.measure`` each object measured, and each written to the GeoJSON file
    ``geojson`` when given, block by block (in the slide's coordinates). With
    ``options.expand``, the objects' cells are then written to ``cells`` (a tiled TIFF:
    :func:`~pixelwise.inference.expand_slide`), and measured and written with them."""
    with_channel = options.measure is not None and view.channel is not None
    if options.coco is not None or options.labelme or with_channel:
        raise ValueError(
            "is over the pixel limit and segmented region by region into a tiled TIFF of "
            "labels; --coco, --labelme and --measure with --channel are written for images under it"
        )
    if options.stains:
        with TiffRegions(src) as stored:
            check_stains(stored.read(np.arange(1), np.arange(1)))
    extra = (options.min_object_size, options.object_class)
    measured = [] if options.measure is not None else None
    with contextlib.ExitStack() as stack:
        handlers = []
        if measured is not None:  # measured as stored, as segment measures any image
            stored = stack.enter_context(TiffRegions(src))
            names, size = coco_names(seg, options.object_class), view.pixel_size_of(src)
            run = (stored, names, measured, options.unmixing(), options.positive, size)
            handlers.append(partial(measure_block, *run))
        if geojson is not None:
            writer = stack.enter_context(FeatureWriter(geojson))
            colours = colours_of(seg, options.object_class)

            def outline(labels, rows, cols, first, cells=None):
                names = object_classes(seg, labels, None, options.object_class)
                found = {}  # this block's --measure rows, the last ones measured
                for row in reversed(measured or ()):
                    if row["object"] < first:
                        break
                    found[row["object"]] = row
                corner = (rows[0], cols[0])
                writer.add(object_features(labels, names, colours, first, corner, found, cells))

            handlers.append(outline)

        def each(*block, **named):
            for handle in handlers:
                handle(*block, **named)

        each = each if handlers else None
        run = (seg, src, path, options, view, progress, segment_slide, *extra)
        done = streamed(*run, on_block=None if options.expand else each)
        if options.expand:  # the objects are measured and written with their cells
            with TiffRegions(path, shown=False) as labels:
                expand_slide(labels, cells, options.expand, on_block=each)
                step = sample_step(labels.shape, PREVIEW_PIXELS)
            done.cells = preview_of(cells, step)
    if options.positive is not None:
        options.positive.check(measured)
    done.measured = measured
    return done


def measure_block(
    stored, names: list[str], measured: list[dict], stains, grading, pixel_size, labels, rows,
    cols, first, cells=None,
):  # fmt: skip
    """``segment --measure`` of one block of a streamed image (``stored``, read as stored):
    its objects' rows (with ``cells``, their cells' too; with ``stains``, the stains'
    densities; with ``pixel_size``, µm too; with ``grading``, a
    :class:`~pixelwise.measure.Grading`, their grades), numbered from ``first`` and in the
    slide's coordinates, onto ``measured``."""
    image = stored.read(rows, cols)
    found = measure_objects(labels, image, names, cells=cells, stains=stains)
    for row in found:
        row["object"] += first - 1
        for axis, offset in (("x", int(cols[0])), ("y", int(rows[0]))):
            row[f"centroid_{axis}"] = round(row[f"centroid_{axis}"] + offset, 3)
            row[f"bbox_{axis}0"] += offset
            row[f"bbox_{axis}1"] += offset
    in_micrometres(found, pixel_size)
    if grading is not None:
        grading.grade(found)
    measured.extend(found)


def preview_of(path: Path, step: int) -> np.ndarray:
    """Every step-th pixel of the mask or labels written to ``path``."""
    with TiffRegions(path, shown=False) as written:
        return written.sample(step)[..., 0]


def write_labels_txt(out_dir: Path, names: list[str]) -> None:
    """``OUT/labelme/labels.txt``: the classes in order, as labelme2voc lists them."""
    text = "\n".join([IGNORE_LABEL, BACKGROUND_LABEL, *names])
    atomic_write_bytes(out_dir / "labelme" / "labels.txt", f"{text}\n".encode())


def write_labelme(out_dir: Path, src, rel: Path, shapes: list[dict], image: np.ndarray) -> None:
    """``OUT/labelme/<name>.json``: the shapes found in ``src`` (``image``), for LabelMe or any
    tool that reads its files; ``imagePath`` leads to ``src``, or for a page of a stack (which
    LabelMe cannot open) to the page written beside the file as ``<name>.png``."""
    path = out_dir / "labelme" / rel.with_suffix(".json")
    if isinstance(src, StackPage):
        src = path.with_suffix(".png")
        save_png(src, Image.fromarray(display_rgb(image)))
    text = annotation_json(shapes, Path(src).absolute(), path.parent.absolute(), *image.shape[:2])
    atomic_write_bytes(path, text.encode())


def detection_files(
    seg, inputs, out_dir, options: PredictOptions, progress: bool, shard: tuple[int, int]
) -> BatchResult:
    out_dir, cats, view = Path(out_dir), categories_of(seg), ModelView(seg, options)

    def compute(src):
        image = view(view.read(src), src)
        return image, detect(seg, image, options.score_threshold)

    def write(src, rel, value):
        image, pred = value
        labels = detections_to_labels(pred, options.score_threshold)
        save_mask(
            out_dir / "masks" / rel,
            detections_to_classes(pred, options.score_threshold),
            seg.palette(),
        )
        save_label_image(out_dir / "instances" / rel, labels)
        classes = pred["labels"].tolist()  # each detection's class: object k's is k - 1's
        names = {k: seg.class_names[c] for k, c in enumerate(classes, start=1)}
        if options.labelme:
            write_labelme(out_dir, src, rel, shapes_of(labels, names, objects=True), image)
        if options.geojson:
            objects = object_features(labels, names, colours_of(seg))
            write_features(geojson_path(out_dir, rel), objects)
        atomic_write_bytes(
            out_dir / "coco" / rel.with_suffix(".json"),
            json.dumps(detections_to_coco(pred, 0, cats)).encode(),
        )
        save_png(
            out_dir / "overlays" / rel, detection_overlay(image, pred, seg.class_names, labels)
        )
        return out_dir / "instances" / rel, int(labels.max())

    result = run_into(out_dir, "masks", options, inputs, compute, write, "predict", progress, shard)
    result.dim = view.dim
    return result


def segment_files(
    seg,
    inputs: list[str | os.PathLike],
    out_dir: str | os.PathLike,
    options: PredictOptions = PredictOptions(),
    progress: bool = True,
    shard: tuple[int, int] = (0, 1),
) -> BatchResult:
    """Per image: ``instances/<name>.png`` (uint16 instance labels, 0 = background; a uint32
    ``.tif`` beyond 65535 objects) and ``overlays/<name>.png`` (written last, so it marks a
    finished image for ``skip_existing``), with ``options.labelme`` also each object as a
    LabelMe polygon and with ``options.geojson`` as a GeoJSON feature, for semantic and
    instance models alike; bad files are recorded and skipped; ``shard`` as in
    :func:`predict_files`."""
    out_dir = Path(out_dir)
    check_scale(seg, options.scale)
    gathered = options.coco is not None or options.measure is not None or options.geojson
    classes_too = gathered and seg.kind == "instance"  # each object's class too
    view = ModelView(seg, options)

    def compute(src):
        if is_streamed(src):  # over the pixel limit: labelled as it is predicted
            rel = dict(pairs)[src]
            path = out_dir / "instances" / rel.with_suffix(".tif")
            features = geojson_path(out_dir, rel) if options.geojson else None
            cells = out_dir / "cells" / rel.with_suffix(".tif")
            model = view.model_for(seg, src)
            return segment_streamed(model, src, path, options, view, progress, features, cells)
        return segment_one(view.model_for(seg, src), src, view, options, classes_too)

    if options.labelme:
        write_labels_txt(out_dir, [object_name(seg, options.object_class)])

    def write(src, rel, value):
        if isinstance(value, Streamed):
            if value.measured is not None:
                measures.append((rel, input_name(src, rel), value.measured))
            return value.finish(out_dir / "overlays" / rel)
        image, seen, labels, classes, cells, found = value
        written = save_label_image(out_dir / "instances" / rel, labels)
        if cells is not None:
            save_label_image(out_dir / "cells" / rel, cells)
        if options.coco is not None:
            records.append((Path(src), *labels.shape, object_annotations(labels, classes)))
        if found is not None:
            measures.append((rel, input_name(src, rel), found))
        write_outlines(out_dir, src, rel, seg, options, labels, classes, seen, found, cells)
        shown = instance_overlay(seen, labels, cells=cells, colours=grade_colours(found))
        save_png(out_dir / "overlays" / rel, shown)
        return written, int(labels.max())

    records: list[tuple[Path, int, int, list[dict]]] = []
    measures: list[tuple[Path, str, list[dict]]] = []
    pairs = output_names(inputs, out_dir, pages=True)
    refuse_stacks_for_coco(pairs, options)
    run = (compute, write, "segment", progress, shard)
    result = run_into(out_dir, "overlays", options, inputs, *run, pairs=pairs)
    result.coco, result.measures, result.dim = records, measures, view.dim
    result.notes = view.all_notes()
    return result


def segment_one(seg, src, view, options: PredictOptions, classes_too: bool) -> tuple:
    """``segment`` of an image under the pixel limit: the image as stored (it is measured so)
    and as the model saw it (the overlay shows that), its labels, an instance model's classes
    when ``classes_too`` (else None), the cells (``--expand``) and the ``--measure`` rows, or
    None; ValueError for a file that cannot be measured as asked."""
    image = view.read(src)
    seen = view(image, src)
    labels, classes = objects_in(seg, seen, options, classes_too)
    cells = expand_cells(labels, options.expand) if options.expand else None
    found = measured_in(seg, src, view, options, (image, labels, classes, cells))
    return image, seen, labels, classes, cells, found


def measured_in(seg, src, view, options: PredictOptions, found: tuple) -> list[dict] | None:
    """``segment --measure``'s rows of one image (``found``: the image as stored, its labels,
    an instance model's classes or None, the cells or None), graded with ``--positive``
    (ValueError when the image lacks the column); None without ``--measure``."""
    if options.measure is None:
        return None
    image, labels, classes, cells = found
    run = (coco_names(seg, options.object_class), classes, view.stains(src), cells)
    rows = measure_objects(labels, image, *run, options.unmixing())
    in_micrometres(rows, view.pixel_size_of(src))
    if options.positive is not None:
        options.positive.check(rows)
        options.positive.grade(rows)
    return rows


def write_outlines(
    out_dir: Path, src, rel: Path, seg, options, labels, classes, seen, measured=None, cells=None
) -> None:
    """``segment``'s polygons of one image's objects: the LabelMe file (``options.labelme``;
    ``seen``, the image as the model saw it, for a page of a stack) and the GeoJSON file
    (``options.geojson``; ``classes``, an instance model's category of each pixel, or None;
    ``measured``, the objects' ``--measure`` rows, become their measurements; ``cells``, the
    objects' cells: QuPath cells with the objects as nuclei)."""
    if options.labelme:
        name = object_name(seg, options.object_class)
        names = {k: name for k in np.unique(labels) if k}
        write_labelme(out_dir, src, rel, shapes_of(labels, names, objects=True), seen)
    if options.geojson:
        names = object_classes(seg, labels, classes, options.object_class)
        rows = {row["object"]: row for row in measured or ()}
        colours = colours_of(seg, options.object_class)
        found = object_features(labels, names, colours, measured=rows, cells=cells)
        write_features(geojson_path(out_dir, rel), found)


def refuse_stacks_for_coco(pairs, options: PredictOptions) -> None:
    """A COCO file names one image per file: ``--coco`` takes no TIFF stacks (ValueError)."""
    stacks = [src for src, _ in pairs if isinstance(src, StackPage)]
    if options.coco is not None and stacks:
        raise ValueError(
            f"{stacks[0].path}: a TIFF stack; a COCO file names one image per file, so --coco "
            "takes no stacks (split it into files, or leave out --coco)"
        )


def objects_in(seg, image: np.ndarray, options: PredictOptions, classes_too: bool) -> tuple:
    """``segment``'s instance label image of ``image`` and, for an instance model when
    ``classes_too``, the image of each object's category id (else None)."""
    if classes_too:
        threshold = options.score_threshold
        pred = detect(seg, image, threshold)
        labels = detections_to_labels(pred, threshold, min_size=options.min_object_size)
        return labels, detections_to_classes(pred, threshold)
    run = (options.precision, options.min_object_size, options.object_class, options.tile)
    return segment(seg, image, *run, options.overlap, options.score_threshold, options.tta), None


def object_name(seg, object_class: int | None) -> str:
    """What ``segment`` calls a semantic model's objects: ``object_class``'s name, or "object"."""
    return seg.class_names[object_class] if object_class else "object"


def object_classes(seg, labels: np.ndarray, classes, object_class: int | None) -> dict:
    """Each object's class name, by its number: from ``classes`` (an instance model's category
    of each pixel) where given, else :func:`object_name`."""
    from scipy import ndimage

    if classes is None:
        return dict.fromkeys(
            range(1, int(labels.max(initial=0)) + 1), object_name(seg, object_class)
        )
    found = {}
    for k, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is not None:
            found[k] = seg.class_names[int(classes[box][labels[box] == k][0])]
    return found


def colours_of(seg, object_class: int | None = None) -> dict[str, np.ndarray]:
    """Each class name's colour in the model's palette (and :func:`object_name`'s)."""
    palette = seg.palette()
    colours = {name: palette[k] for k, name in enumerate(seg.class_names)}
    colours.setdefault(object_name(seg, object_class), palette[object_class or 1])
    return colours


def geojson_path(out_dir: Path, rel: Path) -> Path:
    """``OUT/geojson/<name>.geojson``: the regions or objects found in an image as polygons."""
    return out_dir / "geojson" / rel.with_suffix(".geojson")


def coco_names(seg, object_class: int | None) -> list[str]:
    """The categories of ``segment --coco``: an instance model's classes, else
    :func:`object_name`."""
    if seg.kind == "instance":
        return list(seg.class_names[1:])
    return [object_name(seg, object_class)]


def run_into(
    out_dir: Path, marker: str, options: PredictOptions, inputs, *run, pairs=None
) -> BatchResult:
    """:func:`run_batch` (``inputs, compute, write, desc, progress, shard``) writing under
    ``out_dir``, whose files are no inputs, each page of a TIFF stack an input of its own (or
    the ``pairs`` given); with ``options.skip_existing``, an input whose
    ``out_dir/marker/<name>`` exists already is left alone."""
    folder = out_dir / marker

    def done(rel: Path) -> bool:  # a mask over the pixel limit is a TIFF (predict_streamed)
        return (folder / rel).exists() or (folder / rel.with_suffix(".tif")).exists()

    skip = done if options.skip_existing else None
    return run_batch(inputs, *run, skip, pairs, out=out_dir, pages=True)
