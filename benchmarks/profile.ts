/**
 * `npm run bench -- profile [--preset P] [--limit STEPS]`: where one student
 * training step spends its time, op by op, for the step without hints, with
 * raw DnCNN-S hints and with `spikeir distill`'s default design (the same
 * steps `compare` races). Each design takes one warm-up step, then STEPS
 * (default 3) timed ones with `SPIKEIR_PROFILE` on; the table is the
 * binding's `profileReport()` (a span nested in another pauses it, so the
 * shares add up).
 *
 * @module
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import { binding } from '../src/tensor'
import { info } from '../index'
import { loadRun, trainer, writeRun, type HintDesign } from './reference/prepare'
import type { BenchArgs } from './run'

export function run(args: BenchArgs): Record<string, unknown> {
  // Read by the core at its first timed span, which no benchmark has reached yet.
  process.env['SPIKEIR_PROFILE'] = '1'
  const preset = (args.preset ?? 'tiny') as 'tiny' | 'small' | 'base'
  if (!['tiny', 'small', 'base'].includes(preset)) throw new Error(`profile: unknown --preset '${preset}' (tiny, small, base)`)
  const steps = args.limit ?? 3
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-profile-'))
  const results: Record<string, { secondsPerStep: number; report: string }> = {}
  try {
    for (const design of [null, 'raw', 'default'] as (HintDesign | null)[]) {
      const name = design ?? 'none'
      const dir = path.join(root, name)
      writeRun(dir, { preset, design })
      const r = loadRun(dir)
      const t = trainer(r)
      try {
        t.step(0)
        binding.profileReport(true)
        const t0 = process.hrtime.bigint()
        for (let i = 1; i <= steps; i++) t.step(i)
        const secondsPerStep = Number(process.hrtime.bigint() - t0) / 1e9 / steps
        const report = binding.profileReport(true)
        if (!report.trim()) throw new Error('profile: the core recorded no spans (was an op timed before SPIKEIR_PROFILE was set?)')
        results[name] = { secondsPerStep, report }
        if (!args.json) console.log(`\n${preset} student, hints: ${name}, ${secondsPerStep.toFixed(3)} s per step over ${steps} steps on ${info().adapterName}\n${report}`)
      } finally {
        t.dispose()
        r.dispose()
      }
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true })
  }
  return { bench: 'profile', device: info().adapterName, preset, steps, results }
}
