/**
 * The report of the σ = 25 experiment (benchmarks/sigma25.sh): PSNR against
 * step for the H-KD and baseline students, final BSD68/Set12 figures beside
 * the teacher's, parameters, energy and per-layer firing rates, and the
 * compute used. Reads what the script wrote; prints Markdown.
 *
 *   node dist/benchmarks/sigma25-report.js OUT HKD.json BASELINE.json
 *
 * @module
 */
import * as fs from 'node:fs'
import * as path from 'node:path'

import { readCheckpointInfo } from '../src/train/checkpoint'
import type { EnergyReport } from '../src/metrics/energy'

interface Evaluation {
  psnr: number
  ssim: number
  images: number
}
interface Side {
  parameters: number
  report: EnergyReport
}
interface Energy {
  model: Side
  teacher: Side
  teacherToModelEnergy: number
}

function readJson<T>(file: string): T {
  if (!fs.existsSync(file)) throw new Error(`sigma25-report: ${file} is missing (run benchmarks/sigma25.sh)`)
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T
}

/** Validation history and training wall time of a checkpoint (from its sidecar and JSONL log). */
function history(sidecar: string): { curve: Map<number, number>; steps: number; seconds: number } {
  const { info, dir } = readCheckpointInfo(sidecar)
  const validation = (info.metrics['validation'] ?? []) as { step: number; metrics: Record<string, number> }[]
  const curve = new Map(validation.map((v) => [v.step, v.metrics['psnr']!]))
  const name = String(info.config['name'] ?? 'student')
  const log = path.join(dir, `${name}.log.jsonl`)
  let seconds = NaN
  if (fs.existsSync(log)) {
    const records = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { seconds: number })
    seconds = records.reduce((a, r) => a + r.seconds, 0)
  }
  return { curve, steps: info.step, seconds }
}

function main(argv: string[]): number {
  const [out, hkdFile, baselineFile] = argv
  if (!out || !hkdFile || !baselineFile) {
    console.error('usage: sigma25-report OUT HKD.json BASELINE.json')
    return 2
  }
  const hkd = history(hkdFile)
  const baseline = history(baselineFile)
  const fmt = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(2))

  console.log('### PSNR on Set12 (σ = 25) against training step\n')
  console.log('| step | H-KD | no hints | H-KD − no hints |\n|---:|---:|---:|---:|')
  const steps = [...new Set([...hkd.curve.keys(), ...baseline.curve.keys()])].sort((a, b) => a - b)
  for (const s of steps) {
    const a = hkd.curve.get(s)
    const b = baseline.curve.get(s)
    console.log(`| ${s} | ${fmt(a)} | ${fmt(b)} | ${a !== undefined && b !== undefined ? (a - b >= 0 ? '+' : '') + (a - b).toFixed(2) : '-'} |`)
  }

  const ev = (m: string, set: string) => readJson<Evaluation>(path.join(out, `${m}.${set}.json`))
  const energy = { hkd: readJson<Energy>(path.join(out, 'hkd.energy.json')), baseline: readJson<Energy>(path.join(out, 'baseline.energy.json')) }
  const teacher = energy.hkd.teacher
  console.log('\n### Final figures (σ = 25; PSNR dB / SSIM; energy per BSD68 test001 image)\n')
  console.log('| model | BSD68 | Set12 | parameters | energy (mJ) | teacher / model energy |\n|---|---:|---:|---:|---:|---:|')
  const row = (label: string, m: string, side: Side, ratio: string) => {
    const b = ev(m, 'bsd68')
    const s = ev(m, 'set12')
    console.log(`| ${label} | ${b.psnr.toFixed(2)} / ${b.ssim.toFixed(4)} | ${s.psnr.toFixed(2)} / ${s.ssim.toFixed(4)} | ${side.parameters.toLocaleString('en-US')} | ${(side.report.totalPj / 1e9).toFixed(2)} | ${ratio} |`)
  }
  row('SpikerIR-tiny, H-KD', 'hkd', energy.hkd.model, `${energy.hkd.teacherToModelEnergy.toFixed(1)}×`)
  row('SpikerIR-tiny, no hints', 'baseline', energy.baseline.model, `${energy.baseline.teacherToModelEnergy.toFixed(1)}×`)
  row('DnCNN-S (teacher)', 'teacher', teacher, '1×')

  console.log('\n### Firing rates of the H-KD student on BSD68 test001 (spiking inputs of each layer)\n')
  console.log('| layer | firing rate | no-hints student |\n|---|---:|---:|')
  const base = new Map(energy.baseline.model.report.layers.map((l) => [l.name, l.firingRate]))
  for (const l of energy.hkd.model.report.layers) {
    if (l.firingRate === null) continue
    console.log(`| ${l.name} | ${l.firingRate.toFixed(3)} | ${base.get(l.name)?.toFixed(3) ?? '-'} |`)
  }
  const minutes = (s: number) => (s / 60).toFixed(1)
  console.log(`\nTraining: ${hkd.steps} steps with hints in ${minutes(hkd.seconds)} min, ${baseline.steps} steps without in ${minutes(baseline.seconds)} min (sum of step times in the JSONL logs; validation not included).`)
  return 0
}

process.exitCode = main(process.argv.slice(2))
