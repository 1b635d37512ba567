/**
 * `spikeir distill`: train a SpikerIR student, with H-KD hints from a frozen
 * teacher (`--teacher`) or without (`--no-hints`, the baseline). Settings
 * come from `--config FILE.json` (a recipe) and flags, flags winning.
 *
 * @module
 */
import * as fs from 'node:fs'
import * as path from 'node:path'

import type { DataSource } from '../data/pipeline'
import { listImages } from '../io'

import { SPIKERIR_PRESETS, type SpikerIRConfig } from '../models/spikerir'
import type { NeuronOptions } from '../nn/spiking'
import { writeReport } from '../report'
import { readCheckpointInfo } from '../train/checkpoint'
import { interruptRequested, releaseInterrupts, trapInterrupts } from '../train/interrupt'
import { defaultRecipe, recipeTask, runRecipe, type Recipe } from '../train/recipe'
import { checkModelSpec, loadModel } from '../models/load'
import { BLUR_KERNEL_NAMES, blurKernel, defaultTeacher, defaultTrainSet, folderSource, getTask, isBlurKernel, setupTask, TASK_NAMES, type TaskSetup } from '../tasks'
import { parseGammaSchedule } from '../distill/hkd'
import { checkNumber, checkWritableFolder, UsageError, type FlagSpec, type NumberRule, type Parsed } from './args'
import { Output, trainingProgress } from './progress'
import { taskFlags, taskParams } from './task'

export const summary = 'train a spiking student (with a teacher\'s hints, or --no-hints)'

/** Flags shared by `distill` and `train-teacher`. */
export const trainingFlags: Record<string, FlagSpec> = {
  config: { type: 'string', description: 'recipe JSON (flags override it)' },
  out: { type: 'string', description: 'output folder (checkpoints, log)' },
  data: { type: 'string', description: 'folder of clean training images, or of input/ + target/ pairs (default: built-in dead leaves; with --task, its training set in ../shared)' },
  'val-data': { type: 'string', description: 'folder of validation images, or of input/ + target/ pairs (default: built-in dead leaves for grey models)' },
  ...taskFlags,
  channels: { type: 'number', description: 'image channels of the model, 1 (grey) or 3 (RGB); default: the teacher\'s, else the task\'s, else 1', integer: true, min: 1, max: 3 },
  'val-limit': { type: 'number', description: 'validate on the first N images', integer: true, min: 1 },
  'val-every': { type: 'number', description: 'validate every N steps (0: at the end)', integer: true, min: 0 },
  sigma: { type: 'number', description: 'AWGN σ of --task denoise on the 0–255 scale (default 25)', min: 0, max: 255 },
  patch: { type: 'number', description: 'patch side in pixels', integer: true, min: 4, max: 4096 },
  'patch-range': { type: 'string', description: 'random patch side per step, MIN-MAX (multiples of 4), e.g. 40-64' },
  ema: { type: 'number', description: 'decay of the weight average kept and saved, e.g. 0.999 (default 0: none)', min: 0, max: 0.9999999 },
  batch: { type: 'number', description: 'patches per batch', integer: true, min: 1, max: 4096 },
  steps: { type: 'number', description: 'training steps', integer: true, min: 1 },
  lr: { type: 'number', description: 'peak learning rate (AdamW, cosine schedule)', min: 0, exclusiveMin: true, max: 1 },
  warmup: { type: 'number', description: 'warm-up steps', integer: true, min: 0 },
  seed: { type: 'number', description: 'seed of data and initialisation', integer: true, min: 0 },
  'checkpoint-every': { type: 'number', description: 'checkpoint every N steps (0: at the end)', integer: true, min: 0 },
  resume: { type: 'string', description: 'checkpoint sidecar to resume from' },
  init: { type: 'string', description: 'start from these weights (a checkpoint or exported model of the same architecture) with a fresh optimizer and schedule: fine-tuning' },
  json: { type: 'boolean', description: 'print the result as one JSON object' },
  quiet: { type: 'boolean', description: 'print only errors' },
  'no-report': { type: 'boolean', description: 'do not write OUT/report.html at the end' },
}

export const flags: Record<string, FlagSpec> = {
  ...trainingFlags,
  preset: { type: 'string', description: `student preset (${Object.keys(SPIKERIR_PRESETS).join(', ')})` },
  'time-steps': { type: 'number', description: 'time steps T (default 4)', integer: true, min: 1, max: 64 },
  width: { type: 'number', description: 'student width d: its levels run at d, 2d and 4d channels (default: the preset\'s, 8 for tiny)', integer: true, min: 1, max: 256 },
  neuron: { type: 'string', description: "the student's spiking neuron: lif (default), plif (learnable τ, initialised to 2) or if (no leak)" },
  reset: { type: 'string', description: 'membrane reset after a spike: hard (to 0, the default) or soft (the threshold is subtracted)' },
  blocks: { type: 'string', description: 'residual blocks per level E1,E2,E3,D3,D2,D1, e.g. 1,1,3,3,1,1 (default: the preset\'s); with --init from a student with fewer, the new blocks start near the identity' },
  teacher: { type: 'string', description: 'teacher checkpoint or published weights, or \'default\': the task\'s published teacher in ../shared' },
  hints: { type: 'string', description: 'hint pairs studentTap:teacherTap,… (default by teacher)' },
  gamma: { type: 'number', description: 'hint weight γ (default 0.01; 0.12 suits --raw-hints)', min: 0 },
  'gamma-schedule': { type: 'string', description: 'constant, linear:N, cosine:N, off-after:N' },
  'no-hints': { type: 'boolean', description: 'train without a teacher (the baseline)' },
  'hint-norm': { type: 'boolean', description: 'standardise teacher features per channel, by their statistics over training batches (the default)' },
  'raw-hints': { type: 'boolean', description: 'the teacher\'s features as they are, not standardised (the design before the hint study)' },
  'output-weight': { type: 'number', description: 'weight of output distillation, L1 to the teacher\'s output (default 0.5; 0: hints only)', min: 0 },
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
    if (typeof file !== 'object' || file === null || Array.isArray(file)) throw new UsageError(`--config ${f['config']}: a recipe must be a JSON object, got ${Array.isArray(file) ? 'an array' : JSON.stringify(file)}`)
    const unknown = Object.keys(file).filter((k) => !Object.hasOwn(base, k))
    if (unknown.length) throw new UsageError(`--config ${f['config']}: unknown keys ${unknown.join(', ')}`)
    r = { ...r, ...file }
  }
  // Flag values were checked against their rules by the parser.
  const num = (k: string) => (typeof f[k] === 'number' ? (f[k] as number) : undefined)
  if (typeof f['out'] === 'string') r.outDir = f['out']
  // Folders are read with the model's channels, known only once the model and teacher are: see applyTask.
  if (typeof f['task'] === 'string') r.task = f['task'] as Recipe['task']
  if (num('quality') !== undefined) r.quality = num('quality')!
  if (num('blur') !== undefined) r.blur = num('blur')!
  // Checked here, so a bad one is named as the flag rather than as the recipe's key.
  if (typeof f['blur-kernel'] === 'string') r.blurKernel = blurKernel(f['blur-kernel'])
  if (num('val-every') !== undefined) r.valEvery = num('val-every')!
  if (num('sigma') !== undefined) r.sigma = num('sigma')!
  r.patch = num('patch') ?? r.patch
  if (typeof f['patch-range'] === 'string') {
    const m = /^(\d+)-(\d+)$/.exec(f['patch-range'])
    if (!m) throw new UsageError(`--patch-range must be MIN-MAX, e.g. 40-64, got '${f['patch-range']}'`)
    r.patchRange = [Number(m[1]), Number(m[2])]
  }
  r.ema = num('ema') ?? r.ema
  r.batch = num('batch') ?? r.batch
  r.steps = num('steps') ?? r.steps
  r.warmup = num('warmup') ?? r.warmup
  r.lr = num('lr') ?? r.lr
  r.seed = num('seed') ?? r.seed
  r.checkpointEvery = num('checkpoint-every') ?? r.checkpointEvery
  if (typeof f['init'] === 'string') r.init = f['init']
  checkRecipe(r, typeof f['config'] === 'string' ? `--config ${f['config']}: ` : '')
  if (r.patch % 4 !== 0) throw new UsageError(`--patch must be a multiple of 4 (the student down-samples twice), got ${r.patch}`)
  if (r.patchRange !== null) {
    const [lo, hi] = Array.isArray(r.patchRange) ? r.patchRange : [NaN, NaN]
    if (!Array.isArray(r.patchRange) || r.patchRange.length !== 2 || !(lo! % 4 === 0 && hi! % 4 === 0 && lo! >= 4 && hi! >= lo! && hi! <= 4096)) {
      throw new UsageError(`patch range must be two multiples of 4 with 4 ≤ MIN ≤ MAX ≤ 4096, got ${JSON.stringify(r.patchRange)}`)
    }
  }
  return r
}

/** The rules of a recipe's numbers, by key: those with a flag share its rule. */
const RECIPE_NUMBERS: Record<string, NumberRule> = {
  patch: trainingFlags['patch']!,
  batch: trainingFlags['batch']!,
  steps: trainingFlags['steps']!,
  lr: trainingFlags['lr']!,
  warmup: trainingFlags['warmup']!,
  seed: trainingFlags['seed']!,
  valEvery: trainingFlags['val-every']!,
  checkpointEvery: trainingFlags['checkpoint-every']!,
  gamma: { min: 0 },
  outputWeight: { min: 0 },
  ema: { min: 0, max: 0.9999999 },
  lambdaFft: { min: 0 },
  minLr: { min: 0 },
  weightDecay: { min: 0 },
  clipNorm: { min: 0 },
}

/**
 * Checks a merged recipe (values from `--config` are only checked here), so a
 * bad value stops the run before any model, data or output exists. `where`
 * prefixes messages, e.g. `--config run.json: `.
 */
export function checkRecipe(r: Recipe, where: string): void {
  const v = r as unknown as Record<string, unknown>
  for (const [k, rule] of Object.entries(RECIPE_NUMBERS)) checkNumber(`${where}${k}`, v[k], rule)
  const sigmaRule = trainingFlags['sigma']!
  if (Array.isArray(r.sigma)) {
    if (r.sigma.length !== 2) throw new UsageError(`${where}sigma must be a number or a [min, max] pair, got ${JSON.stringify(r.sigma)}`)
    checkNumber(`${where}sigma[0]`, r.sigma[0], sigmaRule)
    checkNumber(`${where}sigma[1]`, r.sigma[1], { ...sigmaRule, min: r.sigma[0] })
  } else checkNumber(`${where}sigma`, r.sigma, sigmaRule)
  const text = (k: string, ok: boolean, what: string) => {
    if (!ok) throw new UsageError(`${where}${k} must be ${what}, got ${JSON.stringify(v[k]) ?? 'nothing'}`)
  }
  text('task', typeof r.task === 'string' && (TASK_NAMES as string[]).includes(r.task), `one of ${TASK_NAMES.join(', ')}`)
  if (r.quality !== null) checkNumber(`${where}quality`, r.quality, trainingFlags['quality']!)
  // The blur size's range is its kernel's: checked with the task (recipeTask), naming both.
  if (r.blur !== null) checkNumber(`${where}blur`, r.blur, {})
  // Recipe objects made before blur kernels have no blurKernel (undefined), which is the default.
  text('blurKernel', r.blurKernel === undefined || r.blurKernel === null || isBlurKernel(r.blurKernel), `null or one of ${BLUR_KERNEL_NAMES.join(', ')}`)
  text('name', typeof r.name === 'string' && /^[\w.-]+$/.test(r.name) && r.name !== '.' && r.name !== '..', 'a file name (letters, digits, _ . -)')
  text('outDir', typeof r.outDir === 'string' && r.outDir !== '', 'a folder path')
  text('gammaSchedule', typeof r.gammaSchedule === 'string', 'a string')
  text('hintNorm', typeof r.hintNorm === 'boolean', 'true or false')
  text('init', r.init === undefined || r.init === null || (typeof r.init === 'string' && r.init !== ''), 'a checkpoint path or null')
  text('teacher', r.teacher === null || (typeof r.teacher === 'string' && r.teacher !== ''), 'a checkpoint path or null')
  text('hints', r.hints === undefined || (Array.isArray(r.hints) && r.hints.every((h) => typeof h === 'string')), 'a list of studentTap:teacherTap strings')
  text('data', typeof r.data === 'object' && r.data !== null && typeof (r.data as { kind?: unknown }).kind === 'string', 'a data source { kind, … }')
  if (r.val !== null) {
    text('val', typeof r.val === 'object' && typeof r.val?.source === 'object' && r.val.source !== null, 'null or { source, limit }')
    checkNumber(`${where}val.limit`, r.val.limit, trainingFlags['val-limit']!)
  }
  try {
    checkModelSpec(r.model, `${where}model`)
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e))
  }
}

/**
 * Fits a recipe to its task and the model's image channels: the task's
 * options checked against the flags given (naming the flag), `--data` and
 * `--val-data` read with those channels (paired folders as pairs), the
 * task's training set where `--task` is given without `--data`, and the
 * model built for the channels. Grey dead leaves cannot train a colour
 * model, and a task whose training inputs are real pairs cannot train on
 * clean images.
 */
export function applyTask(r: Recipe, args: Parsed, channels: 1 | 3): TaskSetup {
  const f = args.flags
  const where = typeof f['config'] === 'string' ? `--config ${f['config']}: ` : ''
  // Flags the task does not take are refused by name; a recipe's σ is ignored by tasks without one.
  // A --blur alone is a size of the recipe's kernel.
  const given = taskParams(args)
  if (given.blur !== undefined && given.blurKernel === undefined && r.blurKernel && getTask(r.task).options.includes('blur')) given.blurKernel = r.blurKernel
  setupTask(r.task, given, channels)
  r.model = { ...r.model, options: { ...r.model.options, imageChannels: channels } } as Recipe['model']
  const task = getTask(r.task)
  const fromFolder = (dir: string, train: boolean): DataSource => {
    const src = folderSource(dir, channels)
    if (!train || src.kind !== 'folder' || task.trainExclude.length === 0) return src
    // Test scenes hidden in the training set stay out of it: those of the folder's images that are one.
    const stems = new Set(listImages(src.dir).map((file) => path.basename(file).replace(/\.[^.]+$/, '')))
    const exclude = task.trainExclude.filter((id) => stems.has(id))
    return exclude.length ? { ...src, exclude } : src
  }
  if (typeof f['data'] === 'string') r.data = fromFolder(f['data'], true)
  else if (typeof f['task'] === 'string' && typeof f['config'] !== 'string') {
    const dir = defaultTrainSet(setupTask(r.task, {}, channels))
    if (dir !== null && fs.existsSync(dir)) r.data = fromFolder(dir, true)
  }
  if (typeof f['val-data'] === 'string') r.val = { source: folderSource(f['val-data'], channels), limit: r.val?.limit ?? 12 }
  const num = (k: string) => (typeof f[k] === 'number' ? (f[k] as number) : undefined)
  if (num('val-limit') !== undefined && r.val) r.val.limit = num('val-limit')!
  if (channels === 3 && r.data.kind === 'deadLeaves') throw new UsageError(`${where}the built-in dead leaves are grey, and this model restores RGB images: pass --data DIR of colour images`)
  // Validation on grey dead leaves cannot score a colour model: without --val-data it is off.
  if (channels === 3 && r.val?.source.kind === 'deadLeaves') r.val = null
  const setup = recipeTask(r, where)
  if (setup.trainDegradation.kind === 'none' && r.data.kind !== 'paired') {
    throw new UsageError(`${where}--task ${r.task} trains on real pairs here: pass --data DIR holding input/ and target/ folders`)
  }
  return setup
}

/** `--blocks E1,E2,E3,D3,D2,D1`: six counts, each 1–64. */
function parseBlocks(text: string): SpikerIRConfig['blocks'] {
  const parts = text.split(',')
  const counts = parts.map((p) => (/^\s*\d+\s*$/.test(p) ? Number(p) : NaN))
  if (counts.length !== 6 || counts.some((n) => !Number.isInteger(n) || n < 1 || n > 64)) {
    throw new UsageError(`--blocks must be six block counts E1,E2,E3,D3,D2,D1, each 1–64 (e.g. 1,1,3,3,1,1), got '${text}'`)
  }
  return counts as SpikerIRConfig['blocks']
}

/** `--neuron` and `--reset` as neuron options (only those given). */
function neuronFlags(kind: unknown, reset: unknown): NeuronOptions {
  const options: NeuronOptions = {}
  if (typeof kind === 'string') {
    if (kind !== 'lif' && kind !== 'plif' && kind !== 'if') throw new UsageError(`--neuron must be lif, plif or if, got '${kind}'`)
    options.kind = kind
  }
  if (typeof reset === 'string') {
    if (reset !== 'hard' && reset !== 'soft') throw new UsageError(`--reset must be hard or soft, got '${reset}'`)
    // SpikingJelly's convention: no reset value means the soft reset.
    options.vReset = reset === 'hard' ? 0 : null
  }
  return options
}

/** Image channels and kind of a model file (the teacher's, to build a student for them). */
function describeModel(file: string): { channels: 1 | 3; kind: string } {
  const { model, imageChannels, spec } = loadModel(file)
  model.dispose()
  return { channels: imageChannels === 3 ? 3 : 1, kind: spec.kind }
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
  if (typeof f['width'] === 'number') r.model = { kind: 'spikerir', options: { ...r.model.options, width: f['width'] } }
  if (typeof f['blocks'] === 'string') r.model = { kind: 'spikerir', options: { ...r.model.options, blocks: parseBlocks(f['blocks']) } }
  if (typeof f['neuron'] === 'string' || typeof f['reset'] === 'string') {
    r.model = { kind: 'spikerir', options: { ...r.model.options, neuron: { ...r.model.options.neuron, ...neuronFlags(f['neuron'], f['reset']) } } }
  }
  r.model = { kind: 'spikerir', options: { ...r.model.options, seed: r.seed } }
  if (f['no-hints'] && typeof f['teacher'] === 'string') throw new UsageError('--no-hints and --teacher contradict each other')
  const task = getTask(r.task)
  const fixed = typeof f['channels'] === 'number' ? f['channels'] : undefined
  if (fixed === 2) throw new UsageError('--channels must be 1 (grey) or 3 (RGB), got 2')
  if (f['teacher'] === 'default') {
    // The task's published teacher for the channels asked (or its own, or grey).
    const want = (fixed ?? task.channels ?? 1) as 1 | 3
    const file = defaultTeacher(setupTask(r.task, {}, want))
    if (file === null) throw new UsageError(`--teacher default: --task ${r.task} has no published teacher for ${want} channel(s) on this machine; pass --teacher CKPT, or train one with train-teacher`)
    r.teacher = file
    if (typeof f['hints'] !== 'string' && r.hints === undefined && task.hints[want]) r.hints = [...task.hints[want]!]
  } else if (typeof f['teacher'] === 'string') r.teacher = f['teacher']
  if (f['no-hints']) r.teacher = null
  if (typeof f['hints'] === 'string') r.hints = f['hints'].split(',')
  if (typeof f['gamma'] === 'number') r.gamma = f['gamma']
  if (typeof f['gamma-schedule'] === 'string') r.gammaSchedule = f['gamma-schedule']
  if (f['hint-norm'] && f['raw-hints']) throw new UsageError('--hint-norm and --raw-hints contradict each other')
  if (f['hint-norm']) r.hintNorm = true
  if (f['raw-hints']) r.hintNorm = false
  if (typeof f['output-weight'] === 'number') r.outputWeight = f['output-weight']
  const teacherInfo = r.teacher ? describeModel(r.teacher) : undefined
  const fromTeacher = teacherInfo?.channels
  // DnCNN and U-Net teachers have default taps of their own; others take the task's (PReNet's for derain, LKD-Net's for dehaze).
  if (teacherInfo && r.hints === undefined && teacherInfo.kind !== 'dncnn' && teacherInfo.kind !== 'unet' && task.hints[teacherInfo.channels]) r.hints = [...task.hints[teacherInfo.channels]!]
  if (fixed !== undefined && fromTeacher !== undefined && fixed !== fromTeacher) throw new UsageError(`--channels ${fixed} disagrees with the teacher '${r.teacher}', which restores ${fromTeacher}-channel images`)
  const configured = (r.model.options as { imageChannels?: number }).imageChannels
  applyTask(r, args, (fixed ?? fromTeacher ?? task.channels ?? (configured === 3 ? 3 : 1)) as 1 | 3)
  try {
    parseGammaSchedule(r.gammaSchedule)
  } catch (e) {
    throw new UsageError(`--gamma-schedule: ${e instanceof Error ? e.message : String(e)}`)
  }
  train(r, args)
}

/**
 * Runs a recipe with progress on stderr and the result on stdout. SIGINT or
 * SIGTERM stops it after the current step with a checkpoint there (exit 0,
 * resumable with `--resume`); a second one terminates at once.
 */
export function train(r: Recipe, args: Parsed): void {
  const resume = args.flags['resume']
  if (typeof resume === 'string') {
    const { info, sidecar } = readCheckpointInfo(resume)
    const spec = checkModelSpec(info.config['model'], `--resume '${sidecar}': config.model`)
    if (spec.kind !== r.model.kind) throw new UsageError(`--resume '${sidecar}' is a checkpoint of a ${spec.kind} model, but this run trains a ${r.model.kind}`)
  } else if (r.init) {
    // Checked before any output exists; the weights' shapes are checked as they load.
    const { info, sidecar } = readCheckpointInfo(r.init)
    const spec = checkModelSpec(info.config['model'], `--init '${sidecar}': config.model`)
    if (spec.kind !== r.model.kind) throw new UsageError(`--init '${sidecar}' holds a ${spec.kind} model, but this run trains a ${r.model.kind}`)
  }
  checkWritableFolder(r.outDir, typeof args.flags['out'] === 'string' ? '--out' : 'output folder')
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
