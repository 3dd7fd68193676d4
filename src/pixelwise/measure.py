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
cytoplasm). With a :class:`Grading` (``segment --positive``), ``grade`` follows the class: each
object's grade by one of these columns against the user's thresholds.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

import numpy as np

from pixelwise.constants import GRADE_COLOURS, GRADES

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
    extra = sorted(found - {*COLUMNS, "grade"}, key=column_order)
    graded = ["grade"] if "grade" in found else []  # beside the class: Grading's
    columns = (*COLUMNS[:3], *graded, *COLUMNS[3:], *extra)
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, restval="", lineterminator="\n")
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


GRADED = (  # what a grade may threshold, besides mean_<stain> and mean_channel_<K>
    "area",
    "equivalent_diameter",
    "perimeter",
    "eccentricity",
    "solidity",
    "mean_intensity",
    "mean_red",
    "mean_green",
    "mean_blue",
)


@dataclass(frozen=True)
class Grading:
    """``segment --positive COLUMN:T`` (or ``COLUMN:T1,T2,T3``): each object's grade by one of
    its measurements (a column of :func:`measure_objects`' rows), as QuPath's positive cell
    detection grades cells: "Negative" under the first threshold, else "Positive", or with
    three thresholds "1+", "2+", "3+" from each threshold on; an image's share of positive
    objects and, with three thresholds, its H-score (1 x %1+ + 2 x %2+ + 3 x %3+, 0-300)."""

    column: str
    thresholds: tuple[float, ...]

    @classmethod
    def parse(cls, text: str) -> Grading:
        """``COLUMN:T`` or ``COLUMN:T1,T2,T3`` (increasing); ValueError naming the problem."""
        column, sep, values = text.rpartition(":")
        try:
            thresholds = tuple(float(v) for v in values.split(","))
        except ValueError:
            thresholds = ()
        if not sep or not column or len(thresholds) not in GRADES:
            raise ValueError(
                f"--positive takes COLUMN:THRESHOLD or COLUMN:T1,T2,T3 (e.g. mean_dab:0.2 or "
                f"cell_mean_dab:0.2,0.4,0.6), got {text!r}"
            )
        if list(thresholds) != sorted(set(thresholds)):
            raise ValueError(f"--positive's thresholds must increase, got {values}")
        base = column.removeprefix("cell_").removeprefix("cytoplasm_")
        known = (*GRADED, *(f"mean_{stain}" for stain in STAINS))
        if base not in known and not re.fullmatch(r"mean_channel_\d+", base):
            raise ValueError(
                f"--positive: {column!r} is no measurement to grade by; one of "
                f"{', '.join(known)}, mean_channel_K, each also as cell_... or cytoplasm_..."
            )
        return cls(column, thresholds)

    def needs(self) -> dict[str, str]:
        """The options the column is measured with: ``{option: why}``."""
        found = {}
        if self.column != self.column.removeprefix("cell_").removeprefix("cytoplasm_"):
            found["expand"] = "cells and cytoplasms are measured with --expand PIXELS"
        if self.column.endswith(tuple(f"mean_{stain}" for stain in STAINS)):
            found["stains"] = "stain densities are measured with --stains"
        if "mean_channel_" in self.column:
            found["channel"] = "each channel is measured when one is segmented, with --channel"
        return found

    @property
    def names(self) -> tuple[str, ...]:
        return GRADES[len(self.thresholds)]

    def grade(self, rows: list[dict]) -> None:
        """Each row's "grade" by its column, left out where the row has no value (a cytoplasm
        with no room to grow; :meth:`check` that the column was measured at all)."""
        for row in rows:
            if self.column in row:
                rank = np.searchsorted(self.thresholds, row[self.column], side="right")
                row["grade"] = self.names[int(rank)]

    def check(self, rows: list[dict]) -> None:
        """ValueError when objects were found and none has the column (a grey image has no
        mean_red, an image of two channels no mean_channel_2)."""
        if rows and not any(self.column in row for row in rows):
            measured = [k for k in rows[0] if k.startswith(("mean_", "cell_mean_"))]
            raise ValueError(
                f"its objects have no {self.column} to grade by (--positive); measured: "
                f"{', '.join(measured)}"
            )

    def summary(self, rows: list[dict]) -> dict:
        """One image's counts per grade, its positive share (of the graded objects, in %) and,
        with three thresholds, its H-score."""
        counts = {name: sum(row.get("grade") == name for row in rows) for name in self.names}
        graded = sum(counts.values())
        share = {name: 100 * n / max(graded, 1) for name, n in counts.items()}
        found = {"objects": len(rows), "graded": graded} | counts
        found["positive_percent"] = round(100 - share["Negative"], 2) if graded else ""
        if len(self.thresholds) == 3:
            score = sum(k * share[f"{k}+"] for k in (1, 2, 3))
            found["h_score"] = round(score, 2) if graded else ""
        return found


def grade_colours(rows: list[dict] | None) -> dict[int, tuple] | None:
    """Each graded object's colour (:data:`GRADE_COLOURS`) by its number; None when none is."""
    found = {row["object"]: GRADE_COLOURS[row["grade"]] for row in rows or () if "grade" in row}
    return found or None


def grades_csv(grading: Grading, per_image: list[tuple[str, list[dict]]]) -> bytes:
    """The CSV of :meth:`Grading.summary` for each image, in the order given."""
    text = io.StringIO()
    rows = [{"image": name} | grading.summary(found) for name, found in per_image]
    columns = ["image", *grading.summary([])]
    writer = csv.DictWriter(text, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue().encode()
