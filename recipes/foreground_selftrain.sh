#!/usr/bin/env bash
# Self-training on a held-out source without its masks (docs/results.md (i)): `pixelwise adapt`
# lets the leave-one-source-out pair of HOLDOUT label up to 200 of the source's photos by its own
# cut-out and fine-tunes the held-out model on them (8 x 400 samples, learning rate 1e-3, the
# recipe's augmentation); the adapted model is scored on the source's test photos. MIX=1: the
# variant tried first, the same photos mixed with as many labelled photos of the other sources;
# MASKS=1 (with PHOTOS=50): the same with the photos' own masks, as a user who labels a few.
#
#   HOLDOUT=weizmann_horses bash recipes/foreground_selftrain.sh   # needs RUNS/loso-* and RUNS/box-*
set -euo pipefail
DATA=${DATA:-../shared/data/foreground}
HOLDOUT=${HOLDOUT:?name the held-out source}
RUNS=${RUNS:-runs}
OUT=${OUT:-$RUNS/selftrain-$HOLDOUT}
HERE=$(dirname "$0")
WHOLE=$RUNS/loso-$HOLDOUT/best.pt
BOX=${BOX:-$RUNS/box-$HOLDOUT/best.pt}  # BOX=...: another box model, e.g. runs/box-S-long/best.pt
rm -rf "$OUT-data" "$OUT/data"  # adapt refuses to mix an earlier run's photos in
if [ "${MIX:-0}" = 1 ] || [ "${MASKS:-0}" = 1 ]; then
  MASKS_OPTION=$([ "${MASKS:-0}" = 1 ] && echo --masks || true)
  python "$HERE/foreground_selftrain.py" "$RUNS" "$HOLDOUT" "$OUT-data" --mix $MASKS_OPTION --data "$DATA" --photos "${PHOTOS:-200}"
  time pixelwise train "$OUT-data" --out "$OUT" --weights "$WHOLE" \
    --mask-values 0,255 --classes background,foreground --scale 0.625 --crop 224 --zoom 0.35,1 \
    --rotate 15 --appearance photo --composite 0.3 --flips horizontal --loss ce+dice --lr 1e-3 \
    --batch-size 8 --epochs 8 --epoch-size 400 --device "${DEVICE:-auto}" --seed 0 --no-progress
else
  python "$HERE/foreground_selftrain.py" "$RUNS" "$HOLDOUT" "$OUT-data" --data "$DATA" --photos "${PHOTOS:-200}"
  time pixelwise adapt "$OUT-data/photos" -o "$OUT" --checkpoint "$WHOLE" --box-checkpoint "$BOX" \
    --device "${DEVICE:-auto}" --no-progress
fi
python "$HERE/foreground_eval.py" "$OUT/last.pt" "$RUNS/loso-$HOLDOUT-data/test.txt" --data "$DATA" \
  --methods model,graphcut --box-model "$BOX" --json "$OUT/eval.json"
