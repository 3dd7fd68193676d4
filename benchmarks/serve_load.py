"""Load test of ``pixelwise serve`` on loopback: N requests at concurrency C, all must succeed;
p50/p95 latency, and the server's resident memory (with its processes') after warm-up versus
after the run.

    python benchmarks/serve_load.py [--requests 200] [--concurrency 8] [--model foreground]
        [--megapixels MP] [--box] [--stroke] [--matting [--matting-megapixels MP]]
        [--threads 2] [--processes 1] [--quick]

Starts the server in a child process (uvicorn), posts a 640 x 480 photo (scikit-image's
coffee), and reads the child's resident memory, and that of its own processes (``--processes``),
from /proc (Linux).
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from PIL import Image
from timing import machine_line


def resident_bytes(pid: int) -> int:
    """A process's resident memory (VmRSS of /proc/PID/status), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def tree_resident_bytes(pid: int) -> int:
    """The resident memory of a process and of all processes below it (``serve --processes``'
    workers), in bytes."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    tree, grew = {pid}, True
    while grew:
        below = {p for p, parent in parents.items() if parent in tree} - tree
        tree |= below
        grew = bool(below)
    total = 0
    for p in tree:
        try:
            total += resident_bytes(p)
        except (OSError, RuntimeError):  # ended meanwhile
            continue
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    from skimage import data

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--model", default="foreground")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--processes", type=int, default=1, help="serve --processes (1: the server's threads)"
    )
    parser.add_argument(
        "--server-log", default="runs/serve_load-server.log", help="where the server's log goes"
    )
    parser.add_argument(
        "--megapixels", type=float, default=0.3072, help="photo size (default 640 x 480)"
    )
    parser.add_argument(
        "--box", action="store_true", help="send a box (the central 60 %%) with each request"
    )
    parser.add_argument(
        "--stroke",
        action="store_true",
        help="send one keep stroke (across the centre) with each request; with --box, inside the box",
    )
    parser.add_argument(
        "--matting", action="store_true", help="ask for closed-form matting with each request"
    )
    parser.add_argument(
        "--matting-megapixels",
        type=float,
        help="with --matting, the request's matting size (the web page's edits send the server's "
        "--edit-matting-megapixels); default: the server's bound",
    )
    parser.add_argument("--quick", action="store_true", help="40 requests (under 5 minutes)")
    args = parser.parse_args()
    Path(args.server_log).parent.mkdir(parents=True, exist_ok=True)
    if args.quick:
        args.requests = 40
    print(machine_line(), flush=True)
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pixelwise",
            "serve",
            "--port",
            str(port),
            "--checkpoint",
            args.model,
            "--threads",
            str(args.threads),
            "--processes",
            str(args.processes),
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(args.server_log, "w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(url + "/api/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        buf = io.BytesIO()
        width = int(round((args.megapixels * 1e6 * 4 / 3) ** 0.5))
        height = int(round(width * 3 / 4))
        Image.fromarray(data.coffee()).resize((width, height), Image.LANCZOS).save(
            buf, format="JPEG"
        )
        photo = buf.getvalue()
        fields = (
            {"box": f"{0.2 * width:.0f},{0.2 * height:.0f},{0.8 * width:.0f},{0.8 * height:.0f}"}
            if args.box
            else {}
        )
        if args.stroke:
            across = [[0.4 * width, 0.5 * height], [0.6 * width, 0.5 * height]]
            fields["foreground_strokes"] = json.dumps([{"points": across, "radius": 8}])
        if args.matting:
            fields["matting"] = "true"
            if args.matting_megapixels:
                fields["matting_megapixels"] = str(args.matting_megapixels)

        def post(_=None) -> tuple[float, int]:
            start = time.perf_counter()
            r = httpx.post(
                url + "/api/remove-background",
                files={"file": ("coffee.jpg", photo, "image/jpeg")},
                data=fields,
                timeout=300,
            )
            return time.perf_counter() - start, r.status_code

        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(post, range(2 * args.concurrency)))  # warm-up
            rss_warm = tree_resident_bytes(server.pid)
            start = time.perf_counter()
            results = list(pool.map(post, range(args.requests)))
            wall = time.perf_counter() - start
        rss_end = tree_resident_bytes(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    latencies = sorted(t for t, _ in results)
    errors = sum(code != 200 for _, code in results)
    p95 = latencies[min(len(latencies) - 1, int(round(0.95 * len(latencies))) - 1)]
    print(
        f"{args.requests} requests at concurrency {args.concurrency} ({f'{args.processes} server processes' if args.processes > 1 else f'{args.threads} server threads'}), "
        f"{width} x {height} JPEG{', with a box' if args.box else ''}"
        f"{', with a keep stroke' if args.stroke else ''}"
        f"{', matted' if args.matting else ''}"
        f"{f' at {args.matting_megapixels:g} MP' if args.matting and args.matting_megapixels else ''}"
    )
    print(
        f"errors {errors}   p50 {statistics.median(latencies):.3f} s   p95 {p95:.3f} s   "
        f"throughput {args.requests / wall:.2f} req/s"
    )
    print(
        f"server RSS after warm-up {rss_warm / 2**20:.0f} MiB, after the run {rss_end / 2**20:.0f} MiB "
        f"(growth {rss_end / rss_warm - 1:+.1%})"
    )


if __name__ == "__main__":
    main()
