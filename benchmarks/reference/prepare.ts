/**
 * What the parity check and the PyTorch comparison share: run folders that
 * hold a student, a teacher, hint adapters and a batch as safetensors plus
 * a `config.json`, written here and loaded by name on both sides; the
 * reference environment's Python; and one training step exactly as
 * `spikeir distill` runs it (H-KD loss, backward, clipping, AdamW, firing
 * rates read back).
 *
 * @module
 */
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import {
  AdamW,
  DnCNN,
  HKD,
  SpikerIR,
  Tensor,
  clipGradNorm,
  hintStatistics,
  noGrad,
  readSafetensors,
  scope,
  spikerIRConfig,
  synchronize,
  writeSafetensors,
  zeroGrad,
  type HintPair,
  type HintStatistics,
  type NamedParameter,
  type SpikerIRConfig,
} from '../../index'

/** The folder of the Python reference (sources, not the compiled copy). */
export const REFERENCE_DIR = path.resolve(__dirname, '..', '..', '..', 'benchmarks', 'reference')

/** The default DnCNN-S hint pairs of `spikeir distill`. */
export const DNCNN_HINTS = ['encoder1:layer5', 'decoder1:layer10', 'refine:layer15']

/** The reference environment's Python, from $SPIKEIR_REF_VENV or ~/.cache/spikeir-ref-venv. */
export function referencePython(): string {
  const venv = process.env['SPIKEIR_REF_VENV'] ?? path.join(os.homedir(), '.cache', 'spikeir-ref-venv')
  const python = path.join(venv, process.platform === 'win32' ? 'Scripts/python.exe' : 'bin/python')
  if (!fs.existsSync(python)) {
    throw new Error(`no PyTorch reference environment at ${venv} (SPIKEIR_REF_VENV); create it with 'bash benchmarks/reference/setup.sh'`)
  }
  return python
}

/** Runs a script of the reference with the given arguments; returns its exit status and output. */
export function runReference(script: string, args: string[], env: Record<string, string> = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(referencePython(), [path.join(REFERENCE_DIR, script), ...args], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    // Bytecode caches would land in the source tree.
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', ...env },
  })
  if (r.error) throw new Error(`${script}: ${r.error.message}`)
  return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr }
}

/** What a run folder describes (its `config.json`). */
export interface RunConfig {
  student: SpikerIRConfig
  /** DnCNN options, or null without hints. */
  teacher: { depth: number; channels: number; imageChannels: number } | null
  hints: string[]
  lambdaFft: number
  gamma: number
  /** Weight of the L1 term to the teacher's restored image (output distillation). */
  outputWeight: number
  /** Teacher features standardised per channel by `hintstats.safetensors` (`TAP.mean`, `TAP.std`). */
  hintNorm: boolean
  /** Training batch `[B, C, H, W]`. */
  batch: number[]
  lr: number
  weightDecay: number
  clipNorm: number
  /** Where the teacher's weights came from. */
  teacherWeights: string | null
}

/** How a run with hints uses its teacher (see {@link RunOptions.design}). */
export type HintDesign = 'raw' | 'default'

/** Options of {@link writeRun}. */
export interface RunOptions {
  preset: 'tiny' | 'small' | 'base'
  /**
   * How the step uses the DnCNN-S teacher: null for no teacher, `raw`
   * (its features as they are, γ = 0.12, the first design) or `default`
   * (`spikeir distill`'s default: standardised hints at γ = 0.01 and output
   * distillation at 0.5).
   */
  design: HintDesign | null
  batch?: number
  patch?: number
  seed?: number
  /** Extra arrays to store in `extra.safetensors` (inference image, LIF input). */
  extra?: Record<string, Tensor>
}

function sharedTeacher(): string | null {
  const file = path.resolve(__dirname, '..', '..', '..', '..', 'shared', 'models', 'dncnn_s_sigma25.safetensors')
  return fs.existsSync(file) ? file : null
}

/**
 * Writes a run folder: the student of `preset` (seeded, its output conv
 * drawn like any other instead of starting at zero, so that every upstream
 * gradient is non-zero), the DnCNN-S σ = 25 teacher (a seeded random DnCNN
 * where ../shared is absent) and its adapters with the default hint pairs,
 * and a batch of noisy/clean patches.
 */
export function writeRun(dir: string, o: RunOptions): RunConfig {
  fs.mkdirSync(dir, { recursive: true })
  const seed = o.seed ?? 1
  const batch = o.batch ?? 8
  const patch = o.patch ?? 64
  const cfg = spikerIRConfig(o.preset, { seed })
  const student = new SpikerIR(cfg)
  const out = student.output
  const bound = 1 / Math.sqrt(out.inChannels * out.kernelSize * out.kernelSize)
  const w = Tensor.rand(out.weight.shape, { seed: seed + 77, low: -bound, high: bound })
  out.weight.assign(w)
  w.dispose()
  student.saveSafetensors(path.join(dir, 'student.safetensors'))
  let teacherCfg: RunConfig['teacher'] = null
  let teacherWeights: string | null = null
  const design = o.design
  const hints = design ? DNCNN_HINTS : []
  const makeBatch = () => {
    const clean = Tensor.rand([batch, cfg.imageChannels, patch, patch], { seed: seed + 1 })
    const noisy = clean.add(Tensor.randn(clean.shape, { seed: seed + 2, std: 25 / 255 }))
    return { input: noisy, target: clean }
  }
  if (design) {
    teacherCfg = { depth: 17, channels: 64, imageChannels: cfg.imageChannels }
    teacherWeights = sharedTeacher()
    const teacher = teacherWeights ? DnCNN.fromSafetensors(teacherWeights) : new DnCNN({ ...teacherCfg, seed })
    teacher.saveSafetensors(path.join(dir, 'teacher.safetensors'))
    const pairs = hintPairs(student, teacher, hints)
    const hkd = new HKD(student, teacher, pairs, { seed })
    hkd.saveSafetensors(path.join(dir, 'adapters.safetensors'))
    hkd.dispose()
    if (design === 'default') {
      // distill takes the statistics over 16 training batches; one stands in here, as the
      // cost of a step does not depend on their values.
      scope(() => {
        const { input } = makeBatch()
        const stats = hintStatistics(teacher, [...new Set(pairs.map((p) => p.teacher))], [input])
        writeSafetensors(path.join(dir, 'hintstats.safetensors'), new Map([...stats].flatMap(([tap, st]) => [[`${tap}.mean`, st.mean], [`${tap}.std`, st.std]] as [string, Tensor][])))
      })
    }
    teacher.dispose()
  }
  student.dispose()
  scope(() => {
    const { input, target } = makeBatch()
    writeSafetensors(path.join(dir, 'batch.safetensors'), new Map([['input', input], ['target', target]]))
  })
  if (o.extra) writeSafetensors(path.join(dir, 'extra.safetensors'), new Map(Object.entries(o.extra)))
  const config: RunConfig = {
    student: cfg,
    teacher: teacherCfg,
    hints,
    lambdaFft: 0.1,
    gamma: design === 'default' ? 0.01 : 0.12,
    outputWeight: design === 'default' ? 0.5 : 0,
    hintNorm: design === 'default',
    batch: [batch, cfg.imageChannels, patch, patch],
    // The distill recipe's defaults.
    lr: 1e-3,
    weightDecay: 1e-4,
    clipNorm: 1,
    teacherWeights,
  }
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 1))
  return config
}

function hintPairs(student: SpikerIR, teacher: DnCNN, hints: readonly string[]): HintPair[] {
  return hints.map((h) => {
    const [s, t] = h.split(':') as [string, string]
    return { student: s, teacher: t, studentChannels: student.tapChannels(s), teacherChannels: teacher.tapChannels(t) }
  })
}

/** A run folder loaded back: models, loss and batch on the current device. */
export interface Run {
  config: RunConfig
  student: SpikerIR
  teacher: DnCNN | null
  hkd: HKD
  input: Tensor
  target: Tensor
  /** Arrays of `extra.safetensors` by name. */
  extra: Map<string, Tensor>
  dispose(): void
}

function readArrays(file: string): Map<string, Tensor> {
  if (!fs.existsSync(file)) return new Map()
  return new Map(readSafetensors(file).tensors.map((a) => [a.name, Tensor.fromData(a.data, a.shape)]))
}

/** Hint statistics by teacher tap from `TAP.mean` / `TAP.std` arrays. */
function readHintStats(file: string): Map<string, HintStatistics> {
  const arrays = readArrays(file)
  const stats = new Map<string, HintStatistics>()
  for (const [name, t] of arrays) {
    if (!name.endsWith('.mean')) continue
    const tap = name.slice(0, -'.mean'.length)
    const std = arrays.get(`${tap}.std`)
    if (!std) throw new Error(`${file}: '${name}' without '${tap}.std'`)
    stats.set(tap, { mean: t, std })
  }
  return stats
}

/** Builds what `dir` describes and loads its weights by name. */
export function loadRun(dir: string): Run {
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as RunConfig
  const student = new SpikerIR(config.student)
  student.loadSafetensors(path.join(dir, 'student.safetensors'))
  let teacher: DnCNN | null = null
  if (config.teacher) {
    teacher = new DnCNN(config.teacher)
    teacher.loadSafetensors(path.join(dir, 'teacher.safetensors'))
    teacher.eval()
  }
  const pairs = teacher ? hintPairs(student, teacher, config.hints) : []
  const hintStats = config.hintNorm ? readHintStats(path.join(dir, 'hintstats.safetensors')) : null
  const hkd = new HKD(student, teacher, pairs, {
    lambdaFft: config.lambdaFft,
    gamma: config.gamma,
    outputWeight: config.outputWeight ?? 0,
    ...(hintStats ? { hintStats } : {}),
  })
  if (pairs.length) hkd.loadSafetensors(path.join(dir, 'adapters.safetensors'))
  const batch = readArrays(path.join(dir, 'batch.safetensors'))
  const extra = readArrays(path.join(dir, 'extra.safetensors'))
  return {
    config,
    student,
    teacher,
    hkd,
    input: batch.get('input')!,
    target: batch.get('target')!,
    extra,
    dispose() {
      for (const t of [...batch.values(), ...extra.values()]) t.dispose()
      for (const st of hintStats?.values() ?? []) (st.mean.dispose(), st.std.dispose())
      hkd.dispose()
      teacher?.dispose()
      student.dispose()
    },
  }
}

/** The student's and adapters' parameters, named as the trainer names them. */
export function trainedParameters(run: Run): NamedParameter[] {
  return [...run.student.namedParameters(), ...run.hkd.adapters.namedParameters('hkd.adapters.')]
}

/**
 * A trainer for a loaded run: each call is one step of `trainStudent`'s loop
 * body (H-KD loss with its one readback, backward, clipping by global norm,
 * AdamW, all firing rates in one readback), without data loading, logging
 * or checkpoints.
 */
export function trainer(run: Run): { step(i: number): number; dispose(): void } {
  const params = trainedParameters(run)
  const opt = new AdamW(params, { lr: run.config.lr, weightDecay: run.config.weightDecay })
  const neurons = run.student.neurons()
  run.student.train()
  return {
    step(i: number): number {
      const loss = scope(() => {
        const { parts } = run.hkd.loss(run.input, run.target, i)
        parts.loss.backward()
        clipGradNorm(
          params.map(([, p]) => p),
          run.config.clipNorm,
        )
        opt.step()
        zeroGrad()
        const rates = neurons.flatMap(([, l]) => {
          const r = l.firingRateTensor()
          return r ? [r.reshape([1])] : []
        })
        if (rates.length) noGrad(() => Tensor.concat(rates, 0).toFloat32Array())
        return parts.value
      })
      synchronize()
      return loss
    },
    dispose() {
      opt.dispose()
    },
  }
}
