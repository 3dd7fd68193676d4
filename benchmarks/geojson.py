"""`segment --geojson` on a dense field of objects: every object's outline traced at once against
one object at a time (each object's mask traced alone, as `--geojson` did before; the reference
the outlines must equal). The polygons as arrays, before they become GeoJSON's nested lists.

python benchmarks/geojson.py [--size 2048] [--cells 15000] [--repeats 3]
"""

from __future__ import annotations

import json

from scipy import ndimage
from timing import median_seconds
from weight_map import dense_field

from pixelwise.data.geojson import label_polygons, polygons


def one_at_a_time(labels) -> dict:
    """Each object's polygons from its own mask in its box."""
    found = {}
    for k, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is not None:
            found[k] = polygons(labels[box] == k, (box[0].start, box[1].start))
    return found


def as_lists(shapes: dict) -> str:
    return json.dumps({k: [[r.tolist() for r in s] for s in v] for k, v in shapes.items()})


def main() -> None:
    args, labels = dense_field(__doc__)
    found = label_polygons(labels)
    same = as_lists(found) == as_lists(one_at_a_time(labels))
    ours = median_seconds(lambda: label_polygons(labels), args.repeats)
    theirs = median_seconds(lambda: one_at_a_time(labels), args.repeats)
    print(
        f"{args.size} x {args.size}, {len(found)} objects: outlines all at once {ours:.2f} s, one "
        f"object at a time {theirs:.2f} s: {theirs / ours:.1f}x (medians of {args.repeats}); "
        f"geometries {'identical' if same else 'DIFFERENT'}"
    )


if __name__ == "__main__":
    main()
