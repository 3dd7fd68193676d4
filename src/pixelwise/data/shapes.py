"""Shapes as labelling tools draw them: LabelMe's polygons, rectangles, circles and masks,
drawn by PIL with the outline included (a polygon's corners are pixel centres and its edge
pixels are inside, where COCO's polygons leave the right and lower edge pixels out); and
GeoJSON's polygons (QuPath's), areas whose outlines are points in pixel coordinates, which hold
the pixels whose centres they enclose (:func:`fill_rings`)."""

from __future__ import annotations

import numpy as np


def extent(kind: str, data) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a shape's points (a circle's: centre -+ radius)."""
    if kind == "area":
        data = np.concatenate(data)
    if kind == "mask":
        x, y, bitmap = data
        return x, y, x + bitmap.shape[1], y + bitmap.shape[0]
    if kind == "circle":
        r = float(np.hypot(*(data[1] - data[0])))
        return data[0][0] - r, data[0][1] - r, data[0][0] + r, data[0][1] + r
    return (*data.min(0), *data.max(0))


def fill_rings(rings, height: int, width: int) -> np.ndarray:
    """(H, W) bool: the pixels whose centres lie inside an odd number of ``rings`` (each an
    (N, 2) array of x, y points, closed or not; pixel (r, c) has its centre at (c + 0.5,
    r + 0.5)), found row by row where the rings cross the centres' line (even-odd rule). A
    polygon's outer ring with its holes fills the polygon; GeoJSON's outlines along pixel
    edges (:mod:`pixelwise.data.geojson`) fill exactly their pixels."""
    starts = np.concatenate([np.asarray(r, np.float64).reshape(-1, 2) for r in rings])
    ends = np.concatenate([np.roll(np.asarray(r, np.float64).reshape(-1, 2), -1, 0) for r in rings])
    (x0, y0), (x1, y1) = starts.T, ends.T
    low, high = np.minimum(y0, y1), np.maximum(y0, y1)
    first = np.clip(np.ceil(low - 0.5), 0, height).astype(np.int64)  # rows whose centre line
    last = np.clip(np.ceil(high - 0.5), 0, height).astype(np.int64)  # the edge crosses: [)
    counts = last - first
    edge = np.repeat(np.arange(len(counts)), counts)
    rows = np.repeat(first - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    centre = rows + 0.5
    x = x0[edge] + (centre - y0[edge]) * (x1[edge] - x0[edge]) / (y1[edge] - y0[edge])
    order = np.lexsort((x, rows))
    rows, cols = rows[order], np.clip(np.ceil(x[order] - 0.5), 0, width).astype(np.int64)
    change = np.zeros((height, width + 1), np.int32)  # +1 where a span starts, -1 past its end
    np.add.at(change, (rows[0::2], cols[0::2]), 1)
    np.add.at(change, (rows[1::2], cols[1::2]), -1)
    return np.cumsum(change, axis=1)[:, :width] > 0


def draw_shapes(shapes: tuple, height: int, width: int) -> np.ndarray:
    """(H, W) uint8 mask of one object's shapes, each (kind, data) as
    :func:`pixelwise.data.labelme.outline` gives it, drawn as LabelMe draws them, in order;
    ``("erase", shape)`` clears what one shape covers (a hole, drawn after the object)."""
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for kind, data in shapes:
        value = 0 if kind == "erase" else 1
        kind, data = data if kind == "erase" else (kind, data)
        if kind == "mask":
            x, y, bitmap = data
            canvas.paste(value, (x, y), Image.fromarray(bitmap.astype(np.uint8) * 255))
        elif kind == "area":
            covered = Image.fromarray(fill_rings(data, height, width).astype(np.uint8) * 255)
            canvas.paste(value, (0, 0), covered)
        elif kind == "circle":
            draw.ellipse(extent(kind, data), outline=value, fill=value)
        elif kind == "rectangle":
            draw.rectangle([*data.min(0), *data.max(0)], outline=value, fill=value)
        else:
            draw.polygon([tuple(p) for p in data.tolist()], outline=value, fill=value)
    return np.asarray(canvas)
