"""Checkpoints that carry everything needed to rebuild a model, and the loaded form.

A checkpoint is a plain dict saved with ``torch.save`` and read back with
``weights_only=True`` (no pickled code is executed)::

    {"format": "pixelwise", "version": 1, "arch": "unet", "arch_kwargs": {...},
     "class_names": [...], "colours": [[r, g, b], ...], "normalization": {...},
     "mask_encoding": {...}, "input_scale": 1.0, "box_input": 0,
     "instance_thresholds": [seed, object] | None,   # boundary models: chosen after training
     "state_dict": {...}, "train_state": {...} | None,
     "int8": {"graph": uint8 tensor, "gate": {...}}}   # optional: added by pixelwise calibrate

``int8`` is the network as a statically quantised ONNX graph, calibrated on the validation images
of a dataset, with its accuracy gate (mean IoU drop at most 0.005 there); ``runtime="auto"`` may
run it where the machine's probe measured int8 fastest. Saving a checkpoint again (training on)
drops it: it belongs to those weights.
"""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import torch
from torch import nn

from pixelwise.constants import RUNTIMES, run_best
from pixelwise.data.write import atomic_write_bytes
from pixelwise.models import create_model
from pixelwise.runtime import (
    INT8_PATH,
    cache_file,
    calibrated_path,
    forced_path,
    inference_path,
    is_onnx_file,
    runtime_for,
    versions,
)
from pixelwise.segmenter import FORMAT, Segmenter, kind_of


def checkpoint_dict(seg: Segmenter, train_state: dict | None = None) -> dict:
    return seg.metadata() | {
        "state_dict": {k: v.detach().cpu() for k, v in seg.network.state_dict().items()},
        "train_state": train_state,
    }


def save_checkpoint(path: str | Path, seg: Segmenter, train_state: dict | None = None) -> None:
    """Write a checkpoint atomically."""
    write_checkpoint(path, checkpoint_dict(seg, train_state))


def write_checkpoint(path: str | Path, ckpt: dict) -> None:
    """Write a checkpoint dict atomically (a killed run leaves the old file or none)."""
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    atomic_write_bytes(path, buf.getvalue())


BUNDLED_DIR = Path(__file__).parent / "zoo"
BUNDLED = {
    "nuclei": "nuclei.pt",
    "foreground": "foreground.pt",
    "foreground-box": "foreground-box.pt",
}  # models trained by this project and shipped in the package (model cards beside them)


def resolve_checkpoint(name_or_path: str | Path) -> Path:
    """A checkpoint file path, or the installed file of a bundled model name (``nuclei``); a
    training run's folder stands for its ``best.pt``."""
    path = Path(name_or_path)
    if best := run_best(path):
        return best
    if not path.exists() and str(name_or_path) in BUNDLED:
        path = BUNDLED_DIR / BUNDLED[str(name_or_path)]
        if not path.is_file():
            raise ValueError(
                f"{path}: bundled model {name_or_path!r} is missing from this installation"
            )
    return path


def read_checkpoint(path: str | Path) -> dict:
    path = resolve_checkpoint(path)
    if not path.is_file():
        raise ValueError(
            f"{path}: checkpoint not found (a .pt file or a bundled model: {', '.join(BUNDLED)})"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):  # not a pickle at all: text, an image, ...
            raise ValueError(f"{path}: not a PyTorch checkpoint file") from None
        raise ValueError(
            f"{path}: not a pixelwise checkpoint (it holds Python objects other than tensors and "
            "plain data, which are never loaded: they could run code)"
        ) from None
    except Exception as exc:
        raise ValueError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path}: not a pixelwise checkpoint")
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise ValueError(f"{path}: damaged checkpoint, missing {', '.join(missing)}")
    return ckpt | {"path": str(path)}


REQUIRED = ("arch", "arch_kwargs", "class_names", "normalization")


def segmenter_from_checkpoint(ckpt: dict) -> Segmenter:
    """The Segmenter a checkpoint dict describes (an untrained network when ``state_dict`` is None)."""
    where = ckpt.get("path", "checkpoint")
    try:
        network = create_model(ckpt["arch"], **ckpt["arch_kwargs"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: cannot rebuild its {ckpt['arch']!r} network ({exc})") from None
    outputs = int(ckpt["arch_kwargs"].get("num_classes", 0)) + (
        1 if kind_of(ckpt["arch"]) == "instance" else 0
    )
    if outputs and outputs != len(ckpt["class_names"]):
        raise ValueError(
            f"{where}: {len(ckpt['class_names'])} class names for a network with {outputs} outputs"
        )
    if ckpt.get("state_dict") is not None:
        try:
            network.load_state_dict(ckpt["state_dict"])
        except RuntimeError as exc:
            first = str(exc).split("\n\t")[1] if "\n\t" in str(exc) else str(exc)[:200]
            raise ValueError(
                f"{where}: its weights do not fit its {ckpt['arch']} network ({first.strip()})"
            ) from None
    network.eval()
    return Segmenter.from_metadata(ckpt, network)


def load_model(path: str | Path, runtime: str = "torch", int8: bool = True) -> Segmenter:
    """Rebuild a trained model from a checkpoint file or a bundled model name (in eval mode,
    on CPU). ``runtime="onnx"`` runs it on ONNX Runtime; ``.onnx`` files always do;
    ``runtime="auto"`` takes what this machine measured fastest (:mod:`pixelwise.runtime`),
    ONNX Runtime only for models it can run and when the ``[onnx]`` extra is installed, and the
    checkpoint's int8 graph (``pixelwise calibrate``) only with ``int8`` (False when a command's
    precision is forced)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if is_onnx_file(path):
        from pixelwise.export import load_onnx

        return with_network(load_onnx(path))
    ckpt = read_checkpoint(path)
    seg = segmenter_from_checkpoint(ckpt)
    # the int8 graph (megabytes) is copied out only where auto may run it
    graph = int8_graph(ckpt) if int8 and runtime == "auto" else None
    if runtime == "auto":
        runtime = auto_runtime(seg, graph, path)
    if runtime == "onnx-int8":
        from pixelwise.export import OnnxNetwork

        return Segmenter.from_metadata(seg.metadata(), OnnxNetwork(graph, path="onnx-int8"))
    if runtime == "onnx":
        from pixelwise.export import to_onnx_runtime

        return to_onnx_runtime(seg, onnx_cache(resolve_checkpoint(path)))
    return seg


def load_for_command(checkpoint: str | Path, runtime: str, precision: str) -> Segmenter:
    """:func:`load_model` as a command's ``--runtime`` and ``--precision`` ask: a forced bf16
    means PyTorch (:func:`~pixelwise.runtime.runtime_for`), and the checkpoint's int8 graph runs
    only with ``--precision auto``."""
    return load_model(
        checkpoint, runtime_for(runtime, precision, checkpoint), int8=precision == "auto"
    )


def checkpoint_digest(path: Path) -> str:
    """A checkpoint file's identity: the hash of its bytes and the library versions."""
    import hashlib

    digest = hashlib.sha256(path.read_bytes())
    digest.update(json.dumps(versions(), sort_keys=True).encode())
    return digest.hexdigest()[:24]


def onnx_cache(path: Path) -> Path:
    """Where the ONNX graph of a checkpoint file is kept between runs (keyed by
    :func:`checkpoint_digest`, beside the runtime probe's cache)."""
    return cache_file().parent / "onnx" / f"{checkpoint_digest(path)}.onnx"


def auto_runtime(seg: Segmenter, graph: bytes | None = None, source=None) -> str:
    """``torch``, ``onnx`` or ``onnx-int8``: what this machine measured fastest for ``seg``
    (ONNX Runtime only for models it can run, when it is installed). With ``graph``, the int8
    graph of the checkpoint ``source``, int8 races the best other path on the checkpoint's own
    network (:func:`~pixelwise.runtime.calibrated_path`) unless ``PIXELWISE_PATH`` forces one."""
    if not onnx_runs(seg.arch):
        path = "torch-fp32"
    elif graph is not None and forced_path() is None:
        file = resolve_checkpoint(source)
        path = calibrated_path(
            checkpoint_digest(file), lambda best: int8_race(seg, graph, file, best)
        )
    else:
        path = inference_path(graph is not None)
    return {"onnx-fp32": "onnx", "onnx-int8": "onnx-int8"}.get(path, "torch")


def int8_race(seg: Segmenter, graph: bytes, source: Path, best: str) -> dict[str, float]:
    """Median seconds of the checkpoint's int8 graph and of path ``best`` on its network, timed in
    turn on a smooth 384 x 384 input as the probe times its own network."""
    import copy

    from pixelwise.export import OnnxNetwork, to_onnx_runtime
    from pixelwise.runtime import interleaved, run_path, smooth_input

    x = smooth_input(seg.in_channels)
    onnx_net = to_onnx_runtime(seg, onnx_cache(source)).network if best == "onnx-fp32" else None
    calls = {
        INT8_PATH: run_path(INT8_PATH, seg.network, x, OnnxNetwork(graph, path=INT8_PATH)),
        best: run_path(best, copy.deepcopy(seg.network), x, onnx_net),
    }
    return interleaved(calls, 3)


def default_path(checkpoint: str | Path) -> str:
    """The path ``--precision auto --runtime auto`` takes for ``checkpoint`` here (for a calibrated
    checkpoint, int8 raced on its own network first: :func:`pixelwise.runtime.calibrated_path`)."""
    from pixelwise.runtime import resolve_precision, torch_path

    network = load_model(checkpoint, "auto").network
    return getattr(network, "path", None) or torch_path(resolve_precision("auto"))


def onnx_runs(arch: str) -> bool:
    """Whether ONNX Runtime can run a model of ``arch`` here: a semantic model it can express,
    with ONNX Runtime installed."""
    from importlib.util import find_spec

    return (
        kind_of(arch) == "semantic"
        and arch != "unet_original"
        and find_spec("onnxruntime") is not None
    )


def int8_applies(arch: str) -> bool:
    """Whether int8 calibration applies: :func:`onnx_runs`, with ONNX Runtime's quantisation
    tools installed."""
    from importlib.util import find_spec

    return onnx_runs(arch) and find_spec("onnxruntime.quantization") is not None


def int8_graph(ckpt: dict) -> bytes | None:
    """The checkpoint's int8 ONNX graph when it carries one whose accuracy gate passed."""
    entry = ckpt.get("int8")
    if not entry or not entry.get("gate", {}).get("passed"):
        return None
    return entry["graph"].numpy().tobytes()


def calibration_target(path: str | Path, out: str | Path | None) -> Path:
    """Where ``calibrate`` writes: ``out``, else the checkpoint itself, never a bundled model."""
    target = Path(out) if out else resolve_checkpoint(path)
    if BUNDLED_DIR in target.resolve().parents:
        raise ValueError(
            f"{path}: a bundled model is not changed in place; give --out for a calibrated copy"
        )
    return target


def calibrate_checkpoint(
    path: str | Path,
    data: str | Path | None,
    val_stems: list[str] | None = None,
    out: str | Path | None = None,
    items=None,
) -> dict:
    """Quantise the checkpoint at ``path`` to int8 calibrated on the validation images of
    ``data`` (or on ``items``) and check the accuracy gate there; when it passes, write the
    checkpoint with the int8 graph and the gate added to ``out`` (``path`` itself by default,
    atomically). Returns the gate."""
    from pixelwise.export import calibrate_int8

    target = calibration_target(path, out)
    ckpt = read_checkpoint(path)
    if ckpt.get("state_dict") is None:
        raise ValueError(f"{path}: the checkpoint has no weights to calibrate")
    seg = segmenter_from_checkpoint(ckpt)
    graph, gate = calibrate_int8(seg, data, val_stems, items)
    if gate["passed"]:
        ckpt.pop("path")
        ckpt["int8"] = {
            "graph": torch.frombuffer(bytearray(graph), dtype=torch.uint8),
            "gate": gate,
        }
        write_checkpoint(target, ckpt)
    return gate


def with_network(loaded: tuple[dict, nn.Module]) -> Segmenter:
    """A Segmenter from an ONNX file's metadata and its ONNX Runtime network."""
    meta, network = loaded
    return Segmenter.from_metadata(meta, network)
