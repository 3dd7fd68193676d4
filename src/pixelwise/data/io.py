"""Reading and writing images and masks as users actually have them.

Images come back as ``uint8`` or ``uint16`` arrays of shape (H, W, C) with C in {1, 3}
(alpha is dropped, palettes are expanded, EXIF orientation is applied). Masks come back as
integer arrays of shape (H, W) holding the stored values unchanged (class ids, palette
indices or uint16 instance labels).

Every failure raises :class:`ImageReadError`, whose message names the file and the reason
in one line.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, ImageOps, UnidentifiedImageError

from pixelwise.constants import counted

IMAGE_SUFFIXES = (
    ".png",
    ".jpg",
    ".jpeg",
    ".tif",
    ".tiff",
    ".bmp",
    ".webp",
    ".gif",
    ".avif",
    ".heic",
    ".heif",
    ".svs",  # Aperio whole-slide scans: TIFFs (the slide first, then a thumbnail and levels)
    ".pgm",  # Netpbm (grey up to 16 bits, colour, black and white), as older datasets keep them
    ".ppm",
    ".pbm",
    ".pnm",
    ".tga",
    ".jp2",
)
# The brands of an ISO base media file ("....ftypBRAND") that mark a HEIF still image: phones'
# HEIC photos. Pillow reads them through the optional pillow-heif plugin (extra [heic]).
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
TIFF_SUFFIXES = (".tif", ".tiff")
TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")  # little/big-endian, classic/BigTIFF


def is_tiff(path: str | os.PathLike) -> bool:
    """Whether a file is a TIFF, by its first bytes: a PNG saved as ``.tif`` is read as the PNG
    it is, a TIFF named ``.png`` as a TIFF; by its suffix when the file cannot be read."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return f.read(4) in TIFF_MAGIC
    except OSError:
        return path.suffix.lower() in TIFF_SUFFIXES


DEFAULT_MAX_PIXELS = 250_000_000  # ~16k x 16k; override with PIXELWISE_MAX_PIXELS


class ImageReadError(ValueError):
    """A file could not be read as an image or mask; the message names the file."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def max_pixels_limit(max_pixels: int | None = None) -> int:
    """The decompression-bomb guard: explicit argument, else $PIXELWISE_MAX_PIXELS, else default."""
    if max_pixels is not None:
        return int(max_pixels)
    text = os.environ.get("PIXELWISE_MAX_PIXELS")
    if text is None:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(text))
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"PIXELWISE_MAX_PIXELS must be a positive number of pixels, got {text!r}")
    return value


def _check_file(path: Path) -> None:
    if not path.exists():
        if re.match(r"(https?|ftp|s3|gs):/", str(path)):  # Path keeps one slash of "//"
            raise ImageReadError(path, "a web address: pixelwise reads files, it downloads nothing")
        raise ImageReadError(path, "no such file")
    if path.is_dir():
        raise ImageReadError(path, "is a directory, not an image file")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "empty file (0 bytes)")


class ImageTooLarge(ImageReadError):
    """An image with more pixels than allowed, refused from its header before decoding."""

    def __init__(
        self, path: str | os.PathLike, width: int, height: int, limit: int, hint: str = ""
    ) -> None:
        super().__init__(
            path,
            f"image is {width} x {height} = {width * height} pixels, over the limit of {limit} "
            f"(possible decompression bomb; raise it with max_pixels= or PIXELWISE_MAX_PIXELS){hint}",
        )
        self.pixels, self.limit = width * height, limit


# What a TIFF of one image over the limit can still go through (pixelwise.data.slide)
STREAMED_HINT = (
    "; `pixelwise predict` and `segment` read a TIFF this large region by region "
    "(predict_slide(), segment_slide())"
)
TILED_HINT = (
    "; saved as a tiled TIFF (`vips tiffsave IMAGE OUT.tif --tile --compression jpeg`), "
    "`pixelwise predict` and `segment` read it region by region"
)


def _check_size(
    path: Path, width: int, height: int, max_pixels: int | None, hint: str = ""
) -> None:
    limit = max_pixels_limit(max_pixels)
    if width * height > limit:
        raise ImageTooLarge(path, width, height, limit, hint)


@contextlib.contextmanager
def _open_tiff(path: Path, source=None):
    """``tifffile.TiffFile(path)`` (or of the file object ``source``, named ``path``) without
    tifffile's log lines about damaged files: whatever tifffile raises, opening or decoding in
    the ``with`` block, becomes one ImageReadError line ("cannot decode TIFF"); the block's own
    ImageReadErrors pass as they are."""
    log = logging.getLogger("tifffile")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        with tifffile.TiffFile(path if source is None else source) as tif:
            yield tif
    except ImageReadError:
        raise
    except Exception as exc:  # tifffile raises many types for damaged files
        raise ImageReadError(path, f"cannot decode TIFF ({type(exc).__name__}: {exc})") from None
    finally:
        log.setLevel(level)


def _read_tiff(
    path: Path,
    page: int | None,
    max_pixels: int | None,
    channel: int | None = None,
    source=None,
    shown: bool = True,
) -> np.ndarray:
    """Page ``page`` of a TIFF (default: its only image), (H, W) or (H, W, S) with the samples
    last, as shown (:func:`as_shown`; ``shown=False``: as stored, a palette's indices); from
    the file object ``source`` when given (``path`` names it). A file that stores
    each channel as a page of its own (:func:`_channel_layout`) gives channel ``channel`` of
    slice ``page``, (H, W). Channels that are not colours, as pages or as
    samples (:func:`_separate_samples`), are refused without a ``channel`` (:data:`CHANNELS`)
    when there is more than one."""
    with _open_tiff(path, source) as tif:
        pages = tif.pages
        if len(pages) == 0:
            raise ImageReadError(path, "TIFF file has no pages")
        layout = _channel_layout(tif)
        if layout is not None:
            return _read_channel_pages(path, tif, layout, page, channel, max_pixels)
        if page is None and len(pages) > 1:
            if not _uniform(pages):
                return _pick_channel(path, _read_base_level(path, tif, max_pixels), channel)
            raise ImageReadError(path, multi_page(len(pages), "pages"))
        index = 0 if page is None else page
        if not 0 <= index < len(pages):
            raise ImageReadError(path, f"page {index} requested but the TIFF has {len(pages)}")
        chosen = pages[index]
        hint = STREAMED_HINT if page is None else ""  # one image, not a stack's page
        _check_size(path, chosen.imagewidth, chosen.imagelength, max_pixels, hint)
        if channel is None and _separate_samples(chosen):
            count = chosen.samplesperpixel
            raise ImageReadError(path, _channels_text(count, "grey samples per pixel"))
        if shown:
            check_shown(path, chosen)
        pixels = _samples_last(chosen)
        if shown:
            pixels = as_shown(chosen, pixels, tiff_profile(chosen), inks=channel is None)
        return _pick_channel(path, pixels, channel)


ALL_CHANNELS = -1  # read_channels: every channel, none refused


def read_channels(path: str | os.PathLike) -> tuple[np.ndarray, bool]:
    """Every channel of an image as stored, (H, W, C), and whether they are colours (grey or
    RGB, read as :func:`read_image` reads them) rather than a microscope's channels: what
    ``segment --measure`` measures after segmenting one of them. ``path`` may be a
    :class:`StackPage`."""
    source, page = (path.path, path.index) if isinstance(path, StackPage) else (Path(path), None)
    _check_file(source)
    if is_tiff(source):
        with _open_tiff(source) as tif:
            separate = _channel_layout(tif) is not None or _separate_samples(tif.pages[page or 0])
        if separate:
            arr = _read_tiff(source, page, None, ALL_CHANNELS)
            return (arr if arr.ndim == 3 else arr[..., None]), False
    return read_image(path), True


CHANNELS = (
    "has {} channels ({}), not colours: choose the one to segment with --channel N "
    "(0 to {}; predict, segment and evaluate), or save it as an image of its own"
)


ICC_COLOUR_SPACE = slice(16, 20)  # an ICC profile's header: the colour space its data are in
INTER_COLOR_PROFILE = 34675  # the TIFF tag of an embedded ICC profile
SEPARATED = 5  # the TIFF photometric of ink separations
INKSET, NOT_CMYK = 332, 2  # the TIFF tag naming the inks, and its value for inks other than CMYK


def tiff_profile(page) -> bytes | None:
    """The ICC colour profile embedded in a TIFF page, or None."""
    tag = page.tags.get(INTER_COLOR_PROFILE)
    return None if tag is None else bytes(tag.value)


def is_cmyk(page) -> bool:
    """Whether a TIFF page holds the amounts of cyan, magenta, yellow and black ink of a print
    file (:func:`cmyk_to_rgb` gives the colours they print as), not colours of light."""
    inks = page.tags.get(INKSET)
    return (
        page.photometric == SEPARATED
        and page.samplesperpixel >= 4
        and (inks is None or inks.value != NOT_CMYK)
    )


PALETTE, MINISWHITE = 3, 0  # TIFF photometrics: colours by index; grey with 0 as white
# TIFF photometrics whose samples are not grey levels or colours of light as read: CIE L*a*b*
# (three codings), LogLuv, a camera's raw sensor values
NOT_SHOWN = {8: "CIELAB", 9: "ICC L*a*b*", 10: "ITU L*a*b*", 32803: "raw sensor (CFA)",
             32844: "LogL", 32845: "LogLuv", 34892: "raw sensor (linear raw)"}  # fmt: skip


def check_shown(path, page) -> None:
    """ImageReadError for a TIFF page whose samples :func:`as_shown` cannot show: L*a*b* values
    or inks other than CMYK would otherwise be taken for RGB, silently, and a camera's raw
    values for an image."""
    kind = NOT_SHOWN.get(int(page.photometric))
    what = None if kind is None else f"{kind} values"
    if page.photometric == SEPARATED and not is_cmyk(page):  # spot colours, one plate, ...
        what = f"the amounts of {page.samplesperpixel} ink(s) other than CMYK"
    if what is not None:
        raise ImageReadError(
            path, f"stores {what}, not grey levels or RGB colours; save it as an RGB or grey TIFF"
        )


def as_shown(page, pixels: np.ndarray, profile: bytes | None = None, inks: bool = True):
    """A TIFF page's pixels (samples last) as the file says to show them, as Pillow reads them:
    a palette image's colours, grey stored with 0 as white (scanners, fax) turned round, and
    (``inks``) a print file's CMYK inks as they print (:func:`cmyk_to_rgb`, through
    ``profile``); other pixels as they are."""
    if page.photometric == PALETTE and page.colormap is not None:
        colours = page.colormap if page.colormap.max() < 256 else page.colormap >> 8
        index = pixels[..., 0] if pixels.ndim == 3 else pixels  # (H, W, 1): a region's
        return colours.T.astype(np.uint8)[index]  # TIFF colour maps hold 16 bits
    if page.photometric == MINISWHITE and pixels.dtype == bool:
        return ~pixels
    if page.photometric == MINISWHITE and pixels.dtype.kind == "u":
        return ((1 << page.bitspersample) - 1 - pixels).astype(pixels.dtype)
    if inks and is_cmyk(page):
        return cmyk_to_rgb(pixels, profile)
    if tuple(page.extrasamples[:1]) == (ASSOCIATED_ALPHA,) and pixels.shape[-1] in (2, 4):
        return unpremultiplied(pixels)
    return pixels


# TIFF ExtraSamples: an alpha that the colours are stored multiplied by (premultiplied), and one
# that they are not
ASSOCIATED_ALPHA, UNASSOCIATED_ALPHA = 1, 2
ALPHA_SAMPLES = {ASSOCIATED_ALPHA, UNASSOCIATED_ALPHA}


def unpremultiplied(pixels: np.ndarray) -> np.ndarray:
    """Colours stored multiplied by their alpha (last sample; a renderer's or compositor's TIFF)
    divided by it again, as Pillow reads them: the colour of each pixel itself, not over black.
    Fully transparent pixels stay 0."""
    top = float(np.iinfo(pixels.dtype).max) if pixels.dtype.kind in "ui" else 1.0
    alpha = pixels[..., -1:].astype(np.float64)
    colour = pixels[..., :-1] * np.divide(top, alpha, out=np.zeros_like(alpha), where=alpha > 0)
    colour = np.clip(colour, 0, top)
    colour = colour.round() if pixels.dtype.kind in "ui" else colour
    return np.concatenate([colour, alpha], -1).astype(pixels.dtype)


@functools.lru_cache(maxsize=4)
def _to_srgb(profile: bytes):
    """A transform from the CMYK colour space ``profile`` describes to sRGB: relative
    colorimetric with black point compensation (what print software converts with)."""
    from PIL import ImageCms

    return ImageCms.buildTransform(
        ImageCms.ImageCmsProfile(io.BytesIO(profile)),
        ImageCms.createProfile("sRGB"),
        "CMYK",
        "RGB",
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
        flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
    )


def cmyk_to_rgb(cmyk: np.ndarray, profile: bytes | None = None) -> np.ndarray:
    """(H, W, 4 or more) ink amounts, uint8 or uint16 (CMYK, any further samples ignored), as
    the sRGB colours they print as, (H, W, 3): through the file's own CMYK ICC profile when it
    has one (8-bit then; a damaged profile falls back), else by the plain formula Pillow uses
    (red = (1 - cyan)(1 - black), and so on), which is only near: each press and paper prints
    the same inks differently, which is what the profile describes."""
    inks = np.ascontiguousarray(cmyk[..., :4])
    if inks.dtype != np.uint8 and (profile is None or profile[ICC_COLOUR_SPACE] != b"CMYK"):
        top = float(np.iinfo(inks.dtype).max) if inks.dtype.kind == "u" else 1.0
        light = 1.0 - inks.astype(np.float64) / top
        return np.rint(light[..., :3] * light[..., 3:] * top).astype(inks.dtype)
    if inks.dtype == np.uint16:
        inks = (inks >> 8).astype(np.uint8)  # a profile converts 8-bit inks
    image = Image.frombytes("CMYK", inks.shape[1::-1], inks.tobytes())
    if profile is not None and profile[ICC_COLOUR_SPACE] == b"CMYK":
        from PIL import ImageCms

        try:
            return np.asarray(ImageCms.applyTransform(image, _to_srgb(profile)))
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a damaged profile: the formula
    return np.asarray(image.convert("RGB"))


def _samples_last(page) -> np.ndarray:
    """A TIFF page's pixels with its samples (channels) last, also when stored planar."""
    arr = page.asarray()
    if page.axes.startswith("S") and arr.ndim == 3:
        arr = np.moveaxis(arr, 0, -1)
    return arr


def _separate_samples(page) -> bool:
    """Whether a TIFF page's samples are channels of a microscope (or any instrument), not a
    colour image: more than one sample per pixel, not RGB/YCbCr/palette, and not grey + alpha."""
    if page.samplesperpixel < 2 or page.photometric not in (0, 1):  # MINISWHITE, MINISBLACK
        return False
    return not (page.samplesperpixel == 2 and set(page.extrasamples) & ALPHA_SAMPLES)


@dataclass(frozen=True)
class ChannelLayout:
    """How a TIFF stores channels as pages (ImageJ hyperstacks, OME-TIFF): the sizes of the
    first series' axes before Y and X, and where C is among them."""

    dims: tuple[int, ...]
    axis: int
    axes: str  # e.g. "ZCYX"

    @property
    def channels(self) -> int:
        return self.dims[self.axis]

    @property
    def slices(self) -> int:
        return int(np.prod(self.dims)) // self.channels

    def page(self, index: int, channel: int) -> int:
        others = self.dims[: self.axis] + self.dims[self.axis + 1 :]
        position = list(np.unravel_index(index, others)) if others else []
        position.insert(self.axis, channel)
        return int(np.ravel_multi_index(position, self.dims))


def _channel_layout(tif) -> ChannelLayout | None:
    """The channel layout of a TIFF whose pages are channels (its first series has a C axis
    over single-sample pages of one size, as ImageJ and OME-TIFF write multi-channel images),
    else None: such pages are not the slices of a stack."""
    series = tif.series[0]
    axes, shape = series.axes, tuple(series.shape)
    if "C" not in axes[:-2] or axes[-2:] != "YX" or len(series.pages) != len(tif.pages):
        return None
    if tif.pages[0].samplesperpixel != 1:
        return None
    dims = shape[:-2]
    if int(np.prod(dims)) != len(tif.pages) or not _uniform(tif.pages):
        return None
    return ChannelLayout(dims, axes.index("C"), axes)


def _read_channel_pages(path: Path, tif, layout: ChannelLayout, page, channel, max_pixels):
    if page is None and layout.slices > 1:
        raise ImageReadError(path, multi_page(layout.slices, "slices"))
    index = 0 if page is None else page
    if not 0 <= index < layout.slices:
        raise ImageReadError(path, f"slice {index} requested but the TIFF has {layout.slices}")
    first = tif.pages[0]
    _check_size(path, first.imagewidth, first.imagelength, max_pixels)
    if channel is None and layout.channels > 1:  # not ALL_CHANNELS: that reads them all
        raise ImageReadError(
            path, _channels_text(layout.channels, f"a page each, axes {layout.axes}")
        )
    if channel is None or (isinstance(channel, ModelChannel) and layout.channels == 1):
        return tif.pages[layout.page(index, 0)].asarray()  # its one channel
    if channel == ALL_CHANNELS:
        return np.stack(
            [tif.pages[layout.page(index, c)].asarray() for c in range(layout.channels)], -1
        )
    if not 0 <= channel < layout.channels:
        raise ImageReadError(path, _channel_range(channel, layout.channels))
    return tif.pages[layout.page(index, channel)].asarray()


class ModelChannel(int):
    """The channel a model was trained on (``train --channel``): read where an image has several
    channels; an image of one channel is read as it is (an explicit ``--channel`` that the image
    does not have is refused)."""


def _pick_channel(path: Path, arr: np.ndarray, channel: int | None) -> np.ndarray:
    """Channel ``channel`` of (H, W) or (H, W, C) pixels, (H, W); all of them without one."""
    if channel is None or channel == ALL_CHANNELS:
        return arr
    count = 1 if arr.ndim == 2 else arr.shape[-1]
    if isinstance(channel, ModelChannel) and count == 1:
        return arr
    if not 0 <= channel < count:
        raise ImageReadError(path, _channel_range(channel, count))
    return arr if arr.ndim == 2 else arr[..., channel]


def _channels_text(count: int, how: str) -> str:
    return CHANNELS.format(count, how, count - 1)


def _channel_range(channel: int, count: int) -> str:
    return f"--channel {channel} asked for, but the image has {counted(count, 'channel')}"


@dataclass(frozen=True)
class StackPage:
    """One page (slice) of a multi-page TIFF, read as an image of its own by :func:`read_image`
    (``predict`` and ``segment`` take a stack page by page); its outputs are named
    :func:`page_name`."""

    path: Path
    index: int

    @property
    def name(self) -> str:
        return f"{self.path.name}[{self.index}]"

    def __str__(self) -> str:  # what error messages name
        return f"{self.path} page {self.index}"


def page_name(stem: str, index: int) -> str:
    """The name of page ``index`` of the stack ``stem``.tif, as data items and outputs have it."""
    return f"{stem}-{index:03d}"


MIXED_PAGES = (
    "has {} pages of different sizes and its first image is not the largest (no pyramid or slide "
    "with thumbnails, whose full-resolution image comes first); save the page you want as an "
    "image of its own"
)


def _read_base_level(path: Path, tif, max_pixels: int | None) -> np.ndarray:
    """The full-resolution image of a TIFF whose pages differ in size: a slide scanner's file
    (Aperio SVS: the slide, a thumbnail, smaller levels, label and macro photos) or a pyramid
    stored as consecutive pages. It is the first image when it has more pixels than any other
    page; otherwise the file is refused (``MIXED_PAGES``). Pyramids stored in SubIFDs
    (OME-TIFF, tifffile, libvips) have one top-level page and are read as any image."""
    if not _first_is_base(tif):
        raise ImageReadError(path, MIXED_PAGES.format(len(tif.pages)))
    _check_size(path, tif.pages[0].imagewidth, tif.pages[0].imagelength, max_pixels, STREAMED_HINT)
    return tif.pages[0].asarray()


def _first_is_base(tif) -> bool:
    """Whether a TIFF of pages of several sizes stores its full-resolution image first, as slide
    scanners and page pyramids do: its first series is one page, larger than any other page."""
    pixels = [page.imagewidth * page.imagelength for page in tif.pages]
    return len(tif.series[0].pages) == 1 and pixels[0] >= max(pixels)


def _uniform(pages) -> bool:
    """Whether every page of a TIFF has one shape and type, as the slices of a stack do."""
    return len({(page.shape, page.dtype) for page in pages}) == 1


def stack_size(path: str | os.PathLike) -> int:
    """The number of slices of a TIFF stack (every page of one size and type: an EM volume, a
    z-stack; the pages of one slice's channels count once); 1 for any other image, also for a
    TIFF whose pages differ (a pyramid), which :func:`read_image` reads as its largest page."""
    return count_pages(path, stack=True)


def count_pages(path: str | os.PathLike, stack: bool = False) -> int:
    """Number of pages (slices) of a TIFF stack; 1 for any other image file, and with
    ``stack`` for a TIFF whose pages differ in size or type."""
    path = Path(path)
    _check_file(path)
    if not is_tiff(path):
        return 1
    with _open_tiff(path) as tif:
        layout = _channel_layout(tif) if stack else None
        if layout is not None:
            return layout.slices
        return 1 if stack and not _uniform(tif.pages) else len(tif.pages)


def _is_heif(path: Path, source=None) -> bool:
    """Whether the file (or file object ``source``) starts as a HEIF still image does."""
    if source is None:
        with open(path, "rb") as f:
            head = f.read(12)
    else:
        source.seek(0)
        head = source.read(12)
        source.seek(0)
    return head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS


def _heif_opener() -> bool:
    """Register pillow-heif's opener with Pillow once; False when it is not installed."""
    try:
        import pillow_heif
    except ImportError:
        return False
    if "HEIF" not in Image.ID:
        pillow_heif.register_heif_opener()
    return True


VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi")  # predict and remove-bg's


def _open_unidentified(path: Path, source) -> Image.Image:
    """Pillow did not recognise the file: a HEIF photo opens through pillow-heif when it is
    installed; anything else is an error naming the file (a video's saying what it is)."""
    if not _is_heif(path, source):
        video = Path(path).suffix.lower() in VIDEO_SUFFIXES
        raise ImageReadError(
            path,
            "a video, not an image (predict and remove-bg take videos; for this command, "
            "extract its frames first, e.g. ffmpeg -i CLIP frames/%05d.png)"
            if video
            else "not a recognised image format",
        ) from None
    if not _heif_opener():
        raise ImageReadError(
            path,
            "a HEIC/HEIF photo; reading it needs pillow-heif "
            "(pip install 'pixelwise[heic]'), or save it as JPEG or PNG",
        ) from None
    try:
        return Image.open(path if source is None else source)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageReadError(path, f"cannot open HEIF ({exc})") from None


def _open_pil(path: Path, max_pixels: int | None, source=None) -> Image.Image:
    """Open and decode ``source`` (default: the file ``path``; any file object works), naming
    ``path`` in errors."""
    limit = max_pixels_limit(max_pixels)
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < limit:
        Image.MAX_IMAGE_PIXELS = (
            limit  # our own header check below is the guard; let Pillow reach it
        )
    try:
        img = Image.open(path if source is None else source)
    except UnidentifiedImageError:
        img = _open_unidentified(path, source)
    except Image.DecompressionBombError as exc:
        raise ImageReadError(path, f"decompression bomb guard: {exc}") from None
    except OSError as exc:
        raise ImageReadError(path, f"cannot open ({exc})") from None
    hint = TILED_HINT if source is None else ""  # a file, not an upload
    _check_size(path, img.width, img.height, max_pixels, hint)
    if getattr(img, "n_frames", 1) > 1 and img.format != "MPO":
        raise ImageReadError(  # MPO: the photo first
            path,
            ANIMATION.format(img.n_frames)
            if img.format in ANIMATED_FORMATS
            else multi_page(img.n_frames, "frames"),
        )
    rawmode = deep_png(img)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise undecodable(path, exc) from None
    if rawmode is not None:
        img.deep_pixels = _deep_png(path, source, grey=rawmode.startswith("LA"))
    return img


def undecodable(path: Path, exc: BaseException) -> ImageReadError:
    """The error of an image whose pixels cannot be decoded (a file cut short, corrupt data)."""
    text = str(exc)
    reason = "truncated or corrupt image data" if "truncated" in text or "broken" in text else text
    return ImageReadError(path, f"cannot decode ({reason})")


# 16-bit colour (or grey + alpha) PNGs, which Pillow decodes to 8 bits a sample: a 12-bit camera's
# pixels (0..4095) would come back as 0..15, a black image. OpenCV decodes them whole.
DEEP_PNG = ("RGB;16B", "RGBA;16B", "LA;16B")


def deep_png(img: Image.Image) -> str | None:
    """The raw mode of an opened, not yet decoded PNG of :data:`DEEP_PNG`, else None."""
    rawmode = img.tile[0][3] if img.format == "PNG" and img.tile else None
    return rawmode if rawmode in DEEP_PNG else None


def _deep_png(path: Path, source, grey: bool) -> np.ndarray:
    """The (H, W, C) uint16 pixels of a 16-bit PNG (RGB; or the grey of grey + alpha), as
    stored (alpha dropped), from the file ``path`` or the file object ``source``."""
    import cv2

    if source is None:
        data = np.fromfile(path, np.uint8)
    else:
        source.seek(0)
        data = np.frombuffer(source.read(), np.uint8)
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16 or arr.ndim != 3:
        raise ImageReadError(path, "cannot decode (16-bit PNG)")
    return np.ascontiguousarray(arr[..., :1] if grey else arr[..., 2::-1])  # BGR(A) -> RGB


UPRIGHT = {  # an array as stored -> upright, by EXIF orientation (as ImageOps.exif_transpose)
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def _pil_image_to_array(img: Image.Image, upright: bool = True) -> np.ndarray:
    deep = getattr(img, "deep_pixels", None)  # set by _open_pil on this image object alone
    if deep is not None:
        turn = UPRIGHT.get(img.getexif().get(EXIF_ORIENTATION)) if upright else None
        return np.ascontiguousarray(turn(deep)) if turn else deep
    netpbm = img.format == "PPM"  # a PGM of more than 8 bits: mode I, scaled to 0..65535
    if upright:
        img = upright_image(img)
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L") or (mode == "I" and netpbm):
        return np.asarray(img).astype(np.uint16)[..., None]
    if mode in ("I", "F"):
        return np.asarray(img)[..., None]
    if mode in ("1", "L", "LA"):
        return np.asarray(img.convert("L"))[..., None]
    if mode == "CMYK":  # a print file's JPEG: its inks through its own profile
        return cmyk_to_rgb(np.asarray(img), img.info.get("icc_profile"))
    return np.asarray(in_mode(img, "RGB"))


def in_mode(img: Image.Image, mode: str) -> Image.Image:
    """``img.convert(mode)``, or ``img`` itself when it is in that mode already, where Pillow
    copies it whole (192 MB of a 48-megapixel photo)."""
    return img if img.mode == mode else img.convert(mode)


def upright_image(img: Image.Image) -> Image.Image:
    """A PIL image turned upright by its EXIF orientation (``ImageOps.exif_transpose``); the
    image itself when there is nothing to turn, where exif_transpose copies it whole (192 MB of
    a 48-megapixel photo)."""
    return ImageOps.exif_transpose(img) if img.getexif().get(EXIF_ORIENTATION) in UPRIGHT else img


def _normalise_channels(path: Path, arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ImageReadError(path, f"expected a 2D image, got an array of shape {arr.shape}")
    if arr.shape[0] in (3, 4) and arr.shape[-1] not in (1, 3, 4):  # planar TIFF (C, H, W)
        arr = np.moveaxis(arr, 0, -1)
    if arr.shape[-1] == 4:
        arr = arr[..., :3]  # drop alpha
    if arr.shape[-1] == 2:
        arr = arr[..., :1]  # grey + alpha
    if arr.shape[-1] not in (1, 3):
        raise ImageReadError(path, f"unsupported channel count {arr.shape[-1]}")
    return np.ascontiguousarray(arr)


def read_image(
    path: str | os.PathLike,
    page: int | None = None,
    max_pixels: int | None = None,
    channel: int | None = None,
    as_stored: bool = False,
) -> np.ndarray:
    """Read an image file as a (H, W, C) uint8/uint16 array, C = 1 (grey) or 3 (colour), turned
    upright by its EXIF orientation (``as_stored``: its pixels as the file stores them).

    ``page`` selects a slice of a multi-page TIFF (default: the first; a multi-page TIFF without
    a page is refused); ``path`` may be a :class:`StackPage`. ``channel`` reads that channel
    alone, as a grey image: of a multi-channel microscope image (an ImageJ hyperstack or
    OME-TIFF with a C axis, a TIFF with more than one grey sample per pixel), which is refused
    without it, or of a colour image.
    """
    if isinstance(path, StackPage):
        path, page = path.path, path.index
    path = Path(path)
    _check_file(path)
    if is_tiff(path):
        arr = _pixel_type(path, _read_tiff(path, page, max_pixels, channel))
    else:
        opened = _open_pil(path, max_pixels)
        arr = _pick_channel(path, _pil_image_to_array(opened, not as_stored), channel)
    return _normalise_channels(path, arr)


FLOAT_EXACT = 2**24  # integers up to this size are held exactly by 32-bit floats


def _pixel_type(path: Path, arr: np.ndarray) -> np.ndarray:
    """A TIFF's pixels in a type the models take: a binary image as 0 and 255, 32- or 64-bit
    integers within 0..65535 as 16-bit (ImageJ and some microscopes write 32-bit), 64-bit floats
    as 32-bit. Integers below 0 or beyond 16 bits (a CT scan's signed 16-bit values) as 32-bit
    floats, which hold them exactly: taken as they are by a model trained on such images, mapped
    to 0..1 by ``--input-range LO,HI`` for others (the float check says so). Integers beyond
    what floats hold exactly are refused with their range."""
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if arr.dtype.kind == "f" and arr.dtype != np.float32:
        return arr.astype(np.float32)
    if arr.dtype.kind not in "iu" or arr.dtype in (np.uint8, np.uint16) or not arr.size:
        return arr
    low, high = int(arr.min()), int(arr.max())
    if 0 <= low and high <= 65535:
        return arr.astype(np.uint16)
    if -FLOAT_EXACT <= low and high <= FLOAT_EXACT:
        return arr.astype(np.float32)
    raise ImageReadError(
        path,
        f"{arr.dtype} pixels from {low} to {high}, beyond what 32-bit floats hold exactly; "
        "save them as 16-bit integers (0..65535) or as floats",
    )


EXIF_ORIENTATION = 0x0112
QUARTER_TURNS = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def quarter_turned(path: str | os.PathLike) -> int | None:
    """The EXIF orientation of an image file stored a quarter turn from upright, one that swaps
    its width and height (phones' portrait photos), else None (TIFFs, stack pages included, are
    read as stored)."""
    if not isinstance(path, (str, os.PathLike)) or is_tiff(path):
        return None
    try:
        with Image.open(path) as image:
            return quarter_turn_of(image)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return None


def quarter_turn_of(image: Image.Image) -> int | None:
    """:func:`quarter_turned` of an opened image (a TIFF's tag is not applied: None)."""
    orientation = image.getexif().get(EXIF_ORIENTATION)
    return orientation if orientation in QUARTER_TURNS and image.format != "TIFF" else None


# an upright array -> as stored, by EXIF orientation (exif_transpose undone): a transpose (5)
# and a transverse (7) undo themselves, and the two quarter turns (6, 8) undo each other
UNTURNED = {5: UPRIGHT[5], 6: UPRIGHT[8], 7: UPRIGHT[7], 8: UPRIGHT[6]}


def laid_as_stored(array: np.ndarray, path: str | os.PathLike) -> np.ndarray:
    """``array`` (H, W, ...), laid out as the image at ``path`` is read upright, laid out as the
    file stores its pixels (for an image stored a quarter turn from upright)."""
    return np.ascontiguousarray(UNTURNED[quarter_turned(path)](array))


def drawn_as_stored(path: str | os.PathLike, shape: tuple[int, int], upright) -> bool:
    """Whether an annotation of ``shape`` (height, width) was drawn on the pixels of the image
    at ``path`` as stored, not turned upright (``upright``: its shape so; a square's two are
    alike): a labelling tool that ignored the photo's EXIF orientation drew it there."""
    swapped = tuple(shape) == tuple(upright)[::-1] != tuple(upright)
    return swapped and quarter_turned(path) is not None


def open_image_bytes(
    data: bytes, name: str, max_pixels: int | None = None
) -> Image.Image | np.ndarray:
    """An encoded image held in memory (e.g. an HTTP upload) opened and decoded as a file is
    (the same size guard; multi-page files refused); ``name`` stands for the file in errors.
    A PIL image; a TIFF, decoded by tifffile as a TIFF file is (16 bits and floats kept, which
    Pillow would narrow or refuse), an (H, W, C) array with its alpha, if any, last."""
    if not data:
        raise ImageReadError(name, "empty file (0 bytes)")
    if data[:4] in TIFF_MAGIC:
        return tiff_samples(Path(name), max_pixels, io.BytesIO(data))
    return _open_pil(Path(name), max_pixels, io.BytesIO(data))


def tiff_samples(path: Path, max_pixels: int | None = None, source=None) -> np.ndarray:
    """A TIFF's image as :func:`read_image` reads it, but with every sample kept: (H, W, S), its
    alpha, if any, last (from the file object ``source`` when given, ``path`` naming it)."""
    arr = _pixel_type(path, _read_tiff(path, None, max_pixels, None, source))
    return arr if arr.ndim == 3 else arr[..., None]


def decoded_bytes(image, name: str = "image"):
    """An encoded image file's contents (bytes, or a binary file object such as ``open(path,
    "rb")`` or an upload's, read to its end) opened as a PIL image (:func:`open_image_bytes`,
    ``name`` or the file object's own standing for it in errors); anything else as it is."""
    if hasattr(image, "read") and not isinstance(image, Image.Image):
        name = str(getattr(image, "name", name))
        if isinstance(image, io.TextIOBase) or not isinstance(image := image.read(), bytes):
            raise ValueError(f"{name}: a file opened as text; open it in binary mode ('rb')")
    if isinstance(image, (bytes, bytearray, memoryview)):
        return open_image_bytes(bytes(image), name)
    return image


def read_image_bytes(data: bytes, name: str, max_pixels: int | None = None) -> np.ndarray:
    """:func:`read_image` for an encoded image held in memory (:func:`open_image_bytes`)."""
    opened = open_image_bytes(data, name, max_pixels)
    if isinstance(opened, Image.Image):
        opened = _pil_image_to_array(opened)
    return _normalise_channels(Path(name), opened)


def transparency(image) -> np.ndarray | None:
    """The (H, W) uint8 alpha of a PIL image or an array when it has one with some pixel not
    opaque, else None: an RGBA or grey + alpha image (PNG, WebP), a palette or grey image with a
    transparent colour (GIF, PNG), an (H, W, 4) or (H, W, 2) array (16-bit and float alpha
    scaled as :func:`as_image` scales the pixels). EXIF orientation applied, as by
    :func:`as_image`."""
    if isinstance(image, Image.Image):
        if (
            image.mode not in ("RGBA", "LA", "PA", "RGBa", "La")
            and "transparency" not in image.info
        ):
            return None
        has_colour = image.mode not in ("LA", "La", "L", "1", "I", "I;16", "F")
        alpha = np.asarray(
            in_mode(upright_image(image), "RGBA" if has_colour else "LA").getchannel("A")
        )
    else:
        arr = np.asarray(image)
        if arr.ndim == 3 and arr.shape[0] == 4 and arr.shape[-1] not in (1, 2, 3, 4):
            arr = np.moveaxis(arr, 0, -1)  # channels first
        if arr.ndim != 3 or arr.shape[-1] not in (2, 4) or arr.dtype.kind not in "uf":
            return None
        alpha = arr[..., -1]
        if alpha.dtype != np.uint8:
            unit = alpha / 65535.0 if alpha.dtype == np.uint16 else alpha.astype(np.float64)
            alpha = np.rint(np.clip(unit, 0, 1) * 255).astype(np.uint8)
    return alpha if alpha.min() < 255 else None


def rgb_profile(image) -> bytes | None:
    """The ICC colour profile embedded in a colour photo (a path, or a PIL image) when it is one
    of RGB data (a phone's Display P3, a camera's Adobe RGB, sRGB): what makes its colours show
    right, and what a cut-out of it carries so that they still do. None without one, for other
    profiles (CMYK, grey: the cut-out's RGB pixels are not their data) and for arrays."""
    profile = None
    if isinstance(image, Image.Image):
        profile = image.info.get("icc_profile")
    elif isinstance(image, (str, os.PathLike)) and os.path.isfile(image):
        try:
            if is_tiff(image):
                with tifffile.TiffFile(image) as tif:
                    profile = tiff_profile(tif.pages.first)
            else:
                with Image.open(image) as opened:
                    profile = opened.info.get("icc_profile")
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            return None  # an unreadable file has no profile; reading it says why
    return profile if profile and profile[ICC_COLOUR_SPACE] == b"RGB " else None


def image_and_transparency(image, name: str = "image") -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`as_image` of ``image`` (a path, PIL image, array or encoded bytes) and its
    :func:`transparency`; a file is decoded once."""
    image = decoded_bytes(image, name)
    if isinstance(image, (str, os.PathLike)) and not is_tiff(image):
        path = Path(image)
        _check_file(path)
        opened = _open_pil(path, None)
        pixels = _normalise_channels(path, _pil_image_to_array(opened))  # as read_image reads it
        if pixels.dtype.kind == "f":  # checked as as_image checks a float file
            pixels = as_image(pixels, name)
        return pixels, transparency(opened)
    if isinstance(image, (str, os.PathLike)):  # a TIFF: its samples, the alpha last if any
        _check_file(Path(image))
        samples = tiff_samples(Path(image))
        return as_image(samples, name), transparency(samples)
    return as_image(image, name), transparency(image)


def as_image(
    image, name: str = "image", any_floats: bool = False, channel: int | None = None
) -> np.ndarray:
    """The one way every entry point reads an image: a path, a PIL image, an array or an encoded
    file's bytes (or a binary file object, :func:`decoded_bytes`) becomes an (H, W, C) array
    with C in {1, 3} of dtype uint8, uint16 or float32 (floats in [0, 1]).

    Arrays may be (H, W), (H, W, C) with C in {1, 2, 3, 4} (alpha dropped), or channels-first
    (C, H, W) when that reading is unambiguous; anything else is refused with the shape found,
    as are empty arrays, batches, other dtypes, NaN or infinite values and floats outside
    [0, 1]. ``any_floats``: floats of any finite range are taken as they are (for a model
    trained on float images, whose normalisation was computed on their own values); a float
    TIFF file is checked as an array is. ``channel``: a file's channel read alone
    (:func:`read_image`; a model trained with ``--channel``)."""
    image = decoded_bytes(image, name)
    if isinstance(image, (str, os.PathLike)):
        image = read_image(image, channel=channel)
        if image.dtype.kind != "f":
            return image
    if isinstance(image, Image.Image):
        return _normalise_channels(Path(name), _pil_image_to_array(image))
    arr = np.asarray(image)
    if arr.size == 0:
        raise ValueError(f"{name}: empty array of shape {arr.shape}")
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 2, 3, 4):
        arr = np.moveaxis(arr, 0, -1)  # channels first
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (1, 2, 3, 4)):
        raise ValueError(
            f"{name}: expected an (H, W) or (H, W, C) image with C in 1..4, got shape {arr.shape}"
        )
    if arr.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        if bad:
            raise ValueError(
                f"{name}: float images must hold values in [0, 1], got {bad} pixel value(s) "
                "that are NaN or infinite (no data?); fill them first"
            )
        if not any_floats and (arr.min() < 0 or arr.max() > 1):
            raise ValueError(
                f"{name}: float images must hold values in [0, 1] (a model trained on float "
                "images takes any range; integers below 0 or over 65535 are read as floats), "
                f"got {arr.min():.4g}..{arr.max():.4g}; --input-range LO,HI maps another range "
                "to it"
            )
        arr = arr.astype(np.float32)
    elif arr.dtype not in (np.uint8, np.uint16):
        raise ValueError(
            f"{name}: unsupported dtype {arr.dtype}; give uint8, uint16 or float in [0, 1]"
        )
    return _normalise_channels(Path(name), arr)


def read_mask(
    path: str | os.PathLike, page: int | None = None, max_pixels: int | None = None
) -> np.ndarray:
    """Read a label image as a (H, W) integer array of the stored values.

    Class-id PNGs (mode L), palette PNGs (the palette index is the value) and 16-bit
    instance-label PNG/TIFF files are returned unchanged. Colour masks (8-bit RGB or RGBA, alpha
    ignored) hold one colour per class: each pixel's value is its colour as the integer
    ``0xRRGGBB`` (:func:`colour_value`), so ``--mask-values '#000000,#ff0000'`` or a
    ``classes.json`` with ``color_rgb`` per class names the classes. A cut-out (a photo with
    transparency, as background removers save them: :func:`is_cutout`) is a black-and-white
    mask, white where its alpha is at least 128. A folder of one mask per object gives their
    label image (:func:`read_object_masks`).
    """
    path = Path(path)
    if path.is_dir():
        return read_object_masks(path)
    _check_file(path)
    grey_alpha = False
    if is_tiff(path):
        arr = _read_tiff(path, page, max_pixels, shown=False)  # a palette's indices
        alpha_last = arr.ndim == 3 and arr.shape[-1] == 4 and arr.dtype == np.uint8
    else:
        img = _open_pil(path, max_pixels)
        arr = np.asarray(img.convert("L") if img.mode == "1" else img)
        alpha_last, grey_alpha = img.mode in ("RGBA", "LA"), img.mode == "LA"
    if alpha_last and is_cutout(arr):
        return np.where(arr[..., -1] >= 128, 255, 0).astype(np.uint8)
    arr = arr[..., 0] if grey_alpha else arr
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[-1] in (3, 4) and arr.dtype == np.uint8:
        arr = packed_colours(arr[..., :3])
    if arr.ndim != 2:
        raise ImageReadError(path, f"mask must be a single-channel image, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ImageReadError(path, f"mask must hold integers, got {arr.dtype}")
    return arr


# More colours (grey levels) than this among a transparent PNG's sampled pixels make it a photo
# (a cut-out), not classes painted on a transparent background.
CUTOUT_COLOURS, CUTOUT_GREYS = 256, 32


def is_cutout(pixels: np.ndarray) -> bool:
    """Whether (H, W, C) uint8 pixels with alpha last are a cut-out: some pixel not opaque and
    more than :data:`CUTOUT_COLOURS` colours (:data:`CUTOUT_GREYS` grey levels) among about
    65,000 sampled pixels."""
    if pixels[..., -1].min() == 255:
        return False
    step = max(1, int(np.sqrt(pixels.shape[0] * pixels.shape[1] / 65536)))
    sample = pixels[::step, ::step, :-1].reshape(-1, pixels.shape[-1] - 1)
    limit = CUTOUT_COLOURS if sample.shape[1] == 3 else CUTOUT_GREYS
    return len(np.unique(sample, axis=0)) > limit


def read_alpha(path: str | os.PathLike) -> np.ndarray | None:
    """The (H, W) uint8 alpha of a PNG, WebP or TIFF cut-out (RGBA or grey + alpha with some
    pixel not opaque; a TIFF's alpha marked as such), or None for any other file (an opaque RGBA
    file is read as a colour mask)."""
    path = Path(path)
    if is_tiff(path):
        _check_file(path)
        with _open_tiff(path) as tif:
            page = tif.pages.first
            marked = set(page.extrasamples) & ALPHA_SAMPLES
            if page.samplesperpixel not in (2, 4) or not marked or len(tif.pages) > 1:
                return None
        return transparency(tiff_samples(path))
    if path.suffix.lower() not in (".png", ".webp"):
        return None
    _check_file(path)
    img = _open_pil(path, None)
    if img.mode not in ("RGBA", "LA"):
        return None
    alpha = np.asarray(img.getchannel("A"))
    return alpha if alpha.min() < 255 else None


def packed_colours(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 colours -> (H, W) int32 values ``0xRRGGBB``: one value per colour."""
    value = rgb[..., 0].astype(np.int32) << 16
    value |= rgb[..., 1].astype(np.int32) << 8
    value |= rgb[..., 2]
    return value


def colour_value(text: str) -> int:
    """``'#rrggbb'`` -> the value a pixel of that colour has in a colour mask (``0xRRGGBB``)."""
    digits = text.strip().removeprefix("#")
    if len(digits) != 6 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise ValueError(f"expected a colour as #rrggbb, got {text!r}")
    return int(digits, 16)


def colour_name(value: int) -> str:
    """``0xRRGGBB`` -> ``'#rrggbb'``."""
    return f"#{int(value):06x}"


def read_object_masks(folder: Path) -> np.ndarray:
    """The label image of a folder of one mask per object (Kaggle's DSB2018
    ``stage1_train/<id>/masks/``): object ``k`` is the ``k``-th file in name order, its nonzero
    pixels; where two overlap, the later file's. uint16, or uint32 beyond 65535 objects."""
    files = image_files(folder, recursive=False)
    if not files:
        raise ImageReadError(folder, "a folder of object masks without a mask file")
    labels = None
    for k, path in enumerate(files, start=1):
        mask = read_mask(path)
        if labels is None:
            labels = np.zeros(mask.shape, np.uint16 if len(files) <= 65535 else np.uint32)
        if mask.shape != labels.shape:
            raise ImageReadError(
                path,
                f"{mask.shape[1]} x {mask.shape[0]} pixels, {files[0].name} beside it "
                f"{labels.shape[1]} x {labels.shape[0]} (one image's object masks)",
            )
        labels[mask > 0] = k
    return labels


def is_colour_mask(path: str | os.PathLike) -> bool:
    """Whether :func:`read_mask` gives this file's pixels as packed colours (from its header;
    of an RGBA file, from its pixels)."""
    path = Path(path)
    if is_tiff(path):
        try:
            with _open_tiff(path) as tif:
                page = tif.pages[0]
                colours = len(page.shape) == 3 and page.shape[-1] in (3, 4)
                if not colours or page.dtype != np.uint8:
                    return False
            if page.shape[-1] == 4:  # a cut-out is read as black and white
                return not is_cutout(_read_tiff(path, None, None, shown=False))
            return True
        except Exception:
            return False
    try:
        with Image.open(path) as img:
            if img.mode == "RGBA":  # a cut-out is read as black and white
                return not is_cutout(np.asarray(img))
            return img.mode in ("RGB", "RGBX")
    except (OSError, UnidentifiedImageError):
        return False


def mask_palette(path: str | os.PathLike) -> np.ndarray | None:
    """The (N, 3) uint8 palette of a palette-image mask (PNG, GIF: its colour of each stored
    value), else None; read from the header."""
    try:
        with Image.open(path) as img:
            palette = img.getpalette() if img.mode == "P" else None
    except (OSError, UnidentifiedImageError):
        return None
    return np.asarray(palette, np.uint8).reshape(-1, 3) if palette else None


# Pillow's names of the formats whose files may hold an animation: GIF, APNG, animated WebP
ANIMATED_FORMATS = ("GIF", "PNG", "WEBP")
ANIMATION = (
    "has {} frames, an animation: remove-bg cuts it out frame by frame (in Python: "
    "pixelwise.video.read_animation and cut_each); the other commands read one image per file"
)


def multi_page(count: int, what: str) -> str:
    return (
        f"has {count} {what}; this reads one image per file (split it into files; predict and "
        "segment take a TIFF stack page by page, and training TIFF stacks named *-volume.tif / "
        "*-labels.tif)"
    )


def is_hidden(path: Path, root: Path) -> bool:
    """Whether ``path``, below ``root``, is hidden or in a hidden folder: a name starting with
    '.' (the ``._photo.jpg`` metadata files macOS writes beside each file it copies to a drive,
    ``.ipynb_checkpoints``) or ``__MACOSX`` (the same files in a zip made on a Mac)."""
    return any(part.startswith(".") or part == "__MACOSX" for part in path.relative_to(root).parts)


# written in each folder a batch writes its outputs to, and in each training run's folder: its
# files are no inputs of later runs
OUTPUT_MARK = ".pixelwise-output"


def image_files(folder: Path, recursive: bool = True) -> list[Path]:
    """The image files in ``folder`` (and its folders, ``recursive``), sorted; hidden ones
    (:func:`is_hidden`) left out."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        f
        for f in found
        if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file() and not is_hidden(f, folder)
    )


def list_images(paths: list[str | os.PathLike]) -> list[Path]:
    """Expand files and folders (recursively, :func:`image_files`, each sorted) into a list of
    image files, in the order given; a file given twice (a folder and a file in it, overlapping
    shell patterns) is listed once, where it came first."""
    out: list[Path] = []
    seen: set[Path] = set()
    for p in map(Path, paths):
        for file in image_files(p) if p.is_dir() else [p]:
            if (same := file.resolve()) not in seen:
                seen.add(same)
                out.append(file)
    return out
