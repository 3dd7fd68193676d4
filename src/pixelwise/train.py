"""Training as plain functions: :func:`fit` runs one epoch driver for every model kind.

A kind provides a :class:`Task` (its dataset, its training step, its validation and the score
that picks ``best.pt``); the driver does the rest the same way for all: seeded sample order,
one-cycle schedule, optional weight averaging, resume, DistributedDataParallel under
``torchrun``, checkpoints, ``metrics.csv``, ``curve.png`` and the printed progress.

Reproducibility: the initial weights come from ``seed``; each epoch's sample order and every
sample's augmentation are pure functions of ``(seed, epoch, draw)``. A run resumed from the
checkpoint of epoch k therefore replays epochs k+1.. exactly as an uninterrupted run would.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, Dataset

from pixelwise import distributed as dist
from pixelwise.checkpoint import (
    calibrate_checkpoint,
    default_path,
    int8_applies,
    read_checkpoint,
    save_checkpoint,
    segmenter_from_checkpoint,
    write_checkpoint,
)
from pixelwise.config import TrainConfig, as_typed, data_settings
from pixelwise.constants import counted, did_you_mean, first_ten, option_text
from pixelwise.data.calibration import common_pixel_size
from pixelwise.data.coco import InstanceDataset, collate
from pixelwise.data.datasets import SegmentationDataset, pad_collate
from pixelwise.data.encoding import MaskEncoding, Normalization, mixed_kinds_note
from pixelwise.data.write import atomic_write_bytes, mark_output
from pixelwise.detection import detection_step, instance_splits, score_detector
from pixelwise.evaluate import choose_thresholds, evaluate
from pixelwise.instances import OBJECT_PROB, SEED_PROB
from pixelwise.losses import class_weights_from_counts
from pixelwise.models import create_model
from pixelwise.runtime import resolve_precision
from pixelwise.segmenter import Segmenter, default_colours, kind_of
from pixelwise.semantic import (
    backbone_weights,
    build_datasets,
    build_model,
    check_crop,
    class_pixel_counts,
    make_loss,
    pretrained_normalization,
    semantic_step,
    starting_point,
    unvalidated,
    validation_source,
    write_overlays,
)

__all__ = ["TrainConfig", "fit", "train_one_epoch", "epoch_indices"]


@dataclass
class Task:
    """What the epoch driver needs from a model kind.

    ``step(model, batch)`` runs forward and backward on this process's share of a batch and
    returns (summed loss, images); ``validate(network)`` returns the validation metrics (with
    ``val_loss``, NaN where there is none), or is None for a run without validation images
    (``--val-fraction 0``: each epoch's model is ``best.pt``); ``score`` names the one that picks
    ``best.pt``;
    ``report`` the (label, metric) pairs printed each epoch; ``finish(best)`` runs once after
    training (rank 0)."""

    seg: Segmenter
    model: nn.Module
    dataset: Dataset
    step: Callable
    validate: Callable[[nn.Module], dict] | None
    score: str
    report: tuple[tuple[str, str], ...]
    collate: Callable | None = None
    finish: Callable[[Path], None] | None = None
    about: str = ""  # what the run trains on, printed at its start


def describe_data(cfg: TrainConfig, n_train: int, n_val: int, names: list[str]) -> str:
    """One line on what a run trains and validates on: image counts, where the validation images
    come from, the classes."""
    split = (
        f"{n_train} training and {n_val} validation images ({validation_source(cfg)})"
        if n_val
        else f"{counted(n_train, 'training image')}, no validation (--val-fraction 0: best.pt is "
        "the last epoch's model)"
    )
    return f"{cfg.data}: {split}; {len(names)} classes: {first_ten(names, 'classes')}"


@dataclass
class RunState:
    epoch: int = 0  # epochs completed
    best_score: float = -1.0
    history: list[dict] = field(default_factory=list)
    stopped: bool = False  # --patience ran out


def stalled_epochs(history: list[dict], score: str) -> int:
    """Epochs since the best ``score`` in ``history`` (a tie is no gain, as for ``best.pt``)."""
    best, since = -math.inf, 0
    for row in history:
        if row.get(score, math.nan) > best:
            best, since = row[score], 0
        else:
            since += 1
    return since


def epoch_indices(n: int, epoch_size: int, seed: int, epoch: int) -> list[int]:
    """``epoch_size`` draws from ``n`` items: concatenated seeded permutations of range(n),
    the r-th permutation offset by ``r * n``. Draw ``d`` is item ``d % n``; the datasets seed
    their augmentation with the whole draw, so an item drawn twice in one epoch (epoch_size > n)
    gives two different random crops, not the same one twice."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    reps = math.ceil(epoch_size / n)
    return torch.cat([torch.randperm(n, generator=g) + r * n for r in range(reps)])[
        :epoch_size
    ].tolist()


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; choose adam or sgd")


def normalization(cfg: TrainConfig, train_ds, start: Segmenter | None, backbone) -> Normalization:
    """How the run normalises its images: as the training images' statistics say, as the model
    fine-tuned from (``start``) learnt them, or as ImageNet ``backbone`` weights expect; a note
    when the images store intensity in ways bit-depth normalisation shows differently."""
    norm = train_ds.norm
    if start is not None:
        wanted, learnt = cfg.normalize_percentiles, start.norm.percentiles
        if wanted is not None and wanted != learnt:
            raise ValueError(
                f"--normalize-percentiles {option_text(wanted)}: fine-tuning normalises the "
                f"images as {cfg.weights} learnt them ("
                + (f"by percentiles {option_text(learnt)}" if learnt else "by bit depth")
                + "); leave the option out"
            )
        norm = start.norm
    elif backbone is not None:
        norm = pretrained_normalization(train_ds.channels, norm.scale, norm.percentiles)
    if norm.percentiles is None and (note := mixed_kinds_note(train_ds.kinds)):
        print(note, file=sys.stderr)
    return norm


def semantic_task(cfg: TrainConfig, device: torch.device, precision: str) -> Task:
    backbone = backbone_weights(cfg)  # before reading the data: a wrong file stops at once
    train_ds, val_ds, names, colours = build_datasets(cfg)
    start = None if backbone is not None else starting_point(cfg, train_ds.channels, len(names))
    train_ds.norm = val_ds.norm = normalization(cfg, train_ds, start, backbone)
    model, arch_kwargs = build_model(
        cfg, train_ds.channels, len(names), device, precision, start, backbone
    )
    train_ds.context = getattr(
        model, "margin", 0
    )  # valid convolutions see mirrored context at borders
    check_crop(cfg, train_ds)
    seg = Segmenter(
        model,
        start.arch if start is not None else cfg.model,
        arch_kwargs,
        names,
        train_ds.norm,
        colours,
        train_ds.encoding,
        cfg.scale,
        box_input=cfg.crop if cfg.box_crop else 0,
        channel=cfg.channel,
        pixel_size=cfg.at_pixel_size or common_pixel_size(item.image for item in train_ds.items),
    )
    class_weights = None
    if cfg.class_weighting != "none":
        class_weights = class_weights_from_counts(class_pixel_counts(train_ds), cfg.class_weighting)
    loss_fn = make_loss(cfg.loss, class_weights)

    def validate(network: nn.Module) -> dict:
        cm, val_loss = evaluate(
            network, DataLoader(val_ds, batch_size=1), len(names), device, precision, loss_fn
        )
        summary = cm.summary(names)
        return {"val_loss": val_loss} | {
            k: summary[k] for k in ("pixel_accuracy", "mean_iou", "mean_dice")
        }

    return Task(
        seg,
        model,
        train_ds,
        lambda m, batch: semantic_step(m, batch, loss_fn, device, precision),
        validate if len(val_ds) else None,
        "mean_iou",
        (("val loss", "val_loss"), ("pixel acc", "pixel_accuracy"), ("mIoU", "mean_iou")),
        collate=pad_collate,
        about=describe_data(cfg, len(train_ds.items), len(val_ds.items), names),
        finish=lambda best: finish_semantic(cfg, best, val_ds, precision) if len(val_ds) else None,
    )


def finish_semantic(cfg: TrainConfig, best: Path, val_ds, precision: str) -> None:
    """After training: overlays of the first validation images; for a boundary model, the
    instance thresholds chosen on the validation images written into ``best``."""
    ckpt = read_checkpoint(best)  # read once for both
    seg = segmenter_from_checkpoint(ckpt)
    if cfg.overlays:
        write_overlays(seg, val_ds, Path(cfg.out) / "overlays", cfg.overlays, precision)
    if val_ds.encoding.instances == "boundary":
        store_thresholds(best, ckpt, seg, val_ds)
    if cfg.calibrate and int8_applies(seg.arch) and not seg.box_input:
        store_int8(best, val_ds)


def store_int8(best: Path, val_ds) -> None:
    """Calibrate ``best`` for int8 on the validation images and gate it (``pixelwise calibrate``),
    saying what it measured and the path this machine then takes."""
    from pixelwise.report import gate_scores

    print(f"calibrating int8 on {counted(len(val_ds.items), 'validation image')}", flush=True)
    try:
        gate = calibrate_checkpoint(best, None, items=val_ds.items)
    except Exception as exc:  # the export's own errors (a network ONNX cannot express)
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        print(f"int8 calibration skipped: {reason}; {best} stays fp32 only")
        return
    scores = gate_scores(gate)
    if not gate["passed"]:
        print(f"int8 accuracy gate not met ({scores}): {best} stays fp32 only")
        return
    print(f"int8 written into {best}; accuracy gate passed: {scores}")
    print(f"this machine's default path for it: {default_path(best)}")


def store_thresholds(best: Path, ckpt: dict, seg: Segmenter, val_ds) -> None:
    """Choose a boundary model's seed and object thresholds (:func:`evaluate.choose_thresholds`)
    on the validation images at their full resolution, as ``segment`` sees images (on the CPU,
    by the path ``segment`` takes there: precision auto), and write them into ``best`` (whose
    contents are ``ckpt``, loaded as ``seg``)."""
    ds = SegmentationDataset(
        val_ds.items,
        seg.num_classes,
        val_ds.encoding,
        seg.norm,
        channels=seg.in_channels,
        channel=seg.reads,
    )
    print(f"choosing the instance thresholds on {counted(len(ds), 'validation image')}", flush=True)
    chosen = choose_thresholds(seg, ds, scales=val_ds.item_scales)
    stored = {k: v for k, v in ckpt.items() if k != "path"}
    write_checkpoint(best, stored | {"instance_thresholds": [chosen["seed"], chosen["object"]]})
    print(
        f"instance thresholds: seed {chosen['seed']}, object {chosen['object']} "
        f"(DSB mean AP {chosen['mean_ap']:.4f}; {SEED_PROB}, {OBJECT_PROB}: "
        f"{chosen['default_mean_ap']:.4f}; the classes' argmax: {chosen['argmax_mean_ap']:.4f}), "
        f"written into {best}"
    )


def detection_task(cfg: TrainConfig, device: torch.device) -> Task:
    train_items, val_items, cats, spec = instance_splits(
        cfg.data, cfg.val_stems, cfg.val_fraction, cfg.seed
    )
    if not val_items and not unvalidated(cfg):
        raise ValueError(
            f"{cfg.data}: no validation images (give --val-stems or --val-fraction > 0)"
        )
    arch_kwargs = {
        "num_classes": len(cats.ids),
        "backbone": cfg.backbone,
        "min_size": cfg.min_size,
        "max_size": cfg.max_size,
        "box_detections_per_img": cfg.max_detections,
    }
    torch.manual_seed(cfg.seed)
    model = create_model("mask_rcnn", **arch_kwargs, weights=cfg.weights).to(device)
    names = ["background", *cats.names]
    seg = Segmenter(
        model,
        "mask_rcnn",
        arch_kwargs,
        names,
        Normalization([0.0], [1.0], 255.0),
        default_colours(len(names)),
        MaskEncoding(values=(0, *cats.ids)),
    )
    dataset = InstanceDataset(train_items, cats, augment=cfg.augment, seed=cfg.seed)

    def validate(network: nn.Module) -> dict:
        return {"val_loss": float("nan")} | score_detector(network, val_items, cats, spec)

    return Task(
        seg,
        model,
        dataset,
        lambda m, batch: detection_step(m, batch, device, cfg.seed, dataset.epoch),
        validate if val_items else None,
        "mask_ap",
        (("mask AP", "mask_ap"), ("box AP", "box_ap"), ("DSB mean AP", "dsb_mean_ap")),
        collate=collate,
        about=describe_data(cfg, len(train_items), len(val_items), names),
    )


def train_one_epoch(
    model: nn.Module,
    loader,
    step: Callable,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    desc: str = "train",
    progress: bool = True,
    ema: AveragedModel | None = None,
) -> float:
    """One pass over ``loader``; returns the mean training loss per image. ``step(model, batch)``
    does forward and backward; ``ema``, if given, is updated with the new weights after every
    optimizer step."""
    from tqdm import tqdm

    model.train()
    total, count = 0.0, 0
    bar = tqdm(loader, desc=desc, unit="batch", disable=not progress, leave=False)
    for batch in bar:
        optimizer.zero_grad(set_to_none=True)
        loss_sum, n = step(model, batch)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if ema is not None:
            ema.update_parameters(model)
        total, count = total + loss_sum, count + n
        bar.set_postfix(loss=f"{total / count:.4f}")
    return total / max(count, 1)


def write_metrics_csv(path: Path, history: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    atomic_write_bytes(path, buf.getvalue().encode())


def plot_curves(path: Path, history: list[dict], scores: tuple[str, ...]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2 if scores else 1, figsize=(10 if scores else 5, 4), squeeze=False)
    ax1, ax2 = axes[0][0], axes[0][-1]  # without validation scores, the loss alone
    ax1.plot(epochs, [h["train_loss"] for h in history], label="train")
    if "val_loss" in history[0]:
        ax1.plot(epochs, [h["val_loss"] for h in history], label="validation")
    ax1.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax1.legend()
    for key in scores:
        ax2.plot(epochs, [h[key] for h in history], label=key.replace("_", " "))
    if scores:
        ax2.set(xlabel="epoch", ylabel="score", title="Validation", ylim=(0, 1))
        ax2.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
    """One-cycle learning rate (warm up over the first 10 % of the steps, at least 2, then cosine
    annealing); a constant rate for runs of fewer than 3 steps, which cannot hold a cycle."""
    if total_steps < 3:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=cfg.lr,
        total_steps=total_steps,
        pct_start=max(0.1, 2 / total_steps),
        cycle_momentum=cfg.optimizer == "sgd",
    )


SCHEDULE = ("epochs", "epoch_size", "batch_size", "lr", "optimizer")
# the network's shape, the averaged copy's presence and how the weights saw their images
KEPT_ON_RESUME = (
    *SCHEDULE,
    *("model", "depth", "base_width", "batch_norm", "decoder", "backbone", "instances", "ema"),
    "normalize_percentiles",
)
RESUME_ADVICE = (
    "resume with the same settings (the learning-rate schedule spans the whole run; the weights "
    "fit one network and one normalisation) or start a new run in another --out"
)


def check_resumable(path: Path, saved: dict, cfg: TrainConfig) -> None:
    """The schedule spans the whole run, the weights fit one network, and they learnt their
    images normalised one way: resuming with other settings for them is refused."""
    changed = [
        k
        for k in KEPT_ON_RESUME
        if (k in saved or k in DEFAULTS) and saved.get(k, DEFAULTS.get(k)) != getattr(cfg, k)
    ]
    if changed:
        typed = [as_typed(k, saved.get(k, DEFAULTS.get(k))) for k in changed]
        given = " ".join(t for t in typed if not t.startswith("without "))
        was = ", ".join(
            [f"with {given}"] * bool(given) + [t for t in typed if t.startswith("without ")]
        )
        raise ValueError(f"{path}: written by a run {was}; {RESUME_ADVICE}")


DEFAULTS = {"normalize_percentiles": None}  # checkpoints from before the option lack it


def restore(
    path: Path, model: nn.Module, ema: AveragedModel | None, optimizer, scheduler, cfg: TrainConfig
) -> RunState:
    """Load the state of ``last.pt`` into the training objects; returns the run's history."""
    ckpt = read_checkpoint(path)
    ts = ckpt["train_state"]
    check_resumable(path, ts.get("config", {}), cfg)
    try:
        model.load_state_dict(ts["raw_state_dict"] if ema is not None else ckpt["state_dict"])
    except RuntimeError:  # another class count or channel count than the data now gives
        raise ValueError(
            f"{path}: its network is not the one these data and options make (its classes and "
            f"input channels: pixelwise info {path}); {RESUME_ADVICE}"
        ) from None
    if ema is not None:
        ema.module.load_state_dict(ckpt["state_dict"])
        ema.n_averaged.fill_(ts["ema_updates"])
    optimizer.load_state_dict(ts["optimizer"])
    scheduler.load_state_dict(ts["scheduler"])
    print(f"resumed from {path} after epoch {ts['epoch']}")
    best = ts.get(
        "best_score", ts.get("best_miou", ts.get("best_mask_ap", -1.0))
    )  # earlier runs' names
    return RunState(ts["epoch"], best, ts["history"])


@dataclass
class Run:
    """The objects of one training run, as :func:`fit` sets them up."""

    cfg: TrainConfig
    task: Task
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    ema: AveragedModel | None
    state: RunState
    epoch_size: int


def setup_run(cfg: TrainConfig, device: torch.device) -> Run:
    """Task, optimizer, one-cycle schedule and averaged weights for ``cfg``; resumed from
    ``last.pt`` with ``cfg.resume``."""
    world = dist.world_size()
    if kind_of(cfg.model) == "instance":
        task = detection_task(cfg, device)
    else:
        task = semantic_task(cfg, device, resolve_precision(cfg.precision, device, training=True))
    epoch_size = cfg.epoch_size or len(task.dataset)
    steps_per_epoch = (
        epoch_size // cfg.batch_size if world > 1 else math.ceil(epoch_size / cfg.batch_size)
    )
    if steps_per_epoch < 1:
        raise ValueError(
            f"epoch size {epoch_size} is smaller than the global batch {cfg.batch_size}"
        )
    ema = (
        AveragedModel(task.model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
        if cfg.ema
        else None
    )
    if ema is not None:
        task.seg.network = ema.module  # what is validated and saved
    if cfg.patience and task.validate is None:
        raise ValueError(
            f"{cfg.data}: --patience stops on the validation score, and this run has no "
            "validation images (--val-fraction 0)"
        )
    optimizer = make_optimizer(cfg, [p for p in task.model.parameters() if p.requires_grad])
    scheduler = make_scheduler(optimizer, cfg, cfg.epochs * steps_per_epoch)
    state = RunState()
    last = Path(cfg.out) / "last.pt"
    if cfg.resume and last.exists():
        state = restore(last, task.model, ema, optimizer, scheduler, cfg)
    return Run(cfg, task, optimizer, scheduler, ema, state, epoch_size)


def check_unfinished(cfg: TrainConfig) -> None:
    """A run stopped part-way in ``cfg.out`` is continued with ``--resume``; without it, a new
    run would write over its ``last.pt`` after one epoch. (A finished run is simply replaced.)"""
    last = Path(cfg.out) / "last.pt"
    if cfg.resume or not last.is_file():
        return
    try:
        state = read_checkpoint(last).get("train_state") or {}
    except ValueError:  # not a checkpoint: nothing to keep
        return
    done, planned = state.get("epoch", 0), (state.get("config") or {}).get("epochs", 0)
    if done < planned and not state.get("stopped_early"):
        raise ValueError(
            f"{cfg.out}: holds a run stopped after epoch {done} of {planned}; --resume continues "
            "it, another --out (or deleting this one) starts a new run"
        )


def fit(
    cfg: TrainConfig | str | os.PathLike | None = None,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    **options,
) -> Path:
    """Train per ``cfg``; writes ``last.pt``, ``best.pt``, ``metrics.csv``, ``curve.png`` (and, for
    semantic models, ``overlays/``) into ``cfg.out`` and returns the path of ``best.pt``.

    ``cfg`` may also be the data, with ``pixelwise train``'s options as keywords (in Python
    form or as typed there): ``fit("DATA", out="runs/x", epochs=20, mask_values="0,255")``.

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
    if cfg is None:  # fit(data="DATA", out=...), as TrainConfig names it
        if "data" not in options:
            raise TypeError("fit: give the data, fit('DATA', out=...), or a TrainConfig")
        cfg = options.pop("data")
    if not isinstance(cfg, TrainConfig):
        known = [f.name for f in dataclasses.fields(TrainConfig)]
        if unknown := sorted(options.keys() - set(known)):  # as the command line names them
            raise TypeError(f"fit: no option {unknown[0]!r}{did_you_mean(unknown[0], known)}")
        cfg = TrainConfig(data=os.fspath(cfg), **options)
    elif options:
        raise TypeError("fit: give the options in cfg, or the data with the options as keywords")
    if cfg.out is None:
        raise ValueError("--out: the run folder to write the checkpoints into is missing")
    cfg.check()
    with training_lock(Path(cfg.out)) if dist.is_main() else contextlib.nullcontext():
        check_unfinished(cfg)
        return train_run(cfg, on_epoch_end)


LOCK = ".pixelwise-training"  # in a run folder: held (flock) while a run writes there


@contextlib.contextmanager
def training_lock(out: Path):
    """Held while a run writes into ``out``: a second run into the same folder is refused at
    once rather than mixed with the first (an advisory lock, which the system releases when the
    process ends, however it ends; none where the platform has no ``fcntl``)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            raise ValueError(
                f"{out}: another training run (process {holder or '?'}) is writing into it; wait "
                "for it to end, or give another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)


def train_run(cfg: TrainConfig, on_epoch_end=None) -> Path:
    """:func:`fit`'s run once ``cfg`` is checked (and, on rank 0, its folder locked)."""
    device, created_group = dist.setup(cfg.device)
    out = Path(cfg.out)
    if dist.is_main():
        out.mkdir(parents=True, exist_ok=True)
        mark_output(out)  # its overlays are no inputs of a later predict over a folder holding it
    run = setup_run(cfg, device)
    trained = dist.wrap(run.task.model, device)
    if dist.is_main():
        size = sum(p.numel() for p in run.task.model.parameters()) / 1e6
        print(f"{run.task.about}; {cfg.model} ({size:.2f} M parameters) on {device}", flush=True)
        atomic_write_bytes(out / "config.json", json.dumps(cfg.to_dict(), indent=2).encode())
    for epoch in range(run.state.epoch, cfg.epochs):
        if run_epoch(run, trained, epoch, on_epoch_end):
            break
    best = out / "best.pt"
    if dist.is_main() and run.task.finish is not None and best.exists():
        run.task.finish(best)
    dist.cleanup(created_group)
    return best


def epoch_loader(task: Task, indices: list[int], batch_size: int, workers: int) -> DataLoader:
    """The DataLoader of one training epoch: ``indices`` in order, in batches of ``batch_size``,
    loaded by ``workers`` processes (0: in this one)."""
    return DataLoader(
        task.dataset,
        batch_size=batch_size,
        num_workers=workers,
        sampler=indices,
        collate_fn=task.collate,
    )


def run_epoch(run: Run, trained: nn.Module, epoch: int, on_epoch_end: Callable | None) -> bool:
    """Train one epoch on every process; rank 0 then validates, checkpoints and reports.
    Returns whether ``--patience`` ran out (rank 0's decision, for every process)."""
    cfg, task, world = run.cfg, run.task, dist.world_size()
    start = time.perf_counter()
    task.dataset.set_epoch(epoch)
    indices = epoch_indices(len(task.dataset), run.epoch_size, cfg.seed, epoch)
    if world > 1:
        indices = dist.shard_batches(indices, cfg.batch_size, dist.rank(), world)
    loader = epoch_loader(task, indices, cfg.batch_size // world, cfg.workers)
    train_loss = train_one_epoch(
        trained,
        loader,
        task.step,
        run.optimizer,
        run.scheduler,
        f"epoch {epoch + 1}/{cfg.epochs}",
        cfg.progress and dist.is_main(),
        run.ema,
    )
    device = next(task.model.parameters()).device
    train_loss = dist.all_mean(train_loss, device)
    if dist.is_main():
        row = end_epoch(run, epoch, train_loss, start)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, row)
        if run.state.stopped:
            label = dict((key, label) for label, key in task.report)[task.score]
            stalled = stalled_epochs(run.state.history, task.score)
            print(
                f"stopped: {label} has not improved for {counted(stalled, 'epoch')} "
                f"(--patience {cfg.patience}); best.pt is epoch {epoch + 1 - stalled}'s model",
                flush=True,
            )
    dist.barrier()
    return dist.all_mean(float(run.state.stopped), device) > 0


def end_epoch(run: Run, epoch: int, train_loss: float, start: float) -> dict:
    """Validate, record and checkpoint one finished epoch (rank 0); returns its metrics row."""
    cfg, task, state = run.cfg, run.task, run.state
    out = Path(cfg.out)
    metrics = task.validate(task.seg.network) if task.validate is not None else {}
    # the numbers: an interval (a list) is for evaluate's reports, not for each epoch's row
    metrics = {k: v for k, v in metrics.items() if not isinstance(v, list)}
    row = {"epoch": epoch + 1, "train_loss": round(train_loss, 6)} | {
        k: round(v, 6) for k, v in metrics.items()
    }
    row |= {"lr": run.scheduler.get_last_lr()[0], "seconds": round(time.perf_counter() - start, 2)}
    state.history.append(row)
    state.epoch = epoch + 1
    # without validation each epoch's model is the best one known
    improved = not metrics or metrics[task.score] > state.best_score
    state.best_score = max(state.best_score, metrics.get(task.score, -1.0))
    state.stopped = bool(cfg.patience) and stalled_epochs(state.history, task.score) >= cfg.patience
    train_state = {
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "epoch": state.epoch,
        "best_score": state.best_score,
        "history": state.history,
        "config": cfg.to_dict(),
        "data_settings": data_settings(),
        "stopped_early": state.stopped,  # by --patience: a finished run
    }
    if run.ema is not None:
        train_state |= {
            "raw_state_dict": task.model.state_dict(),
            "ema_updates": int(run.ema.n_averaged),
        }
    save_checkpoint(out / "last.pt", task.seg, train_state)
    if improved:
        save_checkpoint(
            out / "best.pt",
            task.seg,
            {
                "epoch": state.epoch,
                "metrics": metrics,
                "config": cfg.to_dict(),
                "data_settings": train_state["data_settings"],
            },
        )
    write_metrics_csv(out / "metrics.csv", state.history)
    plot_curves(
        out / "curve.png", state.history, tuple(key for key in metrics if key != "val_loss")
    )
    shown = "".join(f"  {label} {row[key]:.4f}" for label, key in task.report if key in row)
    print(
        f"epoch {epoch + 1}/{cfg.epochs}  train loss {train_loss:.4f}{shown}  ({row['seconds']:.1f}s"
        f"{time_left(state.history, cfg.epochs)})",
        flush=True,
    )
    return row


def time_left(history: list[dict], epochs: int) -> str:
    """ "; about 25 min left": the median epoch's time (validation included) of this run so far
    times the epochs still to come, or "" after the last one."""
    remaining = epochs - history[-1]["epoch"]
    if remaining <= 0:
        return ""
    seconds = statistics.median(row["seconds"] for row in history) * remaining
    if seconds < 90:
        return f"; about {seconds:.0f} s left"
    return (
        f"; about {seconds / 60:.0f} min left"
        if seconds < 5400
        else f"; about {seconds / 3600:.1f} h left"
    )
