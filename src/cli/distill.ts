/**
 * `spikeir distill`: train a SpikerIR student, with H-KD hints from a frozen
 * teacher (`--teacher`) or without (`--no-hints`, the baseline). Settings
 * come from `--config FILE.json` (a recipe) and flags, flags winning.
 *
 * @module
 */
import * as fs from 'node:fs'

import { SPIKERIR_PRESETS } from '../models/spikerir'
import { writeReport } from '../report'
import { readCheckpointInfo } from '../train/checkpoint'
import { interruptRequested, releaseInterrupts, trapInterrupts } from '../train/interrupt'
import { defaultRecipe, runRecipe, type Recipe } from '../train/recipe'
import { UsageError, type FlagSpec, type Parsed } from './args'
import { Output, trainingProgress } from './progress'

export const summary = 'train a spiking student (with a teacher\'s hints, or --no-hints)'

/** Flags shared by `distill` and `train-teacher`. */
export const trainingFlags: Record<string, FlagSpec> = {
  config: { type: 'string', description: 'recipe JSON (flags override it)' },
  out: { type: 'string', description: 'output folder (checkpoints, log)' },
  data: { type: 'string', description: 'folder of clean training images (default: built-in dead leaves)' },
  'val-data': { type: 'string', description: 'folder of validation images (default: built-in dead leaves)' },
  'val-limit': { type: 'number', description: 'validate on the first N images' },
  'val-every': { type: 'number', description: 'validate every N steps (0: at the end)' },
  sigma: { type: 'number', description: 'AWGN σ on the 0–255 scale (default 25)' },
  patch: { type: 'number', description: 'patch side in pixels' },
  batch: { type: 'number', description: 'patches per batch' },
  steps: { type: 'number', description: 'training steps' },
  lr: { type: 'number', description: 'peak learning rate (AdamW, cosine schedule)' },
  warmup: { type: 'number', description: 'warm-up steps' },
  seed: { type: 'number', description: 'seed of data and initialisation' },
  'checkpoint-every': { type: 'number', description: 'checkpoint every N steps (0: at the end)' },
  resume: { type: 'string', description: 'checkpoint sidecar to resume from' },
  json: { type: 'boolean', description: 'print the result as one JSON object' },
  quiet: { type: 'boolean', description: 'print only errors' },
  'no-report': { type: 'boolean', description: 'do not write OUT/report.html at the end' },
}

export const flags: Record<string, FlagSpec> = {
  ...trainingFlags,
  preset: { type: 'string', description: `student preset (${Object.keys(SPIKERIR_PRESETS).join(', ')})` },
  'time-steps': { type: 'number', description: 'time steps T (default 4)' },
  teacher: { type: 'string', description: 'teacher checkpoint or DnCNN weights' },
  hints: { type: 'string', description: 'hint pairs studentTap:teacherTap,… (default by teacher)' },
  gamma: { type: 'number', description: 'hint weight γ (default 0.12)' },
  'gamma-schedule': { type: 'string', description: 'constant, linear:N, cosine:N, off-after:N' },
  'no-hints': { type: 'boolean', description: 'train without a teacher (the baseline)' },
}

/** Reads `--config` and applies the shared training flags to a recipe. */
export function recipeFrom(args: Parsed, base: Recipe): Recipe {
  const f = args.flags
  let r: Recipe = base
  if (typeof f['config'] === 'string') {
    let file: Partial<Recipe>
    try {
      file = JSON.parse(fs.readFileSync(f['config'], 'utf8'))
    } catch (e) {
      throw new UsageError(`--config ${f['config']}: ${e instanceof Error ? e.message : String(e)}`)
    }
    const unknown = Object.keys(file).filter((k) => !(k in base))
    if (unknown.length) throw new UsageError(`--config ${f['config']}: unknown keys ${unknown.join(', ')}`)
    r = { ...r, ...file }
  }
  const num = (k: string) => (typeof f[k] === 'number' ? (f[k] as number) : undefined)
  const positive = (k: string, v: number | undefined) => {
    if (v !== undefined && !(v > 0 && Number.isInteger(v))) throw new UsageError(`--${k} must be a positive integer, got ${v}`)
    return v
  }
  if (typeof f['out'] === 'string') r.outDir = f['out']
  if (typeof f['data'] === 'string') r.data = { kind: 'folder', dir: f['data'], channels: 1 }
  if (typeof f['val-data'] === 'string') r.val = { source: { kind: 'folder', dir: f['val-data'], channels: 1 }, limit: r.val?.limit ?? 12 }
  if (num('val-limit') !== undefined && r.val) r.val.limit = positive('val-limit', num('val-limit'))!
  if (num('val-every') !== undefined) r.valEvery = num('val-every')!
  if (num('sigma') !== undefined) r.sigma = num('sigma')!
  r.patch = positive('patch', num('patch')) ?? r.patch
  r.batch = positive('batch', num('batch')) ?? r.batch
  r.steps = positive('steps', num('steps')) ?? r.steps
  r.warmup = num('warmup') ?? r.warmup
  r.lr = num('lr') ?? r.lr
  r.seed = num('seed') ?? r.seed
  r.checkpointEvery = num('checkpoint-every') ?? r.checkpointEvery
  if (r.patch % 4 !== 0) throw new UsageError(`--patch must be a multiple of 4 (the student down-samples twice), got ${r.patch}`)
  return r
}

export function run(args: Parsed): void {
  const f = args.flags
  const base = defaultRecipe('spikeir-out/student')
  const r = recipeFrom(args, base)
  if (r.model.kind !== 'spikerir') throw new UsageError('distill trains a spikerir student; use train-teacher for ANN models')
  const preset = f['preset']
  if (typeof preset === 'string') {
    if (!(preset in SPIKERIR_PRESETS)) throw new UsageError(`unknown --preset '${preset}' (${Object.keys(SPIKERIR_PRESETS).join(', ')})`)
    r.model = { kind: 'spikerir', options: { ...r.model.options, ...SPIKERIR_PRESETS[preset as keyof typeof SPIKERIR_PRESETS] } }
  }
  if (typeof f['time-steps'] === 'number') r.model = { kind: 'spikerir', options: { ...r.model.options, timeSteps: f['time-steps'] } }
  r.model = { kind: 'spikerir', options: { ...r.model.options, seed: r.seed } }
  if (f['no-hints'] && typeof f['teacher'] === 'string') throw new UsageError('--no-hints and --teacher contradict each other')
  if (typeof f['teacher'] === 'string') r.teacher = f['teacher']
  if (f['no-hints']) r.teacher = null
  if (typeof f['hints'] === 'string') r.hints = f['hints'].split(',')
  if (typeof f['gamma'] === 'number') r.gamma = f['gamma']
  if (typeof f['gamma-schedule'] === 'string') r.gammaSchedule = f['gamma-schedule']
  train(r, args)
}

/**
 * Runs a recipe with progress on stderr and the result on stdout. SIGINT or
 * SIGTERM stops it after the current step with a checkpoint there (exit 0,
 * resumable with `--resume`); a second one terminates at once.
 */
export function train(r: Recipe, args: Parsed): void {
  const t0 = Date.now()
  const output = Output.from(args.flags)
  trapInterrupts()
  let result: ReturnType<typeof runRecipe>
  let interrupted: boolean
  try {
    result = runRecipe(r, {
      ...(typeof args.flags['resume'] === 'string' ? { resume: args.flags['resume'] } : {}),
      ...trainingProgress(output, r.name, r.steps),
    })
    interrupted = interruptRequested()
  } finally {
    releaseInterrupts()
    output.end()
  }
  const checkpoint = `${r.outDir}/${r.name}.json`
  // Where the run stands is what its checkpoint says.
  const step = readCheckpointInfo(checkpoint).info.step
  const stopped = interrupted && step < r.steps
  if (stopped) console.error(`interrupted: stopped after step ${step} of ${r.steps}; checkpoint ${checkpoint}; continue with --resume ${checkpoint}`)
  const report = args.flags['no-report'] ? null : writeReport([r.outDir], { out: `${r.outDir}/report.html` })
  const out = { checkpoint, parameters: result.parameters, steps: r.steps, step, interrupted: stopped, seconds: (Date.now() - t0) / 1000, validation: result.metrics, report }
  if (args.flags['json']) console.log(JSON.stringify(out))
  else if (!output.quiet) console.log(`wrote ${out.checkpoint} at step ${step}${stopped ? ` of ${r.steps}` : ''}${report ? ` and ${report}` : ''} (${out.parameters} parameters, ${out.seconds.toFixed(0)} s)`)
}
