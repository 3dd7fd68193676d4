"""Training end to end on data made in code: train -> predict -> evaluate, and exact resume."""

import csv
import json
import math
import os
import shutil
import subprocess
import sys
import time
from importlib.util import find_spec

import numpy as np
import pytest
import tifffile
import torch
from conftest import tiny_config, train_tiny
from PIL import Image

from pixelwise import load_model, predict
from pixelwise.cli import main
from pixelwise.config import TrainConfig
from pixelwise.data.io import read_mask
from pixelwise.train import fit


def _cfg(data, out, **kw):
    return tiny_config(data, out, **({"overlays": 2} | kw))


def test_train_predict_evaluate_cli(shapes_data, tmp_path, capsys):
    run = train_tiny(shapes_data, tmp_path / "run", "--epochs", "3", "--lr", "5e-3")
    for name in ("best.pt", "last.pt", "metrics.csv", "curve.png", "config.json"):
        assert (run / name).is_file(), name
    assert len(list((run / "overlays").glob("*.png"))) == 4
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])

    out = tmp_path / "pred"
    assert (
        main(
            [
                "predict",
                str(run / "best.pt"),
                str(shapes_data / "val" / "images"),
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    masks = sorted((out / "masks").glob("*.png"))
    assert len(masks) == 4 and len(list((out / "overlays").glob("*.png"))) == 4
    mask = read_mask(masks[0])
    assert mask.shape == (48, 48) and mask.max() <= 2

    soft = tmp_path / "soft"
    image = shapes_data / "val" / "images" / masks[0].name
    assert main(["predict", str(run / "best.pt"), str(image), "--out", str(soft),
                 "--probabilities", "--no-progress"]) == 0  # fmt: skip
    assert (soft / "masks" / masks[0].name).read_bytes() == masks[0].read_bytes()
    pages = tifffile.imread(soft / "probabilities" / f"{masks[0].stem}.tif")
    assert pages.shape == (3, 48, 48) and pages.dtype == np.uint8
    assert np.abs(pages.sum(0).astype(int) - 255).max() <= 2  # each page rounded on its own
    clear = np.sort(pages, 0)[-1] > np.sort(pages, 0)[-2] + 1  # no near tie after rounding
    np.testing.assert_array_equal(pages.argmax(0)[clear], mask[clear])

    assert (
        main(
            ["evaluate", str(run / "best.pt"), str(shapes_data), "--json", str(tmp_path / "m.json")]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["images"] == 4 and 0 <= metrics["mean_iou"] <= 1
    assert set(metrics["per_class"]) == {"class0", "class1", "class2"}
    printed = capsys.readouterr()
    assert "mean IoU" in printed.out and "lowest mean IoU: " in printed.out
    assert "evaluate: " in printed.err  # a progress bar, an image a step
    again = ["evaluate", str(run / "best.pt"), str(shapes_data), "--json", str(tmp_path / "n.json")]
    assert main([*again, "--no-progress"]) == 0
    assert "evaluate: " not in capsys.readouterr().err
    assert json.loads((tmp_path / "n.json").read_text())["mean_iou"] == metrics["mean_iou"]
    # each image's row: its predicted mask against its reference, and pooled they are the total
    rows = {row["name"]: row for row in metrics["per_image"]}
    assert sorted(rows) == [m.stem for m in masks]
    for mask in masks:
        truth = read_mask(shapes_data / "val" / "masks" / mask.name)
        accuracy = (read_mask(mask) == truth).mean()
        assert rows[mask.stem]["pixel_accuracy"] == pytest.approx(accuracy, abs=0.01)
        assert rows[mask.stem]["pixels"] == truth.size
    pooled = sum(r["pixel_accuracy"] * r["pixels"] for r in rows.values()) / (4 * 48 * 48)
    assert pooled == pytest.approx(metrics["pixel_accuracy"])


def test_options_in_python_as_typed_on_the_command_line(shapes_data, tmp_path):
    """fit(DATA, out=..., **options): options as Python values or as the command line writes
    them, read by the same parsers; what the command line refuses is refused naming the flag."""
    typed = TrainConfig(mask_values="0,#ff0000", val_stems="25-27", epochs="3", scale="0.5")
    assert typed.mask_values == [0, 0xFF0000] and typed.val_stems == ["25", "26", "27"]
    assert typed.epochs == 3 and typed.scale == 0.5
    assert TrainConfig(mask_values=[0, 255], class_names=["a", "b"]).mask_values == [0, 255]
    for bad, message in (
        (dict(epochs="two"), "--epochs two: not a whole number"),
        (dict(lr="fast"), "--lr fast: not a number"),
        (dict(mask_values="0,x"), "--mask-values 0,x: expected comma-separated integers"),
        (dict(backend="cuda"), "--backend cuda: one of torch, scratch"),
    ):
        with pytest.raises(ValueError, match=message):
            TrainConfig(**bad)
    with pytest.raises(ValueError, match="--out: the run folder"):
        fit(shapes_data)
    with pytest.raises(TypeError, match="give the options in cfg"):
        fit(_cfg(shapes_data, tmp_path), epochs=1)
    best = fit(  # the data by keyword too, as TrainConfig names it
        data=shapes_data, out=tmp_path / "run", epochs="1", epoch_size=4, crop=32, overlays=0
    )
    assert best == tmp_path / "run" / "best.pt" and best.is_file()


@pytest.mark.skipif(sys.platform == "win32", reason="no fcntl: runs are not locked there")
def test_a_second_run_into_the_same_folder_is_refused_while_the_first_writes(shapes_data, tmp_path):
    from pixelwise.train import training_lock

    run = tmp_path / "run"
    with training_lock(run):  # as a run in another process holds it
        with pytest.raises(ValueError, match=f"another training run \\(process {os.getpid()}\\)"):
            fit(_cfg(shapes_data, run, epochs=1, overlays=0))
        assert not (run / "last.pt").exists()
    assert fit(_cfg(shapes_data, run, epochs=1, overlays=0)).is_file()  # released: it runs


def test_learns_shapes(shapes_data, tmp_path):
    best = fit(_cfg(shapes_data, tmp_path, epochs=8, epoch_size=48, overlays=0))
    ckpt = torch.load(best, weights_only=True)
    assert ckpt["train_state"]["metrics"]["pixel_accuracy"] > 0.9


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_resume_equals_uninterrupted(shapes_data, tmp_path, ema):
    full = tmp_path / "full"
    fit(_cfg(shapes_data, full, epochs=4, overlays=0, ema=ema))

    class Crash(Exception):
        pass

    def crash_after_2(epoch, row):
        if epoch == 2:
            raise Crash

    part = tmp_path / "part"
    with pytest.raises(Crash):
        fit(_cfg(shapes_data, part, epochs=4, overlays=0, ema=ema), on_epoch_end=crash_after_2)
    assert torch.load(part / "last.pt", weights_only=True)["train_state"]["epoch"] == 2
    with pytest.raises(ValueError, match="stopped after epoch 2 of 4; --resume continues it"):
        fit(_cfg(shapes_data, part, epochs=4, overlays=0, ema=ema))  # would write over it
    fit(_cfg(shapes_data, part, epochs=4, overlays=0, ema=ema, resume=True))
    a = torch.load(full / "last.pt", weights_only=True)
    b = torch.load(part / "last.pt", weights_only=True)
    for k in a["state_dict"]:
        torch.testing.assert_close(a["state_dict"][k], b["state_dict"][k], rtol=0, atol=1e-6, msg=k)
    assert [r["train_loss"] for r in a["train_state"]["history"]] == pytest.approx(
        [r["train_loss"] for r in b["train_state"]["history"]], abs=1e-6
    )
    if ema:  # the saved weights are the average, not the raw weights
        raw = a["train_state"]["raw_state_dict"]
        assert any(not torch.equal(raw[k], a["state_dict"][k]) for k in raw if k.endswith("weight"))


def test_predict_continues_past_bad_files(shapes_data, tmp_path, capsys):
    run = tmp_path / "run"
    fit(_cfg(shapes_data, run, epochs=1, overlays=0))
    inputs = tmp_path / "in"
    shutil.copytree(shapes_data / "val" / "images", inputs)
    (inputs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (inputs / "empty.jpg").write_bytes(b"")
    code = main(
        [
            "predict",
            str(run / "best.pt"),
            str(inputs),
            "--out",
            str(tmp_path / "o"),
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert (
        "2 file(s) failed" in err
        and "broken.png" in err
        and "empty.jpg: empty file (0 bytes)" in err
    )
    assert len(list((tmp_path / "o" / "masks").glob("*.png"))) == 4
    assert not list((tmp_path / "o").rglob("*.tmp"))


def test_python_api_predict_matches_cli_mask(shapes_data, tmp_path):
    run = tmp_path / "run"
    best = fit(_cfg(shapes_data, run, epochs=1, overlays=0))
    seg = load_model(best)
    img_path = sorted((shapes_data / "val" / "images").glob("*.png"))[0]
    mask = predict(seg, img_path, precision="fp32")
    main(
        [
            "predict",
            str(best),
            str(img_path),
            "--out",
            str(tmp_path / "o"),
            "--precision",
            "fp32",
            "--no-progress",
        ]
    )
    np.testing.assert_array_equal(mask, read_mask(tmp_path / "o" / "masks" / img_path.name))
    assert Image.open(tmp_path / "o" / "overlays" / img_path.name).mode == "RGB"


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "missing.pt"), "x.png", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"pixelwise predict: error: {tmp_path / 'missing.pt'}: checkpoint not found "
        "(a .pt file or a bundled model: nuclei, foreground, foreground-box)"
    )
    assert main(["train", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "no dataset found (expected images/ + masks/" in capsys.readouterr().err


def test_version_is_fast():
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "pixelwise", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().startswith("pixelwise ")
    assert time.perf_counter() - start < 2.0
    imported = subprocess.run(
        [sys.executable, "-c", "import pixelwise.cli, sys; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert imported.stdout.strip() == "False"
    listed = subprocess.run(  # the lazy API is listed (tab completion) without importing it
        [
            sys.executable,
            "-c",
            "import pixelwise, sys; print(dir(pixelwise), 'torch' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "'remove_background'" in listed.stdout and listed.stdout.strip().endswith("False")


def test_fine_tunes_from_a_checkpoint(shapes_data, tmp_path):
    """--weights starts from a trained model: its architecture and input normalisation are
    kept (over the config's), and one gentle epoch keeps what it learnt, where one epoch from
    scratch has learnt little."""
    start = fit(_cfg(shapes_data, tmp_path / "start", epochs=8, epoch_size=48, overlays=0))
    before = torch.load(start, weights_only=True)["train_state"]["metrics"]["mean_iou"]
    gentle = dict(epochs=1, epoch_size=8, lr=1e-5, overlays=0)
    tuned = fit(_cfg(shapes_data, tmp_path / "tuned", weights=str(start), base_width=4, **gentle))
    scratch = fit(_cfg(shapes_data, tmp_path / "scratch", **gentle))
    a, b = load_model(start), load_model(tuned)
    assert b.arch_kwargs == a.arch_kwargs and b.arch_kwargs["base_width"] == 8
    assert b.norm == a.norm
    score = lambda p: torch.load(p, weights_only=True)["train_state"]["metrics"]["mean_iou"]
    assert score(tuned) == pytest.approx(before, abs=0.05)
    assert score(tuned) > score(scratch) + 0.2


def test_fine_tuning_to_other_classes_keeps_all_but_the_class_scores(shapes_data, tmp_path, capsys):
    """Transfer to data of 4 classes from a 3-class model: every tensor whose shape does not
    follow the class count keeps the model's weights, the class scores start afresh."""
    from pixelwise.semantic import new_head

    start = fit(_cfg(shapes_data, tmp_path / "start", epochs=1, overlays=0))
    other = _cfg(shapes_data, tmp_path / "other", weights=str(start), class_names=list("abcd"))
    model, kwargs = new_head(other, load_model(start), 4)
    before, after = load_model(start).network.state_dict(), model.state_dict()
    changed = [k for k in after if after[k].shape != before[k].shape]
    assert kwargs["num_classes"] == 4 and changed and all(after[k].shape[0] == 4 for k in changed)
    assert all(torch.equal(after[k], before[k]) for k in after if k not in changed)
    assert "has 3 classes, the data 4" in capsys.readouterr().err
    assert load_model(fit(other)).class_names == list("abcd")


def test_reduced_scale_predicts_at_full_resolution(shapes_data, tmp_path):
    best = fit(_cfg(shapes_data, tmp_path / "run", epochs=1, scale=0.5, crop=16, overlays=1))
    seg = load_model(best)
    assert seg.input_scale == 0.5
    img_path = sorted((shapes_data / "val" / "images").glob("*.png"))[0]
    assert predict(seg, img_path).shape == (48, 48)
    assert Image.open(tmp_path / "run" / "overlays" / img_path.name).size == (3 * 24, 24)


def test_box_model_trains_and_validates_on_box_crops(shapes_data, tmp_path):
    cfg = _cfg(shapes_data, tmp_path / "run", epochs=1, crop=24, box_crop=[0.0, 0.2], overlays=0)
    seg = load_model(fit(cfg))
    assert seg.box_input == 24  # remove_background crops the user's box to this size
    from pixelwise.data.transforms import Augmentation
    from pixelwise.semantic import BOX_MARGIN, build_datasets

    train, val, _, _ = build_datasets(cfg)
    assert train.augmentation.box == (0.0, 0.2) and val.crop == 24
    assert val.augmentation == Augmentation(box=(BOX_MARGIN, BOX_MARGIN))
    image, target = val[0]
    assert image.shape[-2:] == (24, 24) and torch.equal(val[0][1], target)  # fixed, not random


def test_valid_convolution_model_trains_on_centre_crops(shapes_data, tmp_path):
    # the original U-Net (depth 1: margin 8) scores the centre of each crop; context is mirrored
    cfg = _cfg(
        shapes_data,
        tmp_path / "run",
        model="unet_original",
        depth=1,
        base_width=4,
        crop=36,
        epochs=1,
    )
    best = fit(cfg)
    seg = load_model(best)
    assert seg.network.margin == 8
    img_path = sorted((shapes_data / "val" / "images").glob("*.png"))[0]
    assert predict(seg, img_path, precision="fp32").shape == (48, 48)
    # its crops may reach into the mirrored border: up to 48 + 2 * 8 (recipes/camvid_compare.sh
    # trains it on 348 x 348 crops of 240 x 180 frames); beyond, a one-line refusal
    roomy = dict(model="unet_original", depth=1, base_width=4, epochs=1, epoch_size=2)
    assert fit(_cfg(shapes_data, tmp_path / "run60", crop=60, **roomy)).is_file()
    with pytest.raises(ValueError, match=r"--crop 68 .* mirrored border of 8\); .* at most 64"):
        fit(_cfg(shapes_data, tmp_path / "run68", crop=68, **roomy))


def test_valid_convolution_model_trains_on_whole_images_of_any_size(shapes_data, tmp_path):
    """--crop 0: each batch is padded to a size the original U-Net takes (it refused most), and
    the loss counts exactly the images' own pixels, with their weights."""
    import torch.nn.functional as F

    from pixelwise.models import create_model
    from pixelwise.semantic import semantic_step

    net = create_model("unet_original", in_channels=1, num_classes=2, depth=2, base_width=4)
    m, cpu = net.margin, torch.device("cpu")
    for h, w in ((13, 29), (40, 41), (1, 1), (4, 4)):
        images = torch.randn(2, 1, h + 2 * m, w + 2 * m)
        targets = F.pad(torch.randint(0, 2, (2, h, w)), (m, m, m, m), value=255)
        weights = F.pad(torch.rand(2, h, w) + 1, (m, m, m, m))
        seen = []

        def loss_fn(logits, target, weight, seen=seen, weights=weights):
            real = target != 255
            seen.append((logits.shape[-2:] == target.shape[-2:], real.sum().item()))
            seen.append(torch.equal(weight[real].sort()[0], weights[weights > 0].sort()[0]))
            return F.cross_entropy(logits, target, ignore_index=255)

        semantic_step(net, (images, targets, weights), loss_fn, cpu, "fp32")
        assert seen == [(True, 2 * h * w), True], (h, w)
    assert fit(_cfg(shapes_data, tmp_path / "run", model="unet_original", depth=2, base_width=4,
                    crop=0, epochs=1, epoch_size=2)).is_file()  # fmt: skip


def test_weighted_ce_trains_with_border_weight_maps(shapes_data, tmp_path):
    """--loss weighted-ce: the loader yields (image, target, weights) and training learns."""
    assert (
        main(
            [
                "train",
                str(shapes_data),
                "--out",
                str(tmp_path / "run"),
                "--depth",
                "2",
                "--base-width",
                "8",
                "--epochs",
                "4",
                "--epoch-size",
                "32",
                "--crop",
                "32",
                "--lr",
                "5e-3",
                "--no-progress",
                "--loss",
                "weighted-ce",
                "--sigma",
                "3",
                "--elastic",
                "--flips",
                "horizontal",
            ]
        )
        == 0
    )
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    cfg, history = ckpt["train_state"]["config"], ckpt["train_state"]["history"]
    assert cfg["loss"] == "weighted-ce" and cfg["sigma"] == 3.0 and cfg["flips"] == "horizontal"
    assert (
        history[-1]["train_loss"] < history[0]["train_loss"] and history[-1]["pixel_accuracy"] > 0.8
    )


COLOURS = [(0, 0, 0), (255, 0, 0), (0, 0, 255)]  # pure blue is 0x0000ff = 255: not "ignore"


def _colour_copy(shapes_data, root, table: bool):
    """The shapes dataset with each mask saved as colours (class k in COLOURS[k]), with or
    without a classes.json naming the colours."""
    shutil.copytree(shapes_data, root)
    colours = np.array(COLOURS, np.uint8)
    for mask in root.glob("*/masks/*.png"):
        Image.fromarray(colours[np.asarray(Image.open(mask))]).save(mask)
    if table:
        classes = [{"id": k, "name": f"c{k}", "color_rgb": c} for k, c in enumerate(COLOURS)]
        (root / "classes.json").write_text(json.dumps({"classes": classes}))
    return root


def test_colour_masks_train_by_classes_json_or_mask_values(shapes_data, tmp_path):
    from pixelwise.evaluate import evaluate_checkpoint
    from pixelwise.semantic import build_datasets

    plain = dict(epochs=1, crop=0, augment=False)
    ids = build_datasets(_cfg(shapes_data, tmp_path / "ids", **plain))[1]
    expected = [ids[i][1] for i in range(len(ids))]  # (a dataset is indexed, not iterated)
    values = [r << 16 | g << 8 | b for r, g, b in COLOURS]
    by_table = _cfg(_colour_copy(shapes_data, tmp_path / "table", True), tmp_path / "a", **plain)
    by_values = _cfg(
        _colour_copy(shapes_data, tmp_path / "plain", False),
        tmp_path / "b",
        mask_values=values,
        **plain,
    )
    for cfg in (by_table, by_values):
        _, val, _, _ = build_datasets(cfg)
        assert len(val) == len(expected)
        assert all(torch.equal(val[i][1], e) for i, e in enumerate(expected))
    seg = load_model(fit(by_table))
    assert seg.class_names == ["c0", "c1", "c2"] and seg.encoding.values == tuple(values)
    # the checkpoint scores colour masks by its colours: as its predictions against the ids
    scored = evaluate_checkpoint(tmp_path / "a" / "best.pt", tmp_path / "table", precision="fp32")
    hits = total = 0
    for image in sorted((shapes_data / "val" / "images").glob("*.png")):
        truth = read_mask(shapes_data / "val" / "masks" / image.name)
        hits += int((predict(seg, image, precision="fp32") == truth).sum())
        total += truth.size
    assert scored["images"] == 4 and scored["pixel_accuracy"] == pytest.approx(hits / total)


def test_train_and_evaluate_a_pascal_voc_layout(shapes_data, tmp_path):
    """JPEGImages/ + SegmentationClass/ split by ImageSets/Segmentation lists, with photos that
    have no mask: trained and scored by the same commands as images/ + masks/ folders."""
    import shutil

    voc = tmp_path / "voc"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True)
    for split in ("train", "val"):
        names = []
        for image in sorted((shapes_data / split / "images").glob("*.png")):
            names.append(f"{split}_{image.stem}")
            shutil.copy(image, voc / "JPEGImages" / f"{names[-1]}.png")
            shutil.copy(
                shapes_data / split / "masks" / image.name,
                voc / "SegmentationClass" / f"{names[-1]}.png",
            )
        (voc / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(names) + "\n")
    shutil.copy(image, voc / "JPEGImages" / "unlabelled.png")
    run = train_tiny(voc, tmp_path / "run")
    scores = []
    for data in (voc, shapes_data):
        out = tmp_path / f"{data.name}.json"
        assert main(["evaluate", str(run / "best.pt"), str(data), "--json", str(out)]) == 0
        scores.append(json.loads(out.read_text()))
    assert scores[0]["images"] == 4 and scores[0]["mean_iou"] == scores[1]["mean_iou"]


def test_class_colours_are_the_masks_own(shapes_data, tmp_path):
    """Predicted masks should look like the training masks: a colour mask's colours, a palette
    mask's entries (VOC's), defaults where the masks do not tell the classes apart."""
    from pixelwise.segmenter import default_colours
    from pixelwise.semantic import build_datasets

    def colours_of(data, **kw):
        return build_datasets(_cfg(data, tmp_path / "out", epochs=1, **kw))[3]

    voc = [(0, 0, 0), (128, 0, 0), (0, 128, 0)] + [(i, i, i) for i in range(3, 256)]
    grey = [(i, i, i) for i in range(256)]
    for name, palette in (("voc", voc), ("grey", grey)):
        root = shutil.copytree(shapes_data, tmp_path / name)
        for mask in root.glob("*/masks/*.png"):
            image = Image.open(mask).convert("P")
            image.putpalette([v for colour in palette for v in colour])
            image.save(mask)
    assert colours_of(tmp_path / "voc") == [[0, 0, 0], [128, 0, 0], [0, 128, 0]]
    assert colours_of(tmp_path / "grey") == default_colours(3)
    values = [r << 16 | g << 8 | b for r, g, b in COLOURS]
    colour = _colour_copy(shapes_data, tmp_path / "colour", False)
    assert colours_of(colour, mask_values=values) == [list(c) for c in COLOURS]
    assert colours_of(shapes_data) == default_colours(3)


def test_whole_images_of_different_sizes_train_in_one_batch(tmp_path):
    """--crop 0 trains on whole images; a batch of different sizes is padded with the ignore
    index, which the loss and metrics leave out."""
    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(40, 56), (48, 32), (36, 36), (52, 44), (40, 40)]):
        image, mask = rng.integers(0, 255, (h, w), dtype=np.uint8), np.zeros((h, w), np.uint8)
        mask[h // 4 : h // 2, w // 4 : w // 2] = 1
        image[mask == 1] = 250
        for sub, array in (("images", image), ("masks", mask)):
            (root / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(root / sub / f"{i}.png")
    best = fit(_cfg(root, tmp_path / "run", crop=0, batch_size=4, epochs=2, val_fraction=0.2))
    assert torch.load(best, weights_only=True)["train_state"]["metrics"]["pixel_accuracy"] > 0


def test_evaluate_scores_what_predict_makes_on_images_it_tiles(shapes_data, tmp_path, monkeypatch):
    """Above the tiling threshold predict goes tile by tile; evaluate must score those masks
    (and not run the network on the whole image at once)."""
    from pixelwise import inference
    from pixelwise.evaluate import evaluate_checkpoint

    run = train_tiny(shapes_data, tmp_path / "run")
    monkeypatch.setattr(inference, "AUTO_TILE_PIXELS", 40 * 40)  # the 48 x 48 images tile
    monkeypatch.setattr(inference, "AUTO_TILE", 160)  # cores of 32 pixels: 4 tiles an image
    tiled = []
    whole_tiler = inference.predict_tiled
    monkeypatch.setattr(
        inference, "predict_tiled", lambda *a, **k: tiled.append(1) or whole_tiler(*a, **k)
    )
    scored = evaluate_checkpoint(run / "best.pt", shapes_data, precision="fp32")
    assert len(tiled) == 4  # each of the 4 validation images
    seg, hits, total = load_model(run / "best.pt"), 0, 0
    for image in sorted((shapes_data / "val" / "images").glob("*.png")):
        truth = read_mask(shapes_data / "val" / "masks" / image.name)
        hits += int((predict(seg, image, precision="fp32") == truth).sum())
        total += truth.size
    assert len(tiled) == 8 and scored["pixel_accuracy"] == pytest.approx(hits / total)


def test_jpeg_masks_train_with_their_values_named(shapes_data, tmp_path):
    """JPEG masks: without --mask-values the error names the values compression scattered the
    others around; with them each pixel takes the nearest, as the lossless masks say."""
    from pixelwise.semantic import build_datasets

    root = shutil.copytree(shapes_data, tmp_path / "jpeg")
    for mask in root.glob("*/masks/*.png"):
        Image.fromarray(np.asarray(Image.open(mask)) * 100).save(
            mask.with_suffix(".jpg"), quality=75
        )
        mask.unlink()
    with pytest.raises(ValueError, match=r"JPEG files.*--mask-values '0,100,200' \(each pixel"):
        build_datasets(_cfg(root, tmp_path / "a", epochs=1))
    val = build_datasets(_cfg(root, tmp_path / "b", epochs=1, mask_values=[0, 100, 200]))[1]
    exact = build_datasets(_cfg(shapes_data, tmp_path / "c", epochs=1))[1]
    agree = np.mean([(val[i][1] == exact[i][1]).float().mean().item() for i in range(len(val))])
    assert agree > 0.97


def test_masks_with_soft_edges_train_as_black_and_white(shapes_data, tmp_path):
    """Black-and-white masks whose edges were smoothed (drawn anti-aliased, resized): the error
    without --soft-masks suggests it; with it each pixel is background or foreground, whichever
    of 0 and 255 is nearer."""
    import cv2

    from pixelwise.semantic import build_datasets

    root = shutil.copytree(shapes_data, tmp_path / "soft")
    for mask in root.glob("*/masks/*.png"):
        white = (np.asarray(Image.open(mask)) > 0).astype(np.uint8) * 255
        large = cv2.resize(white, None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)
        soft = cv2.resize(cv2.GaussianBlur(large, (9, 9), 2), white.shape[::-1], cv2.INTER_AREA)
        Image.fromarray(soft).save(mask)
    with pytest.raises(ValueError, match=r"black and white with soft edges .* give --soft-masks"):
        build_datasets(_cfg(root, tmp_path / "a", epochs=1))
    with pytest.raises(ValueError, match="masks with soft edges need --soft-masks"):
        build_datasets(_cfg(root, tmp_path / "b", epochs=1, mask_values=[0, 255]))
    for options in ({}, {"mask_values": [0, 255]}):
        val = build_datasets(_cfg(root, tmp_path / "c", epochs=1, soft_masks=True, **options))[1]
        exact = build_datasets(_cfg(shapes_data, tmp_path / "d", epochs=1))[1]
        agree = [(val[i][1] == (exact[i][1] > 0)).float().mean().item() for i in range(len(val))]
        assert val.num_classes == 2 and np.mean(agree) > 0.97
    with pytest.raises(ValueError, match="--soft-masks alone reads grey masks of black"):
        build_datasets(_cfg(shapes_data, tmp_path / "e", epochs=1, soft_masks=True))


def test_u2net_trains_and_validates(shapes_data, tmp_path):
    """U²-Net keeps its side outputs while training; the validation pass after the epoch copies
    the network (folded for inference), which failed on those tensors of a graph."""
    best = fit(_cfg(shapes_data, tmp_path / "run", model="u2net", epochs=1, overlays=0))
    assert torch.load(best, weights_only=True)["train_state"]["metrics"]["pixel_accuracy"] > 0


def test_colour_masks_with_soft_edges_train_with_their_colours_named(shapes_data, tmp_path):
    """Colour masks resized with interpolation hold blends of their classes' colours at edges:
    the error suggests the main colours with --soft-masks; with them each pixel takes the
    nearest, as the exact masks say."""
    import cv2

    from pixelwise.semantic import build_datasets

    root = shutil.copytree(shapes_data, tmp_path / "colours")
    palette = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0]], np.uint8)
    for mask in root.glob("*/masks/*.png"):
        classes = np.asarray(Image.open(mask))
        large = cv2.resize(palette[classes], None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)
        large = cv2.GaussianBlur(large, (9, 9), 2)
        Image.fromarray(cv2.resize(large, classes.shape[::-1], interpolation=cv2.INTER_AREA)).save(
            mask
        )
    with pytest.raises(
        ValueError, match=r"--soft-masks and --mask-values .* '#000000,#00ff00,#ff0000'"
    ):
        build_datasets(_cfg(root, tmp_path / "a", epochs=1))
    colours = [0, 0xFF0000, 0x00FF00]  # class order: black, red, green
    val = build_datasets(
        _cfg(root, tmp_path / "b", epochs=1, mask_values=colours, soft_masks=True)
    )[1]
    exact = build_datasets(_cfg(shapes_data, tmp_path / "c", epochs=1))[1]
    agree = np.mean([(val[i][1] == exact[i][1]).float().mean().item() for i in range(len(val))])
    assert agree > 0.97


def test_images_smaller_than_the_default_crop_train_whole(shapes_data, tmp_path, capsys):
    """Without --crop, 48-pixel images train whole (the default crop, 256, would only pad them;
    it stopped training); a box model keeps its crop, the size each box is resized to; a crop
    given larger than every image is still refused."""
    from pixelwise.semantic import check_crop

    cfg = _cfg(shapes_data, tmp_path / "a", crop=None)
    train = build_datasets_of(cfg)
    assert train.crop == 256
    check_crop(cfg, train)
    assert (
        cfg.crop == train.crop == 0 and "trained whole, as with --crop 0" in capsys.readouterr().err
    )
    box = _cfg(shapes_data, tmp_path / "b", crop=None, box_crop=[0.0, 0.2])
    check_crop(box, build_datasets_of(box))
    assert box.crop == 256
    given = _cfg(shapes_data, tmp_path / "c", crop=64)
    with pytest.raises(ValueError, match="--crop 64 is larger than every training image"):
        check_crop(given, build_datasets_of(given))
    whole = fit(_cfg(shapes_data, tmp_path / "d", crop=None, epochs=1))  # as train without --crop
    assert json.loads((whole.parent / "config.json").read_text())["crop"] == 0


def build_datasets_of(cfg):
    from pixelwise.semantic import build_datasets

    return build_datasets(cfg)[0]


def test_too_few_images_say_so(shapes_data, tmp_path):
    from pixelwise.semantic import build_datasets

    root = tmp_path / "one"
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
        shutil.copy(shapes_data / "train" / sub / "000.png", root / sub / "000.png")
    with pytest.raises(ValueError, match="one labelled image; training needs at least 2"):
        build_datasets(_cfg(root, tmp_path / "a", epochs=1, crop=0))
    for sub in ("images", "masks"):
        shutil.copy(shapes_data / "train" / sub / "001.png", root / sub / "001.png")
    with pytest.raises(ValueError, match=r"every labelled image is a validation image \(2\)"):
        build_datasets(_cfg(root, tmp_path / "b", epochs=1, crop=0, val_stems=["000", "001"]))
    train, val = build_datasets(_cfg(root, tmp_path / "c", epochs=1, crop=0))[:2]
    assert len(train) == len(val) == 1  # --val-fraction 0.2 of 2 images


def test_validation_of_large_images_goes_tile_by_tile(shapes_data, tmp_path, monkeypatch):
    """Training's validation runs images over the tiling threshold as predict and evaluate do
    (not the network on a whole huge image), so best.pt's recorded figures are evaluate's."""
    from pixelwise import evaluate as scoring
    from pixelwise import inference
    from pixelwise.evaluate import evaluate_checkpoint

    for module in (scoring, inference):  # the 48 x 48 images count as large: 4 tiles each
        monkeypatch.setattr(module, "AUTO_TILE_PIXELS", 40 * 40)
        monkeypatch.setattr(module, "AUTO_TILE", 160)
    tiles = []
    whole_tiler = inference.predict_tiled
    monkeypatch.setattr(
        scoring, "predict_tiled", lambda *a, **k: tiles.append(1) or whole_tiler(*a, **k)
    )
    best = fit(_cfg(shapes_data, tmp_path / "run", epochs=2, overlays=0))
    assert len(tiles) == 2 * 4  # two epochs, four validation images
    recorded = torch.load(best, weights_only=True)["train_state"]["metrics"]
    assert math.isnan(recorded["val_loss"])  # tiled images add no loss
    scored = evaluate_checkpoint(best, shapes_data, precision="fp32")
    assert recorded["pixel_accuracy"] == pytest.approx(scored["pixel_accuracy"])
    assert recorded["mean_iou"] == pytest.approx(scored["mean_iou"])


def test_evaluate_on_the_training_pool_scores_the_runs_own_validation_images(tmp_path, capsys):
    """A run that drew its validation images from the pool: evaluating it on that pool without
    --val-stems scores those images, as best.pt's figures do, not its training images too."""
    from pixelwise.evaluate import evaluate_checkpoint

    rng = np.random.default_rng(0)
    data = tmp_path / "pool"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    for i in range(6):
        mask = np.zeros((32, 32), np.uint8)
        y, x = rng.integers(2, 18, 2)
        mask[y : y + 12, x : x + 12] = 1
        image = np.where(mask[..., None] == 1, 200, 40) + rng.integers(0, 30, (32, 32, 3))
        Image.fromarray(image.astype(np.uint8)).save(data / "images" / f"{i}.png")
        Image.fromarray(mask).save(data / "masks" / f"{i}.png")
    run = train_tiny(data, tmp_path / "run", "--val-fraction", "0.34", "--precision", "fp32")
    out = capsys.readouterr().out
    # training ends by calibrating int8 on the run's validation images, as calibrate would
    calibrates = find_spec("onnxruntime.quantization") is not None
    assert ("calibrating int8 on 2 validation images" in out) == calibrates
    assert ("fp32 on 2 images" in out) == calibrates  # the gate, passed or not
    passed = calibrates and "accuracy gate passed" in out
    assert ("default path for it: " in out) == passed
    assert ("int8" in torch.load(run / "best.pt", weights_only=False)) == passed
    other = train_tiny(data, tmp_path / "other", "--val-fraction", "0.34", "--no-calibrate")
    hint = f"faster CPU prediction (int8): pixelwise calibrate {other / 'best.pt'} {data}"
    out = capsys.readouterr().out
    assert (hint in out) == calibrates and "calibrating int8" not in out
    recorded = torch.load(run / "best.pt", weights_only=True)["train_state"]["metrics"]
    scored = evaluate_checkpoint(run / "best.pt", data, precision="fp32")
    assert scored["images"] == 2 and "validation split of the checkpoint's" in scored["split"]
    assert scored["mean_iou"] == pytest.approx(recorded["mean_iou"])
    assert evaluate_checkpoint(run / "best.pt", data, "0,1,2,3,4,5")["images"] == 6  # as asked
    if find_spec("onnxruntime.quantization") is not None:  # calibrate picks them the same way
        capsys.readouterr()
        main(["calibrate", str(run / "best.pt"), str(data), "--out", str(tmp_path / "c.pt")])
        assert "fp32 on 2 images" in capsys.readouterr().out
    from pixelwise.compare import Method, compare

    methods = [Method("otsu", classical="otsu"), Method("unet", checkpoint=str(run / "best.pt"))]
    items = compare([str(data)], methods)[2]
    assert sorted(i.name for i in items) == sorted(r["name"] for r in scored["per_image"])
    assert len(compare([str(data)], methods[:1])[2]) == 6  # no checkpoint: every image
    # a run that named its validation images, on a copy of its data elsewhere (bundled nuclei
    # on DSB2018): those images when the data holds every one, else the whole pool
    ckpt = torch.load(run / "best.pt", weights_only=True)
    ckpt["train_state"]["config"] |= {"data": "elsewhere", "val_stems": ["1", "4"]}
    torch.save(ckpt, tmp_path / "named.pt")
    scored = evaluate_checkpoint(tmp_path / "named.pt", data, precision="fp32")
    assert sorted(r["name"] for r in scored["per_image"]) == ["1", "4"]
    (data / "images" / "4.png").unlink()
    (data / "masks" / "4.png").unlink()
    assert evaluate_checkpoint(tmp_path / "named.pt", data, precision="fp32")["images"] == 5


def test_a_model_normalised_by_percentiles_takes_any_bit_depth(shapes_data, tmp_path, capsys):
    """``--normalize-percentiles``: kept in the checkpoint; the same images as 8-bit PNGs, as a
    12-bit camera's 16-bit TIFFs with a dark offset and as floats in the thousands give the
    same masks (torch and ONNX Runtime), with no 12-bit note; resuming or fine-tuning with
    another normalisation, and Mask R-CNN with the option, are refused."""
    from pixelwise.data.io import read_image

    run = train_tiny(
        shapes_data, tmp_path / "run", "--normalize-percentiles", "1,99.8", "--precision", "fp32"
    )
    model = str(run / "best.pt")
    assert load_model(model).norm.percentiles == [1.0, 99.8]
    assert load_model(model).norm.apply(np.zeros((2, 2, 1), np.uint8)).dtype == np.float32
    images = sorted((shapes_data / "val" / "images").iterdir())
    for folder in ("twelve", "floats"):
        (tmp_path / folder).mkdir()
    for path in images:
        grey = read_image(path)
        tifffile.imwrite(tmp_path / "twelve" / f"{path.stem}.tif", grey.astype(np.uint16) * 16 + 37)
        tifffile.imwrite(tmp_path / "floats" / f"{path.stem}.tif", grey.astype(np.float32) * 9.5)
    assert main(["export", model, "--onnx", str(tmp_path / "m.onnx")]) == 0
    outputs = {}
    for runtime, checkpoint in (("torch", model), ("onnx", str(tmp_path / "m.onnx"))):
        for source in (shapes_data / "val" / "images", tmp_path / "twelve", tmp_path / "floats"):
            out = tmp_path / "pred" / runtime / source.name
            forced = ["--precision", "fp32", "--runtime", runtime, "--no-progress"]
            assert main(["predict", checkpoint, str(source), "--out", str(out), *forced]) == 0
            outputs[runtime, source.name] = [
                read_mask(out / "masks" / f"{p.stem}.png") for p in images
            ]
    assert "note" not in capsys.readouterr().err
    reference = outputs["torch", "images"]
    assert any(m.any() for m in reference)
    for key, masks in outputs.items():
        agree = np.mean([np.mean(a == b) for a, b in zip(masks, reference)])
        assert agree >= 0.999, (key, agree)
    # another normalisation for the same weights is refused, naming what they learnt
    with pytest.raises(ValueError, match="with .*--normalize-percentiles 1,99.8; resume with"):
        fit(_cfg(shapes_data, run, epochs=2, overlays=0, resume=True))
    fit(_cfg(shapes_data, tmp_path / "plain", epochs=1, overlays=0))
    tuned = dict(weights=str(tmp_path / "plain" / "best.pt"), normalize_percentiles=[1.0, 99.8])
    with pytest.raises(
        ValueError, match=r"fine-tuning normalises the images as .* learnt them \(by bit depth\)"
    ):
        fit(_cfg(shapes_data, tmp_path / "tuned", **tuned))
    rcnn = ["--model", "mask_rcnn", "--normalize-percentiles", "1,99"]
    assert main(["train", str(shapes_data), "--out", str(tmp_path / "m"), *rcnn]) == 2
    assert "mask_rcnn normalises its images itself" in capsys.readouterr().err


def test_training_notes_images_that_store_intensity_differently(shapes_data, tmp_path, capsys):
    """8-bit PNGs beside a 12-bit camera's 16-bit TIFFs: bit-depth normalisation shows them at
    different brightnesses, and training says so and what to do; beside full-range 16-bit files,
    or with --normalize-percentiles, it says nothing."""
    from pixelwise.data.encoding import intensity_kind, mixed_kinds_note
    from pixelwise.data.io import read_image

    assert intensity_kind(np.zeros((2, 2, 1), np.float32) + 0.5) == "float 0..1"
    assert intensity_kind(np.full((2, 2, 1), 900.0, np.float32)) == "float"
    assert mixed_kinds_note({"8-bit": 3, "16-bit": 2, "float 0..1": 1}) is None
    data = tmp_path / "data"
    shutil.copytree(shapes_data, data)
    images = sorted((data / "train" / "images").iterdir())
    for path in images[:3]:
        grey = read_image(path).astype(np.uint16)
        tifffile.imwrite(path.with_suffix(".tif"), grey * 16)  # 0..4080
        path.unlink()
    small = ["--epochs", "1", "--precision", "fp32"]
    train_tiny(data, tmp_path / "a", *small)
    err = capsys.readouterr().err
    assert (
        "note: the images store intensity in different ways (13 8-bit, 3 12-bit in 16-bit)" in err
    )
    assert "--normalize-percentiles 1,99.8" in err
    train_tiny(data, tmp_path / "b", *small, "--normalize-percentiles", "1,99.8")
    assert "store intensity" not in capsys.readouterr().err
    for path in images[:3]:  # the same images at full 16-bit range: one brightness
        tif = path.with_suffix(".tif")
        tifffile.imwrite(
            tif, (tifffile.imread(tif).astype(np.uint32) * 257 // 16).astype(np.uint16)
        )
    train_tiny(data, tmp_path / "c", *small)
    assert "store intensity" not in capsys.readouterr().err


def test_info_describes_a_model_and_the_command_that_trained_it(shapes_data, tmp_path, capsys):
    """``pixelwise info MODEL``: architecture and size, classes with their mask values, input
    normalisation, the run's scores and options (the printed command parses back to the run's
    settings), int8 calibration; the same for its exported .onnx file (no training record)."""
    from pixelwise.checkpoint import read_checkpoint, write_checkpoint
    from pixelwise.cli import build_parser
    from pixelwise.config import TrainConfig, from_args

    extra = ["--normalize-percentiles", "0.5,99.5", "--rotate", "15", "--box-crop=-0.02,0.2"]
    run = train_tiny(
        shapes_data,
        tmp_path / "run",
        "--mask-values",
        "0,1,2",
        "--classes",
        "bg,disc,square",
        *extra,
    )
    capsys.readouterr()
    assert main(["info", str(run / "best.pt")]) == 0
    lines = capsys.readouterr().out.splitlines()
    ckpt = read_checkpoint(run / "best.pt")
    params = sum(
        v.numel()
        for k, v in ckpt["state_dict"].items()
        if "running" not in k and "num_batches" not in k
    )
    assert lines[0].startswith(
        f"{run / 'best.pt'}: unet (semantic, {params / 1e6:.2f} M parameters; in_channels 1, depth 2, base_width 8"
    )
    assert (
        lines[1] == "classes: 0 bg (mask value 0), 1 disc (mask value 1), 2 square (mask value 2)"
    )
    assert lines[2].startswith(
        "input: 1 channel; each image normalised by its own 0.5 and 99.5 percentiles; mean "
    )
    assert lines[2].endswith("; a box model: the box's crop at 32 x 32")
    best = ckpt["train_state"]["metrics"]["mean_iou"]
    assert lines[3].startswith(f"training: epoch {ckpt['train_state']['epoch']} of 2; validation ")
    assert f"mean IoU {best:.4f}" in lines[3]
    command = lines[4].removeprefix("trained by: pixelwise ").split(" ")
    assert (
        command[:4] == ["train", str(shapes_data), "--out", str(run)]
        and "--box-crop=-0.02,0.2" in command
    )
    parsed = from_args(TrainConfig, build_parser().parse_args(command))
    saved = ckpt["train_state"]["config"]
    for name, value in vars(parsed).items():
        if name != "progress":
            assert value == saved[name], name
    assert lines[5].startswith("int8: not calibrated")
    # a calibration record, as pixelwise calibrate leaves it
    gate = {
        "mean_iou_fp32": 0.9,
        "mean_iou_int8": 0.899,
        "drop": 0.001,
        "max_drop": 0.005,
        "images": 1,
        "passed": True,
    }
    write_checkpoint(
        tmp_path / "c.pt",
        ckpt | {"int8": {"graph": torch.zeros(1, dtype=torch.uint8), "gate": gate}},
    )
    assert main(["info", str(tmp_path / "c.pt")]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "int8: calibrated, accuracy gate passed: mean IoU 0.8990 int8 vs 0.9000 fp32 on 1 image "
        "(drop 0.0010, at most 0.005)"
    )
    assert main(["export", str(run / "best.pt"), "--onnx", str(tmp_path / "m.onnx")]) == 0
    capsys.readouterr()
    assert main(["info", str(tmp_path / "m.onnx")]) == 0
    onnx_lines = capsys.readouterr().out.splitlines()
    assert (
        onnx_lines[0]
        == f"{tmp_path / 'm.onnx'}: unet (semantic; in_channels 1, depth 2, base_width 8, batch_norm True, backend torch)"
    )
    assert onnx_lines[1:3] == lines[1:3]
    assert onnx_lines[3] == "int8: no, an fp32 graph (export --int8 DATA writes an int8 one)"
    # an instance model: torchvision normalises, no int8
    rcnn = ckpt | {"kind": "instance", "arch": "mask_rcnn", "int8": None}
    rcnn["train_state"] = {"epoch": 1, "metrics": {"mask_ap": 0.25, "val_loss": float("nan")}}
    write_checkpoint(tmp_path / "r.pt", rcnn)
    assert main(["info", str(tmp_path / "r.pt")]) == 0
    assert capsys.readouterr().out.splitlines()[2:] == [
        "input: 1 channel; 0..1 by bit depth, then torchvision's own normalisation",
        "training: epoch 1; validation mask AP 0.2500",
        "int8: not available for instance models (int8 runs exported semantic models)",
    ]
    assert main(["info", str(tmp_path / "nothing.pt")]) == 2
    assert "nothing.pt: checkpoint not found" in capsys.readouterr().err


def test_training_on_every_image_without_validation(shapes_data, tmp_path, capsys):
    """``--val-fraction 0``: every image trains, nothing validates; each epoch's model is
    best.pt (the last epoch's weights), the epoch lines and metrics.csv carry no validation
    figures, and evaluating the checkpoint on its own training images says that they are.
    One labelled image can train this way; with a validation split it still cannot."""
    from pixelwise.evaluate import evaluate_checkpoint
    from pixelwise.report import training_lines
    from pixelwise.semantic import build_datasets

    data = shapes_data / "train"
    run = train_tiny(data, tmp_path / "run", "--val-fraction", "0", "--precision", "fp32")
    out = capsys.readouterr().out
    assert "12 training images, no validation (--val-fraction 0: best.pt is the last" in out
    assert "epoch 2/2  train loss " in out and "mIoU" not in out and "nan" not in out
    best = torch.load(run / "best.pt", weights_only=True)
    last = torch.load(run / "last.pt", weights_only=True)
    assert best["train_state"]["epoch"] == last["train_state"]["epoch"] == 2
    assert best["train_state"]["metrics"] == {}
    for key, value in last["state_dict"].items():
        assert torch.equal(best["state_dict"][key], value), key
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"] and "mean_iou" not in rows[0]
    assert (run / "curve.png").stat().st_size > 0 and not (run / "overlays").exists()
    assert "validation not scored" in training_lines(best["train_state"])[0]
    scored = evaluate_checkpoint(run / "best.pt", data, precision="fp32")
    assert scored["images"] == 12
    assert "was trained on every image of" in capsys.readouterr().err
    root = tmp_path / "one"
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
        shutil.copy(data / sub / "000.png", root / sub / "000.png")
    train, val = build_datasets(_cfg(root, tmp_path / "a", epochs=1, crop=0, val_fraction=0.0))[:2]
    assert (len(train), len(val)) == (1, 0)
    assert main(["inspect", str(root), "--val-fraction", "0"]) == 0
    said = capsys.readouterr().out
    assert "(validation: none, --val-fraction 0)" in said
    assert "no validation images: best.pt is the last epoch's model" in said


def test_patience_stops_a_run_whose_validation_score_stalls(
    shapes_data, tmp_path, monkeypatch, capsys
):
    """--patience 2: scripted validation scores 0.5, 0.6, 0.6 (a tie is no gain), 0.55 stop the
    run after epoch 4 of 9 with best.pt from epoch 2; the stopped run counts as finished (a new
    run may take its folder); --patience without validation images is refused."""
    from pixelwise import train as training

    scores = iter([0.5, 0.6, 0.6, 0.55, 0.9, 0.9, 0.9, 0.9, 0.9])
    made = training.semantic_task

    def scripted(*args, **kwargs):
        task = made(*args, **kwargs)
        task.validate = lambda network: (
            {"val_loss": 0.1, "mean_iou": next(scores)} | {"pixel_accuracy": 0.9}
        )
        return task

    monkeypatch.setattr(training, "semantic_task", scripted)
    best = fit(_cfg(shapes_data, tmp_path / "run", epochs=9, patience=2, overlays=0))
    out = capsys.readouterr().out
    assert "epoch 4/9" in out and "epoch 5/9" not in out
    assert "stopped: mIoU has not improved for 2 epochs (--patience 2); best.pt is epoch 2's" in out
    assert torch.load(best, weights_only=True)["train_state"]["epoch"] == 2
    last = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["train_state"]
    assert last["epoch"] == 4 and last["stopped_early"]
    training.check_unfinished(_cfg(shapes_data, tmp_path / "run", epochs=9))  # no refusal
    monkeypatch.undo()
    with pytest.raises(ValueError, match="--patience stops on the validation score"):
        fit(_cfg(shapes_data / "train", tmp_path / "b", epochs=2, patience=1, val_fraction=0.0))


def test_each_epoch_line_says_about_how_long_the_run_has_left():
    """The median epoch so far times the epochs to come; nothing after the last."""
    from pixelwise.train import time_left

    rows = [
        {"epoch": 1, "seconds": 50.0},
        {"epoch": 2, "seconds": 400.0},
        {"epoch": 3, "seconds": 60.0},
    ]
    assert time_left(rows[:1], 2) == "; about 50 s left"
    assert time_left(rows, 13) == "; about 10 min left"  # median 60 s x 10 epochs
    assert time_left(rows, 203) == "; about 3.3 h left"
    assert time_left(rows, 3) == ""


def test_a_training_run_folder_stands_for_its_best_checkpoint(shapes_data, tmp_path, capsys):
    """Where a command takes a model, the run folder train wrote names its best.pt: predict,
    segment (model first), evaluate and compare score the model, not the folder's overlays as
    predicted masks; info describes it, and points a dataset folder to inspect."""
    run = train_tiny(shapes_data, tmp_path / "run")
    images = str(shapes_data / "val" / "images")
    folder, best = tmp_path / "by-folder", tmp_path / "by-file"
    assert main(["predict", str(run), images, "-o", str(folder), "--no-progress"]) == 0
    assert main(["predict", str(run / "best.pt"), images, "-o", str(best), "--no-progress"]) == 0
    for name in sorted(p.name for p in (best / "masks").iterdir()):
        np.testing.assert_array_equal(
            read_mask(folder / "masks" / name), read_mask(best / "masks" / name)
        )
    argv = ["segment", str(run), images, "--object-class", "1", "--no-progress", "-o"]
    assert main([*argv, str(tmp_path / "s")]) == 0
    assert len(list((tmp_path / "s" / "instances").iterdir())) == len(os.listdir(images))
    for model in (run, run / "best.pt"):
        out = tmp_path / f"e{len(str(model))}.json"
        assert main(["evaluate", str(model), str(shapes_data), "--json", str(out)]) == 0
    scores = [json.loads(p.read_text())["mean_iou"] for p in sorted(tmp_path.glob("e*.json"))]
    assert scores[0] == scores[1]
    compare = ["compare", str(shapes_data), "--methods", f"u:{run}", "-o", str(tmp_path / "c")]
    assert main(compare) == 0
    capsys.readouterr()
    assert main(["info", str(run)]) == 0 and "unet" in capsys.readouterr().out
    assert main(["info", str(shapes_data)]) == 2
    assert f"'pixelwise inspect {shapes_data}' shows what a dataset holds" in (
        capsys.readouterr().err
    )
