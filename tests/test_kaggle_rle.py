"""Kaggle run-length CSVs converted to COCO and back: every object drawn back pixel for pixel,
the run-lengths made here by a plain loop over the pixels in the competitions' own order."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from pixelwise.cli import main

pytest.importorskip("pycocotools", reason="reading COCO masks needs pycocotools")

from pixelwise.data.coco import label_image, load_coco  # noqa: E402
from pixelwise.data.kaggle_rle import (  # noqa: E402
    coco_to_rle_csv,
    is_rle_csv,
    rle_csv_to_coco,
    run_length,
)


def naive_rle(mask: np.ndarray, order: str = "columns") -> str:
    """'start length' pairs, starts from 1, pixels numbered down the columns (or along rows)."""
    flat = list(mask.T.ravel() if order == "columns" else mask.ravel())
    pairs, i = [], 0
    while i < len(flat):
        if flat[i]:
            j = i
            while j < len(flat) and flat[j]:
                j += 1
            pairs += [i + 1, j - i]
            i = j
        else:
            i += 1
    return " ".join(map(str, pairs))


def objects(seed: int, shape=(23, 31)) -> np.ndarray:
    """A label image of a few random blobs (one runs down a whole column and on)."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.int32)
    for k in range(1, 4):
        y, x = rng.integers(0, shape[0] - 6), rng.integers(0, shape[1] - 7)
        labels[y : y + rng.integers(2, 7), x : x + rng.integers(2, 8)] = k
    labels[:, 0] = 4  # a run wraps from one column into the next
    labels[0, 1] = 4
    return labels


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.mark.parametrize("order", ["columns", "rows"])
def test_objects_come_back_pixel_for_pixel(tmp_path, order):
    """DSB2018's layout: ids without suffix, each image in a folder of its own; a row per
    object; an image with an empty run-length has no object; an id with no image is left out."""
    truths = {}
    rows = []
    for i in range(3):
        labels = objects(i) if i < 2 else np.zeros((23, 31), np.int32)
        name = f"im{i}"
        (tmp_path / "stage1_train" / name / "images").mkdir(parents=True)
        Image.fromarray(np.full((23, 31, 3), 50 * i, np.uint8)).save(
            tmp_path / "stage1_train" / name / "images" / f"{name}.png"
        )
        truths[name] = labels
        ids = [k for k in np.unique(labels) if k]
        rows += [(name, naive_rle(labels == k, order)) for k in ids] or [(name, "")]
    rows.append(("gone", "1 3"))
    write_csv(tmp_path / "labels.csv", ["ImageId", "EncodedPixels"], rows)
    assert is_rle_csv(tmp_path / "labels.csv")
    out, found = rle_csv_to_coco(tmp_path / "labels.csv", order=order)
    assert found == {"images": 3, "objects": 8, "missing": ["gone"]}
    items, categories, _ = load_coco(out)
    assert categories.names == ("object",)
    for item in items:
        drawn = label_image(
            tuple((1, a) for a in item.annotations), item.height, item.width, instances=True
        )
        truth = truths[item.name]
        # the same objects: each true object is one drawn object, and the background agrees
        assert ((drawn > 0) == (truth > 0)).all()
        for k in np.unique(truth)[1:]:
            assert len(np.unique(drawn[truth == k])) == 1


def test_classes_and_severstals_joined_column(tmp_path):
    """A class column makes categories (every class named in it, in numeric order; --classes
    names them); Severstal's first 'ImageId_ClassId' column is split at its last underscore."""
    (tmp_path / "train_images").mkdir()
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(tmp_path / "train_images" / "a.jpg")
    first, second = np.zeros((10, 12), bool), np.zeros((10, 12), bool)
    first[2:4, 3:9], second[6:9, 1:4] = True, True
    for header, rows in (
        (["ImageId", "ClassId", "EncodedPixels"], [("a.jpg", 10, naive_rle(first)), ("a.jpg", 2, naive_rle(second)), ("a.jpg", 3, "")]),
        (["ImageId_ClassId", "EncodedPixels"], [("a.jpg_10", naive_rle(first)), ("a.jpg_2", naive_rle(second)), ("a.jpg_3", "")]),
    ):  # fmt: skip
        write_csv(tmp_path / "train.csv", header, rows)
        out, _ = rle_csv_to_coco(tmp_path / "train.csv", names=["scratch", "dent", "hole"])
        items, categories, _ = load_coco(out)
        assert categories.names == ("scratch", "dent", "hole")  # 2, 3, then 10
        (item,) = items
        drawn = label_image(
            tuple((a["category_id"], a) for a in item.annotations), item.height, item.width
        )
        np.testing.assert_array_equal(drawn, first * 3 + second * 1)  # class 10, class 2


def test_cli_convert_then_train_reads_it_and_bad_rows_name_their_line(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "images" / "x.png")
    mask = np.zeros((8, 8), bool)
    mask[2:6, 2:6] = True
    write_csv(tmp_path / "m.csv", ["img", "rle_mask"], [("x", naive_rle(mask))])
    assert main(["train", str(tmp_path / "m.csv"), "-o", str(tmp_path / "run")]) == 2
    assert f"'pixelwise convert {tmp_path / 'm.csv'}' makes a COCO file" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "m.csv"), "-o", str(tmp_path / "coco.json")]) == 0
    assert f"wrote {tmp_path / 'coco.json'}: 1 object in 1 image" in capsys.readouterr().out
    from pixelwise.data.layouts import find_items

    (item,) = find_items(tmp_path / "coco.json")
    np.testing.assert_array_equal(item.read_mask(), mask)
    for rle, problem in (
        ("1 2 3", "line 2: run-length has an odd count of numbers"),
        ("60 10", "line 2: a run lies outside the 8 x 8 image"),
        ("1 x", "line 2: run-length holds something other than numbers"),
        ("1 5 3 2", "line 2: runs overlap"),
    ):
        write_csv(tmp_path / "m.csv", ["img", "rle_mask"], [("x", rle)])
        assert main(["convert", str(tmp_path / "m.csv")]) == 2
        assert problem in capsys.readouterr().err
    write_csv(tmp_path / "other.csv", ["image", "mask_path"], [("x", "y")])
    assert not is_rle_csv(tmp_path / "other.csv")
    assert main(["convert", str(tmp_path / "other.csv")]) == 2
    assert "not a run-length CSV" in capsys.readouterr().err


@pytest.mark.parametrize("order", ["columns", "rows"])
def test_run_length_of_a_mask_is_the_plain_loops(order):
    for seed in range(4):
        labels = objects(seed)
        for k in range(0, 5):
            assert run_length(labels == k, order) == naive_rle(labels == k, order)
    assert run_length(np.zeros((3, 4), bool)) == ""
    assert run_length(np.array([[1, 0], [1, 1]]), "columns") == "1 2 4 1"  # by hand
    assert run_length(np.array([[1, 0], [1, 1]]), "rows") == "1 1 3 2"


def test_segment_coco_file_to_a_submission_csv_and_back(tmp_path, capsys):
    """What segment --coco writes (compressed RLE, polygons, an image with no object, two
    categories) becomes ImageId,EncodedPixels[,ClassId] rows that the reader brings back."""
    from pixelwise.data.coco import object_annotations

    (tmp_path / "images").mkdir()
    truths, images, annotations = {}, [], []
    for i in range(3):
        labels = objects(i) if i < 2 else np.zeros((23, 31), np.int32)
        Image.fromarray(np.zeros((23, 31, 3), np.uint8)).save(tmp_path / "images" / f"im{i}.png")
        truths[f"im{i}"] = labels
        images.append({"id": i + 7, "file_name": f"im{i}.png", "height": 23, "width": 31})
        for ann in object_annotations(labels):
            annotations.append(ann | {"id": len(annotations) + 1, "image_id": i + 7})
    annotations.append(  # a polygon, and one of the second category
        {"id": 99, "image_id": 8, "category_id": 2, "iscrowd": 0,
         "segmentation": [[20, 15, 27, 15, 27, 21, 20, 21]], "bbox": [20, 15, 7, 6], "area": 42}
    )  # fmt: skip
    coco = {"images": images, "annotations": annotations, "categories": [
        {"id": 1, "name": "nucleus"}, {"id": 2, "name": "other"}]}  # fmt: skip
    (tmp_path / "objects.json").write_text(json.dumps(coco))
    assert main(["convert", str(tmp_path / "objects.json")]) == 0
    assert f"wrote {tmp_path / 'objects.csv'}: 9 objects of 3 images" in capsys.readouterr().out
    with open(tmp_path / "objects.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["ImageId", "EncodedPixels", "ClassId"] and rows[-1] == ["im2", "", ""]
    first = [(rle, klass) for name, rle, klass in rows[1:] if name == "im0"]
    expected = [(naive_rle(truths["im0"] == k), "1") for k in range(1, 5)]
    assert sorted(first) == sorted(expected)
    polygon = next(rle for *_, rle, klass in rows if klass == "2")
    assert polygon.split()[0] == str(20 * 23 + 15 + 1)  # column 20, row 15, from 1
    assert main(["convert", str(tmp_path / "objects.csv"), "-o", str(tmp_path / "b.json")]) == 0
    items, categories, _ = load_coco(tmp_path / "b.json")
    assert categories.names == ("class1", "class2") and len(items) == 3
    for item in items:
        ones = [a for a in item.annotations if a["category_id"] == 1]
        drawn = label_image(tuple((1, a) for a in ones), 23, 31, instances=True)
        truth = truths[item.name]
        assert ((drawn > 0) == (truth > 0)).all()
        for k in np.unique(truth)[1:]:
            assert len(np.unique(drawn[truth == k])) == 1
    # Airbus's ids keep the suffix; rows order; options of the other direction are refused
    out, found = coco_to_rle_csv(tmp_path / "objects.json", tmp_path / "r.csv", "rows", "name")
    assert found == {"images": 3, "objects": 9}
    assert (tmp_path / "r.csv").read_text().splitlines()[1].startswith("im0.png,")
    argv = ["convert", str(tmp_path / "objects.json"), "--classes", "a,b"]
    assert main(argv) == 2
    assert "--classes are for reading a CSV, not writing one" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text('{"images": []}')
    assert main(["convert", str(tmp_path / "bad.json")]) == 2
    assert "bad.json: not a COCO instances file (KeyError" in capsys.readouterr().err
