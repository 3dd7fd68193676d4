#!/usr/bin/env bash
# Smoke check of multi-class Mask R-CNN on ../shared/data/coco128 (128 COCO images, 80
# categories): ResNet-18-FPN from scratch, shorter side 320, 20 validation images by a seeded
# split. 128 images are far too few to learn 80 categories; the run shows that training,
# prediction and COCO evaluation work end to end on real COCO data, not a useful model.
set -euo pipefail
DATA=${DATA:-../shared/data/coco128}
OUT=${OUT:-runs/coco128-maskrcnn}
/usr/bin/time -f "train wall %e s, user %U s" pixelwise train "$DATA/annotations.json" --out "$OUT" --model mask_rcnn \
  --backbone resnet18 --min-size 320 --max-size 512 --val-fraction 0.16 \
  --epochs "${EPOCHS:-4}" --epoch-size 108 --batch-size 2 --lr 1e-3 --seed 0 --no-progress "$@"
pixelwise predict "$OUT/best.pt" "$DATA/images/000000000009.jpg" --out "$OUT/pred" --score-threshold 0.05
