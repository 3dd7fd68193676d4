"""pixelwise adapt: the bundled cut-out labels a folder of photos and is fine-tuned on them."""

import numpy as np
import pytest
from conftest import disc_and_square
from PIL import Image

from pixelwise import load_model
from pixelwise.adapt import AdaptOptions, adapt
from pixelwise.cli import main
from pixelwise.cutout import remove_background


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    (folder / "inner").mkdir()
    for i in range(11):
        rgb, _, _ = disc_and_square(96, 128, (48, 40 + i, 25), (20, 70, 80, 110), seed=i)
        Image.fromarray(rgb).save(folder / ("inner" if i == 0 else ".") / f"p{i}.jpg")
    return folder


def test_adapt_labels_with_the_cutout_and_fine_tunes_it(photos, tmp_path, capsys):
    (bad := tmp_path / "in" / "bad.jpg").parent.mkdir()
    bad.write_text("not an image")
    out = tmp_path / "run"
    args = ["adapt", str(photos), str(bad), "-o", str(out), "--epochs", "1", "--epoch-size", "4"]
    assert main(args + ["--crop", "64", "--no-progress"]) == 1  # the bad file, listed
    captured = capsys.readouterr()
    assert f"{bad}: " in captured.err and "labelled 11 photos" in captured.out
    assert "--box-checkpoint foreground-box" in captured.out  # the bundled pair, again
    # each photo is copied as it is, under its path in the folder, with its cut-out as mask
    image, mask = (
        out / "data" / "images" / "inner__p0.jpg",
        out / "data" / "masks" / "inner__p0.png",
    )
    assert image.read_bytes() == (photos / "inner" / "p0.jpg").read_bytes()
    cut = np.asarray(remove_background(photos / "inner" / "p0.jpg", mask_only=True)) > 127
    np.testing.assert_array_equal(np.asarray(Image.open(mask)), np.where(cut, 255, 0))
    assert len(list((out / "data" / "masks").iterdir())) == 11
    adapted, bundled = load_model(out / "last.pt"), load_model("foreground")
    assert adapted.arch_kwargs == bundled.arch_kwargs and adapted.norm == bundled.norm
    assert adapted.input_scale == bundled.input_scale


def test_adapt_refuses_too_few_photos_and_other_models(photos, tmp_path):
    few = [str(photos / f"p{i}.jpg") for i in range(1, 4)]
    with pytest.raises(ValueError, match="3 photo\\(s\\) labelled; adapt needs at least 10"):
        adapt(few, tmp_path / "few", options=AdaptOptions(epochs=1), progress=False)
    (tmp_path / "bad.jpg").write_bytes(b"not a photo")  # why so few: the failures are named
    with pytest.raises(ValueError, match="3 photo.* labelled, 1 failed \\(first: .*bad.jpg: "):
        adapt([*few, str(tmp_path / "bad.jpg")], tmp_path / "few2", progress=False)
    with pytest.raises(ValueError, match="foreground-box: adapt needs a whole-photo foreground"):
        adapt(few, tmp_path / "box", "foreground-box", progress=False)
    with pytest.raises(ValueError, match="m.onnx: adapt fine-tunes a .pt checkpoint"):
        adapt(few, tmp_path / "onnx", tmp_path / "m.onnx", progress=False)
    with pytest.raises(ValueError, match="--epochs 0: must be at least 1"):  # before labelling
        adapt(few, tmp_path / "zero", options=AdaptOptions(epochs=0), progress=False)
    assert not (tmp_path / "zero").exists()
    (tmp_path / "again" / "data").mkdir(parents=True)
    with pytest.raises(ValueError, match="again/data exists \\(an earlier adapt\\)"):
        adapt(few, tmp_path / "again", progress=False)


def test_a_sample_of_the_photos_is_labelled_the_same_one_each_time(photos, tmp_path):
    """pseudo_label(sample=N): N of the photos, drawn with the seed (the same N again with the
    same seed, others with another); adapt --sample takes no fewer than adapt needs."""
    from pixelwise.adapt import pseudo_label

    seg = load_model("foreground")
    drawn = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        result = pseudo_label([str(photos)], tmp_path / name, seg, None, False, sample=3, seed=seed)
        drawn[name] = sorted(p.name for p in (tmp_path / name / "masks").iterdir())
        assert len(result.written) == 3 and len(drawn[name]) == 3
    assert drawn["a"] == drawn["b"] and drawn["a"] != drawn["c"]
    with pytest.raises(SystemExit):  # fewer than adapt needs
        main(["adapt", str(photos), "-o", str(tmp_path / "few"), "--sample", "9"])
