"""torchrun: 2 CPU processes (gloo) train like one process with the same global batch, and
shard prediction so that every input is written exactly once."""

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from subprocess import PIPE

import numpy as np
import pytest
import torch
from conftest import ON_PROC, children, tiny_config
from PIL import Image

from pixelwise.distributed import shard_batches
from pixelwise.train import fit

TRAIN_ARGS = [
    "--depth",
    "2",
    "--base-width",
    "8",
    "--no-batch-norm",
    "--epochs",
    "2",
    "--epoch-size",
    "16",
    "--batch-size",
    "4",
    "--crop",
    "32",
    "--lr",
    "5e-3",
    "--precision",
    "fp32",
    "--no-progress",
]


def torchrun(*args: str, nproc: int = 2, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "pixelwise",
        *args,
    ]
    proc = subprocess.Popen(cmd, stdout=PIPE, stderr=PIPE, text=True, env=env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # torchrun ends its ranks on SIGTERM (they run in sessions of their own): a rank left
        # behind would hold on to the CPUs, and to the output pipes, for the rest of the suite
        proc.terminate()
        out, err = proc.communicate(timeout=60)
        pytest.fail(f"torchrun {' '.join(args)}: no end in {timeout:.0f} s\n{err[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_shard_batches_partition_each_global_batch():
    indices = list(range(10))
    shards = [shard_batches(indices, 4, r, 2) for r in range(2)]
    assert shards == [[0, 1, 4, 5], [2, 3, 6, 7]]  # the incomplete last batch (8, 9) is dropped
    with pytest.raises(ValueError, match="divisible"):
        shard_batches(indices, 3, 0, 2)


def _cfg(data, out, **kw):
    return tiny_config(data, out, **({"batch_norm": False, "epochs": 2, "epoch_size": 16} | kw))


def _assert_same_training(path_a, path_b):
    a, b = (torch.load(p, weights_only=True) for p in (path_a, path_b))
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k in a["state_dict"]:
        torch.testing.assert_close(
            a["state_dict"][k], b["state_dict"][k], rtol=1e-4, atol=1e-5, msg=k
        )
    losses = [[h["train_loss"] for h in c["train_state"]["history"]] for c in (a, b)]
    np.testing.assert_allclose(
        losses[0], losses[1], rtol=1e-4
    )  # the same steps, the same mean losses
    assert losses[1][1] < losses[1][0]  # and training did move the weights


def test_two_processes_train_like_one_with_the_same_global_batch(shapes_data, tmp_path):
    single = fit(_cfg(shapes_data, tmp_path / "one")).parent / "last.pt"
    proc = torchrun("train", str(shapes_data), "--out", str(tmp_path / "ddp"), *TRAIN_ARGS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("epoch 2/2") == proc.stdout.count("best checkpoint:") == 1  # rank 0
    _assert_same_training(tmp_path / "ddp" / "last.pt", single)

    # resume under DDP: a run stopped after epoch 1 continues on 2 processes to the same weights
    class Stop(Exception):
        pass

    def stop(epoch, row):
        raise Stop

    with pytest.raises(Stop):
        fit(_cfg(shapes_data, tmp_path / "part"), on_epoch_end=stop)
    proc = torchrun(
        "train", str(shapes_data), "--out", str(tmp_path / "part"), *TRAIN_ARGS, "--resume"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resumed from" in proc.stdout and "epoch 1/2" not in proc.stdout
    _assert_same_training(tmp_path / "part" / "last.pt", single)


def test_sharded_prediction_writes_each_input_once(shapes_data, tmp_path):
    run = tmp_path / "run"
    assert (
        torchrun("train", str(shapes_data), "--out", str(run), *TRAIN_ARGS, nproc=1).returncode == 0
    )
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(5):
        Image.fromarray(np.full((40, 40), 40 * i, np.uint8)).save(inputs / f"im{i}.png")
    (inputs / "broken.png").write_bytes(b"\x89PNG not really")
    proc = torchrun(
        "predict",
        str(run / "best.pt"),
        str(inputs),
        "--out",
        str(tmp_path / "out"),
        "--no-progress",
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    written = sorted(p.name for p in (tmp_path / "out" / "masks").iterdir())
    assert written == [f"im{i}.png" for i in range(5)]
    assert "wrote 5 masks" in proc.stdout and proc.stdout.count("wrote") == 1
    assert proc.stderr.count("broken.png") == 1 and "1 file(s) failed" in proc.stderr


def disc_photos(folder, count: int = 4) -> None:
    """``count`` photos of a red disc on blue (im0.png, ...), a blank one and a broken file."""
    folder.mkdir(exist_ok=True)
    yy, xx = np.mgrid[:64, :80]
    for i in range(count):
        disc = ((yy - 32) ** 2 + (xx - 30 - 4 * i) ** 2 < 200)[..., None]
        photo = np.where(disc, [220, 60, 40], [30, 90, 160]).astype(np.uint8)
        Image.fromarray(photo).save(folder / f"im{i}.png")
    Image.new("RGB", (80, 64), (128, 128, 128)).save(folder / "blank.png")  # nothing to cut out
    (folder / "broken.png").write_bytes(b"\x89PNG not really")


def test_sharded_remove_bg_cuts_each_photo_out_once_and_reports_once(tmp_path):
    """remove-bg under torchrun: each process cuts out its share of the photos (and of the
    videos); rank 0 says what was written, which cut-outs kept nothing and which files failed,
    for all of them."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    clips = importlib.util.find_spec("av") is not None  # videos need the [video] extra
    if clips:
        from test_video import disc_clip

        for name in ("a", "b"):
            disc_clip(inputs / f"{name}.mp4")
    disc_photos(inputs)
    out = tmp_path / "out"
    proc = torchrun(
        "remove-bg", str(inputs), "-o", str(out), "--method", "grabcut", "--no-progress"
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    written = sorted(p.name for p in out.glob("*.png"))
    assert written == ["blank.png"] + [f"im{i}.png" for i in range(4)]
    assert proc.stdout.count("wrote 5 cut-outs") == 1 and proc.stdout.count("cut-outs to") == 1
    assert proc.stderr.count("1 cut-out(s) kept nothing: blank;") == 1
    assert proc.stderr.count("broken.png") == 1 and "1 file(s) failed" in proc.stderr
    alpha = np.asarray(Image.open(out / "im0.png"))[..., 3]
    assert alpha[32, 30] == 255 and alpha[5, 75] == 0  # the disc kept, the background not
    for name in ("a", "b") if clips else ():  # each clip cut out by one process
        assert (
            proc.stdout.count(f"wrote {out / name}.webm") == 1 and (out / f"{name}.webm").is_file()
        )


def test_remove_bg_jobs_share_the_photos_among_processes_of_its_own(tmp_path):
    """remove-bg --jobs 2 (no torchrun): two processes of its own cut out the photos, each
    written once and the same as one process writes them; one summary, one list of failures,
    one progress bar counting every photo."""
    from pixelwise.cli import main

    inputs = tmp_path / "in"
    disc_photos(inputs, count=5)
    (inputs / "c.png").write_bytes(b"")  # the first process's, broken.png the second's
    env = os.environ | {"PIXELWISE_PATH": "torch-fp32"}  # both runs on one path, no probe
    args = ["remove-bg", str(inputs), "-o"]
    proc = subprocess.run(
        [sys.executable, "-m", "pixelwise", *args, str(tmp_path / "jobs"), "--jobs", "2"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stdout.count("wrote 6 cut-outs") == 1 and proc.stdout.count("cut-outs to") == 1
    assert proc.stderr.count("broken.png") == 1 and "2 file(s) failed" in proc.stderr
    assert proc.stderr.index("broken.png") < proc.stderr.index("c.png")  # by name, not process
    assert proc.stderr.count("kept nothing") == 1 and "8/8" in proc.stderr  # the bar: all 8
    os.environ["PIXELWISE_PATH"] = "torch-fp32"
    try:
        assert main([*args, str(tmp_path / "one"), "--no-progress"]) == 1
    finally:
        del os.environ["PIXELWISE_PATH"]
    one = sorted(p.name for p in (tmp_path / "one").glob("*.png"))
    assert one == ["blank.png"] + [f"im{i}.png" for i in range(5)]
    for name in one:
        assert (tmp_path / "jobs" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()


@pytest.mark.skipif(not ON_PROC, reason="reads /proc (Linux)")
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_remove_bg_jobs_stopped_stops_its_processes(tmp_path, stop):
    """remove-bg --jobs 2 stopped midway (kill, Ctrl-C sent to the parent alone, or killed
    outright): its processes end with it, no cut-out is left half-written and no shared
    semaphore behind (nor a warning about one)."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    photo = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    for i in range(120):
        Image.fromarray(photo).save(inputs / f"p{i:03}.png")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pixelwise", "remove-bg", str(inputs), "-o", str(out), "--jobs", "2"],
        stderr=PIPE, text=True, env=os.environ | {"PIXELWISE_PATH": "torch-fp32"},
    )  # fmt: skip
    watchdog = threading.Timer(120, proc.kill)  # a hung command fails the test, not CI
    watchdog.start()
    seen = ""
    while "| 1/120" not in seen and proc.poll() is None:  # a first cut-out written
        seen += proc.stderr.read(1)
    workers = children(proc.pid)
    proc.send_signal(stop)
    err = seen + proc.stderr.read()
    watchdog.cancel()
    status = {signal.SIGTERM: 143, signal.SIGINT: 130, signal.SIGKILL: -signal.SIGKILL}[stop]
    assert proc.wait(timeout=60) == status, err[-2000:]
    cutouts = list(out.glob("*.png"))
    assert 0 < len(cutouts) < 120
    for cutout in cutouts:  # whole: a write cut short leaves only its hidden temporary file
        Image.open(cutout).load()
    others = {p.name for p in out.iterdir()} - {p.name for p in cutouts} - {".pixelwise-output"}
    assert all(name.startswith(".p") and name.endswith(".tmp") for name in others), others
    assert "leaked" not in err and "Traceback" not in err
    for _ in range(50):
        if not any(Path(f"/proc/{pid}").exists() for pid in workers):
            break
        time.sleep(0.1)
    assert workers and not any(Path(f"/proc/{pid}").exists() for pid in workers)


def dies_or_refuses(payload, shard):
    """A share of work for run_in_processes: the second process dies or raises, as told."""
    from pixelwise.runner import BatchResult

    if shard[0] == 1:
        if payload == "die":
            os._exit(3)
        raise ValueError("x.png: not a photo")
    return BatchResult(written=[shard])


def test_a_process_that_dies_or_raises_is_said_in_the_parent():
    """run_in_processes: an exception of one process's work is raised in the parent as it was;
    a process that dies is one RuntimeError saying what to do; without either, the shares'
    results merged."""
    from pixelwise.runner import run_in_processes

    result = run_in_processes(dies_or_refuses, "ok", 1, 1, "work", False)
    assert result.written == [(0, 1)]
    with pytest.raises(ValueError, match="x.png: not a photo"):
        run_in_processes(dies_or_refuses, "raise", 2, 2, "work", False)
    with pytest.raises(RuntimeError, match="work: one of the 2 processes ended abruptly"):
        run_in_processes(dies_or_refuses, "die", 2, 2, "work", False)


def test_sharded_segment_gathers_one_coco_file(tmp_path):
    """segment --coco under torchrun: each process segments its share, rank 0 writes one COCO
    file listing every image once, object for object as the label images written (and one
    CSV of their measurements, with --measure)."""
    import json

    from pixelwise.data.io import read_mask

    inputs = tmp_path / "in"
    inputs.mkdir()
    yy, xx = np.mgrid[:64, :64]
    for i in range(5):
        disc = (yy - 20 - 4 * i) ** 2 + (xx - 30) ** 2 < 81
        Image.fromarray(np.where(disc, 220, 25).astype(np.uint8)).save(inputs / f"im{i}.png")
    coco = tmp_path / "objects.json"
    args = ("segment", "nuclei", str(inputs), "-o", str(tmp_path / "out"), "--no-progress")
    table = tmp_path / "objects.csv"  # and --measure: one CSV of every object
    proc = torchrun(*args, "--coco", str(coco), "--measure", str(table))
    assert proc.returncode == 0, proc.stderr[-3000:]
    spec = json.loads(coco.read_text())
    assert [im["file_name"] for im in spec["images"]] == [f"in/im{i}.png" for i in range(5)]
    objects = sum(int(read_mask(p).max()) for p in (tmp_path / "out" / "instances").iterdir())
    assert len(spec["annotations"]) == objects > 0
    assert len({a["id"] for a in spec["annotations"]}) == objects
    rows = table.read_text().splitlines()[1:]
    assert len(rows) == objects and {r.split(",")[0] for r in rows} <= {
        f"im{i}.png" for i in range(5)
    }


def test_gather_under_a_plain_launch_where_rank_zero_hosts_the_store():
    """Sharded prediction's one exchange, ``Exchange.gather``, goes through the launcher's
    key-value store. Launched by hand (RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set, no
    torchrun agent) rank 0 hosts it: every rank gets every rank's object, in rank order,
    whichever starts first."""
    import json
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    code = (
        "import json, os, time; from pixelwise.distributed import Exchange; "
        "time.sleep(0.3 * (2 - int(os.environ['RANK']))); exchange = Exchange(); "
        "print(json.dumps(exchange.gather({'rank': exchange.rank})))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TORCHELASTIC")}
    env |= {"WORLD_SIZE": "3", "MASTER_ADDR": "localhost", "MASTER_PORT": str(port)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env | {"RANK": str(r)}, stdout=subprocess.PIPE
        )
        for r in range(3)
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert [json.loads(o) for o in outs] == [[{"rank": r} for r in range(3)]] * 3


def test_a_launch_without_its_store_fails_before_the_work(tmp_path):
    """WORLD_SIZE set without MASTER_ADDR: one line naming what is missing, exit 2, nothing
    written (the store is joined before the first image, not after the last)."""
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "im.png")
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_ADDR", "MASTER_PORT")}
    env |= {"WORLD_SIZE": "2", "RANK": "0"}
    cmd = [sys.executable, "-m", "pixelwise", "segment", "nuclei", str(tmp_path / "im.png")]
    done = subprocess.run(
        [*cmd, "-o", str(tmp_path / "out")], capture_output=True, text=True, env=env
    )
    assert done.returncode == 2 and "MASTER_ADDR" in done.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()
