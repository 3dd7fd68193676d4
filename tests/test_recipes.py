"""Analysis scripts under recipes/ that docs/results.md quotes."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_dataset
from PIL import Image
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_label_offset_finds_a_known_shift():
    """Dark grid lines; labels drawn one pixel above them -> moved +1 down, 0 right to line up."""
    offset = _load("isbi2012_label_offset")
    lines = np.zeros((3, 64, 64), bool)
    lines[:, 10::16, :] = lines[:, 11::16, :] = lines[:, :, 6::16] = lines[:, :, 7::16] = True
    images = 200 - 150 * ndimage.gaussian_filter(lines.astype(float), (0, 1.5, 1.5))
    labels = np.roll(lines, -1, axis=1)  # one pixel up
    table = offset.correlation_table(images, labels.astype(float))
    centre = len(offset.SHIFTS) // 2
    assert abs(offset.subpixel_peak(table[:, centre]) - 1) < 0.15
    assert abs(offset.subpixel_peak(table[centre, :])) < 0.15


def test_foreground_splits_keep_held_out_photos_out_of_training(tmp_path):
    """Leave-one-source-out: the held-out source, the fixed portrait fifth and the dev photos
    never reach training; the dev photos are the validation set; the split is deterministic."""
    fs = _load("foreground_splits")
    data = shared_dataset("foreground")
    out = tmp_path / "split"
    counts = fs.build(data, out, "davis345")
    train = {p.stem for p in (out / "train" / "images").iterdir()}
    val = {p.stem for p in (out / "val" / "images").iterdir()}
    assert counts == {"train": len(train), "val": len(val)} and not train & val
    assert not any(n.startswith("davis345_") for n in train | val)
    assert not {f"eg1800_train_{s}" for s in fs.eg1800_test()} & train
    assert val == {
        f"{s}_{stem.replace(' ', '_')}"
        for s in fs.SOURCES
        if s != "davis345"
        for stem in fs.dev_set(data, s)
    }
    tested = (out / "test.txt").read_text().split()
    assert len(tested) == 100 and all(t.startswith("davis345/") for t in tested)
    assert not {t.split("/")[1] for t in tested} & set(fs.dev_set(data, "davis345"))
    assert fs.test_set(data, "eg1800_train") == fs.test_set(data, "eg1800_train")
    assert set(fs.test_set(data, "eg1800_train")) <= fs.eg1800_test()


def test_foreground_splits_add_coco_instances_as_mask_pairs(tmp_path):
    """--coco128: each instance of >= 1 % of its photo becomes a (photo, mask) training pair whose
    mask is the polygon as COCO's tools rasterise it (its vertices on pixel corners: a square
    from 10 to 30 covers pixels 10..29); smaller ones are left out."""
    import json

    fs = _load("foreground_splits")
    coco, out = tmp_path / "coco", tmp_path / "split"
    (coco / "images").mkdir(parents=True)
    Image.new("RGB", (100, 50)).save(coco / "images" / "000000000007.jpg")
    square = [10, 10, 30, 10, 30, 30, 10, 30]  # 20 x 20 pixels: 8 % of the photo
    speck = [60, 5, 62, 5, 62, 7]  # a few pixels: under 1 %
    notes = [
        {"id": i, "image_id": 7, "segmentation": [poly], "area": area, "iscrowd": 0}
        for i, poly, area in ((3, square, 400.0), (4, speck, 2.0))
    ]
    photo = {"id": 7, "file_name": "000000000007.jpg", "width": 100, "height": 50}
    (coco / "annotations.json").write_text(json.dumps({"images": [photo], "annotations": notes}))
    assert fs.add_instances(coco, out / "train") == 1
    assert [p.name for p in (out / "train" / "images").iterdir()] == ["coco128_000000000007_3.jpg"]
    mask = np.array(Image.open(out / "train" / "masks" / "coco128_000000000007_3.png"))
    expected = np.zeros((50, 100), np.uint8)
    expected[10:30, 10:30] = 255
    np.testing.assert_array_equal(mask, expected)
    # --instances: the pairs alone, an images/ + masks/ folder to score on
    alone = tmp_path / "alone"
    command = [
        sys.executable,
        str(REPO / "recipes" / "foreground_splits.py"),
        str(coco),
        str(alone),
    ]
    subprocess.run([*command, "--instances"], check=True, capture_output=True)
    assert [p.name for p in (alone / "masks").iterdir()] == ["coco128_000000000007_3.png"]
    assert (alone / "images" / "coco128_000000000007_3.jpg").is_symlink()


def test_foreground_table_from_eval_files(tmp_path):
    import json

    foreground_table = _load("foreground_table")

    for source, values in (("ccp", (0.5, 0.7, 0.6)), ("davis345", (0.3, 0.4, 0.2))):
        run = tmp_path / source
        run.mkdir()
        summary = {
            m: {source: {"images": 100, "mean_iou": v}}
            for m, v in zip(foreground_table.METHODS, values)
        }
        (run / "eval.json").write_text(json.dumps(summary))
    text = foreground_table.table(foreground_table.rows([tmp_path / "ccp", tmp_path / "davis345"]))
    assert "| ccp | 100 | 0.500 | 0.700 | 0.600 |" in text
    assert "**0.400** | **0.550** | **0.400**" in text


def test_nuclei_thresholds_cross_selection_scores_each_pick_on_the_other_half():
    import sys

    sys.path.insert(0, str(REPO / "recipes"))  # the recipe imports its sibling nuclei_eval
    cross_selected = _load("nuclei_thresholds").cross_selected
    ids = ["a", "b", "c", "d"]  # halves: a, c and b, d
    scores = {
        "wide": {"a": 0.9, "c": 0.9, "b": 0.1, "d": 0.3},  # best on the first half
        "tight": {"a": 0.5, "c": 0.5, "b": 0.6, "d": 0.6},  # best on the second half
    }
    picks, value = cross_selected(scores, ids)
    assert picks == ["wide", "tight"]
    # wide scored on b, d (0.2 mean), tight on a, c (0.5 mean): (0.2 * 2 + 0.5 * 2) / 4
    assert abs(value - 0.35) < 1e-12


def test_nuclei_eval_intensity_shifts():
    shifted = _load("nuclei_eval").shifted
    image = np.array([[0, 10, 200]], np.uint8)
    np.testing.assert_array_equal(shifted(image, 0.5), [[0, 5, 100]])
    np.testing.assert_array_equal(shifted(image, 2.0), [[0, 20, 255]])  # clipped
    twelve = shifted(image, as_12_bit=True)
    assert twelve.dtype == np.uint16 and twelve.tolist() == [[0, 160, 3200]]
    with pytest.raises(ValueError, match="8-bit"):
        shifted(twelve, as_12_bit=True)


def test_nuclei_thresholds_report_picks_per_type_and_falls_back_for_small_types(capsys):
    import sys

    sys.path.insert(0, str(REPO / "recipes"))
    report = _load("nuclei_thresholds").report
    ids = [f"f{i}" for i in range(6)] + ["b0", "b1"]
    types = {s: "fluorescence" if s.startswith("f") else "brightfield" for s in ids}
    scores = {
        "argmax": {s: 0.4 for s in ids},
        "tight": {s: 0.6 if s.startswith("f") else 0.1 for s in ids},  # best overall and on f
        "wide": {s: 0.1 if s.startswith("f") else 0.9 for s in ids},  # best on the two b ids
    }
    chosen = report(scores, types, ids)
    # overall: tight 0.475, argmax 0.4, wide 0.3; fluorescence (6 ids) picks on its own; brightfield
    # (2 ids, under MIN_IMAGES) takes the overall pick, not its own best (wide)
    assert chosen == {
        "overall": "tight",
        "per_type": {"brightfield": "tight", "fluorescence": "tight"},
    }
    out = capsys.readouterr().out
    assert "fluorescence (6 ids): tight, 0.6000 (argmax 0.4000); cross-selected 0.6000" in out


def test_selftrain_labels_only_unscored_photos_and_mixes_as_many_labelled(tmp_path):
    """Self-training data: the pseudo-labelled photos are never development, test or portrait-
    fifth photos; their masks are the cut's, 0/255; as many labelled photos join them."""
    import sys

    sys.path.insert(0, str(REPO / "recipes"))  # the recipe imports its sibling foreground_splits
    st, fs = _load("foreground_selftrain"), _load("foreground_splits")
    data = shared_dataset("foreground")
    split = tmp_path / "loso-data"
    for i, stem in enumerate(fs.stems(data, "ccp")[:6]):
        fs.link(data, split, "val" if i == 0 else "train", "ccp", stem)
    pool = st.unlabelled_pool(data, "eg1800_train", 4)
    scored = set(fs.dev_set(data, "eg1800_train")) | set(fs.test_set(data, "eg1800_train"))
    assert len(pool) == 4 and not set(pool) & (scored | fs.eg1800_test())
    shapes = {}

    def cut(path):
        h, w = np.asarray(Image.open(path)).shape[:2]
        shapes[path.stem] = (h, w)
        return np.arange(w)[None, :].repeat(h, 0) < w // 2  # the left half

    out = tmp_path / "st"
    assert st.build(data, split, out, "eg1800_train", cut, photos=4) == 4
    names = sorted(p.stem for p in (out / "train" / "images").iterdir())
    assert {n for n in names if n.startswith("pseudo_")} == {f"pseudo_{s}" for s in pool}
    assert len(names) == 8 and sum(n.startswith("ccp_") for n in names) == 4  # of the 5 labelled
    for stem in pool:
        mask = np.asarray(Image.open(out / "train" / "masks" / f"pseudo_{stem}.png"))
        assert mask.shape == shapes[stem] and set(np.unique(mask)) == {0, 255}
        assert mask[:, 0].all() and not mask[:, -1].any()
    assert [p.name for p in (out / "val" / "images").iterdir()] == [
        p.name for p in (split / "val" / "images").iterdir()
    ]


def test_corrective_strokes_are_drawn_on_the_largest_error_and_kept(monkeypatch):
    import torch
    from conftest import disc_and_square, red_box_model

    monkeypatch.syspath_prepend(str(REPO / "recipes"))
    interactive = _load("interactive_eval")
    rgb, disc, square = disc_and_square(120, 160, (60, 45, 25), (40, 85, 100, 140))
    truth = disc | square
    box = interactive.grown_box(truth)
    start = np.zeros(truth.shape, np.float32)  # a result that missed everything
    kind, stroke = interactive.corrective_stroke(start, truth)
    x, y = (int(v) for v in stroke["points"][0])
    assert kind == "foreground_strokes" and truth[y, x]  # a keep stroke inside the miss
    # a missed region along the photo's border: the stroke goes to its middle, not on the border
    left = np.zeros((40, 60), bool)
    left[:, :20] = True
    kind, stroke = interactive.corrective_stroke(np.zeros(left.shape, np.float32), left)
    x, y = stroke["points"][0]
    assert kind == "foreground_strokes" and x in (9, 10) and 9 <= y <= 30  # 10 px from any edge
    cut = {"model": None, "method": "grabcut", "box": box, "mask_only": True}
    scores = interactive.corrected(rgb, truth, start, 3, **cut)
    assert len(scores) == 3 and scores[0] > 0.3 and scores[-1] > 0.9
    # without a box: the automatic cut-out by a network that sees the red disc only, and is
    # unsure of it, then strokes alone: the first (a keep stroke on the square) brings the square
    unsure = red_box_model(box_input=0)
    with torch.no_grad():
        unsure.network.weight.mul_(0.1), unsure.network.bias.mul_(0.1)
    painted = interactive.score_without_box(unsure, rgb, truth, strokes=2)
    assert list(painted) == ["automatic", "automatic + 1 stroke", "automatic + 2 strokes"]
    assert painted["automatic"] < 0.6 and painted["automatic + 1 stroke"] > 0.95


def test_grey_versions_of_photos_are_their_luma_in_three_equal_channels():
    grey = _load("foreground_eval").grey
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3)).astype(np.uint8)
    out = grey(rgb)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert (out == out[..., :1]).all()
    luma = rgb.astype(np.float64) @ [0.299, 0.587, 0.114]  # ITU-R 601, as PIL's "L"
    assert np.abs(out[..., 0] - luma).max() <= 1
    assert (grey(rgb[..., :1]) == rgb[..., :1]).all()  # a grey photo stays as it is


def test_each_method_is_paired_with_grabcut_on_the_photos_both_scored():
    """foreground_eval's GrabCut comparison: per source, the differences of the photos both
    methods scored, their mean and bootstrap interval; none where under 5 are shared."""
    from pixelwise.metrics import mean_interval

    ev = _load("foreground_eval")
    theirs = {f"{i}": 0.5 for i in range(6)}
    ours = {f"{i}": 0.5 + 0.1 * (i % 2) for i in range(7)}  # photo 6 only ours: left out
    summary = {
        "graphcut": {"a": {"per_image_iou": ours}, "b": {"per_image_iou": {"0": 1.0}}},
        "grabcut": {"a": {"per_image_iou": theirs}, "b": {"per_image_iou": {"0": 0.5}}},
    }
    (line,) = ev.against_grabcut(summary)
    lo, hi = mean_interval([0.0, 0.1] * 3)
    assert line.split() == [
        *["graphcut", "a", "-", "grabcut:", "+0.0500", "per", "photo,", "95", "%", "interval"],
        *[f"{lo:+.4f}", "to", f"{hi:+.4f}", "(6", "photos)"],
    ]
    # interactive_eval's baseline is OpenCV's GrabCut from the box, under its own name
    renamed = {"box" if m == "graphcut" else "opencv-grabcut": by for m, by in summary.items()}
    (line,) = ev.against_grabcut(renamed, baseline="opencv-grabcut")
    assert line.split()[:5] == ["box", "a", "-", "opencv-grabcut:", "+0.0500"]


def test_sparse_slide_outlines_some_nuclei_of_a_slide_and_holds_out_the_rest(tmp_path):
    """recipes/sparse_slide.py: a 3 x 4 mosaic of 12 gbm40 images as one tiled TIFF with 40 % of
    each image's nuclei outlined in GeoJSON, read as windows of a slide; the other 27 images
    held out whole (links to the data's files)."""
    import tifffile

    from pixelwise.data.layouts import find_items

    sparse = _load("sparse_slide")
    data = shared_dataset("nuclei_he") / "gbm40"
    counts = sparse.build(data, tmp_path)
    assert counts["slide"] == (1536, 2048) and counts["held"] == 27
    with tifffile.TiffFile(tmp_path / "train" / "slide.tif") as tif:
        assert tif.pages[0].is_tiled and tif.pages[0].shape == (1536, 2048, 3)
    held = {p.name for p in (tmp_path / "held" / "images").iterdir()}
    assert len(held) == 27 and all((data / "images" / name).is_file() for name in held)
    features = json.loads((tmp_path / "train" / "slide.geojson").read_text())["features"]
    assert len(features) == counts["nuclei"] and 500 < len(features) < 700  # 40 % of 1,500+
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PIXELWISE_MAX_PIXELS", "2000000")
        items = find_items(tmp_path / "train")
    assert len(items) > 100 and all(item.window is not None for item in items)


def test_a_cut_out_cut_again_is_scored_with_and_without_its_alpha(monkeypatch):
    from conftest import BrightIsForeground, tiny_seg

    monkeypatch.syspath_prepend(str(REPO / "recipes"))
    again = _load("cutout_again_eval")
    yy, xx = np.mgrid[:120, :160]
    truth = (yy - 60) ** 2 + (xx - 50) ** 2 < 30**2
    image = np.full((120, 160, 3), 40, np.uint8)
    image[truth] = 210
    image[10:110, 100:155] = 220  # bright, larger, outside the mask: the cut's choice alone
    rgba = again.as_cut_out(image, truth)
    assert (rgba[..., 3] == np.where(truth, 255, 0)).all() and (rgba[..., :3] == image).all()
    assert not again.as_cut_out(image, truth, zeroed=True)[~truth].any()
    scores = again.scores(tiny_seg(BrightIsForeground()), image, truth)
    assert scores["alpha ignored"] < 0.5 < 0.95 < scores["alpha kept"]
