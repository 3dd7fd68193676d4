"""Where ISBI 2012's membrane labels sit relative to the dark lines they trace (docs/results.md (g)).

Cross-correlates each training slice's membrane mask with its inverted grey values for whole-pixel
shifts of the mask, then refines the peak to a sub-pixel offset with a parabola through the peak
and its two neighbours, per axis. A label drawn centred on the membranes peaks at (0, 0).

    python recipes/isbi2012_label_offset.py [DATA [STEMS]]

DATA defaults to ../shared/data/isbi2012; STEMS (e.g. 00-24, the training slices of issue 2's
split) to every slice of DATA/train.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from pixelwise.constants import parse_stems
from pixelwise.data.io import read_image

SHIFTS = range(-2, 3)


def correlation_table(images: np.ndarray, membranes: np.ndarray, border: int = 4) -> np.ndarray:
    """``table[dy, dx]``: mean of (mask rolled down dy, right dx) x (inverted image), both centred."""
    dark = -(images - images.mean())
    mask = membranes - membranes.mean()
    inner = (slice(None), slice(border, -border), slice(border, -border))
    return np.array(
        [
            [(np.roll(mask, (dy, dx), axis=(1, 2))[inner] * dark[inner]).mean() for dx in SHIFTS]
            for dy in SHIFTS
        ]
    )


def subpixel_peak(values: np.ndarray) -> float:
    """Shift of the maximum of a 1-D profile sampled at SHIFTS, by a parabola through the best 3."""
    i = int(np.clip(values.argmax(), 1, len(values) - 2))
    left, mid, right = values[i - 1 : i + 2]
    return SHIFTS[i] + 0.5 * (left - right) / (left - 2 * mid + right)


def main(root: Path, stems: list[str] | None = None) -> None:
    stems = stems or sorted(p.stem for p in (root / "train" / "images").glob("*.png"))
    images = np.stack(
        [read_image(root / "train" / "images" / f"{s}.png")[..., 0] for s in stems]
    ).astype(float)
    membranes = np.stack(
        [read_image(root / "train" / "masks" / f"{s}.png")[..., 0] == 0 for s in stems]
    ).astype(float)
    table = correlation_table(images, membranes)
    print("correlation of the membrane mask rolled (down dy, right dx) with the inverted image:")
    print("dy\\dx " + " ".join(f"{dx:>7d}" for dx in SHIFTS))
    for dy, row in zip(SHIFTS, table):
        print(f"{dy:>5d} " + " ".join(f"{v:7.3f}" for v in row))
    centre = len(SHIFTS) // 2
    dy, dx = subpixel_peak(table[:, centre]), subpixel_peak(table[centre, :])
    print(
        f"{len(stems)} slices: the labels line up with the dark lines when moved {dy:+.2f} px down, {dx:+.2f} px right"
    )


if __name__ == "__main__":
    main(
        Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/isbi2012"),
        parse_stems(sys.argv[2]) if len(sys.argv) > 2 else None,
    )
