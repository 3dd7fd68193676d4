"""Object scores of a whole slide: every score ``evaluate`` reports for instance label images
(DSB mean AP, SEG, F1, V_Rand/V_Info, PQ, AJI) on one large pair of label images, with their time
and the process's peak memory. Objects: 20 x 20 cells on a grid, the prediction shifted by 2 px.

python benchmarks/object_scores.py [--sizes 1024,2048,4096] [--quick]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
from timing import add_common, begin

from pixelwise.evaluate import object_metrics


def grid_objects(size: int, cell: int = 20) -> np.ndarray:
    cells = size // cell
    labels = np.zeros((size, size), np.int32)
    ids = np.arange(cells * cells, dtype=np.int32).reshape(cells, cells) + 1
    labels[: cells * cell, : cells * cell] = np.kron(ids, np.ones((cell, cell), np.int32))
    labels[::cell, :] = labels[:, ::cell] = 0
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1024,2048,4096")
    add_common(parser)
    args = parser.parse_args()
    begin(args)
    for size in [1024, 2048] if args.quick else [int(v) for v in args.sizes.split(",")]:
        reference = grid_objects(size)
        prediction = np.roll(reference, 2, axis=1)
        start = time.perf_counter()
        scores = object_metrics([(reference, prediction)])
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{size} x {size}, {scores['reference_objects']} objects: {seconds:.2f} s, peak "
            f"memory so far {peak:.0f} MB; DSB mean AP {scores['dsb_mean_ap']:.3f}, PQ "
            f"{scores.get('pq', float('nan')):.3f}, AJI {scores.get('aji', float('nan')):.3f}"
        )


if __name__ == "__main__":
    main()
