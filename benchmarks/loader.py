"""DataLoader worker processes for training on this machine: training time with ``--workers``
0, 1 and 2, side by side in one run (medians).

    python benchmarks/loader.py DATA [--workers-list 0,1,2] [--batches 12] [--repeats 3]
                                [--quick] -- [pixelwise train options]

Sets up the run that ``pixelwise train DATA OPTIONS`` would (model, augmentation, loss, the path
the probe chose), then times ``--batches`` training steps per worker count, each count in turn,
round after round, each time with a fresh DataLoader (``train.epoch_loader``, as every training
epoch makes one; worker start-up included). The same samples in every timing. Without options after ``--``: the
foreground recipe's (photo appearance changes, compositing: the heaviest augmentation here).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import torch
from timing import add_common, begin

from pixelwise.cli import build_parser
from pixelwise.config import TrainConfig, from_args
from pixelwise.train import epoch_indices, epoch_loader, setup_run, train_one_epoch

FOREGROUND = (
    "--mask-values 0,255 --classes background,foreground --model unet --depth 4 --base-width 16 "
    "--scale 0.625 --crop 224 --zoom 0.35,1 --rotate 15 --appearance photo --composite 0.3 "
    "--flips horizontal --loss ce+dice --batch-size 8 --no-progress"
).split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--workers-list", default="0,1,2")
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    add_common(parser)
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:cut])
    options = argv[cut + 1 :] or FOREGROUND
    if args.quick:
        args.batches, args.repeats = 6, 2
    begin(args)
    with tempfile.TemporaryDirectory() as out:
        train_args = build_parser().parse_args(["train", args.data, "--out", out, *options])
        cfg = from_args(TrainConfig, train_args)
        cfg.check()
        run = setup_run(cfg, torch.device("cpu"))
        task = run.task
        indices = epoch_indices(len(task.dataset), args.batches * cfg.batch_size, cfg.seed, 0)
        workers = [int(w) for w in args.workers_list.split(",")]
        warm_up = epoch_loader(task, indices[: cfg.batch_size], cfg.batch_size, 0)
        train_one_epoch(task.model, warm_up, task.step, run.optimizer, None, progress=False)
        times: dict[int, list[float]] = {w: [] for w in workers}
        for _ in range(args.repeats):
            for w in workers:
                loader = epoch_loader(task, indices, cfg.batch_size, w)
                start = time.perf_counter()
                train_one_epoch(task.model, loader, task.step, run.optimizer, None, progress=False)
                times[w].append(time.perf_counter() - start)
    base = statistics.median(times[workers[0]])
    print(
        f"{args.batches} training steps of batch {cfg.batch_size} ({cfg.model}, crop {cfg.crop}), "
        f"median of {args.repeats}:"
    )
    for w in workers:
        t = statistics.median(times[w])
        print(f"  --workers {w}: {t:.2f} s ({base / t:.2f}x --workers {workers[0]})")


if __name__ == "__main__":
    main()
