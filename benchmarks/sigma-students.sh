#!/usr/bin/env bash
# The bundled grey students at σ = 15 and σ = 50: the tiny SpikerIR student
# distilled from the published DnCNN-S weights of the same σ, on Train400,
# validated on Set12, with the hint study's `output+normalised` design
# (standardised hints at γ = 0.01 plus output distillation at 0.5; see the
# README's hint-design study) and the study's schedule at twice its length.
# A run that stops continues from its last checkpoint when `run` is given
# again; a finished run is left alone.
#
#   bash benchmarks/sigma-students.sh run 15 50        # train (resumable), one after the other
#   bash benchmarks/sigma-students.sh eval 15 50       # BSD68 and Set12, student and teacher
#   EXPORT=weights bash benchmarks/sigma-students.sh eval 15 50   # and export to weights/
#
# A second schedule, as the σ = 25 student had: CONTINUE=1 starts each run
# from the bundled student of its σ (`--init`: its weights, a fresh optimizer
# and schedule) with σ = 25's long-run recipe: lr 1e-3, 200 warm-up steps,
# a weight average (EMA 0.999) and random patch sides 40–64 px.
#
#   CONTINUE=1 STEPS=4000 OUT=out/sigma-cont bash benchmarks/sigma-students.sh run 15
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
STEPS=${STEPS:-2000}
THREADS=${THREADS:-1}
OUT=${OUT:-out/sigma}
CLI=(node dist/src/cli/main.js)
# The first schedule's recipe, or the second's (CONTINUE=1).
recipe() {
  if [ -n "${CONTINUE:-}" ]; then
    echo --init "weights/spikerir_tiny_sigma$1.json" --lr 1e-3 --warmup 200 --ema 0.999 --patch-range 40-64 --patch 64
  else
    echo --lr 2e-3 --warmup 100 --patch 48
  fi
}

train() {
  local s=$1 out=$OUT/sigma$1 resume=()
  if [ -f "$out/student.json" ]; then
    local at
    at=$(node -e "console.log(JSON.parse(require('fs').readFileSync(process.argv[1],'utf8')).step ?? 0)" "$out/student.json")
    if [ "$at" -ge "$STEPS" ]; then echo "sigma-students: σ = $s is finished (step $at)"; return 0; fi
    resume=(--resume "$out/student.json")
  fi
  RAYON_NUM_THREADS=$THREADS "${CLI[@]}" distill --teacher "$SHARED/models/dncnn_s_sigma$s.safetensors" --sigma "$s" \
    --hint-norm --gamma 0.01 --output-weight 0.5 \
    --data "$SHARED/data/train400" --val-data "$SHARED/data/set12" --val-limit 12 --val-every 500 \
    --steps "$STEPS" --batch 8 $(recipe "$s") --seed 1 --checkpoint-every 250 \
    --out "$out" --json --quiet --no-report "${resume[@]}" >"$out.result.json"
}

evaluate() {
  local s=$1 out=$OUT/sigma$1 model
  model=$out/student.json
  if [ -n "${EXPORT:-}" ]; then
    "${CLI[@]}" export "$model" "$EXPORT/spikerir_tiny_sigma$s.json"
    model=$EXPORT/spikerir_tiny_sigma$s.json
  fi
  for set in bsd68 set12; do
    for m in "$model" "$SHARED/models/dncnn_s_sigma$s.safetensors"; do
      # Each result is kept whole (per-image figures too) in OUT/eval/.
      local kept
      kept=$OUT/eval/sigma$s-$set-$(basename "$m" | sed 's/\.[a-z]*$//').json
      RAYON_NUM_THREADS=$THREADS "${CLI[@]}" eval --model "$m" --sigma "$s" --data "$SHARED/data/$set" --json --quiet >"$kept"
      printf 'σ = %s  %-6s  %s: ' "$s" "$set" "$m"
      node -e "const r=JSON.parse(require('fs').readFileSync(process.argv[1],'utf8'));console.log(r.psnr.toFixed(2)+' dB / '+r.ssim.toFixed(4)+' (first image '+r.perImage[0].name+' '+r.perImage[0].psnr.toFixed(4)+')')" "$kept"
    done
  done
}

cmd=${1:-}
shift || true
[ $# -gt 0 ] || set -- 15 50
for s in "$@"; do
  case "$s" in 15 | 50) ;; *) echo "sigma-students: σ must be 15 or 50 (got '$s')" >&2; exit 2 ;; esac
done
case "$cmd" in
  run) mkdir -p "$OUT"; for s in "$@"; do train "$s"; done ;;
  eval) mkdir -p "$OUT/eval"; for s in "$@"; do evaluate "$s"; done ;;
  *) echo "usage: sigma-students.sh run|eval [15] [50]" >&2; exit 2 ;;
esac
