"""The option table: every command-line option declared once (flag, default, help, choices).

``TrainConfig`` holds a training run's settings; each field's metadata is its command-line
option, so ``pixelwise train`` and the dataclass cannot disagree. Options that several commands
share (precision, runtime, tiling, ...) are declared once in :data:`SHARED` and picked by name.
Imports nothing heavy: ``pixelwise --help`` builds its parser from this module alone.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from pixelwise.constants import (
    APPEARANCES,
    AUTO_OVERLAP,
    BACKBONES,
    BACKENDS,
    CLASS_WEIGHTINGS,
    CUTOUT_METHODS,
    DECODERS,
    DEFAULT_CUTOUT,
    FLIPS,
    INSTANCE_TARGETS,
    LOSSES,
    OPTIMIZERS,
    PRECISIONS,
    RUNTIMES,
    option_text,
    parse_stems,
)

# environment variables that change what a dataset is (which slides are read in windows, how
# far the windows reach, which outline of a QuPath cell is drawn): recorded with each training run
DATA_SETTINGS = ("PIXELWISE_MAX_PIXELS", "PIXELWISE_WINDOW_MARGIN", "PIXELWISE_CELL_PART")


def data_settings() -> dict[str, str]:
    """The :data:`DATA_SETTINGS` set in this environment, as set."""
    return {name: os.environ[name] for name in DATA_SETTINGS if name in os.environ}


def value_list(text: str) -> list[int]:
    """Stored mask values: integers, ranges of them (``1-150``: 1, 2, ..., 150), or colours as
    ``#rrggbb`` for colour masks (their pixels' value is ``0xRRGGBB``, see
    :func:`pixelwise.data.io.read_mask`)."""
    from pixelwise.data.io import colour_value

    def values(part: str) -> list[int]:
        if part.startswith("#"):
            return [colour_value(part)]
        first, dash, last = part.partition("-")
        if dash and first.strip():
            low, high = int(first), int(last)
            if low > high:
                raise ValueError(part)
            return list(range(low, high + 1))
        return [int(part)]

    try:
        return [v for part in text.split(",") if part.strip() for v in values(part.strip())]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, ranges such as 1-150 or #rrggbb colours, got "
            f"{text!r}"
        ) from None


def float_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None


def box_numbers(text: str) -> list[float]:
    """``--box X0,Y0,X1,Y1``: four numbers, the box's corners in pixels, left before right and
    top before bottom."""
    values = float_list(text)
    if len(values) != 4 or not (values[0] < values[2] and values[1] < values[3]):
        raise argparse.ArgumentTypeError(
            f"expected X0,Y0,X1,Y1, four numbers (the box's left, top, right and bottom edges in "
            f"pixels, x0 < x1 and y0 < y1), got {text!r}"
        )
    return values


def margin(text: str) -> str:
    """``--crop-margin``: pixels (30, 30px) or a percentage of the subject's size (10%)."""
    from pixelwise.constants import crop_margin

    try:
        crop_margin(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def probability_pair(text: str) -> tuple[float, float]:
    """``--instance-thresholds SEED,OBJECT``: two probabilities between 0 and 1."""
    values = float_list(text)
    if len(values) != 2 or not all(0 < v < 1 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected SEED,OBJECT, two probabilities between 0 and 1 (e.g. 0.8,0.85), got {text!r}"
        )
    return values[0], values[1]


def channel_index(text: str) -> int:
    """``--channel N``: a channel's index, 0 for the first."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a channel index, 0 for the first, got {text!r}")
    return value


def scale_value(text: str) -> float | str:
    """``predict``/``segment --scale``: a factor, or ``auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a factor such as 0.5, or auto, got {text!r}"
        ) from None


def bounded(kind: type, low: float, high: float | None = None, above: bool = False):
    """An argparse type: a ``kind`` (int or float) of at least ``low`` (above it, with
    ``above``) and at most ``high``, else one line saying which numbers the option takes."""
    what = "a whole number" if kind is int else "a number"
    rule = f"above {low}" if above else f"from {low}" if high is not None else f"of {low} or more"
    rule += "" if high is None else f" and at most {high}" if above else f" to {high}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if (
            value is None
            or not (value > low if above else value >= low)
            or (high is not None and value > high)
        ):
            raise argparse.ArgumentTypeError(f"expected {what} {rule}, got {text!r}")
        return value

    parse.__name__ = kind.__name__
    return parse


def str_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


@dataclass(frozen=True)
class Opt:
    """One command-line option. ``flags[0]`` is its name (a bare word: positional); ``old``
    spellings are still accepted, with a warning, for one release."""

    flags: tuple[str, ...]
    help: str = ""
    default: Any = None
    type: Any = None
    choices: tuple | None = None
    action: str | None = None
    metavar: str | None = None
    required: bool = False
    nargs: str | None = None
    old: tuple[str, ...] = ()
    dest: str | None = None

    def add_to(self, parser: argparse.ArgumentParser, dest: str | None = None) -> None:
        kwargs = {
            k: v
            for k, v in (
                ("type", self.type),
                ("choices", self.choices),
                ("metavar", self.metavar),
                ("nargs", self.nargs),
            )
            if v is not None
        }
        if self.action in ("store_true", "store_false"):
            kwargs = {"action": self.action}
        elif self.action:
            kwargs["action"] = self.action
        dest = self.dest or dest
        if self.flags[0].startswith("-"):
            kwargs |= {"default": self.default, "required": self.required} | (
                {"dest": dest} if dest else {}
            )
        parser.add_argument(*self.flags, help=self.help, **kwargs)
        for old in self.old:
            parser.add_argument(
                old,
                dest=dest or self.flags[0].lstrip("-").replace("-", "_"),
                help=argparse.SUPPRESS,
                default=argparse.SUPPRESS,
                action=deprecated(old, self.flags[0], self.action),
                **({k: v for k, v in kwargs.items() if k in ("type", "choices")}),
            )


def deprecated(old: str, new: str, action: str | None):
    """An argparse action that stores like ``new`` and warns that ``old`` is going away."""

    class Deprecated(argparse.Action):
        def __init__(self, option_strings, dest, **kwargs):
            nargs = 0 if action in ("store_true", "store_false") else None
            super().__init__(option_strings, dest, nargs=nargs, **kwargs)

        def __call__(self, parser, namespace, values, option_string=None):
            print(f"pixelwise: warning: {old} is deprecated, use {new}", file=sys.stderr)
            setattr(
                namespace, self.dest, {"store_true": True, "store_false": False}.get(action, values)
            )

    return Deprecated


NUMBERS = {int: "not a whole number", float: "not a number"}


def opt(default: Any, help: str, *flags: str, **kwargs) -> Any:
    """A dataclass field whose metadata is its command-line option (flags default to --name)."""
    return field(default=default, metadata={"opt": (flags, help, kwargs)})


@dataclass
class TrainConfig:
    """Everything a training run depends on; saved in every checkpoint."""

    data: str = opt(
        None,
        "dataset root folder, a COCO instances JSON, or a CSV of image,mask[,split] pairs",
        "data",
    )
    out: str = opt(
        None, "run folder for checkpoints, metrics and plots", "-o", "--out", required=True
    )
    model: str = opt("unet", "architecture (see 'pixelwise models'; default unet)")
    depth: int = opt(
        4, "U-Nets, SegNet, DeconvNet: number of down-sampling levels (default 4)", type=int
    )
    base_width: int = opt(
        32, "channels of the first level (default 32; models that take it)", type=int
    )
    batch_norm: bool = opt(
        True, "U-Net without batch norm", "--no-batch-norm", action="store_false"
    )
    backend: str = opt(
        "torch",
        "run (un)pooling and transposed convolutions on native kernels or on pixelwise.ops",
        choices=BACKENDS,
    )
    decoder: str = opt(
        "unpool",
        "SegNet: upsample by max unpooling (default) or transposed convolution",
        choices=DECODERS,
    )
    class_names: list[str] | None = opt(
        None,
        "class names, comma-separated (default: classes.json or class0..)",
        "--classes",
        type=str_list,
    )
    mask_values: list[int] | None = opt(
        None,
        "stored mask value of class 0,1,... e.g. '0,255' for black/white masks, "
        "'#000000,#ff0000' for colour masks (default: values are ids; colour masks: "
        "classes.json's colours)",
        type=value_list,
    )
    ignore_values: list[int] | None = opt(
        None,
        "stored mask values to ignore (default: classes.json's void id; 255 is always ignored)",
        type=value_list,
    )
    soft_masks: bool = opt(
        False,
        "masks with soft edges (anti-aliased, resized, alpha mattes): each pixel takes the class "
        "of the nearest --mask-values value, as JPEG masks' pixels do (without --mask-values: "
        "0 and 255 are background and foreground)",
        action="store_true",
    )
    instances: str | None = opt(
        None,
        "masks are instance labels (0 = background): learn foreground/background, or "
        "background/interior/boundary (separates touching objects)",
        choices=INSTANCE_TARGETS,
    )
    val_stems: list[str] | None = opt(
        None,
        "validation images by file stem: '25,26,27' or a numeric range '25-29'",
        type=parse_stems,
        metavar="STEMS",
    )
    val_fraction: float = opt(
        0.2,
        "seeded random validation share when the data has no val/ folder (default 0.2; 0: train "
        "on every image without validation, best.pt is the last epoch's model)",
        type=float,
    )
    epochs: int = opt(20, "default 20", type=int)
    epoch_size: int | None = opt(
        None, "samples per epoch (default: number of training images)", type=int
    )
    batch_size: int = opt(4, "default 4; the global batch under torchrun", type=int)
    crop: int | None = opt(
        None,
        "random square crop for training; 0 = whole images, a batch of different sizes padded "
        "(the padding ignored) (default 256, or whole images where every image is smaller)",
        type=int,
    )
    augment: bool = opt(
        True,
        "no flips/rotations (and no Mask R-CNN scale jitter)",
        "--no-augment",
        action="store_false",
    )
    calibrate: bool = opt(
        True,
        "no int8 calibration at the end (by default the best checkpoint of a semantic model is "
        "calibrated and gated on the validation images, as pixelwise calibrate does, so that "
        "prediction runs int8 where this machine measures it faster)",
        "--no-calibrate",
        action="store_false",
    )
    flips: str = opt(
        "all",
        "all: random horizontal and vertical flips and 90-degree rotations (default); horizontal: "
        "left-right mirroring only, for labels with a direction (ISBI 2012's membrane labels sit about "
        "half a pixel above the dark lines they trace) or upright subjects",
        choices=FLIPS,
    )
    elastic: bool = opt(
        False,
        "U-Net paper's elastic deformation (3x3 grid, 10 px) of training crops",
        action="store_true",
    )
    zoom: list[float] | None = opt(
        None,
        "random resized crops covering LO..HI of the image area, with aspect jitter "
        "(e.g. 0.3,1), instead of plain --crop windows",
        type=float_list,
        metavar="LO,HI",
    )
    box_crop: list[float] | None = opt(
        None,
        "train a box model: crop each sample to its foreground's bounding box grown by LO..HI of "
        "its size per side (e.g. 0,0.15), resized to --crop; validation uses 5 %%",
        type=float_list,
        metavar="LO,HI",
    )
    rotate: float = opt(0.0, "random rotation up to DEG degrees", type=float, metavar="DEG")
    appearance: str = opt(
        "none",
        "random appearance changes: photo (colour, greyscale, blur, noise, JPEG) or "
        "microscopy (stain, intensity, gamma, inversion, greyscale, blur, noise); default none",
        choices=APPEARANCES,
    )
    normalize_percentiles: list[float] | None = opt(
        None,
        "normalise each image by its own LO and HI percentiles of intensity (e.g. 1,99.8, as "
        "StarDist and Cellpose do) instead of by its bit depth: the model then takes images of "
        "any bit depth, exposure or offset (microscopy); kept in the checkpoint",
        type=float_list,
        metavar="LO,HI",
    )
    channel: int | None = opt(
        None,
        "train on this channel (0 = the first) of multi-channel images, read alone as grey (e.g. "
        "the nuclear stain of ImageJ hyperstacks); kept in the checkpoint, so predict, segment "
        "and evaluate read that channel by default",
        type=channel_index,
        metavar="N",
    )
    composite: float = opt(
        0.0,
        "with probability P paste the foreground (class 1) onto another training image's "
        "background (its own foreground filled in first)",
        type=float,
        metavar="P",
    )
    scale: float = opt(
        1.0,
        "train at reduced resolution: resize images by this factor (kept in the checkpoint; "
        "predict/evaluate resize inputs the same way and upsample the result)",
        type=float,
    )
    at_pixel_size: float | None = opt(
        None,
        "learn at this pixel size: each image resized from the pixel size its file records to "
        "UM µm a pixel (20x and 40x slides learned at one magnification); the checkpoint keeps "
        "it, and predict/segment/evaluate --scale auto resize their images to it",
        type=float,
        metavar="UM",
    )
    optimizer: str = opt("adam", "default adam", choices=OPTIMIZERS)
    lr: float = opt(1e-3, "peak learning rate of the one-cycle schedule (default 1e-3)", type=float)
    weight_decay: float = opt(0.0, "default 0", type=float)
    momentum: float = 0.9
    loss: str = opt(
        "ce",
        "default ce (per-pixel cross-entropy); weighted-ce weights each pixel by U-Net's border "
        "weight map (class balance + w0 * exp(-(d1 + d2)^2 / 2 sigma^2) between cells)",
        choices=LOSSES,
    )
    backbone: str = opt(
        "resnet18",
        "unet_resnet's encoder, mask_rcnn's FPN backbone: a torchvision ResNet (default "
        "resnet18, CPU-friendly; resnet50 is Mask R-CNN's paper's)",
        choices=BACKBONES,
    )
    min_size: int = opt(512, "mask_rcnn: shorter image side it works at (default 512)", type=int)
    max_size: int = opt(853, "mask_rcnn: longer side cap (default 853)", type=int)
    max_detections: int = opt(
        100,
        "mask_rcnn: most objects per image kept when validating, saved in the checkpoint "
        "(default 100)",
        type=int,
    )
    weights: str | None = opt(
        None,
        "local weights to start from, never downloaded: a pixelwise checkpoint or bundled "
        "model name to fine-tune (its architecture and input normalisation replace --model, "
        "--depth, --base-width; for data of other classes its class scores start afresh); "
        "for mask_rcnn also torchvision's Mask R-CNN weights; for unet_resnet and mask_rcnn a "
        "torchvision ResNet's ImageNet weights file (e.g. resnet34-b627a593.pth, the same "
        "--backbone) starts the encoder",
    )
    w0: float = opt(10.0, "weighted-ce: border weight w0 (default 10)", type=float)
    sigma: float = opt(5.0, "weighted-ce: border width sigma in pixels (default 5)", type=float)
    class_weighting: str = opt(
        "none",
        "cross-entropy class weights from training pixel counts (default none)",
        choices=CLASS_WEIGHTINGS,
    )
    precision: str = opt(
        "auto",
        "auto (default: fp32, fp32 channels_last or bf16 + channels_last, whichever this machine "
        "measured fastest for training steps; bf16 on GPUs that have it), bf16 or fp32",
        choices=PRECISIONS,
    )
    device: str = opt(
        "auto", "auto, cpu, cuda, cuda:1, ... (default auto: the GPU if there is one)"
    )
    workers: int = opt(
        0,
        "DataLoader worker processes (default 0: on 2 cores workers were measured no faster, "
        "benchmarks/loader.py; use them with more cores or a GPU)",
        type=int,
    )
    patience: int = opt(
        0,
        "stop when the validation score (best.pt's) has not improved for this many epochs "
        "(default 0: run every epoch)",
        type=int,
        metavar="EPOCHS",
    )
    seed: int = opt(0, "random seed for splits, init and augmentation (default 0)", type=int)
    ema: float = opt(
        0.0,
        "validate and save an exponential moving average of the weights (e.g. 0.99; default off)",
        type=float,
        metavar="DECAY",
    )
    resume: bool = opt(False, "continue from --out/last.pt if it exists", action="store_true")
    overlays: int = 4
    progress: bool = opt(True, "no progress bar", "--no-progress", action="store_false")

    def __post_init__(self) -> None:
        """Options written as on the command line ("0,255", "25-29", "8") are read as it reads
        them, so Python code may pass either form (paths as ``Path``); a choice not offered is
        refused as there."""
        for f in fields(self):
            if isinstance(getattr(self, f.name), os.PathLike):
                setattr(self, f.name, os.fspath(getattr(self, f.name)))
            if "opt" not in f.metadata or not isinstance(getattr(self, f.name), str):
                continue
            value, kwargs = getattr(self, f.name), f.metadata["opt"][2]
            flag = flag_of(type(self), f.name)
            if kwargs.get("type") not in (None, str):
                try:
                    setattr(self, f.name, kwargs["type"](value))
                except (ValueError, argparse.ArgumentTypeError) as exc:
                    why = NUMBERS.get(kwargs["type"], exc)
                    raise ValueError(f"{flag} {value}: {why}") from None
            if kwargs.get("choices") and getattr(self, f.name) not in kwargs["choices"]:
                raise ValueError(f"{flag} {value}: one of {', '.join(map(str, kwargs['choices']))}")

    def to_dict(self) -> dict:
        return asdict(self)

    def check(self) -> None:
        """Refuse impossible settings before anything is loaded: one line naming the option."""
        for name, ok, rule in TRAIN_CHECKS:
            value = getattr(self, name)
            if value is not None and not ok(value):
                flag = flag_of(type(self), name)
                shown = ",".join(map(str, value)) if isinstance(value, list) else value
                raise ValueError(f"{flag} {shown}: {rule}")
        classes, values = self.class_names, self.mask_values
        if classes and values and len(classes) != len(values):
            raise ValueError(
                f"--classes names {len(classes)} classes and --mask-values lists {len(values)} "
                "values: give the stored value of each class"
            )
        if self.at_pixel_size is not None and (self.scale != 1.0 or self.model == "mask_rcnn"):
            raise ValueError(
                "--at-pixel-size resizes each image for a semantic model; give it without "
                "--scale (mask_rcnn resizes its own images)"
            )
        if self.channel is not None and self.model == "mask_rcnn":
            raise ValueError("--channel: the option is for semantic models (not mask_rcnn)")
        if self.normalize_percentiles is not None and self.model == "mask_rcnn":
            raise ValueError(
                "--normalize-percentiles: mask_rcnn normalises its images itself (torchvision's "
                "transform); the option is for semantic models"
            )
        if self.soft_masks and self.instances:
            raise ValueError(
                "--soft-masks: the option reads class masks with soft edges; instance labels "
                "(--instances) have none"
            )
        both = sorted(set(values or ()) & set(self.ignore_values or ()))
        if both:
            raise ValueError(
                f"--ignore-values {both}: listed in --mask-values too; a value is a class or ignored"
            )


DEFAULT_CROP = 256  # the training crop when --crop is not given (whole images when all smaller)


def crop_of(cfg: TrainConfig) -> int:
    """The training crop: ``--crop``, else :data:`DEFAULT_CROP` (which training turns into whole
    images where every image is smaller: :func:`pixelwise.semantic.check_crop`)."""
    return DEFAULT_CROP if cfg.crop is None else cfg.crop


def flag_of(cls, name: str) -> str:
    """The command-line flag of a config field, as users type it (``--classes``)."""
    flags = next(f.metadata["opt"][0] for f in fields(cls) if f.name == name)
    return flags[0] if flags else "--" + name.replace("_", "-")


TRAIN_CHECKS = (
    ("epochs", lambda v: v >= 1, "must be at least 1"),
    ("epoch_size", lambda v: v >= 1, "must be at least 1"),
    ("batch_size", lambda v: v >= 1, "must be at least 1"),
    ("crop", lambda v: v >= 0, "must be 0 (whole images) or a positive size"),
    (
        "depth",
        lambda v: 1 <= v <= 6,
        "must be between 1 and 6 (2**depth is the downsampling factor)",
    ),
    ("base_width", lambda v: 1 <= v <= 512, "must be between 1 and 512"),
    ("lr", lambda v: 0 < v < 10, "must be a positive learning rate"),
    ("scale", lambda v: 0 < v <= 4, "must be in (0, 4]"),
    ("at_pixel_size", lambda v: v > 0, "must be a positive size in µm"),
    ("val_fraction", lambda v: 0 <= v < 1, "must be in [0, 1)"),
    ("ema", lambda v: 0 <= v < 1, "must be in [0, 1) (0 = off)"),
    ("workers", lambda v: v >= 0, "must be 0 or more"),
    ("patience", lambda v: v >= 0, "must be 0 (off) or more epochs"),
    ("rotate", lambda v: 0 <= v <= 180, "must be between 0 and 180 degrees"),
    ("sigma", lambda v: v > 0, "must be positive"),
    ("w0", lambda v: v >= 0, "must be 0 or more"),
    (
        "normalize_percentiles",
        lambda v: len(v) == 2 and 0 <= v[0] < v[1] <= 100,
        "must be two percentiles LO,HI with 0 <= LO < HI <= 100",
    ),
    ("mask_values", lambda v: len(set(v)) == len(v), "lists a value twice"),
    ("class_names", lambda v: len(set(v)) == len(v), "names a class twice"),
)


def field_options(cls) -> list[tuple[str, Opt]]:
    """(field name, its option) for the fields of a config dataclass that have one."""
    out = []
    for f in fields(cls):
        if "opt" not in f.metadata:
            continue
        flags, help, kwargs = f.metadata["opt"]
        flags = flags or ("--" + f.name.replace("_", "-"),)
        default = None if f.default is MISSING else f.default
        out.append((f.name, Opt(flags, help, default, **kwargs)))
    return out


def as_typed(name: str, value) -> str:
    """A :class:`TrainConfig` setting as typed on the command line: ``--epochs 20``,
    ``--zoom=-0.2,0.2``; a switch is its flag, or "without" it at its default."""
    option = dict(field_options(TrainConfig))[name]
    flag = option.flags[0]
    if isinstance(value, bool):
        return flag if value != option.default else f"without {flag}"
    text = option_text(value)
    return f"{flag}={text}" if text.startswith("-") else f"{flag} {text}"


def from_args(cls, args: argparse.Namespace):
    """The config dataclass filled from parsed arguments (fields without an option keep their default)."""
    return cls(**{name: getattr(args, name) for name, _ in field_options(cls)})


TTA_HELP = (
    "average predictions over the 8 flips/rotations (8x slower); for models trained with '--flips all' "
    "(the default): it undoes a direction learned with --flips horizontal or --no-augment"
)
MODEL_HELP = (
    "a .pt file written by 'pixelwise train', an exported .onnx file or a bundled model name"
)


def default_out(command: str, note: str = "") -> Opt:
    """``-o/--out`` of a command that writes to COMMAND-output unless told otherwise."""
    more = f"; {note}" if note else ""
    return Opt(
        ("-o", "--out"),
        f"output folder (default {command}-output{more})",
        f"{command}-output",
        dest="out",
    )


SHARED: dict[str, Opt] = {
    "precision": Opt(
        ("--precision",),
        "auto (default: what this machine measured fastest, see 'pixelwise info'), bf16 or fp32",
        "auto",
        choices=PRECISIONS,
    ),
    "runtime": Opt(
        ("--runtime",),
        "auto (default: PyTorch or ONNX Runtime, whichever this machine measured fastest), torch or "
        "onnx (exported in memory); .onnx files always use ONNX Runtime",
        "auto",
        choices=RUNTIMES,
    ),
    "tta": Opt(("--tta",), TTA_HELP, action="store_true"),
    "input_range": Opt(
        ("--input-range",),
        "map raw pixel values LO..HI to full intensity before the model sees them (clipped), e.g. "
        "0,4095 for a 12-bit camera's images stored as 16-bit, which a model trained on 8-bit "
        "images otherwise sees 16x too dark (default: by the file's bit depth)",
        metavar="LO,HI",
    ),
    "channel": Opt(
        ("--channel",),
        "segment this channel (0 = the first) of multi-channel images, e.g. the nuclear stain of "
        "an ImageJ hyperstack or OME-TIFF, which are refused without it; of colour images too "
        "(0 red, 1 green, 2 blue), read as grey",
        type=channel_index,
        metavar="N",
    ),
    "tile": Opt(
        ("--tile",),
        "overlap-tile prediction with tiles of this size (default: 1024 for images over "
        "2048x2048 pixels; 0 = never tile)",
        type=int,
    ),
    "overlap": Opt(
        ("--overlap",),
        f"context kept around each tile's core (default {AUTO_OVERLAP})",
        AUTO_OVERLAP,
        type=int,
    ),
    "scale": Opt(
        ("--scale",),
        "semantic models: resize each image by this factor before the network, on top of the "
        "model's own (e.g. 0.5 for 40x slides given to a model trained at 20x: objects at the "
        "size it learned, a quarter of the network's work; slides region by region, from the "
        "smallest level of their pyramid that holds the scaled slide); masks and "
        "objects stay at the image's resolution (default 1); auto: each image whose file "
        "records its pixel size resized to the one the model learned at (models trained on "
        "such images record it)",
        1.0,
        type=scale_value,
        metavar="F",
    ),
    "tissue_only": Opt(
        ("--tissue-only",),
        "slides read region by region (over the pixel limit), brightfield RGB: find the tissue "
        "on a coarse grid first (bright grey pixels are glass) and read the glass as one flat "
        "colour, so tiles over bare glass go through the network once; objects and classes "
        "found on glass are dropped with it",
        action="store_true",
    ),
    "progress": Opt(
        ("--no-progress",), "no progress bar", True, action="store_false", dest="progress"
    ),
    "device": Opt(
        ("--device",),
        "auto, cpu, cuda, cuda:1, ... (default auto: the GPU if there is one)",
        "auto",
    ),
    "score_threshold": Opt(
        ("--score-threshold",),
        "instance models: keep detections scoring at least this (default 0.5)",
        0.5,
        type=bounded(float, 0, 1),
    ),
    "instance_thresholds": Opt(
        ("--instance-thresholds",),
        "models trained with --instances boundary: a nucleus (object) starts where the interior "
        "probability exceeds SEED and covers the pixels whose background probability is under "
        "1 - OBJECT (default: the model's own, chosen on its validation images at the end of "
        "training; 0.8,0.85 for a model without)",
        metavar="SEED,OBJECT",
        type=probability_pair,
    ),
    "labelme": Opt(
        ("--labelme",),
        "also write OUT/labelme/<name>.json: each region (each object, for instance models and "
        "segment) as a LabelMe polygon, with labels.txt, to correct in LabelMe and train on "
        "again; --min-object-size drops smaller regions",
        action="store_true",
    ),
    "geojson": Opt(
        ("--geojson",),
        "also write OUT/geojson/<name>.geojson: each region of each class (each object, for "
        "instance models and segment) as a polygon along its pixel edges in image pixel "
        "coordinates (y down), classified by class name, for QuPath (File > Import objects) or "
        "shapely/GeoPandas (and to train on again: pixelwise train reads GeoJSON files beside "
        "the images); "
        "for a whole-slide scan too (predict joins its regions across blocks)",
        action="store_true",
    ),
    "min_object_size": Opt(
        ("--min-object-size",),
        "drop objects under this many pixels (default 0)",
        0,
        type=bounded(int, 0),
        old=("--min-size",),
    ),
    "object_class": Opt(
        ("--object-class",),
        "objects are connected components of this class id (for models not trained on instances)",
        type=bounded(int, 0),
        metavar="ID",
    ),
    "out": Opt(("-o", "--out"), "output folder", required=True, dest="out"),
    "out_cutouts": default_out(
        "remove-bg",
        "cut-outs as NAME.png inside (--format); or a .png, .webp or .jpg file for one photo; - "
        "for standard output",
    ),
    "inputs": Opt(
        ("inputs",),
        "image files and/or folders (searched recursively; folders an earlier run wrote its "
        "outputs to, marked .pixelwise-output, and a dataset's masks beside its images are left "
        "out)",
        nargs="+",
    ),
    "skip_existing": Opt(
        ("--skip-existing",), "leave inputs whose output exists alone", action="store_true"
    ),
    "checkpoint_option": Opt(
        ("--checkpoint",),
        MODEL_HELP + " (default: the bundled foreground model)",
        old=("--model",),
        dest="checkpoint",
    ),
    "box_checkpoint": Opt(
        ("--box-checkpoint",),
        "a box model (train --box-crop) whose probability is weighed with the model's inside a "
        "box, the surer counting more (default: the bundled foreground-box model beside the "
        "bundled foreground model)",
        dest="box_checkpoint",
    ),
    "method": Opt(
        ("--method",),
        "model: the network's mask; graphcut: graph cut with the network's probability as "
        "data term, following the photo's edges; grabcut: OpenCV GrabCut from the central box, no weights "
        f"(default {DEFAULT_CUTOUT})",
        DEFAULT_CUTOUT,
        choices=CUTOUT_METHODS,
    ),
}


def add_shared(parser: argparse.ArgumentParser, *names: str) -> None:
    for name in names:
        SHARED[name].add_to(parser, dest=name if name != "progress" else None)
