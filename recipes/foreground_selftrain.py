"""Self-training on a held-out source's photos without their masks (docs/results.md (i)).

    python recipes/foreground_selftrain.py RUNS SOURCE OUT [--mix [--masks]] [--data DIR] [--photos 200]

Up to 200 photos of SOURCE (seeded; never its development or test photos, nor the fixed portrait
fifth) are linked into ``OUT/photos`` for ``pixelwise adapt``: the leave-one-source-out pair of
SOURCE (``RUNS/loso-SOURCE/best.pt``, which never saw the source, with its box model
``RUNS/box-SOURCE/best.pt``) labels them by its own cut-out and is fine-tuned on them.

``--mix`` builds the variant tried first instead: the pair cuts the photos out here (alpha >
0.5 as mask), and ``OUT/train`` holds them plus as many labelled photos drawn from the run's own
training split (``RUNS/loso-SOURCE-data/train``: the other four sources), ``OUT/val`` the run's
validation photos, for ``pixelwise train --weights``. ``--mix --masks``: the same with the
photos' own masks instead of the cut (a user who draws masks for a few photos).
``recipes/foreground_selftrain.sh`` runs either and scores the test photos.
"""

from __future__ import annotations

import argparse
import os
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
from foreground_splits import dev_set, eg1800_test, stems, test_set
from PIL import Image

PHOTOS = 200


def unlabelled_pool(data: Path, source: str, photos: int = PHOTOS) -> list[str]:
    """Up to ``photos`` stems of ``source`` that are never scored: not its development or test
    photos, not the portrait fifth (seeded, seed 0)."""
    scored = set(dev_set(data, source)) | set(test_set(data, source)) | eg1800_test()
    pool = [s for s in stems(data, source) if s not in scored]
    return sorted(random.Random(0).sample(pool, min(photos, len(pool))))


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.realpath(target))


def build(
    data: Path,
    split: Path,
    out: Path,
    source: str,
    cut: Callable[[Path], np.ndarray],
    photos: int = PHOTOS,
) -> int:
    """Write ``out`` (see the module's docstring); ``cut(image_path)`` is the boolean mask a
    photo is labelled with. Returns the number of pseudo-labelled photos."""
    pool = unlabelled_pool(data, source, photos)
    (out / "train" / "masks").mkdir(parents=True, exist_ok=True)
    for stem in pool:
        image = data / source / "images" / f"{stem}.jpg"
        name = f"pseudo_{stem.replace(' ', '_')}"
        mask = np.where(cut(image), 255, 0).astype(np.uint8)
        Image.fromarray(mask).save(out / "train" / "masks" / f"{name}.png")
        _link(image, out / "train" / "images" / f"{name}.jpg")
    labelled = sorted(p.stem for p in (split / "train" / "images").glob("*.jpg"))
    random.Random(0).shuffle(labelled)
    for stem in labelled[: len(pool)]:
        for kind, suffix in (("images", ".jpg"), ("masks", ".png")):
            _link(
                split / "train" / kind / f"{stem}{suffix}", out / "train" / kind / f"{stem}{suffix}"
            )
    for image in (split / "val" / "images").glob("*.jpg"):
        _link(image, out / "val" / "images" / image.name)
        mask = split / "val" / "masks" / f"{image.stem}.png"
        _link(mask, out / "val" / "masks" / mask.name)
    return len(pool)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("source")
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/foreground"))
    parser.add_argument("--photos", type=int, default=PHOTOS)
    parser.add_argument("--mix", action="store_true", help="with labelled photos of the others")
    parser.add_argument("--masks", action="store_true", help="--mix: the photos' own masks")
    args = parser.parse_args()
    if not args.mix:
        pool = unlabelled_pool(args.data, args.source, args.photos)
        for stem in pool:
            _link(
                args.data / args.source / "images" / f"{stem}.jpg",
                args.out / "photos" / f"{stem}.jpg",
            )
        print(f"{args.out}/photos: {len(pool)} photos of {args.source}")
        return
    import torch

    from pixelwise.cutout import get_model, remove_background
    from pixelwise.data.io import read_image, read_mask

    if args.masks:
        masks = args.data / args.source / "masks"
        count = build(
            args.data,
            args.runs / f"loso-{args.source}-data",
            args.out,
            args.source,
            lambda path: read_mask(masks / f"{path.stem}.png") > 0,
            args.photos,
        )
        print(f"{args.out}: {count} photos of {args.source} with their masks, {count} others")
        return

    torch.set_num_threads(min(2, torch.get_num_threads()))
    model = get_model(args.runs / f"loso-{args.source}" / "best.pt")
    box_model = get_model(args.runs / f"box-{args.source}" / "best.pt")

    def cut(path: Path) -> np.ndarray:
        alpha = remove_background(read_image(path), model, box_model=box_model, mask_only=True)
        return np.asarray(alpha) > 127

    split = args.runs / f"loso-{args.source}-data"
    count = build(args.data, split, args.out, args.source, cut, args.photos)
    print(f"{args.out}: {count} pseudo-labelled photos of {args.source}, {count} labelled ones")


if __name__ == "__main__":
    main()
