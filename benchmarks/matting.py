"""Closed-form matting of a large photo: pymatting's whole-photo ``estimate_alpha_cf`` against
``pixelwise.matting.closed_form_matting`` (the unknown band only), side by side in one run.
Seconds and peak resident memory, each solve in a fresh process; the largest alpha difference.

    python benchmarks/matting.py [--megapixels 12] [--repeats 1] [--quick]

The photo is scikit-image's astronaut (shipped with the package) resized to the size asked
for, with a little noise as a camera sensor gives; the trimap is what ``remove-bg --matting``
makes from the astronaut's cut-out: a band 1.5 network pixels wide on either side of the edge.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from timing import add_common, begin

SOLVE = """
import json, resource, sys, time
import numpy as np
rgb, tri = np.load(sys.argv[1]), np.load(sys.argv[2])
start = time.perf_counter()
if sys.argv[3] == "whole":
    from pymatting import estimate_alpha_cf
    alpha = estimate_alpha_cf(rgb.astype(np.float64) / 255.0, tri).clip(0, 1)
else:
    from pixelwise.matting import closed_form_matting
    alpha = closed_form_matting(rgb, tri)
seconds = time.perf_counter() - start
np.save(sys.argv[4], alpha.astype(np.float32))
print(json.dumps({"seconds": seconds, "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}))
"""


def photo_and_trimap(megapixels: float) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image
    from skimage import data

    from pixelwise.cutout import get_model, matting_band, remove_background, trimap

    small = data.astronaut()
    side = int(round((megapixels * 1e6) ** 0.5))
    rgb = np.asarray(Image.fromarray(small).resize((side, side), Image.BICUBIC), np.float32)
    rgb += np.random.default_rng(0).normal(0, 2, rgb.shape).astype(np.float32)
    rgb = np.clip(rgb, 0, 255).astype(np.uint8)
    alpha = np.asarray(remove_background(small, get_model("foreground")))[..., 3]
    mask = np.asarray(Image.fromarray(alpha).resize((side, side), Image.BILINEAR)) > 127
    return rgb, trimap(mask, matting_band(side / 320))  # the network sees 320 px


def run(kind: str, rgb_file: Path, tri_file: Path, out: Path, threads: int) -> dict:
    env = {"OMP_NUM_THREADS": str(threads), "NUMBA_NUM_THREADS": str(threads)}
    result = subprocess.run(
        [sys.executable, "-c", SOLVE, str(rgb_file), str(tri_file), kind, str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    if result.returncode != 0:
        return {"seconds": float("nan"), "peak_gb": float("nan"), "error": result.stderr[-300:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--repeats", type=int, default=1)
    add_common(parser)
    args = parser.parse_args()
    begin(args)
    if args.quick:
        args.megapixels = min(args.megapixels, 4.0)
    rgb, tri = photo_and_trimap(args.megapixels)
    print(
        f"{rgb.shape[1]} x {rgb.shape[0]} photo, {(tri == 0.5).mean():.1%} unknown, "
        f"{args.threads} threads, median of {args.repeats}, each solve in a fresh process"
    )
    with tempfile.TemporaryDirectory() as tmp:
        files = [Path(tmp, name) for name in ("rgb.npy", "tri.npy")]
        np.save(files[0], rgb)
        np.save(files[1], tri)
        rows = {}
        for kind in ("whole", "band"):
            runs = [
                run(kind, *files, Path(tmp, f"{kind}.npy"), args.threads)
                for _ in range(args.repeats)
            ]
            rows[kind] = {
                key: float(np.median([r[key] for r in runs])) for key in ("seconds", "peak_gb")
            }
            if "error" in runs[-1]:
                print(f"{kind}: failed ({runs[-1]['error'].strip().splitlines()[-1]})")
        for kind, label in (
            ("whole", "pymatting, whole photo"),
            ("band", "pixelwise, unknown band"),
        ):
            print(
                f"{label:<26}{rows[kind]['seconds']:>8.1f} s{rows[kind]['peak_gb']:>8.2f} GB peak"
            )
        if all(Path(tmp, f"{k}.npy").exists() for k in rows):
            diff = np.abs(np.load(Path(tmp, "whole.npy")) - np.load(Path(tmp, "band.npy"))).max()
            print(f"largest alpha difference {diff:.1e}")
        ratio = rows["whole"]["peak_gb"] / rows["band"]["peak_gb"]
        print(
            f"band vs whole: {rows['whole']['seconds'] / rows['band']['seconds']:.2f}x faster, {ratio:.2f}x less peak memory"
        )


if __name__ == "__main__":
    main()
