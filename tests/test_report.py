"""``pixelwise inspect``: the counts of a dataset made in code, split and read as train reads it,
and the warnings that matter before training."""

import numpy as np
from PIL import Image

from pixelwise.cli import main
from pixelwise.config import TrainConfig
from pixelwise.report import dataset_report


def dataset(root, masks):
    for i, mask in enumerate(masks):
        for sub, array in (("images", np.full((6, 8), 40 * i)), ("masks", mask)):
            (root / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.asarray(array, np.uint8)).save(root / sub / f"im{i}.png")
    return root


def test_pixel_counts_per_split_and_class_with_warnings(tmp_path, capsys):
    masks = [np.zeros((6, 8)) for _ in range(4)]
    masks[0][:, :2] = 2  # class 2 only in a training image: 12 pixels
    masks[1][:3] = 1  # 24 pixels of class 1 in training
    masks[3][:, 7] = 1  # 6 in the validation image
    masks[3][0, 0] = 9  # ignored, by --ignore-values
    root = dataset(tmp_path / "d", masks)
    cfg = TrainConfig(data=str(root), val_stems=["im3"], ignore_values=[9], crop=64)
    report = dataset_report(cfg, progress=False)
    assert report["images"] == {"train": 3, "val": 1}
    assert [(c["name"], c["train"], c["val"]) for c in report["classes"]] == [
        ("class0", 3 * 48 - 24 - 12, 48 - 6 - 1),
        ("class1", 24, 6),
        ("class2", 12, 0),
    ]
    assert report["ignored"] == {"train": 0, "val": 1}
    assert report["sizes"] == {"min": [6, 8], "max": [6, 8]}
    assert report["warnings"] == [
        "no pixel in the validation images (IoU not measured): class2",
        "1 validation image(s): the figures that pick best.pt rest on it",
        "every image is smaller than --crop 64: train with --crop 0 or less",
    ]
    args = ["inspect", str(root), "--val-stems", "im3", "--ignore-values", "9", "--crop", "8"]
    assert main(args) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"{root}: 3 training and 1 validation images (validation: the images")
    assert "  1  class1                        1         16.67%       12.50%" in said
    assert "warning: no pixel in the validation images" in said and "--crop" not in said


def test_inspect_stops_where_train_would(tmp_path, capsys):
    root = dataset(tmp_path / "d", [np.full((6, 8), 7), np.full((6, 8), 3)])
    assert main(["inspect", str(root)]) == 2
    assert "the masks hold values [3, 7], not the class ids" in capsys.readouterr().err


def test_colour_masks_show_each_class_by_its_colour(tmp_path, capsys):
    root = dataset(tmp_path / "d", [np.eye(6, 8) * 255 for _ in range(3)])
    for mask in (root / "masks").iterdir():  # black and white, stored as RGB
        Image.open(mask).convert("RGB").save(mask)
    assert main(["inspect", str(root)]) == 0
    said = capsys.readouterr().out
    assert "  0  background              #000000" in said
    assert "  1  foreground              #ffffff" in said


def test_inspect_and_train_name_every_pair_they_cannot_use(tmp_path, capsys):
    """Masks of another size than their images and an image that is not one: inspect and train
    name them all in one line (train before it trains), not the first alone."""
    root = dataset(tmp_path / "d", [np.eye(6, 8) for _ in range(6)])
    Image.fromarray(np.zeros((6, 7), np.uint8)).save(root / "masks" / "im1.png")
    Image.fromarray(np.zeros((8, 6), np.uint8)).save(root / "masks" / "im4.png")
    (root / "images" / "im2.png").write_bytes(b"not a picture")
    assert main(["inspect", str(root)]) == 2
    said = capsys.readouterr().err.strip()
    assert said.startswith("pixelwise inspect: error: 3 pairs cannot be used: ")
    assert len(said.splitlines()) == 1
    assert f"{root / 'masks' / 'im1.png'}: mask is 7 x 6 but image im1.png is 8 x 6" in said
    assert f"{root / 'masks' / 'im4.png'}: mask is 6 x 8 but image im4.png is 8 x 6" in said
    assert f"{root / 'images' / 'im2.png'}: " in said
    out = tmp_path / "run"
    args = ["train", str(root), "-o", str(out), "--val-fraction", "0", "--epochs", "1"]
    assert main([*args, "--model", "fcn32s", "--no-progress"]) == 2
    said = capsys.readouterr().err.strip().splitlines()[-1]
    assert said.startswith("pixelwise train: error: 3 training pairs cannot be used: ")
    assert "im1.png" in said and "im2.png" in said and "im4.png" in said
    assert not (out / "last.pt").exists()


def test_inspect_lists_the_pixel_sizes_the_images_record_and_warns_when_they_differ(
    tmp_path, capsys
):
    """Images recorded at 0.5 and 0.25 µm a pixel (a resolution per centimetre, OME-XML) beside
    a PNG: each size counted, and a warning that the same objects appear twice as large in some;
    a dataset of one size gets the line and no warning."""
    import tifffile

    masks = [np.zeros((6, 8)) for _ in range(4)]
    for mask in masks:
        mask[:2] = 1
    root = dataset(tmp_path / "d", masks)
    grey = np.full((6, 8), 40, np.uint8)
    for name, size in (("im0", 0.5), ("im1", 0.5), ("im2", 0.25)):
        (root / "images" / f"{name}.png").unlink()
        per_cm = {"resolution": (1e4 / size, 1e4 / size), "resolutionunit": "CENTIMETER"}
        tifffile.imwrite(root / "images" / f"{name}.tif", grey, **per_cm)
    assert main(["inspect", str(root), "--val-stems", "im3"]) == 0
    said = capsys.readouterr().out
    assert (
        "pixel sizes as the images' files record them: 0.5 µm (2 images), 0.25 µm (1 image), not recorded (1 image)"
        in said
    )
    assert (
        "warning: the images' pixel sizes differ (0.25 to 0.5 µm): the same objects appear 2.0x larger in some"
        in said
    )
    (root / "images" / "im2.tif").unlink()
    Image.fromarray(grey).save(root / "images" / "im2.png")
    report = dataset_report(TrainConfig(data=str(root), val_stems=["im3"]), progress=False)
    assert report["pixel_sizes"] == {"0.5": 2, "not recorded": 2}
    assert not [w for w in report["warnings"] if "pixel sizes" in w]


def test_instance_labels_are_shown_with_their_objects_sizes(tmp_path, capsys):
    """A folder of instance labels is inspected as train --instances boundary reads it (not
    refused), with how many objects each split holds and how large they are, counted by hand."""
    root = tmp_path / "d"
    for i in range(3):
        labels = np.zeros((20, 30), np.uint16)
        labels[1:5, 1:5] = 1  # 16 pixels
        labels[10:16, 10:20] = 2  # 60 pixels
        if i == 2:
            labels[0, 29] = 7  # 1 pixel
        for sub, array in (("images", np.full((20, 30), 90, np.uint8)), ("instances", labels)):
            (root / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(root / sub / f"im{i}.png")
    assert main(["inspect", str(root), "--val-stems", "im2", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "instance labels (a number per object), read as train --instances boundary" in err
    assert "train objects: 4 in 2 images (2 to 2 an image, median 2); area median 38 pixels" in out
    assert f"equivalent diameter {np.sqrt(4 * 38 / np.pi):.1f} pixels" in out
    report = dataset_report(
        TrainConfig(data=str(root), val_stems=["im2"], instances="boundary"), progress=False
    )
    val = report["objects"]["val"]
    assert val["objects"] == 3 and val["per_image"] == [3, 3.0, 3]
    assert val["area"]["median"] == 16 and val["area"]["p5"] == np.percentile([1, 16, 60], 5)


def test_rare_classes_are_named_with_what_weighs_them_up(tmp_path):
    """A class under 1 % of the training pixels (as the table shows them, ignored ones counted):
    named with its share and the options that weigh it up; not said once one of them is given."""
    masks = [np.zeros((6, 8)) for _ in range(4)]
    masks[0][0, 0] = 2  # 1 of 144 training pixels: 0.69 %
    masks[1][:3] = 1  # 24 of 144: not rare
    masks[3][:, 7] = 2  # the validation image
    root = dataset(tmp_path / "d", masks)
    cfg = TrainConfig(data=str(root), val_stems=["im3"], crop=0)
    found = dataset_report(cfg, progress=False)["warnings"]
    assert found[0].startswith("under 1% of the training pixels: class2 (0.69%); a model may")
    assert "--class-weighting median or --loss ce+dice" in found[0] and len(found) == 3
    for given in ({"class_weighting": "median"}, {"loss": "ce+dice"}):
        cfg = TrainConfig(data=str(root), val_stems=["im3"], crop=0, **given)
        assert not any("under 1%" in w for w in dataset_report(cfg, progress=False)["warnings"])


def test_a_model_shows_itself_in_one_line_not_its_layers():
    """``load_model(...)`` in a notebook printed every layer of the network (about 150 lines)."""
    from conftest import tiny_seg

    seg = tiny_seg()
    assert sum(p.numel() for p in seg.network.parameters()) == 7554
    assert repr(seg) == (
        "Segmenter(unet, semantic, 0.01 M parameters; in_channels 3, depth 2, base_width 4; "
        "classes background, foreground)"
    )
    seg.box_input, seg.input_scale = 192, 0.625
    seg.class_names = [f"c{i}" for i in range(12)]
    assert repr(seg).endswith(
        "M parameters, box model (192 x 192), input scale 0.625; in_channels 3, depth 2, "
        "base_width 4; classes c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, ... (12 classes))"
    )
