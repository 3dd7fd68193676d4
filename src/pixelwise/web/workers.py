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
from concurrent.futures import ThreadPoolExecutor

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


def serve_jobs(conn, *setup) -> None:
    """A worker process: :func:`start` with ``setup``, then each job received on ``conn`` done
    with this process's models (its ``in_worker``) and answered, until told to stop (``None``)
    or the server is gone. An exception is answered as the job's."""
    try:
        try:
            start(*setup)
        except Exception as exc:  # the models failed to load: said at the server's start
            answer(conn, "error", exc)
            return
        answer(conn, "ready", None)
        while (job := conn.recv()) is not None:
            try:
                value = job.in_worker(STATE)
            except Exception as exc:
                answer(conn, "error", exc)
            else:
                answer(conn, "done", value)
    except (EOFError, OSError, KeyboardInterrupt):  # the server is gone, or Ctrl-C reached all
        pass


def answer(conn, kind: str, value) -> None:
    """``(kind, value)`` sent on ``conn``; an exception that cannot be pickled as the same
    message in a RuntimeError."""
    import pickle

    try:
        conn.send((kind, value))
    except (pickle.PicklingError, TypeError, AttributeError):
        conn.send(("error", RuntimeError(str(value))))


def warm_up(seg, method: str, helper) -> None:
    """One small cut-out (and one in a box, with a box model) so that the first request does
    not pay for the first calls' set-up."""
    import numpy as np

    from pixelwise.cutout import remove_background

    blank = np.zeros((64, 64, 3), np.uint8)
    remove_background(blank, seg, method=method)
    if helper is not None:
        remove_background(blank, seg, method=method, box=(8, 8, 56, 56), box_model=helper)


class WorkerDied(RuntimeError):
    """The process doing a request ended (killed, out of memory) before answering."""


# the photos whose last process is remembered
REMEMBERED = 64


class Worker:
    """A process of its own (:func:`serve_jobs`) and the pipe to it, one job at a time: a pipe
    holds no semaphore that a server killed outright would leave behind, and the process's end
    is the pipe's end, read at once."""

    def __init__(self, context, setup: tuple) -> None:
        self.context, self.setup = context, setup
        self.begin()

    def begin(self) -> None:
        self.conn, theirs = self.context.Pipe()
        self.process = self.context.Process(target=serve_jobs, args=(theirs, *self.setup))
        self.process.daemon = True
        self.process.start()
        theirs.close()
        self.ready = False

    def wait_ready(self) -> None:
        """Its models loaded (or their error raised here)."""
        if not self.ready:
            kind, value = self.conn.recv()
            if kind == "error":
                raise value
            self.ready = True

    def call(self, job):
        """``job`` done in the process: its value, or its exception raised here. A process
        that ended (out of memory, killed) is started again and the job fails with
        :class:`WorkerDied`."""
        try:
            if not self.ready:  # started again after the last job: its start's answer first
                kind, value = self.conn.recv()
                self.ready = kind == "ready"
            if self.ready:
                self.conn.send(job)
                kind, value = self.conn.recv()
        except (EOFError, OSError):  # the pipe's end: the process's (the job's own are answers)
            self.conn.close()
            self.process.join()
            self.begin()
            raise WorkerDied(
                "the process doing this request ended abruptly (out of memory?); it was started "
                "again"
            ) from None
        if kind == "error":
            raise value
        return value

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:  # ended already
            pass
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()
        self.conn.close()


class Workers:
    """``count`` worker processes, each started with :func:`start` and waited for (a model that
    fails to load fails here, at the server's start); a photo's requests to the one picked for
    it, in turn (one thread each here waits on its process)."""

    def __init__(self, count: int, model, runtime: str, box_model, method: str, limits) -> None:
        import multiprocessing

        from pixelwise.runner import shared_threads

        setup = (model, runtime, box_model, method, limits, shared_threads(count))
        context = multiprocessing.get_context("spawn")
        self.workers = [Worker(context, setup) for _ in range(count)]  # all start at once
        self.threads = [ThreadPoolExecutor(1, f"pixelwise-worker-{k}") for k in range(count)]
        self.busy = [0] * count
        self.last: OrderedDict[bytes, int] = OrderedDict()
        try:
            for worker in self.workers:
                worker.wait_ready()
        except BaseException:
            self.shutdown()
            raise

    def pick(self, key: bytes) -> int:
        """The process for a photo: the one that cut it out last, unless another is less busy;
        else the least busy."""
        least = min(range(len(self.busy)), key=self.busy.__getitem__)
        last = self.last.get(key)
        return last if last is not None and self.busy[last] <= self.busy[least] else least

    async def run(self, job):
        """``job`` in a process, picked by its photo's bytes ``job.data`` (:meth:`Worker.call`)."""
        key = hashlib.blake2b(job.data, digest_size=16).digest()
        k = self.pick(key)
        self.last[key] = k
        self.last.move_to_end(key)
        while len(self.last) > REMEMBERED:
            self.last.popitem(last=False)
        self.busy[k] += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.threads[k], self.workers[k].call, job)
        finally:
            self.busy[k] -= 1

    def shutdown(self) -> None:
        """Stop the processes and wait for them: at the server's end no request runs (the
        server has answered or dropped them), and the server may end by its signal right after
        (uvicorn raises SIGTERM again once it has stopped), which no later clean-up survives."""
        for thread in self.threads:
            thread.shutdown(wait=True, cancel_futures=True)
        for worker in self.workers:
            worker.stop()
