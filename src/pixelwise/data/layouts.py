"""Where a dataset's labelled images are: the layouts :func:`find_items` and
:func:`resolve_splits` understand, as :class:`Item` lists::

    DATA/images/*.png  DATA/masks/*.png                  image/mask pairs matched by file stem
    DATA/images/*.png  DATA/instances/*.png              the same with uint16 instance labels (DSB2018)
    DATA/JPEGImages/*.jpg  DATA/SegmentationClass/*.png  Pascal VOC's names (also labels/, annotations/, ...)
    DATA/train/*.jpg  DATA/train_masks/*_mask.gif        a folder and its masks beside it (Carvana)
    DATA/a.jpg  DATA/a_mask.png                          masks among the images, named by an ending
    DATA/train-volume.tif  DATA/train-labels.tif         multi-page TIFF stacks, one item per page (ISBI 2012)
    DATA/01/t000.tif  DATA/01_GT/SEG/man_seg000.tif      Cell Tracking Challenge (01_ST/SEG: silver truth;
                                                         3D: each slice, or man_seg_000_012.tif's slice)
    DATA/A/images  DATA/B/images ...                     several datasets read as one (names unique)
    DATA/train/<any of the above>  [DATA/val/...]        split by folders (also training/, validation/,
                                                         valid/)
    DATA/images/train  DATA/masks/train  [.../val]       split inside the folders (as ADE20K's
                                                         images/training + annotations/training)
    DATA/ImageSets/Segmentation/train.txt  [val.txt]     split by Pascal VOC's lists of names
    DATA/X_Input  DATA/X_GroundTruth                     two folders of images, one named as masks
                                                         are (mask, label, groundtruth, gt, ...: ISIC)
    DATA/*Training_Input  DATA/*Training_GroundTruth     the same per split, the split in both names
    [DATA/*Validation_Input ...]                         (ISIC 2018's downloads unzipped side by side;
                                                         train/val/test, training/validation/testing)
    annotations.json  [DATA/annotations.json + images/]  COCO instances: category k (by id) is class k
    data.yaml  images/train  labels/train/*.txt          YOLO outlines (Ultralytics, Roboflow): class
                                                         k is the k-th name, 0 the background
    DATA/leftImg8bit/train  DATA/gtFine/train            Cityscapes: its 19 classes, other ids ignored
    DATA/a.jpg  DATA/a.json                              LabelMe shapes (also in annotations/, in
                                                         train/ + val/; classes: labels.txt or sorted)
    DATA/a.tif  DATA/a.geojson                           GeoJSON polygons (QuPath's export; also in
                                                         annotations/, geojson/, ...): each Feature an
                                                         object of its classification's name
    pairs.csv                                            columns image, mask [, split]: any layout

A mask belongs to the image with the same file stem, or with the stem plus an ending every mask
has (``a.jpg`` / ``a_mask.png``), or each side's shared ending dropped (``21_training.tif`` /
``21_manual1.gif``); images without a mask are left out with a warning, masks without an image
are an error.

A pool without a ``val`` folder is split by names (``--val-stems``) or a seeded fraction.

A ``classes.json`` at the dataset root (as in ../shared/data/camvid) supplies class names,
colours and the void id; so do, without the void id, a ``labelmap.txt`` (CVAT, Pascal VOC
exports), a ``label_colors.txt`` (CamVid) and Roboflow's ``_classes.csv`` (each class's mask
value), at the root or in ``train/``. For colour masks (one RGB colour per class) the colours
are the stored values of the classes. Samples are ``(image float32 (C, H, W), target int64
(H, W))`` with 255 marking pixels to ignore.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixelwise.constants import (
    IGNORE_INDEX,
    IMAGE_FOLDERS,
    MASK_FOLDERS,
    each_readable,
    first_time,
    unusable,
)
from pixelwise.data import cityscapes, geojson, labelme
from pixelwise.data.coco import (
    Categories,
    InstanceItem,
    check_outlined,
    label_image,
    load_coco,
    stored_size,
)
from pixelwise.data.encoding import BLACK_AND_WHITE
from pixelwise.data.io import (
    count_pages,
    image_files,
    is_colour_mask,
    is_hidden,
    packed_colours,
    page_name,
    read_mask,
)
from pixelwise.data.yolo import class_names, dataset_yaml, load_yolo, read_yaml


@dataclass(frozen=True)
class Item:
    """One labelled image: its files, a unique name, and the page of multi-page TIFFs (``page``
    of both; ``slice`` of the image alone, a z-slice of a 3D image annotated in 2D); for a COCO
    file (``mask``), its objects as (class label, annotation) pairs and the image's size."""

    image: Path
    mask: Path
    name: str
    page: int | None = None
    objects: tuple[tuple[int, dict], ...] | None = None
    size: tuple[int, int] | None = None
    slice: int | None = None
    window: tuple[int, int, int, int] | None = None  # (y0, y1, x0, x1) of a slide it is a part of

    @property
    def image_page(self) -> int | None:
        """The page of the image file this item is."""
        return self.page if self.slice is None else self.slice

    def read_mask(self, instances: bool = False) -> np.ndarray:
        """The stored mask values (class ids, colours or instance labels); drawn from COCO
        objects, each pixel's class label, or with ``instances`` its object's number."""
        if self.objects is None:
            return read_mask(self.mask, self.page)
        return label_image(self.objects, *self.size, instances=instances)


@dataclass
class DatasetInfo:
    """What a dataset root says about itself (from ``classes.json`` when present)."""

    class_names: list[str] | None = None
    colours: list[list[int]] | None = None
    ignore_values: tuple[int, ...] = ()
    values: list[int] | None = None  # each class's stored mask value, when the file says

    def ignored(self, given: list[int] | None) -> tuple[int, ...]:
        """The stored values left out of losses and scores: ``given`` (``--ignore-values``),
        else the dataset's own (a void id)."""
        return tuple(given) if given is not None else self.ignore_values


def read_dataset_info(root: Path) -> DatasetInfo:
    """Class names, colours, stored values and ignored values from the class file the dataset
    has (:data:`CLASS_FILES`, at its root or in its ``train/``); for a COCO file, its category
    names after "background", for a YOLO dataset the YAML's names after it."""
    coco = coco_folder_file(root)
    if Path(root).suffix.lower() == ".json" and Path(root).is_file() or coco is not None:
        return DatasetInfo(["background", *load_coco(coco or root)[1].names])
    yolo = dataset_yaml(root)
    if yolo is not None:
        return DatasetInfo(["background", *class_names(read_yaml(yolo), yolo)])
    labelled = labelme_files(Path(root))
    if labelled:
        specs = [spec for files in labelled.values() for spec in files.values()]
        return DatasetInfo(["background", *labelme.class_names(Path(root), specs)])
    folder = Path(root).parent if Path(root).is_file() else Path(root)  # a CSV of pairs
    if cityscapes.label_folder(folder) is not None:
        names, colours, ignored, values = cityscapes.dataset_info()
        return DatasetInfo(names, colours, ignored, values)
    for where in (folder, folder / "train"):
        for name, reader in CLASS_FILES.items():
            if (where / name).is_file():
                return reader(where / name)
    return DatasetInfo()


def read_classes_json(path: Path) -> DatasetInfo:
    """``classes.json``: ``{"classes": [{"id", "name", "color_rgb"}, ...], "void_id"}``."""
    try:
        spec = json.loads(path.read_text())
        classes = sorted(spec["classes"], key=lambda c: c["id"])
        names = [c["name"] for c in classes]
        colours = [list(c["color_rgb"]) for c in classes if "color_rgb" in c] or None
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read classes ({exc})") from None
    void = spec.get("ignore_index", spec.get("void_id"))
    return DatasetInfo(names, colours, (int(void),) if void is not None else ())


def _class_lines(path: Path, parse, form: str) -> DatasetInfo:
    """Names and colours from a text file of one class per line (``#`` comments), each line
    split by ``parse`` into (name, [r, g, b])."""
    names, colours = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            name, colour = parse(line.strip())
        except ValueError:
            name, colour = "", []
        if not name or len(colour) != 3 or not all(0 <= v <= 255 for v in colour):
            raise ValueError(f"{path}, line {number}: expected {form}, got {line.strip()!r}")
        names.append(name)
        colours.append(colour)
    if not names:
        raise ValueError(f"{path}: no classes listed (a line {form} per class)")
    return DatasetInfo(names, colours)


def _labelmap_line(line: str) -> tuple[str, list[int]]:
    name, _, rest = line.partition(":")
    return name.strip(), [int(v) for v in rest.split(":")[0].split(",")]


def _label_colors_line(line: str) -> tuple[str, list[int]]:
    fields = line.split()
    return " ".join(fields[3:]), [int(v) for v in fields[:3]]


def read_labelmap(path: Path) -> DatasetInfo:
    """CVAT's and Pascal VOC-style ``labelmap.txt``: ``name:r,g,b:parts:actions``, in class
    order."""
    return _class_lines(path, _labelmap_line, "name:r,g,b::")


def read_label_colors(path: Path) -> DatasetInfo:
    """CamVid's ``label_colors.txt`` (also CVAT's CamVid export): ``r g b name``."""
    return _class_lines(path, _label_colors_line, "r g b name")


def read_classes_csv(path: Path) -> DatasetInfo:
    """Roboflow's ``_classes.csv``: a row ``Pixel Value, Class`` per class, the mask value
    first."""
    with open(path, newline="") as f:
        rows = [[cell.strip() for cell in row] for row in csv.reader(f) if row]
    try:
        found = sorted((int(row[0]), row[1]) for row in rows[1:])
    except (ValueError, IndexError):
        raise ValueError(
            f"{path}: expected rows 'pixel value, class name' after a header"
        ) from None
    if not found:
        raise ValueError(f"{path}: no classes listed")
    return DatasetInfo([name for _, name in found], values=[value for value, _ in found])


CLASS_FILES = {
    "classes.json": read_classes_json,
    "labelmap.txt": read_labelmap,
    "label_colors.txt": read_label_colors,
    "_classes.csv": read_classes_csv,
}


def stored_values(
    info: DatasetInfo, items: list[Item], given: list[int] | None
) -> tuple[int, ...] | None:
    """The stored mask value of each class: ``given`` (``--mask-values``), else for colour masks
    the colours ``classes.json`` lists (as ``0xRRGGBB``), else ``None`` (values are class ids)."""
    if given:
        return tuple(given)
    if info.values:
        return tuple(info.values)
    if info.colours and items and is_colour_mask(items[0].mask):
        return tuple(packed_colours(np.asarray(info.colours, np.uint8)).tolist())
    return None


def value_counts(items: list[Item]) -> dict[int, int]:
    """How many pixels of every mask hold each stored value. Masks that cannot be read are
    named together, in one ValueError, when all have been read."""
    counts: dict[int, int] = {}
    read = lambda _, item: np.unique(item.read_mask(), return_counts=True)  # noqa: E731
    for _, _, values in each_readable(items, read, "mask"):
        for value, count in zip(*values):
            counts[int(value)] = counts.get(int(value), 0) + int(count)
    return counts


def black_and_white(counts: dict[int, int], ignore: tuple[int, ...]) -> tuple[int, int] | None:
    """The stored values (background, foreground) of black-and-white masks, grey (0 and 255
    alone, 255 not named as ignored: Pascal VOC's void 255 comes with the classes' own values)
    or RGB (black and white alone); ``None`` for other masks."""
    for values in BLACK_AND_WHITE:
        if set(counts) == set(values) and values[1] not in ignore:
            return values
    return None


# Split folders (``DATA/train``, ``DATA/images/training``, ...) and the lists of Pascal VOC.
SPLIT_NAMES = {"train": ("train", "training"), "val": ("val", "validation", "valid")}
VOC_LISTS = Path("ImageSets") / "Segmentation"
NAME_SEPARATORS = "_-. "


def _files_by_stem(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in image_files(folder, recursive=False)}


def _first_dir(root: Path, names) -> Path | None:
    return next((root / n for n in names if (root / n).is_dir()), None)


def _added_ending(images: dict, masks: dict) -> str | None:
    """The one name ending every mask adds to its image's stem (``car_01`` -> ``car_01_mask``),
    or None when there is no such ending."""
    first = next(iter(masks))
    for stem in sorted(images, key=len, reverse=True):
        ending = first[len(stem) :]
        if first.startswith(stem) and ending and ending[0] in NAME_SEPARATORS:
            break
    else:
        return None
    keys = {m[: -len(ending)] for m in masks if m.endswith(ending)}
    return ending if len(keys) == len(masks) and keys <= images.keys() else None


def _shared_ending(stems) -> str:
    """The ending all ``stems`` share from a separator on ('21_training', '22_training' ->
    '_training'), leaving every stem a non-empty rest; '' when there is none."""
    stems = list(stems)
    if len(stems) < 2:
        return ""
    common = os.path.commonprefix([s[::-1] for s in stems])[::-1]
    cut = next((i for i, c in enumerate(common) if c in NAME_SEPARATORS), None)
    return "" if cut is None or len(common) - cut == min(map(len, stems)) else common[cut:]


def match_names(images: dict[str, Path], masks: dict[str, Path]) -> dict[str, str]:
    """Image stem -> mask stem. The same stem; else one ending added to every mask's name
    (``a.jpg`` / ``a_mask.gif``, ``ISIC_0000000_segmentation.png``); else each side's shared
    ending dropped (DRIVE's ``21_training.tif`` / ``21_manual1.gif``). Without a rule that
    gives every mask its image, the stems that are the same."""
    if masks.keys() <= images.keys():
        return {s: s for s in masks}
    ending = _added_ending(images, masks)
    if ending is not None:
        return {m[: -len(ending)]: m for m in masks}
    img_end, mask_end = _shared_ending(images), _shared_ending(masks)
    keys = {s[: len(s) - len(img_end)]: s for s in images}
    by_key = {s[: len(s) - len(mask_end)]: s for s in masks}
    if (img_end or mask_end) and by_key.keys() <= keys.keys():
        return {keys[k]: m for k, m in by_key.items()}
    return {s: s for s in masks.keys() & images.keys()}


def pair_folders(image_folder: Path, mask_folder: Path) -> list[Item]:
    """Each mask of ``mask_folder`` with its image in ``image_folder`` (:func:`match_names`),
    named by the image's stem. A mask without an image is an error; images without a mask are
    left out with a warning (an unlabelled image is not a training or validation pair)."""
    images, masks = _files_by_stem(image_folder), _files_by_stem(mask_folder)
    if not masks and next(mask_folder.rglob("*.txt"), None) is not None:
        raise ValueError(
            f"{mask_folder}: YOLO text labels without their dataset file; train on a YAML file "
            "naming the classes and the splits (names: [...], train: images/train, val: "
            "images/val) placed in the dataset folder"
        )
    if not images:
        raise ValueError(f"{image_folder}: no image files found")
    if not masks:
        coco = sorted(mask_folder.glob("*.json"))
        hint = f" (a COCO file? train on it: {coco[0]})" if coco else ""
        raise ValueError(f"{mask_folder}: no mask files found{hint}")
    return pair_files(images, masks, image_folder, mask_folder)


def pair_files(
    images: dict[str, Path], masks: dict[str, Path], image_folder: Path, mask_folder: Path
) -> list[Item]:
    """:func:`pair_folders` of the image and mask files found, by stem, in those folders; in a
    folder named as its one image, a ``masks/`` folder of other names is a mask per object
    (Kaggle's DSB2018 ``stage1_train/<id>/``: the item's mask is the folder, read as a label
    image)."""
    pairs = match_names(images, masks)
    if not pairs and list(images) == [image_folder.parent.name] and mask_folder.name == "masks":
        return [Item(images[image_folder.parent.name], mask_folder, image_folder.parent.name)]
    only_mask = sorted(masks.keys() - set(pairs.values()))
    only_img = sorted(images.keys() - pairs.keys())
    if only_mask or not pairs:
        parts = [f"images without a mask: {', '.join(only_img[:20])}"] if only_img else []
        parts.append(f"masks without an image: {', '.join(only_mask[:20])}")
        raise ValueError(
            f"{image_folder.parent}: unmatched files; " + "; ".join(parts) + " (a mask is "
            "matched by its image's file stem, or that stem plus an ending every mask has, "
            "such as '_mask')"
        )
    if only_img:
        print(
            f"pixelwise: warning: {image_folder}: {len(only_img)} image(s) without a mask in "
            f"{mask_folder.name}/ left out: {', '.join(only_img[:5])}"
            + (", ..." if len(only_img) > 5 else ""),
            file=sys.stderr,
        )
    return [Item(images[s], masks[pairs[s]], s) for s in sorted(pairs)]


MASK_ENDINGS = ("_mask", "_masks", "_label", "_labels", "_gt", "_seg", "_segmentation")


def same_folder_items(root: Path) -> list[Item]:
    """Images and their masks in one folder, each mask named as its image plus an ending of
    :data:`MASK_ENDINGS` (Roboflow's ``a_jpg.rf.1.jpg`` + ``a_jpg.rf.1_mask.png``); none when
    the folder holds no such mask."""
    files = _files_by_stem(root) if root.is_dir() else {}
    masks = {stem: path for stem, path in files.items() if stem.lower().endswith(MASK_ENDINGS)}
    if not masks:
        return []
    images = {stem: path for stem, path in files.items() if stem not in masks}
    return pair_files(images, masks, root, root)


def find_pairs(root: Path, image_dir: str = "images", mask_dir: str = "masks") -> list[Item]:
    """The pairs of ``root/image_dir`` and ``root/mask_dir`` (:func:`pair_folders`)."""
    root = Path(root)
    img_folder, mask_folder = root / image_dir, root / mask_dir
    for folder in (img_folder, mask_folder):
        if not folder.is_dir():
            raise ValueError(
                f"{folder}: folder not found (expected {root}/{image_dir} and {root}/{mask_dir})"
            )
    return pair_folders(img_folder, mask_folder)


def _pair_folders_in(root: Path) -> tuple[Path, Path] | None:
    """(images, masks) folders directly under ``root``: ``images/`` + ``masks/`` or their other
    usual names (``JPEGImages/`` + ``SegmentationClass/``, ``labels/``, ...), ``instances/``
    for instance labels, or a folder and its ``<name>_masks`` sibling (``root`` = ``train``)."""
    images = _first_dir(root, IMAGE_FOLDERS)
    if images is not None:
        masks = _first_dir(root, MASK_FOLDERS) or _first_dir(root, ("instances",))
        if masks is None and (named := _named_pair(root)) is not None:
            return named  # imgs/ + gts/, images/ + targets/
        if masks is None:
            raise ValueError(
                f"{root}: {images.name}/ has no mask folder beside it (looked for "
                f"{', '.join(MASK_FOLDERS)}, instances)"
            )
        return images, _inner_mask_folder(masks) if _files_by_stem(images) else masks
    beside = [f"{root.name}{sep}{name}" for name in MASK_FOLDERS for sep in "_-"]
    masks = _first_dir(root.parent, beside)
    if masks is not None and _files_by_stem(root):
        return root, masks
    return _named_pair(root)


MASK_WORDS = (
    "mask",
    "label",
    "groundtruth",
    "ground_truth",
    "annotation",
    "segmentation",
    "manual",
    "target",
    "truth",
    "matte",
    "alpha",
    "trimap",
)
MASK_SHORT_WORDS = ("gt", "gts", "seg", "segs")  # mask words only as a whole word of a name


def _named_pair(root: Path) -> tuple[Path, Path] | None:
    """(images, masks) of a folder holding two folders of images and nothing else of the kind,
    one of them named as masks are (a word of :data:`MASK_WORDS` or :data:`MASK_SHORT_WORDS`):
    ISIC's ``ISIC2018_Task1-2_Training_Input/`` + ``ISIC2018_Task1_Training_GroundTruth/``,
    ``imgs/`` + ``gts/``, ``input/`` + ``target/``, a matting set's ``fg/`` + ``alpha/``."""
    if not root.is_dir():
        return None
    folders = [
        sub
        for sub in sorted(root.iterdir())
        if sub.is_dir() and not is_hidden(sub, root) and _files_by_stem(sub)
    ]
    return _mask_named(folders)


SPLIT_FOLDER_WORDS = {**SPLIT_NAMES, "test": ("test", "testing")}


def _split_of(name: str) -> str | None:
    """The split a folder's name names as one of its words (``ISIC2018_Task1_Training_GroundTruth``
    -> ``train``), or None when it names none or more than one."""
    words = set(re.split(r"[^a-z0-9]+", name.lower()))
    found = [split for split, names in SPLIT_FOLDER_WORDS.items() if words & set(names)]
    return found[0] if len(found) == 1 else None


def split_named_pairs(root: Path) -> dict[str, tuple[Path, Path]]:
    """(images, masks) folders per split of a folder holding only pairs of image folders named
    by their split, each pair as :func:`_named_pair` tells images from masks: ISIC 2018's
    ``ISIC2018_Task1-2_Training_Input/`` + ``ISIC2018_Task1_Training_GroundTruth/`` beside the
    ``Validation`` pair. A split's images alone (no masks) are left out; empty when there is no
    training pair or a folder is named by no split."""
    if not root.is_dir():
        return {}
    groups: dict[str, list[Path]] = {}
    for sub in sorted(root.iterdir()):
        if sub.is_dir() and not is_hidden(sub, root) and _files_by_stem(sub):
            split = _split_of(sub.name)
            if split is None:
                return {}
            groups.setdefault(split, []).append(sub)
    pairs = {}
    for split, folders in groups.items():
        if len(folders) == 1 and not _named_as_masks(folders[0]):
            continue  # a split's images without their masks (ISIC's test input): unlabelled
        pairs[split] = _mask_named(folders)
    if "train" not in pairs or None in pairs.values():
        return {}
    return pairs


def _named_as_masks(folder: Path) -> bool:
    name = folder.name.lower()
    words = re.split(r"[^a-z0-9]+", name)
    return any(word in name for word in MASK_WORDS) or any(w in words for w in MASK_SHORT_WORDS)


def _mask_named(folders: list[Path]) -> tuple[Path, Path] | None:
    """(images, masks) of two folders of which exactly one is named as masks are."""
    if len(folders) != 2:
        return None
    named = [_named_as_masks(f) for f in folders]
    return (folders[named.index(False)], folders[named.index(True)]) if sum(named) == 1 else None


def _inner_mask_folder(masks: Path) -> Path:
    """``masks``, or when it holds no image file, the one folder in it that does (Oxford-IIIT
    Pet's ``annotations/trimaps``, beside ``annotations/xmls``)."""
    if _files_by_stem(masks):
        return masks
    inner = [sub for sub in sorted(masks.iterdir()) if sub.is_dir() and _files_by_stem(sub)]
    return inner[0] if len(inner) == 1 else masks


def holds_instance_labels(item: Item) -> bool:
    """Whether the item's mask numbers objects by layout: ``instances/`` (DSB2018) or a Cell
    Tracking Challenge ``SEG/man_seg*.tif``."""
    mask = Path(item.mask)
    return item.objects is None and (
        mask.is_dir()  # a mask per object
        or mask.parent.name == "instances"
        or (mask.parent.name == "SEG" and mask.name.startswith("man_seg"))
    )


def label_image_items(root: str | Path) -> tuple[list[InstanceItem], Categories]:
    """``root/images`` + ``root/instances`` (uint16 label images, 0 = background): one class."""
    return as_instance_items(find_pairs(Path(root), "images", "instances"))


def as_instance_items(
    items: list[Item], first_id: int = 1
) -> tuple[list[InstanceItem], Categories]:
    """Items whose masks are label images (0 = background, each object its own number) as
    instance items of one class, ``object``, numbered from ``first_id``."""
    found = []
    if items and is_colour_mask(items[0].mask):
        raise ValueError(
            f"{items[0].mask}: a colour mask; instance models read label images (0 the "
            "background, 1..N the objects) or objects outlined in COCO, YOLO or LabelMe files"
        )
    for i, item in enumerate(items):
        if item.objects is not None or item.image_page is not None:
            raise ValueError(
                f"{item.mask}: instance models read label images, one file per image (not COCO "
                "objects drawn as classes or pages of a label stack)"
            )
        height, width = stored_size(item.mask)
        found.append(
            InstanceItem(item.image, item.name, first_id + i, height, width, label_image=item.mask)
        )
    return found, Categories((1,), ("object",))


def stack_items(volume: Path, labels: Path) -> list[Item]:
    """One item per page of a multi-page TIFF image stack and its label stack."""
    n_img, n_lab = count_pages(volume), count_pages(labels)
    if n_img != n_lab:
        raise ValueError(f"{labels}: {n_lab} label pages for {n_img} image pages in {volume.name}")
    return [Item(volume, labels, page_name(volume.stem, i), i) for i in range(n_img)]


def ctc_items(root: Path, truth: str = "GT") -> list[Item]:
    """Cell Tracking Challenge: ``NN/tTTT.tif`` with ``NN_GT/SEG/man_segTTT.tif`` (or ``_ST``),
    for every annotated frame of every sequence NN; of 3D sequences, every slice of a 3D label
    stack, or the slices annotated in 2D (``man_seg_TTT_ZZZ.tif``: slice ZZZ of ``tTTT.tif``)."""
    items = []
    for seg_dir in sorted(root.glob(f"[0-9][0-9]_{truth}/SEG")):
        seq = seg_dir.parent.name.split("_")[0]
        for mask in sorted(seg_dir.glob("man_seg*.tif")):
            frame, _, z = mask.stem.removeprefix("man_seg").lstrip("_").partition("_")
            image = root / seq / f"t{frame}.tif"
            if not image.is_file():
                raise ValueError(f"{mask}: no image {image}")
            if z:  # one slice of a 3D image, annotated in 2D
                items.append(Item(image, mask, f"{seq}_t{frame}_z{z}", slice=int(z)))
                continue
            pages = count_pages(mask)
            if pages == 1:
                items.append(Item(image, mask, f"{seq}_t{frame}"))
                continue
            if count_pages(image) != pages:
                raise ValueError(
                    f"{mask}: {pages} label slices for {count_pages(image)} in {image}"
                )
            items += [Item(image, mask, f"{seq}_t{frame}_z{k:03d}", k) for k in range(pages)]
    return sorted(items, key=lambda item: item.name)  # man_seg_000_002 after man_seg001


def csv_items(listing: Path) -> dict[str, list[Item]]:
    """The pairs a CSV lists, by split: columns ``image`` and ``mask`` (paths relative to the
    CSV's folder, or absolute) and an optional ``split`` (train/training, val/validation); rows
    without a split are under "". Items are named by the image's stem, which must be unique."""
    try:  # as spreadsheets save it: a byte-order mark, ';' or tabs, spaces around names
        with open(listing, newline="", encoding="utf-8-sig") as f:
            text = f.read()
        dialect = csv.Sniffer().sniff(text.partition("\n")[0], delimiters=",;\t")
        reader = csv.DictReader(text.splitlines(), dialect=dialect)
        rows = [{k.strip().lower(): v for k, v in row.items() if k} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{listing}: cannot read the list of pairs ({exc})") from None
    columns = set(rows[0]) if rows else set()
    if not {"image", "mask"} <= columns:
        from pixelwise.data.kaggle_rle import is_rle_csv

        kaggle = (
            f"; it holds run-lengths, as Kaggle gives masks: 'pixelwise convert {listing}' makes "
            "a COCO file of them to train on"
            if is_rle_csv(listing)
            else ""
        )
        raise ValueError(
            f"{listing}: a list of pairs needs the columns image and mask (and optionally split); "
            f"found {', '.join(sorted(columns)) or 'no rows'}{kaggle}"
        )
    splits = {name: split for split, names in SPLIT_NAMES.items() for name in names}
    found: dict[str, list[Item]] = {}
    seen: dict[str, int] = {}
    failures = []
    for line, row in enumerate(rows, start=2):
        named = [(row.get(column) or "").strip() for column in ("image", "mask")]
        image, mask = (listing.parent / name for name in named)
        split = (row.get("split") or "").strip().lower()
        if not all(named):
            problem = f"an image and a mask are needed, got {named}"
        elif not image.is_file() or not mask.is_file():
            problem = f"no file {image if not image.is_file() else mask}"
        elif image.stem in seen:
            problem = f"image name {image.stem!r} is already on line {seen[image.stem]} (names must be unique)"
        elif split and split not in splits:
            problem = f"split {split!r} is not one of {', '.join(splits)}"
        else:
            seen[image.stem] = line
            found.setdefault(splits.get(split, ""), []).append(Item(image, mask, image.stem))
            continue
        failures.append(f"{listing}, line {line}: {problem}")  # every bad row named at the end
    if failures:
        raise unusable(failures, "row")
    return found


def coco_items(annotation_file: Path) -> list[Item]:
    """The images of a COCO instances file, each with its objects' class labels: category
    ``k``-th by id is class ``k`` (0 is the background; :func:`read_dataset_info` names them)."""
    items, categories, spec = load_coco(annotation_file)
    check_outlined(spec.get("annotations"), annotation_file)
    return class_items(items, categories, annotation_file)


def coco_folder_file(root: Path) -> Path | None:
    """``root/annotations.json`` when ``root`` is a COCO dataset folder (the file beside the
    images, no mask folder: as `segment --coco` writes one, as Mask R-CNN reads it)."""
    root = Path(root)
    if not root.is_dir() or not (root / "annotations.json").is_file():
        return None
    if _first_dir(root, (*MASK_FOLDERS, "instances")) is not None:
        return None
    return root / "annotations.json"


def outline_instances(
    root: Path,
) -> tuple[dict[str, list[InstanceItem]], Categories, dict] | None:
    """A dataset whose objects are outlined in files of their own, YOLO's (a dataset YAML),
    LabelMe's (:func:`labelme_files`) or a COCO file in its folder (:func:`coco_folder_file`):
    its instance items by split ("" when unsplit), its categories and the same as a parsed COCO
    file; None for other layouts."""
    coco = coco_folder_file(root)
    if coco is not None:
        items, categories, spec = load_coco(coco)
        check_outlined(spec.get("annotations"), coco)
        return {"": items}, categories, spec
    yolo = dataset_yaml(root)
    if yolo is not None:
        return load_yolo(yolo)
    found = labelme_files(Path(root))
    if not found:
        return None
    every = {path: spec for files in found.values() for path, spec in files.items()}
    names = labelme.class_names(Path(root), list(every.values()))
    items, categories, coco = labelme.load_labelme(every, names, IMAGE_FOLDERS)
    by_file: dict[Path, list[InstanceItem]] = {}  # a slide's file: an item per window
    for item in items:
        by_file.setdefault(item.source, []).append(item)
    splits = {key: [i for p in files for i in by_file.get(p, [])] for key, files in found.items()}
    return splits, categories, coco


def outline_splits(root: Path) -> dict[str, list[Item]] | None:
    """:func:`outline_instances` as items whose objects are drawn as classes (class ``k`` the
    ``k``-th name, 0 the background; each item's mask is its annotation file)."""
    found = outline_instances(root)
    if found is None:
        return None
    splits, categories, _ = found
    return {key: class_items(items, categories, root) for key, items in splits.items()}


def cityscapes_splits(root: Path) -> dict[str, tuple[list[Item], str]]:
    """The labelled splits of a Cityscapes folder (:mod:`pixelwise.data.cityscapes`)."""
    return {
        split: ([Item(image, mask, name) for image, mask, name in pairs], f"{root} ({split})")
        for split, pairs in cityscapes.split_pairs(root).items()
    }


def labelme_files(root: Path) -> dict[str, dict[Path, dict]]:
    """LabelMe files of a dataset (else GeoJSON files, read as LabelMe's:
    :func:`~pixelwise.data.geojson.read_geojson`), by split: in ``root`` or its annotation
    folder ("", unsplit; also ``geojson/``, as predict and segment write them), else in its
    ``train``/``val`` folders or theirs; empty when there are none."""
    if not root.is_dir():
        return {}

    def files_in(folder: Path | None) -> dict[Path, dict]:
        if folder is None:
            return {}
        for where in (folder, _first_dir(folder, MASK_FOLDERS), folder / "geojson"):
            found = labelme.annotation_files(where) if where else {}
            found = found or geojson.annotation_files(where)
            if found:
                return found
        return {}

    found = {"": files_in(root)}
    if not found[""]:
        found = {split: files_in(_first_dir(root, names)) for split, names in SPLIT_NAMES.items()}
    return {key: files for key, files in found.items() if files}


def class_items(items: list[InstanceItem], categories: Categories, source: Path) -> list[Item]:
    """Instance items whose objects are drawn as their class labels (each its category's label);
    an item's mask is the file its objects come from (``source`` when it does not say)."""
    if len(categories.ids) >= IGNORE_INDEX:
        raise ValueError(
            f"{source}: {len(categories.ids)} categories; class masks hold at most "
            f"{IGNORE_INDEX - 1} ({IGNORE_INDEX} marks pixels to ignore)"
        )
    try:
        objects = [
            tuple((categories.label(a["category_id"]), a) for a in item.annotations)
            for item in items
        ]
    except KeyError as exc:
        raise ValueError(f"{source}: an annotation without {exc}") from None
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    return [
        Item(
            item.image,
            item.source or Path(source),
            item.name,
            objects=found,
            size=(item.height, item.width),
            window=item.window,
        )
        for item, found in zip(items, objects)
    ]


def find_items(root: Path) -> list[Item]:
    """The labelled images under ``root`` in any layout of the module docstring (not train/val)."""
    root = Path(root)
    if not root.exists():
        raise ValueError(f"{root}: no such file or folder")
    if root.suffix.lower() == ".json" and root.is_file():
        return coco_items(root)
    if root.suffix.lower() == ".csv" and root.is_file():
        return [item for items in csv_items(root).values() for item in items]
    outlined = outline_splits(root)
    if outlined is not None:
        return [item for items in outlined.values() for item in items]
    if cityscapes.label_folder(root) is not None:
        return [item for items, _ in cityscapes_splits(root).values() for item in items]
    folders = _pair_folders_in(root)
    if folders is not None:
        return pair_folders(*folders)
    split_pairs = split_named_pairs(root)
    if split_pairs:
        return [item for folders in split_pairs.values() for item in pair_folders(*folders)]
    volumes = sorted(root.glob("*-volume.tif"))
    if volumes:
        return [
            item
            for v in volumes
            for item in stack_items(v, v.with_name(v.name.replace("-volume", "-labels")))
        ]
    items = (
        ctc_items(root, "GT")
        or ctc_items(root, "ST")
        or same_folder_items(root)
        or collection_items(root)
    )
    if not items:
        raise ValueError(
            f"{root}: no dataset found (expected images/ + masks/ (or labels/, annotations/, ...), "
            "JPEGImages/ + SegmentationClass/, *-volume.tif + *-labels.tif, a Cell Tracking "
            "Challenge layout, a COCO JSON, a YOLO data.yaml, LabelMe JSON files, GeoJSON files, "
            "or a CSV listing "
            "image,mask pairs)"
        )
    return items


def collection_items(root: Path) -> list[Item]:
    """The items of every subfolder of ``root`` that holds images and masks itself (a collection
    of datasets, e.g. ``nuclei_he/cpm15`` + ``nuclei_he/gbm40``), as one dataset."""
    if not root.is_dir():
        return []
    found = {sub: _pair_folders_in(sub) for sub in sorted(root.iterdir()) if sub.is_dir()}
    parts = [sub for sub, folders in found.items() if folders]
    items, seen = [], {}
    for sub in parts:
        for item in pair_folders(*found[sub]):
            if item.name in seen:
                raise ValueError(
                    f"{root}: {item.name!r} is in both {seen[item.name]}/ and {sub.name}/; names "
                    "must be unique across the datasets (rename, or list the pairs in a CSV)"
                )
            seen[item.name] = sub.name
            items.append(item)
    if items and len(items) > len(parts) and first_time(("combined", str(root))):
        counts = ", ".join(
            f"{sub.name}: {sum(seen[i.name] == sub.name for i in items)}" for sub in parts[:10]
        )
        more = ", ..." if len(parts) > 10 else ""
        print(f"{root}: {len(parts)} datasets read as one ({counts}{more})", file=sys.stderr)
    return items


def _listed(pool: list[Item], listing: Path) -> list[Item]:
    by_name = {item.name: item for item in pool}
    wanted = listing.read_text().split()
    missing = [name for name in wanted if name not in by_name]
    if missing:
        raise ValueError(
            f"{listing}: {len(missing)} listed name(s) without an image and a mask: "
            + ", ".join(missing[:10])
        )
    return [by_name[name] for name in wanted]


def csv_splits(listing: Path) -> dict[str, tuple[list[Item], str]]:
    """:func:`split_layout` of a CSV of pairs: rows without a split train with the train rows."""
    listed = csv_items(listing)
    if "val" not in listed and "train" not in listed:
        return {}
    train = listed.get("train", []) + listed.get("", [])
    found = {"train": (train, f"{listing} (train)")}
    if "val" in listed:
        found["val"] = (listed["val"], f"{listing} (val)")
    return found


def split_layout(root: Path) -> dict[str, tuple[list[Item], str]]:
    """The items of each split ('train', 'val') that ``root`` holds, with where they are, when
    it is split by folders (``root/train/...``, ``root/images/train`` + ``root/masks/train``,
    also named ``training``/``validation``) or by Pascal VOC's ``ImageSets/Segmentation/
    <split>.txt``, or a CSV of pairs by its ``split`` column; empty when it is not split, but
    for a dataset of outlines (YOLO, LabelMe), read whole already: its items under ""."""
    root = Path(root)
    if root.suffix.lower() == ".csv" and root.is_file():
        return csv_splits(root)
    outlined = outline_splits(root)
    if outlined is not None:  # "": read whole already, so that it is not read again
        return {
            key: (items, f"{root} ({key})" if key else str(root)) for key, items in outlined.items()
        }
    if cityscapes.label_folder(root) is not None:
        return cityscapes_splits(root)
    found = {}
    images, masks = _first_dir(root, IMAGE_FOLDERS), _first_dir(root, MASK_FOLDERS)
    lists = root / VOC_LISTS
    pool = find_items(root) if images and masks and lists.is_dir() else None
    for split, names in SPLIT_NAMES.items():
        folder = _first_dir(root, names)
        sub_images = images and _first_dir(images, names)
        sub_masks = masks and _first_dir(masks, names)
        listing = next((lists / f"{n}.txt" for n in names if (lists / f"{n}.txt").is_file()), None)
        if folder is not None:
            found[split] = (find_items(folder), str(folder))
        elif sub_images and sub_masks:
            found[split] = (pair_folders(sub_images, sub_masks), str(sub_images))
        elif pool is not None and listing is not None:
            found[split] = (_listed(pool, listing), str(listing))
    if not found:
        named = split_named_pairs(root)
        found = {
            split: (pair_folders(*named[split]), str(named[split][0]))
            for split in SPLIT_NAMES
            if split in named
        }
    return found


def resolve_splits(
    root: Path,
    val_stems: list[str] | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[list[Item], list[Item]]:
    """Train and validation items under ``root`` (see the module docstring for layouts).

    Without a validation split the pool (the training split, or everything) is split: by item
    names in ``val_stems`` when given, else a seeded random ``val_fraction``.
    """
    splits = split_layout(root)
    if "train" in splits:
        pool = splits["train"][0]
        if "val" in splits and not val_stems:
            return pool, splits["val"][0]
    else:
        pool = splits[""][0] if "" in splits else find_items(root)
    return split_pool(pool, val_stems, val_fraction, seed, root)


def split_pool(
    pool: list, val_stems: list[str] | None, val_fraction: float, seed: int, source: str | Path
) -> tuple[list, list]:
    """(train, validation) of any items with a ``name``: those named in ``val_stems`` when
    given, else a seeded random ``val_fraction``, which leaves at least one item on each side
    when there are two or more. ``source`` names the data in errors."""
    if val_stems:
        wanted = set(val_stems)

        def names(item) -> set[str]:  # a slide's window: its own name and the slide's
            slide = getattr(item, "window", None) is not None
            return {item.name, item.image.stem} if slide else {item.name}

        missing = sorted(wanted - set().union(*map(names, pool)))
        if missing:
            raise ValueError(f"{source}: validation stems not found: {', '.join(missing)}")
        held = [not names(p).isdisjoint(wanted) for p in pool]
        return [p for p, h in zip(pool, held) if not h], [p for p, h in zip(pool, held) if h]
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    # windows of one slide (neighbours, the same tissue) stay on one side when there are others
    groups: dict = {}
    for i, item in enumerate(pool):
        slide = item.image if getattr(item, "window", None) is not None else None
        groups.setdefault(slide or i, []).append(i)
    if len(groups) < 2:
        groups = {i: [i] for i in range(len(pool))}
    members = list(groups.values())
    order = np.random.default_rng(seed).permutation(len(members))
    n_val = int(round(len(members) * val_fraction))
    if val_fraction > 0 and len(members) >= 2:  # 2 images at 0.2 would otherwise validate on none
        n_val = min(max(n_val, 1), len(members) - 1)
    val_idx = {i for k in order[:n_val].tolist() for i in members[k]}
    return [p for i, p in enumerate(pool) if i not in val_idx], [
        p for i, p in enumerate(pool) if i in val_idx
    ]


def evaluation_items(root: Path, val_stems: list[str] | None = None) -> tuple[list[Item], str]:
    """The items to score and a description: ``val_stems`` of the pool if given, else the
    validation split, else the training split, else ``root`` itself."""
    root = Path(root)
    if val_stems:
        shown = ",".join(val_stems) if len(val_stems) <= 6 else f"{len(val_stems)} listed stems"
        return resolve_splits(root, val_stems)[1], f"{root} ({shown})"
    splits = split_layout(root)
    for split in ("val", "train", ""):
        if split in splits:
            return splits[split]
    return find_items(root), str(root)
