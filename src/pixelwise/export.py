"""ONNX export and the ONNX Runtime network that stands in for the PyTorch one.

``export_onnx`` writes a graph with dynamic batch, height and width whose metadata carries
everything a checkpoint does except the weights' training state (classes, colours,
normalisation, mask encoding, input scale), so ``load_model("model.onnx")`` gives a
:class:`~pixelwise.checkpoint.Segmenter` that predicts, tiles and segments like the original.

The graph mirror-pads inputs up to a multiple of the model's downsampling factor (2**depth;
32 for the FCNs), which ONNX's reflect padding allows only for pads smaller than the input;
PyTorch falls back to edge padding there. When ONNX Runtime refuses an input under
``SMALL_SIDE`` pixels on a side, :class:`OnnxNetwork` edge-pads it to that size itself and crops
the logits back, so a thumbnail or a 1-pixel strip is predicted too (its logits then differ from
PyTorch's near the padded edge).
"""

from __future__ import annotations

import io
import json
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pixelwise.data.write import atomic_write_bytes
from pixelwise.segmenter import Segmenter

METADATA_KEY = "pixelwise"
SMALL_SIDE = 64  # the largest downsampling factor (depth 6): the graph's own pad fits above it
OPSET = 18


def trace_to_onnx(
    network: nn.Module, in_channels: int, sample_size: tuple[int, int] = (70, 90)
) -> bytes:
    """Any (N, C, H, W) -> (N, K, H, W) network as serialized ONNX: fp32, dynamic N/H/W, input
    ``image``, output ``logits``."""
    network = network.float().eval().to(memory_format=torch.contiguous_format)
    x = torch.randn(1, in_channels, *sample_size)
    buf = io.BytesIO()
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the TorchScript-based exporter: it traces our shape arithmetic (padding to a
        # multiple of 2**depth) into the graph, where torch.export cannot yet for most models
        torch.onnx.export(
            network,
            (x,),
            buf,
            dynamo=False,
            opset_version=OPSET,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": axes, "logits": axes},
        )
    return buf.getvalue()


def onnx_bytes(seg: Segmenter) -> bytes:
    """The serialized ONNX model of ``seg`` with its metadata (see the module docstring)."""
    import onnx

    if seg.kind == "instance":
        raise ValueError(
            f"{seg.arch} is an instance model: ONNX export is for semantic models (an image in, "
            "per-pixel logits out); predict it with the PyTorch runtime"
        )
    if seg.arch == "unet_original":
        raise ValueError(
            "the original (valid-convolution) U-Net has no dynamic-size ONNX graph: its valid input "
            "size is searched in Python; predict it with the PyTorch runtime"
        )
    model = onnx.load_from_string(trace_to_onnx(seg.network, seg.in_channels))
    meta = seg.metadata()
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    return model.SerializeToString()


def export_onnx(seg: Segmenter, path: str | Path) -> Path:
    """Write ``seg`` as ONNX to ``path`` atomically."""
    atomic_write_bytes(path, onnx_bytes(seg))
    return Path(path)


class OnnxNetwork(nn.Module):
    """An ONNX Runtime session behind the ``nn.Module`` call interface: float32 (N, C, H, W)
    in, float32 logits out, on CPU. Autocast and memory formats do not apply."""

    def __init__(
        self, model: bytes | str | Path, threads: int | None = None, path: str = "onnx-fp32"
    ) -> None:
        super().__init__()
        import onnxruntime as ort

        self.path = path  # the execution path it stands for: onnx-fp32 or onnx-int8

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 4  # errors come back as exceptions; forward retries some
        # ORT's worker threads otherwise spin after each run and hold the cores that the torch
        # code after it (softmax, argmax, graph cut) needs: on 2 cores a 512 x 512 predict took
        # 0.504 s with spinning, 0.483 s without, the session's run time the same (0.459 s)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        source = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        try:
            return self.run(x)
        except Exception:  # ORT's own error types; on a small input, the graph's reflect pad
            if min(h, w) >= SMALL_SIDE:
                raise
        pad = (0, max(0, SMALL_SIDE - w), 0, max(0, SMALL_SIDE - h))
        return self.run(torch.nn.functional.pad(x.float(), pad, mode="replicate"))[..., :h, :w]

    def run(self, x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().float().cpu().numpy())
        return torch.from_numpy(self.session.run(["logits"], {"image": array})[0])


def read_metadata(path: Path) -> dict:
    """The metadata pixelwise stores in an exported ``.onnx`` file (refused for other files)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None
    meta = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in meta:
        raise ValueError(
            f"{path}: an ONNX model not exported by pixelwise (no '{METADATA_KEY}' metadata)"
        )
    return json.loads(meta[METADATA_KEY])


def load_onnx(path: str | Path) -> tuple[dict, OnnxNetwork]:
    """The metadata of an exported ``.onnx`` file and its network on ONNX Runtime
    (:func:`pixelwise.checkpoint.load_model` makes the Segmenter)."""
    path = Path(path)
    info = read_metadata(path)
    gate = info.get("int8")
    if gate and not gate.get("passed"):
        print(
            f"pixelwise: warning: {path} is an int8 model that failed its accuracy gate (mean IoU drop "
            f"{gate['drop']:.4f} > {gate['max_drop']})",
            file=sys.stderr,
        )
    return info, OnnxNetwork(path, path="onnx-int8" if gate else "onnx-fp32")


# Exported graphs kept in the cache folder: the most recently used ones. Every checkpoint that
# runs on ONNX Runtime by default leaves its graph there (31 MB for the default U-Net), and a
# training run that is evaluated epoch after epoch makes a new one each time.
KEPT_GRAPHS = 8


def to_onnx_runtime(seg: Segmenter, cache: Path | None = None) -> Segmenter:
    """The same model on ONNX Runtime, exported in memory, or read from ``cache`` when an earlier
    run left the export there (written there otherwise, and the least recently used graphs
    beyond :data:`KEPT_GRAPHS` in its folder removed). A cached graph ONNX Runtime cannot load
    (a damaged file) is exported again and replaced."""
    data = cached_graph(cache) if cache is not None else None
    if data is not None:
        try:
            return Segmenter.from_metadata(seg.metadata(), OnnxNetwork(data))
        except Exception:  # ONNX Runtime's load errors (InvalidProtobuf, ...) are plain Exceptions
            pass
    data = onnx_bytes(seg)
    if cache is not None:
        try:
            atomic_write_bytes(cache, data)
            drop_least_recent(cache.parent, KEPT_GRAPHS)
        except OSError:
            pass  # a read-only cache: export again next time
    return Segmenter.from_metadata(seg.metadata(), OnnxNetwork(data))


def cached_graph(cache: Path) -> bytes | None:
    """The graph an earlier run left at ``cache``, marked as used now (``None`` when there is
    none, or another process just removed it)."""
    try:
        data = cache.read_bytes()
    except OSError:
        return None
    try:
        cache.touch()  # used now: the last to be dropped
    except OSError:
        pass  # a read-only cache
    return data


def drop_least_recent(folder: Path, keep: int) -> None:
    """Remove the cached graphs of ``folder`` beyond the ``keep`` most recently modified: files
    named as :func:`~pixelwise.checkpoint.onnx_cache` names them (24 hex digits), so that no other
    ``.onnx`` file is touched where ``PIXELWISE_CACHE`` points at a folder of the user's."""

    def modified(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:  # removed meanwhile by another process
            return 0.0

    cached = (p for p in folder.glob("*.onnx") if re.fullmatch(r"[0-9a-f]{24}", p.stem))
    graphs = sorted(cached, key=modified, reverse=True)
    for path in graphs[keep:]:
        path.unlink(missing_ok=True)


@torch.inference_mode()
def export_checked(seg: Segmenter, path: str | Path) -> tuple[Path, float]:
    """Export ``seg`` to ``path`` and run the file on ONNX Runtime next to PyTorch on inputs whose
    sizes are not multiples of the downsampling factor; returns the path and the largest logit
    difference."""
    path = export_onnx(seg, path)
    _, onnx_network = load_onnx(path)
    network = seg.network.float().eval()
    worst = 0.0
    for h, w in ((97, 131), (256, 200)):
        x = torch.randn(1, seg.in_channels, h, w, generator=torch.Generator().manual_seed(h))
        worst = max(worst, (network(x) - onnx_network(x)).abs().max().item())
    return path, worst


INT8_GATE = 0.005  # the largest mean-IoU drop an int8 model may have on the validation images


def quantize_int8(fp32: bytes, calibration: list[torch.Tensor]) -> bytes:
    """Static int8 quantisation (QDQ, per-channel int8 weights, uint8 activations) of an fp32 ONNX
    graph, with activation ranges calibrated on ``calibration`` inputs (N, C, H, W).

    The first and the last convolution stay fp32: the one that reads the image and the one that
    writes the logits. On the ISBI recipe's U-Net (AVX2 CPU, 5 validation images) that took the
    masks from 99.47 % to 99.89 % identical to fp32 (mean IoU 0.7996 -> 0.8012, fp32 0.8009) for
    1-3 % of the int8 speed (about 350 ms against 613 ms fp32 per 512 x 512 image)."""
    import tempfile

    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{"image": x.numpy()} for x in calibration])

        def get_next(self):
            return next(self.items, None)

    with tempfile.TemporaryDirectory() as tmp:
        src, pre, out = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(fp32)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        convs = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type == "Conv"]
        quantize_static(
            str(pre),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=[convs[0], convs[-1]] if convs else [],
        )
        return out.read_bytes()


def mean_iou(
    network: nn.Module, pairs: list[tuple[torch.Tensor, torch.Tensor]], num_classes: int
) -> float:
    from pixelwise.metrics import ConfusionMatrix

    cm = ConfusionMatrix(num_classes)
    for x, target in pairs:
        cm.update(network(x).argmax(1), target[None])
    return cm.summary([str(i) for i in range(num_classes)])["mean_iou"]


def calibrate_int8(
    seg: Segmenter, data: str | Path | None, val_stems: list[str] | None = None, items=None
) -> tuple[bytes, dict]:
    """``seg`` as an int8 ONNX graph calibrated on the validation images of ``data`` (or on
    ``items``, a training run's validation images) with its metadata, and the accuracy gate:
    mean IoU of the int8 and fp32 graphs on those images, at the size the network sees them
    (``--scale``), drop at most :data:`INT8_GATE`."""
    import onnx

    from pixelwise.data.datasets import SegmentationDataset, to_tensor
    from pixelwise.data.layouts import evaluation_items

    split = "the run's validation images"
    if items is None:
        items, split = evaluation_items(Path(data), val_stems)
    ds = SegmentationDataset(
        items,
        seg.num_classes,
        seg.encoding,
        seg.norm,
        channels=seg.in_channels,
        scale=seg.input_scale,
        channel=seg.reads,
    )
    pairs = []
    for i in range(len(ds)):
        image, target = ds.load(i)
        pairs.append((to_tensor(image, seg.norm)[None], torch.from_numpy(target)))
    fp32 = onnx_bytes(seg)
    int8 = quantize_int8(fp32, [x for x, _ in pairs])
    scores = {
        name: mean_iou(OnnxNetwork(graph), pairs, seg.num_classes)
        for name, graph in (("fp32", fp32), ("int8", int8))
    }
    gate = {
        "calibration": split,
        "images": len(pairs),
        "mean_iou_fp32": scores["fp32"],
        "mean_iou_int8": scores["int8"],
        "drop": scores["fp32"] - scores["int8"],
        "max_drop": INT8_GATE,
        "passed": scores["fp32"] - scores["int8"] <= INT8_GATE,
    }
    model = onnx.load_from_string(int8)
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(seg.metadata() | {"int8": gate})
    return model.SerializeToString(), gate


def export_int8(
    seg: Segmenter, path: str | Path, data: str | Path, val_stems: list[str] | None = None
) -> dict:
    """Write ``seg`` as an int8 ONNX model to ``path`` (see :func:`calibrate_int8`), the gate
    recorded in its metadata. Returns the gate."""
    graph, gate = calibrate_int8(seg, data, val_stems)
    atomic_write_bytes(path, graph)
    return gate
