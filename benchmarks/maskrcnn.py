"""CPU inference time per image of Mask R-CNN at the default and a small image size, for the
ResNet-18-FPN and ResNet-50-FPN backbones (untrained, seeded; 80 classes; one 640 x 480
photo; 2 threads; median of N). Detection counts are capped so timing does not depend on how
many boxes an untrained head proposes.

    python benchmarks/maskrcnn.py [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image
from timing import add_common, begin, median_seconds


def main() -> None:
    from skimage import data

    from pixelwise.models.mask_rcnn import mask_rcnn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    add_common(parser)
    args = parser.parse_args()
    begin(args)
    backbones = ("resnet18",) if args.quick else ("resnet18", "resnet50")
    sizes = (
        ((320, 533, "small"),)
        if args.quick
        else ((800, 1333, "default"), (512, 853, "pixelwise default"), (320, 533, "small"))
    )
    args.repeats = 2 if args.quick else args.repeats
    photo = np.asarray(Image.fromarray(data.coffee()).resize((640, 480)))
    x = torch.from_numpy(photo.transpose(2, 0, 1).copy()).float() / 255
    print(
        f"one 640 x 480 photo, {args.threads} threads, median of {args.repeats} (after one warm-up)"
    )
    print(f"{'backbone':<10}{'image size (short/long)':>26}{'s / image':>11}")
    for backbone in backbones:
        for min_size, max_size, label in sizes:
            torch.manual_seed(0)
            model = mask_rcnn(80, backbone, min_size=min_size, max_size=max_size).eval()
            model.roi_heads.detections_per_img = 20
            with torch.inference_mode():
                seconds = median_seconds(lambda: model([x]), args.repeats)
            print(
                f"{backbone:<10}{f'{min_size}/{max_size} ({label})':>26}{seconds:>11.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
