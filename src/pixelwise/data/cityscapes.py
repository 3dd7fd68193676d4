"""Cityscapes as it unpacks: ``leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` and
``gtFine/<split>/<city>/<name>_gtFine_labelIds.png`` (or ``gtCoarse``), read as the benchmark
trains and scores: the 19 evaluated classes (the label ids of the official table that have a
train id, in train-id order), every other label id ignored. The test split has no labels and
is left out."""

from __future__ import annotations

from pathlib import Path

IMAGES = "leftImg8bit"
LABELS = ("gtFine", "gtCoarse")
SPLITS = ("train", "val")
NUM_LABEL_IDS = 34  # label ids 0..33 of the official table (license plate, -1, is never stored)

# (name, label id, colour) of each evaluated class, in train-id order (cityscapesScripts' table)
CLASSES = (
    ("road", 7, (128, 64, 128)),
    ("sidewalk", 8, (244, 35, 232)),
    ("building", 11, (70, 70, 70)),
    ("wall", 12, (102, 102, 156)),
    ("fence", 13, (190, 153, 153)),
    ("pole", 17, (153, 153, 153)),
    ("traffic light", 19, (250, 170, 30)),
    ("traffic sign", 20, (220, 220, 0)),
    ("vegetation", 21, (107, 142, 35)),
    ("terrain", 22, (152, 251, 152)),
    ("sky", 23, (70, 130, 180)),
    ("person", 24, (220, 20, 60)),
    ("rider", 25, (255, 0, 0)),
    ("car", 26, (0, 0, 142)),
    ("truck", 27, (0, 0, 70)),
    ("bus", 28, (0, 60, 100)),
    ("train", 31, (0, 80, 100)),
    ("motorcycle", 32, (0, 0, 230)),
    ("bicycle", 33, (119, 11, 32)),
)


def label_folder(root: Path) -> Path | None:
    """``root/gtFine`` (else ``gtCoarse``) beside ``root/leftImg8bit``; None when ``root`` is
    not a Cityscapes folder."""
    if not (Path(root) / IMAGES).is_dir():
        return None
    return next((Path(root) / n for n in LABELS if (Path(root) / n).is_dir()), None)


def split_pairs(root: Path) -> dict[str, list[tuple[Path, Path, str]]]:
    """(image, label-id mask, name) of each labelled split, in city and file order."""
    labels = label_folder(root)
    found = {}
    for split in SPLITS:
        pairs, missing = [], []
        for image in sorted((Path(root) / IMAGES / split).glob(f"*/*_{IMAGES}.png")):
            name = image.name[: -len(f"_{IMAGES}.png")]
            mask = labels / split / image.parent.name / f"{name}_{labels.name}_labelIds.png"
            (pairs if mask.is_file() else missing).append((image, mask, name))
        if missing:
            raise ValueError(
                f"{root}: {len(missing)} {split} image(s) without {labels.name} label ids, e.g. "
                f"{missing[0][1]}"
            )
        if pairs:
            found[split] = pairs
    if not found:
        raise ValueError(f"{root}: no labelled images in {IMAGES}/train or {IMAGES}/val")
    return found


def dataset_info() -> tuple[list[str], list[list[int]], tuple[int, ...], list[int]]:
    """Class names, colours, the ignored label ids and each class's label id."""
    values = [label_id for _, label_id, _ in CLASSES]
    ignored = tuple(v for v in range(NUM_LABEL_IDS) if v not in values)
    return [n for n, _, _ in CLASSES], [list(c) for _, _, c in CLASSES], ignored, values
