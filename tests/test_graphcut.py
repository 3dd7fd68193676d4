"""Graph cut: the min cut against brute force, and known-truth cases for boxes and strokes."""

import itertools

import numpy as np
import pytest
from conftest import disc_and_square

from pixelwise.graphcut import (
    NEIGHBOURS,
    CutGraph,
    box_mask,
    graph_cut,
    min_cut,
    pairwise_weights,
)


def energy(labels, unary_fg, unary_bg, edges):
    e = np.where(labels, unary_fg, unary_bg).sum()
    h, w = labels.shape
    for (dy, dx), weights in zip(NEIGHBOURS, edges):
        for y in range(h):
            for x in range(w):
                ny, nx = y + dy, x + dx
                if 0 <= ny < h and 0 <= nx < w and labels[y, x] != labels[ny, nx]:
                    e += weights[y, x]
    return e


@pytest.mark.parametrize("seed", range(5))
def test_min_cut_reaches_the_brute_force_minimum(seed):
    rng = np.random.default_rng(seed)
    h, w = 3, 4
    unary_fg, unary_bg = rng.random((h, w)) * 3, rng.random((h, w)) * 3
    edges = pairwise_weights(
        rng.integers(0, 255, (h, w, 3)).astype(np.uint8), smoothness=float(rng.uniform(0.5, 2))
    )
    best = min(
        energy(np.array(bits, bool).reshape(h, w), unary_fg, unary_bg, edges)
        for bits in itertools.product((0, 1), repeat=h * w)
    )
    assert energy(min_cut(unary_fg, unary_bg, edges), unary_fg, unary_bg, edges) == pytest.approx(
        best
    )


@pytest.mark.parametrize("seed", range(3))
def test_a_reused_graph_reaches_the_brute_force_minimum_after_its_terminal_links_change(seed):
    # one graph cut five times, its unaries changed each time by any amount (up and down, some
    # nodes unchanged, one made hard): every cut is the brute-force minimum of its own energy
    rng = np.random.default_rng(seed)
    h, w = 3, 4
    edges = pairwise_weights(rng.integers(0, 255, (h, w, 3)).astype(np.uint8), smoothness=1.5)
    graph = CutGraph(edges)
    unary_fg, unary_bg = rng.random((h, w)) * 3, rng.random((h, w)) * 3
    for step in range(5):
        if step:
            keep = rng.random((h, w)) < 0.3
            unary_fg = np.where(keep, unary_fg, rng.random((h, w)) * 3)
            unary_bg = np.where(keep, unary_bg, rng.random((h, w)) * 3)
            unary_fg[rng.integers(h), rng.integers(w)] = 1e9
        best = min(
            energy(np.array(bits, bool).reshape(h, w), unary_fg, unary_bg, edges)
            for bits in itertools.product((0, 1), repeat=h * w)
        )
        got = graph.cut(unary_fg, unary_bg)
        assert energy(got, unary_fg, unary_bg, edges) == pytest.approx(best)


def test_graph_cut_with_a_reused_graph_gives_the_same_masks():
    rgb, disc, square = scene()
    prior = np.where(disc | square, 0.9, 0.2)
    graph = CutGraph.of_image(rgb)
    first = graph_cut(rgb, prior, graph=graph)
    assert np.array_equal(first, graph_cut(rgb, prior))
    built = graph.graph
    box = (10, 20, 50, 60)
    assert np.array_equal(
        graph_cut(rgb, prior, box=box, graph=graph), graph_cut(rgb, prior, box=box)
    )
    assert graph.graph is built  # the second cut reused the first one's graph
    with pytest.raises(ValueError, match="another image"):
        graph_cut(rgb[:-1], prior[:-1], graph=graph)


def pairwise_naive(rgb, smoothness):
    """Edge weights by a loop, the formula written out."""
    x = rgb.astype(np.float64)
    h, w = x.shape[:2]
    sq = {}
    for dy, dx in NEIGHBOURS:
        sq[(dy, dx)] = {
            (y, xx): ((x[y, xx] - x[y + dy, xx + dx]) ** 2).sum()
            for y in range(h)
            for xx in range(w)
            if 0 <= y + dy < h and 0 <= xx + dx < w
        }
    # beta = 1 / (2 <|dI|^2>), the mean over the right and down arrays (zeros beyond the edge included)
    mean_sq = (sum(sq[(0, 1)].values()) + sum(sq[(1, 0)].values())) / (2 * h * w)
    beta = 1 / (2 * mean_sq)
    out = []
    for dy, dx in NEIGHBOURS:
        a = np.zeros((h, w))
        for (y, xx), d in sq[(dy, dx)].items():
            a[y, xx] = smoothness * np.exp(-beta * d) / np.hypot(dy, dx)
        out.append(a)
    return out


def test_pairwise_weights_match_the_formula():
    rgb = np.random.default_rng(0).integers(0, 255, (5, 6, 3)).astype(np.uint8)
    for got, want in zip(pairwise_weights(rgb, 3.0), pairwise_naive(rgb, 3.0)):
        np.testing.assert_allclose(got, want, rtol=1e-5)


def scene():
    """A red disc and a blue square on a noisy grey background; the truth of each."""
    return disc_and_square(80, 100, (40, 30, 15), (25, 55, 65, 90))


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_a_box_alone_finds_the_object():
    rgb, disc, _ = scene()
    mask = graph_cut(rgb, np.full(disc.shape, 0.5), box=(10, 20, 50, 60))
    assert iou(mask, disc) > 0.95


def test_a_blurry_shifted_prior_snaps_to_the_edges():
    from scipy import ndimage

    rgb, disc, _ = scene()
    prior = ndimage.gaussian_filter(np.roll(disc, 4, axis=1).astype(float), 4) * 0.8 + 0.1
    assert iou(prior > 0.5, disc) < 0.85
    assert iou(graph_cut(rgb, prior), disc) > 0.95


def test_a_foreground_stroke_adds_a_missed_object():
    rgb, disc, square = scene()
    prior = np.where(disc, 0.9, 0.1)
    without = graph_cut(rgb, prior)
    assert iou(without, disc) > 0.95 and not (without & square).any()
    stroke = np.zeros_like(disc)
    stroke[40, 70:85] = True
    with_stroke = graph_cut(rgb, prior, foreground=stroke)
    assert iou(with_stroke, disc | square) > 0.9


def test_a_background_stroke_removes_a_wrong_region():
    rgb, disc, square = scene()
    prior = np.where(disc | square, 0.9, 0.1)
    stroke = np.zeros_like(disc)
    stroke[35:45, 75:80] = True
    mask = graph_cut(rgb, prior, background=stroke)
    assert iou(mask, disc) > 0.9 and (mask & square).sum() < 0.1 * square.sum()


def test_hard_constraints_always_hold():
    rgb, disc, _ = scene()
    fg, bg = np.zeros_like(disc), np.zeros_like(disc)
    fg[0:3, 0:3] = True  # background colour, forced foreground
    bg[38:42, 28:32] = True  # inside the disc, forced background
    mask = graph_cut(rgb, np.where(disc, 0.95, 0.05), foreground=fg, background=bg)
    assert mask[fg].all() and not mask[bg].any()


def test_box_outside_is_background_even_where_the_prior_says_foreground():
    rgb, disc, square = scene()
    mask = graph_cut(rgb, np.where(disc | square, 0.95, 0.05), box=(10, 20, 50, 60))
    assert iou(mask, disc) > 0.95 and not mask[:, 50:].any()


def test_colour_models_start_from_the_box_or_from_the_prior():
    # a box around both objects and a confident prior on the disc alone: GrabCut's start (all of
    # the box foreground) gives the square's colour, found nowhere outside, to the foreground
    # model, which then outweighs the prior; starting from the prior keeps the square out
    rgb, disc, square = scene()
    prior, box = np.where(disc, 0.95, 0.05), (5, 5, 95, 75)
    from_box = graph_cut(rgb, prior, box=box)
    from_prior = graph_cut(rgb, prior, box=box, start_from_prior=True)
    assert from_box[square].mean() > 0.9 and iou(from_prior, disc) > 0.95


def test_box_mask_clips():
    m = box_mask((10, 10), (-5, 2.5, 4, 20))
    assert m.sum() == 4 * 8 and m[2:, :4].all()


def test_shapes_checked():
    with pytest.raises(ValueError, match="graph_cut needs an"):
        graph_cut(np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4)))


def textured_square_on_stripes(size=128):
    """A grey image where the object and the background have the same grey levels (80 and 176,
    half each) and differ only in texture: a fine checkerboard square on wide flat stripes."""
    y, x = np.mgrid[:size, :size]
    background = np.where((x // 32) % 2 == 0, 80, 176)
    checker = np.where(((x // 2) + (y // 2)) % 2 == 0, 80, 176)
    truth = (abs(x - size / 2) < size / 5) & (abs(y - size / 2) < size / 5)
    grey = np.where(truth, checker, background).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1), truth


def test_a_photo_without_colour_is_modelled_by_grey_level_and_texture(monkeypatch):
    import pixelwise.graphcut as gc

    rgb, truth = textured_square_on_stripes()
    features = gc.appearance(rgb)
    assert features.shape == rgb.shape and not np.array_equal(features, rgb)
    np.testing.assert_array_equal(features[..., 0], rgb[..., 0])  # the grey level itself
    # contrast: high on the checkerboard, low inside the flat stripes
    assert np.median(features[..., 2][truth]) > 200 > 20 > np.median(features[..., 2][~truth])
    box = (13, 13, 115, 115)  # GrabCut's assumption: the object inside, away from the border

    def iou(mask):
        return (mask & truth).sum() / (mask | truth).sum()

    with_texture = graph_cut(rgb, np.full(truth.shape, 0.5), box=box)
    monkeypatch.setattr(gc, "ONE_DIMENSIONAL", 0.0)  # grey levels alone
    grey_alone = graph_cut(rgb, np.full(truth.shape, 0.5), box=box)
    # the whole square, with a rim about as wide as the texture's neighbourhood; grey levels
    # alone leave the cut with nothing (as OpenCV's GrabCut on black-and-white photos)
    assert with_texture[truth].all() and iou(with_texture) > 0.6
    assert iou(grey_alone) < 0.1


def test_colour_photos_are_modelled_by_their_colours():
    from pixelwise.graphcut import appearance

    rgb = np.random.default_rng(0).integers(0, 256, (32, 32, 3)).astype(np.uint8)
    assert appearance(rgb) is rgb
    toned = (rgb[..., :1].astype(np.float32) * np.array([1.0, 0.75, 0.45])).astype(np.uint8)
    assert appearance(toned).shape == toned.shape and appearance(toned) is not toned  # sepia


def test_a_flat_photo_leaves_max_flow_nothing_to_route(monkeypatch):
    # one colour everywhere: the colour models are the same histogram and differ only by their
    # smoothing (a logit of about 1e-5); each pixel inside the box used to carry that excess to
    # the box's edge by a path of its own, 11 s per cut at 240 x 320. Such a pixel is indifferent
    # now: equal costs both ways, so its neighbours (the background outside the box) decide.
    import pixelwise.graphcut as gc

    seen = []
    cut = gc.CutGraph.cut

    def spy(self, cost_fg, cost_bg):
        seen.append((cost_fg.copy(), cost_bg.copy()))
        return cut(self, cost_fg, cost_bg)

    monkeypatch.setattr(gc.CutGraph, "cut", spy)
    rgb, box = np.full((60, 80, 3), 255, np.uint8), (8, 6, 72, 54)
    mask = graph_cut(rgb, np.full((60, 80), 0.5), box=box)
    inside = box_mask((60, 80), box)
    assert seen and not mask.any()
    cost_fg, cost_bg = seen[0]  # colour models from the box (later ones: from an empty cut)
    np.testing.assert_array_equal(cost_fg[inside], cost_bg[inside])
