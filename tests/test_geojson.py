"""Masks and label images as GeoJSON polygons along pixel edges (pixelwise.data.geojson), and
predict/segment --geojson."""

import json
import os
from unittest import mock

import numpy as np
import pytest
from conftest import geojson_raster, shared_dataset
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from test_labelme import H, W, colour_model

from pixelwise.data.geojson import (
    _walks,
    geometry,
    label_polygons,
    object_features,
    polygons,
    region_features,
    rings,
    signed_area,
    tiled_region_features,
)


def test_a_square_with_a_hole_by_hand():
    """Outer ring counterclockwise (positive shoelace area, x and y as plain numbers), the hole
    clockwise, each closed; corners only."""
    region = np.zeros((5, 5), bool)
    region[1:4, 1:4] = True
    region[2, 2] = False
    assert geometry(region, offset=(10, 20)) == {
        "type": "Polygon",
        "coordinates": [
            [[21, 11], [24, 11], [24, 14], [21, 14], [21, 11]],
            [[22, 13], [23, 13], [23, 12], [22, 12], [22, 13]],
        ],
    }
    assert geometry(np.zeros((3, 3), bool)) is None


def test_pixels_touching_at_a_corner_are_polygons_touching_at_a_point():
    """Two pixels meeting diagonally: two squares (a MultiPolygon), not one ring through the
    corner twice; a ring of pixels closed only diagonally: its inside is a hole touching the
    outline at that corner."""
    pair = np.array([[1, 0], [0, 1]], bool)
    assert geometry(pair) == {
        "type": "MultiPolygon",
        "coordinates": [
            [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]],
            [[[1, 1], [2, 1], [2, 2], [1, 2], [1, 1]]],
        ],
    }
    ring = np.ones((4, 4), bool)
    ring[1:3, 1:3] = False
    ring[0, 0] = False  # the inside meets the outside at the corner (1, 1) only
    assert sorted(signed_area(r) for r in rings(ring)) == [-4, 15]
    (outline, hole) = geometry(ring)["coordinates"]
    assert [1, 1] in outline and [1, 1] in hole


def masks(max_side: int = 12, values: int | None = None):
    """Boolean masks of sides 1..``max_side``; with ``values``, uint8 label images of 0..values."""
    shape = st.tuples(st.integers(1, max_side), st.integers(1, max_side))
    if values is None:
        return shape.flatmap(lambda s: arrays(np.bool_, s))
    return shape.flatmap(lambda s: arrays(np.uint8, s, elements=st.integers(0, values)))


@settings(max_examples=300, deadline=None)
@given(masks())
def test_any_mask_is_drawn_back_exactly(mask):
    """The pixels whose centres the polygons enclose are the mask (matplotlib's point test), the
    polygons' area is the pixel count, every ring counterclockwise outside and clockwise for a
    hole (RFC 7946), and the geometry is OGC-valid (shapely)."""
    geom = geometry(mask)
    if not mask.any():
        assert geom is None
        return
    np.testing.assert_array_equal(geojson_raster(geom, mask.shape), mask)
    shapes = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
    areas = [[signed_area(np.array(r[:-1])) for r in rings_] for rings_ in shapes]
    assert all(a[0] > 0 and all(h < 0 for h in a[1:]) for a in areas)
    assert sum(sum(a) for a in areas) == mask.sum()
    shapely = pytest.importorskip("shapely.geometry")
    drawn = shapely.shape(geom)
    assert drawn.is_valid and drawn.area == mask.sum()


@settings(max_examples=200, deadline=None)
@given(
    masks(16, values=4),
    st.integers(0, 5),
    st.integers(0, 5),
)
def test_every_region_of_a_label_image_traced_at_once_as_alone(labels, dy, dx):
    """All the regions of a label image traced at once (touching one another, in each other's
    holes, meeting at corners) give each region's polygons as tracing it alone does: the same
    rings from the same corners in the same order; also a few regions at a time."""
    from pixelwise.data import geojson

    at_once = label_polygons(labels, (dy, dx))
    assert sorted(at_once) == sorted(set(np.unique(labels).tolist()) - {0})
    for k, shapes in at_once.items():
        alone = polygons(labels == k, (dy, dx))
        assert [[r.tolist() for r in s] for s in shapes] == [[r.tolist() for r in s] for s in alone]
    with mock.patch.object(geojson, "AT_ONCE", 7):  # a region at a time, or a few
        in_parts = label_polygons(labels, (dy, dx))
    assert repr(in_parts) == repr(at_once)
    huge = label_polygons(labels.astype(np.int64) << 55, (dy, dx))  # ids near int64's limit
    assert repr(huge) == repr({k << 55: shapes for k, shapes in at_once.items()})


def test_the_garbage_collector_is_paused_only_while_a_collection_is_built():
    import gc

    from pixelwise.data.geojson import collection_paused, to_geojson

    labels = np.zeros((8, 8), np.int64)
    labels[2:5, 2:5] = 1
    assert gc.isenabled()
    with pytest.raises(KeyError):
        with collection_paused():
            assert not gc.isenabled()
            raise KeyError
    assert gc.isenabled() and to_geojson(labels)["features"] and gc.isenabled()
    gc.disable()
    try:
        with collection_paused():
            pass
        assert not gc.isenabled()  # left off, as it was
    finally:
        gc.enable()


@settings(max_examples=100, deadline=None)
@given(st.permutations(list(range(40))))
def test_the_cycles_of_a_permutation_by_pointer_jumping(succ):
    """Each index's cycle head (its least member) and steps from it, as walking the cycles one
    step at a time finds them."""
    head, place = _walks(np.array(succ))
    for i in range(len(succ)):
        walk, e = [i], succ[i]
        while e != i:
            walk.append(e)
            e = succ[e]
        least = min(walk)
        assert head[i] == least  # i is as many steps on from it as it is steps short of it
        assert place[i] == (len(walk) - walk.index(least)) % len(walk)


@settings(max_examples=200, deadline=None)
@given(
    masks(30, values=2),
    st.integers(1, 12),
    st.integers(1, 4),
)
def test_regions_traced_block_by_block_are_those_of_the_whole_mask(mask, block, least):
    """A mask read in blocks (down to one pixel) gives the features of the mask read whole,
    outlines and all (the same JSON), though its regions reach across blocks and touch there
    only at corners."""
    names, colours = {1: "a", 2: "b"}, {"a": (1, 2, 3), "b": (4, 5, 6)}

    def read(y0, y1, x0, x1):
        return mask[y0:y1, x0:x1]

    tiled = tiled_region_features(read, mask.shape, names, colours, least, block)
    whole = region_features(mask, names, colours, least)
    assert sorted(map(json.dumps, tiled)) == sorted(map(json.dumps, whole))


def test_each_object_is_one_feature_numbered_as_in_the_label_image():
    """A detection per object, its class and colour, its number as the measurement "object"
    (from ``first``), placed by ``offset``; an object in two pieces is one MultiPolygon."""
    labels = np.zeros((20, 30), np.int32)
    labels[2:6, 3:9] = 1
    labels[10:15, 12:20] = 3
    labels[16:18, 25:27] = 3  # object 3 in two pieces
    labels[0, 29] = 2
    names = {1: "cell", 2: "cell", 3: "spot"}
    colours = {"cell": (1, 2, 3), "spot": np.array([4, 5, 6], np.uint8)}
    found = list(object_features(labels, names, colours, first=7, offset=(100, 200)))
    assert [f["properties"]["measurements"]["object"] for f in found] == [7, 8, 9]
    assert [f["properties"]["classification"] for f in found] == [
        {"name": "cell", "color": [1, 2, 3]},
        {"name": "cell", "color": [1, 2, 3]},
        {"name": "spot", "color": [4, 5, 6]},
    ]
    assert {f["properties"]["objectType"] for f in found} == {"detection"}
    assert found[2]["geometry"]["type"] == "MultiPolygon"
    for k, item in enumerate(found, start=1):
        drawn = geojson_raster(item["geometry"], (120, 230))[100:, 200:]
        np.testing.assert_array_equal(drawn, labels == k)
    json.dumps(found)  # plain Python numbers throughout


def test_regions_of_each_class_are_annotations():
    mask = np.zeros((20, 30), np.uint8)
    mask[1:5, 1:5] = 1
    mask[10:15, 10:15] = 1
    mask[12, 12] = 2  # an island in a hole
    mask[0, 29] = 2  # one pixel: under min_pixels 2
    names = {1: "leaf", 2: "apple"}
    colours = {"leaf": (0, 255, 0), "apple": (255, 0, 0)}
    found = list(region_features(mask, names, colours, min_pixels=2))
    assert [f["properties"]["classification"]["name"] for f in found] == ["leaf", "leaf"]
    assert {f["properties"]["objectType"] for f in found} == {"annotation"}
    drawn = sum(geojson_raster(f["geometry"], mask.shape).astype(int) for f in found)
    np.testing.assert_array_equal(drawn, mask == 1)
    found = list(region_features(mask, names, colours))
    assert len(found) == 4


def read_features(path) -> list[dict]:
    collection = json.loads(path.read_text())
    assert collection["type"] == "FeatureCollection"
    return collection["features"]


def test_predict_and_segment_write_geojson(tmp_path):
    """predict --geojson: each region of each class, drawn back, is the mask; segment --geojson:
    each object is its instance in the label image, by number."""
    from pixelwise.batch import PredictOptions, predict_files, segment_files

    image = np.zeros((H, W, 3), np.uint8)
    image[2:12, 2:14] = image[20:30, 5:9] = (255, 0, 0)
    image[20:35, 30:45] = (0, 255, 0)
    image[24:28, 35:40] = (255, 0, 0)  # a leaf in an apple's hole
    Image.fromarray(image).save(tmp_path / "a.png")
    options = PredictOptions(precision="fp32", geojson=True, object_class=1)
    predict_files(colour_model(), [tmp_path / "a.png"], tmp_path / "p", options, progress=False)
    mask = np.asarray(Image.open(tmp_path / "p" / "masks" / "a.png"))
    found = read_features(tmp_path / "p" / "geojson" / "a.geojson")
    assert len(found) == 4
    for value, name in ((1, "leaf"), (2, "apple")):
        drawn = [geojson_raster(f["geometry"], mask.shape) for f in found
                 if f["properties"]["classification"]["name"] == name]  # fmt: skip
        np.testing.assert_array_equal(np.sum(drawn, axis=0), mask == value)
    from pixelwise import to_geojson  # the same from Python

    assert to_geojson(mask, colour_model(), objects=False)["features"] == found
    options.measure = str(tmp_path / "objects.csv")  # its rows become measurements
    segment_files(colour_model(), [tmp_path / "a.png"], tmp_path / "s", options, progress=False)
    labels = np.asarray(Image.open(tmp_path / "s" / "instances" / "a.png"))
    found = read_features(tmp_path / "s" / "geojson" / "a.geojson")
    assert labels.max() == len(found) == 3
    for item in found:
        measured = item["properties"]["measurements"]
        drawn = geojson_raster(item["geometry"], labels.shape)
        np.testing.assert_array_equal(drawn, labels == measured["object"])
        assert measured["area"] == drawn.sum() and measured["mean_red"] == 255
        assert item["properties"]["classification"]["name"] == "leaf"
    geometries = [f["geometry"] for f in found]
    assert [f["geometry"] for f in to_geojson(labels)["features"]] == geometries


def test_a_collection_interrupted_leaves_no_file(tmp_path):
    """FeatureWriter publishes the file only when the last feature is in: a failure on the way
    leaves neither the file nor its temporary."""
    from pixelwise.data.geojson import write_features

    mask = np.eye(4, dtype=bool)
    features = region_features(mask.astype(np.uint8), {1: "x"}, {"x": (0, 0, 0)})

    def failing():
        yield next(features)
        raise RuntimeError("killed")

    path = tmp_path / "out" / "a.geojson"
    with pytest.raises(RuntimeError):
        write_features(path, failing())
    assert list((tmp_path / "out").iterdir()) == []
    assert (
        write_features(path, region_features(mask.astype(np.uint8), {1: "x"}, {"x": (0, 0, 0)}))
        == 1
    )
    assert len(read_features(path)) == 1


def qupath_export(folder, stem: str = "a") -> np.ndarray:
    """An image and a GeoJSON file beside it as QuPath exports objects (a list of Features):
    a classified polygon with a hole, a classified two-part MultiPolygon, an unclassified
    triangle with corners between pixel centres, and a point (no area). Returns the class mask
    they draw, by pixel centres (0 background, 1 Stroma, 2 Tumor, 3 object: sorted names)."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(folder / f"{stem}.png")
    square = [
        [[2, 2], [12, 2], [12, 12], [2, 12], [2, 2]],
        [[5, 5], [5, 8], [8, 8], [8, 5], [5, 5]],
    ]
    parts = [
        [[[20, 1], [25, 1], [25, 4], [20, 4], [20, 1]]],
        [[[30, 20], [33, 20], [33, 23], [30, 23], [30, 20]]],
    ]
    triangle = [[[2.2, 20.4], [15.7, 29.0], [2.2, 29.0], [2.2, 20.4]]]
    features = [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": square},
         "properties": {"objectType": "annotation", "classification": {"name": "Tumor"}}},
        {"type": "Feature", "geometry": {"type": "MultiPolygon", "coordinates": parts},
         "properties": {"classification": {"name": "Stroma", "color": [0, 255, 0]}}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": triangle}, "properties": {}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 1]}, "properties": {}},
    ]  # fmt: skip
    (folder / f"{stem}.geojson").write_text(json.dumps(features))
    mask = np.zeros((30, 40), np.uint8)
    for value, geom in ((2, features[0]), (1, features[1]), (3, features[2])):
        mask[geojson_raster(geom["geometry"], mask.shape)] = value
    return mask


def test_a_qupath_export_is_a_dataset(tmp_path, capsys):
    """Images with GeoJSON files beside them: each Feature an object of its classification's
    name (an unclassified one "object"), drawn by the pixel centres it encloses (holes too);
    features without an area left out with a warning."""
    from pixelwise.data.layouts import find_items, read_dataset_info

    truth = qupath_export(tmp_path / "data")
    (item,) = find_items(tmp_path / "data")
    assert read_dataset_info(tmp_path / "data").class_names == [
        "background", "Stroma", "Tumor", "object"
    ]  # fmt: skip
    np.testing.assert_array_equal(item.read_mask(), truth)
    objects = item.read_mask(instances=True)
    assert objects.max() == 3 and len(np.unique(objects[truth == 1])) == 1  # two parts, one object
    assert (
        "1 GeoJSON feature(s) without an area (points, lines) left out" in capsys.readouterr().err
    )


def test_geojson_files_in_a_geojson_folder_annotate_the_images_beside_it(tmp_path):
    """``segment --geojson`` writes OUT/geojson/: a folder of images with that folder in it
    (or LabelMe files in annotations/) is a dataset, each file's image the one of its stem
    in the folder above; a file with no such image is still one error naming it."""
    from pixelwise.data.layouts import find_items

    truth = qupath_export(tmp_path / "data")
    (tmp_path / "data" / "geojson").mkdir()
    (tmp_path / "data" / "a.geojson").rename(tmp_path / "data" / "geojson" / "a.geojson")
    (item,) = find_items(tmp_path / "data")
    assert item.image == tmp_path / "data" / "a.png"
    np.testing.assert_array_equal(item.read_mask(), truth)
    (tmp_path / "data" / "a.png").unlink()
    with pytest.raises(ValueError, match="a.geojson: its image 'a' was not found beside it"):
        find_items(tmp_path / "data")


def test_regions_annotated_over_an_ignored_one_leave_the_rest_unlabelled(tmp_path):
    """Sparse annotations (QuPath's tissue classes drawn over parts of an image): a feature
    classified __ignore__ under them, covering the image, leaves the pixels no class covers
    out of training and scoring (IGNORE_INDEX), as a crowd region; the classes stay as drawn."""
    from pixelwise.constants import IGNORE_INDEX
    from pixelwise.data.layouts import find_items, read_dataset_info

    truth = qupath_export(tmp_path / "data")
    path = tmp_path / "data" / "a.geojson"
    everything = [[[0, 0], [40, 0], [40, 30], [0, 30], [0, 0]]]
    ignored = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": everything},
               "properties": {"classification": {"name": "__ignore__"}}}  # fmt: skip
    path.write_text(json.dumps([ignored, *json.loads(path.read_text())]))
    assert read_dataset_info(tmp_path / "data").class_names == [
        "background", "Stroma", "Tumor", "object"
    ]  # fmt: skip
    (item,) = find_items(tmp_path / "data")
    mask = item.read_mask()
    np.testing.assert_array_equal(mask, np.where(truth > 0, truth, IGNORE_INDEX))


def square(x0, y0, x1, y1, name: str) -> dict:
    outline = [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": outline},
            "properties": {"classification": {"name": name}}}  # fmt: skip


def test_qupath_cells_are_read_by_their_cell_or_nucleus_outline(tmp_path, monkeypatch, capsys):
    """QuPath's cell detections carry their nucleus beside the cell (``nucleusGeometry``):
    PIXELWISE_CELL_PART=nucleus reads the nuclei (a cell without one: its pixels outside the
    nuclei ignored), the default the cells; other objects as drawn either way. inspect says how
    many cells there are and which outline is read; a bad value is one error."""
    from pixelwise.cli import main
    from pixelwise.constants import IGNORE_INDEX
    from pixelwise.data.layouts import find_items
    from pixelwise.evaluate_folders import evaluate_predictions

    def cell(box, nucleus=None, kind="cell"):
        feature = square(*box, "Tumor")
        feature["properties"]["objectType"] = kind
        if nucleus:
            feature["nucleusGeometry"] = square(*nucleus, "")["geometry"]
        return feature

    (tmp_path / "data").mkdir()
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(tmp_path / "data" / "a.png")
    features = [
        cell((2, 2, 14, 14), (5, 5, 10, 10)),
        cell((20, 2, 34, 14), (24, 6, 31, 11)),
        cell((2, 16, 14, 28)),  # a cell without its nucleus
        cell((20, 18, 30, 26), kind="annotation") | {"properties": {"classification": {"name": "Stroma"}}},
    ]  # fmt: skip
    (tmp_path / "data" / "a.geojson").write_text(json.dumps(features))
    cells = np.zeros((30, 40), np.uint8)
    for x0, y0, x1, y1 in ((2, 2, 14, 14), (20, 2, 34, 14), (2, 16, 14, 28)):
        cells[y0:y1, x0:x1] = 2
    cells[18:26, 20:30] = 1  # Stroma, class 1 of background, Stroma, Tumor
    nuclei = np.where(cells == 2, 0, cells)
    nuclei[16:28, 2:14] = IGNORE_INDEX
    nuclei[5:10, 5:10] = nuclei[6:11, 24:31] = 2
    for part, truth in (("cell", cells), ("nucleus", nuclei)):
        monkeypatch.setenv("PIXELWISE_CELL_PART", part)
        (item,) = find_items(tmp_path / "data")
        np.testing.assert_array_equal(item.read_mask(), truth)
        assert main(["inspect", str(tmp_path / "data"), "--val-fraction", "0"]) == 0
        assert f"2 QuPath cells read by their {part} outline" in capsys.readouterr().out
        (tmp_path / "out").mkdir(exist_ok=True)  # QuPath's cells as predictions: read alike
        (tmp_path / "out" / "a.geojson").write_text(json.dumps(features))
        assert evaluate_predictions(tmp_path / "out", tmp_path / "data")["mean_iou"] == 1.0
    import pixelwise.data.geojson as geojson

    path = tmp_path / "data" / "a.geojson"  # counted as read: inspect parses it once
    read = geojson.read_geojson
    monkeypatch.setattr(geojson, "read_geojson", None)
    assert geojson.cell_count(path) == 2
    path.write_text(json.dumps(features[2:]))  # changed since: read again
    os.utime(path, ns=(1, 1))
    monkeypatch.setattr(geojson, "read_geojson", read)
    assert geojson.cell_count(path) == 0
    monkeypatch.setenv("PIXELWISE_CELL_PART", "nuclei")
    assert main(["inspect", str(tmp_path / "data")]) == 2
    assert "PIXELWISE_CELL_PART must be cell or nucleus, got 'nuclei'" in capsys.readouterr().err


def test_a_run_records_the_settings_that_change_its_data(tmp_path, monkeypatch, capsys):
    """The PIXELWISE_* settings that change what data is are kept with a training run: info
    shows them in the command that trained it, and evaluating it where they are set otherwise
    says so, one note per setting."""
    from conftest import train_tiny

    from pixelwise.cli import main

    qupath_export(tmp_path / "data")
    monkeypatch.setenv("PIXELWISE_CELL_PART", "nucleus")
    monkeypatch.setenv("PIXELWISE_WINDOW_MARGIN", "8")
    run = train_tiny(tmp_path / "data", tmp_path / "run", "--val-fraction", "0")
    assert main(["info", str(run / "best.pt")]) == 0
    out = capsys.readouterr().out
    assert (
        "trained by: PIXELWISE_WINDOW_MARGIN=8 PIXELWISE_CELL_PART=nucleus pixelwise train" in out
    )
    assert main(["evaluate", str(run / "best.pt"), str(tmp_path / "data")]) == 0
    assert "was trained with" not in capsys.readouterr().err
    monkeypatch.delenv("PIXELWISE_CELL_PART")
    monkeypatch.setenv("PIXELWISE_WINDOW_MARGIN", "0")
    for stems in ([], ["--val-stems", "a"]):
        assert main(["evaluate", str(run / "best.pt"), str(tmp_path / "data"), *stems]) == 0
        err = capsys.readouterr().err
        assert (
            "trained with PIXELWISE_CELL_PART=nucleus, here PIXELWISE_CELL_PART unset: the" in err
        )
        assert "trained with PIXELWISE_WINDOW_MARGIN=8, here PIXELWISE_WINDOW_MARGIN=0: the" in err


def test_regions_annotated_on_a_slide_are_windows_of_it(tmp_path, monkeypatch, capsys):
    """A TIFF over the pixel limit with GeoJSON regions beside it (QuPath's annotations of a
    whole-slide scan): each group of overlapping regions (and regions drawn as the background)
    is one item, a window of the slide around them, its image read region by region and its
    mask drawn in its coordinates (an __ignore__ region under everything leaving the
    unannotated rest out); train, evaluate and Mask R-CNN's dataset read them."""
    import tifffile
    from conftest import train_tiny

    from pixelwise.cli import main
    from pixelwise.constants import IGNORE_INDEX
    from pixelwise.data.coco import InstanceDataset
    from pixelwise.data.layouts import find_items, outline_instances
    from pixelwise.data.slide import item_image

    (tmp_path / "data").mkdir()
    pixels = np.random.default_rng(0).integers(0, 255, (300, 400, 3), np.uint8)
    tifffile.imwrite(tmp_path / "data" / "slide.tif", pixels, tile=(64, 64), photometric="rgb")
    features = [
        square(0, 0, 400, 300, "__ignore__"),
        square(10, 10, 100, 80, "Tumor"),
        square(90, 50, 150, 120, "Stroma"),  # overlaps the Tumor: one window
        square(300, 200, 380, 290, "Tumor"),
    ]
    (tmp_path / "data" / "slide.geojson").write_text(json.dumps(features))
    truth = np.full((300, 400), IGNORE_INDEX)
    for value, item in ((2, features[1]), (1, features[2]), (2, features[3])):
        truth[geojson_raster(item["geometry"], truth.shape)] = value  # larger ones first
    monkeypatch.setenv("PIXELWISE_MAX_PIXELS", str(300 * 400 - 1))
    items = find_items(tmp_path / "data")
    assert [(i.name, i.window) for i in items] == [
        ("slide@x10y10", (10, 120, 10, 150)), ("slide@x300y200", (200, 290, 300, 380))
    ]  # fmt: skip
    for item in items:
        y0, y1, x0, x1 = item.window
        np.testing.assert_array_equal(item.read_mask(), truth[y0:y1, x0:x1])
        np.testing.assert_array_equal(item_image(item), pixels[y0:y1, x0:x1])
    # a second slide, held out whole by its name, with an object in a region drawn as the
    # background (its window; no __ignore__: the rest of it is background); Mask R-CNN's items
    # are the same windows
    tifffile.imwrite(
        tmp_path / "data" / "other.tif", pixels[::-1], tile=(64, 64), photometric="rgb"
    )
    drawn = [square(0, 2, 100, 80, "_background_"), square(5, 5, 60, 50, "Stroma")]
    (tmp_path / "data" / "other.geojson").write_text(json.dumps(drawn))
    tifffile.imwrite(tmp_path / "data" / "empty.tif", pixels, tile=(64, 64), photometric="rgb")
    (tmp_path / "data" / "empty.geojson").write_text(
        '{"type": "FeatureCollection", "features": []}'
    )
    (other,) = [i for i in find_items(tmp_path / "data") if i.name.startswith("other")]
    assert "empty.geojson: nothing drawn on empty.tif (a slide)" in capsys.readouterr().err
    assert (other.name, other.window) == ("other@x0y2", (2, 80, 0, 100))
    expected = np.zeros((78, 100), np.uint8)
    expected[3:48, 5:60] = 1  # Stroma
    np.testing.assert_array_equal(other.read_mask(), expected)
    run = train_tiny(tmp_path / "data", tmp_path / "run", "--val-stems", "other")
    assert (run / "best.pt").is_file()
    capsys.readouterr()
    held = ["--val-stems", "other"]
    assert main(["evaluate", str(run / "best.pt"), str(tmp_path / "data"), *held]) == 0
    assert "1 image from" in capsys.readouterr().out  # other@x0y2
    splits, categories, _ = outline_instances(tmp_path / "data")
    windows = InstanceDataset(splits[""], categories)
    image, target = windows[[i.name for i in splits[""]].index("other@x0y2")]
    assert image.shape == (3, 78, 100) and target["masks"].shape == (1, 78, 100)
    np.testing.assert_allclose(
        image.permute(1, 2, 0).numpy() * 255, pixels[::-1][2:80, 0:100], atol=1e-3
    )
    np.testing.assert_array_equal(target["masks"][0].numpy(), expected)
    (tmp_path / "nothing").mkdir()  # a slide with nothing drawn alone: no images, said so
    for name in ("empty.tif", "empty.geojson"):
        (tmp_path / "data" / name).rename(tmp_path / "nothing" / name)
    assert main(["train", str(tmp_path / "nothing"), "--out", str(tmp_path / "none")]) == 2
    assert "nothing: no labelled images" in capsys.readouterr().err


def test_a_slides_windows_reach_a_margin_beyond_what_is_drawn_unscored(
    tmp_path, monkeypatch, capsys
):
    """Each window of a slide reaches PIXELWISE_WINDOW_MARGIN pixels beyond the box around what
    is drawn in it (context for the network), within the slide, and is named by that box; the
    margin's pixels are ignored (IGNORE_INDEX): neither trained on nor scored, a predicted
    object there neither matched nor false, so windows may overlap there. A bad margin is one
    error."""
    import tifffile

    from pixelwise.cli import main
    from pixelwise.constants import IGNORE_INDEX
    from pixelwise.data.layouts import find_items, read_dataset_info
    from pixelwise.data.slide import item_image
    from pixelwise.data.write import save_mask_rows
    from pixelwise.evaluate_folders import evaluate_predictions

    (tmp_path / "data").mkdir()
    pixels = np.random.default_rng(2).integers(0, 255, (300, 400, 3), np.uint8)
    tifffile.imwrite(tmp_path / "data" / "slide.tif", pixels, tile=(64, 64), photometric="rgb")
    features = [
        square(100, 100, 140, 130, "Tumor"),
        square(130, 120, 150, 135, "Tumor"),  # overlaps it: one box, its corners background
        square(175, 100, 200, 130, "Tumor"),  # 25 pixels away: the margins overlap
        square(0, 0, 30, 30, "Stroma"),  # at the slide's corner
        square(300, 200, 380, 280, "_background_"),
        square(320, 220, 340, 240, "Stroma"),  # within the region drawn as the background
    ]
    (tmp_path / "data" / "slide.geojson").write_text(json.dumps(features))
    monkeypatch.setenv("PIXELWISE_MAX_PIXELS", str(300 * 400 - 1))
    monkeypatch.setenv("PIXELWISE_WINDOW_MARGIN", "20")
    assert read_dataset_info(tmp_path / "data").class_names == ["background", "Stroma", "Tumor"]
    truth = np.full((300, 400), IGNORE_INDEX)
    for x0, y0, x1, y1 in ((100, 100, 150, 135), (175, 100, 200, 130), (0, 0, 30, 30),
                           (300, 200, 380, 280)):  # fmt: skip
        truth[y0:y1, x0:x1] = 0  # the boxes around what is drawn
    for value, k in ((2, 0), (2, 1), (2, 2), (1, 3), (1, 5)):
        truth[geojson_raster(features[k]["geometry"], truth.shape)] = value
    items = find_items(tmp_path / "data")
    assert sorted((i.window, i.name) for i in items) == [
        ((0, 50, 0, 50), "slide@x0y0"), ((80, 150, 155, 220), "slide@x175y100"),
        ((80, 155, 80, 170), "slide@x100y100"), ((180, 300, 280, 400), "slide@x300y200"),
    ]  # fmt: skip
    for item in items:
        y0, y1, x0, x1 = item.window
        np.testing.assert_array_equal(item.read_mask(), truth[y0:y1, x0:x1])
        np.testing.assert_array_equal(item_image(item), pixels[y0:y1, x0:x1])
    assert main(["inspect", str(tmp_path / "data"), "--val-fraction", "0"]) == 0
    assert "4 windows of 1 slide (margin 20 pixels" in capsys.readouterr().out
    predicted = np.where(truth == IGNORE_INDEX, 0, truth).astype(np.uint8)
    predicted[135:145, 85:95] = 2  # a Tumor in a window's margin
    predicted[40:48, 40:48] = 2  # and one in the corner window's margin
    palette = np.zeros((256, 3), np.uint8)
    palette[1:3] = [[0, 255, 0], [255, 0, 0]]
    save_mask_rows(tmp_path / "out" / "slide.tif", [(0, predicted)], predicted.shape, palette)
    assert evaluate_predictions(tmp_path / "out", tmp_path / "data")["mean_iou"] == 1.0
    objects = evaluate_predictions(tmp_path / "out", tmp_path / "data", object_class=2)
    assert objects["objects"]["predicted_objects"] == 2 and objects["objects"]["pq"] == 1.0
    predicted[135:145, 85:95] = 0
    predicted[22:32, 22:32] = 2  # over the Stroma drawn, 64 of its 100 pixels in its box
    save_mask_rows(tmp_path / "out" / "slide.tif", [(0, predicted)], predicted.shape, palette)
    objects = evaluate_predictions(tmp_path / "out", tmp_path / "data", object_class=2)
    assert objects["objects"]["predicted_objects"] == 3 and objects["objects"]["pq"] < 1.0
    monkeypatch.setenv("PIXELWISE_WINDOW_MARGIN", "-3")
    with pytest.raises(ValueError, match="PIXELWISE_WINDOW_MARGIN must be .* got '-3'"):
        find_items(tmp_path / "data")


def test_a_slides_own_predictions_are_scored_window_by_window(tmp_path, monkeypatch):
    """evaluate OUT DATA where DATA is a slide with regions drawn on it (windows) and OUT holds
    predictions of the whole slide, named as the slide: its tiled TIFF mask (as predict writes
    a slide's) or its GeoJSON, each read in the windows the data has; a region left out of the
    GeoJSON costs its pixels."""
    import tifffile

    from pixelwise.data.write import holds_class_ids, save_mask_rows
    from pixelwise.evaluate_folders import evaluate_predictions

    (tmp_path / "data").mkdir()
    pixels = np.random.default_rng(1).integers(0, 255, (300, 400, 3), np.uint8)
    tifffile.imwrite(tmp_path / "data" / "slide.tif", pixels, tile=(64, 64), photometric="rgb")
    features = [square(10, 10, 100, 80, "Tumor"), square(300, 200, 380, 290, "Stroma")]
    features[1]["geometry"]["coordinates"][0][2] = [390, 295]  # not a rectangle
    (tmp_path / "data" / "slide.geojson").write_text(json.dumps(features))
    whole = np.zeros((300, 400), np.uint8)  # the slide's classes: 1 Stroma, 2 Tumor
    for value, item in ((2, features[0]), (1, features[1])):
        whole[geojson_raster(item["geometry"], whole.shape)] = value
    whole[150:160, 150:160] = 2  # outside the windows: not scored
    palette = np.zeros((256, 3), np.uint8)  # as a model's mask palette: 256 colours
    palette[1:3] = [[0, 255, 0], [255, 0, 0]]
    save_mask_rows(tmp_path / "out" / "masks" / "slide.tif", [(0, whole)], whole.shape, palette)
    assert holds_class_ids(tmp_path / "out" / "masks" / "slide.tif")  # as predict's PNG masks
    (tmp_path / "gj").mkdir()
    (tmp_path / "gj" / "slide.geojson").write_text(json.dumps(features))
    monkeypatch.setenv("PIXELWISE_MAX_PIXELS", str(300 * 400 - 1))
    for folder in ("out", "gj"):
        scores = evaluate_predictions(tmp_path / folder, tmp_path / "data")
        assert scores["images"] == 2 and scores["mean_iou"] == 1.0, folder
        objects = evaluate_predictions(tmp_path / folder, tmp_path / "data", object_class=2)
        assert objects["objects"]["pq"] == 1.0 and objects["objects"]["predicted_objects"] == 1
    small = tmp_path / "small" / "masks" / "slide.tif"  # not the slide's size
    save_mask_rows(small, [(0, whole[:100, :100])], (100, 100), palette)
    with pytest.raises(ValueError, match="slide.tif: 100 x 100 pixels, smaller than its slide"):
        evaluate_predictions(tmp_path / "small", tmp_path / "data")
    (tmp_path / "gj" / "slide.geojson").write_text(json.dumps(features[:1]))
    missed = evaluate_predictions(tmp_path / "gj", tmp_path / "data")
    assert missed["per_class"]["Stroma"]["iou"] == 0.0
    assert missed["per_class"]["Tumor"]["iou"] == 1.0


def test_segment_geojson_reads_back_as_its_objects(tmp_path):
    """segment --geojson, then the images beside the geojson/ folder: a dataset whose objects
    are the label images segment wrote (the round trip of correcting them in QuPath)."""
    from pixelwise.batch import PredictOptions, segment_files
    from pixelwise.data.layouts import find_items

    image = np.zeros((H, W, 3), np.uint8)
    image[2:12, 2:14] = image[20:30, 5:9] = image[24:28, 35:40] = (255, 0, 0)
    image[5:8, 5:8] = 0  # a hole
    (tmp_path / "data" / "images").mkdir(parents=True)
    Image.fromarray(image).save(tmp_path / "data" / "images" / "a.png")
    options = PredictOptions(precision="fp32", geojson=True, object_class=1)
    segment_files(colour_model(), [tmp_path / "data" / "images"], tmp_path / "out", options, False)
    (tmp_path / "out" / "geojson").rename(tmp_path / "data" / "geojson")
    (item,) = find_items(tmp_path / "data")
    written = np.asarray(Image.open(tmp_path / "out" / "instances" / "a.png"))
    assert written.max() == 3
    assert same_objects(item.read_mask(instances=True), written)


def same_objects(read: np.ndarray, written: np.ndarray) -> bool:
    """Whether two instance label images hold the same objects, whatever their numbers."""
    pairs = np.unique(np.stack([read.ravel(), written.ravel()]), axis=1)
    return len(pairs.T) == len(np.unique(written)) == len(np.unique(read))


def test_nuclei_of_he_images_read_back_from_their_geojson(tmp_path):
    """The bundled nuclei model on four H&E images of ../shared/data/nuclei_he: hundreds of
    touching nuclei each, written by segment --geojson as valid polygons that read back as the
    same objects."""
    shapely = pytest.importorskip("shapely.geometry")
    from pixelwise.cli import main
    from pixelwise.data.layouts import find_items

    images = sorted((shared_dataset("nuclei_he") / "cpm15" / "images").glob("*.jpg"))[:4]
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    for path in images:
        (data / "images" / path.name).write_bytes(path.read_bytes())
    out = tmp_path / "out"
    run = ["segment", str(data / "images"), "--checkpoint", "nuclei", "--geojson"]
    assert main([*run, "--out", str(out), "--no-progress"]) == 0
    (out / "geojson").rename(data / "geojson")
    items = find_items(data)
    assert len(items) == 4
    for item in items:
        written = np.asarray(Image.open(out / "instances" / f"{item.name}.png"))
        assert written.max() > 100
        assert same_objects(item.read_mask(instances=True), written)
        features = read_features(data / "geojson" / f"{item.name}.geojson")
        assert all(shapely.shape(f["geometry"]).is_valid for f in features)


def test_a_class_is_its_name_a_derived_class_its_names_joined():
    """QuPath's classification: {"name": ...}, a plain name, or a derived class's names."""
    from pixelwise.data.geojson import UNCLASSIFIED, class_of

    given = [{"name": "Tumor", "color": [1, 2, 3]}, "Stroma", {"names": ["Tumor", "Positive"]}, {}]
    found = [class_of({"properties": {"classification": c}}) for c in given]
    assert found == ["Tumor", "Stroma", "Tumor: Positive", UNCLASSIFIED]
    assert class_of({"properties": None}) == class_of({}) == UNCLASSIFIED


def test_a_bad_geojson_file_is_one_line_naming_it(tmp_path):
    from pixelwise.data.layouts import find_items

    qupath_export(tmp_path / "data")
    bad = tmp_path / "data" / "a.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(ValueError, match=rf"{bad}: cannot read it as GeoJSON"):
        find_items(tmp_path / "data")
    bad.write_text(
        json.dumps([{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[1, 2]]}}])
    )
    with pytest.raises(ValueError, match=rf"{bad}, feature 1: coordinates must be lists of"):
        find_items(tmp_path / "data")
    bad.write_text(json.dumps({"type": "Polygon", "coordinates": []}))
    with pytest.raises(ValueError, match="not a GeoJSON FeatureCollection, Feature or list"):
        find_items(tmp_path / "data")
    qupath_export(tmp_path / "data", "b")  # a good one beside two bad ones: both bad named
    (tmp_path / "data" / "c.geojson").write_text("[")
    with pytest.raises(ValueError, match=r"^2 GeoJSON files cannot be used: .*a\.geojson.*c\.geo"):
        find_items(tmp_path / "data")


def test_train_on_a_qupath_export(tmp_path):
    """pixelwise train on GeoJSON files: the classes by name, a run that finishes."""
    from conftest import train_tiny

    from pixelwise.checkpoint import load_model

    for stem in ("a", "b", "c", "d"):
        qupath_export(tmp_path / "data", stem)
    run = train_tiny(tmp_path / "data", tmp_path / "run", "--val-fraction", "0.25")
    assert load_model(run / "best.pt").class_names == ["background", "Stroma", "Tumor", "object"]


def test_overlapping_parts_of_one_feature_are_one_object_covering_both(tmp_path):
    """A hand-drawn MultiPolygon whose parts overlap (invalid, but drawn so): their union, one
    object, not the parts' symmetric difference."""
    from pixelwise.data.layouts import find_items

    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "a.png")
    parts = [
        [[[2, 2], [10, 2], [10, 10], [2, 10], [2, 2]]],
        [[[6, 6], [14, 6], [14, 14], [6, 14], [6, 6]]],
    ]
    geom = {"type": "MultiPolygon", "coordinates": parts}
    (tmp_path / "a.geojson").write_text(json.dumps({"type": "Feature", "geometry": geom}))
    (item,) = find_items(tmp_path)
    union = np.zeros((20, 20), np.int32)
    union[2:10, 2:10] = union[6:14, 6:14] = 1
    np.testing.assert_array_equal(item.read_mask(instances=True), union)


def test_a_checkpoint_scores_no_object_it_finds_on_ignored_pixels(tmp_path, monkeypatch):
    """evaluate CHECKPOINT DATA --object-class on sparse annotations (an __ignore__ region
    under the drawn objects): an object the model finds where nothing was drawn is neither
    matched nor false, as when its predicted masks are scored from a folder; the data names its
    classes in another order than the model (matched by name), and its ignored pixels stay
    ignored (they were an error: 255 is no class's value)."""
    from pixelwise import evaluate

    (tmp_path / "data").mkdir()
    image = np.zeros((40, 60, 3), np.uint8)
    image[5:15, 5:15] = image[20:30, 40:50] = (255, 0, 0)  # two leaves, one drawn
    image[30:36, 5:11] = (0, 255, 0)  # an apple
    Image.fromarray(image).save(tmp_path / "data" / "a.png")
    drawn = [square(0, 0, 60, 40, "__ignore__"), square(5, 5, 15, 15, "leaf"),
             square(5, 30, 11, 36, "apple")]  # fmt: skip
    (tmp_path / "data" / "a.geojson").write_text(json.dumps(drawn))
    monkeypatch.setattr(evaluate, "load_for_command", lambda *args: colour_model())
    monkeypatch.setattr(evaluate, "note_data_settings", lambda checkpoint: None)  # no file
    scores = evaluate.evaluate_checkpoint(
        "colour.pt", tmp_path / "data", val_stems="a", precision="fp32", object_class=1
    )
    assert scores["objects"]["predicted_objects"] == 1 and scores["objects"]["pq"] == 1.0
