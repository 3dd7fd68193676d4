"""Numeric precision and memory layout of a network's forward pass (torch fp32 or bf16 autocast)."""

from __future__ import annotations

import contextlib
import copy
import sys
import threading
import weakref

import torch
from torch import nn

from pixelwise.constants import PRECISIONS

# what "auto" becomes; fp32-cl is fp32 in channels_last layout
RESOLVED = ("fp32", "fp32-cl", "bf16")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS and precision not in RESOLVED:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return precision


def autocast(
    precision: str, device: torch.device | str = "cpu"
) -> contextlib.AbstractContextManager:
    """The autocast context for a resolved precision (a no-op for fp32)."""
    device_type = torch.device(device).type
    if precision == "bf16":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def memory_format(precision: str) -> torch.memory_format:
    """channels_last for bf16 (oneDNN's bf16 kernels want it) and fp32-cl; else the default layout."""
    return torch.channels_last if precision in ("bf16", "fp32-cl") else torch.contiguous_format


_PREPARE_LOCK = threading.Lock()


def prepare(network: nn.Module, fmt: torch.memory_format) -> nn.Module:
    """Eval mode and the weights' memory format, converted once per format and under a lock:
    converting reassigns every parameter, which must not happen while another thread (an
    HTTP worker) runs the same network. Returns what to run: :func:`folded`'s copy."""
    with _PREPARE_LOCK:
        if network.training:
            network.eval()
        if getattr(network, "_pixelwise_memory_format", None) != fmt:
            network.to(memory_format=fmt)
            network._pixelwise_memory_format = fmt
        return folded(network)


# network -> (its weights' state when folded, the folded copy)
_FOLDED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def folded(network: nn.Module) -> nn.Module:
    """``network`` (in eval mode) made ready for inference (:func:`for_inference`: batch
    normalisations folded into the convolutions before them, in-place ReLUs out of place in
    bf16), a copy made once and again whenever a weight or statistic has changed since (training
    goes on after a validation pass; the network itself is never changed); the network itself
    when there is nothing to change, or when it was made under ``torch.inference_mode`` (its
    tensors keep no count of their changes)."""
    if not any(
        type(m) is nn.BatchNorm2d or (type(m) is nn.ReLU and m.inplace) for m in network.modules()
    ):
        return network
    tensors = [*network.parameters(), *network.buffers()]
    try:
        state = tuple((t.data_ptr(), t._version) for t in tensors)
    except RuntimeError:  # "Inference tensors do not track version counter"
        return network
    known = _FOLDED.get(network)
    if known is not None and known[0] == state:
        return known[1]
    with torch.inference_mode(False), torch.no_grad():
        made = for_inference(copy.deepcopy(network).eval())
    _FOLDED[network] = (state, made)
    return made


def for_inference(network: nn.Module) -> nn.Module:
    """In place, for inference: batch norms folded (:func:`fold_batch_norms`) and each in-place
    ``nn.ReLU`` replaced by :class:`InferenceReLU`. The same function in eval mode."""
    fold_batch_norms(network)
    for module in network.modules():
        for name, child in module._modules.items():
            if type(child) is nn.ReLU and child.inplace:
                module._modules[name] = InferenceReLU()
    return network


class InferenceReLU(nn.Module):
    """ReLU in place in fp32, out of place in bf16. torch's in-place bf16 kernels (``relu_``,
    ``add_``) run at about a third of their out-of-place speed on CPUs (AVX-512 and AVX2 alike:
    17.5 vs 6.9 ms for a 32 x 1024 x 1024 map; in fp32 in place is the faster, 5.8 vs 12.2 ms),
    which made the ReLUs a fifth of a bf16 U-Net's time (``benchmarks/fold.py``). Only in-place
    ReLUs are replaced: their input was never needed afterwards."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x) if x.dtype == torch.bfloat16 else torch.relu_(x)


def fold_batch_norms(network: nn.Module) -> nn.Module:
    """In place, for inference: each ``BatchNorm2d`` that alone sees a ``Conv2d``'s output
    (:func:`folding_pairs`) folded into that convolution's weights and bias and replaced by ``nn.Identity``: the same function in eval
    mode, one pass over the activations fewer (a few per cent faster, up to 1.15x with the
    system allocator: ``benchmarks/fold.py``)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for module in network.modules():
        for first, then in folding_pairs(module):
            conv, norm = module._modules[first], module._modules[then]
            if (
                type(conv) is nn.Conv2d
                and type(norm) is nn.BatchNorm2d
                and norm.running_mean is not None
            ):
                # the fused weights keep the convolution's memory format (channels_last or not)
                module._modules[first] = fuse_conv_bn_eval(conv, norm)
                module._modules[then] = nn.Identity()
    return network


def folding_pairs(module: nn.Module) -> list[tuple[str, str]]:
    """The names of (convolution, batch norm) children of ``module`` whose norm sees the
    convolution's output alone: neighbours in an ``nn.Sequential``, and ``convN``/``bnN`` in
    torchvision's ResNet blocks, whose ``forward`` applies ``bnN(convN(x))``."""
    if isinstance(module, nn.Sequential):
        names = list(module._modules)
        return list(zip(names, names[1:]))
    # a network with ResNet blocks imported torchvision to build them; importing it here for the
    # others would cost every command 1.2 s (torchvision's import pulls in torch._dynamo)
    resnet = sys.modules.get("torchvision.models.resnet")
    if resnet is not None and type(module) in (resnet.BasicBlock, resnet.Bottleneck):
        return [(f"conv{k}", f"bn{k}") for k in (1, 2, 3) if f"bn{k}" in module._modules]
    return []
