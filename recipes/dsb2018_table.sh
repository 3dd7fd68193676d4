#!/usr/bin/env bash
# docs/results.md (b): the DSB2018 recipe with and without the border weight map and elastic
# deformation, one run each (same split, seed and schedule). Results in runs/dsb2018/<variant>/.
set -euo pipefail
here=$(dirname "$0")
run() { local name=$1; shift; OUT=runs/dsb2018/$name bash "$here/dsb2018_unet.sh" "$@" 2>&1 | tee "runs/dsb2018/$name.log"; }
mkdir -p runs/dsb2018
run weighted-elastic --loss weighted-ce --elastic
run ce-elastic --elastic
run weighted --loss weighted-ce
run ce
