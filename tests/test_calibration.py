"""Pixel sizes: what a model trained on calibrated images records, and the note for an image
recorded at another scale. (Reading a file's pixel size: tests/test_measure.py.)"""

import numpy as np
import tifffile
from PIL import Image

from pixelwise.data.calibration import common_pixel_size, scale_note


def calibrated(path, pixels: np.ndarray, size: float) -> None:
    """``pixels`` as a TIFF recording ``size`` µm a pixel (as pixels per centimetre)."""
    per_cm = {"resolution": (1e4 / size, 1e4 / size), "resolutionunit": "CENTIMETER"}
    tifffile.imwrite(path, pixels, photometric="rgb" if pixels.ndim == 3 else None, **per_cm)


def test_common_pixel_size_and_the_scale_note_by_hand(tmp_path):
    image = np.zeros((4, 4), np.uint8)
    for name, size in (("a", 0.5), ("b", 0.52), ("c", 0.25)):
        calibrated(tmp_path / f"{name}.tif", image, size)
    Image.fromarray(image).save(tmp_path / "d.png")
    assert common_pixel_size([tmp_path / "a.tif", tmp_path / "b.tif"]) == 0.51  # the median
    assert common_pixel_size([tmp_path / "a.tif", tmp_path / "c.tif"]) is None  # 2x apart
    assert common_pixel_size([tmp_path / "a.tif", tmp_path / "d.png"]) is None  # one unknown
    assert common_pixel_size([]) is None
    assert scale_note("x.tif", 0.25, 0.5) == (
        "x.tif: 0.25 µm a pixel, the model learned at 0.5 µm: its objects appear 2x larger than "
        "the model saw them (--scale 0.5 shows them at the size it learned)"
    )
    assert "appear 4x smaller" in scale_note("x.tif", 1.0, 0.25)
    assert scale_note("x.tif", 0.52, 0.5) is None  # within 10 %
    assert scale_note("x.tif", 0.25, 0.5, scale=0.5) is None  # --scale 0.5 given
    assert "appear at --scale 0.8 1.6x larger" in scale_note("x.tif", 0.25, 0.5, scale=0.8)
    assert scale_note("x.tif", None, 0.5) is None and scale_note("x.tif", 0.5, None) is None


def test_a_model_trained_on_calibrated_images_notes_images_at_another_scale(
    shapes_data, tmp_path, capsys
):
    """Trained on images that all record 0.5 µm a pixel: the checkpoint keeps it, ``info``
    shows it, and ``predict`` notes the image recorded at 0.25 µm (objects twice as large as
    the model learned them), not the one at 0.5 µm or a PNG."""
    from conftest import tiny_config

    from pixelwise.checkpoint import load_model
    from pixelwise.cli import main
    from pixelwise.train import fit

    data = tmp_path / "data"
    for split in ("train", "val"):
        for folder in ("images", "masks"):
            (data / split / folder).mkdir(parents=True)
        for path in sorted((shapes_data / split / "images").iterdir()):
            pixels = np.asarray(Image.open(path).convert("RGB"))
            calibrated(data / split / "images" / f"{path.stem}.tif", pixels, 0.5)
            mask = shapes_data / split / "masks" / path.name
            (data / split / "masks" / path.name).write_bytes(mask.read_bytes())
    best = fit(tiny_config(data, tmp_path / "run", epochs=1))
    assert load_model(best).pixel_size == 0.5
    assert main(["info", str(best)]) == 0
    assert (
        "learned at 0.5 µm a pixel (--scale auto resizes images to it)" in capsys.readouterr().out
    )
    folder = tmp_path / "in"
    folder.mkdir()
    pixels = np.asarray(Image.open(next((shapes_data / "val" / "images").iterdir())).convert("RGB"))
    calibrated(folder / "fine.tif", pixels, 0.25)
    calibrated(folder / "same.tif", pixels, 0.5)
    Image.fromarray(pixels).save(folder / "plain.png")
    assert (
        main(["predict", str(best), str(folder), "--out", str(tmp_path / "out"), "--no-progress"])
        == 0
    )
    notes = [line for line in capsys.readouterr().err.splitlines() if "µm a pixel" in line]
    assert notes == [
        f"pixelwise: note: {folder / 'fine.tif'}: 0.25 µm a pixel, the model learned at 0.5 µm: "
        "its objects appear 2x larger than the model saw them (--scale 0.5 shows them at the size "
        "it learned)"
    ]
    # --scale auto: each image resized by its pixel size over the model's; none for the PNG
    auto = ["predict", str(best), str(folder), "--out", str(tmp_path / "auto"), "--no-progress"]
    assert main([*auto, "--scale", "auto", "--precision", "fp32", "--runtime", "torch"]) == 0
    err = capsys.readouterr().err
    assert "µm a pixel" not in err
    assert (
        f"--scale auto: 1 file(s) record no pixel size and were taken as they are, such as {folder / 'plain.png'}"
        in err
    )
    from dataclasses import replace

    from pixelwise.inference import predict

    model = load_model(best)
    for name, factor in (("fine", 0.5), ("same", 1.0), ("plain", 1.0)):
        written = np.asarray(Image.open(tmp_path / "auto" / "masks" / f"{name}.png"))
        expected = predict(replace(model, input_scale=factor), pixels, "fp32")
        np.testing.assert_array_equal(written, expected)
    untrained = tmp_path / "untrained.pt"  # a model that records no pixel size
    from conftest import tiny_seg

    from pixelwise.checkpoint import save_checkpoint

    save_checkpoint(untrained, tiny_seg())
    assert main(["predict", str(untrained), str(folder), "--scale", "auto", "--no-progress"]) != 0
    assert (
        "--scale auto resizes each image by its pixel size over the model's, and this model records none"
        in capsys.readouterr().err
    )


def test_unreadable_calibration_is_no_size_and_no_failure():
    """A resolution of 1/0 (which tifffile will not write, but other writers do) and metadata
    that raises when read give no size rather than an error: reading the image goes on."""
    from types import SimpleNamespace

    from pixelwise.data.calibration import _per_pixel, recorded

    zero = SimpleNamespace(tags={"XResolution": SimpleNamespace(value=(1, 0))})
    assert _per_pixel(zero, "XResolution") is None
    assert _per_pixel(SimpleNamespace(tags={}), "XResolution") is None

    class Broken:
        @property
        def pages(self):
            raise ValueError("damaged")

    assert recorded(Broken()) is None


def test_info_of_an_image_says_its_size_layout_pixel_size_and_how_it_is_read(
    tmp_path, monkeypatch, capsys
):
    """``pixelwise info IMAGE``: a tiled TIFF pyramid recording 0.25 µm a pixel, over a lowered
    pixel limit (read region by region), and a PNG (no pixel size, read whole); a missing file
    is one error line."""
    from pixelwise.cli import main
    from pixelwise.data.write import save_mask_rows

    mask = (np.arange(1300 * 1100).reshape(1300, 1100) % 3).astype(np.uint8)
    save_mask_rows(tmp_path / "m.tif", [(0, mask)], mask.shape, pixel_size=0.25)
    Image.fromarray(mask).save(tmp_path / "m.png")
    monkeypatch.setenv("PIXELWISE_MAX_PIXELS", "1000000")
    assert main(["info", str(tmp_path / "m.tif")]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{tmp_path / 'm.tif'}: 1100 x 1300 pixels (width x height); TIFF, 1 sample(s) of uint8, "
        "tiles of 512 x 512, adobe_deflate, a pyramid of 3 levels",
        "0.25 µm a pixel, as the file records it",
        "over the pixel limit of 1 megapixels: predict and segment read it region by region "
        "(--scale under 1 reads the smallest of its levels, 550 x 650 and 275 x 325, that holds "
        "the scaled image)",
    ]
    assert main(["info", str(tmp_path / "m.png")]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "no pixel size recorded (--measure gives pixels; --pixel-size UM gives µm)",
        "over the pixel limit of 1 megapixels and not a TIFF: refused",
    ]
    assert main(["info", str(tmp_path / "gone.tif")]) == 2
    assert "gone.tif: no such file" in capsys.readouterr().err


def mixed_magnifications(shapes_data, root):
    """The shapes dataset as calibrated TIFFs: even images at 0.5 µm a pixel as they are, odd
    ones enlarged 2x (masks nearest) and recorded at 0.25 µm, as from a scanner of twice the
    magnification; returns ``root``."""
    from pixelwise.data.transforms import resize_image, resize_mask

    for split in ("train", "val"):
        for folder in ("images", "masks"):
            (root / split / folder).mkdir(parents=True)
        for k, path in enumerate(sorted((shapes_data / split / "images").iterdir())):
            pixels = np.asarray(Image.open(path).convert("RGB"))
            mask = np.asarray(Image.open(shapes_data / split / "masks" / path.name))
            size = 0.5
            if k % 2:
                h, w = mask.shape
                pixels, mask = (
                    resize_image(pixels, (2 * h, 2 * w)),
                    resize_mask(mask, (2 * h, 2 * w)),
                )
                size = 0.25
            calibrated(root / split / "images" / f"{path.stem}.tif", pixels, size)
            Image.fromarray(mask).save(root / split / "masks" / path.name)
    return root


def test_train_at_one_pixel_size_resizes_each_image_by_its_own(shapes_data, tmp_path, capsys):
    """``train --at-pixel-size 0.5`` on images recorded at 0.5 and (enlarged 2x) at 0.25 µm: every
    pair is loaded at 0.5 µm a pixel (the enlarged ones shrunk back to the originals' size, their
    masks too), the checkpoint records 0.5 and runs at scale 1, and ``inspect`` suggests it.
    Images that record no pixel size, or --scale beside it, are one error line."""
    from conftest import tiny_config

    from pixelwise.checkpoint import load_model
    from pixelwise.cli import main
    from pixelwise.semantic import build_datasets
    from pixelwise.train import fit

    data = mixed_magnifications(shapes_data, tmp_path / "data")
    assert main(["inspect", str(data)]) == 0
    assert "train --at-pixel-size UM learns them at one pixel size" in capsys.readouterr().out
    cfg = tiny_config(data, tmp_path / "run", epochs=1, at_pixel_size=0.5)
    train, val, _, _ = build_datasets(cfg)
    assert train.item_scales[:2] == [1.0, 0.5] and val.item_scales[:2] == [1.0, 0.5]
    for ds in (train, val):
        for i in range(len(ds)):
            image, target = ds.load(i)
            assert image.shape[:2] == target.shape == (48, 48)
    best = fit(cfg)
    model = load_model(best)
    assert model.pixel_size == 0.5 and model.input_scale == 1.0
    assert main(["info", str(best)]) == 0
    assert "learned at 0.5 µm a pixel" in capsys.readouterr().out
    plain = tmp_path / "plain"
    (plain / "images").mkdir(parents=True)
    (plain / "masks").mkdir()
    for folder in ("images", "masks"):
        source = next((shapes_data / "train" / folder).iterdir())
        (plain / folder / source.name).write_bytes(source.read_bytes())
    args = ["train", str(plain), "--out", str(tmp_path / "no"), "--val-fraction", "0"]
    assert main([*args, "--at-pixel-size", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "--at-pixel-size 0.5: no pixel size recorded for 1 image, such as" in err
    assert main([*args, "--at-pixel-size", "0.5", "--scale", "0.5"]) == 2
    assert "give it without --scale" in capsys.readouterr().err
