"""Encoder-decoders without skip concatenation: SegNet-style and DeconvNet-style.

Both share one structure and differ only in how they change resolution, so the two
upsampling ideas can be compared directly:

- ``segnet``: max pooling down; max *unpooling* up with the encoder's pooling indices
  (Badrinarayanan et al., TPAMI 2017). No learned upsampling.
- ``deconvnet``: 3x3 stride-2 convolution down; 3x3 stride-2 *transposed* convolution up
  (learned upsampling, in the spirit of Noh et al., ICCV 2015).

Each level is a double 3x3 convolution (BN + ReLU); the decoder upsamples to the exact size
the encoder had. Inputs are padded to a multiple of ``2**depth`` inside (and the logits
cropped back), because a floor-mode pooling of an odd size cannot be undone by a stride-2
transposed convolution.
"""

from __future__ import annotations

import torch
from torch import nn

from pixelwise.models.unet import DoubleConv, pad_to_multiple
from pixelwise.ops import layers


def unpool_double(x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """2x2 max unpooling as one scatter (what ONNX export traces; ``nn.MaxUnpool2d`` checks
    its sizes in Python, which a dynamic-size graph cannot)."""
    n, c, h, w = x.shape
    out = torch.zeros(n, c, 4 * h * w, dtype=x.dtype, device=x.device)
    return out.scatter(2, indices.flatten(2), x.flatten(2)).view(n, c, 2 * h, 2 * w)


class EncoderDecoder(nn.Module):
    """``depth`` encoder levels (double conv, then downsample) mirrored by ``depth`` decoder
    levels (upsample, then double conv) and a 1x1 classifier.

    ``down``: ``"maxpool"`` or ``"strided"``; ``up``: ``"unpool"`` (needs ``down="maxpool"``)
    or ``"transpose"``. ``backend="scratch"`` runs pooling, unpooling and transposed
    convolutions on :mod:`pixelwise.ops`. Input (N, C, H, W) -> logits (N, K, H, W).
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        depth: int = 4,
        base_width: int = 32,
        down: str = "maxpool",
        up: str = "unpool",
        backend: str = "torch",
    ) -> None:
        super().__init__()
        if down not in ("maxpool", "strided") or up not in ("unpool", "transpose"):
            raise ValueError(
                f"down must be maxpool or strided and up unpool or transpose, got {down!r}, {up!r}"
            )
        if up == "unpool" and down != "maxpool":
            raise ValueError("max unpooling needs the indices of max pooling (down='maxpool')")
        ops = layers(backend)
        self.down_mode, self.up_mode = down, up
        widths = [base_width * 2 ** min(i, 3) for i in range(depth)]
        self.encoders = nn.ModuleList(
            DoubleConv(c_in, c_out) for c_in, c_out in zip([in_channels, *widths], widths)
        )
        outs = [widths[max(i - 1, 0)] for i in reversed(range(depth))]
        self.decoders = nn.ModuleList(
            DoubleConv(widths[i], outs[j]) for j, i in enumerate(reversed(range(depth)))
        )
        if down == "maxpool":
            self.pool = ops.MaxPool2d(2, 2, return_indices=True)
        else:
            self.downs = nn.ModuleList(nn.Conv2d(w, w, 3, stride=2, padding=1) for w in widths)
        if up == "unpool":
            self.unpool = ops.MaxUnpool2d(2, 2)
        else:
            self.ups = nn.ModuleList(
                ops.ConvTranspose2d(widths[i], widths[i], 3, stride=2, padding=1)
                for i in reversed(range(depth))
            )
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, 2 ** len(self.encoders))
        memory = []  # (pre-downsampling size, pooling indices or None) per level
        for level, encoder in enumerate(self.encoders):
            x = encoder(x)
            size = x.shape[-2:]
            if self.down_mode == "maxpool":
                x, indices = self.pool(x)
            else:
                x, indices = self.downs[level](x), None
            memory.append((size, indices))
        for level, decoder in enumerate(self.decoders):
            size, indices = memory.pop()
            if self.up_mode == "unpool" and torch.onnx.is_in_onnx_export():
                x = unpool_double(x, indices)
            elif (
                self.up_mode == "unpool"
            ):  # sizes are even after padding: unpooling doubles exactly
                x = self.unpool(x, indices)
            else:
                x = self.ups[level](x, output_size=size)
            x = decoder(x)
        return self.head(x)[..., :h, :w]
