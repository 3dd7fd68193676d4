"""The size of a pixel, in micrometres, as a microscope's or a slide scanner's TIFF records it,
so that ``segment --measure`` can give areas and lengths in µm² and µm as QuPath does.

Read, in this order: an OME-TIFF's ``PhysicalSizeX``/``PhysicalSizeY`` (with their units; µm
when none is given), Aperio's ``MPP = 0.2520`` in an SVS file's description, ImageJ's ``unit=``
with the page's resolution (pixels per unit), and a resolution in pixels per centimetre. A
resolution in pixels per inch is not read: cameras and image editors write 72 or 300 dots per
inch, a print size, not the size of what was imaged; nor are a PNG's or JPEG's. Pixels that
are not square (the two sizes more than 1 % apart) give no size.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import tifffile

from pixelwise.data.io import TIFF_MAGIC, ImageReadError, _open_tiff

# micrometres per unit, by the names OME-XML and ImageJ write
MICROMETRES = {
    "pm": 1e-6,
    "nm": 1e-3,
    "µm": 1.0,
    "μm": 1.0,  # the Greek letter mu, which some writers use for the micro sign
    "um": 1.0,
    "micron": 1.0,
    "microns": 1.0,
    "mm": 1e3,
    "cm": 1e4,
    "m": 1e6,
}
CENTIMETRE = 3  # TIFF ResolutionUnit


def pixel_size_um(path: str | os.PathLike) -> float | None:
    """The side of a pixel of ``path`` in µm, as the file records it (module docstring), or
    None where it records none (any file that is not a TIFF, or cannot be read as one)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            if f.read(4) not in TIFF_MAGIC:
                return None
    except OSError:
        return None
    try:
        with _open_tiff(path) as tif:
            return recorded(tif)
    except ImageReadError:  # a damaged file: reading its pixels says what is wrong with it
        return None


def recorded(tif: tifffile.TiffFile) -> float | None:
    """:func:`pixel_size_um` of an open TIFF; None too where its metadata cannot be read (a
    resolution of 1/0, damaged OME-XML): the size is extra information, never a reason to fail
    reading the image."""
    try:
        return _recorded(tif)
    except Exception:  # tifffile and the metadata's own parsers raise many types
        return None


def _recorded(tif: tifffile.TiffFile) -> float | None:
    page = tif.pages.first
    if tif.is_ome:
        return _square(*_ome_sizes(tif.ome_metadata or ""))
    mpp = re.search(r"\bMPP\s*=\s*([0-9.eE+-]+)", page.description or "")
    if tif.is_svs and mpp:
        return _positive(float(mpp.group(1)))
    x, y = (_per_pixel(page, name) for name in ("XResolution", "YResolution"))
    if x is None or y is None:
        return None
    if tif.is_imagej:
        unit = (tif.imagej_metadata or {}).get("unit", "")
        unit = unit.encode().decode("unicode_escape") if "\\u" in unit else unit
        scale = MICROMETRES.get(unit.strip())
        return None if scale is None else _square(x * scale, y * scale)
    unit = page.tags.get("ResolutionUnit")
    if unit is not None and int(unit.value) == CENTIMETRE:
        return _square(x * 1e4, y * 1e4)
    return None


def _per_pixel(page, name: str) -> float | None:
    """Units per pixel from a resolution tag (pixels per unit), or None."""
    tag = page.tags.get(name)
    if tag is None:
        return None
    value = tag.value
    if isinstance(value, tuple):
        per_unit = value[0] / value[1] if len(value) == 2 and value[1] else 0.0
    else:
        per_unit = float(value)
    return 1 / per_unit if per_unit > 0 else None


def _ome_sizes(xml: str) -> tuple[float | None, float | None]:
    """The first image's PhysicalSizeX and PhysicalSizeY in µm, None for either not given."""
    found = re.search(r"<(?:\w+:)?Pixels\b([^>]*)>", xml)
    attributes = dict(re.findall(r'(\w+)="([^"]*)"', found.group(1))) if found else {}
    sizes = []
    for axis in "XY":
        try:
            value = float(attributes[f"PhysicalSize{axis}"])
        except (KeyError, ValueError):
            sizes.append(None)
            continue
        scale = MICROMETRES.get(attributes.get(f"PhysicalSize{axis}Unit", "µm"))
        sizes.append(None if scale is None else value * scale)
    return sizes[0], sizes[1]


def _square(x: float | None, y: float | None) -> float | None:
    if x is None or y is None or x <= 0 or y <= 0 or abs(x - y) > 0.01 * max(x, y):
        return None
    return _positive((x + y) / 2)


def _positive(size: float) -> float | None:
    return float(f"{size:.6g}") if size > 0 else None  # 0.65, not 0.6499999999999999


def common_pixel_size(paths) -> float | None:
    """The pixel size (µm) that every file of ``paths`` records, the median of them when they
    are all within 10 % of it; None when any records none or they differ more (a model trained
    on them learned objects at that scale: :func:`scale_note`)."""
    import numpy as np

    sizes = [pixel_size_um(p) for p in dict.fromkeys(paths)]
    if not sizes or None in sizes:
        return None
    middle = float(np.median(sizes))
    return middle if all(abs(s - middle) <= 0.1 * middle for s in sizes) else None


def scale_note(
    name: str, size: float | None, learned: float | None, scale: float = 1.0
) -> str | None:
    """The note for an image of ``size`` µm a pixel, resized by ``scale`` (``--scale``), given to
    a model that learned at ``learned`` µm, when what the network sees differs by more than 10 %
    from that; None otherwise or when either size is unknown."""
    if size is None or learned is None:
        return None
    seen = size / scale
    if abs(seen - learned) <= 0.1 * learned:
        return None
    ratio = learned / seen
    how = "larger" if ratio > 1 else "smaller"
    given = f" at --scale {scale:g}" if scale != 1.0 else ""
    return (
        f"{name}: {size:g} µm a pixel, the model learned at {learned:g} µm: its objects appear"
        f"{given} {max(ratio, 1 / ratio):.2g}x {how} than the model saw them (--scale "
        f"{size / learned:.3g} shows them at the size it learned)"
    )
