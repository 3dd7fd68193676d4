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
from pixelwise.data.io import ImageReadError, StackPage, count_pages, read_image, read_mask
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


def hyperstack(slices: int, channels: int) -> np.ndarray:
    """A (Z, C, 24, 32) uint16 array whose every plane holds its own value, 100 z + c + 1, with
    a bright square that moves with z and c, so that a mixed-up plane shows."""
    planes = np.zeros((slices, channels, 24, 32), np.uint16)
    for z in range(slices):
        for c in range(channels):
            planes[z, c] = 100 * z + c + 1
            planes[z, c, 2 + z : 10 + z, 3 + 4 * c : 11 + 4 * c] = 4000
    return planes


@pytest.mark.parametrize("writer", ["imagej", "ome"])
def test_channels_stored_as_pages_are_channels_not_slices(tmp_path, writer):
    """ImageJ hyperstacks and OME-TIFFs store each channel of each slice as a page (ImageJ
    ZCYX, OME as written, here CZYX): the slices are the stack, a channel is chosen with
    ``channel`` and read alone as grey; without a choice the file is refused, saying how."""
    planes = hyperstack(3, 2)
    path = tmp_path / f"cells.{writer}.tif"
    if writer == "imagej":
        tifffile.imwrite(path, planes, imagej=True, metadata={"axes": "ZCYX"})
    else:  # channels outermost: the page order differs from ImageJ's
        tifffile.imwrite(path, planes.transpose(1, 0, 2, 3), metadata={"axes": "CZYX"})
    assert count_pages(path) == 6 and count_pages(path, stack=True) == 3
    for z in range(3):
        for c in range(2):
            image = read_image(StackPage(path, z), channel=c)
            np.testing.assert_array_equal(image, planes[z, c][..., None])
    axes = "ZCYX" if writer == "imagej" else "CZYX"
    with pytest.raises(
        ImageReadError, match=rf"has 2 channels \(a page each, axes {axes}\).*--channel N \(0 to 1"
    ):
        read_image(StackPage(path, 1))
    with pytest.raises(ImageReadError, match="--channel 2 asked for, but the image has 2 channels"):
        read_image(StackPage(path, 0), channel=2)


def test_grey_samples_are_channels_and_alpha_or_colour_are_not(tmp_path):
    """A TIFF with several grey samples per pixel (contiguous or planar) holds channels: refused
    without ``channel``, each readable alone. Grey + alpha stays a grey image, a colour image a
    colour image, whose channels can be chosen too (a PNG's blue, say)."""
    planes = hyperstack(1, 5)[0]  # (5, H, W)
    contiguous, planar = tmp_path / "five.tif", tmp_path / "planar.tif"
    tifffile.imwrite(
        contiguous, planes.transpose(1, 2, 0), photometric="minisblack", planarconfig="contig"
    )
    tifffile.imwrite(planar, planes[:2], photometric="minisblack", planarconfig="separate")
    for path, count in ((contiguous, 5), (planar, 2)):
        with pytest.raises(
            ImageReadError, match=rf"{path.name}: has {count} channels \(grey samples"
        ):
            read_image(path)
        for c in range(count):
            np.testing.assert_array_equal(read_image(path, channel=c), planes[c][..., None])
    grey_alpha = tmp_path / "grey_alpha.tif"
    alpha = np.full((24, 32), 255, np.uint8)
    tifffile.imwrite(
        grey_alpha,
        np.dstack([planes[0].astype(np.uint8), alpha]),
        photometric="minisblack",
        extrasamples=["unassalpha"],
    )
    np.testing.assert_array_equal(read_image(grey_alpha), planes[0].astype(np.uint8)[..., None])
    rgb = np.random.default_rng(0).integers(0, 256, (24, 32, 3)).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    np.testing.assert_array_equal(read_image(tmp_path / "photo.png"), rgb)
    np.testing.assert_array_equal(read_image(tmp_path / "photo.png", channel=2), rgb[..., 2:])


def test_segment_takes_the_channel_asked_for_and_names_the_file_otherwise(tmp_path, capsys):
    """``segment --channel`` on a two-channel ImageJ hyperstack segments that channel, as the
    same plane saved alone is segmented; without it the file fails with the reason and the
    batch goes on."""
    planes = hyperstack(1, 2)[0]  # (2, H, W): the squares sit apart in the two channels
    planes = (planes // 16).astype(np.uint8)
    stack, alone = tmp_path / "in" / "two.tif", tmp_path / "in" / "alone.tif"
    stack.parent.mkdir()
    tifffile.imwrite(stack, planes, imagej=True, metadata={"axes": "CYX"})
    tifffile.imwrite(alone, planes[1], photometric="minisblack")
    seg = tiny_seg(BrightIsForeground())
    out = tmp_path / "out"
    segment_files(seg, [stack], out, PredictOptions(channel=1, object_class=1), progress=False)
    segment_files(seg, [alone], out, PredictOptions(object_class=1), progress=False)
    labels = np.asarray(Image.open(out / "instances" / "two.png"))
    np.testing.assert_array_equal(labels, np.asarray(Image.open(out / "instances" / "alone.png")))
    assert labels.max() == 1 and labels[2:10, 7:15].all()  # channel 1's square
    result = segment_files(
        seg, [stack], tmp_path / "out2", PredictOptions(object_class=1), progress=False
    )
    assert [reason for _, reason in result.failures] == [
        f"{stack}: has 2 channels (a page each, axes CYX), not colours: choose the one to "
        "segment with --channel N (0 to 1; predict, segment and evaluate), or save it as an image "
        "of its own"
    ]


def test_readme_channel_command_segments_the_nuclear_stain(tmp_path, monkeypatch, capsys):
    """README's ``pixelwise segment nuclei cells.tif --channel 0`` on a two-channel stack
    (bright discs in channel 0, a bright band in channel 1) finds the discs, as in channel 0
    saved alone."""
    yy, xx = np.mgrid[:96, :96]
    nuclei = np.full((96, 96), 20, np.uint8)
    for y, x in ((25, 25), (30, 70), (70, 45)):
        nuclei[(yy - y) ** 2 + (xx - x) ** 2 < 81] = 200
    band = np.where(np.abs(yy - xx) < 10, 200, 20).astype(np.uint8)
    monkeypatch.chdir(tmp_path)
    tifffile.imwrite("cells.tif", np.stack([nuclei, band]), imagej=True, metadata={"axes": "CYX"})
    tifffile.imwrite("alone.tif", nuclei, photometric="minisblack")
    assert main(["segment", "nuclei", "cells.tif", "--channel", "0", "--no-progress"]) == 0
    assert main(["segment", "nuclei", "alone.tif", "--no-progress"]) == 0
    assert "objects per image: cells: 3" in capsys.readouterr().out
    found = sorted(tmp_path.glob("*/instances/cells.png"))
    assert len(found) == 1
    np.testing.assert_array_equal(
        np.asarray(Image.open(found[0])), np.asarray(Image.open(found[0].parent / "alone.png"))
    )


def test_a_channel_a_grey_image_does_not_have_is_refused(tmp_path):
    """``--channel 0`` reads a grey image as it is; ``--channel 1`` of it names the file and
    the one channel it has."""
    grey = (hyperstack(1, 1)[0, 0] // 16).astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    tifffile.imwrite(tmp_path / "grey.tif", grey, photometric="minisblack")
    for name in ("grey.png", "grey.tif"):
        np.testing.assert_array_equal(read_image(tmp_path / name, channel=0), grey[..., None])
        with pytest.raises(
            ImageReadError, match=f"{name}: --channel 1 asked for, but the image has 1 channel$"
        ):
            read_image(tmp_path / name, channel=1)


def test_evaluate_scores_the_channel_asked_for(tmp_path, capsys):
    """``evaluate --channel 1`` on two-channel images scores what the model makes of channel 1,
    exactly as on the same planes saved alone; without it the images are refused with the
    reason; a folder of predictions has no channels to choose."""
    from pixelwise.checkpoint import save_checkpoint

    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, tiny_seg())
    volume, labels = em_stack()
    reports = {}
    for kind in ("two", "alone"):
        (tmp_path / kind / "images").mkdir(parents=True)
        (tmp_path / kind / "masks").mkdir()
        for i in range(2):
            planes = np.stack([255 - volume[i], volume[i]])
            name = tmp_path / kind / "images" / f"{i}.tif"
            if kind == "two":
                tifffile.imwrite(name, planes, imagej=True, metadata={"axes": "CYX"})
            else:
                tifffile.imwrite(name, planes[1], photometric="minisblack")
            Image.fromarray(labels[i]).save(tmp_path / kind / "masks" / f"{i}.png")
        reports[kind] = tmp_path / f"{kind}.json"
        channel = ["--channel", "1"] if kind == "two" else []
        argv = ["evaluate", str(ckpt), str(tmp_path / kind), "--json", str(reports[kind])]
        assert main(argv + channel + ["--precision", "fp32"]) == 0
    two, alone = (json.loads(reports[k].read_text()) for k in ("two", "alone"))
    assert two["mean_iou"] == alone["mean_iou"] and two["per_image"] == alone["per_image"]
    capsys.readouterr()
    assert main(["evaluate", str(ckpt), str(tmp_path / "two")]) == 2  # a data error, as in train
    said = capsys.readouterr().err  # both images named, the reason once
    assert "2 pairs cannot be used: " in said and "0.tif, " in said
    assert "1.tif: has 2 channels (a page each, axes CYX)" in said
    assert (
        main(["evaluate", str(tmp_path / "two" / "masks"), str(tmp_path / "two"), "--channel", "0"])
        == 2
    )
    assert "--channel is for models; these are predictions" in capsys.readouterr().err


def test_a_model_trained_on_one_channel_reads_that_channel(tmp_path, capsys):
    """``train --channel 1`` on two-channel ImageJ images keeps the channel in the checkpoint:
    predict, evaluate and the Python API read channel 1 of such files without being told, as
    the same plane saved alone; training without the option names a file and the reason."""
    from pixelwise.checkpoint import load_model, read_checkpoint

    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    volume, labels = em_stack()
    for i in range(PAGES):
        noise = rng.integers(0, 256, volume[i].shape).astype(np.uint8)
        planes = np.stack([noise, volume[i]])
        tifffile.imwrite(
            data / "images" / f"{i}.tif", planes, imagej=True, metadata={"axes": "CYX"}
        )
        Image.fromarray(labels[i]).save(data / "masks" / f"{i}.png")
    run = tmp_path / "run"
    short = ["--epochs", "1", "--epoch-size", "2", "--batch-size", "2", "--crop", "32"]
    short += ["--depth", "2", "--base-width", "4", "--no-progress"]
    assert main(["train", str(data), "-o", str(tmp_path / "bad"), *short]) == 2
    said = capsys.readouterr().err  # every file alike: named together, the problem said once
    assert "0.tif, " in said and said.count(": has 2 channels (a page each, axes CYX)") == 1
    assert main(["train", str(data), "-o", str(run), "--channel", "1", *short]) == 0
    assert read_checkpoint(run / "best.pt")["input_channel"] == 1
    alone = tmp_path / "alone"
    alone.mkdir()
    tifffile.imwrite(alone / "0.tif", volume[0], photometric="minisblack")
    out = tmp_path / "out"
    assert (
        main(["predict", str(run / "best.pt"), str(data / "images" / "0.tif"), "-o", str(out)]) == 0
    )
    assert (
        main(["predict", str(run / "best.pt"), str(alone / "0.tif"), "-o", str(tmp_path / "o2")])
        == 0
    )
    np.testing.assert_array_equal(
        read_mask(out / "masks" / "0.png"), read_mask(tmp_path / "o2" / "masks" / "0.png")
    )
    seg = load_model(run / "best.pt")
    np.testing.assert_array_equal(
        predict(seg, data / "images" / "0.tif"), read_mask(out / "masks" / "0.png")
    )
    assert (
        main(["evaluate", str(run / "best.pt"), str(data), "--json", str(tmp_path / "e.json")]) == 0
    )
    assert "Python" not in capsys.readouterr().err
