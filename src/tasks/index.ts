/**
 * Restoration tasks as data (DESIGN §6.1): each task says what its images
 * are (channels), how training inputs are made (a degradation of clean
 * images), how test inputs are made (the same degradation with the
 * fixed-seed protocol, or real `input/` + `target/` pairs), the metric's
 * colour space, its default teacher and hint taps, and which options
 * (`sigma`, `quality`, `blur` with its kernel) it takes. `spikeir eval`, `restore`,
 * `distill`, `train-teacher`, `energy` and `demo` read a task from here; no
 * command has a code path of its own for one.
 *
 * @module
 */
import * as fs from 'node:fs'
import * as path from 'node:path'

import { describeRule, UsageError } from '../cli/args'
import { DEFAULT_STUDENT } from '../cli/defaults'
import type { DataSource, Degradation, EvalPair } from '../data/pipeline'
import { evaluatePairs, testPairs, type EvalResult, type OnImage, type Restorer } from '../metrics/evaluate'
import type { ColourSpace, QualityOptions } from '../metrics/quality'

/** The tasks spikeir knows. */
export type TaskName = 'denoise' | 'jpeg' | 'derain' | 'dehaze' | 'deblur'

/** The options a task may take (the CLI's `--sigma`, `--quality`, `--blur` with `--blur-kernel`). */
export type TaskOption = 'sigma' | 'quality' | 'blur'

/** Blur kernels of `--task deblur`: Gaussian, linear motion, defocus disk. */
export type BlurKernel = 'gaussian' | 'motion' | 'defocus'

/** What `--blur` means for each kernel: its size in pixels, range and default. */
export const BLUR_KERNELS: Readonly<Record<BlurKernel, { size: string; rule: { min: number; exclusiveMin?: boolean; max: number }; default: number }>> = {
  gaussian: { size: 'the Gaussian σ in pixels', rule: { min: 0, exclusiveMin: true, max: 32 }, default: 1.6 },
  // The data layer's line kernel takes 1–255 pixels; length 1 is the identity.
  motion: { size: 'the motion length in pixels', rule: { min: 1, max: 255 }, default: 15 },
  // The data layer takes radius 0 (the identity) too, which is no blur to learn to undo.
  defocus: { size: 'the defocus disk radius in pixels', rule: { min: 0, exclusiveMin: true, max: 50 }, default: 4 },
}

/** The kernel names, in the order `--help` lists them. */
export const BLUR_KERNEL_NAMES = Object.keys(BLUR_KERNELS) as BlurKernel[]

/** Whether `k` names a blur kernel. */
export function isBlurKernel(k: unknown): k is BlurKernel {
  return typeof k === 'string' && Object.hasOwn(BLUR_KERNELS, k)
}

/** `k` as a blur kernel; anything else is a usage error naming `--blur-kernel` (after `where`, e.g. `--config run.json: `). */
export function blurKernel(k: unknown, where = ''): BlurKernel {
  if (!isBlurKernel(k)) throw new UsageError(`${where}--blur-kernel must be one of ${BLUR_KERNEL_NAMES.join(', ')}, got ${JSON.stringify(k) ?? String(k)}`)
  return k
}

/** What a task is given: each option only where the task takes it. */
export interface TaskParams {
  /** AWGN σ on the 0–255 scale (denoise), or a [min, max] range for blind training. */
  sigma?: number | [number, number]
  /** JPEG quality 1–100 (jpeg). */
  quality?: number
  /** Blur size in pixels, by the kernel: Gaussian σ, motion length or defocus radius (deblur). */
  blur?: number
  /** Blur kernel (deblur): `gaussian` (the default), `motion` or `defocus`; any other string is refused. */
  blurKernel?: string
}

/** A task's options with its defaults filled in. */
export interface ResolvedParams {
  sigma: number | [number, number] | null
  quality: number | null
  blur: number | null
  blurKernel: BlurKernel | null
}

/** Image channels of a task's data sets, by the model's channels. */
export interface BySetChannels {
  /** For a grey model: a folder under the shared data folder (`../shared/data`), or null when there is none. */
  1: string | null
  /** For an RGB model: likewise. */
  3: string | null
}

/** One restoration task. */
export interface Task {
  name: TaskName
  /** One line for `--help` and reports. */
  summary: string
  /** The options it takes; any other is refused, naming the flag. */
  options: readonly TaskOption[]
  /** Image channels: fixed (3 for RGB tasks), or null for the model's (1 or 3). */
  channels: 1 | 3 | null
  /** The metric's colour space for images of 1 or 3 channels. */
  space: (channels: 1 | 3) => ColourSpace
  /** 8-bit quantisation of the output before scoring, where the published protocol scores saved PNGs. */
  quantize?: QualityOptions['quantize']
  /** Option defaults (the blur size's is the kernel's, {@link BLUR_KERNELS}). */
  defaults: { sigma?: number; quality?: number; blurKernel?: BlurKernel }
  /** Training inputs: a degradation of clean images. */
  trainDegradation: (p: ResolvedParams) => Degradation
  /**
   * Test inputs made from clean images (the fixed-seed protocol), or null
   * when the task's test sets are real pairs (`input/` + `target/`) only.
   */
  testDegradation: ((p: ResolvedParams) => Degradation) | null
  /** Default clean training set under the shared data folder, by channels. */
  trainSet: BySetChannels
  /** File stems of the training set to leave out: test scenes hidden in it. */
  trainExclude: readonly string[]
  /** Default test set under the shared data folder, by channels (a paired folder or clean images). */
  testSet: BySetChannels
  /** Default teacher, a file under the shared models folder, for these channels and options (null: none published; train one). */
  teacher: (channels: 1 | 3, p: ResolvedParams) => string | null
  /** Default hint pairs `studentTap:teacherTap` for the default teacher, by channels. */
  hints: { 1: readonly string[] | null; 3: readonly string[] | null }
  /** What the published figure of the default teacher is measured on, for reports. */
  protocol: string
  /**
   * The bundled student (a sidecar under `weights/`) used when a command is
   * given no `--model`, for these options; null where none was trained for them.
   */
  bundled: (p: ResolvedParams) => string | null
}

/**
 * The 67 CBSD432 images that are Rain100L test backgrounds (pixel-identical
 * to 75 of its 100 targets; the other 25 are CBSD68 scenes): a model
 * trained on CBSD432 with synthetic rain leaves them out before any Rain100L
 * figure is reported (`shared/data/README.md`).
 */
export const RAIN100L_SCENES_IN_CBSD432: readonly string[] = [
  '2092', '20008', '22013', '22090', '22093', '23025', '23080', '23084', '24004', '24063', '25098', '26031', '27059', '28075', '28096', '100075',
  '105019', '183055', '183087', '187003', '187029', '187039', '187071', '187083', '188005', '188063', '188091', '189003', '189011', '196015',
  '198004', '198023', '198054', '202012', '207056', '209070', '216041', '216053', '216066', '225017', '227040', '227046', '231015', '232038',
  '236017', '238011', '239007', '239096', '242078', '245051', '246016', '246053', '247085', '249061', '249087', '253036', '254033', '254054',
  '260081', '268002', '271008', '271031', '274007', '277095', '285036', '286092', '292066',
]

const byChannels = (c: 1 | 3): ColourSpace => (c === 3 ? 'rgb' : 'grey')
const DNCNN_HINTS = ['encoder1:layer5', 'decoder1:layer10', 'refine:layer15'] as const

/** AWGN at the task's σ: fixed, or uniform over a range (blind training). */
function awgn(p: ResolvedParams): Degradation {
  const s = p.sigma ?? 25
  return typeof s === 'number' ? { kind: 'awgn', sigma: s } : { kind: 'awgn', sigmaMin: s[0], sigmaMax: s[1] }
}

/**
 * The blur of the task's kernel and size. A motion blur has no angle: the
 * data layer draws it uniformly over [0°, 180°) per training patch, and per
 * test image from the image's seed (fixed-seed protocol), so a test set is
 * blurred the same way on every run.
 */
function blurOf(p: ResolvedParams): Degradation {
  const kernel = p.blurKernel ?? 'gaussian'
  const size = p.blur ?? BLUR_KERNELS[kernel].default
  if (kernel === 'motion') return { kind: 'motionBlur', length: size }
  if (kernel === 'defocus') return { kind: 'defocus', radius: size }
  return { kind: 'blur', sigma: size }
}

/** Every task, by name. */
export const TASKS: Readonly<Record<TaskName, Task>> = {
  denoise: {
    name: 'denoise',
    summary: 'additive white Gaussian noise (grey or colour, by the model)',
    options: ['sigma'],
    channels: null,
    space: byChannels,
    defaults: { sigma: 25 },
    trainDegradation: awgn,
    testDegradation: awgn,
    trainSet: { 1: 'train400', 3: 'cbsd432' },
    trainExclude: [],
    testSet: { 1: 'bsd68', 3: 'cbsd68' },
    // DnCNN-S where one was published for the σ, else the blind DnCNN-B.
    teacher: (c, p) => (c === 3 ? 'cdncnn_b_color.safetensors' : typeof p.sigma === 'number' && [15, 25, 50].includes(p.sigma) ? `dncnn_s_sigma${p.sigma}.safetensors` : 'dncnn_b_gray.safetensors'),
    hints: { 1: DNCNN_HINTS, 3: DNCNN_HINTS },
    protocol: 'noise N(0, (σ/255)²) from seed 1000 + i, not clipped; PSNR/SSIM on grey (BSD68) or RGB (CBSD68)',
    // The grey student of the σ asked (15, 25 or 50), else the σ = 25 one: the width-10
    // student (README, "A longer run"; the colour one is weights/spikerir_tiny_color_sigma25.json).
    bundled: (p) => (p.sigma === 15 || p.sigma === 50 ? `spikerir_tiny_sigma${p.sigma}.json` : DEFAULT_STUDENT),
  },
  jpeg: {
    name: 'jpeg',
    summary: "JPEG compression artefacts (the grey track; the `image` crate's encoder)",
    options: ['quality'],
    channels: null,
    space: byChannels,
    defaults: { quality: 10 },
    trainDegradation: (p) => ({ kind: 'jpeg', quality: p.quality ?? 10 }),
    testDegradation: (p) => ({ kind: 'jpeg', quality: p.quality ?? 10 }),
    trainSet: { 1: 'train400', 3: 'cbsd432' },
    trainExclude: [],
    testSet: { 1: 'jpeg/classic5', 3: 'jpeg/live1' },
    teacher: (c) => (c === 1 ? 'dncnn3.safetensors' : null),
    hints: { 1: DNCNN_HINTS, 3: null },
    protocol: 'the decoded JPEG of each clean image at quality q; PSNR/SSIM on grey (Classic5, LIVE1 grey) or RGB (LIVE1)',
    bundled: (p) => (p.quality === 10 ? 'spikerir_tiny_jpeg_q10.json' : null),
  },
  derain: {
    name: 'derain',
    summary: 'rain streaks (RGB; PSNR/SSIM on the Y channel; trained on synthetic streaks)',
    options: [],
    channels: 3,
    space: () => 'y',
    // PReNet's test script saves uint8(255·x) (truncated) before MATLAB scores it.
    quantize: 'truncate',
    defaults: {},
    // Synthetic streaks in the Rain100L style (the data layer's defaults are fitted to its pairs);
    // a folder of clean images is tested with them too (seeded), a paired folder as it is.
    trainDegradation: () => ({ kind: 'rain' }),
    testDegradation: () => ({ kind: 'rain' }),
    trainSet: { 1: null, 3: 'cbsd432' },
    trainExclude: RAIN100L_SCENES_IN_CBSD432,
    testSet: { 1: null, 3: 'derain/rain100l' },
    teacher: () => 'prenet_rain100l.safetensors',
    hints: { 1: null, 3: ['encoder1:stage6.conv0', 'decoder1:stage6.h', 'refine:stage6.res5'] },
    protocol: 'Rain100L pairs; output clipped and truncated to 8 bits; PSNR/SSIM on Y (BT.601, MATLAB rgb2ycbcr), full image',
    bundled: () => 'spikerir_tiny_derain.json',
  },
  dehaze: {
    name: 'dehaze',
    summary: 'haze (RGB; PSNR/SSIM on RGB; trained on synthetic haze)',
    options: [],
    channels: 3,
    space: () => 'rgb',
    defaults: {},
    // Atmospheric scattering with random smooth depth and airlight (defaults fitted to SOTS-indoor).
    trainDegradation: () => ({ kind: 'haze' }),
    testDegradation: () => ({ kind: 'haze' }),
    trainSet: { 1: null, 3: 'cbsd432' },
    trainExclude: [],
    testSet: { 1: null, 3: 'dehaze/sots_indoor' },
    teacher: () => 'lkdnet_t_its_dehaze.safetensors',
    hints: { 1: null, 3: ['decoder2:decoder2', 'decoder1:decoder1'] },
    protocol: 'SOTS-indoor, 50-pair subset; float output clipped to [0, 1]; PSNR/SSIM on RGB, full image',
    bundled: () => 'spikerir_tiny_dehaze.json',
  },
  deblur: {
    name: 'deblur',
    summary: 'Gaussian, motion or defocus blur (--blur-kernel; grey or colour, by the model)',
    options: ['blur'],
    channels: null,
    space: byChannels,
    defaults: { blurKernel: 'gaussian' },
    trainDegradation: blurOf,
    testDegradation: blurOf,
    trainSet: { 1: 'train400', 3: 'cbsd432' },
    trainExclude: [],
    testSet: { 1: 'bsd68', 3: 'cbsd68' },
    teacher: () => null,
    hints: { 1: null, 3: null },
    protocol:
      'each clean image blurred (reflected borders) by a Gaussian of σ pixels, a motion line of L pixels at an angle drawn from seed (1000, i), or a defocus disk of radius r; PSNR/SSIM on grey or RGB',
    bundled: (p) => (p.blurKernel === 'gaussian' && p.blur === 1.6 ? 'spikerir_tiny_deblur_gauss1.6.json' : null),
  },
}

/** The task names, in the order `--help` lists them. */
export const TASK_NAMES = Object.keys(TASKS) as TaskName[]

/** The task called `name`; an unknown name is a usage error naming `--task`. */
export function getTask(name: string): Task {
  if (!Object.hasOwn(TASKS, name)) throw new UsageError(`unknown --task '${name}' (${TASK_NAMES.join(', ')})`)
  return TASKS[name as TaskName]
}

/** A task with its options and channels decided: what every command works from. */
export interface TaskSetup {
  task: Task
  params: ResolvedParams
  /** Image channels of inputs and outputs. */
  channels: 1 | 3
  /** How PSNR/SSIM are taken. */
  metric: QualityOptions & { space: ColourSpace }
  /** Training inputs from clean images. */
  trainDegradation: Degradation
  /** Test inputs from clean images, or null where the task tests on real pairs only. */
  testDegradation: Degradation | null
}

/**
 * Decides a task: its options checked (an option the task does not take is
 * a usage error naming the flag) and filled with defaults, and its channels
 * (`channels`: the model's, where the task does not fix them; default 1).
 * `where` prefixes messages, e.g. `--config run.json: `.
 */
export function setupTask(name: string, params: TaskParams = {}, channels?: number, where = ''): TaskSetup {
  const task = getTask(name)
  // `blurKernel` belongs to the `blur` option: a task takes both or neither.
  for (const [k, option, flag] of [['sigma', 'sigma', 'sigma'], ['quality', 'quality', 'quality'], ['blur', 'blur', 'blur'], ['blurKernel', 'blur', 'blur-kernel']] as const) {
    if (params[k] !== undefined && !task.options.includes(option)) {
      const takes = task.options.length ? `its options: ${task.options.flatMap((o) => (o === 'blur' ? ['--blur', '--blur-kernel'] : [`--${o}`])).join(', ')}` : 'it takes no options'
      throw new UsageError(`${where}--${flag} does not apply to --task ${task.name} (${takes})`)
    }
  }
  if (params.quality !== undefined && !(Number.isInteger(params.quality) && params.quality >= 1 && params.quality <= 100)) {
    throw new UsageError(`${where}--quality must be an integer ≥ 1 and ≤ 100, got ${JSON.stringify(params.quality)}`)
  }
  const given = params.blurKernel !== undefined ? blurKernel(params.blurKernel, where) : undefined
  const kernel: BlurKernel | null = task.options.includes('blur') ? (given ?? task.defaults.blurKernel ?? 'gaussian') : null
  if (params.blur !== undefined && kernel !== null) {
    // The size's range is the kernel's, so the message names both flags.
    const { size, rule } = BLUR_KERNELS[kernel]
    const b = params.blur
    const ok = typeof b === 'number' && Number.isFinite(b) && (rule.exclusiveMin ? b > rule.min : b >= rule.min) && b <= rule.max
    if (!ok) throw new UsageError(`${where}--blur must be ${describeRule(rule)}, got ${typeof b === 'number' ? String(b) : (JSON.stringify(b) ?? String(b))} (${size} of --blur-kernel ${kernel})`)
  }
  if (channels !== undefined && channels !== 1 && channels !== 3) throw new UsageError(`${where}images have 1 or 3 channels, not ${channels}`)
  const c: 1 | 3 = task.channels ?? ((channels as 1 | 3 | undefined) ?? 1)
  if (task.channels !== null && channels !== undefined && channels !== task.channels) {
    throw new UsageError(`${where}--task ${task.name} restores ${task.channels === 3 ? 'RGB' : 'grey'} images (${task.channels} channels), but the model has ${channels}`)
  }
  const p: ResolvedParams = {
    sigma: task.options.includes('sigma') ? (params.sigma ?? task.defaults.sigma ?? null) : null,
    quality: task.options.includes('quality') ? (params.quality ?? task.defaults.quality ?? null) : null,
    blur: kernel !== null ? (params.blur ?? BLUR_KERNELS[kernel].default) : null,
    blurKernel: kernel,
  }
  const space = task.space(c)
  return {
    task,
    params: p,
    channels: c,
    metric: { space, ...(task.quantize ? { quantize: task.quantize } : {}) },
    trainDegradation: task.trainDegradation(p),
    testDegradation: task.testDegradation ? task.testDegradation(p) : null,
  }
}

/**
 * The shared data and weights folder (`SPIKEIR_SHARED`, else `../shared`
 * beside the package), or null when it is absent: default data sets and
 * teachers are looked up there.
 */
export function sharedRoot(): string | null {
  const env = process.env['SPIKEIR_SHARED']
  const dir = env && env !== '' ? path.resolve(env) : path.resolve(__dirname, '..', '..', '..', '..', 'shared')
  return fs.existsSync(path.join(dir, 'data')) ? dir : null
}

/** A default set or teacher of a task as a path, or null (none, or no shared folder). */
function sharedPath(kind: 'data' | 'models', rel: string | null): string | null {
  const root = sharedRoot()
  return rel === null || root === null ? null : path.join(root, kind, rel)
}

/** The task's default test set on this machine, or null. */
export function defaultTestSet(setup: TaskSetup): string | null {
  return sharedPath('data', setup.task.testSet[setup.channels])
}

/** The task's default training set on this machine, or null. */
export function defaultTrainSet(setup: TaskSetup): string | null {
  return sharedPath('data', setup.task.trainSet[setup.channels])
}

/** The task's default teacher file on this machine, or null. */
export function defaultTeacher(setup: TaskSetup): string | null {
  const file = sharedPath('models', setup.task.teacher(setup.channels, setup.params))
  return file !== null && fs.existsSync(file) ? file : null
}

/**
 * Where a folder's test images are: real pairs when it holds `input/` and
 * `target/` (deraining, dehazing), the clean images of `target/` when it
 * holds only that (the JPEG sets), else the folder's own images.
 */
export function folderSource(dir: string, channels: 1 | 3): DataSource {
  const sub = (n: string) => fs.existsSync(path.join(dir, n)) && fs.statSync(path.join(dir, n)).isDirectory()
  if (sub('input') && sub('target')) return { kind: 'paired', inputDir: path.join(dir, 'input'), targetDir: path.join(dir, 'target'), channels }
  if (sub('target')) return { kind: 'folder', dir: path.join(dir, 'target'), channels }
  return { kind: 'folder', dir, channels }
}

/** Options of {@link taskPairs} and {@link evaluateTask}. */
export interface TaskPairsOptions {
  /** Image i is degraded from seed `seed + i` (default 1000). */
  seed?: number
  /** Only the first N images (in file order). */
  limit?: number
}

/**
 * The task's test pairs on `data` (a folder, see {@link folderSource}, or a
 * data source): real pairs as they are, clean images degraded by the task's
 * test degradation with the fixed-seed protocol. A task that tests on real
 * pairs only refuses a folder of clean images. The caller disposes the pairs.
 */
export function taskPairs(setup: TaskSetup, data: string | DataSource, options: TaskPairsOptions = {}): EvalPair[] {
  const source = typeof data === 'string' ? folderSource(data, setup.channels) : data
  const paired = source.kind === 'paired'
  if (!paired && setup.testDegradation === null) {
    const where = source.kind === 'folder' ? `'${source.dir}'` : 'the data'
    throw new UsageError(`--task ${setup.task.name} tests on real pairs: ${where} must hold input/ and target/ folders of the same file names`)
  }
  return testPairs(source, paired ? { kind: 'none' } : setup.testDegradation!, options)
}

/**
 * Evaluates `model` on the task's test pairs of `data`, scored in the task's
 * colour space; the result names the space.
 */
export function evaluateTask(model: Restorer, setup: TaskSetup, data: string | DataSource, options: TaskPairsOptions = {}, onImage?: OnImage): EvalResult {
  const pairs = taskPairs(setup, data, options)
  try {
    return evaluatePairs(model, pairs, onImage, setup.metric)
  } finally {
    for (const p of pairs) {
      p.input.dispose()
      p.target.dispose()
    }
  }
}

/** The degradation and options in words, for output: `σ = 25`, `quality 10`, `real pairs`. */
export function describeSetup(setup: TaskSetup, paired: boolean): string {
  if (paired) return 'real pairs'
  const p = setup.params
  if (p.sigma !== null) return typeof p.sigma === 'number' ? `σ = ${p.sigma}` : `σ ∈ [${p.sigma[0]}, ${p.sigma[1]}]`
  if (p.quality !== null) return `JPEG quality ${p.quality}`
  if (p.blur !== null) {
    if (p.blurKernel === 'motion') return `motion blur of ${p.blur} px, angle per image from the seed`
    if (p.blurKernel === 'defocus') return `defocus blur, disk radius ${p.blur} px`
    return `Gaussian blur σ = ${p.blur} px`
  }
  return 'as stored'
}
