"""Interactive cut-outs: a box and strokes through the Python API, the CLI, HTTP and the web page
in a real browser, on photos whose answer is known (a red disc and a blue square on grey)."""

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import (
    BrightIsForeground,
    animated_png,
    disc_and_square,
    red_box_model,
    served_page,
    shared_dataset,
    tiny_seg,
)
from PIL import Image

from pixelwise.cli import main
from pixelwise.cutout import remove_background


def scene():
    return disc_and_square(120, 160, (60, 45, 25), (40, 85, 100, 140))


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def alpha(*args, **kwargs) -> np.ndarray:
    return np.asarray(remove_background(*args, mask_only=True, **kwargs)) > 127


def test_box_alone_finds_the_object_and_nothing_outside():
    rgb, disc, square = scene()
    cut = alpha(rgb, method="grabcut", box=(15, 30, 75, 90))
    assert iou(cut, disc) > 0.9 and not cut[:, 80:].any()


def test_a_keep_stroke_adds_a_region_and_an_erase_stroke_removes_one():
    rgb, disc, square = scene()
    box_only = alpha(rgb, method="grabcut", box=(15, 30, 75, 90))
    keep = [{"points": [[110, 62], [130, 62]], "radius": 3}]
    both = alpha(
        rgb,
        method="grabcut",
        foreground_strokes=keep,
        background_strokes=None,
        box=(10, 25, 150, 100),
    )
    assert iou(both, disc | square) > 0.85 and iou(box_only, disc) > 0.9
    erase = [{"points": [[115, 60], [125, 65]], "radius": 3}]
    wide = alpha(rgb, method="grabcut", box=(10, 25, 150, 100))
    erased = alpha(rgb, method="grabcut", box=(10, 25, 150, 100), background_strokes=erase)
    assert (erased & square).sum() < 0.2 * (wide & square).sum() + 1 and iou(erased, disc) > 0.85


def test_strokes_as_boolean_masks_at_photo_size():
    rgb, disc, square = scene()
    keep = np.zeros(disc.shape, bool)
    keep[55:65, 110:130] = True
    cut = alpha(rgb, method="grabcut", box=(10, 25, 150, 100), foreground_strokes=keep)
    assert cut[square].mean() > 0.8


def test_a_box_model_sees_the_box_only():
    from pixelwise.cutout import box_probability

    rgb, disc, square = scene()
    seg = red_box_model()
    prob = box_probability(seg, rgb, (15.5, 30, 75, 90), precision="fp32")
    assert prob.shape == disc.shape and prob.dtype == np.float32
    inside = np.zeros(disc.shape, bool)
    inside[30:90, 15:75] = True
    assert not prob[~inside].any()  # nothing outside the box (its edges rounded outwards)
    assert iou(prob > 0.5, disc) > 0.9
    # remove_background runs a box model on the box, or on the whole photo without one
    assert iou(alpha(rgb, seg, box=(12, 28, 80, 95)), disc) > 0.9
    assert iou(alpha(rgb, seg, method="model"), disc) > 0.9


def test_a_box_model_helps_a_whole_photo_model_inside_the_box(monkeypatch, tmp_path):
    import torch

    import pixelwise.checkpoint
    import pixelwise.cutout
    from pixelwise.cutout import (
        box_helper,
        box_probability,
        foreground_probability,
        network_probability,
    )

    rgb, disc, square = scene()
    whole, helper = red_box_model(box_input=0), red_box_model(box_input=24)
    box = (10.0, 25.0, 150.0, 100.0)
    alone = foreground_probability(whole, rgb, precision="fp32")
    assert np.array_equal(network_probability(whole, None, rgb, box, precision="fp32"), alone)
    both = network_probability(whole, helper, rgb, box, precision="fp32")
    boxed = box_probability(helper, rgb, box, precision="fp32")
    # each weighed by its mean confidence |2p - 1| over the box's pixels (rows 25-99, cols 10-149)
    sure_whole = np.abs(2 * alone[25:100, 10:150] - 1).mean()
    sure_box = np.abs(2 * boxed[25:100, 10:150] - 1).mean()
    w = sure_box / (sure_whole + sure_box)
    assert np.allclose(both, (1 - w) * alone + w * boxed, atol=1e-6)
    # without a box, a photo the whole-photo network is sure of: its probability as it is
    assert np.array_equal(network_probability(whole, helper, rgb, None, precision="fp32"), alone)
    # ... and one it is unsure of: the box model's look at the whole photo is weighed in
    unsure = red_box_model(box_input=0)
    torch.nn.init.zeros_(unsure.network.weight), torch.nn.init.zeros_(unsure.network.bias)
    w = pixelwise.cutout.WHOLE_PHOTO_LOOK
    framed = box_probability(helper, rgb, (0, 0, rgb.shape[1], rgb.shape[0]), precision="fp32")
    assert 0 < w < 1 and iou(framed > 0.5, disc) > 0.9
    looked = network_probability(unsure, helper, rgb, None, precision="fp32")
    assert np.allclose(looked, (1 - w) * 0.5 + w * framed, atol=1e-6)
    # which box model helps: the one given; the bundled one only beside the bundled model
    assert box_helper("my.pt", None) is None and box_helper(whole, helper) is helper
    monkeypatch.setattr(pixelwise.checkpoint, "BUNDLED_DIR", tmp_path)  # not installed
    assert box_helper(None, None) is None


def test_the_surer_network_counts_more_inside_a_box():
    from pixelwise.cutout import surer_weight

    inside = np.zeros((4, 6), bool)
    inside[1:3, 1:5] = True
    prob, boxed = np.full((4, 6), 0.8), np.full((4, 6), 0.6)  # confidence 0.6 and 0.2
    prob[~inside], boxed[~inside] = 0.5, 1.0  # outside the box: not counted
    assert np.isclose(surer_weight(prob, boxed, inside), 0.2 / (0.6 + 0.2))
    assert surer_weight(np.full((4, 6), 0.5), boxed, inside) == 1.0  # the network unsure
    assert surer_weight(boxed, boxed, inside) == 0.5  # equally sure
    assert surer_weight(np.full((4, 6), 0.5), np.full((4, 6), 0.5), inside) == 0.5  # both unsure
    assert surer_weight(prob, boxed, np.zeros((4, 6), bool)) == 0.5  # an empty box
    assert np.isclose(surer_weight(prob[1:3, 1:5], boxed[1:3, 1:5]), 0.25)  # the box's pixels


def test_the_bundled_box_model_helps_the_bundled_model(monkeypatch):
    import pixelwise.cutout as cutout

    helper = cutout.box_helper(None, None)
    assert helper is not None and helper.box_input == 192 and helper.class_names[0] == "background"
    assert cutout.box_helper(cutout.get_model("foreground"), None) is helper  # loaded: the same
    calls = []
    real = cutout.box_probability
    monkeypatch.setattr(
        cutout, "box_probability", lambda *a, **k: calls.append(a[0]) or real(*a, **k)
    )
    rgb, disc, _ = scene()
    assert iou(alpha(rgb, box=(15, 30, 75, 90)), disc) > 0.9
    assert calls == [helper]  # the box model looked inside the box, once
    alpha(rgb)  # automatic: it looks inside the box of the first cut
    assert calls == [helper, helper]
    alpha(rgb, method="model")  # the network's own mask: not at all
    assert len(calls) == 2


def test_an_erase_stroke_beside_a_small_object_leaves_the_object(monkeypatch):
    """A COCO128 elephant of 1 % of its photo, boxed (its mask's box + 5 %), the cut-out with
    the bundled pair keeps a patch of bush beside it; an erase stroke there removes the patch,
    not the elephant: the stroke relaxes the prior within a tenth of the box's side. Relaxed
    within a tenth of the photo's side (the whole box), the colour models alone decided and
    emptied the box (docs/results.md (av))."""
    import json

    from scipy import ndimage

    import pixelwise.cutout as cutout
    from pixelwise.data.coco import annotation_mask
    from pixelwise.data.io import read_image

    coco = shared_dataset("coco128")
    note = next(
        a
        for a in json.loads((coco / "annotations.json").read_text())["annotations"]
        if a["id"] == 850
    )
    rgb = read_image(coco / "images" / "000000000597.jpg")
    truth = annotation_mask(note, *rgb.shape[:2]) > 0
    box = (379.5, 145.8, 456.5, 194.2)  # the mask's box grown by 5 % of its size per side
    boxed = alpha(rgb, box=box, box_model="foreground-box")
    assert iou(boxed, truth) > 0.6
    # the stroke a user draws: on the middle of the largest region kept wrongly
    labels, _ = ndimage.label(boxed & ~truth)
    wrong = labels == np.bincount(labels.ravel())[1:].argmax() + 1
    y, x = np.unravel_index(ndimage.distance_transform_edt(wrong).argmax(), wrong.shape)
    erase = [{"points": [[float(x), float(y)]], "radius": 6.4}]
    erased = alpha(rgb, box=box, box_model="foreground-box", background_strokes=erase)
    assert iou(erased, truth) > iou(boxed, truth) and not erased[y, x]
    monkeypatch.setattr(cutout.UserInput, "stroke_reach", lambda self, shape: 0.1)
    assert alpha(rgb, box=box, box_model="foreground-box", background_strokes=erase).sum() < 100


def test_an_automatic_cut_that_keeps_nothing_hands_over_to_grabcut(monkeypatch):
    import pixelwise.cutout as cutout
    from pixelwise.graphcut import graph_cut

    rgb, disc, _ = scene()
    prob = np.full(disc.shape, 0.3, np.float32)  # a hesitant network: a weak, small hunch
    prob[5:15, 5:15] = 0.55  # just over the "found nothing" share, on plain grey
    grabcut = graph_cut(rgb, np.full(disc.shape, 0.5), box=cutout.central_box(disc.shape))
    assert np.array_equal(cutout.cut_mask(rgb, prob, cutout.UserInput()), grabcut)
    assert grabcut[disc].all()
    monkeypatch.setattr(cutout, "EMPTY_FALLBACK", False)
    assert not cutout.cut_mask(rgb, prob, cutout.UserInput()).any()  # what it replaces


def test_a_box_cut_that_keeps_nothing_keeps_the_networks_best_guess_in_the_box(monkeypatch):
    import pixelwise.cutout as cutout

    rgb, disc, square = scene()
    prob = np.full(disc.shape, 0.01, np.float32)  # sure of background, a faint hunch on the disc
    prob[disc] = 0.04
    hints = cutout.UserInput(box=(15, 30, 75, 90))  # around the disc
    assert cutout.familiar(prob)  # so the cut takes this prior as it is, and keeps nothing
    assert np.array_equal(cutout.mask_of("graphcut", rgb, prob, None, hints), disc)
    monkeypatch.setattr(cutout, "BOX_EMPTY_FALLBACK", False)
    assert not cutout.mask_of("graphcut", rgb, prob, None, hints).any()  # what it replaces
    # likelier than not where it can be; the strokes stay what they say; nothing outside the box
    prob[square], prob[30:40, 20:30] = 0.9, 0.7
    erase, keep = np.zeros(disc.shape, bool), np.zeros(disc.shape, bool)
    erase[30:35, 20:30], keep[50, 40] = True, True
    guess = cutout.best_guess(prob, cutout.UserInput(hints.box, keep, erase))
    expected = np.zeros(disc.shape, bool)
    expected[35:40, 20:30], expected[50, 40] = True, True
    assert np.array_equal(guess, expected) and not guess[square].any()


def test_a_familiar_photo_is_cut_on_the_networks_probability_as_it_is(monkeypatch):
    import pixelwise.cutout as cutout

    # a blue square at the photo's right edge, outside the central box, and a band of the same
    # blue along the bottom
    rgb, disc, square = disc_and_square(120, 160, (55, 45, 25), (30, 80, 146, 160))
    band = np.zeros(disc.shape, bool)
    band[100:] = True
    noise = np.random.default_rng(1).integers(-8, 8, (band.sum(), 3))
    rgb[band] = (rgb[square].mean(0) + noise).astype(np.uint8)
    # a network sure of the disc and of the background, band included (confidence 1), that
    # leans towards the square (0.6, confidence 0.2)
    prob = np.where(disc, 1.0, 0.0).astype(np.float32)
    prob[square] = 0.6
    # blended with GrabCut's assumption the square falls under 0.5 (0.2 * 0.6 + 0.8 * 0.25), and
    # its colour is mostly background's
    fallback = cutout.box_prior(disc.shape, cutout.central_box(disc.shape))
    assert np.allclose(cutout.trusted(prob, fallback)[square], 0.32)
    hints = cutout.UserInput()
    assert not cutout.cut_mask(rgb, prob, hints)[square].any()
    plain = cutout.cut_mask(rgb, prob, hints, plain=True)
    assert iou(plain, disc | square) > 0.95
    # familiar: mean confidence over the photo; here 1 except on the square
    assert cutout.familiar(prob) and 1 - 0.8 * square.mean() >= cutout.FAMILIAR
    assert cutout.familiar(np.zeros_like(prob)) and not cutout.familiar(np.full_like(prob, 0.6))
    assert not cutout.familiar(None)
    # the automatic cut-out: the box model's second cut is plain exactly on a familiar photo,
    # and runs fewer rounds
    seen = []
    real = cutout.cut_mask

    def recorded(*args, plain=False, iterations=3, graph=None):
        seen.append((plain, iterations))
        return real(*args, plain=plain, iterations=iterations, graph=graph)

    monkeypatch.setattr(cutout, "cut_mask", recorded)
    helper = red_box_model(box_input=24)
    boxed = cutout.UserInput(box=(5.0, 5.0, 155.0, 115.0))
    second = cutout.SECOND_CUT_ITERATIONS
    for p, expected in ((prob, True), (np.where(disc, 0.6, 0.4), False)):
        seen.clear()
        cutout.mask_of("graphcut", rgb, p.astype(np.float32), helper, hints, "fp32")
        assert seen == [(False, 3), (expected, second)]
        seen.clear()  # a user's box: the one cut is plain on a familiar photo too
        cutout.mask_of("graphcut", rgb, p.astype(np.float32), helper, boxed, "fp32")
        assert seen == [(expected, 3)]


def test_an_erase_stroke_under_a_box_covering_a_familiar_photo_erases_only_background(
    monkeypatch,
):
    import pixelwise.cutout as cutout

    rgb, disc, square = scene()
    prob = np.where(disc, 0.98, 0.02).astype(np.float32)  # a network sure of the disc
    erase = np.zeros(disc.shape, bool)
    erase[60:66, 115:121] = True  # a dab on the blue square, which is background
    hints = cutout.UserInput(box=(0.0, 0.0, 160.0, 120.0), background=erase)
    assert cutout.familiar(prob) and not (disc & erase).any()
    assert iou(cutout.cut_mask(rgb, prob, hints, plain=True), disc) > 0.98
    # colour models started from the box, as GrabCut does: nothing lies outside it, so the
    # background model is the stroke's blue alone and the grey background turns foreground
    real = cutout.graph_cut
    monkeypatch.setattr(
        cutout, "graph_cut", lambda *a, **k: real(*a, **{**k, "start_from_prior": False})
    )
    wrong = cutout.cut_mask(rgb, prob, hints, plain=True)
    assert wrong[~disc & ~square].mean() > 0.9


def test_self_prompted_refines_inside_the_first_cuts_grown_box():
    from pixelwise.cutout import box_probability, self_prompted

    rgb, disc, _ = scene()
    helper = red_box_model(box_input=24)
    prob = np.full(disc.shape, 0.3, np.float32)
    refined = self_prompted(helper, rgb, prob, disc, "fp32")
    ys, xs = np.nonzero(disc)
    size = xs.max() + 1 - xs.min()  # a disc: as wide as high; the box grows 20 % per side
    x0, y0 = int(np.floor(xs.min() - 0.2 * size)), int(np.floor(ys.min() - 0.2 * size))
    x1, y1 = int(np.ceil(xs.max() + 1 + 0.2 * size)), int(np.ceil(ys.max() + 1 + 0.2 * size))
    inside = np.zeros(disc.shape, bool)
    inside[y0:y1, x0:x1] = True
    boxed = box_probability(helper, rgb, (x0, y0, x1, y1), "fp32")
    sure = np.abs(2 * boxed[inside] - 1).mean()  # 0.4 for the first cut's probability
    w = sure / (0.4 + sure)
    assert np.allclose(refined[inside], (1 - w) * 0.3 + w * boxed[inside], atol=1e-6)
    assert np.all(refined[~inside] == np.float32(0.3))


def test_strokes_alone_keep_the_largest_object_and_what_a_keep_stroke_touches():
    from pixelwise.cutout import stroked_objects

    mask = np.zeros((40, 60), bool)
    mask[5:25, 5:25] = True  # the largest object
    mask[30:35, 40:50] = True  # an object a keep stroke touches
    mask[2:4, 50:53] = True  # a speck nobody asked for
    stroke = np.zeros_like(mask)
    stroke[32, 30:42] = True  # reaches into the second object from outside it
    kept = stroked_objects(mask, stroke)
    assert kept[5:25, 5:25].all() and kept[30:35, 40:50].all() and not kept[2:4, 50:53].any()
    assert kept.sum() == 20 * 20 + 5 * 10
    # erase strokes only (no keep stroke): the largest object alone
    assert stroked_objects(mask, None).sum() == 20 * 20
    # one object: as it is
    assert np.array_equal(stroked_objects(mask[:26, :26], None), mask[:26, :26])


def test_near_strokes_keeps_only_the_changes_a_stroke_touches():
    from pixelwise.cutout import UserInput, near_strokes

    before = np.zeros((40, 60), bool)
    before[5:30, 5:30] = True
    after = before.copy()
    after[5:10, 5:30] = False  # removed, an erase stroke touches it
    after[25:30, 5:30] = False  # removed, no stroke near
    after[10:20, 40:50] = True  # added, a keep stroke touches it
    after[32:38, 40:50] = True  # added, no stroke near (the road a stroke turned foreground)
    keep, erase = np.zeros_like(before), np.zeros_like(before)
    keep[15, 51:55] = True  # two pixels right of the added square: within STROKE_REACH
    erase[3, 10:20] = True  # two pixels above the removed band
    mask = near_strokes(before, after, UserInput(None, keep, erase))
    expected = before.copy()
    expected[5:10, 5:30] = False
    expected[10:20, 40:50] = True
    assert np.array_equal(mask, expected)
    # a stroke's kind decides: an erase stroke does not admit what the cut adds near it
    assert np.array_equal(near_strokes(before, after, UserInput(None, None, keep)), before)
    assert np.array_equal(near_strokes(before, after, UserInput()), before)


@pytest.mark.parametrize("box", [None, (5, 5, 150, 115)])
def test_a_stroke_changes_the_cut_out_only_near_itself(monkeypatch, box):
    import pixelwise.cutout as cutout

    rgb, disc, square = scene()
    automatic = alpha(rgb, method="grabcut", box=box)  # without the stroke
    assert automatic[disc].mean() > 0.9 and not automatic[100:115, 30:60].any()
    keep = {"foreground_strokes": [{"points": [[110, 62], [130, 62]], "radius": 3}], "box": box}
    spill = np.zeros_like(disc)  # the cut with the stroke made to add a region far from it,
    spill[80:110, 30:60] = True  # joined to the disc (as a road to a car)
    real = cutout.cut_mask

    def spilling(small, prob, hints, *args, **kwargs):
        mask = real(small, prob, hints, *args, **kwargs)
        return mask | spill if hints.foreground is not None else mask  # the photo's own size

    monkeypatch.setattr(cutout, "cut_mask", spilling)
    cut = alpha(rgb, method="grabcut", **keep)
    assert cut[square].mean() > 0.8  # the stroke's square is added...
    assert np.array_equal(cut & ~square, automatic & ~square)  # ...and nothing else changes
    monkeypatch.setattr(cutout, "LOCAL_STROKES", False)
    assert (alpha(rgb, method="grabcut", **keep) & spill & ~disc).sum() > 0.9 * (
        spill & ~disc
    ).sum()


@pytest.mark.parametrize("method", ["grabcut", "graphcut"])
@pytest.mark.parametrize("box", [None, (20, 20, 300, 220)])
def test_an_erase_stroke_inside_the_subject_stays_erased(method, box):
    """An erase stroke that lies wholly inside the subject (the gap between an arm and the body,
    a hole the cut did not see) opens a hole in it: the holes of the cut are filled, but not
    one an erase stroke lies in (it used to be filled back, and the stroke did nothing)."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(30, 50, (240, 320, 3)).astype(np.uint8)
    rgb[60:180, 80:240] = rng.integers(200, 220, (120, 160, 3))  # a bright subject
    erase = [{"points": [[130, 120], [190, 120]], "radius": 5}]  # inside it, nowhere near its edge
    seg = tiny_seg(BrightIsForeground()) if method == "graphcut" else None
    cut = alpha(rgb, seg, method=method, box=box, background_strokes=erase)
    assert not cut[115:126, 130:191].any()  # erased where the stroke was
    assert cut[70:100, 90:230].all() and cut[140:170, 90:230].all()  # kept around it
    assert not cut[:50].any()


def test_a_stroke_after_the_cut_out_reuses_it(monkeypatch):
    import pixelwise.cutout as cutout

    rgb, disc, square = scene()
    keep = {"foreground_strokes": [{"points": [[110, 62], [130, 62]], "radius": 3}]}
    alpha(rgb, method="grabcut")  # the cut-out the web page shows before the stroke
    calls = []
    real = cutout.graphcut
    monkeypatch.setattr(cutout, "graphcut", lambda *a, **k: calls.append(1) or real(*a, **k))
    remembered = alpha(rgb, method="grabcut", **keep)
    assert calls == []  # the cut-out without the stroke was not computed again...
    cutout.CUT_OUTS.clear()
    computed = alpha(rgb, method="grabcut", **keep)
    assert calls == [1] and np.array_equal(remembered, computed)  # ...and is the same


def test_remembered_cut_outs_by_photo_and_probability_the_latest_few_read_only():
    from pixelwise.cutout import Remembered

    memory = Remembered(size=2)
    photos = [np.full((4, 5, 3), v, np.uint8) for v in range(3)]
    keys = [memory.key("graphcut", p, None, None, None, "auto") for p in photos]
    assert len(set(keys)) == 3
    prob = np.zeros((4, 5), np.float32)
    assert memory.key("graphcut", photos[0], prob, None, None, "auto") != keys[0]
    masks = [np.full((4, 5), bool(v % 2)) for v in range(3)]
    for key, mask in zip(keys, masks):
        assert memory.keep(key, None, mask) is mask and mask.flags.writeable
    assert memory.get(keys[0]) is None  # the oldest went
    assert np.array_equal(memory.get(keys[2]), masks[2]) and not memory.get(keys[2]).flags.writeable
    assert memory.get(keys[1]) is not None


def test_strokes_without_a_box_get_the_box_models_second_look(monkeypatch):
    import pixelwise.cutout as cutout

    rgb, disc, square = scene()
    looks = []
    first_look = cutout.self_prompted

    def recording(*args, **kwargs):
        looks.append(1)
        return first_look(*args, **kwargs)

    monkeypatch.setattr(cutout, "self_prompted", recording)
    whole, helper = red_box_model(box_input=0), red_box_model(box_input=24)
    keep = [{"points": [[110, 62], [130, 62]], "radius": 3}]
    cut = alpha(rgb, whole, box_model=helper, foreground_strokes=keep)
    # the second look ran with strokes alone, and for the cut-out without them (LOCAL_STROKES)...
    assert looks == [1, 1]
    assert iou(cut, disc | square) > 0.85  # ...and the stroke's square is kept beside the disc
    alpha(rgb, whole, box_model=helper, box=(10, 25, 150, 100), foreground_strokes=keep)
    assert looks == [1, 1]  # ...but not with a user's box


def test_strokes_on_a_photo_the_network_finds_nothing_in_hand_over_to_the_central_box(
    monkeypatch,
):
    import torch

    import pixelwise.cutout as cutout

    rgb, disc, square = scene()
    calls = []
    central = cutout.central_cut

    def recording(small, hints=None, graph=None):
        calls.append(hints)
        return central(small, hints, graph)

    monkeypatch.setattr(cutout, "central_cut", recording)
    blind = red_box_model(box_input=0)  # finds nothing: 0.5 everywhere
    torch.nn.init.zeros_(blind.network.weight), torch.nn.init.zeros_(blind.network.bias)
    keep = [{"points": [[110, 62], [130, 62]], "radius": 3}]
    cut = alpha(rgb, blind, foreground_strokes=keep)
    # GrabCut's central box, as without input, with the stroke still a hard constraint (and
    # once without it: the cut-out the stroke changes, LOCAL_STROKES)
    stroked = [hints for hints in calls if hints.foreground is not None]
    assert len(calls) == 2 and len(stroked) == 1 and stroked[0].foreground.any()
    assert cut[square].mean() > 0.8 and iou(cut, disc | square) > 0.8


def test_strokes_without_a_box_weigh_less_in_the_colour_models(monkeypatch):
    import pixelwise.cutout as cutout
    from pixelwise.graphcut import STROKE_WEIGHT, STROKE_WEIGHT_WITHOUT_BOX

    seen = []
    real = cutout.graph_cut

    def recording(*args, **kwargs):
        seen.append(kwargs["stroke_weight"])
        return real(*args, **kwargs)

    monkeypatch.setattr(cutout, "graph_cut", recording)
    rgb, disc, square = scene()
    keep = [{"points": [[110, 62], [130, 62]], "radius": 3}]
    alpha(rgb, method="grabcut", foreground_strokes=keep)
    assert seen and set(seen) == {STROKE_WEIGHT_WITHOUT_BOX}
    seen.clear()
    alpha(rgb, method="grabcut", box=(10, 25, 150, 100), foreground_strokes=keep)
    assert seen and set(seen) == {STROKE_WEIGHT} and STROKE_WEIGHT_WITHOUT_BOX < STROKE_WEIGHT


def test_cli_box_checkpoint_reaches_the_cut_out(monkeypatch, tmp_path):
    import pixelwise.cutout as cutout

    models = {"whole.pt": red_box_model(box_input=0), "box.pt": red_box_model(box_input=24)}
    monkeypatch.setattr(
        cutout, "get_model", lambda m, runtime="torch": models[m] if isinstance(m, str) else m
    )
    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs["box_model"])
        return remove_background(*args, **kwargs)

    monkeypatch.setattr(cutout, "remove_background", spy)
    Image.fromarray(scene()[0]).save(tmp_path / "a.png")
    common = ["remove-bg", str(tmp_path / "a.png"), "--checkpoint", "whole.pt", "--no-progress"]
    box = ["--box", "12,28,80,95", "--mask-only"]
    assert main([*common, "-o", str(tmp_path / "o1"), *box, "--box-checkpoint", "box.pt"]) == 0
    assert main([*common, "-o", str(tmp_path / "o2"), *box]) == 0  # own model: no bundled helper
    assert seen == [models["box.pt"], None]
    cut = np.asarray(Image.open(tmp_path / "o1" / "a.png")) > 127
    assert iou(cut, scene()[1]) > 0.9


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"box": (5, 5, 2, 9)}, "x0 < x1 and y0 < y1"),
        ({"box": (0, 0, float("inf"), 5)}, "box must have finite x0 < x1"),
        ({"box": (500, 500, 600, 600)}, "lies outside the 160 x 120 image"),
        ({"box": "abc"}, "box must be four numbers"),
        ({"foreground_strokes": [{"radius": 3}]}, "each stroke must be"),
        ({"background_strokes": [{"points": [[1, float("nan")]], "radius": 3}]}, "finite point"),
        ({"foreground_strokes": [{"points": [[1e308, 2]], "radius": 3}]}, "within 1,000,000"),
    ],
)
def test_bad_user_input_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        remove_background(scene()[0], method="grabcut", **kwargs)


def test_cli_out_naming_a_png_file_for_one_photo(tmp_path, capsys):
    rgb, disc, square = scene()
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb).save(tmp_path / "b.png")
    run = ["remove-bg", "--method", "grabcut", "--box", "15,30,75,90", "--no-progress"]
    assert main([*run, str(tmp_path / "a.png"), "-o", str(tmp_path / "out" / "cut.png")]) == 0
    assert iou(np.asarray(Image.open(tmp_path / "out" / "cut.png"))[..., 3] > 127, disc) > 0.9
    again = [*run, str(tmp_path / "a.png"), "-o", str(tmp_path / "out" / "cut.png")]
    assert main([*again, "--skip-existing"]) == 0
    assert "wrote 0 cut-outs to" in capsys.readouterr().out  # the file counts as the output
    run = ["remove-bg", "--method", "grabcut", "--no-progress"]
    assert (
        main(
            [*run, str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(tmp_path / "m.png")]
        )
        == 0
    )
    written = sorted(p.name for p in (tmp_path / "m.png").iterdir())  # a folder, marked as one
    assert written == [".pixelwise-output", "a.png", "b.png"]


def test_cli_standard_input_and_output(tmp_path, monkeypatch, capsys):
    """remove-bg in a pipeline: '-' reads the photo from standard input, '-o -' writes the
    cut-out's PNG, and nothing else, to standard output (a real pipe, in a subprocess); the
    cut-out is the one the Python function makes. Misuse is refused in one line."""
    import subprocess
    import sys

    rgb, disc, square = scene()
    Image.fromarray(rgb).save(tmp_path / "a.png")
    options = ["--method", "grabcut", "--box", "15,30,75,90", "--mask-only"]
    command = [sys.executable, "-m", "pixelwise", "remove-bg", "-", "-o", "-", *options]
    done = subprocess.run(
        command, input=(tmp_path / "a.png").read_bytes(), capture_output=True, check=True
    )
    piped = np.asarray(Image.open(io.BytesIO(done.stdout)))
    expected = remove_background(rgb, method="grabcut", box=(15, 30, 75, 90), mask_only=True)
    np.testing.assert_array_equal(piped, np.asarray(expected))
    assert iou(piped > 127, disc) > 0.9
    assert (
        main(["remove-bg", str(tmp_path / "a.png"), "-o", str(tmp_path / "c.png"), *options]) == 0
    )
    assert np.array_equal(np.asarray(Image.open(tmp_path / "c.png")), piped)

    def stdin(data: bytes) -> None:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))

    capsys.readouterr()
    stdin(b"")
    assert main(["remove-bg", "-", "-o", "-", *options]) == 2
    assert "error: <stdin>: empty file (0 bytes)" in capsys.readouterr().err
    stdin((tmp_path / "a.png").read_bytes())
    assert main(["remove-bg", "-", "-o", str(tmp_path / "d.png"), *options]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "d.png")), piped)
    assert main(["remove-bg", "-", "-o", str(tmp_path / "folder"), *options]) == 2
    assert (
        "needs its cut-out named (-o FILE.png, .webp, .jpg or .tif), or -o -"
        in capsys.readouterr().err
    )
    stdin((tmp_path / "a.png").read_bytes())
    assert main(["remove-bg", "-", "-o", str(tmp_path / "d.webp"), *options[:-1]]) == 0
    alpha = np.asarray(Image.open(tmp_path / "d.webp"))[..., 3]
    np.testing.assert_array_equal(alpha, piped)  # the alpha exact, the colours lossy
    assert main(["remove-bg", str(tmp_path / "a.png"), "-", "-o", "-", *options]) == 2
    assert "is for one photo; 2 input(s) given" in capsys.readouterr().err
    assert main(["remove-bg", str(tmp_path), "-o", "-", *options]) == 2
    assert "is not a photo; standard output takes one" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert main(["remove-bg", str(tmp_path / "a.png"), "-o", "-", *options]) == 2
    assert "standard output is a terminal" in capsys.readouterr().err


def test_cli_box_strokes_and_boxes(tmp_path, capsys):
    rgb, disc, square = scene()
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(rgb).save(photos / "a.png")
    Image.fromarray(rgb).save(photos / "b.png")
    out = tmp_path / "out"
    assert (
        main(
            [
                "remove-bg",
                str(photos / "a.png"),
                "-o",
                str(out / "box"),
                "--method",
                "grabcut",
                "--box",
                "15,30,75,90",
                "--mask-only",
                "--no-progress",
            ]
        )
        == 0
    )
    assert iou(np.asarray(Image.open(out / "box" / "a.png")) > 127, disc) > 0.9
    strokes = tmp_path / "strokes.json"
    strokes.write_text(
        json.dumps({"foreground": [{"points": [[110, 62], [130, 62]], "radius": 3}]})
    )
    assert (
        main(
            [
                "remove-bg",
                str(photos / "a.png"),
                "-o",
                str(out / "stroke"),
                "--method",
                "grabcut",
                "--box",
                "10,25,150,100",
                "--strokes",
                str(strokes),
                "--mask-only",
                "--no-progress",
            ]
        )
        == 0
    )
    assert (np.asarray(Image.open(out / "stroke" / "a.png")) > 127)[square].mean() > 0.8
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"a.png": [15, 30, 75, 90], "b.png": [95, 35, 145, 90]}))
    assert (
        main(
            [
                "remove-bg",
                str(photos),
                "-o",
                str(out / "boxes"),
                "--method",
                "grabcut",
                "--boxes",
                str(boxes),
                "--mask-only",
                "--no-progress",
            ]
        )
        == 0
    )
    assert iou(np.asarray(Image.open(out / "boxes" / "b.png")) > 127, square) > 0.85
    assert "warning" not in capsys.readouterr().err
    boxes.write_text(json.dumps({"a.png": [15, 30, 75, 90], "b.jpg": [95, 35, 145, 90]}))
    run = ["remove-bg", str(photos), "-o", str(out / "typo"), "--boxes", str(boxes)]
    assert main([*run, "--method", "grabcut", "--no-progress"]) == 0
    assert "no input photo named b.jpg (those boxes are unused)" in capsys.readouterr().err
    boxes.write_text(json.dumps({"b": [95, 35, 145, 90]}))  # a name without its suffix
    run = ["remove-bg", str(photos), "-o", str(out / "stems"), "--boxes", str(boxes)]
    assert main([*run, "--method", "grabcut", "--mask-only", "--no-progress"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert iou(np.asarray(Image.open(out / "stems" / "b.png")) > 127, square) > 0.85
    assert (
        main(["remove-bg", str(photos), "-o", str(out / "x"), "--box", "1,2,3,4", "--no-progress"])
        == 2
    )
    assert "--box and --strokes are for one photo; 2 inputs given" in capsys.readouterr().err


def test_http_box_and_strokes():
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    from fastapi.testclient import TestClient

    from pixelwise.web.app import create_app

    rgb, disc, square = scene()
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    client = TestClient(create_app(method="grabcut"), base_url="http://localhost")
    fields = {
        "box": "10,25,150,100",
        "mask_only": "true",
        "foreground_strokes": json.dumps([{"points": [[110, 62], [130, 62]], "radius": 3}]),
    }
    reply = client.post(
        "/api/remove-background",
        files={"file": ("s.png", buf.getvalue(), "image/png")},
        data=fields,
    )
    assert reply.status_code == 200, reply.text
    cut = np.asarray(Image.open(io.BytesIO(reply.content))) > 127
    assert iou(cut, disc | square) > 0.85
    schema = client.get("/openapi.json").json()
    props = json.dumps(schema["components"]["schemas"])
    assert all(f in props for f in ("box", "foreground_strokes", "background_strokes"))


LAYOUT_CHECK = """() => {
  const visible = (el) => el.offsetParent !== null && !el.classList.contains('sr-only');
  const rect = (el) => el.getBoundingClientRect();
  const overlap = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  const groups = [[...document.querySelector('.toolbar').children].filter(visible),
                  [document.querySelector('header'), document.querySelector('.toolbar'), document.getElementById('status'),
                   ...document.querySelectorAll('main figure')]];
  const clashes = [];
  for (const group of groups)
    for (let i = 0; i < group.length; i++)
      for (let j = i + 1; j < group.length; j++)
        if (overlap(rect(group[i]), rect(group[j]))) clashes.push(group[i].id || group[i].tagName, group[j].id || group[j].tagName);
  return {clashes, sideways: document.documentElement.scrollWidth > window.innerWidth};
}"""


def test_web_page_box_stroke_undo_in_a_real_browser(tmp_path):
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    from pixelwise.web.app import create_app

    rgb, photo = scene_photo(tmp_path)  # the scene at 2x
    square_centre, disc_centre = [240, 125], [90, 120]  # in the 320 x 240 photo
    viewport = {"width": 1280, "height": 900}
    with served_page(create_app(method="grabcut"), viewport) as (page, address):
        page.goto(address)
        assert "Photos up to 20 MB and 40 megapixels" in " ".join(
            page.text_content("header").split()
        )
        page.set_input_files("#file", str(photo))
        wait_done(page)
        at = photo_to_page(page, 320, 240)
        drag(page, [at(20, 50), at(300, 200)])  # a box around both objects
        wait_done(page, 2)
        assert (
            page.evaluate(ALPHA_AT, square_centre) == 255
            and page.evaluate(ALPHA_AT, disc_centre) == 255
        )
        page.keyboard.press("e")  # the erase tool, from the keyboard
        assert page.get_attribute("[data-tool=background]", "aria-pressed") == "true"
        drag(page, [at(215, 110), at(265, 140)])
        wait_done(page, 3)
        assert page.evaluate(ALPHA_AT, square_centre) == 0  # erased where the stroke was
        assert page.evaluate(ALPHA_AT, disc_centre) == 255  # and kept elsewhere
        page.screenshot(path=str(tmp_path / "page-1280x900.png"), full_page=True)
        assert page.evaluate(LAYOUT_CHECK) == {"clashes": [], "sideways": False}
        page.keyboard.press("Control+z")  # undo the stroke
        wait_done(page, 4)
        assert page.evaluate(ALPHA_AT, square_centre) == 255
        assert page.is_enabled("#redo")
        page.keyboard.press("Control+Shift+Z")  # and redo it
        wait_done(page, 5)
        assert page.evaluate(ALPHA_AT, square_centre) == 0 and page.is_disabled("#redo")
        page.click("#undo")
        wait_done(page, 6)
        assert page.evaluate(ALPHA_AT, square_centre) == 255
        page.set_viewport_size({"width": 390, "height": 844})
        assert page.evaluate(LAYOUT_CHECK) == {"clashes": [], "sideways": False}
        page.screenshot(path=str(tmp_path / "page-390x844.png"), full_page=True)
    keep_screenshots(tmp_path)


def test_web_page_zooms_about_the_pointer_and_strokes_land_where_drawn(tmp_path):
    """The wheel zooms the photo about the pointer (the pixel under it stays there), a stroke
    drawn while zoomed lands on the photo's pixels under it, Space + drag and the middle button
    pan without drawing, 0 fits the photo again, two fingers zoom; the pointer shows the
    brush's size."""
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    from pixelwise.web.app import create_app

    rgb, photo = scene_photo(tmp_path)
    square_centre, disc_centre = [240, 125], [90, 120]  # in the 320 x 240 photo
    with served_page(create_app(method="grabcut"), {"width": 1280, "height": 900}) as (page, _):
        at = boxed(page, _, photo)
        fitted = page.locator("#photo").bounding_box()
        page.mouse.move(*at(*square_centre))
        page.mouse.wheel(0, -300)
        page.mouse.wheel(0, -300)
        page.wait_for_function("document.getElementById('zoom-fit').textContent !== '100%'")
        zoomed = page.locator("#photo").bounding_box()
        assert zoomed["width"] / fitted["width"] == pytest.approx(np.exp(1.2), rel=0.01)
        under = page_to_photo(page, 320, 240)(*at(*square_centre))
        assert np.allclose(under, square_centre, atol=1)  # the pointer's pixel stayed there
        cursor = "decodeURIComponent(getComputedStyle(document.getElementById('photo')).cursor)"
        assert page.evaluate(cursor) == "crosshair"  # the box tool's
        page.keyboard.press("e")
        assert 'r="6"' in page.evaluate(cursor)  # the brush's circle: 12 screen pixels across
        at = photo_to_page(page, 320, 240)
        drag(page, [at(215, 110), at(265, 140)])  # across the square
        wait_done(page, 3)
        # a brush this thin (2 photo pixels at 332 %) erases the line it drew, where it drew it
        assert page.evaluate(ALPHA_AT, square_centre) < 128  # on the line
        assert page.evaluate(ALPHA_AT, [255, 110]) == page.evaluate(ALPHA_AT, [225, 140]) == 255
        assert page.evaluate(ALPHA_AT, disc_centre) == 255
        page.mouse.move(640, 450)
        page.keyboard.down(" ")  # Space + drag: pans
        assert page.evaluate(cursor) == "grab"
        before = page.locator("#photo").bounding_box()
        (x0, y0), (x1, y1) = at(240, 125), at(200, 100)
        drag(page, [(x0, y0), (x1, y1)])
        page.keyboard.up(" ")
        after = page.locator("#photo").bounding_box()  # the photo moved with the pointer
        assert (after["x"] - before["x"], after["y"] - before["y"]) == pytest.approx(
            (x1 - x0, y1 - y0), abs=0.5
        )
        page.mouse.move(x1, y1)  # the middle button pans too, whichever tool is chosen
        page.mouse.down(button="middle")
        page.mouse.move(x1 + 30, y1 - 20, steps=4)
        page.mouse.up(button="middle")
        moved = page.locator("#photo").bounding_box()
        assert (moved["x"] - after["x"], moved["y"] - after["y"]) == pytest.approx(
            (30, -20), abs=0.5
        )
        page.wait_for_timeout(300)
        assert page.evaluate("window.__shown") == 3 and page.is_enabled("#undo")  # nothing drawn
        page.keyboard.press("Control+z")  # the undo of the erase stroke, not of a pan
        wait_done(page, 4)
        assert page.evaluate(ALPHA_AT, square_centre) == 255
        page.keyboard.press("0")
        assert page.locator("#photo").bounding_box() == fitted
        assert page.text_content("#zoom-fit") == "100%"
        # two fingers: the first one's stroke is dropped, their spreading zooms
        under_finger = page.evaluate(PHOTO_AT, [148, 120])  # where the first finger begins
        touch = page.context.new_cdp_session(page)
        touch.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 2})
        at = photo_to_page(page, 320, 240)
        (ax, ay), (bx, by) = at(150, 120), at(170, 120)
        for kind, points in [
            ("touchStart", [(ax, ay)]),
            ("touchMove", [(ax - 5, ay)]),
            ("touchStart", [(ax - 5, ay), (bx, by)]),
            ("touchMove", [(ax - 25, ay), (bx + 20, by)]),
            ("touchEnd", []),
        ]:
            points = [{"x": x, "y": y, "id": i} for i, (x, y) in enumerate(points)]
            touch.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})
        assert page.text_content("#zoom-fit") == "260%"  # the fingers 25, then 65 pixels apart
        page.wait_for_timeout(300)
        assert page.evaluate("window.__shown") == 4  # nothing sent: no stroke
        assert page.evaluate(PHOTO_AT, [148, 120]) == under_finger  # no stroke drawn over it


def scene_photo(folder: Path) -> tuple[np.ndarray, Path]:
    """The scene at 320 x 240 (disc centre (90, 120), square's (240, 125)), saved as PNG."""
    rgb = np.asarray(Image.fromarray(scene()[0]).resize((320, 240), Image.NEAREST))
    Image.fromarray(rgb).save(folder / "scene.png")
    return rgb, folder / "scene.png"


def boxed(page, address: str, photo: Path):
    """The page with the scene's ``photo`` chosen and a box drawn around both objects, its
    two cut-outs shown; the page coordinates of the photo's pixels (:func:`photo_to_page`)."""
    page.goto(address)
    page.set_input_files("#file", str(photo))
    wait_done(page)
    at = photo_to_page(page, 320, 240)
    drag(page, [at(20, 50), at(300, 200)])
    wait_done(page, 2)
    return at


def page_to_photo(page, width: int, height: int):
    """A function of the page's coordinates on the photo's canvas to photo pixels (x, y)."""
    box = page.locator("#photo").bounding_box()
    return lambda x, y: (
        (x - box["x"]) * width / box["width"],
        (y - box["y"]) * height / box["height"],
    )


def test_web_page_composites_onto_a_colour_or_an_image_of_ones_own(tmp_path):
    """Background "colour…" shows a colour picker whose colour the cut-out is composited onto;
    "image…" asks for an image (scaled to cover the photo) and composites onto it."""
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    from pixelwise.web.app import create_app

    (rgb, photo), backdrop = scene_photo(tmp_path), tmp_path / "meadow.png"
    Image.fromarray(np.full((48, 64, 3), (20, 160, 40), np.uint8)).save(backdrop)
    with served_page(create_app(method="grabcut")) as (page, address):
        boxed(page, address, photo)
        # on the photo, what the cut-out removes is darkened, what it keeps is not
        dark, kept = page.evaluate(PHOTO_AT, [5, 5]), page.evaluate(PHOTO_AT, [90, 120])
        assert np.abs(np.array(kept[:3]) - rgb[120, 90]).max() <= 2
        assert 0.4 * rgb[5, 5].sum() < sum(dark[:3]) < 0.6 * rgb[5, 5].sum() + 60
        page.uncheck("#dim")
        assert np.abs(np.array(page.evaluate(PHOTO_AT, [5, 5])[:3]) - rgb[5, 5]).max() <= 2
        page.check("#dim")
        assert page.evaluate(PHOTO_AT, [5, 5]) == dark
        assert page.is_hidden("#bg-colour")
        page.select_option("#background", "colour")
        wait_done(page, 3)
        assert page.evaluate(RGBA_AT, [5, 5])[:3] == [0x27, 0x50, 0xC8]  # the picker's first colour
        page.fill("#bg-colour", "#ff8000")
        wait_done(page, 4)
        assert page.evaluate(RGBA_AT, [5, 5])[:3] == [255, 128, 0]
        photo_there = page.evaluate(PHOTO_AT, [5, 5])[:3]  # no alpha to dim by: the photo
        assert np.abs(np.array(photo_there) - rgb[5, 5]).max() <= 2
        with page.expect_file_chooser() as chooser:
            page.select_option("#background", "image")
        chooser.value.set_files(str(backdrop))
        wait_done(page, 5)
        assert page.is_hidden("#bg-colour") and page.is_visible("#bg-image-button")
        assert page.evaluate(RGBA_AT, [5, 5])[:3] == [20, 160, 40]
        disc = page.evaluate(RGBA_AT, [90, 120])[:3]  # the subject over it, as it was
        assert np.abs(np.array(disc) - rgb[120, 90]).max() <= 2


def test_web_page_opens_a_pasted_photo_and_copies_the_cut_out(tmp_path):
    """Ctrl+V with an image on the clipboard (a screenshot, a photo copied in another app) opens
    it as if chosen, as does a photo dropped anywhere on the page; Copy puts the cut-out on the clipboard as PNG: of the photo itself when the
    page edits a copy of it (as Download saves it), else the PNG shown."""
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    from pixelwise.web.app import Limits, create_app

    rgb = np.asarray(Image.fromarray(scene()[0]).resize((320, 240), Image.NEAREST))
    square_centre, disc_centre = [240, 125], [90, 120]  # in the 320 x 240 photo
    limits = Limits(preview_megapixels=0.02)  # edited on a copy of 163 x 122
    with served_page(create_app(method="grabcut", limits=limits)) as (page, address):
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        page.goto(address)
        page.evaluate(PASTE, list(b"not a photo"))  # the browser cannot show it, nor the server
        page.wait_for_function("document.getElementById('message').textContent.startsWith('error')")
        message = page.text_content("#message")
        assert message.startswith("error 4") and "image" in message, message
        page.evaluate(PASTE, list(png_bytes(rgb)))
        wait_done(page)
        shown = "document.getElementById('after').naturalWidth"
        assert page.evaluate(shown) == 163  # opened, on a copy
        at = photo_to_page(page, 320, 240)
        drag(page, [at(20, 50), at(150, 200)])  # a box around the disc alone
        wait_done(page, 2)
        page.select_option("#format", "webp")  # the clipboard gets a PNG whatever is saved
        wait_done(page, 3)
        alpha = copied_alpha(page)
        assert alpha.shape == (240, 320)  # the photo's own size
        assert alpha[tuple(disc_centre[::-1])] == 255 and alpha[tuple(square_centre[::-1])] == 0
        page.select_option("#format", "png")
        small = rgb[::2, ::2]  # 160 x 120: no copy; the PNG shown is what is copied
        page.evaluate(DROP, list(png_bytes(small)))  # dropped on the page's heading, not the zone
        wait_done(page, 5)
        assert page.evaluate(shown) == 160
        shown_png = Image.open(io.BytesIO(bytes(page.evaluate(SHOWN_PNG))))
        assert np.array_equal(copied_alpha(page), np.asarray(shown_png)[..., 3])


PASTE = """(bytes) => { const data = new DataTransfer();
    data.items.add(new File([new Uint8Array(bytes)], "image.png", { type: "image/png" }));
    document.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true })); }"""
DROP = """(bytes) => { const data = new DataTransfer();
    data.items.add(new File([new Uint8Array(bytes)], "dropped.png", { type: "image/png" }));
    document.querySelector("h1").dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true })); }"""
SHOWN_PNG = """async () => Array.from(new Uint8Array(await (await fetch(
    document.getElementById('after').src)).arrayBuffer()))"""
READ_CLIPBOARD = """async () => { const [item] = await navigator.clipboard.read();
    return Array.from(new Uint8Array(await (await item.getType("image/png")).arrayBuffer())); }"""


def png_bytes(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def copied_alpha(page) -> np.ndarray:
    """Click Copy; the alpha of the PNG the clipboard then holds."""
    page.click("#copy")
    page.wait_for_function(
        "document.getElementById('message').textContent.startsWith('copied')", timeout=30_000
    )
    return np.asarray(Image.open(io.BytesIO(bytes(page.evaluate(READ_CLIPBOARD)))))[..., 3]


def keep_screenshots(folder: Path) -> None:
    """The page's screenshots in ``folder`` copied where CI or a reviewer wants the pictures
    (``PIXELWISE_SCREENSHOTS``), if anywhere."""
    keep = os.environ.get("PIXELWISE_SCREENSHOTS")
    if keep:
        for shot in folder.glob("page-*.png"):
            shutil.copy(shot, Path(keep) / shot.name)


def test_web_page_edits_a_large_photo_on_a_copy_and_downloads_the_photo_cut_out(
    tmp_path, monkeypatch
):
    """A still photo over serve --preview-megapixels is cut out from a copy of that size at each
    box and stroke (quick on a phone's photo), the box and strokes scaled to it; Download asks
    for the cut-out of the photo itself, with the same box and strokes, at its full size. A
    PNG's copy keeps its transparency; an animated PNG is sent whole (a copy keeps one frame);
    a TIFF, which no browser shows, is drawn from the server's copy (/api/shown)."""
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    import pixelwise.web.app as web
    from pixelwise.data.io import transparency
    from pixelwise.web.app import Limits, create_app

    cut, seen = web.remove_background, []  # what the server was given: size, transparency

    def watched(image, *args, **kwargs):
        size = image.size if isinstance(image, Image.Image) else np.shape(image)[1::-1]
        seen.append((tuple(size), transparency(image) is not None))
        return cut(image, *args, **kwargs)

    monkeypatch.setattr(web, "remove_background", watched)

    rgb = np.asarray(Image.fromarray(scene()[0]).resize((320, 240), Image.NEAREST))
    photo = tmp_path / "scene.jpg"
    Image.fromarray(rgb).save(photo, quality=95)
    square_centre, disc_centre = [240, 125], [90, 120]  # in the 320 x 240 photo
    sticker = np.dstack([rgb, np.full((240, 320), 255, np.uint8)])
    sticker[:, 160:, 3] = 0  # the square's half transparent: the cut stays in the other
    Image.fromarray(sticker).save(tmp_path / "sticker.png")
    (tmp_path / "wave.png").write_bytes(animated_png(rgb))
    tifffile.imwrite(tmp_path / "scene.tif", rgb.astype(np.uint16) * 257)  # 16 bits
    limits = Limits(preview_megapixels=0.02, max_matting_megapixels=0.05)  # a copy: 163 x 122
    app = create_app(method="grabcut", limits=limits)
    with served_page(app, {"width": 1280, "height": 900}) as (page, address):
        page.goto(address)
        page.set_input_files("#file", str(photo))
        wait_done(page)
        shown = "[document.getElementById('after').naturalWidth, document.getElementById('after').naturalHeight]"
        assert page.evaluate(shown) == [163, 122]  # the copy's cut-out, drawn on at that size:
        assert page.evaluate("document.getElementById('photo').width") == 163  # light to draw
        note = " ".join(page.text_content("#preview-note").split())
        assert "of a 0.02-megapixel copy" in note and "itself, 0.077 megapixels" in note
        # matting on, for a photo larger than the server mats: it says the photo is matted shrunk
        assert page.is_enabled("#matting") and page.is_visible("#matting-limit")
        assert "at 0.05 megapixels, enlarged" in page.text_content("#matting-limit")
        at = photo_to_page(page, 320, 240)
        drag(page, [at(20, 50), at(300, 200)])  # a box around both objects
        wait_done(page, 2)
        page.keyboard.press("e")
        drag(page, [at(215, 110), at(265, 140)])  # erase the square
        wait_done(page, 3)
        small = [round(240 * 163 / 320), round(125 * 122 / 240)]  # the square's centre, copied
        assert page.evaluate(ALPHA_AT, small) == 0  # erased in the copy's cut-out
        with page.expect_download() as info:
            page.click("#download")
        saved = tmp_path / "download.png"
        info.value.save_as(saved)
        assert page.text_content("#message") == "done"
        page.set_viewport_size({"width": 390, "height": 844})  # the note beside the caption
        assert page.evaluate(LAYOUT_CHECK) == {"clashes": [], "sideways": False}
        page.screenshot(path=str(tmp_path / "page-preview-390x844.png"), full_page=True)
        page.set_input_files("#file", str(tmp_path / "sticker.png"))
        wait_done(page, 4)
        assert page.evaluate(shown) == [163, 122] and seen[-1] == ((163, 122), True)  # a PNG's
        assert page.evaluate(ALPHA_AT, [120, 60]) == 0  # copy, with its transparency
        page.set_input_files("#file", str(tmp_path / "wave.png"))
        wait_done(page, 5)
        assert page.evaluate(shown) == [320, 240] and page.is_hidden("#preview-note")
        page.set_input_files("#file", str(tmp_path / "scene.tif"))  # no browser shows a TIFF:
        wait_done(page, 6)  # drawn on the server's copy (/api/shown), cut out from it
        assert page.evaluate(shown) == [163, 122] and seen[-1] == ((163, 122), False)
        assert page.evaluate("document.getElementById('photo').width") == 163  # drawn at that
        page.click("[data-tool=box]")
        at = photo_to_page(page, 320, 240)  # at the phone's width now
        drag(page, [at(20, 50), at(150, 200)])  # a box around the disc alone
        wait_done(page, 7)
        with page.expect_download() as info:
            page.click("#download")
        tiff_cut = tmp_path / "tiff-cut.png"
        info.value.save_as(tiff_cut)
    keep_screenshots(tmp_path)
    alpha = np.asarray(Image.open(tiff_cut))[..., 3]
    assert alpha.shape == (240, 320) and seen[-1] == ((320, 240), False)  # the TIFF itself
    assert alpha[tuple(disc_centre[::-1])] == 255 and alpha[tuple(square_centre[::-1])] == 0
    alpha = np.asarray(Image.open(saved))[..., 3]
    assert alpha.shape == (240, 320)  # the photo's own size
    assert alpha[tuple(square_centre[::-1])] == 0 and alpha[tuple(disc_centre[::-1])] == 255
    assert alpha[5, 5] == 0  # outside the box


def test_web_page_mats_edits_smaller_and_downloads_matted_at_the_servers_size(
    tmp_path, monkeypatch
):
    """With matting on, the page's edits are matted at most at serve --edit-matting-megapixels
    (quicker strokes) and Download asks again for the cut-out matted at the server's own size;
    without matting, Download saves the cut-out shown, asking nothing more."""
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    import pixelwise.web.app as web
    from pixelwise.web.app import Limits, create_app

    cut, sizes = web.remove_background, []  # each request's matting size (None: not matted)

    def watched(image, *args, **kwargs):
        if "matting" in kwargs:  # not the server's warm-up at start
            sizes.append(kwargs["matting_megapixels"] if kwargs["matting"] else None)
        return cut(image, *args, **kwargs)

    monkeypatch.setattr(web, "remove_background", watched)
    photo = scene_photo(tmp_path)[1]  # 0.077 megapixels
    limits = Limits(preview_megapixels=0, max_matting_megapixels=0.05, edit_matting_megapixels=0.01)
    with served_page(create_app(method="grabcut", limits=limits)) as (page, address):
        page.goto(address)
        page.check("#matting")
        page.set_input_files("#file", str(photo))
        wait_done(page)
        assert sizes == [0.01]
        with page.expect_download() as info:
            page.click("#download")
        info.value.save_as(tmp_path / "matted.png")
        assert sizes == [0.01, 0.05] and page.text_content("#message") == "done"
        page.uncheck("#matting")
        wait_done(page, 2)
        with page.expect_download() as info:
            page.click("#download")
        info.value.save_as(tmp_path / "plain.png")
        assert sizes == [0.01, 0.05, None]  # the one shown
    for name in ("matted.png", "plain.png"):
        assert Image.open(tmp_path / name).size == (320, 240)


RGBA_AT = """([x, y]) => { const img = document.getElementById('after'), c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight; const g = c.getContext('2d'); g.drawImage(img, 0, 0);
    return Array.from(g.getImageData(x, y, 1, 1).data); }"""  # the cut-out's [r, g, b, a] at x, y
ALPHA_AT = f"(at) => ({RGBA_AT})(at)[3]"
PHOTO_AT = """([x, y]) => Array.from(document.getElementById('photo').getContext('2d')
    .getImageData(x, y, 1, 1).data)"""  # the photo's canvas as shown, [r, g, b, a]


def photo_to_page(page, width: int, height: int):
    """A function of photo pixels (x, y) to the page's coordinates on the photo's canvas."""
    box = page.locator("#photo").bounding_box()
    return lambda x, y: (box["x"] + x * box["width"] / width, box["y"] + y * box["height"] / height)


def drag(page, points):
    page.mouse.move(*points[0])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()


def wait_done(page, responses: int = 1):
    """Until the page has shown its ``responses``-th cut-out."""
    page.wait_for_function(
        f"document.getElementById('message').textContent === 'done' && window.__shown >= {responses}",
        timeout=30_000,
    )
