#!/usr/bin/env node
// The TypeScript tests again on lavapipe (Vulkan on the CPU), so the WGSL
// kernels run end to end under the models, trainers and CLI. Two kinds of test
// file ran on the native backend in `npm test` and are not repeated here,
// where lavapipe runs every op of them on the CPU through Vulkan, several
// times slower:
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const NATIVE_ONLY = {
  // Their subject is not the device: the HTML report, packaging, bad-input
  // messages, progress output, kill safety.
  'bad-input': 'not the device',
  'bad-input-fuzz': 'not the device',
  'kill-safety': 'not the device',
  pack: 'not the device',
  progress: 'not the device',
  report: 'not the device',
  // Whole-set figures of published and bundled weights, and the example
  // scripts: on lavapipe the same kernels are held end to end by shorter
  // checks that stay here (teachers-dncnn: DnCNN against a float64 reference;
  // prenet, lkdnet, gcanet: the published teachers on crops; weights: the
  // default student's Set12 figure; doc-examples: the documented API). These
  // took 160, 230 and 81 s of lavapipe.
  dncnn: 'whole-set figure',
  'task-students': 'whole-set figures',
  examples: 'example scripts',
}
const dir = path.join(root, 'dist', '__test__')
const files = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.test.js') && !Object.hasOwn(NATIVE_ONLY, f.slice(0, -'.test.js'.length)))
  .sort()
  .map((f) => path.join('dist', '__test__', f))
const missing = Object.keys(NATIVE_ONLY).filter((name) => !fs.existsSync(path.join(dir, `${name}.test.js`)))
if (missing.length) {
  console.error(`test-ts-lavapipe: no test file for ${missing.join(', ')} (renamed? update NATIVE_ONLY)`)
  process.exit(1)
}
console.log(`test-ts-lavapipe: ${files.length} test files on lavapipe; not again here (native only): ${Object.entries(NATIVE_ONLY).map(([f, why]) => `${f} (${why})`).join(', ')}`)
const ava = path.join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs')
const r = spawnSync(process.execPath, [ava, ...files], { cwd: root, stdio: 'inherit', env: { ...process.env, SPIKEIR_DEVICE: 'lavapipe' } })
process.exit(r.status ?? 1)
