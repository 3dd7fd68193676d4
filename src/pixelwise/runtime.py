"""The execution path, chosen per machine by measurement and cached.

CPUs differ: with AVX-512 BF16, bf16 autocast + channels_last runs U-Nets about 2.7x faster
than fp32; without it bf16 is emulated and about 9x slower, and ONNX Runtime fp32 beats torch
fp32 by about 1.7x. So ``auto`` is not a rule but a measurement: on first use on a machine a
probe (a few seconds) times the candidate paths (inference on a U-Net of depth 4 and width 16
at 384 x 384, training steps on the default U-Net of width 32, batch 1 x 160^2) and keeps
the fastest whose masks agree with torch fp32 on at least 99.5 % of pixels, if it is at least
10 % faster than plain torch fp32 (smaller differences are within the probe's noise). The
result is cached in the user cache directory under a key of the CPU model, its flags, the torch
and ONNX Runtime versions and the probe's own version, so it is measured again when any of
those change. A probe that other work slowed (it took more than a quarter of this process's
CPUs meanwhile, from /proc/stat) is kept, marked busy, and measured again by the first command
that finds the machine idle (load average under half the CPUs).

Inference paths: ``torch-fp32``, ``torch-fp32-cl`` (channels_last), ``torch-bf16-cl`` (only where
the hardware has bf16 instructions) and ``onnx-fp32``; for checkpoints that carry an int8
calibration whose accuracy gate passed (``pixelwise calibrate``) also ``onnx-int8``, timed on the
probe network quantised on its own input. Its masks are not held to the 99.5 % agreement: the
checkpoint's gate (mean IoU drop on its validation images) is its accuracy rule. Training paths:
the three torch ones.
``--runtime``/``--precision`` still force a path; forcing bf16 without the hardware warns with
the measured slowdown.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import torch

from pixelwise.allocator import allocator
from pixelwise.constants import first_time
from pixelwise.data.write import atomic_write_bytes

AGREEMENT = 0.995  # share of identical mask pixels a faster path must keep
INFERENCE_PATHS = ("torch-fp32", "torch-fp32-cl", "torch-bf16-cl", "onnx-fp32")
TRAINING_PATHS = ("torch-fp32", "torch-fp32-cl", "torch-bf16-cl")
PRECISION_OF = {
    "torch-fp32": "fp32",
    "torch-fp32-cl": "fp32-cl",
    "torch-bf16-cl": "bf16",
    "onnx-fp32": "fp32",
    "onnx-int8": "fp32",
}


def torch_path(precision: str) -> str:
    """The probe's name of the PyTorch path that runs ``precision`` (``bf16``: torch-bf16-cl,
    as bf16 runs channels_last)."""
    return next(p for p, v in PRECISION_OF.items() if v == precision and p.startswith("torch"))


INT8_PATH = "onnx-int8"  # only for checkpoints whose int8 calibration passed its gate
FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "amx_bf16",
    "amx_int8",
    "avx_vnni",
    "asimd",
    "sve",
    "bf16",
    "i8mm",
)


@cache
def cpu_info() -> dict:
    """CPU model, the SIMD flags that matter here, and the threads torch uses."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        text = Path("/proc/cpuinfo").read_text()
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in (
                "",
                platform.machine(),
                platform.processor(),
            ):
                model = value.strip()
            if key.strip() in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {
        "model": model,
        "flags": sorted(f for f in FLAGS if f in flags),
        "threads": torch.get_num_threads(),
        "bf16_hardware": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
    }


@cache
def versions() -> dict:
    try:
        import onnxruntime

        ort = onnxruntime.__version__
    except ImportError:
        ort = None
    return {"torch": torch.__version__, "onnxruntime": ort, "python": platform.python_version()}


PROBE_VERSION = 8  # raised when the probe or the rule that picks from it changes


@cache
def machine_key() -> str:
    info = cpu_info() | versions() | {"probe": PROBE_VERSION, "allocator": allocator()}
    return hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()[:16]


def cache_file() -> Path:
    root = (
        os.environ.get("PIXELWISE_CACHE")
        or os.environ.get("XDG_CACHE_HOME")
        or Path.home() / ".cache"
    )
    base = Path(root) if os.environ.get("PIXELWISE_CACHE") else Path(root) / "pixelwise"
    return base / "runtime.json"


# The inference probe's input side. Which of ONNX Runtime and channels_last is faster depends on
# the input size: with oneDNN and ATen held to AVX2 on the AVX-512 machine, channels_last was
# ahead or level up to 320^2 (ONNX Runtime / channels_last time 0.73-1.08 at 192^2, 0.78-1.04 at
# 256^2 and 320^2, width 16) and ONNX Runtime ahead from 384^2 on (1.17-1.42 at 384^2, 1.15-1.33 at
# 512^2 for width 16; 1.22-1.51 for the default width-32 U-Net at 512^2, the size people predict
# at). A 192^2 probe picked between the two by chance.
PROBE_SIZE = 384


def probe_network(size: int = PROBE_SIZE) -> tuple[torch.nn.Module, torch.Tensor]:
    """The representative network (U-Net depth 4, width 16, seeded) and a smooth photo-like input
    of ``size`` x ``size``."""
    from pixelwise.models import create_model

    torch.manual_seed(0)
    net = create_model("unet", in_channels=3, num_classes=2, depth=4, base_width=16).eval()
    return net, smooth_input(3, size)


def smooth_input(channels: int, size: int = PROBE_SIZE) -> torch.Tensor:
    """A seeded, smooth, photo-like (1, channels, size, size) input for timing networks."""
    g = torch.Generator().manual_seed(1)
    return torch.nn.functional.interpolate(
        torch.randn(1, channels, 12, 12, generator=g), size=(size, size), mode="bicubic"
    )


def median_seconds(fn, repeats: int = 3) -> float:
    """Median wall time of ``repeats`` calls of ``fn`` after one warm-up call (oneDNN primitive
    creation, ORT session); ``repeats=1``: the one call, warm-up included (for slow paths). The
    timing rule of the probe and of every script in benchmarks/ (see :func:`interleaved`)."""
    once = frozenset({"fn"}) if repeats == 1 else frozenset()
    return interleaved({"fn": fn}, repeats, once)["fn"]


def run_path(path: str, net: torch.nn.Module, x: torch.Tensor, onnx_net=None):
    """A callable that runs ``net`` on ``x`` along ``path`` and returns the logits."""
    from pixelwise.precision import autocast, fold_batch_norms, memory_format

    if path in ("onnx-fp32", INT8_PATH):  # onnx_net: the ONNX Runtime network of that path
        return lambda: onnx_net(x)
    precision = PRECISION_OF[path]
    fmt = memory_format(precision)
    model = fold_batch_norms(net.eval().to(memory_format=fmt))  # as predict runs it
    xin = x.contiguous(memory_format=fmt)

    @torch.inference_mode()
    def forward():
        with autocast(precision):
            return model(xin).float()

    return forward


@dataclass
class Measurement:
    seconds: dict
    agreement: dict
    best: str
    emulated: dict = field(default_factory=dict)  # path -> times slower than fp32 (not candidates)
    best_calibrated: str | None = None  # the best with int8 allowed (calibrated checkpoints)

    def to_dict(self) -> dict:
        out = {"seconds": self.seconds, "agreement": self.agreement, "best": self.best}
        if self.best_calibrated:
            out["best_calibrated"] = self.best_calibrated
        return out | ({"emulated": self.emulated} if self.emulated else {})


# A path replaces plain torch fp32 only when the probe measured it at least this much faster.
# The probe's network is small: differences of a few percent there are noise and need not carry
# to real sizes. Measured with oneDNN and ATen held to AVX2 (ONEDNN_MAX_CPU_ISA=AVX2,
# ATEN_CPU_CAPABILITY=avx2) on the AVX-512 machine: the training probe timed channels_last from
# 0.95x to 1.2x as fast as fp32 from run to run, while on the real step (batch 4 x 256^2, width
# 32) it was 0.83-0.95x. The margin removes the small, noisy wins; that systematic one came from
# probing training on a narrower network than people train (see training_step).
MARGIN = 1.1


def pick(seconds: dict, agreement: dict, allowed: tuple[str, ...]) -> str:
    """The fastest allowed path that agrees with fp32, if it beats fp32 by ``MARGIN``."""
    ok = [p for p in allowed if p in seconds and agreement.get(p, 1.0) >= AGREEMENT]
    best = min(ok, key=lambda p: seconds[p])
    plain = "torch-fp32"
    if plain in ok and seconds[best] * MARGIN > seconds[plain]:
        return plain
    return best


def interleaved(calls: dict, repeats: int = 3, once: frozenset = frozenset()) -> dict[str, float]:
    """Median seconds of each callable, timed in turn, round after round (after one warm-up call
    each): load that comes and goes on a shared machine then hits every candidate alike. Those in
    ``once`` (slow, emulated paths) keep their first, warm-up-included call only."""
    times: dict[str, list[float]] = {}
    for name, fn in calls.items():
        start = time.perf_counter()
        fn()
        times[name] = [time.perf_counter() - start] if name in once else []
    for _ in range(repeats):
        for name, fn in calls.items():
            if name not in once:
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def emulated_paths() -> frozenset:
    """Paths this CPU only emulates (bf16 without the instructions): timed once, never chosen."""
    return frozenset() if cpu_info()["bf16_hardware"] else frozenset({"torch-bf16-cl"})


def measure_inference(report) -> Measurement:
    """The candidates timed on the probe network at ``PROBE_SIZE``; a path this CPU only emulates
    is never a candidate and is timed once next to fp32 on a 128^2 crop instead (about 9x slower
    on an AVX2 CPU: at full size it alone would take seconds), for the warning's slowdown."""
    net, x = probe_network()
    onnx_net, int8_net = onnx_networks(net, x)
    emulated = emulated_paths()
    logits: dict[str, torch.Tensor] = {}  # each path's output of its last timed call

    ort = {"onnx-fp32": onnx_net, INT8_PATH: int8_net}  # None: not installed

    def keeping_output(path: str):
        # the argmax stays outside the timed call: inside, it cost ONNX Runtime 20-40 ms here
        forward = run_path(path, copy.deepcopy(net), x, ort.get(path))
        return lambda: logits.__setitem__(path, forward())

    runners = {
        p: keeping_output(p)
        for p in (*INFERENCE_PATHS, INT8_PATH)
        if ort.get(p, net) is not None and p not in emulated
    }
    report("inference paths")
    seconds = interleaved(runners, 3)
    reference = logits["torch-fp32"].argmax(1)
    agreement = {p: (y.argmax(1) == reference).float().mean().item() for p, y in logits.items()}
    slowdown = {}
    if emulated:
        crop = x[..., :128, :128]
        small = {p: run_path(p, copy.deepcopy(net), crop) for p in ("torch-fp32", *emulated)}
        once = interleaved(small, 1, emulated)
        slowdown = {p: once[p] / once["torch-fp32"] for p in emulated}
    best = pick(seconds, agreement, INFERENCE_PATHS)
    calibrated = None
    if INT8_PATH in seconds:  # the checkpoint's own gate stands in for the agreement here
        calibrated = pick(seconds, agreement | {INT8_PATH: 1.0}, (*INFERENCE_PATHS, INT8_PATH))
    return Measurement(seconds, agreement, best, slowdown, calibrated)


def onnx_networks(net: torch.nn.Module, x: torch.Tensor) -> tuple:
    """The probe network on ONNX Runtime in fp32 and int8 (quantised with ``x`` as its calibration),
    or None for those this installation cannot make (no ``[onnx]`` extra)."""
    try:
        from pixelwise.export import OnnxNetwork, quantize_int8, trace_to_onnx
    except ImportError:
        return None, None
    graph = trace_to_onnx(net, 3)
    try:
        int8 = OnnxNetwork(quantize_int8(graph, [x]))
    except ImportError:  # onnxruntime without its quantization tools
        int8 = None
    return OnnxNetwork(graph), int8


def training_net() -> torch.nn.Module:
    """The network the training probe steps: the default U-Net (depth 4, width 32), seeded."""
    from pixelwise.models import create_model

    torch.manual_seed(0)
    return create_model("unet", in_channels=3, num_classes=2)


def training_step(
    precision: str,
    net: torch.nn.Module | None = None,
    batch: int = 1,
    size: int = 160,
    optimizer: bool = True,
):
    """One training step (Adam, cross-entropy) of ``net`` on a fixed random batch of ``batch`` x 3
    x ``size`` x ``size`` at ``precision`` (fp32, fp32-cl, bf16). Default ``net``: the default
    U-Net (depth 4, width 32), not the narrower inference probe: with oneDNN held to AVX2, the
    width-16 step timed channels_last 1.09-1.12x as fast as fp32 and the width-32 one 0.92-0.95x,
    as on the real step (batch 4 x 256^2: 0.83-0.95x). Batch 1 x 160^2 (78 % of the pixels of
    batch 2 x 128^2, so a shorter probe) ranks the paths as that did: channels_last 0.91-0.93x
    of fp32 against 0.91-1.01x, three runs each. ``optimizer=False`` leaves out Adam's update (the
    same on every path), whose first construction in a process takes about 2 s (imports)."""
    from pixelwise.precision import autocast, memory_format

    fmt = memory_format(precision)
    net = (training_net() if net is None else net).train().to(memory_format=fmt)
    opt = torch.optim.Adam(net.parameters(), 1e-3) if optimizer else None
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=fmt)
    y = torch.randint(0, 2, (batch, size, size))

    def step():
        net.zero_grad()
        with autocast(precision):
            logits = net(x)
        torch.nn.functional.cross_entropy(logits.float(), y).backward()
        if opt is not None:
            opt.step()

    return step


def measure_training(report) -> Measurement:
    report("training paths")  # emulated bf16 (about 9x slower) is never a candidate
    steps = {
        p: training_step(PRECISION_OF[p], optimizer=False)
        for p in TRAINING_PATHS
        if p not in emulated_paths()
    }
    seconds = interleaved(steps, 3)
    return Measurement(seconds, {}, pick(seconds, {}, TRAINING_PATHS))


def carriage() -> str:
    """Back to the start of the line on a terminal, where the next line replaces a passing
    one; nothing in a log, where each has its own line."""
    return "\r" if sys.stderr.isatty() else ""


def passing_line(text: str) -> None:
    """A line of progress that the next line replaces on a terminal (a line of its own in a
    log file, not a run of them joined by carriage returns)."""
    if carriage():
        print(f"\r{text}", end="", file=sys.stderr, flush=True)
    else:
        print(text.rstrip(), file=sys.stderr, flush=True)


def probe(progress: bool = True) -> dict:
    """Measure every path on this machine now (a few seconds); the result as it is cached."""

    def report(what: str) -> None:
        if progress:
            passing_line(f"pixelwise: measuring this machine's fastest path ({what})...{' ' * 10}")

    start = time.perf_counter()
    others = OtherWork()
    result = {
        "key": machine_key(),
        "cpu": cpu_info(),
        "versions": versions(),
        "inference": measure_inference(report).to_dict(),
    }
    with torch.inference_mode(False), torch.enable_grad():  # callers may be inside inference mode
        result["training"] = measure_training(report).to_dict()
    result["probe_seconds"] = round(time.perf_counter() - start, 2)
    result["measured_at"] = round(time.time())
    share = others.share()
    if share is not None:
        result["other_work"] = round(share, 3)
        result["busy"] = share > BUSY_SHARE
    if progress:
        print(
            f"{carriage()}pixelwise: measured in {result['probe_seconds']:.1f} s{busy_note(result)}: "
            f"inference {result['inference']['best']}, training {result['training']['best']}",
            end="",  # save() ends the line with where it was cached
            file=sys.stderr,
        )
    return result


# A probe during which other work took more than this share of the process's CPUs measured
# the other work as much as the paths: its result is marked busy and measured again when idle.
BUSY_SHARE = 0.25


def busy_ticks() -> int | None:
    """Non-idle clock ticks (user, nice, system, irq, softirq, steal) of the CPUs this process
    may run on, from /proc/stat; None where there is none (not Linux)."""
    try:
        cpus = {f"cpu{i}" for i in os.sched_getaffinity(0)}
        total = 0
        for line in Path("/proc/stat").read_text().splitlines():
            name, *fields = line.split()
            if name in cpus:
                user, nice, system, _, _, irq, softirq, steal = (int(f) for f in fields[:8])
                total += user + nice + system + irq + softirq + steal
        return total
    except (OSError, AttributeError, ValueError):
        return None


class OtherWork:
    """How much of this process's CPUs other processes took from its creation to :meth:`share`:
    their busy time (all busy time less this process's own CPU time) over the CPUs' time."""

    def __init__(self) -> None:
        self.ticks, self.own, self.wall = busy_ticks(), time.process_time(), time.perf_counter()

    def share(self) -> float | None:
        ticks = busy_ticks()
        if ticks is None or self.ticks is None:
            return None
        busy = (ticks - self.ticks) / os.sysconf("SC_CLK_TCK")
        others = busy - (time.process_time() - self.own)
        capacity = len(os.sched_getaffinity(0)) * (time.perf_counter() - self.wall)
        return max(0.0, others / capacity) if capacity > 0 else None


def busy_note(result: dict) -> str:
    """ ", while other work took N % of the CPUs (...)" for a probe marked busy, else ""."""
    if not result.get("busy"):
        return ""
    return (
        f" while other work took {result['other_work']:.0%} of the CPUs (measured again when "
        "the machine is idle)"
    )


# A busy probe is measured again no sooner than this many seconds after it (so that a load that
# comes and goes cannot make every command probe).
REPROBE_AFTER = 120


def measure_again(cached: dict) -> bool:
    """Whether a cached probe result was measured busy, a while ago, and the machine is idle now."""
    waited = time.time() - cached.get("measured_at", 0) > REPROBE_AFTER
    return bool(cached.get("busy")) and waited and machine_idle()


def machine_idle() -> bool:
    """Whether the 1-minute load average is under half this process's CPUs (False where there
    is no load average)."""
    try:
        return os.getloadavg()[0] < 0.5 * len(os.sched_getaffinity(0))
    except (OSError, AttributeError):
        return False


_MEASURED: dict | None = None


def measured(progress: bool = True) -> dict:
    """This machine's probe result: from the cache when its key matches (unless measured busy
    and the machine is idle now, :func:`measure_again`), else measured now."""
    global _MEASURED
    if _MEASURED is not None and _MEASURED.get("key") == machine_key():
        return _MEASURED
    cached = this_machine()
    if cached is None or measure_again(cached):
        with one_probe_at_a_time(progress):  # another process may have measured meanwhile
            cached = this_machine()
            if cached is None or measure_again(cached):
                cached = probe(progress)
                save(cached, progress)
    _MEASURED = cached
    return cached


@contextlib.contextmanager
def one_probe_at_a_time(progress: bool = True):
    """An exclusive lock beside the cache while a process checks it and measures, so that
    processes started together (torchrun's ranks, two commands at once) measure once: the
    others wait, then read the result, instead of each timing the paths while the others load
    the CPUs. Without fcntl (Windows) or a writable cache folder, no lock."""
    try:
        import fcntl

        lock = cache_file().with_name("runtime.lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock, "a")
    except (ImportError, OSError):
        yield
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if progress:
                print(
                    "pixelwise: waiting for another process measuring this machine...",
                    file=sys.stderr,
                    flush=True,
                )
            with contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:
            pass  # a file system without locks (some network mounts): measure unlocked
        yield  # the lock goes with the file's closing


# Probe results kept in the cache, most recently measured last: one per machine key, so a home
# directory shared by machines with different CPUs, or environments with different torch or
# ONNX Runtime versions, measures each once instead of again at every switch.
KEPT_MACHINES = 8


def cached_machines() -> dict[str, dict]:
    """The cached probe results by machine key (empty when there is no readable cache)."""
    try:
        cached = json.loads(cache_file().read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    if not isinstance(cached, dict):
        return {}
    if "key" in cached:  # a cache written before several machines were kept: one result
        return {cached["key"]: cached}
    machines = cached.get("machines")
    return machines if isinstance(machines, dict) else {}


def this_machine() -> dict | None:
    """This machine's cached probe result, or None; one edited by hand or cut short counts as
    none (measured again, rather than a KeyError in every command)."""
    entry = cached_machines().get(machine_key())
    return entry if well_formed(entry) else None


def well_formed(entry) -> bool:
    """Whether a cached probe result has what the commands read."""

    def part(name: str, paths: tuple[str, ...]) -> bool:
        found = entry.get(name)
        return (
            isinstance(found, dict)
            and isinstance(found.get("seconds"), dict)
            and found.get("best") in paths
            and all(isinstance(v, int | float) for v in found["seconds"].values())
        )

    return (
        isinstance(entry, dict)
        and part("inference", (*INFERENCE_PATHS, INT8_PATH))
        and part("training", TRAINING_PATHS)
    )


def save(result: dict, progress: bool = False) -> None:
    """Cache a probe result for this machine beside the other machines' (the oldest beyond
    :data:`KEPT_MACHINES` dropped; a read-only home just measures again next time).
    ``progress``: end the probe's line with where it went, or why it could not be kept."""
    global _MEASURED
    _MEASURED = result
    machines = {k: v for k, v in cached_machines().items() if k != result["key"]}
    machines[result["key"]] = result
    kept = dict(list(machines.items())[-KEPT_MACHINES:])
    try:
        atomic_write_bytes(cache_file(), json.dumps({"machines": kept}, indent=2).encode())
        where = f" (cached in {cache_file()})"
    except OSError as exc:
        where = (
            f"; not cached ({cache_file()}: {exc.strerror or exc}), so measured again by each "
            "command: PIXELWISE_CACHE=FOLDER names a writable place for it"
        )
    if progress:
        print(where + (" " * 10 if carriage() else ""), file=sys.stderr)  # over a longer line


def forced_path() -> str | None:
    """``PIXELWISE_PATH=torch-fp32`` (or another path) skips the probe: for tests and pinned deployments."""
    value = os.environ.get("PIXELWISE_PATH")
    choices = (*INFERENCE_PATHS, INT8_PATH)
    if value and value not in choices:
        raise ValueError(f"PIXELWISE_PATH={value!r}: choose one of {', '.join(choices)}")
    return value


def inference_path(calibrated: bool = False) -> str:
    """The inference path for a model; ``calibrated``: it carries an int8 calibration whose
    gate passed, so ``onnx-int8`` may be chosen (``onnx-fp32`` stands in for it otherwise)."""
    path = forced_path()
    if path is None:
        result = measured()["inference"]
        path = result.get("best_calibrated", result["best"]) if calibrated else result["best"]
    return "onnx-fp32" if path == INT8_PATH and not calibrated else path


# Checkpoints whose int8 race (:func:`calibrated_path`) is kept per machine, the latest last.
KEPT_RACES = 16


def calibrated_path(digest: str, race, progress: bool = True) -> str:
    """The path for a checkpoint that carries a passed int8 calibration: the faster, on the
    checkpoint's own network, of its int8 graph and the probe's best other path. ``race(best)``
    times both and returns ``{path: seconds}``; it runs once per machine and checkpoint
    (``digest``), again when the probe's best changes, and is cached with the probe's result.
    Why not the probe's network: it ranks int8 against bf16 otherwise than real checkpoints do
    (AVX-512 BF16 machine, int8 / bf16 time: 0.96 for the probe's width-16 U-Net at 384^2,
    0.76 for the default width-32 one, 0.62 for the ISBI checkpoint at 512^2)."""
    result = measured()
    if not raced(result, digest):
        with one_probe_at_a_time(progress):  # another process may have raced it meanwhile
            cached = this_machine()
            if cached and cached["inference"]["best"] == result["inference"]["best"]:
                result = cached
            if not raced(result, digest):
                race_checkpoint(result, digest, race, progress)
    global _MEASURED
    _MEASURED = result
    return result["checkpoints"][digest]["best"]


def raced(result: dict, digest: str) -> bool:
    """Whether a probe result holds checkpoint ``digest``'s race against its best path."""
    entry = result.get("checkpoints", {}).get(digest)
    return entry is not None and entry.get("against") == result["inference"]["best"]


def race_checkpoint(result: dict, digest: str, race, progress: bool) -> None:
    """Time checkpoint ``digest``'s int8 graph against the probe's best path (``race``, as in
    :func:`calibrated_path`) and cache the outcome in ``result``."""
    best = result["inference"]["best"]
    races = result.get("checkpoints", {})
    if progress:
        passing_line(f"pixelwise: timing this checkpoint's int8 graph against {best} (once)...")
    seconds = race(best)
    entry = {"against": best, "seconds": seconds, "best": min(seconds, key=seconds.get)}
    races = {k: v for k, v in races.items() if k != digest} | {digest: entry}
    result["checkpoints"] = dict(list(races.items())[-KEPT_RACES:])
    save(result)
    if progress:
        times = ", ".join(f"{p} {s * 1000:.0f} ms" for p, s in seconds.items())
        print(
            f"{carriage()}pixelwise: {times}: {entry['best']} for this checkpoint", file=sys.stderr
        )


def training_path() -> str:
    path = forced_path()
    return path if path in TRAINING_PATHS else measured()["training"]["best"]


def warn_bf16_without_hardware() -> None:
    """One line when bf16 is forced on a CPU that only emulates it, with the measured slowdown."""
    if cpu_info()["bf16_hardware"]:
        return
    slower = measured()["inference"].get("emulated", {}).get("torch-bf16-cl", float("nan"))
    print(
        f"pixelwise: warning: this CPU has no bf16 instructions; bf16 is emulated here and measured {slower:.1f}x "
        "slower than fp32 (drop --precision bf16)",
        file=sys.stderr,
    )


def best_torch_path(kind: str = "inference") -> str:
    """The fastest torch path (for networks that run on torch even when ONNX Runtime would win)."""
    result = measured()[kind]  # emulated paths are never among the timed candidates
    return pick(result["seconds"], result.get("agreement", {}), TRAINING_PATHS)


def is_onnx_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an exported ONNX model, which ONNX Runtime always runs."""
    return str(path).endswith(".onnx")


def runtime_for(runtime: str, precision: str, checkpoint: str | os.PathLike) -> str:
    """The runtime to load ``checkpoint`` on for a command given ``--runtime`` and
    ``--precision``: bf16 is PyTorch's, so a forced bf16 makes ``auto`` mean PyTorch; where ONNX
    Runtime must run the model (``--runtime onnx``, a .onnx file) it cannot apply: one warning."""
    if precision != "bf16":
        return runtime
    if runtime == "onnx" or is_onnx_file(checkpoint):
        print(
            "pixelwise: warning: --precision bf16 is for PyTorch; ONNX Runtime runs this model "
            "in fp32",
            file=sys.stderr,
        )
        return runtime
    return "torch"


def resolve_precision(
    precision: str, device: torch.device | str = "cpu", training: bool = False
) -> str:
    """``auto`` -> what this machine measured fastest for torch (``fp32``, ``fp32-cl`` or ``bf16``;
    on CUDA bf16 where supported); a forced value as given (bf16 without the hardware warns)."""
    from pixelwise.precision import check_precision

    check_precision(precision)
    cuda = torch.device(device).type == "cuda"
    if precision != "auto":
        if precision == "bf16" and not cuda and first_time("bf16 without the hardware"):
            warn_bf16_without_hardware()
        return precision
    if cuda:
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    path = forced_path() or (training_path() if training else best_torch_path())
    return PRECISION_OF[path if path in TRAINING_PATHS else "torch-fp32"]
