"""Batch work over image files: which files a command reads and the names it writes (folders
keep their structure; outputs of earlier runs are no inputs), the loop that runs each inside the
bad-file guard, sharding among torchrun processes and the list of failures at the end."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from tqdm import tqdm

from pixelwise import distributed as dist
from pixelwise.constants import (
    IMAGE_FOLDERS,
    MASK_FOLDERS,
    first_time,
    one_line,
)
from pixelwise.data.coco import as_coco
from pixelwise.data.io import (
    IMAGE_SUFFIXES,
    OUTPUT_MARK,
    ImageReadError,
    StackPage,
    list_images,
    max_pixels_limit,
    page_name,
    stack_size,
)
from pixelwise.data.write import (
    atomic_write_bytes,
    mark_output,
)


@dataclass
class BatchResult:
    written: list[Path] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)
    counts: list[tuple[Path, int]] = field(default_factory=list)  # (output name, objects): segment
    skipped: int = 0  # inputs left alone (e.g. their output exists)
    coco: list[tuple[Path, int, int, list[dict]]] = field(default_factory=list)  # segment --coco
    # segment --measure: (output name, input name, rows)
    measures: list[tuple[Path, str, list[dict]]] = field(default_factory=list)
    dim: list[str] = field(default_factory=list)  # 16-bit inputs under 4096, 8-bit model
    notes: list[str] = field(default_factory=list)  # one line each, printed after the run
    empty: list[str] = field(default_factory=list)  # remove-bg: the cut-outs that kept nothing

    def fail(self, src: Path, exc: Exception) -> None:
        """Record a bad input with a one-line reason that names the file (and page)."""
        reason = str(exc)
        if isinstance(src, StackPage):
            reason = reason.removeprefix(f"{src.path}: ")
        self.failures.append((src, reason if str(src) in reason else f"{src}: {reason}"))

    @classmethod
    def merge(cls, parts: list[BatchResult]) -> BatchResult:
        """The results of several processes' shares as one; what is listed to the user (the
        failures, the inputs of each note, the object counts) in the order of its file names,
        not process by process."""
        names = [f.name for f in fields(cls) if f.name != "skipped"]  # every other one a list
        lists = {name: [x for part in parts for x in getattr(part, name)] for name in names}
        if len(parts) > 1:
            for name in ("failures", "counts", "dim", "empty"):
                lists[name].sort(key=lambda x: str(x[0] if isinstance(x, tuple) else x))
        return cls(skipped=sum(part.skipped for part in parts), **lists)


def output_names(
    inputs: list[str | os.PathLike],
    out: str | os.PathLike | None = None,
    pages: bool = False,
    suffix: str = ".png",
) -> list[tuple[Path | StackPage, Path]]:
    """Each image file with its output-relative path: folders keep their inner structure. Files
    an input folder holds under ``out``, the output folder, or under the output folder of an
    earlier run (:func:`mark_output`) are left out (a rerun with the outputs inside the inputs
    would otherwise take them for inputs). With ``pages``, each page
    of a multi-page TIFF is an input of its own (a :class:`~pixelwise.data.io.StackPage`) named
    as training names it: ``stack.tif`` gives ``stack-000.png``, ``stack-001.png``, ...
    ``suffix``: the outputs' (remove-bg's ``.webp``, ...).

    A file given twice (a folder and a file in it, overlapping shell patterns) is read once, as
    it came first. Refused before anything runs (ValueError): no image file at all, and two inputs that would
    write the same output (``a.png`` and ``a.jpg``, or ``d1/x.png`` and ``d2/x.png`` given as
    files), which would leave one result where the summary counts two."""
    pairs: list[tuple[Path, Path]] = []
    outputs = Path(out).resolve() if out is not None else None
    seen: dict[Path, bool] = {}
    for p in map(Path, inputs):
        if p.is_dir():
            pairs.extend(
                (f, f.relative_to(p).with_suffix(suffix))
                for f in list_images([p])
                if not is_output(f, p, outputs, seen) and not stack_labels(f)
            )
        else:
            pairs.append((p, Path(p.stem + suffix)))
    once: dict[Path, tuple[Path, Path]] = {}
    for src, rel in pairs:
        once.setdefault(src.resolve(), (src, rel))
    pairs = list(once.values())
    if pages:
        pairs = [page for src, rel in pairs for page in stack_pages(src, rel)]
    if not pairs:
        raise ValueError(
            f"no image files in {', '.join(map(str, inputs))} (looked for {', '.join(IMAGE_SUFFIXES)})"
        )
    by_output: dict[Path, list[Path]] = {}
    for src, rel in pairs:
        by_output.setdefault(rel, []).append(src)
    clashes = [(rel, srcs) for rel, srcs in by_output.items() if len(srcs) > 1]
    if clashes:
        rel, srcs = clashes[0]
        raise ValueError(
            f"{' and '.join(map(str, srcs))} would all be written to {rel} ({len(clashes)} such "
            "name(s)); rename them or run them in separate folders"
        )
    return pairs


def is_output(path: Path, root: Path, outputs: Path | None, seen: dict) -> bool:
    """Whether ``path``, listed under the input folder ``root``, is no input: under ``outputs``
    (this run's output folder, resolved; None: none), in a folder an earlier run or a training
    run wrote its outputs to, or in a dataset's mask folder (:func:`in_output_folder`, ``seen``
    as there)."""
    if outputs is not None and outputs in path.resolve().parents:
        return True
    return in_output_folder(path, root, seen)


# a dataset's folders of masks (beside its images/: predict DATA predicts its images alone)
DATASET_MASKS = (*MASK_FOLDERS, "instances", "SegmentationObject")


def in_output_folder(path: Path, root: Path, seen: dict) -> bool:
    """Whether ``path``, listed under the input folder ``root``, lies in a folder below it that
    a batch or a training run wrote its outputs to (:func:`mark_output`), or in the mask folder
    of a dataset (a folder of :data:`DATASET_MASKS` beside an image folder, said once); ``root``
    itself, named as an input, is never left out. ``seen``: the folders looked at so far, and
    whether they are."""
    parts = path.relative_to(root).parts[:-1]
    for k in range(len(parts)):
        folder = root.joinpath(*parts[: k + 1])
        if folder not in seen:
            seen[folder] = (folder / OUTPUT_MARK).is_file() or dataset_masks(folder)
        if seen[folder]:
            return True
    return False


def dataset_masks(folder: Path) -> bool:
    """Whether ``folder`` holds a dataset's masks: named as mask folders are, beside an image
    folder (``images/`` + ``masks/``, VOC's ``JPEGImages/`` + ``SegmentationClass/``), or a Cell
    Tracking Challenge sequence's annotations beside it (``01_GT/``, ``01_ST/`` beside ``01/``)."""
    sequence, _, kind = folder.name.rpartition("_")
    annotations = kind in ("GT", "ST") and (folder.parent / sequence).is_dir()
    beside_images = folder.name in DATASET_MASKS and any(
        (folder.parent / name).is_dir() for name in IMAGE_FOLDERS
    )
    if not (annotations or beside_images):
        return False
    if first_time(("dataset masks", folder)):
        print(
            f"pixelwise: {folder}: a dataset's masks (beside its images), left out of the inputs "
            "(name the folder itself to take them)",
            file=sys.stderr,
        )
    return True


def stack_labels(path: Path) -> bool:
    """Whether an image file found in a folder is the label stack of a volume beside it, as
    training pairs them (``cells-labels.tif`` beside ``cells-volume.tif``): no input (said
    once)."""
    if not path.name.endswith("-labels.tif"):
        return False
    if not path.with_name(path.name.replace("-labels.tif", "-volume.tif")).is_file():
        return False
    if first_time(("stack labels", path.parent)):
        print(
            f"pixelwise: {path}: the labels of the volume beside it, left out of the inputs (and "
            "so are others like it; name the file itself to take it)",
            file=sys.stderr,
        )
    return True


def stack_pages(src: Path, rel: Path) -> list[tuple[Path | StackPage, Path]]:
    """``(src, rel)``, or for a TIFF stack a pair per page. A file that cannot be read stays
    one input, to fail with its reason when it is read."""
    try:
        count = stack_size(src)
    except ImageReadError:
        count = 1
    if count == 1:
        return [(src, rel)]
    return [
        (StackPage(src, i), rel.with_name(page_name(rel.stem, i) + rel.suffix))
        for i in range(count)
    ]


def input_name(src: Path | StackPage, rel: Path) -> str:
    """The input behind the outputs ``rel``, as ``segment --measure`` names it: its path from
    the input folder (``sub/a.jpg``), for a page of a stack ``sub/stack.tif[3]``."""
    if isinstance(src, StackPage):
        return (rel.parent / src.path.name).as_posix() + f"[{src.index}]"
    return rel.with_suffix(src.suffix).as_posix()


def run_batch(
    inputs: list[str | os.PathLike],
    compute,
    write,
    desc: str,
    progress: bool = True,
    shard: tuple[int, int] = (0, 1),
    skip=None,
    pairs: list[tuple[Path, Path]] | None = None,
    out: str | os.PathLike | None = None,
    pages: bool = False,
) -> BatchResult:
    """The loop of every file command: for each image under ``inputs`` (this process's
    ``shard=(rank, world)`` share: every world-th, from rank), ``compute(src)`` runs inside the
    bad-file guard (unreadable files, ValueErrors and errors of one file's computation, such as
    running out of memory or a bug met on that file, are recorded; the batch goes on), then
    ``write(src, rel, value)`` writes the outputs and returns (main output path, object count
    or None). ``skip(rel)`` true leaves an input alone. ``pairs``: ``output_names(inputs, out)``
    when the caller has listed them already; ``out``: the output folder, whose files are no
    inputs; ``pages``: each page of a TIFF stack is an input (:func:`output_names`). A progress
    bar shows the current file."""
    max_pixels_limit()  # a bad PIXELWISE_MAX_PIXELS is one usage error, not a failure per file
    result = BatchResult()
    bar = tqdm(
        (output_names(inputs, out, pages) if pairs is None else pairs)[shard[0] :: shard[1]],
        desc=desc,
        unit="img",
        disable=not progress,
    )
    for src, rel in ticking(bar):
        bar.set_postfix_str(src.name)
        if skip is not None and skip(rel):
            result.skipped += 1
            continue
        try:
            value = compute(src)
        except (ImageReadError, ValueError) as exc:
            result.fail(src, exc)
            continue
        except (RuntimeError, MemoryError) as exc:  # e.g. out of memory on one huge image
            result.fail(src, RuntimeError(f"{type(exc).__name__}: {one_line(exc)}"))
            continue
        except Exception as exc:  # a bug met on one file: the batch goes on, the bug is said
            result.fail(src, RuntimeError(internal_error(exc)))
            continue
        path, count = write(src, rel, value)
        result.written.append(path)
        if out is not None and len(result.written) == 1 and Path(out).is_dir():
            mark_output(Path(out))
        if count is not None:
            result.counts.append((rel, count))
    return result


def internal_error(exc: Exception) -> str:
    """One line for an unexpected error (a bug in pixelwise or a library it calls): its type,
    message and where it was raised, to report."""
    import traceback

    frame = traceback.extract_tb(exc.__traceback__)[-1]
    return (
        f"internal error, please report it: {type(exc).__name__}: {one_line(exc)} (at "
        f"{Path(frame.filename).name}:{frame.lineno})"
    )


def run_sharded(run, report) -> int:
    """``run(shard)`` on this process's share of the inputs (``shard = (rank, world)``). Under
    torchrun the inputs are split among the ranks, results are gathered, and rank 0 reports for
    all; every rank exits 1 if any file failed anywhere."""
    exchange = dist.Exchange()
    result = BatchResult.merge(exchange.gather(run(exchange.shard)))
    if exchange.rank == 0:
        report(result)
        return report_failures(result)
    return 1 if result.failures else 0


# in a process of run_in_processes: where run_batch counts each input it is done with
WORKER_TICKS = None


def run_in_processes(
    work, payload, jobs: int, total: int, desc: str, progress: bool
) -> BatchResult:
    """``work(payload, (k, jobs))`` in ``jobs`` fresh processes (spawned, so nothing of this one
    is shared: models, thread pools and ONNX Runtime sessions are made anew), k = 0 .. jobs - 1,
    each on its share of the inputs as a torchrun rank would be, with this process's threads
    shared out among them; their results merged. ``work`` must be a module's function and
    ``payload`` picklable; ``work`` runs :func:`run_batch`, which counts each input for the one
    progress bar shown here (``total`` inputs). An exception in ``work`` is raised here; a
    process that dies (out of memory, killed) is a RuntimeError naming ``desc``. Interrupted
    here, the processes are stopped; should this process be killed, they end with it
    (:func:`start_process`)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    # a pipe per process, not a shared queue: a pipe holds no semaphore that a killed run would
    # leave behind, and its end is the process's end (read here as it happens)
    pipes = [context.Pipe(duplex=False) for _ in range(jobs)]
    threads = shared_threads(jobs)
    processes = [
        context.Process(target=run_share, args=(work, payload, (k, jobs), threads, sender))
        for k, (_, sender) in enumerate(pipes)
    ]
    for process in processes:
        process.daemon = True  # stopped should this process end first
        process.start()
    for _, sender in pipes:
        sender.close()  # each process holds its own end
    bar = tqdm(total=total, desc=desc, unit="img", disable=not progress)
    try:
        with terminated_as_exit():
            return BatchResult.merge(collect([r for r, _ in pipes], bar, desc))
    finally:
        bar.close()
        for process in processes:
            process.terminate()  # those done have exited; the others are stopped
            process.join()


@contextlib.contextmanager
def terminated_as_exit():
    """Within it (in the main thread), SIGTERM (``kill``, a job scheduler's stop) ends this
    process as an exception does, status 143: the cleanup of :func:`run_in_processes` runs
    (its processes stopped) instead of none at all."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    before = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def collect(readers: list, bar, desc: str) -> list[BatchResult]:
    """The processes' results, in their order, as :func:`run_share` sends them on ``readers``
    (one pipe per process; each input counted on ``bar`` meanwhile)."""
    from multiprocessing.connection import wait

    parts: dict[int, BatchResult] = {}
    waiting = {reader: k for k, reader in enumerate(readers)}
    while waiting:
        for reader in wait(list(waiting)):
            try:
                kind, value = reader.recv()
            except EOFError:  # ended without its result: killed, out of memory or interrupted
                time.sleep(0.2)  # an interruption of the whole group reaches this process too
                raise RuntimeError(
                    f"{desc}: one of the {len(readers)} processes ended abruptly (out of memory? "
                    "killed?); run again with fewer --jobs (outputs written so far are complete)"
                ) from None
            if kind == "tick":
                bar.update(1)
            elif kind == "error":
                raise value
            else:
                parts[waiting.pop(reader)] = value
    return [parts[k] for k in range(len(readers))]


def shared_threads(processes: int) -> int:
    """Each of ``processes`` processes' threads: this process's shared out, at least one."""
    import torch

    return max(1, torch.get_num_threads() // processes)


def start_process(threads: int) -> None:
    """The start of a process spawned to share the work (:func:`run_in_processes`, ``serve
    --processes``): its ``threads``, and a thread that ends it as soon as its parent has ended,
    however that ended (killed outright, the parent cleans up nothing)."""
    import multiprocessing
    import threading

    import torch

    def ended_with_parent() -> None:
        multiprocessing.parent_process().join()
        os._exit(0)

    threading.Thread(target=ended_with_parent, daemon=True).start()
    torch.set_num_threads(threads)
    # tqdm's own lock is a process-shared semaphore, which a process stopped by the parent
    # would leave behind (a warning at exit); this process's bars need no more than a thread lock
    tqdm.set_lock(threading.RLock())


def run_share(work, payload, shard: tuple[int, int], threads: int, messages) -> None:
    """A process of :func:`run_in_processes`: ``work(payload, shard)`` on ``threads`` threads,
    its inputs counted and its result (or exception) sent on ``messages``, its pipe's end."""
    global WORKER_TICKS
    start_process(threads)
    WORKER_TICKS = messages
    try:
        messages.send(("done", work(payload, shard)))
    except KeyboardInterrupt:  # Ctrl-C reaches every process; the first one says it
        pass
    except Exception as exc:
        messages.send(("error", exc))


def ticking(items):
    """``items`` as they are; in a process of :func:`run_in_processes`, each counted for the
    parent's progress bar once the loop is done with it."""
    for item in items:
        yield item
        if WORKER_TICKS is not None:
            WORKER_TICKS.send(("tick", None))


def report_failures(result: BatchResult) -> int:
    """List the failed files on stderr (after a note on 16-bit inputs that a model trained on
    8-bit images sees too dark); the exit status (1 if any failed)."""
    if result.dim:
        print(
            f"pixelwise: note: {len(result.dim)} 16-bit image(s) with values under 4096 (a "
            f"12-bit camera's?), such as {result.dim[0]}: this model was trained on 8-bit images "
            "and sees them at most 1/16 as bright; --input-range 0,4095 shows 12-bit values at "
            "full range",
            file=sys.stderr,
        )
    for note in result.notes:
        print(f"pixelwise: note: {note}", file=sys.stderr)
    if not result.failures:
        return 0
    print(f"{len(result.failures)} file(s) failed:", file=sys.stderr)
    for _, reason in result.failures:
        print(f"  {reason}", file=sys.stderr)
    return 1


def check_output_file(path: str | os.PathLike, option: str, *suffixes: str) -> None:
    """Refuse an output FILE (``segment --coco``, ``--measure``, ``export --onnx``) that cannot
    be written or read back, before the work: it must end in one of ``suffixes`` and not be a
    folder."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise ValueError(f"{option} {path}: give a {' or '.join(suffixes)} file name")
    if path.is_dir():
        raise ValueError(f"{option} {path}: is a folder")


def write_coco(path: str | os.PathLike, result: BatchResult, names: list[str]) -> int:
    """One COCO instances file of the objects ``segment_files`` found (``options.coco``), the
    images in path order by their path relative to where :func:`~pixelwise.data.coco.load_coco`
    looks for them (``images/`` beside the file, else its folder); category ``i`` is
    ``names[i - 1]``. Returns the number of objects."""
    path = Path(path)
    root = path.parent / "images" if (path.parent / "images").is_dir() else path.parent
    images, annotations = [], []
    for image_id, (src, height, width, objects) in enumerate(sorted(result.coco), start=1):
        name = Path(os.path.relpath(src.absolute(), root.absolute())).as_posix()
        images.append({"id": image_id, "file_name": name, "height": height, "width": width})
        for ann in objects:
            annotations.append(ann | {"id": len(annotations) + 1, "image_id": image_id})
    coco, _ = as_coco(images, annotations, names)
    atomic_write_bytes(path, json.dumps(coco).encode())
    return len(annotations)
