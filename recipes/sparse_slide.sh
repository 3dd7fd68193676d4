#!/usr/bin/env bash
# docs/results.md (ae): a slide with 40 % of its nuclei outlined (recipes/sparse_slide.py),
# trained with its windows grown by each margin in MARGINS (PIXELWISE_WINDOW_MARGIN; the
# pixels outside what is drawn ignored), the same small U-Net and seed each time; each model
# predicts the 27 held-out gbm40 images and cpm15 (another lab), scored as objects.
set -euo pipefail
DATA=${DATA:-../shared/data}
OUT=${OUT:-runs/sparse-slide}
HERE=$(dirname "$0")
python "$HERE/sparse_slide.py" "$DATA/nuclei_he/gbm40" "$OUT"
for m in ${MARGINS:-0 32}; do
  PIXELWISE_MAX_PIXELS=2000000 PIXELWISE_WINDOW_MARGIN=$m pixelwise inspect "$OUT/train" --val-fraction 0
  PIXELWISE_MAX_PIXELS=2000000 PIXELWISE_WINDOW_MARGIN=$m pixelwise train "$OUT/train" \
    --out "$OUT/m$m" --val-fraction 0 --epochs 30 --epoch-size 320 --depth 3 --base-width 16 \
    --crop 112 --seed 0 --no-progress "$@"
  for d in "$OUT/held" "$DATA/nuclei_he/cpm15"; do
    n=$(basename "$d")
    pixelwise predict "$OUT/m$m/last.pt" "$d/images" --out "$OUT/p$m-$n" --precision fp32 --no-progress
    pixelwise evaluate "$OUT/p$m-$n" "$d" --json "$OUT/p$m-$n.json"
  done
done
