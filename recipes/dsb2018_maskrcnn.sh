#!/usr/bin/env bash
# DSB2018 nuclei with Mask R-CNN (ResNet-18-FPN, from scratch: no pretrained weights are
# downloaded), on the same fixed 90/10 split as recipes/dsb2018_unet.sh (66 validation ids in
# recipes/dsb2018_val_ids.txt). Reports COCO mask AP and the DSB2018 mean AP for the table in
# docs/results.md. Up to 400 detections per image are kept (images hold up to 375 nuclei).
# CPU defaults: images worked at shorter side 256, 8 epochs of 200 images. The GPU run of
# docs/results.md (e): MIN_SIZE=640 MAX_SIZE=1066 EPOCHS=5 EPOCH_SIZE=597 BATCH=8 ... --workers 12
set -euo pipefail
DATA=${DATA:-../shared/data/dsb2018}
OUT=${OUT:-runs/dsb2018-maskrcnn}
VAL=$(paste -sd, "$(dirname "$0")/dsb2018_val_ids.txt")
TIMEFORMAT="train wall %R s, user %U s, sys %S s"
time pixelwise train "$DATA/train" --out "$OUT" --model mask_rcnn \
  --backbone resnet18 --min-size "${MIN_SIZE:-256}" --max-size "${MAX_SIZE:-512}" --max-detections 400 \
  --val-stems "$VAL" --epochs "${EPOCHS:-8}" --epoch-size "${EPOCH_SIZE:-200}" --batch-size "${BATCH:-2}" \
  --lr "${LR:-1e-3}" --seed 0 --no-progress "$@"
pixelwise evaluate "$OUT/best.pt" "$DATA/train" --val-stems "$VAL"
