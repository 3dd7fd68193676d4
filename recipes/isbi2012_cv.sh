#!/usr/bin/env bash
# docs/results.md (a): ISBI 2012, 5-fold cross-validation on the 30 training slices (fold k
# validates on slices 6k..6k+5 and trains on the other 24). Each fold trains the issue-2 U-Net
# (depth 4, width 32) for a shorter CPU schedule, then scores the held-out slices with the
# challenge's foreground-restricted V_Rand and V_Info (objects: 4-connected cells, class 1)
# and pixel error. Per-fold logs and metrics JSON in runs/isbi2012-cv/fold<k>/.
set -euo pipefail
DATA=${DATA:-../shared/data/isbi2012}
OUT=${OUT:-runs/isbi2012-cv}
EPOCHS=${EPOCHS:-12}
for k in 0 1 2 3 4; do
  lo=$(printf %02d $((6 * k))); hi=$(printf %02d $((6 * k + 5)))
  /usr/bin/time -f "fold $k train wall %e s, user %U s" pixelwise train "$DATA" --out "$OUT/fold$k" \
    --val-stems "$lo-$hi" --mask-values 0,255 --classes membrane,cell \
    --model unet --depth 4 --base-width 32 --epochs "$EPOCHS" --epoch-size 120 --batch-size 4 --crop 256 \
    --flips horizontal --lr 1e-3 --seed 0 --no-progress "$@"
  pixelwise evaluate "$OUT/fold$k/best.pt" "$DATA" --val-stems "$lo-$hi" --object-class 1
done
