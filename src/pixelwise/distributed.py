"""torch.distributed glue for ``torchrun``: process group setup, batch sharding, gathering.

Under ``torchrun --nproc_per_node=N -m pixelwise train|predict ...`` the environment carries
``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; without them every function here is the
single-process identity, so the same code path serves both.
"""

from __future__ import annotations

import os
import pickle
from datetime import timedelta

import torch
import torch.distributed as dist


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> the GPU when there is one, else the CPU; anything else as given, refused in
    one line (ValueError) when it is no device name or this machine lacks it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name}: not a device (auto, cpu, cuda, cuda:1, mps)") from None
    count = {"cuda": torch.cuda.device_count(), "mps": int(torch.backends.mps.is_available())}
    if device.type in count and (device.index or 0) >= count[device.type]:
        raise ValueError(
            f"--device {name}: this machine has {count[device.type]} {device.type} device(s); "
            "use --device cpu (or auto)"
        )
    return device


def setup(device: str = "auto") -> tuple[torch.device, bool]:
    """Join the process group when launched by torchrun (nccl on GPUs, gloo on CPU).

    Returns this process's device and whether this call created the group (the caller then
    tears it down with :func:`cleanup`).
    """
    resolved = resolve_device(device)  # a device this machine lacks: refused here, in one line
    cuda = torch.cuda.is_available() and device in ("auto", "cuda") or device.startswith("cuda")
    if world_size() <= 1:
        return resolved, False
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        torch.cuda.set_device(local)
    created = not dist.is_initialized()
    if created:
        dist.init_process_group("nccl" if cuda else "gloo")
    return torch.device(f"cuda:{local}" if cuda else "cpu"), created


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model as it is trained: itself in one process, in DistributedDataParallel under
    torchrun (batch norm synchronised across GPUs; on CPU each process normalises its share)."""
    if world_size() <= 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None
    )


def cleanup(created: bool) -> None:
    if created and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def shard_batches(indices: list[int], global_batch: int, rank: int, world: int) -> list[int]:
    """This rank's share of each global batch: global batch k holds ``indices[k*B:(k+1)*B]``
    and rank r takes its r-th contiguous ``B / world`` slice, so the ranks' batches together
    are exactly the single-process batch. An incomplete last batch is dropped (it could not
    be split evenly, and DDP needs the same number of steps on every rank)."""
    if global_batch % world:
        raise ValueError(f"batch size {global_batch} must be divisible by the {world} processes")
    per = global_batch // world
    out: list[int] = []
    for start in range(0, len(indices) - global_batch + 1, global_batch):
        out.extend(indices[start + rank * per : start + (rank + 1) * per])
    return out


def all_mean(value: float, device: torch.device | str = "cpu") -> float:
    """The mean of a float over all ranks (the value itself without a process group)."""
    if not dist.is_initialized():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.item() / dist.get_world_size()


class Exchange:
    """This process's share of a batch, ``(rank, world)``, and the one exchange at the batch's
    end, :meth:`gather`: all sharded prediction needs. It goes through the launcher's key-value
    store (torchrun's, or rank 0's under a plain ``MASTER_ADDR`` launch), not through a
    process group. Gloo's ``all_gather_object`` there hung about one run in twelve on a 2-core
    machine (torch 2.14.1, ``segment`` on 5 images under ``torchrun --nproc_per_node=2``):
    rank 1 waited in the first of its two all-gathers while rank 0 had finished both and
    waited in the barrier after them. The store is joined on construction, so that a launch
    that lacks it fails before the work, not after."""

    def __init__(self) -> None:
        self.rank, self.world, self.store = 0, world_size(), None
        if self.world > 1:
            # a rank may finish its share hours before another (a slide each): wait for it
            store, self.rank, self.world = next(
                dist.rendezvous("env://", timeout=timedelta(days=1))
            )
            restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
            self.store = dist.PrefixStore(f"pixelwise-gather-{restart}", store)

    @property
    def shard(self) -> tuple[int, int]:
        return self.rank, self.world

    def gather(self, obj) -> list:
        """Every rank's ``obj``, in rank order, on every rank (``[obj]`` in one process)."""
        if self.store is None:
            return [obj]
        self.store.set(f"rank{self.rank}", pickle.dumps(obj))
        out = [pickle.loads(self.store.get(f"rank{r}")) for r in range(self.world)]  # waits
        self.store.set(f"read{self.rank}", b"1")
        if self.rank == 0:  # rank 0 may host the store: it leaves when every rank has read
            self.store.wait([f"read{r}" for r in range(self.world)])
        return out
