#!/usr/bin/env bash
# Self-training on a held-out source without its masks (docs/results.md (i)): the
# leave-one-source-out pair of HOLDOUT labels up to 200 of the source's photos by the default
# cut-out (recipes/foreground_selftrain.py), and the held-out model is fine-tuned on them mixed
# with as many labelled photos of the other sources (8 x 400 samples, learning rate 1e-3, the
# recipe's augmentation); the last checkpoint is scored on the source's test photos.
#
#   HOLDOUT=weizmann_horses bash recipes/foreground_selftrain.sh   # needs RUNS/loso-* and RUNS/box-*
set -euo pipefail
DATA=${DATA:-../shared/data/foreground}
HOLDOUT=${HOLDOUT:?name the held-out source}
RUNS=${RUNS:-runs}
OUT=${OUT:-$RUNS/selftrain-$HOLDOUT}
HERE=$(dirname "$0")
rm -rf "$OUT-data"
python "$HERE/foreground_selftrain.py" "$RUNS" "$HOLDOUT" "$OUT-data" --data "$DATA" --photos "${PHOTOS:-200}"
time pixelwise train "$OUT-data" --out "$OUT" --weights "$RUNS/loso-$HOLDOUT/best.pt" \
  --mask-values 0,255 --classes background,foreground --scale 0.625 --crop 224 --zoom 0.35,1 \
  --rotate 15 --appearance photo --composite 0.3 --flips horizontal --loss ce+dice --lr 1e-3 \
  --batch-size 8 --epochs "${EPOCHS:-8}" --epoch-size "${EPOCH_SIZE:-400}" --device "${DEVICE:-auto}" \
  --seed 0 --no-progress "$@"
python "$HERE/foreground_eval.py" "$OUT/last.pt" "$RUNS/loso-$HOLDOUT-data/test.txt" --data "$DATA" \
  --methods model,graphcut --box-model "$RUNS/box-$HOLDOUT/best.pt" --json "$OUT/eval.json"
