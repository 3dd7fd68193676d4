"""YOLO segmentation datasets (Ultralytics' layout, as Roboflow and CVAT export it): a YAML
file naming the classes and the images of each split, and for every image a text file of its
objects, one per line::

    data.yaml            path: .   train: images/train   val: images/val   names: [cat, dog]
    images/train/a.jpg   its labels: labels/train/a.txt (the last images/ of the path made labels/)
    labels/train/a.txt   0 0.10 0.20 0.40 0.20 0.30 0.60    class index, then the outline's x y
                                                             pairs as fractions of width, height

A split is a folder of images (searched below), a text file listing images, or a list of both.
A line of 5 numbers is a box (class, centre x, centre y, width, height), an object known by its
box alone: its pixels are ignored in class masks and it is left out of instance targets, as a
COCO object without an outline. An image without a label file shows no object. The objects are
read as COCO annotations (category id = class index + 1), so class masks, Mask R-CNN training and
COCO evaluation take them as they take a COCO file.
"""

from __future__ import annotations

from pathlib import Path

from pixelwise.constants import one_line, unusable
from pixelwise.data.coco import Categories, InstanceItem, as_coco, check_outlined
from pixelwise.data.io import image_files

YAML_SUFFIXES = (".yaml", ".yml")
SPLITS = ("train", "val")
BOXES_ONLY = (
    "every label is a box (class, centre x, centre y, width, height), as YOLO detection "
    "datasets hold them; segmentation needs outlines (class, x1 y1 x2 y2 ...)"
)
FRACTION_SLACK = 1.01  # exporters round outlines on the border a little past it


def read_yaml(path: Path) -> dict:
    """A YAML file's mapping; a clear error when it is not one."""
    import yaml

    try:
        spec = yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{path}: cannot read the YAML file ({reason})") from None
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: not a YOLO dataset file (expected keys names, train, val)")
    return spec


def dataset_yaml(root: Path) -> Path | None:
    """The YOLO dataset file ``root`` names: itself (a ``.yaml``), or in a folder the YAML file
    that names classes and a split (``data.yaml`` first); None for anything else."""
    root = Path(root)
    if root.suffix.lower() in YAML_SUFFIXES and root.is_file():
        return root
    if not root.is_dir():
        return None
    found = sorted(p for p in root.iterdir() if p.suffix.lower() in YAML_SUFFIXES and p.is_file())
    found.sort(key=lambda p: p.stem != "data")
    unread = None
    for path in found:
        try:
            spec = read_yaml(path)
        except ValueError as exc:
            unread = unread or exc
            continue
        if "names" in spec and any(split in spec for split in SPLITS):
            return path
    if unread is not None:  # the dataset's file, broken: say so rather than "no dataset"
        raise unread
    return None


def class_names(spec: dict, path: Path) -> list[str]:
    """The class names, by index: ``names`` as a list or as {index: name}."""
    names = spec.get("names")
    if isinstance(names, dict):
        if sorted(names) != list(range(len(names))):
            raise ValueError(f"{path}: names must be numbered 0..{len(names) - 1}")
        names = [names[i] for i in range(len(names))]
    if not isinstance(names, list) or not names:
        raise ValueError(f"{path}: no class names (names: [first, second, ...])")
    if "nc" in spec and spec["nc"] != len(names):
        raise ValueError(f"{path}: nc is {spec['nc']} but names lists {len(names)} classes")
    return [str(name) for name in names]


def _located(value: str, base: Path, path: Path, key: str) -> Path:
    """A split's path: relative to ``base``; Roboflow's ``../train/images`` also as
    ``train/images`` below it (what Ultralytics tries too)."""
    found = base / value
    if not found.exists() and value.startswith("../"):
        found = base / value[3:]
    if not found.exists():
        raise ValueError(f"{path}: {key}: {base / value} does not exist")
    return found


def split_images(value, base: Path, path: Path, key: str) -> list[Path]:
    """The images of one split: folders searched below, listings (one path per line, relative
    to the listing's folder), in order."""
    images = []
    for entry in value if isinstance(value, list) else [value]:
        found = _located(str(entry), base, path, key)
        if found.is_dir():
            images += image_files(found)
        else:
            lines = [line.strip() for line in found.read_text().splitlines() if line.strip()]
            images += [found.parent / line for line in lines]
    return images


def label_file(image: Path) -> Path:
    """Where an image's labels are: its path with the last ``images`` folder made ``labels``,
    ending ``.txt``."""
    parts = list(image.parts)
    at = max((i for i, part in enumerate(parts[:-1]) if part == "images"), default=None)
    if at is None:
        return image.with_suffix(".txt")
    parts[at] = "labels"
    return Path(*parts).with_suffix(".txt")


def read_labels(path: Path, num_classes: int, height: int, width: int) -> list[dict]:
    """The objects of a label file as COCO annotations (pixel coordinates)."""
    objects = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}, line {number}"
        try:
            cls, values = int(fields[0]), [float(v) for v in fields[1:]]
        except ValueError:
            raise ValueError(f"{where}: expected a class index and numbers, got {line!r}") from None
        if not 0 <= cls < num_classes:
            raise ValueError(f"{where}: class {cls} is not among the {num_classes} named classes")
        if any(abs(v) > FRACTION_SLACK for v in values):
            raise ValueError(
                f"{where}: coordinates must be fractions of the image's width and height (0..1), "
                f"this line has {max(values, key=abs):g}"
            )
        if len(values) == 4:  # a box: centre x, centre y, width, height
            cx, cy, w, h = values
            box = [(cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height]
            objects.append({"category_id": cls + 1, "bbox": box, "segmentation": [], "iscrowd": 0})
            continue
        if len(values) < 6 or len(values) % 2:
            raise ValueError(
                f"{where}: {len(values)} coordinates; an outline needs x y pairs (3 points or "
                "more), a box 4 numbers"
            )
        outline = [v * (width if i % 2 == 0 else height) for i, v in enumerate(values)]
        xs, ys = outline[0::2], outline[1::2]
        box = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
        objects.append(
            {"category_id": cls + 1, "bbox": box, "segmentation": [outline], "iscrowd": 0}
        )
    return objects


def load_yolo(path: Path) -> tuple[dict[str, list[InstanceItem]], Categories, dict]:
    """The instance items of each split a YOLO dataset file lists (``train``, ``val``), its
    categories (ids = class indices) and the same as a parsed COCO instances file."""
    from pixelwise.data.coco import oriented_size

    path = Path(path)
    spec = read_yaml(path)
    names = class_names(spec, path)
    base = path.parent / str(spec.get("path") or "")
    if not base.is_dir():  # written on another machine (/content/datasets/...): the YAML's folder
        base = path.parent
    splits, seen, images, annotations, failures = {}, {}, [], [], []
    for key in SPLITS:
        if not spec.get(key):
            continue
        items = []
        for image in split_images(spec[key], base, path, key):
            if image.stem in seen and seen[image.stem] != image:
                raise ValueError(
                    f"{path}: two images named {image.stem!r} ({seen[image.stem]} and {image}); "
                    "names must be unique"
                )
            seen[image.stem] = image
            labels = label_file(image)
            try:
                height, width = oriented_size(image)
                found = read_labels(labels, len(names), height, width) if labels.is_file() else []
            except ValueError as exc:  # every bad file named at the end
                failures.append(one_line(exc))
                continue
            image_id = len(images) + 1
            anns = [
                a | {"id": len(annotations) + i + 1, "image_id": image_id}
                for i, a in enumerate(found)
            ]
            annotations += anns
            images.append(
                {"id": image_id, "file_name": str(image), "height": height, "width": width}
            )
            items.append(
                InstanceItem(image, image.stem, image_id, height, width, tuple(anns), source=labels)
            )
        splits[key] = items
    if failures:
        raise unusable(failures, "label file")
    if not splits:
        raise ValueError(f"{path}: names no split (train: images/train, val: images/val)")
    check_outlined(annotations, path, BOXES_ONLY)
    coco, categories = as_coco(images, annotations, names)
    return splits, categories, coco
