"""Tried, not adopted: Macenko stain normalisation of H&E images before segmenting their nuclei.

    python recipes/nuclei_stain_normalization.py [CHECKPOINT] [--data ../shared/data]

Each image's two stains are estimated (``pixelwise.measure.estimate_stains``, Macenko et al.
2009), its pixels unmixed into the two stains' amounts, the amounts scaled so that their 99th
percentiles match a reference's, and the image mixed again with the reference's vectors. Two
references: the H&E images the bundled ``nuclei`` model trained on (nuclei_he/cpm15, pooled),
and the DSB2018 training images of the stained-tissue type (not the validation ids). Scored as
``recipes/nuclei_eval.py`` scores (DSB2018 mean AP per image; Otsu + watershed beside it) on the
held-out gbm40, the 9 stained-tissue validation ids and cpm15. An image with too few stained
pixels to estimate its stains is segmented as it is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from pixelwise.checkpoint import load_model
from pixelwise.data.io import read_image, read_mask
from pixelwise.data.layouts import find_pairs
from pixelwise.inference import segment
from pixelwise.measure import estimate_stains, optical_density
from pixelwise.metrics import dsb_average_precision

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from nuclei_eval import image_type, otsu_watershed, sets  # noqa: E402


def stains_of(images: list[np.ndarray]) -> np.ndarray:
    """(2, 3): hematoxylin's vector, then the other stain's."""
    return np.stack(list(estimate_stains(images).values()))


def amounts(image: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """(N, 2): each pixel's amount of each stain (least squares)."""
    od = optical_density(image).reshape(-1, 3).astype(np.float64)
    return od @ np.linalg.pinv(vectors)


def reference(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    vectors = stains_of(images)
    pooled = np.concatenate([amounts(i, vectors) for i in images])
    return vectors, np.percentile(pooled, 99, axis=0)


def normalized(image: np.ndarray, ref: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    vectors, top = ref
    own = amounts(image, stains_of([image]))
    own *= top / np.maximum(np.percentile(own, 99, axis=0), 1e-6)
    rgb = 255 * np.power(10.0, -(own @ vectors))
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8).reshape(image.shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", default="nuclei")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    val = set((HERE / "dsb2018_val_ids.txt").read_text().split())
    dsb = find_pairs(args.data / "dsb2018" / "train", "images", "instances")
    stained = [read_image(p.image)[..., :3] for p in dsb if p.name not in val]
    stained = [i for i in stained if image_type(i) == "stained tissue"]
    cpm15 = find_pairs(args.data / "nuclei_he" / "cpm15", "images", "instances")
    refs = {
        "cpm15": reference([read_image(p.image) for p in cpm15]),
        "dsb2018 stained (train)": reference(stained),
    }
    seg, every = load_model(args.checkpoint), sets(args.data)
    for name in ("nuclei_he/gbm40", "dsb2018 val: stained tissue", "nuclei_he/cpm15"):
        scores: dict[str, list] = {"as it is": [], "Otsu + watershed": []}
        for item in every[name]:
            image, truth = read_image(item.image)[..., :3], read_mask(item.mask)
            found = {
                "as it is": segment(seg, image, min_size=10),
                "Otsu + watershed": otsu_watershed(image),
            }
            for ref_name, ref in refs.items():
                try:
                    found[f"to {ref_name}"] = segment(seg, normalized(image, ref), min_size=10)
                except ValueError:  # too few stained pixels: as it is
                    found[f"to {ref_name}"] = found["as it is"]
            for method, labels in found.items():
                scores.setdefault(method, []).append(dsb_average_precision(truth, labels))
        means = ", ".join(
            f"{m} {np.mean([s['mean_ap'] for s in v]):.4f}" for m, v in scores.items()
        )
        print(f"{name} ({len(every[name])} images): DSB mean AP {means}", flush=True)


if __name__ == "__main__":
    main()
