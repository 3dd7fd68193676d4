import contextlib
import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelwise.data.synthetic import write_shapes_dataset

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PIXELWISE_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_dataset(name: str) -> Path:
    """Path of a dataset under ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} not found (the shared datasets live beside the repository)")
    return path


@pytest.fixture(scope="session")
def shapes_data(tmp_path_factory) -> Path:
    return write_shapes_dataset(
        tmp_path_factory.mktemp("shapes"), n_train=12, n_val=4, size=48, seed=0
    )


@pytest.fixture(scope="session", autouse=True)
def runtime_cache(tmp_path_factory):
    """The runtime probe (pixelwise.runtime) measures once per test session into a temporary
    cache shared with subprocesses, never into the user's cache directory."""
    if "PIXELWISE_CACHE" not in os.environ:
        os.environ["PIXELWISE_CACHE"] = str(tmp_path_factory.mktemp("pixelwise-cache"))
    yield


@pytest.fixture(autouse=True)
def fresh_cut_outs():
    """Each test starts with no remembered cut-out (pixelwise.cutout.CUT_OUTS), so that what
    one test computed never stands in for another's."""
    from pixelwise.cutout import CUT_OUTS

    CUT_OUTS.clear()
    yield


def disc_and_square(
    h: int, w: int, disc: tuple[int, int, int], square: tuple[int, int, int, int], seed: int = 0
):
    """A red disc ``(cy, cx, r)`` and a blue square ``(y0, y1, x0, x1)`` on noisy grey: an RGB
    uint8 photo whose objects are known, and the two boolean masks."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    round_ = (yy - disc[0]) ** 2 + (xx - disc[1]) ** 2 < disc[2] ** 2
    box = (yy > square[0]) & (yy < square[1]) & (xx > square[2]) & (xx < square[3])
    rgb = np.full((h, w, 3), 128.0) + rng.normal(0, 8, (h, w, 3))
    rgb[round_] = (200, 40, 40) + rng.normal(0, 8, (round_.sum(), 3))
    rgb[box] = (40, 40, 200) + rng.normal(0, 8, (box.sum(), 3))
    return np.clip(rgb, 0, 255).astype(np.uint8), round_, box


class BrightIsForeground(torch.nn.Module):
    """A stand-in network with a known answer: logits favour foreground where the image is bright."""

    def forward(self, x):
        grey = x.mean(1, keepdim=True)
        return torch.cat([-8 * grey, 8 * grey], 1)


def animated_png(rgb: np.ndarray) -> bytes:
    """Two frames (the photo, then its mirror image) as an animated PNG."""
    frames = [Image.fromarray(rgb), Image.fromarray(rgb[:, ::-1].copy())]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="PNG", save_all=True, append_images=frames[1:], duration=100)
    return buffer.getvalue()


def tiny_seg(network=None):
    """An untrained 2-class U-Net (depth 2, width 4) Segmenter for RGB input; ``network`` replaces
    its network (e.g. :class:`BrightIsForeground`)."""
    from pixelwise.data.encoding import Normalization
    from pixelwise.models import create_model
    from pixelwise.segmenter import Segmenter

    kwargs = {"in_channels": 3, "num_classes": 2, "depth": 2, "base_width": 4}
    seg = Segmenter(
        create_model("unet", **kwargs),
        "unet",
        kwargs,
        ["background", "foreground"],
        Normalization([0.5] * 3, [0.25] * 3),
    )
    if network is not None:
        seg.network = network
    return seg


def tiny_config(data: Path, out: Path, **changes):
    """The TrainConfig of a small U-Net (depth 2, width 8, 32-pixel crops, batch 4, 3 epochs, fp32,
    no progress bar or overlays) on ``data``, with ``changes`` applied: for tests that call ``fit``."""
    from pixelwise.config import TrainConfig

    base = dict(
        data=str(data),
        out=str(out),
        depth=2,
        base_width=8,
        epochs=3,
        batch_size=4,
        crop=32,
        lr=5e-3,
        precision="fp32",
        progress=False,
        overlays=0,
    )
    return TrainConfig(**(base | changes))


def train_tiny(data: Path, out: Path, *extra: str) -> Path:
    """``pixelwise train`` of a small U-Net (depth 2, width 8, 32-pixel crops) for two epochs;
    returns the run folder."""
    from pixelwise.cli import main

    args = [
        "train",
        str(data),
        "--out",
        str(out),
        "--depth",
        "2",
        "--base-width",
        "8",
        "--epochs",
        "2",
        "--crop",
        "32",
        "--no-progress",
        *extra,
    ]
    assert main(args) == 0
    return out


def red_box_model(box_input: int = 32):
    """A box model whose answer is known: foreground where a pixel is red (a 1 x 1 convolution)."""
    import torch
    from torch import nn

    from pixelwise.data.encoding import Normalization
    from pixelwise.segmenter import Segmenter

    net = nn.Conv2d(3, 2, 1)
    with torch.no_grad():
        net.weight.zero_()
        net.bias.copy_(torch.tensor([0.0, -3.0]))
        net.weight[1, 0], net.weight[1, 2] = 10.0, -10.0  # class 1: red minus blue
    norm = Normalization([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    return Segmenter(net.eval(), "unet", {}, ["background", "red"], norm, box_input=box_input)


def geojson_raster(geometry: dict, shape: tuple[int, int]):
    """The pixels whose centres a GeoJSON Polygon or MultiPolygon encloses (inside an outer
    ring and outside its holes), by matplotlib's point-in-polygon test: an independent reading
    of the polygons pixelwise writes."""
    import numpy as np
    from matplotlib.path import Path as Outline

    found = np.zeros(shape, bool)
    shapes = geometry["coordinates"]
    for rings in [shapes] if geometry["type"] == "Polygon" else shapes:
        outer = np.asarray(rings[0], float)  # only centres within its bounds can be inside
        x0, y0 = np.maximum(np.floor(outer.min(axis=0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(outer.max(axis=0)).astype(int), shape[::-1])
        if x1 <= x0 or y1 <= y0:  # wholly outside the image
            continue
        ys, xs = np.mgrid[y0:y1, x0:x1]
        centres = np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], axis=1)
        inside = Outline(outer).contains_points(centres)
        for hole in rings[1:]:
            inside &= ~Outline(hole).contains_points(centres)
        found[y0:y1, x0:x1] |= inside.reshape(ys.shape)
    return found


@contextlib.contextmanager
def served_page(app, viewport: dict | None = None):
    """A headless Chromium page and the address of ``app`` served by uvicorn on a free port
    (both closed afterwards); skips without playwright or Chromium."""
    pytest.importorskip("playwright", reason="browser test needs the [browser] extra (playwright)")
    import shutil
    import socket
    import threading
    import time

    import uvicorn
    from playwright.sync_api import sync_playwright

    browser_path = next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
    )
    if browser_path is None:
        pytest.skip(
            "no Chromium on this machine (Debian: apt-get install chromium); .ci/run installs it"
        )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=browser_path, args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                yield browser.new_page(viewport=viewport), f"http://127.0.0.1:{port}/"
            finally:
                browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# processes, as Linux's /proc shows them (tests of commands that start processes of their own)
ON_PROC = Path("/proc/self/stat").exists()


def stat_fields(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command's name (state first, then the parent)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid``."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError):
            if int(stat_fields(int(stat.parent.name))[1]) == pid:
                found.add(int(stat.parent.name))
    return found


def ended(pid: int) -> bool:
    """Whether process ``pid`` has ended (gone, or a zombie)."""
    try:
        return stat_fields(pid)[0] == "Z"
    except OSError:
        return True
