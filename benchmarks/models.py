"""Our models against the anchors, side by side in one run: segmentation_models_pytorch
``Unet(encoder_name="resnet34", encoder_weights=None)`` and torchvision
``fcn_resnet50(weights=None, weights_backbone=None)``.

For each model: parameters, GFLOPs per image, inference ms per image in fp32 eager, on our
default path (bf16 autocast + channels_last where the CPU has bf16) and on ONNX Runtime (fp32),
the share of mask pixels the default path and ONNX Runtime leave unchanged, training images per
second (fp32 and default path), and achieved GFLOP/s as a share of this machine's matmul peak
measured in the same run (fp32 peak for fp32 and ONNX Runtime, bf16 peak for the default path).

    python benchmarks/models.py [--size 512] [--threads 2] [--models unet,fcn8s,segnet,smp_unet34,tv_fcn50]

Needs the ``bench`` extra (segmentation-models-pytorch) for smp_unet34, and ``onnx`` for the
ONNX Runtime column. Untrained weights (seeded): speed does not depend on them; the mask
agreement is a lower bound for trained models, whose logits are better separated.
"""

from __future__ import annotations

import argparse
import inspect
import time

import torch
import torch.nn.functional as F
from timing import add_common, begin, median_seconds
from torch import nn

from pixelwise.inference import predict_logits
from pixelwise.models import MODELS, create_model
from pixelwise.runtime import resolve_precision
from pixelwise.semantic import semantic_step
from pixelwise.train import train_one_epoch

CLASSES = 11


class Logits(nn.Module):
    """torchvision's segmentation models return {"out": logits}; expose the tensor."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)["out"]


def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    if name == "smp_unet34":
        import segmentation_models_pytorch as smp

        return smp.Unet(
            encoder_name="resnet34", encoder_weights=None, in_channels=3, classes=CLASSES
        )
    if name == "tv_fcn50":
        from torchvision.models.segmentation import fcn_resnet50

        return Logits(
            fcn_resnet50(weights=None, weights_backbone=None, num_classes=CLASSES, aux_loss=False)
        )
    kwargs = {"in_channels": 3, "num_classes": CLASSES}
    if "base_width" in inspect.signature(MODELS[name]).parameters and name != "unet_original":
        kwargs["base_width"] = 32 if name in ("unet", "segnet", "deconvnet") else 16
    return create_model(name, **kwargs)


def matmul_peak(
    dtype: torch.dtype, sizes: tuple[int, ...] = (1024, 2048, 4096), repeats: int = 5
) -> float:
    """The machine's practical peak in ``dtype``: the best GFLOP/s (median of ``repeats``) of
    square matmuls of ``sizes``."""
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        best = max(best, 2 * n**3 / median_seconds(lambda: a @ b, repeats) / 1e9)
    return best


def gflops(model: nn.Module, x: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 1e9


def train_images_per_second(
    name: str, size: int, precision: str, batch: int = 4, steps: int = 3
) -> float:
    model = build(name)
    g = torch.Generator().manual_seed(0)
    batches = [
        (
            torch.randn(batch, 3, size, size, generator=g),
            torch.randint(0, CLASSES, (batch, size, size), generator=g),
        )
        for _ in range(steps)
    ]
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    loss = lambda logits, target, weights=None: F.cross_entropy(logits, target)  # noqa: E731

    def step(m, batch):
        return semantic_step(m, batch, loss, torch.device("cpu"), precision)

    train_one_epoch(model, batches[:1], step, opt, None, progress=False)  # warm-up
    start = time.perf_counter()
    train_one_epoch(model, batches, step, opt, None, progress=False)
    return batch * steps / (time.perf_counter() - start)


def onnx_runtime(model: nn.Module, size: int):
    """The model exported to ONNX and loaded in ONNX Runtime (None without the extra)."""
    try:
        from pixelwise.export import OnnxNetwork, trace_to_onnx
    except ImportError:
        return None
    return OnnxNetwork(trace_to_onnx(model, 3, (size, size)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="inference input side (default 512)")
    parser.add_argument(
        "--train-size", type=int, default=256, help="training crop side, batch 4 (default 256)"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", default="unet,fcn8s,segnet,smp_unet34,tv_fcn50")
    parser.add_argument("--no-onnx", dest="onnx", action="store_false")
    add_common(parser)
    args = parser.parse_args()
    begin(args)
    if args.quick:  # the default U-Net and two others at half size, 2 repeats
        args.size, args.train_size, args.repeats, args.models = 256, 128, 2, "unet,fcn8s,segnet"
    default = resolve_precision("auto")
    default_training = resolve_precision("auto", training=True)  # measured apart from inference
    # the bf16 peak only where bf16 runs on the hardware: emulated (AVX2 only), one 4096^2 matmul
    # takes minutes and no path uses it
    sizes = (512, 1024, 2048) if args.quick else (1024, 2048, 4096)
    peak32 = matmul_peak(torch.float32, sizes)
    peak16 = matmul_peak(torch.bfloat16, sizes) if default == "bf16" else float("nan")
    x = torch.randn(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(1))
    print(
        f"torch {torch.__version__}, {args.threads} threads; inference {args.size}x{args.size} (median of "
        f"{args.repeats}); training crops {args.train_size}x{args.train_size} batch 4; default path = {default} "
        f"(training: {default_training})"
    )
    print(
        f"matmul peak (best of {'/'.join(map(str, sizes))} square): fp32 {peak32:.0f} GFLOP/s, "
        f"bf16 {f'{peak16:.0f} GFLOP/s' if default == 'bf16' else 'not measured (no bf16 instructions)'}"
    )
    head = (
        f"{'model':<12}{'params':>8}{'GFLOP':>7}{'fp32 ms':>9}{'default ms':>11}{'speed-up':>9}{'same px':>9}"
        f"{'ORT ms':>8}{'ORT x':>7}{'ORT px':>8}{'%peak fp32':>11}{'%peak dflt':>11}{'train fp32':>11}{'train dflt':>11}"
    )
    print(head + "   (train in images/s)")
    for name in args.models.split(","):
        model = build(name).eval()
        flops = gflops(model, x)
        with torch.no_grad():
            t32 = median_seconds(lambda: predict_logits(model, x, "fp32"), args.repeats)
            tdef = median_seconds(lambda: predict_logits(model, x, default), args.repeats)
            ref = predict_logits(model, x, "fp32").argmax(1)
            same = (ref == predict_logits(model, x, default).argmax(1)).float().mean().item()
        ort_cols = f"{'-':>8}{'-':>7}{'-':>8}"
        session = onnx_runtime(model, args.size) if args.onnx else None
        if session is not None:
            tort = median_seconds(lambda: session(x), args.repeats)
            same_ort = (ref == session(x).argmax(1)).float().mean().item()
            ort_cols = f"{tort * 1000:>8.0f}{t32 / tort:>6.2f}x{same_ort:>8.4f}"
        ips32 = train_images_per_second(name, args.train_size, "fp32")
        ipsdef = train_images_per_second(name, args.train_size, default_training)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(
            f"{name:<12}{params:>7.1f}M{flops:>7.1f}{t32 * 1000:>9.0f}{tdef * 1000:>11.0f}{t32 / tdef:>8.2f}x"
            f"{same:>9.4f}{ort_cols}{flops / t32 / peak32:>10.1%}{flops / tdef / (peak16 if default == 'bf16' else peak32):>11.1%}"
            f"{ips32:>11.2f}{ipsdef:>11.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
