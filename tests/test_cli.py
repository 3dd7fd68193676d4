"""The command line generated from the option table: one declaration per option, old spellings
still accepted with a warning, friendly messages for missing extras."""

import argparse
import dataclasses

import pytest

from pixelwise.cli import build_parser, main, missing_extra
from pixelwise.config import SHARED, TrainConfig, field_options, from_args


def parse(*argv):
    return build_parser().parse_args(list(argv))


def test_train_options_are_the_config_fields():
    args = parse(
        "train",
        "DATA",
        "--out",
        "o",
        "--zoom",
        "0.3,1",
        "--val-stems",
        "25-27",
        "--no-batch-norm",
        "--classes",
        "a,b",
        "--crop",
        "0",
    )
    cfg = from_args(TrainConfig, args)
    assert (
        cfg.zoom == [0.3, 1.0] and cfg.val_stems == ["25", "26", "27"] and cfg.batch_norm is False
    )
    assert cfg.class_names == ["a", "b"] and cfg.crop == 0 and cfg.data == "DATA"
    defaults = from_args(TrainConfig, parse("train", "DATA", "--out", "o"))
    for f in dataclasses.fields(TrainConfig):  # every default comes from the one declaration
        if f.name not in ("data", "out"):
            assert getattr(defaults, f.name) == f.default, f.name
    assert {name for name, _ in field_options(TrainConfig)} == {
        f.name for f in dataclasses.fields(TrainConfig)
    } - {"momentum", "overlays"}


def test_choices_come_from_the_constants():
    from pixelwise.constants import LOSSES, PRECISIONS

    with pytest.raises(SystemExit):
        parse("train", "D", "--out", "o", "--loss", "hinge")
    assert SHARED["precision"].choices == PRECISIONS
    assert parse("train", "D", "--out", "o", "--loss", LOSSES[-1]).loss == LOSSES[-1]


@pytest.mark.parametrize(
    "argv, dest, value, old",
    [
        (["segment", "x.png", "--model", "m.pt"], "checkpoint", "m.pt", "--model"),
        (["remove-bg", "x.png", "-o", "o", "--model", "m.pt"], "checkpoint", "m.pt", "--model"),
        (["serve", "--workers", "3"], "threads", 3, "--workers"),
        (["evaluate", "c.pt", "d", "--min-size", "10"], "min_object_size", 10, "--min-size"),
        (["segment", "x.png", "--min-size", "10"], "min_object_size", 10, "--min-size"),
    ],
)
def test_old_spellings_still_work_with_a_warning(argv, dest, value, old, capsys):
    assert getattr(parse(*argv), dest) == value
    assert f"{old} is deprecated" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, dest, value",
    [
        (["segment", "x.png", "--checkpoint", "m.pt"], "checkpoint", "m.pt"),
        (["segment", "x.png"], "checkpoint", "nuclei"),
        (["remove-bg", "x.png", "-o", "o"], "checkpoint", None),
        (["serve"], "threads", 2),
        (["evaluate", "c.pt", "d", "--device", "cpu"], "device", "cpu"),
        (["evaluate", "c.pt", "d", "--min-object-size", "5"], "min_object_size", 5),
        (["predict", "c.pt", "x", "--out", "o"], "score_threshold", 0.5),
    ],
)
def test_new_names_and_defaults(argv, dest, value, capsys):
    assert getattr(parse(*argv), dest) == value
    assert "deprecated" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "D"],
        ["predict", "c.pt", "x"],
        ["segment", "x"],
        ["remove-bg", "x"],
        ["adapt", "x"],
        ["compare", "D", "--methods", "otsu"],
        ["demo"],
    ],
)
def test_every_output_folder_is_dash_o_or_out(argv):  # train and adapt require one
    assert parse(*argv, "-o", "o").out == "o" == parse(*argv, "--out", "o").out


@pytest.mark.parametrize(
    "argv, out",
    [
        (["predict", "c.pt", "x"], "predict-output"),
        (["segment", "x"], "segment-output"),
        (["remove-bg", "x"], "remove-bg-output"),  # the design's first journey: remove-bg photo.jpg
        (["compare", "D", "--methods", "otsu"], "compare-output"),
        (["demo"], "demo-output"),
    ],
)
def test_output_folders_have_a_default_where_nothing_is_trained(argv, out):
    assert parse(*argv).out == out


def test_every_command_has_help(capsys):
    for command in (
        "train",
        "predict",
        "evaluate",
        "segment",
        "remove-bg",
        "serve",
        "compare",
        "export",
        "calibrate",
        "models",
        "demo",
    ):
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0
        assert "usage: pixelwise " + command in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, said",
    [
        (["trian", "data"], "pixelwise: error: no command 'trian' (did you mean train?)"),
        (["frobnicate"], "pixelwise: error: no command 'frobnicate' (the commands: demo, train,"),
        (
            ["predict", "m.pt", "a.png", "--ouput", "o"],
            "pixelwise predict: error: unrecognized arguments: --ouput o (did you mean --out?)",
        ),
        (
            ["segment", "m.pt", "a.png", "--ovrlap=3"],
            "pixelwise segment: error: unrecognized arguments: --ovrlap=3 (did you mean --overlap?)",
        ),
        (
            ["remove-bg", "a.png", "--zzz"],
            "pixelwise remove-bg: error: unrecognized arguments: --zzz\n",
        ),
        (  # argparse alone would write into ./ut and take "results" for an input
            ["predict", "m.pt", "a.png", "-out", "results"],
            "pixelwise predict: error: -out: did you mean --out? (with one dash it reads as -o ut)",
        ),
        (
            ["train", "d", "-epochs=3"],
            "pixelwise train: error: -epochs=3: did you mean --epochs=3?\n",
        ),
    ],
)
def test_a_mistyped_command_or_option_is_named_with_the_one_meant(argv, said, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and said in capsys.readouterr().err


def test_missing_extra_is_one_friendly_line(monkeypatch, capsys):
    import pixelwise.cli as cli

    def serve_without_fastapi(args: argparse.Namespace) -> int:
        raise ModuleNotFoundError("No module named 'fastapi'", name="fastapi")

    monkeypatch.setitem(cli.HANDLERS, "serve", serve_without_fastapi)
    assert main(["serve"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "pixelwise serve: error: fastapi is not installed: pip install 'pixelwise[serve]'"
    )
    assert missing_extra(ModuleNotFoundError("x", name="numpy")) is None


def test_predict_scale_resizes_what_the_network_sees(tmp_path, monkeypatch, capsys):
    """predict --scale F: the mask that a model running at F gives, at the image's own size;
    out of range is one error line; a slide (read region by region) is resized region by
    region: the mask of the image predicted whole at F with the same tiles."""
    import numpy as np
    import torch
    from conftest import tiny_seg
    from PIL import Image

    from pixelwise.checkpoint import save_checkpoint
    from pixelwise.inference import predict

    torch.manual_seed(0)
    seg = tiny_seg()
    save_checkpoint(tmp_path / "model.pt", seg)
    image = np.random.default_rng(0).integers(0, 256, (96, 80, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "a.png")
    argv = ["predict", str(tmp_path / "model.pt"), str(tmp_path / "a.png"), "--no-progress"]
    argv += ["--precision", "fp32", "--runtime", "torch", "--out", str(tmp_path / "out")]
    assert main([*argv, "--scale", "0.5"]) == 0
    mask = np.asarray(Image.open(tmp_path / "out" / "masks" / "a.png"))
    expected = predict(dataclasses.replace(seg, input_scale=0.5), image, "fp32")
    assert mask.shape == (96, 80)
    np.testing.assert_array_equal(mask, expected)
    assert main([*argv, "--scale", "0"]) == 2
    assert "--scale must be 0.05 to 4, got 0" in capsys.readouterr().err
    monkeypatch.setenv("PIXELWISE_MAX_PIXELS", "5000")  # a.tif is read region by region
    import tifffile

    tifffile.imwrite(tmp_path / "a.tif", image, tile=(32, 32), photometric="rgb")
    argv[2] = str(tmp_path / "a.tif")
    assert main([*argv, "--scale", "0.5", "--tile", "32", "--overlap", "4"]) == 0
    mask = tifffile.imread(tmp_path / "out" / "masks" / "a.tif")
    expected = predict(dataclasses.replace(seg, input_scale=0.5), image, "fp32", tile=32, overlap=4)
    assert (mask == expected).mean() > 0.999


def test_a_command_on_a_unet_does_not_import_torchvision(tmp_path):
    """torchvision's import pulls in torch._dynamo: 1.2 s of every command's start on a 2-core
    CPU. The bundled U-Nets need none of it, so `remove-bg` and `predict` with them must not
    import it (Mask R-CNN and ResNet encoders do, when built)."""
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)).save(photo)
    code = (
        "import sys; from pixelwise.cli import main; "
        f"rc = main(['remove-bg', {str(photo)!r}, '-o', {str(tmp_path / 'cut.png')!r}, "
        "'--no-progress']); print(rc, 'torchvision' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split()[-2:] == ["0", "False"], done.stderr[-2000:]
