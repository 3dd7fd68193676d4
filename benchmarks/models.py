"""Every registered model side by side: parameters, inference time fp32 eager versus the
default path (bf16 autocast + channels_last where supported), the share of identical mask
pixels between the two, and training throughput on the default path.

    python benchmarks/models.py [--size 512] [--train-size 160] [--threads 2] [--models unet,segnet]

Untrained weights (random init, seeded): speed does not depend on them; the mask agreement is
a lower bound for trained models, whose logits are better separated.
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import time

import torch
import torch.nn.functional as F

from pixelwise.inference import predict_logits, resolve_precision
from pixelwise.models import MODELS, create_model
from pixelwise.train import train_one_epoch


def median_seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def build(name: str, classes: int) -> torch.nn.Module:
    kwargs = {"in_channels": 3, "num_classes": classes}
    if "base_width" in inspect.signature(MODELS[name]).parameters and name != "unet_original":
        kwargs["base_width"] = 32 if name in ("unet", "segnet", "deconvnet") else 16
    torch.manual_seed(0)
    return create_model(name, **kwargs)


def train_images_per_second(model: torch.nn.Module, size: int, classes: int, precision: str, steps: int = 4) -> float:
    crop = size
    if hasattr(model, "input_size_for"):
        crop = model.input_size_for((size, size))[0]
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(8, 3, crop, crop, generator=g), torch.randint(0, classes, (8, crop, crop), generator=g))
               for _ in range(steps)]
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    loss = lambda logits, target: F.cross_entropy(logits, target)
    train_one_epoch(model, batches[:1], loss, opt, None, torch.device("cpu"), precision, progress=False)  # warm-up
    start = time.perf_counter()
    train_one_epoch(model, batches, loss, opt, None, torch.device("cpu"), precision, progress=False)
    return 8 * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="inference input side (default 512)")
    parser.add_argument("--train-size", type=int, default=160, help="training crop side (default 160)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", default=",".join(sorted(MODELS)))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    default = resolve_precision("auto")
    classes = 11
    x = torch.randn(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(1))
    print(f"torch {torch.__version__}, {args.threads} threads, inference {args.size}x{args.size}, "
          f"training crops {args.train_size}x{args.train_size} batch 8, default path = {default}")
    print(f"{'model':<15}{'params':>9}{'fp32 ms':>10}{'default ms':>12}{'speed-up':>10}{'same px':>9}{'train img/s':>13}")
    for name in args.models.split(","):
        model = build(name, classes).eval()
        with torch.no_grad():
            t32 = median_seconds(lambda: predict_logits(model, x, "fp32"), args.repeats)
            tdef = median_seconds(lambda: predict_logits(model, x, default), args.repeats)
            same = (predict_logits(model, x, "fp32").argmax(1) == predict_logits(model, x, default).argmax(1))
        ips = train_images_per_second(build(name, classes), args.train_size, classes, default)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"{name:<15}{params:>8.2f}M{t32 * 1000:>10.1f}{tdef * 1000:>12.1f}{t32 / tdef:>9.2f}x"
              f"{same.float().mean().item():>9.4f}{ips:>13.1f}")


if __name__ == "__main__":
    main()
