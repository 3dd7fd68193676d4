#!/usr/bin/env bash
# The bundled background-removal model: a small U-Net (depth 4, width 16) trained on
# ../shared/data/foreground (ccp, coco_mval, davis345) at 0.625 scale (longer side 320, the size
# remove_background feeds it). Held out by source and by video: ccp 0905-1004 (100 people),
# coco_mval's last 8 categories in name order (80 objects), davis345 frames 180-207 (the last
# videos, a contiguous block). The split is built as symlinks in $OUT-data (no copies).
# Then recipes/foreground_eval.py scores full-resolution alpha on the held-out part.
set -euo pipefail
DATA=${DATA:-../shared/data/foreground}
OUT=${OUT:-runs/foreground}
SPLIT=$OUT-data
rm -rf "$SPLIT"
mkdir -p "$SPLIT"/{train,val}/{images,masks}
val_categories=$(ls "$DATA/coco_mval/images" | sed 's/[0-9][0-9]_.*//' | sort -u | tail -8)
link() {  # source stem split
  local src=$1 stem=$2 split=$3 name=${1}_${2// /_}
  ln -s "$(realpath "$DATA/$src/images/$stem.jpg")" "$SPLIT/$split/images/$name.jpg"
  ln -s "$(realpath "$DATA/$src/masks/$stem.png")" "$SPLIT/$split/masks/$name.png"
}
for f in "$DATA"/ccp/images/*.jpg; do s=$(basename "$f" .jpg); [[ $s > 0904 ]] && link ccp "$s" val || link ccp "$s" train; done
for f in "$DATA"/coco_mval/images/*.jpg; do
  s=$(basename "$f" .jpg); c=${s%%[0-9][0-9]_*}
  if grep -qxF "$c" <<< "$val_categories"; then link coco_mval "$s" val; else link coco_mval "$s" train; fi
done
for f in "$DATA"/davis345/images/*.jpg; do s=$(basename "$f" .jpg); (( 10#$s >= 180 )) && link davis345 "$s" val || link davis345 "$s" train; done
echo "split: $(ls "$SPLIT/train/images" | wc -l) train, $(ls "$SPLIT/val/images" | wc -l) validation images"
/usr/bin/time -f "train wall %e s, user %U s" pixelwise train "$SPLIT" --out "$OUT" --mask-values 0,255 \
  --classes background,foreground --model unet --depth 4 --base-width 16 --scale 0.625 \
  --epochs "${EPOCHS:-40}" --epoch-size 240 --batch-size 8 --crop 192 --loss ce+dice --lr 3e-3 --seed 0 --no-progress "$@"
python "$(dirname "$0")/foreground_eval.py" "$OUT/best.pt" "$SPLIT/val"
