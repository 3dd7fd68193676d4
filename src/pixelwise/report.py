"""``pixelwise inspect``: what a dataset holds as ``train`` would read it, before training on
it: where the training and validation images come from, their sizes, the classes with each
one's share of the pixels per split, and what is likely to go wrong (a class no validation
image shows, images smaller than the crop)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from pixelwise.config import TrainConfig
from pixelwise.constants import (
    IGNORE_INDEX,
    counted,
    first_ten,
    one_line,
    unusable,
)
from pixelwise.data.coco import oriented_size
from pixelwise.data.datasets import size_mismatch
from pixelwise.data.encoding import MaskEncoding
from pixelwise.data.io import colour_name
from pixelwise.data.slide import read_as_stored
from pixelwise.semantic import read_data, validation_source


def dataset_report(cfg: TrainConfig, progress: bool = True) -> dict:
    """The report of ``cfg.data`` read with ``cfg``'s data options: splits, sizes, classes and
    pixel counts (every mask is read once), warnings. ValueError naming every pair that train
    would refuse (a mask of another size than its image, a file that cannot be read)."""
    _, train, val, names, encoding = read_data(cfg)
    values = encoding.values
    splits = {"train": train, "val": val}
    failures: list[str] = []
    sizes: list[tuple[int, int]] = []
    areas: dict[str, list] = {split: [] for split in splits}  # each object's, image by image
    counts = {
        split: pixel_counts(items, encoding, len(names), progress, failures, sizes, areas[split])
        for split, items in splits.items()
    }
    if failures:
        raise unusable(failures, "pair")
    report = {
        "data": str(Path(cfg.data)),
        "validation": validation_source(cfg, where=True),
        "images": {split: len(items) for split, items in splits.items()},
        "sizes": {
            "min": [int(v) for v in np.min(sizes, 0)],
            "max": [int(v) for v in np.max(sizes, 0)],
        },
        "classes": [
            {
                "name": name,
                "stored_value": None if values is None else values[k],
                **{split: int(counts[split][k]) for split in splits},
            }
            for k, name in enumerate(names)
        ],  # fmt: skip
        "ignored": {split: int(counts[split][-1]) for split in splits},
    }
    if encoding.instances is not None:
        report["objects"] = {split: object_sizes(areas[split]) for split in splits}
    windows = [item for item in train + val if item.window]
    if windows:  # regions annotated on slides: how many slides, and the windows' margin
        from pixelwise.data.labelme import window_margin

        slides = {"slides": len({item.image for item in windows}), "margin": window_margin()}
        report["windows"] = slides | {"windows": len(windows)}
    cells = qupath_cells(train + val)
    if cells:
        report["cells"] = cells
    sizes = pixel_sizes(train + val)
    if sizes:
        report["pixel_sizes"] = sizes
    return report | {"warnings": warnings(report, cfg)}


def pixel_sizes(items: list) -> dict[str, int]:
    """How many of the items' images record each pixel size (µm, as text; "not recorded" for
    the others), each image once; empty when none records one
    (:func:`~pixelwise.data.calibration.pixel_size_um`)."""
    from pixelwise.data.calibration import pixel_size_um

    found: dict[str, int] = {}
    for image in dict.fromkeys(item.image for item in items):
        size = pixel_size_um(image)
        key = "not recorded" if size is None else f"{size:g}"
        found[key] = found.get(key, 0) + 1
    return {} if set(found) <= {"not recorded"} else found


def mixed_scales(sizes: dict[str, int]) -> str | None:
    """The warning for images recorded at pixel sizes more than 10 % apart, or None."""
    known = sorted(float(k) for k in sizes if k != "not recorded")
    if len(known) < 2 or known[-1] <= 1.1 * known[0]:
        return None
    return (
        f"the images' pixel sizes differ ({known[0]:g} to {known[-1]:g} µm): the same objects "
        f"appear {known[-1] / known[0]:.1f}x larger in some; train --at-pixel-size UM "
        "learns them at one pixel size (or train one model per magnification)"
    )


def qupath_cells(items: list) -> dict | None:
    """How many QuPath cells (with a nucleus) the items' GeoJSON files hold, and which of their
    outlines is read (:func:`~pixelwise.data.geojson.cell_part`); None without any."""
    from pixelwise.data.geojson import cell_count, cell_part

    files = {item.mask for item in items if str(item.mask).lower().endswith(".geojson")}
    cells = sum(cell_count(path) for path in files)
    return {"cells": cells, "part": cell_part()} if cells else None


def pixel_counts(
    items: list, encoding: MaskEncoding, num_classes: int, progress: bool, failures: list,
    sizes: list, areas: list,
) -> np.ndarray:  # fmt: skip
    """Pixels of each class over ``items``, the ignored ones last; a line in ``failures`` for
    each pair that train would refuse, its pixels not counted; each image's (height, width)
    appended to ``sizes`` (read from its header; a slide's window: its own); for instance
    labels, each image's object areas in pixels appended to ``areas``."""
    from tqdm import tqdm

    total = np.zeros(num_classes + 1, np.int64)
    for item in tqdm(items, desc="masks", unit="mask", disable=not progress or not items):
        try:
            mask = item.read_mask(encoding.instances is not None)
            target = encoding.apply(mask, num_classes, item.mask)
            size = target.shape if item.window else oriented_size(item.image)
        except ValueError as exc:
            failures.append(one_line(exc))
            continue
        if size != target.shape and read_as_stored(item.image, target.shape, size):
            size = target.shape
        if size != target.shape:  # (a slide's window is read to its mask's size)
            failures.append(size_mismatch(item, target.shape, size))
            continue
        sizes.append(item.size if item.window else size)
        if encoding.instances is not None:
            areas.append(np.unique(mask[mask > 0], return_counts=True)[1])
        target = np.where(target == IGNORE_INDEX, num_classes, target)
        total += np.bincount(target.ravel(), minlength=num_classes + 1)
    return total


def object_sizes(areas: list[np.ndarray]) -> dict:
    """How many objects the images hold (in all, and per image) and how large they are: area
    in pixels (median, 5th and 95th percentiles) and the median equivalent diameter, what a
    crop and --scale are chosen by."""
    per_image = [len(a) for a in areas]
    every = np.concatenate(areas) if areas else np.zeros(0)
    found = {"objects": int(every.size), "images": len(areas)}
    if not every.size:
        return found
    p5, median, p95 = (float(v) for v in np.percentile(every, [5, 50, 95]))
    return found | {
        "per_image": [min(per_image), float(np.median(per_image)), max(per_image)],
        "area": {"median": median, "p5": p5, "p95": p95},
        "diameter": float(np.sqrt(4 * median / np.pi)),
    }


def objects_line(split: str, found: dict) -> str:
    """:func:`object_sizes` of a split as one line."""
    if not found.get("objects"):
        return f"{split} objects: none in {counted(found['images'], 'image')}"
    (low, median, high), area = found["per_image"], found["area"]
    return (
        f"{split} objects: {found['objects']} in {counted(found['images'], 'image')} ({low} to "
        f"{high} an image, median {median:g}); area median {area['median']:.0f} pixels (5-95 %: "
        f"{area['p5']:.0f}-{area['p95']:.0f}), equivalent diameter {found['diameter']:.1f} pixels"
    )


def warnings(report: dict, cfg: TrainConfig) -> list[str]:
    """What would make training or its validation figures mislead."""
    found = []
    untrained = [c["name"] for c in report["classes"] if not c["train"]]
    unscored = [c["name"] for c in report["classes"] if c["train"] and not c["val"]]
    if untrained:
        found.append(f"no pixel in the training images: {first_ten(untrained, 'classes')}")
    trained = split_pixels(report, "train")  # as the table shows the shares
    rare = [
        f"{c['name']} ({c['train'] / trained:.2%})"
        for c in report["classes"]
        if 0 < c["train"] < RARE * trained
    ]
    if rare and not cfg.instances and cfg.class_weighting == "none" and "dice" not in cfg.loss:
        found.append(
            f"under {RARE:.0%} of the training pixels: {first_ten(rare, 'classes')}; a model may "
            "seldom predict them: --class-weighting median or --loss ce+dice weigh them up (at "
            "some cost in pixel accuracy; compare on the validation images)"
        )
    if unscored and report["images"]["val"]:
        found.append(
            f"no pixel in the validation images (IoU not measured): {first_ten(unscored, 'classes')}"
        )
    if not report["images"]["val"]:
        found.append("no validation images: best.pt is the last epoch's model, no score checks it")
    elif report["images"]["val"] < 2:
        found.append(
            f"{report['images']['val']} validation image(s): the figures that pick best.pt rest on it"
        )
    if cfg.crop and max(report["sizes"]["max"]) * cfg.scale < cfg.crop:
        found.append(f"every image is smaller than --crop {cfg.crop}: train with --crop 0 or less")
    ignored = sum(report["ignored"].values())
    total = split_pixels(report, "train") + split_pixels(report, "val")
    if total and ignored / total > MOSTLY_IGNORED:
        found.append(f"{ignored / total:.0%} of the pixels are ignored")
    mixed = mixed_scales(report.get("pixel_sizes", {}))
    return found + ([mixed] if mixed else [])


def split_pixels(report: dict, split: str) -> int:
    """Every pixel of a split's masks, the ignored ones too."""
    return sum(c[split] for c in report["classes"]) + report["ignored"][split]


MOSTLY_IGNORED = 0.5
RARE = 0.01  # a class under this share of the training pixels is rare


def format_report(report: dict) -> str:
    """The report as text: one line per split, a table of the classes, the warnings."""
    (h0, w0), (h1, w1) = report["sizes"]["min"], report["sizes"]["max"]
    sizes = f"{w0} x {h0}" if (h0, w0) == (h1, w1) else f"{w0} x {h0} to {w1} x {h1}"
    lines = [
        f"{report['data']}: {report['images']['train']} training and {report['images']['val']} "
        f"validation images (validation: {report['validation']}); sizes {sizes} (width x height)",
        f"{'id':>3}  {'class':<20} {'value':>10} {'train pixels':>14} {'val pixels':>12}",
    ]
    if "windows" in report:
        w = report["windows"]
        lines.insert(1, f"{w['windows']} windows of {w['slides']} slide{'s' * (w['slides'] > 1)}"
                        f" (margin {w['margin']} pixels, PIXELWISE_WINDOW_MARGIN)")  # fmt: skip
    if "pixel_sizes" in report:
        listed = ", ".join(
            f"{k}{' µm' * (k != 'not recorded')} ({counted(n, 'image')})"
            for k, n in report["pixel_sizes"].items()
        )
        lines.insert(1, f"pixel sizes as the images' files record them: {listed}")
    if "cells" in report:
        c = report["cells"]
        lines.insert(1, f"{c['cells']} QuPath cells read by their {c['part']} outline "
                        "(PIXELWISE_CELL_PART: cell or nucleus)")  # fmt: skip
    totals = {s: split_pixels(report, s) for s in ("train", "val")}

    def share(n: int, split: str) -> str:
        return f"{n / totals[split]:.2%}" if totals[split] else "-"

    stored = [c["stored_value"] for c in report["classes"] if c["stored_value"] is not None]
    colours = max(stored, default=0) > 255  # colour masks: each value as #rrggbb
    for k, c in enumerate(report["classes"]):
        value = str(k if c["stored_value"] is None else c["stored_value"])
        value = colour_name(c["stored_value"]) if colours else value
        lines.append(
            f"{k:>3}  {c['name'][:20]:<20} {value:>10} {share(c['train'], 'train'):>14} {share(c['val'], 'val'):>12}"
        )
    ignored = report["ignored"]
    lines.append(
        f"{'':>3}  {'(ignored)':<20} {'':>10} {share(ignored['train'], 'train'):>14} {share(ignored['val'], 'val'):>12}"
    )
    lines += [objects_line(split, found) for split, found in report.get("objects", {}).items()]
    lines += [f"warning: {w}" for w in report["warnings"]]
    return "\n".join(lines)


def _shown(page) -> str:
    """How a TIFF page's samples are read when they are not read as stored
    (:func:`~pixelwise.data.io.as_shown`), for ``pixelwise info``; else nothing."""
    from pixelwise.data.io import MINISWHITE, PALETTE, is_cmyk

    if is_cmyk(page):
        return " (CMYK inks: read as the colours they print as)"
    if page.photometric == PALETTE:
        return " (a palette: an image is read as its colours, a mask as its indices)"
    if page.photometric == MINISWHITE:
        return " (grey with 0 as white: read as shown)"
    return ""


def image_report(path: str | Path) -> str:
    """``pixelwise info IMAGE``: its size and layout (a TIFF's tiles, compression and pyramid
    levels), the pixel size its file records (what ``segment --measure`` gives µm from and
    ``--scale auto`` resizes by) and whether ``predict``/``segment`` read it whole or region by
    region; ImageReadError for a file that cannot be read as an image, or whose pixels (those
    of its first page, when within the pixel limit) cannot be decoded."""
    from pixelwise.data.calibration import recorded
    from pixelwise.data.io import _check_file, _open_tiff, is_tiff, max_pixels_limit, tiff_profile
    from pixelwise.data.slide import base_page, pyramid_levels

    path = Path(path)
    _check_file(path)
    tiff, size, smaller, frames = is_tiff(path), None, [], None  # a TIFF records a pixel size
    if tiff:
        with _open_tiff(path) as tif:
            page, series = base_page(tif), tif.series[0]
            if page is None:
                page = tif.pages.first
            else:  # what --scale under 1 reads of a slide
                smaller = [f"{p.imagewidth} x {p.imagelength}" for p in pyramid_levels(tif, page)]
            h, w = page.imagelength, page.imagewidth
            layout = f"tiles of {page.tilewidth} x {page.tilelength}" if page.is_tiled else "strips"
            compression = page.compression.name.lower()
            layout += ", uncompressed" if compression == "none" else f", {compression}"
            levels = len(series.levels)
            about = (
                f"TIFF, {page.samplesperpixel} sample(s) of {page.dtype}{_shown(page)}, {layout}"
            )
            if levels > 1:
                about += f", a pyramid of {levels} levels"
            if len(tif.pages) > 1:
                about += f", {len(tif.pages)} pages"
            if profile := profile_name(tiff_profile(page)):
                about += f", colour profile {profile}"
            size = recorded(tif)
            if h * w <= max_pixels_limit():
                decoded(path, page.asarray)
    else:
        w, h, about, frames = pillow_report(path)
    scale = (
        f"{size:g} µm a pixel, as the file records it"
        if size is not None
        else "no pixel size recorded (--measure gives pixels; --pixel-size UM gives µm)"
    )
    limit = max_pixels_limit()
    over = f"over the pixel limit of {limit / 1e6:g} megapixels"
    if frames is not None:
        reading = frames
    elif w * h <= limit:
        reading = "read whole by every command"
    elif tiff:
        reading = f"{over}: predict and segment read it region by region" + levels_text(smaller)
    else:
        reading = f"{over} and not a TIFF: refused"
    return "\n".join([f"{path}: {w} x {h} pixels (width x height); {about}", scale, reading])


def pillow_report(path: Path) -> tuple[int, int, str, str | None]:
    """The width, height and format of an image file Pillow reads (a HEIF photo through
    pillow-heif), its pixels (of the first frame) decoded when within the pixel limit, and
    what the commands do with its frames when it has several (None for a still photo, an MPO
    camera file's photo with its previews included)."""
    from PIL import Image, UnidentifiedImageError

    from pixelwise.data.io import ANIMATED_FORMATS, _open_unidentified, deep_png, max_pixels_limit

    try:
        img = Image.open(path)
    except UnidentifiedImageError:
        img = _open_unidentified(path, None)
    with img:
        (w, h), about = img.size, f"{img.format}, mode {img.mode}"
        if deep_png(img):
            about += ", 16 bits a sample"
        if profile := profile_name(img.info.get("icc_profile")):
            about += f", colour profile {profile}"
        count, frames = getattr(img, "n_frames", 1), None
        if img.format == "MPO" and count > 1:  # a camera's photo with its previews
            about += f", {count} pictures (the first, the photo, is read)"
        elif count > 1:
            about += f", {count} frames"
            frames = (
                "an animation: remove-bg cuts out each frame (the other commands refuse it)"
                if img.format in ANIMATED_FORMATS
                else "refused by every command (one image per file)"
            )
        if w * h <= max_pixels_limit():
            decoded(path, img.load)
    return w, h, about, frames


def profile_name(profile: bytes | None) -> str | None:
    """The description an ICC colour profile gives itself ("Display P3", "sRGB IEC61966-2.1"),
    with its colour space; "unnamed" when it cannot be read; None without one."""
    if not profile:
        return None
    from PIL import ImageCms

    from pixelwise.data.io import ICC_COLOUR_SPACE

    space = profile[ICC_COLOUR_SPACE].decode("ascii", "replace").strip()
    try:
        name = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(profile)))
    except (OSError, ImageCms.PyCMSError):
        name = "unnamed"
    name = name.strip() or "unnamed"
    return f"{name} ({space})" if space.isalpha() else name


def decoded(path: Path, decode) -> None:
    """Run ``decode`` (the reading of an image's pixels); ImageReadError naming ``path`` when
    they cannot be decoded (a file cut short, corrupt data), as reading it would say."""
    from pixelwise.data.io import undecodable

    try:
        decode()
    except (OSError, SyntaxError, ValueError) as exc:
        raise undecodable(path, exc) from None


def levels_text(sizes: list[str]) -> str:
    """What ``--scale`` under 1 reads of a slide that stores smaller levels of its image
    (``sizes``, :func:`~pixelwise.data.slide.pyramid_levels`), else nothing."""
    if not sizes:
        return ""
    listed = sizes[0] if len(sizes) == 1 else f"{', '.join(sizes[:-1])} and {sizes[-1]}"
    return f" (--scale under 1 reads the smallest of its levels, {listed}, that holds the scaled image)"


def model_report(model: str | Path) -> str:
    """``pixelwise info MODEL``: what a checkpoint, exported ``.onnx`` file or bundled model is
    and how it was made, from its metadata (no network is built): architecture and size, classes
    and the stored mask values they came from, how it normalises its input, the training run
    (epoch, validation scores, the command's options) and its int8 calibration."""
    from pixelwise.checkpoint import read_checkpoint
    from pixelwise.runtime import is_onnx_file

    if is_onnx_file(model):
        from pixelwise.export import read_metadata

        meta, parameters = read_metadata(Path(model)) | {"path": str(model)}, None
    else:
        meta = read_checkpoint(model)
        state = meta.get("state_dict") or {}
        parameters = sum(v.numel() for k, v in state.items() if not k.endswith(BUFFERS))
    kwargs = meta["arch_kwargs"]
    size = f", {parameters / 1e6:.2f} M parameters" if parameters is not None else ""
    shape = ", ".join(f"{k} {v}" for k, v in kwargs.items() if k not in ("num_classes",))
    lines = [
        f"{meta.get('path', model)}: {meta['arch']} ({meta.get('kind', 'semantic')}{size}; {shape})"
    ]
    lines.append("classes: " + ", ".join(class_lines(meta)))
    if (meta.get("mask_encoding") or {}).get("instances") == "boundary":
        lines.append("objects: " + thresholds_line(meta))
    lines.append("input: " + input_line(meta))
    train = meta.get("train_state")
    if train:
        lines += training_lines(train)
    elif not is_onnx_file(model):
        lines.append("training: no record in the checkpoint")
    lines.append("int8: " + int8_line(meta, is_onnx_file(model)))
    return "\n".join(lines)


BUFFERS = ("running_mean", "running_var", "num_batches_tracked")  # batch norm's statistics


def thresholds_line(meta: dict) -> str:
    """A boundary model's rule from probabilities to objects (``segment``), and where it came from."""
    from pixelwise.instances import OBJECT_PROB, SEED_PROB

    own = meta.get("instance_thresholds")
    where = "chosen on its validation images" if own else "the defaults"
    return f"{object_rule(*(own or (SEED_PROB, OBJECT_PROB)))} ({where})"


def object_rule(seed: float, whole: float) -> str:
    """The (seed, object) thresholds of a boundary model in words."""
    return f"seed where interior > {seed}, object where background < {1 - whole:.2g}"


def class_lines(meta: dict) -> list[str]:
    """Each class with the stored mask value (or colour) it was trained from."""
    from pixelwise.data.io import colour_name

    encoding = meta.get("mask_encoding") or {}
    values, instances = encoding.get("values"), encoding.get("instances")
    shown = []
    for k, name in enumerate(meta["class_names"]):
        if instances or values is None or meta.get("kind") == "instance":
            shown.append(f"{k} {name}")
            continue
        value = values[k]
        stored = colour_name(value) if max(values) > 255 else str(value)
        shown.append(f"{k} {name} (mask value {stored})")
    extra = []
    if instances:
        extra.append(f"from instance labels ({instances})")
    if encoding.get("ignore_values"):
        extra.append(f"ignored mask values {encoding['ignore_values']}")
    if encoding.get("soft") and values is not None:
        extra.append("masks with soft edges: each pixel the nearest value (--soft-masks)")
    return shown + extra


def input_line(meta: dict) -> str:
    """How the model takes its images: channels, normalisation, scale, box input."""
    norm, kwargs = meta["normalization"], meta["arch_kwargs"]
    channels = int(kwargs.get("in_channels", 3))
    parts = [f"{channels} channel{'s' if channels != 1 else ''}"]
    if meta.get("input_channel") is not None:
        parts[0] += f" (channel {meta['input_channel']} of multi-channel images: train --channel)"
    if meta.get("kind") == "instance":
        return parts[0] + "; 0..1 by bit depth, then torchvision's own normalisation"
    if norm.get("percentiles"):
        lo, hi = norm["percentiles"]
        parts.append(f"each image normalised by its own {lo:g} and {hi:g} percentiles")
    else:
        depth = {255.0: "8-bit", 65535.0: "16-bit", 1.0: "float"}.get(norm["scale"], "")
        parts.append(f"normalised by bit depth (trained on {depth or norm['scale']} images)")
    mean = ", ".join(f"{v:.3f}" for v in norm["mean"])
    std = ", ".join(f"{v:.3f}" for v in norm["std"])
    parts.append(f"mean {mean}, std {std}")
    scale = float(meta.get("input_scale", 1.0))
    if scale != 1.0:
        parts.append(f"images resized by {scale:g} (--scale)")
    if meta.get("box_input"):
        parts.append(f"a box model: the box's crop at {meta['box_input']} x {meta['box_input']}")
    if meta.get("pixel_size_um"):
        size = meta["pixel_size_um"]
        parts.append(f"learned at {size:g} µm a pixel (--scale auto resizes images to it)")
    return "; ".join(parts)


METRIC_NAMES = {
    "mean_iou": "mean IoU",
    "mean_dice": "mean Dice",
    "pixel_accuracy": "pixel accuracy",
    "mask_ap": "mask AP",  # Mask R-CNN's
    "mask_ap50": "mask AP@0.5",
    "mask_ap75": "mask AP@0.75",
    "box_ap": "box AP",
    "box_ap50": "box AP@0.5",
    "dsb_mean_ap": "DSB mean AP",
    "pq": "PQ",
}
SHOWN_STEMS = 3  # validation ids shown of a longer list


def training_lines(train: dict) -> list[str]:
    """The run: its best epoch and validation scores, and its options as a command."""
    from pixelwise.config import TrainConfig, as_typed, field_options

    cfg = train.get("config") or {}
    metrics = train.get("metrics") or {}
    scores = ", ".join(
        f"{METRIC_NAMES.get(k, k.replace('_', ' '))} {v:.4f}"
        for k, v in metrics.items()
        if isinstance(v, float) and k != "val_loss" and np.isfinite(v)
    )
    planned = f" of {cfg['epochs']}" if "epochs" in cfg else ""
    lines = [
        f"training: epoch {train.get('epoch', '?')}{planned}; validation {scores or 'not scored'}"
    ]
    if cfg:
        defaults = TrainConfig(data=cfg.get("data"), out=cfg.get("out"))
        options = []
        for name, _ in field_options(TrainConfig):
            if name in ("data", "out", "progress") or name not in cfg:
                continue
            value = cfg[name]
            if value == getattr(defaults, name):
                continue
            if name == "val_stems" and len(value) > SHOWN_STEMS:
                value = [*value[:SHOWN_STEMS], f"... ({len(value)} in all)"]
            options.append(as_typed(name, value))
        settings = "".join(f"{k}={v} " for k, v in (train.get("data_settings") or {}).items())
        lines.append(
            f"trained by: {settings}pixelwise train {cfg.get('data')} --out {cfg.get('out')}"
            + "".join(f" {o}" for o in options)
        )
    return lines


def int8_line(meta: dict, onnx: bool = False) -> str:
    """The int8 calibration a checkpoint (or an exported ``onnx`` file) carries, and its accuracy
    gate."""
    entry = meta.get("int8")
    gate = entry.get("gate") if isinstance(entry, dict) and "graph" in entry else entry
    if meta.get("kind") == "instance":
        return "not available for instance models (int8 runs exported semantic models)"
    if not gate and onnx:
        return "no, an fp32 graph (export --int8 DATA writes an int8 one)"
    if not gate:
        return "not calibrated (pixelwise calibrate MODEL DATA adds an int8 graph)"
    verdict = "passed" if gate.get("passed") else "FAILED"
    return f"calibrated, accuracy gate {verdict}: {gate_scores(gate)}"


def gate_scores(gate: dict) -> str:
    """What an int8 accuracy gate measured, as export --int8, calibrate and info print it."""
    return (
        f"mean IoU {gate['mean_iou_int8']:.4f} int8 vs {gate['mean_iou_fp32']:.4f} fp32 on "
        f"{counted(gate['images'], 'image')} (drop {gate['drop']:.4f}, at most {gate['max_drop']})"
    )
