"""Training and scoring of instance models (Mask R-CNN) through the same ``pixelwise train``.

Data (``cfg.data``): a COCO instances JSON file, a folder holding ``annotations.json`` (and
``images/``), or ``images/`` + ``instances/`` label-image folders (one class). Split as for
semantic data: ``val_stems`` or a seeded ``val_fraction``. Each epoch writes ``last.pt``
(resumable), ``best.pt`` (best validation mask AP), ``metrics.csv`` and ``curve.png``.
Sample order and augmentation are pure functions of (seed, epoch, index), so a resumed run
replays exactly what an uninterrupted one would.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from pixelwise.checkpoint import Segmenter, default_colours, read_checkpoint, save_checkpoint
from pixelwise.data.coco import (
    Categories,
    InstanceDataset,
    InstanceItem,
    collate,
    item_target,
    label_image_items,
    load_coco,
)
from pixelwise.data.datasets import MaskEncoding, Normalization, split_pool
from pixelwise.distributed import resolve_device
from pixelwise.inference import detections_to_coco, detections_to_labels
from pixelwise.metrics import coco_average_precision, dsb_average_precision
from pixelwise.models import create_model


def instance_data(data: str | Path) -> tuple[list[InstanceItem], Categories, dict | None]:
    """Items, categories and (for COCO) the parsed JSON of an instance dataset."""
    path = Path(data)
    if path.is_file():
        return load_coco(path)
    if (path / "annotations.json").is_file():
        return load_coco(path / "annotations.json")
    if (path / "images").is_dir() and (path / "instances").is_dir():
        items, cats = label_image_items(path)
        return items, cats, None
    raise ValueError(f"{path}: no instance data (expected a COCO .json, DATA/annotations.json, or DATA/images + "
                     "DATA/instances)")


def ground_truth_json(items: list[InstanceItem], cats: Categories, spec: dict | None) -> dict:
    """COCO ground truth for ``items`` (from the file when COCO, built from label images otherwise)."""
    from pixelwise.data.coco import encode_rle

    ids = {i.image_id for i in items}
    if spec is not None:
        return {"images": [im for im in spec["images"] if im["id"] in ids],
                "annotations": [a for a in spec.get("annotations", []) if a["image_id"] in ids],
                "categories": spec["categories"]}
    images, anns = [], []
    for item in items:
        images.append({"id": item.image_id, "file_name": item.image.name, "height": item.height, "width": item.width})
        target = item_target(item, cats)
        for mask, box in zip(target["masks"], target["boxes"]):
            x0, y0, x1, y1 = (float(v) for v in box)
            anns.append({"id": len(anns) + 1, "image_id": item.image_id, "category_id": 1, "iscrowd": 0,
                         "segmentation": encode_rle(mask), "area": float(mask.sum()), "bbox": [x0, y0, x1 - x0, y1 - y0]})
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": cats.names[0]}]}


@torch.no_grad()
def score_detector(model: torch.nn.Module, items: list[InstanceItem], cats: Categories, spec: dict | None,
                   score_threshold: float = 0.5) -> dict:
    """COCO box/mask AP (all detections) and the DSB2018 mean AP of the label images made from
    detections above ``score_threshold``, over ``items``. Runs on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    ds = InstanceDataset(items, cats)
    results, dsb = [], []
    for index, item in enumerate(items):
        image, target = ds[index]
        pred = {k: v.cpu() for k, v in model([image.to(device)])[0].items()}
        results.extend(detections_to_coco(pred, item.image_id, cats))
        reference = np.zeros(image.shape[1:], np.int32)
        for k, m in enumerate(target["masks"].numpy(), start=1):
            reference[m > 0] = k
        dsb.append(dsb_average_precision(reference, detections_to_labels(pred, score_threshold))["mean_ap"])
    ap = coco_average_precision(ground_truth_json(items, cats, spec), results)
    return {"mask_ap": ap["segm"]["ap"], "mask_ap50": ap["segm"]["ap50"], "mask_ap75": ap["segm"]["ap75"],
            "box_ap": ap["bbox"]["ap"], "box_ap50": ap["bbox"]["ap50"], "dsb_mean_ap": float(np.mean(dsb))}


def fit_detector(cfg) -> Path:
    """Train Mask R-CNN per a :class:`~pixelwise.train.TrainConfig`; returns ``best.pt``."""
    from tqdm import tqdm

    from pixelwise.train import make_optimizer, plot_curves, write_metrics_csv

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    items, cats, spec = instance_data(cfg.data)
    train_items, val_items = split_pool(items, cfg.val_stems, cfg.val_fraction, cfg.seed, cfg.data)
    if not val_items:
        raise ValueError(f"{cfg.data}: no validation images (give --val-stems or --val-fraction > 0)")
    arch_kwargs = {"num_classes": len(cats.ids), "backbone": cfg.backbone, "min_size": cfg.min_size,
                   "max_size": cfg.max_size, "box_detections_per_img": cfg.max_detections}
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    model = create_model("mask_rcnn", **arch_kwargs, weights=cfg.weights).to(device)
    names = ["background", *cats.names]
    seg = Segmenter(model, "mask_rcnn", arch_kwargs, names, Normalization([0.0], [1.0], 255.0),
                    default_colours(len(names)), MaskEncoding(values=(0, *cats.ids)))
    train_ds = InstanceDataset(train_items, cats, augment=cfg.augment, seed=cfg.seed)
    epoch_size = cfg.epoch_size or len(train_ds)
    steps = math.ceil(epoch_size / cfg.batch_size)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(cfg, params)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * steps,
                                                    pct_start=0.1, cycle_momentum=cfg.optimizer == "sgd")
    history, start_epoch, best = [], 0, -1.0
    if cfg.resume and (out / "last.pt").exists():
        ckpt = read_checkpoint(out / "last.pt")
        model.load_state_dict(ckpt["state_dict"])
        ts = ckpt["train_state"]
        optimizer.load_state_dict(ts["optimizer"])
        scheduler.load_state_dict(ts["scheduler"])
        history, start_epoch, best = ts["history"], ts["epoch"], ts["best_mask_ap"]
        print(f"resumed from {out / 'last.pt'} after epoch {start_epoch}")
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    from pixelwise.train import epoch_indices

    for epoch in range(start_epoch, cfg.epochs):
        began = time.perf_counter()
        train_ds.set_epoch(epoch)
        loader = DataLoader(train_ds, batch_size=cfg.batch_size, collate_fn=collate, num_workers=cfg.workers,
                            sampler=epoch_indices(len(train_ds), epoch_size, cfg.seed, epoch))
        model.train()
        total, count = 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", disable=not cfg.progress, leave=False)
        for images, targets in bar:
            images = [image.to(device) for image in images]
            targets = [{k: v.to(device) for k, v in target.items()} for target in targets]
            losses = model(images, targets)
            loss = sum(losses.values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total, count = total + loss.item() * len(images), count + len(images)
            bar.set_postfix(loss=f"{total / count:.4f}")
        scores = score_detector(model, val_items, cats, spec)
        row = {"epoch": epoch + 1, "train_loss": round(total / max(count, 1), 6), "val_loss": float("nan"),
               **{k: round(v, 6) for k, v in scores.items()}, "lr": scheduler.get_last_lr()[0],
               "seconds": round(time.perf_counter() - began, 2)}
        history.append(row)
        improved = scores["mask_ap"] > best
        best = max(best, scores["mask_ap"])
        save_checkpoint(out / "last.pt", seg, {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                                               "epoch": epoch + 1, "best_mask_ap": best, "history": history,
                                               "config": asdict(cfg)})
        if improved:
            save_checkpoint(out / "best.pt", seg, {"epoch": epoch + 1, "metrics": scores, "config": asdict(cfg)})
        write_metrics_csv(out / "metrics.csv", history)
        plot_curves(out / "curve.png", history, ("mask_ap", "box_ap", "dsb_mean_ap"))
        print(f"epoch {epoch + 1}/{cfg.epochs}  train loss {row['train_loss']:.4f}  mask AP {scores['mask_ap']:.4f}  "
              f"box AP {scores['box_ap']:.4f}  DSB mean AP {scores['dsb_mean_ap']:.4f}  ({row['seconds']:.1f}s)",
              flush=True)
    return out / "best.pt"
