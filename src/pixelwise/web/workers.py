"""``serve --processes N``: the requests' work in N processes of their own instead of threads.

A cut-out spends about half its time in the graph cut (PyMaxflow), which holds Python's GIL, so
the server's threads wait on one another there: on 2 cores two threads serve 1.17x the requests
of one (``benchmarks/serve_load.py``). Each process here loads its own models (spawned: nothing
shared with the server's process, ONNX Runtime sessions included) and does one request at a
time, on its share of the machine's threads. A photo's next request (the web page's next stroke)
goes back to the process that cut it out last unless another is less busy: that process
remembers the cut-out the stroke changes (:data:`pixelwise.cutout.CUT_OUTS`), so a stroke costs
one cut, not two.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

# in a worker process: what its jobs run with (seg, method, limits, helper), set by :func:`start`
STATE: dict = {}


def start(model, runtime: str, box_model, method: str, limits, threads: int) -> None:
    """A worker process's start (:func:`~pixelwise.runner.start_process`: its threads; it ends
    with the server however that ends), its models loaded and warmed up."""
    from pixelwise.cutout import box_helper, get_model
    from pixelwise.runner import start_process

    start_process(threads)
    seg = get_model(model, runtime) if method != "grabcut" else None
    helper = box_helper(model, box_model) if seg is not None else None
    warm_up(seg, method, helper)
    STATE.update(seg=seg, method=method, limits=limits, helper=helper)


def warm_up(seg, method: str, helper) -> None:
    """One small cut-out (and one in a box, with a box model) so that the first request does
    not pay for the first calls' set-up."""
    import numpy as np

    from pixelwise.cutout import remove_background

    blank = np.zeros((64, 64, 3), np.uint8)
    remove_background(blank, seg, method=method)
    if helper is not None:
        remove_background(blank, seg, method=method, box=(8, 8, 56, 56), box_model=helper)


def ready() -> bool:
    return bool(STATE)


def run(job):
    """A request's job in a worker process (its ``in_worker``, with this process's models)."""
    return job.in_worker(STATE)


class WorkerDied(RuntimeError):
    """The process doing a request ended (killed, out of memory) before answering."""


# the photos whose last process is remembered
REMEMBERED = 64


class Workers:
    """``count`` one-process pools, each started with :func:`start` and waited for (a model
    that fails to load fails here, at the server's start)."""

    def __init__(self, count: int, model, runtime: str, box_model, method: str, limits) -> None:
        import multiprocessing

        from pixelwise.runner import shared_threads

        threads = shared_threads(count)
        self.setup = (model, runtime, box_model, method, limits, threads)
        self.context = multiprocessing.get_context("spawn")
        self.pools = [self.pool() for _ in range(count)]
        self.busy = [0] * count
        self.last: OrderedDict[bytes, int] = OrderedDict()
        for started in [pool.submit(ready) for pool in self.pools]:  # all start at once
            started.result()

    def pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(1, self.context, start, self.setup)

    def pick(self, key: bytes) -> int:
        """The process for a photo: the one that cut it out last, unless another is less busy;
        else the least busy."""
        least = min(range(len(self.pools)), key=self.busy.__getitem__)
        last = self.last.get(key)
        return last if last is not None and self.busy[last] <= self.busy[least] else least

    async def run(self, job, data: bytes):
        """``job`` in a process, picked by the photo's bytes ``data``. A process that died (out of
        memory) is started again and the request fails with :class:`WorkerDied`."""
        key = hashlib.blake2b(data, digest_size=16).digest()
        k = self.pick(key)
        self.last[key] = k
        self.last.move_to_end(key)
        while len(self.last) > REMEMBERED:
            self.last.popitem(last=False)
        self.busy[k] += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pools[k], run, job)
        except BrokenProcessPool:
            self.pools[k].shutdown(wait=False, cancel_futures=True)
            self.pools[k] = self.pool()
            raise WorkerDied(
                "the process doing this request ended abruptly (out of memory?); it was started "
                "again"
            ) from None
        finally:
            self.busy[k] -= 1

    def shutdown(self) -> None:
        """Stop the processes and wait for them: at the server's end no request runs (the
        server has answered or dropped them), and the server may end by its signal right after
        (uvicorn raises SIGTERM again once it has stopped), which no later clean-up survives."""
        for pool in self.pools:
            pool.shutdown(wait=True, cancel_futures=True)
