"""The main job for a newcomer: make a small dataset, train briefly, predict, evaluate.

Runs offline in about a minute on 2 CPU cores and writes real files (checkpoints, masks,
overlays, metrics) under one folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from pixelwise.batch import predict_files
from pixelwise.checkpoint import load_model
from pixelwise.config import TrainConfig
from pixelwise.cutout import get_model, remove_background
from pixelwise.data.synthetic import CLASS_NAMES, write_shapes_dataset
from pixelwise.data.write import atomic_write_bytes, save_png
from pixelwise.evaluate import evaluate_checkpoint
from pixelwise.metrics import format_table
from pixelwise.train import fit


def run_demo(out: str | Path, epochs: int = 8, progress: bool = True) -> dict:
    """Train a small U-Net on generated shapes; returns the validation metrics."""
    out = Path(out)
    data = write_shapes_dataset(out / "data", n_train=48, n_val=8, size=96)
    cfg = TrainConfig(
        data=str(data),
        out=str(out / "run"),
        base_width=16,
        depth=3,
        class_names=CLASS_NAMES,
        epochs=epochs,
        batch_size=8,
        crop=64,
        lr=3e-3,
        progress=progress,
    )
    best = fit(cfg)
    result = predict_files(
        load_model(best), [data / "val" / "images"], out / "predictions", progress=progress
    )
    summary = evaluate_checkpoint(best, data)
    atomic_write_bytes(out / "evaluation.json", json.dumps(summary, indent=2).encode())
    print(format_table(summary))
    print(
        f"\ndemo outputs in {out}:\n  data: {data}\n  checkpoints, metrics.csv, curve.png: {out / 'run'}\n"
        f"  predicted masks: {out / 'predictions' / 'masks'} ({len(result.written)} files)\n"
        f"  overlays: {out / 'predictions' / 'overlays'}\n  metrics: {out / 'evaluation.json'}"
    )
    return summary


SAMPLE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")  # shipped inside scikit-image


def run_background_demo(out: str | Path, model: str | None = None) -> list[Path]:
    """Cut out scikit-image's sample photos with the bundled foreground model (or ``model``);
    writes ``out/photos/*.png`` and ``out/cutouts/*.png`` (RGBA) and returns the cut-outs."""
    from PIL import Image
    from skimage import data as samples

    out = Path(out)
    seg = get_model(model)
    written = []
    for name in SAMPLE_PHOTOS:
        photo = getattr(samples, name)()
        save_png(out / "photos" / f"{name}.png", Image.fromarray(photo))
        save_png(out / "cutouts" / f"{name}.png", remove_background(photo, seg))
        written.append(out / "cutouts" / f"{name}.png")
    print(
        f"background-removal demo: {len(written)} photos in {out / 'photos'}, transparent cut-outs in {out / 'cutouts'}"
    )
    return written
