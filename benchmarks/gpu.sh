#!/usr/bin/env bash
# spikeir on a Linux x86-64 machine with an NVIDIA GPU that has its driver and a Python with
# PyTorch (CUDA) but no Node, no Rust and no network. Run from the repository root, with the
# gpu-kit/ folder that `bash benchmarks/gpu-kit.sh` built elsewhere:
#
#   bash benchmarks/gpu.sh
#
# In order, each part with its own time limit, inside about ten minutes in all:
#   1. unpacks node and the kernel test binaries under /tmp, the binding and dist/ into the tree;
#      installs the Vulkan loader from the kit where `ldconfig -p` knows no libvulkan, points the
#      loader at the NVIDIA driver's ICD file where it is not in the usual folders, and installs
#      SpikingJelly into /tmp/site for the PyTorch reference;
#   2. prints the card and driver (nvidia-smi), the PyTorch build, and `spikeir info`;
#   3. runs each kernel test binary with SPIKEIR_TEST_ADAPTER set to the NVIDIA adapter;
#   4. `bench -- student` on that adapter (seconds per step and the per-step GPU counters);
#   5. `bench -- compare`: spikeir on that adapter against PyTorch + SpikingJelly on CUDA;
#   6. prints one table of every part, then the comparison table.
# A part that fails or runs out of time does not stop the next; the table says what finished.
# With $OUT set, everything printed is also written to $OUT/gpu.log.
#
# Settings (environment):
#   GPU_ADAPTER       part of the wgpu adapter's name to test and race (default NVIDIA;
#                     llvmpipe runs everything on lavapipe, to try the script without a GPU)
#   REFERENCE_DEVICE  PyTorch's device (default cuda; cpu without a GPU)
#   REF_PYTHON        the Python that has torch (default python3)
#   GPU_BUDGET_S      seconds for the whole script (default 560)
#   GPU_TESTS         kernel test files to run, space-separated (default: every one in the kit)
#   TEST_LIMIT_S      seconds for all kernel tests together (default 150)
#   COMPARE_LIMIT     timed iterations per compare case (default 5)
#   STUDENT_LIMIT     timed steps of bench student (default 5)
#   GPU_KIT, GPU_WORK the kit (default ./gpu-kit) and the scratch folder (default /tmp/spikeir-gpu)
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
kit=${GPU_KIT:-$root/gpu-kit}
work=${GPU_WORK:-/tmp/spikeir-gpu}
site=${GPU_SITE:-/tmp/site}
pattern=${GPU_ADAPTER:-NVIDIA}
ref_device=${REFERENCE_DEVICE:-cuda}
ref_python=${REF_PYTHON:-python3}
budget=${GPU_BUDGET_S:-560}
test_budget=${TEST_LIMIT_S:-150}
compare_iters=${COMPARE_LIMIT:-5}
student_steps=${STUDENT_LIMIT:-5}
start=$(date +%s)
deadline=$((start + budget))

if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  exec > >(tee -a "$OUT/gpu.log") 2>&1
  tee_pid=$!
fi

mkdir -p "$work/bin" "$work/logs"
names=() states=() secs=() notes=()
record() { names+=("$1"); states+=("$2"); secs+=("$3"); notes+=("$4"); }
say() { echo "gpu.sh: $*"; }
heading() { echo; echo "=== $* ($(($(date +%s) - start)) s in)"; }
left() { echo $((deadline - $(date +%s))); }
# Runs "$@" for at most $1 seconds (less if the whole budget ends sooner), printing its output
# and keeping it in $work/logs/$2.log; sets rc (124: out of time) and took (seconds).
timed() {
  local cap=$1 log=$work/logs/$2.log t0
  shift 2
  local t
  t=$(left)
  [ "$cap" -lt "$t" ] && t=$cap
  t0=$(date +%s)
  if [ "$t" -lt 5 ]; then
    echo "(no time left)" >"$log"
    rc=125 took=0
    return
  fi
  timeout -k 10 "$t" "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  took=$(($(date +%s) - t0))
}
state_of() { case $1 in 0) echo ok ;; 124 | 137) echo "timed out" ;; 125) echo "not run" ;; *) echo "failed ($1)" ;; esac; }
unxz_to() {
  if command -v xz >/dev/null; then xz -dc "$1" >"$2"; else "$ref_python" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi
}
untar_xz() {
  if command -v xz >/dev/null; then tar -xJf "$1" -C "$2"; else "$ref_python" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$1" "$2"; fi
}

heading "1. setup"
glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | cut -d' ' -f2)
echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -srm), glibc $glibc"
# The binding and the test binaries were linked against the kit machine's glibc (MANIFEST).
if [ -n "$glibc" ] && [ "$(printf '%s\n' 2.35 "$glibc" | sort -V | head -1)" != 2.35 ]; then
  say "WARNING: glibc $glibc here; the binding and the test binaries need 2.35 (see $kit/MANIFEST)"
fi
[ -f "$kit/MANIFEST" ] || { say "no kit at $kit: run 'bash benchmarks/gpu-kit.sh' where Node and Rust are, and bring gpu-kit/ along"; exit 1; }
sed -n 1,2p "$kit/MANIFEST"
setup_ok=1
unxz_to "$kit/node.xz" "$work/bin/node" && chmod +x "$work/bin/node" || setup_ok=0
rm -rf "$work/tests" && untar_xz "$kit/tests.tar.xz" "$work" || setup_ok=0
untar_xz "$kit/binding.tar.xz" "$root" && untar_xz "$kit/dist.tar.xz" "$root" || setup_ok=0
export PATH="$work/bin:$PATH"
node_version=$(node --version 2>&1) || setup_ok=0
echo "node $node_version ($(command -v node))"

# The Vulkan loader. The kit's debs unpack into / as the machine's own would (they hold only
# libraries); GPU_LOADER_ROOT unpacks them elsewhere and adds that to LD_LIBRARY_PATH instead.
loader="system"
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' || [ "${GPU_FORCE_LOADER:-0}" = 1 ]; then
  loader_root=${GPU_LOADER_ROOT:-/}
  mkdir -p "$loader_root"
  if ls "$kit"/debs/*.deb >/dev/null 2>&1; then
    for f in "$kit"/debs/*.deb; do dpkg -x "$f" "$loader_root" || setup_ok=0; done
    if [ "$loader_root" = / ]; then
      ldconfig
    else
      export LD_LIBRARY_PATH="$loader_root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    fi
    loader="from the kit ($(ls "$kit"/debs | grep -o '^libvulkan1_[^_]*' || echo '?'), into $loader_root)"
  else
    loader="none (no libvulkan.so.1 here and no debs in the kit)"
    setup_ok=0
  fi
fi
echo "Vulkan loader: $loader"
# The NVIDIA ICD file, where the loader would not look for it.
nv_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -f "$nv_icd" ] &&
  ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
  export VK_DRIVER_FILES=$nv_icd VK_ICD_FILENAMES=$nv_icd
  egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  [ -f "$egl" ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$egl
fi
echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-(loader default)}"

# SpikingJelly for the reference; `compare` finds the Python through SPIKEIR_REF_VENV/bin/python.
ref_ok=1
if ls "$kit"/wheels/*.whl >/dev/null 2>&1; then
  "$ref_python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" "$kit"/wheels/*.whl || ref_ok=0
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
else
  say "no wheels in the kit: the reference needs SpikingJelly installed already"
fi
mkdir -p "$work/refvenv/bin"
printf '#!/bin/sh\nexec %q "$@"\n' "$(command -v "$ref_python")" >"$work/refvenv/bin/python"
chmod +x "$work/refvenv/bin/python"
export SPIKEIR_REF_VENV="$work/refvenv" SPIKEIR_REF_DEVICE="$ref_device"
record setup "$([ $setup_ok = 1 ] && echo ok || echo failed)" $(($(date +%s) - start)) "node $node_version; loader $loader"

heading "2. machine"
card=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1) || card="no nvidia-smi ($card)"
echo "card: $card"
timed 90 torch "$ref_python" -c "
import torch, spikingjelly
from importlib.metadata import version
cuda = torch.cuda.is_available()
print(f'PyTorch {torch.__version__} (CUDA {torch.version.cuda}), SpikingJelly {version(\"spikingjelly\")}, cuda available: {cuda}' + (f', {torch.cuda.get_device_name()}' if cuda else ''))
raise SystemExit(1 if '$ref_device'.startswith('cuda') and not cuda else 0)
"
[ $rc = 0 ] || ref_ok=0
record reference "$(state_of $rc)" "$took" "$(tail -1 "$work/logs/torch.log" | cut -c1-110)"

# The adapter spikeir picks by itself, then the one named by GPU_ADAPTER (exact name, as the
# kernel tests and --device match names by substring).
timed 90 info node dist/src/cli/main.js info
timed 90 info-json node dist/src/cli/main.js info --json
adapter=""
if [ $rc = 0 ]; then
  adapter=$(grep '^{' "$work/logs/info-json.log" | tail -1 | node -e '
    const j = JSON.parse(require("fs").readFileSync(0, "utf8"))
    const a = j.adapters.find((a) => a.usable && a.name.toLowerCase().includes(process.argv[1].toLowerCase()))
    if (a) console.log(a.name)' "$pattern")
elif [ -x "$work/tests/adapters" ]; then
  # Without a working binding, the Rust probe still names the adapters.
  timed 90 adapters "$work/tests/adapters"
  adapter=$(PATTERN=$pattern "$ref_python" -c '
import json, os, sys
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{"):
        a = json.loads(line)
        if a["usable"] and os.environ["PATTERN"].lower() in a["name"].lower():
            print(a["name"]); break' "$work/logs/adapters.log")
fi
if [ -n "$adapter" ]; then
  record adapter ok "$took" "$adapter"
else
  record adapter failed "$took" "no usable wgpu adapter whose name holds '$pattern' (see spikeir info above)"
fi
echo "adapter under test: ${adapter:-none}"

heading "3. kernel tests on ${adapter:-no adapter}"
# Most-used kernels first, so that a short budget still covers them.
order="tensor_kernels conv_kernels neuron_kernels norm_loss_kernels cross_backend wgpu_grid"
all=$(ls "$work/tests" 2>/dev/null | grep -vx adapters | sort)
[ -n "${GPU_TESTS:-}" ] && all=$(printf '%s\n' $GPU_TESTS)
tests=$( (for t in $order; do echo "$all" | grep -x "$t"; done; echo "$all" | grep -vxF "$(printf '%s\n' $order)") | awk 'NF && !seen[$0]++')
tests_end=$(($(date +%s) + test_budget))
passed=0 failed=0 ran=0
for t in $tests; do
  if [ -z "$adapter" ]; then record "test $t" "not run" 0 "no adapter"; continue; fi
  if [ ! -x "$work/tests/$t" ]; then record "test $t" failed 0 "not in the kit"; continue; fi
  cap=$((tests_end - $(date +%s)))
  [ $cap -gt 90 ] && cap=90
  [ $cap -lt 0 ] && cap=0
  echo "--- $t"
  SPIKEIR_TEST_ADAPTER="$adapter" timed $cap "test-$t" "$work/tests/$t"
  summary=$(grep -o 'test result: .*' "$work/logs/test-$t.log" | tail -1 | sed 's/test result: [a-zA-Z]*\. //; s/; [0-9]* measured.*//')
  p=$(echo "$summary" | grep -o '[0-9]* passed' | cut -d' ' -f1)
  f=$(echo "$summary" | grep -o '[0-9]* failed' | cut -d' ' -f1)
  passed=$((passed + ${p:-0})) failed=$((failed + ${f:-0}))
  [ $rc = 125 ] || ran=$((ran + 1))
  record "test $t" "$(state_of $rc)" "$took" "${summary:-$(grep -m1 -E 'panicked|error' "$work/logs/test-$t.log" | cut -c1-100)}"
done
echo "kernel tests: $ran files run, $passed tests passed, $failed failed"

heading "4. bench student on ${adapter:-no adapter}"
if [ -n "$adapter" ]; then
  timed 120 student node dist/benchmarks/run.js student --device "$adapter" --limit "$student_steps"
  record "bench student" "$(state_of $rc)" "$took" "$(grep -E ' s per step$' "$work/logs/student.log" | paste -sd ';' | sed 's/;/; /g')"
else
  record "bench student" "not run" 0 "no adapter"
fi

heading "5. bench compare: ${adapter:-no adapter} against PyTorch on $ref_device"
if [ -n "$adapter" ] && [ $ref_ok = 1 ]; then
  timed 600 compare node dist/benchmarks/run.js compare --device "$adapter" --limit "$compare_iters"
  cases=$(grep -c '^  .*: spikeir .* s, PyTorch .* s$' "$work/logs/compare.log")
  record "bench compare" "$(state_of $rc)" "$took" "$cases of 8 cases"
else
  record "bench compare" "not run" 0 "$([ -z "$adapter" ] && echo 'no adapter' || echo 'the reference is not ready (see reference)')"
fi

heading "6. summary"
echo "card: $card; spikeir adapter: ${adapter:-none}; PyTorch on $ref_device; $(($(date +%s) - start)) s in all"
printf '%-32s  %-12s  %5s  %s\n' part status s result
for i in "${!names[@]}"; do
  printf '%-32s  %-12s  %5s  %s\n' "${names[$i]}" "${states[$i]}" "${secs[$i]}" "${notes[$i]}"
done
if [ -f "$work/logs/student.log" ]; then
  echo
  sed -n '/per step after warm-up/,$p' "$work/logs/student.log"
fi
if [ -f "$work/logs/compare.log" ]; then
  echo
  if grep -q '^spikeir (' "$work/logs/compare.log"; then
    sed -n '/^spikeir (/,/^× = spikeir/p' "$work/logs/compare.log"
  else
    echo "compare did not finish; the cases it measured:"
    grep '^  .*: spikeir .* s, PyTorch .* s$' "$work/logs/compare.log"
  fi
fi

if [ -n "${tee_pid:-}" ]; then
  exec >&- 2>&-
  wait "$tee_pid"
fi
