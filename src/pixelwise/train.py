"""Training as plain functions: :func:`fit` runs epochs of :func:`train_one_epoch` and :func:`evaluate`.

Reproducibility: the initial weights come from ``seed``; each epoch's sample order and every
sample's augmentation are pure functions of ``(seed, epoch, index)``. A run resumed from the
checkpoint of epoch k therefore replays epochs k+1.. exactly as an uninterrupted run would.
"""

from __future__ import annotations

import csv
import inspect
import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader

from pixelwise.checkpoint import Segmenter, default_colours, load_model, read_checkpoint, save_checkpoint
from pixelwise.data.datasets import (
    MaskEncoding,
    SegmentationDataset,
    compute_normalization,
    read_dataset_info,
    resolve_splits,
    to_tensor,
)
from pixelwise.data.io import atomic_write_bytes, read_mask, save_png
from pixelwise.data.transforms import Augmentation
from pixelwise.inference import autocast, memory_format, overlay, predict_logits, predict_probs, resolve_precision
from pixelwise.losses import IGNORE_INDEX, PixelCrossEntropy, class_weights_from_counts, soft_dice_loss
from pixelwise.metrics import ConfusionMatrix
from pixelwise.models import MODELS, create_model
from pixelwise.models.unet_original import centre_crop


@dataclass
class TrainConfig:
    """Everything a training run depends on; saved in every checkpoint."""

    data: str
    out: str
    model: str = "unet"
    depth: int = 4
    base_width: int = 32
    batch_norm: bool = True
    backend: str = "torch"
    decoder: str = "unpool"
    class_names: list[str] | None = None
    mask_values: list[int] | None = None
    ignore_values: list[int] | None = None
    instances: str | None = None
    val_stems: list[str] | None = None
    val_fraction: float = 0.2
    epochs: int = 20
    epoch_size: int | None = None
    batch_size: int = 4
    crop: int | None = 256
    augment: bool = True
    flips: str = "all"  # "horizontal": left-right mirroring only
    elastic: bool = False
    zoom: list[float] | None = None  # random resized crops over this range of image area
    rotate: float = 0.0
    appearance: str = "none"
    composite: float = 0.0
    scale: float = 1.0
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    loss: str = "ce"
    backbone: str = "resnet18"  # instance models
    min_size: int = 512
    max_size: int = 853
    max_detections: int = 100
    weights: str | None = None
    w0: float = 10.0
    sigma: float = 5.0
    class_weighting: str = "none"
    precision: str = "auto"
    device: str = "auto"
    workers: int = 0
    seed: int = 0
    ema: float = 0.0
    resume: bool = False
    overlays: int = 4
    progress: bool = True


INSTANCE_CLASSES = {"foreground": ["background", "foreground"], "boundary": ["background", "interior", "boundary"]}


@dataclass
class RunState:
    epoch: int = 0  # epochs completed
    best_miou: float = -1.0
    history: list[dict] = field(default_factory=list)


def epoch_indices(n: int, epoch_size: int, seed: int, epoch: int) -> list[int]:
    """``epoch_size`` draws from ``n`` items: concatenated seeded permutations of range(n),
    the r-th permutation offset by ``r * n``. Draw ``d`` is item ``d % n``; the datasets seed
    their augmentation with the whole draw, so an item drawn twice in one epoch (epoch_size > n)
    gives two different random crops, not the same one twice."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    reps = math.ceil(epoch_size / n)
    return torch.cat([torch.randperm(n, generator=g) + r * n for r in range(reps)])[:epoch_size].tolist()


LOSSES = ("ce", "weighted-ce", "dice", "ce+dice")


def make_loss(name: str, class_weights: torch.Tensor | None) -> Callable[..., torch.Tensor]:
    """``loss(logits, target, pixel_weights=None)``. ``weighted-ce`` is the cross-entropy
    weighted by the batch's border weight maps (plain cross-entropy where none are given,
    e.g. for the validation loss); the others ignore ``pixel_weights``."""
    ce = PixelCrossEntropy(class_weights)
    if name in ("ce", "weighted-ce"):
        return ce
    if name == "dice":
        return lambda logits, target, pixel_weights=None: soft_dice_loss(logits, target)
    if name == "ce+dice":
        return lambda logits, target, pixel_weights=None: ce(logits, target) + soft_dice_loss(logits, target)
    raise ValueError(f"unknown loss {name!r}; choose {', '.join(LOSSES)}")


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; choose adam or sgd")


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    loss_fn: Callable,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    device: torch.device,
    precision: str,
    desc: str = "train",
    progress: bool = True,
    ema: AveragedModel | None = None,
) -> float:
    """One pass over ``loader``; returns the mean training loss. ``ema``, if given, is
    updated with the new weights after every step."""
    from tqdm import tqdm

    model.train()
    fmt = memory_format(precision)
    total, count = 0.0, 0
    bar = tqdm(loader, desc=desc, unit="batch", disable=not progress, leave=False)
    for images, targets, *pixel_weights in bar:  # a third element: per-pixel loss weights
        images = images.to(device).contiguous(memory_format=fmt)
        targets = targets.to(device)
        weights = pixel_weights[0].to(device) if pixel_weights else None
        with autocast(precision, device):
            logits = model(images)
        if logits.shape[-2:] != targets.shape[-2:]:  # valid-convolution models predict the centre
            targets = centre_crop(targets, logits.shape[-2:])
            weights = centre_crop(weights, logits.shape[-2:]) if weights is not None else None
        loss = loss_fn(logits.float(), targets, weights)
        sides = getattr(getattr(model, "module", model), "side_logits", None)
        if sides:  # deep supervision (U²-Net): every side output learns the targets too
            loss = loss + sum(loss_fn(side.float(), targets, weights) for side in sides) / len(sides)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if ema is not None:
            ema.update_parameters(model)
        total += loss.item() * len(images)
        count += len(images)
        bar.set_postfix(loss=f"{total / count:.4f}")
    return total / max(count, 1)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    num_classes: int,
    device: torch.device,
    precision: str = "fp32",
    loss_fn: Callable | None = None,
    tta: bool = False,
    scale: float = 1.0,
) -> tuple[ConfusionMatrix, float]:
    """Confusion matrix over the whole loader and the mean loss.

    ``tta`` averages the 8 flips/rotations of each input; ``scale`` runs the model on resized
    inputs and scores its upsampled prediction at the targets' resolution. The loss is NaN
    without ``loss_fn`` and not computed with ``tta`` or ``scale``.
    """
    cm = ConfusionMatrix(num_classes)
    total, count = 0.0, 0
    for images, targets in loader:
        images, targets = images.to(device), targets.to(device)
        if tta or scale != 1.0:
            cm.update(predict_probs(model, images, precision, tta, scale).argmax(1), targets)
            continue
        logits = predict_logits(model, images, precision)
        if loss_fn is not None:
            total += loss_fn(logits, targets).item() * len(images)
            count += len(images)
        cm.update(logits.argmax(1), targets)
    return cm, (total / count if count else float("nan"))


def infer_num_classes(cfg: TrainConfig, items, ignore: tuple[int, ...]) -> int:
    if cfg.class_names:
        return len(cfg.class_names)
    if cfg.mask_values:
        return len(cfg.mask_values)
    values: set[int] = set()
    for item in items:
        values.update(np.unique(read_mask(item.mask, item.page)).tolist())
    values -= set(ignore) | {IGNORE_INDEX}
    return max(values) + 1 if values else 1


def build_datasets(cfg: TrainConfig) -> tuple[SegmentationDataset, SegmentationDataset, list[str], list[list[int]]]:
    """Train/val datasets from ``cfg.data``; class names, colours and normalisation resolved."""
    root = Path(cfg.data)
    info = read_dataset_info(root)
    train_items, val_items = resolve_splits(root, cfg.val_stems, cfg.val_fraction, cfg.seed)
    if not val_items:
        raise ValueError(f"{root}: no validation images (give --val-stems, --val-fraction > 0 or a val/ folder)")
    ignore = tuple(cfg.ignore_values) if cfg.ignore_values is not None else info.ignore_values
    names = cfg.class_names or info.class_names or INSTANCE_CLASSES.get(cfg.instances)
    num_classes = len(names) if names else infer_num_classes(cfg, train_items, ignore)
    names = names or [f"class{i}" for i in range(num_classes)]
    colours = info.colours if info.colours and len(info.colours) == num_classes else default_colours(num_classes)
    encoding = MaskEncoding(tuple(cfg.mask_values) if cfg.mask_values else None, ignore, cfg.instances)
    train = SegmentationDataset(train_items, num_classes, encoding, norm=None, crop=cfg.crop, augment=cfg.augment,
                                 flips=cfg.flips, seed=cfg.seed, elastic=cfg.elastic, scale=cfg.scale,
                                 weight_map=(cfg.w0, cfg.sigma) if cfg.loss == "weighted-ce" else None,
                                 augmentation=augmentation_of(cfg))
    channels = max(train.load(i)[0].shape[-1] for i in range(len(train)))
    train.set_channels(channels)
    train.norm = compute_normalization([train.load(i)[0] for i in range(len(train))])
    val = SegmentationDataset(val_items, num_classes, encoding, train.norm, channels=channels, scale=cfg.scale)
    return train, val, names, colours


def augmentation_of(cfg: TrainConfig) -> Augmentation:
    zoom = tuple(cfg.zoom) if cfg.zoom else None
    if zoom is not None and len(zoom) != 2:
        raise ValueError(f"zoom takes two area fractions LO,HI, got {list(zoom)}")
    return Augmentation(zoom, cfg.rotate, cfg.appearance, cfg.composite)


def class_pixel_counts(ds: SegmentationDataset) -> torch.Tensor:
    counts = torch.zeros(ds.num_classes, dtype=torch.int64)
    for i in range(len(ds)):
        t = torch.from_numpy(ds.load(i)[1]).reshape(-1)
        counts += torch.bincount(t[t != IGNORE_INDEX], minlength=ds.num_classes)
    return counts


def write_metrics_csv(path: Path, history: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    atomic_write_bytes(path, buf.getvalue().encode())


def plot_curves(path: Path, history: list[dict],
                scores: tuple[str, ...] = ("pixel_accuracy", "mean_iou", "mean_dice")) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax1.plot(epochs, [h["val_loss"] for h in history], label="validation")
    ax1.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax1.legend()
    for key in scores:
        ax2.plot(epochs, [h[key] for h in history], label=key.replace("_", " "))
    ax2.set(xlabel="epoch", ylabel="score", title="Validation", ylim=(0, 1))
    ax2.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def write_overlays(seg: Segmenter, ds: SegmentationDataset, out_dir: Path, count: int, precision: str) -> None:
    """image | ground truth | prediction strips for the first ``count`` images of ``ds``, at
    the dataset's (possibly reduced) resolution."""
    palette = seg.palette()
    for i in range(min(count, len(ds))):
        image, target = ds.load(i)
        pred = predict_probs(seg.network, to_tensor(image, seg.norm)[None], precision).argmax(1)[0].numpy()
        panels = [overlay(image, np.zeros_like(pred), palette), overlay(image, np.where(target == IGNORE_INDEX, 0, target),
                                                                        palette), overlay(image, pred, palette)]
        save_png(out_dir / f"{ds.items[i].name}.png", Image.fromarray(np.concatenate([np.asarray(p) for p in panels], 1)))


def build_model(cfg: TrainConfig, in_channels: int, num_classes: int, device: torch.device,
                precision: str) -> tuple[nn.Module, dict]:
    """The seeded model and the keyword arguments that rebuild it (those its builder accepts)."""
    arch_kwargs = {"in_channels": in_channels, "num_classes": num_classes}
    options = {"depth": cfg.depth, "base_width": cfg.base_width, "batch_norm": cfg.batch_norm, "backend": cfg.backend,
               "decoder": cfg.decoder}
    accepted = inspect.signature(MODELS[cfg.model]).parameters if cfg.model in MODELS else {}
    arch_kwargs |= {k: v for k, v in options.items() if k in accepted}
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, **arch_kwargs).to(device).to(memory_format=memory_format(precision))
    return model, arch_kwargs


def restore(path: Path, model: nn.Module, ema: AveragedModel | None, optimizer, scheduler) -> RunState:
    """Load the state of ``last.pt`` into the training objects; returns the run's history."""
    ckpt = read_checkpoint(path)
    ts = ckpt["train_state"]
    model.load_state_dict(ts["raw_state_dict"] if ema is not None else ckpt["state_dict"])
    if ema is not None:
        ema.module.load_state_dict(ckpt["state_dict"])
        ema.n_averaged.fill_(ts["ema_updates"])
    optimizer.load_state_dict(ts["optimizer"])
    scheduler.load_state_dict(ts["scheduler"])
    print(f"resumed from {path} after epoch {ts['epoch']}")
    return RunState(ts["epoch"], ts["best_miou"], ts["history"])


def fit(cfg: TrainConfig, on_epoch_end: Callable[[int, dict], None] | None = None) -> Path:
    """Train per ``cfg``; writes ``last.pt``, ``best.pt``, ``metrics.csv``, ``curve.png`` and
    ``overlays/`` into ``cfg.out`` and returns the path of ``best.pt``.

    With ``cfg.ema`` > 0 an exponential moving average of the weights (decay ``cfg.ema`` per
    step) is what gets validated and saved. ``on_epoch_end(epoch, row)`` is called after each
    epoch's checkpoint is written.

    Under ``torchrun`` the model is wrapped in DistributedDataParallel and ``batch_size`` is
    the global batch: each of the N processes trains on its ``batch_size / N`` share of every
    batch (see :func:`pixelwise.distributed.shard_batches`), so N processes take the same
    steps as one process would. Batch norm is synchronised across GPUs (SyncBatchNorm); on
    CPU (gloo) each process normalises its own share. Rank 0 validates, prints and writes
    every file; all ranks resume from the same ``last.pt``.
    """
    from torch.nn.parallel import DistributedDataParallel

    from pixelwise import distributed as dist
    from pixelwise.models import INSTANCE_MODELS

    if cfg.model in INSTANCE_MODELS:
        from pixelwise.train_instances import fit_detector

        return fit_detector(cfg)

    device, created_group = dist.setup(cfg.device)
    world, rank, main = dist.world_size(), dist.rank(), dist.is_main()
    out = Path(cfg.out)
    if main:
        out.mkdir(parents=True, exist_ok=True)
    precision = resolve_precision(cfg.precision, device)
    train_ds, val_ds, names, colours = build_datasets(cfg)
    model, arch_kwargs = build_model(cfg, train_ds.channels, len(names), device, precision)
    train_ds.context = getattr(model, "margin", 0)  # valid convolutions see mirrored context at borders
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True) if cfg.ema else None
    net = ema.module if ema is not None else model  # what is validated and saved
    seg = Segmenter(net, cfg.model, arch_kwargs, names, train_ds.norm, colours, train_ds.encoding, cfg.scale)

    class_weights = None
    if cfg.class_weighting != "none":
        class_weights = class_weights_from_counts(class_pixel_counts(train_ds), cfg.class_weighting)
    loss_fn = make_loss(cfg.loss, class_weights)
    epoch_size = cfg.epoch_size or len(train_ds)
    steps_per_epoch = epoch_size // cfg.batch_size if world > 1 else math.ceil(epoch_size / cfg.batch_size)
    if steps_per_epoch < 1:
        raise ValueError(f"epoch size {epoch_size} is smaller than the global batch {cfg.batch_size}")
    optimizer = make_optimizer(cfg, model.parameters())
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.1,
        cycle_momentum=cfg.optimizer == "sgd",
    )
    state = RunState()
    if cfg.resume and (out / "last.pt").exists():
        state = restore(out / "last.pt", model, ema, optimizer, scheduler)
    trained = model
    if world > 1:
        if device.type == "cuda":
            trained = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        trained = DistributedDataParallel(trained, device_ids=[device.index] if device.type == "cuda" else None)
    if main:
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))

    for epoch in range(state.epoch, cfg.epochs):
        start = time.perf_counter()
        train_ds.set_epoch(epoch)
        indices = epoch_indices(len(train_ds), epoch_size, cfg.seed, epoch)
        if world > 1:
            indices = dist.shard_batches(indices, cfg.batch_size, rank, world)
        loader = DataLoader(train_ds, batch_size=cfg.batch_size // world, num_workers=cfg.workers, sampler=indices)
        train_loss = train_one_epoch(trained, loader, loss_fn, optimizer, scheduler, device, precision,
                                     f"epoch {epoch + 1}/{cfg.epochs}", cfg.progress and main, ema)
        train_loss = dist.all_mean(train_loss, device)
        if main:
            row = end_epoch(cfg, seg, state, epoch, train_loss, val_ds, names, device, precision, loss_fn, optimizer,
                            scheduler, model, ema, start)
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, row)
        dist.barrier()

    best = out / "best.pt"
    if main and cfg.overlays and best.exists():
        write_overlays(load_model(best), val_ds, out / "overlays", cfg.overlays, precision)
    dist.cleanup(created_group)
    return best


def end_epoch(cfg: TrainConfig, seg: Segmenter, state: RunState, epoch: int, train_loss: float, val_ds, names,
              device, precision, loss_fn, optimizer, scheduler, model, ema, start: float) -> dict:
    """Validate, record and checkpoint one finished epoch (rank 0); returns its metrics row."""
    out = Path(cfg.out)
    cm, val_loss = evaluate(seg.network, DataLoader(val_ds, batch_size=1), len(names), device, precision, loss_fn)
    summary = cm.summary(names)
    row = {
        "epoch": epoch + 1, "train_loss": round(train_loss, 6), "val_loss": round(val_loss, 6),
        "pixel_accuracy": round(summary["pixel_accuracy"], 6), "mean_iou": round(summary["mean_iou"], 6),
        "mean_dice": round(summary["mean_dice"], 6), "lr": scheduler.get_last_lr()[0],
        "seconds": round(time.perf_counter() - start, 2),
    }
    state.history.append(row)
    state.epoch = epoch + 1
    improved = summary["mean_iou"] > state.best_miou
    state.best_miou = max(state.best_miou, summary["mean_iou"])
    train_state = {
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "epoch": state.epoch,
        "best_miou": state.best_miou, "history": state.history, "config": asdict(cfg),
    }
    if ema is not None:
        train_state |= {"raw_state_dict": model.state_dict(), "ema_updates": int(ema.n_averaged)}
    save_checkpoint(out / "last.pt", seg, train_state)
    if improved:
        save_checkpoint(out / "best.pt", seg, {"epoch": state.epoch, "metrics": summary, "config": asdict(cfg)})
    write_metrics_csv(out / "metrics.csv", state.history)
    plot_curves(out / "curve.png", state.history)
    print(f"epoch {epoch + 1}/{cfg.epochs}  train loss {train_loss:.4f}  val loss {val_loss:.4f}  "
          f"pixel acc {row['pixel_accuracy']:.4f}  mIoU {row['mean_iou']:.4f}  ({row['seconds']:.1f}s)", flush=True)
    return row
