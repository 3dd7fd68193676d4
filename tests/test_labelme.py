"""LabelMe datasets (one JSON of shapes per image): each shape kind drawn where and as LabelMe
draws it (checked pixel by pixel against a hand-made mask), groups as one object, labels.txt, the usual folder
layouts, and training, evaluation and Mask R-CNN's view on them."""

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pycocotools", reason="outlines are drawn by pycocotools")

from conftest import train_tiny  # noqa: E402

from pixelwise.cli import main  # noqa: E402
from pixelwise.data.layouts import find_items, read_dataset_info, resolve_splits  # noqa: E402

H, W = 40, 50


def polygon(label, x0, y0, x1, y1, group=None):
    points = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    return {"label": label, "points": points, "shape_type": "polygon", "group_id": group}


def png_base64(mask):
    data = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(data, "PNG")
    return base64.b64encode(data.getvalue()).decode()


SHAPES = [
    polygon("cat", 2, 2, 12, 12),
    {"label": "dog", "points": [[30, 10], [20, 2]], "shape_type": "rectangle", "group_id": None},
    {"label": "dog", "points": [[40, 30], [40, 35]], "shape_type": "circle", "group_id": None},
    {"label": "cat", "points": [[2, 30], [7, 33]], "shape_type": "mask", "group_id": None,
     "mask": png_base64(np.ones((4, 6), bool))},
    {"label": "cat", "points": [[25, 25]], "shape_type": "point", "group_id": None},
    polygon("__ignore__", 14, 20, 18, 24),
]  # fmt: skip


def expected_classes():
    """SHAPES by hand, drawn as LabelMe draws them (corners are pixel centres, edges inside):
    cat 1, dog 2, ignored 255; and the circle's bounding box (centre (40, 30), radius 5)."""
    mask = np.zeros((H, W), np.int64)
    mask[2:13, 2:13] = 1
    mask[2:11, 20:31] = 2
    mask[30:34, 2:8] = 1
    mask[20:25, 14:19] = 255
    circle = np.zeros((H, W), bool)
    circle[25:36, 35:46] = True
    return mask, circle


def write(folder, stem, shapes, image_path=None, image_folder=None):
    (image_folder or folder).mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((H, W, 3), 20, np.uint8)).save((image_folder or folder) / f"{stem}.jpg")
    spec = {"version": "5.5.0", "flags": {}, "shapes": shapes, "imageData": None,
            "imagePath": image_path or f"{stem}.jpg", "imageHeight": H, "imageWidth": W}  # fmt: skip
    (folder / f"{stem}.json").write_text(json.dumps(spec))


def test_every_bad_annotation_file_is_named_in_one_error(tmp_path):
    write(tmp_path, "a", SHAPES)
    write(tmp_path, "b", [{"label": "cat", "points": [[1, 2, 3]], "shape_type": "polygon"}])
    write(tmp_path, "c", SHAPES, image_path="gone.png")
    (tmp_path / "c.jpg").unlink()
    with pytest.raises(ValueError) as caught:
        find_items(tmp_path)
    said = str(caught.value)
    assert said.startswith("2 annotation files cannot be used: ")
    assert "b.json, shape 1: points must be [x, y] pairs" in said
    assert "c.json: its image 'gone.png' was not found" in said


def test_each_shape_kind_is_drawn_where_it_lies(tmp_path, capsys):
    write(tmp_path, "a", SHAPES)
    assert read_dataset_info(tmp_path).class_names == ["background", "cat", "dog"]
    (item,) = find_items(tmp_path)
    assert item.mask == tmp_path / "a.json"
    drawn = item.read_mask()
    expected, box = expected_classes()
    np.testing.assert_array_equal(drawn[~box], expected[~box])
    disc = drawn[box].reshape(11, 11) == 2  # the circle: its rows and columns through the centre
    assert disc[5].all() and disc[:, 5].all() and not disc[0, 0] and disc.sum() < 0.9 * 121
    assert "1 LabelMe shape(s) without an area" in capsys.readouterr().err
    find_items(tmp_path)  # read again (inspect and train read a dataset twice): said once
    assert "without an area" not in capsys.readouterr().err
    numbers = item.read_mask(instances=True)
    assert len(np.unique(numbers)) == 5  # background + 4 objects (the ignored region is none)


def test_shapes_of_one_group_are_one_object_and_labels_txt_orders_the_classes(tmp_path):
    shapes = [polygon("cat", 2, 2, 10, 10, group=3), polygon("cat", 20, 2, 30, 10, group=3),
              polygon("dog", 2, 20, 10, 30)]  # fmt: skip
    write(tmp_path, "a", shapes)
    (tmp_path / "labels.txt").write_text("__ignore__\n_background_\ndog\ncat\nbird\n")
    assert read_dataset_info(tmp_path).class_names == ["background", "dog", "cat", "bird"]
    (item,) = find_items(tmp_path)
    assert item.read_mask()[5, 5] == 2 and item.read_mask()[25, 5] == 1
    numbers = item.read_mask(instances=True)
    assert numbers[5, 5] == numbers[5, 25] != 0 and len(np.unique(numbers)) == 3
    write(tmp_path, "b", [polygon("horse", 2, 2, 10, 10)])
    with pytest.raises(ValueError, match=r"b\.json: label 'horse' is not among the classes"):
        find_items(tmp_path)
    points = [{"label": "cat", "points": [[3, 4]], "shape_type": "point", "group_id": None}]
    write(tmp_path / "points", "c", points)
    with pytest.raises(ValueError, match="no LabelMe shape has an area \\(1 points or lines\\)"):
        find_items(tmp_path / "points")


def test_folder_layouts_splits_and_where_the_image_is(tmp_path):
    """train/ + val/ folders; images/ + annotations/ with imagePath '../images/x.jpg'; an
    imagePath from the annotator's machine falls back to the file's name beside it."""
    write(tmp_path / "train", "t0", [polygon("cat", 2, 2, 12, 12)])
    write(tmp_path / "train", "t1", [polygon("dog", 2, 2, 12, 12)], "C:\\Users\\me\\t1.jpg")
    write(tmp_path / "val", "v0", [polygon("cat", 2, 2, 12, 12)])
    train, val = resolve_splits(tmp_path)
    assert [i.name for i in train] == ["t0", "t1"] and [i.name for i in val] == ["v0"]
    assert train[1].read_mask()[5, 5] == 2  # dog: the classes of both splits, sorted
    other = tmp_path / "other"
    write(other / "annotations", "a", [polygon("cat", 2, 2, 12, 12)], "../images/a.jpg",
          image_folder=other / "images")  # fmt: skip
    (item,) = find_items(other)
    assert item.image == other / "annotations" / ".." / "images" / "a.jpg"
    Image.new("RGB", (2 * W, 2 * H)).save(other / "images" / "a.jpg")  # resized after labelling
    with pytest.raises(ValueError, match=r"a\.json: drawn on an image of 50 x 40 pixels, but a"):
        find_items(other)


def test_a_labelme_dataset_trains_scores_and_feeds_mask_rcnn(tmp_path):
    from pixelwise.data.coco import annotation_mask, encode_rle
    from pixelwise.detection import ground_truth_json, instance_splits
    from pixelwise.metrics import coco_average_precision

    for i in range(4):
        write(tmp_path, f"im{i}", SHAPES)
    run = train_tiny(tmp_path, tmp_path / "run", "--val-stems", "im3", "--precision", "fp32")
    out = tmp_path / "e.json"
    assert main(["evaluate", str(run / "best.pt"), str(tmp_path), "--json", str(out)]) == 0
    scores = json.loads(out.read_text())
    expected, _ = expected_classes()
    assert scores["images"] == 1 and scores["per_class"]["cat"]["pixels"] == (expected == 1).sum()
    train, val, cats, spec = instance_splits(tmp_path, ["im3"], 0.2, 0)
    assert [i.name for i in val] == ["im3"] and cats.names == ("cat", "dog")
    truth = ground_truth_json(val, cats, spec)
    found = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0,
         "bbox": a["bbox"], "segmentation": encode_rle(annotation_mask(a, H, W))}
        for a in truth["annotations"] if not a["iscrowd"]
    ]  # fmt: skip
    assert len(found) == 4
    assert coco_average_precision(truth, found)["segm"]["ap"] == pytest.approx(1.0)


def colour_model():
    """A model whose answer is known: class 1 where a pixel is red, class 2 where green (named
    leaf and apple: not in alphabetical order)."""
    import torch
    from torch import nn

    from pixelwise.data.encoding import Normalization
    from pixelwise.segmenter import Segmenter

    net = nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        net.weight.zero_()
        net.bias.copy_(torch.tensor([0.0, -3.0, -3.0]))
        net.weight[1, 0], net.weight[2, 1] = 10.0, 10.0
    norm = Normalization([0.0] * 3, [1.0] * 3)
    return Segmenter(net.eval(), "unet", {}, ["background", "leaf", "apple"], norm)


def test_predictions_written_as_labelme_files_read_back_as_predicted(tmp_path):
    """predict --labelme: each region a polygon that LabelMe draws back exactly (holes and
    regions under --min-object-size aside), imagePath leading to the photo."""
    import cv2

    from pixelwise.batch import PredictOptions, predict_files

    image = np.zeros((60, 70, 3), np.uint8)
    cv2.ellipse(image, (20, 25), (14, 9), 30.0, 0, 360, (255, 0, 0), -1)
    cv2.fillPoly(image, [np.array([[40, 5], [66, 12], [55, 40], [44, 30]])], (0, 255, 0))
    image[50:52, 60] = (255, 0, 0)  # two pixels: under --min-object-size 5
    (tmp_path / "photos").mkdir()
    Image.fromarray(image).save(tmp_path / "photos" / "a.png")
    out = tmp_path / "out"
    options = PredictOptions(precision="fp32", labelme=True, min_object_size=5)
    predict_files(colour_model(), [tmp_path / "photos"], out, options, progress=False)
    predicted = np.array(Image.open(out / "masks" / "a.png"))
    assert predicted[51, 60] == 1 and (predicted == 1).sum() > 300 and (predicted == 2).sum() > 400
    predicted[50:52, 60] = 0
    (item,) = find_items(out / "labelme")
    assert item.image.resolve() == (tmp_path / "photos" / "a.png").resolve()
    np.testing.assert_array_equal(item.read_mask(), predicted)
    assert (out / "labelme" / "labels.txt").read_text().split() == [
        "__ignore__", "_background_", "leaf", "apple"
    ]  # fmt: skip
    assert read_dataset_info(out / "labelme").class_names == ["background", "leaf", "apple"]


def test_an_object_in_two_pieces_stays_one_object(tmp_path):
    from pixelwise.data.labelme import annotation_json, shapes_of

    labels = np.zeros((H, W), np.uint16)
    labels[2:10, 2:10] = labels[2:10, 20:30] = 1  # object 1, cut in two by something in front
    labels[20:30, 5:15] = 2
    shapes = shapes_of(labels, {1: "cat", 2: "dog"}, objects=True)
    assert [(s["label"], s["group_id"]) for s in shapes] == [("cat", 1), ("cat", 1), ("dog", 2)]
    write(tmp_path, "a", [])
    (tmp_path / "a.json").write_text(annotation_json(shapes, tmp_path / "a.jpg", tmp_path, H, W))
    (item,) = find_items(tmp_path)
    np.testing.assert_array_equal(item.read_mask(instances=True), labels)


def test_background_shapes_make_holes_in_what_was_drawn_before_them(tmp_path):
    """A ``_background_`` shape is background drawn over the shapes before it (labelme2voc's
    order): a hole in the cat, none in the dog drawn after it; the cat's box stays its own."""
    write(tmp_path, "a", [polygon("cat", 2, 2, 20, 20), polygon("_background_", 6, 6, 10, 10),
                          polygon("dog", 8, 8, 9, 9), polygon("dog", 30, 2, 40, 12)])  # fmt: skip
    (item,) = find_items(tmp_path)
    expected = np.zeros((H, W), np.int64)
    expected[2:21, 2:21] = 1  # cat (classes sorted: cat 1, dog 2)
    expected[6:11, 6:11] = 0
    expected[8:10, 8:10] = 2
    expected[2:13, 30:41] = 2
    np.testing.assert_array_equal(item.read_mask(), expected)
    from pixelwise.data.labelme import objects_of

    spec = json.loads((tmp_path / "a.json").read_text())
    anns, _ = objects_of(tmp_path / "a.json", spec, ["cat", "dog"])
    assert [a["bbox"] for a in anns if a["category_id"] == 1] == [[2, 2, 18, 18]]


def random_labels(rng, values):
    """A label image of overlapping rectangles of ``values`` with specks of background: regions
    with holes, islands in holes, one-pixel lines and diagonal touches."""
    h, w = int(rng.integers(8, 40)), int(rng.integers(8, 40))
    labels = np.zeros((h, w), np.uint16)
    for _ in range(int(rng.integers(1, 8))):
        y, x = rng.integers(0, h), rng.integers(0, w)
        labels[y : y + rng.integers(1, 20), x : x + rng.integers(1, 20)] = rng.integers(0, values)
    labels[rng.random((h, w)) < 0.1] = 0
    return labels


@pytest.mark.parametrize("objects", [False, True])
def test_label_images_written_as_labelme_shapes_read_back_exactly(tmp_path, objects):
    """shapes_of, then reading the file back: the same label image, pixel for pixel, on 60
    random ones (holes are background shapes drawn after their region; what lies in a hole
    comes after it). Before, every region lost its holes: 78 of 200 such images differed."""
    from scipy import ndimage

    from pixelwise.data.labelme import annotation_json, shapes_of

    rng = np.random.default_rng(1)
    (tmp_path / "labels.txt").write_text("__ignore__\n_background_\nc1\nc2\nc3\n")
    for _ in range(60):
        labels = random_labels(rng, 4)
        if objects:  # objects: the 8-connected regions, of class c1
            labels, count = ndimage.label(labels > 0, np.ones((3, 3)))
            names = {k: "c1" for k in range(1, count + 1)}
        else:
            names = {k: f"c{k}" for k in range(1, 4)}
        h, w = labels.shape
        Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(tmp_path / "a.png")
        shapes = shapes_of(labels, names, objects=objects)
        (tmp_path / "a.json").write_text(
            annotation_json(shapes, tmp_path / "a.png", tmp_path, h, w)
        )
        (item,) = find_items(tmp_path)
        back = item.read_mask(instances=objects)
        if objects:  # the same objects; numbered anew when one lies in another's hole
            pairs = np.unique(np.stack([labels.ravel(), back.ravel()]), axis=1)
            assert len(pairs.T) == len(np.unique(labels)) == len(np.unique(back))
            back = dict(pairs.T[:, ::-1].tolist()).__getitem__
            back = np.vectorize(back)(item.read_mask(instances=True))
        np.testing.assert_array_equal(back, labels)


def test_evaluate_matches_classes_by_name_when_the_data_gained_one(tmp_path, capsys):
    """A model trained on cat and dog, scored on files that also hold a bird: sorted anew the
    data's class 1 is bird, so scoring by class id would count bird pixels as cat."""
    for i in range(3):
        write(
            tmp_path / "a", f"im{i}", [polygon("cat", 2, 2, 12, 12), polygon("dog", 20, 2, 30, 10)]
        )
    run = train_tiny(tmp_path / "a", tmp_path / "run", "--val-stems", "im2", "--precision", "fp32")
    write(tmp_path / "b", "new", [polygon("bird", 2, 20, 30, 30), polygon("cat", 2, 2, 12, 12),
                                  polygon("dog", 20, 2, 30, 10)])  # fmt: skip
    assert read_dataset_info(tmp_path / "b").class_names == ["background", "bird", "cat", "dog"]
    out = tmp_path / "e.json"
    assert main(["evaluate", str(run / "best.pt"), str(tmp_path / "b"), "--json", str(out)]) == 0
    pixels = {k: v["pixels"] for k, v in json.loads(out.read_text())["per_class"].items()}
    assert pixels == {"background": H * W - 121 - 99 - 29 * 11, "cat": 121, "dog": 99}
    assert "not known to the model, ignored: bird" in capsys.readouterr().err


def test_compare_matches_a_models_classes_to_the_datas_by_name(tmp_path, capsys):
    """The model's class 1 is leaf, 2 apple; the data, its labels sorted, has apple 1, leaf 2."""
    import cv2

    from pixelwise.compare import Method, compare

    for i in range(2):
        image = np.zeros((H, W, 3), np.uint8)
        cv2.rectangle(image, (2 + i, 2), (12 + i, 12), (255, 0, 0), -1)  # red: a leaf
        cv2.rectangle(image, (20, 20), (30, 30), (0, 255, 0), -1)  # green: an apple
        Image.fromarray(image).save(tmp_path / f"im{i}.png")
        shapes = [polygon("leaf", 2 + i, 2, 12 + i, 12), polygon("apple", 20, 20, 30, 30)]
        spec = {"shapes": shapes, "imagePath": f"im{i}.png", "imageHeight": H, "imageWidth": W}
        (tmp_path / f"im{i}.json").write_text(json.dumps(spec))
    method = Method("colours")
    method.model = colour_model()
    rows = compare([str(tmp_path)], [method])[0]
    assert rows[0]["per_class_iou"] == [1.0, 1.0, 1.0] and rows[0]["pixel_accuracy"] == 1.0
    assert "colours's classes matched to the data's by name" in capsys.readouterr().err


def test_segment_writes_each_object_as_labelme_shapes(tmp_path):
    """segment --labelme: the objects (here red regions, --object-class 1) read back as the
    instance label image segment wrote, object for object."""
    from pixelwise.batch import PredictOptions, segment_files

    image = np.zeros((H, W, 3), np.uint8)
    image[2:12, 2:14], image[20:30, 5:9], image[20:35, 30:45] = (
        (255, 0, 0),
        (255, 0, 0),
        (255, 0, 0),
    )
    Image.fromarray(image).save(tmp_path / "a.png")
    options = PredictOptions(precision="fp32", labelme=True, object_class=1)
    segment_files(colour_model(), [tmp_path / "a.png"], tmp_path / "out", options, progress=False)
    written = np.asarray(Image.open(tmp_path / "out" / "instances" / "a.png"))
    (item,) = find_items(tmp_path / "out" / "labelme")
    read = item.read_mask(instances=True)
    assert written.max() == 3 and len(np.unique(read)) == 4
    pairs = {(int(w), int(r)) for w, r in zip(written.ravel(), read.ravel())}
    assert len(pairs) == 4  # the same partition: each written object is one object read back
    assert (tmp_path / "out" / "labelme" / "labels.txt").read_text().split()[-1] == "leaf"


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float32])
def test_value_boxes_are_each_values_bounding_box(dtype):
    from pixelwise.data.labelme import value_boxes

    rng = np.random.default_rng(4)
    labels = rng.integers(0, 7, (30, 41)).astype(dtype)
    labels[labels == 5] = 0  # a value absent from the image
    boxes = value_boxes(labels, [1, 2, 3, 4, 5, 6, 9])
    for value, box in boxes.items():
        ys, xs = np.nonzero(labels == value)
        if not len(ys):
            assert box is None
            continue
        if dtype is np.float32:  # compared whole: the box is the image
            assert box == (slice(0, 30), slice(0, 41))
            continue
        assert box == (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
