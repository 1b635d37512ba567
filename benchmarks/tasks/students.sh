#!/usr/bin/env bash
# The bundled students of every task: for each, a tiny SpikerIR student
# distilled from the task's teacher (standardised hints, γ = 0.01) and its
# no-hint baseline at the same budget (same seed, data, patches and steps).
# Deblurring has no published teacher: a U-Net teacher is trained first with
# `train-teacher`. A run that stops continues from its last checkpoint when
# the script is run again; a finished run is left alone.
#
#   bash benchmarks/tasks/students.sh list            # the runs, in order
#   bash benchmarks/tasks/students.sh run NAME…       # train these runs (resumable)
#   bash benchmarks/tasks/students.sh all [WORKERS]   # every run, WORKERS at a time (default 2)
#
# Then `node dist/benchmarks/tasks/report.js` exports the students to weights/,
# evaluates them on each task's test set and prints the README table.
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${SHARED:-../shared}
STEPS=${STEPS:-1000}
TEACHER_STEPS=${TEACHER_STEPS:-2000}
THREADS=${THREADS:-1}
OUT=${OUT:-out/tasks}
M=$SHARED/models
D=$SHARED/data

# The budget of every student: the hint study's short schedule.
budget=(--steps "$STEPS" --patch 48 --batch 8 --lr 2e-3 --warmup 100 --seed 1 --checkpoint-every 250 --val-every 500 --val-limit 4)
hkd=(--hint-norm --gamma 0.01 --output-weight 0)

# name → the flags of its run (its task, data, teacher and hints).
flags() {
  case "$1" in
    cdenoise-teacherless) echo "--no-hints --task denoise --sigma 25 --channels 3 --data $D/cbsd432 --val-data $D/cbsd68" ;;
    cdenoise-hkd) echo "--teacher $M/cdncnn_b_color.safetensors ${hkd[*]} --task denoise --sigma 25 --data $D/cbsd432 --val-data $D/cbsd68" ;;
    jpeg-teacherless) echo "--no-hints --task jpeg --quality 10 --channels 1 --data $D/train400 --val-data $D/jpeg/classic5" ;;
    jpeg-hkd) echo "--teacher $M/dncnn3.safetensors ${hkd[*]} --task jpeg --quality 10 --data $D/train400 --val-data $D/jpeg/classic5" ;;
    derain-teacherless) echo "--no-hints --task derain --data $D/cbsd432 --val-data $D/derain/rain100l" ;;
    derain-hkd) echo "--teacher $M/prenet_rain100l.safetensors ${hkd[*]} --hints encoder1:stage6.conv0,decoder1:stage6.h,refine:stage6.res5 --task derain --data $D/cbsd432 --val-data $D/derain/rain100l" ;;
    dehaze-teacherless) echo "--no-hints --task dehaze --data $D/cbsd432 --val-data $D/dehaze/sots_indoor" ;;
    dehaze-hkd) echo "--teacher $M/lkdnet_t_its_dehaze.safetensors ${hkd[*]} --hints decoder2:decoder2,decoder1:decoder1 --task dehaze --data $D/cbsd432 --val-data $D/dehaze/sots_indoor" ;;
    deblur-teacherless) echo "--no-hints --task deblur --blur 1.6 --channels 1 --data $D/train400 --val-data $D/set12" ;;
    deblur-hkd) echo "--teacher $OUT/deblur-teacher/teacher.json ${hkd[*]} --hints encoder1:encoder1,encoder2:encoder2,decoder2:decoder2,decoder1:decoder1 --task deblur --blur 1.6 --data $D/train400 --val-data $D/set12" ;;
    *) return 1 ;;
  esac
}
RUNS=(deblur-teacher derain-hkd cdenoise-hkd derain-teacherless cdenoise-teacherless jpeg-hkd dehaze-hkd jpeg-teacherless dehaze-teacherless deblur-hkd deblur-teacherless)

# The step a run's last checkpoint reached (0: none).
reached() {
  local sidecar=$1
  [ -f "$sidecar" ] || { echo 0; return; }
  node -e "console.log(JSON.parse(require('fs').readFileSync(process.argv[1],'utf8')).step ?? 0)" "$sidecar"
}

run_one() {
  local name=$1 out=$OUT/$1 cmd sidecar steps resume=()
  mkdir -p "$out"
  if [ "$name" = deblur-teacher ]; then
    cmd=(train-teacher --task deblur --blur 1.6 --channels 1 --arch unet --width 16 --data "$D/train400" --val-data "$D/set12"
      --steps "$TEACHER_STEPS" --patch 48 --batch 8 --lr 2e-3 --warmup 100 --seed 1 --checkpoint-every 250 --val-every 500 --val-limit 4)
    sidecar=$out/teacher.json steps=$TEACHER_STEPS
  else
    read -r -a f <<<"$(flags "$name")" || { echo "students: unknown run '$name' (see: list)" >&2; return 2; }
    cmd=(distill "${f[@]}" "${budget[@]}")
    sidecar=$out/student.json steps=$STEPS
  fi
  local at
  at=$(reached "$sidecar")
  if [ "$at" -ge "$steps" ]; then echo "students: $name is finished (step $at)"; return 0; fi
  [ "$at" -gt 0 ] && resume=(--resume "$sidecar")
  echo "$(date -u +%FT%TZ) start: ${cmd[*]} ${resume[*]}" >>"$out/run.txt"
  local t0=$SECONDS
  RAYON_NUM_THREADS=$THREADS node dist/src/cli/main.js "${cmd[@]}" --out "$out" --json --quiet --no-report "${resume[@]}" >"$out/result.json" 2>>"$out/run.err"
  echo "$(date -u +%FT%TZ) done in $((SECONDS - t0)) s (from step $at)" >>"$out/run.txt"
  echo "students: $name done in $((SECONDS - t0)) s"
}

case "${1:-}" in
  list) printf '%s\n' "${RUNS[@]}" ;;
  run) shift; for n in "$@"; do run_one "$n"; done ;;
  all)
    workers=${2:-2}
    # The runs are dealt round-robin to the workers; the teacher of deblur-hkd is
    # the first run of worker 0, so it is ready long before deblur-hkd starts.
    for ((w = 0; w < workers; w++)); do
      (for ((i = w; i < ${#RUNS[@]}; i += workers)); do run_one "${RUNS[$i]}" || echo "students: ${RUNS[$i]} failed (see $OUT/${RUNS[$i]}/run.err)"; done) &
    done
    wait
    ;;
  *) echo "usage: students.sh list | run NAME… | all [WORKERS]" >&2; exit 2 ;;
esac
