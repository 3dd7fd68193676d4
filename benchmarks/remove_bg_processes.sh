#!/usr/bin/env bash
# `pixelwise remove-bg FOLDER` as a user runs it, one process against two under torchrun (each
# its share of the photos, one thread each: the graph cut runs on one core) and against two of
# its own (`--jobs 2`, the same split), in turn for ROUNDS rounds (fresh processes: start-up and
# model loading included), then whether the three wrote the same cut-outs. Prints the CPU and
# its flags first; quote the medians.
#
#   bash benchmarks/remove_bg_processes.sh [--quick] FOLDER [ROUNDS]
# --quick: one round.
set -euo pipefail
QUICK=0
if [ "${1:-}" = --quick ]; then QUICK=1; shift; fi
FOLDER=${1:?usage: remove_bg_processes.sh FOLDER [ROUNDS]}
ROUNDS=${2:-2}
[ "$QUICK" = 1 ] && ROUNDS=1
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
# the CPU line every benchmark prints (benchmarks/timing.py), and the cores the processes share
echo "$(PYTHONPATH="$(dirname "$0")" python -c 'from timing import machine_line; print(machine_line())'); $(nproc) cores"
for round in $(seq "$ROUNDS"); do
  rm -rf "${OUT:?}/one" "${OUT:?}/two" "${OUT:?}/jobs"
  /usr/bin/time -f "one process, round $round: %e s wall" \
    pixelwise remove-bg "$FOLDER" -o "$OUT/one" --no-progress >/dev/null
  /usr/bin/time -o "$OUT/time" -f "torchrun, 2 processes, round $round: %e s wall" \
    env -u RANK -u WORLD_SIZE python -m torch.distributed.run --standalone --nproc_per_node=2 \
    -m pixelwise remove-bg "$FOLDER" -o "$OUT/two" --no-progress >/dev/null 2>"$OUT/torchrun.log" \
    || { tail -5 "$OUT/torchrun.log"; exit 1; }
  cat "$OUT/time"
  /usr/bin/time -f "--jobs 2, round $round: %e s wall" \
    pixelwise remove-bg "$FOLDER" -o "$OUT/jobs" --jobs 2 --no-progress >/dev/null
done
python - "$OUT" <<'PY'
import sys
from pathlib import Path

out = Path(sys.argv[1])
one = sorted(p.relative_to(out / "one") for p in (out / "one").rglob("*.png"))
for other in ("two", "jobs"):
    same = [(out / "one" / p).read_bytes() == (out / other / p).read_bytes() for p in one]
    print(f"{len(one)} cut-outs: {sum(same)} byte for byte the same in {other} as in one")
PY
