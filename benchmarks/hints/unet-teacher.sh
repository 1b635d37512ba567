#!/usr/bin/env bash
# The U-Net teacher of the hint study's `unet-decoder` design: an ANN U-Net
# trained on Train400 at σ = 25 with `train-teacher`, whose decoder levels
# match the student's (the paper's setting). The study asks for at least
# 29.0 dB on BSD68; the last line checks it with `spikeir eval`. Measured
# (10,000 steps, one thread, about an hour on a 2-core Xeon shared with other runs):
# Set12 30.10 dB at the end, BSD68 28.99 dB.
# A run that stops continues from its last checkpoint when this script is
# run again; a finished run is only evaluated.
#
#   bash benchmarks/hints/unet-teacher.sh            # WIDTH=32 STEPS=10000 THREADS=2 by default
#
# Then: node dist/benchmarks/hints/study.js run --designs baseline,unet-decoder
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${SHARED:-../shared}
STEPS=${STEPS:-10000}
WIDTH=${WIDTH:-32}
THREADS=${THREADS:-2}
out=${OUT:-out/hints}/unet-teacher
resume=()
if [ -f "$out/teacher.json" ]; then
  step=$(node -e "console.log(JSON.parse(require('fs').readFileSync(process.argv[1],'utf8')).step)" "$out/teacher.json")
  if [ "$step" -lt "$STEPS" ]; then resume=(--resume "$out/teacher.json"); fi
else
  step=0
fi
if [ "$step" -lt "$STEPS" ]; then
  RAYON_NUM_THREADS=$THREADS node dist/src/cli/main.js train-teacher --arch unet --width "$WIDTH" --task denoise --sigma 25 \
    --data "$SHARED/data/train400" --val-data "$SHARED/data/set12" --val-limit 12 --val-every 2000 \
    --steps "$STEPS" --patch-range 40-64 --patch 64 --batch 8 --lr 1e-3 --warmup 500 --ema 0.999 \
    --seed 1 --checkpoint-every 500 --out "$out" --json --quiet --no-report "${resume[@]}"
fi
RAYON_NUM_THREADS=$THREADS node dist/src/cli/main.js eval --model "$out/teacher.json" --task denoise --sigma 25 --data "$SHARED/data/bsd68"
