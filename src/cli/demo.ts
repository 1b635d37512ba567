/**
 * `spikeir demo`: the main job end to end on nothing but the package. On
 * built-in synthetic dead-leaves images (or `--data DIR`), it trains a small
 * ANN teacher, distils a `tiny` spiking student from it with `distill`'s
 * default design (standardised hints plus the teacher's output) and trains the
 * same student without (the baseline: same seed, data and steps), evaluates
 * all three, compares their energy, and restores a sample — writing
 * `results.json`, checkpoints, logs and PNGs to the output folder. `--task`
 * runs it for any task (colour ones need `--data`).
 *
 * @module
 */
import * as path from 'node:path'

import type { DataSource } from '../data/pipeline'
import { writeImage } from '../io'
import { energyReport } from '../metrics/energy'
import { evaluatePairs, restore } from '../metrics/evaluate'
import { loadModel } from '../models/load'
import { writeReport } from '../report'
import { info, scope } from '../tensor'
import { writeFileAtomic } from '../train/checkpoint'
import { describeSetup, folderSource, taskPairs } from '../tasks'
import { defaultRecipe, runRecipe, type Recipe } from '../train/recipe'
import { checkWritableFolder, UsageError, type FlagSpec, type Parsed } from './args'
import { Output, trainingProgress } from './progress'
import { taskFlags, taskFromArgs } from './task'

export const summary = 'train a teacher, distil a spiking student (and a baseline), evaluate, write results'

export const flags: Record<string, FlagSpec> = {
  out: { type: 'string', description: 'output folder (default spikeir-demo)' },
  data: { type: 'string', description: 'folder of clean training images (or input/ + target/ pairs) instead of the built-in dead leaves' },
  'val-data': { type: 'string', description: 'folder of validation images (or pairs)' },
  ...taskFlags,
  sigma: { type: 'number', description: 'AWGN σ of --task denoise on the 0–255 scale (default 25)', min: 0, max: 255 },
  steps: { type: 'number', description: 'student training steps (default 200)', integer: true, min: 1 },
  'teacher-steps': { type: 'number', description: 'teacher training steps (default 150)', integer: true, min: 1 },
  seed: { type: 'number', description: 'seed (default 0)', integer: true, min: 0 },
  json: { type: 'boolean', description: 'print results.json to stdout' },
  quiet: { type: 'boolean', description: 'print only errors' },
}

export function run(args: Parsed): void {
  const f = args.flags
  const out = (f['out'] as string | undefined) ?? 'spikeir-demo'
  const sigma = (f['sigma'] as number | undefined) ?? 25
  // Numbers were checked against the flags' rules by the parser.
  const steps = (f['steps'] as number | undefined) ?? 200
  const teacherSteps = (f['teacher-steps'] as number | undefined) ?? 150
  const seed = (f['seed'] as number | undefined) ?? 0
  // The task decides channels (grey unless it restores RGB), degradation and metric.
  const setup = taskFromArgs(args)
  const channels = setup.channels
  if (channels === 3 && typeof f['data'] !== 'string') throw new UsageError(`--task ${setup.task.name} restores RGB images and the built-in dead leaves are grey: pass --data DIR`)
  const data: DataSource = typeof f['data'] === 'string' ? folderSource(f['data'], channels) : { kind: 'deadLeaves', count: 200, size: 96, seed: 1 }
  const valSource: DataSource =
    typeof f['val-data'] === 'string' ? folderSource(f['val-data'], channels) : typeof f['data'] === 'string' ? data : { kind: 'deadLeaves', count: 4, size: 128, seed: 2 }
  if (setup.trainDegradation.kind === 'none' && data.kind !== 'paired') throw new UsageError(`--task ${setup.task.name} trains on real pairs here: pass --data DIR holding input/ and target/ folders`)
  checkWritableFolder(out, typeof f['out'] === 'string' ? '--out' : 'output folder')
  const t0 = Date.now()
  const output = Output.from(f)
  const say = (m: string) => output.note(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${m}`)
  say(`device: ${info().adapterName}; output: ${out}`)
  const common = (name: string, overrides: Partial<Recipe>): Recipe => ({
    ...defaultRecipe(path.join(out, name)),
    data,
    task: setup.task.name,
    sigma,
    quality: setup.params.quality,
    blur: setup.params.blur,
    blurKernel: setup.params.blurKernel,
    seed,
    val: { source: valSource, limit: 4 },
    name,
    ...overrides,
  })
  // Five validations a run give the report's PSNR curves their shape.
  const valEvery = (n: number) => Math.max(1, Math.round(n / 5))

  say(`1/3 training the ANN teacher (U-Net, ${teacherSteps} steps)`)
  const teacherRecipe = common('teacher', { model: { kind: 'unet', options: { width: 16, imageChannels: channels, seed } }, steps: teacherSteps, valEvery: valEvery(teacherSteps), patch: 48, batch: 8, lr: 2e-3, warmup: 10 })
  const teacher = runRecipe(teacherRecipe, trainingProgress(output, 'teacher', teacherSteps))
  output.end()
  const teacherCkpt = path.join(out, 'teacher', 'teacher.json')

  const studentBase = { model: { kind: 'spikerir' as const, options: { width: 8, timeSteps: 4, imageChannels: channels, seed } }, steps, valEvery: valEvery(steps), patch: 32, batch: 8, lr: 2e-3, warmup: 10 }
  say(`2/3 distilling the tiny spiking student: standardised hints + the teacher's output (${steps} steps)`)
  const hkd = runRecipe(common('student-hkd', { ...studentBase, teacher: teacherCkpt }), trainingProgress(output, 'student (H-KD)', steps))
  output.end()
  say(`3/3 training the same student without hints, the baseline (${steps} steps)`)
  const baseline = runRecipe(common('student-baseline', { ...studentBase, teacher: null }), trainingProgress(output, 'student (baseline)', steps))
  output.end()

  say('evaluating, measuring energy, denoising a sample')
  const results = scope(() => {
    const pairs = taskPairs(setup, valSource, { limit: 4 })
    const models = {
      teacher: loadModel(teacherCkpt),
      studentHkd: loadModel(path.join(out, 'student-hkd', 'student-hkd.json')),
      studentBaseline: loadModel(path.join(out, 'student-baseline', 'student-baseline.json')),
    }
    const evaluation = Object.fromEntries(Object.entries(models).map(([k, m]) => [k, evaluatePairs(m.model, pairs, undefined, setup.metric)]))
    const sample = pairs[0]!
    const [, , h, w] = sample.target.shape as number[]
    const crop = sample.input.reshape(sample.input.shape)
    const energyInput = h! % 4 === 0 && w! % 4 === 0 ? crop : null
    const energy = energyInput
      ? { teacher: energyReport(models.teacher.model, energyInput), student: energyReport(models.studentHkd.model, energyInput) }
      : null
    writeImage(path.join(out, 'sample_clean.png'), sample.target)
    writeImage(path.join(out, 'sample_noisy.png'), sample.input) // the degraded input, whatever the task
    for (const [k, m] of Object.entries(models)) writeImage(path.join(out, `sample_${k}.png`), restore(m.model, sample.input))
    return {
      device: info().adapterName,
      task: setup.task.name,
      degradation: describeSetup(setup, valSource.kind === 'paired'),
      metricSpace: setup.metric.space,
      sigma: setup.params.sigma,
      data: data.kind === 'folder' ? data.dir : 'built-in dead leaves (200 images, 96×96)',
      steps: { teacher: teacherSteps, student: steps },
      parameters: { teacher: teacher.parameters, student: hkd.parameters },
      psnr: Object.fromEntries(Object.entries(evaluation).map(([k, e]) => [k, e.psnr])),
      ssim: Object.fromEntries(Object.entries(evaluation).map(([k, e]) => [k, e.ssim])),
      energyPj: energy ? { teacher: energy.teacher.totalPj, student: energy.student.totalPj, ratio: energy.teacher.totalPj / energy.student.totalPj } : null,
      firingRates: energy ? Object.fromEntries(energy.student.layers.filter((l) => l.firingRate !== null).map((l) => [l.name, l.firingRate])) : null,
      validationDuringTraining: { teacher: teacher.metrics, studentHkd: hkd.metrics, studentBaseline: baseline.metrics },
      seconds: (Date.now() - t0) / 1000,
      note: 'PSNR/SSIM on whole validation images (noise from a fixed seed); energy is the 45 nm analytical estimate, not a hardware measurement.',
    }
  })
  writeFileAtomic(path.join(out, 'results.json'), JSON.stringify(results, null, 2) + '\n')
  say(`PSNR (dB): teacher ${results.psnr['teacher']!.toFixed(2)}, student with hints ${results.psnr['studentHkd']!.toFixed(2)}, without ${results.psnr['studentBaseline']!.toFixed(2)}`)
  if (results.energyPj) say(`energy per image: teacher ${(results.energyPj.teacher / 1e6).toFixed(2)} µJ, student ${(results.energyPj.student / 1e6).toFixed(2)} µJ (${results.energyPj.ratio.toFixed(1)}×)`)
  say('writing the report')
  const report = writeReport([out], { out: path.join(out, 'report.html') })
  say(`wrote ${path.join(out, 'results.json')}, sample PNGs and ${report}`)
  if (f['json']) console.log(JSON.stringify(results))
}
