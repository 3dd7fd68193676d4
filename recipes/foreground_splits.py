"""Splits of ../shared/data/foreground for leave-one-source-out training (symlinks, no copies).

    python recipes/foreground_splits.py DATA OUT --holdout SOURCE   # train on the other sources
    python recipes/foreground_splits.py DATA OUT --holdout none      # the bundled model's split

Never trained on, in any split: the fixed fifth of eg1800_train listed in
recipes/eg1800_test_ids.txt (the portrait test) and a development set of 20 photos per source
(seeded, seed 0), which is the validation set of every run, restricted to its training sources:
checkpoints are chosen on those, never on the held-out source. ``OUT/train`` and ``OUT/val``
hold ``<source>_<stem>`` links; ``OUT/test.txt`` lists the held-out source's scored photos.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

SOURCES = ("ccp", "coco_mval", "davis345", "eg1800_train", "weizmann_horses")
DEV_PER_SOURCE = 20
TEST_PER_SOURCE = 100
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--holdout", required=True, choices=[*SOURCES, "none"])
    args = parser.parse_args()
    counts = build(Path(args.data), Path(args.out), args.holdout)
    print(
        f"{args.out}: {counts['train']} training, {counts['val']} validation photos; held out: {args.holdout}"
    )


if __name__ == "__main__":
    main()
