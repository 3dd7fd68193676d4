"""LabelMe annotations (also AnyLabeling's and X-AnyLabeling's): one JSON file per image,
beside it or in a folder of its own::

    a.jpg  a.json     {"imagePath": "a.jpg", "imageHeight": 480, "imageWidth": 640,
                       "shapes": [{"label": "cat", "points": [[x, y], ...], "shape_type":
                                   "polygon", "group_id": null}, ...]}

Shapes with an area are objects: polygons, rectangles (two corners), circles (centre and a
point on the rim) and masks (a PNG of the region between two corners, base64). Points and
lines have none and are left out, with a warning. Shapes of one label sharing a ``group_id``
are one object. Classes: ``labels.txt`` when the dataset has one (labelme2voc's: a name per
line, ``__ignore__`` and ``_background_`` aside), else every label found, sorted, after the
background. A shape labelled ``__ignore__`` marks pixels to ignore, ``_background_`` is
background. The objects are read as COCO annotations (category id = the class's index among
the names), so class masks, Mask R-CNN and COCO evaluation take them as a COCO file.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from pixelwise.data.coco import Categories, InstanceItem
from pixelwise.data.io import IMAGE_SUFFIXES

IGNORE_LABEL, BACKGROUND_LABEL = "__ignore__", "_background_"
AREA_SHAPES = ("polygon", "rectangle", "circle", "mask")
CIRCLE_POINTS = 64


PEEK_BYTES = 1 << 20  # LabelMe writes "shapes" before the image data it may embed


def read_annotation(path: Path) -> dict | None:
    """A LabelMe file's content, or None when ``path`` is another kind of JSON (judged from its
    first megabyte, so that a large COCO file is not parsed for nothing)."""
    try:
        with open(path, "rb") as f:
            if b'"shapes"' not in f.read(PEEK_BYTES):
                return None
        spec = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return spec if isinstance(spec, dict) and isinstance(spec.get("shapes"), list) else None


def annotation_files(folder: Path) -> dict[Path, dict]:
    """The LabelMe files directly in ``folder``, with their content."""
    if not folder.is_dir():
        return {}
    found = {path: read_annotation(path) for path in sorted(folder.glob("*.json"))}
    return {path: spec for path, spec in found.items() if spec is not None}


def class_names(root: Path, specs: list[dict]) -> list[str]:
    """The classes (background aside): ``labels.txt`` in ``root`` (or its parent), else the
    labels of ``specs``, sorted."""
    for where in (root, root.parent):
        if (where / "labels.txt").is_file():
            names = [line.strip() for line in (where / "labels.txt").read_text().splitlines()]
            return [n for n in names if n and n not in (IGNORE_LABEL, BACKGROUND_LABEL)]
    labels = {str(s.get("label")) for spec in specs for s in spec["shapes"]}
    return sorted(labels - {IGNORE_LABEL, BACKGROUND_LABEL})


def image_of(path: Path, spec: dict, image_folders: tuple[str, ...]) -> Path:
    """The image a LabelMe file annotates: its ``imagePath`` from the file's folder, else a file
    of that name (or of the annotation's stem) there or in an ``image_folders`` folder beside
    the file's folder."""
    given = str(spec.get("imagePath") or "").replace("\\", "/")
    if given and (path.parent / given).is_file():
        return path.parent / given
    folders = [path.parent, *(path.parent.parent / name for name in image_folders)]
    names = [Path(given).name] if given else []
    names += [path.stem + suffix for suffix in IMAGE_SUFFIXES]
    for folder in folders:
        for name in names:
            if (folder / name).is_file():
                return folder / name
    raise ValueError(f"{path}: its image {given or path.stem!r} was not found beside it")


def outline(shape: dict, where: str) -> list[float] | dict | None:
    """A shape's area as a COCO segmentation part: a polygon (flat x y list) or, for a mask, an
    (H, W)-less placeholder {"mask": array, "at": (x, y)} filled in by :func:`as_annotation`."""
    kind = shape.get("shape_type") or "polygon"
    try:
        points = np.asarray(shape.get("points") or [], float).reshape(-1, 2)
    except ValueError:
        raise ValueError(f"{where}: points must be [x, y] pairs") from None
    if kind == "polygon":
        return points.ravel().tolist() if len(points) >= 3 else None
    if kind == "rectangle" and len(points) == 2:
        (x0, y0), (x1, y1) = points.min(0), points.max(0)
        return [x0, y0, x1, y0, x1, y1, x0, y1]
    if kind == "circle" and len(points) == 2:
        (cx, cy), rim = points
        r = float(np.hypot(*(rim - points[0])))
        angles = [2 * math.pi * k / CIRCLE_POINTS for k in range(CIRCLE_POINTS)]
        return [v for a in angles for v in (cx + r * math.cos(a), cy + r * math.sin(a))]
    if kind == "mask" and shape.get("mask"):
        return {"mask": decode_mask(shape["mask"], where), "at": points.min(0).astype(int)}
    return None


def decode_mask(data: str, where: str) -> np.ndarray:
    import base64
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            return np.asarray(image.convert("L")) > 0
    except (ValueError, OSError) as exc:
        raise ValueError(f"{where}: cannot decode its mask ({exc})") from None


def as_annotation(parts: list, height: int, width: int) -> dict:
    """One object's ``segmentation`` and ``bbox`` from its parts: polygons as they are; with a
    mask part, the union of all parts as compressed RLE."""
    from pycocotools import mask as mask_utils

    if all(isinstance(p, list) for p in parts):
        xs = [v for p in parts for v in p[0::2]]
        ys = [v for p in parts for v in p[1::2]]
        box = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
        return {"segmentation": parts, "bbox": box}
    from pixelwise.data.coco import annotation_mask, encode_rle

    canvas = np.zeros((height, width), bool)
    for part in parts:
        if isinstance(part, list):
            canvas |= annotation_mask({"segmentation": [part]}, height, width) > 0
            continue
        (x, y), mask = part["at"], part["mask"]
        h, w = min(mask.shape[0], height - y), min(mask.shape[1], width - x)
        canvas[y : y + h, x : x + w] |= mask[:h, :w]
    rle = encode_rle(canvas)
    box = mask_utils.toBbox({"size": rle["size"], "counts": rle["counts"].encode()})
    return {"segmentation": rle, "bbox": [float(v) for v in box]}


def objects_of(path: Path, spec: dict, names: list[str], height: int, width: int) -> tuple:
    """A LabelMe file's objects as COCO annotations (without ids) and how many shapes had no
    area."""
    groups, skipped = {}, 0
    for k, shape in enumerate(spec["shapes"]):
        label = str(shape.get("label"))
        if label == BACKGROUND_LABEL:
            continue
        if label != IGNORE_LABEL and label not in names:
            raise ValueError(f"{path}: label {label!r} is not among the classes in labels.txt")
        part = outline(shape, f"{path}, shape {k + 1}")
        if part is None:
            skipped += 1
            continue
        group = shape.get("group_id")
        groups.setdefault((label, k if group is None else group), []).append(part)
    anns = []
    for (label, _), parts in groups.items():
        crowd = label == IGNORE_LABEL
        category = 0 if crowd else names.index(label)
        drawn = as_annotation(parts, height, width)
        anns.append({"category_id": category, "iscrowd": int(crowd)} | drawn)
    return anns, skipped


def load_labelme(
    files: dict[Path, dict], names: list[str], image_folders: tuple[str, ...] = ("images",)
) -> tuple[list[InstanceItem], Categories, dict]:
    """Instance items of LabelMe files, their categories (ids = indices in ``names``) and the
    same as a parsed COCO instances file; images are looked for as :func:`image_of` says."""
    from pixelwise.data.coco import oriented_size

    items, images, annotations, skipped = [], [], [], 0
    for path, spec in files.items():
        image = image_of(path, spec, image_folders)
        height, width = oriented_size(image)
        drawn_on = (spec.get("imageHeight"), spec.get("imageWidth"))
        if None not in drawn_on and drawn_on != (height, width):
            raise ValueError(
                f"{path}: drawn on an image of {drawn_on[1]} x {drawn_on[0]} pixels, but "
                f"{image.name} is {width} x {height} (resized since?)"
            )
        found, missed = objects_of(path, spec, names, height, width)
        skipped += missed
        image_id = len(images) + 1
        anns = [
            ann | {"id": len(annotations) + i + 1, "image_id": image_id}
            for i, ann in enumerate(found)
        ]
        annotations += anns
        images.append({"id": image_id, "file_name": str(image), "height": height, "width": width})
        items.append(
            InstanceItem(image, image.stem, image_id, height, width, tuple(anns), source=path)
        )
    if skipped:
        print(f"pixelwise: {skipped} LabelMe shape(s) without an area (points, lines) left out",
              file=sys.stderr)  # fmt: skip
    categories = [{"id": i, "name": name} for i, name in enumerate(names)]
    coco = {"images": images, "annotations": annotations, "categories": categories}
    return items, Categories(tuple(range(len(names))), tuple(names)), coco
