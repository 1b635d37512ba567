/**
 * The distillation training loop: AdamW with a cosine schedule and warm-up,
 * gradient clipping, the H-KD loss, periodic validation, atomic checkpoints
 * with exact resume, and a JSONL log of every step.
 *
 * @module
 */
import * as fs from 'node:fs'
import * as path from 'node:path'

import type { HKD } from '../distill/hkd'
import type { NamedArray } from '../io'
import type { Module } from '../nn/module'
import { SpikingNeuron } from '../nn/spiking'
import { info, noGrad, scope, synchronize, Tensor, zeroGrad } from '../tensor'
import { loadCheckpoint, saveCheckpoint, writeFileAtomic } from './checkpoint'
import { interruptRequested } from './interrupt'
import { AdamW, clipGradNorm, clipGradNormOnDevice } from './optim'
import { cosineSchedule } from './schedule'

/** A stream of training batches, deterministic by step. */
export interface BatchStream {
  /** The batch of the next step; the caller disposes its tensors. */
  next(): { input: Tensor; target: Tensor; step: number }
  /** Stops producing batches and frees what the stream holds. */
  dispose(): void
}

/** Settings of {@link trainStudent}. */
export interface TrainSettings {
  steps: number
  lr: number
  warmup: number
  minLr: number
  weightDecay: number
  /** Clip the global gradient norm to this (null: no clipping). */
  clipNorm: number | null
  seed: number
  /** Validate every N steps (0: only at the end). */
  valEvery: number
  /** Write a checkpoint every N steps (0: only at the end). */
  checkpointEvery: number
  outDir: string
  /** Checkpoint name (`student` by default). */
  name?: string
  /**
   * Decay of an exponential moving average of the weights (e.g. 0.999); 0 or
   * absent: none. With it, validation and the final checkpoint use the
   * averaged weights (what a user keeps), and intermediate checkpoints carry
   * the average in their training state so a resumed run is exact.
   */
  ema?: number
}

/** One line of the JSONL log. */
export interface StepRecord {
  step: number
  loss: number
  l1: number
  fft: number
  hint: number
  /** L1 to the teacher's output (0 without output distillation). */
  output: number
  gamma: number
  lr: number
  gradNorm: number | null
  /** Mean firing rate of each spiking layer in this step's forward. */
  firingRates: Record<string, number>
  seconds: number
}

/** A trainable restoration model with hint taps (a SpikerIR student, or an ANN teacher). */
export type TrainableModel = Module & {
  /** The output and the features at `taps`, by tap name; the caller disposes them. */
  forwardHints(x: Tensor, taps: readonly string[]): { output: Tensor; features: Map<string, Tensor> }
}

/** What {@link trainStudent} needs. */
export interface TrainJob {
  student: TrainableModel
  hkd: HKD
  /** Opens the batch stream at `startStep`. */
  data: (startStep: number) => BatchStream
  settings: TrainSettings
  /** Validation metrics of the student (called in evaluation mode, without a tape). */
  validate?: (student: TrainableModel) => Record<string, number>
  /** The config recorded in checkpoints. */
  config: Record<string, unknown>
  /** A checkpoint sidecar to resume from. */
  resume?: string
  /** Told after every step, with the record written to the log. */
  onStep?: (record: StepRecord) => void
  /** Told after every validation, with the metrics of `validate`. */
  onValidation?: (step: number, metrics: Record<string, number>) => void
}

/**
 * Trains the model (a student, or a teacher with no hints); returns the last
 * step's record, the validation history, and the step it stopped at when a
 * stop was requested (`trapInterrupts`) before the end, else null. A
 * stopped run has a checkpoint at that step.
 *
 * @example
 * ```ts
 * const student = new SpikerIR({ width: 8, timeSteps: 2 })
 * const hkd = new HKD(student, null, []) // no teacher: L1 + FFT only
 * const source = { kind: 'deadLeaves', count: 4, size: 32 } as const
 * const { last } = trainStudent({
 *   student,
 *   hkd,
 *   data: (startStep) => new DataLoader({ source, patch: 16, batch: 2, degradation: { kind: 'awgn', sigma: 25 }, startStep }),
 *   settings: { steps: 3, lr: 1e-3, warmup: 0, minLr: 1e-5, weightDecay: 1e-4, clipNorm: 1, seed: 0, valEvery: 0, checkpointEvery: 0, outDir: 'run' },
 *   config: { model: { kind: 'spikerir', options: { width: 8, timeSteps: 2 } } },
 * })
 * console.log(last?.loss) // run/student.json loads with loadModel
 * ```
 */
export function trainStudent(job: TrainJob): { last: StepRecord | null; validation: { step: number; metrics: Record<string, number> }[]; stoppedAt: number | null } {
  const { student, hkd, settings: s } = job
  const name = s.name ?? 'student'
  const params = [...student.namedParameters(), ...hkd.adapters.namedParameters('hkd.adapters.')]
  const opt = new AdamW(params, { lr: s.lr, weightDecay: s.weightDecay })
  const schedule = cosineSchedule(s.lr, s.steps, { warmup: s.warmup, minLr: s.minLr })
  let start = 0
  const validation: { step: number; metrics: Record<string, number> }[] = []
  if (job.resume) {
    const { info, trainingState } = loadCheckpoint(job.resume, student)
    if (!trainingState) throw new Error(`resume: '${job.resume}' has no training state (optimizer, adapters)`)
    const adapters = trainingState.filter((a) => a.name.startsWith('hkd.')).map((a) => ({ ...a, name: a.name.slice(4) }))
    hkd.loadStateDict(adapters)
    opt.loadStateArrays(trainingState.filter((a) => a.name.startsWith('optim.')).map((a) => ({ ...a, name: a.name.slice(6) })))
    start = info.step
    const history = (info.metrics['validation'] ?? []) as { step: number; metrics: Record<string, number> }[]
    validation.push(...history)
  }
  // The data opens first: a bad data set fails before the output folder or log exists.
  const data = job.data(start)
  fs.mkdirSync(s.outDir, { recursive: true })
  const logFile = path.join(s.outDir, `${name}.log.jsonl`)
  if (!job.resume) fs.writeFileSync(logFile, '')
  else if (fs.existsSync(logFile)) {
    // A run killed between checkpoints logged steps that the resumed run repeats (and maybe a
    // torn last line): keep each step before the checkpoint once.
    const before = (line: string) => {
      try {
        return (JSON.parse(line) as { step: number }).step < start
      } catch {
        return false
      }
    }
    const kept = fs.readFileSync(logFile, 'utf8').split('\n').filter(before)
    writeFileAtomic(logFile, kept.map((l) => l + '\n').join(''))
  }
  const neurons = student.namedModules().filter((e): e is [string, SpikingNeuron] => e[1] instanceof SpikingNeuron)
  let last: StepRecord | null = null
  let stoppedAt: number | null = null

  // The weight average: one shadow per student parameter (adapters are not kept).
  const decay = s.ema ?? 0
  const studentParams = student.namedParameters()
  const shadow = decay > 0 ? new Map(studentParams.map(([n, p]) => [n, noGrad(() => p.mul(1))] as const)) : null
  if (shadow && job.resume) {
    const state = loadCheckpoint(job.resume, student).trainingState ?? []
    // A finished run saved its average as the model and its trained weights as `raw.*`.
    for (const a of state.filter((a) => a.name.startsWith('raw.'))) {
      const p = studentParams.find(([n]) => n === a.name.slice(4))?.[1]
      if (!p) throw new Error(`resume: '${job.resume}' holds trained weights '${a.name.slice(4)}' this student lacks`)
      const v = Tensor.fromData(a.data, a.shape)
      p.assign(v)
      v.dispose()
    }
    const saved = new Map(state.filter((a) => a.name.startsWith('ema.')).map((a) => [a.name.slice(4), a] as const))
    for (const [n, t] of shadow) {
      const a = saved.get(n)
      if (!a) throw new Error(`resume: '${job.resume}' has no weight average for '${n}' (was it trained without ema?)`)
      const v = Tensor.fromData(a.data, a.shape)
      t.assign(v)
      v.dispose()
    }
  }
  /** Runs `fn` with the averaged weights in the student, then puts the trained ones back. */
  const withAverage = <T>(fn: () => T): T => {
    if (!shadow) return fn()
    const raw = studentParams.map(([, p]) => noGrad(() => p.mul(1)))
    studentParams.forEach(([n, p]) => p.assign(shadow.get(n)!))
    try {
      return fn()
    } finally {
      studentParams.forEach(([, p], i) => {
        p.assign(raw[i]!)
        raw[i]!.dispose()
      })
    }
  }
  const trainingState = (): NamedArray[] => [
    ...opt.stateArrays().map((a) => ({ ...a, name: `optim.${a.name}` })),
    ...[...hkd.stateDict()].map(([n, t]) => ({ name: `hkd.${n}`, shape: t.shape, data: t.toFloat32Array() })),
    ...[...(shadow ?? [])].map(([n, t]) => ({ name: `ema.${n}`, shape: t.shape, data: t.toFloat32Array() })),
  ]
  const checkpoint = (step: number, extra: NamedArray[] = []) => {
    // The log's lines up to the checkpoint go to disk first, so that after a
    // crash the log still holds every step the checkpoint has seen.
    const fd = fs.openSync(logFile, 'a')
    try {
      fs.fsyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
    saveCheckpoint(s.outDir, name, student, { step, seed: s.seed, config: job.config, metrics: { last, validation } }, [...trainingState(), ...extra])
  }
  const runValidation = (step: number) => {
    if (!job.validate) return
    student.eval()
    const metrics = withAverage(() => job.validate!(student))
    student.train()
    validation.push({ step, metrics })
    job.onValidation?.(step, metrics)
  }

  const onNativeBackend = info().backend === 'native'
  try {
    student.train()
    for (let step = start; step < s.steps; step++) {
      const t0 = process.hrtime.bigint()
      const batch = data.next()
      if (batch.step !== step) throw new Error(`data stream is at step ${batch.step}, training at ${step}`)
      const lr = schedule(step)
      const record = scope(() => {
        // Nothing is read from the device until the step is done: one readback per step, after
        // the optimizer (on a GPU a readback waits for all queued work).
        const { loss, terms, gamma } = hkd.lossTerms(batch.input, batch.target, step)
        const badLoss = (t: Float32Array) =>
          new Error(`step ${step}: the loss is ${t[0]} (l1 ${t[1]}, fft ${t[2]}, hint ${t[3]}); stopping before anything is saved (the last checkpoint is intact) — lower the learning rate or enable clipping`)
        if (onNativeBackend) {
          // Reading costs nothing here: a bad loss stops before the weights change.
          const early = terms.toFloat32Array()
          if (!Number.isFinite(early[0]!)) throw badLoss(early)
        }
        loss.backward()
        // On the native backend a read costs nothing, and one native clipping call beats the
        // device form's per-parameter ops; there, a non-finite norm stops before the weights change.
        const hostClip = s.clipNorm !== null && onNativeBackend
        const hostNorm = hostClip ? clipGradNorm(params.map(([, p]) => p), s.clipNorm!) : null
        const norm = s.clipNorm === null || hostClip ? null : clipGradNormOnDevice(params.map(([, p]) => p), s.clipNorm)
        opt.lr = lr
        opt.step()
        zeroGrad()
        if (shadow) {
          // Early on the average forgets faster (min(decay, (1 + step)/(10 + step))), so it is not dominated by the initialisation.
          const d = Math.min(decay, (1 + step) / (10 + step))
          noGrad(() => {
            for (const [n, p] of studentParams) {
              const t = shadow.get(n)!
              const next = t.mul(d).add(p.mul(1 - d))
              t.assign(next)
            }
          })
        }
        const rates = neurons.flatMap(([n, l]) => {
          const r = l.firingRateTensor()
          return r ? [[n, r] as const] : []
        })
        const v = noGrad(() => Tensor.concat([terms, ...(norm ? [norm] : []), ...rates.map(([, r]) => r.reshape([1]))], 0).toFloat32Array())
        const [lossValue, l1, fft, hint, output] = [v[0]!, v[1]!, v[2]!, v[3]!, v[4]!]
        const gradNorm = norm ? v[5]! : hostNorm
        // A bad step has changed the weights in memory only: it is never checkpointed.
        if (!Number.isFinite(lossValue)) throw badLoss(v)
        if (gradNorm !== null && !Number.isFinite(gradNorm)) {
          throw new Error(`step ${step}: the gradient norm is ${gradNorm}; a parameter is not finite; stopping before anything is saved (the last checkpoint is intact)`)
        }
        const firingRates: Record<string, number> = {}
        rates.forEach(([n], i) => (firingRates[n] = v[(norm ? 6 : 5) + i]!))
        return { step, loss: lossValue, l1, fft, hint, output, gamma, lr, gradNorm, firingRates, seconds: 0 }
      })
      batch.input.dispose()
      batch.target.dispose()
      synchronize()
      record.seconds = Number(process.hrtime.bigint() - t0) / 1e9
      last = record
      fs.appendFileSync(logFile, JSON.stringify(record) + '\n')
      job.onStep?.(record)
      const done = step + 1
      if (s.valEvery > 0 && done % s.valEvery === 0 && done < s.steps) runValidation(done)
      const saved = s.checkpointEvery > 0 && done % s.checkpointEvery === 0 && done < s.steps
      if (saved) checkpoint(done)
      if (done < s.steps && interruptRequested()) {
        if (!saved) checkpoint(done)
        stoppedAt = done
        break
      }
    }
    if (stoppedAt === null) {
      if (start < s.steps || validation.length === 0) runValidation(s.steps)
      // The finished model is the average; the trained weights go in its training state, so that
      // a longer run resumed from it continues from them.
      const trained = studentParams.map(([n, p]) => ({ name: `raw.${n}`, shape: p.shape, data: p.toFloat32Array() }))
      withAverage(() => checkpoint(s.steps, shadow ? trained : []))
      if (shadow) studentParams.forEach(([n, p]) => p.assign(shadow.get(n)!))
    }
  } finally {
    data.dispose()
    opt.dispose()
    for (const t of shadow?.values() ?? []) t.dispose()
  }
  return { last, validation, stoppedAt }
}
