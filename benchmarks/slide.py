"""A TIFF too large to hold, predicted region by region: `pixelwise predict` on one tiled JPEG
TIFF (as slide scanners write them), read whole (the pixel limit raised) against streamed
region by region, side by side, each in a fresh process; prints the wall time and peak resident
memory of each and checks that the masks are the same; then times writing that mask as a
flat tiled TIFF against the OME-TIFF pyramid the commands write.

The default size, 16500 x 16500 (272 megapixels), is over the default pixel limit (250), which
`predict` streams and every other command refuses. A small untrained U-Net (depth 2, width 8)
stands in for the model, so that the reading, tiling and writing around it show (with the
default U-Net the network is nearly all of the time; its tile batch is the same on both paths).

With ``--nuclei DATA`` (../shared/data/nuclei_he) it also segments a 3528 x 5268 tiling of
twelve of its H&E images with the bundled ``nuclei`` model, whole (``segment``) and streamed
(``segment_slide``: objects made block by block), in this process, and compares the objects
and their cells (``--expand``: whole against block by block), and a slide that is part glass
with and without ``--tissue-only`` (7000 x 7000; 4000 x 4000 with ``--quick``);
then (not with ``--quick``) runs ``pixelwise segment --checkpoint nuclei --measure`` on a
``--size`` x ``--size`` slide tiled from them.

    python benchmarks/slide.py [--size 16500] [--quick] [--nuclei ../shared/data/nuclei_he]
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
from PIL import Image
from timing import add_common, begin


def write_tiles(path: Path, tiles, size: int, tile: int) -> None:
    """A size x size RGB BigTIFF of JPEG tiles, from ``tiles`` (row-major), as scanners store
    slides; never whole in memory."""
    tifffile.imwrite(
        path,
        tiles,
        shape=(size, size, 3),
        dtype=np.uint8,
        tile=(tile, tile),
        photometric="rgb",
        compression="jpeg",
        bigtiff=True,
    )


def write_slide(path: Path, size: int, tile: int = 512) -> None:
    """A size x size RGB TIFF of JPEG tiles, written tile by tile (never whole in memory):
    smooth stain-like blobs with noise, different in every tile."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:tile, :tile]

    def tiles():
        for y in range(0, size, tile):
            for x in range(0, size, tile):
                blobs = (np.sin((yy + y) / 23.0) * np.cos((xx + x) / 31.0) + 1) * 100
                noise = rng.integers(0, 40, (tile, tile, 3))
                yield (blobs[..., None] + noise + (20, 0, 40)).clip(0, 255).astype(np.uint8)

    write_tiles(path, tiles(), size, tile)


def run(command: list, limit: int | None, threads: int) -> tuple:
    """``pixelwise COMMAND`` in a fresh process: wall seconds and peak RSS (GB), measured by a
    wrapper process so that each run's peak is its own."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    if limit is not None:
        env["PIXELWISE_MAX_PIXELS"] = str(limit)
    code = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "rc = subprocess.run(sys.argv[1:]).returncode; "
        "print(time.perf_counter() - t, "
        "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20, rc)"
    )
    command = [sys.executable, "-m", "pixelwise", *map(str, command), "--no-progress"]
    done = subprocess.run(
        [sys.executable, "-c", code, *command], env=env, capture_output=True, text=True
    )
    seconds, peak, rc = done.stdout.split()[-3:]
    if rc != "0":
        raise SystemExit(f"{command[3]} failed:\n{done.stdout}\n{done.stderr}")
    return float(seconds), float(peak)


def nuclei_mosaic(data: Path) -> np.ndarray:
    """Twelve H&E images of ``data`` side by side, 3 x 4, cropped to the smallest."""
    from pixelwise.data.io import read_image

    images = [read_image(f) for f in sorted(data.glob("*/images/*"))[:12]]
    h, w = min(i.shape[0] for i in images), min(i.shape[1] for i in images)
    rows = [np.concatenate([i[:h, :w] for i in images[r * 4 : r * 4 + 4]], 1) for r in range(3)]
    return np.concatenate(rows, 0)


def write_mirrored(path: Path, mosaic: np.ndarray, size: int, tile: int = 512) -> None:
    """A size x size RGB TIFF of JPEG tiles tiling ``mosaic`` mirrored (no seams), written tile
    by tile."""
    from pixelwise.data.slide import mirrored

    h, w = mosaic.shape[:2]

    def tiles():
        for y in range(0, size, tile):
            rows = mirrored(y, y + tile, h, "symmetric")
            for x in range(0, size, tile):
                yield mosaic[rows[:, None], mirrored(x, x + tile, w, "symmetric")]

    write_tiles(path, tiles(), size, tile)


def segment_nuclei_slide(data: Path, folder: Path, size: int, threads: int) -> None:
    """``pixelwise segment --checkpoint nuclei --measure`` on a size x size H&E slide (the
    mosaic of :func:`nuclei_mosaic` tiled mirrored), over the pixel limit, in a fresh process;
    then again with ``--geojson`` (each nucleus outlined too), its cost and file size."""
    import csv
    import json

    write_mirrored(folder / "he.tif", nuclei_mosaic(data), size)
    table = folder / "objects.csv"
    command = ["segment", folder / "he.tif", "--checkpoint", "nuclei", "--measure", table]
    seconds, peak = run(command + ["--out", folder / "he"], None, threads)
    with open(table) as f:
        areas = [int(row["area"]) for row in csv.DictReader(f)]
    print(
        f"segment --checkpoint nuclei --measure, {size} x {size} H&E slide ({size**2 / 1e6:.0f} "
        f"megapixels): {len(areas)} nuclei (median area {np.median(areas):.0f} px) in "
        f"{seconds:.1f} s ({size**2 / 1e6 / seconds:.2f} megapixels/s), peak RSS {peak:.2f} GB",
        flush=True,
    )
    outlined, peak = run(command + ["--out", folder / "he2", "--geojson"], None, threads)
    path = folder / "he2" / "geojson" / "he.geojson"
    features = len(json.loads(path.read_text())["features"])
    print(
        f"  the same with --geojson: {outlined:.1f} s ({outlined / seconds:.2f}x), peak RSS "
        f"{peak:.2f} GB, {features} polygons, {path.stat().st_size / 1e6:.0f} MB"
    )


def compare_nuclei(data: Path, folder: Path) -> None:
    """``segment`` whole against ``segment_slide`` on a tiling of H&E images (see the module's
    docstring): objects found, pixel-identical ones, ones matched at IoU >= 0.5, and times."""
    from scipy import ndimage

    from pixelwise.checkpoint import load_model
    from pixelwise.inference import segment, segment_slide

    mosaic = nuclei_mosaic(data)
    edge = np.concatenate([mosaic, mosaic[:, ::-1], mosaic], 1)  # mirrored: no seams
    middle = np.concatenate([mosaic[::-1], mosaic, mosaic[::-1]], 1)
    big = np.concatenate([edge, middle, edge], 0)
    tifffile.imwrite(
        folder / "nuclei.tif", big, tile=(256, 256), photometric="rgb", compression="zlib"
    )
    seg = load_model("nuclei")
    start = time.perf_counter()
    whole = segment(seg, big)
    whole_s, start = time.perf_counter() - start, time.perf_counter()
    count = segment_slide(seg, folder / "nuclei.tif", folder / "labels.tif")
    streamed_s = time.perf_counter() - start
    labels = tifffile.imread(folder / "labels.tif")
    identical = matched = 0
    for k, box in enumerate(ndimage.find_objects(whole), start=1):
        if box is None:
            continue
        own = whole[box] == k
        values, overlaps = np.unique(labels[box][own], return_counts=True)
        best = values[np.argmax(overlaps)]
        if best:
            size = np.count_nonzero(labels == best)
            iou = overlaps.max() / (own.sum() + size - overlaps.max())
            matched += iou >= 0.5
            identical += iou == 1.0
    found = int(whole.max())
    print(
        f"nuclei, {big.shape[1]} x {big.shape[0]} H&E tiling: whole {found} objects in "
        f"{whole_s:.1f} s, streamed {count} in {streamed_s:.1f} s; identical objects "
        f"{identical / found:.4f}, matched at IoU >= 0.5 {matched / found:.4f}, foreground "
        f"pixels agreeing {np.mean((whole > 0) == (labels > 0)):.6f}"
    )
    compare_cells(folder, labels)


def compare_cells(folder: Path, labels: np.ndarray, distance: int = 5) -> None:
    """``segment --expand``'s cells of the streamed labels (``folder/labels.tif``): worked out
    whole in memory (``expand_cells``, as an image's are) against block by block from the label
    TIFF (``expand_slide``, as a slide's are, without measuring them); times, and whether the
    two agree pixel for pixel."""
    from pixelwise.data.slide import TiffRegions
    from pixelwise.inference import expand_slide
    from pixelwise.instances import expand_cells

    start = time.perf_counter()
    whole = expand_cells(labels, distance)
    whole_s, start = time.perf_counter() - start, time.perf_counter()
    with TiffRegions(folder / "labels.tif") as stored:
        expand_slide(stored, folder / "cells.tif", distance)
    blocks_s = time.perf_counter() - start
    same = np.array_equal(tifffile.imread(folder / "cells.tif"), whole)
    print(
        f"cells (--expand {distance}) of those {int(labels.max())} objects: whole {whole_s:.1f} s, "
        f"block by block from the TIFF {blocks_s:.1f} s ({blocks_s / whole_s:.1f}x); "
        f"identical: {same}"
    )


def compare_pyramid(folder: Path, mask: np.ndarray, palette: np.ndarray, predict_s: float):
    """Writing ``mask`` as the slide commands do (rows of 512, a palette) as a flat tiled TIFF
    and as the OME-TIFF pyramid they write now (``save_mask_rows(pyramid=)``), in turn, three
    times each: medians, file sizes, and the pyramid's extra time against the prediction's."""
    from pixelwise.data.write import save_mask_rows

    times = {False: [], True: [], "size": {}}
    for _ in range(3):
        for pyramid in (False, True):
            out = folder / f"written-{pyramid}.tif"
            rows = ((y, mask[y : y + 512]) for y in range(0, len(mask), 512))
            start = time.perf_counter()
            save_mask_rows(out, rows, mask.shape, palette, pyramid=pyramid)
            times[pyramid].append(time.perf_counter() - start)
            times["size"][pyramid] = out.stat().st_size / 2**20
    flat, pyramid = np.median(times[False]), np.median(times[True])
    print(
        f"writing that mask: flat tiled TIFF {flat:.2f} s ({times['size'][False]:.1f} MiB), "
        f"OME-TIFF pyramid {pyramid:.2f} s ({times['size'][True]:.1f} MiB), medians of 3; "
        f"the levels add {pyramid - flat:.2f} s, {(pyramid - flat) / predict_s:.1%} of the "
        "streamed prediction"
    )


def glass_slide(mosaic: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A size x size brightfield slide: noisy glass, two overlapping ellipses of H&E tissue
    (``mosaic`` tiled mirrored; 42 % of the slide) and thirty specks of dust; the slide and
    where the tissue is."""
    from pixelwise.data.slide import mirrored

    h, w = mosaic.shape[:2]
    tiled = mosaic[mirrored(0, size, h, "symmetric")[:, None], mirrored(0, size, w, "symmetric")]
    rng = np.random.default_rng(0)
    slide = np.clip(rng.normal((236, 235, 239), 2.5, (size, size, 3)), 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:size, :size] / size
    tissue = ((yy - 0.36) / 0.26) ** 2 + ((xx - 0.37) / 0.31) ** 2 <= 1
    tissue |= ((yy - 0.7) / 0.21) ** 2 + ((xx - 0.61) / 0.27) ** 2 <= 1
    slide[tissue] = tiled[tissue]
    for y, x in rng.integers(0, size - 6, (30, 2)):
        slide[y : y + 6, x : x + 6] = 90
    return slide, tissue


def compare_tissue(data: Path, folder: Path, size: int) -> None:
    """``segment_slide`` of a slide that is part glass (:func:`glass_slide`), every tile
    through the network against ``--tissue-only`` (:class:`pixelwise.tissue.TissueOnly`):
    times, objects, and how far the two agree on the tissue."""
    from pixelwise.checkpoint import load_model
    from pixelwise.data.slide import TiffRegions
    from pixelwise.inference import segment_slide
    from pixelwise.tissue import TissueOnly

    slide, tissue = glass_slide(nuclei_mosaic(data), size)
    path = folder / "glass.tif"
    tifffile.imwrite(path, slide, tile=(256, 256), photometric="rgb", compression="zlib")
    seg, found, seconds = load_model("nuclei"), {}, {}
    for name in ("every tile", "--tissue-only"):
        start = time.perf_counter()
        with TiffRegions(path, seg.reads) as regions:
            source = TissueOnly.of(regions) if name == "--tissue-only" else regions
            count = segment_slide(seg, source, folder / "glass-labels.tif")
        seconds[name] = time.perf_counter() - start
        found[name] = (tifffile.imread(folder / "glass-labels.tif") > 0, count)
    (every, n_every), (only, n_only) = found.values()
    print(
        f"slide of glass and H&E, {size} x {size}, tissue {tissue.mean():.0%} (found "
        f"{source.share:.0%}): every tile {seconds['every tile']:.1f} s, {n_every} nuclei; "
        f"--tissue-only {seconds['--tissue-only']:.1f} s, {n_only} nuclei "
        f"({seconds['every tile'] / seconds['--tissue-only']:.2f}x); foreground pixels agreeing "
        f"on the tissue {np.mean(every[tissue] == only[tissue]):.5f}, foreground on the glass "
        f"{every[~tissue].sum()} vs {only[~tissue].sum()} pixels"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16500, help="the image's width and height")
    parser.add_argument("--nuclei", type=Path, help="also segment H&E images of this folder")
    add_common(parser)
    args = parser.parse_args()
    begin(args)
    if args.quick:
        args.size = 6000
    import torch

    Image.MAX_IMAGE_PIXELS = None  # the masks compared below are as large as the image
    from pixelwise.checkpoint import save_checkpoint
    from pixelwise.data.encoding import Normalization
    from pixelwise.data.io import DEFAULT_MAX_PIXELS
    from pixelwise.models import create_model
    from pixelwise.segmenter import Segmenter

    torch.manual_seed(0)
    kwargs = {"in_channels": 3, "num_classes": 2, "depth": 2, "base_width": 8}
    net = create_model("unet", **kwargs)
    norm = Normalization([0.5] * 3, [0.25] * 3)
    seg = Segmenter(net, "unet", kwargs, ["background", "tissue"], norm)
    pixels = args.size * args.size
    over = pixels > DEFAULT_MAX_PIXELS
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        save_checkpoint(tmp / "model.pt", seg)
        start = time.perf_counter()
        write_slide(tmp / "slide.tif", args.size)
        print(
            f"wrote a {args.size} x {args.size} JPEG-tiled TIFF ({pixels / 1e6:.0f} megapixels, "
            f"{'over' if over else 'under'} the default limit of {DEFAULT_MAX_PIXELS / 1e6:.0f}) "
            f"in {time.perf_counter() - start:.1f} s",
            flush=True,
        )
        limits = {"read whole": max(pixels, DEFAULT_MAX_PIXELS), "streamed": pixels - 1}
        results = {}
        for name, limit in limits.items():
            command = ["predict", tmp / "model.pt", tmp / "slide.tif", "--out", tmp / name]
            command += ["--precision", "fp32", "--runtime", "torch"]
            results[name] = run(command, limit, args.threads)
            seconds, peak = results[name]
            print(
                f"{name:>10}: {seconds:6.1f} s, {pixels / 1e6 / seconds:5.2f} megapixels/s, "
                f"peak RSS {peak:.2f} GB",
                flush=True,
            )
        streamed = tifffile.imread(tmp / "streamed" / "masks" / "slide.tif")
        same = np.array_equal(
            streamed, np.asarray(Image.open(tmp / "read whole" / "masks" / "slide.png"))
        )
        (whole_s, whole_gb), (streamed_s, streamed_gb) = results.values()
        print(
            f"streamed / read whole: time {streamed_s / whole_s:.2f}x, peak RSS "
            f"{streamed_gb / whole_gb:.2f}x; same mask: {same}"
        )
        compare_pyramid(tmp, streamed, seg.mask_palette(), streamed_s)
        del streamed
        if args.nuclei is not None:
            compare_nuclei(args.nuclei, tmp)
            compare_tissue(args.nuclei, tmp, 4000 if args.quick else 7000)
            if not args.quick:
                (tmp / "slide.tif").unlink()
                segment_nuclei_slide(args.nuclei, tmp, args.size, args.threads)


if __name__ == "__main__":
    main()
