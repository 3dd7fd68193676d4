"""The original U-Net: unpadded ("valid") convolutions, crop-and-concatenate skips.

Ronneberger, Fischer, Brox, MICCAI 2015, Fig. 1: a 572 x 572 input gives a 388 x 388 output
with widths 64 ... 1024 and 23 convolution layers (18 of 3x3, 4 up-convolutions of 2x2 and
the final 1x1); dropout (0.5) ends the contracting path.

The documented exception to pixelwise's "logits at input resolution" contract: every 3x3
convolution loses a one-pixel border, so the output is smaller than the input by
``2 * margin``. The trainer centre-crops targets to the output; prediction mirror-pads the
input by ``margin`` (plus whatever makes the size valid) and crops, which is the paper's
overlap-tile strategy applied to a single tile.
"""

from __future__ import annotations

import torch
from torch import nn

from pixelwise.models.patch import mirror_pad
from pixelwise.ops import layers


def valid_double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3),
        nn.ReLU(inplace=True),
    )


def centre_crop(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    top, left = (x.shape[-2] - hw[0]) // 2, (x.shape[-1] - hw[1]) // 2
    return x[..., top : top + hw[0], left : left + hw[1]]


class UNetOriginal(nn.Module):
    """Valid-convolution U-Net. Input sizes must keep every pooled map even; use
    :meth:`input_size_for` to find one. Output = input - 2 * ``margin`` per axis."""

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        depth: int = 4,
        base_width: int = 64,
        dropout: float = 0.5,
        backend: str = "torch",
    ) -> None:
        super().__init__()
        widths = [base_width * 2**i for i in range(depth + 1)]
        self.depth = depth
        self.down = nn.ModuleList(
            valid_double_conv(c_in, c_out) for c_in, c_out in zip([in_channels, *widths], widths)
        )
        self.pool = nn.MaxPool2d(2)
        self.dropout = nn.Dropout(dropout)
        up = layers(backend).ConvTranspose2d
        self.upconv = nn.ModuleList(
            up(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(depth))
        )
        self.up = nn.ModuleList(
            valid_double_conv(2 * widths[i], widths[i]) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        smallest = next(s for s in range(1, 2 ** (depth + 3) * 4) if self._output_size(s) > 0)
        self.margin = (smallest - self._output_size(smallest)) // 2

    def _output_size(self, size: int) -> int:
        """Output side for an input side, or -1 if some pooled map would be odd or empty."""
        for _ in range(self.depth):
            size -= 4
            if size <= 0 or size % 2:
                return -1
            size //= 2
        size -= 4
        for _ in range(self.depth):
            size = 2 * size - 4
        return size if size > 0 else -1

    def input_size_for(self, output_hw: tuple[int, int]) -> tuple[int, int]:
        """The smallest valid input whose output covers ``output_hw``."""
        out = []
        for target in output_hw:
            size = target + 2 * self.margin
            while self._output_size(size) < target:
                size += 1
            out.append(size)
        return tuple(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self._output_size(s) < 1 for s in x.shape[-2:]):
            nearest = tuple(
                next(v for v in range(s, s + 2 ** (self.depth + 3)) if self._output_size(v) > 0)
                for s in x.shape[-2:]
            )
            raise ValueError(
                f"input size {tuple(x.shape[-2:])} is not valid for the original U-Net "
                f"(the next valid size is {nearest})"
            )
        skips = []
        for level, block in enumerate(self.down):
            x = block(x if level == 0 else self.pool(x))
            skips.append(x)
        x = self.dropout(skips.pop())
        for upconv, block in zip(self.upconv, self.up):
            x = upconv(x)
            x = block(torch.cat([centre_crop(skips.pop(), x.shape[-2:]), x], dim=1))
        return self.head(x)

    def forward_full(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at input resolution: mirror-pad by the margin (and up to a valid size), then crop."""
        h, w = x.shape[-2:]
        in_h, in_w = self.input_size_for((h, w))
        m = self.margin
        return self(mirror_pad(x, m, in_h - h - m, m, in_w - w - m))[..., :h, :w]
