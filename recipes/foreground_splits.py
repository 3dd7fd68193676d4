"""Splits of ../shared/data/foreground for leave-one-source-out training (symlinks, no copies).

    python recipes/foreground_splits.py DATA OUT --holdout SOURCE   # train on the other sources
    python recipes/foreground_splits.py DATA OUT --holdout none      # the bundled model's split
    python recipes/foreground_splits.py DATA OUT --holdout S --coco128 ../shared/data/coco128
    python recipes/foreground_splits.py ../shared/data/coco128 OUT --instances  # to score on

Never trained on, in any split: the fixed fifth of eg1800_train listed in
recipes/eg1800_test_ids.txt (the portrait test) and a development set of 20 photos per source
(seeded, seed 0), which is the validation set of every run, restricted to its training sources:
checkpoints are chosen on those, never on the held-out source. ``OUT/train`` and ``OUT/val``
hold ``<source>_<stem>`` links; ``OUT/test.txt`` lists the held-out source's scored photos.
``--coco128 DIR`` adds to the training photos every COCO instance of DIR's annotations.json
that covers at least 1 % of its photo, as a pair of its photo and that instance's mask
(``coco128_<image stem>_<annotation id>``): for the box model, which is told which object is
meant (docs/results.md (x)). Not with coco_mval held out: that is the same collection.
``--instances``: DATA is a COCO folder, and OUT an images/ + masks/ folder of those instance
pairs alone, kinds of object the foreground models never trained on (docs/results.md (av)).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

SOURCES = ("ccp", "coco_mval", "davis345", "eg1800_train", "weizmann_horses")
DEV_PER_SOURCE = 20
TEST_PER_SOURCE = 100
MIN_INSTANCE = 0.01  # --coco128: the smallest instance added, as a fraction of its photo
HERE = Path(__file__).resolve().parent


def stems(data: Path, source: str) -> list[str]:
    return sorted(p.stem for p in (data / source / "images").glob("*.jpg"))


def eg1800_test() -> set[str]:
    return set((HERE / "eg1800_test_ids.txt").read_text().split())


def dev_set(data: Path, source: str) -> list[str]:
    pool = [s for s in stems(data, source) if source != "eg1800_train" or s not in eg1800_test()]
    order = np.random.default_rng(0).permutation(len(pool))[:DEV_PER_SOURCE]
    return sorted(pool[i] for i in order)


def test_set(data: Path, source: str) -> list[str]:
    """The photos of ``source`` scored when it is held out: a seeded sample of 100 outside the
    development set (for eg1800_train: of the fixed portrait fifth)."""
    pool = (
        sorted(eg1800_test())
        if source == "eg1800_train"
        else [s for s in stems(data, source) if s not in set(dev_set(data, source))]
    )
    order = np.random.default_rng(1).permutation(len(pool))[:TEST_PER_SOURCE]
    return sorted(pool[i] for i in order)


def link(data: Path, out: Path, split: str, source: str, stem: str) -> None:
    name = f"{source}_{stem.replace(' ', '_')}"
    for kind, suffix in (("images", ".jpg"), ("masks", ".png")):
        (out / split / kind).mkdir(parents=True, exist_ok=True)
        (out / split / kind / f"{name}{suffix}").symlink_to(
            (data / source / kind / f"{stem}{suffix}").resolve()
        )


def build(data: Path, out: Path, holdout: str) -> dict[str, int]:
    if out.exists():
        shutil.rmtree(out)
    counts = {"train": 0, "val": 0}
    for source in SOURCES:
        if source == holdout:
            continue
        dev = set(dev_set(data, source))
        for stem in stems(data, source):
            if source == "eg1800_train" and stem in eg1800_test():
                continue
            split = "val" if stem in dev else "train"
            link(data, out, split, source, stem)
            counts[split] += 1
    scored = test_set(data, holdout) if holdout != "none" else []
    (out / "test.txt").write_text("".join(f"{holdout}/{s}\n" for s in scored))
    return counts


def add_instances(coco: Path, folder: Path) -> int:
    """Every instance of ``coco``/annotations.json covering >= MIN_INSTANCE of its photo, as a
    pair in ``folder``/images and ``folder``/masks: a link to the photo and the instance's
    outline as the project rasterises COCO (:func:`pixelwise.data.coco.annotation_mask`) in a
    mask PNG."""
    from PIL import Image

    from pixelwise.data.coco import annotation_mask

    spec = json.loads((coco / "annotations.json").read_text())
    photos = {p["id"]: p for p in spec["images"]}
    for kind in ("images", "masks"):
        (folder / kind).mkdir(parents=True, exist_ok=True)
    added = 0
    for note in spec["annotations"]:
        photo = photos[note["image_id"]]
        width, height = photo["width"], photo["height"]
        if note.get("iscrowd") or note["area"] < MIN_INSTANCE * width * height:
            continue
        name = f"coco128_{Path(photo['file_name']).stem}_{note['id']}"
        mask = annotation_mask(note, height, width) * np.uint8(255)
        Image.fromarray(mask).save(folder / "masks" / f"{name}.png")
        image = (coco / "images" / photo["file_name"]).resolve()
        (folder / "images" / f"{name}{image.suffix}").symlink_to(image)
        added += 1
    return added


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--holdout", choices=[*SOURCES, "none"])
    parser.add_argument("--coco128", help="also train on this COCO folder's instances (box model)")
    parser.add_argument(
        "--instances", action="store_true", help="DATA is a COCO folder: its instances alone"
    )
    args = parser.parse_args()
    if args.instances:
        print(f"{args.out}: {add_instances(Path(args.data), Path(args.out))} COCO instances")
        return
    if args.holdout is None:
        parser.error("--holdout is required (or --instances)")
    if args.coco128 and args.holdout == "coco_mval":
        parser.error("--coco128 with coco_mval held out: both come from COCO")
    counts = build(Path(args.data), Path(args.out), args.holdout)
    instances = add_instances(Path(args.coco128), Path(args.out) / "train") if args.coco128 else 0
    print(
        f"{args.out}: {counts['train']} training photos (+ {instances} COCO instances), "
        f"{counts['val']} validation photos; held out: {args.holdout}"
    )


if __name__ == "__main__":
    main()
