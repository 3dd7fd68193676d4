"""U-Net border weight map on a 1024 x 1024 label image with 300 cells (issue 5 target: <= 1 s).

python benchmarks/weight_map.py [--size 1024] [--cells 300] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from timing import add_common, begin

from pixelwise.data.weight_map import unet_weight_map


def random_cells(size: int, cells: int, seed: int = 0) -> np.ndarray:
    """Touching and separate discs of radius 6-16 px, later cells drawn over earlier ones."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((size, size), np.int32)
    for i in range(1, cells + 1):
        r = int(rng.integers(6, 17))
        cy, cx = rng.integers(r, size - r, 2)
        yy, xx = np.ogrid[cy - r : cy + r + 1, cx - r : cx + r + 1]
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        labels[cy - r : cy + r + 1, cx - r : cx + r + 1][disc] = i
    return labels


def field_arguments(doc: str, size: int, cells: int, repeats: int, quick: dict):
    """The command line of a script timed on a field of cells (``--size``, ``--cells``,
    ``--repeats``, with these defaults), applied; ``--quick`` sets the values of ``quick``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--size", type=int, default=size)
    parser.add_argument("--cells", type=int, default=cells)
    parser.add_argument("--repeats", type=int, default=repeats)
    add_common(parser)
    args = parser.parse_args()
    begin(args)
    if args.quick:
        vars(args).update(quick)
    return args


def dense_field(doc: str):
    """The command line of a script timed on a dense field of objects (``--quick``: 1024 x 1024,
    4,000 cells, 2 repeats), applied, and its field: the arguments and :func:`random_cells` of
    them."""
    args = field_arguments(doc, 2048, 15000, 3, {"size": 1024, "cells": 4000, "repeats": 2})
    return args, random_cells(args.size, args.cells)  # discs of radius 6-16, later over earlier


def main() -> None:
    args = field_arguments(__doc__, 1024, 300, 5, {"repeats": 2})
    labels = random_cells(args.size, args.cells)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        unet_weight_map(labels)
        times.append(time.perf_counter() - start)
    print(
        f"{args.size} x {args.size}, {len(np.unique(labels)) - 1} cells: median {statistics.median(times):.3f} s "
        f"over {args.repeats} runs (target <= 1 s)"
    )


if __name__ == "__main__":
    main()
