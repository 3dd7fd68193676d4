"""Mask R-CNN (torchvision), wrapped: regions of interest from an FPN backbone, then a small
fully-convolutional head predicting a 28 x 28 binary mask inside each box.

torchvision's contract is kept: ``model(list of (C, H, W) images[, targets])`` returns losses
in training and a list of ``{"boxes", "labels", "scores", "masks" (N, 1, H, W)}`` in eval.
Backbones: ``resnet50`` (the paper's ResNet-50-FPN), ``resnet34`` and ``resnet18`` (CPU-friendly,
about a third of the compute). Nothing is downloaded: ``weights`` is a local checkpoint path
(torchvision's own ``maskrcnn_resnet50_fpn`` state dict, one saved by pixelwise, or a torchvision
ResNet's ImageNet weights for the backbone alone), loaded with
``weights_only=True``; heads whose class count differs are left at their initialisation.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from pixelwise.constants import BACKBONES
from pixelwise.models.unet_resnet import RESNET_PARTS, load_backbone, resnet_state
from pixelwise.models.weights import read_weights


def mask_rcnn(
    num_classes: int,
    backbone: str = "resnet18",
    weights: str | Path | None = None,
    min_size: int = 512,
    max_size: int = 853,
    trainable_layers: int = 5,
    **kwargs,
) -> nn.Module:
    """Mask R-CNN for ``num_classes`` object classes (plus background). ``min_size``/``max_size``
    bound the image size the model works at (torchvision resizes inside): smaller is faster on CPU."""
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    fpn = resnet_fpn_backbone(
        backbone_name=backbone, weights=None, trainable_layers=trainable_layers
    )
    model = MaskRCNN(
        fpn, num_classes=num_classes + 1, min_size=min_size, max_size=max_size, **kwargs
    )
    resnet = resnet_state(weights) if weights is not None else None
    if resnet is not None:  # ImageNet weights for the backbone
        body = model.backbone.body
        load_backbone({name: getattr(body, name) for name in RESNET_PARTS}, resnet, weights)
    elif weights is not None:
        load_weights(model, weights)
    return model


def load_weights(model: nn.Module, path: str | Path) -> list[str]:
    """Load matching tensors from a local state dict (or a pixelwise checkpoint's ``state_dict``);
    returns the names left at their initialisation (shape mismatches, e.g. class heads)."""
    path = Path(path)
    state = read_weights(path)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise ValueError(f"{path}: no tensor matches this Mask R-CNN (wrong backbone?)")
    model.load_state_dict(usable, strict=False)
    return sorted(set(own) - set(usable))
