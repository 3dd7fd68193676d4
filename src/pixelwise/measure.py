"""Object measurements: one row per object of an instance label image, what counting and
sizing cells (or any objects) needs, written as one CSV for a batch (``segment --measure``).

Columns: the image, the object's number in its label image, its class, ``area`` (pixels),
``centroid_x``/``centroid_y`` (mean pixel position, pixel centres at integers), the tight box
``bbox_x0, bbox_y0`` (first pixel) to ``bbox_x1, bbox_y1`` (one past the last),
``equivalent_diameter`` (of the disc of the same area), ``perimeter`` (scikit-image's, along
the 4-connected outline), ``eccentricity`` (of the ellipse of the same second moments: 0 a
disc, towards 1 elongated), ``solidity`` (area over its convex hull's), ``mean_intensity``
(the mean over the object's pixels of the image's mean over its channels, in the image's own
values: 0-255 for 8-bit) and, for colour images, ``mean_red``/``mean_green``/``mean_blue``.
When one channel of a multi-channel microscope image was segmented (``segment --channel``), the
mean intensity is that channel's, and ``mean_channel_0``, ``mean_channel_1``, ... follow: each
channel's mean over the object (a nucleus found in the DNA stain, measured in every stain).
With cells around the objects (``segment --expand``: each object grown by some pixels,
:func:`pixelwise.instances.expand_cells`), the same area and intensity columns follow for the
whole cell (``cell_area``, ``cell_mean_intensity``, ...) and for its cytoplasm, the cell
without its object (``cytoplasm_area``, ``cytoplasm_mean_intensity``, ...; empty where the
object has no room to grow): a membrane or cytoplasm stain measured around each nucleus.
With ``stains`` (``segment --stains``, brightfield RGB images), ``mean_hematoxylin``,
``mean_eosin`` and ``mean_dab`` follow the colours: each stain's mean optical density over the
object by colour deconvolution (Ruifrok and Johnston's stain vectors, scikit-image's
``hed_from_rgb``; optical density -log10 of each colour's share of the full range, at most
log10(255)), the quantity an immunohistochemistry score thresholds (DAB in a nucleus or its
cytoplasm).
"""

from __future__ import annotations

import csv
import io

import numpy as np

COLUMNS = (
    "image",
    "object",
    "class",
    "area",
    "centroid_x",
    "centroid_y",
    "bbox_x0",
    "bbox_y0",
    "bbox_x1",
    "bbox_y1",
    "equivalent_diameter",
    "perimeter",
    "eccentricity",
    "solidity",
    "mean_intensity",
    "mean_red",
    "mean_green",
    "mean_blue",
)


def measure_objects(
    labels: np.ndarray,
    image: np.ndarray,
    names: list[str],
    classes: np.ndarray | None = None,
    channels: np.ndarray | None = None,
    cells: np.ndarray | None = None,
    stains: bool = False,
) -> list[dict]:
    """A row (:data:`COLUMNS` but ``image``) per object 1..N of ``labels`` present in it, with
    the (H, W[, C]) ``image`` it was found in; its class is ``names[0]``, or with ``classes``
    (an image of category ids 1.. at the objects' pixels) ``names[id - 1]``. ``channels``: the
    (H, W, C) channels of a multi-channel image, each measured (``mean_channel_K``). ``cells``:
    each object's cell (a label image, the objects' numbers), measured as a whole and without
    its object (``cell_...``, ``cytoplasm_...``). ``stains``: each stain's optical density
    too (an RGB ``image``)."""
    from skimage.measure import regionprops

    pixels = image.reshape(*labels.shape, -1)  # (H, W, C): means per channel
    count, extra = pixels.shape[-1], []
    if channels is not None:  # measured beside the image the objects were found in
        pixels = np.concatenate([pixels, channels.reshape(*labels.shape, -1)], axis=-1)
        extra += [f"mean_channel_{k}" for k in range(pixels.shape[-1] - count)]
    densities = stain_densities(image) if stains else None  # float32, measured apart
    around = stain_means(labels, densities, "")
    if cells is not None:
        for prefix, parts in (("cell_", cells), ("cytoplasm_", np.where(labels > 0, 0, cells))):
            parts = parts.astype(np.int64)
            for region in regionprops(parts, intensity_image=pixels):
                found = intensities(region, count, extra, prefix)
                around.setdefault(region.label, {}).update(found)
            for k, found in stain_means(parts, densities, prefix).items():
                around.setdefault(k, {}).update(found)
    rows = []
    for region in regionprops(labels.astype(np.int64), intensity_image=pixels):
        y0, x0, y1, x1 = region.bbox
        cy, cx = region.centroid
        category = 1 if classes is None else int(classes[tuple(region.coords[0])])
        row = {
            "object": region.label,
            "class": names[category - 1],
            "area": int(region.area),
            "centroid_x": round(float(cx), 3),
            "centroid_y": round(float(cy), 3),
            "bbox_x0": x0,
            "bbox_y0": y0,
            "bbox_x1": x1,
            "bbox_y1": y1,
            "equivalent_diameter": round(float(region.equivalent_diameter_area), 3),
            "perimeter": round(float(region.perimeter), 3),
            "eccentricity": round(float(region.eccentricity), 4),
            "solidity": round(float(region.solidity), 4),
        }
        rows.append(row | intensities(region, count, extra) | around.get(region.label, {}))
    return rows


STAINS = ("hematoxylin", "eosin", "dab")  # the order of scikit-image's hed_from_rgb


def stain_densities(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 optical densities of :data:`STAINS` at each pixel of an RGB image, by
    colour deconvolution (module docstring); ValueError for other images."""
    from skimage.color import hed_from_rgb

    check_stains(image)
    full = 1.0 if image.dtype.kind == "f" else float(np.iinfo(image.dtype).max)
    share = np.clip(image.astype(np.float32) / np.float32(full), 1 / 255, 1)
    return -np.log10(share) @ hed_from_rgb.astype(np.float32)


def stain_means(labels: np.ndarray, densities: np.ndarray | None, prefix: str) -> dict:
    """Each object's mean of each stain's optical density (``densities``:
    :func:`stain_densities`), by its number, named ``prefix + "mean_" + stain``; none without
    densities."""
    from skimage.measure import regionprops

    if densities is None:
        return {}
    return {
        region.label: {
            f"{prefix}mean_{stain}": round(float(v), 3)
            for stain, v in zip(STAINS, region.intensity_mean)
        }
        for region in regionprops(labels.astype(np.int64), intensity_image=densities)
    }


def check_stains(image: np.ndarray) -> None:
    """ValueError unless ``image`` (or a piece of it) is RGB, as :func:`stain_densities`
    needs."""
    if image.ndim != 3 or image.shape[-1] != 3:
        channels = 1 if image.ndim == 2 else image.shape[-1]
        raise ValueError(
            f"--stains measures brightfield RGB images; this one has {channels} channel(s)"
        )


def intensities(region, count: int, extra: list[str], prefix: str = "") -> dict:
    """A region's (scikit-image's) area and mean intensities as :func:`measure_objects` names
    them, after ``prefix``: the mean over the image's ``count`` channels, each colour's for a
    colour image, and the means of the further channels, named ``extra``."""
    means = np.atleast_1d(region.intensity_mean)
    means, more = means[:count], np.round(means[count:], 3).tolist()
    found = {"area": int(region.area), "mean_intensity": round(float(means.mean()), 3)}
    if len(means) == 3:
        found |= dict(zip(("mean_red", "mean_green", "mean_blue"), np.round(means, 3).tolist()))
    found |= dict(zip(extra, more))
    return {prefix + key: v for key, v in found.items()}


def measurements_csv(per_image: list[tuple[str, list[dict]]]) -> bytes:
    """The CSV (header :data:`COLUMNS`, then the stains' and each channel's columns, then the
    cells' and the cytoplasms', as far as any image was measured so: :func:`column_order`) of
    each image's rows, images in the order given."""
    found = {key for _, rows in per_image for row in rows for key in row}
    extra = sorted(found - {*COLUMNS}, key=column_order)
    text = io.StringIO()
    writer = csv.DictWriter(text, (*COLUMNS, *extra), restval="", lineterminator="\n")
    writer.writeheader()
    for name, rows in per_image:
        writer.writerows({"image": name} | row for row in rows)
    return text.getvalue().encode()


def column_order(key: str) -> tuple:
    """Where a column beyond :data:`COLUMNS` goes: the object's stains and channels, then the
    cell's columns, then the cytoplasm's, each as :func:`intensities` lists them (channels by
    number)."""
    prefix = next((p for p in ("cell_", "cytoplasm_") if key.startswith(p)), "")
    base = key[len(prefix) :]
    places = ("area", "mean_intensity", "mean_red", "mean_green", "mean_blue")
    places += tuple(f"mean_{stain}" for stain in STAINS)
    channel = int(base[13:]) if base.startswith("mean_channel_") else -1
    place = places.index(base) if base in places else len(places)
    return ("", "cell_", "cytoplasm_").index(prefix), place, channel, key
