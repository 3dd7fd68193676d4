"""Every bad input, option and client gets a clear refusal, never a wrong result.

One row per case: what is run, the exit status (CLI), HTTP status (server) or exception
(Python API) expected, and a fragment of the one-line message. A new case is one line in a
table; the helpers at the top build the small files the rows need.
"""

import io
import os
import re
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import BrightIsForeground, animated_png, tiny_seg
from PIL import Image

import pixelwise
from pixelwise.checkpoint import save_checkpoint
from pixelwise.cli import main
from pixelwise.cutout import remove_background
from pixelwise.data.encoding import Normalization
from pixelwise.data.write import atomic_write_bytes
from pixelwise.inference import predict_probabilities
from pixelwise.models import create_model
from pixelwise.segmenter import Segmenter

# ---------------------------------------------------------------- files the rows use


class Slow(BrightIsForeground):
    def forward(self, x):
        time.sleep(1.0)
        return super().forward(x)


def photo(h=48, w=64, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 60, (h, w, 3)).astype(np.uint8)
    image[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 220
    return image


def dataset(root: Path, mask_values=(0, 255), n=6, size=32, stray=None, broken=()) -> Path:
    """images/ + masks/ pairs: a bright square marked with the second mask value; the files
    ``broken`` names (relative to ``root``) are not images."""
    for sub in ("train/images", "train/masks", "val/images", "val/masks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        split = "val" if i < 2 else "train"
        image = photo(size, size, i)
        inside = image[..., 0] > 100
        if np.ndim(mask_values[0]):  # colours: an RGB mask
            inside = inside[..., None]
        mask = np.where(inside, mask_values[1], mask_values[0]).astype(np.uint8)
        if stray is not None and i == n - 1:
            mask[0, 0] = stray
        Image.fromarray(image).save(root / split / "images" / f"{i}.png")
        Image.fromarray(mask).save(root / split / "masks" / f"{i}.png")
    for name in broken:
        (root / name).write_bytes(b"\x89PNG broken")
    return root


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("bad")
    ckpt = root / "model.pt"
    save_checkpoint(ckpt, tiny_seg())
    good = root / "images"
    good.mkdir()
    Image.fromarray(photo()).save(good / "a.png")
    Image.fromarray(photo(seed=1)).save(good / "a.jpg")  # same stem, another format
    pages = root / "pages"
    pages.mkdir()
    frames = [Image.fromarray(photo(seed=s)) for s in range(3)]
    frames[0].save(pages / "stack.tif", save_all=True, append_images=frames[1:])
    frames[0].save(pages / "anim.gif", save_all=True, append_images=frames[1:])
    Image.fromarray(photo(2, 600)).save(pages / "thin.png")  # 1 pixel high at 320 px
    (root / "empty").mkdir()
    d1, d2 = root / "d1", root / "d2"
    for d, s in ((d1, 2), (d2, 3)):
        d.mkdir()
        Image.fromarray(photo(seed=s)).save(d / "x.png")
    ckpts = {}
    for name, change in (
        ("no_arch", lambda c: c.pop("arch")),
        ("many_classes", lambda c: c.update(class_names=[f"c{i}" for i in range(300)])),
        ("wrong_weights", lambda c: c.update(arch_kwargs=c["arch_kwargs"] | {"base_width": 8})),
    ):
        c = torch.load(ckpt, weights_only=True)
        change(c)
        torch.save(c, root / f"{name}.pt")
        ckpts[name] = root / f"{name}.pt"
    torch.save(
        {"format": "pixelwise", "arch": Slow()}, root / "pickled.pt"
    )  # a module: code, not data
    return {
        "root": root,
        "ckpt": ckpt,
        "good": good,
        "pages": pages,
        "d1": d1,
        "d2": d2,
        **ckpts,
        "pickled": root / "pickled.pt",
        "bw": dataset(root / "bw"),
        "stray": dataset(root / "stray", (0, 1), stray=7),
        "badval": dataset(root / "badval", (0, 1), broken=["val/masks/0.png"]),
        "badimages": dataset(
            root / "badimages", (0, 1), broken=["val/images/0.png", "val/images/1.png"]
        ),
        "badmasks": dataset(
            root / "badmasks", (0, 1), broken=["val/masks/0.png", "val/masks/1.png"]
        ),
        "small": dataset(root / "small", (0, 1), size=24),
        "colour": dataset(root / "colour", ((0, 0, 0), (255, 0, 0))),
    }


# ---------------------------------------------------------------- the command line

TRAIN = [
    "--epochs",
    "1",
    "--batch-size",
    "2",
    "--crop",
    "16",
    "--depth",
    "2",
    "--base-width",
    "4",
    "--no-progress",
]

CLI_CASES = [
    # (id, argv with {placeholders}, exit status, message fragment)
    (
        "an output folder that is a file",
        ["predict", "{ckpt}", "{good}/a.png", "--out", "{ckpt}"],
        2,
        "model.pt: a file is in the way of a folder of that name",
    ),
    (
        "same stem twice",
        ["predict", "{ckpt}", "{good}/a.png", "{good}/a.jpg", "--out", "{out}"],
        2,
        "would all be written to a.png",
    ),
    (
        "same stem twice, cut out as WebP",
        ["remove-bg", "{good}/a.png", "{good}/a.jpg", "-o", "{out}", "--format", "webp"],
        2,
        "would all be written to a.webp",
    ),
    (
        "same name in two folders",
        ["predict", "{ckpt}", "{d1}/x.png", "{d2}/x.png", "--out", "{out}"],
        2,
        "would all be written to x.png",
    ),
    (
        "empty input folder",
        ["predict", "{ckpt}", "{root}/empty", "--out", "{out}"],
        2,
        "no image files in",
    ),
    (
        "multi-page TIFF for a cut-out",  # predict and segment take it page by page
        ["remove-bg", "{pages}/stack.tif", "-o", "{out}", "--checkpoint", "{ckpt}"],
        1,
        "stack.tif: has 3 pages; this reads one image per file",
    ),
    (
        "a TIFF stack for one COCO file",
        ["segment", "{pages}/stack.tif", "--checkpoint", "{ckpt}", "-o", "{out}"]
        + ["--object-class", "1", "--coco", "{out}/objects.json"],
        2,
        "stack.tif: a TIFF stack; a COCO file names one image per file",
    ),
    (
        "animated GIF to predict (remove-bg cuts it out frame by frame)",
        ["predict", "{ckpt}", "{pages}/anim.gif", "-o", "{out}"],
        1,
        "has 3 frames",
    ),
    (
        "a photo too thin for GrabCut's central box",
        ["remove-bg", "{pages}/thin.png", "-o", "{out}", "--method", "grabcut"],
        1,
        "thin.png: method grabcut on the photo at its working size: GrabCut's central box needs at least 3 x 3",
    ),
    (
        "more class names than mask values",  # trained a class no pixel could hold
        ["train", "{bw}", "--out", "{out}", "--mask-values", "0,255", "--classes", "a,b,c", *TRAIN],
        2,
        "--classes names 3 classes and --mask-values lists 2 values",
    ),
    (
        "a value both a class and ignored",
        [
            "train",
            "{bw}",
            "--out",
            "{out}",
            "--mask-values",
            "0,255",
            "--ignore-values",
            "255",
            *TRAIN,
        ],
        2,
        "--ignore-values [255]: listed in --mask-values too",
    ),
    (
        "a class named twice",
        ["train", "{bw}", "--out", "{out}", "--classes", "a,a", *TRAIN],
        2,
        "--classes a,a: names a class twice",
    ),
    (
        "an object class the model lacks",  # was an IndexError traceback
        ["evaluate", "{ckpt}", "{bw}", "--object-class", "5"],
        2,
        "--object-class 5: the model's classes are 0 background, 1 foreground",
    ),
    (
        "two unreadable images",  # evaluate stopped at the first, naming it alone
        ["evaluate", "{ckpt}", "{badimages}"],
        2,
        "2 pairs cannot be used: {badimages}/val/images/0.png, {badimages}/val/images/1.png: not",
    ),
    (
        "two unreadable images to compare",  # compare too stopped at the first
        ["compare", "{badimages}", "--methods", "otsu", "--out", "{out}"],
        2,
        "2 pairs cannot be used: {badimages}/val/images/0.png, {badimages}/val/images/1.png: not",
    ),
    (
        "two unreadable masks",  # read for their values (black and white?) before scoring
        ["evaluate", "{ckpt}", "{badmasks}"],
        2,
        "2 masks cannot be used: {badmasks}/val/masks/0.png, {badmasks}/val/masks/1.png: not",
    ),
    (
        "a device this machine lacks",  # was a RuntimeError traceback from torch
        ["train", "{bw}", "--out", "{out}", "--device", "cuda:7", *TRAIN],
        2,
        "--device cuda:7: this machine has",
    ),
    (
        "no device at all",
        ["train", "{bw}", "--out", "{out}", "--device", "tpu", *TRAIN],
        2,
        "--device tpu: not a device (auto, cpu, cuda, cuda:1, mps)",
    ),
    (
        "255 said to be ignored: one class left",  # without the option: black and white
        ["train", "{bw}", "--out", "{out}", "--ignore-values", "255", *TRAIN],
        2,
        "--mask-values 0,255",
    ),
    (
        "colour masks without their colours",
        ["train", "{colour}", "--out", "{out}", *TRAIN],
        2,
        "--mask-values '#000000,#ff0000'",
    ),
    (
        "a colour no class has",
        ["train", "{colour}", "--out", "{out}", *TRAIN, "--mask-values", "#000000,#00ff00"],
        2,
        "colours #ff0000 are not among the classes' colours (#000000, #00ff00",
    ),
    (
        "a stray mask value",
        ["train", "{stray}", "--out", "{out}", *TRAIN],
        2,
        "--mask-values 0,1,7",
    ),
    (
        "one class name",
        ["train", "{stray}", "--out", "{out}", "--classes", "only", *TRAIN],
        2,
        "a model needs at least 2",
    ),
    (
        "bad validation mask, before training",
        ["train", "{badval}", "--out", "{out}", *TRAIN],
        2,
        "badval/val/masks/0.png",
    ),
    (
        "batch size 0",
        ["train", "{bw}", "--out", "{out}", *TRAIN, "--batch-size", "0"],
        2,
        "--batch-size 0: must be at least 1",
    ),
    (
        "zero epochs",
        ["train", "{bw}", "--out", "{out}", *TRAIN, "--epochs", "0"],
        2,
        "--epochs 0: must be at least 1",
    ),
    (
        "crop larger than every image",
        ["train", "{small}", "--out", "{out}", *TRAIN, "--crop", "4096"],
        2,
        "--crop 4096 is larger than every training image",
    ),
    (
        "depth 12",
        ["train", "{small}", "--out", "{out}", *TRAIN, "--depth", "12"],
        2,
        "--depth 12: must be between 1",
    ),
    (
        "a network too large",
        ["train", "{small}", "--out", "{out}", *TRAIN, "--depth", "6", "--base-width", "256"],
        2,
        "M parameters",
    ),
    (
        "checkpoint without arch",
        ["predict", "{no_arch}", "{good}/a.png", "--out", "{out}"],
        2,
        "damaged checkpoint, missing arch",
    ),
    (
        "300 class names, 2 outputs",
        ["predict", "{many_classes}", "{good}/a.png", "--out", "{out}"],
        2,
        "300 class names for a network with 2 outputs",
    ),
    (
        "weights that do not fit",
        ["predict", "{wrong_weights}", "{good}/a.png", "--out", "{out}"],
        2,
        "its weights do not fit its unet network",
    ),
    (
        "a pickle with objects",
        ["predict", "{pickled}", "{good}/a.png", "--out", "{out}"],
        2,
        "which are never loaded",
    ),
    (
        "a cut-out named .bmp",
        ["remove-bg", "{good}/a.png", "-o", "{out}/cut.bmp", "--method", "grabcut"],
        2,
        "cut.bmp: cut-outs are written as PNG, WebP, JPEG or TIFF",
    ),
    (
        "an export folder that is a file",
        ["export", "{ckpt}", "--onnx", "{good}/a.png/model.onnx"],
        2,
        "a.png: a file is in the way of a folder of that name",
    ),
    (
        "calibration data that is not there",
        ["calibrate", "{ckpt}", "{out}/no-such-data"],
        2,
        "no-such-data",
    ),
    (
        "calibrating a bundled model in place",
        ["calibrate", "nuclei", "{out}"],
        2,
        "nuclei: a bundled model is not changed in place; give --out",
    ),
    (
        "a photo where the checkpoint goes",
        ["predict", "{good}/a.jpg", "{good}/a.png", "--out", "{out}"],
        2,
        "a.jpg: not a PyTorch checkpoint file",
    ),
    (
        "a photo alone, no checkpoint",
        ["predict", "{good}/a.png"],
        2,
        "a.png is an input: give a checkpoint before it (a .pt file or a bundled model: nuclei",
    ),
    (
        "a tile no larger than twice the overlap, refused before any file",
        ["predict", "{ckpt}", "{good}/a.png", "--out", "{out}", "--tile", "64"],
        2,
        "--tile 64 must be larger than twice --overlap 64",
    ),
    (
        "a negative overlap",
        [
            "segment",
            "{good}/a.png",
            "--checkpoint",
            "{ckpt}",
            "--out",
            "{out}",
            "--overlap",
            "-1",
            "--object-class",
            "1",
        ],
        2,
        "--overlap must be 0 or more",
    ),
    (
        "an object class for a model that makes its own objects",
        ["segment", "nuclei", "{good}/a.png", "-o", "{out}", "--object-class", "1"],
        2,
        "--object-class 1: this model makes its own objects (trained with --instances)",
    ),
    (  # written as ONNX under a name that every loader would read as a checkpoint
        "export to a .txt",
        ["export", "{ckpt}", "--onnx", "{out}.txt"],
        2,
        ".txt: give a .onnx file name",
    ),
    (  # the error used to name the hidden temporary file
        "export into a folder",
        ["export", "{ckpt}", "--onnx", "{root}"],
        2,
        "give a .onnx file name",
    ),
    (
        "calibrate into a folder",
        ["calibrate", "{ckpt}", "{d1}", "--out", "{root}"],
        2,
        "give a .pt or .pth file name",
    ),
    (
        "evaluate --json a folder",
        ["evaluate", "{ckpt}", "{d1}", "--json", "{root}"],
        2,
        "--json {root}: is a folder",
    ),
    (
        "bad PIXELWISE_MAX_PIXELS",
        ["predict", "{ckpt}", "{good}/a.png", "--out", "{out}", "env=lots"],
        2,
        "PIXELWISE_MAX_PIXELS must be a positive number",
    ),
]


@pytest.mark.parametrize(
    "argv, status, fragment", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES]
)
def test_cli_refuses(argv, status, fragment, files, tmp_path, capsys, monkeypatch):
    names = {k: str(v) for k, v in files.items()} | {"out": str(tmp_path / "out")}
    if argv[-1].startswith("env="):
        monkeypatch.setenv("PIXELWISE_MAX_PIXELS", argv.pop()[4:])
    assert main([a.format(**names) for a in argv]) == status
    err = capsys.readouterr().err
    assert fragment.format(**names) in err, err
    assert "weights_only" not in err and "Traceback" not in err
    if argv[0] == "train" and status == 2:
        assert not (tmp_path / "out" / "last.pt").exists()  # refused before the first step


def test_mask_values_take_integers_and_colours(capsys):
    from pixelwise.config import value_list

    assert value_list("0,255") == [0, 255]
    assert value_list("#000000, #ff0000,7") == [0, 0xFF0000, 7]
    assert value_list("1-150") == list(range(1, 151))  # ADE20K's classes, its 0 ignored
    assert value_list("0, 3-5,9") == [0, 3, 4, 5, 9]
    for bad in ("#00ff0", "5-3", "1-x"):
        with pytest.raises(SystemExit):
            main(["train", "data", "--out", "o", "--mask-values", bad])
        assert (
            f"expected comma-separated integers, ranges such as 1-150 or #rrggbb colours, got '{bad}'"
            in (capsys.readouterr().err)
        )


def test_a_box_is_four_numbers(capsys):
    from pixelwise.config import box_numbers

    assert box_numbers("1, 2.5,30,40") == [1.0, 2.5, 30.0, 40.0]
    for bad in ("1,2,3", "1,2,3,4,5", "a,b,c,d", "30,40,1,2", "1,2,1,9"):
        with pytest.raises(SystemExit):
            main(["remove-bg", "photo.jpg", "--box", bad])
        said = capsys.readouterr().err
        assert "argument --box: expected" in said and repr(bad)[1:-1] in said


@pytest.mark.parametrize(
    "argv, said",
    [
        (
            ["remove-bg", "a.jpg", "--model-size", "8"],
            "--model-size: expected a whole number from 32 to 4096, got '8'",
        ),
        (
            ["serve", "--port", "80000"],
            "--port: expected a whole number from 1 to 65535, got '80000'",
        ),
        (["serve", "--threads", "0"], "--threads: expected a whole number of 1 or more, got '0'"),
        (
            ["compare", "d", "--methods", "otsu", "--sample", "0"],
            "--sample: expected a whole number of 1 or more",
        ),
        (
            ["compare", "d", "--methods", "otsu", "--grid", "x"],
            "--grid: expected a whole number of 1 or more, got 'x'",
        ),
        (
            ["adapt", "d", "-o", "o", "--lr", "0"],
            "--lr: expected a number above 0 and at most 10, got '0'",
        ),
        (
            ["segment", "m.pt", "a.png", "--score-threshold", "1.5"],
            "--score-threshold: expected a number from 0 to 1",
        ),
    ],
)
def test_numbers_out_of_range_are_refused_by_name(argv, said, capsys):
    """Before anything is read: a 1-pixel network input, a port that cannot be bound, a server
    that takes no request, a sample of no images, a learning rate of 0, a threshold above 1."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and "argument " + said in capsys.readouterr().err


def test_short_runs_and_resume_with_another_schedule(files, tmp_path, capsys):
    """39 images, batch 4, 1 epoch: 10 steps (the one-cycle schedule divided by zero); then a
    resume asking for more epochs is refused (the schedule spans the run), not crashed."""
    data = dataset(tmp_path / "d39", (0, 1), n=41, size=24)
    args = ["train", str(data), "--out", str(tmp_path / "run"), *TRAIN, "--batch-size", "4"]
    assert main(args) == 0
    assert main(args + ["--resume", "--epochs", "3"]) == 2
    assert (
        "written by a run with --epochs 1; resume with the same settings" in capsys.readouterr().err
    )
    assert main(args + ["--resume"]) == 0  # the same settings: nothing left to do


def test_resume_with_another_network_is_refused_not_crashed(files, tmp_path, capsys):
    """A resume that would make another network, or drop the averaged weights, used to end in
    load_state_dict's size-mismatch traceback (or a KeyError); so did one whose data now has
    another class count."""
    data = dataset(tmp_path / "d", (0, 255))
    args = ["train", str(data), "--out", str(tmp_path / "run"), *TRAIN, "--epochs", "2"]
    assert main([*args, "--mask-values", "0,255"]) == 0
    for extra, said in (
        (["--base-width", "8"], "written by a run with --base-width 4; resume with the same"),
        (["--no-batch-norm", "--ema", "0.9"], "a run with --ema 0, without --no-batch-norm;"),
        (["--mask-values", "0,128,255"], "its network is not the one these data and options"),
    ):
        assert main([*args, "--mask-values", "0,255", "--resume", *extra]) == 2, extra
        assert said in capsys.readouterr().err


def test_an_atomic_write_onto_a_folder_names_the_folder(tmp_path):
    """Not the hidden temporary file beside it ('.x.abc123.tmp: Is a directory'), which is gone."""
    (tmp_path / "x.json").mkdir()
    with pytest.raises(IsADirectoryError) as refused:
        atomic_write_bytes(tmp_path / "x.json", b"{}")
    assert refused.value.filename == str(tmp_path / "x.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_stale_temporary_files_are_removed_and_outputs_follow_the_umask(files, tmp_path):
    out = tmp_path / "out"
    (out / "masks").mkdir(parents=True)
    stale = out / "masks" / ".a.png.abc123.tmp"
    stale.write_bytes(b"half a file")
    assert (
        main(
            [
                "predict",
                str(files["ckpt"]),
                str(files["d1"] / "x.png"),
                str(files["good"] / "a.png"),
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    assert not stale.exists() and (out / "masks" / "a.png").is_file()
    mask = os.umask(0)
    os.umask(mask)
    assert (out / "masks" / "a.png").stat().st_mode & 0o777 == 0o666 & ~mask


def test_predict_skip_existing(files, tmp_path, capsys):
    args = [
        "predict",
        str(files["ckpt"]),
        str(files["d1"]),
        "--out",
        str(tmp_path),
        "--no-progress",
    ]
    assert main(args) == 0
    assert "wrote 1 mask to" in capsys.readouterr().out  # not "1 masks"
    before = (tmp_path / "masks" / "x.png").stat().st_mtime_ns
    assert main(args + ["--skip-existing"]) == 0
    assert (tmp_path / "masks" / "x.png").stat().st_mtime_ns == before
    assert "wrote 0 masks" in capsys.readouterr().out


def test_an_interrupted_command_says_how_to_go_on(files, tmp_path, capsys, monkeypatch):
    """Ctrl-C: training goes on from its last checkpoint, file commands past the files they
    wrote (whole: every output is written atomically)."""
    from pixelwise.cli import HANDLERS

    def interrupted(args):
        raise KeyboardInterrupt

    for command in ("train", "predict"):
        monkeypatch.setitem(HANDLERS, command, interrupted)
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"")
    assert main(["train", str(files["bw"]), "--out", str(run)]) == 130
    said = capsys.readouterr().err
    assert said == f"interrupted; the same command with --resume goes on from {run / 'last.pt'}\n"
    argv = ["predict", str(files["ckpt"]), str(files["d1"]), "--out", str(tmp_path / "p")]
    assert main(argv) == 130
    assert "the same command with --skip-existing goes on past them" in capsys.readouterr().err
    assert main([*argv, "--skip-existing"]) == 130
    assert "written is whole: the same command goes on past them" in capsys.readouterr().err


def test_a_file_given_twice_is_read_once(files, tmp_path, capsys):
    """A folder and a file in it, or one file twice (overlapping shell patterns): each image is
    predicted once, where it was first given; they used to be refused as a name clash."""
    d1 = files["d1"]
    argv = ["predict", str(files["ckpt"]), str(d1 / "x.png"), str(d1), f"{d1}/../d1/x.png"]
    assert main([*argv, "--out", str(tmp_path), "--no-progress"]) == 0
    assert "wrote 1 mask to" in capsys.readouterr().out
    assert [p.name for p in (tmp_path / "masks").iterdir()] == ["x.png"]


@pytest.mark.parametrize("command", ["predict", "segment", "remove-bg", "classical"])
def test_outputs_inside_the_input_folder_are_no_inputs_on_a_rerun(command, files, tmp_path, capsys):
    import shutil

    photos = tmp_path / "photos"
    shutil.copytree(files["d1"], photos)
    out = photos / "results"
    argv = {
        "predict": ["predict", str(files["ckpt"]), str(photos)],
        "segment": [
            "segment",
            str(photos),
            "--object-class",
            "1",
            "--checkpoint",
            str(files["ckpt"]),
        ],
        "remove-bg": ["remove-bg", str(photos), "--method", "grabcut"],
        "classical": ["predict", str(photos), "--method", "otsu"],
    }[command] + ["-o", str(out), "--no-progress"]
    assert main(argv) == 0
    first = sorted(p.relative_to(out) for p in out.rglob("*.png"))
    assert main(argv) == 0
    assert sorted(p.relative_to(out) for p in out.rglob("*.png")) == first
    assert not any("results" in p.parts for p in first)
    # another output folder inside the inputs: the earlier run's outputs are no inputs either
    other = photos / "results2"
    assert main(argv[: argv.index("-o")] + ["-o", str(other), "--no-progress"]) == 0
    assert sorted(p.relative_to(other) for p in other.rglob("*.png")) == first
    assert (out / ".pixelwise-output").is_file()


def test_a_datasets_masks_and_training_runs_are_no_inputs(shapes_data, tmp_path, capsys):
    """predict DATA predicts the dataset's images, not its masks (nor instances/ beside them),
    and not the overlays of a training run kept inside it; a mask folder named itself is
    predicted."""
    import shutil

    from conftest import train_tiny

    data = shutil.copytree(shapes_data / "train", tmp_path / "data")
    shutil.copytree(data / "masks", data / "instances")
    run = train_tiny(data, data / "run", "--epochs", "1")
    assert (run / ".pixelwise-output").is_file() and any((run / "overlays").glob("*.png"))
    capsys.readouterr()
    argv = ["predict", str(run / "best.pt"), str(data), "-o", str(tmp_path / "p"), "--no-progress"]
    assert main(argv) == 0
    written = sorted(
        p.relative_to(tmp_path / "p" / "masks") for p in (tmp_path / "p").rglob("masks/**/*.png")
    )
    assert written == sorted(Path("images") / p.name for p in (data / "images").glob("*.png"))
    said = capsys.readouterr().err
    assert said.count("a dataset's masks (beside its images), left out of the inputs") == 2
    argv = ["predict", str(run / "best.pt"), str(data / "masks"), "-o", str(tmp_path / "m")]
    assert main([*argv, "--no-progress"]) == 0
    assert len(list((tmp_path / "m" / "masks").glob("*.png"))) == len(list(data.glob("masks/*")))


def test_the_annotations_of_stacks_and_sequences_are_no_inputs(tmp_path, capsys):
    """In a folder of training data: a volume's label stack beside it (cells-labels.tif beside
    cells-volume.tif) and a Cell Tracking Challenge sequence's annotations (01_GT/ beside 01/)
    are left out of segment's inputs; evaluate scores segment's label images, not its overlays."""
    import json

    import tifffile

    from pixelwise.runner import output_names

    rng = np.random.default_rng(0)
    volume = rng.integers(0, 255, (6, 24, 32)).astype(np.uint8)
    stack = tmp_path / "stack"
    stack.mkdir()
    tifffile.imwrite(stack / "cells-volume.tif", volume)
    tifffile.imwrite(stack / "cells-labels.tif", (volume > 128).astype(np.uint16))
    for folder in ("01", "01_GT/SEG"):
        (tmp_path / "ctc" / folder).mkdir(parents=True)
        tifffile.imwrite(tmp_path / "ctc" / folder / "t000.tif", volume[0])
    names = [rel.as_posix() for _, rel in output_names([tmp_path], pages=True)]
    assert names == ["ctc/01/t000.png"] + [f"stack/cells-volume-{i:03d}.png" for i in range(6)]
    said = capsys.readouterr().err
    assert "cells-labels.tif: the labels of the volume beside it" in said and "01_GT:" in said
    argv = ["segment", "nuclei", str(stack / "cells-volume.tif"), "--no-progress", "-o"]
    assert main([*argv, str(tmp_path / "seg")]) == 0
    scored = ["evaluate", str(tmp_path / "seg"), str(stack), "--json", str(tmp_path / "e.json")]
    scored += ["--object-class", "1"]  # label images against the class's regions
    assert main(scored) == 0
    assert json.loads((tmp_path / "e.json").read_text())["predictions"].endswith("instances")
    from pixelwise.evaluate_folders import prediction_folder

    assert prediction_folder(tmp_path / "seg", objects=False) == tmp_path / "seg" / "instances"


def test_max_pixels_can_be_raised_past_pillows_own_limit(files, monkeypatch):
    from pixelwise.data.io import read_image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # stands for Pillow's 179 MP
    monkeypatch.setenv("PIXELWISE_MAX_PIXELS", "1000000")
    assert read_image(files["good"] / "a.png").shape == (48, 64, 3)  # 3072 pixels > 2 x 1000


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_a_photo_one_pixel_high_is_predicted_by_a_model_at_reduced_scale(runtime, tmp_path):
    seg = tiny_seg()
    seg.input_scale = 0.625  # as the bundled foreground model: 1 pixel would become 0
    save_checkpoint(tmp_path / "scaled.pt", seg)
    for h, w in ((1, 1), (1, 9), (2, 300), (9, 1)):
        Image.fromarray(photo(h, w)).save(tmp_path / f"{h}x{w}.png")
    args = [str(tmp_path / f"{h}x{w}.png") for h, w in ((1, 1), (1, 9), (2, 300), (9, 1))]
    out = ["--out", str(tmp_path / "o"), "--runtime", runtime, "--no-progress"]
    assert main(["predict", str(tmp_path / "scaled.pt"), *args, *out]) == 0
    for h, w in ((1, 1), (1, 9), (2, 300), (9, 1)):
        assert Image.open(tmp_path / "o" / "masks" / f"{h}x{w}.png").size == (w, h)


def test_float_images_of_any_range_for_a_model_trained_on_them(tmp_path):
    """Microscopy float TIFFs (values in the thousands): training normalises by their own values,
    so prediction takes them as they are (it refused them), and its masks are the ones
    `evaluate` scores; a model trained on 8-bit images still refuses floats outside [0, 1]."""
    import json

    import tifffile
    from conftest import train_tiny

    from pixelwise.checkpoint import load_model
    from pixelwise.data.io import read_mask

    rng = np.random.default_rng(0)
    for folder in ("images", "masks"):
        (tmp_path / "data" / folder).mkdir(parents=True)
    for i in range(4):
        mask = np.zeros((48, 48), np.uint8)
        mask[8 + i : 30, 10 : 40 - i] = 1
        image = (rng.normal(200, 30, (48, 48)) + 1500.0 * mask).astype(np.float32)
        tifffile.imwrite(tmp_path / "data" / "images" / f"{i}.tif", image)
        Image.fromarray(mask).save(tmp_path / "data" / "masks" / f"{i}.png")
    run = train_tiny(tmp_path / "data", tmp_path / "run", "--val-stems", "3", "--precision", "fp32")
    seg = load_model(run / "best.pt")
    assert seg.norm.scale == 1.0
    model, data = str(run / "best.pt"), tmp_path / "data"
    forced = ["--precision", "fp32", "--runtime", "torch"]
    assert (
        main(["predict", model, str(data / "images"), "--out", str(tmp_path / "pred"), *forced])
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "pred" / "masks").iterdir()) == [
        f"{i}.png" for i in range(4)
    ]
    assert main(["evaluate", model, str(data), "--json", str(tmp_path / "e.json"), *forced]) == 0
    predicted = read_mask(tmp_path / "pred" / "masks" / "3.png")
    truth = read_mask(tmp_path / "data" / "masks" / "3.png")
    scored = json.loads((tmp_path / "e.json").read_text())  # image 3, the validation image
    assert scored["images"] == 1
    assert np.isclose((predicted == truth).mean(), scored["pixel_accuracy"], atol=1e-6)
    with pytest.raises(ValueError, match=r"float images must hold values in \[0, 1\]"):
        pixelwise.predict(tiny_seg(), np.full((8, 8, 3), 255.0))


def test_a_ct_scans_signed_values_are_read_and_mapped_by_a_negative_input_range(tmp_path, capsys):
    """Signed 16-bit pixels (a CT scan's Hounsfield units, -1000 for air) used to be refused as
    "beyond 16 bits", and ``--input-range -1000,3000`` as written was taken by argparse for an
    option ("expected one argument"). They are read as floats, exactly, and the range as
    given maps them: the masks are those of the same image given as floats 0..1; without a
    range the error names the values and the option."""
    import tifffile

    from pixelwise.data.io import ImageReadError, read_image, read_mask

    torch.manual_seed(0)
    save_checkpoint(tmp_path / "m.pt", tiny_seg())
    hounsfield = photo(seed=3)[..., :1].astype(np.int16) * 16 - 1000  # -1000..3080
    tifffile.imwrite(tmp_path / "ct.tif", hounsfield)
    read = read_image(tmp_path / "ct.tif")
    assert read.dtype == np.float32 and np.array_equal(read, hounsfield.astype(np.float32))
    unit = (hounsfield.astype(np.float32) + 1000) / np.float32(4000)
    tifffile.imwrite(tmp_path / "unit.tif", np.clip(unit, 0, 1))
    forced = ["--precision", "fp32", "--runtime", "torch", "--no-progress"]
    model = str(tmp_path / "m.pt")
    for name, given in (
        ("a", ["--input-range", "-1000,3000"]),
        ("b", ["--input-range=-1000,3000"]),
    ):
        out = str(tmp_path / name / "ct.png")
        assert main(["predict", model, str(tmp_path / "ct.tif"), "-o", out, *given, *forced]) == 0
    assert (
        main(["predict", model, str(tmp_path / "unit.tif"), "-o", str(tmp_path / "u.png"), *forced])
        == 0
    )
    expected = read_mask(tmp_path / "u.png")
    for name in ("a", "b"):
        np.testing.assert_array_equal(read_mask(tmp_path / name / "ct.png"), expected)
    capsys.readouterr()
    assert (
        main(["predict", model, str(tmp_path / "ct.tif"), "-o", str(tmp_path / "c.png"), *forced])
        != 0
    )
    err = capsys.readouterr().err
    low, high = hounsfield.min(), hounsfield.max()
    assert f"got {low}..{high}; --input-range LO,HI maps" in err and "ct.tif" in err
    tifffile.imwrite(tmp_path / "far.tif", np.array([[0, 2**25]], np.int64))
    with pytest.raises(ImageReadError, match="far.tif: int64 pixels from 0 to 33554432, beyond"):
        read_image(tmp_path / "far.tif")


def test_input_range_shows_a_12_bit_image_to_the_model_as_full_range(tmp_path, capsys):
    """A 12-bit camera's images in 16-bit files: --input-range 0,4080 gives the masks the same
    values as floats 0..1 give (predict, and evaluate's scores), and overlays that are not dark."""
    import json

    import tifffile

    from pixelwise.data.io import read_image, read_mask

    torch.manual_seed(0)  # the same untrained model every run
    save_checkpoint(tmp_path / "m.pt", tiny_seg())
    for folder in ("twelve/images", "twelve/masks", "unit"):
        (tmp_path / folder).mkdir(parents=True)
    for i in range(3):
        raw = (photo(seed=i).astype(np.uint16) * 16)[..., :1]  # 0..4080 in a 16-bit file
        tifffile.imwrite(tmp_path / "twelve" / "images" / f"{i}.tif", raw)
        unit = raw.astype(np.float32) / np.float32(4080)
        tifffile.imwrite(tmp_path / "unit" / f"{i}.tif", unit)
        Image.fromarray((raw[..., 0] > 2000).astype(np.uint8)).save(
            tmp_path / "twelve" / "masks" / f"{i}.png"
        )
    forced = ["--precision", "fp32", "--runtime", "torch", "--no-progress"]
    model = str(tmp_path / "m.pt")
    images = str(tmp_path / "twelve" / "images")
    ranged = ["--input-range", "0,4080"]
    assert main(["predict", model, images, "-o", str(tmp_path / "p"), *ranged, *forced]) == 0
    assert main(["predict", model, str(tmp_path / "unit"), "-o", str(tmp_path / "u"), *forced]) == 0
    assert "note" not in capsys.readouterr().err
    # without the option, a note at the end says what the model sees and what to give
    assert main(["predict", model, images, "-o", str(tmp_path / "dark"), *forced]) == 0
    assert (
        "pixelwise: note: 3 16-bit image(s) with values under 4096 (a 12-bit camera's?), such as "
        f"{tmp_path / 'twelve' / 'images' / '0.tif'}: this model was trained on 8-bit images and "
        "sees them at most 1/16 as bright; --input-range 0,4095"
    ) in capsys.readouterr().err
    accuracy = []
    for i in range(3):
        mask = read_mask(tmp_path / "p" / "masks" / f"{i}.png")
        np.testing.assert_array_equal(mask, read_mask(tmp_path / "u" / "masks" / f"{i}.png"))
        accuracy.append((mask == read_mask(tmp_path / "twelve" / "masks" / f"{i}.png")).mean())
        assert read_image(tmp_path / "p" / "overlays" / f"{i}.png").mean() > 60  # not 1/16 dark
    scores = tmp_path / "e.json"
    data = str(tmp_path / "twelve")
    assert main(["evaluate", model, data, "--json", str(scores), *ranged, *forced[:4]]) == 0
    assert np.isclose(json.loads(scores.read_text())["pixel_accuracy"], np.mean(accuracy))
    # segment: found in the model's view, measured in the file's own values
    table = tmp_path / "objects.csv"
    segmented = ["-o", str(tmp_path / "s"), "--object-class", "1", "--measure", str(table)]
    assert main(["segment", model, images, *segmented, *ranged, *forced]) == 0
    rows = table.read_text().splitlines()
    means = [float(r.split(",")[rows[0].split(",").index("mean_intensity")]) for r in rows[1:]]
    assert means and max(means) > 1  # raw 0..4080 values, not 0..1
    capsys.readouterr()
    assert main(["predict", model, images, "-o", str(tmp_path / "x"), "--input-range", "9,9"]) == 2
    assert capsys.readouterr().err.strip() == (
        "pixelwise predict: error: --input-range takes two numbers LO,HI with LO < HI "
        "(e.g. 0,4095), got '9,9'"
    )
    assert main(["evaluate", str(tmp_path / "p"), data, *ranged]) == 2
    assert "--input-range is for models; these are predictions" in capsys.readouterr().err
    pair = ["--instance-thresholds", "0.6,0.7"]
    assert main(["evaluate", str(tmp_path / "p"), data, *pair]) == 2
    assert "--instance-thresholds is for models; these are" in capsys.readouterr().err
    assert main(["segment", model, images, "-o", str(tmp_path / "t"), *pair]) == 2
    assert (
        "--instance-thresholds is for models trained with --instances boundary; this one was "
        "trained on class masks" in capsys.readouterr().err
    )


def test_an_error_computing_one_file_fails_that_file_alone(tmp_path):
    from pixelwise.runner import run_batch

    for name in ("a", "huge", "z"):
        Image.fromarray(photo()).save(tmp_path / f"{name}.png")

    def compute(src):
        if src.name == "huge.png":  # as torch words running out of memory, over two lines
            raise RuntimeError("DefaultCPUAllocator: not enough memory\nTried to allocate 9 GB")
        if src.name == "z.png":  # a bug met on one file alone
            return [][0]
        return src

    result = run_batch([tmp_path], compute, lambda src, rel, v: (rel, None), "t", False)
    assert result.written == [Path("a.png")]
    reason = f"{tmp_path / 'huge.png'}: RuntimeError: DefaultCPUAllocator: not enough memory"
    bug = f"{tmp_path / 'z.png'}: internal error, please report it: IndexError: list index out of "
    assert result.failures[0] == (tmp_path / "huge.png", reason)
    assert (
        result.failures[1][1].startswith(bug) and "(at test_bad_input.py:" in result.failures[1][1]
    )


# ---------------------------------------------------------------- the Python API


def _predict_8_16_float():
    seg, image = tiny_seg(), photo()
    reference = pixelwise.predict(seg, image)
    for variant in (image.astype(np.uint16) * 257, image.astype(np.float32) / 255):
        np.testing.assert_array_equal(pixelwise.predict(seg, variant), reference)
    alpha8 = np.asarray(remove_background(image, tiny_seg(BrightIsForeground()), mask_only=True))
    alpha16 = np.asarray(
        remove_background(
            image.astype(np.uint16) * 257, tiny_seg(BrightIsForeground()), mask_only=True
        )
    )
    np.testing.assert_array_equal(alpha8, alpha16)


def _channels_first():
    image = photo()
    out = remove_background(image.transpose(2, 0, 1), tiny_seg(BrightIsForeground()))
    assert out.size == (64, 48)
    kept = np.asarray(out)[..., 3] > 0  # black where fully transparent
    np.testing.assert_array_equal(np.asarray(out)[kept, :3], image[kept])


def _mask_rcnn_through_the_api():
    pytest.importorskip("pycocotools", reason="COCO support needs pycocotools")
    kwargs = {"num_classes": 2, "min_size": 64, "max_size": 96}
    seg = Segmenter(
        create_model("mask_rcnn", **kwargs).eval(),
        "mask_rcnn",
        kwargs,
        ["background", "a", "b"],
        Normalization([0.0], [1.0]),
    )
    mask, labels = pixelwise.predict(seg, photo()), pixelwise.segment(seg, photo())
    assert (
        mask.shape == labels.shape == (48, 64)
        and mask.dtype == np.uint8
        and labels.dtype == np.uint16
    )
    with pytest.raises(ValueError, match="class probabilities come from semantic models"):
        predict_probabilities(seg, photo())
    with pytest.raises(ValueError, match="a mask_rcnn model finds objects; a cut-out takes"):
        remove_background(photo(), seg)  # was an AttributeError deep in inference
    with pytest.raises(ValueError, match="not a box model"):
        remove_background(photo(), tiny_seg(), box=(2, 2, 30, 30), box_model=tiny_seg())


API_CASES = [
    ("predict/segment on a Mask R-CNN model", _mask_rcnn_through_the_api, None, ""),
    # (id, call, exception or None, message fragment)
    ("8-bit, 16-bit and float inputs agree", _predict_8_16_float, None, ""),
    ("channels-first array", _channels_first, None, ""),
    (
        "empty array",
        lambda: pixelwise.predict(tiny_seg(), np.zeros((0, 5, 3), np.uint8)),
        ValueError,
        "empty array of shape (0, 5, 3)",
    ),
    (
        "a batch of one",
        lambda: pixelwise.predict(tiny_seg(), np.zeros((1, 8, 8, 3), np.uint8)),
        ValueError,
        "expected an (H, W) or (H, W, C) image",
    ),
    (
        "float out of range",
        lambda: pixelwise.predict(tiny_seg(), np.full((8, 8, 3), 255.0)),
        ValueError,
        "float images must hold values in [0, 1]",
    ),
    (
        "float with NaN (no data)",
        lambda: pixelwise.predict(
            tiny_seg(),
            np.pad(np.full((4, 8, 3), 0.5), ((0, 2), (0, 0), (0, 0)), constant_values=np.nan),
        ),
        ValueError,
        "got 48 pixel value(s) that are NaN or infinite",
    ),
    (
        "unsupported dtype",
        lambda: remove_background(np.zeros((8, 8, 3), np.int64), tiny_seg()),
        ValueError,
        "unsupported dtype int64",
    ),
    (  # was "TrainConfig.__init__() got an unexpected keyword argument 'epoch'"
        "fit with a mistyped option",
        lambda: pixelwise.fit("data", out="run", epoch=3),
        TypeError,
        "fit: no option 'epoch' (did you mean epochs?)",
    ),
    (  # was "fit() missing 1 required positional argument: 'cfg'"
        "fit without data",
        lambda: pixelwise.fit(out="run"),
        TypeError,
        "fit: give the data, fit('DATA', out=...), or a TrainConfig",
    ),
    (
        "a network input of one pixel",
        lambda: remove_background(photo(), tiny_seg(), model_size=0),
        ValueError,
        "model_size must be 32 to 4096 pixels, got 0",
    ),
]


@pytest.mark.parametrize(
    "call, error, fragment", [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES]
)
def test_python_api(call, error, fragment):
    if error is None:
        call()
        return
    with pytest.raises(error, match=re.escape(fragment)):
        call()


# ---------------------------------------------------------------- the HTTP server


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def server():
    """A real server on a free loopback port: one thread, no queue, a slow network."""
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    import uvicorn

    from pixelwise.web.app import Limits, create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    limits = Limits(
        max_upload_mb=0.5, max_megapixels=1.0, max_matting_megapixels=0.001, threads=1, queue=0
    )
    app = create_app(tiny_seg(Slow()), limits=limits)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(5)


def post(url: str, data: bytes = b"", name="p.png", headers=None, fields=None, timeout=30):
    import httpx

    files = {"file": (name, data, "image/png")}
    response = httpx.post(
        url + "/api/remove-background",
        files=files,
        data=fields or {},
        headers=headers or {},
        timeout=timeout,
    )
    return response.status_code, response.text


def raw(url: str, headers: str) -> tuple[int, str]:
    """Send only a request's headers; the reply as (status, text)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST /api/remove-background HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n\r\n".encode()
        )
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.split(b"\r\n\r\n", 1)[1]) < body_length(reply):
            chunk = sock.recv(65536)  # headers and body may come in separate packets
            if not chunk:
                break
            reply += chunk
    return int(reply.split()[1]), reply.decode("latin-1")


def body_length(reply: bytes) -> int:
    for line in reply.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def zeros_png(side: int) -> bytes:
    return png_bytes(np.zeros((side, side), np.uint8))


HTTP_CASES = [
    # (id, request, HTTP status, fragment)
    ("a good photo", lambda u: post(u, png_bytes(photo())), 200, ""),
    (
        "8000 x 8000 zeros, 186 KB",
        lambda u: post(u, zeros_png(8000)),
        413,
        "the server accepts at most 1",
    ),
    (
        "matting a photo over the matting limit: matted shrunk",
        lambda u: post(u, png_bytes(photo()), fields={"matting": "true"}),
        200,
        "",
    ),
    (
        "matting an animation over the matting limit",
        lambda u: post(u, animated_png(photo()), fields={"matting": "true"}),
        413,
        "matting is limited to",
    ),
    (
        "foreign Host",
        lambda u: post(u, png_bytes(photo()), headers={"host": "evil.example"}),
        400,
        "Invalid host",
    ),
    (
        "foreign Origin",
        lambda u: post(u, png_bytes(photo()), headers={"origin": "http://evil.example"}),
        403,
        "cross-origin request from http://evil.example refused",
    ),
    (
        "declared 3 GB",
        lambda u: raw(
            u, "Content-Length: 3221225472\r\nContent-Type: multipart/form-data; boundary=b"
        ),
        413,
        "upload exceeds",
    ),
    (
        "bad box",
        lambda u: post(u, png_bytes(photo()), fields={"box": "1,2,3"}),
        400,
        "box must be x0,y0,x1,y1",
    ),
    (
        "too many strokes",
        lambda u: post(
            u,
            png_bytes(photo()),
            fields={"foreground_strokes": "[" + ",".join(['{"points": [[1, 1]]}'] * 300) + "]"},
        ),
        400,
        "at most 200 strokes",
    ),
    (
        "strokes not JSON",
        lambda u: post(u, png_bytes(photo()), fields={"background_strokes": "[{"}),
        400,
        "not JSON",
    ),
    (
        "misspelt field",  # dropped without a word, the cut-out made without the strokes
        lambda u: post(u, png_bytes(photo()), fields={"strokes": '[{"points": [[1, 1]]}]'}),
        400,
        "unknown field(s) strokes; the fields are background, background_image, background_strokes",
    ),
]


@pytest.mark.parametrize(
    "request_, status, fragment", [c[1:] for c in HTTP_CASES], ids=[c[0] for c in HTTP_CASES]
)
def test_server_refuses(server, request_, status, fragment):
    code, text = request_(server)
    assert code == status, text
    assert fragment in text


def test_host_names_given_are_answered_others_told_how_to_allow_them(monkeypatch, capsys):
    """DNS-rebinding defence: a Host header must name a loopback name, --host or an
    --allow-host name (any case, any port); another gets 400 saying which option allows it.
    Bound to every interface with no name allowed, serve says so at start."""
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    from fastapi.testclient import TestClient

    from pixelwise.web import app as web
    from pixelwise.web.app import LOOPBACK, Limits, create_app

    given = (*LOOPBACK, "lab-pc.local", "10.0.0.7:8000", "http://Lab-Mac:8000/")  # as typed
    client = TestClient(create_app(tiny_seg(), "model", Limits(hosts=given)))
    for host in ("localhost:8000", "LOCALHOST", "127.0.0.1:1", "[::1]:8000", "lab-pc.local:80",
                 "10.0.0.7:8000", "lab-mac:8000"):  # fmt: skip
        assert client.get("/api/health", headers={"host": host}).status_code == 200, host
    for host in ("192.168.1.5:8000", "evil.example", "evil.example@127.0.0.1", ""):
        refused = client.get("/api/health", headers={"host": host})
        assert refused.status_code == 400, host
    assert (
        "start it with --allow-host 192.168.1.5 to answer"
        in client.get("/api/health", headers={"host": "192.168.1.5:8000"}).json()["detail"]
    )
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: None)
    monkeypatch.setattr(web, "create_app", lambda *args: None)
    web.serve("0.0.0.0", 8000, method="grabcut")
    assert "listening on every interface (0.0.0.0)" in capsys.readouterr().err
    web.serve("0.0.0.0", 8000, method="grabcut", limits=Limits(hosts=(*LOOPBACK, "lab")))
    assert "listening on every interface" not in capsys.readouterr().err


def test_serve_on_a_taken_port_is_one_line_before_the_models_load(capsys):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port), "--checkpoint", "nothere.pt"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"pixelwise serve: error: 127.0.0.1:{port}: Address already in use "
        "(another server there? pick another --port)"
    )


def test_streamed_upload_is_stopped_while_it_streams(server):
    """No Content-Length, chunks of 64 KB: the 413 arrives after about the cap, not after 64 MB."""
    host, port = server.removeprefix("http://").split(":")
    boundary = "b0undary"
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            f"POST /api/remove-background HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n".encode()
        )
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        sock.sendall(f"{len(head):x}\r\n".encode() + head + b"\r\n")
        sock.settimeout(0.05)
        sent, reply = 0, b""
        chunk = b"\0" * 65536
        while sent < 64 << 20 and not reply:
            try:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
                reply = sock.recv(4096)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.settimeout(5)
        reply = reply or sock.recv(4096)
    assert b" 413 " in reply.split(b"\r\n")[0], reply[:200]
    assert sent < 4 << 20  # stopped near the 0.5 MB cap


def test_queue_full_gets_503_and_health_stays_responsive(server):
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    with ThreadPoolExecutor(3) as pool:
        slow = [pool.submit(post, server, png_bytes(photo())) for _ in range(2)]
        time.sleep(0.3)
        start = time.perf_counter()
        assert httpx.get(server + "/api/health", timeout=5).status_code == 200
        assert time.perf_counter() - start < 0.5  # the event loop is free while the network runs
        codes = sorted(f.result()[0] for f in slow)
    assert codes == [200, 503]
