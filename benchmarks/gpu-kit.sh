#!/usr/bin/env bash
# Packs what benchmarks/gpu.sh needs on a Linux x86-64 machine with an NVIDIA GPU and nothing
# installed beyond its driver and a Python with PyTorch (CUDA): no Node, no Rust, no network.
# Everything goes into gpu-kit/ (git-ignored), which travels with the tree:
#
#   bash benchmarks/gpu-kit.sh            # builds the binding, dist/ and the kernel tests first
#   SKIP_BUILD=1 bash benchmarks/gpu-kit.sh   # packs binding/ and dist/ as they are
#
#   gpu-kit/binding.tar.xz   binding/index.js, index.d.ts and the linux-x64-gnu addon
#   gpu-kit/dist.tar.xz      the compiled TypeScript (CLI, benchmarks, tests)
#   gpu-kit/node.xz          this machine's node binary
#   gpu-kit/tests.tar.xz     the kernel test binaries of the wgpu pass of scripts/test-rust.mjs
#                            and the `adapters` probe, stripped, in one solid archive (they share
#                            most of their code, so one archive is a fraction of their sum)
#   gpu-kit/wheels/          SpikingJelly and loguru (torch, numpy and safetensors are there)
#   gpu-kit/debs/            the Vulkan loader and GL dispatch libraries, for a machine without them
#   gpu-kit/MANIFEST         commit, dates, versions, glibc needs, what each test binary weighs
#
# The kit must stay under 60 MiB: the whole tree that travels to the GPU machine is limited to
# 64 MiB. The script fails rather than write a larger one.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
kit="$root/gpu-kit"
limit_bytes=$((60 * 1024 * 1024))
stage=$(mktemp -d /tmp/spikeir-gpu-kit.XXXXXX)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/kit/wheels" "$stage/kit/debs" "$stage/tests"

say() { echo "gpu-kit: $*" >&2; }
die() { say "$*"; exit 1; }
# The highest GLIBC symbol version a binary asks for: the oldest glibc it runs on.
glibc_need() { objdump -T "$1" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1; }

[ "$(uname -m)" = x86_64 ] || die "this machine is $(uname -m); the GPU machine is x86-64, so build the kit on an x86-64 Linux"
for tool in cargo node python3 xz tar objdump strip; do
  command -v "$tool" >/dev/null || die "'$tool' is not on PATH"
done

# 1. The binding and dist/.
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  say "building the binding (npm run build:native) and dist/ (npm run build:ts)"
  npm run -s build:native >&2
  npm run -s build:ts >&2
fi
addon="binding/spikeir.linux-x64-gnu.node"
[ -f "$addon" ] || die "$addon is missing: run 'npm run build:native'"
[ -f dist/src/cli/main.js ] && [ -f dist/benchmarks/run.js ] || die "dist/ is incomplete: run 'npm run build:ts'"
tar -C "$root" -cf - binding/index.js binding/index.d.ts "$addon" | xz -9 -T1 >"$stage/kit/binding.tar.xz"
tar -C "$root" -cf - dist | xz -9 -T1 >"$stage/kit/dist.tar.xz"

# 2. node. Official Linux builds link only glibc and libstdc++ dynamically.
node_bin=$(readlink -f "$(command -v node)")
if ldd "$node_bin" | grep -qE 'libnode|libuv|libssl|libicu'; then
  die "$node_bin links Node's own libraries dynamically (a distribution build); use an official build from nodejs.org"
fi
xz -9 -T1 -c "$node_bin" >"$stage/kit/node.xz"

# 3. Kernel test binaries: the files the wgpu pass of scripts/test-rust.mjs runs, that is every
# crates/core/tests/*.rs except common.rs and its DEVICE_FREE set (read from the script, so the
# two lists cannot drift apart).
device_free=$(sed -n "s/^const DEVICE_FREE = new Set(\[\(.*\)\])/\1/p" scripts/test-rust.mjs | tr -d "'" | tr ',' ' ')
[ -n "$device_free" ] || die "could not read DEVICE_FREE from scripts/test-rust.mjs"
wanted=()
for f in crates/core/tests/*.rs; do
  name=$(basename "$f" .rs)
  [ "$name" = common ] && continue
  case " $device_free " in *" $name "*) continue ;; esac
  wanted+=("$name")
done
say "building the kernel tests (${#wanted[@]} files) and the adapters probe"
{
  cargo test --release --no-run --message-format=json -p spikeir-core
  cargo build --release --example adapters --message-format=json -p spikeir-core
} >"$stage/cargo.json" || die "the cargo build failed (see its messages above)"
# Executable of each wanted test target, and of the adapters example.
python3 - "$stage/cargo.json" "${wanted[@]}" >"$stage/executables" <<'PY'
import json, sys
wanted = set(sys.argv[2:])
found = {}
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    kind, name = m["target"]["kind"], m["target"]["name"]
    if ("test" in kind and name in wanted) or ("example" in kind and name == "adapters"):
        found[name] = m["executable"]
missing = sorted(wanted - found.keys())
if missing:
    sys.exit(f"cargo reported no test executable for: {', '.join(missing)}")
for name, exe in sorted(found.items()):
    print(name, exe)
PY
test_rows=()
while read -r name exe; do
  strip -o "$stage/tests/$name" "$exe"
  test_rows+=("$name $(stat -c %s "$stage/tests/$name") $(glibc_need "$stage/tests/$name")")
done <"$stage/executables"
# One solid archive with a dictionary larger than one binary: the second and later binaries cost
# only what differs from the first.
tar -C "$stage" -cf - tests | xz -9 -T1 >"$stage/kit/tests.tar.xz"

# 4. SpikingJelly for the reference (pure Python wheels); torch, numpy and safetensors are on
# the GPU machine already.
if ! python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$stage/kit/wheels" 'spikingjelly==2.0.*' 'loguru>=0.7,<1' >&2; then
  say "WARNING: pip could not download spikingjelly and loguru; gpu.sh will run without the PyTorch reference"
fi

# 5. The Vulkan loader (and the GL dispatch libraries the NVIDIA ICD library links), only used
# where the GPU machine has no libvulkan.so.1.
apt_opts=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists="$stage/apt-lists" -oDebug::NoLocking=1)
mkdir -p "$stage/apt-lists/partial"
if command -v apt-get >/dev/null && apt-get "${apt_opts[@]}" update -qq >&2 &&
  (cd "$stage/kit/debs" && apt-get "${apt_opts[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >&2 2>/dev/null); then
  :
else
  say "WARNING: apt-get could not download the Vulkan loader; gpu.sh then needs libvulkan.so.1 on the GPU machine"
  rm -f "$stage/kit/debs/"*.deb
fi

# 6. The manifest, the size check, and the kit in place.
{
  echo "spikeir GPU kit, built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
  echo "commit      $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates src index.ts benchmarks 2>/dev/null || echo ' + uncommitted changes')"
  echo "node        $("$node_bin" --version), needs $(glibc_need "$node_bin")"
  echo "binding     $addon, needs $(glibc_need "$addon")"
  echo "tests       name, stripped bytes, glibc needed:"
  for r in "${test_rows[@]}"; do echo "            $r"; done
  echo "wheels      $(cd "$stage/kit/wheels" && ls ./*.whl 2>/dev/null | tr '\n' ' ')"
  echo "debs        $(cd "$stage/kit/debs" && ls ./*.deb 2>/dev/null | tr '\n' ' ')"
} >"$stage/kit/MANIFEST"
total=$(du -sb "$stage/kit" | cut -f1)
[ "$total" -le "$limit_bytes" ] || die "the kit is $((total / 1024)) KiB, over its 60 MiB limit; nothing written"
rm -rf "$kit"
mv "$stage/kit" "$kit"

cat "$kit/MANIFEST"
echo
echo "part                 bytes  (unpacked)"
row() { printf '%-16s %12s  %s\n' "$1" "$2" "$3"; }
row binding.tar.xz "$(stat -c %s "$kit/binding.tar.xz")" "($(stat -c %s "$addon") addon)"
row dist.tar.xz "$(stat -c %s "$kit/dist.tar.xz")" "($(du -sb dist | cut -f1))"
row node.xz "$(stat -c %s "$kit/node.xz")" "($(stat -c %s "$node_bin"))"
row tests.tar.xz "$(stat -c %s "$kit/tests.tar.xz")" "($(du -sb "$stage/tests" | cut -f1), ${#test_rows[@]} binaries)"
row wheels "$(du -sb "$kit/wheels" | cut -f1)" ""
row debs "$(du -sb "$kit/debs" | cut -f1)" ""
row total "$(du -sb "$kit" | cut -f1)" "(limit $limit_bytes)"
