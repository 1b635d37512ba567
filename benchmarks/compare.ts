/**
 * `npm run bench -- compare [--limit N] [--rounds R] [--json]`: spikeir against the
 * PyTorch + SpikingJelly reference (benchmarks/reference, created by
 * `bash benchmarks/reference/setup.sh`) in one table: seconds and peak
 * memory of
 * - one training step of the tiny and small students, without hints and
 *   with raw DnCNN-S hints (γ = 0.12), and of the tiny student with
 *   `spikeir distill`'s default design (standardised hints at γ = 0.01 plus
 *   output distillation, so the teacher runs to its output) (batch 8, 64×64
 *   patches, T = 4, AdamW, clipping: the loop body of `spikeir distill`,
 *   without data loading);
 * - the DnCNN-S teacher's forward on that batch;
 * - the tiny and small students on one 512×512 image (evaluation mode);
 * - one LIF layer forward + backward on the tiny step's largest layer.
 * Both sides load the same weights and batch from one run folder. Every case
 * runs in a fresh process on each side, so its peak RSS (the kernel's
 * high-water mark) is its own; both sides get the same thread count
 * (RAYON_NUM_THREADS, else the number of cores; torch.set_num_threads).
 * Times are the median of N iterations (default 5) after one warm-up; with
 * `--rounds R` each case alternates between the two sides R times and the
 * median is over all R·N iterations (a shared machine's slow spells then
 * fall on both sides, not on one side's whole measurement). On a
 * machine shared with other work, OMP_WAIT_POLICY=PASSIVE keeps PyTorch's
 * OpenMP threads from spinning against that load (they slow it tenfold).
 * `--device` picks spikeir's device (default: the native CPU backend);
 * SPIKEIR_REF_DEVICE picks PyTorch's (`cpu`, the default, or `cuda`), so that
 * on a machine with an NVIDIA GPU `--device gpu` with SPIKEIR_REF_DEVICE=cuda
 * races both on the same card. Peak memory is host RSS on both sides.
 *
 * @module
 */
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import { Tensor, info, initDevice, noGrad, scope, synchronize, zeroGrad } from '../index'
import { loadRun, runReference, trainer, writeRun } from './reference/prepare'
import type { BenchArgs } from './run'

/** What one side reports for one case. */
interface Measured {
  case: string
  seconds: number[]
  medianSeconds: number
  maxRssKiB: number
  idleRssKiB: number
  version: string
}

/** The cases, in table order: id, label, run folder (by key). */
const CASES: { id: string; label: string; run: 'tiny' | 'tinyHints' | 'tinyDefault' | 'small' | 'smallHints' }[] = [
  { id: 'step-tiny', label: 'student step, tiny, no hints', run: 'tiny' },
  { id: 'step-tiny-hints', label: 'student step, tiny, raw DnCNN hints', run: 'tinyHints' },
  { id: 'step-tiny-default', label: 'student step, tiny, default design', run: 'tinyDefault' },
  { id: 'step-small', label: 'student step, small, no hints', run: 'small' },
  { id: 'step-small-hints', label: 'student step, small, raw DnCNN hints', run: 'smallHints' },
  { id: 'teacher', label: 'DnCNN-S forward, 8×1×64×64', run: 'tinyHints' },
  { id: 'infer-tiny', label: 'tiny inference, 512×512', run: 'tiny' },
  { id: 'infer-small', label: 'small inference, 512×512', run: 'small' },
  { id: 'lif', label: 'LIF fwd+bwd, 4×8×16×64×64', run: 'tiny' },
]

const LIF_SHAPE = [4, 8, 16, 64, 64]

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

function lastJson(text: string, who: string): Measured {
  const line = text.trim().split('\n').at(-1) ?? ''
  try {
    return JSON.parse(line) as Measured
  } catch {
    throw new Error(`${who} printed no result:\n${text}`)
  }
}

/** The rounds of one side as one measurement: the median over every iteration, the highest peak. */
function pooled(rounds: Measured[]): Measured {
  const seconds = rounds.flatMap((r) => r.seconds)
  return {
    ...rounds[0]!,
    seconds,
    medianSeconds: median(seconds),
    maxRssKiB: Math.max(...rounds.map((r) => r.maxRssKiB)),
    idleRssKiB: Math.max(...rounds.map((r) => r.idleRssKiB)),
  }
}

export function run(args: BenchArgs): Record<string, unknown> {
  const iters = args.limit ?? 5
  const rounds = args.rounds ?? 1
  const threads = Number(process.env['RAYON_NUM_THREADS']) || os.availableParallelism()
  const referenceDevice = process.env['SPIKEIR_REF_DEVICE'] || 'cpu'
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-compare-'))
  try {
    initDevice({ adapter: args.device ?? 'cpu' })
    const device = info().adapterName
    const extra = (preset: string) =>
      scope(() => {
        const e: Record<string, Tensor> = { image512: Tensor.rand([1, 1, 512, 512], { seed: 5 }) }
        if (preset === 'tiny') {
          e['lifInput'] = Tensor.randn(LIF_SHAPE, { seed: 6, std: 0.3 })
          e['lifGrad'] = Tensor.randn(LIF_SHAPE, { seed: 7 })
        }
        return e
      })
    const dirs = {
      tiny: path.join(root, 'tiny'),
      tinyHints: path.join(root, 'tiny-hints'),
      tinyDefault: path.join(root, 'tiny-default'),
      small: path.join(root, 'small'),
      smallHints: path.join(root, 'small-hints'),
    }
    for (const [key, preset, design] of [
      ['tiny', 'tiny', null],
      ['tinyHints', 'tiny', 'raw'],
      ['tinyDefault', 'tiny', 'default'],
      ['small', 'small', null],
      ['smallHints', 'small', 'raw'],
    ] as const) {
      const e = design ? undefined : extra(preset)
      writeRun(dirs[key], { preset, design, ...(e ? { extra: e } : {}) })
      for (const t of Object.values(e ?? {})) t.dispose()
    }
    const env = { ...process.env, RAYON_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) }
    const rows: { id: string; label: string; spikeir: Measured; torch: Measured }[] = []
    for (const c of CASES) {
      const dir = dirs[c.run]
      const mine: Measured[] = []
      const theirs: Measured[] = []
      // Each round runs both sides back to back, so that a slow spell of a shared machine
      // falls on both of them rather than on one side's whole measurement.
      for (let round = 0; round < rounds; round++) {
        const ours = spawnSync(process.execPath, [__filename, '--worker', c.id, dir, String(iters), args.device ?? 'cpu'], {
          encoding: 'utf8',
          env,
          maxBuffer: 16 * 1024 * 1024,
        })
        if (ours.status !== 0) throw new Error(`spikeir worker for ${c.id} failed (exit ${ours.status}):\n${ours.stderr}`)
        mine.push(lastJson(ours.stdout, 'spikeir worker'))
        const ref = runReference('bench.py', ['--case', c.id, '--dir', dir, '--iters', String(iters), '--threads', String(threads), '--device', referenceDevice], env as Record<string, string>)
        if (ref.status !== 0) throw new Error(`reference bench.py for ${c.id} failed (exit ${ref.status}):\n${ref.stderr}`)
        theirs.push(lastJson(ref.stdout, 'bench.py'))
      }
      const row = { id: c.id, label: c.label, spikeir: pooled(mine), torch: pooled(theirs) }
      rows.push(row)
      if (!args.json) console.error(`  ${c.label}: spikeir ${row.spikeir.medianSeconds.toFixed(3)} s, PyTorch ${row.torch.medianSeconds.toFixed(3)} s`)
    }
    printTable(rows, { threads, iters, rounds, device, reference: `${rows[0]?.torch.version ?? ''} (${referenceDevice})` })
    return {
      bench: 'compare',
      device,
      referenceDevice,
      threads,
      iterations: iters,
      rounds,
      reference: rows[0]?.torch.version,
      rows: rows.map((r) => ({
        case: r.id,
        label: r.label,
        spikeirSeconds: r.spikeir.medianSeconds,
        torchSeconds: r.torch.medianSeconds,
        timeRatio: r.spikeir.medianSeconds / r.torch.medianSeconds,
        spikeirPeakMiB: r.spikeir.maxRssKiB / 1024,
        torchPeakMiB: r.torch.maxRssKiB / 1024,
        memoryRatio: r.spikeir.maxRssKiB / r.torch.maxRssKiB,
        spikeirIdleMiB: r.spikeir.idleRssKiB / 1024,
        torchIdleMiB: r.torch.idleRssKiB / 1024,
      })),
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true })
  }
}

function printTable(
  rows: { label: string; spikeir: Measured; torch: Measured }[],
  meta: { threads: number; iters: number; rounds: number; device: string; reference: string },
): void {
  const mib = (k: number) => (k / 1024).toFixed(0)
  // Peak RSS, and in parentheses what the case added to the process after its imports.
  const peak = (m: Measured) => `${mib(m.maxRssKiB)} (+${mib(m.maxRssKiB - m.idleRssKiB)})`
  const head = ['case', 'spikeir s', 'PyTorch s', 'time ×', 'spikeir MiB', 'PyTorch MiB', 'memory ×']
  const body = rows.map((r) => [
    r.label,
    r.spikeir.medianSeconds.toFixed(3),
    r.torch.medianSeconds.toFixed(3),
    (r.spikeir.medianSeconds / r.torch.medianSeconds).toFixed(2),
    peak(r.spikeir),
    peak(r.torch),
    (r.spikeir.maxRssKiB / r.torch.maxRssKiB).toFixed(2),
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)))
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  console.log(`spikeir (${meta.device}) against ${meta.reference}, ${meta.threads} threads each, median of ${meta.rounds > 1 ? `${meta.rounds} rounds × ${meta.iters}, the sides alternating` : meta.iters} after a warm-up`)
  console.log(line(head))
  for (const b of body) console.log(line(b))
  const idle = (side: 'spikeir' | 'torch') => mib(Math.max(...rows.map((r) => r[side].idleRssKiB)))
  console.log(
    `× = spikeir / PyTorch (below 1: spikeir is faster or smaller). Peak RSS of one process per case (+ above the ${idle('spikeir')} MiB (spikeir) and ${idle('torch')} MiB (PyTorch) a process holds after its imports).`,
  )
}

/** The spikeir side of one case, in this process (`node compare.js --worker CASE DIR ITERS DEVICE`). */
function worker(id: string, dir: string, iters: number, device: string): void {
  const idle = process.resourceUsage().maxRSS
  initDevice({ adapter: device })
  const r = loadRun(dir)
  let body: () => void
  if (id.startsWith('step-')) {
    const t = trainer(r)
    let i = 0
    body = () => void t.step(i++)
  } else if (id === 'teacher') {
    const teacher = r.teacher!
    body = () => {
      scope(() => noGrad(() => teacher.forward(r.input)))
      synchronize()
    }
  } else if (id.startsWith('infer-')) {
    r.student.eval()
    const image = r.extra.get('image512')!
    body = () => {
      scope(() => noGrad(() => r.student.forward(image)))
      synchronize()
    }
  } else if (id === 'lif') {
    const n = r.config.student.neuron
    const x = r.extra.get('lifInput')!.toParam()
    const g = r.extra.get('lifGrad')!
    const options = {
      kind: 'lif',
      tau: n.tau ?? 2,
      vThreshold: n.vThreshold ?? 1,
      vReset: n.vReset ?? 0,
      decayInput: n.decayInput ?? true,
      detachReset: n.detachReset ?? false,
      surrogate: n.surrogate ?? 'sigmoid',
      alpha: n.alpha ?? 4,
    } as const
    body = () => {
      scope(() => {
        x.neuron(options).backward(g)
        zeroGrad()
      })
      synchronize()
    }
  } else {
    throw new Error(`compare: unknown case '${id}'`)
  }
  body()
  const seconds: number[] = []
  for (let i = 0; i < iters; i++) {
    const t0 = process.hrtime.bigint()
    body()
    seconds.push(Number(process.hrtime.bigint() - t0) / 1e9)
  }
  const result: Measured = {
    case: id,
    seconds,
    medianSeconds: median(seconds),
    maxRssKiB: process.resourceUsage().maxRSS,
    idleRssKiB: idle,
    version: `spikeir ${info().adapterName}`,
  }
  console.log(JSON.stringify(result))
}

if (require.main === module) {
  const [flag, id, dir, iters, device] = process.argv.slice(2)
  if (flag !== '--worker' || !id || !dir || !iters || !device) {
    console.error('usage: node compare.js --worker CASE DIR ITERS DEVICE (run by npm run bench -- compare)')
    process.exitCode = 2
  } else {
    try {
      worker(id, dir, Number(iters), device)
    } catch (e) {
      console.error(`compare worker ${id}: ${e instanceof Error ? e.message : String(e)}`)
      process.exitCode = 1
    }
  }
}
