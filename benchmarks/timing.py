"""The one timing rule every benchmark script uses (they run as ``python benchmarks/x.py``,
so this folder is on the import path)."""

from __future__ import annotations

from pixelwise.runtime import median_seconds  # noqa: F401  (the one timing rule)


def machine_line() -> str:
    """Where a benchmark ran: CPU model, the flags that decide the fast paths, threads, versions.
    Every script prints it first (speed figures mean little without it)."""
    import torch

    from pixelwise.runtime import cpu_info, versions

    cpu, v = cpu_info(), versions()
    cpu_class = (
        "AVX-512 BF16"
        if cpu["bf16_hardware"]
        else ("AVX2 only" if "avx2" in cpu["flags"] else "other")
    )
    return (
        f"CPU: {cpu['model']} [{cpu_class}] flags {' '.join(cpu['flags'])}; {torch.get_num_threads()} threads; "
        f"torch {v['torch']}, onnxruntime {v['onnxruntime']}"
    )


def add_common(parser, threads: int = 2) -> None:
    """``--threads`` and ``--quick`` (a run that fits in 5 minutes on 2 cores), for every script."""
    parser.add_argument("--threads", type=int, default=threads)
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes and fewer repeats (under 5 minutes)"
    )


def begin(args) -> None:
    """Apply ``--threads``, treat freed memory as the command line does, print the machine line."""
    import torch

    from pixelwise.allocator import allocator, tune_allocator

    torch.set_num_threads(args.threads)
    tune_allocator()
    print(f"memory: {allocator()}", flush=True)
    print(machine_line(), flush=True)
