"""Kaggle run-length CSVs converted to COCO: every object drawn back pixel for pixel, the
run-lengths made here by a plain loop over the pixels in the competitions' own order."""

import csv

import numpy as np
import pytest
from PIL import Image

from pixelwise.cli import main

pytest.importorskip("pycocotools", reason="reading COCO masks needs pycocotools")

from pixelwise.data.coco import label_image, load_coco  # noqa: E402
from pixelwise.data.kaggle_rle import is_rle_csv, rle_csv_to_coco  # noqa: E402


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
