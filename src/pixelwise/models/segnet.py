"""SegNet-style encoder-decoder: max-pooling indices carried to the decoder's max unpooling.

Badrinarayanan, Kendall, Cipolla, "SegNet: A Deep Convolutional Encoder-Decoder Architecture
for Image Segmentation", TPAMI 2017. The decoder upsamples by putting each value back where
its encoder maximum came from (no learned upsampling, no skip concatenation), then densifies
with convolutions. Unpooling to the encoder's pre-pooling size makes any H and W work.
"""

from __future__ import annotations

import torch
from torch import nn

from pixelwise.models.unet import DoubleConv
from pixelwise.ops import layers


class SegNet(nn.Module):
    """Encoder (double conv + max pool with indices) x depth, decoder (max unpool + double conv) x depth.

    Input (N, in_channels, H, W) -> logits (N, num_classes, H, W). ``backend="scratch"`` runs
    pooling and unpooling on :mod:`pixelwise.ops`.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 2, depth: int = 4, base_width: int = 32,
                 backend: str = "torch") -> None:
        super().__init__()
        ops = layers(backend)
        widths = [base_width * 2 ** min(i, 3) for i in range(depth)]
        self.encoders = nn.ModuleList(DoubleConv(c_in, c_out) for c_in, c_out in zip([in_channels, *widths], widths))
        self.pool = ops.MaxPool2d(2, 2, return_indices=True)
        self.unpool = ops.MaxUnpool2d(2, 2)
        outs = [widths[i - 1] if i > 0 else widths[0] for i in reversed(range(depth))]
        self.decoders = nn.ModuleList(DoubleConv(widths[i], outs[j]) for j, i in enumerate(reversed(range(depth))))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        switches = []
        for encoder in self.encoders:
            x = encoder(x)
            size = x.shape[-2:]
            x, indices = self.pool(x)
            switches.append((indices, size))
        for decoder in self.decoders:
            indices, size = switches.pop()
            x = decoder(self.unpool(x, indices, output_size=size))
        return self.head(x)
