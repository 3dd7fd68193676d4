#!/usr/bin/env bash
# ISBI 2012 EM membranes: default padded U-Net (depth 4, base width 32), trained on slices
# 00-24 and validated on 25-29. Issue 2's acceptance run: <= 20 min on 2 CPU cores.
# Mask encoding: 0 = membrane -> class 0, 255 = cell interior -> class 1.
# Measured (2-core CPU, seed 0): val pixel accuracy 0.9250, mean IoU 0.7968 (membrane 0.683,
# cell 0.911), 16 min 50 s wall. With --ema 0.99: 0.9238 / 0.7938 in 15 min 30 s.
set -euo pipefail
DATA=${DATA:-../shared/data/isbi2012}
OUT=${OUT:-runs/isbi2012-unet}
pixelwise train "$DATA" --out "$OUT" \
  --val-stems 25-29 --mask-values 0,255 --classes membrane,cell \
  --model unet --depth 4 --base-width 32 \
  --epochs 30 --epoch-size 120 --batch-size 4 --crop 256 --lr 1e-3 --seed 0 "$@"
pixelwise evaluate "$OUT/best.pt" "$DATA" --val-stems 25-29
