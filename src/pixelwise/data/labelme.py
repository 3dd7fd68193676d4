"""LabelMe annotations (also AnyLabeling's and X-AnyLabeling's): one JSON file per image,
beside it or in a folder of its own::

    a.jpg  a.json     {"imagePath": "a.jpg", "imageHeight": 480, "imageWidth": 640,
                       "shapes": [{"label": "cat", "points": [[x, y], ...], "shape_type":
                                   "polygon", "group_id": null}, ...]}

Shapes with an area are objects: polygons, rectangles (two corners), circles (centre and a
point on the rim) and masks (a PNG of the region between two corners, base64), drawn as
LabelMe draws them (PIL, outline included; COCO's polygons leave the pixels of the right and
lower edges out). Points and lines have no area and are left out, with a warning. Shapes of
one label sharing a ``group_id`` are one object. Classes: ``labels.txt`` when the dataset has
one (labelme2voc's: a name per line, ``__ignore__`` and ``_background_`` aside), else every
label found, sorted, after the background. A shape labelled ``__ignore__`` marks pixels to
ignore; one labelled ``_background_`` is background drawn over the shapes before it, as
labelme2voc draws it: the holes of the regions :func:`shapes_of` writes. The objects are read
as COCO annotations (category id = the class's place among the names, from 1) that carry
their ``shapes`` (:func:`pixelwise.data.shapes.draw_shapes` draws them), so class masks, Mask
R-CNN and COCO evaluation take them as a COCO file.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

from pixelwise.constants import (
    BACKGROUND_LABEL,
    IGNORE_LABEL,
    MASK_FOLDERS,
    first_time,
    one_line,
    unusable,
)
from pixelwise.data.coco import Categories, InstanceItem, as_coco, oriented_size
from pixelwise.data.io import IMAGE_SUFFIXES, drawn_as_stored
from pixelwise.data.shapes import extent
from pixelwise.data.slide import is_streamed, slide_size

# how far a slide's windows reach beyond what is drawn (pixels; PIXELWISE_WINDOW_MARGIN):
# context the network sees there, neither trained on nor scored. 0: on sparsely drawn nuclei 32
# was ahead on average over five seeds, on held-out images of the slide's lab and of another,
# but not in every seed (docs/results.md (ae))
WINDOW_MARGIN = 0
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
    the file's folder, or for a file in an annotation folder (``annotations/``, ``geojson/``,
    ...) in the folder that holds it."""
    given = str(spec.get("imagePath") or "").replace("\\", "/")
    if given and (path.parent / given).is_file():
        return path.parent / given
    folders = [path.parent, *(path.parent.parent / name for name in image_folders)]
    if path.parent.name in (*MASK_FOLDERS, "geojson"):
        folders.append(path.parent.parent)
    names = [Path(given).name] if given else []
    names += [path.stem + suffix for suffix in IMAGE_SUFFIXES] + [path.stem]  # a.png.geojson
    for folder in folders:
        for name in names:
            if (folder / name).is_file():
                return folder / name
    raise ValueError(f"{path}: its image {given or path.stem!r} was not found beside it")


def outline(shape: dict, where: str) -> tuple | None:
    """A shape with an area as (kind, data): its points for polygons (3 or more), rectangles
    and circles (2), ``(x, y, bitmap)`` for a mask; None for a shape without an area."""
    kind = shape.get("shape_type") or "polygon"
    try:
        points = np.asarray(shape.get("points") or [], float).reshape(-1, 2)
    except ValueError:
        raise ValueError(f"{where}: points must be [x, y] pairs") from None
    if kind == "polygon":
        return (kind, points) if len(points) >= 3 else None
    if kind in ("rectangle", "circle"):
        return (kind, points) if len(points) == 2 else None
    if kind == "area":  # GeoJSON's polygons (pixelwise.data.geojson.read_geojson)
        return (kind, shape["rings"]) if shape.get("rings") else None
    if kind == "mask" and shape.get("mask") and len(points):
        x, y = points.min(0).astype(int)
        return kind, (int(x), int(y), decode_mask(shape["mask"], where))
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


def objects_of(path: Path, spec: dict, names: list[str]) -> tuple[list[dict], int]:
    """A LabelMe file's objects as COCO annotations (without ids) and how many shapes had no
    area."""
    groups, skipped = {}, 0
    for k, shape in enumerate(spec["shapes"]):
        label = str(shape.get("label"))
        if label != IGNORE_LABEL and label != BACKGROUND_LABEL and label not in names:
            raise ValueError(f"{path}: label {label!r} is not among the classes in labels.txt")
        part = outline(shape, f"{path}, shape {k + 1}")
        if part is None:
            skipped += label != BACKGROUND_LABEL
            continue
        if label == BACKGROUND_LABEL:  # drawn over what came before it: holes
            for parts in groups.values():
                parts.append(("erase", part))
            continue
        group = shape.get("group_id")
        key = ("shape", k) if group is None else ("group", group)
        groups.setdefault((label, key), []).append(part)
    anns = []
    for (label, _), shapes in groups.items():
        corners = np.array([extent(*shape) for shape in shapes if shape[0] != "erase"])
        x0, y0, x1, y1 = (*corners[:, :2].min(0), *corners[:, 2:].max(0))
        drawn = {"shapes": tuple(shapes), "bbox": [x0, y0, x1 - x0, y1 - y0]}
        if label != IGNORE_LABEL:
            anns.append({"category_id": names.index(label) + 1, "iscrowd": 0} | drawn)
        else:  # ignored whatever the class: a crowd region of each (as COCO ignores per class)
            anns += [{"category_id": k + 1, "iscrowd": 1} | drawn for k in range(len(names))]
    return anns, skipped


def load_labelme(
    files: dict[Path, dict], names: list[str], image_folders: tuple[str, ...] = ("images",)
) -> tuple[list[InstanceItem], Categories, dict]:
    """Instance items of LabelMe files (or GeoJSON files read as theirs), their categories
    (ids = indices in ``names``) and the same as a parsed COCO instances file; images are
    looked for as :func:`image_of` says."""
    items, images, annotations, skipped, failures = [], [], [], 0, []
    geojson = all(path.suffix.lower() == ".geojson" for path in files)
    kind = "GeoJSON feature" if geojson else "LabelMe shape"
    for path, spec in files.items():
        try:
            image, parts, missed = image_parts(path, spec, names, image_folders)
        except ValueError as exc:  # every bad file named at the end
            failures.append(one_line(exc))
            continue
        skipped += missed
        for window, height, width, objects, at in parts:
            image_id = len(images) + 1
            anns = [
                ann | {"id": len(annotations) + i + 1, "image_id": image_id}
                for i, ann in enumerate(objects)
            ]
            annotations += anns
            name = image.stem if at is None else f"{image.stem}@x{at[0]}y{at[1]}"
            images.append(
                {"id": image_id, "file_name": str(image), "height": height, "width": width}
            )
            items.append(
                InstanceItem(
                    image, name, image_id, height, width, tuple(anns), source=path, window=window
                )
            )
    if failures:
        raise unusable(failures, "annotation file")
    if skipped and not annotations:
        raise ValueError(
            f"{next(iter(files)).parent}: no {kind} has an area ({skipped} points or lines); "
            "segmentation needs polygons, rectangles, circles or masks"
        )
    said = f"pixelwise: {skipped} {kind}(s) without an area (points, lines) left out"
    if skipped and first_time((said, *files)):
        print(said, file=sys.stderr)
    coco, categories = as_coco(images, annotations, names)
    return items, categories, coco


def image_parts(path: Path, spec: dict, names: list[str], image_folders: tuple[str, ...]):
    """The image of a LabelMe (or GeoJSON) file, the parts of it that are items, each (window
    or None, height, width, objects, place or None), and how many shapes had no area: the whole
    image, or for a slide (a TIFF over the pixel limit) the windows of :func:`slide_windows`,
    named on the slide by the top left corner of what is drawn in them (their place), which
    regions drawn as the background mark too."""
    image = image_of(path, spec, image_folders)
    slide = is_streamed(image)
    height, width = slide_size(image) if slide else oriented_size(image)
    drawn_on = (spec.get("imageHeight"), spec.get("imageWidth"))
    if None not in drawn_on and drawn_as_stored(image, drawn_on, (height, width)):
        height, width = drawn_on  # on the photo's pixels as stored (read so: annotated_image)
    elif None not in drawn_on and drawn_on != (height, width):
        raise ValueError(
            f"{path}: drawn on an image of {drawn_on[1]} x {drawn_on[0]} pixels, but "
            f"{image.name} is {width} x {height} (resized since?)"
        )
    found, missed = objects_of(path, spec, names)
    if not slide:
        return image, [(None, height, width, found, None)], missed
    marked = [outline(x, str(path)) for x in spec["shapes"] if x.get("label") == BACKGROUND_LABEL]
    areas = [extent(*part) for part in marked if part is not None]
    parts = slide_windows(found, height, width, areas, classes=len(names))
    if not parts:
        print(f"pixelwise: {path}: nothing drawn on {image.name} (a slide): no window of it read",
              file=sys.stderr)  # fmt: skip
    return image, [(w, w[1] - w[0], w[3] - w[2], objects, at) for w, at, objects in parts], missed


def slide_windows(
    anns: list[dict], height: int, width: int, areas: list[tuple] = (), classes: int = 1,
    margin: int | None = None,
) -> list[tuple[tuple, tuple, list[dict]]]:  # fmt: skip
    """The objects drawn on a slide (a TIFF over the pixel limit, read region by region) as
    windows of it: the boxes of the objects and of ``areas`` ((x0, y0, x1, y1) each: regions
    drawn as the background) merged where they overlap (:func:`~pixelwise.data.slide.windows`),
    each grown by ``margin`` pixels on every side (else :func:`window_margin`) within the
    slide: each window (y0, y1, x0, x1) with the place (x, y) of its box's top left corner and
    its objects, the ignored regions reaching into it and its margin (:func:`context`: windows
    may overlap there, and nothing is scored twice), moved into its coordinates."""
    from pixelwise.data.slide import windows

    def pixels(x0, y0, x1, y1) -> tuple[int, int, int, int]:  # whole pixels, (y0, y1, x0, x1)
        return int(np.floor(y0)), int(np.ceil(y1)), int(np.floor(x0)), int(np.ceil(x1))

    def box(ann: dict) -> tuple[int, int, int, int]:
        x, y, w, h = ann["bbox"]
        return pixels(x, y, x + w, y + h)

    objects = [a for a in anns if not a.get("iscrowd", 0)]
    ignored = [(a, box(a)) for a in anns if a.get("iscrowd", 0)]
    m = window_margin() if margin is None else margin
    drawn, owner = windows([box(a) for a in objects] + [pixels(*area) for area in areas])
    held: list[list[dict]] = [[] for _ in drawn]
    for ann, k in zip(objects, owner):
        held[k].append(ann)
    parts = []
    for core, inside in zip(drawn, held):
        c0, c1, d0, d1 = max(core[0], 0), min(core[1], height), max(core[2], 0), min(core[3], width)
        if c0 >= c1 or d0 >= d1:
            continue  # beyond the slide
        y0, y1, x0, x1 = max(c0 - m, 0), min(c1 + m, height), max(d0 - m, 0), min(d1 + m, width)
        for ann, (a0, a1, b0, b1) in ignored:  # few: an __ignore__ region over everything, say
            if a0 < y1 and y0 < a1 and b0 < x1 and x0 < b1:
                inside.append(ann)
        inside = [moved(ann, x0, y0) for ann in inside]
        margins = context((c0, c1, d0, d1), (y0, y1, x0, x1), classes)
        parts.append(((y0, y1, x0, x1), (d0, c0), inside + margins))
    return parts


def window_margin() -> int:
    """How far a slide's windows reach beyond what is drawn (pixels): ``PIXELWISE_WINDOW_MARGIN``,
    else :data:`WINDOW_MARGIN`."""
    text = os.environ.get("PIXELWISE_WINDOW_MARGIN", str(WINDOW_MARGIN))
    try:
        margin = int(text)
    except ValueError:
        margin = -1
    if margin < 0:
        raise ValueError(
            f"PIXELWISE_WINDOW_MARGIN must be a whole number of pixels >= 0, got {text!r}"
        )
    return margin


def context(core: tuple, window: tuple, classes: int) -> list[dict]:
    """The pixels of a slide's ``window`` (y0, y1, x0, x1) outside the ``core`` within it (the
    box around what was drawn, y0, y1, x0, x1 on the slide), as crowd regions of each of
    ``classes`` classes (as ``__ignore__`` is read) in the window's coordinates: seen, for
    context, but neither trained on nor scored (nobody said what they are, or another window
    holds them); none without a margin."""
    y0, y1, x0, x1 = window
    unknown = np.ones((y1 - y0, x1 - x0), bool)
    unknown[core[0] - y0 : core[1] - y0, core[2] - x0 : core[3] - x0] = False
    if not unknown.any():
        return []
    shape = {"shapes": (("mask", (0, 0, unknown)),), "bbox": [0, 0, x1 - x0, y1 - y0]}
    return [{"category_id": k + 1, "iscrowd": 1} | shape for k in range(classes)]


def moved(ann: dict, dx: float, dy: float) -> dict:
    """An annotation of :func:`objects_of` with its shapes and box moved by (-dx, -dy)."""
    x, y, w, h = ann["bbox"]
    shapes = tuple(shifted(part, dx, dy) for part in ann["shapes"])
    return ann | {"shapes": shapes, "bbox": [x - dx, y - dy, w, h]}


def shifted(part: tuple, dx: float, dy: float) -> tuple:
    """A shape of :func:`outline` (or an erased one) moved by (-dx, -dy)."""
    kind, data = part
    if kind == "erase":
        return kind, shifted(data, dx, dy)
    if kind == "area":
        return kind, [np.asarray(ring) - (dx, dy) for ring in data]
    if kind == "mask":
        x, y, bitmap = data
        return kind, (int(x - dx), int(y - dy), bitmap)
    return kind, np.asarray(data) - (dx, dy)


def region_polygons(
    mask: np.ndarray, min_pixels: int = 1, offset: tuple[int, int] = (0, 0)
) -> list[tuple]:
    """Each connected region of a binary mask with ``min_pixels`` pixels or more as
    ``(outline, hole outlines, box, region, holes)``: LabelMe polygon points, the pixel
    centres of the outline of the region (of each hole) where it turns, so that LabelMe draws
    the region back exactly when its holes are drawn over it as background; and the region's
    and its holes' pixels within its box (a numpy slice). ``mask`` may be the part of a larger
    image from row and column ``offset``: points and boxes are in the larger image."""
    import cv2
    from scipy import ndimage

    count, regions, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), 8)
    found = []
    for k in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[k])
        if area < max(min_pixels, 1):
            continue
        crop = regions[y : y + h, x : x + w] == k
        y, x = y + offset[0], x + offset[1]
        box = np.s_[y : y + h, x : x + w]
        holes = ndimage.binary_fill_holes(crop) & ~crop  # 4-connected to nothing outside
        inner, _ = ndimage.label(holes)  # 4-connectivity: as the fill defines a hole
        outlines = [pixel_outline(inner == j, x, y) for j in range(1, inner.max() + 1)]
        found.append((pixel_outline(crop, x, y), outlines, box, crop, holes))
    return found


def pixel_outline(region: np.ndarray, x: int, y: int) -> list[list[float]]:
    """The turning points of one connected region's outer outline (pixel centres), offset by
    (x, y); a region one pixel thin in a line: its box's corners."""
    import cv2

    contours, _ = cv2.findContours(
        region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    outline = cv2.approxPolyDP(max(contours, key=len), 0, True)[:, 0]  # corners only
    if len(outline) < 3:
        ys, xs = np.nonzero(region)
        outline = np.array(
            [[xs.min(), ys.min()], [xs.max(), ys.min()], [xs.max(), ys.max()], [xs.min(), ys.max()]]
        )
    return (outline + (x, y)).astype(float).tolist()


def shapes_of(
    labels: np.ndarray, names: dict[int, str], min_pixels: int = 1, objects: bool = False
) -> list[dict]:
    """LabelMe shapes of a label image: a polygon per connected region of each value in
    ``names`` (class ids of a class mask; with ``objects`` the object numbers of an instance
    label image, each object's regions sharing its number as ``group_id``), each followed by
    a ``_background_`` polygon per hole. Regions come in the order of ``names``, except that
    what lies in another region's hole comes after it (the hole would clear it)."""
    regions, depth = [], np.zeros(labels.shape, np.int32)  # depth: holes a pixel lies in
    boxes = value_boxes(labels, names)
    for value, name in names.items():
        part = boxes[value]
        if part is None:
            continue
        offset = (part[0].start, part[1].start)
        for outer, holes, box, region, inside in region_polygons(
            labels[part] == value, min_pixels, offset
        ):
            regions.append((value, name, outer, holes, box, region))
            depth[box] += inside
    shapes = []
    regions.sort(key=lambda r: int(depth[r[4]][r[5]].max()))  # stable: names' order at a depth
    for value, name, outer, holes, _, _ in regions:
        group = int(value) if objects else None
        shapes.append(polygon_shape(name, outer, group))
        shapes += [polygon_shape(BACKGROUND_LABEL, hole, None) for hole in holes]
    return shapes


def value_boxes(labels: np.ndarray, values) -> dict:
    """The box (numpy slices) around every pixel of each of ``values`` in ``labels``, None for
    a value it lacks: for the positive integers of an integer image from one pass over it (an
    image of thousands of objects compared whole with each of them took minutes)."""
    from scipy import ndimage

    values = list(values)
    whole = (slice(0, labels.shape[0]), slice(0, labels.shape[1]))
    if not np.issubdtype(labels.dtype, np.integer) or not all(
        float(v).is_integer() and v > 0 for v in values
    ):
        return {v: whole if (labels == v).any() else None for v in values}
    found = ndimage.find_objects(labels)
    return {v: found[int(v) - 1] if int(v) <= len(found) else None for v in values}


def polygon_shape(label: str, points: list[list[float]], group: int | None) -> dict:
    return {"label": label, "points": points, "group_id": group, "description": "",
            "shape_type": "polygon", "flags": {}}  # fmt: skip


def annotation_json(shapes: list[dict], image: Path, folder: Path, height: int, width: int) -> str:
    """A LabelMe file for ``image`` written into ``folder`` (``imagePath`` relative to it)."""
    import os

    spec = {"version": "5.5.0", "flags": {}, "shapes": shapes,
            "imagePath": os.path.relpath(image, folder), "imageData": None,
            "imageHeight": int(height), "imageWidth": int(width)}  # fmt: skip
    return json.dumps(spec)
