"""Prediction: numeric precision choice, whole-image prediction, coloured overlays, batch files."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from pixelwise.checkpoint import Segmenter
from pixelwise.data.datasets import match_channels, to_tensor
from pixelwise.data.transforms import resize_image, resize_mask, scaled_size
from pixelwise.data.io import ImageReadError, list_images, read_image, save_mask, save_png

PRECISIONS = ("auto", "bf16", "fp32")


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """``auto`` means bf16 where the hardware runs it natively (AVX512-BF16/AMX CPUs, CUDA), else fp32.

    bf16 autocast with channels_last measured 2.6x faster than fp32 for U-Net inference on
    this project's CPUs (see benchmarks/); fp32 stays available for exact comparisons.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    if torch.device(device).type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"


def autocast(precision: str, device: torch.device | str = "cpu") -> contextlib.AbstractContextManager:
    """The autocast context for a resolved precision (a no-op for fp32)."""
    device_type = torch.device(device).type
    if precision == "bf16":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def memory_format(precision: str) -> torch.memory_format:
    """channels_last pays off with oneDNN's bf16 kernels; fp32 keeps the default layout."""
    return torch.channels_last if precision == "bf16" else torch.contiguous_format


_PREPARE_LOCK = threading.Lock()


def prepare(network: nn.Module, fmt: torch.memory_format) -> None:
    """Eval mode and the weights' memory format, converted once per format and under a lock:
    converting reassigns every parameter, which must not happen while another thread (an
    HTTP worker) runs the same network."""
    with _PREPARE_LOCK:
        if network.training:
            network.eval()
        if getattr(network, "_pixelwise_memory_format", None) != fmt:
            network.to(memory_format=fmt)
            network._pixelwise_memory_format = fmt


@torch.inference_mode()
def predict_logits(network: nn.Module, x: torch.Tensor, precision: str = "auto") -> torch.Tensor:
    """(N, C, H, W) normalised input -> float32 logits (N, K, H, W), network in eval mode.

    Networks whose ``forward`` returns a smaller output (the original U-Net) provide
    ``forward_full``, which is used instead.
    """
    precision = resolve_precision(precision, x.device)
    fmt = memory_format(precision)
    prepare(network, fmt)
    forward = getattr(network, "forward_full", network)
    with autocast(precision, x.device):
        return forward(x.contiguous(memory_format=fmt)).float()


@torch.inference_mode()
def predict_probs(network: nn.Module, x: torch.Tensor, precision: str = "auto", tta: bool = False,
                  scale: float = 1.0) -> torch.Tensor:
    """Class probabilities (N, K, H, W) at the input's resolution.

    ``tta``: the mean over the 8 flips/rotations of the input (each mapped back first).
    ``scale``: run the network on the input resized by this factor (models trained at reduced
    resolution), then resize the probabilities back bilinearly.
    """
    size = x.shape[-2:]
    if scale != 1.0:
        x = F.interpolate(x, scale_factor=scale, mode="bilinear", antialias=True, align_corners=False)
    if not tta:
        probs = predict_logits(network, x, precision).softmax(1)
    else:
        probs = torch.zeros(())
        for k in range(4):
            for flip in (False, True):
                t = torch.rot90(x, k, (2, 3))
                p = predict_logits(network, t.flip(3) if flip else t, precision).softmax(1)
                probs = probs + torch.rot90(p.flip(3) if flip else p, -k, (2, 3)) / 8
    if probs.shape[-2:] != size:
        probs = F.interpolate(probs, size=size, mode="bilinear", align_corners=False)
    return probs


AUTO_TILE_PIXELS = 2048 * 2048  # larger images are predicted tile by tile
AUTO_TILE, AUTO_OVERLAP = 1024, 64


def tile_starts(size: int, core: int) -> list[int]:
    """Start offsets of cores of length ``core`` covering ``size``; the last is shifted back to end at ``size``."""
    if size <= core:
        return [0]
    starts = list(range(0, size - core, core))
    return starts + [size - core]


def predict_tiled(network: nn.Module, image: np.ndarray, norm, tile: int = AUTO_TILE, overlap: int = AUTO_OVERLAP,
                  precision: str = "auto", tta: bool = False, batch_size: int = 4) -> np.ndarray:
    """Overlap-tile prediction of an (H, W, C) image: class-id mask (H, W) uint8.

    The image is mirror-extended by ``overlap`` on every side; tiles of ``tile`` x ``tile``
    pixels are predicted in batches and only each tile's central ``tile - 2 * overlap`` core
    is kept, so every output pixel comes from one tile that saw ``overlap`` pixels of context
    around it (no seams when the model's receptive field fits in the overlap). Memory is
    bounded by the tile batch and the uint8 output.
    """
    core = tile - 2 * overlap
    if core < 1:
        raise ValueError(f"tile {tile} must be larger than twice the overlap {overlap}")
    h, w = image.shape[:2]
    core_h, core_w = min(core, h), min(core, w)
    mode = "reflect" if overlap < min(h, w) else "symmetric"
    padded = np.pad(image, ((overlap, overlap), (overlap, overlap), (0, 0)), mode=mode)
    origins = [(y, x) for y in tile_starts(h, core_h) for x in tile_starts(w, core_w)]
    mask = np.zeros((h, w), dtype=np.uint8)
    for i in range(0, len(origins), batch_size):
        batch = origins[i : i + batch_size]
        x = torch.stack([to_tensor(padded[y : y + core_h + 2 * overlap, x0 : x0 + core_w + 2 * overlap], norm)
                         for y, x0 in batch])
        pred = predict_probs(network, x, precision, tta).argmax(1).to(torch.uint8).numpy()
        for (y, x0), p in zip(batch, pred):
            mask[y : y + core_h, x0 : x0 + core_w] = p[overlap : overlap + core_h, overlap : overlap + core_w]
    return mask


def predict(seg: Segmenter, image: np.ndarray | str | os.PathLike, precision: str = "auto", tta: bool = False,
            tile: int | None = None, overlap: int = AUTO_OVERLAP) -> np.ndarray:
    """Class-id mask (H, W) uint8 for an (H, W, C) image array or an image file path.

    ``tile``: predict by overlap-tile with tiles of this size (see :func:`predict_tiled`);
    ``None`` tiles automatically above 2048 x 2048 pixels, 0 never tiles.
    """
    if not isinstance(image, np.ndarray):
        image = read_image(image)
    if image.ndim == 2:
        image = image[..., None]
    image = match_channels(image, seg.in_channels)
    if tile is None:
        tile = AUTO_TILE if image.shape[0] * image.shape[1] > AUTO_TILE_PIXELS else 0
    if not tile:
        x = to_tensor(image, seg.norm).unsqueeze(0)
        return predict_probs(seg.network, x, precision, tta, seg.input_scale).argmax(1)[0].to(torch.uint8).numpy()
    h, w = image.shape[:2]
    if seg.input_scale != 1.0:  # tile at the network's resolution, then nearest-upsample the mask
        image = resize_image(image, scaled_size(image.shape, seg.input_scale))
    mask = predict_tiled(seg.network, image, seg.norm, tile, overlap, precision, tta)
    return mask if mask.shape == (h, w) else resize_mask(mask, (h, w))


def overlay(image: np.ndarray, mask: np.ndarray, palette: np.ndarray, alpha: float = 0.45) -> Image.Image:
    """Blend class colours over an (H, W, C) image; class 0 (background) stays uncoloured."""
    base = image if image.dtype == np.uint8 else (image / max(int(image.max()), 1) * 255).astype(np.uint8)
    if base.shape[-1] == 1:
        base = np.repeat(base, 3, axis=-1)
    colour = palette[mask.astype(np.intp)].astype(np.float32)
    blend = np.where((mask > 0)[..., None], (1 - alpha) * base + alpha * colour, base)
    return Image.fromarray(blend.round().astype(np.uint8), mode="RGB")


@dataclass
class BatchResult:
    written: list[Path] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)
    counts: list[tuple[Path, int]] = field(default_factory=list)  # objects per image (segment)
    skipped: int = 0  # inputs left alone (e.g. their output exists)

    def fail(self, src: Path, exc: Exception) -> None:
        """Record a bad input with a one-line reason that names the file."""
        self.failures.append((src, str(exc) if str(src) in str(exc) else f"{src}: {exc}"))

    @classmethod
    def merge(cls, parts: list[BatchResult]) -> BatchResult:
        lists = ([x for part in parts for x in getattr(part, name)] for name in ("written", "failures", "counts"))
        return cls(*lists, skipped=sum(part.skipped for part in parts))


def output_names(inputs: list[str | os.PathLike]) -> Iterator[tuple[Path, Path]]:
    """Each image file with its output-relative path: folders keep their inner structure."""
    for p in map(Path, inputs):
        if p.is_dir():
            for f in list_images([p]):
                yield f, f.relative_to(p).with_suffix(".png")
        else:
            yield p, Path(p.stem + ".png")


def run_batch(inputs: list[str | os.PathLike], compute, write, desc: str, progress: bool = True,
              shard: tuple[int, int] = (0, 1), skip=None) -> BatchResult:
    """The loop of every file command: for each image under ``inputs`` (this process's
    ``shard=(rank, world)`` share: every world-th, from rank), ``compute(src)`` runs inside the
    bad-file guard (unreadable files and ValueErrors are recorded, the batch goes on), then
    ``write(src, rel, value)`` writes the outputs and returns (main output path, object count
    or None). ``skip(rel)`` true leaves an input alone. A progress bar shows the current file."""
    from tqdm import tqdm

    result = BatchResult()
    bar = tqdm(list(output_names(inputs))[shard[0] :: shard[1]], desc=desc, unit="img", disable=not progress)
    for src, rel in bar:
        bar.set_postfix_str(src.name)
        if skip is not None and skip(rel):
            result.skipped += 1
            continue
        try:
            value = compute(src)
        except (ImageReadError, ValueError) as exc:
            result.fail(src, exc)
            continue
        path, count = write(src, rel, value)
        result.written.append(path)
        if count is not None:
            result.counts.append((src, count))
    return result


def predict_files(
    seg: Segmenter,
    inputs: list[str | os.PathLike],
    out_dir: str | os.PathLike,
    precision: str = "auto",
    progress: bool = True,
    tta: bool = False,
    tile: int | None = None,
    overlap: int = AUTO_OVERLAP,
    shard: tuple[int, int] = (0, 1),
) -> BatchResult:
    """Write ``out/masks/<name>.png`` (palette PNG of class ids) and ``out/overlays/<name>.png``
    for every image; bad files are recorded and skipped. ``shard=(rank, world)`` processes
    only every world-th input starting at rank (the inputs are split among processes)."""
    out_dir, palette = Path(out_dir), seg.palette()

    def compute(src):
        image = read_image(src)
        return image, predict(seg, image, precision, tta, tile, overlap)

    def write(src, rel, value):
        image, mask = value
        save_mask(out_dir / "masks" / rel, mask, palette)
        save_png(out_dir / "overlays" / rel, overlay(image, mask, palette))
        return out_dir / "masks" / rel, None

    return run_batch(inputs, compute, write, "predict", progress, shard)


def semantic_to_instances(mask: np.ndarray, method: str = "components", interior_class: int = 1,
                          border_class: int | None = None, min_size: int = 0, fill_holes: bool = True,
                          min_distance: int = 5) -> np.ndarray:
    """Turn a class-id mask into a uint16 instance label image (0 = background, 1..N objects).

    - ``border_class`` given (3-class background / interior / border prediction): each
      connected interior region is one object, grown into the adjacent border pixels by a
      marker watershed on the distance to the interiors.
    - ``method="components"``: connected components of ``mask == interior_class``.
    - ``method="watershed"``: touching objects split by a marker watershed on the distance
      transform, markers at its local maxima at least ``min_distance`` apart.

    Holes inside objects are filled (``fill_holes``) and objects under ``min_size`` pixels dropped.
    """
    from scipy import ndimage
    from skimage.feature import peak_local_max
    from skimage.segmentation import relabel_sequential, watershed

    if method not in ("components", "watershed"):
        raise ValueError(f"unknown method {method!r}; choose components or watershed")
    interior = mask == interior_class
    if fill_holes:
        interior = ndimage.binary_fill_holes(interior)
    if border_class is not None:
        markers, _ = ndimage.label(interior)
        region = interior | (mask == border_class)
        labels = watershed(ndimage.distance_transform_edt(~interior), markers, mask=region)
    elif method == "components":
        labels, _ = ndimage.label(interior)
    else:
        distance = ndimage.distance_transform_edt(interior)
        components, _ = ndimage.label(interior)
        peaks = peak_local_max(distance, min_distance=min_distance, labels=components, exclude_border=False)
        markers = np.zeros(mask.shape, dtype=np.int32)
        markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
        labels = watershed(-distance, markers, mask=interior)
    if min_size > 0:
        sizes = np.bincount(labels.ravel())
        labels[sizes[labels] < min_size] = 0
    return relabel_sequential(labels)[0].astype(np.uint16)


def instances_for(seg: Segmenter, mask: np.ndarray, object_class: int | None = None, min_size: int = 0) -> np.ndarray:
    """The instance labels a checkpoint's class mask stands for: models trained on instance
    masks with ``boundary`` targets split objects at their predicted borders, ``foreground``
    models by a distance-transform watershed; other models give the connected components of
    ``object_class``."""
    kind = seg.encoding.instances
    if kind == "boundary":
        return semantic_to_instances(mask, interior_class=1, border_class=2, min_size=min_size)
    if kind == "foreground":
        return semantic_to_instances(mask, "watershed", interior_class=1, min_size=min_size)
    if object_class is None:
        raise ValueError("this model was not trained on instance masks; name the object class (--object-class)")
    return semantic_to_instances(mask, interior_class=object_class, min_size=min_size, fill_holes=False)


def segment(seg: Segmenter | str | os.PathLike, image: np.ndarray | str | os.PathLike, precision: str = "auto",
            min_size: int = 0, object_class: int | None = None, tile: int | None = None) -> np.ndarray:
    """Instance labels (H, W) uint16 (0 = background, 1..N objects) for an image array or path,
    from a checkpoint trained on instances (or a bundled name such as ``"nuclei"``); see
    :func:`instances_for`."""
    if not isinstance(seg, Segmenter):
        from pixelwise.checkpoint import load_model

        seg = load_model(seg)
    return instances_for(seg, predict(seg, image, precision, tile=tile), object_class, min_size)


def instance_overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.45) -> Image.Image:
    """Each object in its own colour (fixed by its id) with a white outline."""
    from skimage.segmentation import find_boundaries

    palette = np.random.default_rng(0).integers(40, 256, (int(labels.max()) + 1, 3)).astype(np.uint8)
    palette[0] = 0
    ids = labels.astype(np.intp)
    shown = np.asarray(overlay(image, np.minimum(ids, 1), np.zeros((256, 3), np.uint8), alpha=0.0)).copy()
    blend = np.where((ids > 0)[..., None], (1 - alpha) * shown + alpha * palette[ids], shown)
    blend[find_boundaries(labels, mode="inner")] = 255
    return Image.fromarray(blend.round().astype(np.uint8), mode="RGB")


def segment_files(
    seg: Segmenter,
    inputs: list[str | os.PathLike],
    out_dir: str | os.PathLike,
    precision: str = "auto",
    progress: bool = True,
    min_size: int = 0,
    object_class: int | None = None,
    tile: int | None = None,
    overlap: int = AUTO_OVERLAP,
    shard: tuple[int, int] = (0, 1),
) -> BatchResult:
    """Write ``out/instances/<name>.png`` (uint16 instance labels, 0 = background) and
    ``out/overlays/<name>.png`` for every image; bad files are recorded and skipped.
    ``shard`` as in :func:`predict_files`."""
    from pixelwise.data.io import save_label_image

    out_dir = Path(out_dir)

    def compute(src):
        image = read_image(src)
        return image, instances_for(seg, predict(seg, image, precision, tile=tile, overlap=overlap), object_class, min_size)

    def write(src, rel, value):
        image, labels = value
        save_label_image(out_dir / "instances" / rel, labels)
        save_png(out_dir / "overlays" / rel, instance_overlay(image, labels))
        return out_dir / "instances" / rel, int(labels.max())

    return run_batch(inputs, compute, write, "segment", progress, shard)


def detections_to_labels(prediction: dict, score_threshold: float = 0.5, mask_threshold: float = 0.5) -> np.ndarray:
    """A Mask R-CNN prediction (``masks`` (N, 1, H, W) probabilities, ``scores``) as a uint16
    instance label image; where objects overlap the higher score wins."""
    masks = prediction["masks"][:, 0].detach().cpu().numpy() > mask_threshold
    scores = prediction["scores"].detach().cpu().numpy()
    labels = np.zeros(masks.shape[1:], np.uint16)
    keep = [i for i in np.argsort(scores) if scores[i] >= score_threshold]  # ascending: best painted last
    for rank, i in enumerate(keep, start=1):
        labels[masks[i]] = rank
    from skimage.segmentation import relabel_sequential

    return relabel_sequential(labels)[0].astype(np.uint16)


def detections_to_coco(prediction: dict, image_id: int, categories, score_threshold: float = 0.0,
                       mask_threshold: float = 0.5) -> list[dict]:
    """COCO result dicts (compressed RLE masks, xywh boxes, scores, real category ids)."""
    from pixelwise.data.coco import encode_rle

    out = []
    boxes = prediction["boxes"].detach().cpu().numpy()
    for i, score in enumerate(prediction["scores"].detach().cpu().tolist()):
        if score < score_threshold:
            continue
        x0, y0, x1, y1 = (float(v) for v in boxes[i])
        mask = prediction["masks"][i, 0].detach().cpu().numpy() > mask_threshold
        out.append({"image_id": int(image_id), "category_id": int(categories.category(int(prediction["labels"][i]))),
                    "score": float(score), "bbox": [x0, y0, x1 - x0, y1 - y0], "segmentation": encode_rle(mask)})
    return out


def detection_overlay(image: np.ndarray, prediction: dict, class_names: list[str], labels: np.ndarray,
                      alpha: float = 0.45) -> Image.Image:
    """Instance colours, boxes, class names and scores drawn over an image."""
    from PIL import ImageDraw

    shown = instance_overlay(image, labels, alpha)
    draw = ImageDraw.Draw(shown)
    for box, label, score in zip(prediction["boxes"].tolist(), prediction["labels"].tolist(), prediction["scores"].tolist()):
        draw.rectangle(box, outline=(255, 255, 0), width=2)
        draw.text((box[0] + 2, box[1] + 1), f"{class_names[label]} {score:.2f}", fill=(255, 255, 0))
    return shown


@torch.inference_mode()
def detect(seg: Segmenter, image: np.ndarray, score_threshold: float = 0.5, max_detections: int = 100,
           image_size: int | None = None) -> dict:
    """Mask R-CNN detections above ``score_threshold`` (best ``max_detections``) for an (H, W, C) image."""
    model = seg.network.eval()
    if image_size:
        model.transform.min_size = (image_size,)
        model.transform.max_size = max(image_size, round(image_size * 1333 / 800))
    model.roi_heads.detections_per_img = max_detections
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() / (65535.0 if image.dtype == np.uint16 else 255.0)
    pred = model([x])[0]
    keep = pred["scores"] >= score_threshold
    return {k: v[keep] for k, v in pred.items()}


def predict_detection_files(seg: Segmenter, inputs: list[str | os.PathLike], out_dir: str | os.PathLike,
                            progress: bool = True, score_threshold: float = 0.5, max_detections: int = 100,
                            image_size: int | None = None, shard: tuple[int, int] = (0, 1)) -> BatchResult:
    """Per image: ``instances/<name>.png`` (uint16 labels), ``coco/<name>.json`` (COCO results
    with RLE masks; ``image_id`` 0, category ids as trained) and ``overlays/<name>.png``."""
    import json

    from pixelwise.data.coco import Categories
    from pixelwise.data.io import atomic_write_bytes, save_label_image

    cats = Categories(tuple(seg.encoding.values[1:]), tuple(seg.class_names[1:]))
    out_dir = Path(out_dir)

    def compute(src):
        image = read_image(src)
        return image, detect(seg, image, score_threshold, max_detections, image_size)

    def write(src, rel, value):
        image, pred = value
        labels = detections_to_labels(pred, score_threshold)
        save_label_image(out_dir / "instances" / rel, labels)
        atomic_write_bytes(out_dir / "coco" / rel.with_suffix(".json"),
                           json.dumps(detections_to_coco(pred, 0, cats)).encode())
        save_png(out_dir / "overlays" / rel, detection_overlay(image, pred, seg.class_names, labels))
        return out_dir / "instances" / rel, int(labels.max())

    return run_batch(inputs, compute, write, "predict", progress, shard)
