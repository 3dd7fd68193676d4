"""U-Net with padded ("same") convolutions: logits at input resolution for any H and W.

Ronneberger, Fischer, Brox, "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI 2015 -- with padding so that no overlap-tile bookkeeping is needed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pixelwise.ops import layers


class DoubleConv(nn.Sequential):
    """(3x3 conv -> [BN] -> ReLU) twice: the building block of every U-Net level."""

    def __init__(self, in_ch: int, out_ch: int, batch_norm: bool = True) -> None:
        layers: list[nn.Module] = []
        for c_in in (in_ch, out_ch):
            layers.append(nn.Conv2d(c_in, out_ch, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad H and W at the bottom/right up to a multiple (mirror padding when it fits)."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


class UNet(nn.Module):
    """U-Net: a contracting path of ``depth`` max-pool levels and a symmetric expanding path.

    Widths are ``base_width * 2**level``. Input (N, in_channels, H, W) -> logits
    (N, num_classes, H, W); H and W need not be divisible by ``2**depth`` (padded inside,
    cropped back). ``backend="scratch"`` runs the transposed convolutions on :mod:`pixelwise.ops`.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        depth: int = 4,
        base_width: int = 32,
        batch_norm: bool = True,
        backend: str = "torch",
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        widths = [base_width * 2**i for i in range(depth + 1)]
        self.depth = depth
        self.down = nn.ModuleList([DoubleConv(in_channels, widths[0], batch_norm)])
        self.down.extend(DoubleConv(widths[i], widths[i + 1], batch_norm) for i in range(depth))
        self.upconv = nn.ModuleList(
            layers(backend).ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
            for i in reversed(range(depth))
        )
        self.up = nn.ModuleList(
            DoubleConv(2 * widths[i], widths[i], batch_norm) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, 2**self.depth)
        skips = []
        for level, block in enumerate(self.down):
            x = block(x if level == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for upconv, block in zip(self.upconv, self.up):
            x = block(torch.cat([skips.pop(), upconv(x)], dim=1))
        return self.head(x)[..., :h, :w]
