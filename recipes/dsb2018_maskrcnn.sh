#!/usr/bin/env bash
# DSB2018 nuclei with Mask R-CNN (ResNet-18-FPN, from scratch: no pretrained weights are
# downloaded), on the same fixed 90/10 split as recipes/dsb2018_unet.sh (66 validation ids in
# recipes/dsb2018_val_ids.txt). Images are worked at shorter side 256 (CPU budget). Reports COCO
# mask AP and the DSB2018 mean AP for the table in docs/results.md.
set -euo pipefail
DATA=${DATA:-../shared/data/dsb2018}
OUT=${OUT:-runs/dsb2018-maskrcnn}
VAL=$(paste -sd, "$(dirname "$0")/dsb2018_val_ids.txt")
/usr/bin/time -f "train wall %e s, user %U s" pixelwise train "$DATA/train" --out "$OUT" --model mask_rcnn \
  --backbone resnet18 --min-size 256 --max-size 512 --val-stems "$VAL" \
  --epochs "${EPOCHS:-8}" --epoch-size 200 --batch-size 2 --lr 1e-3 --seed 0 --no-progress "$@"
pixelwise evaluate "$OUT/best.pt" "$DATA/train" --val-stems "$VAL"
