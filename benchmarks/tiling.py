"""Overlap-tile prediction of a huge image with bounded memory (issue 5 target: 8192 x 8192
with peak RSS <= 3 GB); prints megapixels per second and the process's peak resident memory.

Uses an untrained default U-Net (speed and memory do not depend on the weights).

    python benchmarks/tiling.py [--size 8192] [--tile 1024] [--overlap 64] [--channels 1]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch
from timing import add_common, begin

from pixelwise import create_model
from pixelwise.data.encoding import Normalization
from pixelwise.inference import predict_tiled
from pixelwise.runtime import resolve_precision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--precision", default="auto")
    add_common(parser)
    args = parser.parse_args()
    begin(args)
    if args.quick:
        args.size = 2048
    torch.manual_seed(0)
    net = create_model("unet", in_channels=args.channels, num_classes=2).eval()
    image = np.random.default_rng(0).integers(
        0, 255, (args.size, args.size, args.channels), dtype=np.uint8
    )
    norm = Normalization([0.5] * args.channels, [0.25] * args.channels)
    start = time.perf_counter()
    mask = predict_tiled(net, image, norm, args.tile, args.overlap, args.precision)
    seconds = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    mp = args.size * args.size / 1e6
    print(
        f"U-Net (7.8 M params, {resolve_precision(args.precision)}), {args.size} x {args.size} x {args.channels}, "
        f"tile {args.tile}, overlap {args.overlap}, {torch.get_num_threads()} threads"
    )
    print(
        f"{seconds:.1f} s, {mp / seconds:.2f} megapixels/s, peak RSS {peak_gb:.2f} GB (target <= 3 GB); "
        f"mask {mask.shape} {mask.dtype}"
    )


if __name__ == "__main__":
    main()
