"""The network as inference runs it, against the network as trained, side by side in one run
(interleaved, medians): batch norms folded into the convolutions before them, then also the
in-place ReLUs out of place in bf16 (``pixelwise.precision.for_inference``, what inference
runs); the inference forward of each torch path (fp32 contiguous, fp32 channels_last, bf16
autocast + channels_last where the CPU has bf16 instructions) on one image, and the largest
logit difference between the trained network and what inference runs.

    python benchmarks/fold.py [--models unet,u2net] [--size 512] [--repeats 5] [--quick]

Untrained weights with batch-norm statistics drawn away from their initial values (the fold's
arithmetic is then exercised; speed does not depend on the values).
"""

from __future__ import annotations

import argparse
import copy

import torch
from timing import add_common, begin
from torch import nn

from pixelwise.models import create_model
from pixelwise.precision import autocast, fold_batch_norms, for_inference, memory_format
from pixelwise.runtime import cpu_info, interleaved


def with_statistics(model: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if type(m) is nn.BatchNorm2d:
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 2 + 0.5)
    return model.eval()


def forward(model: nn.Module, x: torch.Tensor, precision: str):
    fmt = memory_format(precision)
    model, x = model.to(memory_format=fmt), x.contiguous(memory_format=fmt)

    @torch.inference_mode()
    def run():
        with autocast(precision):
            return model(x).float()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="unet,u2net,unet_resnet")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    add_common(parser)
    args = parser.parse_args()
    begin(args)
    size, repeats = (256, 3) if args.quick else (args.size, args.repeats)
    precisions = ["fp32", "fp32-cl"] + (["bf16"] if cpu_info()["bf16_hardware"] else [])
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    print(f"one {size} x {size} image, medians of {repeats} after a warm-up")
    print(
        "| model | path | as trained (ms) | folded (ms) | folded, bf16 ReLUs out of place (ms) "
        "| speed-up: folded, both | largest logit difference |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        torch.manual_seed(0)
        model = with_statistics(create_model(name, in_channels=3, num_classes=2))
        folded = fold_batch_norms(copy.deepcopy(model))
        inference = for_inference(copy.deepcopy(model))
        for precision in precisions:
            calls = {
                "trained": forward(model, x, precision),
                "folded": forward(folded, x, precision),
                "inference": forward(inference, x, precision),
            }
            seconds = interleaved(calls, repeats)
            diff = (calls["trained"]() - calls["inference"]()).abs().max().item()
            ms = " | ".join(f"{seconds[k] * 1e3:.0f}" for k in calls)
            print(
                f"| {name} | {precision} | {ms} | {seconds['trained'] / seconds['folded']:.2f}x, "
                f"{seconds['trained'] / seconds['inference']:.2f}x | {diff:.1e} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
