"""The execution path chosen by measurement: the probe, its cache, forced paths and warnings."""

import json

import pytest
import torch
from conftest import tiny_seg

import pixelwise
from pixelwise import runtime
from pixelwise.checkpoint import load_model, save_checkpoint
from pixelwise.cli import main


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELWISE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(runtime, "_MEASURED", None)
    return tmp_path / "cache" / "runtime.json"


def test_probe_measures_every_path_and_caches_it(fresh_cache, capsys):
    result = runtime.measured()
    assert list(json.loads(fresh_cache.read_text())["machines"]) == [runtime.machine_key()]
    inference = result["inference"]
    bf16 = result["cpu"]["bf16_hardware"]
    ort = runtime.versions()["onnxruntime"]
    expected = {"torch-fp32", "torch-fp32-cl"} | ({"onnx-fp32", "onnx-int8"} if ort else set())
    # bf16 is a timed candidate where the CPU has the instructions, else only its slowdown is kept
    assert set(inference["seconds"]) == expected | ({"torch-bf16-cl"} if bf16 else set())
    assert set(inference.get("emulated", {})) == (set() if bf16 else {"torch-bf16-cl"})
    assert all(0 < s < 30 for s in inference["seconds"].values())
    # int8 is held to the checkpoint's own accuracy gate, not to agreement on the probe network
    assert all(a >= 0.99 for p, a in inference["agreement"].items() if p != "onnx-int8")

    def fastest(paths):
        seconds = {p: s for p, s in inference["seconds"].items() if p in paths}
        best = min(seconds, key=seconds.get)
        if seconds[best] * runtime.MARGIN > seconds["torch-fp32"]:
            return "torch-fp32"  # nothing beat plain fp32 by the margin
        return best

    assert inference["best"] == fastest(runtime.INFERENCE_PATHS)
    if ort:  # int8 a candidate only for calibrated checkpoints
        assert inference["best_calibrated"] == fastest((*runtime.INFERENCE_PATHS, "onnx-int8"))
    # a bound against a runaway probe, not a speed target (about 5 s on 2 idle cores; several times
    # that while another torch process shares the cores)
    assert result["probe_seconds"] < 120
    said = capsys.readouterr().err  # not a terminal: a line each, no carriage returns to join them
    assert "measuring this machine's fastest path (inference paths)...\n" in said
    assert "\r" not in said and said.endswith(f"(cached in {runtime.cache_file()})\n")
    # the second time comes from the cache: no measuring, same answer
    runtime._MEASURED = None
    assert runtime.measured()["inference"] == inference
    assert "measuring" not in capsys.readouterr().err


def test_a_cache_that_cannot_be_written_is_said_not_claimed(tmp_path, monkeypatch, capsys):
    """A home that is read-only or not a folder: the probe's line says the result was not kept
    and how to give it a place, instead of naming the file as if it were written there."""
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("PIXELWISE_CACHE", str(blocked / "cache"))
    monkeypatch.setattr(runtime, "_MEASURED", None)
    monkeypatch.setattr(runtime, "probe", lambda progress=True: {"key": runtime.machine_key()})
    assert runtime.measured()["key"] == runtime.machine_key()  # this process still uses it
    err = capsys.readouterr().err
    assert "not cached (" in err and "PIXELWISE_CACHE=FOLDER" in err and "cached in" not in err
    monkeypatch.setenv("PIXELWISE_CACHE", str(tmp_path / "cache"))
    runtime.save({"key": "k"}, progress=True)
    assert f"(cached in {tmp_path / 'cache' / 'runtime.json'})" in capsys.readouterr().err


def test_pick_leaves_plain_fp32_only_for_a_clear_gain():
    allowed = ("torch-fp32", "torch-fp32-cl", "onnx-fp32")
    clear = {"torch-fp32": 1.0, "torch-fp32-cl": 0.7, "onnx-fp32": 0.6}
    assert runtime.pick(clear, {}, allowed) == "onnx-fp32"
    within_noise = {"torch-fp32": 1.0, "torch-fp32-cl": 0.95, "onnx-fp32": 0.97}
    assert runtime.pick(within_noise, {}, allowed) == "torch-fp32"
    # a faster path whose masks disagree with fp32 is never picked
    assert runtime.pick(clear, {"onnx-fp32": 0.9}, allowed) == "torch-fp32-cl"
    # plain fp32 not among the allowed paths: the fastest of them
    assert runtime.pick(within_noise, {}, ("torch-fp32-cl", "onnx-fp32")) == "torch-fp32-cl"


def test_another_machine_key_measures_again(fresh_cache, monkeypatch):
    fresh_cache.parent.mkdir(parents=True)
    fresh_cache.write_text(
        json.dumps({"key": "another machine", "inference": {"best": "onnx-fp32"}})
    )
    monkeypatch.setattr(
        runtime, "probe", lambda progress=True: {"key": runtime.machine_key(), "marker": 1}
    )
    assert runtime.measured()["marker"] == 1
    # the other machine's result is kept beside this one's (a home shared by several machines)
    assert runtime.cached_machines()["another machine"]["inference"]["best"] == "onnx-fp32"


def test_each_machine_is_measured_once_and_the_oldest_dropped(fresh_cache, monkeypatch):
    probes = []

    def probe(progress=True):
        probes.append(runtime.machine_key())
        return probe_result(marker=len(probes))

    monkeypatch.setattr(runtime, "probe", probe)
    keys = [f"machine {i}" for i in range(runtime.KEPT_MACHINES + 1)]
    for key in [*keys[:2], *keys[:2]]:  # switching back and forth measures each machine once
        monkeypatch.setattr(runtime, "machine_key", lambda key=key: key)
        runtime._MEASURED = None
        assert runtime.measured()["key"] == key
    assert probes == keys[:2]
    for key in keys[2:]:
        monkeypatch.setattr(runtime, "machine_key", lambda key=key: key)
        runtime.measured()
    assert list(runtime.cached_machines()) == keys[1:]  # the first measured is dropped


def probe_result(**extra) -> dict:
    """A probe result for this machine as the cache keeps it, the least a command reads."""
    part = {"seconds": {"torch-fp32": 0.1}, "best": "torch-fp32"}
    return {"key": runtime.machine_key(), "inference": part, "training": part} | extra


def test_a_cached_result_cut_short_is_measured_again(fresh_cache, monkeypatch):
    """An entry edited by hand (or by another tool) that lacks what the commands read is
    measured again, not a KeyError in every command."""
    for broken in ({"inference": {"best": "torch-zz"}}, {"training": None}, {"inference": 3}):
        runtime.save(probe_result(**broken))
        runtime._MEASURED = None
        monkeypatch.setattr(runtime, "probe", lambda progress=True: probe_result(marker=1))
        assert runtime.measured()["marker"] == 1
        runtime._MEASURED = None
        monkeypatch.setattr(runtime, "probe", lambda progress=True: pytest.fail("measured"))
        assert runtime.measured()["marker"] == 1  # the good one is kept


def fake_measurement(best="torch-fp32", bf16=False):
    seconds = {"torch-fp32": 0.10, "torch-fp32-cl": 0.08, "onnx-fp32": 0.05}
    inference = {"seconds": seconds, "agreement": {p: 1.0 for p in seconds}, "best": best}
    if bf16:
        seconds["torch-bf16-cl"], inference["agreement"]["torch-bf16-cl"] = 0.04, 1.0
    else:
        inference["emulated"] = {"torch-bf16-cl": 9.0}
    return {
        "key": runtime.machine_key(),
        "cpu": runtime.cpu_info() | {"bf16_hardware": bf16},
        "versions": runtime.versions(),
        "probe_seconds": 1.0,
        "inference": inference,
        "training": {
            "seconds": {"torch-fp32": 0.5, "torch-fp32-cl": 0.4},
            "agreement": {},
            "best": "torch-fp32-cl",
        },
    }


def test_auto_precision_follows_the_measurement_and_forcing_bf16_warns(monkeypatch, capsys):
    monkeypatch.delenv("PIXELWISE_PATH", raising=False)
    monkeypatch.setattr(runtime, "_MEASURED", fake_measurement("onnx-fp32"))
    no_bf16 = fake_measurement()["cpu"]
    monkeypatch.setattr(runtime, "cpu_info", lambda: no_bf16)
    assert (
        runtime.resolve_precision("auto") == "fp32-cl"
    )  # the fastest torch path for torch networks
    assert runtime.resolve_precision("auto", training=True) == "fp32-cl"
    assert runtime.resolve_precision("fp32") == "fp32"
    monkeypatch.setattr("pixelwise.constants._SAID", set())  # not yet warned
    assert runtime.resolve_precision("bf16") == "bf16"
    assert (
        "no bf16 instructions; bf16 is emulated here and measured 9.0x slower"
        in capsys.readouterr().err
    )
    assert (
        runtime.resolve_precision("bf16") == "bf16" and capsys.readouterr().err == ""
    )  # once per process
    monkeypatch.setenv("PIXELWISE_PATH", "torch-fp32")
    assert runtime.resolve_precision("auto") == "fp32"
    monkeypatch.setenv("PIXELWISE_PATH", "gpu-fast")
    with pytest.raises(ValueError, match="PIXELWISE_PATH='gpu-fast'"):
        runtime.resolve_precision("auto")


def test_bf16_warning_names_the_measured_slowdown(monkeypatch, capsys):
    monkeypatch.setattr(runtime, "_MEASURED", fake_measurement())
    no_bf16 = fake_measurement()["cpu"]
    monkeypatch.setattr(runtime, "cpu_info", lambda: no_bf16)
    runtime.warn_bf16_without_hardware()
    assert capsys.readouterr().err.strip() == (
        "pixelwise: warning: this CPU has no bf16 instructions; bf16 is emulated here and measured 9.0x slower "
        "than fp32 (drop --precision bf16)"
    )


def test_auto_runtime_loads_onnx_when_it_measured_fastest(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime", reason="ONNX Runtime is the [onnx] extra")
    from pixelwise.export import OnnxNetwork

    monkeypatch.delenv("PIXELWISE_PATH", raising=False)
    monkeypatch.setenv("PIXELWISE_CACHE", str(tmp_path / "cache"))
    save_checkpoint(tmp_path / "m.pt", tiny_seg())
    for best, onnx in (("onnx-fp32", True), ("torch-fp32-cl", False)):
        monkeypatch.setattr(runtime, "_MEASURED", fake_measurement(best))
        seg = load_model(tmp_path / "m.pt", "auto")
        assert isinstance(seg.network, OnnxNetwork) == onnx
    assert (
        len(list((tmp_path / "cache" / "onnx").glob("*.onnx"))) == 1
    )  # the export is kept for next time
    assert not isinstance(load_model(tmp_path / "m.pt", "torch").network, OnnxNetwork)  # forced


def test_the_onnx_cache_keeps_the_most_recently_used_graphs(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime", reason="ONNX Runtime is the [onnx] extra")
    import os

    from pixelwise import export
    from pixelwise.checkpoint import onnx_cache

    monkeypatch.setenv("PIXELWISE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(export, "KEPT_GRAPHS", 2)
    graphs = {}
    for name in "abc":  # three checkpoints with different weights, hence different graphs
        torch.manual_seed(ord(name))
        save_checkpoint(tmp_path / f"{name}.pt", tiny_seg())
        graphs[name] = onnx_cache(tmp_path / f"{name}.pt")
    for age, name in ((20, "a"), (10, "b")):
        load_model(tmp_path / f"{name}.pt", "onnx")
        os.utime(graphs[name], (graphs[name].stat().st_atime, graphs[name].stat().st_mtime - age))
    mine = tmp_path / "cache" / "onnx" / "my-model.onnx"  # not a cached graph: never removed
    mine.write_bytes(b"a user's file")
    os.utime(mine, (0, 0))
    load_model(tmp_path / "a.pt", "onnx")  # used again: now the most recent
    load_model(tmp_path / "c.pt", "onnx")  # a third graph: the least recently used (b) goes
    assert sorted((tmp_path / "cache" / "onnx").glob("*.onnx")) == sorted(
        [graphs["a"], graphs["c"], mine]
    )
    # another process removed the cached graph: exported again, not an error
    graphs["a"].unlink()
    assert load_model(tmp_path / "a.pt", "onnx").network is not None and graphs["a"].is_file()
    # a damaged one (cut short): exported again and replaced, not an ONNX Runtime traceback
    whole = graphs["a"].read_bytes()
    graphs["a"].write_bytes(whole[:1000])
    x = torch.rand(1, 3, 16, 16)
    again = load_model(tmp_path / "a.pt", "onnx").network(x)
    assert graphs["a"].read_bytes() == whole
    torch.testing.assert_close(
        again, load_model(tmp_path / "a.pt", "torch").network(x), atol=1e-4, rtol=1e-4
    )


def test_forced_bf16_runs_on_torch_and_warns_where_onnx_runtime_must_run(
    tmp_path, monkeypatch, capsys
):
    pytest.importorskip("onnxruntime", reason="ONNX Runtime is the [onnx] extra")
    from pixelwise import evaluate

    assert runtime.runtime_for("auto", "bf16", "m.pt") == "torch"  # not ONNX Runtime's fp32
    assert runtime.runtime_for("auto", "fp32", "m.pt") == "auto"
    assert capsys.readouterr().err == ""
    for forced, path in (("onnx", "m.pt"), ("auto", "m.onnx")):
        runtime.runtime_for(forced, "bf16", path)
        assert capsys.readouterr().err.strip() == (
            "pixelwise: warning: --precision bf16 is for PyTorch; ONNX Runtime runs this model in fp32"
        )
    # evaluate: ONNX Runtime on the CPU whatever --device says; a torch network where asked
    monkeypatch.delenv("PIXELWISE_PATH", raising=False)
    monkeypatch.setenv("PIXELWISE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(runtime, "_MEASURED", fake_measurement("onnx-fp32"))
    save_checkpoint(tmp_path / "m.pt", tiny_seg())
    asked = []

    def stop(*args):
        raise LookupError("stopped before the data")

    monkeypatch.setattr(
        evaluate, "resolve_device", lambda d: asked.append(d) or torch.device("cpu")
    )
    monkeypatch.setattr(evaluate, "evaluation_items", stop)
    for precision in ("auto", "bf16"):  # auto: ONNX Runtime measured fastest; bf16: torch
        with pytest.raises(LookupError):
            evaluate.evaluate_checkpoint(
                tmp_path / "m.pt", "data", precision=precision, runtime="auto", device="cuda:7"
            )
    assert asked == ["cuda:7"]  # the device asked for, for the torch network only


def test_info_prints_the_cpu_and_the_chosen_paths(monkeypatch, capsys):
    monkeypatch.setattr(runtime, "_MEASURED", fake_measurement("onnx-fp32"))
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert (
        "flags:" in out
        and "inference: onnx-fp32 chosen" in out
        and "training: torch-fp32-cl chosen" in out
    )
    assert "onnx-fp32 50 ms (2.00x), torch-bf16-cl emulated: 9.0x slower (never chosen)" in out
    assert "optional parts: serve yes, onnx yes" in out  # which extras are installed
    # --version -v says the same; --version alone just the version
    assert main(["--version", "-v"]) == 0
    assert capsys.readouterr().out == out
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"pixelwise {pixelwise.__version__}"


def test_a_reader_that_stops_early_ends_the_command_quietly():
    """`pixelwise models | head -1`: no traceback and no error line, the shell's SIGPIPE status."""
    import os
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pixelwise", "models"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)
    assert done.returncode == 141 and done.stderr == ""


def test_info_names_the_extras_to_install(monkeypatch, capsys):
    import importlib.util

    from pixelwise import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "av" else real(name, *a)
    )
    assert "video no" in cli.optional_parts() and "pixelwise[video]" in cli.optional_parts()


def test_probe_inside_inference_mode_still_times_training(fresh_cache):
    with torch.inference_mode():
        result = runtime.probe(progress=False)
    assert set(result["training"]["seconds"]) >= {"torch-fp32", "torch-fp32-cl"}


FAULTS_OF_FREED_BLOCKS = """
import resource, sys
import numpy as np
from pixelwise.allocator import tune_allocator
print(tune_allocator())
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
a = np.ones(64 << 20, np.uint8); del a
before = faults()
for _ in range(10):
    a = np.ones(64 << 20, np.uint8)  # a fresh mapping faults in 16384 pages, or 32 huge ones
    del a
print(faults() - before)
"""


@pytest.mark.parametrize("setting", ["kept", "system"])
def test_freed_blocks_are_kept_unless_turned_off(setting):
    """A freed 64 MiB block is reused without the kernel mapping and zeroing its pages again
    (glibc unmaps it by default); ``PIXELWISE_ALLOCATOR=system`` leaves malloc as it is."""
    import os
    import subprocess
    import sys

    from pixelwise.allocator import on_glibc

    if not on_glibc():
        pytest.skip("the allocator is tuned on glibc only")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["PIXELWISE_ALLOCATOR"] = setting
    out = subprocess.run(
        [sys.executable, "-c", FAULTS_OF_FREED_BLOCKS], env=env, capture_output=True, text=True
    )
    described, faults = out.stdout.split("\n")[:2]
    if setting == "kept":
        assert described.startswith("glibc, freed blocks under 1 GiB kept")
        assert int(faults) < 32  # not even one block's pages faulted in again
    else:
        assert described == "system default"
        assert int(faults) >= 10 * 32


def test_onnx_paths_time_their_own_network():
    net, x = torch.nn.Conv2d(3, 2, 1), torch.zeros(1, 3, 4, 4)
    for path in ("onnx-fp32", "onnx-int8"):  # never the torch network in their place
        assert runtime.run_path(path, net, x, lambda _, p=path: p)() == path
    assert runtime.run_path("torch-fp32", net, x, lambda _: "onnx")().shape == (1, 2, 4, 4)


@pytest.mark.skipif(runtime.busy_ticks() is None, reason="no /proc/stat on this system")
def test_other_work_is_measured_from_the_cpus_busy_time():
    """A child process that spins on one CPU for a second while this process sleeps took at
    least most of one CPU's time of this process's CPUs (more if other work also ran)."""
    import os
    import subprocess
    import sys
    import time

    cpus = len(os.sched_getaffinity(0))
    others = runtime.OtherWork()
    spin = "import time\nend = time.perf_counter() + 1.0\nwhile time.perf_counter() < end: pass"
    subprocess.run([sys.executable, "-c", spin], check=True)
    time.sleep(0.05)
    share = others.share()
    assert 0.8 / cpus <= share <= 1.05, share


def test_a_probe_slowed_by_other_work_is_measured_again_when_the_machine_is_idle(
    fresh_cache, monkeypatch, capsys
):
    """Other work took half the CPUs during the probe: its result is cached marked busy (the
    message and `pixelwise info` say so) and used while the machine stays busy, or for two
    minutes after it; then a command that finds the machine idle measures again."""
    import time

    monkeypatch.delenv("PIXELWISE_PATH", raising=False)
    fake = fake_measurement()
    monkeypatch.setattr(runtime, "measure_inference", lambda report: _measured(fake, "inference"))
    monkeypatch.setattr(runtime, "measure_training", lambda report: _measured(fake, "training"))
    monkeypatch.setattr(runtime.OtherWork, "share", lambda self: 0.5)
    first = runtime.measured()
    assert first["busy"] and first["other_work"] == 0.5
    assert "while other work took 50% of the CPUs (measured again when" in capsys.readouterr().err
    monkeypatch.setattr(runtime.OtherWork, "share", lambda self: 0.02)
    probes = []
    real_probe = runtime.probe
    monkeypatch.setattr(runtime, "probe", lambda progress=True: probes.append(1) or real_probe())
    for idle, age, again in ((False, 600, False), (True, 30, False), (True, 600, True)):
        monkeypatch.setattr(runtime, "machine_idle", lambda idle=idle: idle)
        cached = runtime.cached_machines()[runtime.machine_key()]
        cached["measured_at"] = time.time() - age
        runtime.save(cached)
        runtime._MEASURED = None
        result = runtime.measured()
        assert (len(probes) == 1) == again, (idle, age)
    assert not result["busy"] and not runtime.cached_machines()[runtime.machine_key()]["busy"]
    runtime._MEASURED = first
    assert main(["info"]) == 0
    assert "s while other work took 50% of the CPUs" in capsys.readouterr().out


def _measured(fake: dict, kind: str) -> runtime.Measurement:
    part = fake[kind]
    return runtime.Measurement(part["seconds"], part["agreement"], part["best"])


def test_a_calibrated_checkpoint_races_int8_once_per_machine_and_best_path(fresh_cache, capsys):
    """The int8 race of a checkpoint runs once, is cached by the checkpoint's digest beside the
    probe's result (also across processes), runs again when the probe's best path changes, and
    picks the faster of the two paths."""
    runtime.save(probe_result(inference={"seconds": {}, "best": "torch-bf16-cl"}))
    calls = []

    def race(best):
        calls.append(best)
        return {"onnx-int8": 0.05, best: 0.08}

    assert runtime.calibrated_path("digest-a", race) == "onnx-int8"
    assert "onnx-int8 50 ms, torch-bf16-cl 80 ms: onnx-int8 for this checkpoint" in (
        capsys.readouterr().err
    )
    runtime._MEASURED = None  # another process: from the cache file
    assert runtime.calibrated_path("digest-a", race) == "onnx-int8" and calls == ["torch-bf16-cl"]
    assert runtime.calibrated_path("digest-b", lambda best: {"onnx-int8": 0.2, best: 0.1}) == (
        "torch-bf16-cl"
    )
    cached = json.loads(fresh_cache.read_text())["machines"][runtime.machine_key()]
    assert list(cached["checkpoints"]) == ["digest-a", "digest-b"]
    runtime.save(cached | {"inference": {"seconds": {}, "best": "onnx-fp32"}})  # race again
    assert runtime.calibrated_path("digest-a", race) == "onnx-int8"
    assert calls == ["torch-bf16-cl", "onnx-fp32"]
    # another process raced digest-c after this one read the cache: taken, not run again
    machines = json.loads(fresh_cache.read_text())["machines"]
    entry = {"against": "onnx-fp32", "seconds": {}, "best": "onnx-int8"}
    machines[runtime.machine_key()]["checkpoints"]["digest-c"] = entry
    fresh_cache.write_text(json.dumps({"machines": machines}))
    assert runtime.calibrated_path("digest-c", lambda best: pytest.fail("raced again")) == (
        "onnx-int8"
    )


def test_processes_started_together_measure_once(fresh_cache, tmp_path):
    """torchrun's ranks (or two commands at once) on a machine not yet measured: one process
    measures, the others wait for it and read its result, instead of each timing the paths
    while the others load the CPUs."""
    import subprocess
    import sys

    code = """if True:
        import os, pathlib, sys, time
        from pixelwise import runtime
        here = pathlib.Path(sys.argv[1])
        def probe(progress=True):
            with open(here / "probes", "a") as f:
                f.write("probe\\n")
            time.sleep(2)
            part = {"seconds": {}, "best": "torch-fp32"}
            return {"key": runtime.machine_key(), "by": os.getpid(), "inference": part,
                    "training": part}
        runtime.probe = probe
        (here / f"ready{sys.argv[2]}").touch()
        while not all((here / f"ready{i}").exists() for i in range(2)):
            time.sleep(0.01)
        print(runtime.measured()["by"])
    """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert (tmp_path / "probes").read_text() == "probe\n"
    assert outs[0][0] == outs[1][0]  # the same result: the one measurement
    waited = [err for _, err in outs if "waiting for another process measuring" in err]
    assert len(waited) == 1


def test_a_cache_on_a_file_system_without_locks_still_measures(fresh_cache, monkeypatch):
    """Some network mounts refuse file locks (ENOLCK): the probe runs unlocked, as before."""
    import errno
    import fcntl

    def refuse(handle, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", refuse)
    monkeypatch.setattr(runtime, "probe", lambda progress=True: {"key": runtime.machine_key()})
    assert runtime.measured()["key"] == runtime.machine_key()
    assert fresh_cache.exists()


def test_a_torch_precision_is_named_as_the_probe_names_its_path():
    """evaluate's JSON and train's 'default path for it' name paths as `pixelwise info` does."""
    names = {p: runtime.torch_path(p) for p in ("fp32", "fp32-cl", "bf16")}
    assert names == {"fp32": "torch-fp32", "fp32-cl": "torch-fp32-cl", "bf16": "torch-bf16-cl"}
    assert set(names.values()) == set(runtime.TRAINING_PATHS)
