"""Instance data and Mask R-CNN: COCO JSON round trip against pycocotools, a tiny dataset made
in code trains a few steps and predicts torchvision's structure, perfect predictions score AP = 1."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("pycocotools", reason="COCO support needs pycocotools")

from pycocotools import mask as mask_utils  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402

from pixelwise.checkpoint import load_model  # noqa: E402
from pixelwise.cli import main  # noqa: E402
from pixelwise.data.coco import (  # noqa: E402
    InstanceDataset,
    annotation_mask,
    collate,
    encode_rle,
    item_target,
    load_coco,
)
from pixelwise.data.layouts import find_items, label_image_items  # noqa: E402
from pixelwise.detection import detections_to_coco, detections_to_labels  # noqa: E402
from pixelwise.metrics import coco_average_precision  # noqa: E402
from pixelwise.models.mask_rcnn import load_weights, mask_rcnn  # noqa: E402


def _coco(tmp_path, n_images=3, size=(64, 80)):
    """Images with a bright square (category 7) and a bright triangle (category 3), as polygons,
    one object of each image also as compressed RLE, and one crowd region."""
    (tmp_path / "images").mkdir(parents=True, exist_ok=True)
    h, w = size
    images, anns = [], []
    for i in range(n_images):
        image = np.full((h, w, 3), 30, np.uint8)
        x, y = 8 + 4 * i, 10
        image[y : y + 20, x : x + 20] = 220
        tri = [[40.0, 50.0, 70.0, 50.0, 55.0, 20.0]]
        mask_tri = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(tri, h, w)))
        image[mask_tri > 0] = 160
        Image.fromarray(image).save(tmp_path / "images" / f"{i:03d}.png")
        images.append({"id": 100 + i, "file_name": f"{i:03d}.png", "height": h, "width": w})
        square = [[x, y, x + 20, y, x + 20, y + 20, x, y + 20]]
        seg = (
            square
            if i % 2 == 0
            else encode_rle(
                mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(square, h, w)))
            )
        )
        anns.append(
            {
                "id": len(anns) + 1,
                "image_id": 100 + i,
                "category_id": 7,
                "segmentation": seg,
                "iscrowd": 0,
            }
        )
        anns.append(
            {
                "id": len(anns) + 1,
                "image_id": 100 + i,
                "category_id": 3,
                "segmentation": tri,
                "iscrowd": 0,
            }
        )
    crowd = np.zeros((h, w), np.uint8)
    crowd[0:5, 0:5] = 1
    anns.append(
        {
            "id": len(anns) + 1,
            "image_id": 100,
            "category_id": 7,
            "iscrowd": 1,
            "segmentation": {"size": [h, w], "counts": list(map(int, _uncompressed_counts(crowd)))},
        }
    )
    spec = {
        "images": images,
        "annotations": anns,
        "categories": [{"id": 3, "name": "triangle"}, {"id": 7, "name": "square"}],
    }
    for a in spec["annotations"]:
        seg = a["segmentation"]
        if isinstance(seg, list):
            rle_a = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
        elif isinstance(seg["counts"], list):
            rle_a = mask_utils.frPyObjects(seg, h, w)
        else:
            rle_a = seg
        a["area"] = float(mask_utils.area(rle_a))
        a["bbox"] = [float(v) for v in mask_utils.toBbox(rle_a)]
    (tmp_path / "annotations.json").write_text(json.dumps(spec))
    return tmp_path / "annotations.json"


def _uncompressed_counts(mask):
    """Column-major run lengths starting with zeros (COCO's uncompressed RLE)."""
    flat = mask.flatten(order="F")
    counts, current, run = [], 0, 0
    for v in flat:
        if v == current:
            run += 1
        else:
            counts.append(run)
            current, run = v, 1
    counts.append(run)
    return counts


def test_coco_masks_match_pycocotools_for_polygons_rle_and_crowd(tmp_path):
    path = _coco(tmp_path)
    items, cats, spec = load_coco(path)
    reference = COCO(str(path))
    assert len(items) == 3 and cats.ids == (3, 7) and cats.label(7) == 2 and cats.category(1) == 3
    for item in items:
        for ann in item.annotations:
            assert np.array_equal(
                annotation_mask(ann, item.height, item.width), reference.annToMask(ann)
            ), ann["id"]
    # our RLE decodes back to the mask with pycocotools
    mask = reference.annToMask(spec["annotations"][1])
    assert np.array_equal(
        mask_utils.decode(
            {"size": encode_rle(mask)["size"], "counts": encode_rle(mask)["counts"].encode()}
        ),
        mask,
    )
    target = item_target(items[0], cats)  # the crowd region is not a training object
    assert target["masks"].shape == (2, 64, 80) and sorted(target["labels"].tolist()) == [1, 2]
    np.testing.assert_allclose(target["boxes"][target["labels"] == 2][0], [8, 10, 28, 30])


def test_label_image_folders_give_one_class_targets(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "instances").mkdir()
    labels = np.zeros((20, 30), np.uint16)
    labels[2:6, 3:9], labels[10:15, 10:20] = 5, 300
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(tmp_path / "images" / "a.png")
    Image.fromarray(labels).save(tmp_path / "instances" / "a.png")
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(tmp_path / "images" / "empty.png")
    Image.fromarray(np.zeros((20, 30), np.uint16)).save(tmp_path / "instances" / "empty.png")
    items, cats = label_image_items(tmp_path)
    image, target = InstanceDataset(items, cats)[0]
    assert image.shape == (3, 20, 30) and target["labels"].tolist() == [1, 1]
    assert target["boxes"].tolist() == [[3, 2, 9, 6], [10, 10, 20, 15]]
    _, empty = InstanceDataset(items, cats)[1]  # images without objects are allowed
    assert empty["boxes"].shape == (0, 4) and empty["masks"].shape == (0, 20, 30)


def test_augmentation_moves_boxes_with_masks(tmp_path):
    items, cats, _ = load_coco(_coco(tmp_path))
    ds = InstanceDataset(items, cats, augment=True, seed=3)
    for epoch in range(4):
        ds.set_epoch(epoch)
        image, target = ds[0]
        for box, mask in zip(target["boxes"], target["masks"]):
            ys, xs = torch.nonzero(mask, as_tuple=True)
            assert box.tolist() == [
                xs.min().item(),
                ys.min().item(),
                xs.max().item() + 1,
                ys.max().item() + 1,
            ]
        assert image.shape[1:] == target["masks"].shape[1:]


def test_tiny_mask_rcnn_trains_and_predicts_torchvision_structure(tmp_path):
    items, cats, spec = load_coco(_coco(tmp_path))
    torch.manual_seed(0)
    model = mask_rcnn(len(cats.ids), backbone="resnet18", min_size=64, max_size=96)
    loader = torch.utils.data.DataLoader(
        InstanceDataset(items, cats, augment=True), batch_size=2, collate_fn=collate
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    for images, targets in loader:
        losses = model(list(images), list(targets))
        assert {
            "loss_classifier",
            "loss_box_reg",
            "loss_mask",
            "loss_objectness",
            "loss_rpn_box_reg",
        } <= set(losses)
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        out = model([InstanceDataset(items, cats)[0][0]])
    assert isinstance(out, list) and len(out) == 1
    pred = out[0]
    n = len(pred["scores"])
    assert (
        pred["boxes"].shape == (n, 4)
        and pred["labels"].shape == (n,)
        and pred["masks"].shape == (n, 1, 64, 80)
    )
    labels = detections_to_labels(pred, score_threshold=0.0)
    assert labels.dtype == np.uint16 and labels.shape == (64, 80)
    results = detections_to_coco(pred, 100, cats)
    assert all(
        r["category_id"] in (3, 7) and isinstance(r["segmentation"]["counts"], str) for r in results
    )
    # saving and loading our weights round-trips; mismatching class heads stay initialised
    path = tmp_path / "w.pt"
    torch.save(model.state_dict(), path)
    other = mask_rcnn(5, backbone="resnet18", min_size=64, max_size=96)
    left = load_weights(other, path)
    assert left and all("predictor" in k for k in left)
    with pytest.raises(ValueError, match="never downloaded"):
        load_weights(other, tmp_path / "missing.pt")


def test_perfect_predictions_score_ap_one(tmp_path):
    items, cats, spec = load_coco(_coco(tmp_path))
    results = []
    for item in items:
        target = item_target(item, cats)
        pred = {
            "boxes": torch.from_numpy(target["boxes"]),
            "labels": torch.from_numpy(target["labels"]),
            "scores": torch.ones(len(target["labels"])),
            "masks": torch.from_numpy(target["masks"]).float()[:, None],
        }
        results.extend(detections_to_coco(pred, item.image_id, cats))
    ap = coco_average_precision(spec, results)
    assert ap["segm"]["ap"] == pytest.approx(1.0) and ap["bbox"]["ap"] == pytest.approx(1.0)
    assert ap["segm"]["ap50"] == pytest.approx(1.0) and ap["segm"]["ap75"] == pytest.approx(1.0)
    assert coco_average_precision(spec, results[:2])["segm"]["ap"] < 1.0


def test_coco128_loads():
    from conftest import shared_dataset

    items, cats, spec = load_coco(shared_dataset("coco128") / "annotations.json")
    assert (
        len(items) == 128 and sum(len(i.annotations) for i in items) == 929 and len(cats.ids) == 80
    )
    assert sum(1 for i in items if not i.annotations) == 2
    target = item_target(items[0], cats)
    assert target["masks"].shape[1:] == (items[0].height, items[0].width)


def test_cli_train_resume_predict_evaluate_mask_rcnn(tmp_path, capsys, monkeypatch):
    import pixelwise.metrics
    from pixelwise.cli import main

    # an interval from one validation image: validation scores hold a list, which the
    # per-epoch metrics leave out (it broke training with 5 validation images or more)
    monkeypatch.setattr(pixelwise.metrics, "MIN_INTERVAL_IMAGES", 1)
    path = _coco(tmp_path / "data", n_images=4)
    run = tmp_path / "run"
    args = [
        "train",
        str(path),
        "--model",
        "mask_rcnn",
        "--out",
        str(run),
        "--min-size",
        "64",
        "--max-size",
        "96",
        "--epochs",
        "2",
        "--batch-size",
        "2",
        "--val-stems",
        "003",
        "--lr",
        "1e-3",
        "--max-detections",
        "7",
        "--device",
        "cpu",
        "--no-progress",
    ]
    assert main(args) == 0
    for name in ("best.pt", "last.pt", "metrics.csv", "curve.png"):
        assert (run / name).is_file(), name
    assert "mask AP" in capsys.readouterr().out
    last = torch.load(run / "last.pt", weights_only=True)
    assert last["train_state"]["epoch"] == 2 and last["arch"] == "mask_rcnn"
    assert (
        load_model(run / "last.pt").network.roi_heads.detections_per_img == 7
    )  # kept in the checkpoint
    assert main(args + ["--resume"]) == 0  # nothing left to do: resumes after epoch 2 and stops
    assert "resumed from" in capsys.readouterr().out

    out = tmp_path / "pred"
    images = tmp_path / "data" / "images"
    assert (
        main(
            [
                "predict",
                str(run / "best.pt"),
                str(images),
                "--out",
                str(out),
                "--score-threshold",
                "0.0",
                "--no-progress",
            ]
        )
        == 0
    )
    assert (
        len(list((out / "instances").glob("*.png"))) == 4
        and len(list((out / "overlays").glob("*.png"))) == 4
    )
    results = json.loads((out / "coco" / "000.json").read_text())
    assert isinstance(results, list) and all(r["category_id"] in (3, 7) for r in results)
    assert (
        main(["evaluate", str(run / "best.pt"), str(path), "--json", str(tmp_path / "e.json")]) == 0
    )
    detection = json.loads((tmp_path / "e.json").read_text())["detection"]
    assert set(detection) >= {"mask_ap", "mask_ap50", "mask_ap75", "box_ap", "dsb_mean_ap"}
    assert 0.0 <= detection["mask_ap"] <= 1.0


def test_masks_to_boxes_against_a_naive_loop():
    from pixelwise.data.coco import masks_to_boxes

    masks = np.random.default_rng(0).random((30, 40, 60)) > 0.995
    masks[3] = False  # an empty mask gets a zero box
    for mask, box in zip(masks, masks_to_boxes(masks)):
        ys, xs = np.nonzero(mask)
        expected = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) if len(ys) else (0, 0, 0, 0)
        assert tuple(box) == expected


def test_label_image_draws_small_objects_over_large_ones_and_ignores_crowds():
    from pixelwise.data.coco import label_image

    def rect(x0, y0, x1, y1, crowd=0):
        return {"segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]], "iscrowd": crowd}

    # listed small first: drawing in file order would hide it under the large one
    objects = ((2, rect(4, 4, 8, 8)), (1, rect(0, 0, 12, 12)), (1, rect(12, 0, 16, 4, crowd=1)))
    expected = np.zeros((16, 20), np.int32)
    expected[0:12, 0:12] = 1
    expected[4:8, 4:8] = 2
    expected[0:4, 12:16] = 255
    np.testing.assert_array_equal(label_image(objects, 16, 20), expected)
    numbers = label_image(objects, 16, 20, instances=True)
    assert numbers[5, 5] == 2 and numbers[1, 1] == 1 and numbers[1, 13] == 0  # crowd left out


def test_coco_file_trains_and_scores_semantic_models(tmp_path, capsys):
    """A COCO instances file is a semantic dataset too: category k (by id) is class k."""
    from conftest import train_tiny

    from pixelwise.cli import main
    from pixelwise.data.datasets import SegmentationDataset
    from pixelwise.data.encoding import MaskEncoding, Normalization
    from pixelwise.data.layouts import read_dataset_info

    path = _coco(tmp_path / "coco", n_images=6)
    assert read_dataset_info(path).class_names == ["background", "triangle", "square"]
    items = find_items(path)
    assert [i.name for i in items] == [f"{i:03d}" for i in range(6)]
    first = next(i for i in load_coco(path)[0] if i.name == "000")
    expected = np.zeros((64, 80), np.int32)
    for ann in first.annotations:
        m = annotation_mask(ann, 64, 80) > 0
        expected[m] = 255 if ann["iscrowd"] else {3: 1, 7: 2}[ann["category_id"]]
    np.testing.assert_array_equal(items[0].read_mask(), expected)
    target = SegmentationDataset(items[:1], 3, MaskEncoding(), Normalization([0.5] * 3, [0.25] * 3))
    assert torch.equal(target[0][1], torch.from_numpy(expected).long())
    norm = Normalization([0.5] * 3, [0.25] * 3)
    objects = SegmentationDataset(items[:1], 2, MaskEncoding(instances="foreground"), norm)
    assert objects[0][1].sum().item() == ((expected == 1) | (expected == 2)).sum()  # crowd: 0
    run = train_tiny(path, tmp_path / "run", "--val-stems", "004,005", "--precision", "fp32")
    out = tmp_path / "e.json"
    assert main(["evaluate", str(run / "best.pt"), str(path), "--val-stems", "004,005",
                 "--json", str(out)]) == 0  # fmt: skip
    scores = json.loads(out.read_text())
    assert scores["images"] == 2 and set(scores["per_class"]) == {
        "background",
        "triangle",
        "square",
    }
    assert scores["per_class"]["square"]["pixels"] == 2 * 400


def test_coco_files_as_labelling_tools_export_them(tmp_path):
    """No image size in the file (read from the image), and objects given by a box alone (an
    empty segmentation): their box is ignored in class masks and left out of instance targets."""
    from pixelwise.data.coco import label_image

    (tmp_path / "images").mkdir()
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    square = [[5.0, 5.0, 20.0, 5.0, 20.0, 20.0, 5.0, 20.0]]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 4, "segmentation": [], "bbox": [1, 1, 10, 10]},
        {"id": 2, "image_id": 1, "category_id": 4, "segmentation": square, "bbox": [5, 5, 15, 15]},
    ]
    spec = {"images": [{"id": 1, "file_name": "a.png"}], "annotations": anns,
            "categories": [{"id": 4, "name": "thing"}]}  # fmt: skip
    (tmp_path / "coco.json").write_text(json.dumps(spec))
    items, cats, parsed = load_coco(tmp_path / "coco.json")
    assert (items[0].height, items[0].width) == (40, 50)
    drawn = label_image(tuple((1, a) for a in anns), 40, 50)
    expected = np.zeros((40, 50), np.int32)
    expected[1:11, 1:11] = 255
    expected[annotation_mask(anns[1], 40, 50) > 0] = 1
    np.testing.assert_array_equal(drawn, expected)
    target = item_target(items[0], cats)
    assert target["labels"].tolist() == [1] and target["masks"].shape == (1, 40, 50)
    # scoring: the image's size filled in, the box-only object an ignored (crowd) region
    from pixelwise.detection import ground_truth_json

    detection = spec | {"annotations": anns[:1]}  # boxes alone: nothing to segment
    (tmp_path / "boxes.json").write_text(json.dumps(detection))
    with pytest.raises(ValueError, match="boxes.json: every object is given by its box alone"):
        find_items(tmp_path / "boxes.json")
    truth = ground_truth_json(items, cats, parsed)
    assert truth["images"][0] | {} == {"id": 1, "file_name": "a.png", "height": 40, "width": 50}
    assert [a["iscrowd"] for a in truth["annotations"]] == [1, 0]
    rle = encode_rle(annotation_mask(anns[1], 40, 50))
    found = [
        {"image_id": 1, "category_id": 4, "score": 0.9, "segmentation": rle, "bbox": [5, 5, 15, 15]}
    ]
    assert coco_average_precision(truth, found)["segm"]["ap"] == pytest.approx(1.0)
    anns[1]["category_id"] = 9
    (tmp_path / "coco.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=r"coco\.json: an annotation's category_id 9 is not among"):
        find_items(tmp_path / "coco.json")


def test_object_annotations_encode_as_pycocotools_does():
    """Each object's RLE, made from its crop alone, equals pycocotools' encoding of the whole
    image's mask, also for runs that go on from a column's bottom to the next one's top."""
    from pixelwise.data.coco import object_annotations

    rng = np.random.default_rng(0)
    cases = [np.ones((2, 3), np.uint16), np.array([[0, 1], [1, 1]], np.uint16)]
    cases += [rng.integers(0, 4, rng.integers(1, 30, 2)).astype(np.uint16) for _ in range(100)]
    for labels in cases:
        anns = object_annotations(labels)
        present = [k for k in range(1, int(labels.max()) + 1) if (labels == k).any()]
        assert len(anns) == len(present)
        for k, ann in zip(present, anns):
            ref = mask_utils.encode(np.asfortranarray((labels == k).astype(np.uint8)))
            assert ann["segmentation"]["counts"] == ref["counts"].decode()
            assert ann["area"] == mask_utils.area(ref)
            assert ann["bbox"] == mask_utils.toBbox(ref).tolist()


def test_evaluate_scores_another_tools_coco_results(tmp_path, capsys):
    """evaluate RESULTS.json DATA: the ground truth's own objects as results score 1 on every
    measure; leaving one object out costs it by a hand count (DSB mean AP of that image 1/2:
    one of two objects matched at every threshold, TP/(TP+FP+FN)); boxes alone get box AP and
    no mask scores; ids not in the data are a one-line error."""
    from pixelwise.evaluate_folders import evaluate_results

    data = _coco(tmp_path / "data")
    spec = json.loads(data.read_text())
    truth = [a for a in spec["annotations"] if not a["iscrowd"]]
    as_results = [
        {k: a[k] for k in ("image_id", "category_id", "bbox", "segmentation")} | {"score": 0.9}
        for a in truth
    ]
    results = tmp_path / "results.json"
    results.write_text(json.dumps(as_results))
    perfect = evaluate_results(results, data)["detection"]
    assert perfect["mask_ap"] == pytest.approx(1.0) and perfect["box_ap"] == pytest.approx(1.0)
    assert perfect["dsb_mean_ap"] == perfect["pq"] == perfect["aji"] == 1.0
    results.write_text(json.dumps(as_results[1:]))  # image 100 loses its square
    one_missed = evaluate_results(results, data)["detection"]
    assert one_missed["dsb_mean_ap"] == pytest.approx((0.5 + 1 + 1) / 3)
    boxes = [{k: v for k, v in r.items() if k != "segmentation"} for r in as_results]
    results.write_text(json.dumps(boxes))
    boxed = evaluate_results(results, data)["detection"]
    assert boxed["box_ap"] == pytest.approx(1.0) and boxed["mask_ap"] is None
    assert boxed["dsb_mean_ap"] is None
    assert main(["evaluate", str(results), str(data)]) == 0
    assert "mask AP -" in capsys.readouterr().out
    results.write_text(json.dumps([as_results[0] | {"image_id": 5}]))
    assert main(["evaluate", str(results), str(data)]) == 2
    assert "image ids [5] are not in" in capsys.readouterr().err
    # a folder of one results file per image, by stem, whatever ids they hold (predict's OUT/coco)
    folder = tmp_path / "out" / "coco"
    folder.mkdir(parents=True)
    for image in spec["images"]:
        mine = [r | {"image_id": 0} for r in as_results if r["image_id"] == image["id"]]
        (folder / f"{Path(image['file_name']).stem}.json").write_text(json.dumps(mine))
    assert evaluate_results(folder, data)["detection"] == perfect
    assert (
        main(["evaluate", str(folder.parent), str(data), "--json", str(tmp_path / "f.json")]) == 0
    )
    assert json.loads((tmp_path / "f.json").read_text())["detection"] == perfect


def test_another_tools_coco_results_get_the_dsb_mean_aps_interval(tmp_path, capsys, monkeypatch):
    """The DSB mean AP's bootstrap interval over the images, as for a model of pixelwise's own
    (from 3 images here, 5 by default): that of the per-image values, printed by evaluate."""
    import pixelwise.metrics
    from pixelwise.evaluate_folders import evaluate_results
    from pixelwise.metrics import mean_interval

    monkeypatch.setattr(pixelwise.metrics, "MIN_INTERVAL_IMAGES", 3)
    data = _coco(tmp_path / "data")
    truth = [a for a in json.loads(data.read_text())["annotations"] if not a["iscrowd"]]
    keys = ("image_id", "category_id", "bbox", "segmentation")
    results = tmp_path / "results.json"  # image 100 loses its square: 1/2, 1, 1
    results.write_text(json.dumps([{k: a[k] for k in keys} | {"score": 0.9} for a in truth[1:]]))
    scored = evaluate_results(results, data)["detection"]
    assert scored["dsb_mean_ap_interval"] == mean_interval([0.5, 1.0, 1.0])
    assert main(["evaluate", str(results), str(data)]) == 0
    lo, hi = scored["dsb_mean_ap_interval"]
    assert f"DSB mean AP 95 % interval {lo:.4f}-{hi:.4f}" in capsys.readouterr().out


def test_a_coco_folder_is_read_as_its_annotations_file(tmp_path):
    """DATA/annotations.json + DATA/images (as Mask R-CNN and `segment --coco` have it) is the
    same dataset for semantic training, inspect and evaluate as the file itself (it was "images/
    has no mask folder beside it")."""
    from pixelwise.data.layouts import find_items, read_dataset_info

    data = _coco(tmp_path / "data")
    by_file, by_folder = find_items(data), find_items(data.parent)
    assert [i.name for i in by_folder] == [i.name for i in by_file]
    for a, b in zip(by_file, by_folder):
        assert np.array_equal(a.read_mask(), b.read_mask())
    assert read_dataset_info(data.parent).class_names == read_dataset_info(data).class_names
    assert read_dataset_info(data.parent).class_names == ["background", "triangle", "square"]
    assert main(["inspect", str(data.parent)]) == 0


def test_coco_ap_counts_every_object_of_a_dense_image():
    """pycocotools' summary keeps 100 detections per image: a perfect answer for an image of
    150 nuclei scores about 0.66. coco_average_precision keeps that standard figure and, when an
    image has more than 100 objects, gives the one counting every object beside it; under 100
    it equals COCOeval's own summary (random boxes and scores)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from pixelwise.data.coco import object_annotations

    labels = np.zeros((150, 200), np.int32)
    for k in range(150):
        y, x = divmod(k, 15)
        labels[y * 15 + 2 : y * 15 + 12, x * 13 + 2 : x * 13 + 11] = k + 1
    anns = [
        a | {"id": i + 1, "image_id": 1, "iscrowd": 0}
        for i, a in enumerate(object_annotations(labels))
    ]
    images = [{"id": 1, "height": 150, "width": 200}]
    truth = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "nucleus"}]}
    found = [
        {
            "image_id": 1,
            "category_id": 1,
            "score": 1.0 - i / 1000,
            "segmentation": a["segmentation"],
            "bbox": a["bbox"],
        }
        for i, a in enumerate(anns)
    ]
    assert len(anns) == 150
    segm = coco_average_precision(truth, found)["segm"]
    assert segm["every"] == pytest.approx({"ap": 1.0, "ap50": 1.0, "ap75": 1.0, "most": 150})
    assert segm["ap"] == pytest.approx(100 / 150, abs=0.02)  # COCO's standard figure, as it is

    rng = np.random.default_rng(0)
    few = [a | {"id": i + 1} for i, a in enumerate(anns[:40])]
    guesses = [
        {"image_id": 1, "category_id": 1, "score": float(rng.random()),
         "bbox": (np.asarray(a["bbox"]) + rng.integers(-1, 2, 4)).clip(1).tolist()}
        for a in few + few[:20]
    ]  # fmt: skip
    spec = truth | {"annotations": few}
    ours = coco_average_precision(spec, guesses, ("bbox",))["bbox"]
    gt = COCO()
    gt.dataset = json.loads(json.dumps(spec)) | {"info": {}}
    for ann in gt.dataset["annotations"]:
        ann["area"] = float(ann["bbox"][2] * ann["bbox"][3])
    gt.createIndex()
    ev = COCOeval(gt, gt.loadRes(guesses), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert 0.2 < ours["ap"] < 0.9
    assert [ours["ap"], ours["ap50"], ours["ap75"]] == pytest.approx(list(ev.stats[:3]))


def test_images_a_coco_file_lists_but_lacks_are_left_out_with_a_warning(tmp_path, capsys):
    """A subset of a dataset downloaded: the images missing are named once and left out; none
    present is an error naming where they were looked for."""
    data = _coco(tmp_path / "data", n_images=4)
    (tmp_path / "data" / "images" / "002.png").unlink()
    items, _, _ = load_coco(data)
    assert [item.image_id for item in items] == [100, 101, 103]
    assert main(["inspect", str(data)]) == 0
    said = capsys.readouterr().err
    assert said.count("1 of the 4 images it lists is not under") == 1 and "002.png" in said
    for name in ("000", "001", "003"):
        (tmp_path / "data" / "images" / f"{name}.png").unlink()
    assert main(["inspect", str(data)]) == 2
    said = capsys.readouterr().err
    assert "none of the 4 images it lists is under" in said and "000.png" in said
