"""`segment --measure` on a dense field of objects: all objects at once against scikit-image's
regionprops one object at a time (the reference the measurements must equal).

python benchmarks/measure.py [--size 2048] [--cells 15000] [--repeats 3]
"""

from __future__ import annotations

import numpy as np
from timing import median_seconds
from weight_map import dense_field

from pixelwise.measure import measure_objects


def one_at_a_time(labels: np.ndarray, image: np.ndarray) -> list[tuple]:
    """The shape and intensity columns, rounded as the CSV gives them, by regionprops."""
    from skimage.measure import regionprops

    rows = []
    for r in regionprops(labels.astype(np.int64), intensity_image=image):
        rows.append(
            (
                r.label,
                int(r.area),
                round(float(r.centroid[1]), 3),
                round(float(r.centroid[0]), 3),
                tuple(int(v) for v in r.bbox),
                round(float(r.perimeter), 3),
                round(float(r.eccentricity), 4),
                round(float(r.solidity), 4),
                round(float(r.intensity_mean), 3),
            )
        )
    return rows


def as_tuples(rows: list[dict]) -> list[tuple]:
    return [
        (
            r["object"],
            r["area"],
            r["centroid_x"],
            r["centroid_y"],
            (r["bbox_y0"], r["bbox_x0"], r["bbox_y1"], r["bbox_x1"]),
            r["perimeter"],
            r["eccentricity"],
            r["solidity"],
            r["mean_intensity"],
        )
        for r in rows
    ]


def main() -> None:
    args, labels = dense_field(__doc__)
    image = np.random.default_rng(1).integers(0, 256, labels.shape, dtype=np.uint8)
    found = measure_objects(labels, image, ["cell"])
    same = as_tuples(found) == one_at_a_time(labels, image)
    ours = median_seconds(lambda: measure_objects(labels, image, ["cell"]), args.repeats)
    theirs = median_seconds(lambda: one_at_a_time(labels, image), args.repeats)
    print(
        f"{args.size} x {args.size}, {len(found)} objects: all at once {ours:.2f} s, regionprops "
        f"one at a time {theirs:.2f} s: {theirs / ours:.1f}x (medians of {args.repeats}); rows "
        f"{'identical' if same else 'DIFFERENT'}"
    )


if __name__ == "__main__":
    main()
