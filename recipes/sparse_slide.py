"""A sparsely annotated slide from nuclei_he, for docs/results.md (ae): 12 of gbm40's 39 H&E
images (drawn with seed 0) tiled 3 x 4 into one JPEG-tiled TIFF, 40 % of each image's nuclei
(drawn at random) outlined beside it in GeoJSON, nothing else, as a pathologist outlines some
nuclei of a slide in QuPath; the other 27 gbm40 images, every nucleus labelled, held out.

    python recipes/sparse_slide.py ../shared/data/nuclei_he/gbm40 OUT

writes OUT/train/slide.tif + slide.geojson and OUT/held/{images,instances} (links to the
data's files). The mosaic (1536 x 2048) is a slide when PIXELWISE_MAX_PIXELS is under its
3.1 megapixels (recipes/sparse_slide.sh sets 2,000,000)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import tifffile

from pixelwise.data.geojson import object_features
from pixelwise.data.io import read_image, read_mask

TILE = 256


def build(data: Path, out: Path, share: float = 0.4, rows: int = 3, cols: int = 4) -> dict:
    """Write the slide, its GeoJSON and the held-out folder; the counts written."""
    files = sorted((data / "images").iterdir())
    rng = np.random.default_rng(0)
    order = rng.permutation(len(files))
    drawn = [files[i] for i in order[: rows * cols]]
    held = [files[i] for i in order[rows * cols :]]
    images = [read_image(f) for f in drawn]
    labels = [read_mask(data / "instances" / f"{f.stem}.png") for f in drawn]
    h, w = min(i.shape[0] for i in images), min(i.shape[1] for i in images)
    mosaic = np.concatenate(
        [np.concatenate([i[:h, :w] for i in images[r * cols : (r + 1) * cols]], 1)
         for r in range(rows)]
    )  # fmt: skip
    (out / "train").mkdir(parents=True, exist_ok=True)

    def tiles():
        for y in range(0, mosaic.shape[0], TILE):
            for x in range(0, mosaic.shape[1], TILE):
                part = mosaic[y : y + TILE, x : x + TILE]
                pad = ((0, TILE - part.shape[0]), (0, TILE - part.shape[1]), (0, 0))
                yield np.pad(part, pad)

    tifffile.imwrite(out / "train" / "slide.tif", tiles(), shape=mosaic.shape, dtype=np.uint8,
                     tile=(TILE, TILE), photometric="rgb", compression="jpeg")  # fmt: skip
    features = []
    for k, lab in enumerate(labels):
        lab = lab[:h, :w].astype(np.int64)
        ids = [int(i) for i in np.unique(lab) if i]
        kept = rng.choice(ids, int(share * len(ids)), replace=False).tolist()
        lab[~np.isin(lab, kept)] = 0
        r, c = divmod(k, cols)
        names = dict.fromkeys(kept, "nucleus")
        features += object_features(lab, names, {"nucleus": (255, 0, 0)}, offset=(r * h, c * w))
    collection = {"type": "FeatureCollection", "features": features}
    (out / "train" / "slide.geojson").write_text(json.dumps(collection))
    for sub in ("images", "instances"):
        (out / "held" / sub).mkdir(parents=True, exist_ok=True)
    for f in held:
        mask = data / "instances" / f"{f.stem}.png"
        for source, sub in ((f, "images"), (mask, "instances")):
            link = out / "held" / sub / source.name
            link.unlink(missing_ok=True)
            link.symlink_to(source.resolve())
    return {"slide": mosaic.shape[:2], "nuclei": len(features), "held": len(held)}


if __name__ == "__main__":
    print(build(Path(sys.argv[1]), Path(sys.argv[2])))
