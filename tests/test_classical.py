"""Classical methods recover a known answer, and region-to-class matching follows its rule."""

import json

import numpy as np
import pytest
from conftest import shared_dataset
from PIL import Image

from pixelwise.classical import METHODS, regions_to_classes, run_method
from pixelwise.cli import main


def _two_regions(colour: bool = True, seed: int = 0):
    """A bright object on a dark background, away from the border, with Gaussian noise."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((64, 80), np.int64)
    truth[16:48, 20:60] = 1
    base = np.where(truth[..., None] == 1, np.array([220, 180, 80]), np.array([40, 70, 140]))
    image = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    return (image if colour else image.mean(-1, keepdims=True).astype(np.uint8)), truth


def _foreground_iou(pred, truth):
    return ((pred == 1) & (truth == 1)).sum() / ((pred == 1) | (truth == 1)).sum()


@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize("colour", [True, False])
def test_each_method_recovers_two_flat_regions(name, colour):
    image, truth = _two_regions(colour)
    regions = run_method(name, image)
    assert regions.shape == truth.shape
    assert _foreground_iou(regions_to_classes(regions, truth, 2), truth) >= 0.95


def test_unknown_method_and_parameter_are_clear_errors():
    image, _ = _two_regions()
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        run_method("nope", image)
    with pytest.raises(ValueError, match="method 'kmeans' has no parameter n"):
        run_method("kmeans", image, n=3)


def test_graphcut_from_seeds():
    image, truth = _two_regions()
    seeds = np.zeros(truth.shape, np.int64)
    seeds[30:34, 38:42], seeds[:3, :] = 1, 2
    assert _foreground_iou(run_method("graphcut", image, seeds=seeds), truth) >= 0.95


def test_grabcut_without_room_for_its_box_is_a_clear_error():
    # OpenCV's own assertion otherwise; a 3 x 3 image is the smallest with a central box
    rng = np.random.default_rng(0)
    for h, w in ((1, 1), (2, 2), (1, 40), (40, 2)):
        with pytest.raises(ValueError, match=f"at least 3 x 3 pixels, got {w} x {h}"):
            run_method("graphcut", rng.integers(0, 255, (h, w, 3)).astype(np.uint8))
    assert run_method("graphcut", rng.integers(0, 255, (3, 3, 3)).astype(np.uint8)).shape == (3, 3)
    image, _ = _two_regions()
    h, w = image.shape[:2]
    for box in ((0, 0, w, h), (-5, -5, w + 10, h + 10), (4, 4, 0, 3)):
        with pytest.raises(ValueError, match="pixels inside and outside it"):
            run_method("graphcut", image, box=box)


def test_hungarian_matching_hand_computed():
    regions = np.array([[0, 0, 1, 3], [1, 2, 2, 3]])
    target = np.array([[1, 1, 0, 0], [0, 0, 2, 2]])
    # overlaps: region 0 -> class 1 (2 px); region 1 -> class 0 (2); region 2 -> classes 0, 2 (1 each);
    # region 3 -> classes 0, 2 (1 each). One-to-one with 3 classes and 4 regions: 0->1, 1->0, and one of
    # regions 2/3 -> 2 (both give 1 px); the other gets the "no class" id 3.
    out = regions_to_classes(regions, target, 3)
    assert out[0, 0] == out[0, 1] == 1 and out[0, 2] == out[1, 0] == 0
    assert sorted({int(out[1, 1]), int(out[0, 3])}) == [2, 3]
    assert (out[regions == 2] == out[1, 1]).all() and (out[regions == 3] == out[0, 3]).all()


def test_best_foreground_region_set_hand_computed():
    # regions: a (4 px, all fg), b (4 px, 3 fg), c (4 px, 1 fg), ignore pixel in c
    regions = np.array([[0, 0, 0, 0], [1, 1, 1, 1], [2, 2, 2, 2]])
    target = np.array([[1, 1, 1, 1], [1, 1, 1, 0], [1, 0, 0, 255]])
    # prefixes by fg share, (fg IoU + bg IoU) / 2: {}: (0 + 3/11) / 2; {a}: (4/8 + 3/7) / 2;
    # {a,b}: (7/9 + 2/4) / 2 = 0.639; {a,b,c}: (8/11 + 0) / 2 -> {a, b}
    out = regions_to_classes(regions, target, 2)
    assert out.tolist() == [[1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0]]


def test_cli_compare_and_predict_method(tmp_path, capsys):
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    for i in range(3):
        image, truth = _two_regions(seed=i)
        Image.fromarray(image).save(data / "images" / f"{i}.png")
        Image.fromarray((truth * 255).astype(np.uint8)).save(data / "masks" / f"{i}.png")
    out = tmp_path / "cmp"
    assert (
        main(
            [
                "compare",
                str(data),
                "--methods",
                "otsu,kmeans,slic",
                "--mask-values",
                "0,255",
                "--out",
                str(out),
                "--grid",
                "2",
            ]
        )
        == 0
    )
    rows = json.loads((out / "compare.json").read_text())["rows"]
    assert [r["method"] for r in rows] == ["otsu", "kmeans", "slic"]
    assert all(r["mean_iou"] > 0.95 and r["seconds_per_image"] > 0 for r in rows)
    assert (
        Image.open(out / "grid.png").size[0] > 400
        and "| otsu |" in (out / "compare.md").read_text()
    )
    assert (
        main(["predict", str(data / "images"), "--method", "otsu", "--out", str(tmp_path / "p")])
        == 0
    )
    assert len(list((tmp_path / "p" / "masks").glob("*.png"))) == 3
    again = ["predict", str(data / "images"), "--method", "otsu", "--out", str(tmp_path / "q")]
    assert main([*again, "--geojson", "--tile", "512"]) != 0  # not written: said, not ignored
    assert not (tmp_path / "q").exists()
    # masks predicted beforehand (here otsu's, written by predict) compare as NAME:FOLDER,
    # scored as the method that made them, untimed
    argv = ["compare", str(data), "--methods", f"otsu,saved:{tmp_path / 'p'}", "--out", str(out)]
    capsys.readouterr()
    assert main([*argv, "--mask-values", "0,255", "--no-progress"]) == 0
    assert "compare: " not in capsys.readouterr().err  # no progress bar
    otsu, saved = json.loads((out / "compare.json").read_text())["rows"]
    assert saved["mean_iou"] == otsu["mean_iou"] and saved["seconds_per_image"] is None
    # the confusion matrix and each image's mean IoU, against the masks counted here
    report = json.loads((out / "compare.json").read_text())
    assert report["classes"] == ["0", "1", "no class"]
    matrix, ious = np.zeros((2, 3), int), []
    for name in report["items"]:
        truth = np.asarray(Image.open(data / "masks" / f"{name}.png")) > 0
        pred = np.asarray(Image.open(tmp_path / "p" / "masks" / f"{name}.png")) > 0
        np.add.at(matrix, (truth.astype(int), pred.astype(int)), 1)
        ious.append(
            np.mean(
                [
                    ((truth == c) & (pred == c)).sum() / ((truth == c) | (pred == c)).sum()
                    for c in (0, 1)
                ]
            )
        )
    assert saved["confusion_matrix"] == otsu["confusion_matrix"] == matrix.tolist()
    np.testing.assert_allclose(saved["per_image_iou"], ious, rtol=1e-6)
    assert saved["mean_boundary_f1"] == otsu["mean_boundary_f1"] > 0.9
    assert saved["mean_accuracy"] == otsu["mean_accuracy"] > 0.9
    assert "| saved | " in (out / "compare.md").read_text()
    assert saved["mean_hd95"] == otsu["mean_hd95"] < 2  # pixels
    assert "mean BF" in (out / "compare.md").read_text()
    assert "mean HD95 (px)" in (out / "compare.md").read_text()


def test_compare_scores_instance_labels_as_foreground_and_reads_classes_json(tmp_path):
    """Object numbers in instances/ are scored as foreground (a model trained on instances:
    interior and boundary both count as object); classes.json gives the number of classes."""
    import torch
    from conftest import tiny_seg

    from pixelwise.compare import Method, compare
    from pixelwise.data.encoding import MaskEncoding

    data = tmp_path / "cells"
    (data / "images").mkdir(parents=True)
    (data / "instances").mkdir()
    for i in range(2):
        image, truth = _two_regions(seed=i)
        labels = (truth * (1 + (np.arange(80) >= 40))).astype(np.uint16)  # two touching objects
        Image.fromarray(image).save(data / "images" / f"{i}.png")
        Image.fromarray(labels).save(data / "instances" / f"{i}.png")

    class BrightIsBoundary(torch.nn.Module):  # class 2 where bright, as a boundary model's
        def forward(self, x):
            grey = x.mean(1, keepdim=True)
            return torch.cat([-8 * grey, 0 * grey, 8 * grey], 1)

    seg = tiny_seg(BrightIsBoundary())
    seg.class_names = ["background", "interior", "boundary"]
    seg.encoding = MaskEncoding(instances="boundary")
    model = Method("boundary model")
    model.model = seg
    rows, _, _, num_classes = compare([str(data)], [Method("otsu", classical="otsu"), model])
    assert num_classes == 2 and all(r["mean_iou"] > 0.95 for r in rows), rows

    named = tmp_path / "named"  # class ids 0..1 in the masks, three classes named
    (named / "images").mkdir(parents=True)
    (named / "masks").mkdir()
    for i in range(2):
        image, truth = _two_regions(seed=i)
        Image.fromarray(image).save(named / "images" / f"{i}.png")
        Image.fromarray(truth.astype(np.uint8)).save(named / "masks" / f"{i}.png")
    classes = [{"id": i, "name": n} for i, n in enumerate("abc")]
    (named / "classes.json").write_text(json.dumps({"classes": classes}))
    rows, _, _, num_classes = compare([str(named)], [Method("otsu", classical="otsu")])
    assert num_classes == 3 and len(rows[0]["per_class_iou"]) == 3


def test_compare_pairs_each_method_with_the_best_image_by_image():
    """The gap to the best method, per image, with its bootstrap interval: a steady gap is
    "lower", one that changes sign from image to image "no clear difference", and too few
    images scored by both give no line."""
    from pixelwise.compare import paired_lines

    def row(name, per_image):
        scored = [v for v in per_image if v is not None]
        return {"method": name, "mean_iou": float(np.mean(scored)), "per_image_iou": per_image}

    best = row("best", [0.9] * 6)
    rows = [
        row("steady", [0.8] * 6),
        best,
        row("mixed", [0.9, 0.95, 0.85, 0.9, 0.95, 0.85]),
        row("few", [0.5, None, None, 0.5, 0.5, 0.5]),
    ]
    steady, mixed = paired_lines(rows)
    assert steady.startswith("steady - best: -0.1000 mean IoU per image, 95 % interval -0.1000")
    assert steady.endswith("over 6 images (lower on these images)")
    assert mixed.startswith("mixed - best: +0.0000") and "(no clear difference" in mixed


def test_grabcut_does_not_depend_on_what_used_opencvs_random_generator_before():
    # GrabCut starts its colour models by k-means on OpenCV's global generator: unseeded, the
    # same photo and box gave another mask after other OpenCV work (7 % of this photo's pixels)
    import cv2

    folder = shared_dataset("foreground") / "coco_mval" / "images"  # synthetic ones did not show it
    image = np.asarray(Image.open(sorted(folder.glob("*.jpg"))[3]).convert("RGB"))
    h, w = image.shape[:2]
    box = (w // 6, h // 6, w * 2 // 3, h * 2 // 3)
    masks = []
    for draws in (0, 3):
        cv2.setRNGSeed(0)
        for _ in range(draws):
            cv2.randu(np.zeros(10), 0, 1)
        masks.append(run_method("graphcut", image, box=box))
    assert (masks[0] == masks[1]).all()
