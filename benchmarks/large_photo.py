"""remove-bg on a phone's and a 48-megapixel camera's photo: wall time and peak memory of the
command in a fresh process, and the wide background blur against the same blur at full size.

    python benchmarks/large_photo.py [--model foreground] [--repeats 3] [--threads 2] [--quick]
                                     [--matting]

Each row runs ``pixelwise remove-bg PHOTO -o CUT.png`` (with the row's options) as its own
process, as a user does, and reads the process's peak resident memory from the operating system
(``os.wait4``). "bytes / pixel" is that peak less the same command's on a 64 x 64 photo (torch,
the models, the runtime), over the photo's pixels: what the photo itself costs. The blur rows
time :func:`pixelwise.cutout.blurred_background` (computed on the photo shrunk to a sigma of
``BLUR_SIGMA`` pixels) beside the same weighted Gaussian at full size, and print the largest
difference of the two composites in grey levels. The photos are scikit-image's astronaut,
enlarged (bicubic) and saved as JPEG (quality 90); ``--quick``: the 12-megapixel photo alone.
``--matting`` adds three rows per photo: ``--matting --matting-megapixels 0`` (at full size),
``--matting`` (the default bound, 16 megapixels) and ``--matting --matting-megapixels 2``
(matted shrunk to 2 megapixels, the alpha enlarged); at full size a 48-megapixel photo takes
minutes and gigabytes.
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
from PIL import Image
from timing import add_common, begin, median_seconds

SIZES = {"12 MP (4032 x 3024)": (4032, 3024), "48 MP (8000 x 6000)": (8000, 6000)}


def run_command(argv: list[str], threads: int) -> tuple[float, int]:
    """(wall seconds, peak resident bytes) of one command in its own process."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: nothing blocks on it
        start = time.perf_counter()
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=errors, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            raise SystemExit(f"{' '.join(argv)} failed: {errors.read().decode()[-500:]}")
    return seconds, usage.ru_maxrss * 1024  # kilobytes on Linux


def exact_blur(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The weighted Gaussian blur of blurred_background, at full size (its earlier form)."""
    import cv2

    sigma = max(2.0, 0.015 * max(rgb.shape[:2]))
    away = (1.0 - alpha).astype(np.float32)
    spread = cv2.GaussianBlur(rgb.astype(np.float32) * away[..., None], (0, 0), sigma)
    return spread / np.maximum(cv2.GaussianBlur(away, (0, 0), sigma), 1e-6)[..., None]


def blur_rows(photo: Path, model: str, repeats: int) -> None:
    """The blur of one photo, shrunk and at full size: seconds and the composites' difference."""
    from pixelwise.cutout import blurred_background, remove_background

    rgb = np.asarray(Image.open(photo).convert("RGB"))
    alpha = np.asarray(remove_background(photo, model, mask_only=True), np.float32) / 255

    def composite(background: np.ndarray) -> np.ndarray:
        return np.rint(alpha[..., None] * rgb + (1 - alpha[..., None]) * background)

    shrunk = median_seconds(lambda: blurred_background(rgb, alpha), repeats)
    start = time.perf_counter()  # once: 2.5 minutes on a 48-megapixel photo
    exact = exact_blur(rgb, alpha)
    full = time.perf_counter() - start
    diff = np.abs(composite(blurred_background(rgb, alpha)) - composite(exact))
    print(
        f"  blur: {shrunk:.2f} s shrunk, {full:.2f} s at full size ({full / shrunk:.0f}x); "
        f"composites differ by {diff.max():.0f} grey level(s) at most, "
        f"{(diff > 0).mean():.1%} of values at all",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="foreground")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--matting", action="store_true", help="also the matting rows")
    add_common(parser)
    args = parser.parse_args()
    begin(args)
    from skimage import data

    sizes = dict(list(SIZES.items())[:1]) if args.quick else SIZES
    repeats = 1 if args.quick else args.repeats
    cli = [sys.executable, "-m", "pixelwise", "remove-bg", "--checkpoint", args.model]
    with tempfile.TemporaryDirectory() as tmp:
        tiny = Path(tmp) / "tiny.png"
        Image.fromarray(data.astronaut()).resize((64, 64)).save(tiny)
        base = min(
            run_command([*cli, str(tiny), "-o", f"{tmp}/t.png"], args.threads)[1] for _ in range(2)
        )
        print(
            f"remove-bg on a 64 x 64 photo: peak {base / 2**20:.0f} MB (the baseline); median of {repeats}"
        )
        print(f"{'photo':<22}{'options':<34}{'s':>7}{'peak MB':>9}{'bytes / pixel':>15}")
        for label, (w, h) in sizes.items():
            photo = Path(tmp) / f"{w}x{h}.jpg"
            Image.fromarray(data.astronaut()).resize((w, h), Image.BICUBIC).save(photo, quality=90)
            rows = [[], ["--background", "blur"], ["--format", "webp"]]
            if args.matting:
                rows += [["--matting", "--matting-megapixels", "0"], ["--matting"]]
                rows += [["--matting", "--matting-megapixels", "2"]]
            for options in rows:
                runs = [
                    run_command([*cli, str(photo), "-o", f"{tmp}/cut", *options], args.threads)
                    for _ in range(repeats)
                ]
                seconds, peak = np.median([r[0] for r in runs]), np.median([r[1] for r in runs])
                print(
                    f"{label:<22}{' '.join(options) or '(default)':<34}{seconds:>7.1f}"
                    f"{peak / 2**20:>9.0f}{(peak - base) / (w * h):>15.1f}",
                    flush=True,
                )
            blur_rows(photo, args.model, repeats)


if __name__ == "__main__":
    main()
