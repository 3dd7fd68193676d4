"""Background removal: the library verb, the CLI over a folder with a corrupt file, the HTTP API
with good and bad uploads, and the web page in a real browser (headless Chromium)."""

import io
import json
import os
import signal
import time

import numpy as np
import pytest
import tifffile
import torch
from conftest import (
    ON_PROC,
    BrightIsForeground,
    children,
    ended,
    geojson_raster,
    served_page,
    tiny_seg,
)
from PIL import Image

from pixelwise.checkpoint import save_checkpoint
from pixelwise.cli import main
from pixelwise.cutout import guided_filter, keep_largest, remove_background, trimap
from pixelwise.models import create_model


def _photo(h=300, w=400, seed=0):
    """A bright disc (the object) on a dark textured background, plus a small bright speck."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    disc = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (h / 3) ** 2
    image = np.where(disc[..., None], 210, 40) + rng.integers(0, 25, (h, w, 3))
    image[10:14, 10:14] = 230  # a speck: not the largest component
    return image.astype(np.uint8), disc


def test_remove_background_gives_full_resolution_alpha():
    image, disc = _photo()
    out = remove_background(image, tiny_seg(BrightIsForeground()), model_size=96)
    assert out.mode == "RGBA" and out.size == (400, 300)
    rgba = np.asarray(out)
    alpha = rgba[..., 3] > 127
    assert (
        (alpha & disc).sum() / (alpha | disc).sum()
    ) > 0.97  # edges follow the photo at full resolution
    assert rgba[12, 12, 3] == 0  # speck removed: largest component only
    kept = rgba[..., 3] > 0
    assert np.array_equal(rgba[kept, :3], image[kept]) and not rgba[~kept, :3].any()
    mask = remove_background(image, tiny_seg(BrightIsForeground()), mask_only=True, model_size=96)
    assert mask.mode == "L" and mask.size == (400, 300)
    on_red = np.asarray(
        remove_background(
            image, tiny_seg(BrightIsForeground()), background=(255, 0, 0), model_size=96
        )
    )
    assert on_red.shape == (300, 400, 3) and tuple(on_red[5, 200]) == (255, 0, 0)


def test_matting_and_grabcut_fallback():
    image, disc = _photo(120, 160)
    for kwargs in (
        {"model": tiny_seg(BrightIsForeground()), "matting": True, "model_size": 64},
        {"method": "grabcut"},
    ):
        alpha = np.asarray(remove_background(image, mask_only=True, **kwargs)) > 127
        assert ((alpha & disc).sum() / (alpha | disc).sum()) > 0.9, kwargs
    with pytest.raises(ValueError, match="unknown method"):
        remove_background(image, tiny_seg(BrightIsForeground()), method="magic")


def test_matting_a_large_photo_shrunk_and_enlarged_follows_its_soft_edge(monkeypatch, tmp_path):
    """With matting_megapixels, a larger photo is matted shrunk to that size (time and memory
    grow with the photo) and the alpha enlarged to the photo's size by the guided filter: on a
    disc with a soft edge composited onto another texture, the alpha still follows the true
    one there, closer than the cut-out without matting."""
    import cv2

    import pixelwise.cutout
    import pixelwise.matting as matting

    h, w = 300, 400
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:h, :w]
    disc = ((yy - 150) ** 2 + (xx - 200) ** 2 < 100**2).astype(np.float32)
    true = cv2.GaussianBlur(disc, (0, 0), 4)[..., None]  # the soft edge: the true alpha
    fg = np.array([220, 180, 60]) + rng.integers(0, 20, (h, w, 3))
    bg = np.array([30, 60, 120]) + rng.integers(0, 30, (h, w, 3))
    image = (true * fg + (1 - true) * bg).astype(np.uint8)
    matted, solve = [], matting.closed_form_matting
    monkeypatch.setattr(
        matting, "closed_form_matting", lambda rgb, tri: matted.append(rgb.shape) or solve(rgb, tri)
    )
    seg, band = tiny_seg(BrightIsForeground()), (true[..., 0] > 0.02) & (true[..., 0] < 0.98)

    def error(**kwargs) -> float:
        cut = remove_background(image, seg, mask_only=True, model_size=96, **kwargs)
        assert cut.size == (w, h)
        return np.abs(np.asarray(cut, np.float32) / 255 - true[..., 0])[band].mean()

    plain, shrunk = error(), error(matting=True, matting_megapixels=0.02)
    assert len(matted) == 1 and matted[0][0] * matted[0][1] <= 0.02e6  # matted at that size
    assert shrunk < 0.05 and shrunk < plain, (shrunk, plain)
    error(matting=True, matting_megapixels=1.0)  # a photo within the size: matted as it is
    assert matted[1] == (h, w, 3)
    # without a size, at most MATTING_MEGAPIXELS (a 48-megapixel photo at full size took 6.1 GB)
    monkeypatch.setattr(pixelwise.cutout, "MATTING_MEGAPIXELS", 0.03)
    error(matting=True)
    assert matted[2][0] * matted[2][1] <= 0.03e6 < matted[1][0] * matted[1][1]
    error(matting=True, matting_megapixels=0)  # 0: no bound
    assert matted[3] == (h, w, 3)
    Image.fromarray(image).save(tmp_path / "soft.png")  # the command line: the same
    for size, extra in ((0.03e6, []), (h * w, ["--matting-megapixels", "0"])):
        cut = [str(tmp_path / "soft.png"), "-o", str(tmp_path / "cut.png"), "--method", "grabcut"]
        assert main(["remove-bg", *cut, "--matting", "--no-progress", *extra]) == 0
        assert 0.9 * size < matted[-1][0] * matted[-1][1] <= size


def test_tiny_and_thin_photos_are_cut_out_or_refused_clearly():
    rng = np.random.default_rng(0)
    seg = tiny_seg(BrightIsForeground())
    for h, w in ((1, 1), (2, 2), (1, 500), (500, 1), (5, 2000)):
        photo = rng.integers(0, 255, (h, w, 3)).astype(np.uint8)
        for kwargs in ({}, {"method": "model"}, {"box": (0, 0, w, h)}):
            assert remove_background(photo, seg, mask_only=True, **kwargs).size == (w, h)
        # under 3 pixels on a side at the working size (320 px on the longer side)
        with pytest.raises(
            ValueError,
            match="method grabcut on the photo at its working size: .* at least 3 x 3 pixels",
        ):
            remove_background(photo, method="grabcut")


def test_full_resolution_helpers_equal_scipy_and_numpy():
    from scipy import ndimage

    from pixelwise.cutout import filled, grey_of, keep_largest

    rng = np.random.default_rng(0)
    for trial in range(20):  # blobs with holes, some touching the border, some tied in size
        mask = ndimage.gaussian_filter(rng.random((60, 80)), 2 + trial % 3) > 0.5
        mask[rng.integers(0, 60, 30), rng.integers(0, 80, 30)] ^= True
        np.testing.assert_array_equal(filled(mask), ndimage.binary_fill_holes(mask))
        labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        largest = labels == sizes.argmax() if n > 1 else mask
        np.testing.assert_array_equal(keep_largest(mask, False), largest)
        np.testing.assert_array_equal(keep_largest(mask), ndimage.binary_fill_holes(largest))
    tie = np.zeros((10, 10), bool)
    tie[1:3, 1:3] = tie[6:8, 6:8] = True  # two of 4 pixels: the first in raster order wins
    assert keep_largest(tie)[1, 1] and not keep_largest(tie)[6, 6]
    assert not keep_largest(np.zeros((5, 5), bool)).any()
    ring = np.zeros((7, 7), np.int32)  # 0/1 integers, as a label image might be
    ring[1:6, 1:6], ring[3, 3] = 1, 0
    np.testing.assert_array_equal(filled(ring), ndimage.binary_fill_holes(ring))
    np.testing.assert_array_equal(keep_largest(ring), ndimage.binary_fill_holes(ring))
    rgb = rng.integers(0, 256, (31, 17, 3)).astype(np.uint8)
    np.testing.assert_array_equal(grey_of(rgb), rgb.astype(np.float32).mean(-1) / 255.0)


def test_helpers_against_hand_cases():
    mask = np.zeros((20, 20), bool)
    mask[2:12, 2:12], mask[15:17, 15:17] = True, True
    mask[5, 5] = False  # a hole
    kept = keep_largest(mask)
    assert kept[5, 5] and not kept[16, 16] and kept.sum() == 100
    t = trimap(kept, 2)
    assert t[7, 7] == 1 and t[0, 19] == 0 and t[2, 2] == 0.5
    flat = np.full((30, 30), 0.3, np.float32)
    np.testing.assert_allclose(
        guided_filter(flat, flat, radius=3), flat, atol=1e-5
    )  # constant in, constant out


@pytest.mark.parametrize("rows", [None, 3, 17])  # the whole image; bands narrower than a radius
def test_guided_filter_against_he_et_al_in_float64(rows):
    from scipy.ndimage import uniform_filter

    from pixelwise.cutout import grey_of

    rng = np.random.default_rng(1)
    photo = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    guide = grey_of(photo)
    src = rng.random((40, 50)) > 0.5
    r, eps = 4, 1e-3

    def box(x):  # the mean over a (2r + 1)^2 window, borders mirrored as OpenCV's BORDER_REFLECT
        return uniform_filter(x.astype(np.float64), 2 * r + 1, mode="reflect")

    i, p = guide.astype(np.float64), src.astype(np.float64)
    a = (box(i * p) - box(i) * box(p)) / (box(i * i) - box(i) ** 2 + eps)
    b = box(p) - a * box(i)
    expected = box(a) * i + box(b)
    np.testing.assert_allclose(guided_filter(guide, src, r, eps, rows), expected, atol=1e-6)
    # the photo itself as the guide: its grey levels, band by band
    np.testing.assert_allclose(guided_filter(photo, src, r, eps, rows), expected, atol=1e-6)


def test_cut_out_working_memory_is_bands_not_planes(tmp_path, monkeypatch):
    """remove-bg's full-resolution steps hold a few bytes per photo pixel, not the ~36 of a
    dozen float32 planes (a 48-megapixel photo took 2.3 GB): the guided filter works in
    bands, the cut-out is assembled in place. Python's allocations (numpy, OpenCV's arrays)
    counted by tracemalloc; the network's, at working size, are torch's own."""
    import tracemalloc

    import pixelwise.cutout as cutout

    monkeypatch.setattr(cutout, "BAND_PIXELS", 1 << 18, raising=False)  # a large photo's bands
    h, w = 1200, 1600
    photo = np.random.default_rng(0).integers(0, 60, (h, w, 3), dtype=np.uint8)
    photo[300:900, 400:1200] += 180  # a bright subject on a dark background
    seg = tiny_seg(BrightIsForeground())
    remove_background(photo, seg)  # the first call's one-off allocations outside the count
    tracemalloc.start()
    try:
        cut = remove_background(photo, seg)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    alpha = np.asarray(cut)[..., 3]
    assert alpha[600, 800] == 255 and alpha[100, 100] == 0  # the subject cut out
    assert peak / (h * w) < 20, f"{peak / (h * w):.1f} bytes per pixel"


@pytest.fixture
def fg_checkpoint(tmp_path):
    """A real (untrained) checkpoint for CLI runs: the answer is irrelevant, the plumbing is not."""
    torch.manual_seed(0)
    seg = tiny_seg()
    seg.network = create_model("unet", in_channels=3, num_classes=2, depth=2, base_width=4).eval()
    path = tmp_path / "fg.pt"
    save_checkpoint(path, seg)
    return path


def test_cli_folder_with_a_corrupt_file(tmp_path, fg_checkpoint, capsys):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    for i, where in enumerate([photos, photos, photos / "sub"]):
        Image.fromarray(_photo(60, 80, seed=i)[0]).save(where / f"p{i}.jpg")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    out = tmp_path / "out"
    args = [
        "remove-bg",
        str(photos),
        "-o",
        str(out),
        "--model",
        str(fg_checkpoint),
        "--no-progress",
    ]
    assert main(args) == 1
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["p0.png", "p1.png", "sub/p2.png"]
    assert Image.open(out / "p0.png").mode == "RGBA"
    err = capsys.readouterr().err
    assert "1 file(s) failed" in err and "broken.jpg" in err
    (photos / "broken.jpg").unlink()
    assert main(args + ["--skip-existing"]) == 0
    assert "3 existing skipped" in capsys.readouterr().out


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def test_http_api_good_and_bad_uploads():
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    from fastapi.testclient import TestClient

    from pixelwise.web.app import Limits, create_app

    client = TestClient(
        create_app(tiny_seg(BrightIsForeground()), limits=Limits(max_upload_mb=0.05)),
        base_url="http://localhost",
    )
    page = client.get("/")
    assert page.status_code == 200 and 'type="file"' in page.text
    # the API by a relative URL: the page works behind a proxy that serves it under a prefix
    assert 'posted("api/remove-background"' in page.text and '"/api/' not in page.text
    # the API's description for people, with nothing fetched from elsewhere (FastAPI's own
    # /docs and /redoc load Swagger UI and fonts from public CDNs)
    docs = client.get("/docs")
    assert docs.status_code == 200 and "<code>POST /api/remove-background</code>" in docs.text
    assert (
        "<code>foreground_strokes</code>" in docs.text
        and "<code>file</code> (required)" in docs.text
    )
    assert "http" not in docs.text and "<script" not in docs.text
    assert client.get("/redoc").status_code == 404
    assert "/api/remove-background" in client.get("/openapi.json").json()["paths"]
    image, _ = _photo(60, 80)
    ok = client.post("/api/remove-background", files={"file": ("p.png", _png(image), "image/png")})
    assert ok.status_code == 200 and ok.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(ok.content)).mode == "RGBA"
    green = client.post(
        "/api/remove-background",
        files={"file": ("p.png", _png(image), "image/png")},
        data={"background": "#00ff00"},
    )
    assert Image.open(io.BytesIO(green.content)).mode == "RGB"
    bad = client.post("/api/remove-background", files={"file": ("x.png", b"garbage", "image/png")})
    assert bad.status_code == 400 and "x.png: not a decodable image" in bad.json()["detail"]
    text = client.post("/api/remove-background", files={"file": ("x.txt", b"hello", "text/plain")})
    assert text.status_code == 415
    big = client.post(
        "/api/remove-background", files={"file": ("big.png", b"\0" * 60_000, "image/png")}
    )
    assert big.status_code == 413
    for colour, status in (("red", 200), ("#f00", 200), ("ff0000", 200), ("reddish", 400)):
        answer = client.post(
            "/api/remove-background",
            files={"file": ("p.png", _png(image), "image/png")},
            data={"background": colour},
        )
        assert answer.status_code == status, colour
    assert "colour name such as white" in answer.json()["detail"]


@pytest.mark.skipif(not ON_PROC, reason="reads /proc (Linux)")
def test_http_api_in_processes_answers_as_the_threads_do(monkeypatch):
    """serve --processes 2: cut-outs (plain, in a box, with a stroke), the photo as shown and the
    served model's mask come from processes of their own, byte for byte as the threads give
    them; a bad upload is the same 400; /api/health says how many; the processes end with the
    server."""
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    from fastapi.testclient import TestClient

    from pixelwise.web.app import Limits, create_app

    monkeypatch.setenv("PIXELWISE_PATH", "torch-fp32")  # both on one path, no probe
    image, _ = _photo(120, 160)
    stroke = json.dumps([{"points": [[20, 20], [40, 30]], "radius": 4}])
    asks = [
        ("/api/remove-background", {}),
        ("/api/remove-background", {"box": "30,10,130,110"}),
        ("/api/remove-background", {"box": "30,10,130,110", "background_strokes": stroke}),
        ("/api/shown", {}),
        ("/api/predict", {"output": "mask"}),
    ]
    answers = {}
    for processes in (1, 2):
        app = create_app("foreground", limits=Limits(processes=processes))
        with TestClient(app, base_url="http://localhost") as client:
            assert client.get("/api/health").json()["processes"] == processes
            for path, form in asks:
                reply = client.post(
                    path, files={"file": ("p.png", _png(image), "image/png")}, data=form
                )
                assert reply.status_code == 200, reply.text
                answers.setdefault((path, str(form)), []).append(reply.content)
            bad = client.post(
                "/api/remove-background", files={"file": ("x.png", b"not a photo", "image/png")}
            )
            assert bad.status_code == 400 and "x.png: not a decodable image" in bad.text
            workers = app.state.workers
            held = [w.process.pid for w in workers.workers] if workers else []
            if workers:  # a process killed (out of memory): its request 500, then started again
                os.kill(held[0], signal.SIGKILL)
                while not ended(held[0]):
                    time.sleep(0.05)
                for status in (500, 200):
                    reply = client.post(
                        "/api/remove-background",
                        files={"file": ("q.png", _png(image[::-1].copy()), "image/png")},
                    )
                    assert reply.status_code == status, reply.text
                    assert status == 200 or "ended abruptly" in reply.text
                held.append(workers.workers[0].process.pid)
        assert len(held) == (3 if processes == 2 else 0)
        deadline = time.monotonic() + 10
        while not all(map(ended, held)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(map(ended, held))  # with the server (Workers.shutdown)
    for ask, (threads, processes) in answers.items():
        assert threads == processes, ask


@pytest.mark.skipif(not ON_PROC, reason="reads /proc (Linux)")
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_serve_processes_end_with_the_server(stop, tmp_path):
    """pixelwise serve --processes 2 stopped (SIGTERM, as a service manager stops it; uvicorn
    raises it again once it has stopped) or killed outright: its processes end with it, and
    no semaphore is left behind (nor a warning about one)."""
    import subprocess
    import sys

    import httpx

    from pixelwise.web.app import check_port

    port = 18000 + os.getpid() % 1000
    check_port("127.0.0.1", port)
    server = subprocess.Popen(
        [sys.executable, "-m", "pixelwise", "serve", "--port", str(port), "--processes", "2"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "log", "w"),
        env=os.environ | {"PIXELWISE_PATH": "torch-fp32"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).json()
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert health["processes"] == 2, (tmp_path / "log").read_text()[-2000:]
        workers = children(server.pid)
        assert len(workers) >= 2  # the two processes (and multiprocessing's resource tracker)
        server.send_signal(stop)
        server.wait(timeout=60)
        deadline = time.monotonic() + 10
        while not all(map(ended, workers)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(map(ended, workers))
        assert "leaked" not in (tmp_path / "log").read_text()  # no semaphore left behind
    finally:
        server.kill()


class FailsOnDisk:
    """A job for a worker process that fails as a full disk would."""

    def in_worker(self, state):
        raise OSError(28, "No space left on device")


def test_a_jobs_own_error_is_its_answer_not_a_dead_process():
    """serve --processes: an error of the job itself (here an OSError, like the pipe's own) is
    raised for its request as it was, and the process goes on; only the pipe's end means the
    process ended."""
    import multiprocessing

    from pixelwise.web.workers import Worker

    setup = ("foreground", "torch", None, "grabcut", None, 1)  # GrabCut: no model to load
    worker = Worker(multiprocessing.get_context("spawn"), setup)
    try:
        pid = worker.process.pid
        for _ in range(2):
            with pytest.raises(OSError, match="No space left"):
                worker.call(FailsOnDisk())
        assert worker.process.pid == pid and worker.process.is_alive()
    finally:
        worker.stop()
    assert not worker.process.is_alive()


def test_a_photos_next_request_goes_to_the_process_that_cut_it_out():
    """serve --processes: a photo's next request (the next stroke) goes back to the process that
    cut it out last, which remembers that cut-out, unless another process is less busy."""
    from pixelwise.web.workers import Workers

    workers = Workers.__new__(Workers)  # the choice alone, no processes started
    workers.busy, workers.last = [0, 0, 0], {b"a": 2}
    assert workers.pick(b"a") == 2 and workers.pick(b"b") == 0
    workers.busy = [0, 1, 1]
    assert workers.pick(b"a") == 0  # its process is busier than another
    workers.busy = [1, 1, 1]
    assert workers.pick(b"a") == 2


def test_http_api_says_when_the_cut_kept_nothing():
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    from fastapi.testclient import TestClient

    from pixelwise.web.app import create_app

    client = TestClient(
        create_app(tiny_seg(BrightIsForeground()), method="model"), base_url="http://localhost"
    )
    image, _ = _photo(60, 80)
    dark = np.full_like(image, 20)  # nothing bright: the network keeps nothing
    for photo, empty in [(image, "false"), (dark, "true")]:
        reply = client.post(
            "/api/remove-background", files={"file": ("p.png", _png(photo), "image/png")}
        )
        assert reply.status_code == 200 and reply.headers["X-Kept-Nothing"] == empty
        alpha = np.asarray(Image.open(io.BytesIO(reply.content)))[..., 3]
        assert (alpha > 127).any() == (empty == "false")
    spec = client.get("/openapi.json").json()["paths"]["/api/remove-background"]["post"]
    assert "X-Kept-Nothing" in spec["responses"]["200"]["headers"]


def test_http_api_takes_a_12_bit_photos_input_range():
    """A 12-bit photo in a 16-bit PNG is seen 16 times darker, and the network keeps nothing;
    ``input_range=0,4095`` shows it at full range, as remove-bg's --input-range; a bad range is
    a 400 that says the form."""
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    from fastapi.testclient import TestClient

    from pixelwise.web.app import create_app

    client = TestClient(
        create_app(tiny_seg(BrightIsForeground()), method="model"), base_url="http://localhost"
    )
    grey = _photo(60, 80)[0][..., 0].astype(np.uint16) * 16  # 0..4080
    buf = io.BytesIO()
    Image.fromarray(grey).save(buf, format="PNG")  # 16-bit grey
    upload = {"file": ("p12.png", buf.getvalue(), "image/png")}
    kept = {}
    for ranged in (None, "0,4095"):
        fields = {"input_range": ranged} if ranged else {}
        reply = client.post("/api/remove-background", files=upload, data=fields)
        assert reply.status_code == 200
        kept[ranged] = reply.headers["X-Kept-Nothing"] == "false"
    assert kept == {None: False, "0,4095": True}
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.repeat(grey[..., None], 3, -1))  # 16-bit colour TIFF
    tiff = {"file": ("p12.tif", buf.getvalue(), "image/tiff")}
    reply = client.post("/api/remove-background", files=tiff, data={"input_range": "0,4095"})
    assert reply.status_code == 200 and reply.headers["X-Kept-Nothing"] == "false"
    bad = client.post("/api/remove-background", files=upload, data={"input_range": "4095,0"})
    assert bad.status_code == 400 and "input_range must be LO,HI" in bad.json()["detail"]


def test_http_matting_megapixels_mats_smaller_within_the_servers_bound(monkeypatch):
    """The form's matting_megapixels (the web page's edits: quicker strokes) mats a larger photo
    shrunk to that size; it cannot raise the server's --max-matting-megapixels; a bad one gets
    400 naming the field."""
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    from fastapi.testclient import TestClient

    import pixelwise.matting as matting
    from pixelwise.web.app import Limits, create_app

    matted, solve = [], matting.closed_form_matting
    monkeypatch.setattr(
        matting, "closed_form_matting", lambda rgb, tri: matted.append(rgb.shape) or solve(rgb, tri)
    )
    limits = Limits(max_matting_megapixels=0.01)
    client = TestClient(
        create_app(tiny_seg(BrightIsForeground()), method="model", limits=limits),
        base_url="http://localhost",
    )
    upload = {"file": ("p.png", _png(_photo(120, 160)[0]), "image/png")}  # 0.0192 megapixels

    def pixels(**fields) -> int:
        reply = client.post(
            "/api/remove-background", files=upload, data={"matting": "true"} | fields
        )
        assert reply.status_code == 200, reply.text
        return matted[-1][0] * matted[-1][1]

    assert 0.009e6 < pixels() <= 0.01e6  # the server's bound
    assert 0.003e6 < pixels(matting_megapixels="0.004") <= 0.004e6  # the request's, smaller
    assert 0.009e6 < pixels(matting_megapixels="1") <= 0.01e6  # never above the server's
    for bad in ("0", "-1", "nan", "one"):
        reply = client.post(
            "/api/remove-background", files=upload, data={"matting_megapixels": bad}
        )
        assert reply.status_code == 400
        assert "matting_megapixels must be a number above 0" in reply.json()["detail"]
    assert client.get("/api/health").json()["edit_matting_megapixels"] == 1.0


def test_http_server_without_pymatting_serves_without_matting(monkeypatch, capsys):
    """Without pymatting installed, serve says so once and serves with matting off (GET
    /api/health: max_matting_megapixels 0; the page's box disabled); a request for matting gets
    400 with the reason (it was 500), one without it the cut-out."""
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    import sys

    from fastapi.testclient import TestClient

    from pixelwise.web.app import create_app

    monkeypatch.setitem(sys.modules, "pymatting", None)  # as when not installed
    client = TestClient(create_app(method="grabcut"), base_url="http://localhost")
    assert "pymatting is not installed: serving without matting" in capsys.readouterr().err
    assert client.get("/api/health").json()["max_matting_megapixels"] == 0
    assert "const MATTING_PIXELS = 0 * 1e6;" in client.get("/").text
    upload = {"file": ("p.png", _png(_photo(60, 80)[0]), "image/png")}
    reply = client.post("/api/remove-background", files=upload, data={"matting": "true"})
    assert reply.status_code == 400 and "this server does not mat" in reply.json()["detail"]
    assert client.post("/api/remove-background", files=upload).status_code == 200


def test_http_shown_is_the_photo_as_remove_bg_reads_it_for_browsers_that_cannot_show_it():
    """POST /api/shown (the web page's way to draw a TIFF, or HEIC outside Safari): the photo
    upright, at 8 bits, shrunk to --preview-megapixels, as a JPEG (a PNG with its transparency),
    its own size in X-Photo-Width and X-Photo-Height; bad uploads get the API's errors."""
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    from fastapi.testclient import TestClient

    from pixelwise.web.app import Limits, create_app

    seg = tiny_seg(BrightIsForeground())
    client = TestClient(
        create_app(seg, method="model", limits=Limits(preview_megapixels=0.003)),
        base_url="http://localhost",
    )
    image = _photo(60, 80)[0]

    def shown(data: bytes, name: str, **kwargs):
        reply = client.post("/api/shown", files={"file": (name, data, "image/tiff")}, **kwargs)
        size = (reply.headers.get("X-Photo-Width"), reply.headers.get("X-Photo-Height"))
        return reply, size

    buf = io.BytesIO()
    tifffile.imwrite(buf, image.astype(np.uint16) * 257)  # 16 bits
    reply, size = shown(buf.getvalue(), "deep.tif")
    copy = Image.open(io.BytesIO(reply.content))
    assert reply.headers["content-type"] == "image/jpeg" and size == ("80", "60")
    assert copy.size == (63, 47)  # 3,000 pixels at most, the aspect kept
    expected = np.asarray(Image.fromarray(image).resize(copy.size, Image.BOX), np.float64)
    assert np.abs(np.asarray(copy, np.float64) - expected).mean() < 6  # JPEG's rounding
    rgba = np.dstack([image, np.full((60, 80), 255, np.uint8)])
    rgba[:, :40, 3] = 0
    buf = io.BytesIO()
    tifffile.imwrite(buf, rgba, extrasamples=["unassalpha"])
    reply, size = shown(buf.getvalue(), "cut.tif")
    assert reply.headers["content-type"] == "image/png" and size == ("80", "60")
    alpha = np.asarray(Image.open(io.BytesIO(reply.content)))[..., 3]
    assert alpha[:, :28].max() == 0 and alpha[:, -28:].min() == 255
    exif = Image.Exif()
    exif[0x0112] = 6  # stored on its side: shown upright
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", exif=exif)
    assert shown(buf.getvalue(), "turned.jpg")[1] == ("60", "80")
    assert shown(b"not an image", "x.tif")[0].status_code == 400
    reply = client.post(
        "/api/shown", files={"file": ("p.png", _png(image), "image/png")}, data={"box": "1,2,3,4"}
    )
    assert reply.status_code == 400 and "unknown field(s) box" in reply.json()["detail"]
    whole = TestClient(
        create_app(seg, method="model", limits=Limits(preview_megapixels=0)),
        base_url="http://localhost",
    )
    reply = whole.post("/api/shown", files={"file": ("p.png", _png(image), "image/png")})
    assert Image.open(io.BytesIO(reply.content)).size == (80, 60)  # 0: the photo's own size


def test_http_shown_of_a_phones_heic_photo():
    """An iPhone's HEIC photo, which Chrome and Firefox do not show: /api/shown gives the page a
    JPEG of it to draw on, its colours as read for the cut-out."""
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    pillow_heif = pytest.importorskip("pillow_heif", reason="HEIC needs the heic extra")
    from fastapi.testclient import TestClient

    from pixelwise.web.app import create_app

    pillow_heif.register_heif_opener()  # for writing the test photo
    image = _photo(60, 80)[0]
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="HEIF", quality=95)
    client = TestClient(
        create_app(tiny_seg(BrightIsForeground()), method="model"), base_url="http://localhost"
    )
    reply = client.post(
        "/api/shown", files={"file": ("IMG_0001.HEIC", buf.getvalue(), "image/heic")}
    )
    assert reply.status_code == 200 and reply.headers["content-type"] == "image/jpeg"
    assert (reply.headers["X-Photo-Width"], reply.headers["X-Photo-Height"]) == ("80", "60")
    shown = np.asarray(Image.open(io.BytesIO(reply.content)), np.float64)
    assert shown.shape == (60, 80, 3) and np.abs(shown - image).mean() < 6


def test_web_page_in_a_real_browser(tmp_path):
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    from pixelwise.web.app import create_app

    photo = tmp_path / "photo.png"
    Image.fromarray(_photo(90, 120)[0]).save(photo)
    with served_page(create_app(tiny_seg(BrightIsForeground()))) as (page, address):
        page.goto(address)
        page.set_input_files("#file", str(photo))
        page.wait_for_function(
            "document.getElementById('status').textContent === 'done'", timeout=30_000
        )
        # the shown cut-out has transparent pixels (corner) and opaque ones (centre)
        alphas = page.evaluate("""() => {
            const img = document.getElementById('after'), c = document.createElement('canvas');
            c.width = img.naturalWidth; c.height = img.naturalHeight;
            const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
            return [c.width, ctx.getImageData(2, 2, 1, 1).data[3], ctx.getImageData(60, 45, 1, 1).data[3]];
        }""")
        assert alphas == [120, 0, 255]
        assert page.is_enabled("#matting") and page.is_hidden("#matting-limit")  # 2 MP at most
        with page.expect_download() as info:
            page.click("#download")
        saved = tmp_path / "download.png"
        info.value.save_as(saved)
        assert info.value.suggested_filename == "photo-cutout.png"
        page.select_option("#format", "webp")  # cut out again, answered as WebP
        page.wait_for_function("window.__shown === 2", timeout=30_000)
        assert page.text_content("#download") == "Download WebP"
        with page.expect_download() as info:
            page.click("#download")
        webp = tmp_path / "download.webp"
        info.value.save_as(webp)
        assert info.value.suggested_filename == "photo-cutout.webp"
        page.check("#crop")  # cut out again, cropped to the disc
        page.wait_for_function("window.__shown === 3", timeout=30_000)
        cropped = page.evaluate("[document.getElementById('after').naturalWidth,"
                                " document.getElementById('after').naturalHeight]")  # fmt: skip
        page.uncheck("#crop")
        page.wait_for_function("window.__shown === 4", timeout=30_000)
        page.select_option("#background", "blur")  # onto the photo's blurred background
        page.wait_for_function("window.__shown === 5", timeout=30_000)
        corner = page.evaluate("""() => {
            const img = document.getElementById('after'), c = document.createElement('canvas');
            c.width = img.naturalWidth; c.height = img.naturalHeight;
            const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
            return Array.from(ctx.getImageData(2, 2, 1, 1).data);
        }""")
    downloaded = Image.open(saved)
    assert downloaded.mode == "RGBA" and downloaded.size == (120, 90)
    assert np.asarray(downloaded)[..., 3].min() == 0
    as_webp = Image.open(webp)
    assert as_webp.format == "WEBP" and as_webp.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(as_webp)[..., 3], np.asarray(downloaded)[..., 3])
    ys, xs = np.nonzero(np.asarray(downloaded)[..., 3])
    assert cropped == [xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()] != [120, 90]
    assert corner[3] == 255 and max(corner[:3]) > 0  # the blurred dark background, opaque


def test_background_demo_writes_cutouts(tmp_path, fg_checkpoint, capsys):
    assert (
        main(
            ["demo", "--remove-bg", "--out", str(tmp_path / "demo"), "--model", str(fg_checkpoint)]
        )
        == 0
    )
    cutouts = sorted((tmp_path / "demo" / "cutouts").glob("*.png"))
    assert [p.stem for p in cutouts] == ["astronaut", "chelsea", "coffee", "rocket"]
    assert all(Image.open(p).mode == "RGBA" for p in cutouts)
    assert str(tmp_path / "demo" / "cutouts") in capsys.readouterr().out


def test_matting_falls_back_when_the_mask_is_too_small_for_a_trimap():
    image, _ = _photo(80, 100)
    prob = np.zeros((40, 50), np.float32)
    prob[20, 25] = 1.0  # one pixel: erosion leaves no sure foreground
    from pixelwise.cutout import estimate_alpha

    alpha = estimate_alpha(image, prob_small=prob, matting=True)
    assert alpha.shape == (80, 100) and 0 <= alpha.min() and alpha.max() <= 1


def test_concurrent_first_requests_do_not_race(tmp_path):
    """Eight requests at once against a fresh app: the network's one-time preparation is
    serialised (it crashed the server process when two threads converted it at once)."""
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    from pixelwise.web.app import Limits, create_app

    torch.manual_seed(0)
    seg = tiny_seg()
    seg.network = create_model("unet", in_channels=3, num_classes=2, depth=2, base_width=4).eval()
    client = TestClient(create_app(seg, limits=Limits(threads=4)), base_url="http://localhost")
    photo = _png(_photo(60, 80)[0])
    with ThreadPoolExecutor(8) as pool:
        codes = list(
            pool.map(
                lambda _: (
                    client.post(
                        "/api/remove-background", files={"file": ("p.png", photo, "image/png")}
                    ).status_code
                ),
                range(8),
            )
        )
    assert codes == [200] * 8


def test_the_network_is_trusted_where_it_is_confident():
    from pixelwise.cutout import OUTSIDE_PRIOR, box_prior, trusted

    prob = np.array([[0.0, 1.0, 0.5, 0.75]])
    fallback = np.array([[0.5, 0.5, 0.25, 0.5]])
    # c = |2p - 1| = 1, 1, 0, 0.5: confident pixels keep p, an unsure one takes the fallback
    np.testing.assert_allclose(trusted(prob, fallback), [[0.0, 1.0, 0.25, 0.5 * 0.75 + 0.5 * 0.5]])
    prior = box_prior((4, 6), (1, 1, 5, 3))
    assert prior[2, 3] == 0.5 and prior[0, 0] == OUTSIDE_PRIOR and (prior == 0.5).sum() == 8


def test_cli_names_the_cut_outs_that_kept_nothing(tmp_path, monkeypatch, capsys):
    import pixelwise.cutout

    def cut(src, *args, **kwargs):  # "blank" photos: nothing found
        alpha = 0 if "blank" in str(src) else 255
        return Image.new("RGBA", (8, 6), (9, 9, 9, alpha))

    monkeypatch.setattr(pixelwise.cutout, "remove_background", cut)
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    for name in ["a.png", "blank1.png", "sub/blank2.jpg"]:
        Image.new("RGB", (8, 6)).save(photos / name)
    out = tmp_path / "out"
    run = ["remove-bg", str(photos), "-o", str(out), "--method", "grabcut", "--no-progress"]
    assert main(run) == 0  # an empty cut-out is an answer, written like the others
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "a.png",
        "blank1.png",
        "sub/blank2.png",
    ]
    err = capsys.readouterr().err
    assert "2 cut-out(s) kept nothing: blank1, sub/blank2;" in err and "--box" in err


def test_kept_nothing_reads_the_alpha():
    from pixelwise.cutout import kept_nothing

    assert kept_nothing(Image.new("RGBA", (4, 4), (255, 255, 255, 100)))
    assert not kept_nothing(Image.new("RGBA", (4, 4), (0, 0, 0, 200)))
    assert kept_nothing(Image.new("L", (4, 4), 0)) and not kept_nothing(Image.new("L", (4, 4), 255))
    assert not kept_nothing(Image.new("RGB", (4, 4)))  # composited: cannot tell


def test_http_predict_returns_what_predict_and_segment_write():
    """POST /api/predict: the class-id mask (palette PNG) equals pixelwise.predict's; objects
    (16-bit PNG) and coco (RLE annotations) equal pixelwise.segment's objects; bad options 400."""
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    from fastapi.testclient import TestClient
    from pycocotools import mask as mask_utils

    import pixelwise
    from pixelwise.web.app import create_app

    seg = tiny_seg(BrightIsForeground())
    client = TestClient(create_app(seg, method="model"), base_url="http://localhost")
    image = np.full((40, 60, 3), 20, np.uint8)
    image[5:15, 5:20], image[25:35, 30:55] = 230, 230  # two bright objects
    upload = {"file": ("p.png", _png(image), "image/png")}

    reply = client.post("/api/predict", files=upload)
    assert reply.status_code == 200 and reply.headers["content-type"] == "image/png"
    assert json.loads(reply.headers["X-Class-Names"]) == ["background", "foreground"]
    mask = Image.open(io.BytesIO(reply.content))
    assert mask.mode == "P" and np.array_equal(np.asarray(mask), pixelwise.predict(seg, image))

    labels = pixelwise.segment(seg, image, object_class=1)
    assert labels.max() == 2
    objects = client.post(
        "/api/predict", files=upload, data={"output": "objects", "object_class": "1"}
    )
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(objects.content))), labels)
    default = client.post("/api/predict", files=upload, data={"output": "objects"})
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(default.content))), labels)  # of 2
    coco = client.post("/api/predict", files=upload, data={"output": "coco", "object_class": "1"})
    body = coco.json()
    assert (body["height"], body["width"]) == (40, 60) and body["categories"][0][
        "name"
    ] == "foreground"
    decoded = [mask_utils.decode(a["segmentation"]) for a in body["annotations"]]
    assert [np.array_equal(d, labels == k) for k, d in enumerate(decoded, 1)] == [True, True]
    reply = client.post(
        "/api/predict", files=upload, data={"output": "geojson", "object_class": "1"}
    )
    assert reply.headers["content-type"] == "application/geo+json"
    features = reply.json()["features"]
    assert [f["properties"]["measurements"]["object"] for f in features] == [1, 2]
    for k, item in enumerate(features, 1):
        assert np.array_equal(geojson_raster(item["geometry"], labels.shape), labels == k)
        assert item["properties"]["classification"]["name"] == "foreground"
        assert item["properties"]["classification"]["color"] == seg.palette()[1].tolist()

    for data, says in (
        ({"output": "png"}, "output must be one of mask, objects, coco, geojson"),
        ({"output": "coco", "object_class": "7"}, "object_class 7: the model's classes are"),
        ({"outptu": "mask"}, "unknown field(s) outptu"),
    ):
        bad = client.post("/api/predict", files=upload, data=data)
        assert bad.status_code == 400 and says in bad.json()["detail"], data
    assert "/api/predict" in client.get("/openapi.json").json()["paths"]


def _cut_out_photo():
    """A bright disc and, to its right, a larger bright rectangle that an earlier cut made
    transparent (its colours kept under alpha 0, as some tools keep them); part of the disc is
    half transparent."""
    image, _ = _photo(300, 400)
    yy, xx = np.mgrid[:300, :400]
    disc = (yy - 150) ** 2 + (xx - 110) ** 2 < 60**2
    image[...] = np.where(disc[..., None], 210, image.min(axis=-1, keepdims=True) // 4 + 30)
    image[20:280, 230:390] = 220  # bright, larger than the disc: the largest without the alpha
    alpha = np.full((300, 400), 255, np.uint8)
    alpha[:, 220:] = 0
    alpha[140:160, 100:120] = 128
    return np.dstack([image, alpha]), disc


def test_a_photo_with_transparency_stays_transparent_where_it_was():
    rgba, disc = _cut_out_photo()
    seg = tiny_seg(BrightIsForeground())
    as_rgb = np.asarray(remove_background(rgba[..., :3], seg, mask_only=True, model_size=96))
    assert (as_rgb[:, 230:] > 127).mean() > 0.5  # without its alpha: the rectangle
    for image in (rgba, Image.fromarray(rgba, "RGBA")):
        out = np.asarray(remove_background(image, seg, model_size=96))
        cut = out[..., 3] > 127
        assert (cut & disc).sum() / (cut | disc).sum() > 0.95  # cut inside the opaque part
        assert (out[..., 3] <= rgba[..., 3]).all() and out[150, 110, 3] <= 128
        kept = out[..., 3] > 0
        np.testing.assert_array_equal(out[kept, :3], rgba[kept, :3])
    box = np.asarray(remove_background(rgba, seg, model_size=96, box=(200, 0, 400, 300)))
    assert not box[:, 220:, 3].any()  # a user's box is taken as given; never more opaque
    clear = rgba.copy()
    clear[..., 3] = 0
    assert not np.asarray(remove_background(clear, seg, model_size=96))[..., 3].any()


def test_a_tiffs_transparency_is_kept_too_premultiplied_or_not(tmp_path):
    """A TIFF with transparency (a print workflow's cut-out) used to be cut again as if opaque:
    its alpha was dropped. Its alpha is now read as a PNG's is, whether its colours are stored
    as they are or multiplied by the alpha (premultiplied, divided again as Pillow does), 8
    or 16 bits, from a file as from its bytes."""
    import tifffile

    rgba, disc = _cut_out_photo()
    seg = tiny_seg(BrightIsForeground())
    expected = np.asarray(remove_background(rgba, seg, model_size=96))
    premultiplied = (rgba[..., :3] * (rgba[..., 3:] / 255.0)).round().astype(np.uint8)
    stored = {
        "plain.tif": (rgba, 2),
        "deep.tif": (rgba.astype(np.uint16) * 257, 2),
        "pre.tif": (np.dstack([premultiplied, rgba[..., 3]]), 1),
    }
    for name, (samples, extra) in stored.items():
        tifffile.imwrite(tmp_path / name, samples, photometric="rgb", extrasamples=[extra])
        for given in (tmp_path / name, (tmp_path / name).read_bytes()):
            out = np.asarray(remove_background(given, seg, model_size=96))
            assert not out[:, 220:, 3].any(), name  # transparent where it was
            if name != "pre.tif":  # its colours back within rounding of the division
                np.testing.assert_array_equal(out[..., 3], expected[..., 3])
            else:
                kept = (out[..., 3] > 0) & (rgba[..., 3] == 255)
                np.testing.assert_array_equal(out[kept, :3], rgba[kept, :3])


def test_cli_and_http_keep_a_photos_transparency(tmp_path, fg_checkpoint):
    rgba, _ = _cut_out_photo()
    Image.fromarray(rgba, "RGBA").save(tmp_path / "cut.png")
    out = tmp_path / "again.png"
    run = ["remove-bg", str(tmp_path / "cut.png"), "-o", str(out), "--no-progress"]
    assert main(run + ["--model", str(fg_checkpoint)]) == 0
    assert not np.asarray(Image.open(out))[:, 220:, 3].any()
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    from fastapi.testclient import TestClient

    from pixelwise.web.app import create_app

    client = TestClient(create_app(tiny_seg(BrightIsForeground())), base_url="http://localhost")
    sent = (tmp_path / "cut.png").read_bytes()
    answer = client.post("/api/remove-background", files={"file": ("cut.png", sent, "image/png")})
    assert answer.status_code == 200
    alpha = np.asarray(Image.open(io.BytesIO(answer.content)))[..., 3]
    assert not alpha[:, 220:].any() and alpha[150, 60] == 255


def test_tiff_cut_outs_for_print_software(tmp_path, capsys):
    """``--format tif`` / ``-o cut.tif`` / the HTTP API's ``format=tif``: the PNG's pixels and
    alpha in a lossless TIFF (alpha unassociated), 16 bits from a 16-bit photo as the 16-bit
    PNG holds them, the photo's colour profile carried; evaluate reads them by their alpha as
    it reads PNG cut-outs; masks stay PNG and animations are refused, by name."""
    import tifffile
    from PIL import ImageCms

    from pixelwise.cutout import cutout_bytes

    seg = tiny_seg(BrightIsForeground())
    image, disc = _photo(60, 80)
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    deep = image.astype(np.uint16) * 257
    for photo in (image, deep):
        cutout = remove_background(photo, seg, method="model")
        cutout.info["icc_profile"] = profile
        with tifffile.TiffFile(io.BytesIO(cutout_bytes(cutout, "tif"))) as tif:
            page = tif.pages.first
            assert int(page.extrasamples[0]) == 2 and bytes(page.tags[34675].value) == profile
            written = page.asarray()
        png = cv2_png(cutout_bytes(cutout, "png"))
        assert written.dtype == photo.dtype
        np.testing.assert_array_equal(written, png)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(image).save(photos / "p.png")
    cut = ["--method", "grabcut", "--no-progress"]
    assert main(["remove-bg", str(photos / "p.png"), "-o", str(tmp_path / "one.tif"), *cut]) == 0
    assert main(["remove-bg", str(photos), "-o", str(tmp_path / "t"), "--format", "tif", *cut]) == 0
    assert main(["remove-bg", str(photos), "-o", str(tmp_path / "p"), *cut]) == 0
    png = np.asarray(Image.open(tmp_path / "p" / "p.png"))
    for path in (tmp_path / "one.tif", tmp_path / "t" / "p.tif"):
        np.testing.assert_array_equal(tifffile.imread(path), png)
    masks = tmp_path / "data" / "masks"
    masks.mkdir(parents=True)
    (tmp_path / "data" / "images").symlink_to(photos)
    Image.fromarray(disc.astype(np.uint8)).save(masks / "p.png")
    scores = {}
    for name in ("t", "p"):
        out = tmp_path / f"{name}.json"
        assert (
            main(["evaluate", str(tmp_path / name), str(tmp_path / "data"), "--json", str(out)])
            == 0
        )
        scores[name] = json.loads(out.read_text())["mean_iou"]
    assert scores["t"] == scores["p"] > 0.5
    capsys.readouterr()
    assert main(["remove-bg", str(photos), "-o", str(tmp_path / "m.tif"), "--mask-only"]) == 2
    assert "--mask-only writes masks as PNG (lossless), not tif" in capsys.readouterr().err
    from pixelwise.video import Animation, check_animation_format

    with pytest.raises(ValueError, match="cannot be written as tif"):
        check_animation_format(Animation([Image.new("RGB", (4, 4))] * 2, [100, 100], 0), "tif")
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    from fastapi.testclient import TestClient

    from pixelwise.web.app import create_app

    client = TestClient(create_app(seg, method="model"), base_url="http://localhost")
    upload = {"file": ("p.png", (photos / "p.png").read_bytes(), "image/png")}
    reply = client.post("/api/remove-background", files=upload, data={"format": "tif"})
    assert reply.status_code == 200 and reply.headers["content-type"] == "image/tiff"
    expected = np.asarray(remove_background(image, seg, method="model"))
    np.testing.assert_array_equal(tifffile.imread(io.BytesIO(reply.content)), expected)


def cv2_png(data: bytes) -> np.ndarray:
    """A PNG's RGBA pixels at their own bit depth (8 or 16), as OpenCV decodes them."""
    import cv2

    bgra = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return bgra[..., [2, 1, 0, 3]]


def test_cli_writes_webp_and_jpeg_cut_outs(tmp_path, fg_checkpoint, capsys):
    image, disc = _photo(60, 80)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(image).save(photos / "p.jpg")
    model = ["--model", str(fg_checkpoint), "--no-progress"]
    assert main(["remove-bg", str(photos), "-o", str(tmp_path / "png"), *model]) == 0
    png = np.asarray(Image.open(tmp_path / "png" / "p.png"))
    assert (
        main(["remove-bg", str(photos), "-o", str(tmp_path / "w"), "--format", "webp", *model]) == 0
    )
    webp = Image.open(tmp_path / "w" / "p.webp")
    assert webp.format == "WEBP" and webp.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(webp)[..., 3], png[..., 3])  # the outline exact
    assert np.abs(np.asarray(webp, np.int16) - png)[png[..., 3] == 255].mean() < 3
    one = tmp_path / "one.jpg"  # -o's suffix names the format; no transparency: onto white
    assert main(["remove-bg", str(photos / "p.jpg"), "-o", str(one), *model]) == 0
    jpeg = Image.open(one)
    assert jpeg.format == "JPEG" and jpeg.mode == "RGB"
    assert (np.asarray(jpeg)[png[..., 3] == 0] > 235).all()
    green = tmp_path / "green.jpg"
    assert (
        main(
            [
                "remove-bg",
                str(photos / "p.jpg"),
                "-o",
                str(green),
                "--background",
                "#00ff00",
                *model,
            ]
        )
        == 0
    )
    assert np.abs(np.asarray(Image.open(green))[2, 2].astype(int) - (0, 255, 0)).max() <= 8
    named = ["remove-bg", str(photos / "p.jpg"), "-o", str(tmp_path / "n.jpg"), *model]
    assert main([*named, "--background", "navy"]) == 0  # a colour name, as CSS names them
    assert np.abs(np.asarray(Image.open(tmp_path / "n.jpg"))[2, 2] - (0, 0, 128)).max() <= 8
    assert main([*named, "--background", str(green)]) == 0  # an image: the green one
    assert np.abs(np.asarray(Image.open(tmp_path / "n.jpg"))[2, 2] - (0, 255, 0)).max() <= 12
    assert main([*named, "--background", "gren"]) == 2
    assert "--background gren: not a colour" in capsys.readouterr().err
    rerun = [
        "remove-bg",
        str(photos),
        "-o",
        str(tmp_path / "w"),
        "--format",
        "webp",
        "--skip-existing",
    ]
    assert main(rerun + model) == 0 and "1 existing skipped" in capsys.readouterr().out
    for wrong, message in [
        (["-o", str(tmp_path / "x.bmp")], "cut-outs are written as PNG, WebP, JPEG or TIFF"),
        (["-o", str(tmp_path / "x.jpg"), "--format", "webp"], "names a jpg file; --format webp"),
        (["-o", str(tmp_path / "m"), "--format", "jpg", "--mask-only"], "masks as PNG (lossless)"),
    ]:
        assert main(["remove-bg", str(photos / "p.jpg"), *wrong, *model]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x.bmp").exists() and not (tmp_path / "m").exists()


def test_http_api_answers_in_the_format_asked():
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    from fastapi.testclient import TestClient

    from pixelwise.web.app import create_app

    client = TestClient(create_app(tiny_seg(BrightIsForeground())), base_url="http://localhost")
    image, _ = _photo(60, 80)

    def post(**fields):
        files = {"file": ("p.png", _png(image), "image/png")}
        return client.post("/api/remove-background", files=files, data=fields)

    png = np.asarray(Image.open(io.BytesIO(post().content)))
    webp = post(format="webp")
    assert webp.status_code == 200 and webp.headers["content-type"] == "image/webp"
    assert 'filename="cutout.webp"' in webp.headers["content-disposition"]
    np.testing.assert_array_equal(
        np.asarray(Image.open(io.BytesIO(webp.content)))[..., 3], png[..., 3]
    )
    jpeg = post(format="jpg")
    assert jpeg.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(jpeg.content)).mode == "RGB"
    for bad in ({"format": "gif"}, {"format": "webp", "mask_only": "true"}):
        answer = post(**bad)
        assert answer.status_code == 400 and "png, webp, jpg or tif" in answer.json()["detail"]
    assert "format" in json.dumps(client.get("/openapi.json").json())


def test_a_12_bit_photo_warns_and_with_its_range_cuts_as_its_8_bit_copy(
    tmp_path, capsys, monkeypatch
):
    """A 12-bit camera's photo in a 16-bit file is seen 16 times darker by its dtype: a DimPhoto
    warning (remove-bg: the note of predict, once per file); ``input_range=(0, 4095)``
    (``--input-range 0,4095``) cuts it as its 8-bit copy, colours shown at full range."""
    import tifffile

    from pixelwise.cutout import DimPhoto

    image, disc = _photo(120, 160)
    twelve = image.astype(np.uint16) * 16  # 0..4080
    seg = tiny_seg(BrightIsForeground())
    with pytest.warns(DimPhoto, match=r"input_range=\(0, 4095\)"):
        remove_background(twelve, seg, model_size=64)
    ranged = np.asarray(remove_background(twelve, seg, model_size=64, input_range=(0, 4095)))
    eight = np.asarray(remove_background(image, seg, model_size=64))
    alpha, expected = ranged[..., 3] > 127, eight[..., 3] > 127
    assert (alpha & expected).sum() / (alpha | expected).sum() > 0.99
    shown = np.rint(twelve.astype(np.float64) / 4095 * 255)  # as map_range scales it
    assert np.abs(ranged[alpha, :3] - shown[alpha]).max() <= 1
    tifffile.imwrite(tmp_path / "p12.tif", twelve)
    argv = ["remove-bg", str(tmp_path / "p12.tif"), "--method", "grabcut", "--no-progress"]
    assert main([*argv, "-o", str(tmp_path / "a.png")]) == 0
    assert "such as " + str(tmp_path / "p12.tif") in capsys.readouterr().err
    assert main([*argv, "-o", str(tmp_path / "b.png"), "--input-range", "0,4095"]) == 0
    assert "--input-range 0,4095 shows" not in capsys.readouterr().err
    # from standard input: the warning as one note line, not Python's file:line form
    grey = io.BytesIO()
    Image.fromarray(twelve[..., 0]).save(grey, format="PNG")  # 16-bit grey
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(grey.getvalue())))
    stream = ["remove-bg", "-", "-o", str(tmp_path / "c.png"), "--method", "grabcut"]
    assert main(stream) == 0
    said = capsys.readouterr().err
    assert "pixelwise: note: a 16-bit photo with values under 4096" in said
    assert "(remove-bg --input-range 0,4095)" in said and "DimPhoto" not in said


def test_remove_bg_cuts_an_animated_gif_frame_by_frame_into_an_animation(
    tmp_path, monkeypatch, capsys
):
    """An animated GIF (frames after the first stored as what changed) is cut out frame by frame
    into an animated PNG (or WebP) with each frame's time and the loop count: each frame's alpha
    is remove_background's of that frame as shown; JPEG, which holds no animation, is refused by
    name, and a GIF cut short is named as a bad file."""
    import pixelwise.cutout as cutout

    seg = tiny_seg(BrightIsForeground())
    monkeypatch.setattr(cutout, "get_model", lambda m, runtime="torch": seg)
    gif, shown, discs = _animated_gif(tmp_path)
    with Image.open(gif) as stored:
        stored.seek(1)
        assert stored.tile[0][1] != (0, 0, 64, 48)  # the second frame: what changed alone
    common = ["remove-bg", str(gif), "--checkpoint", "tiny", "--method", "model", "--no-progress"]
    assert main([*common, "-o", str(tmp_path / "out")]) == 0
    assert main([*common, "-o", str(tmp_path / "cut.webp")]) == 0
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(gif.read_bytes())))
    assert main(["remove-bg", "-", "-o", str(tmp_path / "in.png"), "--checkpoint", "tiny"]) == 0
    for written in ("out/anim.png", "cut.webp", "in.png"):
        _check_animated_cutout((tmp_path / written).read_bytes(), shown, discs, seg)
    assert main([*common, "-o", str(tmp_path / "cut.jpg")]) == 1
    assert "anim.gif: an animation (3 frames) cannot be written as jpg" in capsys.readouterr().err
    (tmp_path / "cut.gif").write_bytes(gif.read_bytes()[:-400])
    argv = ["remove-bg", str(tmp_path / "cut.gif"), "--checkpoint", "tiny", "--method", "model"]
    assert main([*argv, "-o", str(tmp_path / "o2"), "--no-progress"]) == 1
    assert "cut.gif: cannot decode" in capsys.readouterr().err


def _animated_gif(tmp_path):
    """A GIF of 3 frames (40, 120 and 80 ms, looping) in which the bright disc moves right over
    a still textured background, so that the frames after the first store only the part that
    changed: its path, the frames as shown and the discs."""
    shown, discs = [], []
    still, first = _photo(48, 64, seed=0)
    palette = Image.fromarray(still).quantize(64, dither=Image.Dither.NONE)
    backdrop = np.where(first[..., None], 40, still)  # the background without the disc
    for shift in (0, 6, 12):
        disc = np.roll(first, shift, axis=1)
        image = np.where(disc[..., None], np.roll(still, shift, axis=1), backdrop)
        frame = Image.fromarray(image.astype(np.uint8))
        shown.append(frame.quantize(palette=palette, dither=Image.Dither.NONE).convert("RGB"))
        discs.append(disc)
    gif = tmp_path / "anim.gif"
    shown[0].save(gif, save_all=True, append_images=shown[1:], duration=[40, 120, 80], loop=0)
    return gif, shown, discs


def _check_animated_cutout(data: bytes, shown, discs, seg) -> None:
    """An animated cut-out (PNG or WebP) of :func:`_animated_gif`: 3 frames, their times and
    the loop kept, each frame's alpha remove_background's of that frame (the disc)."""
    with Image.open(io.BytesIO(data)) as result:
        assert result.n_frames == 3 and result.info["loop"] == 0
        for index, (frame, disc) in enumerate(zip(shown, discs)):
            result.seek(index)
            alpha = np.asarray(result.convert("RGBA"))[..., 3]  # WebP: info once loaded
            assert result.info["duration"] == [40, 120, 80][index]
            expected = np.asarray(remove_background(frame, seg, method="model"))[..., 3]
            np.testing.assert_array_equal(alpha, expected)
            assert ((alpha > 127) & disc).sum() / ((alpha > 127) | disc).sum() > 0.9


def test_http_api_cuts_an_animated_gif_frame_by_frame(tmp_path):
    """``POST /api/remove-background`` with an animated GIF answers with an animated PNG (format
    webp: WebP) of each frame's cut-out; jpg is a 400, and the size limit counts every frame
    (413)."""
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    from fastapi.testclient import TestClient

    from pixelwise.web.app import Limits, create_app

    seg = tiny_seg(BrightIsForeground())
    gif, shown, discs = _animated_gif(tmp_path)
    upload = {"file": ("anim.gif", gif.read_bytes(), "image/gif")}
    client = TestClient(create_app(seg, method="model"), base_url="http://localhost")
    for fmt in ("png", "webp"):
        reply = client.post("/api/remove-background", files=upload, data={"format": fmt})
        assert reply.status_code == 200 and reply.headers["X-Kept-Nothing"] == "false"
        _check_animated_cutout(reply.content, shown, discs, seg)
    jpg = client.post("/api/remove-background", files=upload, data={"format": "jpg"})
    assert jpg.status_code == 400 and "animation (3 frames) cannot be written as jpg" in jpg.text
    small = Limits(max_megapixels=48 * 64 * 2.5 / 1e6)  # one frame fits, three do not
    client = TestClient(create_app(seg, method="model", limits=small), base_url="http://localhost")
    assert client.post("/api/remove-background", files=upload).status_code == 413


def test_a_cut_out_carries_the_photos_rgb_colour_profile(tmp_path):
    """A phone's or camera's photo with an RGB colour profile (Display P3, Adobe RGB) gives a
    cut-out with the same profile, in PNG, WebP and JPEG, from a file (JPEG or TIFF), its bytes
    and remove-bg, so that its colours show as the photo's; a mask has none, nor a cut-out of a
    photo whose profile is of other data (CMYK, grey)."""
    from PIL import ImageCms

    from pixelwise.cutout import cutout_bytes

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    assert profile[16:20] == b"RGB "
    image = _photo(40, 56)[0]
    Image.fromarray(image).save(tmp_path / "p.jpg", icc_profile=profile)
    tifffile.imwrite(tmp_path / "p.tif", image, extratags=[(34675, 7, len(profile), profile)])
    seg = tiny_seg(BrightIsForeground())
    for given in (tmp_path / "p.jpg", tmp_path / "p.tif", (tmp_path / "p.jpg").read_bytes()):
        cutout = remove_background(given, seg, method="model")
        assert cutout.info["icc_profile"] == profile
        for fmt in ("png", "webp", "jpg"):
            saved = Image.open(io.BytesIO(cutout_bytes(cutout, fmt)))
            assert saved.info.get("icc_profile") == profile, fmt
    assert "icc_profile" not in remove_background(tmp_path / "p.jpg", seg, mask_only=True).info
    assert main(["remove-bg", str(tmp_path / "p.jpg"), "-o", str(tmp_path / "o.png"),
                 "--method", "grabcut", "--no-progress"]) == 0  # fmt: skip
    assert Image.open(tmp_path / "o.png").info["icc_profile"] == profile
    from pixelwise.report import image_report

    for name in ("p.jpg", "p.tif"):  # info names it
        assert "colour profile sRGB built-in (RGB)" in image_report(tmp_path / name)
    grey = profile[:16] + b"GRAY" + profile[20:]
    Image.fromarray(image).save(tmp_path / "g.jpg", icc_profile=grey)
    assert "icc_profile" not in remove_background(tmp_path / "g.jpg", seg, method="model").info


def test_subject_box_against_a_naive_scan():
    """The box around the pixels whose 8-bit alpha is not 0, grown by pixels or by a percentage
    of the subject's width and height, within the photo; None when nothing is kept; a bad
    margin is refused with the forms it takes."""
    from pixelwise.cutout import subject_box

    alpha = np.zeros((50, 80), np.float32)
    alpha[10:20, 30:70] = 1.0
    alpha[25, 5] = 0.3  # a faint pixel is kept too
    alpha[40, 75] = 0.001  # 0 at 8 bits: not kept
    ys, xs = np.nonzero(np.rint(alpha * 255) > 0)
    naive = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    assert subject_box(alpha) == naive == (5, 10, 70, 26)
    assert subject_box(np.rint(alpha * 255).astype(np.uint8)) == naive  # the 8-bit alpha itself
    assert subject_box(alpha, "3px") == (2, 7, 73, 29) == subject_box(alpha, 3)
    assert subject_box(alpha, "10%") == (0, 8, 76, 28)  # 10 % of 65 x 16: 6.5 -> 6, 1.6 -> 2
    assert subject_box(alpha, 100) == (0, 0, 80, 50)  # within the photo
    assert subject_box(np.zeros((5, 5))) is None
    for bad in ("-1", "ten", "5x", "%"):
        with pytest.raises(ValueError, match=r"pixels \(30, 30px\) or a percentage"):
            subject_box(alpha, bad)


def test_crop_cuts_the_cut_out_to_its_subject(tmp_path, monkeypatch, capsys):
    """``crop=`` (remove-bg --crop, --crop-margin; the HTTP API's crop, crop_margin) is the
    cut-out cropped to the box around its alpha, plus the margin; an animation's frames share
    one box, around what any frame keeps; a bad margin is a 400 naming the field; videos are
    refused."""
    import pixelwise.cutout as cutout

    seg = tiny_seg(BrightIsForeground())
    image = _photo(60, 90)[0]
    whole = np.asarray(remove_background(image, seg, method="model"))
    ys, xs = np.nonzero(whole[..., 3])
    for margin, grow in ((None, 0), (0, 0), ("4px", 4)):
        cut = np.asarray(remove_background(image, seg, method="model", crop=margin))
        if margin is None:
            np.testing.assert_array_equal(cut, whole)
            continue
        box = (max(0, xs.min() - grow), max(0, ys.min() - grow))
        end = (min(90, xs.max() + 1 + grow), min(60, ys.max() + 1 + grow))
        np.testing.assert_array_equal(cut, whole[box[1] : end[1], box[0] : end[0]])
    monkeypatch.setattr(cutout, "get_model", lambda m, runtime="torch": seg)
    gif, shown, discs = _animated_gif(tmp_path)
    argv = ["remove-bg", str(gif), "--checkpoint", "tiny", "--method", "model", "--no-progress"]
    assert main([*argv, "-o", str(tmp_path / "a.png"), "--crop"]) == 0
    kept = [np.asarray(remove_background(f, seg, method="model"))[..., 3] > 0 for f in shown]
    ys, xs = np.nonzero(np.any(kept, axis=0))  # what any frame keeps
    with Image.open(tmp_path / "a.png") as result:
        assert result.n_frames == 3
        assert result.size == (xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min())
    (tmp_path / "clip.mp4").write_bytes(b"not read")
    assert main(["remove-bg", str(tmp_path / "clip.mp4"), "--crop", "-o", str(tmp_path / "v")]) == 2
    assert "--crop are for photos, not videos" in capsys.readouterr().err
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    from fastapi.testclient import TestClient

    from pixelwise.web.app import create_app

    client = TestClient(create_app(seg, method="model"), base_url="http://localhost")
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    upload = {"file": ("p.png", buf.getvalue(), "image/png")}
    ys, xs = np.nonzero(whole[..., 3])
    reply = client.post("/api/remove-background", files=upload)
    assert Image.open(io.BytesIO(reply.content)).size == (90, 60)
    for fields, grow in (({"crop": "true"}, 0), ({"crop_margin": "2"}, 2)):
        reply = client.post("/api/remove-background", files=upload, data=fields)
        got = Image.open(io.BytesIO(reply.content)).size
        assert got == (xs.max() + 1 - xs.min() + 2 * grow, ys.max() + 1 - ys.min() + 2 * grow)
    bad = client.post("/api/remove-background", files=upload, data={"crop_margin": "lots"})
    assert bad.status_code == 400 and bad.json()["detail"].startswith("crop_margin: crop margin")


def test_a_16_bit_photo_gives_a_16_bit_cut_out(tmp_path, monkeypatch):
    """A 16-bit photo's cut-out keeps its 16 bits: ``deep_pixels`` holds the photo's own values
    where the cut-out is not fully transparent and the alpha at 16 bits, while the PIL image is
    the 8-bit cut-out as before; as PNG (remove-bg, cutout_bytes) it is a 16-bit RGBA file, with
    the photo's colour profile, cropped as the 8-bit one; masks, composites, WebP and JPEG stay
    8-bit."""
    import cv2
    from PIL import ImageCms

    from pixelwise.cutout import cutout_bytes

    image = _photo(40, 56)[0]
    deep = image.astype(np.uint16) * 257 + np.random.default_rng(0).integers(0, 200, image.shape)
    deep = deep.astype(np.uint16)  # values an 8-bit photo cannot hold
    seg = tiny_seg(BrightIsForeground())
    cutout = remove_background(deep, seg, method="model")
    eight = np.asarray(cutout)
    assert cutout.mode == "RGBA" and cutout.deep_pixels.dtype == np.uint16
    kept = eight[..., 3] > 0
    np.testing.assert_array_equal(cutout.deep_pixels[..., :3][kept], deep[kept])
    assert not cutout.deep_pixels[..., :3][~kept].any()
    assert np.abs(cutout.deep_pixels[..., 3] / 257.0 - eight[..., 3]).max() <= 0.5
    written = cv2.imdecode(np.frombuffer(cutout_bytes(cutout), np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(written[..., [2, 1, 0, 3]], cutout.deep_pixels)
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    tifffile.imwrite(tmp_path / "p.tif", deep, extratags=[(34675, 7, len(profile), profile)])
    monkeypatch.setattr("pixelwise.cutout.get_model", lambda m, runtime="torch": seg)
    argv = ["remove-bg", str(tmp_path / "p.tif"), "--method", "model", "--checkpoint", "tiny"]
    assert main([*argv, "-o", str(tmp_path / "o.png"), "--crop", "--no-progress"]) == 0
    assert Image.open(tmp_path / "o.png").info["icc_profile"] == profile
    saved = cv2.imread(str(tmp_path / "o.png"), cv2.IMREAD_UNCHANGED)
    cropped = remove_background(tmp_path / "p.tif", seg, method="model", crop=0)
    assert saved.dtype == np.uint16 and saved.shape[1::-1] == cropped.size
    np.testing.assert_array_equal(saved[..., [2, 1, 0, 3]], cropped.deep_pixels)
    for kwargs in ({"mask_only": True}, {"background": (255, 255, 255)}):
        assert not hasattr(remove_background(deep, seg, method="model", **kwargs), "deep_pixels")
    webp = Image.open(io.BytesIO(cutout_bytes(cutout, "webp")))
    np.testing.assert_array_equal(np.asarray(webp)[..., 3], eight[..., 3])


def test_a_background_image_covers_the_photo_keeping_its_aspect():
    """A background image of another shape is scaled to cover the photo, its aspect kept, and
    centred (what overhangs is cropped), not stretched: of a wide background whose left quarter
    is red, none shows behind a square photo (stretched, a quarter of it would); where the
    cut-out is transparent, the composite is the covered background."""
    from PIL import ImageOps

    background = np.zeros((20, 40, 3), np.uint8)
    background[:, :10] = (255, 0, 0)
    background[:, 10:] = (0, 0, 255)
    image = np.full(
        (30, 30, 3), 20, np.uint8
    )  # dark: nothing kept by the bright-is-foreground model
    seg = tiny_seg(BrightIsForeground())
    out = np.asarray(remove_background(image, seg, method="model", background=background))
    assert not (out[..., 0] > 128).any() and (out[..., 2] > 128).all()
    covered = ImageOps.fit(Image.fromarray(background), (30, 30), Image.BILINEAR)
    np.testing.assert_array_equal(out, np.asarray(covered))
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    from fastapi.testclient import TestClient

    from pixelwise.web.app import create_app

    client = TestClient(create_app(seg, method="model"), base_url="http://localhost")
    photo = ("p.png", _png(_photo(30, 30)[0]), "image/png")
    files = {"file": photo, "background_image": ("bg.png", _png(background), "image/png")}
    reply = client.post("/api/remove-background", files=files)  # the HTTP API's field
    expected = remove_background(_photo(30, 30)[0], seg, method="model", background=background)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(reply.content))), expected)
    both = client.post("/api/remove-background", files=files, data={"background": "white"})
    assert both.status_code == 400 and "give one of them" in both.text
    files["background_image"] = ("bg.png", b"not an image", "image/png")
    bad = client.post("/api/remove-background", files=files)
    assert bad.status_code == 400 and "bg.png: not a decodable image" in bad.text


def test_background_blur_blurs_the_photos_own_background_without_a_halo(tmp_path):
    """``background="blur"`` (remove-bg --background blur, the HTTP API's background=blur): the
    photo's background blurred, the subject left out of the blur, so a plain background stays
    plain right up to the subject (a plain blur would brighten it there with the subject's
    colours); the blur is the weighted Gaussian mean that scipy computes independently."""
    from scipy import ndimage

    from pixelwise.cutout import blurred_background

    image, disc = _photo(60, 80)
    image[~disc] = 40  # a plain dark background, a bright disc
    seg = tiny_seg(BrightIsForeground())
    out = np.asarray(remove_background(image, seg, method="model", background="blur"))
    alpha = np.asarray(remove_background(image, seg, method="model", mask_only=True)) / 255.0
    assert np.abs(out[alpha == 0].astype(int) - 40).max() <= 1
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    soft = rng.random((30, 40)).astype(np.float32)
    away, sigma = 1.0 - soft, 2.0  # sigma: at least 2 pixels
    blur = lambda x: ndimage.gaussian_filter(x, sigma, mode="mirror", truncate=4.0)  # noqa: E731
    expected = (
        np.stack([blur(rgb[..., c] * away) for c in range(3)], -1)
        / np.maximum(blur(away), 1e-6)[..., None]
    )
    np.testing.assert_allclose(blurred_background(rgb, soft), expected, atol=0.05)
    pytest.importorskip("fastapi", reason="the HTTP API is the [serve] extra")
    from fastapi.testclient import TestClient

    from pixelwise.web.app import create_app

    client = TestClient(create_app(seg, method="model"), base_url="http://localhost")
    upload = {"file": ("p.png", _png(image), "image/png")}
    reply = client.post("/api/remove-background", files=upload, data={"background": "blur"})
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(reply.content))), out)


def test_a_wide_background_blur_is_computed_on_the_photo_shrunk(monkeypatch):
    """The blur of a large photo (sigma 1.5 % of its longer side: 60 pixels on a phone's photo,
    11 s at full size) is computed on the photo shrunk to a sigma of BLUR_SIGMA pixels, so its
    cost no longer grows with the sigma; composited, it is within grey levels of the weighted
    Gaussian at full size that scipy computes independently (two on this test's sharp
    checkerboard, whose blur is less smooth than a photo's)."""
    import cv2
    from scipy import ndimage

    import pixelwise.cutout as cutout

    h, w = 450, 800  # sigma 12 pixels
    y, x = np.mgrid[:h, :w]
    rng = np.random.default_rng(0)
    rgb = np.stack([x * 255 // w, y * 255 // h, (x // 40 + y // 40) % 2 * 200], -1)
    rgb = np.clip(rgb + rng.integers(-20, 20, rgb.shape), 0, 255).astype(np.uint8)
    alpha = np.clip(1.5 - np.hypot(x - 300, y - 200) / 80, 0, 1).astype(np.float32)  # soft disc
    sigmas, blur = [], cv2.GaussianBlur

    def recorded(src, ksize, sigma, *args, **kwargs):
        sigmas.append(sigma)
        return blur(src, ksize, sigma, *args, **kwargs)

    monkeypatch.setattr(cv2, "GaussianBlur", recorded)
    got = cutout.blurred_background(rgb, alpha)
    assert sigmas and max(sigmas) <= getattr(cutout, "BLUR_SIGMA", 4), sigmas
    away, sigma = 1.0 - alpha.astype(np.float64), 0.015 * w
    gauss = lambda v: ndimage.gaussian_filter(v, sigma, mode="mirror", truncate=4.0)  # noqa: E731
    expected = np.stack([gauss(rgb[..., c] * away) for c in range(3)], -1)
    expected /= np.maximum(gauss(away), 1e-6)[..., None]
    a = alpha[..., None].astype(np.float64)
    cut, exact = (np.rint(a * rgb + (1 - a) * bg) for bg in (got, expected))
    assert np.abs(cut - exact).max() <= 2
    assert np.abs(cut - exact).mean() < 0.2


def test_a_blurred_background_is_composited_a_channel_at_a_time():
    """--background blur holds one blurred channel at a time, not the three (float32: 12 bytes
    per pixel; 34 bytes per pixel in all before, 2.6 GB for a 48-megapixel photo), with the
    composite exactly as when the three were made first."""
    import tracemalloc

    import pixelwise.cutout as cutout

    h, w = 1200, 1600
    y, x = np.mgrid[:h, :w]
    rgb = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    alpha = np.clip(1.5 - np.hypot(x - 800, y - 600) / 300, 0, 1).astype(np.float32)
    del y, x
    expected = np.rint(
        alpha[..., None] * rgb + (1 - alpha[..., None]) * cutout.blurred_background(rgb, alpha)
    )
    cutout.compose(rgb, alpha, cutout.BLUR, False)  # one-off allocations outside the count
    tracemalloc.start()
    try:
        cut = cutout.compose(rgb, alpha, cutout.BLUR, False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(np.asarray(cut), expected.astype(np.uint8))
    assert peak / (h * w) < 32, f"{peak / (h * w):.1f} bytes per pixel"


def test_animated_png_and_webp_are_read_as_animations(tmp_path):
    """An animated PNG and an animated WebP (as remove-bg writes them) are read back frame by
    frame, each frame whole, with their times and loop count; a still PNG, a one-frame GIF and
    anything that is not an image are no animation (None)."""
    from pixelwise.video import read_animation

    gif, shown, _ = _animated_gif(tmp_path)
    frames = [frame.convert("RGBA") for frame in shown]
    for fmt in ("PNG", "WEBP"):
        path = tmp_path / f"a.{fmt.lower()}"
        timing = {"duration": [40, 120, 80], "loop": 0}
        extra = {"lossless": True} if fmt == "WEBP" else {}
        frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], **timing, **extra)
        animation = read_animation(path)
        assert animation.durations == [40, 120, 80] and animation.loop == 0, fmt
        for got, want in zip(animation.frames, frames, strict=True):
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
        assert read_animation(path.read_bytes(), "upload").durations == [40, 120, 80]
    frames[0].save(tmp_path / "still.png")
    frames[0].save(tmp_path / "one.gif")
    (tmp_path / "text.png").write_text("not an image")
    for name in ("still.png", "one.gif", "text.png", "missing.png"):
        assert read_animation(tmp_path / name) is None, name
    assert read_animation(gif).loop == 0 and len(read_animation(gif).frames) == 3
