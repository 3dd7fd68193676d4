"""Masks and label images as GeoJSON polygons in pixel coordinates (x right, y down), for
QuPath, shapely/GeoPandas and the like; and GeoJSON files (QuPath's exports) read as objects.

Outlines follow the pixel edges: pixel (row r, column c) is the square x in [c, c + 1],
y in [r, r + 1], so a polygon encloses exactly its pixels (its area is their count) and a
viewer that fills the pixels whose centres lie inside gets the mask back. Rings are simple
(OGC-valid): where two pixels of a region touch only at a corner they belong to separate
polygons touching at that point (4-connected pieces), and a hole touching its outline at a
corner is a hole touching the outer ring there. Outer rings run counterclockwise and holes
clockwise with x and y read as plain numbers (RFC 7946's rule; with y pointing down on screen
that is the other way round).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
from pathlib import Path

import numpy as np

from pixelwise.constants import GRADE_COLOURS, IGNORE_LABEL, one_line, unusable
from pixelwise.data.joins import Joins

# direction of an edge as (dx, dy): its code is the index here; a right turn on screen (y down)
# of (dx, dy) is (-dy, dx)
DIRECTIONS = ((1, 0), (0, 1), (-1, 0), (0, -1))


# the start corner of each side relative to its pixel: top (0, 0) walked right, right (1, 0)
# walked down, bottom (1, 1) walked left, left (0, 1) walked up
CORNER_X, CORNER_Y = np.array([0, 1, 1, 0]), np.array([0, 0, 1, 1])


def rings(region: np.ndarray) -> list[np.ndarray]:
    """The outlines of the True pixels of ``region`` along pixel edges: each a (K, 2) int array
    of the corners (x, y) where it turns, not closed; outer outlines with positive, holes with
    negative signed area (:func:`signed_area`). No ring touches itself."""
    return linked(*label_edges(np.asarray(region, bool))[:3])


def linked(xs: np.ndarray, ys: np.ndarray, codes: np.ndarray) -> list[np.ndarray]:
    """The rings that pixel edges (start corners ``xs``, ``ys`` and direction ``codes``, as
    :func:`label_edges` finds them, the region on each edge's right) close into, as :func:`rings`
    gives them; each starts at its first edge in the given order."""
    return traced(xs, ys, codes)[0]


def label_edges(labels: np.ndarray) -> tuple[np.ndarray, ...]:
    """The pixel edges between a pixel of a region of a label image (0 or False: none; a boolean
    mask is one region) and one of another (or the border), as start x, start y, direction code
    (:data:`DIRECTIONS`; the region's pixel on the edge's right on screen) and the region's
    label; ordered by code, row and column, so that a region's edges come in the same order as
    when it is alone. One direction at a time (memory: a few bytes a pixel)."""
    h, w = labels.shape
    padded = np.zeros((h + 2, w + 2), labels.dtype)
    padded[1:-1, 1:-1] = labels
    inside = padded[1:-1, 1:-1]
    found = inside > 0
    across = (padded[:-2, 1:-1], padded[1:-1, 2:], padded[2:, 1:-1], padded[1:-1, :-2])
    parts = [np.nonzero(found & (inside != other)) for other in across]
    r, c = (np.concatenate([p[i] for p in parts]) for i in (0, 1))
    codes = np.repeat(np.arange(4, dtype=np.int8), [len(p[0]) for p in parts])
    return c + CORNER_X[codes], r + CORNER_Y[codes], codes, inside[r, c]


def traced(
    xs: np.ndarray, ys: np.ndarray, codes: np.ndarray, groups: np.ndarray | None = None
) -> tuple[list[np.ndarray], np.ndarray]:
    """:func:`linked` of the edges of many regions at once (``groups``: each edge's region, as
    :func:`label_edges` gives them; none: one region): the rings, in the order of their first
    edges, and the region of each."""
    if not len(xs):
        return [], np.zeros(0, np.int64)
    width, height = int(xs.max()) + 1, int(ys.max()) + 1
    steps = np.asarray(DIRECTIONS)
    base = 0
    if groups is not None:  # a corner of each region is a number of its own
        base = groups.astype(np.int64)
        if (int(base.max()) + 1) * height * width >= 2**62:
            base = np.unique(base, return_inverse=True)[1].ravel()
        base = base * height
    start = (base + ys) * width + xs
    end = (base + ys + steps[codes, 1]) * width + xs + steps[codes, 0]
    order = np.argsort(start, kind="stable")
    first = np.searchsorted(start[order], end, "left")
    pinch = np.searchsorted(start[order], end, "right") - first == 2  # two ways on from here
    succ = order[first]
    if pinch.any():  # take the right turn: stay on the pixel being walked around
        other = order[first[pinch] + 1]
        right = (codes[pinch] + 1) % 4
        succ[pinch] = np.where(codes[other] == right, other, succ[pinch])
    head, place = _walks(succ)
    walk = np.lexsort((place, head))  # ring by ring, each from its first edge
    way = codes[walk]
    opens = np.r_[True, head[walk][1:] != head[walk][:-1]]
    begin = np.flatnonzero(opens)
    before = np.r_[walk[-1], walk[:-1]]  # the edge before each on its ring
    before[begin] = walk[np.r_[begin[1:], len(walk)] - 1]
    turns = way != codes[before]  # where the way changes
    points = np.stack([xs[walk][turns], ys[walk][turns]], axis=1)
    found = np.split(points, np.cumsum(np.add.reduceat(turns.astype(np.int64), begin))[:-1])
    region = np.zeros(len(begin), np.int64) if groups is None else groups[walk[begin]]
    if not pinch.any():
        return found, region.astype(np.int64)
    corners = np.unique(end[pinch])  # two ways on from each: split a ring that takes both
    at = np.searchsorted(start[order], corners)
    leaving, other = order[at], order[at + 1]  # the two edges from each corner
    both = leaving[head[leaving] == head[other]]
    split = np.zeros(len(head), bool)
    split[head[both]] = True
    split = split[walk[begin]]
    twice = set(start[both].tolist())
    ends = np.r_[begin[1:], len(walk)]
    rings_, regions = [], []
    for k, ring in enumerate(found):
        parts = [ring]
        if split[k]:
            cut = _split_at(walk[begin[k] : ends[k]].tolist(), start, twice)
            parts = [_turns(np.asarray(part), xs, ys, codes) for part in cut]
        rings_ += parts
        regions += [region[k]] * len(parts)
    return rings_, np.asarray(regions, np.int64)


def _split_at(ring: list[int], start: np.ndarray, twice: set) -> list[list[int]]:
    """``ring`` (edge indices) cut into simple rings where it passes a corner twice (only the
    corners in ``twice``, where two pixels touch diagonally, can be passed twice)."""
    if not twice:
        return [ring]
    starts = start[ring].tolist()
    if twice.isdisjoint(starts):
        return [ring]
    parts, path, at = [], [], {}
    for edge, vertex in zip(ring, starts):
        if vertex in at:  # the loop since the last visit is a ring of its own
            cut = at[vertex]
            parts.append(path[cut:])
            for _, v in path[cut:]:
                at.pop(v, None)
            del path[cut:]
        at[vertex] = len(path)
        path.append((edge, vertex))
    parts.append(path)
    return [[edge for edge, _ in part] for part in parts if part]


def _turns(part: np.ndarray, xs, ys, codes) -> np.ndarray:
    """The corners (x, y) where a ring of edges (indices, in order) turns."""
    way = codes[part]
    part = part[way != np.concatenate([way[-1:], way[:-1]])]
    return np.stack([xs[part], ys[part]], axis=1)


def _walks(succ: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a permutation given by successor indices: each index's cycle head (the cycle's
    smallest index) and its steps from there, by pointer jumping (rounds: the log of the
    longest cycle)."""
    here = np.arange(len(succ))
    head, jump = here, succ
    while True:  # head: the least of 2^k indices on from each; stable once it is the cycle's
        least = np.minimum(head, head[jump])
        if (least == head).all():
            break
        head, jump = least, jump[jump]
    nxt = np.where(succ == head, here, succ)  # each cycle cut before its head: a path
    left = (nxt != here).astype(np.int64)  # steps to the path's end (Wyllie's list ranking)
    while not (nxt[nxt] == nxt).all():
        left, nxt = left + left[nxt], nxt[nxt]
    length = np.bincount(head, minlength=len(succ))[head]
    return head, length - 1 - left


def signed_area(ring: np.ndarray) -> float:
    """Shoelace area of a ring of (x, y) points: positive when it runs counterclockwise with y
    pointing up (the outer outlines of :func:`rings`)."""
    x, y = ring[:, 0].astype(np.float64), ring[:, 1].astype(np.float64)
    return float(x[:-1] @ y[1:] - x[1:] @ y[:-1] + x[-1] * y[0] - x[0] * y[-1]) / 2


def polygons(region: np.ndarray, offset: tuple[int, int] = (0, 0)) -> list[list[np.ndarray]]:
    """The True pixels of ``region`` as polygons, each [outer ring, hole rings...] (rings of
    :func:`rings`, moved by ``offset`` = (row, column) of the region's first pixel in a larger
    image). Each hole goes to the smallest outer ring around it."""
    shift = np.array([offset[1], offset[0]])
    return [[ring + shift for ring in shape] for shape in shapes_of(rings(region))]


def label_polygons(
    labels: np.ndarray, offset: tuple[int, int] = (0, 0), edges: tuple | None = None
) -> dict[int, list[list[np.ndarray]]]:
    """:func:`polygons` of every region of a label image (0: none), by label: the same rings as
    one region at a time gives, traced many regions at once (about :data:`AT_ONCE` pixel edges:
    bounded memory); ``edges``: :func:`label_edges` of it, or of some of its regions, if found."""
    xs, ys, codes, groups = label_edges(labels) if edges is None else edges
    by = np.argsort(groups, kind="stable")
    numbers, first = np.unique(groups[by], return_index=True)
    cuts = np.searchsorted(first, np.arange(0, len(by), AT_ONCE)).tolist() + [len(numbers)]
    shift = np.array([offset[1], offset[0]])
    shapes = {}
    for lo, hi in zip(cuts[:-1], cuts[1:]):  # whole regions at a time
        if lo == hi:
            continue
        part = by[first[lo] : first[hi] if hi < len(first) else len(by)]
        found, regions = traced(xs[part], ys[part], codes[part], groups[part])
        areas = ring_areas(found).tolist()
        order = np.argsort(regions, kind="stable")
        mine = np.split(order, np.flatnonzero(np.diff(regions[order])) + 1)
        for k, rings_ in zip(numbers[lo:hi].tolist(), (m.tolist() for m in mine)):
            if len(rings_) == 1:
                shapes[k] = [[found[rings_[0]] + shift]]
            else:
                shapes[k] = shapes_of(
                    [found[i] + shift for i in rings_], [areas[i] for i in rings_]
                )
    return shapes


AT_ONCE = 1 << 20  # pixel edges traced together by label_polygons (about 100 MB of work arrays)


def ring_areas(found: list[np.ndarray]) -> np.ndarray:
    """:func:`signed_area` of each ring, at once."""
    if not found:
        return np.zeros(0)
    points = np.concatenate(found).astype(np.float64)
    ends = np.cumsum([len(ring) for ring in found])
    begin = np.r_[0, ends[:-1]]
    after = np.arange(1, len(points) + 1)  # each point's next on its ring
    after[ends - 1] = begin
    cross = points[:, 0] * points[after, 1] - points[after, 0] * points[:, 1]
    return np.add.reduceat(cross, begin) / 2


def shapes_of(
    found_rings: list[np.ndarray], areas: list[float] | None = None
) -> list[list[np.ndarray]]:
    """Rings of one region (:func:`rings`, :func:`linked`) grouped as polygons, each [outer
    ring, hole rings...]: each hole with the smallest outer ring around it. ``areas``: their
    signed areas, when known."""
    import cv2

    areas = [signed_area(ring) for ring in found_rings] if areas is None else areas
    found = list(zip(found_rings, areas))
    outer = [r for r, area in found if area > 0]
    sizes = [area for _, area in found if area > 0]
    holes = [r for r, area in found if area < 0]
    shapes = [[r] for r in outer]
    if len(outer) > 1 and holes:  # the outer rings' boxes: only those around a point are tested
        low = np.array([r.min(0) for r in outer])
        high = np.array([r.max(0) for r in outer])
    for hole in holes:
        home = shapes[0]
        if len(outer) > 1:  # the centre of the hole's pixel beside its first edge
            dx, dy = np.sign(hole[1] - hole[0])
            point = hole[0] + np.array([dx + dy, dy - dx]) / 2
            boxed = np.nonzero(((low < point) & (point < high)).all(1))[0].tolist()
            around = [
                k
                for k in boxed
                if cv2.pointPolygonTest(outer[k].astype(np.float32), tuple(point), False) > 0
            ]
            home = shapes[min(around, key=lambda k: sizes[k])]
        home.append(hole)
    return shapes


def geometry(region: np.ndarray, offset: tuple[int, int] = (0, 0)) -> dict | None:
    """A GeoJSON Polygon (one piece) or MultiPolygon of the True pixels of ``region``, rings
    closed; None when it has none."""
    return geometry_of(polygons(region, offset))


def geometry_of(shapes: list[list[np.ndarray]]) -> dict | None:
    """Polygons (:func:`polygons`) as a GeoJSON Polygon or MultiPolygon; None when none."""
    if not shapes:
        return None
    coords = [[_closed(ring) for ring in shape] for shape in shapes]
    if len(coords) == 1:
        return {"type": "Polygon", "coordinates": coords[0]}
    return {"type": "MultiPolygon", "coordinates": coords}


def _closed(ring: np.ndarray) -> list[list[int]]:
    points = ring.tolist()
    return points + points[:1]


def feature(geom: dict, name: str, colour, object_type: str, **measurements) -> dict:
    """A GeoJSON Feature as QuPath reads and writes them: its ``objectType`` ("detection" for
    an object, "annotation" for a region), its class with the class's colour, and numeric
    ``measurements``."""
    properties = {
        "objectType": object_type,
        "classification": {"name": name, "color": [int(v) for v in colour]},
    }
    if measurements:
        properties["measurements"] = measurements
    return {"type": "Feature", "geometry": geom, "properties": properties}


def object_features(
    labels: np.ndarray, names: dict[int, str], colours: dict[str, tuple], first: int = 1,
    offset: tuple[int, int] = (0, 0), measured: dict[int, dict] | None = None,
    cells: np.ndarray | None = None,
):  # fmt: skip
    """A "detection" Feature per object of an instance label image (1..N; ``names`` maps an
    object's number to its class name, ``colours`` a class name to its colour), its number
    (from ``first`` for the first) as the measurement "object", and the numbers of its row in
    ``measured`` (by that number: ``segment --measure``'s) as further measurements; an object
    in several pieces is one MultiPolygon; a graded object (its row's "grade": ``segment
    --positive``) is classified by its grade, in QuPath's colour for it. With ``cells`` (each object's cell, a label image
    of the same numbers: ``segment --expand``) each is a QuPath "cell": the cell its geometry,
    the object its ``nucleusGeometry``."""
    around = label_polygons(cells, offset) if cells is not None else {}  # as labels' objects
    for k, shapes in label_polygons(labels, offset).items():
        if k not in names:
            continue
        geom = geometry_of(shapes)
        number, name = first + k - 1, names[k]
        row = (measured or {}).get(number, {})
        values = {
            key: v for key, v in row.items() if isinstance(v, (int, float)) and key != "object"
        }
        name, colour = (
            (row["grade"], GRADE_COLOURS[row["grade"]]) if "grade" in row else (name, colours[name])
        )
        if cells is None:
            yield feature(geom, name, colour, "detection", object=number, **values)
            continue
        found = geometry_of(around[k])  # the cell holds the object: never empty
        yield feature(found, name, colour, "cell", object=number, **values) | {
            "nucleusGeometry": geom
        }


def region_features(
    mask: np.ndarray, names: dict[int, str], colours: dict[str, tuple], min_pixels: int = 1
):
    """An "annotation" Feature per connected region (8-connected) of each class of a class
    mask that ``names`` names, with ``min_pixels`` pixels or more."""
    import cv2

    for value, name in names.items():
        count, regions, stats, _ = cv2.connectedComponentsWithStats(
            (mask == value).astype(np.uint8), connectivity=8
        )
        shapes = label_polygons(regions) if count > 1 else {}
        for k in range(1, count):
            if stats[k, cv2.CC_STAT_AREA] >= max(min_pixels, 1):
                yield feature(geometry_of(shapes[k]), name, colours[name], "annotation")


# the pixel across each side of a pixel, by the side's direction code: above, right, below, left
ACROSS_ROW, ACROSS_COL = np.array([-1, 0, 1, 0]), np.array([0, 1, 0, -1])


def tiled_region_features(
    read, shape: tuple[int, int], names: dict[int, str], colours: dict[str, tuple],
    min_pixels: int = 1, block: int = 4096, through=None,
):  # fmt: skip
    """:func:`region_features` of a class mask too large to hold, read ``block`` x ``block``
    pixels at a time by ``read(y0, y1, x0, x1)`` (ends excluded, (h, w) class ids): the same
    features, outlines and all. A region inside one block is given when its block is read; one
    that reaches a block's side is joined with its pieces in the blocks beside (8-connected) and
    given, traced from all their pixel edges, after the last block. ``through``: the blocks'
    corners pass through it (a progress bar)."""
    h, w = shape
    joined = _Joined()
    corners = [(y0, x0) for y0 in range(0, h, block) for x0 in range(0, w, block)]
    for y0, x0 in corners if through is None else through(corners):
        y1, x1 = min(y0 + block, h), min(x0 + block, w)
        top, left = max(y0 - 1, 0), max(x0 - 1, 0)
        around = read(top, min(y1 + 1, h), left, min(x1 + 1, w))  # one pixel more each way
        for value, name in names.items():
            at = (y0 // block, x0 // block, value)
            found = _block_regions(around, (y0 - top, x0 - left), (y1 - y0, x1 - x0), value)
            for k, (area, shapes, edges) in enumerate(found or ()):
                if edges is None and area >= max(min_pixels, 1):
                    shifted = [[ring + (x0, y0) for ring in shape] for shape in shapes]
                    yield feature(geometry_of(shifted), name, colours[name], "annotation")
                elif edges is not None:
                    xs, ys, codes = edges
                    joined.add(at, k, (xs + x0, ys + y0, codes), area, value)
            joined.close_block(at, found)
    for value, area, edges in joined.regions():
        if area >= max(min_pixels, 1):
            order = np.lexsort((edges[0], edges[1], edges[2]))  # as label_edges finds them
            geom = geometry_of(shapes_of(linked(*(e[order] for e in edges))))
            name = names[value]
            yield feature(geom, name, colours[name], "annotation")


class _Found(list):
    """A block's regions of one class: (area, polygons or None, edges or None) each, and
    ``sides``: the region number of each pixel on the block's top, right, bottom and left side
    (-1: not of the class)."""

    sides: tuple


def _block_regions(around: np.ndarray, at: tuple[int, int], size: tuple[int, int], value: int):
    """The 8-connected regions of ``value`` in the block of ``around`` (the block with up to
    one pixel more on each side) at ``at`` = (row, column), of ``size``; a region on a side
    with pixels beyond gets its pixel edges (block coordinates) but those between it and a
    pixel of ``value`` beyond, the others their polygons (block coordinates)."""
    import cv2

    (oy, ox), (bh, bw) = at, size
    inside = around[oy : oy + bh, ox : ox + bw] == value
    if not inside.any():
        return None
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        inside.astype(np.uint8), connectivity=8
    )
    beyond = (oy > 0, ox + bw < around.shape[1], oy + bh < around.shape[0], ox > 0)
    sides = (labels[0], labels[:, -1], labels[-1], labels[:, 0])
    reaches = np.zeros(count, bool)
    for side, more in zip(sides, beyond):
        reaches[side] |= more
    reaches[0] = False
    found = _Found()
    found.sides = tuple(side.astype(np.int64) - 1 for side in sides)
    xs, ys, codes, groups = label_edges(labels)
    rows = ys - CORNER_Y[codes] + oy + ACROSS_ROW[codes]  # the pixel across, in around
    cols = xs - CORNER_X[codes] + ox + ACROSS_COL[codes]
    seen = (rows >= 0) & (rows < around.shape[0]) & (cols >= 0) & (cols < around.shape[1])
    same = np.zeros_like(seen)  # only a region that reaches a side has such edges
    same[seen] = around[rows[seen], cols[seen]] == value
    at_side = reaches[groups]
    inner = ~at_side
    shapes = label_polygons(labels, edges=(xs[inner], ys[inner], codes[inner], groups[inner]))
    keep = at_side & ~same
    order = np.argsort(groups[keep], kind="stable")
    xs, ys, codes, groups = (e[keep][order] for e in (xs, ys, codes, groups))
    cut = np.searchsorted(groups, np.arange(count + 1))
    for k in range(1, count):
        edges = (xs[cut[k] : cut[k + 1]], ys[cut[k] : cut[k + 1]], codes[cut[k] : cut[k + 1]])
        found.append(
            (int(stats[k, cv2.CC_STAT_AREA]), shapes.get(k), edges if reaches[k] else None)
        )
    return found


class _Joined:
    """Regions that reach a block's side, joined across blocks (union-find over their numbers)
    with their areas and pixel edges."""

    def __init__(self) -> None:
        self.joins = Joins()
        self.pieces: list[tuple] = []  # (area, edges, value) per number
        self.numbers: dict[tuple, dict[int, int]] = {}  # block and value -> region -> number
        self.sides: dict[tuple, tuple] = {}  # block and value -> its side pixels' numbers

    def add(self, at: tuple, k: int, edges: tuple, area: int, value: int) -> None:
        self.numbers.setdefault(at, {})[k] = self.joins.add()
        self.pieces.append((area, edges, value))

    def close_block(self, at: tuple, found: _Found | None) -> None:
        """Join the block ``at``'s regions (``found``) with those of the blocks before it that
        they touch (left, above, and the two diagonals above)."""
        if found is None:
            return
        by, bx, value = at
        lookup = np.full(len(found), -1)  # region -> number, for those that reach a side
        for k, number in self.numbers.pop(at, {}).items():
            lookup[k] = number
        mine = tuple(np.where(s >= 0, lookup[np.maximum(s, 0)], -1) for s in found.sides)
        self.sides[at] = mine
        top, _, _, left = mine
        before = {d: self.sides.get((by + d[0], bx + d[1], value)) for d in ((0, -1), (-1, 0))}
        if before[(0, -1)] is not None:
            self._along(left, before[(0, -1)][1])
        if before[(-1, 0)] is not None:
            self._along(top, before[(-1, 0)][2])
        corners = (((-1, -1), 0, -1), ((-1, 1), -1, 0))  # above-left, above-right
        for (dy, dx), mine_at, theirs_at in corners:
            theirs = self.sides.get((by + dy, bx + dx, value))
            if theirs is not None and top[mine_at] >= 0 and theirs[2][theirs_at] >= 0:
                self.joins.join(int(top[mine_at]), int(theirs[2][theirs_at]))
        self.sides.pop((by - 2, bx, value), None)  # rows of blocks no longer touched

    def _along(self, mine: np.ndarray, theirs: np.ndarray) -> None:
        """Join the pixels of two facing sides that touch (straight across or diagonally)."""
        for d in (-1, 0, 1):
            a = mine[max(0, -d) : len(mine) - max(0, d)]
            b = theirs[max(0, d) : len(theirs) - max(0, -d)]
            both = (a >= 0) & (b >= 0)
            for x, y in set(zip(a[both].tolist(), b[both].tolist())):
                self.joins.join(x, y)

    def regions(self):
        """(class value, area, edges) of each joined region."""
        for members in self.joins.groups():
            pieces = [self.pieces[m] for m in members]
            edges = tuple(np.concatenate([p[1][i] for p in pieces]) for i in range(3))
            yield pieces[0][2], sum(p[0] for p in pieces), edges


class FeatureWriter:
    """A FeatureCollection written to ``path`` feature by feature (a slide's objects need not
    be held), via a temporary file renamed on success: never half-written."""

    def __init__(self, path: str | os.PathLike) -> None:
        from pixelwise.data.write import _atomic_target

        self.path = Path(path)
        fd, self.tmp = _atomic_target(self.path)
        self.file = os.fdopen(fd, "w", encoding="utf-8")
        self.file.write('{"type": "FeatureCollection", "features": [')
        self.count = 0

    def add(self, features) -> None:
        for item in features:
            self.file.write(("\n" if not self.count else ",\n") + json.dumps(item))
            self.count += 1

    def __enter__(self) -> FeatureWriter:
        return self

    def __exit__(self, kind, value, trace) -> None:
        from pixelwise.data.write import _publish

        try:
            if kind is None:
                self.file.write("\n]}\n")
            self.file.close()
            if kind is None:
                _publish(self.tmp, self.path)
        finally:
            if kind is not None:
                Path(self.tmp).unlink(missing_ok=True)


def write_features(path: str | os.PathLike, features) -> int:
    """Write ``features`` as one FeatureCollection to ``path``; their number."""
    with FeatureWriter(path) as writer:
        writer.add(features)
    return writer.count


UNCLASSIFIED = "object"  # the class of a feature without one (what segment calls its objects)
# the outlines of a QuPath cell (PIXELWISE_CELL_PART): its geometry, its nucleusGeometry
CELL_PARTS = ("cell", "nucleus")


def annotation_files(folder: Path | None) -> dict[Path, dict]:
    """The GeoJSON files (``*.geojson``) directly in ``folder``, each as :func:`read_geojson`
    gives it; a ValueError naming every one that cannot be read."""
    if folder is None or not folder.is_dir():
        return {}
    found, failures = {}, []
    for path in sorted(folder.glob("*.geojson")):
        try:
            found[path] = read_geojson(path)
        except ValueError as exc:
            failures.append(one_line(exc))
    if failures:
        raise unusable(failures, "GeoJSON file")
    return found


def read_geojson(path: Path) -> dict:
    """A GeoJSON file of objects (a FeatureCollection, one Feature, or a list of Features as
    QuPath once exported them) as LabelMe's files are read (:mod:`pixelwise.data.labelme`):
    ``{"shapes": [...]}``, each polygon of a Feature a shape of ``shape_type`` "area" with its
    ``rings`` (a Point or LineString: one without), the Feature's polygons one group (one
    object, whose parts may overlap), labelled by its QuPath classification's name
    (:data:`UNCLASSIFIED` without one). Its image is the one named
    as the file (``a.geojson`` or ``a.png.geojson`` for ``a.png``). A QuPath cell (a Feature
    with a ``nucleusGeometry`` beside its ``geometry``, or of ``objectType`` "cell") is read by
    the outline :func:`cell_part` names: the cell's, or its nucleus's, where a cell without a
    nucleus is a region to ignore (its nucleus is in it, somewhere). ``"cells"``: how many
    Features had a nucleus."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read it as GeoJSON ({exc})") from None
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        data = data.get("features")
    elif isinstance(data, dict) and data.get("type") == "Feature":
        data = [data]
    if not isinstance(data, list):
        raise ValueError(f"{path}: not a GeoJSON FeatureCollection, Feature or list of Features")
    stamp = Path(path).stat().st_mtime_ns
    shapes, cells, part = [], 0, cell_part()
    for k, item in enumerate(data, start=1):
        if not isinstance(item, dict) or item.get("type") != "Feature":
            raise ValueError(f"{path}, feature {k}: not a GeoJSON Feature")
        nucleus = item.get("nucleusGeometry")
        cells += nucleus is not None
        label, geom = class_of(item), item.get("geometry")
        if part == "nucleus" and nucleus is not None:
            geom = nucleus
        elif part == "nucleus" and is_cell(item):
            label = IGNORE_LABEL
        parts = polygons_of(geom, f"{path}, feature {k}") or [[]]  # [[]]: no area
        shape = {"label": label, "shape_type": "area", "group_id": k}
        shapes += [shape | {"rings": rings} for rings in parts]  # one group: one object
    CELL_COUNTS[str(path)] = (stamp, cells)
    return {"shapes": shapes, "cells": cells}


# how many QuPath cells each GeoJSON file read holds, by path: (modification time, count)
CELL_COUNTS: dict[str, tuple[int, int]] = {}


def cell_count(path: Path) -> int:
    """How many QuPath cells (Features with a ``nucleusGeometry``) a GeoJSON file holds: as
    counted when :func:`read_geojson` last read it unchanged, else read now."""
    known = CELL_COUNTS.get(str(path))
    if known is not None and known[0] == Path(path).stat().st_mtime_ns:
        return known[1]
    return read_geojson(path)["cells"]


def cell_part() -> str:
    """Which outline of a QuPath cell is read: ``PIXELWISE_CELL_PART``, "cell" (the default: its
    ``geometry``) or "nucleus" (its ``nucleusGeometry``)."""
    part = os.environ.get("PIXELWISE_CELL_PART", "cell")
    if part not in CELL_PARTS:
        raise ValueError(f"PIXELWISE_CELL_PART must be cell or nucleus, got {part!r}")
    return part


def is_cell(item: dict) -> bool:
    """Whether a Feature is a QuPath cell (``objectType``, or ``object_type`` as QuPath 0.2
    wrote it)."""
    properties = item.get("properties") or {}
    return "cell" in (properties.get("objectType"), properties.get("object_type"))


def class_of(item: dict) -> str:
    """A Feature's class: its QuPath ``classification`` (``{"name": ...}``, a derived class as
    ``{"names": ["Tumor", "Positive"]}``: "Tumor: Positive", as QuPath names it; or a plain
    name)."""
    given = (item.get("properties") or {}).get("classification")
    name = given.get("name") if isinstance(given, dict) else given
    parts = given.get("names") if isinstance(given, dict) else None
    if not name and isinstance(parts, list) and parts:
        name = ": ".join(map(str, parts))
    return str(name) if name else UNCLASSIFIED


def polygons_of(geom, where: str) -> list[list[np.ndarray]]:
    """Each polygon of a Polygon, MultiPolygon or GeometryCollection as its rings, (N, 2) float
    arrays of x, y (a third coordinate dropped); none for other geometries."""
    if not isinstance(geom, dict):
        return []
    kind, coords = geom.get("type"), geom.get("coordinates")
    if kind == "GeometryCollection":
        return [
            shape for part in geom.get("geometries") or [] for shape in polygons_of(part, where)
        ]
    found = []
    try:
        for shape in {"Polygon": [coords], "MultiPolygon": coords}.get(kind) or []:
            rings = [np.asarray(ring, np.float64) for ring in shape]
            if any(points.ndim != 2 or points.shape[1] < 2 for points in rings):
                raise ValueError
            rings = [points[:, :2] for points in rings if len(points) >= 3]
            if rings:
                found.append(rings)
    except (ValueError, TypeError):
        raise ValueError(f"{where}: coordinates must be lists of [x, y] points") from None
    return found


def region_tables(model=None, top: int = 1) -> tuple[dict[int, str], dict[str, tuple]]:
    """What a class mask's regions are called: each class id but 0's name (``model``'s classes;
    "class K" up to ``top`` without one) and each name's colour (the model's palette, else the
    default one), as :func:`region_features` takes them."""
    from pixelwise.segmenter import default_colours

    if model is not None:
        names, palette = list(model.class_names), model.palette()
    else:
        names = ["background", *(f"class {k}" for k in range(1, max(top, 1) + 1))]
        palette = np.asarray(default_colours(max(len(names), 2)))
    return dict(enumerate(names[1:], start=1)), {n: palette[k] for k, n in enumerate(names)}


def to_geojson(
    array: np.ndarray, model=None, objects: bool = True, min_pixels: int = 1,
    object_class: int | None = None, cells: np.ndarray | None = None,
) -> dict:  # fmt: skip
    """A GeoJSON FeatureCollection of what ``segment`` or ``predict`` returned, as ``--geojson``
    writes it: with ``objects``, an instance label image, each object a "detection" named
    :data:`UNCLASSIFIED` (``object_class``'s name when the objects are of that class of
    ``model``), or with ``cells`` (:func:`pixelwise.expand_cells` of it) a QuPath "cell" with
    the object as its nucleus; else a class mask, each 8-connected region of ``min_pixels`` or
    more of each class but 0 an "annotation" named by ``model``'s classes ("class K" without
    one). Colours: the model's palette, else the default one."""
    array = np.asarray(array)
    top = int(array.max(initial=0))
    names, colours = region_tables(model, top)
    if objects:
        name = names[object_class] if object_class else UNCLASSIFIED
        colours = {name: colours.get(name, colours[names[object_class or 1]])}
        numbers = dict.fromkeys(range(1, top + 1), name)
        found = object_features(array.astype(np.int64), numbers, colours, cells=cells)
    else:
        found = region_features(array, names, colours, min_pixels)
    with collection_paused():
        return {"type": "FeatureCollection", "features": list(found)}


@contextlib.contextmanager
def collection_paused():
    """Python's cyclic garbage collector off while a large tree of lists is built (a polygon's
    every point a list): its full passes, each over every object alive, took 0.75 of 1.6 s for
    the outlines of 14,000 objects; nothing built here holds a cycle."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
