#!/usr/bin/env bash
# The bundled nuclei model: U-Net on background / interior / boundary (border weight map),
# trained on ../shared/data/dsb2018 (597 images; the 66 ids of recipes/dsb2018_val_ids.txt are
# the validation set) plus nuclei_he/cpm15 (15 H&E tiles), with microscopy appearance
# augmentation (stain, intensity, gamma, inversion, greyscale, blur, noise). nuclei_he/gbm40 is
# held out as a whole set: stained tissue from another lab. The data folder is symlinks in
# $OUT-data (no copies). Then recipes/nuclei_eval.py scores per image type with Otsu +
# watershed on the same images. Extra arguments go to `pixelwise train`.
set -euo pipefail
DATA=${DATA:-../shared/data}
OUT=${OUT:-runs/nuclei}
HERE=$(dirname "$0")
SPLIT=$OUT-data
rm -rf "$SPLIT"
mkdir -p "$SPLIT"/{images,instances}
for f in "$DATA"/dsb2018/train/images/*.png; do
  s=$(basename "$f" .png)
  ln -s "$(realpath "$f")" "$SPLIT/images/$s.png"
  ln -s "$(realpath "$DATA/dsb2018/train/instances/$s.png")" "$SPLIT/instances/$s.png"
done
for f in "$DATA"/nuclei_he/cpm15/images/*.jpg; do
  s=$(basename "$f" .jpg)
  ln -s "$(realpath "$f")" "$SPLIT/images/cpm15_$s.jpg"
  ln -s "$(realpath "$DATA/nuclei_he/cpm15/instances/$s.png")" "$SPLIT/instances/cpm15_$s.png"
done
VAL=$(paste -sd, "$HERE/dsb2018_val_ids.txt")
time pixelwise train "$SPLIT" --out "$OUT" --instances boundary --val-stems "$VAL" \
  --model unet --depth 4 --base-width "${WIDTH:-24}" --loss weighted-ce --appearance microscopy \
  --epochs "${EPOCHS:-60}" --epoch-size "${EPOCH_SIZE:-300}" --batch-size 8 --crop 256 --lr 2e-3 --seed 0 --no-progress "$@"
python "$HERE/nuclei_eval.py" "$OUT/best.pt" --data "$DATA" --json "$OUT/eval.json"
