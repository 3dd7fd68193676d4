"""Images over the pixel limit (whole-slide scans): read region by region from a TIFF, predicted
row of tiles by row, and written as a tiled TIFF mask; what comes out equals what predicting the
image whole gives."""

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from conftest import geojson_raster, tiny_seg
from PIL import Image

from pixelwise.checkpoint import save_checkpoint
from pixelwise.cli import main
from pixelwise.data.calibration import pixel_size_um
from pixelwise.data.encoding import Normalization
from pixelwise.data.io import ImageReadError, read_image
from pixelwise.data.slide import TiffRegions, is_streamed, mirrored, sample_step
from pixelwise.data.write import holds_class_ids, mask_tiles, save_mask_rows


def slide_pixels(h: int, w: int, channels: int = 3, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    """Smooth blobs and noise that differ everywhere (a misplaced tile shows)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    top = np.iinfo(dtype).max
    waves = [
        (np.sin(yy / (9 + 4 * c)) * np.cos(xx / (13 + 3 * c)) + 1) / 2 for c in range(channels)
    ]
    pixels = np.stack(waves, -1) * 0.8 * top + rng.integers(0, top // 5, (h, w, channels))
    return pixels.astype(dtype)


@pytest.mark.parametrize(
    "layout",
    [
        dict(tile=(64, 48), compression="zlib"),  # tiled, partial tiles at the right and bottom
        dict(rowsperstrip=19, compression="zlib"),  # strips
        dict(tile=(64, 64), compression="jpeg"),  # as slide scanners store them
        dict(tile=(32, 32)),  # uncompressed
        dict(rowsperstrip=150),  # uncompressed in one strip, as ImageJ writes: mapped
        dict(tile=(48, 32), planarconfig="separate", compression="zlib"),  # RRR...GGG...BBB...
    ],
)
@pytest.mark.parametrize("channels, dtype", [(3, np.uint8), (1, np.uint16), (4, np.uint8)])
def test_regions_are_the_pixels_read_image_gives(tmp_path, layout, channels, dtype):
    if layout.get("compression") == "jpeg" and (dtype != np.uint8 or channels == 4):
        pytest.skip("JPEG tiles hold 8-bit grey or RGB")
    pixels = slide_pixels(150, 170, channels, dtype)
    path = tmp_path / "slide.tif"
    photometric = "rgb" if channels >= 3 else "minisblack"
    extra = {"extrasamples": ["unassalpha"]} if channels == 4 else {}
    stored = pixels if layout.get("planarconfig") != "separate" else np.moveaxis(pixels, -1, 0)
    if channels == 1 and layout.get("planarconfig"):
        pytest.skip("one sample: nothing to separate")
    tifffile.imwrite(path, stored, photometric=photometric, **layout, **extra)
    whole = read_image(path)
    rng = np.random.default_rng(1)
    with TiffRegions(path) as regions:
        assert regions.shape == (150, 170)
        for _ in range(6):
            y0, x0 = rng.integers(-20, 140), rng.integers(-20, 160)
            rows = mirrored(y0, y0 + rng.integers(1, 90), 150, "reflect")
            cols = mirrored(x0, x0 + rng.integers(1, 90), 170, "reflect")
            np.testing.assert_array_equal(regions.read(rows, cols), whole[rows[:, None], cols])
        np.testing.assert_array_equal(regions.sample(7), whole[::7, ::7])


def test_a_sample_is_read_a_few_tiles_at_a_time(tmp_path, monkeypatch):
    import pixelwise.data.slide as slide

    pixels = slide_pixels(150, 170)
    tifffile.imwrite(tmp_path / "a.tif", pixels, tile=(32, 48), photometric="rgb")
    monkeypatch.setattr(slide, "SAMPLE_WIDTH", 50)  # 48 columns at a time
    with TiffRegions(tmp_path / "a.tif") as regions:
        for step in (1, 5, 49, 60, 200):  # a step wider than the columns read at a time too
            np.testing.assert_array_equal(regions.sample(step), pixels[::step, ::step])


def test_an_uncompressed_strip_is_mapped_not_decoded_whole(tmp_path):
    """ImageJ writes a large image uncompressed as one strip: a region reads its own rows."""
    pixels = slide_pixels(400, 300, 1, np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", pixels[..., 0], imagej=True)
    with TiffRegions(tmp_path / "a.tif") as regions:
        assert regions._mapped is not None and not regions._cache
        np.testing.assert_array_equal(
            regions.read(np.arange(100, 120), np.arange(7, 9)), pixels[100:120, 7:9]
        )
        assert not regions._cache  # nothing decoded


def test_the_full_resolution_page_of_a_slide_with_smaller_levels(tmp_path):
    """An SVS-like file: the slide first, then a thumbnail and a smaller level."""
    pixels = slide_pixels(200, 260)
    path = tmp_path / "slide.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(pixels, tile=(64, 64), photometric="rgb", compression="zlib")
        tif.write(pixels[::8, ::8], photometric="rgb")
        tif.write(pixels[::2, ::2], tile=(64, 64), photometric="rgb")
    assert is_streamed(path, max_pixels=200 * 260 - 1)
    assert not is_streamed(path, max_pixels=200 * 260)
    with TiffRegions(path) as regions:
        assert regions.shape == (200, 260)
        np.testing.assert_array_equal(regions.read(np.arange(200), np.arange(260)), pixels)


def test_what_is_not_streamed(tmp_path):
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, np.zeros((3, 40, 40), np.uint8), photometric="minisblack")  # slices
    png = tmp_path / "big.png"
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(png)
    assert not is_streamed(stack, max_pixels=10)
    assert not is_streamed(png, max_pixels=10)  # read whole, and refused over the limit
    channels = tmp_path / "channels.tif"
    tifffile.imwrite(
        channels, np.zeros((40, 40, 5), np.uint8), photometric="minisblack", planarconfig="contig"
    )
    with pytest.raises(ImageReadError, match="has 5 channels"):
        TiffRegions(channels)
    with TiffRegions(channels, channel=3) as regions:
        assert regions.read(np.arange(4), np.arange(4)).shape == (4, 4, 1)


@pytest.mark.parametrize("size", [1, 2, 5, 10])
@pytest.mark.parametrize("mode", ["reflect", "symmetric"])
def test_mirrored_indices_extend_as_np_pad(size, mode):
    if mode == "reflect" and size == 1:
        pytest.skip("np.pad cannot reflect a single pixel")
    for pad in (0, 1, 3, 9, 23):
        expected = np.pad(np.arange(size), pad, mode=mode)
        np.testing.assert_array_equal(mirrored(-pad, size + pad, size, mode), expected)


def test_sample_step_keeps_at_most_the_pixels_asked():
    for shape, most in [((100, 100), 10_000), ((100, 100), 9_999), ((7, 100_000), 1000)]:
        step = sample_step(shape, most)
        assert -(-shape[0] // step) * -(-shape[1] // step) <= most
        assert step == 1 or -(-shape[0] // (step - 1)) * -(-shape[1] // (step - 1)) > most


def test_a_mask_written_row_by_row_with_a_repeated_last_piece(tmp_path):
    """The last row of tiles is shifted back to end at the image's bottom: its rows win."""
    h, w = 1300, 1100
    mask = (np.arange(h * w).reshape(h, w) % 5).astype(np.uint8)

    def pieces():
        for y in (0, 300, 600, 900, 1000):
            piece = mask[y : y + 300].copy()
            if y == 900:
                piece[100:] = 9  # rows 1000..1199, which the last piece replaces
            yield y, piece

    tiles = list(mask_tiles(pieces(), (h, w), 512))  # row-major, partial at the right and bottom
    assert [t.shape for t in tiles[:3]] == [(512, 512), (512, 512), (512, 76)]
    assert [t.shape for t in tiles[6:]] == [(276, 512), (276, 512), (276, 76)]
    palette = np.zeros((256, 3), np.uint8)
    palette[1] = (255, 0, 0)
    save_mask_rows(tmp_path / "m.tif", pieces(), (h, w), palette)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "m.tif"), mask)
    shown = Image.open(tmp_path / "m.tif")
    assert shown.mode == "P" and shown.getpalette()[3:6] == [255, 0, 0]
    assert [p.name for p in tmp_path.iterdir()] == ["m.tif"]  # no temporary file left
    # an OME-TIFF pyramid: every 2nd, then 4th pixel (nearest: class ids stay class ids) as
    # SubIFDs, until the longer side fits in one 512-pixel tile; one top-level page
    with tifffile.TiffFile(tmp_path / "m.tif") as tif:
        assert tif.is_ome and len(tif.pages) == 1 and holds_class_ids(tmp_path / "m.tif")
        levels = [level.asarray() for level in tif.series[0].levels]
        assert tif.series[0].levels[1].keyframe.colormap is not None  # each level in colour
    assert [level.shape for level in levels] == [(1300, 1100), (650, 550), (325, 275)]
    for level, step in zip(levels, (1, 2, 4)):
        np.testing.assert_array_equal(level, mask[::step, ::step])
    for pyramid in (True, False):  # the pixel size as OME's PhysicalSize, or per centimetre
        save_mask_rows(
            tmp_path / "c.tif", pieces(), (h, w), palette, pyramid=pyramid, pixel_size=0.25
        )
        assert pixel_size_um(tmp_path / "c.tif") == 0.25
        assert holds_class_ids(tmp_path / "c.tif")
    numbers = mask.astype(np.uint32) * 70000
    save_mask_rows(tmp_path / "l.tif", [(0, numbers)], (h, w), None, np.uint32)
    with tifffile.TiffFile(tmp_path / "l.tif") as tif:  # object numbers: a pyramid, not class ids
        np.testing.assert_array_equal(tif.series[0].levels[2].asarray(), numbers[::4, ::4])
    assert not holds_class_ids(tmp_path / "l.tif")


def test_probability_pages_are_a_pyramid_of_class_pages(tmp_path):
    """A slide's probabilities: one 8-bit page per class (``imread`` gives (K, H, W)), each
    with its reduced levels (every 2nd, 4th pixel) as SubIFDs, as the mask's pyramid; the
    pixel size as OME's; each page's pieces asked for only when that page is written."""
    from pixelwise.data.write import save_probability_pages

    h, w = 1300, 1100
    rng = np.random.default_rng(0)
    pages = rng.integers(0, 256, (3, h, w), dtype=np.uint8)
    asked = []

    def page(k):
        def pieces():
            asked.append(k)
            for y in range(0, h, 400):
                yield y, pages[k, y : y + 400]

        return pieces

    save_probability_pages(tmp_path / "p.tif", [page(k) for k in range(3)], (h, w), 0.5)
    assert asked == [0, 1, 2]
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "p.tif"), pages)
    with tifffile.TiffFile(tmp_path / "p.tif") as tif:
        assert tif.is_ome and len(tif.pages) == 3 and all(p.is_tiled for p in tif.pages)
        levels = [level.asarray() for level in tif.series[0].levels]
    for level, step in zip(levels, (1, 2, 4), strict=True):
        np.testing.assert_array_equal(level, pages[:, ::step, ::step])
    assert pixel_size_um(tmp_path / "p.tif") == 0.5
    assert [p.name for p in tmp_path.iterdir()] == ["p.tif"]


def balanced(seg, image: np.ndarray, tile: int, overlap: int, share: float = 0.5):
    """``seg`` with its last convolution's bias moved so that ``share`` of ``image``, predicted
    with these tiles, is foreground (an untrained network says one class nearly everywhere)."""
    from pixelwise.inference import predict_probabilities

    probs = predict_probabilities(seg, image, "fp32", tile=tile, overlap=overlap)
    margin = np.log(probs[..., 1]) - np.log(probs[..., 0])  # the logits' difference
    last = [m for m in seg.network.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last.bias[1] -= float(np.quantile(margin, 1 - share))
    return seg


WAYS = ("whole", "streamed")


def features(path) -> list[str]:
    """The Features of a GeoJSON file, each as JSON text, sorted: what was found, in any order."""
    return sorted(map(json.dumps, json.loads(path.read_text())["features"]))


def run_both_ways(run: list[str], tmp_path, monkeypatch, limit: int) -> None:
    """The command ``run`` into ``tmp_path/whole`` as it is, then into ``tmp_path/streamed``
    with the pixel limit at ``limit`` (under the image's pixels: it is streamed)."""
    assert main(run + ["--out", str(tmp_path / "whole")]) == 0
    monkeypatch.setenv("PIXELWISE_MAX_PIXELS", str(limit))
    assert main(run + ["--out", str(tmp_path / "streamed")]) == 0


@pytest.mark.parametrize("percentiles", [None, [1.0, 99.0]])
def test_predict_streams_a_tiff_over_the_pixel_limit(tmp_path, monkeypatch, capsys, percentiles):
    """Over the limit: OUT/masks/NAME.tif, pixel for pixel the mask of the image predicted whole
    with the same tiles (under the limit), and an overlay; other files of the batch as before.
    ``--geojson``: the same regions, outlines and all, as from the whole mask, though its
    regions were traced in blocks of 64 pixels and joined across them."""
    import pixelwise.batch

    monkeypatch.setattr(pixelwise.batch, "REGION_BLOCK", 64)
    torch.manual_seed(0)  # weights whose output varies over the image (not all ReLUs dead)
    seg = tiny_seg()
    seg.norm = Normalization([0.5] * 3, [0.25] * 3, percentiles=percentiles)
    seg = balanced(seg, slide_pixels(300, 410), 128, 16)
    model = tmp_path / "model.pt"
    save_checkpoint(model, seg)
    images = tmp_path / "images"
    images.mkdir()
    tifffile.imwrite(
        images / "slide.tif",
        slide_pixels(300, 410),
        tile=(64, 64),
        photometric="rgb",
        compression="zlib",
    )
    Image.fromarray(slide_pixels(60, 50, seed=2)).save(images / "small.png")
    run = ["predict", str(model), str(images), "--tile", "128", "--overlap", "16"]
    run += ["--precision", "fp32", "--runtime", "torch", "--geojson"]
    run_both_ways(run, tmp_path, monkeypatch, limit=300 * 400)
    streamed = tifffile.imread(tmp_path / "streamed" / "masks" / "slide.tif")
    whole = np.asarray(Image.open(tmp_path / "whole" / "masks" / "slide.png"))
    np.testing.assert_array_equal(streamed, whole)
    assert 0 < streamed.mean() < 1  # both classes: the comparison means something
    regions = {way: features(tmp_path / way / "geojson" / "slide.geojson") for way in WAYS}
    assert regions["whole"] == regions["streamed"]
    spans = []  # each region's width: one reaches across blocks
    for item in map(json.loads, regions["streamed"]):
        geom = item["geometry"]
        pieces = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
        spans.append(np.ptp(np.concatenate([np.array(p[0]) for p in pieces])[:, 0]))
    assert max(spans) > 2 * 64
    assert Image.open(tmp_path / "streamed" / "overlays" / "slide.png").size == (410, 300)
    small = tmp_path / "streamed" / "masks" / "small.png"
    np.testing.assert_array_equal(
        np.asarray(Image.open(small)),
        np.asarray(Image.open(tmp_path / "whole" / "masks" / "small.png")),
    )
    # a rerun with --skip-existing knows the TIFF mask
    assert main(run + ["--out", str(tmp_path / "streamed"), "--skip-existing"]) == 0
    summary = capsys.readouterr().out.splitlines()[-1]
    assert summary.startswith("wrote 0 masks") and summary.endswith("(2 existing skipped)")


def test_what_a_streamed_prediction_cannot_write_is_one_failure(tmp_path, monkeypatch, capsys):
    model = tmp_path / "model.pt"
    save_checkpoint(model, tiny_seg())
    slide = tmp_path / "slide.tif"
    tifffile.imwrite(slide, slide_pixels(100, 120), tile=(32, 32), photometric="rgb")
    monkeypatch.setenv("PIXELWISE_MAX_PIXELS", "5000")
    out = tmp_path / "out"
    assert main(["predict", str(model), str(slide), "--out", str(out), "--labelme"]) == 1
    err = capsys.readouterr().err
    assert f"{slide}: is over the pixel limit and predicted region by region" in err
    assert "--labelme is written for images under the limit" in err
    assert not (out / "masks").exists() or not any((out / "masks").iterdir())


def test_predict_probabilities_of_a_tiff_over_the_pixel_limit(tmp_path, monkeypatch):
    """``--probabilities`` on a slide: OUT/probabilities/NAME.tif, one tiled 8-bit page per
    class, the pages of the image predicted whole (same tiles), with the slide's pixel size;
    the mask as without the option. Three classes, in a subfolder."""
    from pixelwise.models import create_model

    torch.manual_seed(0)
    seg = tiny_seg()
    kwargs = {"in_channels": 3, "num_classes": 3, "depth": 2, "base_width": 4}
    seg.network, seg.arch_kwargs = create_model("unet", **kwargs), kwargs
    seg.class_names = ["background", "a", "b"]
    last = [m for m in seg.network.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():  # an untrained network's classes differ little: spread them
        last.weight *= 300
    model = tmp_path / "model.pt"
    save_checkpoint(model, seg)
    images = tmp_path / "images" / "sub"
    images.mkdir(parents=True)
    per_cm = {"resolution": (2e4, 2e4), "resolutionunit": "CENTIMETER"}
    pixels = slide_pixels(300, 410)
    tifffile.imwrite(images / "slide.tif", pixels, tile=(64, 64), photometric="rgb", **per_cm)
    run = ["predict", str(model), str(tmp_path / "images"), "--tile", "128", "--overlap", "16"]
    run += ["--precision", "fp32", "--runtime", "torch", "--probabilities"]
    run_both_ways(run, tmp_path, monkeypatch, limit=300 * 400)
    chances = {way: tmp_path / way / "probabilities" / "sub" / "slide.tif" for way in WAYS}
    streamed, whole = (tifffile.imread(chances[way]) for way in WAYS)
    assert streamed.shape == whole.shape == (3, 300, 410) and streamed.dtype == np.uint8
    np.testing.assert_array_equal(streamed, whole)
    assert len(np.unique(whole)) > 20  # probabilities, not a few levels
    assert pixel_size_um(chances["streamed"]) == 0.5
    mask = tifffile.imread(tmp_path / "streamed" / "masks" / "sub" / "slide.tif")
    expected = np.asarray(Image.open(tmp_path / "whole" / "masks" / "sub" / "slide.png"))
    np.testing.assert_array_equal(mask, expected)
    assert len(np.unique(expected)) == 3
    with tifffile.TiffFile(chances["streamed"]) as tif:
        assert all(page.is_tiled for page in tif.pages)
    assert not [p for p in (tmp_path / "streamed").rglob("*") if ".tmp" in p.name]


def test_a_slides_working_file_outlives_the_outputs_written_from_it(tmp_path, monkeypatch):
    """The working file of ids and probabilities is read while the mask is written atomically
    beside it: writing the mask does not sweep it away as a stale temporary file (its name is
    not one), a killed run's leftover goes, and none stays after the run."""
    import pixelwise.data.write as write
    from pixelwise import predict_slide

    pixels = slide_pixels(100, 120, seed=3)
    tifffile.imwrite(tmp_path / "a.tif", pixels, tile=(32, 32), photometric="rgb")
    (tmp_path / ".mask.tif.killed.codes").write_bytes(b"left by a killed run")
    swept = []
    target = write._atomic_target

    def watched(path):  # what each atomic write finds beside its target
        swept.append(sorted(p.name for p in path.parent.glob(f".{path.name}.*.codes")))
        return target(path)

    monkeypatch.setattr(write, "_atomic_target", watched)
    run = {"tile": 64, "overlap": 8, "probabilities": tmp_path / "p.tif"}
    predict_slide(tiny_seg(), tmp_path / "a.tif", tmp_path / "mask.tif", "fp32", **run)
    assert any(swept)  # the working file was there while the outputs were written
    assert all(".mask.tif.killed.codes" not in names for names in swept)
    assert not list(tmp_path.glob(".*"))  # nothing left beside the outputs


def test_predict_slide_in_python_equals_predict(tmp_path):
    """The Python API: any TIFF, whatever the limit, region by region into a TIFF mask (with
    the slide's pixel size, here an OME-TIFF's)."""
    from pixelwise import predict, predict_slide

    pixels = slide_pixels(200, 230, seed=3)
    torch.manual_seed(0)  # weights whose output varies over the image (not all ReLUs dead)
    seg = balanced(tiny_seg(), pixels, 96, 8)
    sizes = {"axes": "YXS", "PhysicalSizeX": 0.3, "PhysicalSizeY": 0.3}
    layout = {"tile": (32, 32), "photometric": "rgb", "ome": True, "metadata": sizes}
    tifffile.imwrite(tmp_path / "a.tif", pixels, **layout)
    predict_slide(seg, tmp_path / "a.tif", tmp_path / "mask.tif", "fp32", tile=96, overlap=8)
    assert pixel_size_um(tmp_path / "mask.tif") == 0.3
    expected = predict(seg, pixels, "fp32", tile=96, overlap=8)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "mask.tif"), expected)
    assert 0 < expected.mean() < 1


@pytest.mark.parametrize("factor", [0.5, 0.37, 1.6])
def test_a_slide_resized_region_by_region_is_the_image_resized_whole(factor):
    """:class:`Resized`'s regions, mirrored borders and all, are those of ``resize_image`` of
    the whole image (the same weights; a rounding of x.5 may differ by one grey level)."""
    from pixelwise.data.slide import Resized
    from pixelwise.data.transforms import resize_image, scaled_size
    from pixelwise.inference import ArrayRegions

    pixels = slide_pixels(90, 130, seed=4)
    resized = Resized(ArrayRegions(pixels), factor)
    whole = resize_image(pixels, scaled_size(pixels.shape, factor))
    assert resized.shape == whole.shape[:2]
    h, w = resized.shape
    for rows, cols in [
        (np.arange(h), np.arange(w)),
        (np.arange(5, h // 2), np.arange(w // 3, w - 2)),
        (mirrored(-6, h // 3, h, "reflect"), mirrored(w // 2, w + 6, w, "symmetric")),
    ]:
        region = resized.read(rows, cols)
        expected = whole[rows[:, None], cols]
        assert region.dtype == np.uint8 and region.shape == expected.shape
        assert np.abs(region.astype(int) - expected).max() <= 1
        assert (region == expected).mean() > 0.999


@pytest.mark.parametrize("small, shape", [((40, 30), (100, 61)), ((100, 61), (40, 30))])
def test_a_mask_enlarged_piece_by_piece_is_resize_mask(small, shape):
    """:func:`enlarged_rows`: pieces of a mask of ``small`` (the last repeating rows of the one
    before, as the last row of tiles does) come out as ``resize_mask`` to ``shape``, in order."""
    from pixelwise.data.slide import enlarged_rows
    from pixelwise.data.transforms import resize_mask

    mask = np.random.default_rng(0).integers(0, 5, small, dtype=np.uint8)
    last = small[0] - 12
    pieces = [(y, mask[y : y + 15]) for y in range(0, small[0] - 15, 15)] + [(last, mask[last:])]
    out = list(enlarged_rows(pieces, small, shape))
    assert [y for y, _ in out] == sorted({y for y, _ in out})
    np.testing.assert_array_equal(
        np.concatenate([band for _, band in out]), resize_mask(mask, shape)
    )


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_a_slide_is_predicted_and_segmented_at_another_scale(tmp_path, factor):
    """A model running at another scale (its own, or ``--scale``) predicts and segments a slide
    region by region, as it does the image whole with the same tiles: the mask at the slide's
    resolution, the same objects."""
    import dataclasses

    from pixelwise import predict, predict_slide, segment, segment_slide

    pixels = slide_pixels(200, 230, seed=3)
    torch.manual_seed(0)
    seg = balanced(tiny_seg(), pixels, 96, 8)
    seg = dataclasses.replace(seg, input_scale=factor)
    tifffile.imwrite(tmp_path / "a.tif", pixels, tile=(32, 32), photometric="rgb")
    predict_slide(seg, tmp_path / "a.tif", tmp_path / "mask.tif", "fp32", tile=96, overlap=8)
    expected = predict(seg, pixels, "fp32", tile=96, overlap=8)
    mask = tifffile.imread(tmp_path / "mask.tif")
    assert mask.shape == (200, 230) and 0.2 < expected.mean() < 0.8
    assert (mask == expected).mean() > 0.999
    run = dict(tile=96, overlap=8, object_class=1)
    count = segment_slide(seg, tmp_path / "a.tif", tmp_path / "labels.tif", "fp32", **run)
    whole = segment(seg, pixels, "fp32", **run)
    labels = tifffile.imread(tmp_path / "labels.tif")
    assert count > 3 and abs(count - int(whole.max())) <= 1
    assert ((labels > 0) == (whole > 0)).mean() > 0.999


def halved(image: np.ndarray) -> np.ndarray:
    """Each 2 x 2 block's mean, as scanners make a pyramid's next level (not the antialiased
    resize that :func:`resize_image` makes: what was read shows)."""
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    blocks = image[:h, :w].reshape(h // 2, 2, w // 2, 2, -1).astype(np.float32)
    return np.round(blocks.mean((1, 3))).astype(image.dtype)


def write_pyramid(path, base: np.ndarray, levels: list[np.ndarray], kind: str) -> None:
    """``base`` and its smaller ``levels`` as slide scanners and viewers store a pyramid:
    ``svs`` (Aperio: the slide, a thumbnail, the levels; ``svs-jpeg`` with JPEG tiles, as
    scanners store them), ``ome`` (levels as SubIFDs) or ``pages`` (levels as pages marked as
    reduced images)."""
    tiled = dict(tile=(32, 32), photometric="rgb", metadata=None)
    with tifffile.TiffWriter(path) as tif:
        if kind.startswith("svs"):
            aperio = f"Aperio Image Library v10.0.50\r\n{base.shape[1]}x{base.shape[0]} (32x32)"
            tiled |= {"description": aperio, "compression": "jpeg" if kind == "svs-jpeg" else None}
            tif.write(base, **tiled)
            tif.write(base[::8, ::8], photometric="rgb", description=aperio, metadata=None)
            for level in levels:
                tif.write(level, **tiled)
        else:
            tif.write(base, subifds=len(levels) if kind == "ome" else None, **tiled)
            for level in levels:
                tif.write(level, subfiletype=1, **tiled)


@pytest.mark.parametrize("kind", ["svs", "ome", "pages"])
def test_a_slide_is_shrunk_from_its_pyramids_nearest_level(tmp_path, kind):
    """At a scale under 1 a slide that stores a pyramid is read from the smallest level at least
    as large as the scaled image: that level's pixels as they are when it is that size, resized
    from it otherwise (close to the full image resized); the full image when no level is large
    enough, or the file's smaller pages are no pyramid of it."""
    from pixelwise.data.slide import Resized, scaled
    from pixelwise.data.transforms import resize_image, scaled_size
    from pixelwise.inference import ArrayRegions

    base = slide_pixels(200, 260, seed=5)
    half = halved(base)
    quarter = halved(half)
    assert np.abs(half.astype(int) - resize_image(base, half.shape[:2])).mean() > 1
    write_pyramid(tmp_path / "p.tif", base, [half, quarter], kind)
    with TiffRegions(tmp_path / "p.tif") as regions:
        assert [p.shape[:2] for p in regions.levels()] == [(100, 130), (50, 65)]
        rows, cols = mirrored(-5, 40, 50, "reflect"), np.arange(3, 60)
        np.testing.assert_array_equal(
            scaled(regions, 0.25).read(rows, cols), quarter[rows][:, cols]
        )
        np.testing.assert_array_equal(scaled(regions, 0.5).read(rows, cols), half[rows][:, cols])
        for factor, level in [(0.37, half), (0.2, quarter)]:
            made = scaled(regions, factor)
            shape = scaled_size(base.shape, factor)
            assert made.shape == shape
            h, w = shape
            expected = Resized(ArrayRegions(level), 0, shape).read(np.arange(h), np.arange(w))
            got = made.read(np.arange(h), np.arange(w))
            np.testing.assert_array_equal(got, expected)
            from_base = resize_image(base, shape).astype(int)
            assert np.abs(got - from_base).mean() < 3  # the level's detail, not another image
        # a sample of every 4th pixel: the quarter level's pixels, one for each; of every
        # 3rd, the half level's nearest (no level holds a grid of 67 x 87 but the half)
        np.testing.assert_array_equal(regions.sample(4), quarter)
        grid = np.arange(0, 200, 3), np.arange(0, 260, 3)
        nearest = [((g + 0.5) / 2).astype(int) for g in grid]
        sample = regions.sample(3)
        np.testing.assert_array_equal(sample, half[nearest[0][:, None], nearest[1]])
        assert np.abs(sample.astype(int) - base[::3, ::3]).mean() < 12  # the same picture
        assert scaled(regions, 0.6).read(np.arange(120), np.arange(156)).shape == (120, 156, 3)
        assert isinstance(scaled(regions, 0.6), Resized)
        assert scaled(regions, 0.6).source is regions  # no level holds 120 x 156 pixels
    with tifffile.TiffWriter(tmp_path / "odd.tif") as tif:  # a smaller page that is no level
        tif.write(base, tile=(32, 32), photometric="rgb", metadata=None)
        tif.write(base[:100, :60].copy(), tile=(32, 32), photometric="rgb", subfiletype=1)
    with TiffRegions(tmp_path / "odd.tif") as regions:
        assert regions.levels() == [] and scaled(regions, 0.5).source is regions


def test_a_pyramid_of_jpeg_tiles_is_read_level_by_level(tmp_path):
    """A scanner's JPEG-compressed levels: each region of a level is what tifffile decodes of
    that level."""
    from pixelwise.data.slide import scaled

    base = slide_pixels(200, 260, seed=6)
    write_pyramid(tmp_path / "s.svs", base, [halved(base), halved(halved(base))], "svs-jpeg")
    with tifffile.TiffFile(tmp_path / "s.svs") as tif:
        stored = [level.asarray() for level in tif.series[0].levels]
    assert [s.shape[:2] for s in stored] == [(200, 260), (100, 130), (50, 65)]
    with TiffRegions(tmp_path / "s.svs") as regions:
        for factor, level in [(0.5, stored[1]), (0.25, stored[2])]:
            made = scaled(regions, factor)
            rows, cols = np.arange(made.shape[0]), np.arange(made.shape[1])
            np.testing.assert_array_equal(made.read(rows, cols), level)


def test_predict_slide_at_a_scale_reads_the_pyramids_level(tmp_path):
    """``predict --scale 0.5`` of a pyramid slide over the pixel limit: the mask, at the slide's
    resolution, is the level's own prediction enlarged (the level is what the network saw)."""
    import dataclasses

    from pixelwise import predict, predict_slide
    from pixelwise.data.transforms import resize_image, resize_mask

    base = slide_pixels(200, 230, seed=3)
    half = halved(base)
    assert np.abs(half.astype(int) - resize_image(base, half.shape[:2])).mean() > 1
    write_pyramid(tmp_path / "a.svs", base, [half], "svs")
    torch.manual_seed(0)
    seg = balanced(tiny_seg(), half, 64, 8)
    expected = resize_mask(predict(seg, half, "fp32", tile=64, overlap=8), (200, 230))
    scaled_seg = dataclasses.replace(seg, input_scale=0.5)
    predict_slide(scaled_seg, tmp_path / "a.svs", tmp_path / "mask.tif", "fp32", tile=64, overlap=8)
    mask = tifffile.imread(tmp_path / "mask.tif")
    assert 0.2 < expected.mean() < 0.8
    np.testing.assert_array_equal(mask, expected)


def test_what_reads_a_tiff_over_the_limit_is_named_where_it_is_refused(tmp_path):
    slide = tmp_path / "slide.tif"
    tifffile.imwrite(slide, slide_pixels(100, 120), tile=(32, 32), photometric="rgb")
    with pytest.raises(ImageReadError) as refused:
        read_image(slide, max_pixels=5000)
    assert "over the limit of 5000" in str(refused.value)
    assert "`pixelwise predict` and `segment` read a TIFF this large region by region" in str(
        refused.value
    )
    png = tmp_path / "big.png"
    Image.fromarray(slide_pixels(100, 120)).save(png)
    with pytest.raises(ImageReadError, match="saved as a tiled TIFF .* read it region by region"):
        read_image(png, max_pixels=5000)


def test_a_damaged_tile_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    model = tmp_path / "model.pt"
    save_checkpoint(model, tiny_seg())
    slide = tmp_path / "slide.tif"
    tifffile.imwrite(
        slide, slide_pixels(100, 120), tile=(32, 32), photometric="rgb", compression="jpeg"
    )
    with tifffile.TiffFile(slide) as tif:
        offset = tif.pages[0].dataoffsets[5]
    data = bytearray(slide.read_bytes())
    data[offset : offset + 16] = bytes(16)  # the JPEG header of tile 5 gone
    slide.write_bytes(bytes(data))
    monkeypatch.setenv("PIXELWISE_MAX_PIXELS", "5000")
    assert main(["predict", str(model), str(slide), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-2] == "1 file(s) failed:"
    assert err[-1].startswith(f"  {slide}: cannot decode TIFF tile 5 (Jpeg8Error: ")
    assert not any((tmp_path / "out").rglob("*.tif*"))  # nothing half-written


def canonical(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered by each object's first pixel in raster order: equal partitions of the
    image into objects give equal arrays, however they were numbered."""
    flat = labels.ravel()
    ids, first = np.unique(flat, return_index=True)
    order = np.argsort(first[ids > 0])
    table = np.zeros(int(ids.max()) + 1, np.int64)
    table[ids[ids > 0][order]] = np.arange(1, len(order) + 1)
    return table[labels]


def test_objects_made_block_by_block_are_the_whole_images(tmp_path):
    """Discs smaller than the margin, many across block edges: the same objects as labelling
    the whole mask at once, each numbered once."""
    from pixelwise.inference import ArrayRegions, label_blocks
    from pixelwise.instances import instances_for

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:300, :350]
    mask = np.zeros((300, 350), np.uint8)
    for _ in range(90):
        cy, cx, r = rng.integers(0, 300), rng.integers(0, 350), rng.integers(3, 11)
        mask[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 1
    seg = tiny_seg()
    whole = instances_for(seg, mask, 1)
    codes = ArrayRegions(mask[..., None])
    count = label_blocks(seg, codes, tmp_path / "labels.tif", 1, 0, block=64, margin=24)
    blocks = tifffile.imread(tmp_path / "labels.tif")
    assert blocks.dtype == np.uint32 and count == whole.max() == blocks.max() > 40
    np.testing.assert_array_equal(canonical(blocks), canonical(whole))
    assert len(np.unique(blocks)) == count + 1


def segment_command(tmp_path, share: float) -> tuple[list[str], object]:
    """``pixelwise segment`` (object class 1, tiles of 128) of a folder holding a 300 x 410 tiled
    TIFF (0.5 µm a pixel, as 20,000 pixels per centimetre), with a tiny model whose foreground
    is ``share`` of it; the command and the folder."""
    torch.manual_seed(0)
    seg = balanced(tiny_seg(), slide_pixels(300, 410), 128, 16, share=share)
    model = tmp_path / "model.pt"
    save_checkpoint(model, seg)
    images = tmp_path / "images"
    images.mkdir()
    calibrated = {"resolution": (2e4, 2e4), "resolutionunit": "CENTIMETER"}
    pixels = slide_pixels(300, 410)
    tifffile.imwrite(images / "slide.tif", pixels, tile=(64, 64), photometric="rgb", **calibrated)
    run = ["segment", str(images), "--checkpoint", str(model), "--object-class", "1"]
    run += ["--tile", "128", "--overlap", "16", "--precision", "fp32", "--runtime", "torch"]
    return run, images


def test_segment_streams_a_tiff_over_the_pixel_limit(tmp_path, monkeypatch, capsys):
    """Under a block (2048 pixels a side) the streamed labels are segment's, numbers and all;
    --coco, and --measure with --channel, are one failure naming the file."""
    run, images = segment_command(tmp_path, share=0.5)
    run_both_ways(run, tmp_path, monkeypatch, limit=300 * 400)
    labels = tifffile.imread(tmp_path / "streamed" / "instances" / "slide.tif")
    whole = np.asarray(Image.open(tmp_path / "whole" / "instances" / "slide.png"))
    np.testing.assert_array_equal(labels, whole)
    assert labels.max() > 5
    assert Image.open(tmp_path / "streamed" / "overlays" / "slide.png").size == (410, 300)
    coco = str(tmp_path / "objects.json")
    assert main(run + ["--out", str(tmp_path / "again"), "--coco", coco]) == 1
    err = capsys.readouterr().err
    assert f"{images / 'slide.tif'}: is over the pixel limit and segmented region by region" in err
    assert "--coco, --labelme and --measure with --channel are written for images under it" in err
    measure = ["--measure", str(tmp_path / "objects.csv"), "--channel", "0"]  # channel 0: red
    assert main(run + ["--out", str(tmp_path / "again"), *measure]) == 1
    assert "--measure with --channel are written for images" in capsys.readouterr().err


def test_segment_scale_auto_resizes_a_slide_by_its_pixel_size(tmp_path, monkeypatch):
    """A model that learned at 1 µm a pixel, a slide recorded at 0.5: ``--scale auto`` shows
    the network the slide at half size, region by region as whole; the objects come back at
    the slide's resolution, those of the slide read whole."""
    import dataclasses

    from pixelwise.checkpoint import load_model

    run, _ = segment_command(tmp_path, share=0.5)
    model = Path(run[run.index("--checkpoint") + 1])
    save_checkpoint(model, dataclasses.replace(load_model(model), pixel_size=1.0))
    run_both_ways([*run, "--scale", "auto"], tmp_path, monkeypatch, limit=300 * 400)
    labels = tifffile.imread(tmp_path / "streamed" / "instances" / "slide.tif")
    whole = np.asarray(Image.open(tmp_path / "whole" / "instances" / "slide.png"))
    assert labels.shape == whole.shape == (300, 410) and whole.max() > 5
    assert ((labels > 0) == (whole > 0)).mean() > 0.999
    assert abs(int(labels.max()) - int(whole.max())) <= 1
    monkeypatch.delenv("PIXELWISE_MAX_PIXELS")
    assert main([*run, "--out", str(tmp_path / "full")]) == 0  # at its own size: other objects
    assert not np.array_equal(
        np.asarray(Image.open(tmp_path / "full" / "instances" / "slide.png")), whole
    )


def measured_both_ways(run: list[str], tmp_path, monkeypatch) -> tuple[dict, dict]:
    """The segment command ``run`` with --measure into ``tmp_path/whole`` as it is, then into
    ``tmp_path/streamed`` over the pixel limit, its objects (and cells) made in blocks of 100
    pixels (so objects come from several); each CSV's rows by box corner and area, the same
    objects in both."""
    import csv

    import pixelwise.inference as inference

    for name in ("whole", "streamed"):
        if name == "streamed":
            for blocks in (inference.label_blocks, inference.expand_slide):
                monkeypatch.setattr(blocks, "__defaults__", (100, 64, None))
            monkeypatch.setenv("PIXELWISE_MAX_PIXELS", str(300 * 400))
        out = ["--out", str(tmp_path / name), "--measure", str(tmp_path / f"{name}.csv")]
        assert main(run + out) == 0
    found = []
    for name in ("whole", "streamed"):
        with open(tmp_path / f"{name}.csv") as f:
            found.append({(r["bbox_x0"], r["bbox_y0"], r["area"]): r for r in csv.DictReader(f)})
    assert len(found[0]) > 5 and set(found[1]) == set(found[0])
    return found[0], found[1]


def test_segment_measures_the_objects_of_a_tiff_over_the_limit(tmp_path, monkeypatch):
    """Rows as segment --measure writes them for the image read whole: the same objects, areas,
    centroids, boxes and intensities (small blocks, so objects come from several; objects
    smaller than the margin: a tenth of the image foreground); --geojson's polygons are the
    objects of the label TIFF, by number, in the slide's coordinates."""
    run, images = segment_command(tmp_path, share=0.1)
    run += ["--geojson", "--pixel-size", "0.5"]
    whole, streamed = measured_both_ways(run, tmp_path, monkeypatch)
    columns = ("centroid_x", "centroid_y", "bbox_x1", "bbox_y1", "mean_red", "perimeter")
    for key, row in whole.items():
        other = streamed[key]
        for column in (*columns, "centroid_x_um", "centroid_y_um", "area_um2", "perimeter_um"):
            assert other[column] == row[column], (key, column)
        assert float(row["centroid_y_um"]) == pytest.approx(float(row["centroid_y"]) / 2, abs=1e-3)
    labels = tifffile.imread(tmp_path / "streamed" / "instances" / "slide.tif")
    for row in streamed.values():  # each row's object number is its label in the TIFF
        x0, y0, x1, y1 = (int(row[k]) for k in ("bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"))
        assert (labels[y0:y1, x0:x1] == int(row["object"])).sum() == int(row["area"])
    features = json.loads((tmp_path / "streamed" / "geojson" / "slide.geojson").read_text())
    drawn = np.zeros_like(labels)
    by_number = {row["object"]: row for row in streamed.values()}
    for item in features["features"]:
        measured = item["properties"]["measurements"]
        drawn[geojson_raster(item["geometry"], labels.shape)] = measured["object"]
        row = by_number[str(measured["object"])]  # the CSV's row as the object's measurements
        assert measured["area"] == int(row["area"])
        assert measured["centroid_x"] == float(row["centroid_x"])
    np.testing.assert_array_equal(drawn, labels)
    assert len(features["features"]) == len(streamed)


def test_segment_expand_makes_the_cells_of_a_tiff_over_the_limit(tmp_path, monkeypatch):
    """--expand on a slide: OUT/cells/NAME.tif is expand_cells of the streamed label TIFF
    (worked out in small blocks), each object measured with its cell (and --stains) and graded
    (--positive) as for the image read whole, and --geojson's QuPath cells drawn back are the
    cells (their nuclei the objects), classified by their grades."""
    from pixelwise.instances import expand_cells

    run, images = segment_command(tmp_path, share=0.1)
    run += ["--expand", "3", "--geojson", "--stains", "--stain-vectors", "dab=0.3 0.6 0.74"]
    run += ["--positive", "cell_mean_dab:0.1,0.2,0.3"]
    whole, streamed = measured_both_ways(run, tmp_path, monkeypatch)
    labels = tifffile.imread(tmp_path / "streamed" / "instances" / "slide.tif")
    cells = tifffile.imread(tmp_path / "streamed" / "cells" / "slide.tif")
    np.testing.assert_array_equal(cells, expand_cells(labels, 3))
    assert (cells > 0).sum() > (labels > 0).sum()
    for key, row in whole.items():
        for column in ("cell_area", "cell_mean_red", "cytoplasm_mean_dab", "grade"):
            assert streamed[key][column] == row[column], (key, column)
        assert streamed[key]["cell_area_um2"] == row["cell_area_um2"]  # the file's 0.5 µm
        assert float(row["cell_area_um2"]) == pytest.approx(int(row["cell_area"]) / 4, abs=1e-4)
    for output in ("instances", "cells"):  # the slide's pixel size, for viewers
        assert pixel_size_um(tmp_path / "streamed" / output / "slide.tif") == 0.5
    assert {row["grade"] for row in whole.values()} == {"Negative", "1+", "2+", "3+"}
    grades = [(tmp_path / name / "grades.csv").read_text() for name in ("whole", "streamed")]
    assert grades[0] == grades[1] and "slide.tif" in grades[0]
    features = json.loads((tmp_path / "streamed" / "geojson" / "slide.geojson").read_text())
    by_number = {row["object"]: row for row in streamed.values()}
    drawn, nuclei = np.zeros_like(labels), np.zeros_like(labels)
    for item in features["features"]:
        number = item["properties"]["measurements"]["object"]
        assert item["properties"]["classification"]["name"] == by_number[str(number)]["grade"]
        drawn[geojson_raster(item["geometry"], labels.shape)] = number
        nuclei[geojson_raster(item["nucleusGeometry"], labels.shape)] = number
    np.testing.assert_array_equal(drawn, cells)
    np.testing.assert_array_equal(nuclei, labels)


def test_a_blocks_own_objects_come_in_runs_of_consecutive_numbers():
    """own_runs: the objects whose box starts in the block, by runs of consecutive numbers
    (another block's object between them splits a run), each renumbered from 1 with its cell;
    a region without background pixels is no special case."""
    from pixelwise.inference import own_runs

    labels = np.array([[7, 7, 4, 4], [3, 9, 4, 5], [3, 9, 6, 5]], np.uint32)
    cells = labels.copy()
    cells[0, 0] = 3  # a cell reaching where its object is not (by hand, not grown)
    runs = list(own_runs(labels, cells, (1, 3), (0, 4)))  # 4 and 7 start in row 0: not owned
    assert [first for first, _, _ in runs] == [3, 5, 9]
    for first, mine, theirs in runs:
        for k in range(1, int(mine.max()) + 1):
            np.testing.assert_array_equal(mine == k, labels == first + k - 1)
            np.testing.assert_array_equal(theirs == k, cells == first + k - 1)
    assert runs[1][1].max() == 2  # 5 and 6 together


def test_a_folder_of_aperio_slides_is_found_and_streamed(tmp_path, monkeypatch):
    """An SVS file is a TIFF named .svs: the slide, a thumbnail, a smaller level."""
    pixels = slide_pixels(300, 360)
    slides = tmp_path / "slides"
    slides.mkdir()
    aperio = "Aperio Image Library v10.0.50\r\n360x300 [0,0 360x300] (64x64) JPEG/RGB Q=70"
    with tifffile.TiffWriter(slides / "case1.svs") as tif:
        tif.write(pixels, tile=(64, 64), photometric="rgb", compression="jpeg", description=aperio)
        tif.write(pixels[::8, ::8], photometric="rgb", description=aperio + " -> 45x37")
        tif.write(
            pixels[::4, ::4], tile=(64, 64), photometric="rgb", description=aperio + " -> 90x75"
        )
    model = tmp_path / "model.pt"
    save_checkpoint(model, tiny_seg())
    monkeypatch.setenv("PIXELWISE_MAX_PIXELS", "10000")
    assert main(["predict", str(model), str(slides), "--out", str(tmp_path / "out")]) == 0
    assert tifffile.imread(tmp_path / "out" / "masks" / "case1.tif").shape == (300, 360)


def test_windows_merge_overlapping_boxes_until_none_overlaps():
    """Random boxes: the windows overlap none another, hold every box, and each is the
    smallest box around the boxes it holds; a chain (a-b, b-c) and a box that only the merged
    one reaches are merged too; boxes that touch without overlapping are not."""
    from pixelwise.data.slide import windows

    assert windows([(0, 10, 0, 10), (5, 15, 5, 15), (12, 20, 12, 20)]) == (
        [(0, 20, 0, 20)],
        [0] * 3,
    )
    assert windows([(0, 10, 0, 4), (0, 10, 8, 12), (8, 20, 3, 9)])[0] == [(0, 20, 0, 12)]
    assert windows([(8, 9, 8, 9), (0, 10, 0, 5), (0, 10, 7, 10), (4, 6, 4, 8)]) == (
        [(0, 10, 0, 10)],
        [0] * 4,
    )  # the last two join the first two, after which the window holds the box before them
    assert windows([(0, 10, 0, 10), (0, 10, 10, 20)]) == ([(0, 10, 0, 10), (0, 10, 10, 20)], [0, 1])
    rng = np.random.default_rng(0)
    for _ in range(50):
        corners = rng.integers(0, 100, (12, 2))
        sizes = rng.integers(1, 25, (12, 2))
        boxes = [(y, y + h, x, x + w) for (y, x), (h, w) in zip(corners, sizes)]
        found, owner = windows(boxes)

        def overlap(a, b):
            return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]

        def inside(b, w):
            return w[0] <= b[0] and b[1] <= w[1] and w[2] <= b[2] and b[3] <= w[3]

        assert not any(overlap(a, b) for i, a in enumerate(found) for b in found[i + 1 :])
        for w in found:
            held = np.array([b for b in boxes if inside(b, w)])
            assert (held[:, 0].min(), held[:, 1].max(), held[:, 2].min(), held[:, 3].max()) == w
        assert all(sum(inside(b, w) for w in found) == 1 for b in boxes)
        assert all(inside(b, found[k]) for b, k in zip(boxes, owner))


def test_a_random_split_keeps_the_windows_of_a_slide_together():
    """--val-fraction over windows of several slides validates on whole slides (neighbouring
    windows are the same tissue); windows of one slide alone are split among themselves; images
    that are not windows split as before (the same seeded draw)."""
    from types import SimpleNamespace

    from pixelwise.data.layouts import split_pool

    def window(slide: str, k: int):
        return SimpleNamespace(
            name=f"{slide}@x{k}y0", image=Path(f"{slide}.tif"), window=(0, 1, k, k + 1)
        )

    pool = [window(s, k) for s in ("a", "b", "c", "d") for k in range(5)]
    for seed in range(5):
        train, val = split_pool(pool, None, 0.25, seed, "data")
        assert len({i.image for i in val}) == 1 and len(val) == 5
        assert not {i.image for i in val} & {i.image for i in train}
    one = [window("a", k) for k in range(5)]
    train, val = split_pool(one, None, 0.4, 0, "data")
    assert (len(train), len(val)) == (3, 2)
    plain = [SimpleNamespace(name=str(k), image=Path(f"{k}.png")) for k in range(10)]
    train, val = split_pool(plain, None, 0.3, 7, "data")
    order = np.random.default_rng(7).permutation(10)[:3]
    assert sorted(int(i.name) for i in val) == sorted(order.tolist())


def test_val_stems_name_a_slide_whose_name_has_an_at_sign():
    """--val-stems names a slide by its file's stem, also when that holds the "@" that window
    names use (a window of "run@2.tif" is "run@2@x0y0")."""
    from types import SimpleNamespace

    from pixelwise.data.layouts import split_pool

    pool = [
        SimpleNamespace(name=f"{s}@x{k}y0", image=Path(f"{s}.tif"), window=(0, 1, k, k + 1))
        for s in ("run@2", "run") for k in range(2)
    ]  # fmt: skip
    train, val = split_pool(pool, ["run@2"], 0.2, 0, "data")
    assert [i.name for i in val] == ["run@2@x0y0", "run@2@x1y0"]
    assert [i.name for i in train] == ["run@x0y0", "run@x1y0"]


def glass_and_tissue(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A brightfield slide: noisy bright glass (and a speck of dust) around a pink-and-purple
    disc of tissue (:func:`slide_pixels` tinted); the slide and where the tissue is."""
    rng = np.random.default_rng(seed)
    slide = np.clip(rng.normal((236, 235, 239), 2.5, (h, w, 3)), 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:h, :w]
    tissue = (yy - h * 0.4) ** 2 + (xx - w * 0.35) ** 2 <= (min(h, w) * 0.3) ** 2
    stained = slide_pixels(h, w, seed=seed) // 2 + np.array([110, 40, 100], np.uint8)
    slide[tissue] = stained[tissue]
    slide[h - 20 : h - 16, 10:14] = 80  # dust on the glass
    return slide, tissue


def test_tissue_is_found_and_the_glass_read_flat():
    """tissue_mask: the tissue found, grown by the margin, the glass around it and the dust
    not; TissueOnly reads tissue as it is, glass as one colour (the glass's), and a region with
    both mixed; a grey image is refused in one line."""
    from scipy import ndimage

    from pixelwise.inference import ArrayRegions
    from pixelwise.tissue import TISSUE_MARGIN, TissueOnly, tissue_mask

    slide, tissue = glass_and_tissue(400, 500)
    mask = tissue_mask(slide)
    grown = ndimage.binary_dilation(tissue, np.ones((2 * TISSUE_MARGIN + 1,) * 2, bool))
    assert mask[grown].all() and not mask[370:, :40].any()  # the dust is no tissue
    assert mask.mean() < grown.mean() + 0.01
    with pytest.raises(ValueError, match="brightfield RGB slides; this one has 1 channel"):
        tissue_mask(slide[..., 0])
    source = TissueOnly.of(ArrayRegions(slide))
    assert source.step == 1 and source.share == pytest.approx(mask.mean())
    assert np.abs(source.fill.astype(int) - (236, 235, 239)).max() <= 1
    rows, cols = np.arange(100, 200), np.arange(120, 220)  # inside the disc
    np.testing.assert_array_equal(source.read(rows, cols), slide[100:200, 120:220])
    glass = source.read(np.arange(0, 40), np.arange(440, 500))
    assert (glass == source.fill).all()
    both = source.read(np.arange(400), np.arange(500))
    np.testing.assert_array_equal(both[mask], slide[mask])
    assert (both[~mask] == source.fill).all()
    np.testing.assert_array_equal(source.sample(4), slide[::4, ::4])  # statistics unchanged


def test_tissue_only_predicts_the_glass_tiles_once(tmp_path, monkeypatch, capsys):
    """predict --tissue-only on a slide over the pixel limit: the tiles over glass alone go
    through the network once (windows counted), the tissue's mask is the same as without it
    away from the glass (beyond the tile overlap), each tile of glass alone the same, and the
    share of tissue found is noted; a grey slide fails in one line."""
    import pixelwise.inference as inference

    slide, tissue = glass_and_tissue(640, 800)
    tifffile.imwrite(tmp_path / "slide.tif", slide, tile=(64, 64), photometric="rgb")
    model = tmp_path / "model.pt"
    save_checkpoint(model, balanced(tiny_seg(), slide, 128, 16, share=0.3))
    windows = []
    real = inference.predict_probs

    def counted(network, x, *args, **kwargs):
        windows.append(len(x))
        return real(network, x, *args, **kwargs)

    monkeypatch.setattr(inference, "predict_probs", counted)
    monkeypatch.setenv("PIXELWISE_MAX_PIXELS", str(640 * 800 - 1))
    masks, counts = {}, {}
    for name, extra in (("all", []), ("tissue", ["--tissue-only"])):
        windows.clear()
        run = ["predict", str(model), str(tmp_path / "slide.tif"), "--out", str(tmp_path / name)]
        run += ["--tile", "128", "--overlap", "16", "--precision", "fp32", "--runtime", "torch"]
        assert main(run + ["--no-progress", *extra]) == 0
        masks[name] = tifffile.imread(tmp_path / name / "masks" / "slide.tif")
        counts[name] = sum(windows)
    assert "slide.tif: tissue in 2" in capsys.readouterr().err  # about 28 % of the slide
    every = len(inference.tile_starts(640, 96)) * len(inference.tile_starts(800, 96))
    assert counts["all"] == every and counts["tissue"] < 0.6 * every, counts
    from scipy import ndimage

    deep = ndimage.distance_transform_edt(tissue) > 16 + 2 + 2  # overlap, margin, grid
    np.testing.assert_array_equal(masks["tissue"][deep], masks["all"][deep])
    glass = masks["tissue"][:, 672:768]  # tiles of glass alone: one prediction, repeated
    np.testing.assert_array_equal(glass[:96], glass[96:192])
    assert len(np.unique(masks["all"][deep])) == 2  # a mask with both classes to compare
    from pixelwise import load_model

    out = tmp_path / "python.tif"  # the same from Python
    inference.predict_slide(
        load_model(model), tmp_path / "slide.tif", out, "fp32", False, 128, 16, tissue_only=True
    )
    np.testing.assert_array_equal(tifffile.imread(out), masks["tissue"])
    tifffile.imwrite(tmp_path / "grey.tif", slide[..., 0], tile=(64, 64))
    run = ["predict", str(tmp_path / "model.pt"), str(tmp_path / "grey.tif"), "--tissue-only"]
    assert main(run + ["--out", str(tmp_path / "grey"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "grey.tif: --tissue-only finds tissue on brightfield RGB slides; this one has 1" in err
    monkeypatch.setenv("PIXELWISE_MAX_PIXELS", str(640 * 800))  # under the limit: read whole
    run = ["predict", str(tmp_path / "model.pt"), str(tmp_path / "slide.tif"), "--tissue-only"]
    assert main(run + ["--out", str(tmp_path / "whole"), "--no-progress"]) == 0
    assert "1 image(s) under it were read whole and predicted everywhere" in capsys.readouterr().err


def test_a_written_palette_mask_is_read_back_as_its_class_ids(tmp_path):
    """A slide's mask, written as a palette TIFF, is read back region by region as its class
    ids for the overlay's preview (``shown=False``), while an image's regions are read as shown:
    the palette's colours, as Pillow shows the file."""
    from pixelwise.batch import preview_of

    ids = np.random.default_rng(0).integers(0, 3, (40, 56), dtype=np.uint8)
    palette = np.zeros((256, 3), np.uint8)  # as a model's mask palette: 256 colours
    palette[:3] = [[0, 0, 0], [250, 20, 10], [30, 200, 90]]
    save_mask_rows(tmp_path / "m.tif", [(0, ids)], ids.shape, palette)
    np.testing.assert_array_equal(preview_of(tmp_path / "m.tif", 2), ids[::2, ::2])
    with TiffRegions(tmp_path / "m.tif") as regions:
        shown = regions.read(np.arange(40), np.arange(56))
    np.testing.assert_array_equal(shown, palette[ids])


def test_labels_beyond_16_bits_are_read_back_as_stored(tmp_path):
    """A slide's label image of more than 65535 objects (uint32) is read back region by region as
    its labels, not as floats the way an image of such integers is read."""
    from pixelwise.batch import preview_of

    labels = np.arange(70000, 70000 + 40 * 56, dtype=np.uint32).reshape(40, 56)
    save_mask_rows(tmp_path / "labels.tif", [(0, labels)], labels.shape, dtype=np.uint32)
    preview = preview_of(tmp_path / "labels.tif", 2)
    assert preview.dtype == np.uint32
    np.testing.assert_array_equal(preview, labels[::2, ::2])
