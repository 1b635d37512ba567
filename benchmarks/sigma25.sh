#!/usr/bin/env bash
# The README's experiment: Train400 → BSD68 / Set12 at σ = 25, teacher DnCNN-S.
# Trains the tiny SpikerIR student twice with the same seed, data and steps —
# with H-KD hints from the teacher and without (the baseline) — then evaluates
# both and the teacher, measures energy on a real image and prints the report.
# With EXPORT=weights it also replaces the bundled students under weights/.
#
#   bash benchmarks/sigma25.sh            # the README's recipe (5000 steps)
#   STEPS=600 bash benchmarks/sigma25.sh  # a quick look
#   EXPORT=weights bash benchmarks/sigma25.sh  # regenerate weights/
#
# The two trainings run side by side, one thread each (RAYON_NUM_THREADS=1),
# which uses a 2-core machine better than running them one after the other.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
OUT=${OUT:-out/sigma25}
STEPS=${STEPS:-5000}
THREADS=${THREADS:-1}
EXPORT=${EXPORT:-}
export SHARED OUT
cli=(node dist/src/cli/main.js)
teacher=$SHARED/models/dncnn_s_sigma25.safetensors
for need in "$SHARED/data/train400" "$SHARED/data/set12" "$SHARED/data/bsd68" "$teacher"; do
  [ -e "$need" ] || { echo "sigma25: $need is missing (set SHARED to the folder holding data/ and models/)" >&2; exit 1; }
done
mkdir -p "$OUT"
common=(--data "$SHARED/data/train400" --val-data "$SHARED/data/set12" --val-limit 12 --val-every 500
  --steps "$STEPS" --patch 48 --batch 8 --lr 2e-3 --warmup 100 --seed 1 --checkpoint-every 1000 --json)

RAYON_NUM_THREADS=$THREADS "${cli[@]}" distill --teacher "$teacher" --raw-hints --gamma 0.12 --output-weight 0 "${common[@]}" --out "$OUT/hkd" > "$OUT/hkd.train.json" 2> "$OUT/hkd.train.txt" &
hkd=$!
RAYON_NUM_THREADS=$THREADS "${cli[@]}" distill --no-hints "${common[@]}" --out "$OUT/baseline" > "$OUT/baseline.train.json" 2> "$OUT/baseline.train.txt" &
baseline=$!
wait $hkd
wait $baseline

bash benchmarks/sigma25-eval.sh "$OUT/hkd/student.json" "$OUT/baseline/student.json"
if [ -n "$EXPORT" ]; then
  "${cli[@]}" export "$OUT/hkd/student.json" "$EXPORT/spikerir_tiny_sigma25.json"
  "${cli[@]}" export "$OUT/baseline/student.json" "$EXPORT/spikerir_tiny_sigma25_nohints.json"
fi
