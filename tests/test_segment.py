"""Instances end to end: train on instance labels, score objects with `evaluate`, write label images with `segment`."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from conftest import train_tiny
from PIL import Image

from pixelwise.cli import main
from pixelwise.data.io import read_image, read_mask
from pixelwise.evaluate import label_image_coco_ap, object_confidences, object_metrics
from pixelwise.metrics import boundary_f1, hausdorff95


def _blobs(root, n=10, size=64, seed=0):
    """Images of two pairs of touching bright discs with uint16 instance labels (DATA/images + DATA/instances)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "instances").mkdir()
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        labels = np.zeros((size, size), np.uint16)
        for row, cy in enumerate((16, 46)):
            r1, r2 = rng.integers(6, 9, 2)
            cx = int(rng.integers(10, 20))
            for k, (x, r) in enumerate(
                [(cx, r1), (cx + r1 + r2, r2)], start=2 * row + 1
            ):  # tangent discs
                labels[((yy - cy) ** 2 + (xx - x) ** 2 <= r * r) & (labels == 0)] = k
        image = np.where(labels > 0, 200, 30) + rng.integers(0, 20, labels.shape)
        Image.fromarray(image.astype(np.uint8)).save(root / "images" / f"{i:02d}.png")
        Image.fromarray(labels).save(root / "instances" / f"{i:02d}.png")
    return root


def test_object_metrics_perfect_and_hand_computed():
    ref = np.zeros((10, 10), np.uint16)
    ref[0:4, 0:4], ref[6:10, 6:10] = 1, 2
    perfect = object_metrics([(ref, ref.copy())])
    assert perfect["dsb_mean_ap"] == perfect["ap50"] == perfect["seg"] == perfect["f1"] == 1.0
    assert (
        perfect["v_rand"] == pytest.approx(1.0)
        and perfect["reference_objects"] == perfect["predicted_objects"] == 2
    )
    pred = np.zeros_like(ref)
    pred[0:4, 0:4] = 5  # one exact match, the other object missed, one false object
    pred[0:2, 8:10] = 9
    m = object_metrics([(ref, pred)])
    assert (
        m["ap50"] == pytest.approx(1 / 3)
        and m["f1"] == pytest.approx(0.5)
        and m["seg"] == pytest.approx(0.5)
    )


def test_label_image_coco_ap_ranks_objects_by_score():
    pytest.importorskip("pycocotools")
    ref = np.zeros((20, 20), np.uint16)
    ref[2:8, 2:8] = 1
    assert label_image_coco_ap([(ref, ref.copy())], [np.array([0.9])])[
        "coco_mask_ap"
    ] == pytest.approx(1.0)
    pred = np.zeros_like(ref)
    pred[2:8, 2:8], pred[12:18, 12:18] = 1, 2  # the true object and a false one
    # hand-computed: true object ranked first -> precision 1 at full recall; ranked second -> 1/2
    assert label_image_coco_ap([(ref, pred)], [np.array([0.9, 0.2])])[
        "coco_mask_ap"
    ] == pytest.approx(1.0)
    assert label_image_coco_ap([(ref, pred)], [np.array([0.2, 0.9])])[
        "coco_mask_ap"
    ] == pytest.approx(0.5)
    crowded = np.arange(50 * 50, dtype=np.int32).reshape(50, 50) + 1  # 2,500 one-pixel objects
    skipped = label_image_coco_ap([(crowded, crowded)], [np.ones(2500)])
    assert "coco_mask_ap" not in skipped and "up to 2500 objects in one image" in str(skipped)
    probs = np.random.default_rng(0).random((20, 20))
    naive = [probs[pred == k].mean() for k in (1, 2)]
    assert np.allclose(object_confidences(pred, probs), naive)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32])
def test_coco_parts_encode_each_object_as_its_whole_image_mask_would(dtype):
    pytest.importorskip("pycocotools")
    from pixelwise.data.coco import encode_rle
    from pixelwise.evaluate import coco_parts

    rng = np.random.default_rng(5)
    ref, pred = np.zeros((2, 37, 53), dtype)
    for labels in (ref, pred):
        for k in range(1, 12):
            y, x, h, w = rng.integers(0, 37), rng.integers(0, 53), *rng.integers(1, 20, 2)
            labels[y : y + h, x : x + w] = k  # overlapping boxes: split and ragged objects
    pred[pred == 4] = 0  # a number left out
    conf = rng.random(11)
    parts = coco_parts(ref, pred, conf, 7)
    expected = [(k, encode_rle(ref == k), (ref == k).sum()) for k in np.unique(ref) if k]
    assert [(a["segmentation"], a["area"]) for a in parts["annotations"]] == [
        (rle, float(area)) for _, rle, area in expected
    ]
    ks = [k for k in range(1, 12) if (pred == k).any()]
    assert [(r["segmentation"], r["score"]) for r in parts["results"]] == [
        (encode_rle(pred == k), conf[k - 1]) for k in ks
    ]
    assert {a["image_id"] for a in parts["annotations"] + parts["results"]} == {7}


def test_train_evaluate_segment_on_instances(tmp_path, capsys):
    data = _blobs(tmp_path / "blobs")
    run = tmp_path / "run"
    train_tiny(data, run, "--instances", "boundary", "--loss", "weighted-ce", "--epochs", "12",
               "--epoch-size", "32", "--crop", "48", "--lr", "1e-2", "--val-fraction", "0.2",
               "--precision", "fp32")  # fmt: skip
    assert (
        main(["evaluate", str(run / "best.pt"), str(data), "--json", str(tmp_path / "e.json")]) == 0
    )
    out = capsys.readouterr().out
    assert "DSB mean AP" in out and "V_Rand" in out
    ckpt = torch.load(run / "best.pt", weights_only=True)
    seed, whole = ckpt["instance_thresholds"]  # chosen on the validation images at the end
    assert f"instance thresholds: seed {seed}, object {whole} (DSB mean AP" in out
    assert f"objects: seed where interior > {seed}" in out  # evaluate says what it used
    objects = json.loads((tmp_path / "e.json").read_text())["objects"]
    assert (
        objects["reference_objects"] == 8 and objects["ap50"] > 0.9
    )  # the run's 2 validation images x 4 discs (the data it trained on: its own split)
    assert objects["coco_mask_ap50"] > 0.9 and "COCO mask AP" in out
    rows = json.loads((tmp_path / "e.json").read_text())["per_image"]
    assert len(rows) == 2 and "validation split of the checkpoint's training run" in out
    assert np.mean([r["dsb_mean_ap"] for r in rows]) == pytest.approx(objects["dsb_mean_ap"])
    assert "lowest DSB mean AP: " in out
    given = ["--instance-thresholds", "0.6,0.7", "--json", str(tmp_path / "given.json")]
    assert main(["evaluate", str(run / "best.pt"), str(data), *given]) == 0
    assert json.loads((tmp_path / "given.json").read_text())["instance_thresholds"] == [0.6, 0.7]
    with pytest.raises(SystemExit):  # argparse: exit status 2 with the reason
        main(["evaluate", str(run / "best.pt"), str(data), "--instance-thresholds", "0.8"])
    assert "expected SEED,OBJECT, two probabilities" in capsys.readouterr().err

    seg_out = tmp_path / "seg"
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert (
        main(
            [
                "segment",
                str(data / "images" / "00.png"),
                str(bad),
                "--model",
                str(run / "best.pt"),
                "--out",
                str(seg_out),
                "--no-progress",
            ]
        )
        == 1
    )
    labels = read_mask(seg_out / "instances" / "00.png")
    assert labels.dtype == np.uint16 and labels.max() >= 2
    assert (seg_out / "overlays" / "00.png").is_file()
    captured = capsys.readouterr()
    assert "00: " in captured.out and "bad.png" in captured.err
    # --skip-existing knows a finished image by its overlay, written last (the label image may
    # be a .tif beyond 65535 objects)
    (seg_out / "instances" / "00.png").write_bytes(b"left alone")
    again = ["segment", str(data / "images"), "--model", str(run / "best.pt"), "--out",
             str(seg_out), "--no-progress", "--skip-existing"]  # fmt: skip
    assert main(again) == 0
    assert (seg_out / "instances" / "00.png").read_bytes() == b"left alone"
    assert read_mask(seg_out / "instances" / "01.png").max() >= 2


class ProbabilitiesInPixels(torch.nn.Module):
    """A stand-in boundary model: its class probabilities are the image's three channels
    (background, interior, border; summing to 1), so every threshold's answer is known."""

    def forward(self, x):
        return torch.log(x.clamp_min(1e-6))


def _boundary_stand_in(tmp_path, interior: float):
    """Images whose discs have the interior probability ``interior`` inside their outlines
    (border 0.8 on them; background 0.05) with their instance labels, and a Segmenter that reads
    them as its probabilities."""
    from conftest import tiny_seg
    from skimage.segmentation import find_boundaries

    from pixelwise.data.datasets import SegmentationDataset
    from pixelwise.data.encoding import MaskEncoding, Normalization
    from pixelwise.data.layouts import evaluation_items

    data = _blobs(tmp_path / "blobs", n=3)
    for path in sorted((data / "images").glob("*.png")):
        labels = read_mask(data / "instances" / path.name)
        outline = find_boundaries(labels, mode="inner")[..., None]
        inside = np.where(outline, (0.05, 0.15, 0.8), (0.05, interior, 0.95 - interior))
        probs = np.where(labels[..., None] > 0, inside, (0.98, 0.01, 0.01))
        Image.fromarray(np.round(probs * 255).astype(np.uint8)).save(path)
    seg = tiny_seg(ProbabilitiesInPixels())
    seg.class_names = ["background", "interior", "boundary"]
    seg.arch_kwargs = seg.arch_kwargs | {"num_classes": 3}
    seg.encoding = MaskEncoding(instances="boundary")
    seg.norm = Normalization([0.0] * 3, [1.0] * 3)
    items, _ = evaluation_items(data, None)
    return seg, SegmentationDataset(items, 3, seg.encoding, seg.norm, channels=3)


def test_instance_thresholds_are_chosen_where_the_default_pair_finds_nothing(tmp_path):
    """Discs whose interior probability is 0.7 have no seed at the default 0.8: every object is
    missed (DSB mean AP 0); the choice takes a lower seed and finds them all (touching discs
    are split at their border pixels). The pair travels with the checkpoint's metadata and is
    what ``segment`` uses; --instance-thresholds overrides it."""
    from pixelwise.data.encoding import MaskEncoding
    from pixelwise.evaluate import choose_thresholds
    from pixelwise.inference import segment
    from pixelwise.instances import decision_for, with_thresholds
    from pixelwise.segmenter import Segmenter

    seg, ds = _boundary_stand_in(tmp_path, interior=0.7)
    chosen = choose_thresholds(seg, ds, "fp32")
    assert chosen["default_mean_ap"] == 0.0 and chosen["images"] == 3
    assert chosen["seed"] < 0.7 and chosen["mean_ap"] == pytest.approx(1.0)
    image, _ = ds.load(0)
    reference = ds.items[0].read_mask(instances=True)
    assert segment(seg, image).max() == 0  # the defaults
    seg.thresholds = (chosen["seed"], chosen["object"])
    again = Segmenter.from_metadata(seg.metadata(), seg.network)
    assert again.thresholds == seg.thresholds
    assert segment(again, image).max() == reference.max() == 4
    assert (
        decision_for(with_thresholds(again, (0.8, 0.85)))(torch.full((1, 3, 2, 2), 1 / 3)).sum()
        == 0
    )
    semantic = dataclasses.replace(again, encoding=MaskEncoding())
    with pytest.raises(ValueError, match="--instance-thresholds is for models trained with"):
        with_thresholds(semantic, (0.5, 0.5))


def test_evaluate_object_class_for_semantic_models(shapes_data, tmp_path):
    run = train_tiny(shapes_data, tmp_path / "run")
    assert (
        main(
            [
                "evaluate",
                str(run / "best.pt"),
                str(shapes_data),
                "--object-class",
                "1",
                "--json",
                str(tmp_path / "e.json"),
            ]
        )
        == 0
    )
    m = json.loads((tmp_path / "e.json").read_text())
    assert 0 <= m["objects"]["v_rand"] <= 1 and m["objects"]["reference_objects"] > 0


def test_missing_bundled_model_is_a_clear_error(tmp_path, capsys, monkeypatch):
    import pixelwise.checkpoint as ckpt

    monkeypatch.setattr(ckpt, "BUNDLED_DIR", tmp_path)
    assert (
        main(
            ["segment", str(tmp_path / "x.png"), "--model", "nuclei", "--out", str(tmp_path / "o")]
        )
        == 2
    )
    assert "bundled model 'nuclei' is missing" in capsys.readouterr().err


def test_bundled_nuclei_model_on_a_dsb2018_validation_image(tmp_path, capsys, monkeypatch):
    from conftest import REPO, shared_dataset

    root = shared_dataset("dsb2018")
    stem = (REPO / "recipes" / "dsb2018_val_ids.txt").read_text().split()[0]
    monkeypatch.chdir(tmp_path)
    assert main(["segment", str(root / "train" / "images" / f"{stem}.png"), "--no-progress"]) == 0
    labels = read_mask(tmp_path / "segment-output" / "instances" / f"{stem}.png")
    assert f"{stem}: {labels.max()}" in capsys.readouterr().out and labels.max() > 10
    assert main(["evaluate", "nuclei", str(root), "--val-stems", stem, "--min-size", "10"]) == 0
    objects = json.loads((tmp_path / "evaluation.json").read_text())[
        "objects"
    ]  # not inside the package
    assert objects["ap50"] > 0.6 and objects["reference_objects"] == 22


def test_python_api_segment_matches_cli(tmp_path):
    import pixelwise

    data = _blobs(tmp_path / "blobs", n=4)
    run = tmp_path / "run"
    train_tiny(data, run, "--instances", "boundary", "--crop", "48", "--val-fraction", "0.25")
    image = data / "images" / "00.png"
    labels = pixelwise.segment(str(run / "best.pt"), image)
    assert (
        main(
            [
                "segment",
                str(image),
                "--model",
                str(run / "best.pt"),
                "--out",
                str(tmp_path / "s"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert np.array_equal(labels, read_mask(tmp_path / "s" / "instances" / "00.png"))
    # predict's order, the model first, means the same
    argv = [
        "segment",
        str(run / "best.pt"),
        str(image),
        "-o",
        str(tmp_path / "s2"),
        "--no-progress",
    ]
    assert main(argv) == 0
    assert np.array_equal(labels, read_mask(tmp_path / "s2" / "instances" / "00.png"))
    assert main(argv + ["--checkpoint", "nuclei"]) == 2  # two models: refused, not guessed


def test_python_api_takes_a_checkpoint_path_or_name_and_loads_it_once(tmp_path, monkeypatch):
    """predict, predict_probabilities and segment take what segment took (a path or a bundled
    name, not only a loaded model: predict failed with an AttributeError); a loop over images
    loads the model once; a file written again is loaded again."""
    import pixelwise
    from pixelwise import inference
    from pixelwise.checkpoint import load_model, save_checkpoint

    data = _blobs(tmp_path / "blobs", n=4)
    run = tmp_path / "run"
    train_tiny(data, run, "--instances", "boundary", "--crop", "48", "--val-fraction", "0.25")
    best, image = run / "best.pt", data / "images" / "00.png"
    seg = load_model(best)
    loads = []
    monkeypatch.setattr(inference, "load_model", lambda p: loads.append(p) or load_model(p))
    for _ in range(3):
        np.testing.assert_array_equal(pixelwise.predict(best, image), pixelwise.predict(seg, image))
    probabilities = pixelwise.predict_probabilities(str(best), image)
    np.testing.assert_array_equal(probabilities, pixelwise.predict_probabilities(seg, image))
    np.testing.assert_array_equal(pixelwise.segment(best, image), pixelwise.segment(seg, image))
    assert len(loads) == 1  # best.pt and str(best.pt) are one file
    save_checkpoint(best, seg)
    pixelwise.predict(best, image)
    assert len(loads) == 2


def test_objects_of_a_two_class_model_are_its_second_class_regions(shapes_data, tmp_path, capsys):
    """segment with a semantic model not trained on instances: of two classes, the objects are
    the regions of the second (as --object-class 1); of more, the class must be named, and the
    refusal (before any file) lists the classes."""
    from conftest import BrightIsForeground, tiny_seg

    import pixelwise

    seg = tiny_seg(BrightIsForeground())
    image = np.full((40, 60, 3), 20, np.uint8)
    image[5:15, 5:20], image[25:35, 30:55] = 230, 230
    labels = pixelwise.segment(seg, image)
    assert labels.max() == 2
    np.testing.assert_array_equal(labels, pixelwise.segment(seg, image, object_class=1))
    run = train_tiny(shapes_data, tmp_path / "run")  # background, disc, square
    argv = ["segment", str(run / "best.pt"), str(shapes_data / "val" / "images"), "--no-progress"]
    assert main([*argv, "-o", str(tmp_path / "a")]) == 2
    said = capsys.readouterr().err
    assert "has 3 classes (0 class0, 1 class1, 2 class2); name the class" in said, said
    assert main([*argv, "-o", str(tmp_path / "b"), "--object-class", "2"]) == 0


def test_one_image_into_one_file(shapes_data, tmp_path, capsys):
    """predict and segment of one image with -o FILE.png or .tif write that file alone, the same
    values as the folder's mask or label image; options that write more need a folder; a
    folder of images with -o x.png is still a folder of outputs."""
    import tifffile

    run = train_tiny(shapes_data, tmp_path / "run")
    image = sorted((shapes_data / "val" / "images").glob("*.png"))[0]
    base = ["predict", str(run / "best.pt"), str(image), "--no-progress", "-o"]
    assert main([*base, str(tmp_path / "folder")]) == 0
    assert main([*base, str(tmp_path / "one" / "mask.png")]) == 0
    assert f"wrote {tmp_path / 'one' / 'mask.png'}" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["mask.png"]
    folder_mask = read_mask(tmp_path / "folder" / "masks" / image.name)
    np.testing.assert_array_equal(read_mask(tmp_path / "one" / "mask.png"), folder_mask)
    assert main([*base, str(tmp_path / "mask.tif")]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "mask.tif"), folder_mask)
    assert main([*base, str(tmp_path / "p.png"), "--probabilities"]) == 2
    assert "--probabilities writes into a folder" in capsys.readouterr().err
    assert main([*base, str(tmp_path / "mask.jpg")]) == 2  # not a folder named so
    assert "-o " + str(tmp_path / "mask.jpg") + ": class ids and labels are written as PNG or" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "mask.jpg").exists()
    seg = ["segment", "nuclei", str(image), "--no-progress", "-o"]
    assert main([*seg, str(tmp_path / "s")]) == 0 and main([*seg, str(tmp_path / "l.tif")]) == 0
    labels = read_mask(tmp_path / "s" / "instances" / image.name)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "l.tif"), labels)
    many = ["predict", str(run / "best.pt"), str(image.parent), "-o", str(tmp_path / "x.png")]
    assert main([*many, "--no-progress"]) == 0 and (tmp_path / "x.png" / "masks").is_dir()


def test_a_bundled_model_name_first_is_the_model_in_segment_and_remove_bg(tmp_path, capsys):
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 48, 3), 90, np.uint8)).save(photo)
    out = tmp_path / "o"
    assert main(["segment", "nuclei", str(photo), "-o", str(out / "s"), "--no-progress"]) == 0
    assert (out / "s" / "instances" / "photo.png").is_file()
    assert main(["remove-bg", "foreground", str(photo), "-o", str(out / "r"), "--no-progress"]) == 0
    assert (out / "r" / "photo.png").is_file()
    assert "nuclei: no such file" not in capsys.readouterr().err


def test_segment_with_tta_averages_the_eight_flips_in_the_api_and_the_cli(tmp_path):
    import pixelwise
    from pixelwise.checkpoint import load_model
    from pixelwise.inference import predict
    from pixelwise.instances import instances_for

    data = _blobs(tmp_path / "blobs", n=4)
    run = tmp_path / "run"
    train_tiny(data, run, "--instances", "boundary", "--crop", "48", "--val-fraction", "0.25")
    image = read_image(data / "images" / "00.png")
    seg = load_model(run / "best.pt")
    expected = instances_for(seg, predict(seg, image, "fp32", tta=True))
    assert np.array_equal(pixelwise.segment(seg, image, "fp32", tta=True), expected)
    out = tmp_path / "s"
    args = ["segment", str(data / "images" / "00.png"), "--checkpoint", str(run / "best.pt")]
    assert main([*args, "--out", str(out), "--tta", "--precision", "fp32", "--no-progress"]) == 0
    assert np.array_equal(read_mask(out / "instances" / "00.png"), expected)


def test_segment_writes_one_coco_file_that_reads_back_object_for_object(tmp_path, capsys):
    """segment --coco: one COCO instances file for the batch whose every annotation decodes
    (pycocotools, an independent reader) to exactly the object of the written label image,
    with its tight box and area, images named relative to the file; `train` reads it."""
    from pycocotools.coco import COCO

    data = _blobs(tmp_path / "blobs", n=3)
    out, coco = tmp_path / "seg", data / "annotations.json"
    argv = ["segment", "nuclei", str(data / "images"), "-o", str(out), "--no-progress"]
    assert main([*argv, "--coco", str(coco)]) == 0
    reported = capsys.readouterr().out
    api = COCO(str(coco))
    assert [im["file_name"] for im in api.dataset["images"]] == ["00.png", "01.png", "02.png"]
    assert [c["name"] for c in api.dataset["categories"]] == ["object"]
    total = 0
    for im in api.dataset["images"]:
        labels = read_mask(out / "instances" / im["file_name"])
        anns = api.loadAnns(api.getAnnIds(imgIds=[im["id"]]))
        assert len(anns) == labels.max() > 0
        for k, ann in enumerate(anns, start=1):
            assert np.array_equal(api.annToMask(ann), labels == k)
            ys, xs = np.nonzero(labels == k)
            assert ann["bbox"] == [xs.min(), ys.min(), np.ptp(xs) + 1, np.ptp(ys) + 1]
            assert ann["area"] == len(ys) and ann["iscrowd"] == 0
        total += len(anns)
    assert f"{total} objects of 3 images to {coco}" in reported
    # images/ beside the file: there pixelwise looks for them, train reads the file as data
    from pixelwise.detection import instance_splits

    train, val, cats, _ = instance_splits(coco, None, 0.34, 0)
    assert sorted(i.image.name for i in train + val) == ["00.png", "01.png", "02.png"]
    assert main([*argv, "--coco", str(tmp_path / "x.txt")]) == 2
    assert main([*argv, "--coco", str(coco), "--skip-existing"]) == 2


def test_segment_coco_keeps_an_instance_models_classes(tmp_path, monkeypatch):
    """For Mask R-CNN each object's category is its detection's class (painted in score
    order, as the label image is); objects under --min-object-size are left out of both."""
    import torch

    from pixelwise import batch
    from pixelwise.batch import PredictOptions, segment_files
    from pixelwise.data.encoding import Normalization
    from pixelwise.runner import write_coco
    from pixelwise.segmenter import Segmenter

    masks = torch.zeros(3, 1, 20, 30)
    masks[0, 0, 2:8, 2:10], masks[1, 0, 10:18, 5:25], masks[2, 0, 0:2, 28:30] = 1, 1, 1
    pred = {
        "boxes": torch.tensor([[2.0, 2, 10, 8], [5, 10, 25, 18], [28, 0, 30, 2]]),
        "labels": torch.tensor([2, 1, 1]),
        "scores": torch.tensor([0.9, 0.8, 0.95]),
        "masks": masks,
    }
    monkeypatch.setattr(batch, "detect", lambda seg, image, threshold: pred)
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "a.png")
    seg = Segmenter(None, "mask_rcnn", {}, ["background", "cat", "dog"], Normalization())
    options = PredictOptions(coco=str(tmp_path / "c.json"), min_object_size=5)
    result = segment_files(seg, [tmp_path / "a.png"], tmp_path / "out", options, progress=False)
    assert write_coco(tmp_path / "c.json", result, ["cat", "dog"]) == 2
    spec = json.loads((tmp_path / "c.json").read_text())
    assert [(a["category_id"], a["area"]) for a in spec["annotations"]] == [(2, 48), (1, 160)]
    assert spec["categories"] == [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]


def _naive_mean_iou(pairs, classes):
    """Mean IoU over classes present in either, counted by hand over (prediction, truth) pairs."""
    inter, union = np.zeros(classes), np.zeros(classes)
    for pred, truth in pairs:
        for c in range(classes):
            inter[c] += np.sum((pred == c) & (truth == c))
            union[c] += np.sum((pred == c) | (truth == c))
    return float(np.mean(inter[union > 0] / union[union > 0]))


def test_evaluate_scores_a_folder_of_predicted_masks(shapes_data, tmp_path, capsys):
    """evaluate PRED DATA: masks from any tool, as class ids or as the data's stored values,
    scored against the data's validation split (a hand count of the IoU); a missing, misnamed,
    missized or unreadable prediction is a one-line error."""
    from pixelwise.evaluate_folders import evaluate_predictions

    rng = np.random.default_rng(0)
    truths = sorted((shapes_data / "val" / "masks").glob("*.png"))
    (tmp_path / "ids").mkdir()
    pairs = []
    for path in truths:
        truth = read_mask(path)
        pred = np.where(rng.random(truth.shape) < 0.1, rng.integers(0, 3, truth.shape), truth)
        Image.fromarray(pred.astype(np.uint8)).save(tmp_path / "ids" / path.name)
        pairs.append((pred, truth))
    summary = evaluate_predictions(tmp_path / "ids", shapes_data)
    assert summary["images"] == len(truths)
    assert summary["mean_iou"] == pytest.approx(_naive_mean_iou(pairs, 3))
    # boundary F1: each class's mean over the images that have it, then over the classes
    per_image = np.array([boundary_f1(truth, pred, 3) for pred, truth in pairs])
    assert summary["mean_boundary_f1"] == pytest.approx(np.nanmean(np.nanmean(per_image, 0)))
    assert [r["boundary_f1"] for r in summary["per_image"]] == pytest.approx(
        np.nanmean(per_image, 1).tolist()
    )
    assert 0 < summary["mean_boundary_f1"] < 1
    hd95 = np.array([hausdorff95(truth, pred, 3) for pred, truth in pairs])
    assert summary["mean_hd95"] == pytest.approx(np.nanmean(np.nanmean(hd95, 0)))
    assert [r["hd95"] for r in summary["per_image"]] == pytest.approx(np.nanmean(hd95, 1).tolist())
    out = tmp_path / "e.json"
    args = ["evaluate", str(tmp_path / "ids"), str(shapes_data), "--json", str(out)]
    assert main(args) == 0
    assert json.loads(out.read_text())["mean_iou"] == pytest.approx(summary["mean_iou"])
    first = truths[0].name
    (tmp_path / "ids" / first).unlink()
    assert main(args) == 2
    assert f"no prediction for 1 of the {len(truths)} images" in capsys.readouterr().err
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "ids" / first)
    assert main(args) == 2 and "5 x 5 pixels, its image 48 x 48" in capsys.readouterr().err
    Image.fromarray(np.full((48, 48), 7, np.uint8)).save(tmp_path / "ids" / first)
    assert main(args) == 2 and "values [7] are neither class ids 0..2" in capsys.readouterr().err


def test_evaluate_scores_predicted_objects_as_it_scores_a_model(tmp_path, capsys):
    """Instance data: predicted label images get the object scores evaluate gives a model; the
    reference itself scores perfectly, one object left out costs its recall, and segment's
    output folder is read as it is (OUT/instances)."""
    from pixelwise.evaluate_folders import evaluate_predictions

    data = _blobs(tmp_path / "blobs", n=3)
    perfect = evaluate_predictions(data / "instances", data)
    assert perfect["objects"]["dsb_mean_ap"] == 1.0 and perfect["objects"]["pq"] == 1.0
    (tmp_path / "out" / "instances").mkdir(parents=True)
    for path in sorted((data / "instances").glob("*.png")):
        labels = read_mask(path).copy()
        labels[labels == labels.max()] = 0  # one object missed per image
        Image.fromarray(labels).save(tmp_path / "out" / "instances" / path.name)
    missed = evaluate_predictions(tmp_path / "out", data)["objects"]
    assert missed["recall"] == pytest.approx(3 / 4) and missed["precision"] == 1.0
    assert missed["predicted_objects"] == 9 and missed["reference_objects"] == 12


def test_evaluate_reads_predictions_stored_as_the_datas_masks(tmp_path):
    """Black-and-white data (0/255): predictions stored as 0/255 or as class ids 0/1 score alike."""
    from pixelwise.evaluate_folders import evaluate_predictions

    rng = np.random.default_rng(1)
    for sub in ("images", "masks", "as255", "as01"):
        (tmp_path / sub).mkdir()
    pairs = []
    for i in range(3):
        truth = (rng.random((20, 24)) < 0.4).astype(np.uint8)
        pred = np.where(rng.random(truth.shape) < 0.2, 1 - truth, truth)
        Image.fromarray(rng.integers(0, 255, (20, 24), dtype=np.uint8)).save(
            tmp_path / "images" / f"{i}.png"
        )
        Image.fromarray(truth * 255).save(tmp_path / "masks" / f"{i}.png")
        Image.fromarray(pred * 255).save(tmp_path / "as255" / f"{i}.png")
        Image.fromarray(pred).save(tmp_path / "as01" / f"{i}.png")
        pairs.append((pred, truth))
    a = evaluate_predictions(tmp_path / "as255", tmp_path)
    b = evaluate_predictions(tmp_path / "as01", tmp_path)
    assert a["mean_iou"] == b["mean_iou"] == pytest.approx(_naive_mean_iou(pairs, 2))


def test_evaluate_scores_remove_bg_cutouts_by_their_alpha(tmp_path, capsys):
    """remove-bg's cut-outs (RGBA PNGs) scored against black-and-white masks: foreground where
    the alpha is at least 128, the same scores as those masks saved as class ids; a cut-out for
    data of three classes is a one-line error."""
    from pixelwise.cutout import cutout_bytes
    from pixelwise.evaluate_folders import evaluate_predictions

    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    for sub in ("images", "masks", "cut", "ids", "webp"):
        (data / sub if sub in ("images", "masks") else tmp_path / sub).mkdir(parents=True)
    for i in range(3):
        truth = np.zeros((40, 50), np.uint8)
        truth[8 + i : 30, 10 : 35 + i] = 255
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), np.uint8)).save(
            data / "images" / f"{i}.jpg"
        )
        Image.fromarray(truth).save(data / "masks" / f"{i}.png")
        alpha = np.roll(truth, 3 * i, axis=1).astype(np.uint8)
        alpha[alpha > 0] = rng.integers(100, 256, int((alpha > 0).sum()))  # soft edges
        rgba = np.dstack([rng.integers(0, 255, (40, 50, 3), np.uint8), alpha])
        Image.fromarray(rgba, "RGBA").save(tmp_path / "cut" / f"{i}.png")
        webp = tmp_path / "webp" / f"{i}.webp"
        webp.write_bytes(cutout_bytes(Image.fromarray(rgba, "RGBA"), "webp"))  # as remove-bg
        Image.fromarray((alpha >= 128).astype(np.uint8)).save(tmp_path / "ids" / f"{i}.png")
    cut = evaluate_predictions(tmp_path / "cut", data)
    ids = evaluate_predictions(tmp_path / "ids", data)
    assert cut["images"] == 3 and 0.3 < cut["mean_iou"] < 0.99
    webp = evaluate_predictions(tmp_path / "webp", data)  # remove-bg --format webp
    for other in (ids, webp):
        assert {k: cut[k] for k in ("mean_iou", "mean_boundary_f1", "per_class")} == {
            k: other[k] for k in ("mean_iou", "mean_boundary_f1", "per_class")
        }
    assert main(["evaluate", str(tmp_path / "cut"), str(data)]) == 0
    assert "mean BF" in capsys.readouterr().out
    classes = [{"id": k, "name": n} for k, n in enumerate("abc")]
    (data / "classes.json").write_text(json.dumps({"classes": classes}))
    for i in range(3):  # class ids 0, 1, 2 (the masks were 0/255)
        Image.fromarray(np.full((40, 50), i, np.uint8)).save(data / "masks" / f"{i}.png")
    with pytest.raises(ValueError, match=r"0.png, .*2.png: a cut-out .* not 3 classes"):
        evaluate_predictions(tmp_path / "cut", data)
