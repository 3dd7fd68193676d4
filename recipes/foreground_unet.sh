#!/usr/bin/env bash
# Background-removal model: U-Net (depth 4, width 16) trained from scratch for appearance shift:
# random resized crops (35-100 % of the area, aspect jitter; 20-100 % and 8-100 % tried, no gain:
# docs/results.md (am)), rotation up to 15 degrees, left-right flips (people stand
# upright), photo appearance changes (colour, greyscale, blur, noise, JPEG) and, for 30 % of
# samples, the foreground pasted onto another photo's background.
# Chosen over U-Net width 32 and U²-Net by the pilot in docs/results.md (h).
#
#   HOLDOUT=davis345 bash recipes/foreground_unet.sh   # train on the other four sources, score this one
#   OUT=runs/fg-final EPOCHS=50 EPOCH_SIZE=800 bash recipes/foreground_unet.sh   # the bundled model: every source,
#   OUT=runs/fg-cont EPOCHS=40 EPOCH_SIZE=800 bash recipes/foreground_unet.sh --weights runs/fg-final/best.pt --lr 1e-3  # continued
#   DEVICE=cuda EPOCHS=120 EPOCH_SIZE=4000 bash recipes/foreground_unet.sh --workers 8   # a GPU, ~10 min
#
# Never trained on: the fixed portrait fifth of eg1800 (recipes/eg1800_test_ids.txt) and 20 dev
# photos per source (the validation set that picks best.pt); see recipes/foreground_splits.py.
# Scored with recipes/foreground_eval.py: the network alone, graph cut seeded by it, GrabCut.
set -euo pipefail
DATA=${DATA:-../shared/data/foreground}
HOLDOUT=${HOLDOUT:-none}
OUT=${OUT:-runs/foreground-$HOLDOUT}
HERE=$(dirname "$0")
python "$HERE/foreground_splits.py" "$DATA" "$OUT-data" --holdout "$HOLDOUT"
time pixelwise train "$OUT-data" --out "$OUT" --mask-values 0,255 --classes background,foreground \
  --model unet --depth 4 --base-width 16 --scale 0.625 --crop 224 --zoom 0.35,1 --rotate 15 \
  --appearance photo --composite 0.3 --flips horizontal --loss ce+dice --lr 3e-3 --batch-size 8 \
  --epochs "${EPOCHS:-20}" --epoch-size "${EPOCH_SIZE:-400}" --device "${DEVICE:-auto}" --seed 0 --no-progress "$@"
if [ "$HOLDOUT" = none ]; then  # the portrait fifth: never trained on
  sed 's|^|eg1800_train/|' "$HERE/eg1800_test_ids.txt" > "$OUT-data/test.txt"
fi
python "$HERE/foreground_eval.py" "$OUT/best.pt" "$OUT-data/test.txt" --data "$DATA" --methods model,graphcut,grabcut \
  --json "$OUT/eval.json"
