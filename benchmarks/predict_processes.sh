#!/usr/bin/env bash
# `pixelwise predict` as a user runs it: one fresh process per run (start-up, model load, the
# probe's cache read, every image read, predicted and written), the default path against
# `--precision fp32 --runtime torch`, in turn for ROUNDS rounds, then the share of identical mask
# pixels. Prints the CPU and its flags first; quote the medians.
#
#   bash benchmarks/predict_processes.sh [--quick] CHECKPOINT IMAGES [ROUNDS]
#   bash benchmarks/predict_processes.sh runs/isbi2012-unet/best.pt ../shared/data/isbi2012/test/images 3
# --quick: one round.
set -euo pipefail
QUICK=0
if [ "${1:-}" = --quick ]; then QUICK=1; shift; fi
CHECKPOINT=${1:?usage: predict_processes.sh CHECKPOINT IMAGES [ROUNDS]}
IMAGES=${2:?usage: predict_processes.sh CHECKPOINT IMAGES [ROUNDS]}
ROUNDS=${3:-3}
[ "$QUICK" = 1 ] && ROUNDS=1
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
# the CPU line every benchmark prints (benchmarks/timing.py), and the cores the processes share
echo "$(PYTHONPATH="$(dirname "$0")" python -c 'from timing import machine_line; print(machine_line())'); $(nproc) cores"
for round in $(seq "$ROUNDS"); do
  for mode in default fp32; do
    options=()
    [ "$mode" = fp32 ] && options=(--precision fp32 --runtime torch)
    rm -rf "${OUT:?}/$mode"
    /usr/bin/time -f "$mode, round $round: %e s wall, %M KB peak RSS" \
      pixelwise predict "$CHECKPOINT" "$IMAGES" --out "$OUT/$mode" --no-progress "${options[@]}" >/dev/null
  done
done
python - "$OUT" <<'PY'
import sys
from pathlib import Path

import numpy as np
from PIL import Image

out = Path(sys.argv[1])
same = [
    (np.asarray(Image.open(p)) == np.asarray(Image.open(out / "fp32" / "masks" / p.name))).mean()
    for p in sorted((out / "default" / "masks").glob("*.png"))
]
print(f"{len(same)} masks: identical pixels {np.mean(same):.4%} (lowest {min(same):.4%})")
PY
