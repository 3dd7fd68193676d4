"""A trained model as the verbs use it: the network plus classes, colours and input normalisation.

Every verb (``predict``, ``segment``, ``evaluate``, ``train``) dispatches on :attr:`Segmenter.kind`:
``"semantic"`` networks map (N, C, H, W) to logits (N, K, H, W); ``"instance"`` networks follow
torchvision's detection contract (a list of images in, a list of dicts out).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from torch import nn

from pixelwise.constants import first_ten
from pixelwise.data.encoding import BLACK_AND_WHITE, MaskEncoding, Normalization
from pixelwise.models import INSTANCE_MODELS

FORMAT = "pixelwise"


def default_colours(num_classes: int) -> list[list[int]]:
    """Distinct display colours: black for class 0, then a fixed qualitative cycle."""
    base = [
        (0, 0, 0),
        (230, 25, 75),
        (60, 180, 75),
        (255, 225, 25),
        (0, 130, 200),
        (245, 130, 48),
        (145, 30, 180),
        (70, 240, 240),
        (240, 50, 230),
        (210, 245, 60),
        (250, 190, 212),
        (0, 128, 128),
    ]
    return [list(base[i % len(base)]) for i in range(num_classes)]


def kind_of(arch: str) -> str:
    """``"instance"`` for detection architectures (Mask R-CNN), ``"semantic"`` for the rest."""
    return "instance" if arch in INSTANCE_MODELS else "semantic"


@dataclass
class Segmenter:
    """A network plus what it needs to be used: classes, colours, input normalisation."""

    network: nn.Module
    arch: str
    arch_kwargs: dict
    class_names: list[str]
    norm: Normalization
    colours: list[list[int]] = field(default_factory=list)
    encoding: MaskEncoding = field(default_factory=MaskEncoding)
    input_scale: float = 1.0  # images are resized by this factor before the network sees them
    # a box model (``train --box-crop``) sees a user's box around one object, cropped and resized
    # to box_input x box_input; 0 for a model of whole images
    box_input: int = 0
    # a boundary model's (seed, object) thresholds (pixelwise.instances.boundary_codes), chosen on
    # its validation images at the end of training; None: instances.SEED_PROB and OBJECT_PROB
    thresholds: tuple[float, float] | None = None
    # the channel of multi-channel images the model was trained on (``train --channel``), read
    # alone by default; None: images as they are
    channel: int | None = None
    # µm a pixel of the images as the network learned them: as their files recorded it (all
    # within 10 %: pixelwise.data.calibration.common_pixel_size), or train --at-pixel-size's;
    # None: unknown
    pixel_size: float | None = None

    def __repr__(self) -> str:
        """One line, not the network's layers: what a notebook shows for ``load_model(...)``."""
        count = sum(p.numel() for p in self.network.parameters())  # none on ONNX Runtime
        parts = [self.arch, self.kind]
        parts += [f"{count / 1e6:.2f} M parameters"] if count else ["ONNX Runtime"]
        parts += [f"box model ({self.box_input} x {self.box_input})"] if self.box_input else []
        parts += [f"input scale {self.input_scale:g}"] if self.input_scale != 1 else []
        shape = ", ".join(f"{k} {v}" for k, v in self.arch_kwargs.items() if k != "num_classes")
        classes = first_ten(list(self.class_names), "classes")
        return f"Segmenter({', '.join(parts)}; {shape}; classes {classes})"

    @property
    def reads(self) -> int | None:
        """The channel the model reads of a multi-channel image, marked as its own
        (:class:`~pixelwise.data.io.ModelChannel`); None when it takes images as they are."""
        from pixelwise.data.io import ModelChannel

        return None if self.channel is None else ModelChannel(self.channel)

    @property
    def kind(self) -> str:
        return kind_of(self.arch)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        return int(self.arch_kwargs.get("in_channels", 3))

    def palette(self) -> np.ndarray:
        """(256, 3) uint8 colour table indexed by class id (255 = ignore shown white)."""
        table = np.zeros((256, 3), dtype=np.uint8)
        colours = self.colours or default_colours(self.num_classes)
        table[: len(colours)] = np.asarray(colours, dtype=np.uint8)
        table[255] = 255
        return table

    def mask_palette(self) -> np.ndarray:
        """:meth:`palette` for the mask files `predict` writes: of a model trained on
        black-and-white masks, class 1 white, so that a mask reads as the training masks did in
        a viewer or as greyscale (0/255; its stored values stay the class ids 0/1)."""
        table = self.palette()
        if self.encoding.values in BLACK_AND_WHITE:
            table[1] = 255
        return table

    def metadata(self) -> dict:
        """Everything but the weights: what a checkpoint or an ONNX file carries to rebuild it."""
        return {
            "format": FORMAT,
            "version": 1,
            "kind": self.kind,
            "arch": self.arch,
            "arch_kwargs": dict(self.arch_kwargs),
            "class_names": list(self.class_names),
            "colours": [list(map(int, c)) for c in self.colours],
            "normalization": self.norm.to_dict(),
            "mask_encoding": self.encoding.to_dict(),
            "input_scale": self.input_scale,
            "box_input": self.box_input,
            "instance_thresholds": None if self.thresholds is None else list(self.thresholds),
            "input_channel": self.channel,
            "pixel_size_um": self.pixel_size,
        }

    @classmethod
    def from_metadata(cls, meta: dict, network: nn.Module) -> Segmenter:
        return cls(
            network=network,
            arch=meta["arch"],
            arch_kwargs=meta["arch_kwargs"],
            class_names=meta["class_names"],
            norm=Normalization(**meta["normalization"]),
            colours=meta.get("colours") or default_colours(len(meta["class_names"])),
            encoding=MaskEncoding.from_dict(meta.get("mask_encoding", {})),
            input_scale=float(meta.get("input_scale", 1.0)),
            box_input=int(meta.get("box_input", 0)),
            thresholds=thresholds_of(meta.get("instance_thresholds")),
            channel=meta.get("input_channel"),
            pixel_size=meta.get("pixel_size_um"),
        )


def thresholds_of(stored) -> tuple[float, float] | None:
    """A checkpoint's ``instance_thresholds`` as a (seed, object) pair; None when it has none."""
    return None if stored is None else (float(stored[0]), float(stored[1]))
