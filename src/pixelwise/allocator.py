"""How this process's memory allocator treats freed blocks.

glibc's malloc gives every block above its mmap threshold (128 KiB, raised as such blocks are
freed, to at most 32 MiB) back to the kernel when it is freed, so each pass of a network maps
fresh pages for its larger feature maps and the kernel zeroes them on first touch. On a 2-core
AVX2 EPYC, five training steps of the default U-Net (batch 4 x 256^2) took 2.5 M page faults and
10-12 s of system time; with blocks under 1 GiB kept in the heap, 0.06 M and 0.9 s, and the step
about 1.5x as fast; plain fp32 prediction of a 512 x 512 image 1.25-1.5x (ONNX Runtime keeps its
own arena and gains nothing). Peak memory about the same (1.7 vs 1.8 GB there). benchmarks/paths.py
measures it (``PIXELWISE_ALLOCATOR=system`` in a fresh process is the untuned side).

Kept light (no torch): the command line calls :func:`tune_allocator` before anything else.
"""

from __future__ import annotations

import os

KEPT_BLOCKS = 1 << 30
ALLOCATOR_ENV = "PIXELWISE_ALLOCATOR"
_STATE = {"kept": False}


def tune_allocator() -> str:
    """Keep freed blocks under 1 GiB in the process instead of unmapping them (glibc only).
    Left alone when ``PIXELWISE_ALLOCATOR=system``, when malloc is tuned through the environment
    already (``MALLOC_*``, ``GLIBC_TUNABLES``), or when another allocator is preloaded (jemalloc,
    tcmalloc, mimalloc). Idempotent; returns :func:`allocator`'s description."""
    tuned_elsewhere = any(k.startswith("MALLOC_") for k in os.environ) or "malloc" in (
        os.environ.get("GLIBC_TUNABLES", "")
    )
    preloaded = "alloc" in os.environ.get("LD_PRELOAD", "")
    if os.environ.get(ALLOCATOR_ENV, "") == "system" or tuned_elsewhere or preloaded:
        return allocator()
    if on_glibc() and not _STATE["kept"]:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
        m_trim_threshold, m_mmap_threshold = -1, -3
        _STATE["kept"] = bool(
            mallopt(m_mmap_threshold, KEPT_BLOCKS) and mallopt(m_trim_threshold, KEPT_BLOCKS)
        )
    return allocator()


def on_glibc() -> bool:
    """Whether this process's C library is glibc, the one allocator :func:`tune_allocator` tunes."""
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError, AttributeError):  # no such name: not glibc (macOS, Windows)
        return False


def allocator() -> str:
    """How freed memory is handled in this process (``pixelwise info``; part of the probe's key)."""
    if _STATE["kept"]:
        return (
            f"glibc, freed blocks under {KEPT_BLOCKS >> 30} GiB kept "
            f"({ALLOCATOR_ENV}=system to turn off)"
        )
    return "system default"
