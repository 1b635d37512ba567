#!/usr/bin/env node
// The TypeScript tests again on lavapipe (Vulkan on the CPU), so the WGSL
// kernels run end to end under the models, trainers and CLI. Test files whose
// subject is not the device (the HTML report, packaging, bad-input messages,
// progress output, kill safety) ran on the native backend in `npm test` and
// would only repeat that here, several times slower: lavapipe runs every op
// of their training runs on the CPU through Vulkan.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const DEVICE_FREE = new Set(['bad-input', 'bad-input-fuzz', 'kill-safety', 'pack', 'progress', 'report'])
const dir = path.join(root, 'dist', '__test__')
const files = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.test.js') && !DEVICE_FREE.has(f.slice(0, -'.test.js'.length)))
  .sort()
  .map((f) => path.join('dist', '__test__', f))
const missing = [...DEVICE_FREE].filter((name) => !fs.existsSync(path.join(dir, `${name}.test.js`)))
if (missing.length) {
  console.error(`test-ts-lavapipe: no test file for ${missing.join(', ')} (renamed? update DEVICE_FREE)`)
  process.exit(1)
}
console.log(`test-ts-lavapipe: ${files.length} test files on lavapipe; not again here (native only): ${[...DEVICE_FREE].join(', ')}`)
const ava = path.join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs')
const r = spawnSync(process.execPath, [ava, ...files], { cwd: root, stdio: 'inherit', env: { ...process.env, SPIKEIR_DEVICE: 'lavapipe' } })
process.exit(r.status ?? 1)
