"""FCN-32s / 16s / 8s: a VGG-style classifier made fully convolutional, with skip fusion.

Long, Shelhamer, Darrell, "Fully Convolutional Networks for Semantic Segmentation", CVPR 2015.
A five-stage VGG-like backbone (stride 32) ends in "fc6/fc7" as convolutions and a 1x1
classifier. FCN-32s upsamples its scores 32x at once; FCN-16s first adds 1x1 scores of the
stride-16 features to a 2x-upsampled coarse score; FCN-8s adds the stride-8 scores too.
Upsampling is transposed convolution initialised to bilinear interpolation and learned.

Deviation from the paper, for CPU budgets: widths are ``base_width * (1, 2, 4, 8, 8)`` (the
paper's VGG16 has base 64) and fc6 is a 3x3 convolution instead of 7x7.
"""

from __future__ import annotations

import torch
from torch import nn

from pixelwise.models.unet import pad_to_multiple
from pixelwise.ops import layers

CONVS_PER_STAGE = (2, 2, 3, 3, 3)  # VGG16


def bilinear_kernel(channels: int, size: int) -> torch.Tensor:
    """(channels, channels, size, size) weights that make a transposed convolution bilinear upsampling."""
    factor = (size + 1) // 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5
    og = torch.arange(size, dtype=torch.float32)
    filt = 1 - (og - centre).abs() / factor
    kernel = torch.zeros(channels, channels, size, size)
    kernel[range(channels), range(channels)] = filt[:, None] * filt[None, :]
    return kernel


def vgg_stage(c_in: int, c_out: int, convs: int) -> nn.Sequential:
    layers_: list[nn.Module] = []
    for i in range(convs):
        layers_ += [
            nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers_, nn.MaxPool2d(2))


class FCN(nn.Module):
    """``variant`` in {"32s", "16s", "8s"}: which skip connections are fused before the final upsampling.

    Input (N, C, H, W) -> logits (N, K, H, W) for any H, W (padded to a multiple of 32 inside).
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        variant: str = "8s",
        base_width: int = 16,
        backend: str = "torch",
    ) -> None:
        super().__init__()
        if variant not in ("32s", "16s", "8s"):
            raise ValueError(f"variant must be 32s, 16s or 8s, got {variant!r}")
        up = layers(backend).ConvTranspose2d
        self.variant = variant
        widths = [base_width * m for m in (1, 2, 4, 8, 8)]
        self.stages = nn.ModuleList(
            vgg_stage(c_in, c_out, n)
            for c_in, c_out, n in zip([in_channels, *widths], widths, CONVS_PER_STAGE)
        )
        fc = widths[-1] * 2
        self.fc = nn.Sequential(
            nn.Conv2d(widths[-1], fc, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Dropout2d(0.5),
            nn.Conv2d(fc, fc, 1),
            nn.ReLU(inplace=True),
            nn.Dropout2d(0.5),
        )
        self.score = nn.Conv2d(fc, num_classes, 1)
        ups, skips = [], []
        if variant in ("16s", "8s"):
            self.score_pool4 = nn.Conv2d(widths[3], num_classes, 1)
            self.up2a = up(num_classes, num_classes, 4, stride=2, padding=1, bias=False)
            ups, skips = [self.up2a], [self.score_pool4]
        if variant == "8s":
            self.score_pool3 = nn.Conv2d(widths[2], num_classes, 1)
            self.up2b = up(num_classes, num_classes, 4, stride=2, padding=1, bias=False)
            ups, skips = ups + [self.up2b], skips + [self.score_pool3]
        final = {"32s": 32, "16s": 16, "8s": 8}[variant]
        self.up_final = up(
            num_classes, num_classes, 2 * final, stride=final, padding=final // 2, bias=False
        )
        for m in (*ups, self.up_final):
            m.weight.data.copy_(bilinear_kernel(num_classes, m.kernel_size[0]))
        for m in skips:  # skips start as no-ops, as in the paper
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, 32)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        score = self.score(self.fc(x))  # stride 32
        if self.variant in ("16s", "8s"):
            score = self.up2a(score) + self.score_pool4(features[3])  # stride 16
        if self.variant == "8s":
            score = self.up2b(score) + self.score_pool3(features[2])  # stride 8
        return self.up_final(score)[..., :h, :w]
