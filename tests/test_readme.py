"""Every `pixelwise ...` command and the Python example in README.md run as written
(training and adapt shortened by appended options; argparse takes the last value)."""

import json
import re
import shlex
from pathlib import Path

import pytest
from conftest import REPO, shared_dataset
from PIL import Image

from pixelwise.cli import main

README = (REPO / "README.md").read_text()
SHORT_TRAIN = [
    "--epochs",
    "1",
    "--epoch-size",
    "2",
    "--batch-size",
    "2",
    "--crop",
    "64",
    "--depth",
    "2",
    "--base-width",
    "4",
    "--no-progress",
]

SHORT_ADAPT = [
    "--epochs",
    "1",
    "--epoch-size",
    "2",
    "--crop",
    "64",
    "--sample",
    "12",
    "--no-progress",
]


def readme_commands() -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("pixelwise ")]


@pytest.fixture
def readme_cwd(tmp_path, monkeypatch) -> Path:
    """A working folder whose ../shared/data is the shared datasets, as beside the repo."""
    shared = shared_dataset("isbi2012").parent.parent
    (tmp_path / "shared").symlink_to(shared)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path / "work"


def test_readme_commands_run(readme_cwd, capsys):
    commands = readme_commands()
    assert [c[0] for c in commands if c[0] != "--help"] == [
        "train",
        "predict",
        "predict",
        "evaluate",
        "inspect",
        "train",
        "models",
        "info",
        "info",
        "segment",
        "stains",
        "segment",
        "info",
        "evaluate",
        "evaluate",
        "evaluate",
        "evaluate",
        "train",
        "predict",
        "evaluate",
        "predict",
        "compare",
        "remove-bg",
        "remove-bg",
        "remove-bg",
        "remove-bg",
        "remove-bg",
        "train",
        "remove-bg",
        "train",
        "remove-bg",
        "adapt",
        "remove-bg",
        "export",
        "predict",
        "export",
        "calibrate",
    ]
    for args in commands:
        if args == ["--help"]:
            with pytest.raises(SystemExit) as info:
                main(args)
            assert info.value.code == 0
            continue
        status = main(args + {"train": SHORT_TRAIN, "adapt": SHORT_ADAPT}.get(args[0], []))
        if (
            "--int8" in args or args[0] == "calibrate"
        ):  # a one-epoch README model may fail the int8 gate: exit 1 (recorded in the .onnx)
            assert status in (0, 1), args
        else:
            assert status == 0, args
    assert len(list(Path("runs/isbi/test-pred/masks").glob("*.png"))) == 30
    assert len(list(Path("runs/isbi/test-pred/probabilities").glob("*.tif"))) == 30
    assert Image.open("runs/isbi/00-mask.png").mode == "P"  # -o naming the one mask
    assert Path("runs/isbi/evaluation.json").is_file()
    assert json.loads(Path("runs/nuclei/evaluation.json").read_text())["objects"]["f1"] > 0.5
    assert len(list(Path("runs/nuclei/instances").glob("*.png"))) == 1
    assert json.loads(Path("runs/nuclei/objects.json").read_text())["annotations"]
    table = Path("runs/nuclei/objects.csv").read_text().splitlines()
    assert table[0].startswith("image,object,class,grade,area,") and len(table) > 10
    grades = Path("runs/nuclei/grades.csv").read_text().splitlines()  # --positive
    assert grades[0].endswith(",positive_percent,h_score") and len(grades) == 2
    said = capsys.readouterr().out
    assert "--stain-vectors 'hematoxylin=" in said  # pixelwise stains
    assert "gbm40_02.png: 512 x 512 pixels" in said  # pixelwise info IMAGE
    he = Path("runs/he/objects.csv").read_text().splitlines()  # --scale, --pixel-size
    assert "area_um2" in he[0].split(",") and len(he) > 10
    assert json.loads(Path("runs/he/scaled.json").read_text())["scale"] == 0.5  # evaluate --scale
    assert Path("runs/coco/pred/coco/000000000009.json").is_file()
    from pixelwise.export import load_onnx

    assert (
        "passed" in load_onnx("runs/isbi/model-int8.onnx")[0]["int8"]
    )  # the gate, recorded in the file
    for folder, name in (
        ("cutouts-matted", "000"),
        ("cutouts-box", "002"),
        ("cutouts-box2", "002"),
        ("cutouts-tuned", "002"),
        ("cutouts-adapted", "horse001"),
    ):
        assert Image.open(f"runs/{folder}/{name}.png").mode == "RGBA"
    assert Image.open("runs/001-grabcut.png").mode == "RGBA"  # -o naming the file
    assert Image.open("runs/cutouts-webp/003.webp").format == "WEBP"  # --format
    assert Image.open("remove-bg-output/000.png").mode == "RGBA"  # no -o: the default folder
    from pixelwise import load_model

    assert load_model("runs/horse-box/best.pt").box_input == 64  # the shortened run's crop
    tuned, bundled = load_model("runs/horse-tuned/best.pt"), load_model("foreground")
    assert tuned.arch_kwargs == bundled.arch_kwargs  # --weights kept the bundled U-Net
    labelled = Path("runs/horses-adapted/data/masks")
    assert len(list(labelled.glob("*.png"))) == 12  # --sample 12 of the horse photos, labelled
    assert Path("runs/compare/grid.png").is_file() and Path("runs/isbi/model.onnx").is_file()
    assert len(list(Path("runs/isbi/onnx-pred/masks").glob("*.png"))) == 30
    assert len(list(Path("runs/slic/masks").glob("*.png"))) == 30

    python = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    scope: dict = {}
    import pixelwise.train

    real_fit = pixelwise.train.fit
    short = dict(epochs=1, epoch_size=2, batch_size=2, crop=64, depth=2, base_width=4)
    short["progress"] = False  # SHORT_TRAIN as keywords
    with pytest.MonkeyPatch.context() as patch:  # training shortened, as for the commands
        patch.setattr(pixelwise.train, "fit", lambda data, **kw: real_fit(data, **kw, **short))
        exec(python, scope)
    assert scope["scores"]["split"] and 0 <= scope["scores"]["mean_iou"] <= 1
    assert tuple(load_model(scope["best"]).encoding.values) == (0, 255)
    assert scope["mask"].shape == (512, 512) and scope["probs"].shape == (512, 512, 2)
    assert (scope["probs"].argmax(-1) == scope["mask"]).all()
    assert scope["net"].head.out_channels == 5
