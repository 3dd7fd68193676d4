"""Seconds per 1024 x 768 photo for background removal: the model alone, and end to end
(resize, model, guided-filter upsampling, post-processing, RGBA assembly), without and with
alpha matting; and the default end to end on a 4000 x 3000 photo. Medians.

    python benchmarks/remove_bg.py [--model foreground] [--box-model BOX] [--threads 2] [--repeats 5] [--quick]

The photo is scikit-image's astronaut (shipped with the package), resized to 1024 x 768.
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image
from timing import add_common, begin, median_seconds


def main() -> None:
    from skimage import data

    from pixelwise.cutout import (
        box_helper,
        box_helper_name,
        foreground_probability,
        get_model,
        remove_background,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="foreground")
    parser.add_argument(
        "--box-model", help="default: the bundled foreground-box beside the bundled model"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model-size", type=int, default=320)
    add_common(parser)
    args = parser.parse_args()
    begin(args)
    if args.quick:
        args.repeats = 2
    photo = np.asarray(Image.fromarray(data.astronaut()).resize((1024, 768), Image.LANCZOS))
    phone = np.asarray(Image.fromarray(data.astronaut()).resize((4000, 3000), Image.BICUBIC))
    seg = get_model(args.model)
    helper_name = box_helper_name(args.model, args.box_model)
    helper = box_helper(args.model, args.box_model)
    rows = [
        ("model only", lambda: foreground_probability(seg, photo, args.model_size)),
        (
            "--method model",
            lambda: remove_background(photo, seg, "model", model_size=args.model_size),
        ),
        (
            "--method model, plain fp32",
            lambda: remove_background(
                photo, seg, "model", model_size=args.model_size, precision="fp32"
            ),
        ),
        (
            "graphcut (default)",
            lambda: remove_background(
                photo, seg, "graphcut", model_size=args.model_size, box_model=helper
            ),
        ),
        (
            "graphcut, plain fp32",
            lambda: remove_background(
                photo,
                seg,
                "graphcut",
                model_size=args.model_size,
                precision="fp32",
                box_model=helper,
            ),
        ),
        (
            "graphcut, no box model",
            lambda: remove_background(photo, seg, "graphcut", model_size=args.model_size),
        ),
        (
            "box request (graph cut)",
            lambda: remove_background(
                photo, seg, box=(200, 100, 800, 700), model_size=args.model_size, box_model=helper
            ),
        ),
        (
            "end to end + matting",
            lambda: remove_background(
                photo, seg, matting=True, model_size=args.model_size, box_model=helper
            ),
        ),
        (
            "graphcut, 4000 x 3000 photo",  # a phone's 12 megapixels: the full-size steps count
            lambda: remove_background(
                phone, seg, "graphcut", model_size=args.model_size, box_model=helper
            ),
        ),
        (
            "grabcut end to end",
            lambda: remove_background(photo, method="grabcut", model_size=args.model_size),
        ),
    ]
    print(
        f"1024 x 768 photo (one row 4000 x 3000), model {args.model} at {args.model_size} px, box model "
        f"{helper_name or 'none'}, {args.threads} threads, "
        f"median of {args.repeats}"
    )
    for name, fn in rows:
        print(f"{name:<28}{median_seconds(fn, args.repeats):>8.3f} s", flush=True)


if __name__ == "__main__":
    main()
