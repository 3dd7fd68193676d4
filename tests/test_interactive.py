"""Interactive cut-outs: a box and strokes through the Python API, the CLI and HTTP, on photos
whose answer is known (a red disc and a blue square on grey)."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from pixelwise.cli import main
from pixelwise.cutout import remove_background


def scene(h=120, w=160, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    disc = (yy - 60) ** 2 + (xx - 45) ** 2 < 25**2
    square = (yy > 40) & (yy < 85) & (xx > 100) & (xx < 140)
    rgb = np.full((h, w, 3), 128.0) + rng.normal(0, 8, (h, w, 3))
    rgb[disc] = (200, 40, 40) + rng.normal(0, 8, (disc.sum(), 3))
    rgb[square] = (40, 40, 200) + rng.normal(0, 8, (square.sum(), 3))
    return np.clip(rgb, 0, 255).astype(np.uint8), disc, square


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def alpha(*args, **kwargs) -> np.ndarray:
    return np.asarray(remove_background(*args, mask_only=True, **kwargs)) > 127


def test_box_alone_finds_the_object_and_nothing_outside():
    rgb, disc, square = scene()
    cut = alpha(rgb, method="grabcut", box=(15, 30, 75, 90))
    assert iou(cut, disc) > 0.9 and not cut[:, 80:].any()


def test_a_keep_stroke_adds_a_region_and_an_erase_stroke_removes_one():
    rgb, disc, square = scene()
    box_only = alpha(rgb, method="grabcut", box=(15, 30, 75, 90))
    keep = [{"points": [[110, 62], [130, 62]], "radius": 3}]
    both = alpha(
        rgb,
        method="grabcut",
        foreground_strokes=keep,
        background_strokes=None,
        box=(10, 25, 150, 100),
    )
    assert iou(both, disc | square) > 0.85 and iou(box_only, disc) > 0.9
    erase = [{"points": [[115, 60], [125, 65]], "radius": 3}]
    wide = alpha(rgb, method="grabcut", box=(10, 25, 150, 100))
    erased = alpha(rgb, method="grabcut", box=(10, 25, 150, 100), background_strokes=erase)
    assert (erased & square).sum() < 0.2 * (wide & square).sum() + 1 and iou(erased, disc) > 0.85


def test_strokes_as_boolean_masks_at_photo_size():
    rgb, disc, square = scene()
    keep = np.zeros(disc.shape, bool)
    keep[55:65, 110:130] = True
    cut = alpha(rgb, method="grabcut", box=(10, 25, 150, 100), foreground_strokes=keep)
    assert cut[square].mean() > 0.8


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"box": (5, 5, 2, 9)}, "x0 < x1 and y0 < y1"),
        ({"box": (500, 500, 600, 600)}, "lies outside the 160 x 120 image"),
        ({"box": "abc"}, "box must be four numbers"),
        ({"foreground_strokes": [{"radius": 3}]}, "each stroke must be"),
        ({"background_strokes": [{"points": [[1, float("nan")]], "radius": 3}]}, "finite point"),
    ],
)
def test_bad_user_input_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        remove_background(scene()[0], method="grabcut", **kwargs)


def test_cli_box_strokes_and_boxes(tmp_path, capsys):
    rgb, disc, square = scene()
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(rgb).save(photos / "a.png")
    Image.fromarray(rgb).save(photos / "b.png")
    out = tmp_path / "out"
    assert (
        main(
            [
                "remove-bg",
                str(photos / "a.png"),
                "-o",
                str(out / "box"),
                "--method",
                "grabcut",
                "--box",
                "15,30,75,90",
                "--mask-only",
                "--no-progress",
            ]
        )
        == 0
    )
    assert iou(np.asarray(Image.open(out / "box" / "a.png")) > 127, disc) > 0.9
    strokes = tmp_path / "strokes.json"
    strokes.write_text(
        json.dumps({"foreground": [{"points": [[110, 62], [130, 62]], "radius": 3}]})
    )
    assert (
        main(
            [
                "remove-bg",
                str(photos / "a.png"),
                "-o",
                str(out / "stroke"),
                "--method",
                "grabcut",
                "--box",
                "10,25,150,100",
                "--strokes",
                str(strokes),
                "--mask-only",
                "--no-progress",
            ]
        )
        == 0
    )
    assert (np.asarray(Image.open(out / "stroke" / "a.png")) > 127)[square].mean() > 0.8
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"a.png": [15, 30, 75, 90], "b.png": [95, 35, 145, 90]}))
    assert (
        main(
            [
                "remove-bg",
                str(photos),
                "-o",
                str(out / "boxes"),
                "--method",
                "grabcut",
                "--boxes",
                str(boxes),
                "--mask-only",
                "--no-progress",
            ]
        )
        == 0
    )
    assert iou(np.asarray(Image.open(out / "boxes" / "b.png")) > 127, square) > 0.85
    assert (
        main(["remove-bg", str(photos), "-o", str(out / "x"), "--box", "1,2,3,4", "--no-progress"])
        == 2
    )
    assert "--box and --strokes are for one photo; 2 inputs given" in capsys.readouterr().err


def test_http_box_and_strokes():
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    from fastapi.testclient import TestClient

    from pixelwise.web.app import create_app

    rgb, disc, square = scene()
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    client = TestClient(create_app(method="grabcut"), base_url="http://localhost")
    fields = {
        "box": "10,25,150,100",
        "mask_only": "true",
        "foreground_strokes": json.dumps([{"points": [[110, 62], [130, 62]], "radius": 3}]),
    }
    reply = client.post(
        "/api/remove-background",
        files={"file": ("s.png", buf.getvalue(), "image/png")},
        data=fields,
    )
    assert reply.status_code == 200, reply.text
    cut = np.asarray(Image.open(io.BytesIO(reply.content))) > 127
    assert iou(cut, disc | square) > 0.85
    schema = client.get("/openapi.json").json()
    props = json.dumps(schema["components"]["schemas"])
    assert all(f in props for f in ("box", "foreground_strokes", "background_strokes"))
