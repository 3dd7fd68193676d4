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
) -> list[dict]:
    """A row (:data:`COLUMNS` but ``image``) per object 1..N of ``labels`` present in it, with
    the (H, W[, C]) ``image`` it was found in; its class is ``names[0]``, or with ``classes``
    (an image of category ids 1.. at the objects' pixels) ``names[id - 1]``. ``channels``: the
    (H, W, C) channels of a multi-channel image, each measured (``mean_channel_K``)."""
    from skimage.measure import regionprops

    pixels = image.reshape(*labels.shape, -1)  # (H, W, C): means per channel
    if channels is not None:  # measured beside the image the objects were found in
        pixels = np.concatenate([pixels, channels.reshape(*labels.shape, -1)], axis=-1)
    count = pixels.shape[-1] - (0 if channels is None else channels.shape[-1])
    rows = []
    for region in regionprops(labels.astype(np.int64), intensity_image=pixels):
        y0, x0, y1, x1 = region.bbox
        cy, cx = region.centroid
        means = np.atleast_1d(region.intensity_mean)
        means, extra = means[:count], np.round(means[count:], 3).tolist()
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
            "mean_intensity": round(float(means.mean()), 3),
        }
        if len(means) == 3:
            row |= dict(zip(("mean_red", "mean_green", "mean_blue"), np.round(means, 3).tolist()))
        rows.append(row | {f"mean_channel_{k}": v for k, v in enumerate(extra)})
    return rows


def measurements_csv(per_image: list[tuple[str, list[dict]]]) -> bytes:
    """The CSV (header :data:`COLUMNS`, then ``mean_channel_K`` for each channel any image was
    measured in) of each image's rows, images in the order given."""
    found = {key for _, rows in per_image for row in rows for key in row}
    channels = sorted(int(key[13:]) for key in found if key.startswith("mean_channel_"))
    extra = [f"mean_channel_{k}" for k in channels]
    text = io.StringIO()
    writer = csv.DictWriter(text, (*COLUMNS, *extra), restval="", lineterminator="\n")
    writer.writeheader()
    for name, rows in per_image:
        writer.writerows({"image": name} | row for row in rows)
    return text.getvalue().encode()
