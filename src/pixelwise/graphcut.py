"""Graph cut with a learned data term: the lecture's min cut, seeded by a network.

Every pixel is a node; the cut minimises

    E(L) = sum_i D_i(L_i) + sum_{i~j} w_ij [L_i != L_j]

with a data term from a prior foreground probability (the network's, or a box) combined with
foreground/background colour models, and contrast-sensitive smoothness
``w_ij = smoothness * exp(-beta * |I_i - I_j|^2) / dist(i, j)`` over 8-neighbours (Boykov and
Jolly 2001; Rother et al., GrabCut, 2004). As in GrabCut, the colour models are re-estimated
from the segmentation a few times; on a photo without colour they model grey level and local
texture instead (:func:`appearance`). User input enters as hard constraints: pixels outside a box
and background strokes are background, foreground strokes are foreground, whatever the rest
says. The min cut is computed by PyMaxflow (Boykov-Kolmogorov).
"""

from __future__ import annotations

import numpy as np

HARD = 1e9  # a t-link capacity that no cut can afford
BINS = 16  # colour histogram bins per channel
SMOOTHNESS = 20.0  # weight of the contrast-sensitive smoothness term
# A photo whose colours lie on one line (black-and-white, or toned like sepia): the second
# principal axis of its colours has under this fraction of the first's variance. Colour photos of
# the foreground sets: 0.003 to 0.2 (5th percentile 0.003); their black-and-white ones under 1e-4,
# toned or faintly tinted ones up to 1e-3. docs/results.md (r).
ONE_DIMENSIONAL = 1e-3
TEXTURE_SIGMA = 2.0  # pixels: the neighbourhood whose mean and contrast stand in for colour
# A pixel whose data term leans either way by under this (a logit, in nats) is taken as
# indifferent: its label is left to its neighbours. On a photo of one flat colour the two colour
# models are the same histogram and differ only by their smoothing, a logit of about 1e-5 in
# every pixel; Boykov-Kolmogorov max flow then routes each pixel's tiny excess to the box's edge
# one path at a time: 11 s per cut at 240 x 320, 120 s at 384 x 512 (0.35 s for a logit of 1).
INDIFFERENT = 0.01


def colour_index(rgb: np.ndarray, bins: int = BINS) -> np.ndarray:
    """(H, W) index of each pixel's colour bin in a ``bins``^3 histogram."""
    q = (rgb.astype(np.int32) * bins) // 256
    return (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]


def appearance(rgb: np.ndarray) -> np.ndarray:
    """What the colour models see of each pixel: its colour, or on a photo without colour
    (:data:`ONE_DIMENSIONAL`) its grey level, the mean grey level around it and the contrast
    there (local standard deviation, scaled to 0..255), as three channels. Grey levels alone
    separate too little: on black-and-white photos the iterated cut (and OpenCV's GrabCut)
    often ends with no foreground at all."""
    x = rgb.reshape(-1, 3).astype(np.float64)
    if len(x) < 3:  # too few pixels to tell
        return rgb
    spread = np.linalg.eigvalsh(np.cov(x[:: max(1, len(x) // 20000)].T))  # ascending
    if spread[1] >= ONE_DIMENSIONAL * max(spread[2], 1e-9):
        return rgb
    from scipy.ndimage import gaussian_filter

    grey = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    mean = gaussian_filter(grey, TEXTURE_SIGMA)
    contrast = np.sqrt(np.maximum(gaussian_filter(grey * grey, TEXTURE_SIGMA) - mean * mean, 0))
    contrast *= 255 / max(float(np.percentile(contrast, 99)), 1.0)
    return np.clip(np.stack([grey, mean, contrast], -1), 0, 255).astype(np.uint8)


def colour_probability(
    index: np.ndarray,
    fg_weights: np.ndarray,
    bg_weights: np.ndarray,
    bins: int = BINS,
    smoothing: float = 1.0,
) -> np.ndarray:
    """P(foreground | colour) per pixel from histograms of the colours weighted by
    ``fg_weights`` and ``bg_weights`` (each normalised, Laplace-smoothed)."""
    n = bins**3
    fg = np.bincount(index.ravel(), fg_weights.ravel(), n) + smoothing / n
    bg = np.bincount(index.ravel(), bg_weights.ravel(), n) + smoothing / n
    fg, bg = fg / fg.sum(), bg / bg.sum()
    return (fg / (fg + bg))[index]


def _logit(p: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    p = np.clip(p, eps, 1 - eps)
    return np.log(p / (1 - p))


NEIGHBOURS = ((0, 1), (1, 0), (1, 1), (1, -1))  # right, down, and the two diagonals


def pairwise_weights(rgb: np.ndarray, smoothness: float) -> list[np.ndarray]:
    """Edge weights to the right, down and diagonal neighbours, (H, W) each (0 where the
    neighbour falls outside the image)."""
    x = rgb.astype(np.float32)
    h, w = x.shape[:2]
    diffs = []
    for dy, dx in NEIGHBOURS:
        d = np.zeros((h, w), np.float32)
        ys, xs = slice(0, h - dy), slice(max(0, -dx), w - max(0, dx))
        yt, xt = slice(dy, h), slice(max(0, dx), w - max(0, -dx) if dx < 0 else w)
        d[ys, xs] = ((x[ys, xs] - x[yt, xt]) ** 2).sum(-1)
        diffs.append(d)
    beta = 1.0 / (2.0 * max(float(np.mean(diffs[:2])), 1e-6))
    weights = []
    for (dy, dx), d in zip(NEIGHBOURS, diffs):
        wgt = smoothness * np.exp(-beta * d) / np.hypot(dy, dx)
        valid = np.zeros((h, w), bool)
        valid[0 : h - dy, max(0, -dx) : w - max(0, dx)] = True
        weights.append(np.where(valid, wgt, 0).astype(np.float64))
    return weights


class CutGraph:
    """The min-cut graph of one image, kept from cut to cut. Its pairwise edges depend on the
    image alone, so the rounds of an iterated graph cut, and a second cut of the same image with
    another prior, change only the terminal links: the next max flow starts from the previous
    one's flow and search trees (Kohli and Torr, dynamic graph cuts, 2005) instead of from
    nothing. The cut is the same, found sooner. The image's colour bins are kept too
    (:meth:`colour_bins`)."""

    def __init__(self, edges: list[np.ndarray], smoothness: float | None = None):
        self.edges, self.shape, self.smoothness = edges, edges[0].shape, smoothness
        self.graph = self.nodes = self.costs = self.index = None

    @classmethod
    def of_image(cls, rgb: np.ndarray, smoothness: float = SMOOTHNESS) -> CutGraph:
        """The graph of ``rgb`` with :func:`pairwise_weights`' edges, not yet cut."""
        return cls(pairwise_weights(rgb, smoothness), smoothness)

    @classmethod
    def reused(cls, graph: CutGraph | None, rgb: np.ndarray, smoothness: float) -> CutGraph:
        """``graph`` when it was made for an image of ``rgb``'s size with this ``smoothness``; a
        new graph of ``rgb`` when it is ``None``."""
        if graph is None:
            return cls.of_image(rgb, smoothness)
        if graph.shape != rgb.shape[:2] or graph.smoothness != smoothness:
            raise ValueError("graph_cut: the CutGraph was made for another image or smoothness")
        return graph

    def colour_bins(self, rgb: np.ndarray) -> np.ndarray:
        """:func:`colour_index` of ``rgb`` (this graph's image) as :func:`appearance` sees it,
        computed by the first cut and the same for every later one."""
        if self.index is None:
            self.index = colour_index(appearance(rgb))
        return self.index

    def cut(self, unary_fg: np.ndarray, unary_bg: np.ndarray) -> np.ndarray:
        """The labelling minimising the energy with these unaries (see :func:`min_cut`)."""
        if self.graph is None:
            import maxflow

            self.graph = maxflow.Graph[float]()
            self.nodes = self.graph.add_grid_nodes(self.shape)
            for (dy, dx), weights in zip(NEIGHBOURS, self.edges):
                structure = np.zeros((3, 3))
                structure[1 + dy, 1 + dx] = 1
                self.graph.add_grid_edges(
                    self.nodes, weights=weights, structure=structure, symmetric=True
                )
            # source side = foreground: a foreground pixel's sink link is cut (pays unary_fg)
            self.graph.add_grid_tedges(self.nodes, unary_bg, unary_fg)
            self.graph.maxflow()
        else:  # terminal links may change by any amount, negative too; only changed nodes marked
            d_bg, d_fg = unary_bg - self.costs[1], unary_fg - self.costs[0]
            changed = (d_bg != 0) | (d_fg != 0)
            self.graph.add_grid_tedges(self.nodes, d_bg, d_fg)
            if changed.any():
                self.graph.mark_grid_nodes(self.nodes[changed])
            self.graph.maxflow(reuse_trees=True)
        self.costs = (unary_fg.copy(), unary_bg.copy())
        return ~self.graph.get_grid_segments(self.nodes)


def min_cut(unary_fg: np.ndarray, unary_bg: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    """The labelling minimising the energy: ``unary_fg`` is the cost of labelling a pixel
    foreground, ``unary_bg`` background; ``edges`` as from :func:`pairwise_weights`. Returns a
    boolean foreground mask."""
    return CutGraph(edges).cut(unary_fg, unary_bg)


# A stroke's colours weigh this share of their colour model. Measured on 40 dev photos (never
# trained on) with one corrective stroke after a box: 1.0 (as much as the whole prior) gained
# +0.028 IoU and made 30 % of the photos worse (an erase stroke on a background of the subject's
# colour erased the subject); 0.25: +0.066, 15 % worse; 0.05: +0.062, 5 % worse, but an erase
# stroke across a wrongly kept region of its own colour then removes only the stroke's pixels.
STROKE_WEIGHT = 0.25
# Strokes without a box (the colour models of the whole photo, started from an unsure prior):
# on the 100 development photos of docs/results.md (t), one stroke after the automatic cut-out
# at 0.25 / 0.1 / 0.05 scored 0.585 / 0.587 / 0.588 and made 18 / 9 / 7 photos worse; two
# strokes 0.611 / 0.609 / 0.602.
STROKE_WEIGHT_WITHOUT_BOX = 0.1
# How far a stroke relaxes the prior (:func:`relax_near`), as a fraction of the longer side of
# the image, or of the object: :meth:`pixelwise.cutout.UserInput.stroke_reach` takes it of the
# user's box.
RELAX_REACH = 0.1


def relax_near(prior: np.ndarray, strokes: np.ndarray, reach: float) -> np.ndarray:
    """The prior pulled towards 0.5 (unsure) within about ``reach`` pixels of the strokes, so
    that colour and edges, not the prior that the user is correcting, decide around them."""
    if not strokes.any() or reach <= 0:
        return prior
    from scipy import ndimage  # 0.2 s to import: not for a cut without strokes

    influence = np.exp(-((ndimage.distance_transform_edt(~strokes) / reach) ** 2))
    return prior * (1 - influence) + 0.5 * influence


def stroke_boost(strokes: np.ndarray, mass: float) -> np.ndarray:
    """Colour-model weights of stroke pixels: together they weigh ``mass``."""
    n = int(strokes.sum())
    return strokes * (mass / n) if n else np.zeros(strokes.shape)


def hard_constraints(
    shape: tuple[int, int], foreground, background, box
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean (H, W) masks of the keep strokes, the erase strokes and what lies outside the box
    (a pixel both kept and erased is kept; a keep stroke outside the box too)."""
    stroke_fg = np.zeros(shape, bool) if foreground is None else foreground.astype(bool)
    stroke_bg = (
        np.zeros(shape, bool) if background is None else background.astype(bool) & ~stroke_fg
    )
    outside = ~box_mask(shape, box) & ~stroke_fg if box is not None else np.zeros(shape, bool)
    return stroke_fg, stroke_bg, outside


def graph_cut(
    rgb: np.ndarray,
    prior: np.ndarray,
    foreground: np.ndarray | None = None,
    background: np.ndarray | None = None,
    box: tuple[float, float, float, float] | None = None,
    smoothness: float = SMOOTHNESS,
    colour_weight: float = 1.0,
    prior_weight: float = 1.0,
    iterations: int = 3,
    reach: float = RELAX_REACH,
    start_from_prior: bool = False,
    graph: CutGraph | None = None,
    stroke_weight: float = STROKE_WEIGHT,
) -> np.ndarray:
    """Foreground mask (H, W) bool of an RGB ``rgb`` (uint8) by iterated graph cut.

    ``prior``: P(foreground) per pixel (a network's probability, or 0.5 everywhere). The data
    term is ``-log`` of ``sigmoid(prior_weight * logit(prior) + colour_weight * logit(P(fg |
    colour)))`` (colour as :func:`appearance` sees it). The colour models start from the box
    when there is one (everything inside is foreground, as in GrabCut) unless
    ``start_from_prior``, else from the prior (zero outside the box), then come from the previous
    cut.

    User input, all hard constraints: ``box = (x0, y0, x1, y1)``: everything outside is
    background; ``foreground`` / ``background``: boolean stroke masks fixed to that label. A
    stroke also speaks for its surroundings: its colours get ``stroke_weight`` of their colour
    model's mass, and the prior is relaxed towards 0.5 within ``reach`` (a fraction of the
    image's longer side) of it.

    ``graph``: the :class:`CutGraph` of ``rgb`` from an earlier cut (same result, faster).
    """
    if rgb.ndim != 3 or rgb.shape[-1] != 3 or rgb.shape[:2] != prior.shape:
        raise ValueError(
            f"graph_cut needs an (H, W, 3) image and an (H, W) prior, got {rgb.shape} and {prior.shape}"
        )
    shape = prior.shape
    stroke_fg, stroke_bg, outside = hard_constraints(shape, foreground, background, box)
    fixed_fg, fixed_bg = stroke_fg, stroke_bg | outside
    prior = relax_near(prior.astype(np.float64), stroke_fg | stroke_bg, reach * max(shape))
    prior = np.where(outside, 0.0, prior)
    graph = CutGraph.reused(graph, rgb, smoothness)
    index = graph.colour_bins(rgb)
    prior_logit = prior_weight * _logit(prior)
    start = prior if box is None or start_from_prior else box_mask(shape, box).astype(np.float64)
    weights = np.where(fixed_fg, 1.0, np.where(fixed_bg, 0.0, start))
    mask = weights > 0.5
    for _ in range(max(1, iterations)):
        fg_w = weights + stroke_boost(stroke_fg, stroke_weight * weights.sum())
        bg_w = (1 - weights) + stroke_boost(stroke_bg, stroke_weight * (1 - weights).sum())
        logit = prior_logit + colour_weight * _logit(colour_probability(index, fg_w, bg_w))
        logit[np.abs(logit) < INDIFFERENT] = 0.0
        cost_fg, cost_bg = np.logaddexp(0, -logit), np.logaddexp(0, logit)  # -log sigmoid(+-logit)
        cost_fg[fixed_bg], cost_bg[fixed_bg] = HARD, 0.0
        cost_bg[fixed_fg], cost_fg[fixed_fg] = HARD, 0.0
        new = graph.cut(cost_fg, cost_bg)
        if np.array_equal(new, mask):
            break
        mask, weights = new, new.astype(np.float64)
    return mask


def box_window(box: tuple[float, ...], shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """``box = (x0, y0, x1, y1)`` (pixel edges) as the whole pixels ``(x0, y0, x1, y1)`` it
    touches inside an image of ``shape``, at least 1 x 1."""
    h, w = shape
    x0, y0 = min(w - 1, max(0, int(np.floor(box[0])))), min(h - 1, max(0, int(np.floor(box[1]))))
    x1, y1 = max(x0 + 1, min(w, int(np.ceil(box[2])))), max(y0 + 1, min(h, int(np.ceil(box[3]))))
    return x0, y0, x1, y1


def box_mask(shape: tuple[int, int], box: tuple[float, float, float, float]) -> np.ndarray:
    """Boolean (H, W): True on the pixels of :func:`box_window`."""
    x0, y0, x1, y1 = box_window(box, shape)
    inside = np.zeros(shape, bool)
    inside[y0:y1, x0:x1] = True
    return inside
