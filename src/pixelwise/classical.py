"""Classical segmentation that needs no training, behind one interface: ``image -> label map``.

Every method takes an (H, W, C) image (uint8 or uint16; grey or colour) and returns an (H, W)
int32 map of *regions*. Regions are not classes: Otsu's two regions are dark and bright,
k-means' are colour clusters, superpixels are hundreds of patches. :func:`regions_to_classes`
turns regions into class ids for scoring, by a rule stated there.

=============  ==============================================================================
otsu           grey-level threshold maximising between-class variance (2 regions)
kmeans         Lloyd's k-means on colour (+ optional position) features, k-means++ init (k regions)
graphcut       GrabCut (iterated s-t min-cut on a colour-GMM energy, OpenCV) from a box, seed
               masks, or automatically from the central box (2 regions: background, foreground);
               also named ``grabcut``, as remove-bg's ``--method grabcut`` that it is
felzenszwalb   Felzenszwalb-Huttenlocher graph-based superpixels (scikit-image)
slic           SLIC superpixels: k-means in (colour, position) space (scikit-image)
watershed      marker watershed on the gradient magnitude; markers where the grey level is
               clearly below / above Otsu's threshold (2 regions)
=============  ==============================================================================
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np


def _float_image(image: np.ndarray) -> np.ndarray:
    """(H, W, C) in [0, 1] float32."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    scale = 65535.0 if image.dtype == np.uint16 else 255.0 if image.dtype == np.uint8 else 1.0
    return image.astype(np.float32) / np.float32(scale)


def _grey(image: np.ndarray) -> np.ndarray:
    x = _float_image(image)
    return (
        x[..., 0] if x.shape[-1] == 1 else x[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    )


def _rgb8(image: np.ndarray) -> np.ndarray:
    x = _float_image(image)
    x = np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x[..., :3]
    return np.ascontiguousarray((x * 255).round().astype(np.uint8))


def otsu(image: np.ndarray) -> np.ndarray:
    """Otsu's threshold on the grey level: 0 = darker region, 1 = brighter region."""
    from skimage.filters import threshold_otsu

    grey = _grey(image)
    if grey.min() == grey.max():
        return np.zeros(grey.shape, np.int32)
    return (grey > threshold_otsu(grey)).astype(np.int32)


def kmeans(
    image: np.ndarray,
    k: int = 2,
    position_weight: float = 0.0,
    seed: int = 0,
    iterations: int = 20,
    fit_pixels: int = 50_000,
) -> np.ndarray:
    """k-means on per-pixel colour, plus ``position_weight`` x (y, x) / max(H, W) when > 0.

    Centres are fitted on a seeded sample of ``fit_pixels`` pixels (k-means++ seeding, Lloyd
    iterations), then every pixel goes to its nearest centre.
    """
    from scipy.cluster.vq import kmeans2, vq

    colour = _float_image(image)
    h, w, c = colour.shape
    features = colour.reshape(-1, c)
    if position_weight > 0:
        yy, xx = np.mgrid[:h, :w].astype(np.float32) / max(h, w)
        features = np.concatenate(
            [features, position_weight * np.stack([yy.ravel(), xx.ravel()], 1)], 1
        )
    rng = np.random.default_rng(seed)
    sample = features[rng.choice(len(features), min(fit_pixels, len(features)), replace=False)]
    centres, _ = kmeans2(sample.astype(np.float64), k, iter=iterations, minit="++", seed=rng)
    labels, _ = vq(features.astype(np.float64), centres)
    return labels.reshape(h, w).astype(np.int32)


def graphcut(
    image: np.ndarray,
    box: tuple[int, int, int, int] | None = None,
    seeds: np.ndarray | None = None,
    iterations: int = 5,
    margin: float = 0.1,
    seed: int = 0,
) -> np.ndarray:
    """GrabCut foreground extraction: 1 = foreground, 0 = background.

    ``box`` = (x, y, width, height) around the object; ``seeds`` = (H, W) map with 1 for sure
    foreground, 2 for sure background, 0 unknown; with neither, the box is the image inset by
    ``margin`` of its size on each side (the object is assumed away from the border). GrabCut
    starts its colour models by k-means on OpenCV's global random generator, seeded here with
    ``seed`` so that the same photo gives the same mask whatever OpenCV did before.
    """
    import cv2

    rgb = _rgb8(image)
    h, w = rgb.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(seed)
    if seeds is not None:
        mask[:] = (
            cv2.GC_PR_FGD
        )  # unknown: probably foreground, until the colour models say otherwise
        mask[seeds == 1], mask[seeds == 2] = cv2.GC_FGD, cv2.GC_BGD
        if not (seeds == 1).any() or not (seeds == 2).any():
            raise ValueError("graphcut seeds need both foreground (1) and background (2) pixels")
        cv2.grabCut(rgb, mask, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    else:
        if box is None:
            if min(h, w) < 3:
                raise ValueError(
                    f"GrabCut's central box needs at least 3 x 3 pixels, got {w} x {h}"
                )
            dy, dx = max(1, int(h * margin)), max(1, int(w * margin))
            box = (dx, dy, w - 2 * dx, h - 2 * dy)
        x, y, bw, bh = (int(v) for v in box)
        x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + bw), min(h, y + bh)
        if x1 <= x0 or y1 <= y0 or (x1 - x0) * (y1 - y0) == h * w:
            raise ValueError(
                f"GrabCut needs a box with pixels inside and outside it, got {tuple(box)} "
                f"(x, y, width, height) in a {w} x {h} image"
            )
        cv2.grabCut(rgb, mask, (x, y, bw, bh), bgd, fgd, iterations, cv2.GC_INIT_WITH_RECT)
    return np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.int32)


def felzenszwalb(
    image: np.ndarray, scale: float = 200.0, sigma: float = 0.8, min_size: int = 100
) -> np.ndarray:
    """Felzenszwalb-Huttenlocher superpixels (larger ``scale``: larger regions)."""
    from skimage.segmentation import felzenszwalb as fh

    x = _float_image(image)
    return fh(x, scale=scale, sigma=sigma, min_size=min_size, channel_axis=-1).astype(np.int32)


def slic(image: np.ndarray, n_segments: int = 200, compactness: float = 20.0) -> np.ndarray:
    """SLIC superpixels (about ``n_segments`` regions; higher ``compactness``: squarer regions,
    less swayed by noise). Colour images are clustered in CIELAB; grey ones on [0, 1] values with
    ``compactness / 100``."""
    from skimage.segmentation import slic as sk_slic

    x = _float_image(image)
    if x.shape[-1] == 1:
        return sk_slic(
            x[..., 0],
            n_segments=n_segments,
            compactness=compactness / 100,
            channel_axis=None,
            start_label=0,
        ).astype(np.int32)
    return sk_slic(x, n_segments=n_segments, compactness=compactness, start_label=0).astype(
        np.int32
    )


def watershed(image: np.ndarray, spread: float = 0.5) -> np.ndarray:
    """Marker watershed on the Sobel gradient: markers are pixels more than ``spread`` grey-level
    standard deviations below (region 0) or above (region 1) Otsu's threshold."""
    from skimage.filters import sobel, threshold_otsu
    from skimage.segmentation import watershed as sk_watershed

    grey = _grey(image)
    if grey.min() == grey.max():
        return np.zeros(grey.shape, np.int32)
    t, d = threshold_otsu(grey), spread * grey.std()
    markers = np.zeros(grey.shape, np.int32)
    markers[grey < t - d], markers[grey > t + d] = 1, 2
    if not (markers == 1).any() or not (markers == 2).any():
        return (grey > t).astype(np.int32)
    return (sk_watershed(sobel(grey), markers) - 1).astype(np.int32)


METHODS: dict[str, Callable[..., np.ndarray]] = {
    "otsu": otsu,
    "kmeans": kmeans,
    "graphcut": graphcut,
    "grabcut": graphcut,  # remove-bg's name for the same cut
    "felzenszwalb": felzenszwalb,
    "slic": slic,
    "watershed": watershed,
}


def get_method(name: str) -> Callable[..., np.ndarray]:
    """The function of classical method ``name``; a clear error for unknown names."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}")
    return METHODS[name]


def run_method(name: str, image: np.ndarray, **params) -> np.ndarray:
    """Regions of ``image`` by the classical method ``name`` with keyword ``params``."""
    fn = get_method(name)
    accepted = inspect.signature(fn).parameters
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(
            f"method {name!r} has no parameter {', '.join(unknown)} (it takes {', '.join(list(accepted)[1:])})"
        )
    return fn(image, **params)


def regions_to_classes(
    regions: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int = 255
) -> np.ndarray:
    """Class ids for a region map, chosen with the ground truth (an oracle labelling, so scores
    are upper bounds of what the regions allow):

    - 2 classes (foreground data): the best foreground region set. Regions are sorted by their
      share of foreground pixels and the foreground is the prefix of that order (possibly
      empty or all) with the highest mean of the foreground and background IoU. (For the
      foreground IoU alone the best set is always such a prefix; for the mean the prefix
      search is the rule, not a proven optimum.)
    - more classes: an optimal one-to-one matching of regions to classes maximising the
      overlapping pixels (Hungarian algorithm); regions left unmatched get ``num_classes``,
      a "no class" id that is wrong wherever it lands.

    Pixels whose target is ``ignore_index`` are not counted when choosing.
    """
    from scipy.optimize import linear_sum_assignment

    ids, inverse = np.unique(regions, return_inverse=True)
    inverse = inverse.reshape(regions.shape)
    valid = target != ignore_index
    n = len(ids)
    table = np.zeros((n, num_classes), np.int64)  # pixels of region r with class c
    np.add.at(table, (inverse[valid], target[valid].astype(np.int64)), 1)
    if num_classes == 2:
        fg, bg = table[:, 1].astype(np.float64), table[:, 0].astype(np.float64)
        order = np.argsort(-(fg / np.maximum(fg + bg, 1)), kind="stable")
        tp = np.concatenate(
            [[0.0], np.cumsum(fg[order])]
        )  # foreground pixels inside the first j regions
        fp = np.concatenate([[0.0], np.cumsum(bg[order])])
        fn = fg.sum() - tp
        fg_iou = np.divide(tp, tp + fp + fn, out=np.zeros_like(tp), where=tp + fp + fn > 0)
        bg_tp, bg_union = bg.sum() - fp, bg.sum() + fn
        bg_iou = np.divide(bg_tp, bg_union, out=np.zeros_like(tp), where=bg_union > 0)
        best = int(np.argmax(fg_iou + bg_iou))
        region_class = np.zeros(n, np.int64)
        region_class[order[:best]] = 1
    else:
        rows, cols = linear_sum_assignment(-table)
        region_class = np.full(n, num_classes, np.int64)
        region_class[rows] = cols
    return region_class[inverse]
