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
from pixelwise.constants import (
    AUTO_OVERLAP,
    AUTO_TILE,
    AUTO_TILE_PIXELS,
    IGNORE_INDEX,
    counted,
    each_readable,
    parse_stems,
)
from pixelwise.data.calibration import pixel_size_um
from pixelwise.data.datasets import SegmentationDataset
from pixelwise.data.encoding import MaskEncoding
from pixelwise.data.layouts import (
    black_and_white,
    evaluation_items,
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
    instances_for,
    kept_objects,
    with_thresholds,
)
from pixelwise.metrics import (
    ConfusionMatrix,
    ImageScores,
    Overlaps,
    aggregated_jaccard,
    dsb_average_precision,
    image_mean,
    mean_interval,
    object_scores,
    overlaps,
    panoptic_quality,
    rand_info_scores,
    seg_score,
)
from pixelwise.runtime import is_onnx_file, resolve_precision, torch_path
from pixelwise.segmenter import Segmenter
from pixelwise.semantic import soft_black_and_white


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
    for _, seg, image, target in readable_pairs(ds, models, progress):
        scores.add(predict_semantic(seg, image, precision, tta, None, AUTO_OVERLAP), target)


def readable_pairs(ds: SegmentationDataset, models: list[Segmenter], progress: bool):
    """(index, model, image, target) of each pair of ``ds`` with its model of ``models``;
    pairs that cannot be read are named together at the end, the rest no longer predicted
    (:func:`~pixelwise.constants.each_readable`)."""
    read = lambda i, _: ds.load(i)  # noqa: E731
    for i, seg, (image, target) in each_readable(each_image(models, progress), read, "pair"):
        yield i, seg, image, target


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
    for i, seg, image, target in readable_pairs(ds, models, progress):
        item = ds.items[i]
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
    interval = mean_interval(aps)
    return {
        "dsb_mean_ap": float(np.mean(aps)),
        **({} if interval is None else {"dsb_mean_ap_interval": interval}),
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
