"""Markdown table of the CamVid comparison runs: full-resolution validation metrics (pixel and
class accuracy, mean IoU, mean boundary F1, mean HD95, per-class IoU) of each
run's best.pt (its evaluation.json, written by `pixelwise evaluate`), training time
(metrics.csv) and parameters.

    python recipes/camvid_table.py runs/camvid
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import torch


def main(root: Path) -> None:
    rows = []
    for run in sorted(p for p in root.iterdir() if (p / "evaluation.json").is_file()):
        ckpt = torch.load(run / "best.pt", weights_only=True, map_location="cpu")
        metrics = json.loads((run / "evaluation.json").read_text())
        history = list(csv.DictReader(open(run / "metrics.csv")))
        seconds = sum(float(r["seconds"]) for r in history)
        params = sum(
            v.numel()
            for k, v in ckpt["state_dict"].items()
            if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
        )
        rows.append(
            (run.name, ckpt["arch"], params, seconds, ckpt["train_state"]["epoch"], metrics)
        )
    names = list(rows[0][5]["per_class"]) if rows else []
    print(
        "| run | model | params | train+val time | best epoch | pixel acc | class acc | mean IoU | mean BF "
        "| mean HD95 (px) | " + " | ".join(names) + " |"
    )
    print("|---" * (10 + len(names)) + "|")
    for name, arch, params, seconds, epoch, m in sorted(rows, key=lambda r: -r[5]["mean_iou"]):
        per_class = " | ".join(f"{m['per_class'][c]['iou']:.3f}" for c in names)
        # evaluations from before these were measured have none
        bf, acc, hd95 = (m.get(k) for k in ("mean_boundary_f1", "mean_accuracy", "mean_hd95"))
        bf, acc = ("-" if v is None else f"{v:.3f}" for v in (bf, acc))
        hd95 = "-" if hd95 is None else f"{hd95:.1f}"
        print(
            f"| {name} | {arch} | {params / 1e6:.2f} M | {seconds / 60:.1f} min | {epoch} | "
            f"{m['pixel_accuracy']:.3f} | {acc} | {m['mean_iou']:.3f} | {bf} | {hd95} | {per_class} |"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
