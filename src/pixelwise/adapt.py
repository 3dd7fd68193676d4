"""Adapt a cut-out model to a collection of photos that have no masks (self-training).

The model's own default cut-out (network, graph cut and box model, :func:`remove_background`)
labels each photo: alpha > 0.5 becomes its mask. The model is then fine-tuned on these
pseudo-labelled photos (``train --weights``) with the foreground recipe's augmentation, at a
third of its peak learning rate (1e-3). The graph cut, the box model's second look and the
augmentation make the labels better than the network alone, so the network learns from them
what the collection looks like. It helps where the cut-out is already roughly right on the
collection and hurts where it is mostly wrong: docs/results.md (i) measures both.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pixelwise.config import TrainConfig
from pixelwise.constants import MIN_ADAPT_PHOTOS
from pixelwise.cutout import DEFAULT_MODEL, box_helper, get_model, remove_background
from pixelwise.data.write import atomic_save, save_png
from pixelwise.runner import BatchResult, output_names, run_batch
from pixelwise.runtime import is_onnx_file


@dataclass
class AdaptOptions:
    """How long and how hard to fine-tune (the defaults are docs/results.md (i)'s runs)."""

    epochs: int = 8
    epoch_size: int = 400
    crop: int = 224
    lr: float = 1e-3
    batch_size: int = 8
    device: str = "auto"
    seed: int = 0


def pseudo_label(
    inputs: list[str],
    data: Path,
    model,
    box_model,
    progress: bool = True,
    sample: int | None = None,
    seed: int = 0,
) -> BatchResult:
    """Write ``data/images/NAME`` (the photo's bytes) and ``data/masks/NAME.png`` (its cut-out,
    alpha > 0.5, as 0/255) for every photo under ``inputs`` (a random ``sample`` of them, drawn
    with ``seed``, when given); bad files are skipped and listed. NAME is the photo's path
    inside its folder, with ``/`` as ``__``."""

    def compute(src: Path) -> np.ndarray:
        alpha = remove_background(src, model, box_model=box_model, mask_only=True)
        return np.where(np.asarray(alpha) > 127, 255, 0).astype(np.uint8)

    def write(src: Path, rel: Path, mask: np.ndarray):
        name = rel.with_suffix("").as_posix().replace("/", "__")
        image = data / "images" / f"{name}{src.suffix.lower()}"
        atomic_save(image, lambda tmp: shutil.copyfile(src, tmp))
        save_png(data / "masks" / f"{name}.png", Image.fromarray(mask, mode="L"))
        return image, None

    pairs = output_names(inputs, data)
    if sample is not None and sample < len(pairs):
        pairs = sorted(random.Random(seed).sample(pairs, sample), key=lambda pair: pair[1])
    return run_batch(inputs, compute, write, "labelling", progress, pairs=pairs, out=data)


def adapt(
    inputs: list[str],
    out: str | Path,
    checkpoint: str | Path | None = None,
    box_checkpoint: str | Path | None = None,
    options: AdaptOptions | None = None,
    progress: bool = True,
    sample: int | None = None,
) -> tuple[Path, BatchResult]:
    """Label ``inputs`` with the cut-out of ``checkpoint`` (default: the bundled model, with
    its box model) into ``out/data`` and fine-tune it there; returns (``out/last.pt``, the
    labelling's result). The photos labelled are copied: ``out`` is self-contained. ``sample``:
    a random sample of that many photos (drawn with ``options.seed``) instead of them all."""
    from pixelwise.train import fit

    options = options or AdaptOptions()
    out = Path(out)
    if is_onnx_file(checkpoint):
        raise ValueError(f"{checkpoint}: adapt fine-tunes a .pt checkpoint, not an ONNX file")
    if (out / "data").exists():  # its photos would be trained on with the new ones
        raise ValueError(f"{out / 'data'} exists (an earlier adapt): give a new --out or remove it")
    start = get_model(checkpoint)
    if start.box_input or start.num_classes != 2:
        raise ValueError(
            f"{checkpoint}: adapt needs a whole-photo foreground model with 2 classes "
            f"(this one: {'a box model' if start.box_input else f'{start.num_classes} classes'})"
        )
    cfg = TrainConfig(
        data=str(out / "data"),
        out=str(out),
        weights=str(checkpoint or DEFAULT_MODEL),
        mask_values=[0, 255],
        class_names=list(start.class_names),
        val_fraction=0.1,
        scale=start.input_scale,
        zoom=[0.35, 1.0],
        rotate=15.0,
        appearance="photo",
        composite=0.3,
        flips="horizontal",
        loss="ce+dice",
        progress=progress,
        calibrate=False,  # the adapted model is last.pt; best.pt's int8 would go unused
        **vars(options),
    )
    cfg.check()  # a bad option now, not after every photo is labelled
    labelled = pseudo_label(
        inputs, out / "data", start, box_helper(checkpoint, box_checkpoint), progress,
        sample, options.seed,
    )  # fmt: skip
    if len(labelled.written) < MIN_ADAPT_PHOTOS:
        failed = labelled.failures
        raise ValueError(
            f"{', '.join(map(str, inputs))}: {len(labelled.written)} photo(s) labelled"
            + (f", {len(failed)} failed (first: {failed[0][1]})" if failed else "")
            + f"; adapt needs at least {MIN_ADAPT_PHOTOS}"
        )
    fit(cfg)
    return out / "last.pt", labelled
