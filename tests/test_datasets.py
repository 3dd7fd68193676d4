"""Folder pairing, splits, mask encodings, and the shared datasets loading as they are."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import shared_dataset
from PIL import Image

from pixelwise.constants import parse_stems
from pixelwise.data.datasets import SegmentationDataset
from pixelwise.data.encoding import MaskEncoding, Normalization
from pixelwise.data.io import read_image, read_mask
from pixelwise.data.layouts import find_items, find_pairs, read_dataset_info, resolve_splits


def _write_pool(root, stems, extra_images=(), extra_masks=()):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for s in list(stems) + list(extra_images):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "images" / f"{s}.png")
    for s in list(stems) + list(extra_masks):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "masks" / f"{s}.png")


def test_unmatched_files_listed(tmp_path):
    _write_pool(tmp_path, ["a", "b"], extra_images=["c"], extra_masks=["d", "e"])
    with pytest.raises(ValueError, match="images without a mask: c; masks without an image: d, e"):
        find_pairs(tmp_path)


def test_split_by_stems_and_seeded_fraction(tmp_path):
    _write_pool(tmp_path, [f"{i:02d}" for i in range(10)])
    train, val = resolve_splits(tmp_path, parse_stems("07-09"))
    assert [p.name for p in val] == ["07", "08", "09"] and len(train) == 7
    a = resolve_splits(tmp_path, val_fraction=0.3, seed=1)
    b = resolve_splits(tmp_path, val_fraction=0.3, seed=1)
    assert a == b and len(a[1]) == 3
    with pytest.raises(ValueError, match="validation stems not found: 42"):
        resolve_splits(tmp_path, ["42"])


def test_parse_stems():
    assert parse_stems("25-27,x") == ["25", "26", "27", "x"]
    assert parse_stems("08-10") == ["08", "09", "10"]
    assert parse_stems(None) is None


def test_mask_encoding_values_and_ignore():
    raw = np.array([[0, 255], [11, 0]])
    np.testing.assert_array_equal(MaskEncoding((0, 255)).apply(raw[:1], 2), [[0, 1]])
    np.testing.assert_array_equal(
        MaskEncoding(None, (11,)).apply(np.array([[3, 11]]), 12), [[3, 255]]
    )
    with pytest.raises(ValueError, match=r"m\.png: mask values \[7\] are not class ids 0..1"):
        MaskEncoding().apply(np.array([[0, 7]]), 2, "m.png")


def test_random_crop_is_function_of_seed_epoch_index(tmp_path):
    _write_pool(tmp_path, ["a"])
    Image.fromarray(np.arange(400, dtype=np.uint8).reshape(20, 20)).save(
        tmp_path / "images" / "a.png"
    )
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "masks" / "a.png")
    pairs = find_pairs(tmp_path)
    ds = SegmentationDataset(
        pairs, 1, MaskEncoding(), Normalization([0.0], [1.0]), crop=8, augment=True, seed=3
    )
    first = ds[0][0]
    ds2 = SegmentationDataset(
        pairs, 1, MaskEncoding(), Normalization([0.0], [1.0]), crop=8, augment=True, seed=3
    )
    assert first.shape == (1, 8, 8)
    assert (ds2[0][0] == first).all()
    ds2.set_epoch(1)
    assert not (ds2[0][0] == first).all()


def test_repeated_draws_in_one_epoch_are_different_crops(tmp_path):
    from pixelwise.train import epoch_indices

    _write_pool(tmp_path, ["a", "b"])
    for stem in "ab":
        Image.fromarray(np.arange(400, dtype=np.uint8).reshape(20, 20)).save(
            tmp_path / "images" / f"{stem}.png"
        )
        Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "masks" / f"{stem}.png")
    ds = SegmentationDataset(
        find_pairs(tmp_path),
        1,
        MaskEncoding(),
        Normalization([0.0], [1.0]),
        crop=8,
        augment=True,
        seed=3,
    )
    draws = epoch_indices(len(ds), 6, seed=0, epoch=0)
    assert sorted(d % 2 for d in draws) == [0, 0, 0, 1, 1, 1] and len(set(draws)) == 6
    assert sorted(draws[:2]) == [0, 1]  # the first pass is a permutation of the items, as before
    crops = [ds[d][0] for d in draws if d % 2 == 0]
    assert all(not (crops[i] == crops[j]).all() for i in range(3) for j in range(i))
    assert (
        ds[draws[0]][0] == ds[draws[0]][0]
    ).all()  # still a pure function of (seed, epoch, draw)


def test_isbi2012_loads_as_is():
    root = shared_dataset("isbi2012")
    train, val = resolve_splits(root, parse_stems("25-29"))
    assert len(train) == 25 and [p.name for p in val] == ["25", "26", "27", "28", "29"]
    ds = SegmentationDataset(val, 2, MaskEncoding((0, 255)), Normalization())
    image, target = ds[0]
    assert image.shape == (1, 512, 512) and target.shape == (512, 512)
    assert set(target.unique().tolist()) == {0, 1}


def test_camvid_loads_with_void_ignored():
    root = shared_dataset("camvid")
    info = read_dataset_info(root)
    assert len(info.class_names) == 11 and info.ignore_values == (11,)
    train, val = resolve_splits(root)
    assert len(train) == 367 and len(val) == 101
    ds = SegmentationDataset(
        val[:1], 11, MaskEncoding(None, info.ignore_values), Normalization([0.5] * 3, [0.25] * 3)
    )
    image, target = ds[0]
    assert image.shape == (3, 360, 480)
    values = set(target.unique().tolist())
    assert values <= set(range(11)) | {255} and 11 not in values


def test_tiff_stack_layout_one_item_per_page(tmp_path):
    import tifffile

    stack = np.stack([np.full((16, 12), i * 10, np.uint8) for i in range(4)])
    labels = np.stack([np.where(np.arange(192).reshape(16, 12) % 2, 255, 0).astype(np.uint8)] * 4)
    tifffile.imwrite(tmp_path / "train-volume.tif", stack, photometric="minisblack")
    tifffile.imwrite(tmp_path / "train-labels.tif", labels, photometric="minisblack")
    train, val = resolve_splits(tmp_path, ["train-volume-003"])
    assert [i.name for i in train] == ["train-volume-000", "train-volume-001", "train-volume-002"]
    ds = SegmentationDataset(val, 2, MaskEncoding((0, 255)), Normalization([0.0], [1.0]))
    image, target = ds[0]
    assert image[0, 0, 0].item() == pytest.approx(30 / 255) and set(target.unique().tolist()) == {
        0,
        1,
    }


def test_cell_tracking_challenge_layout_and_instance_targets(tmp_path):
    import tifffile

    (tmp_path / "01").mkdir()
    (tmp_path / "01_GT" / "SEG").mkdir(parents=True)
    labels = np.zeros((8, 10), np.uint16)
    labels[1:5, 1:5], labels[1:5, 5:9] = 7, 300  # two touching cells
    for t in ("000", "001", "002"):
        tifffile.imwrite(tmp_path / "01" / f"t{t}.tif", np.zeros((8, 10), np.uint16))
    for t in ("000", "002"):  # sparse annotation, as in the challenge
        tifffile.imwrite(tmp_path / "01_GT" / "SEG" / f"man_seg{t}.tif", labels)
    _, items = resolve_splits(tmp_path, ["01_t002"])
    assert [i.name for i in items] == ["01_t002"]
    fg = SegmentationDataset(
        items, 2, MaskEncoding(instances="foreground"), Normalization([0.0], [1.0])
    )[0][1]
    assert fg.sum().item() == 32
    b = SegmentationDataset(
        items, 3, MaskEncoding(instances="boundary"), Normalization([0.0], [1.0])
    )[0][1]
    assert set(b.unique().tolist()) == {0, 1, 2}
    assert (b[1:5, 4] == 2).all() and (
        b[1:5, 5] == 2
    ).all()  # the shared edge belongs to both cells' borders
    with pytest.raises(ValueError, match="instance labels need --instances"):
        SegmentationDataset(items, 2, MaskEncoding(), Normalization([0.0], [1.0]))[0]


def test_dsb2018_instances_folder():
    root = shared_dataset("dsb2018")
    items = find_items(root / "train")
    assert len(items) == 663 and items[0].mask.parent.name == "instances"


@pytest.mark.parametrize("encoding", ["semantic", "instances"])
def test_weight_map_travels_with_the_target(tmp_path, encoding):
    from pixelwise.data.weight_map import unet_weight_map

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    labels = np.zeros((40, 48), np.uint16)
    labels[5:20, 5:22], labels[5:20, 24:40], labels[24:36, 8:30] = 1, 2, 3  # cells 2 px apart
    Image.fromarray(np.zeros((40, 48), np.uint8)).save(tmp_path / "images" / "a.png")
    if encoding == "instances":
        Image.fromarray(labels).save(tmp_path / "masks" / "a.png")
        enc = MaskEncoding(instances="foreground")
    else:  # semantic: cells are 255, the gaps between them 0 -> cells found as connected components
        Image.fromarray(((labels > 0) * 255).astype(np.uint8)).save(tmp_path / "masks" / "a.png")
        enc = MaskEncoding((0, 255))
    items = find_items(tmp_path)
    plain = SegmentationDataset(items, 2, enc, Normalization([0.0], [1.0]), weight_map=(10.0, 5.0))
    image, target, weights = plain[0]
    expected = unet_weight_map(labels.astype(np.int64))
    np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-6)
    assert target.dtype == torch.int64 and weights.dtype == torch.float32
    # random crop + elastic + flips: the weights move exactly like the labels
    aug = SegmentationDataset(
        items,
        2,
        enc,
        Normalization([0.0], [1.0]),
        crop=32,
        augment=True,
        elastic=True,
        weight_map=(10.0, 5.0),
    )
    for epoch in range(3):
        aug.set_epoch(epoch)
        _, t, w = aug[0]
        assert t.shape == w.shape == (32, 32)
        gap = expected[(labels == 0)].max()
        assert w[t == 1].max() < gap  # cell pixels never get the border term
        assert set(np.unique(t.numpy())) <= {0, 1}


def test_iterating_a_dataset_gives_each_pair_once(tmp_path):
    """Indices past len wrap (more random draws for the sampler); a for loop still ends."""
    _write_pool(tmp_path, ["a", "b", "c"])
    ds = SegmentationDataset(find_pairs(tmp_path), 2, MaskEncoding(), Normalization([0.5], [0.25]))
    pairs = list(ds)
    assert len(pairs) == 3 and all(torch.equal(p[1], ds[i][1]) for i, p in enumerate(pairs))
    assert torch.equal(ds[3][1], ds[0][1])  # the wrap the sampler relies on


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.asarray(array, np.uint8))
    if path.suffix == ".gif":  # a GIF stores palette indices: keep them equal to the values
        image = image.convert("P")
        image.putpalette([v for i in range(256) for v in (i, i, i)])
    image.save(path, **({"optimize": False} if path.suffix == ".gif" else {}))


def _mark(value):
    """An 8 x 8 image (and mask) whose first pixel says which pair it belongs to."""
    a = np.zeros((8, 8), np.uint8)
    a[0, 0] = value
    return a


def _assert_paired(items):
    for item in items:
        assert read_image(item.image)[0, 0, 0] == read_mask(item.mask)[0, 0], item


def test_masks_named_with_an_ending_every_mask_has(tmp_path):
    # Carvana: train/<id>_01.jpg with train_masks/<id>_01_mask.gif beside the folder
    for i, stem in enumerate(["car_01", "car_02", "car2_01", "car2_02"]):
        _save(tmp_path / "train" / f"{stem}.png", _mark(i + 1))
        _save(tmp_path / "train_masks" / f"{stem}_mask.gif", _mark(i + 1))
    train, val = resolve_splits(tmp_path, ["car2_01"])
    assert [i.name for i in train] == ["car2_02", "car_01", "car_02"] and val[0].name == "car2_01"
    _assert_paired(train + val)
    # ISIC: one pair is enough to see the ending
    _save(tmp_path / "isic" / "images" / "ISIC_0000000.png", _mark(7))
    _save(tmp_path / "isic" / "masks" / "ISIC_0000000_segmentation.png", _mark(7))
    assert [i.name for i in find_items(tmp_path / "isic")] == ["ISIC_0000000"]
    # DRIVE: both sides carry their own ending
    for i in (21, 22, 23):
        _save(tmp_path / "drive" / "images" / f"{i}_training.png", _mark(i))
        _save(tmp_path / "drive" / "labels" / f"{i}_manual1.gif", _mark(i))
    items = find_items(tmp_path / "drive")
    assert [i.name for i in items] == ["21_training", "22_training", "23_training"]
    _assert_paired(items)


def test_images_without_a_mask_are_left_out_with_a_warning(tmp_path, capsys):
    _write_pool(tmp_path / "a", ["x", "y"], extra_images=["unlabelled"])
    assert [i.name for i in find_items(tmp_path / "a")] == ["x", "y"]
    assert "1 image(s) without a mask in masks/ left out: unlabelled" in capsys.readouterr().err
    _write_pool(tmp_path / "b", ["x"], extra_masks=["x_mask_old"])
    with pytest.raises(ValueError, match="masks without an image: x_mask_old .*such as '_mask'"):
        find_items(tmp_path / "b")
    (tmp_path / "d" / "images").mkdir(parents=True)
    _save(tmp_path / "d" / "images" / "x.png", _mark(1))
    (tmp_path / "d" / "annotations").mkdir()
    (tmp_path / "d" / "annotations" / "instances_train.json").write_text("{}")
    with pytest.raises(ValueError, match=r"no mask files found \(a COCO file\? train on it: "):
        find_items(tmp_path / "d")
    _write_pool(tmp_path / "c", [], extra_images=["p"], extra_masks=["q"])
    with pytest.raises(ValueError, match="images without a mask: p; masks without an image: q"):
        find_items(tmp_path / "c")


def test_pascal_voc_layout_split_by_its_lists(tmp_path, capsys):
    from pixelwise.data.layouts import evaluation_items

    for i, stem in enumerate(["2007_000032", "2007_000033", "2007_000039", "2007_000042"]):
        _save(tmp_path / "JPEGImages" / f"{stem}.png", _mark(i + 1))
        if i < 3:  # VOC has many more photos than segmentation masks
            _save(tmp_path / "SegmentationClass" / f"{stem}.png", _mark(i + 1))
    lists = tmp_path / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("2007_000032\n2007_000039\n")
    (lists / "val.txt").write_text("2007_000033\n")
    train, val = resolve_splits(tmp_path)
    assert [i.name for i in train] == ["2007_000032", "2007_000039"]
    assert [i.name for i in val] == ["2007_000033"]
    _assert_paired(train + val)
    assert "left out: 2007_000042" in capsys.readouterr().err
    items, where = evaluation_items(tmp_path)
    assert [i.name for i in items] == ["2007_000033"] and where.endswith("val.txt")
    (lists / "val.txt").write_text("2007_000033\n2007_000042\n")
    with pytest.raises(ValueError, match=r"val\.txt: 1 listed name\(s\) without an image and a "):
        resolve_splits(tmp_path)


def test_split_inside_image_and_mask_folders(tmp_path):
    # ADE20K: images/training, annotations/training, images/validation, annotations/validation
    for split, stems in (("training", ["a", "b"]), ("validation", ["c"])):
        for stem in stems:
            _save(tmp_path / "images" / split / f"ADE_{stem}.png", _mark(ord(stem)))
            _save(tmp_path / "annotations" / split / f"ADE_{stem}.png", _mark(ord(stem)))
    train, val = resolve_splits(tmp_path)
    assert [i.name for i in train] == ["ADE_a", "ADE_b"] and [i.name for i in val] == ["ADE_c"]
    _assert_paired(train + val)


def test_a_csv_lists_pairs_in_any_layout(tmp_path):
    from pixelwise.data.layouts import evaluation_items

    # Cityscapes-like: nested folders, names that no rule pairs
    for i, (city, stem) in enumerate([("aachen", "a_01"), ("bonn", "b_02"), ("bonn", "b_03")]):
        _save(tmp_path / "leftImg8bit" / city / f"{stem}_leftImg8bit.png", _mark(i + 1))
        _save(tmp_path / "gtFine" / city / f"{stem}_gtFine_labelIds.png", _mark(i + 1))
    rows = [
        f"leftImg8bit/{c}/{s}_leftImg8bit.png,{tmp_path}/gtFine/{c}/{s}_gtFine_labelIds.png,{split}"
        for c, s, split in [
            ("aachen", "a_01", "train"),
            ("bonn", "b_02", ""),
            ("bonn", "b_03", "Val"),
        ]
    ]
    listing = tmp_path / "pairs.csv"
    listing.write_text("image,mask,split\n" + "\n".join(rows) + "\n")
    train, val = resolve_splits(listing)
    assert [i.name for i in train] == ["a_01_leftImg8bit", "b_02_leftImg8bit"]
    assert [i.name for i in val] == ["b_03_leftImg8bit"]
    _assert_paired(train + val)
    assert [i.name for i in evaluation_items(listing)[0]] == ["b_03_leftImg8bit"]
    excel = tmp_path / "excel.csv"  # as a spreadsheet saves it: BOM, ';', spaces, capitals
    excel.write_bytes(
        b"\xef\xbb\xbfImage ; Mask ;Split\r\n" + "\r\n".join(rows).replace(",", ";").encode()
    )
    assert resolve_splits(excel) == (train, val)
    plain = tmp_path / "plain.csv"  # no split column: a pool, split by names or a fraction
    plain.write_text("image,mask\n" + "\n".join(r.rsplit(",", 1)[0] for r in rows) + "\n")
    assert len(find_items(plain)) == 3
    assert [i.name for i in resolve_splits(plain, ["a_01_leftImg8bit"])[1]] == ["a_01_leftImg8bit"]
    cases = [
        ("picture,label\nx.png,y.png\n", "needs the columns image and mask"),
        ("image,mask\nmissing.png,missing.png\n", r"bad\.csv, line 2: no file .*missing\.png"),
        ("image,mask\nonly.png\n", r"line 2: an image and a mask are needed, got \['only.png', ''\]"),
        ("image,mask\n" + rows[0].rsplit(",", 1)[0] + "\n" + rows[0].rsplit(",", 1)[0] + "\n",
         "line 3: image name 'a_01_leftImg8bit' is already on line 2"),
        ("image,mask,split\n" + rows[0].rsplit(",", 1)[0] + ",test\n", "split 'test' is not one of"),
        ("image,mask,split\nmissing.png,missing.png,train\n" + rows[0].rsplit(",", 1)[0]
         + ",test\n" + rows[1] + "\n",  # every bad row named, the good one not
         r"^2 rows cannot be used: .*bad\.csv, line 2: no file .*; .*bad\.csv, line 3: split 'test'[^;]*$"),
    ]  # fmt: skip
    for text, message in cases:
        (tmp_path / "bad.csv").write_text(text)
        with pytest.raises(ValueError, match=message):
            resolve_splits(tmp_path / "bad.csv")


def test_pad_collate_pads_with_ignore_and_stacks_equal_sizes_as_they_are():
    from torch.utils.data import default_collate

    from pixelwise.data.datasets import pad_collate

    small = (torch.ones(3, 4, 5), torch.ones(4, 5, dtype=torch.long), torch.full((4, 5), 2.0))
    large = (torch.ones(3, 6, 4), torch.zeros(6, 4, dtype=torch.long), torch.full((6, 4), 3.0))
    images, targets, weights = pad_collate([small, large])
    assert (
        images.shape == (2, 3, 6, 5) and targets.shape == (2, 6, 5) and weights.shape == (2, 6, 5)
    )
    assert (images[0, :, 4:] == 0).all() and (images[1, :, :, 4:] == 0).all()
    assert (targets[0, 4:] == 255).all() and (targets[1, :, 4:] == 255).all()
    assert (targets[0, :4] == 1).all() and (weights[0, 4:] == 0).all() and weights[1, 0, 0] == 3
    same = [small[:2], small[:2]]
    for a, b in zip(pad_collate(same), default_collate(same)):
        assert torch.equal(a, b)


def test_jpeg_masks_take_the_nearest_listed_value():
    raw = np.array([[0, 3, 120, 140], [250, 255, 11, 9]])
    encoding = MaskEncoding((0, 255), (10,))
    np.testing.assert_array_equal(
        encoding.apply(raw, 2, "m.jpg"), [[0, 0, 255, 1], [1, 1, 255, 255]]
    )
    with pytest.raises(ValueError, match="mask values"):  # a PNG's values are exact
        encoding.apply(raw, 2, "m.png")
    red, black, blue = 0xFF0000, 0x000000, 0x0000FF
    colours = np.array([[0xF00A05, 0x0B0000, 0x1010F0, 0x00000F]])  # JPEG-blurred colours
    encoding = MaskEncoding((black, red, blue))
    np.testing.assert_array_equal(encoding.apply(colours, 3, "c.JPEG"), [[1, 0, 2, 0]])


def test_soft_masks_take_the_nearest_listed_value_in_any_format():
    raw = np.array([[0, 3, 127, 128], [250, 255, 90, 200]])
    soft = MaskEncoding((0, 255), soft=True)
    np.testing.assert_array_equal(soft.apply(raw, 2, "m.png"), [[0, 0, 0, 1], [1, 1, 0, 1]])
    assert MaskEncoding.from_dict(soft.to_dict()) == soft  # a checkpoint keeps it
    from pixelwise.report import class_lines  # and pixelwise info says so

    told = class_lines(
        {"class_names": ["background", "foreground"], "mask_encoding": soft.to_dict()}
    )
    assert told[1] == "1 foreground (mask value 255)" and "the nearest value" in told[-1]
    assert MaskEncoding.from_dict({"values": [0, 255]}).soft is False  # older checkpoints
    with pytest.raises(ValueError, match="masks with soft edges need --soft-masks"):
        MaskEncoding((0, 255)).apply(raw, 2, "m.png")
    with pytest.raises(ValueError, match=r"need --instances\)$"):  # 3 and 4: no edge of 0 and 1
        MaskEncoding().apply(np.array([[0, 3, 4]]), 3, "m.png")


def test_a_fraction_leaves_an_item_on_each_side():
    from pixelwise.data.layouts import Item, split_pool

    pool = [Item(None, None, str(i)) for i in range(10)]
    for n, fraction, expected in (
        (2, 0.2, 1),
        (2, 0.9, 1),
        (3, 0.2, 1),
        (10, 0.3, 3),
        (10, 0.0, 0),
    ):
        train, val = split_pool(pool[:n], None, fraction, 0, "pool")
        assert (len(train), len(val)) == (n - expected, expected), (n, fraction)
    assert split_pool(pool[:1], None, 0.2, 0, "pool") == (pool[:1], [])


def _ctc(root, frames=("000", "001", "002")):
    """A Cell Tracking Challenge sequence 01 with two touching cells in every annotated frame."""
    import tifffile

    (root / "01").mkdir(parents=True)
    (root / "01_GT" / "SEG").mkdir(parents=True)
    labels = np.zeros((8, 10), np.uint16)
    labels[1:5, 1:5], labels[1:5, 5:9] = 1, 2
    for t in frames:
        tifffile.imwrite(root / "01" / f"t{t}.tif", np.zeros((8, 10), np.uint16))
        tifffile.imwrite(root / "01_GT" / "SEG" / f"man_seg{t}.tif", labels)


@pytest.mark.parametrize("layout", ["instances", "ctc"])
def test_instance_labels_are_not_trained_as_classes(tmp_path, layout):
    """Object numbers 0..2 in every image look like class ids; read as classes they would make
    a 3-class model of 'first object' and 'second object'."""
    from pixelwise.config import TrainConfig
    from pixelwise.semantic import build_datasets

    if layout == "ctc":
        _ctc(tmp_path)
    else:
        for i in range(3):
            _save(tmp_path / "images" / f"{i}.png", np.zeros((8, 8)))
            _save(tmp_path / "instances" / f"{i}.png", np.tile([0, 1, 2, 2], (8, 2)))
    with pytest.raises(ValueError, match="holds instance labels.*--instances boundary"):
        build_datasets(TrainConfig(data=str(tmp_path), crop=0))
    train, _, names, _ = build_datasets(
        TrainConfig(data=str(tmp_path), crop=0, instances="foreground")
    )
    assert len(names) == 2 and set(train[0][1].unique().tolist()) <= {0, 1}


def test_instance_models_read_label_images_in_the_semantic_layouts(tmp_path):
    """Mask R-CNN's data: label images in train/val folders and the Cell Tracking Challenge."""
    from pixelwise.detection import evaluation_instances, instance_splits

    for split, stems in (("train", "abc"), ("val", "de")):
        for s in stems:
            _save(tmp_path / "split" / split / "images" / f"{s}.png", np.zeros((6, 9)))
            _save(tmp_path / "split" / split / "instances" / f"{s}.png", np.ones((6, 9)))
    train, val, cats, spec = instance_splits(tmp_path / "split", None, 0.2, 0)
    assert [i.name for i in train] == list("abc") and [i.name for i in val] == list("de")
    assert all(i.label_image.parent.name == "instances" for i in train + val) and spec is None
    assert [i.image_id for i in train + val] == [1, 2, 3, 4, 5]  # unique over both splits
    assert (train[0].height, train[0].width) == (6, 9) and cats.names == ("object",)
    assert [i.name for i in evaluation_instances(tmp_path / "split", None)[0]] == list("de")
    _ctc(tmp_path / "ctc")
    train, val, _, _ = instance_splits(tmp_path / "ctc", ["01_t001"], 0.2, 0)
    assert [i.name for i in train] == ["01_t000", "01_t002"] and [i.name for i in val] == [
        "01_t001"
    ]
    assert val[0].label_image.name == "man_seg001.tif" and val[0].image.name == "t001.tif"
    scored = evaluation_instances(tmp_path / "ctc", ["01_t002"])[0]
    assert [i.name for i in scored] == ["01_t002"]


def test_a_folder_of_datasets_is_read_as_one(tmp_path, capsys):
    for part, stems in (("lab1", (1, 2)), ("lab2", (3,))):
        for s in stems:
            _save(tmp_path / part / "images" / f"{s}.png", _mark(s))
            _save(tmp_path / part / "masks" / f"{s}.png", _mark(s))
    (tmp_path / "notes").mkdir()  # not a dataset: left alone
    items = find_items(tmp_path)
    assert [i.name for i in items] == ["1", "2", "3"]
    _assert_paired(items)
    assert "2 datasets read as one (lab1: 2, lab2: 1)" in capsys.readouterr().err
    _save(tmp_path / "lab2" / "images" / "1.png", _mark(1))
    _save(tmp_path / "lab2" / "masks" / "1.png", _mark(1))
    with pytest.raises(ValueError, match="'1' is in both lab1/ and lab2/"):
        find_items(tmp_path)


def test_many_unlisted_mask_values_are_summed_up_not_listed(tmp_path):
    from pixelwise.config import TrainConfig
    from pixelwise.semantic import build_datasets

    for i in range(2):
        _save(tmp_path / "images" / f"{i}.png", np.zeros((8, 8)))
        _save(tmp_path / "masks" / f"{i}.png", (np.arange(64).reshape(8, 8) * 3) % 90 + 1)
    with pytest.raises(ValueError, match=r"30 values \(1\.\.88\).*--instances boundary") as err:
        build_datasets(TrainConfig(data=str(tmp_path), crop=0))
    assert "4,7,10" not in str(err.value)


@pytest.mark.parametrize(
    "options, foreground",
    [
        ({}, 1),  # read as background and foreground
        ({"class_names": ["sky", "ground"]}, 1),  # 255 was ignored: nothing to learn but sky
        ({"ignore_values": [255]}, None),  # said to be ignored: one class left, refused
        ({"mask_values": [255, 0]}, 0),  # the user's order stands
    ],
)
def test_black_and_white_masks_are_background_and_foreground(tmp_path, capsys, options, foreground):
    from pixelwise.compare import Method, compare
    from pixelwise.config import TrainConfig
    from pixelwise.semantic import build_datasets

    for i in range(3):
        _save(tmp_path / "images" / f"{i}.png", np.zeros((8, 8)))
        _save(tmp_path / "masks" / f"{i}.png", np.repeat([[0, 255]], 8, 0).repeat(4, 1))
    cfg = TrainConfig(data=str(tmp_path), crop=0, **options)
    if foreground is None:
        with pytest.raises(ValueError, match="1 class"):
            build_datasets(cfg)
        return
    _, val, names, _ = build_datasets(cfg)
    target = val[0][1]  # unaugmented
    assert len(names) == 2 and (target[:, 4:] == foreground).all() and (target[:, :4] != 255).all()
    if not options:
        assert (
            names == ["background", "foreground"]
            and "black-and-white masks" in capsys.readouterr().err
        )
        rows = compare([str(tmp_path)], [Method("otsu", classical="otsu")])[0]
        assert rows[0]["per_class_iou"][1] is not None  # foreground scored (it was ignored)


def test_evaluate_reads_black_and_white_masks_for_a_model_trained_on_class_ids(tmp_path):
    """A two-class model trained on masks of 0 and 1, scored on masks of 0 and 255: 255 is
    foreground there, not the ignore index (which left every foreground pixel unscored)."""
    from conftest import tiny_seg

    from pixelwise.checkpoint import save_checkpoint
    from pixelwise.evaluate import evaluate_checkpoint

    save_checkpoint(tmp_path / "ids.pt", tiny_seg())
    for i in range(2):
        _save(tmp_path / "bw" / "images" / f"{i}.png", np.zeros((8, 8)))
        _save(tmp_path / "bw" / "masks" / f"{i}.png", np.repeat([[0, 255]], 8, 0).repeat(4, 1))
    pixels = evaluate_checkpoint(tmp_path / "ids.pt", tmp_path / "bw")["per_class"]
    assert [c["pixels"] for c in pixels.values()] == [64, 64]


def test_black_and_white_rgb_masks_are_background_and_foreground_too(tmp_path):
    from pixelwise.config import TrainConfig
    from pixelwise.semantic import build_datasets

    (tmp_path / "masks").mkdir()
    for i in range(3):
        _save(tmp_path / "images" / f"{i}.png", np.zeros((8, 8)))
        grey = np.repeat([[0, 255]], 8, 0).repeat(4, 1).astype(np.uint8)
        Image.fromarray(np.dstack([grey] * 3)).save(tmp_path / "masks" / f"{i}.png")
    _, val, names, colours = build_datasets(TrainConfig(data=str(tmp_path), crop=0))
    assert names == ["background", "foreground"] and colours == [[0, 0, 0], [255, 255, 255]]
    assert (val[0][1][:, 4:] == 1).all() and (val[0][1][:, :4] == 0).all()


def test_normalization_streams_and_equals_the_stacked_statistics():
    from pixelwise.data.datasets import compute_normalization

    rng = np.random.default_rng(0)
    images = [
        (rng.random((h, w, 3)) * 255 * rng.random()).astype(np.uint8)
        for h, w in ((5, 7), (30, 2), (64, 48))
    ]
    stacked = np.concatenate([im.reshape(-1, 3).astype(np.float64) / 255 for im in images])
    norm = compute_normalization(iter(images))
    np.testing.assert_allclose(norm.mean, stacked.mean(0), rtol=1e-12)
    np.testing.assert_allclose(norm.std, stacked.std(0), rtol=1e-9)
    assert norm.scale == 255.0


def test_pairs_beyond_the_cache_share_are_read_again_alike(tmp_path, monkeypatch):
    """Decoded pairs fill at most CACHE_SHARE of the memory (a large dataset was held whole,
    targets as int64); the samples are the same either way."""
    from pixelwise.data import datasets

    for i in range(3):
        _save(tmp_path / "images" / f"{i}.png", _mark(i * 9))
        _save(tmp_path / "masks" / f"{i}.png", np.full((8, 8), i % 2))
    args = (find_pairs(tmp_path), 2, MaskEncoding(), Normalization([0.5], [0.25]))
    kw = {"crop": 6, "augment": True}
    cached = SegmentationDataset(*args, **kw)
    expected = [cached[i] for i in range(5)]
    assert len(cached._cache) == 3 and cached._cache[0][1].dtype == np.uint8
    assert cached.load(1)[1].dtype == np.int64 and expected[0][1].dtype == torch.int64
    monkeypatch.setattr(datasets, "CACHE_SHARE", 1e-12)  # room for nothing
    uncached = SegmentationDataset(*args, **kw)
    for (x, y), (a, b) in zip(expected, (uncached[i] for i in range(5))):
        assert torch.equal(x, a) and torch.equal(y, b)
    assert uncached._cache == {} and uncached._cached_bytes == 0


def test_cell_tracking_challenge_3d_sequences_train_slice_by_slice(tmp_path):
    """3D sequences: a 3D label stack gives one item per slice; a slice annotated in 2D
    (man_seg_TTT_ZZZ.tif) pairs with that slice of the 3D image (it stopped at 'no image
    t_000_001.tif')."""
    import tifffile

    (tmp_path / "01").mkdir()
    (tmp_path / "01_GT" / "SEG").mkdir(parents=True)
    for t in ("000", "001"):  # 5 slices, each marked by its value: 10 * (t + 1) + z
        stack = np.stack([np.full((6, 8), 10 * (int(t) + 1) + z, np.uint8) for z in range(5)])
        tifffile.imwrite(tmp_path / "01" / f"t{t}.tif", stack)
    labels = np.zeros((6, 8), np.uint16)
    labels[1:4, 1:4] = 5
    tifffile.imwrite(tmp_path / "01_GT" / "SEG" / "man_seg_000_002.tif", labels)
    tifffile.imwrite(tmp_path / "01_GT" / "SEG" / "man_seg001.tif", np.stack([labels] * 5))
    items = find_items(tmp_path)
    assert [i.name for i in items] == ["01_t000_z002"] + [f"01_t001_z{z:03d}" for z in range(5)]
    marks = [read_image(i.image, i.image_page)[0, 0, 0] for i in items]
    assert marks == [12, 20, 21, 22, 23, 24] and all(i.read_mask().shape == (6, 8) for i in items)
    ds = SegmentationDataset(
        items, 2, MaskEncoding(instances="foreground"), Normalization([0.0], [1.0])
    )
    assert [int(ds.load(k)[1].sum()) for k in range(6)] == [9] * 6


def _two_class_pairs(root, stems, colours=None, mask_name="{}.png", images="", masks=""):
    """Each image a bright square (class 1) and a grey rectangle (class 2); its mask holds the
    class ids, or ``colours[class]`` as RGB."""
    for i, stem in enumerate(stems):
        image, ids = np.full((24, 32, 3), 20, np.uint8), np.zeros((24, 32), np.uint8)
        image[2:12, 2 + i : 12 + i], ids[2:12, 2 + i : 12 + i] = 200, 1
        image[14:22, 20:30], ids[14:22, 20:30] = 120, 2
        mask = np.asarray(colours, np.uint8)[ids] if colours else ids
        _save(root / images / f"{stem}.jpg", image)
        _save(root / masks / mask_name.format(stem), mask)


def _class_ids(i):
    ids = np.zeros((24, 32), np.int64)
    ids[2:12, 2 + i : 12 + i], ids[14:22, 20:30] = 1, 2
    return ids


@pytest.mark.parametrize(
    "file, text",
    [
        ("labelmap.txt", "# label:color_rgb:parts:actions\nbackground:0,0,0::\ncat:250,50,83::\n"
         "dog:61,61,245::\n"),
        ("label_colors.txt", "0 0 0\tbackground\n250 50 83\tcat\n61 61 245\tdog\n"),
    ],
)  # fmt: skip
def test_class_names_and_colours_from_labelling_tools_files(tmp_path, file, text):
    """CVAT's Pascal VOC-style export (labelmap.txt, colour masks, ImageSets/.../default.txt),
    CamVid's label_colors.txt: the colours are the classes' stored values, in the file's order."""
    from pixelwise.config import TrainConfig
    from pixelwise.semantic import build_datasets

    colours = [(0, 0, 0), (250, 50, 83), (61, 61, 245)]
    stems = [f"frame_{i:03d}" for i in range(4)]
    _two_class_pairs(tmp_path, stems, colours, images="JPEGImages", masks="SegmentationClass")
    (tmp_path / "ImageSets" / "Segmentation").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Segmentation" / "default.txt").write_text("\n".join(stems))
    (tmp_path / file).write_text(text)
    from pixelwise.detection import instance_splits  # a class per colour: no object numbers

    with pytest.raises(ValueError, match="frame_000.png: a colour mask; instance models read"):
        instance_splits(tmp_path, None, 0.25, 0)
    info = read_dataset_info(tmp_path)
    assert info.class_names == ["background", "cat", "dog"] and info.colours == [
        list(c) for c in colours
    ]
    _, val, names, _ = build_datasets(TrainConfig(data=str(tmp_path), crop=0, val_stems=stems[1:2]))
    assert names == ["background", "cat", "dog"]
    assert torch.equal(val[0][1], torch.from_numpy(_class_ids(1)))


def test_a_bad_class_file_line_is_named(tmp_path):
    (tmp_path / "labelmap.txt").write_text("background:0,0,0::\ncat:250,50::\n")
    with pytest.raises(ValueError, match=r"labelmap\.txt, line 2: expected name:r,g,b::"):
        read_dataset_info(tmp_path)


def test_roboflow_masks_among_their_images_with_classes_csv(tmp_path):
    """Roboflow's semantic mask export: train/, valid/, test/, each holding a_jpg.rf.X.jpg +
    a_jpg.rf.X_mask.png (class ids) and _classes.csv (pixel value, class name)."""
    from pixelwise.config import TrainConfig
    from pixelwise.semantic import build_datasets

    for split, n in (("train", 3), ("valid", 2), ("test", 1)):
        stems = [f"p{i}_jpg.rf.{split}{i}" for i in range(n)]
        _two_class_pairs(tmp_path / split, stems, mask_name="{}_mask.png")
        (tmp_path / split / "_classes.csv").write_text(
            "Pixel Value, Class\n0, background\n2, dog\n1, cat\n"
        )
    train, val = resolve_splits(tmp_path)
    assert [i.name for i in train] == [f"p{i}_jpg.rf.train{i}" for i in range(3)]
    assert [i.name for i in val] == ["p0_jpg.rf.valid0", "p1_jpg.rf.valid1"]
    assert val[1].mask.name == "p1_jpg.rf.valid1_mask.png"
    assert read_dataset_info(tmp_path).class_names == ["background", "cat", "dog"]
    _, val_set, names, _ = build_datasets(TrainConfig(data=str(tmp_path), crop=0))
    assert names == ["background", "cat", "dog"]
    assert torch.equal(val_set[1][1], torch.from_numpy(_class_ids(1)))


def test_cityscapes_reads_its_19_classes_and_ignores_the_other_label_ids(tmp_path):
    """leftImg8bit/<split>/<city>/X_leftImg8bit.png + gtFine/<split>/<city>/X_gtFine_labelIds.png:
    label id 7 (road) is class 0, 26 (car) class 13, 0 (unlabeled) and 9 (parking) ignored."""
    from pixelwise.config import TrainConfig
    from pixelwise.semantic import build_datasets

    ids = np.zeros((16, 16), np.uint8)
    ids[8:, :], ids[2:6, 2:6], ids[8:, 12:] = 7, 26, 9
    for split, cities in (("train", ["aachen", "bonn"]), ("val", ["lindau"])):
        for k, city in enumerate(cities):
            name = f"{city}_000000_00001{k}"
            _save(tmp_path / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png", ids + k)
            _save(tmp_path / "gtFine" / split / city / f"{name}_gtFine_labelIds.png", ids)
            _save(tmp_path / "gtFine" / split / city / f"{name}_gtFine_color.png", _mark(k))
    _save(tmp_path / "leftImg8bit" / "test" / "berlin" / "berlin_0_0_leftImg8bit.png", _mark(1))
    info = read_dataset_info(tmp_path)
    assert len(info.class_names) == 19 and info.class_names[13] == "car"
    train, val = resolve_splits(tmp_path)
    assert [i.name for i in train] == ["aachen_000000_000010", "bonn_000000_000011"]
    assert [i.name for i in val] == ["lindau_000000_000010"]
    _, val_set, names, _ = build_datasets(TrainConfig(data=str(tmp_path), crop=0))
    expected = np.full((16, 16), 255)
    expected[8:, :12], expected[2:6, 2:6] = 0, 13
    assert names[0] == "road" and torch.equal(val_set[0][1], torch.from_numpy(expected))
    from pixelwise.detection import instance_splits  # label ids are no object numbers

    with pytest.raises(ValueError, match="Cityscapes' instance ids .* are not read for instance"):
        instance_splits(tmp_path, None, 0.2, 0)
    (tmp_path / "gtFine" / "val" / "lindau" / "lindau_000000_000010_gtFine_labelIds.png").unlink()
    with pytest.raises(ValueError, match="1 val image\\(s\\) without gtFine label ids"):
        resolve_splits(tmp_path)


def test_classes_that_do_not_fit_the_datas_own_are_refused(tmp_path):
    """--classes renames the classes classes.json names; another count is refused before the
    masks are read (it ended in 'mask values [2] are not class ids 0..1' on some file)."""
    from pixelwise.config import TrainConfig
    from pixelwise.semantic import build_datasets

    for i in range(3):
        _save(tmp_path / "images" / f"{i}.png", _mark(i))
        _save(tmp_path / "masks" / f"{i}.png", np.full((8, 8), i))
    (tmp_path / "classes.json").write_text(
        '{"classes": [{"id": 0, "name": "a"}, {"id": 1, "name": "b"}, {"id": 2, "name": "c"}]}'
    )
    with pytest.raises(ValueError, match="--classes names 2 classes, the data 3 \\(a, b, c\\)"):
        build_datasets(TrainConfig(data=str(tmp_path), crop=0, class_names=["x", "y"]))
    names = build_datasets(TrainConfig(data=str(tmp_path), crop=0, class_names=list("xyz")))[2]
    assert names == ["x", "y", "z"]
    with pytest.raises(ValueError, match="nowhere: no such file or folder"):
        find_items(tmp_path / "nowhere")


def test_macos_metadata_files_and_hidden_folders_are_not_images(tmp_path):
    """A folder copied from a Mac holds ``._photo.png`` beside each photo (AppleDouble metadata,
    not an image) and zips made there a ``__MACOSX`` folder of them; notebooks leave
    ``.ipynb_checkpoints``. None of them is an image of the data or an input to predict."""
    from pixelwise.data.io import list_images

    for i in range(3):
        _save(tmp_path / "images" / f"{i}.png", _mark(i))
        _save(tmp_path / "masks" / f"{i}.png", np.full((8, 8), i % 2))
        for junk in (f"images/._{i}.png", f"masks/._{i}.png", f"__MACOSX/images/._{i}.png"):
            (tmp_path / junk).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / junk).write_bytes(b"\x00\x05\x16\x07" + bytes(60))
    _save(tmp_path / "images" / ".ipynb_checkpoints" / "0-checkpoint.png", _mark(0))
    assert [i.name for i in find_items(tmp_path)] == ["0", "1", "2"]
    assert list_images([tmp_path / "images"]) == [
        tmp_path / "images" / f"{i}.png" for i in range(3)
    ]
    assert len(list_images([tmp_path])) == 6  # images/ and masks/, nothing of __MACOSX
    hidden_root = tmp_path / ".data"  # the folder given may itself be hidden
    _save(hidden_root / "a.png", _mark(1))
    assert list_images([hidden_root]) == [hidden_root / "a.png"]


def test_the_one_mask_folder_inside_annotations_is_the_masks(tmp_path):
    """Oxford-IIIT Pet: images/ and annotations/trimaps/ (beside annotations/xmls/ and lists);
    the trimaps' values 1 (pet), 2 (background), 3 (border) read with --mask-values 2,1
    --ignore-values 3."""
    from pixelwise.config import TrainConfig
    from pixelwise.semantic import read_data

    trimap = np.full((8, 8), 2, np.uint8)
    trimap[2:6, 2:6], trimap[2, 2:6] = 1, 3
    for i in range(3):
        _save(tmp_path / "images" / f"Abyssinian_{i}.png", _mark(i))
        _save(tmp_path / "annotations" / "trimaps" / f"Abyssinian_{i}.png", trimap)
    (tmp_path / "annotations" / "xmls").mkdir()
    (tmp_path / "annotations" / "xmls" / "Abyssinian_0.xml").write_text("<annotation/>")
    (tmp_path / "annotations" / "trainval.txt").write_text("Abyssinian_0 1 1 1\n")
    items = find_items(tmp_path)
    assert [i.mask.parent.name for i in items] == ["trimaps"] * 3
    cfg = TrainConfig(
        data=str(tmp_path), crop=0, mask_values=[2, 1], ignore_values=[3], val_fraction=0.34
    )
    _, train, val, names, encoding = read_data(cfg)
    expected = np.zeros((8, 8))
    expected[2:6, 2:6], expected[2, 2:6] = 1, 255
    assert names == ["class0", "class1"] and len(train + val) == 3
    assert np.array_equal(encoding.apply(val[0].read_mask(), 2, val[0].mask), expected)


def test_kaggle_dsb2018_layout_a_folder_per_image_with_a_mask_per_object(tmp_path):
    """stage1_train/<id>/images/<id>.png + stage1_train/<id>/masks/<hash>.png (one binary mask
    per nucleus, as Kaggle ships DSB2018): each image is an item of instance labels, object k the
    k-th mask in name order; scored by evaluate like the same labels in one image."""
    from pixelwise.data.coco import stored_size
    from pixelwise.data.layouts import as_instance_items, holds_instance_labels
    from pixelwise.evaluate_folders import evaluate_predictions

    rng = np.random.default_rng(0)
    truths = {}
    for i in range(3):
        stem = f"{i:02d}" * 8
        labels = np.zeros((12, 14), np.uint16)
        for k in range(1, 4):
            y, x = rng.integers(0, 8, 2)
            labels[y : y + 4, x : x + 5] = k  # may cover an earlier one: the later file wins
        _save(tmp_path / "stage1_train" / stem / "images" / f"{stem}.png", labels * 60)
        for k in np.unique(labels[labels > 0]):
            name = f"{rng.integers(1 << 30):08x}"
            _save(
                tmp_path / "stage1_train" / stem / "masks" / f"{k}{name}.png", (labels == k) * 255
            )
        truths[stem] = labels
        _save(tmp_path / "pred" / f"{stem}.png", labels)
    items = find_items(tmp_path / "stage1_train")
    assert [i.name for i in items] == sorted(truths) and all(i.mask.is_dir() for i in items)
    assert all(holds_instance_labels(i) for i in items)
    for item in items:
        found = item.read_mask()
        assert np.array_equal(found > 0, truths[item.name] > 0)
        assert np.array_equal(
            found[found > 0], np.unique(truths[item.name][found > 0], return_inverse=True)[1] + 1
        )
    assert stored_size(items[0].mask) == (12, 14)
    assert [i.height for i in as_instance_items(items)[0]] == [12] * 3
    scores = evaluate_predictions(tmp_path / "pred", tmp_path / "stage1_train")
    assert scores["objects"]["pq"] == 1.0 and scores["objects"]["dsb_mean_ap"] == 1.0
    from pixelwise.config import TrainConfig
    from pixelwise.semantic import build_datasets

    cfg = TrainConfig(data=str(tmp_path / "stage1_train"), crop=0, instances="boundary")
    train, val, names, _ = build_datasets(cfg)
    assert len(train.items) + len(val.items) == 3 and names[2] == "boundary"
    _save(tmp_path / "stage1_train" / stem / "masks" / "zz.png", np.zeros((5, 5)))
    with pytest.raises(ValueError, match="zz.png: 5 x 5 pixels, .* 14 x 12"):
        items[-1].read_mask()


def test_drive_trains_on_its_vessels_not_its_field_of_view(tmp_path):
    """DRIVE's training/ holds images/, 1st_manual/ (the vessels) and mask/ (the field of view,
    named 21_training_mask.gif): the vessels are the masks (mask/ was taken, and a model of the
    round field of view trained without a word)."""
    for i in range(21, 24):
        _save(tmp_path / "training" / "images" / f"{i}_training.png", _mark(i))
        _save(tmp_path / "training" / "1st_manual" / f"{i}_manual1.png", _mark(i))
        _save(tmp_path / "training" / "mask" / f"{i}_training_mask.png", np.full((8, 8), 255))
    items = find_items(tmp_path)
    assert [i.mask.parent.name for i in items] == ["1st_manual"] * 3
    _assert_paired(items)


def test_two_folders_one_named_as_masks_are_images_and_masks(tmp_path):
    """ISIC 2018 unpacks into ISIC2018_Task1-2_Training_Input/ (with a licence text) and
    ISIC2018_Task1_Training_GroundTruth/ (ISIC_0000000_segmentation.png); folders of other
    names (no word of masks, or both with one) are no dataset."""
    images, masks = "ISIC2018_Task1-2_Training_Input", "ISIC2018_Task1_Training_GroundTruth"
    for i in range(3):
        _save(tmp_path / "isic" / images / f"ISIC_{i:07d}.png", _mark(i))
        _save(tmp_path / "isic" / masks / f"ISIC_{i:07d}_segmentation.png", _mark(i))
        for pair in (("photos", "more"), ("masks_a", "masks_b")):
            for folder in pair:
                _save(tmp_path / "-".join(pair) / folder / f"{i}.png", _mark(i))
        _save(tmp_path / "gt" / "raw" / f"{i}.png", _mark(i))
        _save(tmp_path / "gt" / "GT" / f"{i}.png", _mark(i))
    (tmp_path / "isic" / images / "LICENSE.txt").write_text("CC-BY-NC")
    items = find_items(tmp_path / "isic")
    assert [i.name for i in items] == [f"ISIC_{i:07d}" for i in range(3)]
    _assert_paired(items)
    assert [i.mask.parent.name for i in find_items(tmp_path / "gt")] == ["GT"] * 3
    for image_folder, mask_folder in (("imgs", "gts"), ("input", "target"), ("fg", "alpha")):
        root = tmp_path / f"{image_folder}-{mask_folder}"  # imgs/ is an image folder's name too
        for i in range(2):
            _save(root / image_folder / f"{i}.png", _mark(i))
            _save(root / mask_folder / f"{i}.png", _mark(i))
        assert [i.mask.parent.name for i in find_items(root)] == [mask_folder] * 2
    for other in ("photos-more", "masks_a-masks_b"):
        with pytest.raises(ValueError, match="no dataset found"):
            find_items(tmp_path / other)


def test_isic_training_and_validation_folders_side_by_side_are_the_splits(tmp_path):
    """ISIC 2018's training and validation downloads unzipped into one folder: four folders,
    each named by its split, each split's pair told apart as above."""
    from pixelwise.data.layouts import evaluation_items

    values = iter(range(1, 100))
    for split, n in (("Training", 3), ("Validation", 2), ("Test", 1)):
        for v in [next(values) for _ in range(n)]:
            _save(tmp_path / f"ISIC2018_Task1-2_{split}_Input" / f"ISIC_{v:07d}.png", _mark(v))
            _save(
                tmp_path / f"ISIC2018_Task1_{split}_GroundTruth" / f"ISIC_{v:07d}_segmentation.png",
                _mark(v),
            )
    train, val = resolve_splits(tmp_path)
    assert [i.name for i in train] == ["ISIC_0000001", "ISIC_0000002", "ISIC_0000003"]
    assert [i.name for i in val] == ["ISIC_0000004", "ISIC_0000005"]
    _assert_paired(train + val)
    assert evaluation_items(tmp_path)[0] == val
    assert len(find_items(tmp_path)) == 6  # every labelled image, the test pair's too
    # a split's images without their masks are left out: the training pair is split instead
    for f in (tmp_path / "ISIC2018_Task1_Validation_GroundTruth").iterdir():
        f.unlink()
    train, val = resolve_splits(tmp_path, val_fraction=0.34)
    assert len(train) == 2 and len(val) == 1 and len(find_items(tmp_path)) == 4
    # a folder named by no split: not this layout
    _save(tmp_path / "extra" / "x.png", _mark(1))
    with pytest.raises(ValueError, match="no dataset found"):
        find_items(tmp_path)


def test_ignoring_a_value_suggests_the_others_as_the_classes(tmp_path):
    """ADE20K-style masks: 0 (unlabelled) ignored, the classes 1..3: the error names
    --mask-values 1-3, which then reads them as classes 0..2."""
    from pixelwise.config import TrainConfig
    from pixelwise.semantic import read_data

    for i in range(3):
        mask = np.zeros((8, 8), np.uint8)
        mask[2:, :3], mask[2:, 3:6], mask[2:, 6:] = 1, 2, 3
        _save(tmp_path / "images" / f"{i}.png", _mark(i))
        _save(tmp_path / "annotations" / f"{i}.png", mask)
    cfg = TrainConfig(data=str(tmp_path), crop=0, ignore_values=[0], val_fraction=0.34)
    with pytest.raises(
        ValueError, match="name the stored value of each class with --mask-values 1-3 "
    ):
        read_data(cfg)
    cfg.mask_values = [1, 2, 3]
    _, _, val, names, encoding = read_data(cfg)
    target = encoding.apply(val[0].read_mask(), 3, val[0].mask)
    assert len(names) == 3 and sorted(np.unique(target)) == [0, 1, 2, 255]


def test_percentile_normalisation_against_numpy_and_whole_image_bounds_for_crops(tmp_path):
    """Percentiles map to 0 and 1 as numpy computes them, over all channels; a bit-depth change
    or an offset gives the same input; a flat image gives zeros; a training crop is normalised by
    its whole image's percentiles, not its own."""
    from pixelwise.data.datasets import compute_normalization, to_tensor

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (20, 30, 3)).astype(np.uint8)
    norm = Normalization([0.0], [1.0], 255.0, [1.0, 99.8])
    lo, hi = np.percentile(image.astype(np.float64), [1.0, 99.8])
    assert np.allclose(norm.bounds(image), (lo, hi))
    np.testing.assert_allclose(norm.apply(image), (image - lo) / (hi - lo), rtol=1e-5, atol=1e-6)
    deeper = image.astype(np.uint16) * 16 + 100  # a 12-bit camera with a dark offset
    np.testing.assert_allclose(norm.apply(deeper), norm.apply(image), atol=1e-5)
    assert not norm.apply(np.full((4, 4, 1), 7, np.uint8)).any()
    # the statistics are those of the mapped images, which the checkpoint keeps with the option
    stats = compute_normalization([image, deeper], [1.0, 99.8])
    mapped = norm.apply(image)
    assert stats.percentiles == [1.0, 99.8] and stats.scale == 65535.0
    np.testing.assert_allclose(stats.mean, mapped.reshape(-1, 3).mean(0), atol=1e-5)
    np.testing.assert_allclose(stats.std, mapped.reshape(-1, 3).std(0), atol=1e-5)
    # crops: a bright corner stays bright, as in its image
    grey = np.zeros((20, 20), np.uint8)
    grey[:10, :10] = 200
    grey[10:, 10:] = rng.integers(0, 100, (10, 10))
    _write_pool(tmp_path, ["a"])
    Image.fromarray(grey).save(tmp_path / "images" / "a.png")
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "masks" / "a.png")
    norm = Normalization([0.0], [1.0], 255.0, [0.0, 100.0])
    ds = SegmentationDataset(find_pairs(tmp_path), 1, MaskEncoding(), norm, crop=8, seed=0)
    whole = to_tensor(grey[..., None], norm)[0].numpy()
    for epoch in range(6):
        ds.set_epoch(epoch)
        crop = ds[0][0][0].numpy()
        hits = [
            (y, x)
            for y in range(13)
            for x in range(13)
            if np.array_equal(whole[y : y + 8, x : x + 8], crop)
        ]
        assert hits, f"epoch {epoch}: the crop is not a window of the whole normalised image"


def test_percentile_models_see_appearance_changes_in_their_own_units(tmp_path):
    """With percentile normalisation the appearance changes (inversion, gamma, noise) act on the
    percentile-mapped image: a dark 8-bit slide (values 0..40) stays within 0..1 under every
    change, as an image normalised by its 0 and 100 percentiles must. (Mapped after the changes
    by its original percentiles, samples went above 1.)"""
    from pixelwise.data.transforms import Augmentation

    rng = np.random.default_rng(1)
    _write_pool(tmp_path, ["a"])
    dark = rng.integers(0, 41, (24, 24)).astype(np.uint8)
    Image.fromarray(dark).save(tmp_path / "images" / "a.png")
    Image.fromarray(np.zeros((24, 24), np.uint8)).save(tmp_path / "masks" / "a.png")
    norm = Normalization([0.0], [1.0], 255.0, [0.0, 100.0])
    ds = SegmentationDataset(
        find_pairs(tmp_path),
        1,
        MaskEncoding(),
        norm,
        crop=16,
        seed=0,
        augmentation=Augmentation(appearance="microscopy"),
    )
    means = []
    for epoch in range(40):
        ds.set_epoch(epoch)
        x = ds[0][0].numpy()
        assert x.min() >= -1e-5 and x.max() <= 1 + 1e-5, f"epoch {epoch}: {x.min()}..{x.max()}"
        means.append(x.mean())
    assert max(means) > 0.7 and min(means) < 0.4  # some samples were inverted, some not


@pytest.mark.parametrize("value", [0, 255])
def test_black_and_white_masks_of_one_colour_say_how_to_name_both_classes(tmp_path, value):
    """Every mask empty (or full): one stored value, so one class; the advice names both
    classes of black-and-white masks, and with it training reads two."""
    from pixelwise.config import TrainConfig
    from pixelwise.semantic import build_datasets

    for i in range(3):
        _save(tmp_path / "images" / f"{i}.png", np.zeros((8, 8)))
        _save(tmp_path / "masks" / f"{i}.png", np.full((8, 8), value))
    advice = "give --mask-values 0,255 --classes background,foreground"
    with pytest.raises(ValueError, match=f"only \\[{value}\\].*{advice}"):
        build_datasets(TrainConfig(data=str(tmp_path), crop=0))
    named = TrainConfig(data=str(tmp_path), crop=0, mask_values=[0, 255])
    _, _, names, _ = build_datasets(replace(named, class_names=["background", "foreground"]))
    assert names == ["background", "foreground"]
