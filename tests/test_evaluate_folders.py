"""evaluate PREDICTIONS DATA: which file is each image's, and what its values mean, for the
layouts whose item names are not their images' file names (Cityscapes, the Cell Tracking
Challenge) and for masks whose class ids are also stored values of the data."""

import dataclasses
import json

import numpy as np
import pytest
import tifffile
from conftest import train_tiny
from PIL import Image

from pixelwise.cli import main
from pixelwise.data.write import holds_class_ids, save_mask
from pixelwise.evaluate_folders import evaluate_predictions

AND, OR = np.logical_and, np.logical_or
CAR, ROAD, SIGN, VEGETATION = 26, 7, 20, 21  # Cityscapes label ids; class ids 13, 0, 7, 8


def _cityscapes(root, below=ROAD, size=(40, 48)):
    """Two val frames in two cities: road (or ``below``) below, a sign and vegetation above, a
    parking lot (label id 9, ignored) in a corner; returns their label ids by name."""
    truths = {}
    for k, city in enumerate(("lindau", "munster")):
        name = f"{city}_000000_00001{k}"
        ids = np.full(size, below, np.uint8)
        ids[: size[0] // 2] = VEGETATION
        ids[4:12, 6 + k : 20] = SIGN
        ids[-5:, -5:] = 9
        for folder, file, values in (
            ("leftImg8bit", f"{name}_leftImg8bit.png", np.dstack([ids * 5] * 3)),
            ("gtFine", f"{name}_gtFine_labelIds.png", ids),
        ):
            (root / folder / "val" / city).mkdir(parents=True, exist_ok=True)
            Image.fromarray(values.astype(np.uint8)).save(root / folder / "val" / city / file)
        truths[name] = ids
    return truths


def test_cityscapes_predictions_are_found_by_their_image_name_and_read_as_class_ids(tmp_path):
    """`predict leftImg8bit/val` writes lindau/X_leftImg8bit.png: evaluate finds it for item X.
    Class ids 7 (traffic sign) and 8 (vegetation) are also Cityscapes label ids (road, sidewalk):
    predict's masks say they are class ids, so a perfect prediction scores 1; the same values in
    an unmarked file are read as the data's label ids, as another tool's would be."""
    truths = _cityscapes(tmp_path / "city", below=VEGETATION)
    to_class = {SIGN: 7, VEGETATION: 8, 9: 8}
    for marked, folder in ((True, "pred"), (False, "other")):
        for name, ids in truths.items():
            city = name.split("_")[0]
            out = tmp_path / folder / "masks" / city / f"{name}_leftImg8bit.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            classes = np.vectorize(to_class.get)(ids).astype(np.uint8)
            if marked:
                save_mask(out, classes)
            else:
                Image.fromarray(classes).save(out)
            assert holds_class_ids(out) == marked
    perfect = evaluate_predictions(tmp_path / "pred", tmp_path / "city")
    assert perfect["images"] == 2 and perfect["mean_iou"] == 1.0
    misread = evaluate_predictions(tmp_path / "other", tmp_path / "city")
    assert misread["mean_iou"] == 0.0  # sign and vegetation read as road and sidewalk


def test_predicted_values_the_data_ignores_are_class_ids_or_a_clear_error(tmp_path):
    """An unmarked mask holding a value the data leaves unscored (Cityscapes' 0, unlabeled) is
    read as class ids when it can be (class 0 is road), and refused when it cannot."""
    truths = _cityscapes(tmp_path / "city")
    for name, ids in truths.items():
        out = tmp_path / "pred" / f"{name}_leftImg8bit.png"
        out.parent.mkdir(exist_ok=True)
        Image.fromarray(
            np.where(ids == SIGN, 7, np.where(ids == ROAD, 0, 8)).astype(np.uint8)
        ).save(out)
    assert evaluate_predictions(tmp_path / "pred", tmp_path / "city")["mean_iou"] == 1.0
    Image.fromarray(np.where(truths[name] == ROAD, 0, CAR).astype(np.uint8)).save(out)
    with pytest.raises(ValueError, match=r"values \[0\] are ones the data's masks leave unscored"):
        evaluate_predictions(tmp_path / "pred", tmp_path / "city")


def _ctc(root, sequences=("01", "02"), frames=("000", "001")):
    """Cell Tracking Challenge sequences of two touching cells per frame, 40 x 40."""
    labels = np.zeros((40, 40), np.uint16)
    labels[8:24, 6:20], labels[8:24, 20:34] = 1, 2
    for seq in sequences:
        (root / seq).mkdir(parents=True)
        (root / f"{seq}_GT" / "SEG").mkdir(parents=True)
        for t in frames:
            image = np.where(labels > 0, 3000, 200).astype(np.uint16)
            tifffile.imwrite(root / seq / f"t{t}.tif", image)
            tifffile.imwrite(root / f"{seq}_GT" / "SEG" / f"man_seg{t}.tif", labels)


def test_a_ctc_sequences_predictions_score_as_its_checkpoint_does(tmp_path, capsys):
    """`predict run/best.pt DATA/01` writes t000.png for item 01_t000: evaluate finds it, and
    the objects of predict's class masks are made as the checkpoint's are (pixel and object
    scores alike). Two sequences sharing t000.png is a one-line error naming both items."""
    data = tmp_path / "ctc"
    _ctc(data)
    run = train_tiny(data, tmp_path / "run", "--instances", "foreground", "--epochs", "6")
    out = tmp_path / "out"
    assert main(["predict", str(run / "best.pt"), str(data / "01"), "-o", str(out)]) == 0
    stems = ["--val-stems", "01_t000,01_t001"]
    scores = []
    for source in (out, run / "best.pt"):
        args = ["evaluate", str(source), str(data), *stems, "--json", str(tmp_path / "e.json")]
        assert main(args) == 0
        scores.append(json.loads((tmp_path / "e.json").read_text()))
    folder, model = scores
    assert folder["mean_iou"] == model["mean_iou"]
    for key in ("pq", "aji", "v_rand", "predicted_objects"):
        assert folder["objects"][key] == pytest.approx(model["objects"][key]), key
    capsys.readouterr()
    assert main(["evaluate", str(out), str(data)]) == 2
    err = capsys.readouterr().err
    assert "t000.png: the only prediction for both 01_t000 and 02_t000" in err


def test_evaluate_scale_scores_what_predict_scale_writes(tmp_path, capsys):
    """``evaluate MODEL --scale 0.5`` scores the masks and objects ``predict --scale 0.5``
    writes (scored as a folder): the network sees each image at half size, the scores are at
    the data's resolution. A folder of predictions takes no --scale; ``auto`` needs a model
    that records the pixel size it learned at."""
    data = tmp_path / "ctc"
    _ctc(data)
    run = train_tiny(data, tmp_path / "run", "--instances", "foreground", "--epochs", "6")
    out = tmp_path / "out"
    half = ["--scale", "0.5"]
    fixed = ["--precision", "fp32", "--runtime", "torch"]  # one path (not int8 by the probe)
    predict = ["predict", str(run / "best.pt"), str(data / "01"), "-o", str(out), *fixed]
    assert main([*predict, *half]) == 0
    stems = ["--val-stems", "01_t000,01_t001"]
    scores = []
    for source, extra in ((out, []), (run / "best.pt", half), (run / "best.pt", [])):
        args = ["evaluate", str(source), str(data), *stems, "--json", str(tmp_path / "e.json")]
        assert main(args + extra + (fixed if source != out else [])) == 0
        scores.append(json.loads((tmp_path / "e.json").read_text()))
    folder, model, full = scores
    assert model["scale"] == 0.5 and "scale" not in full
    assert ") at --scale 0.5\n" in capsys.readouterr().out  # the scores' header says so
    assert folder["mean_iou"] == model["mean_iou"] != full["mean_iou"]
    for key in ("pq", "aji", "v_rand", "predicted_objects"):
        assert folder["objects"][key] == pytest.approx(model["objects"][key]), key
    capsys.readouterr()
    assert main(["evaluate", str(out), str(data), *half]) == 2
    assert "--scale is for models; these are predictions" in capsys.readouterr().err
    assert main(["evaluate", str(run / "best.pt"), str(data), "--scale", "auto"]) == 2
    assert "this model records none" in capsys.readouterr().err
    # --scale auto: sequence 01 recorded at 0.5 µm a pixel, the model at 1 µm: half size
    from pixelwise.checkpoint import load_model, save_checkpoint

    learned = tmp_path / "learned.pt"
    save_checkpoint(learned, dataclasses.replace(load_model(run / "best.pt"), pixel_size=1.0))
    per_cm = {"resolution": (2e4, 2e4), "resolutionunit": "CENTIMETER"}
    for frame in (data / "01").iterdir():
        tifffile.imwrite(frame, tifffile.imread(frame), **per_cm)
    args = ["evaluate", str(learned), str(data), "--json", str(tmp_path / "e.json")]
    assert main([*args, "--scale", "auto", *fixed]) == 0
    assert "no pixel size recorded for 2 images (scored as they are)" in capsys.readouterr().err
    rows = {
        r["name"]: r["mean_iou"] for r in json.loads((tmp_path / "e.json").read_text())["per_image"]
    }
    for name, row in zip(("01_t000", "01_t001"), model["per_image"]):
        assert rows[name] == row["mean_iou"]  # as at --scale 0.5
    for name, row in zip(("01_t000", "01_t001"), full["per_image"]):
        assert rows["02" + name[2:]] == row["mean_iou"]  # as they are


def _three_classes(tmp_path) -> list[np.ndarray]:
    """Two images of three classes (DATA = tmp_path/data), predict's masks of them (pred/masks)
    and label images of class 1's objects (seg/instances) with a strip of one missed and five
    small objects on class 2; returns the masks."""
    rng = np.random.default_rng(0)
    for sub in ("images", "masks"):
        (tmp_path / "data" / sub).mkdir(parents=True)
    truths = []
    for i in range(2):
        truth = np.zeros((30, 36), np.uint8)
        truth[3:10, 3:10], truth[3:10, 14:20], truth[15:25, 5:30] = 1, 1, 2
        Image.fromarray(rng.integers(0, 255, (30, 36, 3), np.uint8)).save(
            tmp_path / "data" / "images" / f"{i}.png"
        )
        Image.fromarray(truth).save(tmp_path / "data" / "masks" / f"{i}.png")
        save_mask(tmp_path / "pred" / "masks" / f"{i}.png", truth)
        objects = np.zeros(truth.shape, np.uint16)
        objects[3:10, 3:10], objects[3:10, 14:20] = 1, 2
        objects[3:10, 3:5] = 0  # a strip of one object missed
        objects[15:17, 5:30:5] = np.arange(3, 8)[:, None].T  # 5 small ones on class 2: numbers 3..7
        (tmp_path / "seg" / "instances").mkdir(parents=True, exist_ok=True)
        Image.fromarray(objects).save(tmp_path / "seg" / "instances" / f"{i}.png")
        truths.append(truth)
    return truths


def test_object_class_of_semantic_data_from_predict_masks_and_segment_labels(tmp_path):
    """--object-class 1 of three-class data: predict's class masks give class 1's connected
    regions as objects (class 2's regions are not objects), all classes' pixel scores; label
    images (segment's instances/) give the objects as they are, and pixel scores of class 1
    against the rest."""
    truths = _three_classes(tmp_path)
    masks = evaluate_predictions(tmp_path / "pred", tmp_path / "data", object_class=1)
    assert masks["mean_iou"] == 1.0 and len(masks["per_class"]) == 3
    assert masks["objects"]["predicted_objects"] == 4 and masks["objects"]["pq"] == 1.0
    labels = evaluate_predictions(tmp_path / "seg", tmp_path / "data", object_class=1)
    assert list(labels["per_class"]) == ["not class1", "class1"]
    inside = 7 * 7 + 7 * 6  # class 1 pixels; 7 x 2 of them missed
    assert labels["per_class"]["class1"]["iou"] == pytest.approx(
        (inside - 7 * 2) / (inside + 5 * 2)
    )
    assert labels["objects"]["predicted_objects"] == 14 and labels["objects"]["recall"] == 1.0
    Image.fromarray(truths[1]).save(tmp_path / "seg" / "instances" / "1.png")
    save_mask(tmp_path / "seg" / "instances" / "1.png", truths[1])
    with pytest.raises(ValueError, match="1.png: a class mask among label images"):
        evaluate_predictions(tmp_path / "seg", tmp_path / "data", object_class=1)


def test_evaluate_reads_a_folders_data_with_the_mask_options_training_takes(tmp_path, capsys):
    """Trimaps (1 pet, 2 background, 3 border) need --mask-values 2,1 --ignore-values 3 to be
    read, in evaluate of a folder as in training (the error said so, and evaluate had no such
    options); predictions stored as the data's values and as class ids score alike, border
    pixels unscored. A checkpoint reads the data as it was trained to: the options are refused."""
    rng = np.random.default_rng(0)
    for sub in ("images", "annotations/trimaps", "ids", "stored"):
        (tmp_path / sub).mkdir(parents=True)
    pairs = []
    for i in range(3):
        trimap = np.full((20, 24), 2, np.uint8)
        trimap[4 + i : 14, 5:18] = 1
        trimap[4 + i, 5:18] = 3
        image = rng.integers(0, 255, (20, 24, 3), np.uint8)
        Image.fromarray(image).save(tmp_path / "images" / f"{i}.jpg")
        Image.fromarray(trimap).save(tmp_path / "annotations" / "trimaps" / f"{i}.png")
        pred = (np.roll(trimap, 2, axis=1) != 2).astype(np.uint8)  # pet (and border) as class 1
        save_mask(tmp_path / "ids" / f"{i}.png", pred)
        stored = np.where(pred == 1, 1, 2).astype(np.uint8)
        Image.fromarray(stored).save(tmp_path / "stored" / f"{i}.png")
        pairs.append((pred, trimap))
    data = str(tmp_path)
    assert main(["evaluate", str(tmp_path / "ids"), data]) == 2
    assert "--mask-values 1-3" in capsys.readouterr().err
    options = ["--mask-values", "2,1", "--ignore-values", "3", "--classes", "background,pet"]
    scores = []
    for folder in ("ids", "stored"):
        out = tmp_path / f"{folder}.json"
        assert main(["evaluate", str(tmp_path / folder), data, *options, "--json", str(out)]) == 0
        scores.append(json.loads(out.read_text()))
    inter = sum(np.sum((p == 1) & (t == 1)) for p, t in pairs)
    union = sum(np.sum(((p == 1) | (t == 1)) & (t != 3)) for p, t in pairs)
    assert scores[0]["per_class"]["pet"]["iou"] == pytest.approx(inter / union)
    assert scores[0]["per_class"] == scores[1]["per_class"]
    methods = f"ids:{tmp_path / 'ids'},stored:{tmp_path / 'stored'}"
    compare = ["compare", data, "--methods", methods, "--mask-values", "2,1"]
    assert main([*compare, "-o", str(tmp_path / "c")]) == 2  # the border's 3 is no class
    assert "mask values [3] are not class ids" in capsys.readouterr().err
    assert main([*compare, "--ignore-values", "3", "-o", str(tmp_path / "c")]) == 0
    rows = json.loads((tmp_path / "c" / "compare.json").read_text())["rows"]
    assert rows[0]["mean_iou"] == rows[1]["mean_iou"] == pytest.approx(scores[0]["mean_iou"])
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"")
    assert main(["evaluate", str(ckpt), data, "--mask-values", "2,1"]) == 2
    assert "--mask-values are for scoring a folder of predicted masks" in capsys.readouterr().err


def test_evaluate_and_compare_read_masks_with_soft_edges_as_told(tmp_path, capsys):
    """Black-and-white masks blurred at their edges: evaluate and compare of predicted masks
    say to give --soft-masks, and with it score the masks' nearer of black and white."""
    import cv2

    for sub in ("images", "masks", "pred"):
        (tmp_path / sub).mkdir()
    truths, shifted = [], []
    for i in range(2):
        disc = cv2.circle(np.zeros((40, 48), np.uint8), (20 + i, 20), 11, 1, -1)
        soft = cv2.GaussianBlur(disc * 255.0, (7, 7), 1.5).round().astype(np.uint8)
        assert len(np.unique(soft)) > 10
        Image.fromarray(np.dstack([soft] * 3)).save(tmp_path / "images" / f"{i}.png")
        Image.fromarray(soft).save(tmp_path / "masks" / f"{i}.png")
        save_mask(tmp_path / "pred" / f"{i}.png", np.roll(disc, 2, axis=1))
        truths.append(soft >= 128)  # the nearer of 0 and 255
        shifted.append(np.roll(disc, 2, axis=1) > 0)
    pred, data = str(tmp_path / "pred"), str(tmp_path)
    assert main(["evaluate", pred, data]) == 2
    assert "give --soft-masks instead" in capsys.readouterr().err
    out = tmp_path / "e.json"
    assert main(["evaluate", pred, data, "--soft-masks", "--json", str(out)]) == 0
    inter, union = (sum(f(t, p).sum() for t, p in zip(truths, shifted)) for f in (AND, OR))
    scored = json.loads(out.read_text())["per_class"]["foreground"]["iou"]
    assert scored == pytest.approx(inter / union) and scored < 1  # the shift costs what it should
    compare = ["compare", data, "--methods", f"p:{pred}", "-o", str(tmp_path / "c")]
    assert main(compare) == 2
    assert "masks with soft edges need --soft-masks" in capsys.readouterr().err
    assert main([*compare, "--soft-masks"]) == 0
    row = json.loads((tmp_path / "c" / "compare.json").read_text())["rows"][0]
    assert row["per_class_iou"][1] == pytest.approx(inter / union)
    # a model trained elsewhere reads such data with --soft-masks too, as its predictions are read
    from conftest import tiny_seg

    from pixelwise.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "model.pt", tiny_seg())  # untrained: any answer will do
    model = ["evaluate", str(tmp_path / "model.pt"), data, "--val-stems", "0,1"]
    assert main(model) == 2 and "soft edges need --soft-masks" in capsys.readouterr().err
    assert main([*model, "--soft-masks", "--json", str(tmp_path / "m.json")]) == 0
    argv = ["predict", str(tmp_path / "model.pt"), str(tmp_path / "images"), "--no-progress"]
    assert main([*argv, "-o", str(tmp_path / "p")]) == 0
    by_folder = tmp_path / "f.json"
    assert (
        main(["evaluate", str(tmp_path / "p"), data, "--soft-masks", "--json", str(by_folder)]) == 0
    )
    by_model = json.loads((tmp_path / "m.json").read_text())
    assert by_model["per_class"] == json.loads(by_folder.read_text())["per_class"]
    # masks that are not black and white (grey 0..200 here) are not taken for 0 and 255
    for i in range(2):
        dim = np.asarray(Image.open(tmp_path / "masks" / f"{i}.png")) * 200 // 255
        Image.fromarray(dim.astype(np.uint8)).save(tmp_path / "masks" / f"{i}.png")
    assert main([*model, "--soft-masks"]) == 2
    assert "--soft-masks alone reads grey masks of black (0) and white (255)" in (
        capsys.readouterr().err
    )


def test_soft_alpha_predictions_are_scored_with_soft_masks(tmp_path, capsys):
    """Alpha mattes as predictions (remove-bg --mask-only, other removers' masks) of black-and-
    white data: refused, every file named in one line with the problem said once and what to
    give; with --soft-masks each pixel is the nearer of black and white, as for the data."""
    import cv2

    for sub in ("images", "masks", "alpha"):
        (tmp_path / sub).mkdir()
    truths, kept = [], []
    for i in range(3):
        disc = cv2.circle(np.zeros((40, 48), np.uint8), (20 + i, 20), 11, 255, -1)
        alpha = cv2.GaussianBlur(np.roll(disc, 3, axis=1) * 1.0, (9, 9), 2).round()
        Image.fromarray(np.dstack([disc] * 3)).save(tmp_path / "images" / f"{i}.png")
        Image.fromarray(disc).save(tmp_path / "masks" / f"{i}.png")
        Image.fromarray(alpha.astype(np.uint8)).save(tmp_path / "alpha" / f"{i}.png")
        truths.append(disc > 0)
        kept.append(alpha >= 128)
    argv = ["evaluate", str(tmp_path / "alpha"), str(tmp_path)]
    assert main(argv) == 2
    said = capsys.readouterr().err.strip().splitlines()[-1]
    files = ", ".join(str(tmp_path / "alpha" / f"{i}.png") for i in range(3))
    assert f"3 predictions cannot be used: {files}: values [0, 1, 2," in said
    assert said.count("neither class ids") == 1 and "--soft-masks reads each pixel" in said
    out = tmp_path / "e.json"
    assert main([*argv, "--soft-masks", "--json", str(out)]) == 0
    inter, union = (sum(f(t, p).sum() for t, p in zip(truths, kept)) for f in (AND, OR))
    scored = json.loads(out.read_text())["per_class"]["foreground"]["iou"]
    assert scored == pytest.approx(inter / union) and scored < 1
    # some predicted, not all: the option that scores those is written out
    (tmp_path / "alpha" / "1.png").unlink()
    assert main([*argv, "--soft-masks"]) == 2
    assert "no prediction for 1 of the 3 images to score (1); name them as the images, or " in (
        said := capsys.readouterr().err
    ) and said.endswith("choose the images with --val-stems (the 2 with one: --val-stems 0,2)\n")
    assert main([*argv, "--soft-masks", "--val-stems", "0,2"]) == 0


def test_prediction_files_of_stack_pages_and_3d_frames(tmp_path):
    """Each item's file: by its name, else its image's own name (a 3D frame's slice 12 is
    t000-012.png, as predict names the pages of t000.tif); of two such files, the one in a
    folder named as the image's."""
    from pathlib import Path

    from pixelwise.data.layouts import Item
    from pixelwise.evaluate_folders import file_per_item

    items = [
        Item(Path(f"data/{seq}/t000.tif"), Path("m.tif"), f"{seq}_t000_z{z:03d}", z)
        for seq in ("01", "02")
        for z in (3, 12)
    ]
    files = [Path(f"out/{seq}/t000-{z:03d}.png") for seq in ("02", "01") for z in (12, 3)]
    found = file_per_item(files, Path("out"), items, "prediction", "as the images")
    assert found == [Path("out/01/t000-003.png"), Path("out/01/t000-012.png")] + [
        Path("out/02/t000-003.png"),
        Path("out/02/t000-012.png"),
    ]
    named = [Path("out/01_t000_z003.png")]  # the item's own name comes first
    assert file_per_item(named + files, Path("out"), items, "p", "x")[0] == named[0]
    with pytest.raises(ValueError, match="two ps of one image"):
        file_per_item([Path("a/t000-003.png"), Path("b/t000-003.png")], Path("."), items, "p", "x")


def test_predict_masks_of_black_and_white_data_look_like_their_masks(tmp_path):
    """A model trained on 0/255 masks: predict's masks hold class ids 0/1 (marked so), shown
    black and white, so that a viewer or a greyscale reader (OpenCV's) sees 0/255 as in the
    training masks; evaluate scores them as it scores the model."""
    rng = np.random.default_rng(0)
    for sub in ("images", "masks"):
        (tmp_path / "data" / sub).mkdir(parents=True)
    for i in range(4):
        mask = np.zeros((32, 40), np.uint8)
        mask[8:24, 10 + i : 30] = 255
        image = np.where(mask[..., None] > 0, 200, 40) + rng.integers(0, 30, (32, 40, 3))
        Image.fromarray(image.astype(np.uint8)).save(tmp_path / "data" / "images" / f"{i}.png")
        Image.fromarray(mask).save(tmp_path / "data" / "masks" / f"{i}.png")
    run = train_tiny(tmp_path / "data", tmp_path / "run")
    out = tmp_path / "out"
    assert (
        main(["predict", str(run / "best.pt"), str(tmp_path / "data" / "images"), "-o", str(out)])
        == 0
    )
    with Image.open(out / "masks" / "0.png") as img:
        ids, grey = np.asarray(img), np.asarray(img.convert("L"))
        assert img.getpalette()[:6] == [0, 0, 0, 255, 255, 255]
    assert set(np.unique(ids)) <= {0, 1} and np.array_equal(grey, ids * 255)
    assert holds_class_ids(out / "masks" / "0.png")
    scores = []
    for source in (out, run / "best.pt"):
        json_file = tmp_path / "e.json"
        args = ["evaluate", str(source), str(tmp_path / "data"), "--val-stems", "0-3"]
        assert main([*args, "--json", str(json_file)]) == 0
        scores.append(json.loads(json_file.read_text()))
    assert scores[0]["images"] == 4 and scores[0]["mean_iou"] == scores[1]["mean_iou"]


def test_geojson_predictions_are_drawn_and_scored_as_masks_and_label_images(tmp_path, capsys):
    """A folder of GeoJSON files (predict/segment --geojson's, QuPath's export) is scored as the
    masks and label images they outline: each region by its class's name (class masks), each
    Feature an object (label images; with --object-class those of its class or unclassified);
    a class the data lacks is one line naming the file and feature. Instance data too."""
    from test_segment import _blobs

    from pixelwise.data.geojson import object_features, region_features, to_geojson, write_features

    _three_classes(tmp_path)
    names, colours = (
        {1: "class1", 2: "class2"},
        {n: (9, 9, 9) for n in ("class1", "class2", "object")},
    )
    for i in range(2):
        truth = np.asarray(Image.open(tmp_path / "data" / "masks" / f"{i}.png"))
        write_features(
            tmp_path / "regions" / "geojson" / f"{i}.geojson",
            region_features(truth, names, colours),
        )
        objects = np.asarray(Image.open(tmp_path / "seg" / "instances" / f"{i}.png")).astype(
            np.int64
        )
        numbers = dict.fromkeys(range(1, int(objects.max()) + 1), "object")
        write_features(
            tmp_path / "objects" / f"{i}.geojson", object_features(objects, numbers, colours)
        )
    drawn = evaluate_predictions(tmp_path / "regions", tmp_path / "data")
    assert drawn["mean_iou"] == 1.0 and len(drawn["per_class"]) == 3
    drawn = evaluate_predictions(tmp_path / "regions", tmp_path / "data", object_class=1)
    assert drawn["objects"]["predicted_objects"] == 4 and drawn["objects"]["pq"] == 1.0  # class1's
    outlined = evaluate_predictions(tmp_path / "objects", tmp_path / "data", object_class=1)
    labels = evaluate_predictions(tmp_path / "seg", tmp_path / "data", object_class=1)
    assert outlined["objects"] == labels["objects"] and outlined["per_class"] == labels["per_class"]
    assert outlined["objects"]["predicted_objects"] == 14
    out = tmp_path / "compared"  # compare takes such a folder as a method too
    methods = f"masks:{tmp_path / 'pred'},geojson:{tmp_path / 'regions'}"
    command = ["compare", str(tmp_path / "data"), "--methods", methods, "--num-classes", "3"]
    assert main(command + ["-o", str(out)]) == 0
    rows = [line.split("|") for line in (out / "compare.md").read_text().splitlines()[2:]]
    assert [(row[1].strip(), float(row[2])) for row in rows] == [("masks", 1.0), ("geojson", 1.0)]

    path = tmp_path / "regions" / "geojson" / "1.geojson"
    text = path.read_text().replace('"class2"', '"stroma"')
    path.write_text(text)
    assert main(["evaluate", str(tmp_path / "regions"), str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert f"{path}, feature 3: class 'stroma' is not one of the data's classes" in err

    data = _blobs(tmp_path / "blobs", n=3)
    for labels_path in sorted((data / "instances").glob("*.png")):
        labels = np.asarray(Image.open(labels_path))
        out = tmp_path / "blob-objects" / labels_path.with_suffix(".geojson").name
        write_features(out, to_geojson(labels)["features"])
    scores = evaluate_predictions(tmp_path / "blob-objects", data)
    assert scores["objects"]["dsb_mean_ap"] == 1.0 and scores["objects"]["predicted_objects"] == 12


def test_geojson_predictions_drawn_in_their_boxes_as_on_the_whole_image(tmp_path):
    """Each Feature is drawn in its own box, and only when that meets the image (a window of a
    slide whose GeoJSON holds the whole slide's objects): the same pixels as drawing every
    Feature on the whole image (the reference here), for features inside, across the edge and
    outside, at any corner; objects numbered as drawn."""
    from pixelwise.data.labelme import shifted
    from pixelwise.data.shapes import draw_shapes
    from pixelwise.evaluate_folders import geojson_prediction

    rng = np.random.default_rng(0)
    features, rings = [], []
    for k in range(40):
        centre = rng.uniform(-20, 120, 2)
        angles = np.sort(rng.uniform(0, 2 * np.pi, 7))
        ring = centre + rng.uniform(2, 15, (7, 1)) * np.stack([np.cos(angles), np.sin(angles)], 1)
        rings.append(ring)
        name = ("a", "b")[k % 2]
        features.append({"type": "Feature", "properties": {"classification": {"name": name}},
                         "geometry": {"type": "Polygon", "coordinates": [ring.tolist() + ring[:1].tolist()]}})  # fmt: skip
    path = tmp_path / "p.geojson"
    path.write_text(json.dumps(features))
    for corner in ((0, 0), (30, 10), (-5, 60)):
        shape = (50, 70)
        classes = np.zeros(shape, np.uint8)
        objects = np.zeros(shape, np.int64)
        inside = 0  # features with a pixel in the image
        for k, ring in enumerate(rings):
            drawn = draw_shapes((shifted(("area", [ring]), *corner),), *shape) > 0
            classes[drawn] = 1 + k % 2
            objects[drawn] = k + 1
            inside += drawn.any()
        found = geojson_prediction(path, shape, ["bg", "a", "b"], False, None, corner)
        np.testing.assert_array_equal(found, classes)
        labels = geojson_prediction(path, shape, ["bg", "a", "b"], True, None, corner)
        assert len(np.unique(labels)) == len(np.unique(objects))
        pairs = set(zip(labels.ravel().tolist(), objects.ravel().tolist()))
        assert len(pairs) == len(np.unique(objects))  # one to one
        assert labels.max() == inside < len(rings)  # numbered as drawn: the others take none


def test_predicted_objects_mostly_on_ignored_pixels_are_left_out():
    """outside_ignored: an object with more than half its pixels ignored is dropped (neither
    matched nor false), one with half or less kept, the rest renumbered 1..N; nothing ignored
    leaves the image as it is."""
    from pixelwise.evaluate import outside_ignored

    labels = np.zeros((4, 8), np.uint16)
    labels[0, 0:4] = 3  # 3 of 4 ignored: dropped
    labels[1, 0:4] = 5  # 2 of 4 ignored: kept
    labels[2, 4:8] = 7  # none ignored
    ignored = np.zeros((4, 8), bool)
    ignored[:, 0:2] = True
    ignored[0, 2] = True
    expected = np.zeros_like(labels)
    expected[1, 0:4], expected[2, 4:8] = 1, 2
    np.testing.assert_array_equal(outside_ignored(labels, ignored), expected)
    assert outside_ignored(labels, np.zeros_like(ignored)) is labels


def test_every_prediction_that_cannot_be_scored_is_named_at_once(tmp_path, capsys):
    """Predictions of another size and one saved as JPEG (its values blurred at the edges): one
    line names them all, with what to do about the JPEG; class masks and objects alike."""
    for sub in ("images", "masks", "preds"):
        (tmp_path / sub).mkdir()
    mask = np.zeros((24, 32), np.uint8)
    mask[6:18, 8:24] = 255
    for i in range(4):
        Image.fromarray(mask).save(tmp_path / "images" / f"{i}.png")
        Image.fromarray(mask).save(tmp_path / "masks" / f"{i}.png")
        Image.fromarray(mask).save(tmp_path / "preds" / f"{i}.png")
    Image.fromarray(mask[:, :30]).save(tmp_path / "preds" / "1.png")
    Image.fromarray(mask[:20]).save(tmp_path / "preds" / "2.png")
    (tmp_path / "preds" / "3.png").unlink()
    Image.fromarray(mask).save(tmp_path / "preds" / "3.jpg", quality=70)
    args = ["evaluate", str(tmp_path / "preds"), str(tmp_path), "--val-stems", "0-3"]
    for extra, count in (([], 3), (["--object-class", "1"], 2)):  # objects: the JPEG's labels
        assert main([*args, *extra]) == 2
        said = capsys.readouterr().err.strip().splitlines()[-1]  # after a line on the masks
        assert said.startswith(f"pixelwise evaluate: error: {count} predictions cannot be used: ")
        assert f"{tmp_path / 'preds' / '1.png'}: 30 x 24 pixels, its image 32 x 24" in said
        assert f"{tmp_path / 'preds' / '2.png'}: 32 x 20 pixels, its image 32 x 24" in said
    assert main(args) == 2
    said = capsys.readouterr().err
    assert f"{tmp_path / 'preds' / '3.jpg'}: values" in said and "save masks as PNG" in said
    assert "remove-bg --crop" not in said  # class masks, not cut-outs
    out = tmp_path / "compared"  # compare reads them all before any method runs
    methods = f"otsu,mine:{tmp_path / 'preds'}"
    compare = ["compare", str(tmp_path), "--methods", methods, "-o", str(out), "--val-stems", "0-3"]
    assert main(compare) == 2
    said = capsys.readouterr().err.strip().splitlines()[-1]
    assert said.startswith("pixelwise compare: error: 3 predictions cannot be used: ")
    assert "1.png" in said and "2.png" in said and "3.jpg" in said and not out.exists()
    (tmp_path / "preds" / "3.jpg").unlink()
    for i in (2, 3):
        Image.fromarray(mask).save(tmp_path / "preds" / f"{i}.png")
    cut = np.zeros((12, 16, 4), np.uint8)
    cut[1:, 1:, 3] = 255  # a cut-out cropped to its subject, transparent at its edge
    Image.fromarray(cut).save(tmp_path / "preds" / "1.png")
    assert main(args) == 2
    said = capsys.readouterr().err
    assert "1.png: 16 x 12 pixels, its image 32 x 24; a cut-out cropped to its subject" in said


def test_another_tools_black_and_white_masks_score_against_class_id_data(tmp_path, capsys):
    """Data whose masks hold class ids 0 and 1, predictions written as most tools write a binary
    mask (0 and 255): they used to be refused, and the option suggested (--soft-masks) was then
    refused too. They are background and foreground, scored as the same masks as class ids;
    grey values between are still refused, with the hint."""
    for sub in ("images", "masks", "bw", "ids", "grey"):
        (tmp_path / sub).mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        truth = np.zeros((24, 32), np.uint8)
        truth[4 + i : 18, 6:26] = 1
        predicted = np.roll(truth, 2 + i, axis=1) * (rng.random(truth.shape) > 0.05)
        Image.fromarray(truth * 200).save(tmp_path / "images" / f"{i}.png")
        Image.fromarray(truth).save(tmp_path / "masks" / f"{i}.png")
        Image.fromarray((predicted * 255).astype(np.uint8)).save(tmp_path / "bw" / f"{i}.png")
        Image.fromarray(predicted.astype(np.uint8)).save(tmp_path / "ids" / f"{i}.png")
        Image.fromarray((predicted * 128).astype(np.uint8)).save(tmp_path / "grey" / f"{i}.png")
    scores = {}
    for name in ("bw", "ids"):
        out = tmp_path / f"{name}.json"
        assert main(["evaluate", str(tmp_path / name), str(tmp_path), "--json", str(out)]) == 0
        scores[name] = json.loads(out.read_text())
    assert scores["bw"]["mean_iou"] == scores["ids"]["mean_iou"] < 1
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "grey"), str(tmp_path)]) == 2
    assert "values [0, 128] are neither class ids 0..1" in capsys.readouterr().err
