#!/usr/bin/env bash
# Evaluates an H-KD and a baseline student (sidecars) and the DnCNN-S teacher
# at σ = 25 on BSD68 and Set12, measures energy on BSD68 test001, and prints
# the report (benchmarks/sigma25-report.ts). Part of benchmarks/sigma25.sh.
#
#   bash benchmarks/sigma25-eval.sh HKD.json BASELINE.json
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
OUT=${OUT:-out/sigma25}
cli=(node dist/src/cli/main.js)
teacher=$SHARED/models/dncnn_s_sigma25.safetensors
declare -A models=([hkd]=$1 [baseline]=$2 [teacher]=$teacher)
mkdir -p "$OUT"
for m in hkd baseline teacher; do
  for set in bsd68 set12; do
    "${cli[@]}" eval --model "${models[$m]}" --data "$SHARED/data/$set" --sigma 25 --json > "$OUT/$m.$set.json"
  done
done
for m in hkd baseline; do
  "${cli[@]}" energy --model "${models[$m]}" --teacher "$teacher" --image "$SHARED/data/bsd68/test001.png" --json > "$OUT/$m.energy.json"
done
node dist/benchmarks/sigma25-report.js "$OUT" "$1" "$2"
