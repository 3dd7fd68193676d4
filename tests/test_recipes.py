"""Analysis scripts under recipes/ that docs/results.md quotes."""

import importlib.util
from pathlib import Path

import numpy as np
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_label_offset_finds_a_known_shift():
    """Dark grid lines; labels drawn one pixel above them -> moved +1 down, 0 right to line up."""
    offset = _load("isbi2012_label_offset")
    lines = np.zeros((3, 64, 64), bool)
    lines[:, 10::16, :] = lines[:, 11::16, :] = lines[:, :, 6::16] = lines[:, :, 7::16] = True
    images = 200 - 150 * ndimage.gaussian_filter(lines.astype(float), (0, 1.5, 1.5))
    labels = np.roll(lines, -1, axis=1)  # one pixel up
    table = offset.correlation_table(images, labels.astype(float))
    centre = len(offset.SHIFTS) // 2
    assert abs(offset.subpixel_peak(table[:, centre]) - 1) < 0.15
    assert abs(offset.subpixel_peak(table[centre, :])) < 0.15
