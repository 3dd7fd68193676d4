"""Kaggle's run-length CSVs as COCO instances: the format of most Kaggle segmentation
competitions (Data Science Bowl 2018, Airbus ships, Carvana, Severstal, SIIM, Sartorius).

A row is one object (or one class's region) of one image: an image id column (``ImageId``,
``img``, ``id``, ...), a run-length column (``EncodedPixels``, ``rle_mask``, ``annotation``,
...) of "start length start length ..." pairs, starts counted from 1, and optionally a class
column (``ClassId``; Severstal's older ``ImageId_ClassId`` too). An empty run-length is an
image with no object (Airbus). Pixels are numbered top to bottom, then left to right (the
competitions' usual order, ``columns``) or left to right, then top to bottom (``rows``, as
Sartorius and HuBMAP number them).

:func:`rle_csv_to_coco` writes the COCO instances file that ``pixelwise train``, ``inspect``
and ``evaluate`` read (category k is class k; Mask R-CNN or ``--instances`` for the objects),
and that CVAT or FiftyOne open.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from pixelwise.data.io import image_files
from pixelwise.data.write import atomic_write_bytes

ID_COLUMNS = ("ImageId", "ImageID", "image_id", "img", "id", "image", "file_name", "filename")
RLE_COLUMNS = ("EncodedPixels", "rle_mask", "rle", "mask_rle", "annotation", "encoding")
CLASS_COLUMNS = ("ClassId", "class_id", "class", "category", "category_id", "label")
JOINED = "ImageId_ClassId"  # Severstal 2019's first release: "0002cc93b.jpg_1"
ORDERS = ("columns", "rows")


def is_rle_csv(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a CSV whose header names an image id and a run-length column."""
    try:
        columns = header(Path(path))
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return rle_columns(columns) is not None


def header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        return [c.strip() for c in next(csv.reader(f), [])]


def rle_columns(columns: list[str]) -> tuple[str, str, str | None] | None:
    """The (image id, run-length, class or None) column names of a Kaggle CSV header."""
    found = {c.lower(): c for c in columns}

    def pick(names):
        return next((found[n.lower()] for n in names if n.lower() in found), None)

    image, rle = pick((*ID_COLUMNS, JOINED)), pick(RLE_COLUMNS)
    if image is None or rle is None:
        return None
    return image, rle, None if image == JOINED else pick(CLASS_COLUMNS)


def runs(text: str, height: int, width: int, where: str) -> np.ndarray:
    """The (N, 2) 0-based (start, length) runs of a run-length, checked against the image."""
    try:
        numbers = np.array(text.split(), np.int64)
    except ValueError:
        raise ValueError(f"{where}: run-length holds something other than numbers") from None
    if numbers.size % 2:
        raise ValueError(f"{where}: run-length has an odd count of numbers ({numbers.size})")
    pairs = numbers.reshape(-1, 2) - [1, 0]
    starts, lengths = pairs[:, 0], pairs[:, 1]
    if (starts < 0).any() or (lengths < 1).any() or (starts + lengths > height * width).any():
        raise ValueError(
            f"{where}: a run lies outside the {width} x {height} image (starts count from 1; "
            "lengths at least 1)"
        )
    return pairs


def column_counts(pairs: np.ndarray, height: int, width: int, order: str) -> list[int]:
    """COCO's uncompressed RLE counts (runs of 0s and 1s, column by column, 0s first)."""
    from pixelwise.data.coco import crop_rle_counts, run_counts

    if order == "rows":  # numbered along rows: drawn, then counted along columns as COCO does
        flat = np.zeros(height * width, np.int8)
        for start, length in pairs:
            flat[start : start + length] = 1
        return crop_rle_counts(flat.reshape(height, width), 0, 0, height, width)
    pairs = pairs[np.argsort(pairs[:, 0], kind="stable")]
    starts, ends = pairs[:, 0], pairs[:, 0] + pairs[:, 1]
    if (starts[1:] < ends[:-1]).any():
        raise ValueError("runs overlap")
    return run_counts(starts, ends, height * width)


def files_by_id(folder: Path) -> dict[str, Path]:
    """Every image under ``folder`` (:func:`~pixelwise.data.io.image_files`) by file name and by
    stem (Kaggle ids name either)."""
    found: dict[str, Path] = {}
    for path in image_files(folder):
        found.setdefault(path.name, path)
        found.setdefault(path.stem, path)
    return found


def read_rows(path: Path) -> list[tuple[str, str, str | None, int]]:
    """(image id, run-length, class or None, line number) of each row."""
    columns = rle_columns(header(path))
    if columns is None:
        raise ValueError(
            f"{path}: not a run-length CSV: its header needs an image id column "
            f"({', '.join(ID_COLUMNS[:4])}, ...) and a run-length column "
            f"({', '.join(RLE_COLUMNS[:3])}, ...)"
        )
    image, rle, klass = columns
    rows = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            name = (row.get(image) or "").strip()
            label = (row.get(klass) or "").strip() if klass else None
            if image == JOINED:
                name, _, label = name.rpartition("_")
            rows.append((name, (row.get(rle) or "").strip(), label, line))
    return rows


def rle_csv_to_coco(
    path: str | os.PathLike,
    images: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    order: str = "columns",
    names: list[str] | None = None,
) -> tuple[Path, dict]:
    """Convert the Kaggle CSV ``path`` into a COCO instances file ``out`` (default: beside it,
    ``.json``); images are found by id under ``images`` (default: the CSV's folder, searched
    recursively). Returns the file and counts: images, objects, and the ids without an image
    file (left out, as COCO readers would fail on them)."""
    path = Path(path)
    if order not in ORDERS:
        raise ValueError(f"--order {order}: one of {', '.join(ORDERS)}")
    out = Path(out) if out else path.with_suffix(".json")
    rows = read_rows(path)
    folder = Path(images) if images else path.parent
    labels = sorted({label for _, _, label, _ in rows if label not in (None, "")}, key=_number)
    if names is not None and len(names) != max(len(labels), 1):
        raise ValueError(
            f"--classes names {len(names)} classes; {path} holds {max(len(labels), 1)}"
        )
    root = out.parent / "images" if (out.parent / "images").is_dir() else out.parent
    spec = coco_spec(path, rows, files_by_id(folder), root.resolve(), order, labels)
    if not spec["images"]:
        raise ValueError(
            f"{path}: none of its {len({r[0] for r in rows})} image ids names an image under "
            f"{folder} (such as {rows[0][0] if rows else '?'}); give the images' folder with --images"
        )
    default = [f"class{label}" for label in labels] or ["object"]
    spec["categories"] = [{"id": k + 1, "name": n} for k, n in enumerate(names or default)]
    missing = spec.pop("missing")
    atomic_write_bytes(out, json.dumps(spec).encode())
    return out, {
        "images": len(spec["images"]),
        "objects": len(spec["annotations"]),
        "missing": missing,
    }


def coco_spec(path: Path, rows: list, files: dict, root: Path, order: str, labels: list) -> dict:
    """The COCO images and annotations of ``rows`` (file names relative to ``root``, where COCO
    readers look for them), and the ids of ``missing`` images."""
    from pixelwise.data.coco import stored_size

    category = {label: k + 1 for k, label in enumerate(labels)}  # none without a class column
    spec: dict = {"images": [], "annotations": [], "missing": []}
    ids: dict[str, tuple[int, int, int]] = {}
    for name, rle, label, line in rows:
        if name not in files:
            spec["missing"] += [name] if name not in spec["missing"] else []
            continue
        if name not in ids:
            height, width = stored_size(files[name])
            ids[name] = (len(ids) + 1, height, width)
            file_name = os.path.relpath(files[name].resolve(), root)
            spec["images"].append(
                {"id": len(ids), "file_name": file_name, "height": height, "width": width}
            )
        image_id, height, width = ids[name]
        if rle:  # else an image with no object
            where = f"{path}, line {line}"
            try:
                counts = column_counts(runs(rle, height, width, where), height, width, order)
            except ValueError as exc:
                raise ValueError(str(exc) if where in str(exc) else f"{where}: {exc}") from None
            annotation = rle_annotation(counts, height, width)
            number = len(spec["annotations"]) + 1
            annotation |= {
                "id": number,
                "image_id": image_id,
                "category_id": category.get(label, 1),
            }
            spec["annotations"].append(annotation)
    return spec


def rle_annotation(counts: list[int], height: int, width: int) -> dict:
    """A COCO annotation's outline (compressed RLE), area and box from uncompressed counts."""
    from pycocotools import mask as mask_utils

    encoded = mask_utils.frPyObjects({"counts": counts, "size": [height, width]}, height, width)
    return {
        "segmentation": {"size": [height, width], "counts": encoded["counts"].decode()},
        "area": int(mask_utils.area(encoded)),
        "bbox": [round(float(v), 2) for v in mask_utils.toBbox(encoded)],
        "iscrowd": 0,
    }


IMAGE_IDS = ("stem", "name")


def coco_to_rle_csv(
    path: str | os.PathLike,
    out: str | os.PathLike | None = None,
    order: str = "columns",
    image_ids: str = "stem",
) -> tuple[Path, dict]:
    """Write the COCO instances file ``path`` (such as ``segment --coco`` writes) as a Kaggle
    run-length CSV ``out`` (default: beside it, ``.csv``), a submission's format: a row
    ``ImageId,EncodedPixels`` per object, starts from 1, pixels numbered by ``order``; an
    image with no object gets one row with an empty run-length; a ``ClassId`` column (the
    category id) when the file has more than one category. ``image_ids``: each image's file
    name without its suffix (``stem``, as Data Science Bowl 2018 and Sartorius name images) or
    with it (``name``: Airbus, Severstal). Objects are written as they are (``segment``'s do not
    overlap). Returns the file and counts: images, objects."""
    from pixelwise.data.coco import annotation_mask, coco_parts, not_coco

    path = Path(path)
    if order not in ORDERS or image_ids not in IMAGE_IDS:
        raise ValueError(f"order {order!r}, image ids {image_ids!r}: {ORDERS} and {IMAGE_IDS}")
    out = Path(out) if out else path.with_suffix(".csv")
    _, images, by_image, categories = coco_parts(path)
    try:
        sizes = {image["id"]: (image["height"], image["width"]) for image in images}
    except (KeyError, TypeError) as exc:
        raise not_coco(path, exc) from None
    classes = len(categories) > 1
    rows = [["ImageId", "EncodedPixels", *(["ClassId"] if classes else [])]]
    written = 0
    for image in sorted(images, key=lambda image: image["id"]):
        name = Path(str(image["file_name"]).replace("\\", "/"))
        image_id = name.stem if image_ids == "stem" else name.name
        before = len(rows)
        for ann in by_image.get(image["id"], []):
            text = run_length(annotation_mask(ann, *sizes[image["id"]]), order)
            if text:  # an object given by its box alone has no pixels to write
                rows.append([image_id, text, *([ann["category_id"]] if classes else [])])
        written += len(rows) - before
        if len(rows) == before:
            rows.append([image_id, "", *([""] if classes else [])])
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    atomic_write_bytes(out, buffer.getvalue().encode())
    return out, {"images": len(images), "objects": written}


def run_length(mask: np.ndarray, order: str = "columns") -> str:
    """A mask's Kaggle run-length: "start length ..." pairs, starts from 1, pixels numbered
    down the columns (``columns``) or along the rows (``rows``); "" for an empty mask."""
    from pixelwise.data.coco import crop_rle_counts

    mask = np.asarray(mask, bool)
    if order == "rows":  # along the rows: down the columns of the transpose
        mask = mask.T
    edges = np.cumsum(crop_rle_counts(mask, 0, 0, *mask.shape))  # COCO's runs, zeros first
    starts, ends = edges[0::2][: len(edges) // 2], edges[1::2]
    return " ".join(f"{a + 1} {b - a}" for a, b in zip(starts.tolist(), ends.tolist()))


def _number(label: str):
    """Class labels in numeric order when they are numbers ("2" before "10")."""
    return (0, int(label), "") if label.strip().isdigit() else (1, 0, label)
