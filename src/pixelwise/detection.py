"""The instance-model adapter (Mask R-CNN): prediction, scoring and training steps behind the
same verbs as semantic models.

torchvision's contract is kept inside: a list of (C, H, W) float images in [0, 1] in, a list of
``{"boxes", "labels", "scores", "masks" (N, 1, H, W)}`` out. Everything here returns what the
verbs need: label images, class-id masks, COCO results, losses.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pixelwise.data import cityscapes
from pixelwise.data.coco import (
    Categories,
    InstanceDataset,
    InstanceItem,
    annotation_mask,
    as_outlined,
    check_outlined,
    has_outline,
    item_target,
    load_coco,
)
from pixelwise.data.encoding import to_unit
from pixelwise.data.layouts import (
    as_instance_items,
    evaluation_items,
    label_image_items,
    outline_instances,
    resolve_splits,
    split_pool,
)
from pixelwise.instances import drop_small
from pixelwise.metrics import (
    aggregated_jaccard,
    coco_average_precision,
    dsb_average_precision,
    image_mean,
    mean_interval,
    overlaps,
    panoptic_quality,
)
from pixelwise.segmenter import Segmenter


def image_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, C) uint8/uint16 image -> (3, H, W) float in [0, 1], as the detector expects."""
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return torch.from_numpy(np.ascontiguousarray(to_unit(image).transpose(2, 0, 1)))


@torch.inference_mode()
def detect(
    seg: Segmenter,
    image: np.ndarray,
    score_threshold: float = 0.5,
    max_detections: int | None = None,
    image_size: int | None = None,
) -> dict:
    """Detections above ``score_threshold`` for an (H, W, C) image: at most ``max_detections``
    (default: the checkpoint's), the image resized inside to shorter side ``image_size``
    (default: the checkpoint's). The shared network is left as it is (threads may share it)."""
    model = seg.network.eval()
    device = next(model.parameters()).device
    transform, heads = copy.copy(model.transform), copy.copy(model.roi_heads)
    if image_size:
        transform.min_size = (image_size,)
        transform.max_size = max(image_size, round(image_size * 1333 / 800))
    if max_detections:
        heads.detections_per_img = max_detections
    x = [image_tensor(image).to(device)]
    batch, _ = transform(x)
    features = model.backbone(batch.tensors)
    proposals, _ = model.rpn(batch, features)
    found, _ = heads(features, proposals, batch.image_sizes)
    pred = {
        k: v.cpu()
        for k, v in transform.postprocess(found, batch.image_sizes, [image.shape[:2]])[0].items()
    }
    keep = pred["scores"] >= score_threshold
    return {k: v[keep] for k, v in pred.items()}


def paint(
    prediction: dict, values: np.ndarray, score_threshold: float, mask_threshold: float, dtype
) -> np.ndarray:
    """An image where each detection's mask pixels hold its value; where detections overlap the
    higher score wins."""
    masks = prediction["masks"][:, 0].detach().cpu().numpy() > mask_threshold
    scores = prediction["scores"].detach().cpu().numpy()
    out = np.zeros(masks.shape[1:], dtype)
    for i in np.argsort(scores):  # ascending: the best is painted last
        if scores[i] >= score_threshold:
            out[masks[i]] = values[i]
    return out


def detections_to_labels(
    prediction: dict, score_threshold: float = 0.5, mask_threshold: float = 0.5, min_size: int = 0
) -> np.ndarray:
    """A prediction as a uint16 instance label image (0 = background, 1..N by rising score;
    objects under ``min_size`` pixels left out)."""
    ids = np.arange(1, len(prediction["scores"]) + 1)
    return drop_small(paint(prediction, ids, score_threshold, mask_threshold, np.uint16), min_size)


def detections_to_classes(
    prediction: dict, score_threshold: float = 0.5, mask_threshold: float = 0.5
) -> np.ndarray:
    """A prediction as a class-id mask (uint8; 0 = background, k = the model's class k)."""
    return paint(
        prediction, prediction["labels"].cpu().numpy(), score_threshold, mask_threshold, np.uint8
    )


def detections_to_coco(
    prediction: dict,
    image_id: int,
    categories: Categories,
    score_threshold: float = 0.0,
    mask_threshold: float = 0.5,
) -> list[dict]:
    """COCO result dicts (compressed RLE masks, xywh boxes, scores, real category ids)."""
    from pixelwise.data.coco import encode_rle

    out = []
    boxes = prediction["boxes"].detach().cpu().numpy()
    for i, score in enumerate(prediction["scores"].detach().cpu().tolist()):
        if score < score_threshold:
            continue
        x0, y0, x1, y1 = (float(v) for v in boxes[i])
        mask = prediction["masks"][i, 0].detach().cpu().numpy() > mask_threshold
        out.append(
            {
                "image_id": int(image_id),
                "category_id": int(categories.category(int(prediction["labels"][i]))),
                "score": float(score),
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "segmentation": encode_rle(mask),
            }
        )
    return out


def categories_of(seg: Segmenter) -> Categories:
    """The COCO categories a detection checkpoint was trained on."""
    return Categories(tuple(seg.encoding.values[1:]), tuple(seg.class_names[1:]))


def coco_file(path: Path) -> Path | None:
    """The COCO instances file ``data`` names: itself, or ``DATA/annotations.json``."""
    if path.is_file():
        return path
    return path / "annotations.json" if (path / "annotations.json").is_file() else None


def has_instances_folder(path: Path) -> bool:
    return (path / "images").is_dir() and (path / "instances").is_dir()


def instance_splits(
    data: str | Path, val_stems: list[str] | None, val_fraction: float, seed: int
) -> tuple[list[InstanceItem], list[InstanceItem], Categories, dict | None]:
    """Train and validation items, categories and (for COCO) the parsed JSON of an instance
    dataset: a COCO file, or label images in any layout the semantic models read
    (``images/`` + ``instances/``, train/val folders, Cell Tracking Challenge, a CSV, ...)."""
    path = Path(data)
    if cityscapes.label_folder(path) is not None:
        raise ValueError(
            f"{data}: Cityscapes' instance ids (*_instanceIds.png) are not read for instance "
            "models; semantic models train on its 19 classes"
        )
    outlined = outline_instances(path)
    if outlined is not None:
        return split_outlined(outlined, val_stems, val_fraction, seed, data)
    coco = coco_file(path)
    if coco is not None:
        items, cats, spec = load_coco(coco)
        check_outlined(spec.get("annotations"), coco)
        return *split_pool(items, val_stems, val_fraction, seed, data), cats, spec
    if has_instances_folder(path):
        items, cats = label_image_items(path)  # instances/, even with a masks/ beside it
        return *split_pool(items, val_stems, val_fraction, seed, data), cats, None
    train, val = resolve_splits(path, val_stems, val_fraction, seed)
    train_items, cats = as_instance_items(train)
    return train_items, as_instance_items(val, len(train) + 1)[0], cats, None


def split_outlined(
    outlined: tuple, val_stems: list[str] | None, val_fraction: float, seed: int, data
) -> tuple[list[InstanceItem], list[InstanceItem], Categories, dict]:
    """:func:`instance_splits` of a dataset of outlines (:func:`outline_instances`): its own
    train/val split, else the pool split by names or a seeded fraction."""
    splits, cats, spec = outlined
    if "val" in splits and not val_stems:
        return splits.get("train", []), splits["val"], cats, spec
    pool = [item for items in splits.values() for item in items]
    return *split_pool(pool, val_stems, val_fraction, seed, data), cats, spec


def evaluation_instances(
    data: str | Path, val_stems: list[str] | None
) -> tuple[list[InstanceItem], Categories, dict | None]:
    """The items of ``data`` to score: those named in ``val_stems``, else the validation split,
    else all."""
    path = Path(data)
    outlined = outline_instances(path)
    if outlined is not None and not val_stems:
        splits, cats, spec = outlined
        return splits.get("val") or splits.get("train") or splits[""], cats, spec
    if outlined is not None:  # read once: the named images of the whole pool
        _, val, cats, spec = split_outlined(outlined, val_stems, 0.0, 0, data)
        return val, cats, spec
    if coco_file(path) is None and not has_instances_folder(path):
        items, cats = as_instance_items(evaluation_items(path, val_stems)[0])
        return items, cats, None
    train, val, cats, spec = instance_splits(data, val_stems, 0.0, 0)
    return (val if val_stems else train), cats, spec


def as_segmented(ann: dict, height: int, width: int) -> dict:
    """An annotation as pycocotools reads it: LabelMe's ``shapes`` drawn into an RLE
    ``segmentation``; others as they are."""
    if not ann.get("shapes"):
        return ann
    from pixelwise.data.coco import annotation_mask, encode_rle

    mask = annotation_mask(ann, height, width)
    return {k: v for k, v in ann.items() if k != "shapes"} | {"segmentation": encode_rle(mask)}


def ground_truth_json(items: list[InstanceItem], cats: Categories, spec: dict | None) -> dict:
    """COCO ground truth for ``items`` (from the file when COCO, built from label images otherwise).
    From a file: the images' sizes as read and ``iscrowd`` 0 where not given (labelling tools
    leave both out); an object given by its box alone is an ignored (crowd) region."""
    from pixelwise.data.coco import encode_rle

    ids = {i.image_id for i in items}
    if spec is not None:
        sizes = {i.image_id: {"height": i.height, "width": i.width} for i in items}
        return {
            "images": [im | sizes[im["id"]] for im in spec["images"] if im["id"] in ids],
            "annotations": [
                {"iscrowd": 0} | as_segmented(outlined, **sizes[a["image_id"]])
                for a in spec.get("annotations", [])
                if a["image_id"] in ids and (outlined := as_outlined(a)) is not None
            ],
            "categories": spec["categories"],
        }
    images, anns = [], []
    for item in items:
        images.append(
            {
                "id": item.image_id,
                "file_name": item.image.name,
                "height": item.height,
                "width": item.width,
            }
        )
        target = item_target(item, cats)
        for mask, box in zip(target["masks"], target["boxes"]):
            x0, y0, x1, y1 = (float(v) for v in box)
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": item.image_id,
                    "category_id": 1,
                    "iscrowd": 0,
                    "segmentation": encode_rle(mask),
                    "area": float(mask.sum()),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                }
            )
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": cats.names[0]}]}


@torch.no_grad()
def score_detector(
    model: nn.Module,
    items: list[InstanceItem],
    cats: Categories,
    spec: dict | None,
    score_threshold: float = 0.5,
) -> dict:
    """COCO box/mask AP (all detections), and the DSB2018 mean AP, panoptic quality and AJI of
    the label images made from detections above ``score_threshold`` (means over images), over
    ``items``. Runs on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    ds = InstanceDataset(items, cats)
    results: list[dict] = []

    def pairs_of(index: int, item: InstanceItem) -> tuple[np.ndarray, np.ndarray]:
        image, target = ds[index]
        pred = {k: v.cpu() for k, v in model([image.to(device)])[0].items()}
        results.extend(detections_to_coco(pred, item.image_id, cats))
        return reference_labels(target["masks"].numpy()), detections_to_labels(
            pred, score_threshold
        )

    return detection_scores(items, cats, spec, pairs_of, results)


def reference_labels(masks: np.ndarray) -> np.ndarray:
    """The label image (0 background, objects 1..N) of a target's (N, H, W) masks."""
    reference = np.zeros(masks.shape[1:], np.int32)
    for k, m in enumerate(masks, start=1):
        reference[m > 0] = k
    return reference


def detection_scores(
    items: list[InstanceItem], cats: Categories, spec: dict | None, pairs_of, results: list[dict]
) -> dict:
    """The scores of :func:`score_detector` for detections given as each item's (reference,
    predicted) label images (``pairs_of(index, item)``, objects above the score threshold) and
    as COCO ``results`` (complete once every item's pair is made)."""
    dsb, pq, aji = [], [], []
    for index, item in enumerate(items):
        met = overlaps(*pairs_of(index, item))
        dsb.append(dsb_average_precision(met)["mean_ap"])
        pq.append(panoptic_quality(met)["pq"])
        aji.append(aggregated_jaccard(met))
    segmented = any(has_outline(r) for r in results) or not results
    types = ("bbox", "segm") if segmented else ("bbox",)  # boxes alone: no mask scores
    ap = coco_average_precision(ground_truth_json(items, cats, spec), results, types)
    masks = ap.get("segm", {"ap": None, "ap50": None, "ap75": None})
    every = {"mask_ap_every": masks["every"]["ap"]} if "every" in masks else {}
    interval = mean_interval(dsb) if segmented else None
    every |= {} if interval is None else {"dsb_mean_ap_interval": interval}
    return every | {
        "mask_ap": masks["ap"],
        "mask_ap50": masks["ap50"],
        "mask_ap75": masks["ap75"],
        "box_ap": ap["bbox"]["ap"],
        "box_ap50": ap["bbox"]["ap50"],
        "dsb_mean_ap": float(np.mean(dsb)) if segmented else None,
        "pq": image_mean(pq) if segmented else None,
        "aji": image_mean(aji) if segmented else None,
    }


def results_labels(results: list[dict], item: InstanceItem, score_threshold: float) -> np.ndarray:
    """The label image of an item's COCO ``results`` above ``score_threshold`` (1..N by rising
    score; where they overlap the higher score wins, as :func:`detections_to_labels`)."""
    mine = sorted((r for r in results if r["score"] >= score_threshold), key=lambda r: r["score"])
    labels = np.zeros((item.height, item.width), np.int32)
    for k, r in enumerate(mine, start=1):
        labels[annotation_mask(r, item.height, item.width) > 0] = k
    return drop_small(labels)


def draw_seed(seed: int, epoch: int, draw: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, draw]).generate_state(1)[0])


def detection_step(
    model: nn.Module, batch, device: torch.device, seed: int, epoch: int
) -> tuple[float, int]:
    """Forward and backward of this process's share of a global batch, one image at a time.

    Each image's losses are computed alone, with torch's random sampling (anchors, proposals)
    seeded by its draw, and divided by the number of images in the share: the gradients then
    do not depend on how the batch is split among processes (DDP averages the shares, which are
    equal). Returns the summed loss and the number of images."""
    import contextlib

    images, targets = batch
    total = 0.0
    for i, (image, target) in enumerate(zip(images, targets)):
        target = dict(target)
        torch.manual_seed(draw_seed(seed, epoch, int(target.pop("draw"))))
        last = i == len(images) - 1
        sync = (
            contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()
        )
        with sync:
            losses = model([image.to(device)], [{k: v.to(device) for k, v in target.items()}])
            loss = sum(losses.values())
            (loss / len(images)).backward()
        total += loss.item()
    return total, len(images)
