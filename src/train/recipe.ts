/**
 * Recipes: everything a training run needs, as plain JSON (a `--config`
 * file, or built from CLI flags), turned into models, data, the H-KD loss and
 * a {@link trainStudent} job. One place, used by `distill`, `train-teacher`
 * and `demo`.
 *
 * @module
 */
import { DataLoader, type DataSource } from '../data/pipeline'
import { HKD, hintStatistics, parseGammaSchedule, type HintPair, type HintSource, type HintStatistics } from '../distill/hkd'
import { evaluatePairs } from '../metrics/evaluate'
import { buildModel, loadModel, type ModelSpec } from '../models/load'
import { SpikerIR, spikerIRConfig, type SpikerIRConfig } from '../models/spikerir'
import type { Module } from '../nn/module'
import { setupTask, taskPairs, type BlurKernel, type TaskName, type TaskParams, type TaskSetup } from '../tasks'
import type { Tensor } from '../tensor'
import { loadCheckpoint, readCheckpointInfo } from './checkpoint'
import { trainStudent, type BatchStream, type StepRecord, type TrainableModel, type TrainSettings } from './distill'

/** A model with hint taps and their channel counts. */
type Tapped = TrainableModel & { tapChannels(tap: string): number }

/** A training run: the trainer's settings plus what to build them from. */
export interface Recipe extends TrainSettings {
  /** The model to train (the student, or a teacher for `train-teacher`). */
  model: ModelSpec
  /**
   * Weights to start the model from (a checkpoint or an exported student of
   * the same architecture): fine-tuning, with a fresh optimizer, schedule and
   * step count; null: a random initialisation. Ignored on resume, where the
   * checkpoint's weights win.
   */
  init: string | null
  /** A frozen teacher: a checkpoint or published DnCNN weights; null trains without hints. */
  teacher: string | null
  /** Hint pairs `studentTap:teacherTap`; default by teacher kind. */
  hints?: string[]
  gamma: number
  gammaSchedule: string
  /** Standardise each teacher tap's channels by their statistics over training batches. */
  hintNorm: boolean
  /** Weight β of output distillation (L1 to the teacher's restored image); 0: off. */
  outputWeight: number
  lambdaFft: number
  data: DataSource
  /** The restoration task (see `src/tasks`): its degradation, validation pairs and metric. */
  task: TaskName
  /** AWGN σ on the 0–255 scale, or a [min, max] range (blind training); tasks that take no σ ignore it. */
  sigma: number | [number, number]
  /** JPEG quality (task `jpeg`; null: the task's default). */
  quality: number | null
  /** Blur size in pixels, by the kernel: Gaussian σ, motion length or defocus radius (task `deblur`; null: the kernel's default). */
  blur: number | null
  /**
   * Blur kernel of task `deblur`: `gaussian`, `motion` or `defocus` (null:
   * `gaussian`; recipes written before kernels existed have none and blur
   * as they did).
   */
  blurKernel: BlurKernel | null
  patch: number
  /**
   * Random patch sides: each step crops its batch to a side drawn from
   * [min, max] in steps of 4 (the loader makes `max`-sided patches); null:
   * always `patch`.
   */
  patchRange: [number, number] | null
  /** Decay of the weight average (0: none); see {@link TrainSettings.ema}. */
  ema: number
  batch: number
  /** Validation images (whole, noise from a fixed seed) and how many of them. */
  val: { source: DataSource; limit: number } | null
  name: string
}

/** Defaults of every field but the output folder. */
export function defaultRecipe(outDir: string): Recipe {
  return {
    model: { kind: 'spikerir', options: { width: 8, timeSteps: 4, seed: 0 } },
    init: null,
    teacher: null,
    // The hint study's choice (README, "Hint-design study"): standardised
    // hints at γ = 0.01 plus the teacher's output as a second target. Raw
    // features at γ = 0.12 (the design before it) started slower than no
    // teacher at all and never overtook it.
    gamma: 0.01,
    gammaSchedule: 'constant',
    hintNorm: true,
    outputWeight: 0.5,
    lambdaFft: 0.1,
    data: { kind: 'deadLeaves', count: 200, size: 96, seed: 1 },
    task: 'denoise',
    sigma: 25,
    quality: null,
    blur: null,
    blurKernel: null,
    patch: 48,
    patchRange: null,
    ema: 0,
    batch: 8,
    steps: 1000,
    lr: 1e-3,
    warmup: 50,
    minLr: 1e-5,
    weightDecay: 1e-4,
    clipNorm: 1,
    seed: 0,
    val: { source: { kind: 'deadLeaves', count: 4, size: 128, seed: 2 }, limit: 4 },
    valEvery: 0,
    checkpointEvery: 0,
    outDir,
    name: 'student',
  }
}

/** Batches (of `batch` patches) that estimate hint statistics, and the offset of their seed. */
const HINT_STATS_BATCHES = 16
const HINT_STATS_SEED = 7919

/** The inputs of a loader's first `n` batches, each disposed after use; then the loader. */
function* loaderInputs(loader: DataLoader, n: number): Generator<Tensor> {
  try {
    for (let i = 0; i < n; i++) {
      const b = loader.next()
      try {
        yield b.input
      } finally {
        b.input.dispose()
        b.target.dispose()
      }
    }
  } finally {
    loader.dispose()
  }
}

/**
 * A loader's batches cropped to a random side per step, from [min, max] in
 * steps of 4, at a random offset; side and offset depend only on (seed,
 * step), so a resumed run crops as the uninterrupted one did. `loader`
 * makes `max`-sided patches.
 */
export function randomSides(loader: BatchStream, [min, max]: [number, number], seed: number): BatchStream {
  return {
    next() {
      const b = loader.next()
      const r = mulberry(seed * 1_000_003 + b.step)
      const side = min + 4 * Math.floor(r() * (Math.floor((max - min) / 4) + 1))
      if (side >= max) return b
      const y = Math.floor(r() * (max - side + 1))
      const x = Math.floor(r() * (max - side + 1))
      const crop = (t: Tensor) => {
        const rows = t.split(2, [y, side, max - side - y].filter((n, i) => n > 0 || i === 1))
        const band = rows[y > 0 ? 1 : 0]!
        const cols = band.split(3, [x, side, max - side - x].filter((n, i) => n > 0 || i === 1))
        const out = cols[x > 0 ? 1 : 0]!
        for (const u of [...rows, ...cols]) if (u !== out) u.dispose()
        t.dispose()
        return out
      }
      return { input: crop(b.input), target: crop(b.target), step: b.step }
    },
    dispose: () => loader.dispose(),
  }
}

/** A small seeded generator (mulberry32) for choices that must not touch the data's random streams. */
function mulberry(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * The recipe's task with its options (only those the task takes: a recipe
 * always carries a σ) and the model's image channels. `where` prefixes
 * messages, e.g. `--config run.json: `.
 */
export function recipeTask(recipe: Recipe, where = ''): TaskSetup {
  const p: TaskParams = {}
  const options = setupTask(recipe.task).task.options
  if (options.includes('sigma')) p.sigma = recipe.sigma
  if (options.includes('quality') && recipe.quality !== null) p.quality = recipe.quality
  if (options.includes('blur') && recipe.blur !== null) p.blur = recipe.blur
  // `?? null`: a recipe object made before the field existed has none.
  if (options.includes('blur') && (recipe.blurKernel ?? null) !== null) p.blurKernel = recipe.blurKernel!
  const channels = (recipe.model.options as { imageChannels?: number }).imageChannels
  return setupTask(recipe.task, p, recipe.model.kind === 'prenet' ? 3 : channels, where)
}

/** Default hint pairs for a teacher: DnCNN layers 5/10/15, or matching U-Net levels. */
function defaultHints(teacher: ModelSpec): string[] {
  return teacher.kind === 'dncnn' ? ['encoder1:layer5', 'decoder1:layer10', 'refine:layer15'] : ['encoder1:encoder1', 'encoder2:encoder2', 'decoder2:decoder2', 'decoder1:decoder1']
}

/**
 * `init`'s weights into a new model: by name and shape, or, for a SpikerIR
 * with more blocks per level than the init student, grown from it (the added
 * blocks start near the identity, see {@link SpikerIR.loadGrown}).
 */
function initWeights(file: string, model: Module): void {
  const from = readCheckpointInfo(file).info.config['model'] as { kind?: unknown; options?: Partial<SpikerIRConfig> } | undefined
  if (model instanceof SpikerIR && from?.kind === 'spikerir') {
    const fromBlocks = spikerIRConfig('tiny', from.options ?? {}).blocks
    if (fromBlocks.join(',') !== model.config.blocks.join(',')) {
      loadCheckpoint(file, model, { load: (tensors) => model.loadGrown(tensors, fromBlocks) })
      return
    }
  }
  loadCheckpoint(file, model)
}

/**
 * Runs a recipe; returns the final validation metrics and the last step's record.
 *
 * @example
 * ```ts
 * // Two steps of a student without a teacher (the baseline), on tiny patches.
 * const recipe = { ...defaultRecipe('run'), steps: 2, patch: 16, batch: 2, val: { source: { kind: 'deadLeaves', count: 1, size: 32 }, limit: 1 } } as const
 * const { metrics, last } = runRecipe({ ...recipe, teacher: null })
 * console.log(metrics?.['psnr'], last?.loss) // the student is at run/student.json
 * ```
 */
export function runRecipe(
  recipe: Recipe,
  options: { resume?: string; onStep?: (r: StepRecord) => void; onValidation?: (step: number, m: Record<string, number>) => void } = {},
): { metrics: Record<string, number> | null; last: StepRecord | null; parameters: number } {
  const model = buildModel(recipe.model) as unknown as Tapped
  // Recipes written before `init` existed have none (undefined).
  if (recipe.init && !options.resume) {
    try {
      initWeights(recipe.init, model as unknown as Module)
    } catch (e) {
      model.dispose()
      throw new Error(`init: ${e instanceof Error ? e.message : String(e)}`)
    }
  }
  const teacherLoaded = recipe.teacher ? loadModel(recipe.teacher) : null
  const teacher = teacherLoaded?.model as (Module & Tapped) | undefined
  const hintNames = teacherLoaded ? (recipe.hints ?? defaultHints(teacherLoaded.spec)) : []
  const pairs: HintPair[] = hintNames.map((h) => {
    const [s, t] = h.split(':')
    if (!s || !t) throw new Error(`hint '${h}' must be studentTap:teacherTap`)
    return { student: s, teacher: t, studentChannels: model.tapChannels(s), teacherChannels: teacher!.tapChannels(t) }
  })
  const source = (m: Tapped): HintSource => ({ forwardHints: (x, taps) => m.forwardHints(x, taps) })
  const setup = recipeTask(recipe)
  const degradation = setup.trainDegradation
  // Statistics from their own batches (another seed than training's), the same on a resumed run.
  const stats: Map<string, HintStatistics> | null =
    teacher && recipe.hintNorm && recipe.gamma > 0 && pairs.length
      ? hintStatistics(teacher, [...new Set(pairs.map((p) => p.teacher))], loaderInputs(new DataLoader({ source: recipe.data, patch: recipe.patch, batch: recipe.batch, degradation, seed: recipe.seed + HINT_STATS_SEED }), HINT_STATS_BATCHES))
      : null
  // The teacher goes in as itself (a module), so H-KD can run it in evaluation mode.
  const hkd = new HKD(source(model), teacher ?? null, pairs, {
    lambdaFft: recipe.lambdaFft,
    gamma: recipe.gamma,
    schedule: parseGammaSchedule(recipe.gammaSchedule),
    outputWeight: recipe.outputWeight,
    ...(stats ? { hintStats: stats } : {}),
    seed: recipe.seed,
  })
  // The noise protocol of `spikeir eval`, so validation figures and eval agree.
  // Validation is at one σ (25 for a blind range), as eval's protocol is.
  const valSetup = Array.isArray(recipe.sigma) && setup.params.sigma !== null ? recipeTask({ ...recipe, sigma: 25 }) : setup
  const valPairs = recipe.val ? taskPairs(valSetup, recipe.val.source, { limit: recipe.val.limit }) : []
  try {
    const job = {
      student: model,
      hkd,
      data: (startStep: number) =>
        recipe.patchRange
          ? randomSides(new DataLoader({ source: recipe.data, patch: recipe.patchRange[1], batch: recipe.batch, degradation, seed: recipe.seed, startStep }), recipe.patchRange, recipe.seed)
          : new DataLoader({ source: recipe.data, patch: recipe.patch, batch: recipe.batch, degradation, seed: recipe.seed, startStep }),
      settings: {
        steps: recipe.steps,
        lr: recipe.lr,
        warmup: recipe.warmup,
        minLr: recipe.minLr,
        weightDecay: recipe.weightDecay,
        clipNorm: recipe.clipNorm,
        seed: recipe.seed,
        valEvery: recipe.valEvery,
        checkpointEvery: recipe.checkpointEvery,
        outDir: recipe.outDir,
        name: recipe.name,
        ema: recipe.ema,
      },
      config: recipe as unknown as Record<string, unknown>,
      ...(valPairs.length ? { validate: (m: TrainableModel) => { const r = evaluatePairs(m, valPairs, undefined, valSetup.metric); return { psnr: r.psnr, ssim: r.ssim } } } : {}),
      ...(options.resume ? { resume: options.resume } : {}),
      ...(options.onStep ? { onStep: options.onStep } : {}),
      ...(options.onValidation ? { onValidation: options.onValidation } : {}),
    }
    const { last, validation } = trainStudent(job)
    return { metrics: validation.at(-1)?.metrics ?? null, last, parameters: model.numParameters() }
  } finally {
    for (const p of valPairs) {
      p.input.dispose()
      p.target.dispose()
    }
    teacher?.dispose()
    for (const st of stats?.values() ?? []) {
      st.mean.dispose()
      st.std.dispose()
    }
    hkd.dispose()
    model.dispose()
  }
}
