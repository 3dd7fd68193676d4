"""`predict --geojson` on a whole-slide scan: the regions of a mask too large to hold, traced
block by block from its tiled TIFF and joined across blocks (``tiled_region_features``), against
the same mask read whole and traced at once (``region_features``), side by side, each in a
fresh process; prints wall time, peak resident memory and whether the features are the same.

The mask stands in for a tissue and nuclei prediction: a smooth "tissue" class over about half
the slide (one large region winding across every block) and small "nucleus" discs (``--nuclei``
of them) over it, as a segmentation of H&E would give.

    python benchmarks/regions.py [--size 16500] [--nuclei 270000] [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
from timing import add_common, begin

NAMES, COLOURS = {1: "nucleus", 2: "tissue"}, {"nucleus": (200, 0, 0), "tissue": (0, 160, 0)}

TRACE = """
import json, resource, sys, time
import numpy as np, tifffile
from pixelwise.data.geojson import region_features, tiled_region_features
from pixelwise.data.slide import TiffRegions
names, colours = {names!r}, {colours!r}
start, count = time.perf_counter(), 0
with open(sys.argv[3], "w") as out:  # written as they come, as predict --geojson writes them
    if sys.argv[1] == "blocks":
        with TiffRegions(sys.argv[2]) as mask:
            found = tiled_region_features(mask.stored, mask.shape, names, colours)
            for count, item in enumerate(found, start=1):
                out.write(json.dumps(item) + "\\n")
    else:
        for count, item in enumerate(region_features(tifffile.imread(sys.argv[2]), names, colours), start=1):
            out.write(json.dumps(item) + "\\n")
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(seconds, peak, count)
"""


def write_mask(path: Path, size: int, nuclei: int, tile: int = 512) -> None:
    """A size x size class mask as a tiled, compressed TIFF (as ``predict`` writes a slide's)."""
    import cv2

    rng = np.random.default_rng(0)
    coarse = rng.random((size // 400 + 2, size // 400 + 2)).astype(np.float32)
    mask = (cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC) > 0.5) * np.uint8(2)
    for y, x, r in zip(
        *(rng.integers(0, size, nuclei) for _ in range(2)), rng.integers(3, 9, nuclei)
    ):
        cv2.circle(mask, (int(x), int(y)), int(r), 1, -1)
    tifffile.imwrite(path, mask, tile=(tile, tile), compression="zlib", bigtiff=True)


def trace(way: str, mask: Path, out: Path, threads: int) -> tuple[float, float, int]:
    """Seconds, peak RSS (GB) and feature count of tracing ``mask`` one ``way``, in a fresh
    process (its features, sorted, written to ``out``)."""
    code = TRACE.format(names=NAMES, colours=COLOURS)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    command = [sys.executable, "-c", code, way, str(mask), str(out)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"tracing {way} failed:\n{done.stderr}")
    seconds, peak, count = done.stdout.split()[-3:]
    return float(seconds), float(peak), int(count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16500, help="the mask's width and height")
    parser.add_argument("--nuclei", type=int, default=270000, help="discs of the nucleus class")
    add_common(parser)
    args = parser.parse_args()
    begin(args)
    if args.quick:
        args.size, args.nuclei = 6000, 36000
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        write_mask(tmp / "mask.tif", args.size, args.nuclei)
        print(
            f"wrote a {args.size} x {args.size} mask ({args.size**2 / 1e6:.0f} megapixels, "
            f"{args.nuclei} discs) in {time.perf_counter() - start:.1f} s",
            flush=True,
        )
        results = {}
        for way in ("whole", "blocks"):
            results[way] = trace(way, tmp / "mask.tif", tmp / f"{way}.txt", args.threads)
            seconds, peak, count = results[way]
            print(
                f"{way:>6}: {seconds:6.1f} s, peak RSS {peak:.2f} GB, {count} regions", flush=True
            )
        found = [sorted((tmp / f"{way}.txt").read_text().splitlines()) for way in results]
        same = found[0] == found[1]
        (whole_s, whole_gb, _), (blocks_s, blocks_gb, _) = results.values()
        size = (tmp / "blocks.txt").stat().st_size / 1e6
        print(
            f"blocks / whole: time {blocks_s / whole_s:.2f}x, peak RSS {blocks_gb / whole_gb:.2f}x; "
            f"same features: {same} ({size:.0f} MB of JSON)"
        )


if __name__ == "__main__":
    main()
