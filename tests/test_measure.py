"""Object measurements against hand-computed shapes and direct numpy counts."""

import csv
import math

import numpy as np
import pytest
import tifffile
from PIL import Image

from pixelwise.cli import commands, main
from pixelwise.measure import COLUMNS, Regions, measure_objects, measurements_csv


def test_rectangles_and_a_disc_by_hand():
    labels = np.zeros((40, 60), np.uint16)
    labels[5:15, 10:30] = 1  # 10 x 20 rectangle
    yy, xx = np.mgrid[:40, :60]
    labels[(yy - 28) ** 2 + (xx - 40) ** 2 <= 49] = 3  # a disc; object 2 absent
    image = np.zeros((40, 60, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 30, 60, 90
    image[5:15, 10:20, 0] = 130  # left half of the rectangle brighter in red
    rect, disc = measure_objects(labels, image, ["cell"])
    assert (rect["object"], rect["class"], rect["area"]) == (1, "cell", 200)
    assert (rect["centroid_x"], rect["centroid_y"]) == (19.5, 9.5)
    assert [rect[k] for k in ("bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1")] == [10, 5, 30, 15]
    assert rect["equivalent_diameter"] == pytest.approx(math.sqrt(4 * 200 / math.pi), abs=1e-3)
    assert rect["solidity"] == 1.0
    assert rect["mean_red"] == 80 and rect["mean_green"] == 60 and rect["mean_blue"] == 90
    assert rect["mean_intensity"] == pytest.approx((80 + 60 + 90) / 3, abs=1e-3)
    assert disc["object"] == 3 and disc["area"] == int(
        ((yy - 28) ** 2 + (xx - 40) ** 2 <= 49).sum()
    )
    assert (disc["centroid_x"], disc["centroid_y"]) == (40, 28)
    assert disc["eccentricity"] < 0.05 < rect["eccentricity"]  # a disc, then elongated
    grey = measure_objects(labels, image[..., 0], ["cell"])[0]  # one channel: no colour columns
    assert grey["mean_intensity"] == 80 and "mean_red" not in grey


def test_random_objects_match_numpy_counts():
    rng = np.random.default_rng(0)
    labels = np.zeros((50, 70), np.int32)
    for k in range(1, 9):
        y, x = rng.integers(0, 45), rng.integers(0, 65)
        labels[y : y + rng.integers(2, 12), x : x + rng.integers(2, 12)] = k
    image = rng.integers(0, 65535, (50, 70), np.uint16)  # 16-bit grey: its own values
    classes = np.where(labels % 2 == 0, 2, 1) * (labels > 0)
    rows = measure_objects(labels, image, ["odd", "even"], classes)
    assert [r["object"] for r in rows] == sorted(set(np.unique(labels)) - {0})
    for r in rows:
        ys, xs = np.nonzero(labels == r["object"])
        assert r["area"] == len(ys)
        assert r["centroid_x"] == pytest.approx(xs.mean(), abs=1e-3)
        assert r["centroid_y"] == pytest.approx(ys.mean(), abs=1e-3)
        assert (r["bbox_x0"], r["bbox_x1"]) == (xs.min(), xs.max() + 1)
        assert r["mean_intensity"] == pytest.approx(image[ys, xs].mean(), abs=1e-3)
        assert r["class"] == ("even" if r["object"] % 2 == 0 else "odd")
    text = measurements_csv([("a.png", rows), ("b.png", [])]).decode()
    read = list(csv.DictReader(text.splitlines()))
    assert tuple(read[0]) == COLUMNS and len(read) == len(rows)
    assert {r["image"] for r in read} == {"a.png"} and read[0]["mean_red"] == ""


def regionprops_rows(labels, image):
    """The shape and intensity columns as scikit-image's regionprops gives them, one object at a
    time: the reference :class:`pixelwise.measure.Regions` computes all at once."""
    from skimage.measure import regionprops

    rows = []
    for r in regionprops(labels.astype(np.int64), intensity_image=image):
        y0, x0, y1, x1 = r.bbox
        means = np.atleast_1d(r.intensity_mean)
        rows.append(
            {
                "object": r.label,
                "area": int(r.area),
                "centroid_x": round(float(r.centroid[1]), 3),
                "centroid_y": round(float(r.centroid[0]), 3),
                "bbox_x0": x0,
                "bbox_y0": y0,
                "bbox_x1": x1,
                "bbox_y1": y1,
                "equivalent_diameter": round(float(r.equivalent_diameter_area), 3),
                "perimeter": round(float(r.perimeter), 3),
                "eccentricity": round(float(r.eccentricity), 4),
                "solidity": round(float(r.solidity), 4),
                "mean_intensity": round(float(means.mean()), 3),
            }
        )
    return rows


@pytest.mark.parametrize("seed", range(3))
def test_every_shape_column_equals_scikit_images_regionprops(seed):
    # touching objects, holes, single pixels, one-pixel lines, objects joined only at a corner
    # and objects cut by the image's edge; labels with gaps, and a float image of 4 channels
    rng = np.random.default_rng(seed)
    labels = np.zeros((90, 110), np.int32)
    yy, xx = np.mgrid[:90, :110]
    for k in rng.choice(np.arange(1, 400), 40, replace=False):
        cy, cx, ry, rx = rng.integers(-5, 95), rng.integers(-5, 115), *rng.integers(1, 12, 2)
        angle = rng.uniform(0, np.pi)
        u = (yy - cy) * np.cos(angle) + (xx - cx) * np.sin(angle)
        v = -(yy - cy) * np.sin(angle) + (xx - cx) * np.cos(angle)
        labels[(u / ry) ** 2 + (v / rx) ** 2 <= 1] = k
    labels[40:44, 50:54] = 0  # a hole
    labels[3, 3], labels[4, 4], labels[5, 3] = 401, 401, 401  # joined at corners only
    labels[60, 5:40] = 402  # a line
    labels[0, 109] = 403  # one pixel in a corner
    image = rng.uniform(0, 1, (90, 110, 4)).astype(np.float32)
    rows = measure_objects(labels, image, ["cell"])
    expected = regionprops_rows(labels, image)
    assert len(rows) == len(expected) > 30
    for row, want in zip(rows, expected):
        assert {k: row[k] for k in want} == pytest.approx(want, abs=1.5e-4), row["object"]


@pytest.mark.parametrize("seed", range(4))
def test_convex_hull_areas_equal_scikit_images_one_object_at_a_time(seed):
    """Every object's convex hull area, all at once, as ``convex_hull_image`` counts it for the
    object alone: noise (objects of any shape), long thin diagonals, single pixels."""
    from scipy import ndimage
    from skimage.morphology import convex_hull_image

    rng = np.random.default_rng(seed)
    labels = ndimage.label(rng.random((60, 80)) < 0.45)[0]
    labels[rng.random(labels.shape) < 0.02] = 5000  # scattered pixels: one object
    steps = np.arange(50)
    labels[steps % 60, (steps * (seed + 1)) % 80] = 5001  # a diagonal line
    labels[59, 79] = 5002
    regions = Regions(labels)
    found = ndimage.find_objects(regions.labels)
    expected = [convex_hull_image(regions.labels[found[k - 1]] == k).sum() for k in regions.ids]
    assert regions.convex_areas().tolist() == expected
    assert Regions(np.zeros((6, 8), np.int32)).convex_areas().tolist() == []  # no object


def test_segment_measure_writes_one_csv_of_the_label_images_objects(tmp_path, capsys):
    """segment --measure: a row per object of each written label image (area and centroid as
    the label image has them), images by their input names; a bad file name is refused."""
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a.png", "sub/b.jpg"):
        image = np.full((64, 64), 20, np.uint8)
        for _ in range(3):
            y, x = rng.integers(8, 52, 2)
            image[y - 5 : y + 5, x - 5 : x + 5] = 200
        Image.fromarray(image).save(images / name)
    Image.fromarray(np.full((64, 64), 20, np.uint8)).save(images / "empty.png")  # no object
    out, table = tmp_path / "seg", tmp_path / "objects.csv"
    argv = ["segment", "nuclei", str(images), "-o", str(out), "--no-progress"]
    assert main([*argv, "--measure", str(table)]) == 0
    rows = list(csv.DictReader(table.read_text().splitlines()))
    assert f"measurements of {len(rows)} objects to {table}" in capsys.readouterr().out
    assert {r["image"] for r in rows} <= {"a.png", "sub/b.jpg"} and rows  # none of empty.png
    for name in ("a", "sub/b"):
        labels = np.asarray(Image.open(out / "instances" / f"{name}.png"))
        mine = [r for r in rows if r["image"].rsplit(".", 1)[0] == name]
        assert len(mine) == labels.max()
        for r in mine:
            ys, xs = np.nonzero(labels == int(r["object"]))
            assert int(r["area"]) == len(ys)
            assert float(r["centroid_x"]) == pytest.approx(xs.mean(), abs=1e-3)
    assert main([*argv, "--measure", str(tmp_path / "x.txt")]) == 2
    assert main([*argv, "--measure", str(table), "--skip-existing"]) == 2


def test_segment_one_stain_measure_every_stain(tmp_path, capsys):
    """``segment --channel 0 --measure``: nuclei found in channel 0 of a three-channel ImageJ
    stack (a slice of a z-stack too) are measured in every channel, each object's mean the
    numpy mean over its pixels; ``mean_intensity`` is the segmented channel's."""
    import tifffile

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:96, :96]
    stack = rng.integers(0, 20, (2, 3, 96, 96)).astype(np.uint8)  # (Z, C, H, W)
    for y, x in ((25, 25), (30, 70), (70, 45)):
        disc = (yy - y) ** 2 + (xx - x) ** 2 < 81
        stack[:, 0][:, disc] = 200  # the DNA stain
        stack[:, 1][:, disc] += rng.integers(20, 200, dtype=np.uint8)  # a stain, cell by cell
    stack[:, 2] = 255 - stack[:, 2]  # a third channel, bright everywhere
    path = tmp_path / "cells.tif"
    tifffile.imwrite(path, stack, imagej=True, metadata={"axes": "ZCYX"})
    out, table = tmp_path / "seg", tmp_path / "objects.csv"
    argv = ["segment", "nuclei", str(path), "-o", str(out), "--channel", "0", "--no-progress"]
    assert main([*argv, "--measure", str(table)]) == 0
    rows = list(csv.DictReader(table.read_text().splitlines()))
    assert tuple(rows[0]) == (*COLUMNS, "mean_channel_0", "mean_channel_1", "mean_channel_2")
    assert {r["image"] for r in rows} == {"cells.tif[0]", "cells.tif[1]"} and len(rows) == 6
    for r in rows:
        z = int(r["image"][-2])
        labels = np.asarray(Image.open(out / "instances" / f"cells-{z:03d}.png"))
        inside = labels == int(r["object"])
        for c in range(3):
            mean = stack[z, c][inside].mean()
            assert float(r[f"mean_channel_{c}"]) == pytest.approx(mean, abs=1e-3)
        assert float(r["mean_intensity"]) == float(r["mean_channel_0"])
        assert r["mean_red"] == ""
    # --positive by another channel's mean: a marker measured around the DNA stain's nuclei
    threshold = float(np.median([float(r["mean_channel_1"]) for r in rows]))
    assert main([*argv, "--measure", str(table), "--positive", f"mean_channel_1:{threshold}"]) == 0
    for r in csv.DictReader(table.read_text().splitlines()):
        positive = float(r["mean_channel_1"]) >= threshold
        assert r["grade"] == ("Positive" if positive else "Negative")
    assert main([*argv, "--measure", str(table), "--positive", "mean_channel_3:9"]) == 1
    err = capsys.readouterr().err
    for page in (0, 1):
        assert f"cells.tif page {page}: its objects have no mean_channel_3 to grade by" in err


def naive_cells(labels: np.ndarray, distance: float) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's nearest object pixel's label when it is within ``distance`` (a loop over
    every object pixel), and where that nearest object is unique (no other object as near)."""
    ys, xs = np.nonzero(labels)
    owners = labels[ys, xs]
    cells, unique = labels.copy(), np.ones(labels.shape, bool)
    for y, x in zip(*np.nonzero(labels == 0)):
        d = np.hypot(ys - y, xs - x)
        near = d.min()
        if near <= distance:
            cells[y, x] = owners[d.argmin()]
            unique[y, x] = len(set(owners[d == near])) == 1
    return cells, unique


def test_cells_reach_the_nearest_object_within_the_distance_like_a_naive_loop():
    """expand_cells against a loop over every object pixel (pixels as near to two objects
    left out: either may take them), on random objects, in tiles smaller than the image."""
    from pixelwise.instances import expand_cells

    rng = np.random.default_rng(3)
    labels = np.zeros((60, 80), np.uint16)
    for k in range(1, 12):
        y, x = rng.integers(0, 55), rng.integers(0, 75)
        labels[y : y + rng.integers(1, 6), x : x + rng.integers(1, 6)] = k
    for distance in (0, 2, 5):
        expected, unique = naive_cells(labels, distance)
        for tile in (16, 1024):
            cells = expand_cells(labels, distance, tile=tile)
            assert cells.dtype == labels.dtype
            np.testing.assert_array_equal(cells[unique], expected[unique])
            np.testing.assert_array_equal(cells[labels > 0], labels[labels > 0])
    with pytest.raises(ValueError, match="0 or more pixels"):
        expand_cells(labels, -1)


def test_a_cell_and_its_cytoplasm_measured_by_hand():
    """With cells, each row also holds the cell's and the cytoplasm's (the cell without its
    object) area and mean intensities; the CSV lists them after the object's columns."""
    labels = np.zeros((20, 30), np.uint8)
    labels[5:10, 5:10], labels[5:10, 20:25] = 1, 2
    cells = labels.copy()
    cells[3:12, 3:12] = np.where(labels[3:12, 3:12] == 0, 1, labels[3:12, 3:12])  # a 2-pixel ring
    image = np.zeros((20, 30, 3), np.uint8)
    image[..., 1] = 50
    image[3:12, 3:12, 1] = 140  # the ring and the object bright in green
    image[5:10, 5:10, 1] = 200
    first, second = measure_objects(labels, image, ["nucleus"], cells=cells)
    assert (first["area"], first["cell_area"], first["cytoplasm_area"]) == (25, 81, 56)
    assert first["mean_green"] == 200 and first["cytoplasm_mean_green"] == 140
    assert first["cell_mean_green"] == pytest.approx((25 * 200 + 56 * 140) / 81, abs=1e-3)
    assert first["cytoplasm_mean_intensity"] == pytest.approx(140 / 3, abs=1e-3)
    assert second["cell_area"] == 25 and "cytoplasm_area" not in second  # no room to grow
    header = measurements_csv([("a.png", [first, second])]).decode().splitlines()[0].split(",")
    assert header[: len(COLUMNS)] == list(COLUMNS)
    assert header[len(COLUMNS) :] == [
        f"{part}_{key}" for part in ("cell", "cytoplasm")
        for key in ("area", "mean_intensity", "mean_red", "mean_green", "mean_blue")
    ]  # fmt: skip


def test_segment_expand_writes_cells_measures_them_and_exports_qupath_cells(
    tmp_path, monkeypatch, capsys
):
    """segment --expand N: OUT/cells/<name>.png holds each object grown by N pixels (the
    objects' numbers), --measure measures each cell, and --geojson writes QuPath cells (the
    cell as geometry, the object as nucleusGeometry) that read back as either label image."""
    from pixelwise.evaluate_folders import geojson_prediction
    from pixelwise.instances import expand_cells

    rng = np.random.default_rng(0)
    image = np.full((64, 64), 20, np.uint8)
    for y, x in ((12, 12), (14, 30), (45, 40)):
        image[y - 5 : y + 5, x - 5 : x + 5] = 200 + rng.integers(0, 40)
    Image.fromarray(image).save(tmp_path / "a.png")
    out, table = tmp_path / "seg", tmp_path / "objects.csv"
    argv = ["segment", "nuclei", str(tmp_path / "a.png"), "-o", str(out), "--no-progress"]
    assert main([*argv, "--expand", "4", "--measure", str(table), "--geojson"]) == 0
    assert f"cells to {out / 'cells'}" in capsys.readouterr().out
    labels = np.asarray(Image.open(out / "instances" / "a.png"))
    cells = np.asarray(Image.open(out / "cells" / "a.png"))
    assert labels.max() >= 2
    np.testing.assert_array_equal(cells, expand_cells(labels, 4))
    for row in csv.DictReader(table.read_text().splitlines()):
        inside = cells == int(row["object"])
        assert int(row["cell_area"]) == inside.sum() > int(row["area"])
        assert float(row["cell_mean_intensity"]) == pytest.approx(image[inside].mean(), abs=1e-3)
    geojson = out / "geojson" / "a.geojson"
    for part, truth in (("cell", cells), ("nucleus", labels)):
        monkeypatch.setenv("PIXELWISE_CELL_PART", part)
        drawn = geojson_prediction(geojson, labels.shape, ["background", "object"], True, None)
        np.testing.assert_array_equal(drawn, truth)
    import json

    import pixelwise

    written = json.loads(geojson.read_text())["features"]
    made = pixelwise.to_geojson(labels, cells=pixelwise.expand_cells(labels, 4))["features"]
    assert [f["nucleusGeometry"] for f in made] == [f["nucleusGeometry"] for f in written]
    assert [f["geometry"] for f in made] == [f["geometry"] for f in written]
    for distance in ("-1", "1001"):
        assert main([*argv, "--expand", distance]) == 2
        error = capsys.readouterr().err
        assert f"--expand must be 0 (no cells) to 1000 pixels, got {distance}" in error


def test_stains_unmixed_from_colours_made_of_known_amounts():
    """--stains: each stain's mean optical density, by colour deconvolution, recovers the
    amounts a colour was made of (Beer-Lambert with the stain vectors, 8-bit quantised), in
    the object, its cell and its cytoplasm; a grey image is refused in one line."""
    from skimage.color import rgb_from_hed

    def coloured(amounts) -> np.ndarray:
        od = np.asarray(amounts, float) @ rgb_from_hed
        return np.round(255 * 10.0 ** (-od)).astype(np.uint8)

    labels = np.zeros((20, 20), np.uint8)
    labels[5:10, 5:10] = 1
    cells = np.where(labels > 0, 1, 0).astype(np.uint8)
    cells[3:12, 3:12] = 1
    image = np.empty((20, 20, 3), np.uint8)
    image[:] = coloured([0.05, 0.3, 0.0])  # eosin around
    image[5:10, 5:10] = coloured([0.6, 0.0, 0.4])  # a DAB-positive nucleus
    (row,) = measure_objects(labels, image, ["nucleus"], cells=cells, stains=True)
    assert row["mean_hematoxylin"] == pytest.approx(0.6, abs=0.01)
    assert row["mean_eosin"] == pytest.approx(0.0, abs=0.01)
    assert row["mean_dab"] == pytest.approx(0.4, abs=0.01)
    assert row["cytoplasm_mean_eosin"] == pytest.approx(0.3, abs=0.01)
    assert row["cytoplasm_mean_dab"] == pytest.approx(0.0, abs=0.01)
    assert row["cell_mean_dab"] == pytest.approx(0.4 * 25 / 81, abs=0.01)
    assert row["mean_red"] == float(image[7, 7, 0])  # the colours as before
    header = measurements_csv([("a.png", [row])]).decode().splitlines()[0].split(",")
    assert header[len(COLUMNS) : len(COLUMNS) + 3] == ["mean_hematoxylin", "mean_eosin", "mean_dab"]
    with pytest.raises(
        ValueError, match="--stains measures brightfield RGB images; this one has 1"
    ):
        measure_objects(labels, image[..., 0], ["nucleus"], stains=True)
    assert main(["segment", "nuclei", "x.png", "--stains"]) == 2  # without --measure


def test_segment_stains_fails_a_grey_image_and_measures_the_rest(tmp_path, capsys):
    """segment --measure --stains on a folder with a grey image: that file is one failure
    naming it (checked before it is segmented), the colour image beside it is measured."""
    grey = np.full((64, 64), 20, np.uint8)
    grey[20:30, 20:30] = 200
    (tmp_path / "in").mkdir()
    Image.fromarray(grey).save(tmp_path / "in" / "grey.png")
    Image.fromarray(np.stack([grey] * 3, -1)).save(tmp_path / "in" / "colour.png")
    table = tmp_path / "objects.csv"
    argv = ["segment", "nuclei", str(tmp_path / "in"), "-o", str(tmp_path / "out")]
    assert main([*argv, "--measure", str(table), "--stains", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "grey.png: --stains measures brightfield RGB images; this one has 1 channel(s)" in err
    rows = list(csv.DictReader(table.read_text().splitlines()))
    assert {r["image"] for r in rows} == {"colour.png"} and rows[0]["mean_dab"] != ""


def test_grading_by_thresholds_by_hand():
    """--positive: Negative under the threshold, Positive from it on; with three thresholds
    1+, 2+, 3+; a row without the column (a cytoplasm with no room) is left ungraded; the
    summary's shares and H-score by hand; bad specifications are one error line each."""
    from pixelwise.measure import Grading

    rows = [{"object": k, "mean_dab": v} for k, v in enumerate((0.1, 0.2, 0.35, 0.7, 0.9), 1)]
    rows.append({"object": 6})
    one = Grading.parse("mean_dab:0.2")
    one.grade(rows)
    assert [r.get("grade") for r in rows] == [*["Negative"] + ["Positive"] * 4, None]
    assert one.summary(rows) == {
        "objects": 6, "graded": 5, "Negative": 1, "Positive": 4, "positive_percent": 80.0
    }  # fmt: skip
    three = Grading.parse("mean_dab:0.15,0.3,0.6")
    three.grade(rows)
    assert [r.get("grade") for r in rows] == ["Negative", "1+", "2+", "3+", "3+", None]
    summary = three.summary(rows)
    assert summary["positive_percent"] == 80.0
    assert summary["h_score"] == pytest.approx(1 * 20 + 2 * 20 + 3 * 40)
    assert three.summary([])["positive_percent"] == ""  # no object: no share
    assert Grading.parse("cytoplasm_mean_channel_2:40").needs().keys() == {"expand", "channel"}
    with pytest.raises(ValueError, match="its objects have no mean_red to grade by"):
        Grading.parse("mean_red:3").check(rows)
    for bad, message in (
        ("mean_dab", "takes COLUMN:THRESHOLD or COLUMN:T1,T2,T3"),
        ("mean_dab:0.1,0.2", "takes COLUMN:THRESHOLD"),
        ("mean_dab:x", "takes COLUMN:THRESHOLD"),
        ("mean_dab:0.5,0.2,0.7", "thresholds must increase"),
        ("centroid_x:3", "'centroid_x' is no measurement to grade by"),
    ):
        with pytest.raises(ValueError, match=message):
            Grading.parse(bad)


def ihc_image(path) -> list[float]:
    """A synthetic H-DAB image made from known stain amounts (Beer-Lambert with the stain
    vectors): 12 round nuclei of hematoxylin, each row of four with another amount of DAB;
    each nucleus's DAB amount, row by row."""
    from skimage.color import rgb_from_hed

    amounts = np.zeros((192, 256, 3))
    amounts[..., 1] = 0.05  # a little eosin around
    yy, xx = np.mgrid[:192, :256]
    dab = []
    for i in range(3):
        for j in range(4):
            disc = (yy - 32 - 64 * i) ** 2 + (xx - 32 - 64 * j) ** 2 <= 12**2
            amounts[disc] = (0.6, 0.0, (0.0, 0.1, 0.25, 0.5)[j])
            dab.append((0.0, 0.1, 0.25, 0.5)[j])
    image = np.round(255 * 10.0 ** -(amounts @ rgb_from_hed)).astype(np.uint8)
    Image.fromarray(image).save(path)
    return dab


def test_segment_positive_grades_nuclei_by_their_dab(tmp_path, capsys):
    """segment --measure --stains --positive mean_dab:T1,T2,T3 on a synthetic IHC image: each
    nucleus graded by the DAB it was made with, the grades in the CSV beside the class, each
    image's counts and H-score in OUT/grades.csv, the GeoJSON classes and the overlay's
    colours the grades'; a grey image beside it fails alone (it has no mean_red)."""
    import json

    from pixelwise.constants import GRADE_COLOURS

    (tmp_path / "in").mkdir()
    dab = ihc_image(tmp_path / "in" / "ihc.png")
    table, out = tmp_path / "objects.csv", tmp_path / "seg"
    argv = ["segment", "nuclei", str(tmp_path / "in" / "ihc.png"), "-o", str(out)]
    argv += ["--measure", str(table), "--stains", "--geojson", "--no-progress"]
    assert main([*argv, "--positive", "mean_dab:0.05,0.18,0.4"]) == 0
    assert (
        "positive by mean_dab: ihc.png: 75.0 % positive, H-score 150.0" in capsys.readouterr().out
    )
    rows = list(csv.DictReader(table.read_text().splitlines()))
    assert list(rows[0])[:4] == ["image", "object", "class", "grade"]
    assert len(rows) == 12
    for row in rows:  # each nucleus by where it lies: its column of the grid is its DAB
        column = int(float(row["centroid_x"]) // 64)
        assert row["grade"] == ("Negative", "1+", "2+", "3+")[column], row
        assert float(row["mean_dab"]) == pytest.approx(dab[column], abs=0.05)
    grades = list(csv.DictReader((out / "grades.csv").read_text().splitlines()))
    assert grades == [{
        "image": "ihc.png", "objects": "12", "graded": "12", "Negative": "3", "1+": "3",
        "2+": "3", "3+": "3", "positive_percent": "75.0", "h_score": "150.0",
    }]  # fmt: skip
    features = json.loads((out / "geojson" / "ihc.geojson").read_text())["features"]
    by_number = {int(r["object"]): r["grade"] for r in rows}
    for item in features:
        found = item["properties"]["classification"]
        number = item["properties"]["measurements"]["object"]
        assert found == {"name": by_number[number], "color": list(GRADE_COLOURS[found["name"]])}
    overlay = np.asarray(Image.open(out / "overlays" / "ihc.png")).astype(int)
    image = np.asarray(Image.open(tmp_path / "in" / "ihc.png")).astype(int)
    for row in rows:  # an object's pixels: its grade's colour blended over the image
        y, x = round(float(row["centroid_y"])), round(float(row["centroid_x"]))
        blended = 0.55 * image[y, x] + 0.45 * np.array(GRADE_COLOURS[row["grade"]])
        assert np.abs(overlay[y, x] - blended).max() <= 2
    grey = np.asarray(Image.open(tmp_path / "in" / "ihc.png").convert("L"))
    Image.fromarray(grey).save(tmp_path / "in" / "grey.png")
    argv[2] = str(tmp_path / "in")
    argv.remove("--stains")
    assert main([*argv, "--positive", "mean_red:100"]) == 1
    err = capsys.readouterr().err
    assert "grey.png: its objects have no mean_red to grade by (--positive)" in err
    graded = list(csv.DictReader((out / "grades.csv").read_text().splitlines()))
    assert [g["image"] for g in graded] == ["ihc.png"]
    assert main([*argv, "--positive", "mean_dab:0.2"]) == 2  # measured with --stains only
    assert (
        "--positive mean_dab: stain densities are measured with --stains" in capsys.readouterr().err
    )


def test_stain_vectors_given_or_estimated_unmix_colours_made_with_them(
    tmp_path, capsys, monkeypatch
):
    """--stain-vectors: the default is Ruifrok and Johnston's; given vectors replace theirs
    (scaled to length 1) and bad ones are one error line each. ``pixelwise stains`` estimates
    the two stains of an image made from known vectors (Macenko) within two degrees, and segment
    --stains with the option it prints recovers the amounts the colours were made of within 0.02
    (and no eosin), where Ruifrok and Johnston's vectors are off by more than 0.04."""
    from skimage.color import rgb_from_hed

    from pixelwise.measure import estimate_stains, stain_vectors

    np.testing.assert_array_equal(stain_vectors(), rgb_from_hed)
    given = stain_vectors("dab=3 0 4; hematoxylin=0.6,0.76,0.25")
    np.testing.assert_allclose(given[2], [0.6, 0, 0.8])
    assert np.linalg.norm(given[0]) == pytest.approx(1) and (given[1] == rgb_from_hed[1]).all()
    for bad, message in (
        ("iodine=1 2 3", "STAIN one of hematoxylin, eosin, dab"),
        ("dab=1 2", "three optical densities"),
        ("dab=1 -2 3", "three optical densities"),
        ("hematoxylin=0.27 0.57 0.78", "too alike to tell them apart"),  # DAB's own vector
    ):
        with pytest.raises(ValueError, match=message):
            stain_vectors(bad)
    h, d = np.array([0.58, 0.77, 0.27]), np.array([0.33, 0.60, 0.73])
    h, d = h / np.linalg.norm(h), d / np.linalg.norm(d)
    rng = np.random.default_rng(0)
    amounts = rng.uniform(0, 1, (240, 320, 2)) * (rng.uniform(0, 1, (240, 320, 1)) < 0.8)
    amounts[:, :160, 1] *= 0.1  # left mostly hematoxylin, right both
    image = np.round(255 * 10.0 ** -(amounts @ np.stack([h, d]))).astype(np.uint8)
    found = estimate_stains([image])
    assert set(found) == {"hematoxylin", "dab"}
    for name, truth in (("hematoxylin", h), ("dab", d)):
        assert np.degrees(np.arccos(min(found[name] @ truth, 1))) < 2, (name, found[name])
    Image.fromarray(image).save(tmp_path / "ihc.png")
    assert main(["stains", str(tmp_path / "ihc.png")]) == 0
    option = capsys.readouterr().out.splitlines()[-1]
    assert option.startswith("--stain-vectors 'hematoxylin=")
    (tmp_path / "folder").mkdir()
    for i, half in enumerate((image[:, :170], image[:, 150:])):
        Image.fromarray(half).save(tmp_path / "folder" / f"{i}.png")
    monkeypatch.setattr(commands, "STAIN_PIXELS", 240 * 320 // 4)  # every 2nd pixel of each half
    assert main(["stains", str(tmp_path / "folder")]) == 0  # a folder: its images together
    from_folder = stain_vectors(capsys.readouterr().out.splitlines()[-1].split("'")[1])
    for row, truth in ((0, h), (2, d)):  # STAINS: hematoxylin, eosin, dab
        assert np.degrees(np.arccos(min(from_folder[row] @ truth, 1))) < 2, row
    labels = np.zeros((240, 320), np.uint16)
    labels[20:60, 200:260], labels[100:140, 40:80] = 1, 2
    worst = []
    for vectors in (stain_vectors(option.split("'")[1]), True):
        rows = measure_objects(labels, image, ["nucleus"], stains=vectors)
        made = [amounts[labels == k].mean(axis=0) for k in (1, 2)]
        errors = [
            abs(r[f"mean_{s}"] - m[i])
            for r, m in zip(rows, made)
            for i, s in ((0, "hematoxylin"), (1, "dab"))
        ]
        worst.append(max(errors + [abs(r["mean_eosin"]) for r in rows]))
    assert worst[0] < 0.02 and worst[1] > 0.04, worst  # estimated vectors, Ruifrok's
    Image.fromarray(image[..., 0]).save(tmp_path / "grey.png")
    assert main(["stains", str(tmp_path / "grey.png")]) == 2
    assert "grey.png: --stains measures brightfield RGB images" in capsys.readouterr().err
    argv = ["segment", "nuclei", str(tmp_path / "ihc.png"), "--stain-vectors", "dab=1 1 1"]
    assert main(argv) == 2  # without --stains
    assert "give --stains too" in capsys.readouterr().err


def test_pixel_size_read_from_the_files_that_record_it(tmp_path):
    """µm a pixel from OME-XML (with its unit), Aperio's MPP, ImageJ's unit and resolution, a
    resolution per centimetre; none from dots per inch, pixels that are not square, a PNG, a
    damaged or missing file."""
    from pixelwise.data.calibration import pixel_size_um

    rgb = np.zeros((32, 32, 3), np.uint8)

    def ome(name, **sizes):
        metadata = {"axes": "YXS", **sizes}
        tifffile.imwrite(tmp_path / name, rgb, photometric="rgb", metadata=metadata)

    ome("um.ome.tif", PhysicalSizeX=0.25, PhysicalSizeY=0.25)
    nm = {"PhysicalSizeXUnit": "nm", "PhysicalSizeYUnit": "nm"}
    ome("nm.ome.tif", PhysicalSizeX=460, PhysicalSizeY=460, **nm)
    ome("oblong.ome.tif", PhysicalSizeX=0.25, PhysicalSizeY=0.5)
    aperio = "Aperio Image Library v12.0.15\n46000x32914 (256x256) JPEG/RGB Q=70|AppMag = 40"
    tifffile.imwrite(
        tmp_path / "a.svs", rgb, photometric="rgb", description=aperio + "|MPP = 0.2520|"
    )
    for name, unit in (("ij.tif", "micron"), ("ij-mu.tif", "\\u00B5m"), ("ij-mm.tif", "mm")):
        scale = 1e3 if unit == "mm" else 1
        grey, resolution = rgb[..., 0], (scale / 0.65, scale / 0.65)
        tifffile.imwrite(
            tmp_path / name, grey, imagej=True, resolution=resolution, metadata={"unit": unit}
        )
    for name, unit, per_unit in (("cm.tif", "CENTIMETER", 40000), ("inch.tif", "INCH", 300)):
        kw = {"resolution": (per_unit, per_unit), "resolutionunit": unit}
        tifffile.imwrite(tmp_path / name, rgb, photometric="rgb", **kw)
    Image.fromarray(rgb).save(tmp_path / "p.png", dpi=(300, 300))
    (tmp_path / "damaged.tif").write_bytes(b"II*\0" + b"\xff" * 20)
    expected = {
        "um.ome.tif": 0.25, "nm.ome.tif": 0.46, "a.svs": 0.252, "ij.tif": 0.65,
        "ij-mu.tif": 0.65, "ij-mm.tif": 0.65, "cm.tif": 0.25, "inch.tif": None,
        "oblong.ome.tif": None, "p.png": None, "damaged.tif": None, "missing.tif": None,
    }  # fmt: skip
    assert {name: pixel_size_um(tmp_path / name) for name in expected} == expected


def test_segment_measures_in_micrometres_where_the_pixel_size_is_known(tmp_path, capsys):
    """segment --measure adds µm columns (the object's, its cell's and its cytoplasm's areas)
    for an image whose TIFF records its pixel size, none for a PNG beside it; --pixel-size
    gives one to every image; --positive area_um2 fails the PNG alone with a hint."""
    (tmp_path / "in").mkdir()
    ihc_image(tmp_path / "in" / "b.png")
    pixels = np.asarray(Image.open(tmp_path / "in" / "b.png"))
    sizes = {"PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5}
    tifffile.imwrite(
        tmp_path / "in" / "a.tif",
        pixels,
        photometric="rgb",
        ome=True,
        metadata={"axes": "YXS", **sizes},
    )
    table = tmp_path / "objects.csv"
    argv = ["segment", "nuclei", str(tmp_path / "in"), "-o", str(tmp_path / "seg")]
    argv += ["--measure", str(table), "--expand", "3", "--no-progress"]

    def rows():
        return list(csv.DictReader(table.read_text().splitlines()))

    assert main(argv) == 0
    found = rows()
    by_image = {name: [r for r in found if r["image"] == name] for name in ("a.tif", "b.png")}
    assert len(by_image["a.tif"]) == len(by_image["b.png"]) == 12
    header = list(found[0])
    assert header[header.index("mean_blue") + 1 : header.index("mean_blue") + 6] == [
        "area_um2", "centroid_x_um", "centroid_y_um", "equivalent_diameter_um", "perimeter_um",
    ]  # fmt: skip
    assert header[header.index("cell_area") + 1] == "cell_area_um2"
    for row in by_image["a.tif"]:
        for prefix in ("", "cell_", "cytoplasm_"):
            area = float(row[f"{prefix}area"])
            assert float(row[f"{prefix}area_um2"]) == pytest.approx(area * 0.25, abs=1e-4)
        assert float(row["centroid_x_um"]) == pytest.approx(float(row["centroid_x"]) / 2, abs=1e-3)
        assert float(row["perimeter_um"]) == pytest.approx(float(row["perimeter"]) / 2, abs=1e-3)
    assert all(row["area_um2"] == "" for row in by_image["b.png"])
    assert main([*argv, "--pixel-size", "2"]) == 0
    for row in rows():  # the option wins over the file's own
        assert float(row["area_um2"]) == pytest.approx(float(row["area"]) * 4, abs=1e-4)
    capsys.readouterr()
    assert main([*argv, "--positive", "area_um2:100"]) == 1
    err = capsys.readouterr().err
    assert "b.png: its objects have no area_um2 to grade by (--positive) (its file records " in err
    assert "give --pixel-size" in err
    assert main([*argv[:5], "--no-progress", "--pixel-size", "0.5"]) == 2  # without --measure
    assert "--pixel-size gives --measure's sizes in µm" in capsys.readouterr().err
    assert main([*argv, "--pixel-size", "0"]) == 2


def test_a_file_name_that_is_not_utf8_is_kept_as_its_bytes():
    """Linux file names are bytes; one that is no UTF-8 (an old camera's, another locale's)
    reaches Python as surrogates, which UTF-8 cannot encode: the CSV keeps its bytes as on the
    disk instead of failing the whole run at the end."""
    name = b"\xff\xfe-photo.jpg".decode("utf-8", "surrogateescape")
    labels = np.zeros((8, 8), np.uint16)
    labels[2:5, 2:5] = 1
    rows = measure_objects(labels, np.zeros((8, 8, 1), np.uint8), ["cell"])
    data = measurements_csv([(name, rows)])
    assert data.split(b"\n")[1].startswith(b"\xff\xfe-photo.jpg,1,")
    assert data.decode("utf-8", "surrogateescape").split("\n")[1].split(",")[0] == name
