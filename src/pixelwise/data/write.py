"""Writing outputs, each atomically (a temporary file renamed into place: a killed run leaves
nothing half-written): bytes, PNGs, class-id masks (palette PNG, 16-bit, tiled TIFF read back
row by row, OME-TIFF pyramids), label images, probability pages, and the mark of an output
folder. Reading is :mod:`pixelwise.data.io`."""

from __future__ import annotations

import contextlib
import glob
import io
import itertools
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from pixelwise.data.io import OUTPUT_MARK, TIFF_SUFFIXES, UNASSOCIATED_ALPHA


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_current_umask()  # what open() would have given the file


def _atomic_target(path: Path) -> tuple[int, str]:
    """A temporary file beside ``path``; leftovers of an earlier, interrupted write of the same
    file are removed first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        stale.unlink(missing_ok=True)
    try:
        return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:  # named as the file asked for, not the temporary one
        raise type(exc)(exc.errno, exc.strerror, str(path)) from None


def _publish(tmp: str, path: Path) -> None:
    """Give the temporary file the permissions a plain write would have, then rename it."""
    os.chmod(tmp, FILE_MODE)
    try:
        os.replace(tmp, path)
    except IsADirectoryError as exc:  # named as the file asked for, not the temporary one
        raise IsADirectoryError(exc.errno, "a folder, not a file name", str(path)) from None


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename: never half-written."""
    path = Path(path)
    fd, tmp = _atomic_target(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        _publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save(path: str | os.PathLike, save_fn) -> None:
    """Call ``save_fn(tmp_path)`` then rename the temporary file onto ``path``."""
    path = Path(path)
    fd, tmp = _atomic_target(path)
    os.close(fd)
    try:
        save_fn(tmp)
        _publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# zlib level of every PNG this package writes (Pillow's default is 6). A photo-like PNG (a cut-out,
# an overlay) encodes about 4x as fast at level 1 and takes 7-17 % more bytes: a 1155 x 866 RGBA
# cut-out 449 -> 107 ms (1420 -> 1664 kB), 20 development photos' cut-outs 355 -> 88 ms per
# megapixel (+7 %); benchmarks/README.md. At level 6 encoding took longer than the cut itself.
PNG_COMPRESS_LEVEL = 1
# cut-outs as WebP: the colours lossy at quality 90, the alpha lossless (the outline exact)
WEBP_SAVE = {"format": "WEBP", "quality": 90, "alpha_quality": 100, "method": 4}


def deep_png_bytes(rgba: np.ndarray, profile: bytes | None = None) -> bytes:
    """A 16-bit RGBA image ((H, W, 4) uint16) as PNG at :data:`PNG_COMPRESS_LEVEL`, with the ICC
    colour ``profile`` (an iCCP chunk) when given: OpenCV's encoder, Pillow writing no 16-bit
    colour."""
    import cv2

    ok, encoded = cv2.imencode(
        ".png", rgba[..., [2, 1, 0, 3]], [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESS_LEVEL]
    )
    if not ok:
        raise ValueError(f"cannot encode a {rgba.shape} {rgba.dtype} image as PNG")
    data = encoded.tobytes()
    if not profile:
        return data
    body = b"ICC Profile\0\0" + zlib.compress(profile)  # name, compression method 0, data
    chunk = len(body).to_bytes(4, "big") + b"iCCP" + body
    chunk += zlib.crc32(b"iCCP" + body).to_bytes(4, "big")
    header = 8 + 4 + 4 + 13 + 4  # signature, then IHDR: length, type, data, CRC
    return data[:header] + chunk + data[header:]


def tiff_bytes(pixels: np.ndarray, profile: bytes | None = None) -> bytes:
    """An (H, W, 3) RGB or (H, W, 4) RGBA image, 8 or 16 bits, as a zlib-compressed TIFF (its
    alpha marked unassociated: colours as they are, not multiplied by it), with the ICC colour
    ``profile`` when given."""
    buf = io.BytesIO()
    alpha = {"extrasamples": [UNASSOCIATED_ALPHA]} if pixels.shape[-1] == 4 else {}
    tifffile.imwrite(
        buf, pixels, photometric="rgb", compression="zlib", iccprofile=profile, **alpha
    )
    return buf.getvalue()


def png_bytes(img: Image.Image) -> bytes:
    """A PIL image encoded as PNG (:data:`PNG_COMPRESS_LEVEL`)."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def save_png(
    path: str | os.PathLike, img: Image.Image, info: PngImagePlugin.PngInfo | None = None
) -> None:
    """Save a PIL image as PNG atomically (:data:`PNG_COMPRESS_LEVEL`), with the text entries
    of ``info``."""
    extra = {"pnginfo": info} if info is not None else {}
    atomic_save(
        path, lambda tmp: img.save(tmp, format="PNG", compress_level=PNG_COMPRESS_LEVEL, **extra)
    )


def mask_image(mask: np.ndarray, palette: np.ndarray | None = None) -> Image.Image:
    """A class-id mask as an image to save as PNG: palette image (values = class ids) when a
    palette is given and ids fit in uint8, 16-bit greyscale when ids exceed 255."""
    if mask.max(initial=0) > 255:
        return Image.fromarray(mask.astype(np.uint16))
    if palette is None:
        return Image.fromarray(mask.astype(np.uint8), mode="L")
    img = Image.fromarray(mask.astype(np.uint8), mode="P")
    img.putpalette(np.asarray(palette, dtype=np.uint8).reshape(-1).tolist())
    return img


# The PNG text entry that marks a mask file as :func:`save_mask` wrote it: its values are class
# ids 0..K-1, whatever values the data's own masks store (Cityscapes' label ids 0..33, a trimap's
# 1..3), so that scoring it never reads a class id as a stored value.
CLASS_IDS_TEXT = ("pixelwise", "class ids")
CLASS_IDS_DESCRIPTION = "pixelwise: class ids"  # the same, as a TIFF's ImageDescription


def save_mask(path: str | os.PathLike, mask: np.ndarray, palette: np.ndarray | None = None) -> None:
    """Save a class-id mask as PNG (:func:`mask_image`), marked as class ids
    (:func:`holds_class_ids`)."""
    info = PngImagePlugin.PngInfo()
    info.add_text(*CLASS_IDS_TEXT)
    save_png(path, mask_image(mask, palette), info)


MASK_TILE = 512  # the tiles of a mask written row by row (:func:`save_mask_rows`)

TILED = {"tile": (MASK_TILE, MASK_TILE), "compression": "zlib"}  # how large outputs are stored


def per_centimetre(pixel_size: float | None) -> dict:
    """tifffile's resolution tags for ``pixel_size`` µm a pixel (pixels per centimetre); none
    without a size."""
    if pixel_size is None:
        return {}
    return {"resolution": (1e4 / pixel_size,) * 2, "resolutionunit": "CENTIMETER"}


def mask_bands(rows, shape: tuple[int, int], tile: int = MASK_TILE):
    """``(y, band)``: the bands of ``tile`` rows (the last one shorter), top to bottom, of an
    (H, W) mask that arrives as ``(y, rows)`` pieces top to bottom (a piece may repeat the last
    rows of the one before, and wins: the last row of tiles of
    :func:`pixelwise.inference.tiled_rows`): rows go out once no later piece can change them, so
    memory holds a piece and a band."""
    h, w = shape
    pending, start = None, 0  # rows start .. start + len(pending), of the pieces' dtype

    def ready(final: int):
        nonlocal pending, start
        while start < h and (start + tile <= final or final == h):
            n = min(tile, h - start)
            yield start, pending[:n]
            pending, start = pending[n:], start + n

    for y, piece in rows:
        yield from ready(y)
        if pending is None:  # (rows, W) or (rows, W, samples)
            pending = np.zeros((0, *piece.shape[1:]), piece.dtype)
        end = y + len(piece) - start
        if len(pending) < end:
            more = np.zeros((end - len(pending), *piece.shape[1:]), piece.dtype)
            pending = np.concatenate([pending, more])
        pending[y - start : end] = piece
    yield from ready(h)


def mask_tiles(rows, shape: tuple[int, int], tile: int = MASK_TILE, levels=()):
    """The ``tile`` x ``tile`` tiles, row-major, of the mask of :func:`mask_bands`; each band
    also goes to the reduced ``levels`` (:class:`_Level`) before its tiles go out."""
    for y, band in mask_bands(rows, shape, tile):
        for level in levels:
            level.take(y, band)
        for x in range(0, shape[1], tile):
            yield band[:, x : x + tile]


class _Level:
    """One reduced level of a mask written row by row: every ``step``-th row and column (the
    nearest pixel, so class ids and object numbers stay whole), kept zlib-compressed band by
    band in an unnamed temporary file beside the output until the full level has been written."""

    def __init__(self, shape: tuple[int, int], step: int, folder: Path) -> None:
        self.shape = (-(-shape[0] // step), -(-shape[1] // step))
        self.step, self.parts = step, []
        self.file = tempfile.TemporaryFile(dir=folder)

    def take(self, y: int, band: np.ndarray) -> None:
        skip = -y % self.step
        rows = band[skip :: self.step, :: self.step]
        if len(rows):
            data = zlib.compress(np.ascontiguousarray(rows).tobytes(), 1)
            self.file.write(data)
            self.parts.append(((y + skip) // self.step, rows.shape, rows.dtype, len(data)))

    def rows(self):
        self.file.seek(0)
        for y, shape, dtype, size in self.parts:
            yield y, np.frombuffer(zlib.decompress(self.file.read(size)), dtype).reshape(shape)


def pyramid_steps(shape: tuple[int, int], tile: int = MASK_TILE) -> list[int]:
    """The downsampling factors (2, 4, 8, ...) of a mask's reduced levels: halved until the
    longer side fits in one tile."""
    steps, step = [], 2
    while max(shape) > tile * step // 2:
        steps.append(step)
        step *= 2
    return steps


def save_mask_rows(
    path: str | os.PathLike,
    rows,
    shape: tuple[int, int],
    palette: np.ndarray | None = None,
    dtype=np.uint8,
    pyramid: bool = True,
    pixel_size: float | None = None,
) -> None:
    """Save a mask too large to hold (``rows``: see :func:`mask_bands`) as a tiled,
    zlib-compressed BigTIFF of ``dtype`` (uint32 for instance labels), a palette image when
    ``palette`` is given; atomically. With ``pyramid``, an OME-TIFF pyramid as QuPath writes one
    (reduced levels by 2, 4, ... as SubIFDs, nearest pixel: :class:`_Level`), which QuPath,
    Fiji and napari open zoomed out without reading the full level; a mask with a palette is
    marked as class ids in the OME description (:func:`holds_class_ids`). ``pixel_size``: µm
    a pixel, recorded as OME's PhysicalSizeX/Y (as a resolution per centimetre without
    ``pyramid``), so that viewers show the mask at the slide's scale."""
    colours = {}
    if palette is not None:  # TIFF colour maps are 16-bit; class ids, as save_mask marks them
        colours = {"photometric": "palette", "colormap": np.asarray(palette, np.uint16).T * 257}
    form = TILED | {"dtype": dtype, **colours}
    meta = {"axes": "YX"} | ({"Description": CLASS_IDS_DESCRIPTION} if palette is not None else {})
    meta |= physical_size(pixel_size)
    flat = per_centimetre(pixel_size)

    def write(tmp):
        if not pyramid:
            marked = {"description": CLASS_IDS_DESCRIPTION} if palette is not None else {}
            tifffile.imwrite(
                tmp, mask_tiles(rows, shape), shape=shape, bigtiff=True, **marked, **flat, **form
            )
            return
        write_pyramid(tmp, [lambda: rows], shape, meta, form)

    atomic_save(path, write)


def physical_size(pixel_size: float | None) -> dict:
    """OME metadata of ``pixel_size`` µm a pixel (PhysicalSizeX/Y), or none."""
    if pixel_size is None:
        return {}
    return {f"PhysicalSize{a}{u}": v for a in "XY" for u, v in (("", pixel_size), ("Unit", "µm"))}


def write_pyramid(tmp, pages: list, shape: tuple[int, int], meta: dict, form: dict) -> None:
    """Write ``pages`` (callables, each giving one page's ``(y, rows)`` pieces: see
    :func:`mask_bands`) of ``shape`` to ``tmp`` as an OME-TIFF pyramid as QuPath writes one: the
    pages, then reduced levels by 2, 4, ... (:func:`pyramid_steps`) as SubIFDs of each page,
    every step-th pixel (:class:`_Level`). One page is a YX image, several a CYX one."""
    steps = pyramid_steps(shape)

    def whole(size):
        return size if len(pages) == 1 else (len(pages), *size)

    with (
        contextlib.ExitStack() as stack,
        tifffile.TiffWriter(tmp, bigtiff=True, ome=True) as tif,
    ):
        levels = [[_Level(shape, step, Path(tmp).parent) for step in steps] for _ in pages]
        for level in itertools.chain.from_iterable(levels):
            stack.callback(level.file.close)
        tiles = itertools.chain.from_iterable(
            mask_tiles(page(), shape, levels=own) for page, own in zip(pages, levels)
        )
        tif.write(tiles, shape=whole(shape), subifds=len(steps), metadata=meta, **form)
        for k in range(len(steps)):
            small = levels[0][k].shape
            tiles = itertools.chain.from_iterable(
                mask_tiles(own[k].rows(), small) for own in levels
            )
            tif.write(tiles, shape=whole(small), subfiletype=1, **form)


def ome_description(description: str | None) -> str | None:
    """The first image's description in an OME-TIFF's OME-XML (``pages[0].description``), or
    None where there is none or the text is not OME-XML."""
    if not description or not description.lstrip().startswith("<"):
        return None
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(description)
    except ET.ParseError:
        return None
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == "Description":
            return element.text
    return None


def holds_class_ids(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a mask that :func:`save_mask` wrote, or :func:`save_mask_rows` with
    a palette (a slide's, as ``predict`` writes it): its values are class ids."""
    if Path(path).suffix.lower() in TIFF_SUFFIXES:
        try:
            with tifffile.TiffFile(path) as tif:
                text = tif.pages[0].description
                return CLASS_IDS_DESCRIPTION in (text, ome_description(text))
        except (OSError, ValueError, IndexError, tifffile.TiffFileError):
            return False
    if Path(path).suffix.lower() != ".png":
        return False
    try:
        with Image.open(path) as img:
            return img.info.get(CLASS_IDS_TEXT[0]) == CLASS_IDS_TEXT[1]
    except (OSError, UnidentifiedImageError, ValueError):
        return False  # reading the mask itself says what is wrong with the file


def save_label_image(path: str | os.PathLike, labels: np.ndarray) -> Path:
    """Save an instance label image (0 = background, 1..N objects) as a 16-bit greyscale PNG, or
    beyond 65535 objects (a whole-slide scan) as a 32-bit TIFF of the same name; returns the
    path written."""
    path = Path(path)
    if labels.max(initial=0) <= 65535:
        save_png(path, Image.fromarray(labels.astype(np.uint16)))
        return path
    path = path.with_suffix(".tif")
    atomic_save(
        path, lambda tmp: tifffile.imwrite(tmp, labels.astype(np.uint32), compression="zlib")
    )
    return path


def save_code_rows(path: str | os.PathLike, rows, shape: tuple[int, int, int]) -> None:
    """Save an (H, W, C) uint8 array too large to hold, arriving as ``(y, rows)`` pieces
    (:func:`mask_bands`), as a tiled zlib TIFF of C samples per pixel: a working file that
    :class:`~pixelwise.data.slide.TiffRegions` reads back (``stored(..., sample=c)``)."""
    form = TILED | {"dtype": np.uint8, "photometric": "minisblack", "planarconfig": "contig"}
    form |= {"bigtiff": True}
    atomic_save(
        path, lambda tmp: tifffile.imwrite(tmp, mask_tiles(rows, shape[:2]), shape=shape, **form)
    )


def save_probability_pages(
    path: str | os.PathLike, pages: list, shape: tuple[int, int], pixel_size: float | None = None
) -> None:
    """Save class probabilities too large to hold as :func:`save_probabilities` lays them out,
    one 8-bit page per class (``tifffile.imread`` gives (K, H, W)), each page tiled and written
    from ``pages[k]()``, its ``(y, rows)`` pieces (uint8, ``round(255 p)``); atomically. An
    OME-TIFF pyramid, as the slide's mask (:func:`write_pyramid`: each class's page with its
    reduced levels, every 2nd, 4th, ... pixel), so that viewers open it zoomed out.
    ``pixel_size``: µm a pixel, recorded as OME's PhysicalSizeX/Y."""
    form = TILED | {"dtype": np.uint8, "photometric": "minisblack"}
    meta = {"axes": "CYX" if len(pages) > 1 else "YX"} | physical_size(pixel_size)
    atomic_save(path, lambda tmp: write_pyramid(tmp, pages, shape, meta, form))


def save_probabilities(path: str | os.PathLike, probabilities: np.ndarray) -> None:
    """Save (H, W, K) class probabilities as a TIFF of K 8-bit pages, one per class, each pixel
    ``round(255 * p)`` (a stack in Fiji/ImageJ; ``tifffile.imread`` gives (K, H, W))."""
    pages = np.rint(np.moveaxis(probabilities, -1, 0) * 255).astype(np.uint8)
    atomic_save(
        path,
        lambda tmp: tifffile.imwrite(tmp, pages, photometric="minisblack", compression="zlib"),
    )


def mark_output(out: Path) -> None:
    """Mark ``out`` (a folder outputs were just written to) as one:
    :func:`pixelwise.runner.output_names` leaves its files out of the inputs of later runs that
    list a folder holding it."""
    mark = out / OUTPUT_MARK
    if not mark.exists():
        text = "written by pixelwise: the files of this folder are outputs, not inputs\n"
        atomic_write_bytes(mark, text.encode())
