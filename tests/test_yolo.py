"""YOLO segmentation datasets (data.yaml + one .txt of outlines per image): class masks drawn
by hand, Roboflow's folder names, boxes ignored, EXIF-turned photos, clear errors, and the same
masks as the COCO file of the same objects (coco128)."""

import json
import re

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pycocotools", reason="outlines are drawn by pycocotools")

from conftest import shared_dataset, train_tiny  # noqa: E402

from pixelwise.cli import main  # noqa: E402
from pixelwise.data.layouts import (  # noqa: E402
    coco_items,
    find_items,
    read_dataset_info,
    resolve_splits,
)
from pixelwise.data.yolo import load_yolo  # noqa: E402

H, W = 40, 50


def square(x, y, size=20):
    """A square's outline as YOLO writes it: x y pairs as fractions of width and height."""
    corners = [(x, y), (x + size, y), (x + size, y + size), (x, y + size)]
    return " ".join(f"{cx / W:.6f} {cy / H:.6f}" for cx, cy in corners)


def roboflow(root, n_train=4, n_val=2):
    """Roboflow's export: data.yaml beside train/ and valid/, each with images/ and labels/,
    split paths written as ../train/images. Image i holds a bright square (class 1, 'square')
    at x = 4 + 2i; the first image also a box-only object of class 0; the last none at all."""
    (root).mkdir(parents=True, exist_ok=True)
    names = [f"train/{i}" for i in range(n_train)] + [f"valid/{i}" for i in range(n_val)]
    for i, name in enumerate(names):
        split, stem = name.split("/")
        for sub in ("images", "labels"):
            (root / split / sub).mkdir(parents=True, exist_ok=True)
        image = np.full((H, W, 3), 30, np.uint8)
        image[10:30, 4 + 2 * i : 24 + 2 * i] = 220
        Image.fromarray(image).save(root / split / "images" / f"im{stem}{split[0]}.jpg")
        lines = [f"1 {square(4 + 2 * i, 10)}"] + (["0 0.9 0.5 0.12 0.2"] if i == 0 else [])
        if i < len(names) - 1:
            (root / split / "labels" / f"im{stem}{split[0]}.txt").write_text("\n".join(lines))
    (root / "data.yaml").write_text(  # a path from the exporting machine, as Ultralytics' own
        "path: /content/datasets/rf\ntrain: ../train/images\nval: ../valid/images\nnc: 2\n"
        "names: ['dot', 'square']\n"
    )
    return root


def expected_mask(i, box=False):
    mask = np.zeros((H, W), np.int32)
    mask[10:30, 4 + 2 * i : 24 + 2 * i] = 2  # class 1 of the file is class 2 (0: background)
    if box:  # the box-only object: centre (45, 20), 6 x 8 pixels, ignored
        mask[16:24, 42:48] = 255
    return mask


def test_outlines_become_class_masks_split_as_the_yaml_says(tmp_path):
    root = roboflow(tmp_path / "rf")
    assert read_dataset_info(root).class_names == ["background", "dot", "square"]
    train, val = resolve_splits(root)
    assert [i.name for i in train] == [f"im{i}t" for i in range(4)]
    assert [i.name for i in val] == ["im0v", "im1v"]
    for i, item in enumerate((train + val)[:-1]):
        np.testing.assert_array_equal(item.read_mask(), expected_mask(i, box=i == 0))
    assert not val[-1].read_mask().any()  # no label file: no object
    # the YAML file itself names the dataset too; --val-stems draws from the whole pool
    items = find_items(root / "data.yaml")
    assert len(items) == 6 and items[0].mask == root / "train" / "labels" / "im0t.txt"
    assert [i.name for i in resolve_splits(root, ["im2t"])[1]] == ["im2t"]
    numbers = train[0].read_mask(instances=True)
    assert set(np.unique(numbers)) == {0, 1}  # the box-only object is no instance


def test_a_yolo_dataset_trains_and_scores(tmp_path, capsys):
    root = roboflow(tmp_path / "rf")
    run = train_tiny(root, tmp_path / "run", "--precision", "fp32")
    said = capsys.readouterr().out  # the run says what it trains on before its first epoch
    assert said.startswith(
        f"{root}: 4 training and 2 validation images (the data's own validation split); "
        "3 classes: background, dot, square; unet ("
    )
    out = tmp_path / "e.json"
    assert main(["evaluate", str(run / "best.pt"), str(root), "--json", str(out)]) == 0
    scores = json.loads(out.read_text())
    assert (
        scores["images"] == 2 and scores["per_class"]["square"]["pixels"] == 400
    )  # im1v: no label file


def test_instance_splits_and_their_ground_truth(tmp_path):
    """Mask R-CNN's view: the yaml's splits, COCO ground truth with category id = class index
    + 1, box-only objects as ignored regions; the truth itself scores AP 1."""
    from pixelwise.data.coco import annotation_mask, encode_rle
    from pixelwise.detection import ground_truth_json, instance_splits
    from pixelwise.metrics import coco_average_precision

    root = roboflow(tmp_path / "rf")
    train, val, cats, spec = instance_splits(root, None, 0.2, 0)
    assert [i.name for i in val] == ["im0v", "im1v"] and cats.names == ("dot", "square")
    truth = ground_truth_json(train, cats, spec)
    assert [(a["category_id"], a["iscrowd"]) for a in truth["annotations"][:2]] == [(2, 0), (1, 1)]
    found = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0,
         "bbox": a["bbox"], "segmentation": encode_rle(annotation_mask(a, H, W))}
        for a in truth["annotations"] if not a["iscrowd"]
    ]  # fmt: skip
    assert coco_average_precision(truth, found)["segm"]["ap"] == pytest.approx(1.0)


def test_a_photo_turned_by_exif_gets_the_turned_size(tmp_path):
    """Outlines are fractions of the image as shown (EXIF orientation applied, as it is read)."""
    root = tmp_path / "exif"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 50 wide, 40 high; shown turned: 40 wide, 50 high
    Image.new("RGB", (W, H)).save(root / "images" / "a.jpg", exif=exif)
    (root / "labels" / "a.txt").write_text("0 0 0 0.5 0 0.5 0.5 0 0.5")
    (root / "data.yaml").write_text("path: .\ntrain: images\nnames: {0: thing}\n")
    (item,) = find_items(root)
    mask = item.read_mask()
    assert mask.shape == (W, H) and mask[:25, :20].all() and mask.sum() == 25 * 20


@pytest.mark.parametrize(
    "label, message",
    [
        ("5 0.1 0.1 0.2 0.1 0.2 0.2", "a.txt, line 1: class 5 is not among the 2 named classes"),
        ("1 0.1 0.1 0.2 0.1 0.2", "a.txt, line 1: 5 coordinates"),
        ("1 a b c d e f", "a.txt, line 1: expected a class index and numbers"),
        ("1 10 10 30 10 30 30", "a.txt, line 1: coordinates must be fractions of the image's"),
    ],
)
def test_bad_label_lines_are_named_by_file_and_line(tmp_path, label, message):
    root = roboflow(tmp_path / "rf")
    (root / "train" / "labels" / "a.txt").write_text(label)
    Image.new("RGB", (W, H)).save(root / "train" / "images" / "a.png")
    with pytest.raises(ValueError, match=re.escape(message)):
        find_items(root)


def test_every_bad_label_file_is_named_in_one_error(tmp_path):
    root = roboflow(tmp_path / "rf")
    (root / "train" / "labels" / "im1t.txt").write_text(f"1 {square(4, 10)}\n7 0.5 0.5 0.1 0.1")
    (root / "valid" / "labels" / "im0v.txt").write_text("1 0.1 0.2")
    with pytest.raises(ValueError) as caught:
        find_items(root)
    said = str(caught.value)
    assert said.startswith("2 label files cannot be used: ")
    assert "im1t.txt, line 2: class 7 is not among" in said and "im0v.txt, line 1: 2 coord" in said


def test_dataset_file_errors_say_what_is_wrong(tmp_path, capsys):
    root = roboflow(tmp_path / "rf")
    for labels in (root / "train" / "labels").glob("*.txt"):  # a detection dataset: boxes only
        labels.write_text("0 0.5 0.5 0.2 0.2")
    for labels in (root / "valid" / "labels").glob("*.txt"):
        labels.unlink()
    with pytest.raises(ValueError, match="every label is a box .* segmentation needs outlines"):
        find_items(root)
    (root / "data.yaml").write_text("train: images/nowhere\nnames: [a, b]\n")
    assert main(["train", str(root), "--out", str(tmp_path / "r")]) == 2
    assert "data.yaml: train: " in capsys.readouterr().err
    (root / "data.yaml").write_text("names: [a\n  train: [")
    with pytest.raises(ValueError, match="data.yaml: cannot read the YAML file"):
        find_items(root)
    (root / "data.yaml").write_text("train: ../train/images\nnc: 3\nnames: [a, b]\n")
    with pytest.raises(ValueError, match="nc is 3 but names lists 2 classes"):
        find_items(root)
    (root / "data.yaml").unlink()  # labels/ of .txt files, no dataset file: say what is missing
    with pytest.raises(ValueError, match="YOLO text labels without their dataset file"):
        find_items(root / "train")


def test_the_same_objects_give_the_same_masks_as_the_coco_file(tmp_path):
    """coco128's COCO file written out as YOLO labels (fractions, six decimals): the class
    masks of both readings agree but for pixels on an outline's rounding."""
    coco = shared_dataset("coco128") / "annotations.json"
    spec = json.loads(coco.read_text())
    cats = {c["id"]: i for i, c in enumerate(sorted(spec["categories"], key=lambda c: c["id"]))}
    root = tmp_path / "yolo"
    for sub in ("images", "labels"):
        (root / sub).mkdir(parents=True)
    for im in spec["images"][:12]:
        (root / "images" / im["file_name"]).symlink_to(coco.parent / "images" / im["file_name"])
        w, h = im["width"], im["height"]
        lines = [
            f"{cats[a['category_id']]} "
            + " ".join(f"{v / (w if k % 2 == 0 else h):.6f}" for k, v in enumerate(part))
            for a in spec["annotations"] if a["image_id"] == im["id"]
            for part in a["segmentation"]
        ]  # fmt: skip
        (root / "labels" / f"{im['file_name'][:-4]}.txt").write_text("\n".join(lines))
    names = [c["name"] for c in sorted(spec["categories"], key=lambda c: c["id"])]
    (root / "data.yaml").write_text(json.dumps({"train": "images", "names": names}))
    from_coco = {item.name: item for item in coco_items(coco)}
    yolo = find_items(root)
    assert len(yolo) == 12 and load_yolo(root / "data.yaml")[1].names == tuple(names)
    for item in yolo:
        same = item.read_mask() == from_coco[item.name].read_mask()
        assert same.mean() > 0.999, item.name
