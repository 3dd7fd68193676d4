"""Sliding-window patch classifier versus its exact fully-convolutional equivalent.

Both compute the centre-pixel class scores for every pixel of one image; prints the time of
each, the speed-up and the largest absolute difference (issue 4's targets: >= 100x, <= 1e-4).

    python benchmarks/patch_vs_fcn.py [--size 512] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch
from timing import add_common, begin

from pixelwise import create_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3, help="FCN timing repeats (median)")
    add_common(parser)
    args = parser.parse_args()
    begin(args)
    if args.quick:
        args.size = 256
    torch.manual_seed(0)
    model = create_model("patch", in_channels=3, num_classes=2).eval()
    x = torch.randn(1, 3, args.size, args.size)
    with torch.no_grad():
        model(x)  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fast = model(x)
            times.append(time.perf_counter() - start)
        t_fcn = sorted(times)[len(times) // 2]
        start = time.perf_counter()
        slow = model.sliding_window(x)
        t_slide = time.perf_counter() - start
    diff = (slow - fast).abs().max().item()
    print(
        f"patch classifier: window {model.window}, {sum(p.numel() for p in model.parameters())} parameters, "
        f"image {args.size} x {args.size}, {args.threads} threads"
    )
    print(f"sliding window (batched windows): {t_slide:9.3f} s")
    print(f"fully convolutional (median of {args.repeats}): {t_fcn:9.3f} s")
    print(f"speed-up: {t_slide / t_fcn:.0f}x   max |difference|: {diff:.2e}")


if __name__ == "__main__":
    main()
