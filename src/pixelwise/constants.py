"""Shared constants and choices, one statement each, importable without torch (the CLI builds its
options from them before anything heavy is loaded)."""

from __future__ import annotations

from pathlib import Path

IGNORE_INDEX = 255  # target value of pixels left out of losses and metrics
# labels of LabelMe shapes (labelme2voc's) and GeoJSON classes: pixels to ignore, background drawn
IGNORE_LABEL, BACKGROUND_LABEL = "__ignore__", "_background_"

# Folder names people give their images and their masks (Pascal VOC's among them), tried in order.
IMAGE_FOLDERS = ("images", "JPEGImages", "imgs", "img", "image")
MASK_FOLDERS = (
    "masks",
    "SegmentationClass",
    "labels",
    "annotations",
    "1st_manual",  # DRIVE's vessels (its mask/ is the field of view), HRF's manual1
    "manual1",
    "mask",
    "label",
    "gt",
    "ground_truth",
    "groundtruth",
)

# segment --positive: the grades of one threshold or three, and QuPath's colours for them
GRADES = {1: ("Negative", "Positive"), 3: ("Negative", "1+", "2+", "3+")}
GRADE_COLOURS = {
    "Negative": (112, 112, 225),
    "Positive": (200, 50, 50),
    "1+": (255, 215, 0),
    "2+": (225, 150, 50),
    "3+": (200, 50, 50),
}

PRECISIONS = ("auto", "bf16", "fp32")
RUNTIMES = ("auto", "torch", "onnx")
KINDS = ("semantic", "instance")  # a model predicts logits per pixel, or detections (Mask R-CNN)

AUTO_TILE_PIXELS = 2048 * 2048  # larger images are predicted tile by tile
AUTO_TILE, AUTO_OVERLAP = 1024, 64

LOSSES = ("ce", "weighted-ce", "dice", "ce+dice")
OPTIMIZERS = ("adam", "sgd")
CLASS_WEIGHTINGS = ("none", "median", "inverse")
FLIPS = ("all", "horizontal")
APPEARANCES = ("none", "photo", "microscopy")
INSTANCE_TARGETS = ("foreground", "boundary")
DECODERS = ("unpool", "transpose")
BACKENDS = ("torch", "scratch")
BACKBONES = ("resnet18", "resnet34", "resnet50")  # unet_resnet and mask_rcnn (torchvision ResNets)
# remove-bg --matting: a photo over this many megapixels is matted shrunk to it (a phone's
# photo, 12 megapixels, at full size: 2.3 GB peak; 48 megapixels at full size take 6.1 GB and
# 101 s on 2 cores, shrunk to 16 2.9 GB and 42 s; benchmarks/README.md); 0: every photo at full size
MATTING_MEGAPIXELS = 16.0
CUTOUT_METHODS = ("model", "graphcut", "grabcut")
# graph cut seeded by the network: on sources the network never saw it is far above the network
# alone and level with GrabCut on average (docs/results.md (i))
DEFAULT_CUTOUT = "graphcut"
# remove-bg's file formats (--format, the API's format) and their media types; -o's suffixes
CUTOUT_TYPES = {"png": "image/png", "webp": "image/webp", "jpg": "image/jpeg", "tif": "image/tiff"}
CUTOUT_FORMATS = {
    ".png": "png",
    ".webp": "webp",
    ".jpg": "jpg",
    ".jpeg": "jpg",
    ".tif": "tif",
    ".tiff": "tif",
}


def parse_stems(text: str | list[str] | None) -> list[str] | None:
    """``"25,26,27"`` or ``"25-29"`` (numeric range, zero padding kept) into a list of stems; a
    list is returned as it is."""
    if not text:
        return None
    if isinstance(text, list):
        return text
    stems: list[str] = []
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        if sep and lo.isdigit() and hi.isdigit():
            stems.extend(str(i).zfill(len(lo)) for i in range(int(lo), int(hi) + 1))
        elif part:
            stems.append(part)
    return stems


def parse_range(text: str | tuple | None) -> tuple[float, float] | None:
    """``--input-range``'s ``"LO,HI"`` (raw values, LO < HI) as a pair; a pair as it is."""
    if text is None or isinstance(text, tuple):
        return text
    parts = text.split(",")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        lo = hi = float("nan")
    if not lo < hi:  # also NaN: not two numbers
        raise ValueError(
            f"--input-range takes two numbers LO,HI with LO < HI (e.g. 0,4095), got {text!r}"
        )
    return lo, hi


def crop_margin(margin: int | str) -> tuple[float, bool]:
    """A crop margin (``30``, ``"30"``, ``"30px"``, ``"10%"``) as (number, whether a
    percentage); ValueError for anything else or below 0."""
    text = str(margin).strip().lower()
    relative = text.endswith("%")
    number = text.rstrip("%").removesuffix("px").strip()
    try:
        value = float(number)
    except ValueError:
        value = float("nan")
    if not value >= 0:  # also NaN
        raise ValueError(
            f"crop margin must be pixels (30, 30px) or a percentage of the subject's size (10%), "
            f"at least 0; got {margin!r}"
        )
    return value, relative


def crop_setting(crop: bool, margin: str | None) -> str | None:
    """``--crop`` / ``--crop-margin`` (the HTTP API's crop / crop_margin) as the margin to crop
    with: the margin given (it implies crop), "0" for crop alone, None for no crop."""
    return margin if margin is not None else ("0" if crop else None)


MIN_ADAPT_PHOTOS = 10  # adapt holds a tenth out to watch the fit: at least one photo


class Note(UserWarning):
    """A warning the command line prints as one line, "pixelwise: note: ...", rather than as
    Python shows warnings (the file and line that raised it)."""


def first_ten(items: list[str], what: str) -> str:
    """``items`` joined by commas, the first ten and how many there are when more."""
    return ", ".join(items[:10]) + (f", ... ({len(items)} {what})" if len(items) > 10 else "")


def did_you_mean(word: str, known: list[str]) -> str:
    """ " (did you mean X?)" for the closest of ``known`` to a mistyped ``word``, else ""."""
    import difflib

    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def one_line(exc: BaseException) -> str:
    """The error as one line; the operating system's as 'FILE: problem' ('out: Permission denied')."""
    if isinstance(exc, (FileExistsError, NotADirectoryError)) and exc.filename is not None:
        path = Path(exc.filename)
        blocking = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
        if blocking is not None:  # mkdir of OUT/masks where OUT is a file
            return f"{blocking}: a file is in the way of a folder of that name"
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return (str(exc).strip().splitlines() or [""])[0]  # torch's messages can run to many lines


_SAID: set = set()


def first_time(key) -> bool:
    """True the first time ``key`` is given in this process: a warning said once, though the
    file it is about is read again (a dataset is read for its classes, then for its items)."""
    if key in _SAID:
        return False
    _SAID.add(key)
    return True


def unusable(failures: list[str], what: str) -> ValueError:
    """One error for every file (or pair) that cannot be used (``failures``: a line each),
    rather than one run for each. Files that fail alike ("FILE: the same problem") are named
    together, the problem said once."""
    problems: dict[str, list[str]] = {}  # a problem (or a line without one): its files
    for line in failures:
        name, said, problem = line.partition(": ")
        problems.setdefault(problem if said else line, []).append(name if said else "")
    lines = [
        f"{first_ten(names, what + 's')}: {problem}" if names[0] else problem
        for problem, names in problems.items()
    ]
    shown = "; ".join(lines[:5]) + (f"; ... ({len(failures)} in all)" if len(lines) > 5 else "")
    return ValueError(f"{counted(len(failures), what)} cannot be used: {shown}")


def each_readable(items, read, what: str):
    """``(index, item, read(index, item))`` for each of ``items`` that reads. Those that do not
    (a ValueError) are named together at the end, in one ValueError (:func:`unusable`, each a
    ``what``); after the first, the rest are only read, to name them all, and no longer yielded:
    work on them would cover only part of the data."""
    failures: list[str] = []
    for index, item in enumerate(items):
        try:
            value = read(index, item)
        except ValueError as exc:
            failures.append(one_line(exc))
            continue
        if not failures:
            yield index, item, value
    if failures:
        raise unusable(failures, what)


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1: "1 image", "3 images"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def option_text(value) -> str:
    """An option's value as typed on the command line: a list comma-separated, floats short
    (``0.35,1``), None as "not given"."""
    if value is None:
        return "not given"
    values = value if isinstance(value, list | tuple) else [value]
    return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def run_best(path: str | Path) -> Path | None:
    """The ``best.pt`` of a training run's folder (what ``pixelwise train --out`` wrote), which
    stands for its model wherever one is taken; None for anything else."""
    best = Path(path) / "best.pt"
    return best if Path(path).is_dir() and best.is_file() else None
