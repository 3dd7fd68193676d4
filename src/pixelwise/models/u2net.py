"""U²-Net: a U-Net whose every stage is itself a small U-Net (a residual U-block, RSU).

Qin, Zhang, Huang, Dehghan, Zaiane, Jagersand, "U²-Net: Going Deeper with Nested U-Structure
for Salient Object Detection", Pattern Recognition 106, 2020. The defaults are the paper's
small model (U²-Net†, about 1.1 M parameters): every block has ``width`` = 64 output and
``base_width`` = 16 inner channels. The model was designed to be trained from scratch.

Deep supervision: each decoder stage (and the bottom stage) has its own 3x3 classifier, upsampled
to the input size; a 1x1 convolution fuses the six side outputs into the logits ``forward``
returns. While training, ``side_logits`` holds the six side outputs of the last forward pass,
so the loss can supervise each of them (see :func:`pixelwise.train.train_one_epoch`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBNReLU(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, dilation: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, 3, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


def upsample_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class RSU(nn.Module):
    """Residual U-block of ``height`` levels: ``out = U(F(x)) + F(x)`` with ``F`` a 3x3 conv.

    The inner U has ``height - 1`` encoder convolutions separated by 2x2 max pooling (ceil mode,
    so any size works), a dilated bottom convolution and a mirrored decoder that upsamples
    bilinearly and concatenates the skips. ``dilated=True`` (the paper's RSU-4F, for the
    coarsest stages) replaces pooling by dilations 1, 2, 4, ... at full resolution.
    """

    def __init__(
        self, in_ch: int, mid_ch: int, out_ch: int, height: int, dilated: bool = False
    ) -> None:
        super().__init__()
        if height < 2:
            raise ValueError(f"an RSU block needs height >= 2, got {height}")
        self.dilated = dilated
        rates = [2**i if dilated else 1 for i in range(height)]
        rates[-1] = 2 * rates[-2] if dilated else 2
        self.input = ConvBNReLU(in_ch, out_ch)
        self.encoder = nn.ModuleList(
            ConvBNReLU(out_ch if i == 0 else mid_ch, mid_ch, rates[i]) for i in range(height)
        )
        self.decoder = nn.ModuleList(
            ConvBNReLU(2 * mid_ch, out_ch if i == 0 else mid_ch, rates[i])
            for i in reversed(range(height - 1))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hx = self.input(x)
        skips, h = [], hx
        for i, conv in enumerate(self.encoder):
            if i and not self.dilated and i < len(self.encoder) - 1:
                h = F.max_pool2d(h, 2, ceil_mode=True)
            h = conv(h)
            skips.append(h)
        h = skips.pop()
        for conv in self.decoder:
            skip = skips.pop()
            h = conv(torch.cat([h if self.dilated else upsample_to(h, skip), skip], 1))
        return h + hx


class U2Net(nn.Module):
    """Six encoder stages (RSU-7, 6, 5, 4, 4F, 4F with 2x2 pooling between them), five decoder
    stages mirroring them, six side classifiers fused by a 1x1 convolution.

    Input (N, in_channels, H, W) -> logits (N, num_classes, H, W) for any H and W.
    """

    HEIGHTS = (7, 6, 5, 4)  # then two dilated RSU-4F stages

    def __init__(
        self, in_channels: int = 3, num_classes: int = 2, base_width: int = 16, width: int = 64
    ) -> None:
        super().__init__()
        stages = [(h, False) for h in self.HEIGHTS] + [(4, True), (4, True)]
        self.encoder = nn.ModuleList(
            RSU(in_channels if i == 0 else width, base_width, width, h, d)
            for i, (h, d) in enumerate(stages)
        )
        self.decoder = nn.ModuleList(
            RSU(2 * width, base_width, width, h, d) for h, d in reversed(stages[:-1])
        )
        self.sides = nn.ModuleList(nn.Conv2d(width, num_classes, 3, padding=1) for _ in stages)
        self.fuse = nn.Conv2d(len(stages) * num_classes, num_classes, 1)
        self.side_logits: list[torch.Tensor] = []

    def train(self, mode: bool = True) -> U2Net:
        """Also forgets the last pass's side outputs: they belong to that training step alone,
        and a copy of the network (inference makes one, :func:`pixelwise.precision.folded`)
        cannot hold tensors of a graph."""
        self.side_logits = []
        return super().train(mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips, h = [], x
        for i, stage in enumerate(self.encoder):
            h = stage(h if i == 0 else F.max_pool2d(h, 2, ceil_mode=True))
            skips.append(h)
        features = [skips.pop()]  # bottom stage first
        for stage in self.decoder:
            skip = skips.pop()
            features.append(stage(torch.cat([upsample_to(features[-1], skip), skip], 1)))
        sides = [upsample_to(side(f), x) for side, f in zip(self.sides, reversed(features))]
        self.side_logits = sides if self.training else []
        return self.fuse(torch.cat(sides, 1))
