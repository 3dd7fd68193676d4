"""Instance models (Mask R-CNN) behind the same verbs as semantic ones: the Python API's
predict/segment, the CLI, and torchrun training that equals one process."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("pycocotools", reason="COCO support needs pycocotools")

from test_coco import _coco  # noqa: E402
from test_distributed import torchrun  # noqa: E402

import pixelwise  # noqa: E402
from pixelwise.checkpoint import load_model  # noqa: E402
from pixelwise.cli import main  # noqa: E402
from pixelwise.config import TrainConfig  # noqa: E402
from pixelwise.data.io import read_image, read_mask  # noqa: E402
from pixelwise.detection import detect  # noqa: E402
from pixelwise.train import fit  # noqa: E402

TRAIN = dict(
    model="mask_rcnn",
    min_size=64,
    max_size=96,
    epochs=1,
    epoch_size=4,
    batch_size=2,
    val_stems=["003"],
    lr=1e-3,
    device="cpu",
    progress=False,
)


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    data = _coco(root / "data", n_images=4)
    best = fit(TrainConfig(data=str(data), out=str(root / "run"), **TRAIN))
    return data, best


def naive_classes(pred: dict, threshold: float) -> np.ndarray:
    """Each pixel: the class of the best-scoring detection (>= threshold) whose mask covers it."""
    masks = pred["masks"][:, 0].numpy() > 0.5
    out = np.zeros(masks.shape[1:], np.uint8)
    best = np.full(masks.shape[1:], -1.0)
    for mask, label, score in zip(masks, pred["labels"].tolist(), pred["scores"].tolist()):
        take = mask & (score > best) & (score >= threshold)
        out[take], best[take] = label, score
    return out


def test_python_api_predict_and_segment_on_a_mask_rcnn_checkpoint(detector):
    data, best = detector
    seg = load_model(best)
    assert seg.kind == "instance"
    seg.network.roi_heads.score_thresh = 0.0  # a one-epoch model: keep its low-scoring boxes too
    image = read_image(data.parent / "images" / "000.png")
    pred = detect(seg, image, score_threshold=0.0)
    assert len(pred["scores"]) > 0
    mask = pixelwise.predict(seg, image, score_threshold=0.0)
    assert mask.dtype == np.uint8 and mask.shape == image.shape[:2]
    np.testing.assert_array_equal(mask, naive_classes(pred, 0.0))
    labels = pixelwise.segment(seg, data.parent / "images" / "000.png", score_threshold=0.0)
    assert labels.max() > 0
    assert labels.dtype == np.uint16 and labels.shape == image.shape[:2]
    np.testing.assert_array_equal(
        labels > 0, mask > 0
    )  # the same detections, as objects and as classes
    assert labels.max() == len(np.unique(labels[labels > 0]))  # ids 1..N


def test_detect_leaves_the_shared_network_unchanged(detector):
    seg = load_model(detector[1])
    before = (
        seg.network.transform.min_size,
        seg.network.transform.max_size,
        seg.network.roi_heads.detections_per_img,
    )
    image = read_image(detector[0].parent / "images" / "001.png")
    few = detect(seg, image, score_threshold=0.0, max_detections=2, image_size=48)
    assert len(few["scores"]) <= 2
    after = (
        seg.network.transform.min_size,
        seg.network.transform.max_size,
        seg.network.roi_heads.detections_per_img,
    )
    assert after == before


def objects_drawn_back(out: Path, name: str, class_names: list[str]) -> None:
    """OUT/geojson/NAME.geojson holds each object of OUT/instances/NAME.png, by number, drawn
    back pixel for pixel, classified by one of the model's classes."""
    from conftest import geojson_raster

    labels = read_mask(out / "instances" / f"{name}.png")
    features = json.loads((out / "geojson" / f"{name}.geojson").read_text())["features"]
    assert len(features) == len(np.unique(labels)) - 1 > 0
    for item in features:
        number = item["properties"]["measurements"]["object"]
        drawn = geojson_raster(item["geometry"], labels.shape)
        np.testing.assert_array_equal(drawn, labels == number)
        assert item["properties"]["classification"]["name"] in class_names[1:]


def test_cli_predict_and_segment_on_a_mask_rcnn_checkpoint(detector, tmp_path, capsys):
    data, best = detector
    images = data.parent / "images"
    assert (
        main(
            [
                "predict",
                str(best),
                str(images),
                "--out",
                str(tmp_path / "p"),
                "--score-threshold",
                "0.0",
                "--no-progress",
                "--geojson",
                "--labelme",
            ]
        )
        == 0
    )
    assert "instance labels to" in capsys.readouterr().out
    shapes = json.loads((tmp_path / "p" / "labelme" / "000.json").read_text())["shapes"]
    labels = read_mask(tmp_path / "p" / "instances" / "000.png")
    objects = {s["group_id"] for s in shapes if s["label"] != "_background_"}
    assert objects == set(np.unique(labels).tolist()) - {0}
    for folder in ("masks", "instances", "overlays"):
        assert len(list((tmp_path / "p" / folder).glob("*.png"))) == 4, folder
    objects_drawn_back(tmp_path / "p", "000", load_model(best).class_names)
    assert (
        main(
            [
                "segment",
                str(images / "000.png"),
                "--checkpoint",
                str(best),
                "--out",
                str(tmp_path / "s"),
                "--score-threshold",
                "0.0",
                "--no-progress",
                "--geojson",
            ]
        )
        == 0
    )
    objects_drawn_back(tmp_path / "s", "000", load_model(best).class_names)
    labels = read_mask(tmp_path / "s" / "instances" / "000.png")
    np.testing.assert_array_equal(
        labels, pixelwise.segment(load_model(best), images / "000.png", score_threshold=0.0)
    )


def test_mask_rcnn_under_torchrun_trains_like_one_process(tmp_path):
    """One optimizer step of a global batch of 2 images: one process, or two processes with one
    image each, give the same weights. One step, because later steps of a detector are chaotic
    in float rounding: weights that differ in the 7th digit (the processes sum gradients in
    another order) can move a proposal across a top-k or NMS cut and sample other regions.
    SGD, not Adam: Adam's first step moves each weight by about lr * sign(gradient)."""
    data = _coco(tmp_path / "data", n_images=5)
    sgd = {"val_stems": ["004"], "optimizer": "sgd", "lr": 0.01, "epoch_size": 2}
    single = fit(TrainConfig(data=str(data), out=str(tmp_path / "one"), **TRAIN | sgd))
    args = [
        "train",
        str(data),
        "--out",
        str(tmp_path / "ddp"),
        "--model",
        "mask_rcnn",
        "--min-size",
        "64",
        "--max-size",
        "96",
        "--epochs",
        "1",
        "--epoch-size",
        "2",
        "--batch-size",
        "2",
        "--val-stems",
        "004",
        "--optimizer",
        "sgd",
        "--lr",
        "0.01",
        "--device",
        "cpu",
        "--no-progress",
    ]
    proc = torchrun(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = (
        torch.load(p, weights_only=True)
        for p in (single.parent / "last.pt", tmp_path / "ddp" / "last.pt")
    )
    for k in a["state_dict"]:
        torch.testing.assert_close(
            a["state_dict"][k], b["state_dict"][k], rtol=1e-4, atol=1e-5, msg=k
        )
    # the losses of the step were computed from the same weights
    np.testing.assert_allclose(
        [h["train_loss"] for h in a["train_state"]["history"]],
        [h["train_loss"] for h in b["train_state"]["history"]],
        rtol=1e-5,
    )
    torch.manual_seed(0)  # the weights the run started from: training moved them
    start = pixelwise.create_model(
        "mask_rcnn", num_classes=2, min_size=64, max_size=96
    ).state_dict()
    assert any(
        not torch.equal(start[k], a["state_dict"][k]) for k in start if start[k].is_floating_point()
    )


def test_evaluate_scores_predicts_output_as_the_model_is_scored(detector, tmp_path, capsys):
    """predict's output folder of a Mask R-CNN (its per-image COCO results hold image id 0)
    is scored by `evaluate OUT DATA` as detections, with the data's image ids by file stem:
    the scores `evaluate` gives those detections as one COCO results file with the right ids;
    a missing file is a one-line error. (A one-epoch model scores little: test_coco checks the
    figures on known detections.)"""
    from pixelwise.evaluate_folders import evaluate_results

    data, best = detector
    out = tmp_path / "p"
    argv = ["predict", str(best), str(data.parent / "images"), "--out", str(out)]
    assert main([*argv, "--score-threshold", "0.0", "--no-progress"]) == 0
    spec = json.loads(data.read_text())
    ids = {Path(im["file_name"]).stem: im["id"] for im in spec["images"]}
    merged = [
        r | {"image_id": ids[path.stem]}
        for path in sorted((out / "coco").glob("*.json"))
        for r in json.loads(path.read_text())
    ]
    assert merged and {r["image_id"] for r in merged} == set(ids.values())
    (tmp_path / "merged.json").write_text(json.dumps(merged))
    expected = evaluate_results(tmp_path / "merged.json", data)["detection"]
    for given in (out, out / "coco"):
        assert main(["evaluate", str(given), str(data), "--json", str(tmp_path / "e.json")]) == 0
        assert json.loads((tmp_path / "e.json").read_text())["detection"] == expected
    assert "mask AP" in capsys.readouterr().out
    # asked for, its masks are scored as they are (here, class masks of COCO's categories)
    assert main(["evaluate", str(out), str(data), "--min-object-size", "1"]) == 0
    assert "mean IoU" in capsys.readouterr().out
    next(iter((out / "coco").glob("*.json"))).unlink()
    assert main(["evaluate", str(out), str(data)]) == 2
    assert "no results file for 1 of the 4 images" in capsys.readouterr().err


def test_mask_rcnn_trains_on_every_image_without_validation(tmp_path, capsys):
    """--val-fraction 0 for Mask R-CNN too: no scoring, best.pt is the last epoch's model."""
    data = _coco(tmp_path / "data", n_images=3)
    options = TRAIN | {"val_stems": None, "val_fraction": 0.0}
    best = fit(TrainConfig(data=str(data), out=str(tmp_path / "run"), **options))
    assert "3 training images, no validation" in capsys.readouterr().out
    state = torch.load(best, weights_only=True)["train_state"]
    assert state["epoch"] == 1 and state["metrics"] == {}
