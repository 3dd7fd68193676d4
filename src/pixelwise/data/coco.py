"""Instance data in torchvision's detection format: COCO instances JSON (polygons, RLE, crowd
regions) and folders of uint16 instance-label images, as ``(image, target)`` with
``target = {"boxes" (N, 4) xyxy float32, "labels" (N,) int64, "masks" (N, H, W) uint8}``.

Category ids of a COCO file (1..90 with gaps) map to contiguous labels 1..K (0 is the
background, as Mask R-CNN expects); :class:`Categories` keeps both directions. Crowd
annotations are left out of training targets, as torchvision's detection references do, and
count as "ignore" regions in COCO evaluation. Images without objects are kept (empty targets).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from pixelwise.constants import IGNORE_INDEX, first_time
from pixelwise.data.encoding import to_unit
from pixelwise.data.io import image_files, quarter_turn_of, read_mask
from pixelwise.data.shapes import draw_shapes


@dataclass(frozen=True)
class Categories:
    """COCO category ids <-> contiguous model labels 1..K, with names."""

    ids: tuple[int, ...]
    names: tuple[str, ...]

    def label(self, category_id: int) -> int:
        if category_id not in self.ids:
            raise ValueError(
                f"an annotation's category_id {category_id} is not among the file's categories "
                f"(ids {', '.join(map(str, self.ids))})"
            )
        return self.ids.index(category_id) + 1

    def category(self, label: int) -> int:
        return self.ids[label - 1]


def as_coco(
    images: list[dict], annotations: list[dict], names: list[str]
) -> tuple[dict, Categories]:
    """A parsed COCO instances file and its categories for objects whose ``category_id`` is
    their class's place among ``names`` counted from 1 (as COCO counts; 0 stays the
    background's)."""
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(names)]
    coco = {"images": images, "annotations": annotations, "categories": categories}
    return coco, Categories(tuple(range(1, len(names) + 1)), tuple(names))


@dataclass(frozen=True)
class InstanceItem:
    """One image and where its instances come from: COCO annotations or a label image."""

    image: Path
    name: str
    image_id: int
    height: int
    width: int
    annotations: tuple[dict, ...] = ()
    label_image: Path | None = None
    source: Path | None = None  # the file its annotations come from, for messages
    window: tuple[int, int, int, int] | None = None  # (y0, y1, x0, x1) of a slide it is a part of


def coco_parts(path: Path) -> tuple[dict, list[dict], dict[int, list[dict]], list[dict]]:
    """The parsed JSON of the COCO instances file ``path``, its images, its annotations by
    image id and its categories; a ValueError naming the file when it is not one."""
    try:
        spec = json.loads(path.read_text())
        images, categories = spec["images"], spec["categories"]
        by_image: dict[int, list[dict]] = {}
        for ann in spec.get("annotations", []):
            by_image.setdefault(ann["image_id"], []).append(ann)
    except (OSError, KeyError, TypeError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise not_coco(path, exc) from None
    return spec, images, by_image, categories


def not_coco(path: Path, exc: Exception) -> ValueError:
    return ValueError(f"{path}: not a COCO instances file ({type(exc).__name__}: {exc})")


def load_coco(
    annotation_file: str | Path, image_root: str | Path | None = None
) -> tuple[list[InstanceItem], Categories, dict]:
    """Items, categories and the parsed JSON of a COCO instances file; images are looked up
    under ``image_root`` (default: ``images/`` beside the file, else the file's folder)."""
    path = Path(annotation_file)
    spec, images, by_image, categories = coco_parts(path)
    root = (
        Path(image_root)
        if image_root
        else (path.parent / "images" if (path.parent / "images").is_dir() else path.parent)
    )
    cats = sorted(categories, key=lambda c: c["id"])
    cat = Categories(tuple(c["id"] for c in cats), tuple(c["name"] for c in cats))
    items, missing = [], []
    for im in images:
        if "file_name" not in im or "id" not in im:
            raise ValueError(f"{path}: an image entry without file_name or id: {im}")
        file = root / im["file_name"]
        if not file.is_file():
            missing.append(im["file_name"])
            continue
        if "height" in im and "width" in im:
            height, width = int(im["height"]), int(im["width"])
        else:
            height, width = stored_size(file)
        items.append(
            InstanceItem(
                file,
                Path(im["file_name"]).stem,
                int(im["id"]),
                height,
                width,
                tuple(by_image.get(im["id"], ())),
            )
        )
    left_out(path, root, missing, len(images))
    return items, cat, spec


def left_out(path: Path, root: Path, missing: list[str], listed: int) -> None:
    """A warning, once per file, for the images a COCO file lists that are not under ``root``
    (a subset downloaded); ValueError when none is."""
    if not missing:
        return
    if len(missing) == listed:
        raise ValueError(
            f"{path}: none of the {listed} images it lists is under {root} (such as "
            f"{missing[0]}); put them in images/ beside the file"
        )
    if first_time(("missing images", path.resolve(), root.resolve())):
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        print(
            f"pixelwise: warning: {path}: {len(missing)} of the {listed} images it lists "
            f"{'is' if len(missing) == 1 else 'are'} not under {root}, left out: {shown}",
            file=sys.stderr,
        )


def stored_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image file from its header (COCO files may leave the size out); of
    a folder of object masks, its first mask's."""
    from PIL import Image, UnidentifiedImageError

    if path.is_dir():
        path = next(iter(image_files(path, recursive=False)), path)

    try:
        with Image.open(path) as image:
            return image.height, image.width
    except (OSError, UnidentifiedImageError) as exc:
        raise ValueError(f"{path}: cannot read the image's size ({exc})") from None


def oriented_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image as :func:`~pixelwise.data.io.read_image` gives it: turned by
    its EXIF orientation (TIFFs are read as stored)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:  # one header read for both
            height, width, turned = image.height, image.width, quarter_turn_of(image)
    except (OSError, UnidentifiedImageError) as exc:
        raise ValueError(f"{path}: cannot read the image's size ({exc})") from None
    return (width, height) if turned is not None else (height, width)


def has_outline(ann: dict) -> bool:
    """Whether a COCO annotation outlines its object (polygons with 3 points or more, or RLE),
    rather than giving its box alone."""
    if ann.get("shapes"):  # LabelMe's, drawn as LabelMe draws them
        return True
    seg = ann.get("segmentation")
    return bool(seg) and (not isinstance(seg, list) or any(len(part) >= 6 for part in seg))


BOXES_ONLY = (
    "every object is given by its box alone (a detection dataset); segmentation needs "
    "outlines (polygons, RLE)"
)


def check_outlined(annotations, source, problem: str = BOXES_ONLY) -> None:
    """Refuse objects given by their boxes alone, every one (a detection dataset): segmentation
    would learn the background alone. ``problem`` says it in the dataset's own terms."""
    if annotations and not any(has_outline(a) for a in annotations):
        raise ValueError(f"{source}: {problem}")


def as_outlined(ann: dict) -> dict | None:
    """The annotation with an outline: itself; one giving its object's box alone as a crowd
    region over that box, what masks and COCO evaluation then ignore (which of its pixels are
    the object is unknown); None with neither."""
    if has_outline(ann):
        return ann
    if len(ann.get("bbox", ())) != 4:
        return None
    x, y, w, h = ann["bbox"]
    return ann | {"segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]], "iscrowd": 1}


def annotation_mask(ann: dict, height: int, width: int) -> np.ndarray:
    """(H, W) uint8 mask of a COCO annotation: polygons, uncompressed or compressed RLE; empty
    for an object given by its box alone (no or an empty ``segmentation``, as labelling tools
    export boxes)."""
    from pycocotools import mask as mask_utils

    if not has_outline(ann):
        return np.zeros((height, width), np.uint8)
    if ann.get("shapes"):
        return draw_shapes(ann["shapes"], height, width)
    seg = ann["segmentation"]
    if isinstance(seg, list):  # polygons: one object may have several parts
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
    elif isinstance(seg.get("counts"), list):  # uncompressed RLE
        rle = mask_utils.frPyObjects(seg, height, width)
    else:
        rle = seg
    return mask_utils.decode(rle).astype(np.uint8)


def label_image(
    objects: tuple[tuple[int, dict], ...], height: int, width: int, instances: bool = False
) -> np.ndarray:
    """(H, W) int32 label image of COCO annotations given as (class label, annotation) pairs:
    each pixel's class label (0: background; crowd regions and the boxes of objects given by a
    box alone ``IGNORE_INDEX``: which of their pixels are the object is unknown), or with
    ``instances`` its object's number 1..N (those regions left out, as in instance training).
    Larger objects are drawn first, so a smaller one lying on a larger one stays visible."""
    outlined = [(label, as_outlined(ann)) for label, ann in objects]
    objects = tuple((label, ann) for label, ann in outlined if ann is not None)
    masks = [annotation_mask(ann, height, width).astype(bool) for _, ann in objects]
    out = np.zeros((height, width), np.int32)
    crowd = np.zeros((height, width), bool)
    number = 0
    for i in sorted(range(len(masks)), key=lambda i: -int(masks[i].sum())):
        label, ann = objects[i]
        if ann.get("iscrowd", 0):
            crowd |= masks[i]
            continue
        number += 1
        out[masks[i]] = number if instances else label
    if not instances:
        out[crowd & (out == 0)] = IGNORE_INDEX
    return out


def encode_rle(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a binary (H, W) mask, JSON-ready (``counts`` as str)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def crop_rle_counts(crop: np.ndarray, y0: int, x0: int, height: int, width: int) -> list[int]:
    """COCO's uncompressed RLE counts (column-major runs, zeros first) of a (height, width) mask
    that is ``crop`` at (``y0``, ``x0``) and zero elsewhere, in time of the crop's size rather
    than the image's (a slide's thousands of objects would each cost a full-image pass)."""
    h, w = crop.shape
    padded = np.zeros((w, h + 1), np.int8)  # a zero below each column ends its runs there
    padded[:, :h] = crop.T
    step = np.diff(padded.ravel(), prepend=0)
    starts, ends = np.flatnonzero(step == 1), np.flatnonzero(step == -1)

    def pixel(p: np.ndarray) -> np.ndarray:  # place in the padded crop -> place in the image
        return (x0 + p // (h + 1)) * height + y0 + p % (h + 1)

    starts, ends = pixel(starts), pixel(ends)
    joined = ends[:-1] == starts[1:]  # a run down to the bottom row going on at the next top
    starts = np.concatenate([starts[:1], starts[1:][~joined]])
    ends = np.concatenate([ends[:-1][~joined], ends[-1:]])
    return run_counts(starts, ends, height * width)


def run_counts(starts: np.ndarray, ends: np.ndarray, pixels: int) -> list[int]:
    """COCO's uncompressed RLE counts (zeros first) of the runs ``[starts, ends)`` (in order, not
    overlapping) of an image of ``pixels`` pixels numbered column by column."""
    counts = np.diff(np.stack([starts, ends], 1).ravel(), prepend=0, append=pixels)
    return counts[: -1 if counts[-1] == 0 else None].astype(int).tolist()  # as pycocotools


def object_annotations(labels: np.ndarray, categories: np.ndarray | None = None) -> list[dict]:
    """A COCO annotation per object of an instance label image (0 = background): compressed
    RLE mask, tight ``bbox`` (x, y, w, h), ``area``, ``iscrowd`` 0 and ``category_id`` (from
    the image ``categories`` of category ids at the object's pixels, default 1); ids are left
    to the caller."""
    return [ann for _, ann in numbered_annotations(labels, categories)]


def numbered_annotations(
    labels: np.ndarray, categories: np.ndarray | None = None
) -> list[tuple[int, dict]]:
    """:func:`object_annotations` with each object's number in ``labels``; each object is
    encoded from its box, never from a whole-image mask."""
    from pycocotools import mask as mask_utils
    from scipy import ndimage

    height, width = labels.shape
    out = []
    for k, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        crop = labels[box] == k
        y0, x0 = box[0].start, box[1].start
        counts = crop_rle_counts(crop, y0, x0, height, width)
        rle = mask_utils.frPyObjects({"counts": counts, "size": [height, width]}, height, width)
        ann = {
            "category_id": 1 if categories is None else int(categories[box][crop][0]),
            "segmentation": {"size": [height, width], "counts": rle["counts"].decode("ascii")},
            "area": int(crop.sum()),
            "bbox": [x0, y0, crop.shape[1], crop.shape[0]],
            "iscrowd": 0,
        }
        out.append((k, ann))
    return out


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy boxes (pixel edges) enclosing each (H, W) mask."""
    boxes = np.zeros((len(masks), 4), np.float32)
    for i, m in enumerate(masks):
        ys, xs = (
            np.flatnonzero(m.any(1)),
            np.flatnonzero(m.any(0)),
        )  # projections: cheaper than nonzero(m)
        if len(ys):
            boxes[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return boxes


def item_target(item: InstanceItem, categories: Categories) -> dict[str, np.ndarray]:
    """Training target of an item (numpy): crowd and degenerate objects left out."""
    if item.label_image is not None:
        labels = read_mask(item.label_image)
        ids = [i for i in np.unique(labels) if i != 0]
        masks = (
            np.stack([labels == i for i in ids]).astype(np.uint8)
            if ids
            else np.zeros((0, *labels.shape), np.uint8)
        )
        classes = np.ones(len(ids), np.int64)
    else:
        anns = [a for a in item.annotations if not a.get("iscrowd", 0)]
        masks = (
            np.stack([annotation_mask(a, item.height, item.width) for a in anns])
            if anns
            else np.zeros((0, item.height, item.width), np.uint8)
        )
        classes = np.array([categories.label(a["category_id"]) for a in anns], np.int64)
    boxes = masks_to_boxes(masks)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return {"boxes": boxes[keep], "labels": classes[keep], "masks": masks[keep]}


def resize_target(target: dict[str, np.ndarray], size: tuple[int, int]) -> dict[str, np.ndarray]:
    from pixelwise.data.transforms import resize_mask

    masks = (
        np.stack([resize_mask(m, size) for m in target["masks"]])
        if len(target["masks"])
        else np.zeros((0, *size), np.uint8)
    )
    boxes = masks_to_boxes(masks)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return {"boxes": boxes[keep], "labels": target["labels"][keep], "masks": masks[keep]}


class InstanceDataset(Dataset):
    """``(image float32 (C, H, W) in [0, 1], target dict of tensors)`` per item; the target's
    ``draw`` is the index asked for (it seeds the training step, see
    :func:`pixelwise.detection.detection_step`).

    With ``augment``: a random horizontal flip and a scale jitter (``scale_range``), applied to
    the image and every mask; randomness is a pure function of (seed, epoch, index).
    """

    def __init__(
        self,
        items: list[InstanceItem],
        categories: Categories,
        augment: bool = False,
        scale_range: tuple[float, float] = (0.75, 1.25),
        seed: int = 0,
    ) -> None:
        self.items, self.categories, self.augment = items, categories, augment
        self.scale_range, self.seed, self.epoch = scale_range, seed, 0

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        from pixelwise.data.slide import annotated_image, item_image
        from pixelwise.data.transforms import resize_image

        item = self.items[
            index % len(self.items)
        ]  # index >= len: another random draw (epoch_indices)
        image = item_image(item)
        target = item_target(item, self.categories)
        if (drawn_on := annotated_image(item, target["masks"].shape[1:], image=image)) is None:
            raise ValueError(
                f"{item.image}: image is {image.shape[1]} x {image.shape[0]} but its annotations "
                f"say {item.width} x {item.height} (width x height)"
            )
        image = np.repeat(drawn_on, 3, axis=-1) if drawn_on.shape[-1] == 1 else drawn_on
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            s = float(rng.uniform(*self.scale_range))
            size = (max(8, round(image.shape[0] * s)), max(8, round(image.shape[1] * s)))
            image, target = resize_image(image, size), resize_target(target, size)
            if rng.random() < 0.5:
                image = image[:, ::-1]
                target = {
                    "masks": target["masks"][:, :, ::-1],
                    "labels": target["labels"],
                    "boxes": target["boxes"].copy(),
                }
                w = image.shape[1]
                target["boxes"][:, [0, 2]] = w - target["boxes"][:, [2, 0]]
        x = torch.from_numpy(np.ascontiguousarray(to_unit(image).transpose(2, 0, 1)))
        return x, {
            "boxes": torch.from_numpy(np.ascontiguousarray(target["boxes"])).reshape(-1, 4),
            "labels": torch.from_numpy(target["labels"]),
            "masks": torch.from_numpy(np.ascontiguousarray(target["masks"])),
            "draw": torch.tensor(index),
        }


def collate(batch):
    """Detection batches are lists (images differ in size)."""
    return tuple(zip(*batch))
