#!/usr/bin/env node
// The Rust half of `npm test`. The kernel tests compare every op with an f64
// reference on a device chosen by SPIKEIR_TEST_ADAPTER; this runs them on the
// native CPU backend, then once on every wgpu adapter that opens and computes
// correctly. Where there is none (no Vulkan, Metal or DX12 driver) the wgpu
// pass is reported as skipped, with the reason and the number of tests, and
// SPIKEIR_REQUIRE_WGPU=1 (CI) turns that skip into a failure.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
// Test files that compare the native backend with a wgpu adapter, or test
// what only a wgpu adapter has: they only mean something on a wgpu pass.
const NEEDS_WGPU = new Set(['cpu_ops', 'cpu_norm_loss_neuron', 'cross_backend', 'wgpu_grid'])
// Test files (and the library's unit tests) that use no device: the native
// pass runs them once.
const DEVICE_FREE = new Set(['cpu_conv', 'data_pipeline', 'fuzz_inputs'])
// `--wgpu-only` runs just the wgpu pass: CI's second invocation, on lavapipe, after
// `npm test` ran the native passes on the same build.
const args = process.argv.slice(2)
const unknown = args.filter((a) => a !== '--wgpu-only')
if (unknown.length) {
  console.error(`test-rust: unknown argument ${unknown.join(' ')} (known: --wgpu-only)`)
  process.exit(2)
}
const wgpuOnly = args.includes('--wgpu-only')

const host = spawnSync('rustc', ['-vV'], { encoding: 'utf8' }).stdout.match(/^host: (.+)$/m)?.[1]
if (!host) fail('could not read the host target from `rustc -vV`')
const cargo = ['--release', '-p', 'spikeir-core', '--target', host]
const testFiles = fs
  .readdirSync(path.join(root, 'crates', 'core', 'tests'))
  .filter((f) => f.endsWith('.rs') && f !== 'common.rs')
  .map((f) => f.slice(0, -3))
  .sort()

function fail(message) {
  console.error(`test-rust: ${message}`)
  process.exit(1)
}

function run(args, env = {}, options = {}) {
  const r = spawnSync('cargo', args, { cwd: root, stdio: options.capture ? 'pipe' : 'inherit', encoding: 'utf8', env: { ...process.env, ...env }, timeout: options.timeout })
  if (r.error) fail(`cargo ${args.join(' ')}: ${r.error.message}`)
  return r
}

function must(args, env) {
  const r = run(args, env)
  if (r.status !== 0) fail(`cargo ${args.join(' ')} exited with ${r.status ?? r.signal}`)
}

// A failing pass does not stop the next one: every device's failures show.
const failed = []
function pass(name, args, env) {
  console.log(`\ntest-rust: kernel tests on ${name}`)
  const r = run(args, env)
  if (r.status !== 0) failed.push(name)
}

// Build everything first, so the probe and the passes only run.
must(['test', ...cargo, '--no-run'])
must(['build', ...cargo, '--example', 'adapters'])

// The probe runs in its own process with a time limit: a broken driver may hang.
const probe = run(['run', '-q', ...cargo, '--example', 'adapters'], {}, { capture: true, timeout: 180_000 })
let adapters = []
let probeProblem = ''
if (probe.status === 0) {
  adapters = probe.stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l))
} else {
  probeProblem = `the adapter probe ${probe.signal ? `was stopped (${probe.signal})` : `exited with ${probe.status}`}: ${(probe.stderr || '').trim().split('\n').slice(-3).join(' ')}`
}
const usable = adapters.filter((a) => a.usable)
if (adapters.length === 0 && !probeProblem) console.log('test-rust: no wgpu adapter (Vulkan, Metal or DX12) on this machine')
for (const a of adapters) {
  console.log(`test-rust: wgpu adapter ${a.name} (${a.type}, ${a.backend}): ${a.usable ? 'usable' : `not usable — ${a.reason}`}`)
}

if (wgpuOnly) {
  console.log('test-rust: --wgpu-only: the native passes are left out (they ran in `npm test`)')
} else {
  pass('the native CPU backend', ['test', ...cargo, '--no-fail-fast', '--lib', ...testFiles.filter((f) => !NEEDS_WGPU.has(f)).flatMap((f) => ['--test', f])], { SPIKEIR_TEST_ADAPTER: 'cpu' })
  // The narrow convolution kernels have a copy per vector width; the native pass ran the
  // widest this CPU has, so the CPU convolution tests run again on each narrower one.
  for (const isa of ['avx2', 'baseline']) {
    pass(`the native CPU backend, ${isa} convolution kernels`, ['test', ...cargo, '--no-fail-fast', '--test', 'cpu_conv'], { SPIKEIR_TEST_ADAPTER: 'cpu', SPIKEIR_CPU_KERNELS: isa })
  }
}

for (const a of usable) {
  pass(`wgpu adapter ${a.name} (${a.type}, ${a.backend})`, ['test', ...cargo, '--no-fail-fast', ...testFiles.filter((f) => !DEVICE_FREE.has(f)).flatMap((f) => ['--test', f])], { SPIKEIR_TEST_ADAPTER: a.name })
}

if (usable.length === 0) {
  const wgpuFiles = testFiles.filter((f) => !DEVICE_FREE.has(f))
  const listed = run(['test', '-q', ...cargo, ...wgpuFiles.flatMap((f) => ['--test', f]), '--', '--list'], { SPIKEIR_TEST_ADAPTER: 'cpu' }, { capture: true })
  const count = (listed.stdout.match(/: test$/gm) || []).length
  const why = probeProblem || (adapters.length === 0 ? 'no Vulkan, Metal or DX12 adapter on this machine' : adapters.map((a) => `${a.name}: ${a.reason}`).join('; '))
  console.log(`\ntest-rust: SKIPPED the wgpu pass (${count} tests in ${wgpuFiles.length} files): ${why}.`)
  console.log('test-rust: on Linux without a GPU, `apt-get install mesa-vulkan-drivers` (lavapipe) runs them on the CPU.')
  if (process.env.SPIKEIR_REQUIRE_WGPU === '1') fail('SPIKEIR_REQUIRE_WGPU=1 but the wgpu pass was skipped')
}
if (failed.length > 0) fail(`tests failed on ${failed.join(' and on ')}`)
