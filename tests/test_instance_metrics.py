"""Instance metrics and semantic -> instance conversion against hand-computed cases and naive loops."""

import itertools
import math

import numpy as np
import pytest

from pixelwise.instances import semantic_to_instances
from pixelwise.metrics import (
    aggregated_jaccard,
    contingency,
    dsb_average_precision,
    object_scores,
    panoptic_quality,
    rand_info_scores,
    seg_score,
)


def test_contingency_counts_pairs():
    ref = np.array([[0, 1, 1], [2, 2, 0]])
    pred = np.array([[5, 5, 0], [7, 7, 7]])
    assert contingency(ref, pred).tolist() == [[0, 1, 1], [1, 1, 0], [0, 0, 2]]


def test_seg_hand_case():
    ref = np.zeros((4, 8), int)
    ref[:, :4] = 1  # 16 px
    ref[:, 4:] = 2  # 16 px
    pred = np.zeros((4, 8), int)
    pred[:, :3] = 1  # covers 12/16 of R1 -> J = 12/16
    pred[:, 3:5] = 2  # covers 4/16 of R2: not more than half -> 0
    assert seg_score(ref, pred) == pytest.approx((12 / 16 + 0) / 2)
    assert seg_score(ref, ref) == 1.0


def test_object_scores_and_dsb_ap_hand_case():
    ref = np.zeros((10, 10), int)
    ref[0:4, 0:4] = 1  # 16 px
    ref[6:10, 6:10] = 2  # 16 px
    pred = np.zeros((10, 10), int)
    pred[0:4, 0:3] = 1  # IoU 12/16 = 0.75 with object 1
    pred[0:2, 6:8] = 2  # false positive
    s = object_scores(ref, pred)
    assert (s["tp"], s["fp"], s["fn"]) == (1, 1, 1)
    assert s["precision"] == 0.5 and s["recall"] == 0.5 and s["f1"] == 0.5
    ap = dsb_average_precision(ref, pred)
    # thresholds 0.5..0.70 (5 of them): TP=1, FP=1, FN=1 -> 1/3; 0.75..0.95: IoU 0.75 is not > 0.75 -> 0/4
    assert ap["mean_ap"] == pytest.approx(5 * (1 / 3) / 10)
    assert dsb_average_precision(ref, ref)["mean_ap"] == 1.0


def naive_rand_info(ref, pred):
    """Pixel-pair counting and explicit entropies over the reference foreground."""
    idx = [i for i in range(ref.size) if ref.flat[i] != 0]
    both = same_ref = same_pred = 0
    for a, b in itertools.product(idx, idx):
        r, p = ref.flat[a] == ref.flat[b], pred.flat[a] == pred.flat[b]
        both += r and p
        same_ref += r
        same_pred += p
    n = len(idx)
    joint, mr, mp = {}, {}, {}
    for i in idx:
        key = (ref.flat[i], pred.flat[i])
        joint[key] = joint.get(key, 0) + 1 / n
        mr[key[0]] = mr.get(key[0], 0) + 1 / n
        mp[key[1]] = mp.get(key[1], 0) + 1 / n
    mutual = sum(v * math.log(v / (mr[r] * mp[p])) for (r, p), v in joint.items())
    h = lambda m: -sum(v * math.log(v) for v in m.values())
    return 2 * both / (same_ref + same_pred), 2 * mutual / (h(mr) + h(mp))


@pytest.mark.parametrize("seed", range(4))
def test_rand_info_against_naive_pairs(seed):
    rng = np.random.default_rng(seed)
    ref, pred = rng.integers(0, 4, (5, 6)), rng.integers(0, 3, (5, 6))
    scores = rand_info_scores(ref, pred)
    v_rand, v_info = naive_rand_info(ref, pred)
    assert scores["v_rand"] == pytest.approx(v_rand) and scores["v_info"] == pytest.approx(v_info)
    perfect = rand_info_scores(ref, ref * 7)
    assert perfect["v_rand"] == pytest.approx(1.0) and perfect["v_info"] == pytest.approx(1.0)


def test_split_lowers_split_score_only():
    ref = np.ones((4, 4), int)
    pred = np.ones((4, 4), int)
    pred[:, 2:] = 2  # one object split in two halves
    s = rand_info_scores(ref, pred)
    assert s["v_rand_split"] == pytest.approx(0.5) and s["v_rand_merge"] == pytest.approx(1.0)


def test_semantic_to_instances_three_class_and_watershed():
    mask = np.zeros((12, 20), np.uint8)
    mask[2:10, 2:9], mask[2:10, 11:18] = 1, 1  # two interiors
    mask[2:10, 9:11] = 2  # border between touching cells
    labels = semantic_to_instances(mask, border_class=2)
    assert labels.dtype == np.uint16 and labels.max() == 2
    assert (labels[2:10, 9:11] > 0).all()  # border pixels given to a neighbour
    # two overlapping discs as one foreground blob: components finds 1, watershed splits 2
    yy, xx = np.mgrid[:40, :60]
    blob = (
        ((yy - 20) ** 2 + (xx - 20) ** 2 < 144) | ((yy - 20) ** 2 + (xx - 38) ** 2 < 144)
    ).astype(np.uint8)
    assert semantic_to_instances(blob).max() == 1
    assert semantic_to_instances(blob, method="watershed", min_distance=8).max() == 2
    tiny = blob.copy()
    tiny[0, 0] = 1
    assert semantic_to_instances(tiny, min_size=5).max() == 1
    with pytest.raises(ValueError, match="unknown method"):
        semantic_to_instances(blob, method="magic")


def test_boundary_codes_hand_computed_and_splitting_what_the_argmax_merges():
    import torch

    from pixelwise.instances import OBJECT_PROB, SEED_PROB, argmax_codes, boundary_codes

    assert (SEED_PROB, OBJECT_PROB) == (0.8, 0.85)
    # pixels as (background, interior, border) probabilities
    probs = torch.tensor(
        [
            [0.05, 0.90, 0.05],  # sure interior: seed
            [0.10, 0.50, 0.40],  # background under 0.15: object, not seed
            [0.30, 0.30, 0.40],  # the argmax says border (object); background 0.3 says no
            [0.05, 0.75, 0.20],  # interior by argmax, not sure enough for a seed
            [0.70, 0.20, 0.10],  # background
        ]
    ).T.reshape(1, 3, 1, 5)
    assert boundary_codes(probs).tolist() == [[[1, 2, 0, 2, 0]]]
    assert argmax_codes(probs).tolist() == [[[1, 1, 2, 1, 0]]]
    assert boundary_codes(probs).dtype == torch.uint8
    # two cells whose interiors touch at a neck of interior probability 0.7: the argmax joins
    # them into one seed, the seed threshold keeps them two; both rules give the cells' extent
    p = torch.zeros(1, 3, 12, 20)
    p[0, 0] = 1.0
    for c0, c1 in ((2, 9), (11, 18)):
        p[0, :, 2:10, c0:c1] = torch.tensor([0.02, 0.95, 0.03])[:, None, None]
    p[0, :, 2:10, 9:11] = torch.tensor([0.05, 0.70, 0.25])[:, None, None]
    merged = semantic_to_instances(argmax_codes(p)[0].numpy(), border_class=2)
    split = semantic_to_instances(boundary_codes(p)[0].numpy(), border_class=2)
    assert merged.max() == 1 and split.max() == 2
    assert ((split > 0) == (merged > 0)).all()


def _whole_image_reference(mask, border_class=None, min_distance=5):
    """The watersheds on the whole image at once (skimage and scipy directly), relabelled 1..N."""
    from scipy import ndimage
    from skimage.feature import peak_local_max
    from skimage.segmentation import relabel_sequential, watershed

    interior = ndimage.binary_fill_holes(mask == 1)
    if border_class is not None:
        markers = ndimage.label(interior)[0]
        region = interior | (mask == border_class)
        labels = watershed(ndimage.distance_transform_edt(~interior), markers, mask=region)
    else:
        distance = ndimage.distance_transform_edt(interior)
        components = ndimage.label(interior)[0]
        peaks = peak_local_max(
            distance, min_distance=min_distance, labels=components, exclude_border=False
        )
        markers = np.zeros(mask.shape, np.int32)
        markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
        labels = watershed(-distance, markers, mask=interior)
    return relabel_sequential(labels)[0]


def _cells(seed, size=160, count=60):
    """A class mask of touching discs: 1 interior, 2 a border ring around each (boundary model)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    mask = np.zeros((size, size), np.uint8)
    for _ in range(count):
        cy, cx, r = rng.integers(0, size), rng.integers(0, size), rng.integers(4, 11)
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        mask[(d2 <= r * r) & (mask == 0)] = 2
        mask[d2 <= (r - 2) ** 2] = 1
    return mask


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_watersheds_crop_by_crop_match_the_whole_image(seed):
    from scipy import ndimage

    mask = _cells(seed)
    for kind in ("border", "distance"):
        args = {"border_class": 2} if kind == "border" else {"method": "watershed"}
        reference = _whole_image_reference(mask, args.get("border_class"))
        whole = semantic_to_instances(mask, **args, tile=10_000)  # one crop: the whole image
        np.testing.assert_array_equal(whole, reference)
        for tile in (24, 48):  # dozens of crops, objects cut by tiles
            tiled = semantic_to_instances(mask, **args, tile=tile)
            assert tiled.max() == reference.max()
            np.testing.assert_array_equal(tiled > 0, reference > 0)
            if kind == "distance":  # the same objects, numbered crop by crop
                pairs = {(a, b) for a, b in zip(reference.ravel(), tiled.ravel()) if a}
                assert len(pairs) == reference.max()
                continue
            # the same seeds, numbered alike; a border pixel may change hands only where two
            # objects tie for it (skimage orders tied markers by its queue, which crops change)
            interior = ndimage.binary_fill_holes(mask == 1)
            np.testing.assert_array_equal(tiled[interior], reference[interior])
            assert (tiled != reference).mean() < 0.001


def test_distance_to_false_equals_scipys_transform_bit_for_bit():
    """The watersheds' distances (OpenCV's exact transform, rounded to whole squared distances)
    are scipy's Euclidean distance transform to the bit: random masks of every density, thin and
    one-pixel shapes, a single False pixel far away; no False pixel at all gives zeros."""
    from scipy import ndimage

    from pixelwise.instances import distance_to_false

    rng = np.random.default_rng(0)
    for density in (0.01, 0.5, 0.9, 0.999):
        for shape in ((1, 1), (1, 57), (40, 1), (93, 121), (300, 200)):
            mask = rng.random(shape) < density
            if mask.all():
                continue
            got = distance_to_false(mask)
            assert got.dtype == np.float64
            np.testing.assert_array_equal(got, ndimage.distance_transform_edt(mask))
    far = np.ones((1500, 1200), bool)
    far[3, 5] = False
    np.testing.assert_array_equal(distance_to_false(far), ndimage.distance_transform_edt(far))
    np.testing.assert_array_equal(distance_to_false(np.ones((4, 5), bool)), np.zeros((4, 5)))


def test_drop_small_relabels_in_order_and_never_wraps_past_65535_objects():
    from skimage.segmentation import relabel_sequential

    from pixelwise.instances import drop_small

    rng = np.random.default_rng(0)
    labels = rng.choice([0, 3, 7, 8, 20], size=(40, 50), p=[0.5, 0.3, 0.1, 0.0999, 0.0001])
    sizes = np.bincount(labels.ravel())
    expected = relabel_sequential(np.where(sizes[labels] < 5, 0, labels))[0]
    out = drop_small(labels, 5)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, expected)
    many = np.arange(70_000, dtype=np.int32).reshape(280, 250) * 2  # 69,999 objects, gaps between
    out = drop_small(many)
    assert out.dtype == np.uint32 and out.max() == 69_999
    np.testing.assert_array_equal(out, many // 2)


def test_label_images_beyond_65535_objects_are_written_as_32_bit_tiff(tmp_path):
    from pixelwise.data.io import read_mask
    from pixelwise.data.write import save_label_image

    few = np.arange(12, dtype=np.uint16).reshape(3, 4)
    assert save_label_image(tmp_path / "few.png", few) == tmp_path / "few.png"
    many = np.arange(70_000, dtype=np.uint32).reshape(280, 250)
    written = save_label_image(tmp_path / "many.png", many)
    assert written == tmp_path / "many.tif" and not (tmp_path / "many.png").exists()
    np.testing.assert_array_equal(read_mask(written), many)
    np.testing.assert_array_equal(read_mask(tmp_path / "few.png"), few)


def test_panoptic_quality_and_aji_hand_case():
    """R1 (16 px) predicted by P1 covering 12 of it (IoU 12/16); R2 (16 px) split evenly into P2
    and P3 (IoU 8/16 each: no match, IoU must exceed 0.5); P4 (4 px) on the background. PQ:
    TP 1, FP 3, FN 1."""
    ref = np.zeros((4, 10), int)
    ref[:, :4], ref[:, 4:8] = 1, 2
    pred = np.zeros((4, 10), int)
    pred[:, :3] = 1
    pred[:, 4:6], pred[1:4, 6:8], pred[0, 6:8] = 2, 3, 3
    pred[:, 8:9] = 4
    pq = panoptic_quality(ref, pred)
    assert pq["dq"] == pytest.approx(1 / (1 + 0.5 * 3 + 0.5 * 1))
    assert pq["sq"] == pytest.approx(12 / 16) and pq["pq"] == pytest.approx(pq["dq"] * 12 / 16)
    # AJI: R1 -> P1 (I 12, U 16); R2 -> P2 (first of the tied best, I 8, U 16); P3, P4 unpaired
    assert aggregated_jaccard(ref, pred) == pytest.approx((12 + 8) / (16 + 16 + 8 + 4))
    assert math.isnan(aggregated_jaccard(np.zeros((3, 3), int), np.zeros((3, 3), int)))
    assert aggregated_jaccard(ref, np.zeros_like(ref)) == 0.0


def naive_aji(ref, pred):
    """Kumar et al.'s definition, object by object with boolean masks."""
    refs = [ref == r for r in np.unique(ref) if r]
    preds = [pred == p for p in np.unique(pred) if p]
    common = union = 0
    used = set()
    for g in refs:
        ious = [(g & s).sum() / (g | s).sum() for s in preds]
        if not ious or max(ious) == 0:
            union += g.sum()
            continue
        j = int(np.argmax(ious))
        used.add(j)
        common += (g & preds[j]).sum()
        union += (g | preds[j]).sum()
    union += sum(s.sum() for j, s in enumerate(preds) if j not in used)
    return common / union


def naive_pq(ref, pred):
    refs = [ref == r for r in np.unique(ref) if r]
    preds = [pred == p for p in np.unique(pred) if p]
    matches = [
        (g & s).sum() / (g | s).sum()
        for g in refs
        for s in preds
        if (g & s).sum() / (g | s).sum() > 0.5
    ]
    tp, fp, fn = len(matches), len(preds) - len(matches), len(refs) - len(matches)
    dq = tp / (tp + 0.5 * fp + 0.5 * fn)
    return dq * (np.mean(matches) if matches else 0.0)


@pytest.mark.parametrize("seed", range(6))
def test_panoptic_quality_and_aji_against_naive_loops(seed):
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 5, (12, 14)).repeat(2, 0).repeat(2, 1)  # blocky objects
    pred = ref.copy()
    pred[rng.random(pred.shape) < 0.25] = rng.integers(0, 7)
    pred[:, : int(rng.integers(0, 10))] = 6
    assert panoptic_quality(ref, pred)["pq"] == pytest.approx(naive_pq(ref, pred))
    assert aggregated_jaccard(ref, pred) == pytest.approx(naive_aji(ref, pred))


@pytest.mark.parametrize("seed", range(3))
def test_sparse_pair_counts_give_the_scores_of_the_dense_table(seed, monkeypatch):
    """Many objects are counted by np.unique instead of a dense (R + 1) x (P + 1) bincount: the
    same pairs, areas and scores."""
    import pixelwise.metrics as metrics

    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 40, (30, 32)).repeat(2, 0)
    pred = np.where(rng.random(ref.shape) < 0.8, ref, rng.integers(0, 50, ref.shape))
    scores = (panoptic_quality, aggregated_jaccard, dsb_average_precision, seg_score,
              object_scores, rand_info_scores)  # fmt: skip
    dense = [f(ref, pred) for f in scores]
    table = contingency(ref, pred)
    monkeypatch.setattr(metrics, "DENSE_PAIRS", 0)
    assert np.array_equal(contingency(ref, pred), table)
    for f, expected in zip(scores, dense):
        found = f(metrics.overlaps(ref, pred))
        assert (
            found == pytest.approx(expected)
            if not isinstance(found, dict)
            else all(found[k] == pytest.approx(v) for k, v in expected.items() if k != "ap")
        )
