"""Scoring: the semantic loop (one confusion matrix over a dataset), object metrics for models
trained on instances, and ``evaluate_checkpoint``, which dispatches on the model's kind."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from pixelwise.checkpoint import load_for_command, read_checkpoint
from pixelwise.config import TrainConfig
from pixelwise.constants import (
    AUTO_OVERLAP,
    AUTO_TILE,
    AUTO_TILE_PIXELS,
    IGNORE_INDEX,
    counted,
    first_ten,
    one_line,
    parse_stems,
    unusable,
)
from pixelwise.data.calibration import pixel_size_um
from pixelwise.data.datasets import SegmentationDataset
from pixelwise.data.encoding import MaskEncoding
from pixelwise.data.io import (
    drawn_as_stored,
    holds_class_ids,
    laid_as_stored,
    list_images,
    page_name,
    read_alpha,
    read_mask,
)
from pixelwise.data.layouts import (
    black_and_white,
    evaluation_items,
    holds_instance_labels,
    read_dataset_info,
    resolve_splits,
    split_layout,
    stored_values,
    value_counts,
)
from pixelwise.data.transforms import resize_mask
from pixelwise.detection import evaluation_instances, instance_splits, score_detector
from pixelwise.distributed import resolve_device
from pixelwise.export import OnnxNetwork
from pixelwise.inference import (
    check_scale,
    class_probabilities,
    predict_logits,
    predict_probs,
    predict_semantic,
    predict_tiled,
    rescaled,
    scale_factor,
)
from pixelwise.instances import (
    OBJECT_PROB,
    SEED_PROB,
    argmax_codes,
    boundary_codes,
    check_object_class,
    decision_for,
    drop_small,
    instances_for,
    kept_objects,
    semantic_to_instances,
    with_thresholds,
)
from pixelwise.metrics import (
    ConfusionMatrix,
    ImageScores,
    Overlaps,
    aggregated_jaccard,
    dsb_average_precision,
    image_mean,
    object_scores,
    overlaps,
    panoptic_quality,
    rand_info_scores,
    seg_score,
)
from pixelwise.runtime import is_onnx_file, resolve_precision, torch_path
from pixelwise.segmenter import Segmenter
from pixelwise.semantic import resolve_classes, soft_black_and_white


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    num_classes: int,
    device: torch.device,
    precision: str = "fp32",
    loss_fn: Callable | None = None,
    tta: bool = False,
    scale: float = 1.0,
) -> tuple[ConfusionMatrix, float]:
    """Confusion matrix over the whole loader and the mean loss (training's validation).

    ``tta`` averages the 8 flips/rotations of each input; ``scale`` runs the model on resized
    inputs and scores its upsampled prediction at the targets' resolution. The loss is NaN
    without ``loss_fn`` and not computed with ``tta`` or ``scale``. Images over 2048 x 2048
    pixels go tile by tile, as :func:`pixelwise.inference.predict` does, and add no loss.
    """
    cm = ConfusionMatrix(num_classes)
    total, count = 0.0, 0
    for images, targets in loader:
        images, targets = images.to(device), targets.to(device)
        if images.shape[-2] * images.shape[-1] > AUTO_TILE_PIXELS:  # no loss from these
            cm.update(tiled_classes(model, images, precision, tta, scale), targets)
            continue
        if tta or scale != 1.0:
            cm.update(predict_probs(model, images, precision, tta, scale).argmax(1), targets)
            continue
        logits = predict_logits(model, images, precision)
        if loss_fn is not None:
            total += loss_fn(logits, targets).item() * len(images)
            count += len(images)
        cm.update(logits.argmax(1), targets)
    return cm, (total / count if count else float("nan"))


def tiled_classes(
    model: nn.Module, images: torch.Tensor, precision: str, tta: bool, scale: float
) -> torch.Tensor:
    """(1, H, W) class ids of one normalised (1, C, H, W) image too large for one pass: by
    overlap-tile at the network's scale, then nearest-upsampled, as for files."""
    x = images
    if scale != 1.0:
        x = F.interpolate(x, scale_factor=scale, mode="bilinear", antialias=True)
    array = x[0].permute(1, 2, 0).cpu().numpy()
    mask = predict_tiled(model, array, None, AUTO_TILE, AUTO_OVERLAP, precision, tta)
    return torch.from_numpy(resize_mask(mask, tuple(images.shape[-2:])))[None]


def evaluate_checkpoint(
    checkpoint: str | Path,
    data: str | Path,
    val_stems: str | list[str] | None = None,
    precision: str = "auto",
    tta: bool = False,
    object_class: int | None = None,
    min_size: int = 0,
    runtime: str = "torch",
    device: str = "auto",
    input_range: tuple[float, float] | None = None,
    thresholds: tuple[float, float] | None = None,
    channel: int | None = None,
    scale: float | str = 1.0,
    progress: bool = False,
    soft_masks: bool = False,
) -> dict:
    """Confusion-matrix metrics of ``checkpoint`` over the selected pairs of ``data``, with
    ``split`` (what was scored) and ``images`` (how many) added. ``input_range``: raw values seen
    as full range, as ``predict --input-range`` maps them (semantic models). ``thresholds``: a
    boundary model's (seed, object) pair instead of its own (``segment --instance-thresholds``).
    ``channel``: each image's channel read alone (multi-channel images; semantic models).
    ``scale``: images resized by this for the network as by ``predict --scale`` (``"auto"``: by
    the pixel size each file records over the model's), scored at the data's resolution.
    ``progress``: a bar, an image a step; ``soft_masks``: masks of soft edges (:func:`encoding_for`).

    Object metrics (``objects``, see :func:`object_metrics`) are added for checkpoints trained
    on instance masks, and for others when ``object_class`` names the class whose connected
    components are the objects (ISBI 2012: the cells between membranes). Instance models (Mask
    R-CNN) get COCO box and mask AP and the DSB2018 mean AP instead. ``device``: ``auto`` is the
    GPU when there is one (ONNX Runtime models always run on the CPU).
    """
    seg = with_thresholds(load_for_command(checkpoint, runtime, precision), thresholds)
    on_ort = isinstance(seg.network, OnnxNetwork)  # also what runtime "auto" may have chosen
    device = torch.device("cpu") if on_ort else resolve_device(device)
    seg.network.to(device)
    note_data_settings(checkpoint)
    own = None if parse_stems(val_stems) else run_validation(checkpoint, data, seg.kind)
    stems = parse_stems(val_stems) or own
    if seg.kind == "instance":
        given = {"--input-range": input_range, "--channel": channel}
        refuse_for_instances(checkpoint, given | {"--scale": None if scale == 1.0 else scale})
        return evaluate_detector(seg, checkpoint, data, stems) | own_split(data, own)
    if object_class is not None:
        check_object_class(seg, object_class)
    items, split = evaluation_items(Path(data), stems)
    split = own_split(data, own).get("split", split)
    ds = dataset_for(seg, items, data, input_range, channel, soft_masks)
    head = {"split": split, "images": len(items), "checkpoint": str(checkpoint), "tta": tta}
    head |= {} if scale == 1.0 else {"scale": scale}
    precision = resolve_precision(precision, device)
    # what ran: an int8 model's scores differ from fp32's
    head["path"] = seg.network.path if on_ort else torch_path(precision)
    scores = ImageScores(seg.num_classes)
    models = scaled_models(seg, items, scale)
    if seg.encoding.instances is None and object_class is None:
        score_pixels(models, ds, precision, tta, scores, progress)
        return head | scores.summary(seg.class_names) | {"per_image": image_rows(items, scores)}
    objects = scored_objects(models, ds, precision, tta, object_class, min_size, scores, progress)
    return head | thresholds_used(seg) | objects


def dataset_for(
    seg: Segmenter, items: list, data, input_range, channel, soft_masks: bool = False
) -> SegmentationDataset:
    """``items`` as ``seg`` reads them: its encoding of the data's masks (of soft edges with
    ``soft_masks``), its normalisation and channels, ``input_range`` mapped, its ``channel`` (or
    the one given)."""
    return SegmentationDataset(
        items,
        seg.num_classes,
        encoding_for(seg, items, data, soft_masks),
        seg.norm,
        channels=seg.in_channels,
        input_range=input_range,
        channel=seg.reads if channel is None else channel,
    )


def scaled_models(seg: Segmenter, items: list, scale: float | str) -> list[Segmenter]:
    """``seg`` for each of ``items`` seeing its image resized by ``scale``
    (:func:`~pixelwise.inference.scale_factor`: with ``auto``, by the pixel size its file
    records; ValueError for a model that records none); a note on stderr names the files
    ``auto`` found no pixel size in."""
    check_scale(seg, scale)
    sizes = [pixel_size_um(item.image) if scale == "auto" else None for item in items]
    unsized = [item.image for item, size in zip(items, sizes) if size is None]
    if scale == "auto" and unsized:
        print(
            f"note: --scale auto: no pixel size recorded for {counted(len(unsized), 'image')} "
            f"(scored as they are), such as {unsized[0]}",
            file=sys.stderr,
        )
    return [rescaled(seg, scale_factor(scale, size, seg.pixel_size)) for size in sizes]


def refuse_for_instances(checkpoint, options: dict) -> None:
    """ValueError naming the first of ``options`` (option: value) given for an instance model,
    which evaluates without them."""
    for name, value in options.items():
        if value is not None:
            raise ValueError(f"{checkpoint}: {name} is not supported for instance models here")


def scored_objects(
    models, ds, precision, tta, object_class, min_size, scores, progress: bool = False
) -> dict:
    """The pixel metrics (``scores``), ``objects`` (:func:`object_metrics`) and ``per_image`` of
    :func:`evaluate_checkpoint` for a model whose output is made into objects (``models``: the
    model for each image, :func:`scaled_models`)."""
    pairs, coco = score_objects(
        models, ds, precision, tta, object_class, min_size, scores, progress
    )
    image_aps: list[float] = []
    objects = object_metrics(pairs, image_aps) | coco
    rows = image_rows(ds.items, scores, image_aps)
    return scores.summary(models[0].class_names) | {"objects": objects, "per_image": rows}


def thresholds_used(seg: Segmenter) -> dict:
    """``instance_thresholds``: the (seed, object) pair a boundary model's objects were made with."""
    if seg.encoding.instances != "boundary":
        return {}
    return {"instance_thresholds": list(seg.thresholds or (SEED_PROB, OBJECT_PROB))}


def run_validation(checkpoint, data, kind: str) -> list[str] | None:
    """The names of the validation images of the run that wrote ``checkpoint``, when ``data``
    holds them: the run trained on ``data`` and drew them from it (``--val-stems`` or a seeded
    ``--val-fraction``), or it listed them by name and ``data`` holds every one (the bundled
    nuclei model on DSB2018). Scored whole, the pool would count the run's training images."""
    if is_onnx_file(checkpoint):
        return None
    cfg = (read_checkpoint(checkpoint).get("train_state") or {}).get("config") or {}
    root = Path(data)
    if "data" not in cfg:
        return None
    split = (cfg.get("val_stems"), cfg.get("val_fraction", 0.2), cfg.get("seed", 0))
    if Path(cfg["data"]).resolve() != root.resolve():
        return listed_in(root, split[0], kind)
    if kind == "instance":
        stems = [item.name for item in instance_splits(root, *split)[1]]
    elif "val" in split_layout(root):
        return None  # the run validated on the data's own split, which is scored anyway
    else:
        stems = [item.name for item in resolve_splits(root, *split)[1]]
    if not stems:
        print(
            f"note: {checkpoint} was trained on every image of {data} (--val-fraction 0): "
            "scores on them are training scores",
            file=sys.stderr,
        )
    return stems or None


def note_data_settings(checkpoint) -> None:
    """A note on stderr for each setting of the environment that changes what data is
    (:data:`~pixelwise.config.DATA_SETTINGS`) set otherwise than when ``checkpoint`` was trained
    (none for an exported model or one that did not record them)."""
    from pixelwise.config import data_settings

    if is_onnx_file(checkpoint):
        return
    then = (read_checkpoint(checkpoint).get("train_state") or {}).get("data_settings")
    if then is None:
        return
    now = data_settings()
    for name in sorted(set(then) | set(now)):
        if then.get(name) != now.get(name):
            print(
                f"note: {checkpoint} was trained with {setting(name, then)}, here "
                f"{setting(name, now)}: the data is read otherwise than in its training",
                file=sys.stderr,
            )


def setting(name: str, settings: dict) -> str:
    """``NAME=value`` as ``settings`` has it, or ``NAME unset``."""
    return f"{name}={settings[name]}" if name in settings else f"{name} unset"


def listed_in(root: Path, stems: list[str] | None, kind: str) -> list[str] | None:
    """``stems`` when the images ``root`` would be scored on include every one of them."""
    if not stems:
        return None
    pool = evaluation_instances(root, None)[0] if kind == "instance" else evaluation_items(root)[0]
    return list(stems) if set(stems) <= {item.name for item in pool} else None


def own_split(data, own: list[str] | None) -> dict:
    """The ``split`` of a summary that scored the training run's own validation images."""
    if not own:
        return {}
    return {"split": f"{data} (the validation split of the checkpoint's training run)"}


def encoding_for(seg: Segmenter, items: list, data, soft: bool = False) -> MaskEncoding:
    """The checkpoint's mask encoding, except that the data's classes are matched to the
    model's by name when the data names them otherwise (:func:`by_name`), and that
    black-and-white masks (0 and 255 alone, or black and white RGB) are a two-class model's
    background and foreground also when it was trained on masks of 0 and 1 (as class ids, 255
    would be ignored: no foreground scored). ``soft``: the data's masks have soft edges (each
    pixel the nearest value; for a two-class model of class ids, the nearer of 0 and 255)."""
    if soft:
        encoding = replace(seg.encoding, soft=True)
        two = encoding.values is None and encoding.instances is None and seg.num_classes == 2
        if not two:
            return encoding
        return replace(encoding, values=soft_black_and_white(data, value_counts(items)))
    encoding = seg.encoding
    if encoding.values is None and encoding.instances is None:
        matched = by_name(seg, items, data)
        if matched is not None:
            return matched
    if encoding.values is not None or encoding.instances is not None or seg.num_classes != 2:
        return encoding
    values = black_and_white(value_counts(items), encoding.ignore_values)
    if values is None:
        return encoding
    print(f"{data}: black-and-white masks: black scored as class 0, white as 1", file=sys.stderr)
    return replace(encoding, values=values)


def by_name(seg: Segmenter, items: list, data) -> MaskEncoding | None:
    """When the data names its classes in another order or set than the model (a dataset that
    gained a class, labels sorted anew), the encoding that scores each model class on the data's
    class of the same name, and ignores the data's classes the model does not know; None when
    the names agree, or when none but the background match (then class ids are compared, as a
    printed warning says)."""
    info = read_dataset_info(Path(data))
    names, model = info.class_names, list(seg.class_names)
    if not names or names == model:
        return None
    shared = set(names) & set(model[1:])
    if not shared:
        print(
            f"{data}: its classes ({', '.join(names[:8])}) are not the model's "
            f"({', '.join(model[:8])}); scored by class id",
            file=sys.stderr,
        )
        return None
    stored = stored_values(info, items, None) or tuple(range(len(names)))
    values = tuple(stored[names.index(n)] if n in names else NEVER_STORED for n in model)
    unknown = [n for n in names if n not in model]
    print(
        f"{data}: classes matched to the model's by name"
        + (f"; not known to the model, ignored: {', '.join(unknown)}" if unknown else ""),
        file=sys.stderr,
    )
    ignored = (*info.ignore_values, *(stored[names.index(n)] for n in unknown))
    if max(stored) <= 255 and IGNORE_INDEX not in stored:  # grey levels: 255 stays ignored
        ignored += (IGNORE_INDEX,)
    return MaskEncoding(values, ignored)


NEVER_STORED = -1  # the stored value of a model class the data does not have


def image_rows(
    items: list, scores: ImageScores, image_aps: list[float] | None = None
) -> list[dict]:
    """One row per scored image: its name, pixel accuracy, mean IoU, mean boundary F1 and mean
    HD95 (over the classes in its reference or prediction; None when every pixel is ignored),
    the pixels scored, and given ``image_aps`` its DSB2018 mean AP."""
    rows = []
    edges = zip(scores.boundary, scores.hd95)
    for i, (item, cm, (boundary, hd95)) in enumerate(zip(items, scores.images, edges)):
        iou = cm.iou().nanmean().item()
        row = {
            "name": item.name,
            "pixel_accuracy": cm.pixel_accuracy() if cm.matrix.sum() else None,
            "mean_iou": None if np.isnan(iou) else iou,
            "boundary_f1": None if np.isnan(boundary).all() else float(np.nanmean(boundary)),
            "hd95": None if np.isnan(hd95).all() else float(np.nanmean(hd95)),
            "pixels": int(cm.matrix.sum()),
        }
        if image_aps is not None:
            row["dsb_mean_ap"] = image_aps[i]
        rows.append(row)
    return rows


def score_pixels(
    models: list[Segmenter],
    ds: SegmentationDataset,
    precision: str,
    tta: bool,
    scores: ImageScores,
    progress: bool = False,
) -> None:
    """Add to ``scores`` the masks :func:`pixelwise.inference.predict` makes of the images of
    ``ds`` (overlap-tile above 2048 x 2048 pixels, as for files), each by its model of
    ``models`` (:func:`scaled_models`)."""
    for i, seg in enumerate(each_image(models, progress)):
        image, target = ds.load(i)
        scores.add(predict_semantic(seg, image, precision, tta, None, AUTO_OVERLAP), target)


def each_image(items: list, progress: bool):
    """``items`` under a progress bar ("evaluate", an image a step, gone when done) when
    ``progress``; else as they are."""
    if not progress:
        return items
    from tqdm import tqdm

    return tqdm(items, desc="evaluate", unit="img", leave=False)


def score_objects(
    models: list[Segmenter],
    ds: SegmentationDataset,
    precision: str,
    tta: bool,
    object_class: int | None,
    min_size: int,
    scores: ImageScores,
    progress: bool = False,
) -> tuple[list[Overlaps], dict]:
    """The :class:`~pixelwise.metrics.Overlaps` of each image's (reference, predicted) instance
    label images and the COCO mask AP of its objects ranked by their mean probability
    (:func:`coco_from_parts`), image by image, each image's class mask added to ``scores``; the
    probabilities as :func:`pixelwise.inference.predict_probabilities` makes them. Only compact
    counts and RLEs are kept, so that many large images fit. ``models``: the model for each
    image (:func:`scaled_models`)."""
    pairs, coco, with_coco = [], [], has_pycocotools()
    for i, (item, seg) in enumerate(each_image(list(zip(ds.items, models)), progress)):
        image, target = ds.load(i)
        pred = probability_tensor(seg, image, precision, tta)
        scores.add(pred.argmax(1)[0].numpy(), target)
        if seg.encoding.instances is not None:
            reference = item.read_mask(instances=True)
        else:
            reference = instances_for_reference(target, object_class)
        labels = instances_for(seg, decision_for(seg)(pred)[0].numpy(), object_class, min_size)
        labels = outside_ignored(labels, target == IGNORE_INDEX)
        pairs.append(overlaps(reference, labels))  # kept compact: not the label images
        if with_coco:
            objectness = 1.0 - pred[0, 0] if object_class is None else pred[0, object_class]
            conf = object_confidences(labels, objectness.float().numpy())
            coco.append(coco_parts(reference, labels, conf, i + 1))
    return pairs, coco_from_parts(coco) if with_coco else {}


# The pairs :func:`choose_thresholds` tries (seed, object): recipes/nuclei_thresholds.py's grid,
# which holds the defaults instances.SEED_PROB, OBJECT_PROB
THRESHOLD_GRID = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9)


def choose_thresholds(
    seg: Segmenter, ds: SegmentationDataset, precision: str = "auto", scales=None
) -> dict:
    """The (seed, object) thresholds of a boundary model (:func:`instances.boundary_codes`) with
    the best DSB2018 mean AP over the images of ``ds`` (its instance labels), each pair of
    :data:`THRESHOLD_GRID`, as StarDist chooses its thresholds on the validation images. The
    probabilities are predicted once per image (``scales``: image ``i`` resized by
    ``scales[i]`` before the network, as ``segment --scale auto`` does for a model trained
    ``--at-pixel-size``). Returns ``seed``, ``object``, ``mean_ap`` (the
    pair's), ``default_mean_ap`` (the default pair's), ``argmax_mean_ap`` and ``images``."""
    pairs = [(s, o) for s in THRESHOLD_GRID for o in THRESHOLD_GRID]
    rules = [functools.partial(boundary_codes, seed_prob=s, object_prob=o) for s, o in pairs]
    rules.append(argmax_codes)
    totals = np.zeros(len(rules))
    for i, item in enumerate(ds.items):
        image, _ = ds.load(i)
        model = seg if scales is None else rescaled(seg, scales[i])
        pred = probability_tensor(model, image, precision)
        reference = item.read_mask(instances=True)
        for j, rule in enumerate(rules):
            labels = instances_for(seg, rule(pred)[0].numpy())
            totals[j] += dsb_average_precision(reference, labels)["mean_ap"]
    means = totals / max(1, len(ds.items))
    best = int(np.argmax(means[:-1]))  # the first of equals: the grid's lowest pair
    return {
        "seed": pairs[best][0],
        "object": pairs[best][1],
        "mean_ap": float(means[best]),
        "default_mean_ap": float(means[pairs.index((SEED_PROB, OBJECT_PROB))]),
        "argmax_mean_ap": float(means[-1]),
        "images": len(ds.items),
    }


def probability_tensor(seg: Segmenter, image: np.ndarray, precision: str, tta: bool = False):
    """(1, K, H, W) class probabilities of a whole image as ``predict`` makes them (overlap-tile
    above 2048 x 2048 pixels), contiguous: the object rules read it more than once."""
    probs = predict_semantic(
        seg, image, precision, tta, None, AUTO_OVERLAP, decide=class_probabilities
    )
    return torch.from_numpy(probs).permute(2, 0, 1)[None].contiguous()


def object_confidences(labels: np.ndarray, objectness: np.ndarray) -> np.ndarray:
    """Score of objects 1..labels.max(): their mean object probability (the ranking COCO AP needs)."""
    from scipy import ndimage

    n = int(labels.max())
    return (
        np.asarray(ndimage.mean(objectness, labels, np.arange(1, n + 1)), np.float64)
        if n
        else np.zeros(0)
    )


def label_image_coco_ap(
    pairs: list[tuple[np.ndarray, np.ndarray]], scores: list[np.ndarray]
) -> dict:
    """COCO mask AP, AP50, AP75 of predicted label images against reference ones (one class),
    each predicted object ranked by its score: the figure Mask R-CNN reports, for pipelines that
    make label images (U-Net + watershed). Empty when pycocotools is not installed."""
    if not has_pycocotools():
        return {}
    return coco_from_parts(
        [coco_parts(r, p, conf, i) for i, ((r, p), conf) in enumerate(zip(pairs, scores), 1)]
    )


def has_pycocotools() -> bool:
    try:
        import pycocotools  # noqa: F401
    except ImportError:
        return False
    return True


def coco_parts(
    reference: np.ndarray, prediction: np.ndarray, conf: np.ndarray, image_id: int
) -> dict:
    """One image's COCO entries, each object as RLE (compact, so that evaluation keeps these
    and not the label images): ``image``, ``annotations`` (ids given by :func:`coco_from_parts`)
    and ``results``; only ``objects`` beyond :data:`COCO_MAX_OBJECTS` in the image."""
    from pixelwise.data.coco import numbered_annotations

    most = max(int(reference.max(initial=0)), int(prediction.max(initial=0)))
    if most > COCO_MAX_OBJECTS:  # COCO AP ranks 100 detections: a figure of a few of them
        return {"objects": most}
    common = {"image_id": image_id, "category_id": 1}
    anns = [
        common | {"iscrowd": 0, "segmentation": a["segmentation"], "area": float(a["area"])}
        for _, a in numbered_annotations(reference)
    ]
    results = [
        common | {"score": float(conf[k - 1]), "segmentation": a["segmentation"]}
        for k, a in numbered_annotations(prediction)
    ]
    image = {"id": image_id, "height": reference.shape[0], "width": reference.shape[1]}
    return {"image": image, "annotations": anns, "results": results}


def coco_from_parts(parts: list[dict]) -> dict:
    """COCO mask AP, AP50, AP75 over the images' :func:`coco_parts`, or why there is none."""
    from pixelwise.metrics import coco_average_precision

    most = max((part.get("objects", 0) for part in parts), default=0)
    if most:
        return {
            "coco_mask_ap_skipped": f"up to {most} objects in one image; COCO AP counts at most "
            f"100 detections per image and is computed here up to {COCO_MAX_OBJECTS} objects"
        }
    anns = [a for part in parts for a in part["annotations"]]
    truth = {
        "images": [part["image"] for part in parts],
        "annotations": [a | {"id": i} for i, a in enumerate(anns, 1)],
        "categories": [{"id": 1, "name": "object"}],
    }
    results = [r for part in parts for r in part["results"]]
    ap = coco_average_precision(truth, results, ("segm",))["segm"]
    found = {"coco_mask_ap": ap["ap"], "coco_mask_ap50": ap["ap50"], "coco_mask_ap75": ap["ap75"]}
    if "every" in ap:  # an image of more than 100 objects: also the figure counting them all
        found["coco_mask_ap_every"] = ap["every"]
    return found


COCO_MAX_OBJECTS = 2000  # per image; beyond, coco_from_parts says why there is no figure


def instances_for_reference(target: np.ndarray, object_class: int) -> np.ndarray:
    """Reference objects of a semantic mask: 4-connected components of ``object_class``."""
    from scipy import ndimage

    return ndimage.label(target == object_class)[0]


def object_metrics(pairs: list, image_aps: list[float] | None = None) -> dict:
    """Object-level scores over (reference, predicted) instance label images, each pair given
    as the two images or as their :class:`~pixelwise.metrics.Overlaps`.

    ``dsb_mean_ap`` and ``ap50``: the DSB2018 score and its IoU 0.5 term, averaged over images
    (as Kaggle did); ``seg``: Cell Tracking Challenge SEG averaged over all reference objects;
    ``precision``/``recall``/``f1`` at IoU 0.5 from the pooled matches; ``v_rand``, ``v_info``:
    ISBI 2012's foreground-restricted scores, averaged over images; ``pq``, ``dq``, ``sq``
    (panoptic quality) and ``aji`` (Aggregated Jaccard Index), the nuclei papers' scores,
    averaged over images with objects; object counts. Given a list, ``image_aps`` receives each
    image's DSB2018 mean AP.
    """
    aps = [] if image_aps is None else image_aps
    ap50s, seg_sum, n_ref, tp, fp, fn, rand, info = [], 0.0, 0, 0, 0, 0, [], []
    n_pred, panoptic, aji = 0, [], []
    for pair in pairs:
        o = pair if isinstance(pair, Overlaps) else overlaps(*pair)  # one count for every score
        panoptic.append(panoptic_quality(o))
        aji.append(aggregated_jaccard(o))
        dsb = dsb_average_precision(o)
        aps.append(dsb["mean_ap"])
        ap50s.append(dsb["ap"][0.5])
        refs, preds = o.shape
        if refs:
            seg_sum += seg_score(o) * refs
            scores = rand_info_scores(o)
            rand.append(scores["v_rand"])
            info.append(scores["v_info"])
        n_ref += refs
        n_pred += preds
        matched = object_scores(o)
        tp, fp, fn = tp + matched["tp"], fp + matched["fp"], fn + matched["fn"]
    return {
        "dsb_mean_ap": float(np.mean(aps)),
        "ap50": float(np.mean(ap50s)),
        "seg": seg_sum / n_ref if n_ref else float("nan"),
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / (tp + fn) if tp + fn else float("nan"),
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0,
        "v_rand": float(np.mean(rand)) if rand else float("nan"),
        "v_info": float(np.mean(info)) if info else float("nan"),
        **{k: image_mean([p[k] for p in panoptic]) for k in ("pq", "dq", "sq")},
        "aji": image_mean(aji),
        "reference_objects": n_ref,
        "predicted_objects": n_pred,
    }


def evaluate_detector(seg: Segmenter, checkpoint, data, val_stems: list[str] | None) -> dict:
    """COCO box and mask AP, AP50, AP75 and the DSB2018 mean AP of an instance model."""
    items, cats, spec = evaluation_instances(data, val_stems)
    scores = score_detector(seg.network, items, cats, spec)
    return {
        "split": f"{data}" + (f" ({len(items)} listed stems)" if val_stems else ""),
        "images": len(items),
        "checkpoint": str(checkpoint),
        "detection": scores,
    }


def evaluate_predictions(
    predictions: str | Path,
    data: str | Path,
    val_stems: str | list[str] | None = None,
    object_class: int | None = None,
    min_size: int = 0,
    data_options: dict | None = None,
) -> dict:
    """The scores of masks some other run or tool predicted, a file per image named by its stem
    in the folder ``predictions`` (or in its ``masks/`` and ``instances/``, as `predict` and
    `segment` write them), against ``data`` (the images :func:`evaluate_checkpoint` would score).

    Class masks hold class ids 0..K-1 (as `predict` writes them) or the data's own stored values
    (e.g. 0/255), the data's classes as training reads them. For instance data (``instances/``
    label images), or with ``object_class``, the object scores are added: of instance label
    images (0 = background; those of ``instances/`` when there is one) as they are, of the class
    masks `predict` writes as `segment` makes objects of them (:func:`predicted_objects`). The
    pixel scores of label images for ``object_class`` of semantic data are those of that class
    against the rest (they hold no other class). COCO mask AP is not scored, as plain label
    images rank no object above another. Predicted objects under ``min_size`` pixels are
    dropped. ``data_options`` read the data's masks as training would (``class_names``,
    ``mask_values``, ``ignore_values``)."""
    root, stems = Path(data), parse_stems(val_stems)
    items, split = evaluation_items(root, stems)
    objects = bool(items) and holds_instance_labels(items[0])
    instances = "foreground" if objects else None
    cfg = TrainConfig(data=str(root), instances=instances, **(data_options or {}))
    cfg.check()
    info = read_dataset_info(root)
    ignore = info.ignored(cfg.ignore_values)
    names, values = resolve_classes(cfg, info, items, ignore)
    encoding = MaskEncoding(values, ignore, cfg.instances, cfg.soft_masks)
    folder = prediction_folder(Path(predictions), objects or object_class is not None)
    files = prediction_files(folder, items)
    head = {"split": split, "images": len(items), "predictions": str(folder)}
    if not objects and object_class is None:
        scores, failures = ImageScores(len(names)), []
        for item, path in zip(items, files):
            try:
                reference = item.read_mask()
                stored = read_prediction(path, reference.shape, len(names), names, item=item)
                target = encoding.apply(reference, len(names), item.mask)
                scores.add(predicted_ids(path, stored, encoding, len(names)), target)
            except ValueError as exc:  # scored no further: every bad file is named at the end
                failures.append(one_line(exc))
        if failures:
            raise unusable(failures, "prediction")
        return head | scores.summary(names) | {"per_image": image_rows(items, scores)}
    scores, pairs, names = predicted_object_scores(
        items, files, encoding, names, object_class, min_size
    )
    image_aps: list[float] = []
    objects = object_metrics(pairs, image_aps)
    rows = image_rows(items, scores, image_aps)
    return head | scores.summary(names) | {"objects": objects, "per_image": rows}


def predicted_object_scores(
    items: list, files: list[Path], encoding: MaskEncoding, names: list[str],
    object_class: int | None, min_size: int,
) -> tuple[ImageScores, list, list[str]]:  # fmt: skip
    """:func:`evaluate_predictions`' pixel scores and (reference, predicted) object pairs of
    instance data, or of ``object_class`` of semantic data, and the names of the classes scored
    (``object_class`` and the rest, when the predictions are label images of its objects)."""
    classes, semantic = len(names), encoding.instances is None
    label_images = semantic and not holds_class_ids(files[0])
    drawn = dict(names=names, objects=True, only=names[object_class] if semantic else None)
    if label_images:
        names = [f"not {names[object_class]}", names[object_class]]
    scores, pairs, failures = ImageScores(len(names)), [], []
    for item, path in zip(items, files):
        marked = holds_class_ids(path)
        try:
            if semantic and marked == label_images:
                raise ValueError(
                    f"{path}: a {'class mask' if marked else 'label image'} among "
                    f"{'label images' if marked else 'class masks'} ({files[0]}); score one "
                    "kind of prediction at a time"
                )
            reference = item.read_mask(instances=not semantic)
            stored = read_prediction(path, reference.shape[:2], classes, **drawn, item=item)
            target = encoding.apply(reference, classes, item.mask)
            labels = outside_ignored(
                predicted_objects(stored, marked, object_class, min_size), target == IGNORE_INDEX
            )
            ids = (
                None
                if label_images
                else predicted_ids(path, stored if marked else labels, encoding, classes)
            )
        except ValueError as exc:  # scored no further: every bad file is named at the end
            failures.append(one_line(exc))
            continue
        if not semantic:
            pairs.append(overlaps(reference, labels))
        else:
            pairs.append(overlaps(instances_for_reference(target, object_class), labels))
        if label_images:  # object_class against the rest
            target = np.where(target == IGNORE_INDEX, IGNORE_INDEX, target == object_class)
            scores.add((labels > 0).astype(np.int64), target)
        else:
            scores.add(ids, target)
    if failures:
        raise unusable(failures, "prediction")
    return scores, pairs, names


def outside_ignored(labels: np.ndarray, ignored: np.ndarray) -> np.ndarray:
    """The predicted objects of a label image but those with more than half their pixels where
    the reference is ``ignored`` (unannotated: an ``__ignore__`` or crowd region, a slide
    window's margin), relabelled 1..N: nobody said whether they are objects, so they are neither
    matched nor counted as false, as COCO evaluation leaves out detections on crowd regions."""
    if not ignored.any():
        return labels
    sizes = np.bincount(labels.ravel())
    under = np.bincount(labels[ignored], minlength=len(sizes))
    return kept_objects(labels, (sizes > 0) & (2 * under <= sizes))


def predicted_objects(
    stored: np.ndarray, marked: bool, object_class: int | None, min_size: int
) -> np.ndarray:
    """The objects of a predicted mask as a label image: an instance label image (as `segment`
    writes them, or another tool) as it is; a class mask `predict` wrote (``marked``:
    :func:`~pixelwise.data.io.holds_class_ids`) as `segment` makes objects of one: the
    connected regions of ``object_class``, or for instance data its interiors (1) grown into
    their borders (2), or without borders split by a watershed. Objects under ``min_size``
    pixels are dropped."""
    if not marked:
        return drop_small(stored, min_size) if min_size else stored
    if object_class is not None:
        return semantic_to_instances(
            stored, interior_class=object_class, min_size=min_size, fill_holes=False
        )
    if stored.max(initial=0) >= 2:
        return semantic_to_instances(stored, interior_class=1, border_class=2, min_size=min_size)
    return semantic_to_instances(stored, "watershed", interior_class=1, min_size=min_size)


def prediction_folder(path: Path, objects: bool) -> Path:
    """Where the predicted masks are: ``path``, or the ``masks/`` (class masks) or
    ``instances/`` (objects) that `predict` and `segment` write under their output folder; for
    objects without ``instances/`` (a semantic model's run), its ``masks/``, whose foreground
    is scored as objects; for classes without ``masks/`` (a `segment` run), its ``instances/``
    (never its ``overlays/``)."""
    if not path.is_dir():
        raise ValueError(f"{path}: no such folder of predicted masks")
    inner = ("instances", "masks") if objects else ("masks", "instances")
    inner += ("geojson",)  # predict/segment --geojson's polygons, when no masks were kept
    return next((path / name for name in inner if (path / name).is_dir()), path)


def prediction_files(folder: Path, items: list) -> list[Path]:
    """Each item's predicted mask in ``folder`` (by file stem, in any image format; a folder
    without images: GeoJSON files, as QuPath exports objects); every item must have one, and
    only one."""
    files = list_images([folder]) or sorted(folder.rglob("*.geojson"))
    return file_per_item(files, folder, items, "prediction", "as the images")


def file_per_item(
    files: list[Path], folder: Path, items: list, what: str, naming: str
) -> list[Path]:
    """The file among ``files`` (from ``folder``) of each item: by file stem, the item's name or
    its image file's own (as `predict` names outputs: Cityscapes' ``X_leftImg8bit``, a Cell
    Tracking Challenge frame's ``t000``, a stack's page ``stack-003``). An item with none, a
    name with two files, or a file that two items would share is a one-line error (``what`` the
    files are, ``naming`` how to name them); windows of one slide share the slide's."""
    by_stem: dict[str, list[Path]] = {}
    for path in files:
        by_stem.setdefault(path.stem, []).append(path)
    chosen: dict[Path, str] = {}
    slides: dict[Path, Path] = {}  # a file that windows share: their slide
    found, missing = [], []
    for item in items:
        path = item_file(item, by_stem, what)
        found.append(path)
        if path is None:
            missing.append(item.name)
        elif getattr(item, "window", None) is not None and slides.get(path) == item.image:
            continue
        elif path in chosen:
            raise ValueError(
                f"{path}: the only {what} for both {chosen[path]} and {item.name}, images of "
                "one name in different folders; choose the images to score with --val-stems, "
                "or predict them into one output folder that keeps their folders"
            )
        else:
            chosen[path] = item.name
            if getattr(item, "window", None) is not None:
                slides[path] = item.image
    if missing:
        have = [item.name for item, path in zip(items, found) if path is not None]
        listed = (
            f" (the {len(have)} with one: --val-stems {','.join(have)})"
            if 0 < len(have) <= 30
            else ""
        )
        raise ValueError(
            f"{folder}: no {what} for {len(missing)} of the {len(items)} images to score "
            f"({first_ten(missing, 'images')}); name them {naming}, or choose the images "
            f"with --val-stems{listed}"
        )
    return found


def item_file(item, by_stem: dict[str, list[Path]], what: str) -> Path | None:
    """:func:`file_per_item`'s file of one item, None when there is none; of two files with its
    name, the one in a folder named as its image's (``01/t000.png`` for ``01/t000.tif``)."""
    page = getattr(item, "image_page", None)
    # a window of a slide: the slide's, whose prediction is read in the window
    own = item.image.stem if page is None else page_name(item.image.stem, page)
    for name in dict.fromkeys((item.name, own)):
        found = by_stem.get(name, [])
        if len(found) > 1:
            beside = [p for p in found if p.parent.name == item.image.parent.name]
            if len(beside) != 1:
                raise ValueError(f"{' and '.join(map(str, found))}: two {what}s of one image")
            found = beside
        if found:
            return found[0]
    return None


def slide_window(item, path: Path) -> tuple[int, int, int, int] | None:
    """The window of its slide that an item is, when its prediction ``path`` is the whole
    slide's (named as the slide, not as the window): where to read it."""
    window = getattr(item, "window", None)
    return window if window is not None and Path(path).stem != item.name else None


def read_prediction(
    path: Path, shape: tuple[int, int], classes: int, names: list[str] | None = None,
    objects: bool = False, only: str | None = None, item=None,
) -> np.ndarray:  # fmt: skip
    """A predicted mask's stored values; it must have its image's size (``shape``). A cut-out
    (a PNG with transparency, as `remove-bg` writes it) gives class ids: foreground (1) where
    its alpha is at least 128, for data of two classes. A GeoJSON file is drawn at ``shape``
    (:func:`geojson_prediction`, the data's class ``names``). For an ``item`` that is a window
    of a slide, a file of the whole slide is read in that window (:func:`slide_window`)."""
    window = slide_window(item, path)
    if is_geojson(path):
        names = names or [f"class{k}" for k in range(classes)]  # as resolve_classes names them
        corner = (0, 0) if window is None else (window[2], window[0])
        return geojson_prediction(path, shape, names, objects, only, corner)
    if window is not None:
        return window_prediction(path, window)
    alpha = read_alpha(path)
    stored = None if alpha is None else (alpha >= 128).astype(np.uint8)
    if stored is not None and classes != 2:
        raise ValueError(
            f"{path}: a cut-out (its transparency is the foreground) scores data of background "
            f"and foreground, not {classes} classes"
        )
    stored = read_mask(path) if stored is None else stored
    if item is not None and drawn_as_stored(item.image, shape, stored.shape):
        stored = laid_as_stored(stored, item.image)  # predicted upright, annotated as stored
    if stored.shape != tuple(shape):
        raise ValueError(
            f"{path}: {stored.shape[1]} x {stored.shape[0]} pixels, its image {shape[1]} x {shape[0]}"
        )
    return stored


def is_geojson(path: Path) -> bool:
    return Path(path).suffix.lower() == ".geojson"


def window_prediction(path: Path, window: tuple) -> np.ndarray:
    """Window (y0, y1, x0, x1) of a slide's predicted mask or labels (``predict``/``segment``'s
    tiled TIFF of it, read region by region; another file read whole)."""
    from pixelwise.data.io import is_tiff
    from pixelwise.data.slide import TiffRegions

    y0, y1, x0, x1 = window

    def within(height: int, width: int) -> None:
        if y1 > height or x1 > width:
            raise ValueError(
                f"{path}: {width} x {height} pixels, smaller than its slide (a window of it "
                f"reaches x {x1}, y {y1})"
            )

    if is_tiff(path):
        with TiffRegions(path) as regions:
            within(*regions.shape)
            return regions.stored(y0, y1, x0, x1)
    stored = read_mask(path)
    within(*stored.shape[:2])
    return stored[y0:y1, x0:x1]


def geojson_prediction(
    path: Path, shape: tuple[int, int], names: list[str], objects: bool, only: str | None,
    corner: tuple[int, int] = (0, 0),
) -> np.ndarray:  # fmt: skip
    """A GeoJSON file of predicted regions or objects (`predict`/`segment --geojson`'s, QuPath's
    export) drawn at its image's size ``shape``, its Features in file order (a later one over
    an earlier): with ``objects``, a label image, each Feature one object (with ``only``, each
    of that class or unclassified); else class ids, each Feature its class's (by name among
    ``names``; an unclassified one, the foreground of data of two classes). ``corner``: (x, y)
    of the image's top left pixel in the file's coordinates (a window of a slide)."""
    from pixelwise.data.geojson import UNCLASSIFIED, cell_part
    from pixelwise.data.labelme import shifted
    from pixelwise.data.shapes import draw_shapes

    (h, w), (dx, dy) = shape, corner
    groups, boxes = geojson_groups(str(path), Path(path).stat().st_mtime_ns, cell_part())
    near = (boxes[:, 0] < dx + w) & (boxes[:, 2] > dx) & (boxes[:, 1] < dy + h) & (boxes[:, 3] > dy)
    out = np.zeros(shape, np.int64 if objects else np.uint8)
    count = 0
    for (group, label, parts), (x0, y0, x1, y1), seen in zip(groups, boxes, near):
        if objects and only is not None and label not in (only, UNCLASSIFIED):
            continue
        if objects:
            value = count + 1  # objects numbered as drawn
        elif label in names:
            value = names.index(label)
        elif label == UNCLASSIFIED and len(names) == 2:
            value = 1
        else:
            raise ValueError(
                f"{path}, feature {group}: class {label!r} is not one of the data's classes "
                f"({', '.join(names)})"
            )
        left, top = max(int(np.floor(x0)) - dx, 0), max(int(np.floor(y0)) - dy, 0)
        right, bottom = min(int(np.ceil(x1)) + 1 - dx, w), min(int(np.ceil(y1)) + 1 - dy, h)
        if seen and left < right and top < bottom:  # drawn in its box, when that meets the image
            local = tuple(shifted(part, left + dx, top + dy) for part in parts)
            drawn = draw_shapes(local, bottom - top, right - left) > 0
            if drawn.any():
                out[top:bottom, left:right][drawn] = value
                count += objects
    return out


@functools.lru_cache(maxsize=2)
def geojson_groups(path: str, stamp: int, cells: str) -> tuple[list[tuple], np.ndarray]:
    """The Features of a GeoJSON file with an area, each (number, class, shapes) as
    :func:`~pixelwise.data.labelme.outline` gives them, and their boxes (x0, y0, x1, y1), read
    once for the windows of a slide that share the file (``stamp``: its modification time;
    ``cells``: the outline of its cells read, :func:`~pixelwise.data.geojson.cell_part`). A
    region to ignore (a cell without the nucleus read) is no prediction: left out."""
    from pixelwise.data.geojson import read_geojson
    from pixelwise.data.labelme import IGNORE_LABEL, outline
    from pixelwise.data.shapes import extent

    groups: dict[int, tuple[str, list]] = {}
    for item in read_geojson(Path(path))["shapes"]:
        part = outline(item, f"{path}, feature {item['group_id']}")
        if part is not None and item["label"] != IGNORE_LABEL:
            groups.setdefault(item["group_id"], (item["label"], []))[1].append(part)
    found = [(group, label, parts) for group, (label, parts) in groups.items()]
    boxes = [np.array([extent(*part) for part in parts]) for _, _, parts in found]
    box = [(b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()) for b in boxes]
    return found, np.array(box, float).reshape(-1, 4)


def predicted_ids(
    path: Path, stored: np.ndarray, encoding: MaskEncoding, classes: int
) -> np.ndarray:
    """Class ids of a predicted mask stored as the data's masks are (its values among the
    data's stored values) or as class ids 0..classes-1 (as `predict` writes them, marked so:
    :func:`~pixelwise.data.io.holds_class_ids`); for data of objects (``encoding.instances``),
    a label image's objects are the foreground; with soft masks (``encoding.soft``) any values
    but class ids, each the class of the nearest data value. Values that are both are read as
    the data's, unless the file is marked or some are values the data leaves unscored (no
    prediction gives a pixel no class)."""
    if encoding.instances is not None:
        return (stored > 0).astype(np.int64)
    found = set(np.unique(stored).tolist())
    class_ids = found <= set(range(classes))
    if class_ids and (holds_class_ids(path) or is_geojson(path)):
        return stored.astype(np.int64)
    if encoding.soft and encoding.values is not None and not found <= set(range(classes)):
        return encoding.apply(stored, classes, path)  # soft as the data's: the nearest value's
    if encoding.values is not None and found <= set(encoding.values) | set(encoding.ignore_values):
        ignored = sorted(found & set(encoding.ignore_values))
        if not ignored:
            return encoding.apply(stored, classes, path)
        if not class_ids:
            raise ValueError(
                f"{path}: values {ignored[:10]} are ones the data's masks leave unscored, not "
                "classes; a predicted mask gives every pixel a class"
            )
    if class_ids:
        return stored.astype(np.int64)
    hint = ""
    if Path(path).suffix.lower() in (".jpg", ".jpeg"):
        hint = " (a JPEG's lossy compression changes the values at edges: save masks as PNG)"
    elif classes == 2:
        hint = (
            " (soft alpha, as remove-bg --mask-only writes it: --soft-masks reads each pixel as "
            "the nearer of the mask values)"
        )
    raise ValueError(
        f"{path}: values {sorted(found)[:10]} are neither class ids 0..{classes - 1} nor the "
        f"data's mask values ({', '.join(map(str, encoding.values or ())) or 'class ids'})" + hint
    )


def evaluate_results(
    results_file: str | Path,
    data: str | Path,
    val_stems: str | list[str] | None = None,
    score_threshold: float = 0.5,
) -> dict:
    """The scores :func:`evaluate_checkpoint` gives an instance model, for detections another
    tool wrote as a COCO results file (a list of ``image_id``, ``category_id``, ``score``,
    ``bbox`` and/or ``segmentation``, as Detectron2 or MMDetection write them) on a
    COCO dataset whose image and category ids they use: COCO box (and mask) AP of every result,
    and the DSB2018 mean AP, PQ and AJI of those scoring at least ``score_threshold``.
    ``results_file`` may also be a folder of such files, one per image named by its stem (as
    `predict` writes them for an instance model, :func:`results_by_stem`), for any instance
    data."""
    from pixelwise.data.coco import item_target
    from pixelwise.detection import detection_scores, reference_labels, results_labels

    path = Path(results_file)
    items, cats, spec = evaluation_instances(data, parse_stems(val_stems))
    if path.is_dir():
        results = results_by_stem(path, items)
    elif spec is None:
        raise ValueError(
            f"{path}: COCO results name images by the ids of a COCO file; {data} has none"
        )
    else:
        results = read_results(path)
        known = {im["id"] for im in spec["images"]}
        strangers = sorted({r["image_id"] for r in results} - known)
        if strangers:
            raise ValueError(f"{path}: image ids {strangers[:10]} are not in {data}'s COCO file")
    ids = {i.image_id for i in items}
    unknown = sorted({r["category_id"] for r in results} - set(cats.ids))
    if unknown:
        raise ValueError(f"{path}: category ids {unknown[:10]} are not {data}'s ({list(cats.ids)})")
    results = [r for r in results if r["image_id"] in ids]
    by_image: dict[int, list[dict]] = {}
    for r in results:
        by_image.setdefault(r["image_id"], []).append(r)

    def pairs_of(index: int, item) -> tuple[np.ndarray, np.ndarray]:
        reference = reference_labels(item_target(item, cats)["masks"])
        return reference, results_labels(by_image.get(item.image_id, []), item, score_threshold)

    scores = detection_scores(items, cats, spec, pairs_of, results)
    return {
        "split": f"{data}" + (f" ({len(items)} listed stems)" if val_stems else ""),
        "images": len(items),
        "results": str(path),
        "detection": scores,
    }


def results_folder(path: Path) -> Path | None:
    """The folder of per-image COCO results that `predict` writes for an instance model
    (``OUT/coco/<image>.json``) when ``path`` is that folder or ``OUT``; None for anything else
    (masks, label images)."""
    folder = path / "coco" if (path / "coco").is_dir() else path
    if not folder.is_dir() or list_images([folder]):
        return None
    return folder if any(folder.rglob("*.json")) else None


def results_by_stem(folder: Path, items: list) -> list[dict]:
    """The detections of a folder of per-image COCO results files (``<image stem>.json``, as
    `predict` writes them, whatever image ids they hold), given the ids of ``items``' images;
    every item must have its file."""
    files = file_per_item(
        sorted(folder.rglob("*.json")), folder, items, "results file", "<image stem>.json"
    )
    return [
        r | {"image_id": item.image_id}
        for item, path in zip(items, files)
        for r in read_results(path)
    ]


def read_results(path: Path) -> list[dict]:
    """A COCO results file: a JSON list of detections, each with ``image_id``, ``category_id``,
    ``score`` and a ``bbox`` or ``segmentation``."""
    import json

    try:
        results = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a COCO results file ({type(exc).__name__}: {exc})") from None
    needed = ("image_id", "category_id", "score")
    if not isinstance(results, list) or not all(
        isinstance(r, dict) and all(k in r for k in needed) and ("bbox" in r or "segmentation" in r)
        for r in results
    ):
        raise ValueError(
            f"{path}: not a COCO results file (a list of detections with image_id, category_id, "
            "score and bbox or segmentation)"
        )
    return results
