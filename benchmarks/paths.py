"""The default execution path against forced plain fp32, side by side in one run (medians):

- prediction: ``load_model(..., "auto")`` + ``precision="auto"`` (what ``pixelwise predict`` does)
  versus ``runtime="torch"``, ``precision="fp32"``, on N images, with the share of identical mask
  pixels;
- the command: ``pixelwise predict CHECKPOINT FOLDER --out OUT`` on the same N images as PNG files
  (model loading, reading, masks and overlays written) versus the same with ``--precision fp32
  --runtime torch``, run in this process in turn, the issue's own measure;
- int8: ``pixelwise calibrate`` of a copy of the checkpoint on DATA (int8 graph and accuracy gate
  stored in it), ONNX Runtime int8 versus ONNX Runtime fp32 on one image, and the two rows above
  again with the calibrated copy on DATA's validation images, where the default may run int8;
- training: one step (batch 4, 256 x 256, Adam) on the default path versus fp32 contiguous;
  with ``--compile`` also the same fp32 step through ``torch.compile`` (inductor, needs a C++
  compiler; its compile time is printed, not counted), a candidate the probe does not time.
  With torch 2.14.1 the compiled step crashed the process (segmentation fault, heap corruption)
  on the AVX-512 BF16 machine; with ``ATEN_CPU_CAPABILITY=avx2`` (inductor's AVX2 code) it ran;
- memory: the same predictions and fp32 training steps in fresh processes with freed memory kept
  (``pixelwise.allocator``, what the command line and these rows do) and with the system
  allocator (``PIXELWISE_ALLOCATOR=system``: how every path ran before), in turn.

    python benchmarks/paths.py [--checkpoint runs/isbi2012-unet/best.pt] [--int8 ../shared/data/isbi2012
                               --val-stems 25-29] [--images 12] [--size 512] [--compile] [--quick]

Without --checkpoint, the default U-Net (depth 4, width 32, 7.8 M parameters) with random weights.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from timing import add_common, begin

from pixelwise.checkpoint import load_model, save_checkpoint
from pixelwise.constants import parse_stems
from pixelwise.data.encoding import Normalization
from pixelwise.inference import predict
from pixelwise.models import create_model
from pixelwise.runtime import (
    inference_path,
    interleaved,
    resolve_precision,
    training_net,
    training_step,
)
from pixelwise.segmenter import Segmenter


def default_unet(folder: Path) -> Path:
    torch.manual_seed(0)
    kwargs = {"in_channels": 3, "num_classes": 2, "depth": 4, "base_width": 32}
    path = folder / "unet.pt"
    save_checkpoint(
        path,
        Segmenter(
            create_model("unet", **kwargs),
            "unet",
            kwargs,
            ["a", "b"],
            Normalization([0.5] * 3, [0.25] * 3),
        ),
    )
    return path


def photos(n: int, size: int, channels: int) -> list[np.ndarray]:
    """Smooth random photo-like images (upsampled noise), fixed seed."""
    g = torch.Generator().manual_seed(2)
    out = []
    for _ in range(n):
        x = torch.nn.functional.interpolate(
            torch.rand(1, channels, size // 16, size // 16, generator=g),
            size=(size, size),
            mode="bicubic",
        ).clamp(0, 1)
        out.append((x[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    return out


def prediction_rows(checkpoint: Path, images, int8: bool = False) -> None:
    load_start = time.perf_counter()
    auto = load_model(checkpoint, "auto")
    load_auto = time.perf_counter() - load_start
    plain = load_model(checkpoint, "torch")
    runs = {"default": (auto, "auto"), "fp32": (plain, "fp32")}
    seconds, masks = {k: 0.0 for k in runs}, {k: [] for k in runs}
    for seg, precision in runs.values():
        predict(seg, images[0], precision)  # warm-up
    for image in images:  # interleaved, image by image: passing load hits both alike
        for name, (seg, precision) in runs.items():
            start = time.perf_counter()
            masks[name].append(predict(seg, image, precision))
            seconds[name] += time.perf_counter() - start
    same = np.mean([(a == b).mean() for a, b in zip(masks["default"], masks["fp32"])])
    path = inference_path(int8)
    print(
        f"predict {len(images)} images {images[0].shape[1]} x {images[0].shape[0]}: default ({path}, "
        f"{resolve_precision('auto')}) {seconds['default']:.2f} s, plain fp32 torch {seconds['fp32']:.2f} s: "
        f"{seconds['fp32'] / seconds['default']:.2f}x; identical mask pixels {same:.2%}; default model load "
        f"{load_auto:.1f} s",
        flush=True,
    )


def calibrated(checkpoint: Path) -> bool:
    """Whether the checkpoint carries a passed int8 calibration (the recipe's does)."""
    from pixelwise.checkpoint import int8_graph, read_checkpoint

    return int8_graph(read_checkpoint(checkpoint)) is not None


def command_rows(checkpoint: Path, images, repeats: int) -> None:
    import contextlib
    import io
    import shutil

    from PIL import Image

    from pixelwise.cli import main as pixelwise

    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp) / "images", Path(tmp) / "out"
        folder.mkdir()
        for i, image in enumerate(images):
            Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
                folder / f"{i:03d}.png"
            )

        def run(*options: str):
            shutil.rmtree(out, ignore_errors=True)
            argv = ["predict", str(checkpoint), str(folder), "--out", str(out), "--no-progress"]
            with contextlib.redirect_stdout(io.StringIO()):
                assert pixelwise([*argv, *options]) == 0

        t = interleaved(
            {"default": run, "fp32": lambda: run("--precision", "fp32", "--runtime", "torch")},
            repeats,
        )
    print(
        f"pixelwise predict on {len(images)} PNG files (load, predict, masks and overlays "
        "written): "
        f"default {t['default']:.2f} s, --precision fp32 --runtime torch {t['fp32']:.2f} s: "
        f"{t['fp32'] / t['default']:.2f}x (medians of {repeats} after a warm-up run each)",
        flush=True,
    )


def int8_rows(checkpoint: Path, data: str, stems, images, repeats: int) -> None:
    """``pixelwise calibrate`` on a copy of the checkpoint; ONNX Runtime int8 against fp32 on one
    image; then, gate passed, the prediction and command rows again with the calibrated copy on
    the validation images of ``data`` (the default path may now be int8)."""
    from pixelwise.checkpoint import calibrate_checkpoint, int8_graph, read_checkpoint
    from pixelwise.data.datasets import to_tensor
    from pixelwise.data.io import read_image
    from pixelwise.data.layouts import evaluation_items
    from pixelwise.export import OnnxNetwork, onnx_bytes

    seg = load_model(checkpoint, "torch")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "calibrated.pt"
        gate = calibrate_checkpoint(checkpoint, data, stems, copy)
        print(
            f"pixelwise calibrate on {gate['images']} images of {data}: accuracy gate "
            f"{'passed' if gate['passed'] else 'FAILED'} (mean IoU {gate['mean_iou_int8']:.4f} int8 vs "
            f"{gate['mean_iou_fp32']:.4f} fp32, drop {gate['drop']:.4f}, at most {gate['max_drop']})",
            flush=True,
        )
        if not gate["passed"]:
            return
        int8 = OnnxNetwork(int8_graph(read_checkpoint(copy)))
        fp32 = OnnxNetwork(onnx_bytes(seg))
        x = to_tensor(images[0] if seg.in_channels == 3 else images[0][..., :1], seg.norm)[None]
        t = interleaved({"int8": lambda: int8(x), "fp32": lambda: fp32(x)}, repeats)
        same = (int8(x).argmax(1) == fp32(x).argmax(1)).float().mean().item()
        print(
            f"ONNX Runtime on one {x.shape[-1]} x {x.shape[-2]} image: int8 {t['int8'] * 1000:.0f} ms, "
            f"fp32 {t['fp32'] * 1000:.0f} ms: {t['fp32'] / t['int8']:.2f}x; identical mask pixels {same:.2%}",
            flush=True,
        )
        val = [read_image(item.image, item.page) for item in evaluation_items(Path(data), stems)[0]]
        print(f"the calibrated checkpoint on the {len(val)} validation images:", flush=True)
        prediction_rows(copy, val, int8=True)
        command_rows(copy, val, min(repeats, 3))


def training_rows(size: int, repeats: int, compiled: bool = False) -> None:
    # the default U-Net (width 32), seeded, as the probe times it; or ``net``
    def step(precision: str, net=None):
        return training_step(precision, net, batch=4, size=size)

    default = resolve_precision("auto", training=True)
    steps = {"default": step(default), "fp32": step("fp32")}
    if compiled:
        steps["compiled"] = step("fp32", torch.compile(training_net()))
        start = time.perf_counter()
        steps["compiled"]()  # compiles forward and backward
        print(
            f"torch.compile of the training step: {time.perf_counter() - start:.1f} s", flush=True
        )
    t = interleaved(steps, repeats)
    print(
        f"training step (batch 4, {size} x {size}, U-Net 7.8 M): default ({default}) {t['default']:.2f} s, "
        f"fp32 contiguous {t['fp32']:.2f} s: {t['fp32'] / t['default']:.2f}x",
        flush=True,
    )
    if compiled:
        print(
            f"training step through torch.compile (fp32): {t['compiled']:.2f} s: "
            f"{t['fp32'] / t['compiled']:.2f}x fp32 contiguous",
            flush=True,
        )


def child_times(checkpoint: str, images: int, size: int, step_size: int) -> None:
    """In a fresh process (``--child``, after :func:`begin`): plain fp32 and default predict of the images (totals
    after a warm-up image) and the median of three fp32 training steps, as JSON on stdout."""
    import json

    shots = photos(images, size, 3)
    out = {}
    for name, runtime, precision in (("fp32", "torch", "fp32"), ("default", "auto", "auto")):
        seg = load_model(checkpoint, runtime)
        shots = [im[..., : seg.in_channels] for im in shots]
        predict(seg, shots[0], precision)
        start = time.perf_counter()
        for image in shots:
            predict(seg, image, precision)
        out[name] = time.perf_counter() - start
    step = training_step("fp32", None, batch=4, size=step_size)
    out["train"] = interleaved({"fp32": step}, 3)["fp32"]
    print(json.dumps(out))


def allocator_rows(checkpoint: Path, images: int, size: int, step_size: int, rounds: int) -> None:
    """The same work in fresh processes with freed memory kept (what the command line does) and
    with the system allocator (``PIXELWISE_ALLOCATOR=system``, as before), in turn, medians."""
    import json
    import os
    import statistics
    import subprocess
    import sys

    runs: dict[str, list[dict]] = {"kept": [], "system": []}
    for _ in range(rounds):
        for setting, found in runs.items():
            argv = [sys.executable, __file__, "--child", str(checkpoint), "--images", str(images)]
            argv += ["--size", str(size), "--step-size", str(step_size)]
            env = os.environ | {"PIXELWISE_ALLOCATOR": setting}
            done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
            found.append(json.loads(done.stdout.strip().splitlines()[-1]))
    med = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in runs.items()}
    kept, system = med["kept"], med["system"]
    print(
        f"fresh processes, freed memory kept vs system allocator (medians of {rounds}): "
        f"plain fp32 predict {kept['fp32']:.2f} vs {system['fp32']:.2f} s ({system['fp32'] / kept['fp32']:.2f}x), "
        f"default predict {kept['default']:.2f} vs {system['default']:.2f} s, fp32 training step "
        f"(batch 4, {step_size}^2) {kept['train']:.2f} vs {system['train']:.2f} s "
        f"({system['train'] / kept['train']:.2f}x); default predict now vs plain fp32 with the system "
        f"allocator (before): {system['fp32'] / kept['default']:.2f}x",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint")
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--int8", metavar="DATA", help="calibration and gate data for the int8 row")
    parser.add_argument("--val-stems", type=parse_stems)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time a torch.compile'd training step (crashed with inductor's AVX-512 code in torch 2.14.1: see the module docstring)",
    )
    parser.add_argument("--child", metavar="CHECKPOINT", help=argparse.SUPPRESS)
    parser.add_argument("--step-size", type=int, default=256, help=argparse.SUPPRESS)
    add_common(parser)
    args = parser.parse_args()
    begin(args)  # in a child too: its memory setting comes from PIXELWISE_ALLOCATOR
    if args.child:
        return child_times(args.child, args.images, args.size, args.step_size)
    if args.quick:
        args.images, args.size, args.repeats = 4, 256, 2
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(args.checkpoint) if args.checkpoint else default_unet(Path(tmp))
        channels = load_model(checkpoint, "torch").in_channels
        images = photos(args.images, args.size, 3)
        if channels == 1:
            images = [im[..., :1] for im in images]
        prediction_rows(checkpoint, images, calibrated(checkpoint))
        command_rows(checkpoint, images, 2 if args.quick else 3)
        if args.int8:
            int8_rows(checkpoint, args.int8, args.val_stems, images, args.repeats)
        step_size, rounds = (128, 1) if args.quick else (256, 2)
        training_rows(step_size, max(2, args.repeats // 2), args.compile)
        allocator_rows(checkpoint, args.images, args.size, step_size, rounds)
    print(
        f"(int8 and training: medians of {args.repeats} and {max(2, args.repeats // 2)} calls after a warm-up; "
        "prediction: the total over all images after a warm-up image)"
    )


if __name__ == "__main__":
    main()
