"""Image I/O: every supported format reads, every bad file gives one clear error naming it."""

import io
import sys

import numpy as np
import pytest
import tifffile
from PIL import Image

from pixelwise.data.io import (
    ImageReadError,
    as_image,
    count_pages,
    image_and_transparency,
    list_images,
    read_image,
    read_image_bytes,
    read_mask,
    transparency,
)
from pixelwise.data.write import png_bytes, save_mask, save_png


def test_grey_png(tmp_path):
    arr = np.arange(64, dtype=np.uint8).reshape(8, 8)
    Image.fromarray(arr, mode="L").save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (8, 8, 1) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 0], arr)


def test_rgba_png_drops_alpha(tmp_path):
    arr = np.random.default_rng(0).integers(0, 255, (5, 7, 4), dtype=np.uint8)
    Image.fromarray(arr, mode="RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), arr[..., :3])


def test_transparency_of_images_and_arrays(tmp_path):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    rgba[0, 0, 3] = 0
    for image in (Image.fromarray(rgba, mode="RGBA"), rgba, np.moveaxis(rgba, -1, 0)):
        np.testing.assert_array_equal(transparency(image), rgba[..., 3])
    grey_alpha = rgba[..., 2:]
    np.testing.assert_array_equal(transparency(Image.fromarray(grey_alpha, "LA")), rgba[..., 3])
    np.testing.assert_array_equal(transparency(grey_alpha), rgba[..., 3])
    np.testing.assert_array_equal(transparency(rgba.astype(np.uint16) * 257), rgba[..., 3])
    np.testing.assert_array_equal(transparency(rgba / 255.0), rgba[..., 3])
    # a palette image with a transparent colour (GIF, palette PNG)
    pal = Image.fromarray(np.array([[0, 1], [1, 0]], dtype=np.uint8), mode="P")
    pal.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    pal.info["transparency"] = 0
    np.testing.assert_array_equal(transparency(pal), [[0, 255], [255, 0]])
    opaque = rgba.copy()
    opaque[..., 3] = 255
    for image in (rgba[..., :3], Image.fromarray(rgba[..., :3]), opaque, rgba[..., :1]):
        assert transparency(image) is None
    # a file: decoded once, EXIF orientation applied to the alpha as to the pixels
    img = Image.fromarray(rgba, mode="RGBA")
    exif = img.getexif()
    exif[0x0112] = 6  # rotated 90 degrees clockwise
    img.save(tmp_path / "r.png", exif=exif)
    pixels, alpha = image_and_transparency(tmp_path / "r.png")
    np.testing.assert_array_equal(pixels, np.rot90(rgba[..., :3], -1))
    np.testing.assert_array_equal(alpha, np.rot90(rgba[..., 3], -1))
    tifffile.imwrite(tmp_path / "t.tif", rgba)
    pixels, alpha = image_and_transparency(tmp_path / "t.tif")
    assert pixels.shape == (5, 7, 3)  # a TIFF's alpha too (it used to be dropped)
    np.testing.assert_array_equal(alpha, rgba[..., 3])
    # a float file outside [0, 1] is refused as as_image refuses it (here a PFM, not a TIFF)
    Image.fromarray(np.full((4, 5), 7.5, np.float32), "F").save(tmp_path / "f.pfm")
    for read in (as_image, image_and_transparency):
        with pytest.raises(ValueError, match=r"float images must hold values in \[0, 1\]"):
            read(tmp_path / "f.pfm")


def test_palette_png_image_expands_to_rgb(tmp_path):
    img = Image.fromarray(np.array([[0, 1], [1, 0]], dtype=np.uint8), mode="P")
    img.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    img.save(tmp_path / "p.png")
    out = read_image(tmp_path / "p.png")
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out[0, 1], [200, 100, 50])


def test_jpeg(tmp_path):
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(tmp_path / "x.jpg", quality=95)
    out = read_image(tmp_path / "x.jpg")
    assert out.shape == (16, 16, 3) and abs(int(out.mean()) - 128) <= 1


def test_exif_orientation_applied(tmp_path):
    arr = np.zeros((4, 8, 3), np.uint8)  # wide image stored, EXIF says rotate 90
    arr[0, 0] = 255
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(tmp_path / "r.jpg", exif=exif, quality=100)
    out = read_image(tmp_path / "r.jpg")
    assert out.shape == (8, 4, 3)


def test_photo_read_without_whole_copies(tmp_path, monkeypatch):
    """A colour photo with nothing to turn is not copied whole on its way to an array (by
    exif_transpose, by converting RGB to RGB), nor is a cut-out's for its alpha: each copy is
    192 MB of a 48-megapixel photo. Turned photos are still turned (test above)."""
    arr = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "p.png")
    exif = Image.Exif()
    exif[0x0112] = 1  # upright, said so
    Image.fromarray(arr).save(tmp_path / "p.jpg", exif=exif, quality=95)
    expected = {"p.png": arr, "p.jpg": np.asarray(Image.open(tmp_path / "p.jpg"))}
    alpha = np.full((24, 32), 255, np.uint8)
    alpha[:4] = 0
    Image.fromarray(np.dstack([arr, alpha])).save(tmp_path / "cut.png")

    def no_copy(self):
        raise AssertionError("the whole image copied")

    monkeypatch.setattr(Image.Image, "copy", no_copy)
    for name, pixels in expected.items():
        np.testing.assert_array_equal(read_image(tmp_path / name), pixels)
    pixels, transparent = image_and_transparency(tmp_path / "cut.png")  # a cut-out cut again
    np.testing.assert_array_equal(pixels, arr)
    np.testing.assert_array_equal(transparent, alpha)


def test_16bit_png_and_tiff(tmp_path):
    arr = np.array([[0, 1000], [40000, 65535]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "d.png")
    tifffile.imwrite(tmp_path / "d.tif", arr)
    for name in ("d.png", "d.tif"):
        out = read_image(tmp_path / name)
        assert out.dtype == np.uint16 and out.shape == (2, 2, 1)
        np.testing.assert_array_equal(out[..., 0], arr)


def test_netpbm_targa_and_jpeg2000_files_are_images(tmp_path):
    """The formats of older datasets are found in folders and read as Pillow reads them; a
    16-bit PGM keeps every bit."""
    grey = np.array([[0, 300], [40000, 65535]], np.uint16)
    head = b"P5 2 2 65535\n"
    (tmp_path / "g.pgm").write_bytes(head + grey.astype(">u2").tobytes())
    colour = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3) * 10
    for suffix in ("ppm", "tga", "jp2"):
        Image.fromarray(colour).save(tmp_path / f"c{suffix}.{suffix}")
    (tmp_path / "notes.txt").write_text("not an image")
    found = [p.name for p in list_images([tmp_path])]
    assert found == ["cjp2.jp2", "cppm.ppm", "ctga.tga", "g.pgm"]
    out = read_image(tmp_path / "g.pgm")
    assert out.dtype == np.uint16 and out.shape == (2, 2, 1)
    np.testing.assert_array_equal(out[..., 0], grey)
    for suffix in ("ppm", "tga"):  # lossless
        np.testing.assert_array_equal(read_image(tmp_path / f"c{suffix}.{suffix}"), colour)
    assert read_image(tmp_path / "cjp2.jp2").shape == (2, 2, 3)


def test_images_listed_once_in_the_order_given(tmp_path):
    for name in ("b.png", "a.png"):
        Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / name)
    given = [tmp_path / "b.png", tmp_path, tmp_path / ".." / tmp_path.name / "a.png"]
    assert list_images(given) == [tmp_path / "b.png", tmp_path / "a.png"]


def _png16(pixels: np.ndarray, colour_type: int, exif: bytes = b"") -> bytes:
    """A 16-bit PNG written by hand (the format's own chunks), Pillow cannot write colour ones:
    colour type 2 RGB, 4 grey + alpha, 6 RGBA; ``exif``: an eXIf chunk."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = np.asarray(pixels, ">u2").reshape(pixels.shape[0], -1)
    head = struct.pack(">IIBBBBB", pixels.shape[1], pixels.shape[0], 16, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", head)
        + (chunk(b"eXIf", exif) if exif else b"")
        + chunk(b"IDAT", zlib.compress(b"".join(b"\0" + row.tobytes() for row in rows)))
        + chunk(b"IEND", b"")
    )


def test_16bit_colour_png_keeps_every_bit(tmp_path):
    """Pillow decodes a 16-bit colour PNG to 8 bits a sample: a 12-bit camera's 0..4095 would
    read as 0..15. Read whole, in files and uploads, with the alpha dropped."""
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 4096, (6, 5, 4), dtype=np.uint16)
    for name, colour_type, channels, expected in (
        ("rgb.png", 2, 3, pixels[..., :3]),
        ("rgba.png", 6, 4, pixels[..., :3]),
        ("grey-alpha.png", 4, 2, pixels[..., :1]),
    ):
        data = _png16(pixels[..., :channels], colour_type)
        (tmp_path / name).write_bytes(data)
        for out in (read_image(tmp_path / name), read_image_bytes(data, name)):
            assert out.dtype == np.uint16
            np.testing.assert_array_equal(out, expected)
        pixels_read, alpha = image_and_transparency(tmp_path / name)
        np.testing.assert_array_equal(pixels_read, expected)
        assert (alpha is None) == (colour_type == 2)
        from pixelwise.report import image_report

        assert "16 bits a sample" in image_report(tmp_path / name)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_16bit_colour_png_turned_upright_as_pillow_turns_it(tmp_path, orientation):
    pixels = np.arange(2 * 3 * 3, dtype=np.uint16).reshape(2, 3, 3) * 1000
    exif = Image.Exif()
    exif[0x0112] = orientation
    (tmp_path / "t.png").write_bytes(_png16(pixels, 2, exif.tobytes().removeprefix(b"Exif\0\0")))
    Image.fromarray((pixels[..., 0] // 1000).astype(np.uint8)).save(tmp_path / "r.png", exif=exif)
    reference = read_image(tmp_path / "r.png")[..., 0].astype(np.uint16) * 1000  # Pillow's turn
    np.testing.assert_array_equal(read_image(tmp_path / "t.png")[..., 0], reference)
    np.testing.assert_array_equal(read_image(tmp_path / "t.png", as_stored=True), pixels)


@pytest.mark.parametrize("compression", ["tiff_lzw", "packbits", "tiff_adobe_deflate", "jpeg"])
def test_compressed_tiffs_read_as_pillow_decodes_them(tmp_path, compression):
    """LZW is what ImageJ, microscope software and scanners write by default; tifffile alone
    decodes only uncompressed and zlib TIFFs. Written by Pillow (an independent writer) and
    compared with Pillow's own decode; 16-bit grey too (JPEG holds 8-bit only)."""
    rng = np.random.default_rng(0)
    images = {"rgb": rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)}
    if compression != "jpeg":
        images["grey16"] = rng.integers(0, 65536, (40, 56), dtype=np.uint16)
    for name, arr in images.items():
        path = tmp_path / f"{name}.tif"
        Image.fromarray(arr).save(path, compression=compression)
        out = read_image(path)
        expected = np.asarray(Image.open(path))
        np.testing.assert_array_equal(out.reshape(expected.shape), expected)
        if compression != "jpeg":  # lossless: the pixels themselves
            np.testing.assert_array_equal(out.reshape(arr.shape), arr)
    stack = [Image.fromarray(np.full((6, 7), 10 * i, np.uint8)) for i in range(3)]
    stack[0].save(
        tmp_path / "s.tif", save_all=True, append_images=stack[1:], compression=compression
    )
    assert count_pages(tmp_path / "s.tif") == 3
    assert abs(int(read_image(tmp_path / "s.tif", page=2)[3, 3, 0]) - 20) <= 1


def test_files_are_read_by_their_content_not_their_suffix(tmp_path):
    """A PNG saved as .tif (ISBI's test slices copied under the training slices' suffix) and a
    TIFF stack named .png read as what they are."""
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(grey).save(tmp_path / "png-inside.tif", format="PNG")
    np.testing.assert_array_equal(read_image(tmp_path / "png-inside.tif")[..., 0], grey)
    np.testing.assert_array_equal(read_mask(tmp_path / "png-inside.tif"), grey)
    assert count_pages(tmp_path / "png-inside.tif") == 1
    stack = np.stack([np.full((5, 6), 1000 * i, np.uint16) for i in range(5)])
    tifffile.imwrite(tmp_path / "tiff-inside.png", stack)
    assert count_pages(tmp_path / "tiff-inside.png") == 5
    page = read_image(tmp_path / "tiff-inside.png", page=2)
    assert page.dtype == np.uint16 and page[0, 0, 0] == 2000


def test_multipage_tiff_pages(tmp_path):
    stack = np.stack([np.full((6, 7), i, np.uint8) for i in range(5)])
    tifffile.imwrite(tmp_path / "s.tif", stack)
    assert count_pages(tmp_path / "s.tif") == 5
    assert read_image(tmp_path / "s.tif", page=3)[0, 0, 0] == 3
    with pytest.raises(ImageReadError, match=r"s\.tif: page 7 requested but the TIFF has 5"):
        read_image(tmp_path / "s.tif", page=7)


def test_masks_class_ids_palette_and_uint16(tmp_path):
    ids = np.array([[0, 1], [2, 11]], np.uint8)
    save_mask(tmp_path / "p.png", ids, palette=np.zeros((256, 3), np.uint8))
    assert Image.open(tmp_path / "p.png").mode == "P"
    np.testing.assert_array_equal(read_mask(tmp_path / "p.png"), ids)
    labels = np.array([[0, 300], [70000 % 65536, 2]], np.uint16)
    Image.fromarray(labels).save(tmp_path / "inst.png")
    out = read_mask(tmp_path / "inst.png")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, labels)


def test_pngs_written_fast_are_still_lossless(tmp_path):
    # the fast zlib level changes the bytes, never the pixels
    rgba = np.random.default_rng(0).integers(0, 255, (33, 47, 4), dtype=np.uint8)
    rgba[:10] = (10, 200, 30, 255)  # a flat band, as in a cut-out's background
    image = Image.fromarray(rgba, mode="RGBA")
    save_png(tmp_path / "cut.png", image)
    for source in (tmp_path / "cut.png", io.BytesIO(png_bytes(image))):
        with Image.open(source) as back:
            assert back.mode == "RGBA"
            np.testing.assert_array_equal(np.asarray(back), rgba)


def test_colour_masks_give_one_value_per_colour(tmp_path):
    """RGB and RGBA masks (alpha ignored), PNG and TIFF: each pixel's value is 0xRRGGBB."""
    from pixelwise.data.io import colour_name, colour_value, is_colour_mask

    rgb = np.array([[[0, 0, 0], [255, 0, 0]], [[0, 0, 255], [12, 34, 56]]], np.uint8)
    expected = np.array([[0, 0xFF0000], [0x0000FF, 0x0C2238]])
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(np.dstack([rgb, np.full((2, 2), 7, np.uint8)])).save(tmp_path / "rgba.png")
    tifffile.imwrite(tmp_path / "rgb.tif", rgb)
    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.png")
    for name in ("rgb.png", "rgba.png", "rgb.tif"):
        np.testing.assert_array_equal(read_mask(tmp_path / name), expected)
        assert is_colour_mask(tmp_path / name)
    assert not is_colour_mask(tmp_path / "grey.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "grey.png"), rgb[..., 0])  # unchanged
    assert colour_value("#0c2238") == colour_value("0C2238") == 0x0C2238
    assert colour_name(0x0000FF) == "#0000ff"
    with pytest.raises(ValueError, match="expected a colour as #rrggbb"):
        colour_value("#12345")


def _png_bytes(shape=(32, 32)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)).save(
        buf, format="PNG"
    )
    return buf.getvalue()


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("empty.png", b"", r"empty file \(0 bytes\)"),
        ("text.png", b"this is not an image at all", "not a recognised image format"),
        ("cut.png", _png_bytes()[:120], r"cannot (decode|open)"),
        ("short.png", _png_bytes((64, 64))[:-300], r"cannot decode \(truncated"),
        ("cut.tif", b"II*\x00\x08\x00\x00\x00\xff\xff", "cannot decode TIFF"),
    ],
)
def test_bad_files_name_file_and_reason(tmp_path, name, content, reason):
    """Also ``pixelwise info FILE``, which used to read the header alone."""
    from pixelwise.report import image_report

    path = tmp_path / name
    path.write_bytes(content)
    for reader in (read_image, read_mask, image_report):
        with pytest.raises(ImageReadError, match=reason) as info:
            reader(path)
        assert str(info.value).startswith(str(path) + ": ")
        assert "\n" not in str(info.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageReadError, match="is a directory"):
        read_image(tmp_path)
    with pytest.raises(ImageReadError, match="a web address: pixelwise reads files, it downl"):
        read_image("https://example.com/cat.jpg")  # nothing is fetched


def test_decompression_bomb_guard_is_configurable(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    path.write_bytes(_png_bytes((100, 100)))
    with pytest.raises(ImageReadError, match=r"100 x 100 = 10000 pixels, over the limit of 5000"):
        read_image(path, max_pixels=5000)
    monkeypatch.setenv("PIXELWISE_MAX_PIXELS", "9999")
    with pytest.raises(ImageReadError, match="over the limit of 9999"):
        read_mask(path)
    monkeypatch.setenv("PIXELWISE_MAX_PIXELS", "10000")
    assert read_image(path).shape == (100, 100, 1)
    tifffile.imwrite(tmp_path / "big.tif", np.zeros((100, 100), np.uint8))
    with pytest.raises(ImageReadError, match="over the limit of 50"):
        read_image(tmp_path / "big.tif", max_pixels=50)


def test_image_bytes_decode_like_files(tmp_path):
    """Uploads go through the same decoder as files: EXIF, 16-bit, size guard, truncation."""
    rng = np.random.default_rng(0)
    for name, img in (
        ("rgb.png", Image.fromarray(rng.integers(0, 255, (9, 7, 3), dtype=np.uint8))),
        ("deep.png", Image.fromarray(rng.integers(0, 65535, (9, 7), dtype=np.uint16))),
    ):
        img.save(tmp_path / name)
        data = (tmp_path / name).read_bytes()
        assert np.array_equal(read_image_bytes(data, name), read_image(tmp_path / name))
    with pytest.raises(ImageReadError, match="upload.png: cannot decode"):
        read_image_bytes((tmp_path / "rgb.png").read_bytes()[:60], "upload.png")
    with pytest.raises(ImageReadError, match="over the limit of 10"):
        read_image_bytes(data, "deep.png", max_pixels=10)
    with pytest.raises(ImageReadError, match="empty"):
        read_image_bytes(b"", "e.png")


def test_encoded_bytes_and_binary_files_are_images_to_every_entry_point(tmp_path):
    """``as_image`` (what predict, segment and remove_background take) reads a file's bytes and
    a binary file object as the file itself, transparency and 16 bits included; a file opened
    as text is refused with how to open it."""
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 255, (9, 7, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(rgba[..., 3] > 128, 255, 0)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    Image.fromarray(rng.integers(0, 65535, (9, 7), dtype=np.uint16)).save(tmp_path / "d.png")
    for name in ("a.png", "d.png"):
        path = tmp_path / name
        with open(path, "rb") as file:
            for given in (path.read_bytes(), bytearray(path.read_bytes()), file):
                np.testing.assert_array_equal(as_image(given), read_image(path))
    pixels, alpha = image_and_transparency((tmp_path / "a.png").read_bytes())
    np.testing.assert_array_equal(alpha, rgba[..., 3])
    np.testing.assert_array_equal(pixels, rgba[..., :3])
    with open(tmp_path / "a.png", errors="ignore") as text:
        with pytest.raises(ValueError, match=r"a.png: a file opened as text; open it in binary"):
            as_image(text)
    with pytest.raises(ImageReadError, match="^image: not a recognised image format"):
        as_image(b"not an image")


def test_tiff_bytes_decode_as_tiff_files(tmp_path):
    """A TIFF held in memory (standard input, an upload) is decoded by tifffile as a TIFF file
    is: a 12-bit colour photo in 16 bits keeps its values (Pillow would narrow it to 8 bits,
    0..15, nearly black), floats stay floats, a 16-bit alpha is its transparency, and a stack
    or a file cut short is refused as a file is."""
    rng = np.random.default_rng(2)
    twelve = rng.integers(0, 4096, (9, 7, 3), dtype=np.uint16)
    floats = rng.random((9, 7), dtype=np.float32)
    for name, arr in (("c12.tif", twelve), ("f.tif", floats)):
        tifffile.imwrite(tmp_path / name, arr)
        data = (tmp_path / name).read_bytes()
        np.testing.assert_array_equal(read_image_bytes(data, name), read_image(tmp_path / name))
        np.testing.assert_array_equal(as_image(data), read_image(tmp_path / name))
    np.testing.assert_array_equal(read_image_bytes(data, "f.tif")[..., 0], floats)
    rgba = np.concatenate([twelve, np.full((9, 7, 1), 65535, np.uint16)], -1)
    rgba[:3, :, 3] = 0
    buf = io.BytesIO()
    tifffile.imwrite(buf, rgba, photometric="rgb", extrasamples=["unassalpha"])
    pixels, alpha = image_and_transparency(buf.getvalue())
    np.testing.assert_array_equal(pixels, twelve)
    np.testing.assert_array_equal(alpha, np.where(rgba[..., 3] > 0, 255, 0))
    tifffile.imwrite(tmp_path / "s.tif", np.zeros((2, 9, 7), np.uint8))
    with pytest.raises(ImageReadError, match="^up.tif: has 2 pages"):
        read_image_bytes((tmp_path / "s.tif").read_bytes(), "up.tif")
    with pytest.raises(ImageReadError, match="^up.tif: cannot decode TIFF"):
        read_image_bytes((tmp_path / "c12.tif").read_bytes()[:200], "up.tif")


def test_a_cameras_multi_picture_jpeg_reads_as_its_photo(tmp_path):
    """A JPEG that holds more pictures (MPO: a camera's or phone's photo with a preview or a
    second view) is its first picture, the photo, to every reader and to ``info``; an animated
    GIF is refused by the readers and ``info`` says that remove-bg cuts it out frame by
    frame."""
    from pixelwise.report import image_report

    rng = np.random.default_rng(3)
    photo = Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    preview = Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8))
    photo.save(tmp_path / "mpo.jpg", format="MPO", save_all=True, append_images=[preview])
    photo.save(tmp_path / "one.jpg", format="JPEG")  # the same encoder, one picture
    assert Image.open(tmp_path / "mpo.jpg").n_frames == 2
    np.testing.assert_array_equal(
        read_image(tmp_path / "mpo.jpg"), read_image(tmp_path / "one.jpg")
    )
    said = image_report(tmp_path / "mpo.jpg")
    assert "2 pictures (the first, the photo, is read)" in said and "read whole by every" in said
    photo.save(tmp_path / "a.gif", save_all=True, append_images=[preview.resize((32, 24))])
    with pytest.raises(ImageReadError, match="a.gif: has 2 frames, an animation: remove-bg cuts"):
        read_image(tmp_path / "a.gif")
    assert "an animation: remove-bg cuts out each frame" in image_report(tmp_path / "a.gif")


def _turned_photo(tmp_path, name: str, **save_args) -> np.ndarray:
    """A wide photo stored with EXIF orientation 6 (turn 90 degrees clockwise to view), a bright
    block in its stored top-left corner; returns the file as pixelwise reads it."""
    arr = np.full((32, 64, 3), 40, np.uint8)
    arr[:8, :8] = 230
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(arr).save(tmp_path / name, exif=exif.tobytes(), **save_args)
    return read_image(tmp_path / name)


def test_phone_photos_heic_and_avif_read_upright(tmp_path, monkeypatch):
    """HEIC (through pillow-heif) and AVIF read like JPEG: upright, the block turned to the top
    right as the EXIF orientation says, once (pillow-heif applies it itself), and uploads alike."""
    pillow_heif = pytest.importorskip("pillow_heif", reason="HEIC needs the heic extra")
    pillow_heif.register_heif_opener()  # for writing the test photo
    for name, args in (("a.jpg", {"quality": 95}), ("a.heic", {"quality": 95}), ("a.avif", {})):
        out = _turned_photo(tmp_path, name, **args)
        assert out.shape == (64, 32, 3), name
        bright = out[..., 0] > 135
        assert bright[:8, 24:].mean() > 0.9 and bright[8:].mean() < 0.01, name
        assert bright[:, :24].mean() < 0.01, name
    data = (tmp_path / "a.heic").read_bytes()
    assert np.array_equal(read_image_bytes(data, "upload"), read_image(tmp_path / "a.heic"))
    # as in a fresh process, where nothing has registered pillow-heif's opener yet
    monkeypatch.setattr(Image, "ID", [fmt for fmt in Image.ID if fmt != "HEIF"])
    assert np.array_equal(read_image(tmp_path / "a.heic"), read_image_bytes(data, "upload"))
    found = [p.name for p in list_images([tmp_path])]
    assert found == ["a.avif", "a.heic", "a.jpg"]


def test_heic_without_pillow_heif_says_what_to_install(tmp_path, monkeypatch):
    """Without the plugin a HEIC photo is a one-line error naming the file and the extra, not
    "not a recognised image format" (and a folder lists it, so batch runs report it)."""
    pillow_heif = pytest.importorskip("pillow_heif", reason="writing the HEIC needs pillow-heif")
    pillow_heif.from_pillow(Image.new("RGB", (16, 16), (200, 10, 10))).save(tmp_path / "p.HEIC")
    monkeypatch.setattr(Image, "ID", [fmt for fmt in Image.ID if fmt != "HEIF"])
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # import fails as when not installed
    with pytest.raises(ImageReadError, match=r"p\.HEIC: a HEIC/HEIF photo.*pixelwise\[heic\]"):
        read_image(tmp_path / "p.HEIC")
    with pytest.raises(ImageReadError, match=r"upload: a HEIC/HEIF photo"):
        read_image_bytes((tmp_path / "p.HEIC").read_bytes(), "upload")
    assert list_images([tmp_path]) == [tmp_path / "p.HEIC"]


def test_a_cut_out_as_a_mask_is_black_and_white_by_its_alpha(tmp_path):
    """Masks saved as cut-outs (the photo with a transparent background, RGBA or grey + alpha)
    are white where the alpha is at least 128 (they were read as thousands of colours); classes
    painted in colours on a transparent background, and opaque colour masks, stay colours."""
    from pixelwise.data.io import is_colour_mask, packed_colours, read_mask

    rng = np.random.default_rng(0)
    alpha = np.zeros((40, 50), np.uint8)
    alpha[10:30, 5:45] = 255
    alpha[10, 5:45] = 100  # a soft edge, under half
    alpha[29, 5:45] = 200
    photo = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    expected = np.where(alpha >= 128, 255, 0)
    Image.fromarray(np.dstack([photo, alpha]), "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(np.dstack([photo[..., 0], alpha]), "LA").save(tmp_path / "la.png")
    for name in ("rgba.png", "la.png"):
        assert np.array_equal(read_mask(tmp_path / name), expected), name
    assert not is_colour_mask(tmp_path / "rgba.png")
    tifffile.imwrite(tmp_path / "rgba.tif", np.dstack([photo, alpha]), extrasamples=[2])
    assert np.array_equal(read_mask(tmp_path / "rgba.tif"), expected)  # a TIFF cut-out too
    assert not is_colour_mask(tmp_path / "rgba.tif")
    classes = np.zeros((40, 50, 3), np.uint8)
    classes[alpha > 0] = (255, 0, 0)
    classes[:5] = (0, 0, 255)
    painted = np.dstack([classes, np.where(classes.any(-1), 255, 0).astype(np.uint8)])
    Image.fromarray(painted, "RGBA").save(tmp_path / "painted.png")
    assert np.array_equal(read_mask(tmp_path / "painted.png"), packed_colours(classes))
    assert is_colour_mask(tmp_path / "painted.png")
    tifffile.imwrite(tmp_path / "painted.tif", painted, extrasamples=[2])
    assert np.array_equal(read_mask(tmp_path / "painted.tif"), packed_colours(classes))
    assert is_colour_mask(tmp_path / "painted.tif")
    Image.fromarray(np.dstack([photo, np.full((40, 50), 255, np.uint8)])).save(tmp_path / "o.png")
    assert np.array_equal(read_mask(tmp_path / "o.png"), packed_colours(photo))


def test_a_file_that_cannot_be_written_is_named_as_asked_for(tmp_path, monkeypatch):
    """The error of an atomic write names the file asked for, not its temporary sibling."""
    import tempfile

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".x.png.abc.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    with pytest.raises(PermissionError) as caught:
        save_mask(tmp_path / "x.png", np.zeros((2, 2), np.uint8))
    assert caught.value.filename == str(tmp_path / "x.png")


def test_tiffs_of_other_pixel_types_are_read_as_the_models_take_them(tmp_path):
    """Binary TIFFs as 0/255, 32-bit integers within 16 bits as 16-bit (ImageJ writes them),
    64-bit floats as 32-bit, integers beyond 16 bits as 32-bit floats where these hold them
    exactly, refused with their range beyond. (tifffile
    writes a binary image with 1 as black unless told otherwise, and it is read so: as
    Pillow and image viewers show it, see the test below.)"""
    rng = np.random.default_rng(0)
    binary = rng.random((6, 5)) > 0.5
    wide = rng.integers(0, 65536, (6, 5)).astype(np.int32)
    double = rng.random((6, 5))
    for name, pixels, expected in (
        ("b.tif", binary, binary.astype(np.uint8) * 255),
        ("i.tif", wide, wide.astype(np.uint16)),
        ("u.tif", wide.astype(np.uint32), wide.astype(np.uint16)),
        ("d.tif", double, double.astype(np.float32)),
    ):
        tifffile.imwrite(tmp_path / name, pixels, photometric="minisblack")
        out = read_image(tmp_path / name)
        assert out.dtype == expected.dtype
        np.testing.assert_array_equal(out[..., 0], expected)
        assert as_image(tmp_path / name).dtype == expected.dtype
    tifffile.imwrite(tmp_path / "far.tif", wide * 20)  # beyond 16 bits: floats, exactly
    np.testing.assert_array_equal(
        read_image(tmp_path / "far.tif")[..., 0], (wide * 20).astype(np.float32)
    )
    tifffile.imwrite(tmp_path / "farther.tif", wide.astype(np.int64) * 2**10)
    with pytest.raises(
        ImageReadError, match="farther.tif: int64 pixels from .* beyond what 32-bit"
    ):
        read_image(tmp_path / "farther.tif")


def _cmyk_profile(lightness) -> bytes:
    """A minimal ICC v2 printer profile of CMYK data, built by hand: each ink combination prints
    as the neutral grey of CIELAB lightness ``lightness(c, m, y, k)`` (inks 0 or 1 at the
    corners of its grid, linear between), a* = b* = 0. Its colours are then known from the
    CIE formulas alone (a grey of L* 50 is sRGB 119), whatever the inks' plain formula says."""
    import struct

    def fixed(x: float) -> bytes:
        return struct.pack(">i", round(x * 65536))

    def lut8(inputs: int, outputs: int, grid: list[int]) -> bytes:  # ICC 'mft1', 2 grid points
        eye = b"".join(fixed(float(i == j)) for i in range(3) for j in range(3))
        ramp = bytes(range(256))
        head = b"mft1" + bytes(4) + bytes([inputs, outputs, 2, 0])
        return head + eye + ramp * inputs + bytes(grid) + ramp * outputs

    corners = [(c, m, y, k) for c in (0, 1) for m in (0, 1) for y in (0, 1) for k in (0, 1)]
    to_lab = [v for ink in corners for v in (round(lightness(*ink) * 2.55), 128, 128)]
    from_lab = [v for lab in range(8) for v in [0 if lab >= 4 else 255] * 4]  # black: all inks
    white = fixed(0.9642) + fixed(1.0) + fixed(0.8249)  # D50
    desc = b"test CMYK\0"
    tags = [
        (b"desc", b"desc" + bytes(4) + struct.pack(">I", len(desc)) + desc + bytes(79)),
        (b"wtpt", b"XYZ " + bytes(4) + white),
        (b"cprt", b"text" + bytes(4) + b"none\0"),
        (b"A2B0", lut8(4, 3, to_lab)),
        (b"B2A0", lut8(3, 4, from_lab)),
    ]
    start = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for name, body in tags:
        body += bytes(-len(body) % 4)
        table += name + struct.pack(">II", start + len(data), len(body))
        data += body
    header = struct.pack(">I", start + len(data)) + bytes(4) + struct.pack(">I", 0x02100000)
    header += b"prtrCMYKLab " + bytes(12) + b"acsp" + bytes(28) + white + bytes(48)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def _srgb_grey(lightness: float) -> float:
    """The sRGB value (0..255) of the neutral grey of CIELAB lightness L*, by the formulas."""
    y = ((lightness + 16) / 116) ** 3 if lightness > 8 else lightness / 903.3
    return 255 * (12.92 * y if y <= 0.0031308 else 1.055 * y ** (1 / 2.4) - 0.055)


def test_print_files_cmyk_inks_read_as_the_colours_they_print_as(tmp_path):
    """A CMYK TIFF (a print file) used to be read as if cyan, magenta and yellow were red, green
    and blue, black dropped: a red photo came out cyan. Its inks are now read as the colours
    they print as: by Pillow's formula without a profile (8 and 16 bits, interleaved or planar,
    from files, bytes and region by region), through the file's own CMYK profile with one
    (TIFF and JPEG), checked against the CIE formulas for a profile made by hand."""
    from pixelwise.data.slide import TiffRegions

    rng = np.random.default_rng(0)
    inks = rng.integers(0, 256, (24, 32, 4), dtype=np.uint8)
    plain = np.asarray(Image.frombytes("CMYK", (32, 24), inks.tobytes()).convert("RGB"))
    assert plain[..., 0].astype(int).ravel().tolist() != inks[..., 0].ravel().tolist()
    red = np.asarray(Image.new("RGB", (32, 24), (200, 30, 30)).convert("CMYK"))
    for planar in ("contig", "separate"):
        stored = inks if planar == "contig" else np.moveaxis(inks, -1, 0)
        tifffile.imwrite(tmp_path / "c.tif", stored, photometric="separated", planarconfig=planar)
        np.testing.assert_array_equal(read_image(tmp_path / "c.tif"), plain)
        np.testing.assert_array_equal(
            read_image_bytes((tmp_path / "c.tif").read_bytes(), "c"), plain
        )
        with TiffRegions(tmp_path / "c.tif") as regions:
            rows, cols = np.arange(3, 20), np.arange(5, 30)
            np.testing.assert_array_equal(regions.read(rows, cols), plain[3:20, 5:30])
    tifffile.imwrite(tmp_path / "red.tif", red, photometric="separated")
    assert read_image(tmp_path / "red.tif")[0, 0].tolist() == [200, 30, 30]
    deep = inks.astype(np.uint16) * 257
    tifffile.imwrite(tmp_path / "d.tif", deep, photometric="separated")
    read = read_image(tmp_path / "d.tif")
    assert read.dtype == np.uint16
    assert np.abs(read / 257.0 - plain).max() <= 1  # Pillow rounds in integers
    assert (
        read_image(tmp_path / "c.tif", channel=3).ravel().tolist() == inks[..., 3].ravel().tolist()
    )

    # with a profile: cyan alone prints as grey L* 50 and black alone as L* 50, both as 0
    profile = _cmyk_profile(lambda c, m, y, k: max(0, 100 - 50 * c - 50 * k))
    patches = [(0, 0, 0, 0), (255, 0, 0, 0), (0, 255, 255, 0), (0, 0, 0, 255), (255, 0, 0, 255)]
    expected = [255, _srgb_grey(50), 255, _srgb_grey(50), 0]
    flat = np.repeat(np.repeat(np.array(patches, np.uint8)[None], 16, 0), 16, 1)  # 16 x 80
    tifffile.imwrite(
        tmp_path / "p.tif", flat, photometric="separated",
        extratags=[(34675, 7, len(profile), profile)],
    )  # fmt: skip
    Image.frombytes("CMYK", (80, 16), flat.tobytes()).save(
        tmp_path / "p.jpg", quality=100, icc_profile=profile
    )
    for name, tolerance in (("p.tif", 1), ("p.jpg", 3)):
        read = read_image(tmp_path / name)
        for i, grey in enumerate(expected):
            patch = read[4:12, 16 * i + 4 : 16 * i + 12].astype(float)
            assert np.abs(patch - grey).max() <= tolerance, (name, patches[i], patch[0, 0], grey)
    with TiffRegions(tmp_path / "p.tif") as regions:
        np.testing.assert_array_equal(
            regions.read(np.arange(16), np.arange(80)), read_image(tmp_path / "p.tif")
        )
    from pixelwise.report import image_report

    said = image_report(tmp_path / "p.tif")
    assert "(CMYK inks: read as the colours they print as)" in said and "test CMYK" in said
    broken = profile[:200] + bytes(len(profile) - 200)  # a damaged profile: the formula
    tifffile.imwrite(
        tmp_path / "b.tif",
        flat,
        photometric="separated",
        extratags=[(34675, 7, len(broken), broken)],
    )
    plain_flat = np.asarray(Image.frombytes("CMYK", (80, 16), flat.tobytes()).convert("RGB"))
    np.testing.assert_array_equal(read_image(tmp_path / "b.tif"), plain_flat)


def test_palette_and_white_is_zero_tiffs_read_as_pillow_shows_them(tmp_path):
    """A palette TIFF used to be read as its indices (a grey image of numbers) and a TIFF that
    stores grey with 0 as white (scanners, fax) as its negative. Both now read as Pillow shows
    them, from files, bytes and region by region; a palette mask still gives its indices. A
    TIFF of L*a*b* values is refused rather than taken for RGB."""
    from pixelwise.data.slide import TiffRegions

    rng = np.random.default_rng(1)
    photo = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    Image.fromarray(photo).quantize(16).save(tmp_path / "pal.tif")
    grey = rng.integers(0, 256, (24, 32), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "white0.tif", grey, photometric="miniswhite")
    tifffile.imwrite(tmp_path / "fax.tif", grey > 128, photometric="miniswhite")
    for name in ("pal.tif", "white0.tif", "fax.tif"):
        with Image.open(tmp_path / name) as opened:
            assert opened.mode in ("P", "L", "1"), (name, opened.mode)
            shown = np.asarray(opened.convert("RGB" if opened.mode == "P" else "L"))
        shown = shown if shown.ndim == 3 else shown[..., None]
        np.testing.assert_array_equal(read_image(tmp_path / name), shown, err_msg=name)
        data = (tmp_path / name).read_bytes()
        np.testing.assert_array_equal(read_image_bytes(data, name), shown, err_msg=name)
        with TiffRegions(tmp_path / name) as regions:
            rows, cols = np.arange(2, 20), np.arange(3, 31)
            np.testing.assert_array_equal(regions.read(rows, cols), shown[2:20, 3:31])
    with Image.open(tmp_path / "pal.tif") as opened:
        np.testing.assert_array_equal(read_mask(tmp_path / "pal.tif"), np.asarray(opened))
    from pixelwise.report import image_report  # pixelwise info says how each is read

    assert "a palette: an image is read as its colours" in image_report(tmp_path / "pal.tif")
    assert "grey with 0 as white: read as shown" in image_report(tmp_path / "white0.tif")
    # L*a*b* values used to be taken for RGB, silently: refused, named
    Image.fromarray(photo).convert("LAB").save(tmp_path / "lab.tif")
    with pytest.raises(ImageReadError, match=r"lab.tif: stores CIELAB values, not grey levels"):
        read_image(tmp_path / "lab.tif")
    with pytest.raises(ImageReadError, match=r"lab.tif: stores CIELAB values"):
        TiffRegions(tmp_path / "lab.tif")
    inks = rng.integers(0, 256, (8, 8, 4), dtype=np.uint8)  # four spot colours, not CMYK
    tifffile.imwrite(
        tmp_path / "spot.tif", inks, photometric="separated", extratags=[(332, 3, 1, 2)]
    )
    with pytest.raises(
        ImageReadError,
        match=r"spot.tif: stores the amounts of 4 ink\(s\) other than CMYK, not grey",
    ):
        read_image(tmp_path / "spot.tif")
    assert len(np.unique(read_mask(tmp_path / "pal.tif"))) <= 16


def test_premultiplied_tiff_colours_read_as_pillow_divides_them(tmp_path):
    """A TIFF whose colours are stored multiplied by their alpha (associated alpha) reads as
    Pillow reads it: the colours divided by the alpha again (0 where fully transparent)."""
    rng = np.random.default_rng(2)
    alpha = rng.integers(0, 256, (16, 24, 1), dtype=np.uint8)
    colour = (rng.integers(0, 256, (16, 24, 3)) * (alpha / 255.0)).round().astype(np.uint8)
    tifffile.imwrite(tmp_path / "pre.tif", np.dstack([colour, alpha]), extrasamples=[1])
    with Image.open(tmp_path / "pre.tif") as opened:
        assert opened.mode == "RGBA"
        pillow = np.asarray(opened.convert("RGBA"))
    read = read_image(tmp_path / "pre.tif")
    assert np.abs(read.astype(int) - pillow[..., :3]).max() <= 1  # rounding of the division
    assert (read[alpha[..., 0] == 0] == 0).all()
    np.testing.assert_array_equal(image_and_transparency(tmp_path / "pre.tif")[1], pillow[..., 3])
