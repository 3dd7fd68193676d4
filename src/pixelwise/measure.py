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
import functools
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
    stains: bool | np.ndarray = False,
) -> list[dict]:
    """A row (:data:`COLUMNS` but ``image``) per object 1..N of ``labels`` present in it, with
    the (H, W[, C]) ``image`` it was found in; its class is ``names[0]``, or with ``classes``
    (an image of category ids 1.. at the objects' pixels) ``names[id - 1]``. ``channels``: the
    (H, W, C) channels of a multi-channel image, each measured (``mean_channel_K``). ``cells``:
    each object's cell (a label image, the objects' numbers), measured as a whole and without
    its object (``cell_...``, ``cytoplasm_...``). ``stains``: each stain's optical density
    too (an RGB ``image``), with Ruifrok and Johnston's stain vectors (True) or these
    (:func:`stain_vectors`). Measured as scikit-image's ``regionprops`` measures, all objects at
    once (:class:`Regions`)."""
    pixels = image.reshape(*labels.shape, -1)  # (H, W, C): means per channel
    count, extra = pixels.shape[-1], []
    if channels is not None:  # measured beside the image the objects were found in
        pixels = np.concatenate([pixels, channels.reshape(*labels.shape, -1)], axis=-1)
        extra += [f"mean_channel_{k}" for k in range(pixels.shape[-1] - count)]
    vectors = stains if isinstance(stains, np.ndarray) else None
    measured = vectors is not None or bool(stains)
    densities = stain_densities(image, vectors) if measured else None  # float32, apart
    regions = Regions(labels)
    around = stain_means(regions, densities, "")
    if cells is not None:
        for prefix, parts in (("cell_", cells), ("cytoplasm_", np.where(labels > 0, 0, cells))):
            part = Regions(parts)
            for k, area, means in zip(part.ids, part.area, part.means(pixels)):
                found = intensities(area, means, count, extra, prefix)
                around.setdefault(int(k), {}).update(found)
            for k, found in stain_means(part, densities, prefix).items():
                around.setdefault(k, {}).update(found)
    shape, means = regions.shapes(), regions.means(pixels)
    first = regions.first_pixels() if classes is not None else None
    rows = []
    for i, k in enumerate(regions.ids):
        category = 1 if first is None else int(classes.flat[first[i]])
        row = {"object": int(k), "class": names[category - 1]}
        row |= {key: rounded(key, values[i]) for key, values in shape.items()}
        row |= intensities(regions.area[i], means[i], count, extra)
        rows.append(row | around.get(int(k), {}))
    return rows


# the decimals of the CSV's measurements (whole numbers: none)
DECIMALS = {"equivalent_diameter": 3, "perimeter": 3, "eccentricity": 4, "solidity": 4}
DECIMALS |= {"centroid_x": 3, "centroid_y": 3}


def rounded(column: str, value):
    """A measurement as the CSV gives it (:data:`DECIMALS`; Python's rounding, correct at ties,
    as for every other number written)."""
    return round(float(value), DECIMALS[column]) if column in DECIMALS else int(value)


# skimage.measure.perimeter's weights of a border pixel by its code: 1 for itself, 2 for each
# 4-neighbour on the border, 10 for each diagonal one (Benkrid and Crookes)
PERIMETER_WEIGHTS = np.zeros(50)
PERIMETER_WEIGHTS[[5, 7, 15, 17, 25, 27]] = 1
PERIMETER_WEIGHTS[[21, 33]] = np.sqrt(2)
PERIMETER_WEIGHTS[[13, 23]] = (1 + np.sqrt(2)) / 2


class Regions:
    """The objects (labels > 0) of a label image, measured in whole-array operations as
    scikit-image's ``regionprops`` measures them one at a time (the same values; the tests
    compare), 9x as fast on fields of 14,000 objects (``benchmarks/measure.py``). Arrays in the
    order of :attr:`ids`, the labels present."""

    def __init__(self, labels: np.ndarray):
        self.labels = np.asarray(labels).astype(np.intp, copy=False)
        flat = self.labels.ravel()
        self.at = np.flatnonzero(flat)  # the objects' pixels, in raster order
        self.of = flat[self.at]  # their labels
        counts = np.bincount(self.of, minlength=1)
        self.ids = np.flatnonzero(counts)
        self.area, self.size = counts[self.ids], len(counts)

    def sums(self, values: np.ndarray) -> np.ndarray:
        """Each object's sum of ``values`` (one per object pixel, :attr:`at`'s order)."""
        return np.bincount(self.of, weights=values, minlength=self.size)[self.ids]

    def means(self, pixels: np.ndarray) -> np.ndarray:
        """(objects, C) means of an (H, W[, C]) image's channels over each object."""
        values = pixels.reshape(self.labels.size, -1)[self.at]
        return np.stack([self.sums(v) for v in values.T], axis=-1) / self.area[:, None]

    @functools.cached_property
    def rows_and_columns(self) -> tuple[np.ndarray, np.ndarray]:
        """The row and column of each object pixel (:attr:`at`'s order)."""
        return np.divmod(self.at, self.labels.shape[1])

    def first_pixels(self) -> np.ndarray:
        """Each object's first pixel in raster order (a flat index)."""
        first = np.full(self.size, self.labels.size)
        np.minimum.at(first, self.of, self.at)
        return first[self.ids]

    def shapes(self) -> dict[str, np.ndarray]:
        """:data:`COLUMNS`' size and shape columns (not yet :func:`rounded`)."""
        from scipy import ndimage

        ys, xs = self.rows_and_columns
        cy, cx = self.sums(ys) / self.area, self.sums(xs) / self.area
        dy, dx = ys - self.spread(cy), xs - self.spread(cx)
        # the inertia tensor [[mu02, -mu11], [-mu11, mu20]] / area, its eigenvalues l1 >= l2
        a, c, b = (
            self.sums(dx * dx) / self.area,
            self.sums(dy * dy) / self.area,
            self.sums(dx * dy) / self.area,
        )
        half = np.sqrt(((a - c) / 2) ** 2 + b * b)
        l1, l2 = np.clip((a + c) / 2 + half, 0, None), np.clip((a + c) / 2 - half, 0, None)
        eccentricity = np.sqrt(1 - np.divide(l2, l1, out=np.ones_like(l1), where=l1 > 0))
        found = ndimage.find_objects(self.labels)
        boxes = [found[k - 1] for k in self.ids]
        bbox = np.array([(r.start, q.start, r.stop, q.stop) for r, q in boxes]).reshape(-1, 4)
        return {
            "area": self.area,
            "centroid_x": cx,
            "centroid_y": cy,
            "bbox_x0": bbox[:, 1],
            "bbox_y0": bbox[:, 0],
            "bbox_x1": bbox[:, 3],
            "bbox_y1": bbox[:, 2],
            "equivalent_diameter": np.sqrt(4 * self.area / np.pi),
            "perimeter": self.perimeters(),
            "eccentricity": eccentricity,
            "solidity": self.area / self.convex_areas(),
        }

    def spread(self, per_object: np.ndarray) -> np.ndarray:
        """A value per object, at each of its pixels (:attr:`at`'s order)."""
        full = np.zeros(self.size)
        full[self.ids] = per_object
        return full[self.of]

    def perimeters(self) -> np.ndarray:
        """``skimage.measure.perimeter`` of each object alone (4-connected outline): its border
        pixels (a 4-neighbour elsewhere) coded by their neighbours on the same object's border."""
        padded = np.pad(self.labels, 1)
        h, w = self.labels.shape

        def shifted(array, dy, dx):
            return array[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

        inside = self.labels > 0
        same = {  # each neighbour: of the same object?
            (dy, dx): shifted(padded, dy, dx) == self.labels
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if dy or dx
        }
        border = inside & ~(same[-1, 0] & same[1, 0] & same[0, -1] & same[0, 1])
        on_border = np.pad(border, 1)
        code = border.astype(np.uint8)
        for (dy, dx), alike in same.items():
            weight = np.uint8(2 if dy == 0 or dx == 0 else 10)
            code += weight * (alike & shifted(on_border, dy, dx))
        where = np.flatnonzero(border)
        found = np.bincount(self.labels.flat[where], PERIMETER_WEIGHTS[code.flat[where]], self.size)
        return found[self.ids]

    def convex_areas(self) -> np.ndarray:
        """Each object's convex hull area as ``regionprops`` finds it
        (``skimage.morphology.convex_hull_image``: the pixel centres inside or on the hull of
        the midpoints of its pixels' sides), in integer arithmetic: every object's rows at once,
        a hull (OpenCV) per object. In doubled coordinates the midpoints are integers, and the
        hull's edges give each row's first and last pixel centre inside it."""
        import cv2

        if not len(self.ids):
            return np.zeros(0)
        ys, xs = self.rows_and_columns
        rank = np.zeros(self.size, np.int64)
        rank[self.ids] = np.arange(len(self.ids))
        key = rank[self.of] * self.labels.shape[0] + ys  # an object's row; raster order: x rises
        order = np.argsort(key, kind="stable")
        rows, first = np.unique(key[order], return_index=True)
        last = np.r_[first[1:], len(order)] - 1
        left, right = 2 * xs[order[first]], 2 * xs[order[last]]
        y2 = 2 * (rows % self.labels.shape[0])
        # the midpoints of the sides of each row's end pixels, (x, y) doubled
        ends = ((left - 1, 0), (left, -1), (left, 1), (right + 1, 0), (right, -1), (right, 1))
        points = np.stack([np.stack([x, y2 + dy], 1) for x, dy in ends], 1).astype(np.int32)
        cut = np.searchsorted(rows // self.labels.shape[0], np.arange(len(self.ids) + 1))
        hulls = [cv2.convexHull(points[a:b].reshape(-1, 2))[:, 0] for a, b in zip(cut, cut[1:])]
        return _pixels_in(hulls).astype(np.float64)


def _pixels_in(hulls: list[np.ndarray]) -> np.ndarray:
    """The pixel centres (even coordinates) inside or on each convex polygon (integer (x, y)
    vertices, doubled coordinates, in order), counted row by row from its edges."""
    sizes = np.array([len(h) for h in hulls])
    start = np.concatenate(hulls).astype(np.int64)
    end = np.concatenate([np.roll(h, -1, 0) for h in hulls]).astype(np.int64)
    owner = np.repeat(np.arange(len(hulls)), sizes)
    slanted = start[:, 1] != end[:, 1]  # a level edge's ends lie on the edges beside it
    start, end, owner = start[slanted], end[slanted], owner[slanted]
    low, high = np.minimum(start[:, 1], end[:, 1]), np.maximum(start[:, 1], end[:, 1])
    first, count = (low + 1) // 2, high // 2 - (low + 1) // 2 + 1  # even rows 2r it spans
    count = np.maximum(count, 0)
    edge = np.repeat(np.arange(len(start)), count)
    row = 2 * (
        np.repeat(first, count)
        + np.arange(count.sum())
        - np.repeat(np.cumsum(count) - count, count)
    )
    (x1, y1), (x2, y2) = start[edge].T, end[edge].T
    num, den = x1 * (y2 - y1) + (x2 - x1) * (row - y1), y2 - y1
    num, den = np.where(den < 0, -num, num), 2 * np.abs(den)  # x / 2 = num / den, den > 0
    lo, hi = -((-num) // den), num // den  # ceil and floor of the crossing's x (pixels)
    key = owner[edge] * (2**31) + row
    rows, where = np.unique(key, return_inverse=True)
    least = np.full(len(rows), np.iinfo(np.int64).max)
    most = np.full(len(rows), np.iinfo(np.int64).min)
    np.minimum.at(least, where, lo)
    np.maximum.at(most, where, hi)
    return np.bincount(rows // 2**31, most - least + 1, len(hulls))


STAINS = ("hematoxylin", "eosin", "dab")  # the order of scikit-image's hed_from_rgb


def stain_densities(image: np.ndarray, vectors: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) float32 optical densities of :data:`STAINS` at each pixel of an RGB image, by
    colour deconvolution (module docstring) with the stain ``vectors`` (:func:`stain_vectors`;
    None: Ruifrok and Johnston's); ValueError for other images."""
    check_stains(image)
    vectors = stain_vectors() if vectors is None else vectors
    return optical_density(image) @ np.linalg.inv(vectors).astype(np.float32)


def optical_density(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32: -log10 of each colour's share of the full range (at most log10 255)."""
    full = 1.0 if image.dtype.kind == "f" else float(np.iinfo(image.dtype).max)
    share = np.clip(image.astype(np.float32) / np.float32(full), 1 / 255, 1)
    return -np.log10(share)


def stain_vectors(text: str | None = None) -> np.ndarray:
    """(3, 3): the optical density of a unit of each stain of :data:`STAINS`, a row each:
    Ruifrok and Johnston's (scikit-image's ``rgb_from_hed``, rows of length 1 within 0.3 %),
    with those that ``text`` names in their place, scaled to length 1: ``"hematoxylin=R G B;
    dab=R G B"`` (commas or spaces; the values QuPath's "Estimate stain vectors" or ``pixelwise
    stains`` gives). ValueError naming the problem: an unknown stain, not three numbers of 0 or
    more (not all 0), vectors too alike to tell the stains apart."""
    from skimage.color import rgb_from_hed

    vectors = np.array(rgb_from_hed, np.float64)
    for part in filter(None, (p.strip() for p in (text or "").split(";"))):
        name, _, values = part.partition("=")
        name = name.strip().lower()
        try:
            vector = np.array([float(v) for v in values.replace(",", " ").split()])
        except ValueError:
            vector = np.zeros(0)
        if name not in STAINS or len(vector) != 3 or (vector < 0).any() or not vector.any():
            raise ValueError(
                f"--stain-vectors takes STAIN=R G B; ... with STAIN one of {', '.join(STAINS)} "
                f"and three optical densities, not all 0 (e.g. 'hematoxylin=0.65 0.70 0.29; "
                f"dab=0.27 0.57 0.78'), got {part!r}"
            )
        vectors[STAINS.index(name)] = vector / np.linalg.norm(vector)
    if np.linalg.cond(vectors) > 1e3:
        raise ValueError(
            f"--stain-vectors: the stains' vectors are too alike to tell them apart: "
            f"{np.round(vectors, 3).tolist()}"
        )
    return vectors


def estimate_stains(images: list[np.ndarray], least: float = 0.15, share: float = 1.0) -> dict:
    """The vectors of the two main stains of RGB ``images`` (together) by Macenko et al.'s
    method (2009): the optical densities of the pixels with at least ``least`` in every colour,
    projected on the plane of their two main directions; the stains are the directions at the
    ``share`` and 100 - ``share`` percentiles of angle there. The one nearer Ruifrok and
    Johnston's hematoxylin is named so, the other eosin or dab, whichever's vector is nearer;
    ValueError when an image is not RGB or too few pixels are stained."""
    for image in images:
        check_stains(image)
    od = np.concatenate([optical_density(i).reshape(-1, 3) for i in images]).astype(np.float64)
    od = od[(od >= least).all(axis=1)]
    if len(od) < 100:
        raise ValueError(
            f"too few stained pixels to estimate stain vectors from ({len(od)} with an optical "
            f"density of at least {least} in every colour)"
        )
    _, directions = np.linalg.eigh(np.cov(od.T))
    plane = directions[:, [2, 1]]  # the two largest
    plane *= np.where(plane.sum(axis=0) < 0, -1, 1)  # pointing into the positive octant
    angles = np.arctan2(od @ plane[:, 1], od @ plane[:, 0])
    found = []
    for a in np.percentile(angles, [share, 100 - share]):
        vector = plane @ np.array([np.cos(a), np.sin(a)])
        vector = np.abs(vector) if (vector < 0).all() else np.clip(vector, 0, None)
        found.append(vector / np.linalg.norm(vector))
    reference = stain_vectors()
    first = int(np.argmax([v @ reference[0] for v in found]))
    other = found[1 - first]
    name = "eosin" if other @ reference[1] > other @ reference[2] else "dab"
    return {"hematoxylin": found[first], name: other}


def vectors_text(vectors: dict) -> str:
    """``--stain-vectors``'s text for stain vectors by name (:func:`estimate_stains`)."""
    return "; ".join(f"{k}={' '.join(f'{v:.4f}' for v in vec)}" for k, vec in vectors.items())


def stains_report(vectors: dict) -> str:
    """``pixelwise stains``' lines: each estimated vector, its angle from Ruifrok and
    Johnston's, and the ``--stain-vectors`` option that measures with them."""
    reference, lines = stain_vectors(), []
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)  # theirs are not quite 1
    for name, vector in vectors.items():
        cosine = float(np.clip(vector @ reference[STAINS.index(name)], -1, 1))
        values = " ".join(f"{v:.4f}" for v in vector)
        angle = np.degrees(np.arccos(cosine))
        lines.append(f"{name:<12} {values}  ({angle:.1f} degrees from Ruifrok and Johnston's)")
    return "\n".join([*lines, f"--stain-vectors '{vectors_text(vectors)}'"])


def stain_means(regions: Regions, densities: np.ndarray | None, prefix: str) -> dict:
    """Each object's (of :class:`Regions`) mean of each stain's optical density (``densities``:
    :func:`stain_densities`), by its number, named ``prefix + "mean_" + stain``; none without
    densities."""
    if densities is None:
        return {}
    return {
        int(k): {f"{prefix}mean_{stain}": round(float(v), 3) for stain, v in zip(STAINS, means)}
        for k, means in zip(regions.ids, regions.means(densities))
    }


def check_stains(image: np.ndarray) -> None:
    """ValueError unless ``image`` (or a piece of it) is RGB, as :func:`stain_densities`
    needs."""
    if image.ndim != 3 or image.shape[-1] != 3:
        channels = 1 if image.ndim == 2 else image.shape[-1]
        raise ValueError(
            f"--stains measures brightfield RGB images; this one has {channels} channel(s)"
        )


def intensities(area, means: np.ndarray, count: int, extra: list[str], prefix: str = "") -> dict:
    """An object's area and mean intensities (a mean per channel) as :func:`measure_objects`
    names them, after ``prefix``: the mean over the image's ``count`` channels, each colour's
    for a colour image, and the means of the further channels, named ``extra``."""
    means, more = means[:count], np.round(means[count:], 3).tolist()
    found = {"area": int(area), "mean_intensity": round(float(means.mean()), 3)}
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
    return csv_bytes(text.getvalue())


# the columns given in µm too when the pixel size is known: (pixel column, µm column, power)
IN_MICROMETRES = (
    ("area", "area_um2", 2),
    ("centroid_x", "centroid_x_um", 1),
    ("centroid_y", "centroid_y_um", 1),
    ("equivalent_diameter", "equivalent_diameter_um", 1),
    ("perimeter", "perimeter_um", 1),
)


def in_micrometres(rows: list[dict], pixel_size: float | None) -> None:
    """Each row's sizes and positions also in µm (and µm²), ``pixel_size`` µm a pixel
    (:data:`IN_MICROMETRES`, the cell's and cytoplasm's areas too); nothing without a size."""
    if pixel_size is None:
        return
    for row in rows:
        for prefix in ("", "cell_", "cytoplasm_"):
            for pixels, name, power in IN_MICROMETRES:
                if prefix + pixels in row:
                    value = row[prefix + pixels] * pixel_size**power
                    row[prefix + name] = round(float(value), 4)


def column_order(key: str) -> tuple:
    """Where a column beyond :data:`COLUMNS` goes: the object's stains and channels, then the
    cell's columns, then the cytoplasm's, each as :func:`intensities` lists them (channels by
    number)."""
    prefix = next((p for p in ("cell_", "cytoplasm_") if key.startswith(p)), "")
    base = key[len(prefix) :]
    places = ("area", *(name for _, name, _ in IN_MICROMETRES))  # µm after the pixels
    places += ("mean_intensity", "mean_red", "mean_green", "mean_blue")
    places += tuple(f"mean_{stain}" for stain in STAINS)
    channel = int(base[13:]) if base.startswith("mean_channel_") else -1
    place = places.index(base) if base in places else len(places)
    return ("", "cell_", "cytoplasm_").index(prefix), place, channel, key


GRADED = (  # what a grade may threshold, besides mean_<stain> and mean_channel_<K>: not places
    *(c for c in COLUMNS[3:] if not c.startswith(("centroid", "bbox"))),
    *(name for _, name, _ in IN_MICROMETRES if not name.startswith("centroid")),
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
            unknown = " (its file records no pixel size: give --pixel-size)"
            raise ValueError(
                f"its objects have no {self.column} to grade by (--positive)"
                f"{unknown if self.column.endswith(('_um', '_um2')) else ''}; measured: "
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


def csv_bytes(text: str) -> bytes:
    """A CSV's text as UTF-8, a file name that is not UTF-8 kept as its bytes (as it is on the
    disk: Python reads it back with ``errors="surrogateescape"``)."""
    return text.encode("utf-8", "surrogateescape")


def grades_csv(grading: Grading, per_image: list[tuple[str, list[dict]]]) -> bytes:
    """The CSV of :meth:`Grading.summary` for each image, in the order given."""
    text = io.StringIO()
    rows = [{"image": name} | grading.summary(found) for name, found in per_image]
    columns = ["image", *grading.summary([])]
    writer = csv.DictWriter(text, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return csv_bytes(text.getvalue())
