/**
 * H-KD: asymmetric ANN→SNN hint distillation (DESIGN §5). Named feature taps
 * of a frozen teacher and of the student are compared through learnable
 * 1×1 adapters (student features averaged over T, mapped to the teacher's
 * channels and resized to its resolution):
 *
 *   L = L1(ŷ, y) + λ·L_FFT(ŷ, y) + γ(step)·Σ_taps MSE(adapter(F_S), N(F_T))
 *       + β·L1(ŷ, ŷ_T)
 *
 * with λ = 0.1 and γ = 0.12 by default. N is the identity, or (with hint
 * statistics) each teacher channel standardised by its mean and standard
 * deviation over training batches, so that γ weighs every tap and every
 * teacher alike. β (default 0) adds output distillation: the teacher's
 * restored image ŷ_T as a second target. γ = β = 0 (or no teacher) is the
 * baseline every distillation claim is measured against. These are the
 * loss's own defaults; `spikeir distill` (and `defaultRecipe`) use the
 * hint study's design instead: standardised hints, γ = 0.01, β = 0.5.
 *
 * @module
 */
import { Conv2d, ModuleList } from '../nn/layers'
import { Module } from '../nn/module'
import { noGrad, Tensor } from '../tensor'

/** A model that exposes named intermediate features ("hint taps"). */
export interface HintSource {
  /**
   * The output for `x` and the features at `taps`, by tap name; the caller
   * disposes them all. Unknown tap names are errors that list the known ones.
   */
  forwardHints(x: Tensor, taps: readonly string[]): { output: Tensor; features: Map<string, Tensor> }
  /**
   * Only the features at `taps`, computing no further than the deepest one
   * (a teacher's layers past its last hint cost time and teach nothing).
   * Optional: without it the teacher runs whole and its output is dropped.
   */
  forwardFeatures?(x: Tensor, taps: readonly string[]): Map<string, Tensor>
}

/** How γ changes over training. */
export type GammaSchedule =
  | { kind: 'constant' }
  | { kind: 'linear'; steps: number }
  | { kind: 'cosine'; steps: number }
  | { kind: 'offAfter'; step: number }
  /** A linear ramp from 0 over `warmup` steps, then a cosine decay to 0 at `steps`. */
  | { kind: 'warmupCosine'; warmup: number; steps: number }

/** γ at `step` (counted from 0) for a base weight `gamma`. */
export function gammaAt(gamma: number, schedule: GammaSchedule, step: number): number {
  switch (schedule.kind) {
    case 'constant':
      return gamma
    case 'linear':
      return gamma * Math.max(0, 1 - step / schedule.steps)
    case 'cosine':
      return step >= schedule.steps ? 0 : 0.5 * gamma * (1 + Math.cos((Math.PI * step) / schedule.steps))
    case 'offAfter':
      return step < schedule.step ? gamma : 0
    case 'warmupCosine': {
      if (step >= schedule.steps) return 0
      if (step < schedule.warmup) return (gamma * (step + 1)) / schedule.warmup
      const t = (step - schedule.warmup) / (schedule.steps - schedule.warmup)
      return 0.5 * gamma * (1 + Math.cos(Math.PI * t))
    }
  }
}

/** Parses `constant`, `linear:STEPS`, `cosine:STEPS`, `off-after:STEP` or `warmup-cosine:WARMUP:STEPS`. */
export function parseGammaSchedule(text: string): GammaSchedule {
  const [kind, arg, arg2] = text.split(':')
  const n = Number(arg)
  const needN = () => {
    if (!Number.isInteger(n) || n <= 0) throw new Error(`gamma schedule '${text}': needs a positive step count, e.g. ${kind}:1000`)
    return n
  }
  switch (kind) {
    case 'constant':
      return { kind: 'constant' }
    case 'linear':
      return { kind: 'linear', steps: needN() }
    case 'cosine':
      return { kind: 'cosine', steps: needN() }
    case 'off-after':
      return { kind: 'offAfter', step: needN() }
    case 'warmup-cosine': {
      const warmup = Number(arg)
      const steps = Number(arg2)
      if (!Number.isInteger(warmup) || warmup <= 0 || !Number.isInteger(steps) || steps <= warmup) {
        throw new Error(`gamma schedule '${text}': needs warmup-cosine:WARMUP:STEPS with 0 < WARMUP < STEPS, e.g. warmup-cosine:100:1000`)
      }
      return { kind: 'warmupCosine', warmup, steps }
    }
    default:
      throw new Error(`unknown gamma schedule '${text}' (constant, linear:N, cosine:N, off-after:N, warmup-cosine:W:N)`)
  }
}

/**
 * Per-channel mean and standard deviation of a teacher's features at `taps`
 * over `batches` (inputs of the training distribution), for standardised
 * hints. The teacher runs in evaluation mode without a tape. A channel whose
 * standard deviation is below 5 % of its tap's mean one (a ReLU channel
 * that hardly ever fires) is floored there, so its noise is not amplified.
 */
export function hintStatistics(teacher: HintSource, taps: readonly string[], batches: Iterable<Tensor>): Map<string, HintStatistics> {
  const modules = teacher instanceof Module ? teacher.namedModules().map(([, m]) => m) : []
  const modes = modules.map((m) => m.training)
  for (const m of modules) m.training = false
  const sums = new Map<string, { s: Float64Array; s2: Float64Array; n: number }>()
  try {
    for (const x of batches) {
      noGrad(() => {
        const features = teacher.forwardFeatures ? teacher.forwardFeatures(x, taps) : (() => {
          const r = teacher.forwardHints(x, taps)
          r.output.dispose()
          return r.features
        })()
        for (const [tap, f] of features) {
          const c = f.shape[1]!
          const m = f.mean([0, 2, 3])
          const sq = f.mul(f)
          const m2 = sq.mean([0, 2, 3])
          const [mv, m2v] = [m.toFloat32Array(), m2.toFloat32Array()]
          for (const t of [m, sq, m2, f]) t.dispose()
          const acc = sums.get(tap) ?? { s: new Float64Array(c), s2: new Float64Array(c), n: 0 }
          for (let i = 0; i < c; i++) {
            acc.s[i]! += mv[i]!
            acc.s2[i]! += m2v[i]!
          }
          acc.n++
          sums.set(tap, acc)
        }
      })
    }
  } finally {
    modules.forEach((m, i) => (m.training = modes[i]!))
  }
  const stats = new Map<string, HintStatistics>()
  for (const tap of taps) {
    const acc = sums.get(tap)
    if (!acc) throw new Error(`hint statistics: no batches for the teacher tap '${tap}'`)
    const c = acc.s.length
    const mean = Array.from(acc.s, (v) => v / acc.n)
    const std = Array.from(acc.s2, (v, i) => Math.sqrt(Math.max(0, v / acc.n - mean[i]! ** 2)))
    const floor = (0.05 * std.reduce((a, b) => a + b, 0)) / c || 1
    stats.set(tap, {
      mean: Tensor.fromData(mean, [1, c, 1, 1]),
      std: Tensor.fromData(std.map((v) => Math.max(v, floor)), [1, c, 1, 1]),
    })
  }
  return stats
}

/** One student tap paired with one teacher tap. */
export interface HintPair {
  student: string
  teacher: string
  /** Student and teacher channels at these taps. */
  studentChannels: number
  teacherChannels: number
}

/**
 * The learnable 1×1 adapter of one hint pair, resizing the student feature
 * to the teacher's resolution by ×2 bilinear up-sampling or 2×2 average
 * pooling (the taps' resolutions differ by powers of two).
 */
export class HintAdapter extends Module {
  readonly conv: Conv2d

  constructor(readonly pair: HintPair, seed: number) {
    super()
    this.conv = this.registerModule('conv', new Conv2d(pair.studentChannels, pair.teacherChannels, 1, { seed }))
  }

  /** Adapts `[B, C_s, h, w]` to `[B, C_t, H, W]` (H, W from `like`). */
  adapt(student: Tensor, like: readonly number[]): Tensor {
    let f = this.conv.forward(student)
    while (f.shape[2]! < like[2]!) {
      const up = f.upsample2x('bilinear')
      f.dispose()
      f = up
    }
    while (f.shape[2]! > like[2]!) {
      const down = f.avgPool2d({ kernel: 2 })
      f.dispose()
      f = down
    }
    if (f.shape[2] !== like[2] || f.shape[3] !== like[3]) {
      throw new Error(`hint ${this.pair.student}→${this.pair.teacher}: student ${f.shape.join('×')} cannot be resized to teacher ${like.join('×')}`)
    }
    return f
  }

  forward(x: Tensor): Tensor {
    return this.conv.forward(x)
  }
}

/** Options of {@link HKD}. */
export interface HKDOptions {
  /** Weight λ of the FFT loss (default 0.1). */
  lambdaFft?: number
  /** Base hint weight γ (default 0.12); 0 disables hints (the baseline). */
  gamma?: number
  schedule?: GammaSchedule
  /** Weight β of output distillation, L1 to the teacher's restored image (default 0). */
  outputWeight?: number
  /**
   * Per-channel mean and standard deviation of each teacher tap (from
   * {@link hintStatistics}); the teacher's features are standardised with
   * them before the MSE. Without them the raw features are the targets.
   */
  hintStats?: ReadonlyMap<string, HintStatistics>
  seed?: number
}

/** Per-channel statistics of one teacher tap, as `[1, C, 1, 1]` tensors. */
export interface HintStatistics {
  mean: Tensor
  std: Tensor
}

/** The parts of one H-KD loss evaluation (the `[1]` total keeps its gradient path). */
export interface HKDLossParts {
  loss: Tensor
  /** The value of `loss`. */
  value: number
  l1: number
  fft: number
  hint: number
  gamma: number
  /** L1 to the teacher's output (0 without output distillation). */
  output: number
}

/**
 * H-KD: the loss of a student against its targets and a frozen teacher's
 * hints. A teacher that is a {@link Module} runs in evaluation mode (batch
 * norm on its running statistics), whatever mode it was left in.
 *
 * @example
 * ```ts
 * const student = new SpikerIR({ width: 8, timeSteps: 2 })
 * const teacher = new DnCNN({ depth: 6, channels: 16 })
 * const pairs = [{ student: 'encoder1', teacher: 'layer3', studentChannels: 8, teacherChannels: 16 }]
 * const hkd = new HKD(student, teacher, pairs, { gamma: 0.12 })
 * const clean = Tensor.rand([2, 1, 16, 16], { seed: 1 })
 * const noisy = clean.add(Tensor.randn(clean.shape, { seed: 2, std: 25 / 255 }))
 * const { parts } = hkd.loss(noisy, clean, 0)
 * parts.loss.backward() // gradients for the student and the adapter, none for the teacher
 * console.log(parts.l1, parts.fft, parts.hint)
 * ```
 */
export class HKD extends Module {
  readonly adapters: ModuleList<HintAdapter>
  readonly lambdaFft: number
  readonly gamma: number
  readonly schedule: GammaSchedule
  readonly outputWeight: number
  readonly hintStats: ReadonlyMap<string, HintStatistics> | null

  constructor(
    readonly student: HintSource,
    readonly teacher: HintSource | null,
    readonly pairs: readonly HintPair[],
    options: HKDOptions = {},
  ) {
    super()
    this.lambdaFft = options.lambdaFft ?? 0.1
    this.gamma = teacher ? (options.gamma ?? 0.12) : 0
    this.schedule = options.schedule ?? { kind: 'constant' }
    this.outputWeight = teacher ? (options.outputWeight ?? 0) : 0
    this.hintStats = options.hintStats ?? null
    if (this.hintStats) {
      for (const p of pairs) {
        if (!this.hintStats.has(p.teacher)) throw new Error(`H-KD: hint statistics lack the teacher tap '${p.teacher}'`)
      }
    }
    const seed = options.seed ?? 0
    this.adapters = this.registerModule('adapters', new ModuleList(pairs.map((p) => new HintAdapter(p, seed))))
    // Each adapter from (seed, its name), unrelated to the student's draws.
    this.initParameters(seed)
  }

  forward(): Tensor {
    throw new Error('HKD has no forward: call loss(input, target, step)')
  }

  /**
   * The teacher's features at the hint taps, in evaluation mode; its mode is
   * handed back as it came (a model shared with other code keeps its state).
   */
  private teacherHints(input: Tensor, taps: readonly string[], wantOutput: boolean): { output: Tensor | null; features: Map<string, Tensor> } {
    const teacher = this.teacher!
    const modules = teacher instanceof Module ? teacher.namedModules().map(([, m]) => m) : []
    const modes = modules.map((m) => m.training)
    for (const m of modules) m.training = false
    try {
      if (!wantOutput && teacher.forwardFeatures) return { output: null, features: teacher.forwardFeatures(input, taps) }
      const r = teacher.forwardHints(input, taps)
      if (wantOutput) return r
      r.output.dispose()
      return { output: null, features: r.features }
    } finally {
      modules.forEach((m, i) => (m.training = modes[i]!))
    }
  }

  /**
   * The student's output and the loss on one batch. The teacher runs
   * without a tape and in evaluation mode; only the student and the
   * adapters receive gradients.
   */
  loss(input: Tensor, target: Tensor, step: number): { output: Tensor; parts: HKDLossParts } {
    const { output, loss, terms, gamma } = this.lossTerms(input, target, step)
    // One readback for every reported number, not one per term.
    const v = terms.toFloat32Array()
    terms.dispose()
    return { output, parts: { loss, value: v[0]!, l1: v[1]!, fft: v[2]!, hint: v[3]!, gamma, output: v[4]! } }
  }

  /**
   * Like {@link HKD.loss}, but nothing is read back: `terms` is a `[5]`
   * tensor (without a gradient path) of the loss, L1, FFT, hint and output
   * terms, for the caller to read when it reads everything else (a GPU
   * training step reads back once, after the optimizer step).
   */
  lossTerms(input: Tensor, target: Tensor, step: number): { output: Tensor; loss: Tensor; terms: Tensor; gamma: number } {
    const gamma = this.teacher ? gammaAt(this.gamma, this.schedule, step) : 0
    const useHints = gamma > 0 && this.pairs.length > 0
    const { output, features } = this.student.forwardHints(input, useHints ? this.pairs.map((p) => p.student) : [])
    const tmp: Tensor[] = []
    const k = (t: Tensor) => (tmp.push(t), t)
    const l1 = k(output.l1Loss(target))
    const fft = k(output.fftLoss(target))
    let loss = l1.add(k(fft.mul(this.lambdaFft)))
    let hint: Tensor | null = null
    let toTeacher: Tensor | null = null
    const useOutput = this.outputWeight > 0
    if (useHints || useOutput) {
      const taps = useHints ? this.pairs.map((p) => p.teacher) : []
      const teacher = noGrad(() => {
        const r = this.teacherHints(input, taps, useOutput)
        if (!this.hintStats) return r
        // Standardised targets: (F_T − mean) / std per channel.
        const features = new Map<string, Tensor>()
        for (const [tap, f] of r.features) {
          const st = this.hintStats.get(tap)!
          const centred = f.sub(st.mean)
          features.set(tap, centred.div(st.std))
          centred.dispose()
          f.dispose()
        }
        return { output: r.output, features }
      })
      if (useHints) {
        this.pairs.forEach((p, i) => {
          const ft = teacher.features.get(p.teacher)!
          const fs = k(this.adapters.items[i]!.adapt(features.get(p.student)!, ft.shape))
          const mse = k(fs.mseLoss(ft))
          hint = hint ? k(hint.add(mse)) : mse
        })
        const prev = loss
        loss = loss.add(k(hint!.mul(gamma)))
        prev.dispose()
      }
      for (const t of teacher.features.values()) t.dispose()
      if (teacher.output) {
        toTeacher = k(output.l1Loss(teacher.output))
        teacher.output.dispose()
        const prev = loss
        loss = loss.add(k(toTeacher.mul(this.outputWeight)))
        prev.dispose()
      }
    }
    for (const f of features.values()) f.dispose()
    const terms = noGrad(() => {
      const zero = k(Tensor.zeros([1]))
      return Tensor.concat([loss, l1, fft, hint ?? zero, toTeacher ?? zero], 0)
    })
    for (const t of tmp) t.dispose()
    return { output, loss, terms, gamma }
  }
}
