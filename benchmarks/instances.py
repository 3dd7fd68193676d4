"""Instances from a class mask (``pixelwise.instances.semantic_to_instances``), as `segment` makes
them, with scipy's transforms (``binary_fill_holes``, ``distance_transform_edt``) against the
OpenCV ones the package uses (``instances.filled``, ``instances.distance_to_false``), side by
side in one run (interleaved, medians), and whether the labels are the same.

A synthetic mask of touching discs: 1 interior, 2 a ring of border around each (a boundary
model's classes), some interiors with a hole; the boundary model's marker watershed and the
distance-transform watershed of ``foreground`` models.

    python benchmarks/instances.py [--size 4096] [--cells 6000] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import ndimage
from timing import add_common, begin

from pixelwise import instances
from pixelwise.runtime import interleaved


def touching_discs(size: int, cells: int, seed: int = 0) -> np.ndarray:
    """Discs of radius 5-14 px drawn in turn: a border ring of 2 pixels (class 2) around an
    interior (class 1); every fifth interior with a one-pixel hole."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), np.uint8)
    for k in range(cells):
        r = int(rng.integers(5, 15))
        cy, cx = rng.integers(r, size - r, 2)
        yy, xx = np.ogrid[-r : r + 1, -r : r + 1]
        d2 = yy**2 + xx**2
        window = mask[cy - r : cy + r + 1, cx - r : cx + r + 1]
        window[(d2 <= r * r) & (window == 0)] = 2
        window[d2 <= (r - 2) ** 2] = 1
        if k % 5 == 0:
            window[r, r] = 0
    return mask


def with_transforms(fill, distance, run):
    """``run`` with the package's fill and distance functions swapped for these."""

    def call():
        kept = instances.filled, instances.distance_to_false
        instances.filled, instances.distance_to_false = fill, distance
        try:
            return run()
        finally:
            instances.filled, instances.distance_to_false = kept

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--cells", type=int, default=6000)
    parser.add_argument("--repeats", type=int, default=3)
    add_common(parser)
    args = parser.parse_args()
    begin(args)
    size, cells = (2048, 1500) if args.quick else (args.size, args.cells)
    mask = touching_discs(size, cells)
    scipy_side = (ndimage.binary_fill_holes, ndimage.distance_transform_edt)
    opencv_side = (instances.filled, instances.distance_to_false)
    print(f"{size} x {size} class mask, {cells} discs; medians of {args.repeats} after a warm-up")
    print("| watershed | scipy transforms | OpenCV transforms | speed-up | same labels |")
    print("|---|---|---|---|---|")
    for name, options in [
        ("boundary model (grow interiors into borders)", {"border_class": 2}),
        ("foreground model (distance peaks)", {"method": "watershed"}),
    ]:

        def run(options=options):
            return instances.semantic_to_instances(mask, **options)

        calls = {
            "scipy": with_transforms(*scipy_side, run),
            "opencv": with_transforms(*opencv_side, run),
        }
        seconds = interleaved(calls, args.repeats)
        same = np.array_equal(calls["scipy"](), calls["opencv"]())
        print(
            f"| {name} | {seconds['scipy']:.3f} s | {seconds['opencv']:.3f} s | "
            f"{seconds['scipy'] / seconds['opencv']:.2f}x | {'yes' if same else 'NO'} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
