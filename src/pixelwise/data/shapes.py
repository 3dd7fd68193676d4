"""Shapes as labelling tools draw them: LabelMe's polygons, rectangles, circles and masks,
drawn by PIL with the outline included (a polygon's corners are pixel centres and its edge
pixels are inside, where COCO's polygons leave the right and lower edge pixels out)."""

from __future__ import annotations

import numpy as np


def extent(kind: str, data) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a shape's points (a circle's: centre -+ radius)."""
    if kind == "mask":
        x, y, bitmap = data
        return x, y, x + bitmap.shape[1], y + bitmap.shape[0]
    if kind == "circle":
        r = float(np.hypot(*(data[1] - data[0])))
        return data[0][0] - r, data[0][1] - r, data[0][0] + r, data[0][1] + r
    return (*data.min(0), *data.max(0))


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
        elif kind == "circle":
            draw.ellipse(extent(kind, data), outline=value, fill=value)
        elif kind == "rectangle":
            draw.rectangle([*data.min(0), *data.max(0)], outline=value, fill=value)
        else:
            draw.polygon([tuple(p) for p in data.tolist()], outline=value, fill=value)
    return np.asarray(canvas)
