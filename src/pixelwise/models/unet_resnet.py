"""U-Net whose encoder is a torchvision ResNet, so that ImageNet weights can start it.

The encoder is torchvision's ResNet-18/34/50 up to ``layer4`` (strides 2, 4, 8, 16, 32); the
decoder upsamples by 2 five times, each time concatenating the encoder's feature map of that
stride and applying two 3x3 conv -> BN -> ReLU, as U-Net does. Pretrained weights are never
downloaded: :func:`load_backbone` reads a local file of torchvision's ResNet state dict (e.g.
``resnet34-b627a593.pth``, as ``torchvision.models.resnet34(weights=...)`` saves it) into
the encoder; grey images get the sum of conv1's RGB kernels, as if the grey level were fed to
all three channels.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pixelwise.constants import BACKBONES
from pixelwise.models.unet import DoubleConv, pad_to_multiple
from pixelwise.models.weights import read_weights

DECODER_WIDTHS = (256, 128, 64, 32, 16)
RESNET_PARTS = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")  # torchvision's names
# The inputs torchvision's ImageNet weights were trained on: RGB in [0, 1], then these.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resnet(name: str) -> nn.Module:
    """torchvision's ResNet ``name`` at its own initialisation (no weights)."""
    from torchvision.models import resnet as tv

    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    return getattr(tv, name)(weights=None)


class UNetResNet(nn.Module):
    """Input (N, in_channels, H, W) -> logits (N, num_classes, H, W) for any H, W (padded to a
    multiple of 32 inside, cropped back)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 2, backbone: str = "resnet18"):
        super().__init__()
        net = resnet(backbone)
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu)
        self.pool = net.maxpool
        self.stages = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])
        skips = [64] + [stage[-1].conv1.in_channels for stage in self.stages[:-1]]  # stride 2..16
        width = self.stages[-1][-1].conv1.in_channels  # layer4's output channels
        blocks = []
        for skip, out in zip([*reversed(skips), 0], DECODER_WIDTHS):
            blocks.append(DoubleConv(width + skip, out))
            width = out
        self.decoder = nn.ModuleList(blocks)
        self.head = nn.Conv2d(width, num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, 32)
        features = [self.stem(x)]  # stride 2
        y = self.pool(features[0])
        for stage in self.stages:
            y = stage(y)
            features.append(y)  # strides 4, 8, 16, 32
        skips = features[-2::-1]  # strides 16, 8, 4, 2
        for i, block in enumerate(self.decoder):
            y = F.interpolate(y, scale_factor=2.0, mode="nearest")
            if i < len(skips):
                y = torch.cat([y, skips[i]], dim=1)
            y = block(y)
        return self.head(y)[..., :h, :w]

    def encoder(self) -> dict[str, nn.Module]:
        """The encoder's parts under torchvision's ResNet names."""
        return dict(zip(RESNET_PARTS, [self.stem[0], self.stem[1], *self.stages]))


def read_resnet_state(path: str | Path) -> dict[str, torch.Tensor]:
    """A ResNet's state dict from a local file (torchvision's, or nested under ``state_dict`` /
    ``model``, with a ``module.`` prefix from DataParallel), without its classifier (``fc``)."""
    state = read_weights(path)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or "conv1.weight" not in {
        k.removeprefix("module.") for k in state
    }:
        raise ValueError(f"{path}: not a ResNet's state dict (no conv1.weight)")
    return {
        k.removeprefix("module."): v
        for k, v in state.items()
        if torch.is_tensor(v) and not k.removeprefix("module.").startswith("fc.")
    }


def resnet_state(path: str | Path) -> dict[str, torch.Tensor] | None:
    """:func:`read_resnet_state` of ``path`` when it holds a ResNet's weights; None for anything
    else (a pixelwise checkpoint, a file that is no PyTorch file)."""
    try:
        return read_resnet_state(path)
    except ValueError:
        return None


def load_backbone(
    encoder: dict[str, nn.Module], weights: str | Path | dict, path: str | Path | None = None
) -> int:
    """Copy a ResNet's weights (a file, or its :func:`read_resnet_state` already read from
    ``path``) into ``encoder`` (torchvision names -> modules); every tensor of the encoder must
    be in the file with its shape, else a one-line error. A conv1 for other than 3 input
    channels gets the RGB kernels' sum (grey) or their mean, repeated. Returns the number of
    tensors loaded."""
    if isinstance(weights, dict):
        state = dict(weights)  # conv1 may be replaced below: the caller's dict stays as it was
    else:
        path, state = weights, read_resnet_state(weights)
    own = {f"{name}.{k}": v for name, part in encoder.items() for k, v in part.state_dict().items()}
    rgb = state.get("conv1.weight")
    if rgb is not None and rgb.shape[1] == 3 and own["conv1.weight"].shape[1] != 3:
        channels = own["conv1.weight"].shape[1]
        state["conv1.weight"] = (
            rgb.sum(1, keepdim=True)
            if channels == 1
            else rgb.mean(1, keepdim=True).repeat(1, channels, 1, 1)
        )
    missing = [k for k in own if k not in state]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or wrong:
        shown = ", ".join((missing + wrong)[:3])
        blocks = tuple(
            len({k.split(".")[1] for k in state if k.startswith(f"layer{i}.")}) for i in range(1, 5)
        )
        held = resnet_name(blocks, "layer1.0.conv3.weight" in state)
        raise ValueError(
            f"{path}: does not fit a {resnet_name(*encoder_blocks(encoder))} encoder "
            f"({len(missing)} tensors missing, {len(wrong)} of another shape: {shown}, ...); "
            + (f"the file holds a {held}: give --backbone {held}" if held in BACKBONES else "")
        )
    for name, part in encoder.items():
        prefix = f"{name}."
        part.load_state_dict({k[len(prefix) :]: state[k] for k in own if k.startswith(prefix)})
    return len(own)


def encoder_blocks(encoder: dict[str, nn.Module]) -> tuple[tuple[int, ...], bool]:
    """Blocks per stage, and whether they are bottlenecks."""
    blocks = tuple(len(encoder[f"layer{i}"]) for i in range(1, 5))
    return blocks, hasattr(encoder["layer1"][0], "conv3")


def resnet_name(blocks: tuple[int, ...], bottleneck: bool) -> str:
    """ResNet-18/34/50 by its stages' block counts."""
    names = {(2, 2, 2, 2): "resnet18", (3, 4, 6, 3): "resnet50" if bottleneck else "resnet34"}
    return names.get(blocks, "ResNet of other depth")
