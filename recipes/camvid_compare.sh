#!/usr/bin/env bash
# CamVid (11 classes, void ignored): every architecture with the same budget, for docs/models.md.
# Budget per model: half resolution (240x180), 30 epochs x 320 random 160x160 crops (batch 8),
# flips, Adam 1e-3 one-cycle, cross-entropy with median-frequency class weights, bf16 autocast
# on CPU, base width 16 where the model has one. The original (valid-convolution) U-Net trains
# on 348x348 crops of mirror-padded frames, whose 164x164 centre is scored.
# Table: each best.pt evaluated on the 101 val frames at full resolution (480x360).
set -euo pipefail
DATA=${DATA:-../shared/data/camvid}
OUT=${OUT:-runs/camvid}
common=(--scale 0.5 --epochs 30 --epoch-size 320 --batch-size 8 --crop 160 --lr 1e-3 --class-weighting median
        --base-width 16 --seed 0 --no-progress)
train() {  # --resume: an interrupted recipe continues where it stopped; finished runs are only re-evaluated
  name=$1; shift
  pixelwise train "$DATA" --out "$OUT/$name" --resume "${common[@]}" "$@"
  pixelwise evaluate "$OUT/$name/best.pt" "$DATA"
}
train unet --model unet
train segnet --model segnet
train segnet-transpose --model segnet --decoder transpose
train deconvnet --model deconvnet
train fcn8s --model fcn8s
train fcn16s --model fcn16s
train fcn32s --model fcn32s
train patch --model patch
train unet-original --model unet_original --crop 348
train unet-resnet18 --model unet_resnet --backbone resnet18  # from scratch; ImageNet weights: --weights FILE
python recipes/camvid_table.py "$OUT" > "$OUT/table.md"
cat "$OUT/table.md"
