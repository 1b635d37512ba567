#!/usr/bin/env bash
# The long σ = 25 runs behind the bundled student: Train400 → Set12/BSD68,
# tiny SpikerIR, 40,000 steps with a weight average (EMA 0.999), random patch
# sides 40–64 px and one long cosine schedule. A run that stops (a session
# ending, a kill) continues from its last checkpoint when this script is run
# again; a finished run is left alone.
#
#   bash benchmarks/sigma25-long.sh baseline        # no teacher
#   bash benchmarks/sigma25-long.sh hkd  [FLAGS…]   # with DnCNN-S σ = 25 hints (extra distill flags, e.g. the study's winner)
#
# INIT=CKPT starts both from those weights (fine-tuning; a fresh optimizer and
# schedule), e.g. the bundled 5,000-step no-hint student:
#
#   INIT=weights/spikerir_tiny_sigma25_nohints.json STEPS=5000 LR=1e-3 WARMUP=200 bash benchmarks/sigma25-long.sh hkd
#
# BLOCKS=1,1,3,3,1,1 trains a student with those blocks per level; with INIT
# from a smaller one (e.g. the bundled long student) it grows from it, the new
# blocks starting near the identity.
#
# WIDTH=10 trains a wider student (levels at 10, 20, 40 channels; 0.11 M
# parameters against the tiny preset's 0.07 M), from scratch (INIT must then
# be a student of that width); WIDTH=12 one of 0.16 M.
#
# PATCHES=48 trains on fixed 48-px patches instead of random sides 40–64 (the
# patch-range comparison; with OUT=… to keep both runs).
#
# SEED=2 repeats a run at another seed (weights, patches, noise); the default is 1.
#
# Then: npx spikeir eval --model out/sigma25-long-<run>/student.json --data ../shared/data/bsd68 --sigma 25
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
STEPS=${STEPS:-40000}
THREADS=${THREADS:-1}
LR=${LR:-2e-3}
WARMUP=${WARMUP:-500}
INIT=${INIT:-}
PATCHES=${PATCHES:-40-64}
SEED=${SEED:-1}
run=${1:?usage: sigma25-long.sh baseline|hkd [distill flags]}
shift
case "$run" in
  baseline) design=(--no-hints) ;;
  hkd) design=(--teacher "$SHARED/models/dncnn_s_sigma25.safetensors" "$@") ;;
  *) echo "sigma25-long: unknown run '$run' (baseline, hkd)" >&2; exit 2 ;;
esac
out=${OUT:-out/sigma25-long-$run}
init=()
if [ -n "$INIT" ]; then init=(--init "$INIT"); fi
if [ -n "${BLOCKS:-}" ]; then init+=(--blocks "$BLOCKS"); fi
if [ -n "${WIDTH:-}" ]; then init+=(--width "$WIDTH"); fi
case "$PATCHES" in
  *-*) patches=(--patch-range "$PATCHES" --patch "${PATCHES#*-}") ;;
  *) patches=(--patch "$PATCHES") ;;
esac
resume=()
if [ -f "$out/student.json" ]; then
  step=$(node -e "console.log(JSON.parse(require('fs').readFileSync('$out/student.json','utf8')).step)")
  if [ "$step" -ge "$STEPS" ]; then echo "sigma25-long: $out is finished (step $step)"; exit 0; fi
  resume=(--resume "$out/student.json")
fi
RAYON_NUM_THREADS=$THREADS node dist/src/cli/main.js distill "${design[@]}" \
  --data "$SHARED/data/train400" --val-data "$SHARED/data/set12" --val-limit 12 --val-every "${VAL_EVERY:-2000}" \
  --steps "$STEPS" "${patches[@]}" --batch 8 --lr "$LR" --warmup "$WARMUP" --ema 0.999 \
  --seed "$SEED" --checkpoint-every 500 --out "$out" --json --quiet "${init[@]}" "${resume[@]}"
