"""Every architecture in one place: ``MODELS`` maps a name to a typed builder function.

Semantic models map (N, C, H, W) to logits (N, num_classes, H, W); ``unet_original`` is the
documented exception (smaller output, see its module).
"""

from __future__ import annotations

from torch import nn

from pixelwise.models.encoder_decoder import EncoderDecoder
from pixelwise.models.fcn import FCN
from pixelwise.models.patch import PatchClassifier
from pixelwise.models.u2net import U2Net
from pixelwise.models.unet import UNet
from pixelwise.models.unet_original import UNetOriginal
from pixelwise.models.unet_resnet import UNetResNet


def unet(
    in_channels: int = 3,
    num_classes: int = 2,
    depth: int = 4,
    base_width: int = 32,
    batch_norm: bool = True,
    backend: str = "torch",
) -> nn.Module:
    """U-Net with padded convolutions (logits at input size); the default model."""
    return UNet(in_channels, num_classes, depth, base_width, batch_norm, backend)


def unet_resnet(
    in_channels: int = 3, num_classes: int = 2, backbone: str = "resnet18"
) -> nn.Module:
    """U-Net on a torchvision ResNet-18/34/50 encoder, which ImageNet weights (a local file) can start."""
    return UNetResNet(in_channels, num_classes, backbone)


def unet_original(
    in_channels: int = 1,
    num_classes: int = 2,
    depth: int = 4,
    base_width: int = 64,
    backend: str = "torch",
) -> nn.Module:
    """U-Net as published: valid convolutions, 572x572 in -> 388x388 out at widths 64..1024."""
    return UNetOriginal(in_channels, num_classes, depth, base_width, backend=backend)


def segnet(
    in_channels: int = 3,
    num_classes: int = 2,
    depth: int = 4,
    base_width: int = 32,
    decoder: str = "unpool",
    backend: str = "torch",
) -> nn.Module:
    """SegNet-style encoder-decoder: max unpooling with the encoder's pooling indices.

    ``decoder="transpose"`` swaps unpooling for 3x3 stride-2 transposed convolutions and keeps
    everything else, for a direct comparison of the two upsampling methods.
    """
    return EncoderDecoder(in_channels, num_classes, depth, base_width, "maxpool", decoder, backend)


def deconvnet(
    in_channels: int = 3,
    num_classes: int = 2,
    depth: int = 4,
    base_width: int = 32,
    backend: str = "torch",
) -> nn.Module:
    """Encoder-decoder with strided convolutions down and transposed convolutions up."""
    return EncoderDecoder(
        in_channels, num_classes, depth, base_width, "strided", "transpose", backend
    )


def fcn32s(
    in_channels: int = 3, num_classes: int = 2, base_width: int = 16, backend: str = "torch"
) -> nn.Module:
    """FCN-32s: VGG-style backbone, scores upsampled 32x in one step."""
    return FCN(in_channels, num_classes, "32s", base_width, backend)


def fcn16s(
    in_channels: int = 3, num_classes: int = 2, base_width: int = 16, backend: str = "torch"
) -> nn.Module:
    """FCN-16s: adds stride-16 skip scores before upsampling."""
    return FCN(in_channels, num_classes, "16s", base_width, backend)


def fcn8s(
    in_channels: int = 3, num_classes: int = 2, base_width: int = 16, backend: str = "torch"
) -> nn.Module:
    """FCN-8s: adds stride-16 and stride-8 skip scores before upsampling."""
    return FCN(in_channels, num_classes, "8s", base_width, backend)


def patch(
    in_channels: int = 3, num_classes: int = 2, window: int = 47, width: int = 32, hidden: int = 32
) -> nn.Module:
    """Patch classifier of the centre pixel, run densely as its exact fully-convolutional equivalent."""
    return PatchClassifier(in_channels, num_classes, window, width, hidden)


def u2net(
    in_channels: int = 3, num_classes: int = 2, base_width: int = 16, width: int = 64
) -> nn.Module:
    """U²-Net (small): nested residual U-blocks with deep supervision, for salient objects."""
    return U2Net(in_channels, num_classes, base_width, width)


def mask_rcnn(
    num_classes: int = 1,
    backbone: str = "resnet18",
    min_size: int = 512,
    max_size: int = 853,
    weights: str | None = None,
    box_detections_per_img: int = 100,
) -> nn.Module:
    """Mask R-CNN instance segmentation (torchvision; ResNet-18/50-FPN; num_classes objects + background)."""
    from pixelwise.models.mask_rcnn import mask_rcnn as build

    return build(
        num_classes,
        backbone,
        weights,
        min_size,
        max_size,
        box_detections_per_img=box_detections_per_img,
    )


MODELS = {
    fn.__name__: fn
    for fn in (
        unet,
        unet_resnet,
        unet_original,
        segnet,
        deconvnet,
        fcn32s,
        fcn16s,
        fcn8s,
        patch,
        u2net,
    )
}
INSTANCE_MODELS = {
    "mask_rcnn": mask_rcnn
}  # torchvision's detection contract: list of images in, list of dicts out


def list_models(kind: str = "semantic") -> list[str]:
    """Names accepted by :func:`create_model`: ``semantic`` (image -> logits), ``instance``, or ``all``."""
    names = {"semantic": MODELS, "instance": INSTANCE_MODELS, "all": MODELS | INSTANCE_MODELS}[kind]
    return sorted(names)


def create_model(name: str, **kwargs) -> nn.Module:
    """Build architecture ``name`` with the builder's keyword arguments (see ``MODELS[name]``)."""
    builder = MODELS.get(name) or INSTANCE_MODELS.get(name)
    if builder is None:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(list_models('all'))}")
    return builder(**kwargs)


def describe(name: str) -> str:
    """The first line of the builder's docstring."""
    return ((MODELS | INSTANCE_MODELS)[name].__doc__ or "").strip().splitlines()[0]
