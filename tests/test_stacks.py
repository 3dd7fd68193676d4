"""Multi-page TIFF stacks (an EM volume, a confocal z-stack) in predict and segment: every page
is an image of its own, named as training names the pages of a stack, so that evaluate scores
the outputs against the label stack."""

import json

import numpy as np
import pytest
import tifffile
from conftest import BrightIsForeground, tiny_seg
from PIL import Image

from pixelwise.batch import PredictOptions, predict_files, segment_files
from pixelwise.cli import main
from pixelwise.data.io import StackPage, count_pages, read_image
from pixelwise.inference import predict

PAGES = 5


def em_stack(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A (PAGES, 40, 48) uint8 volume of bright squares on dark noise, different on each page,
    and its 0/255 label stack (bright = 255)."""
    rng = np.random.default_rng(seed)
    volume = rng.integers(0, 60, (PAGES, 40, 48)).astype(np.uint8)
    for i in range(PAGES):
        y, x = rng.integers(2, 20, 2)
        volume[i, y : y + 12 + i, x : x + 14] = 220
    return volume, np.where(volume > 128, 255, 0).astype(np.uint8)


def test_predict_takes_each_page_of_a_stack_and_evaluate_scores_it(tmp_path):
    volume, labels = em_stack()
    data = tmp_path / "data"
    data.mkdir()
    tifffile.imwrite(data / "train-volume.tif", volume, photometric="minisblack")
    tifffile.imwrite(data / "train-labels.tif", labels, photometric="minisblack")
    more = tmp_path / "more"
    more.mkdir()
    tifffile.imwrite(more / "single.tif", volume[0], photometric="minisblack")
    (more / "bad.tif").write_bytes(b"II*\x00 not a TIFF")
    seg = tiny_seg(BrightIsForeground())
    out = tmp_path / "out"

    result = predict_files(seg, [data / "train-volume.tif", more], out, progress=False)

    names = sorted(p.name for p in (out / "masks").iterdir())
    assert names == ["single.png"] + [f"train-volume-{i:03d}.png" for i in range(PAGES)]
    assert [(str(src), reason) for src, reason in result.failures] == [
        (str(more / "bad.tif"), f"{more / 'bad.tif'}: TIFF file has no pages")
    ]
    for i in range(PAGES):  # each page predicted as the image it is on its own
        mask = np.asarray(Image.open(out / "masks" / f"train-volume-{i:03d}.png"))
        np.testing.assert_array_equal(mask, predict(seg, volume[i][..., None]))
        np.testing.assert_array_equal(mask, labels[i] // 255)  # the stand-in network is right

    json_path = tmp_path / "scores.json"
    assert main(["evaluate", str(out), str(data), "--json", str(json_path)]) == 0
    scores = json.loads(json_path.read_text())
    per_image = [row["name"] for row in scores["per_image"]]
    assert per_image == [f"train-volume-{i:03d}" for i in range(PAGES)]
    assert scores["pixel_accuracy"] == 1.0


def test_segment_names_the_pages_in_measurements_and_skips_finished_pages(tmp_path):
    volume, _ = em_stack(1)
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, volume, photometric="minisblack")
    seg = tiny_seg(BrightIsForeground())
    options = PredictOptions(object_class=1, measure=str(tmp_path / "m.csv"))

    result = segment_files(seg, [stack], tmp_path / "out", options, progress=False)

    assert not result.failures
    assert [name for _, name, _ in sorted(result.measures)] == [
        f"stack.tif[{i}]" for i in range(PAGES)
    ]
    for i, (_, _, rows) in enumerate(sorted(result.measures)):
        assert [row["area"] for row in rows] == [(labels := volume[i] > 128).sum()]
        assert labels.any()

    (tmp_path / "out" / "overlays" / "stack-001.png").unlink()  # as if killed on page 1
    again = segment_files(
        seg, [stack], tmp_path / "out", PredictOptions(object_class=1, skip_existing=True), False
    )
    assert again.skipped == PAGES - 1 and [p.name for p in again.written] == ["stack-001.png"]


def test_a_page_reads_as_its_own_image_and_errors_name_the_page(tmp_path):
    volume, _ = em_stack(2)
    tifffile.imwrite(tmp_path / "s.tif", volume, photometric="minisblack")
    np.testing.assert_array_equal(read_image(StackPage(tmp_path / "s.tif", 3))[..., 0], volume[3])
    with pytest.raises(ValueError, match=r"s\.tif: page 7 requested but the TIFF has 5"):
        read_image(StackPage(tmp_path / "s.tif", 7))
    assert str(StackPage(tmp_path / "s.tif", 3)) == f"{tmp_path / 's.tif'} page 3"


def test_labelme_files_of_pages_lead_to_the_page_written_beside_them(tmp_path):
    volume, labels = em_stack(3)
    tifffile.imwrite(tmp_path / "stack.tif", volume, photometric="minisblack")
    seg = tiny_seg(BrightIsForeground())
    out = tmp_path / "out"

    predict_files(seg, [tmp_path / "stack.tif"], out, PredictOptions(labelme=True), False)

    for i in range(PAGES):
        spec = json.loads((out / "labelme" / f"stack-{i:03d}.json").read_text())
        assert spec["imagePath"] == f"stack-{i:03d}.png"
        page = np.asarray(Image.open(out / "labelme" / spec["imagePath"]))
        np.testing.assert_array_equal(page[..., 0], volume[i])  # 8-bit grey shown as it is
        assert [s["label"] for s in spec["shapes"]] == ["foreground"]


def test_a_slide_or_pyramid_of_pages_is_its_full_resolution_image(tmp_path):
    """A slide scanner's file (Aperio SVS: the tiled slide, a thumbnail, smaller levels) or a
    pyramid stored as consecutive pages is no stack: its first, largest page is the image,
    predicted as one. Pages of different sizes whose first is not the largest are refused."""
    rng = np.random.default_rng(0)
    slide = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    with tifffile.TiffWriter(tmp_path / "slide.tif") as tif:
        tif.write(slide, photometric="rgb", tile=(32, 32))
        tif.write(slide[::8, ::8].copy(), photometric="rgb")  # thumbnail, stripped
        tif.write(slide[::4, ::4].copy(), photometric="rgb", tile=(16, 16))
    assert count_pages(tmp_path / "slide.tif", stack=True) == 1
    np.testing.assert_array_equal(read_image(tmp_path / "slide.tif"), slide)
    with tifffile.TiffWriter(tmp_path / "odd.tif") as tif:
        for size in (16, 64, 32):
            tif.write(np.zeros((size, size, 3), np.uint8), photometric="rgb")
    result = predict_files(
        tiny_seg(), [tmp_path / "slide.tif", tmp_path / "odd.tif"], tmp_path / "out", progress=False
    )
    assert [p.name for p in result.written] == ["slide.png"]
    assert np.asarray(Image.open(tmp_path / "out" / "masks" / "slide.png")).shape == (96, 128)
    assert [reason for _, reason in result.failures] == [
        f"{tmp_path / 'odd.tif'}: has 3 pages of different sizes and its first image is not the "
        "largest (no pyramid or slide with thumbnails, whose full-resolution image comes first); "
        "save the page you want as an image of its own"
    ]
