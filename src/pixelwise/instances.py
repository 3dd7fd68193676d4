"""From a class-id mask to objects: connected components, marker watershed, predicted borders."""

from __future__ import annotations

import functools

import numpy as np
import torch

from pixelwise.overlays import row_bands
from pixelwise.segmenter import Segmenter

# How a boundary model's probabilities (background / interior / border) become objects: a seed
# where the interior probability exceeds SEED_PROB, the object wherever the background probability
# is under 1 - OBJECT_PROB. Chosen for the bundled nuclei model on the DSB2018 validation ids by
# recipes/nuclei_thresholds.py (docs/results.md (j)): the argmax of the three classes made
# objects too wide and merged touching nuclei (DSB mean AP 0.443 with it, 0.517 with these).
SEED_PROB = 0.8
OBJECT_PROB = 0.85


def boundary_codes(
    probs: torch.Tensor, seed_prob: float = SEED_PROB, object_prob: float = OBJECT_PROB
) -> torch.Tensor:
    """(N, 3, H, W) probabilities of a boundary model -> (N, H, W) uint8 codes in the classes'
    own terms: 1 seed (interior), 2 the rest of an object (border), 0 background."""
    codes = (probs[:, 0] < 1 - object_prob).to(torch.uint8) * 2
    return codes.masked_fill_(probs[:, 1] > seed_prob, 1)


def argmax_codes(probs: torch.Tensor) -> torch.Tensor:
    """(N, K, H, W) probabilities -> (N, H, W) uint8 class ids: the most probable class."""
    return probs.argmax(1).to(torch.uint8)


def decision_for(seg: Segmenter):
    """The rule from class probabilities to the mask that :func:`instances_for` expects: for a
    boundary model, :func:`boundary_codes` at its own thresholds (``seg.thresholds``), else the
    defaults."""
    if seg.encoding.instances != "boundary":
        return argmax_codes
    seed, whole = seg.thresholds or (SEED_PROB, OBJECT_PROB)
    return functools.partial(boundary_codes, seed_prob=seed, object_prob=whole)


def with_thresholds(seg: Segmenter, pair: tuple[float, float] | None) -> Segmenter:
    """``seg`` with the (seed, object) thresholds a command's --instance-thresholds gives (none:
    its own), refused for a model that is not a boundary model."""
    if pair is not None:
        if seg.encoding.instances != "boundary":
            raise ValueError(
                "--instance-thresholds is for models trained with --instances boundary; this "
                + ("one was trained on class masks" if seg.kind == "semantic" else "is Mask R-CNN")
            )
        seg.thresholds = (float(pair[0]), float(pair[1]))
    return seg


# The watersheds run on crops, a tile's worth of objects at a time, so that their memory is bounded
# by the crops rather than the image (a whole-slide scan). A crop holds the objects whose bounding
# box starts in one tile, grown by DISTANCE_MARGIN: distance transforms in it are the whole
# image's wherever the nearest pixel they measure to lies within the margin.
WATERSHED_TILE = 1024
DISTANCE_MARGIN = 32


def semantic_to_instances(
    mask: np.ndarray,
    method: str = "components",
    interior_class: int = 1,
    border_class: int | None = None,
    min_size: int = 0,
    fill_holes: bool = True,
    min_distance: int = 5,
    tile: int = WATERSHED_TILE,
) -> np.ndarray:
    """Turn a class-id mask into an instance label image (0 = background, 1..N objects; uint16,
    uint32 beyond 65535 objects).

    - ``border_class`` given (3-class background / interior / border prediction): each
      connected interior region is one object, grown into the adjacent border pixels by a
      marker watershed on the distance to the interiors.
    - ``method="components"``: connected components of ``mask == interior_class``.
    - ``method="watershed"``: touching objects split by a marker watershed on the distance
      transform, markers at its local maxima at least ``min_distance`` apart.

    Holes inside objects are filled (``fill_holes``) and objects under ``min_size`` pixels
    dropped. Watersheds run on crops of about ``tile`` pixels a side (:data:`WATERSHED_TILE`).
    """
    from scipy import ndimage

    if method not in ("components", "watershed"):
        raise ValueError(f"unknown method {method!r}; choose components or watershed")
    interior = mask == interior_class
    if fill_holes:
        interior = filled(interior)
    if border_class is not None:
        labels = grow_into_borders(interior, mask == border_class, tile)
    elif method == "components":
        labels, _ = ndimage.label(interior)
    else:
        labels = split_by_distance(interior, min_distance, tile)
    return drop_small(labels, min_size)


def object_crops(components: np.ndarray, tile: int, margin: int = DISTANCE_MARGIN):
    """``(crop, inside)`` per tile of the image: the components (of a label image) whose
    bounding box starts in the tile, as a mask ``inside`` of the crop that holds them all,
    grown by ``margin`` and clipped at the image's edges."""
    from scipy import ndimage

    groups: dict[tuple[int, int], list] = {}
    for k, box in enumerate(ndimage.find_objects(components), start=1):
        if box is not None:
            groups.setdefault((box[0].start // tile, box[1].start // tile), []).append((k, box))
    for members in groups.values():
        crop = tuple(
            slice(
                max(min(box[axis].start for _, box in members) - margin, 0),
                min(max(box[axis].stop for _, box in members) + margin, components.shape[axis]),
            )
            for axis in (0, 1)
        )
        yield crop, np.isin(components[crop], [k for k, _ in members])


def filled(mask: np.ndarray, kept_open: np.ndarray | None = None) -> np.ndarray:
    """``scipy.ndimage.binary_fill_holes``: background not 4-connected to the border joins the
    mask, except a hole that a pixel of ``kept_open`` (a boolean mask) lies in. By OpenCV's
    connected components (4x as fast on a 2200 x 2200 mask of 3,000 objects: 34 vs 148 ms)."""
    import cv2

    mask = np.asarray(mask, bool)
    n, labels = cv2.connectedComponents((~mask).astype(np.uint8), connectivity=4)
    hole = np.ones(n, bool)
    hole[0] = False  # the mask itself
    for edge in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        hole[edge] = False
    if kept_open is not None:
        hole[labels[kept_open]] = False
    return mask | hole[labels]


def distance_to_false(mask: np.ndarray) -> np.ndarray:
    """Each pixel's Euclidean distance to the nearest False pixel of the 2-D ``mask`` (float64),
    what ``scipy.ndimage.distance_transform_edt(mask)`` gives, bit for bit wherever distances
    stay under about 2,000 pixels: OpenCV's exact transform (float32) rounded to the integer
    squared distance it stands for, then its square root. About 4.5x as fast on 2 cores (an
    1100 x 1100 crop: 12 vs 55 ms). Zero everywhere when there is no False pixel."""
    import cv2

    if mask.all():
        return np.zeros(mask.shape)
    near = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.sqrt(np.rint(np.square(near, dtype=np.float64)))


def grow_into_borders(interior: np.ndarray, border: np.ndarray, tile: int) -> np.ndarray:
    """Each 4-connected interior region is an object, grown into the border pixels around it by
    a marker watershed on the distance to the interiors, crop by crop."""
    from scipy import ndimage
    from skimage.segmentation import watershed

    labels, _ = ndimage.label(interior)
    components, _ = ndimage.label(interior | border)  # a watershed never crosses between them
    for crop, inside in object_crops(components, tile):
        distance = distance_to_false(~interior[crop])
        grown = watershed(distance, np.where(inside, labels[crop], 0), mask=inside)
        labels[crop][inside] = grown[inside]  # this group's pixels only: others keep their seeds
    return labels


def split_by_distance(interior: np.ndarray, min_distance: int, tile: int) -> np.ndarray:
    """Touching objects split by a marker watershed on the distance transform, markers at its
    local maxima at least ``min_distance`` apart in each object, crop by crop."""
    from scipy import ndimage
    from skimage.feature import peak_local_max
    from skimage.segmentation import relabel_sequential, watershed

    components, _ = ndimage.label(interior)
    labels = np.zeros(interior.shape, np.int32)
    count = 0
    for crop, inside in object_crops(components, tile):
        distance = distance_to_false(interior[crop])
        own = relabel_sequential(np.where(inside, components[crop], 0))[0]
        peaks = peak_local_max(
            distance, min_distance=min_distance, labels=own, exclude_border=False
        )
        seeds = np.zeros(own.shape, np.int32)
        seeds[tuple(peaks.T)] = np.arange(count + 1, count + len(peaks) + 1)
        count += len(peaks)
        grown = watershed(-distance, seeds, mask=inside)
        labels[crop][inside] = grown[inside]
    return labels


def check_object_class(
    seg: Segmenter, object_class: int | None, option: str = "--object-class"
) -> int | None:
    """The class whose connected regions are the objects of a semantic model not trained on
    instance masks: ``object_class``, one of its classes, or for a model of two classes
    (background and one other) that other one; ValueError, one line naming ``option``, when
    there is none. Other models make their own objects: None, and a ValueError when
    ``object_class`` is given all the same (it would be ignored)."""
    if seg.kind != "semantic" or seg.encoding.instances is not None:
        if object_class is not None:
            how = "an instance model" if seg.kind != "semantic" else "trained with --instances"
            raise ValueError(
                f"{option} {object_class}: this model makes its own objects ({how}); "
                "the option is for models trained on classes"
            )
        return None
    if object_class is None and seg.num_classes == 2:
        return 1
    classes = ", ".join(f"{i} {name}" for i, name in enumerate(seg.class_names[:10]))
    if object_class is None:
        raise ValueError(
            f"this model was not trained on instance masks and has {seg.num_classes} classes "
            f"({classes}); name the class whose regions are the objects ({option})"
        )
    if not 0 <= object_class < seg.num_classes:
        raise ValueError(f"{option} {object_class}: the model's classes are {classes}")
    return object_class


def instances_for(
    seg: Segmenter, mask: np.ndarray, object_class: int | None = None, min_size: int = 0
) -> np.ndarray:
    """The instance labels a checkpoint's class mask stands for (best made from the
    probabilities by :func:`decision_for`): models trained on instance masks with ``boundary``
    targets split objects at their predicted borders, ``foreground`` models by a
    distance-transform watershed; other models give the connected components of
    ``object_class``."""
    kind = seg.encoding.instances
    if kind == "boundary":
        return semantic_to_instances(mask, interior_class=1, border_class=2, min_size=min_size)
    if kind == "foreground":
        return semantic_to_instances(mask, "watershed", interior_class=1, min_size=min_size)
    return semantic_to_instances(
        mask,
        interior_class=check_object_class(seg, object_class),
        min_size=min_size,
        fill_holes=False,
    )


def drop_small(labels: np.ndarray, min_size: int = 0) -> np.ndarray:
    """The label image without objects under ``min_size`` pixels, relabelled 1..N in the order
    of their labels: uint16, or uint32 when there are more than 65535 objects (never wrapped).
    Counted in bands of rows, so that no int64 copy of a huge image is made."""
    bands = row_bands(labels.shape)
    sizes = np.zeros(int(labels.max(initial=0)) + 1, np.int64)
    for band in bands:
        sizes += np.bincount(labels[band].ravel(), minlength=len(sizes))
    return kept_objects(labels, (sizes > 0) & (sizes >= min_size))


def kept_objects(labels: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The label image with only the objects whose ``keep[label]`` is true (the background, 0,
    never), relabelled 1..N in the order of their labels: uint16, or uint32 when there are more
    than 65535 objects (never wrapped). Mapped in bands of rows (no int64 copy of the image)."""
    keep = keep.copy()
    keep[0] = False
    table = (np.cumsum(keep) * keep).astype(np.uint16 if keep.sum() <= 65535 else np.uint32)
    out = np.empty(labels.shape, table.dtype)
    for band in row_bands(labels.shape):
        out[band] = table[labels[band]]
    return out


EXPAND_TILE = 1024  # expand_cells works tile by tile (distance transforms of tile + distance)


def expand_cells(labels: np.ndarray, distance: int, tile: int = EXPAND_TILE) -> np.ndarray:
    """Each object's cell: the object grown into the background by up to ``distance`` pixels
    (Euclidean), each background pixel going to the nearest object within reach, never into
    another object (QuPath's and StarDist's cell expansion, CellProfiler's secondary objects by
    distance; scikit-image's ``expand_labels``). The numbers stay the objects'. Worked out tile
    by tile with ``distance`` pixels of context, which holds every object pixel within reach of
    the tile, so memory follows the tiles, not the image."""
    from skimage.segmentation import expand_labels

    if distance < 0:
        raise ValueError(f"a cell reaches 0 or more pixels beyond its object, got {distance}")
    out = np.empty_like(labels)
    h, w = labels.shape
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            top, left = max(y0 - distance, 0), max(x0 - distance, 0)
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            grown = expand_labels(labels[top : y1 + distance, left : x1 + distance], distance)
            out[y0:y1, x0:x1] = grown[y0 - top : y1 - top, x0 - left : x1 - left]
    return out
