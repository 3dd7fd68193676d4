"""Semantic training: datasets with their classes and normalisation, the seeded network, the
loss and one training step, and validation overlays."""

from __future__ import annotations

import inspect
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from pixelwise.checkpoint import load_model
from pixelwise.config import DEFAULT_CROP, TrainConfig, crop_of
from pixelwise.constants import IGNORE_INDEX, LOSSES, counted
from pixelwise.data.calibration import pixel_size_um
from pixelwise.data.datasets import (
    SegmentationDataset,
    compute_normalization,
    each_image,
    to_tensor,
)
from pixelwise.data.encoding import (
    MaskEncoding,
    Normalization,
    intensity_kind,
    is_lossy,
    unpacked,
)
from pixelwise.data.io import colour_name, is_colour_mask, mask_palette
from pixelwise.data.layouts import (
    DatasetInfo,
    black_and_white,
    holds_instance_labels,
    read_dataset_info,
    resolve_splits,
    split_layout,
    stored_values,
    value_counts,
)
from pixelwise.data.transforms import Augmentation
from pixelwise.data.write import save_png
from pixelwise.inference import check_factor, predict_probs
from pixelwise.losses import PixelCrossEntropy, soft_dice_loss
from pixelwise.models import MODELS, create_model
from pixelwise.models.unet_original import centre_crop
from pixelwise.models.unet_resnet import IMAGENET_MEAN, IMAGENET_STD, load_backbone, resnet_state
from pixelwise.overlays import overlay
from pixelwise.precision import autocast, memory_format
from pixelwise.runtime import is_onnx_file
from pixelwise.segmenter import Segmenter, default_colours

INSTANCE_CLASSES = {
    "foreground": ["background", "foreground"],
    "boundary": ["background", "interior", "boundary"],
}


def make_loss(name: str, class_weights: torch.Tensor | None) -> Callable[..., torch.Tensor]:
    """``loss(logits, target, pixel_weights=None)``. ``weighted-ce`` is the cross-entropy
    weighted by the batch's border weight maps (plain cross-entropy where none are given,
    e.g. for the validation loss); the others ignore ``pixel_weights``."""
    ce = PixelCrossEntropy(class_weights)
    if name in ("ce", "weighted-ce"):
        return ce
    if name == "dice":
        return lambda logits, target, pixel_weights=None: soft_dice_loss(logits, target)
    if name == "ce+dice":
        return lambda logits, target, pixel_weights=None: (
            ce(logits, target) + soft_dice_loss(logits, target)
        )
    raise ValueError(f"unknown loss {name!r}; choose {', '.join(LOSSES)}")


def infer_num_classes(
    cfg: TrainConfig, items, ignore: tuple[int, ...], counts: dict[int, int], values
) -> int:
    """The number of classes: from --classes or the stored ``values`` of the classes, else from
    the ``counts`` of the values every mask holds, which must then be the class ids 0..K-1
    (K >= 2) apart from ignored values."""
    if cfg.class_names or values:
        n = len(cfg.class_names or values)
        if n < 2:
            raise ValueError(f"{cfg.data}: {n} class given; a model needs at least 2")
        return n
    found = set(counts)
    values = sorted(found - set(ignore) - {IGNORE_INDEX})
    if items and is_lossy(items[0].mask) and values != list(range(len(values))):
        raise ValueError(lossy_masks_message(cfg.data, counts, is_colour_mask(items[0].mask)))
    if items and is_colour_mask(items[0].mask):
        raise ValueError(colour_masks_message(cfg.data, counts))
    suggestion = ",".join(map(str, sorted(found)))
    if values != list(range(len(values))):
        raise ValueError(unlisted_values_message(cfg.data, counts, values))
    if len(values) < 2:
        advice = (
            "if they are black-and-white masks with no foreground (or no background) in any "
            "image, give --mask-values 0,255 --classes background,foreground"
            if found <= {0, 255}
            else f"give --mask-values {suggestion} if these values are the classes"
        )
        raise ValueError(
            f"{cfg.data}: the masks hold only {sorted(found)} ({IGNORE_INDEX} is ignored unless "
            f"named), so there is 1 class; a model needs at least 2: {advice}"
        )
    return len(values)


MANY_VALUES = 20  # more stored values than this are more likely object numbers than classes
TO_INSTANCES = (
    "train on the objects with --instances boundary (touching objects kept apart) or --instances "
    "foreground, or with --model mask_rcnn"
)


def unlisted_values_message(data, counts: dict[int, int], classes: list[int]) -> str:
    """The error for masks whose values (``counts``: pixels per stored value) are not the class
    ids 0..K-1: the --mask-values to give (``classes``, the values not ignored; consecutive ones
    as a range), or with more than ``MANY_VALUES`` values, also the options that train on
    objects; for grey masks of 0 and 255 with other levels, also --soft-masks."""
    found = sorted(counts)
    return unlisted_values_advice(data, found, classes) + soft_edges_hint(counts)


def soft_edges_hint(counts: dict[int, int]) -> str:
    """The clause that suggests --soft-masks for grey masks holding 0, 255 and levels between."""
    if len(counts) < 3 or not {0, 255} <= set(counts) or max(counts) > 255:
        return ""
    grey = 1 - (counts[0] + counts[255]) / sum(counts.values())
    return (
        f"; if they are black and white with soft edges (anti-aliased, resized or alpha mattes; "
        f"{100 * grey:.1f} % of the pixels are grey levels between), give --soft-masks instead"
    )


def unlisted_values_advice(data, found: list[int], classes: list[int]) -> str:
    listed = ",".join(map(str, classes))
    consecutive = len(classes) > 2 and classes == list(range(classes[0], classes[-1] + 1))
    if consecutive:
        listed = f"{classes[0]}-{classes[-1]}"
    if len(found) > MANY_VALUES:
        return (
            f"{data}: the masks hold {len(found)} values ({found[0]}..{found[-1]}), not the class "
            f"ids 0..K-1; if they number objects, {TO_INSTANCES}; if they are classes, name each "
            f"class's stored value with --mask-values{f' {listed}' if consecutive else ''} or "
            "give a classes.json"
        )
    return (
        f"{data}: the masks hold values {found}, not the class ids 0..K-1; name the stored value "
        f"of each class with --mask-values {listed} (or leave values out with --ignore-values)"
    )


def instance_labelled(cfg: TrainConfig) -> bool:
    """Whether ``cfg.data``'s masks number objects by their layout (:func:`check_instance_labels`)
    and no option says how to read them."""
    if cfg.instances or cfg.class_names or cfg.mask_values:
        return False
    train, val = resolve_splits(Path(cfg.data), cfg.val_stems, cfg.val_fraction, cfg.seed)
    return bool(train + val) and holds_instance_labels((train + val)[0])


def check_instance_labels(cfg: TrainConfig, items: list) -> None:
    """Instance labels (``instances/``, CTC ``SEG/``) read as classes would make one class per
    object number: say how to train on them instead."""
    if cfg.instances or cfg.class_names or cfg.mask_values or not holds_instance_labels(items[0]):
        return
    raise ValueError(
        f"{cfg.data}: {Path(items[0].mask).parent} holds instance labels (a number per object), "
        f"not classes; {TO_INSTANCES} (or give --mask-values if the numbers are classes)"
    )


def colour_masks_message(data, counts: dict[int, int]) -> str:
    """The error for colour masks without their classes' colours: the --mask-values to give;
    where colours blend at edges (anti-aliased or resized masks: many colours, most of them
    blends of a few, :func:`unblended`), those few with --soft-masks."""
    found = sorted(counts)
    colours = ",".join(colour_name(v) for v in found[:20])
    said = (
        f"{data}: the masks are colour images holding {len(found)} colours ({colours}"
        f"{', ...' if len(found) > 20 else ''}); name the colour of each class in class order "
        f"with --mask-values '{colours}', or give a classes.json with each class's color_rgb"
    )
    main = unblended(counts)
    if len(found) > max(MANY_VALUES, 2 * len(main)):
        shown = ",".join(colour_name(v) for v in main)
        said += (
            f"; if the colours blend at the edges (anti-aliased or resized masks), give "
            f"--soft-masks and --mask-values with every class's colour, such as '{shown}' (those "
            "that are no blend of two others; each pixel then takes the nearest listed colour)"
        )
    return said


def unblended(counts: dict[int, int], near: int = 24) -> list[int]:
    """The colours of colour masks (``counts``: pixels per packed colour) that are not blends of
    two others: from the most frequent down (on at least 0.1 % of the pixels), each kept unless
    within ``near`` levels (every channel) of a kept colour or of the line between two kept
    colours (where anti-aliased or resized edges put their blends); in packed order."""
    total = sum(counts.values())
    kept: list[np.ndarray] = []
    chosen = []
    for value in sorted((v for v, n in counts.items() if n >= 0.001 * total), key=counts.get)[::-1]:
        point = unpacked(np.int64(value)).astype(np.float64)
        lines = [(a, b) for i, a in enumerate(kept) for b in kept[i:]]
        if not any(chebyshev_to_segment(point, a, b) <= near for a, b in lines):
            kept.append(point)
            chosen.append(value)
    return sorted(chosen)


def chebyshev_to_segment(point: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """The largest per-channel difference between ``point`` and the nearest point of the line
    segment from ``a`` to ``b`` (nearest by Euclidean distance)."""
    span = b - a
    t = 0.0 if not span.any() else float(np.clip((point - a) @ span / (span @ span), 0, 1))
    return float(np.abs(point - (a + t * span)).max())


def main_values(counts: dict[int, int], colour: bool) -> list[int]:
    """The stored values that lossy compression scattered the others around: each the most
    frequent within 24 levels (of every channel) and on at least 0.1 % of the pixels
    (``counts``: pixels per value; packed colours if ``colour``)."""
    total = sum(counts.values())  # rarer values can be no one's rival: at most 1000 are left
    values = np.asarray(sorted(v for v, n in counts.items() if n >= 0.001 * total))
    points = unpacked(values) if colour else values[:, None]
    near = np.abs(points[:, None] - points[None]).max(-1) <= 24
    tally = np.asarray([counts[v] for v in values])
    return values[tally >= np.where(near, tally[None], 0).max(1)].tolist()


def lossy_masks_message(data, counts: dict[int, int], colour: bool) -> str:
    """The error for JPEG masks without --mask-values, suggesting the values compression
    scattered the others around (:func:`main_values`)."""
    main = main_values(counts, colour)
    shown = ",".join(colour_name(v) if colour else str(v) for v in main)
    return (
        f"{data}: the masks are JPEG files, whose lossy compression changes values at object "
        f"edges ({len(counts)} {'colours' if colour else 'values'} found); name each class's "
        f"value with --mask-values '{shown}' (each pixel then takes the nearest), or save the "
        "masks as PNG"
    )


def check_crop(cfg: TrainConfig, train: SegmentationDataset) -> None:
    """A training crop larger than every image would only pad (and can exhaust memory); a
    valid-convolution model's crops may reach into the mirrored border (``train.context``)
    added around each image. Without --crop, images all smaller than the default crop are
    trained whole (a box model keeps its crop, the size its boxes are resized to); ``cfg.crop``
    is then set to what training uses."""
    largest = max(max(train.load(i)[0].shape[:2]) for i in range(len(train)))
    largest += 2 * train.context
    if cfg.crop is None:
        cfg.crop = DEFAULT_CROP if largest >= DEFAULT_CROP or cfg.box_crop else 0
        train.crop = cfg.crop
        if not cfg.crop:
            print(
                f"{cfg.data}: every training image is smaller than the default crop of "
                f"{DEFAULT_CROP} pixels (the largest side is {largest}): trained whole, as with "
                "--crop 0",
                file=sys.stderr,
            )
    if cfg.crop > largest and not cfg.box_crop:  # a box is resized to the crop
        raise ValueError(
            f"--crop {cfg.crop} is larger than every training image (the largest side is {largest} "
            f"pixels at --scale {cfg.scale:g}"
            + (f", with the model's mirrored border of {train.context}" if train.context else "")
            + f"); use --crop 0 for whole images or at most {largest}"
        )


def mask_colours(
    mask: Path, values: tuple[int, ...] | None, num_classes: int
) -> list[list[int]] | None:
    """Each class's colour as the masks show it, so that predicted masks look like them: a colour
    mask's colours, or a palette mask's entries (Pascal VOC's) when they tell the classes apart
    (a grey palette does not); else None."""
    stored = list(values) if values else list(range(num_classes))
    if values and is_colour_mask(mask):
        return unpacked(np.asarray(stored)).tolist()
    palette = mask_palette(mask)
    if palette is None or max(stored) >= len(palette):
        return None
    rgb = palette[stored].astype(int)
    apart = np.abs(rgb[:, None] - rgb[None]).max(-1) + 255 * np.eye(len(rgb), dtype=int)
    return rgb.tolist() if apart.min() >= 32 else None


def check_split(root: Path, train_items: list, val_items: list, unvalidated: bool = False) -> None:
    """Training needs an image on each side of the split, or, ``unvalidated`` (``--val-fraction
    0``), only training images; say which side is empty."""
    if unvalidated and train_items:
        return
    if not train_items and not val_items:
        raise ValueError(f"{root}: no labelled images")
    if len(train_items) + len(val_items) == 1:
        raise ValueError(
            f"{root}: one labelled image; training needs at least 2 (one validates), or "
            "--val-fraction 0 to train on it without validation"
        )
    if not val_items:
        raise ValueError(
            f"{root}: no validation images (give --val-stems, --val-fraction > 0 or a val/ folder)"
        )
    if not train_items:
        raise ValueError(
            f"{root}: every labelled image is a validation image ({len(val_items)}); none is left "
            "to train on"
        )


def resolve_classes(
    cfg: TrainConfig, info, items: list, ignore: tuple[int, ...]
) -> tuple[list[str], tuple | None]:
    """The class names and the stored mask value of each class (``None``: values are class
    ids), from the options, ``classes.json`` or the masks themselves (black-and-white masks are
    background and foreground)."""
    named = info.class_names
    renamed = cfg.class_names and named and not (cfg.mask_values or cfg.instances)
    if renamed and len(cfg.class_names) != len(named):
        raise ValueError(
            f"{cfg.data}: --classes names {len(cfg.class_names)} classes, the data "
            f"{len(named)} ({', '.join(named[:5])}{', ...' if len(named) > 5 else ''}); leave "
            "--classes out to train on the data's classes, or give --mask-values too"
        )
    names = cfg.class_names or INSTANCE_CLASSES.get(cfg.instances) or named
    values = stored_values(info, items, cfg.mask_values)
    may_be_binary = not names or len(names) == 2
    counts = value_counts(items) if values is None and not cfg.instances and may_be_binary else {}
    binary = black_and_white(counts, ignore)
    if values is None and cfg.soft_masks:
        values, names = (
            soft_black_and_white(cfg.data, counts),
            names or ["background", "foreground"],
        )
        print(
            f"{cfg.data}: masks with soft edges: background (black) and foreground (white), each "
            "pixel the nearer of the two",
            file=sys.stderr,
        )
    elif binary is not None:
        values, names = binary, names or INSTANCE_CLASSES["foreground"]
        print(
            f"{cfg.data}: black-and-white masks: background (black) and foreground (white) (give "
            "--mask-values or --ignore-values to read them otherwise)",
            file=sys.stderr,
        )
    num_classes = len(names) if names else infer_num_classes(cfg, items, ignore, counts, values)
    if num_classes < 2:
        raise ValueError(f"{cfg.data}: {num_classes} class given; a model needs at least 2")
    return names or [f"class{i}" for i in range(num_classes)], values


def soft_black_and_white(data, counts: dict[int, int]) -> tuple[int, int]:
    """The stored values (0, 255) of grey black-and-white masks with soft edges (--soft-masks
    without --mask-values), from ``counts``, the pixels per stored value of every mask."""
    if {0, 255} <= set(counts) and max(counts) <= 255:
        return 0, 255
    held = f" (these hold {', '.join(map(str, sorted(counts)[:10]))})" if counts else ""
    raise ValueError(
        f"{data}: --soft-masks alone reads grey masks of black (0) and white (255) with soft "
        f"edges{held}; give each class's stored value with --mask-values"
    )


def read_data(cfg: TrainConfig) -> tuple[DatasetInfo, list, list, list[str], MaskEncoding]:
    """What ``cfg.data`` holds as training reads it: the dataset's own class information, the
    training and validation items, the class names and how masks become class ids; stops with
    the reason where training could not start."""
    root = Path(cfg.data)
    info = read_dataset_info(root)
    train_items, val_items = resolve_splits(root, cfg.val_stems, cfg.val_fraction, cfg.seed)
    check_split(root, train_items, val_items, unvalidated(cfg))
    check_instance_labels(cfg, train_items + val_items)
    ignore = info.ignored(cfg.ignore_values)
    names, values = resolve_classes(cfg, info, train_items + val_items, ignore)
    encoding = MaskEncoding(values, ignore, cfg.instances, cfg.soft_masks)
    return info, train_items, val_items, names, encoding


def unvalidated(cfg: TrainConfig) -> bool:
    """Whether the run asked to train on every image, without validation (``--val-fraction 0``
    and no ``--val-stems``; a data's own val/ folder still validates)."""
    return cfg.val_fraction == 0 and not cfg.val_stems


def validation_source(cfg: TrainConfig, where: bool = False) -> str:
    """Where a run's validation images come from: named, the data's own split (``where``: and
    its place), or a seeded fraction of the pool."""
    if cfg.val_stems:
        return "the images named by --val-stems"
    found = split_layout(Path(cfg.data))
    if "val" in found:
        return "the data's own validation split" + (f" ({found['val'][1]})" if where else "")
    if unvalidated(cfg):
        return "none, --val-fraction 0"
    return f"{cfg.val_fraction:.0%} of the images, drawn with seed {cfg.seed}"


def build_datasets(
    cfg: TrainConfig,
) -> tuple[SegmentationDataset, SegmentationDataset, list[str], list[list[int]]]:
    """Train/val datasets from ``cfg.data``; class names, colours and normalisation resolved."""
    info, train_items, val_items, names, encoding = read_data(cfg)
    num_classes = len(names)
    colours = (
        info.colours
        if info.colours and len(info.colours) == num_classes
        else mask_colours((val_items or train_items)[0].mask, encoding.values, num_classes)
        or default_colours(num_classes)
    )
    train = SegmentationDataset(
        train_items,
        num_classes,
        encoding,
        norm=None,
        crop=crop_of(cfg),
        augment=cfg.augment,
        flips=cfg.flips,
        seed=cfg.seed,
        elastic=cfg.elastic,
        scale=cfg.scale,
        weight_map=(cfg.w0, cfg.sigma) if cfg.loss == "weighted-ce" else None,
        augmentation=augmentation_of(cfg),
        channel=cfg.channel,
        item_scales=to_pixel_size(train_items, cfg.at_pixel_size),
    )
    channels = max(image.shape[-1] for image in each_image(train, "training pair"))
    train.set_channels(channels)
    kinds = Counter()  # how the images store intensity (intensity_kind), train and val

    def noted(images):
        for image in images:
            kinds[intensity_kind(image)] += 1
            yield image

    train.norm = compute_normalization(
        noted(train.load(i)[0] for i in range(len(train))), cfg.normalize_percentiles
    )
    val = SegmentationDataset(
        val_items,
        num_classes,
        encoding,
        train.norm,
        channels=channels,
        scale=cfg.scale,
        channel=cfg.channel,
        item_scales=to_pixel_size(val_items, cfg.at_pixel_size),
        **box_validation(cfg),
    )
    for image in each_image(val, "validation pair"):  # bad files stop the run now, all named
        kinds[intensity_kind(image)] += 1
    train.kinds = dict(kinds)
    return train, val, names, colours


def to_pixel_size(items: list, size: float | None) -> list[float] | None:
    """What each item's image is resized by to be ``size`` µm a pixel (``train
    --at-pixel-size``): the pixel size its file records over ``size``; None without ``size``.
    ValueError naming the files that record none, or a factor out of range."""
    if size is None:
        return None
    recorded = [pixel_size_um(item.image) for item in items]
    unsized = [item.image for item, known in zip(items, recorded) if known is None]
    if unsized:
        raise ValueError(
            f"--at-pixel-size {size:g}: no pixel size recorded for "
            f"{counted(len(unsized), 'image')}, such as {unsized[0]} (train without it, or "
            "give them files that record one)"
        )
    what = f"--at-pixel-size {size:g}: the factor of an image"
    return [check_factor(known / size, what) for known in recorded]


BOX_MARGIN = 0.05  # a user's box: the object's bounding box grown by 5 % per side


def box_validation(cfg: TrainConfig) -> dict:
    """A box model is validated on its task: each image cropped to its foreground's bounding box
    grown by ``BOX_MARGIN``, at the training crop size."""
    if not cfg.box_crop:
        return {}
    return {"crop": crop_of(cfg), "augmentation": Augmentation(box=(BOX_MARGIN, BOX_MARGIN))}


def lo_hi(values: list[float] | None, what: str) -> tuple[float, float] | None:
    """An option's ``LO,HI`` pair as a tuple (``None`` when not given)."""
    if not values:
        return None
    if len(values) != 2:
        raise ValueError(f"{what} LO,HI, got {list(values)}")
    return tuple(values)


def augmentation_of(cfg: TrainConfig) -> Augmentation:
    zoom = lo_hi(cfg.zoom, "zoom takes two area fractions")
    box = lo_hi(cfg.box_crop, "box-crop takes two growth fractions")
    return Augmentation(zoom, cfg.rotate, cfg.appearance, cfg.composite, box)


def class_pixel_counts(ds: SegmentationDataset) -> torch.Tensor:
    counts = torch.zeros(ds.num_classes, dtype=torch.int64)
    for i in range(len(ds)):
        t = torch.from_numpy(ds.load(i)[1]).reshape(-1)
        counts += torch.bincount(t[t != IGNORE_INDEX], minlength=ds.num_classes)
    return counts


def write_overlays(
    seg: Segmenter, ds: SegmentationDataset, out_dir: Path, count: int, precision: str
) -> None:
    """image | ground truth | prediction strips for the first ``count`` images of ``ds``, at
    the dataset's (possibly reduced) resolution."""
    palette = seg.palette()
    for i in range(min(count, len(ds))):
        image, target = ds.load(i)
        pred = (
            predict_probs(seg.network, to_tensor(image, seg.norm)[None], precision)
            .argmax(1)[0]
            .numpy()
        )
        panels = [
            overlay(image, np.zeros_like(pred), palette),
            overlay(image, np.where(target == IGNORE_INDEX, 0, target), palette),
            overlay(image, pred, palette),
        ]
        save_png(
            out_dir / f"{ds.items[i].name}.png",
            Image.fromarray(np.concatenate([np.asarray(p) for p in panels], 1)),
        )


def build_model(
    cfg: TrainConfig,
    in_channels: int,
    num_classes: int,
    device: torch.device,
    precision: str,
    start: Segmenter | None = None,
    backbone: dict | None = None,
) -> tuple[nn.Module, dict]:
    """The seeded model (``start``'s network, when fine-tuning; its encoder from ``backbone``,
    the ResNet weights read from ``--weights``, when given) and the keyword arguments that
    rebuild it (those its builder accepts)."""
    if start is not None:
        model, arch_kwargs = start.network, start.arch_kwargs
        if start.num_classes != num_classes:
            model, arch_kwargs = new_head(cfg, start, num_classes)
        model = model.train().requires_grad_(True)
        return model.to(device).to(memory_format=memory_format(precision)), arch_kwargs
    arch_kwargs = {"in_channels": in_channels, "num_classes": num_classes}
    options = {
        "depth": cfg.depth,
        "base_width": cfg.base_width,
        "batch_norm": cfg.batch_norm,
        "backend": cfg.backend,
        "decoder": cfg.decoder,
        "backbone": cfg.backbone,
    }
    accepted = inspect.signature(MODELS[cfg.model]).parameters if cfg.model in MODELS else {}
    arch_kwargs |= {k: v for k, v in options.items() if k in accepted}
    check_model_size(cfg.model, arch_kwargs)
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, **arch_kwargs)
    if backbone is not None:
        count = load_backbone(model.encoder(), backbone, cfg.weights)
        print(f"encoder: {count} tensors from {cfg.weights}", file=sys.stderr)
    return model.to(device).to(memory_format=memory_format(precision)), arch_kwargs


BACKBONE_MODELS = ("unet_resnet",)  # semantic models whose encoder a ResNet's weights can start


def backbone_weights(cfg: TrainConfig) -> dict | None:
    """The ResNet weights ``--weights`` names (e.g. torchvision's ImageNet
    ``resnet34-b627a593.pth``), read once, for a model with a ResNet encoder; None when it
    names a checkpoint to fine-tune; such a file for another model is refused."""
    if not cfg.weights or not Path(cfg.weights).is_file():
        return None
    state = resnet_state(cfg.weights)
    if state is None:
        return None
    if cfg.model not in BACKBONE_MODELS:
        raise ValueError(
            f"{cfg.weights}: a ResNet's weights; they start the encoder of "
            f"{' or '.join(BACKBONE_MODELS)} (--model), not of {cfg.model}"
        )
    return state


def pretrained_normalization(channels: int, scale: float, percentiles=None) -> Normalization:
    """The inputs ImageNet weights expect: RGB in [0, 1] (by bit depth, or by ``percentiles``)
    less ImageNet's mean, over its std; grey as the mean of the three (conv1 then sums its RGB
    kernels)."""
    if channels == 3:
        return Normalization(list(IMAGENET_MEAN), list(IMAGENET_STD), scale, percentiles)
    mean, std = float(np.mean(IMAGENET_MEAN)), float(np.mean(IMAGENET_STD))
    return Normalization([mean] * channels, [std] * channels, scale, percentiles)


def new_head(cfg: TrainConfig, start: Segmenter, num_classes: int) -> tuple[nn.Module, dict]:
    """``start``'s architecture for ``num_classes`` classes, holding its weights but for the
    tensors whose shape follows the class count (the class scores), which start afresh."""
    arch_kwargs = start.arch_kwargs | {"num_classes": num_classes}
    torch.manual_seed(cfg.seed)
    model = create_model(start.arch, **arch_kwargs)
    own = model.state_dict()
    kept = {
        k: v for k, v in start.network.state_dict().items() if k in own and own[k].shape == v.shape
    }
    model.load_state_dict(kept, strict=False)
    fresh = sorted({k.rsplit(".", 1)[0] for k in own if k not in kept})
    print(
        f"note: {cfg.weights} has {start.num_classes} classes, the data {num_classes}: "
        f"{', '.join(fresh)} start afresh, the other layers from its weights",
        file=sys.stderr,
    )
    return model, arch_kwargs


def starting_point(cfg: TrainConfig, in_channels: int, num_classes: int) -> Segmenter | None:
    """The trained model ``--weights`` names (a checkpoint or a bundled model's name), checked
    against the data: fine-tuning keeps its architecture and input normalisation (and, for
    another number of classes, all but its class scores: :func:`new_head`)."""
    if not cfg.weights:
        return None
    if is_onnx_file(cfg.weights):
        raise ValueError(f"{cfg.weights}: cannot fine-tune an ONNX file; give its .pt checkpoint")
    start = load_model(cfg.weights)
    problem = None
    if start.kind != "semantic":
        problem = f"a {start.arch} checkpoint cannot start a semantic model"
    elif start.in_channels != in_channels:
        problem = f"it takes {start.in_channels}-channel images, the data has {in_channels}"
    if problem:
        raise ValueError(f"{cfg.weights}: cannot fine-tune from it: {problem}")
    if start.input_scale != cfg.scale:
        print(
            f"note: {cfg.weights} learnt at --scale {start.input_scale:g}; this run trains at "
            f"{cfg.scale:g}",
            file=sys.stderr,
        )
    return start


MAX_PARAMETERS = 250_000_000  # 1 GB of fp32 weights, 4 GB with gradients and Adam's moments


def check_model_size(name: str, arch_kwargs: dict) -> None:
    """Build the network without memory (meta device) and refuse one too large to train."""
    with torch.device("meta"):
        count = sum(p.numel() for p in create_model(name, **arch_kwargs).parameters())
    if count > MAX_PARAMETERS:
        shown = ", ".join(
            f"{k}={v}" for k, v in arch_kwargs.items() if k in ("depth", "base_width", "width")
        )
        raise ValueError(
            f"{name} with {shown} has {count / 1e6:,.0f} M parameters ({count * 16 / 1e9:,.0f} GB to train "
            f"with Adam); at most {MAX_PARAMETERS / 1e6:,.0f} M: lower --depth or --base-width"
        )


def valid_batch(net: nn.Module, images, targets, weights=None):
    """A batch for a valid-convolution network (the original U-Net), whose input sizes are
    restricted: padded at the bottom and right to the smallest size it takes whose output
    covers the targets' pixels within the mirrored border (images with zeros, targets with the
    ignore index, weights with 0), so that whole images of any size train (``--crop 0``)."""
    height, width = images.shape[-2:]
    size = net.input_size_for((height - 2 * net.margin, width - 2 * net.margin))
    bottom, right = size[0] - height, size[1] - width
    if bottom == right == 0:
        return images, targets, weights
    pad = (0, right, 0, bottom)
    images = F.pad(images, pad)
    targets = F.pad(targets, pad, value=IGNORE_INDEX)
    return images, targets, None if weights is None else F.pad(weights, pad)


def semantic_step(
    model: nn.Module, batch, loss_fn: Callable, device: torch.device, precision: str
) -> tuple[float, int]:
    """Forward and backward of one batch; returns the summed loss and the number of images.
    Valid-convolution models are scored on the centre their output covers; a model with side
    outputs (U²-Net's deep supervision) adds the mean of their losses."""
    images, targets, *pixel_weights = batch  # a third element: per-pixel loss weights
    weights = pixel_weights[0] if pixel_weights else None
    net = getattr(model, "module", model)
    if hasattr(net, "input_size_for"):  # valid convolutions: a size they take
        images, targets, weights = valid_batch(net, images, targets, weights)
    images = images.to(device).contiguous(memory_format=memory_format(precision))
    targets = targets.to(device)
    weights = weights.to(device) if weights is not None else None
    with autocast(precision, device):
        logits = model(images)
    if logits.shape[-2:] != targets.shape[-2:]:  # valid-convolution models predict the centre
        targets = centre_crop(targets, logits.shape[-2:])
        weights = centre_crop(weights, logits.shape[-2:]) if weights is not None else None
    loss = loss_fn(logits.float(), targets, weights)
    sides = getattr(getattr(model, "module", model), "side_logits", None)
    if sides:  # deep supervision (U²-Net): every side output learns the targets too
        loss = loss + sum(loss_fn(side.float(), targets, weights) for side in sides) / len(sides)
    loss.backward()
    return loss.item() * len(images), len(images)
