"""Photos stored a quarter turn from upright (an EXIF orientation, as phones save portraits) whose
annotations were drawn on the pixels as stored, as labelling tools that ignore the tag draw them:
training, inspect, compare and evaluate read those photos as stored, so that annotation and
pixels agree; annotations drawn on the upright photo are read as before."""

import json

import numpy as np
import pytest
import tifffile
from conftest import tiny_config
from PIL import Image

from pixelwise.cli import main
from pixelwise.data.io import StackPage, drawn_as_stored, laid_as_stored, quarter_turned, read_image
from pixelwise.data.write import save_mask
from pixelwise.evaluate_folders import evaluate_predictions
from pixelwise.semantic import build_datasets

STORED = (24, 40)  # height, width of the pixels as stored; upright they are 40 x 24


def turned_photo(path, pixels, orientation=6):
    """``pixels`` saved losslessly (PNG) with an EXIF orientation."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, exif=exif)


def bright_spots(rng):
    """An image whose red channel says where its foreground is (above 128)."""
    image = rng.integers(0, 100, (*STORED, 3)).astype(np.uint8)
    image[4:14, 3:30, 0] = 220
    image[16:22, 30:38, 0] = 200
    return image


def test_an_upright_reading_laid_out_as_stored_again(tmp_path):
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 255, (*STORED, 3)).astype(np.uint8)
    for orientation in (5, 6, 7, 8):
        path = tmp_path / f"{orientation}.png"
        turned_photo(path, stored, orientation)
        upright = read_image(path)
        assert upright.shape == (40, 24, 3) and quarter_turned(path) == orientation
        np.testing.assert_array_equal(read_image(path, as_stored=True), stored)
        np.testing.assert_array_equal(laid_as_stored(upright, path), stored)
        np.testing.assert_array_equal(laid_as_stored(upright[..., 0], path), stored[..., 0])
        assert drawn_as_stored(path, STORED, upright.shape[:2])
        assert not drawn_as_stored(path, (40, 24), upright.shape[:2])  # drawn upright
    turned_photo(tmp_path / "half.png", stored, 3)  # a half turn keeps the size: not told apart
    Image.fromarray(stored).save(tmp_path / "plain.png")
    for name in ("half.png", "plain.png"):
        assert quarter_turned(tmp_path / name) is None
        assert not drawn_as_stored(tmp_path / name, STORED, (40, 24))
    tifffile.imwrite(tmp_path / "stack.tif", np.stack([stored[..., 0]] * 2))
    assert quarter_turned(StackPage(tmp_path / "stack.tif", 1)) is None  # read as stored


def test_masks_drawn_on_the_pixels_as_stored_train_and_score(tmp_path, capsys):
    rng = np.random.default_rng(1)
    data = tmp_path / "data"
    for sub in ("images", "masks", "pred"):
        (data / sub).mkdir(parents=True)
    for i in range(5):
        image = bright_spots(rng)
        turned_photo(data / "images" / f"{i}.png", image)
        mask = (image[..., 0] > 128).astype(np.uint8)
        if i == 4:  # one drawn by a tool that turned the photo upright first
            mask = (read_image(data / "images" / f"{i}.png")[..., 0] > 128).astype(np.uint8)
        Image.fromarray(mask).save(data / "masks" / f"{i}.png")
        upright = read_image(data / "images" / f"{i}.png")[..., 0] > 128  # as predict sees it
        save_mask(data / "pred" / f"{i}.png", upright.astype(np.uint8))
    train, val = build_datasets(tiny_config(data, tmp_path / "run", crop=0))[:2]
    for dataset in (train, val):
        for index in range(len(dataset)):
            image, target = dataset.load(index)
            np.testing.assert_array_equal(image[..., 0] > 128, target == 1)
    said = capsys.readouterr().err
    assert said.count("the annotation fits the pixels as stored") == 1  # once per folder
    assert main(["inspect", str(data), "--no-progress"]) == 0
    scored = evaluate_predictions(data / "pred", data, val_stems="0,1,2,3,4")
    assert scored["images"] == 5 and scored["mean_iou"] == pytest.approx(1.0)
    out = tmp_path / "c"
    assert main(["compare", str(data), "--methods", f"p:{data / 'pred'}", "-o", str(out)]) == 0
    assert json.loads((out / "compare.json").read_text())["rows"][0]["mean_iou"] == 1.0
    Image.fromarray(np.zeros((24, 41), np.uint8)).save(data / "masks" / "0.png")
    with pytest.raises(ValueError, match=r"0.png: mask is 41 x 24 but image 0.png is 24 x 40"):
        build_datasets(tiny_config(data, tmp_path / "run", crop=0))


def test_labelme_shapes_drawn_on_the_pixels_as_stored(tmp_path):
    pytest.importorskip("pycocotools", reason="outlines are drawn by pycocotools")
    from pixelwise.data.layouts import find_items

    image = bright_spots(np.random.default_rng(2))
    turned_photo(tmp_path / "a.png", image)
    square = {"label": "spot", "points": [[3, 4], [29, 4], [29, 13], [3, 13]]}
    spec = {"shapes": [square | {"shape_type": "polygon"}], "imagePath": "a.png",
            "imageHeight": STORED[0], "imageWidth": STORED[1]}  # fmt: skip
    (tmp_path / "a.json").write_text(json.dumps(spec))
    (item,) = find_items(tmp_path)
    mask = item.read_mask()
    assert mask.shape == STORED and mask[4:14, 3:30].all() and mask.sum() == 10 * 27
    from pixelwise.data.coco import InstanceDataset
    from pixelwise.detection import instance_splits

    train, val, cats, _ = instance_splits(tmp_path, None, 0.0, 0)
    pixels, target = InstanceDataset(train + val, cats)[0]  # Mask R-CNN's view
    assert pixels.shape == (3, *STORED) and target["masks"].shape == (1, *STORED)
    spot = (pixels[0] > 128 / 255).numpy()[:15]  # the spot drawn (the other one lies below)
    np.testing.assert_array_equal(spot, target["masks"][0, :15].numpy().astype(bool))
    spec |= {"imageHeight": 30}  # drawn on an image of another size: still refused
    (tmp_path / "a.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=r"drawn on an image of 40 x 30 pixels"):
        find_items(tmp_path)
