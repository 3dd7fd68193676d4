#!/usr/bin/env bash
# DSB2018 nuclei (../shared/data/dsb2018, CC0): U-Net (depth 4, base width 16) trained on the
# instance labels as 3 classes (background / interior / boundary); objects are the predicted
# interiors grown into their borders by a marker watershed. Fixed 90/10 split: the 66
# validation ids are listed in recipes/dsb2018_val_ids.txt (seeded permutation, seed 2018).
# Extra arguments go to `pixelwise train`, e.g. `--loss weighted-ce` (U-Net border weight map)
# and `--elastic` (elastic deformation). See docs/results.md for the measured table.
set -euo pipefail
DATA=${DATA:-../shared/data/dsb2018}
OUT=${OUT:-runs/dsb2018-unet}
VAL=$(paste -sd, "$(dirname "$0")/dsb2018_val_ids.txt")
/usr/bin/time -f "train wall %e s, user %U s" pixelwise train "$DATA" --out "$OUT" --instances boundary --val-stems "$VAL" \
  --model unet --depth 4 --base-width 16 \
  --epochs "${EPOCHS:-20}" --epoch-size 200 --batch-size 8 --crop 256 --lr 2e-3 --seed 0 --no-progress "$@"
pixelwise evaluate "$OUT/best.pt" "$DATA" --val-stems "$VAL" --min-object-size 10
