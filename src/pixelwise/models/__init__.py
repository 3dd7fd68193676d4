"""Every architecture in one place: ``MODELS`` maps a name to a typed builder function."""

from __future__ import annotations

from torch import nn

from pixelwise.models.segnet import SegNet
from pixelwise.models.unet import UNet


def unet(
    in_channels: int = 3, num_classes: int = 2, depth: int = 4, base_width: int = 32, batch_norm: bool = True,
    backend: str = "torch",
) -> nn.Module:
    """U-Net with padded convolutions (logits at input size); the default model."""
    return UNet(in_channels, num_classes, depth, base_width, batch_norm, backend)


def segnet(
    in_channels: int = 3, num_classes: int = 2, depth: int = 4, base_width: int = 32, backend: str = "torch"
) -> nn.Module:
    """SegNet-style encoder-decoder: max unpooling with the encoder's pooling indices."""
    return SegNet(in_channels, num_classes, depth, base_width, backend)


MODELS = {fn.__name__: fn for fn in (unet, segnet)}


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`."""
    return sorted(MODELS)


def create_model(name: str, **kwargs) -> nn.Module:
    """Build architecture ``name`` with the builder's keyword arguments (see ``MODELS[name]``)."""
    try:
        builder = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}") from None
    return builder(**kwargs)


def describe(name: str) -> str:
    """The first line of the builder's docstring."""
    return (MODELS[name].__doc__ or "").strip().splitlines()[0]
