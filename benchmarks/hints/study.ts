/**
 * The hint-design study: which way of using a teacher's features makes a
 * spiking student learn faster and end better than without them?
 *
 * Every design trains the tiny SpikerIR student on Train400 at σ = 25 with
 * the same seeds, data, steps and schedule as the no-hint baseline, and is
 * validated on Set12 every 250 steps (the `spikeir eval` noise protocol).
 * Runs are `spikeir distill` processes with checkpoints, so an interrupted
 * study resumes where it stopped: finished runs are kept, unfinished ones
 * continue from their last checkpoint.
 *
 *   node dist/benchmarks/hints/study.js run [--steps 1000] [--seeds 1,2] [--jobs 2] [--threads N] [--designs a,b] [--out out/hints]
 *
 * `--threads` is the threads of each run (default: the 2 cores shared
 * among the jobs); `--jobs 1 --threads 1` leaves one core free.
 *   node dist/benchmarks/hints/study.js report [--out out/hints] [--svg docs/hints.svg]
 *
 * `report` prints the README's tables (Markdown) from whatever runs have
 * finished, and draws the curves. The `unet-decoder` design needs a U-Net
 * teacher first (`bash benchmarks/hints/unet-teacher.sh`, a long run of its
 * own; `--unet-teacher FILE` names another); until it exists `run` leaves
 * that design out and says so.
 *
 * @module
 */
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

import { lineChart, PALETTE } from '../../src/report/svg'

const ROOT = path.resolve(__dirname, '..', '..', '..')
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js')

/** One way of using the teacher, as `spikeir distill` flags (beyond the shared ones). */
interface Design {
  name: string
  what: string
  flags: (steps: number, shared: string, unetTeacher: string) => string[]
  /** The design needs the U-Net teacher of `benchmarks/hints/unet-teacher.sh`. */
  unet?: true
}

const DNCNN = (shared: string) => path.join(shared, 'models', 'dncnn_s_sigma25.safetensors')

/**
 * The designs. γ of standardised hints is 0.01: a standardised tap starts
 * with an MSE near 1 (three taps near 3), so 0.01 puts the hint term at
 * about the size of the L1 term early in training, as γ = 0.12 did for the
 * raw features.
 */
export const DESIGNS: Design[] = [
  { name: 'baseline', what: 'no teacher (L1 + 0.1·FFT)', flags: () => ['--no-hints'] },
  {
    name: 'current',
    what: 'DnCNN layers 5/10/15 → encoder1/decoder1/refine, raw features, γ = 0.12',
    flags: (_, s) => ['--teacher', DNCNN(s), '--raw-hints', '--gamma', '0.12', '--output-weight', '0'],
  },
  {
    name: 'normalised',
    what: 'the same taps, teacher features standardised per channel, γ = 0.01',
    flags: (_, s) => ['--teacher', DNCNN(s), '--hint-norm', '--gamma', '0.01', '--output-weight', '0'],
  },
  {
    name: 'output',
    what: "output distillation alone: + 0.5·L1 to the teacher's restored image",
    flags: (_, s) => ['--teacher', DNCNN(s), '--raw-hints', '--gamma', '0', '--output-weight', '0.5'],
  },
  {
    name: 'output+normalised',
    what: 'output distillation (0.5) and standardised hints (γ = 0.01)',
    flags: (_, s) => ['--teacher', DNCNN(s), '--hint-norm', '--gamma', '0.01', '--output-weight', '0.5'],
  },
  {
    name: 'strong-output+normalised',
    what: 'output distillation at twice the weight (1.0) and standardised hints (γ = 0.01)',
    flags: (_, s) => ['--teacher', DNCNN(s), '--hint-norm', '--gamma', '0.01', '--output-weight', '1'],
  },
  {
    name: 'normalised-warmup-decay',
    what: 'standardised hints, γ ramped up over 100 steps then cosine-decayed to 0 at the end',
    flags: (steps, s) => ['--teacher', DNCNN(s), '--hint-norm', '--gamma', '0.01', '--gamma-schedule', `warmup-cosine:100:${steps}`, '--output-weight', '0'],
  },
  {
    name: 'normalised-off-half',
    what: 'standardised hints for the first half of training, then none',
    flags: (steps, s) => ['--teacher', DNCNN(s), '--hint-norm', '--gamma', '0.01', '--gamma-schedule', `off-after:${Math.floor(steps / 2)}`, '--output-weight', '0'],
  },
  {
    // Not a hint design: the student itself 1.5× wider (12, 24, 48 channels;
    // 159,475 parameters against 71,393), to see how much of the gap to the
    // teacher is the student's capacity rather than the way it is taught.
    name: 'wide-baseline',
    what: 'no teacher, a student of width 12 instead of 8 (`--width 12`, 0.16 M parameters)',
    flags: () => ['--no-hints', '--width', '12'],
  },
  {
    name: 'wide-output+normalised',
    what: 'the default design (output distillation 0.5, standardised hints γ = 0.01) with the width-12 student',
    flags: (_, s) => ['--teacher', DNCNN(s), '--hint-norm', '--gamma', '0.01', '--output-weight', '0.5', '--width', '12'],
  },
  {
    // Width 10 (10, 20, 40 channels; 0.11 M parameters): the widest student
    // within the ≈ 0.1 M a tiny preset may grow to.
    name: 'width10-baseline',
    what: 'no teacher, a student of width 10 (`--width 10`, 0.11 M parameters)',
    flags: () => ['--no-hints', '--width', '10'],
  },
  {
    name: 'width10-output+normalised',
    what: 'the default design with the width-10 student',
    flags: (_, s) => ['--teacher', DNCNN(s), '--hint-norm', '--gamma', '0.01', '--output-weight', '0.5', '--width', '10'],
  },
  {
    // Not hint designs: the student's neuron. PLIF learns each layer's τ
    // (initialised to 2, 17 parameters); the soft reset subtracts V_th after
    // a spike instead of zeroing the membrane, so what exceeds the threshold
    // carries over to the next time step.
    name: 'plif-baseline',
    what: 'no teacher, PLIF neurons (a learnable τ per layer, from 2) instead of LIF (`--neuron plif`)',
    flags: () => ['--no-hints', '--neuron', 'plif'],
  },
  {
    name: 'soft-reset-baseline',
    what: 'no teacher, LIF neurons with the soft reset (V_th subtracted after a spike; `--reset soft`)',
    flags: () => ['--no-hints', '--reset', 'soft'],
  },
  {
    // The paper's setting: the teacher's decoder features at the student's
    // own levels (bottleneck, ½ and full resolution), standardised.
    name: 'unet-decoder',
    what: 'a U-Net teacher (trained here) whose decoder levels 3/2/1 hint the student\'s, standardised, γ = 0.01',
    flags: (_, _s, unet) => ['--teacher', unet, '--hints', 'decoder3:encoder3,decoder2:decoder2,decoder1:decoder1', '--hint-norm', '--gamma', '0.01', '--output-weight', '0'],
    unet: true,
  },
]

interface Options {
  out: string
  steps: number
  seeds: number[]
  jobs: number
  /** Threads of each run. */
  threads: number
  designs: Design[]
  shared: string
  svg: string | null
  /** Sidecar of the U-Net teacher (default OUT/unet-teacher/teacher.json). */
  unetTeacher: string
}

function parse(argv: string[]): { command: string; o: Options } {
  const [command = 'report', ...rest] = argv
  const get = (flag: string) => {
    const i = rest.indexOf(flag)
    return i >= 0 ? rest[i + 1] : undefined
  }
  const names = get('--designs')?.split(',')
  const designs = names ? names.map((n) => DESIGNS.find((d) => d.name === n) ?? fail(`unknown design '${n}' (${DESIGNS.map((d) => d.name).join(', ')})`)) : DESIGNS
  const o: Options = {
    out: get('--out') ?? path.join(ROOT, 'out', 'hints'),
    steps: Number(get('--steps') ?? 1000),
    seeds: (get('--seeds') ?? '1,2').split(',').map(Number),
    jobs: Number(get('--jobs') ?? 2),
    threads: 0,
    designs,
    shared: get('--shared') ?? process.env['SHARED'] ?? path.join(ROOT, '..', 'shared'),
    svg: get('--svg') ?? null,
    unetTeacher: '',
  }
  o.threads = Number(get('--threads') ?? Math.max(1, Math.floor(2 / o.jobs)))
  if (!Number.isInteger(o.jobs) || o.jobs < 1) fail(`--jobs must be a positive integer, got ${get('--jobs')}`)
  if (!Number.isInteger(o.threads) || o.threads < 1) fail(`--threads must be a positive integer, got ${get('--threads')}`)
  o.unetTeacher = get('--unet-teacher') ?? path.join(o.out, 'unet-teacher', 'teacher.json')
  if (!Number.isInteger(o.steps) || o.steps < 250) fail(`--steps must be an integer of at least 250, got ${get('--steps')}`)
  if (o.seeds.some((s) => !Number.isInteger(s) || s < 0)) fail(`--seeds must be non-negative integers, got ${get('--seeds')}`)
  return { command, o }
}

function fail(message: string): never {
  console.error(`hints study: ${message}`)
  process.exit(2)
}

const runDir = (o: Options, d: Design, seed: number) => path.join(o.out, `${d.name}-s${seed}`)

/** The step a run's checkpoint is at (0 without one). */
function stepOf(dir: string): number {
  const f = path.join(dir, 'student.json')
  if (!fs.existsSync(f)) return 0
  try {
    return (JSON.parse(fs.readFileSync(f, 'utf8')) as { step: number }).step
  } catch {
    return 0
  }
}

/** Trains one design at one seed (or resumes it); resolves with the exit code. */
function train(o: Options, d: Design, seed: number, threads: number): Promise<number> {
  const dir = runDir(o, d, seed)
  const done = stepOf(dir)
  const data = (n: string) => path.join(o.shared, 'data', n)
  const args = [
    CLI, 'distill', ...d.flags(o.steps, o.shared, o.unetTeacher),
    '--data', data('train400'), '--val-data', data('set12'), '--val-limit', '12', '--val-every', '250',
    '--steps', String(o.steps), '--patch', '48', '--batch', '8', '--lr', '2e-3', '--warmup', '100',
    '--seed', String(seed), '--checkpoint-every', '250', '--out', dir, '--json', '--quiet', '--no-report',
    ...(done > 0 ? ['--resume', path.join(dir, 'student.json')] : []),
  ]
  fs.mkdirSync(dir, { recursive: true })
  const log = fs.openSync(path.join(dir, 'study.txt'), 'a')
  fs.writeSync(log, `${new Date().toISOString()} ${done > 0 ? `resume at ${done}` : 'start'}: node ${args.join(' ')}\n`)
  return new Promise((resolve) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', log, log], env: { ...process.env, RAYON_NUM_THREADS: String(threads) } })
    p.on('exit', (code) => {
      fs.closeSync(log)
      resolve(code ?? 1)
    })
  })
}

async function run(o: Options): Promise<void> {
  for (const need of [path.join(o.shared, 'data', 'train400'), path.join(o.shared, 'data', 'set12'), DNCNN(o.shared)]) {
    if (!fs.existsSync(need)) fail(`${need} is missing (set --shared to the folder holding data/ and models/)`)
  }
  // The U-Net design waits for its teacher (a long run of its own).
  const designs = o.designs.filter((d) => {
    if (!d.unet || fs.existsSync(o.unetTeacher)) return true
    console.log(`hints study: ${d.name} left out: no U-Net teacher at ${o.unetTeacher} (train it with benchmarks/hints/unet-teacher.sh)`)
    return false
  })
  // Seed by seed, so a study cut short has every design at the first seed.
  const queue = o.seeds.flatMap((seed) => designs.map((d) => ({ d, seed }))).filter(({ d, seed }) => stepOf(runDir(o, d, seed)) < o.steps)
  console.log(`hints study: ${queue.length} runs to do (${o.jobs} at a time), ${o.steps} steps each, in ${o.out}`)
  const threads = o.threads
  const worker = async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const t0 = Date.now()
      const code = await train(o, job.d, job.seed, threads)
      console.log(`${job.d.name} seed ${job.seed}: exit ${code} after ${((Date.now() - t0) / 60000).toFixed(1)} min (step ${stepOf(runDir(o, job.d, job.seed))})`)
    }
  }
  await Promise.all(Array.from({ length: o.jobs }, worker))
}

/** What one finished run measured. */
interface RunResult {
  curve: Map<number, number>
  stepSeconds: number
}

function result(o: Options, d: Design, seed: number): RunResult | null {
  const dir = runDir(o, d, seed)
  if (stepOf(dir) < o.steps) return null
  const info = JSON.parse(fs.readFileSync(path.join(dir, 'student.json'), 'utf8')) as { metrics: { validation: { step: number; metrics: { psnr: number } }[] } }
  const curve = new Map(info.metrics.validation.map((v) => [v.step, v.metrics.psnr] as const))
  const lines = fs.readFileSync(path.join(dir, 'student.log.jsonl'), 'utf8').split('\n').filter(Boolean)
  const stepSeconds = lines.reduce((a, l) => a + (JSON.parse(l) as { seconds: number }).seconds, 0) / lines.length
  return { curve, stepSeconds }
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length
const f2 = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '—')

function report(o: Options): void {
  const steps = Array.from({ length: Math.floor(o.steps / 250) }, (_, i) => (i + 1) * 250)
  const rows = o.designs.map((d) => {
    const runs = o.seeds.map((s) => ({ seed: s, r: result(o, d, s) })).filter((x): x is { seed: number; r: RunResult } => x.r !== null)
    const at = (step: number) => mean(runs.map((x) => x.r.curve.get(step) ?? NaN))
    return { d, runs, at, seeds: runs.map((x) => x.seed) }
  })
  const base = rows.find((r) => r.d.name === 'baseline')
  console.log(`Tiny SpikerIR student, Train400 → Set12 at σ = 25, ${o.steps} steps (batch 8 × 48², lr 2e-3, cosine), teacher DnCNN-S σ = 25.`)
  console.log(`PSNR (dB) on Set12, mean over the seeds listed; Δ is against the baseline at the same seeds.\n`)
  console.log(`| design | seeds | ${steps.map((s) => `step ${s}`).join(' | ')} | Δ final | steps to the baseline's final | s/step |`)
  console.log(`|---|---|${steps.map(() => '---:').join('|')}|---:|---:|---:|`)
  for (const row of rows) {
    if (!row.runs.length) {
      console.log(`| ${row.d.name} | none yet | ${steps.map(() => '—').join(' | ')} | — | — | — |`)
      continue
    }
    // The baseline restricted to this row's seeds, so every Δ compares like with like.
    const baseAt = (step: number) => mean(row.seeds.map((s) => base?.runs.find((x) => x.seed === s)?.r.curve.get(step) ?? NaN))
    const final = baseAt(o.steps)
    const reach = steps.find((s) => row.at(s) >= final)
    const delta = row.at(o.steps) - final
    console.log(
      `| ${row.d.name} | ${row.seeds.join(', ')} | ${steps.map((s) => f2(row.at(s))).join(' | ')} | ${Number.isFinite(delta) ? (delta >= 0 ? '+' : '') + delta.toFixed(2) : '—'} | ${reach ?? (Number.isFinite(final) ? 'not reached' : '—')} | ${mean(row.runs.map((x) => x.r.stepSeconds)).toFixed(2)} |`,
    )
  }
  console.log('\nDesigns:')
  for (const d of o.designs) console.log(`- **${d.name}**: ${d.what}`)
  const cost = rows.flatMap((r) => r.runs.map((x) => x.r.stepSeconds * o.steps)).reduce((a, b) => a + b, 0)
  console.log(`\nCost: ${(cost / 3600).toFixed(1)} h of step time over ${rows.reduce((a, r) => a + r.runs.length, 0)} finished runs (validation not included).`)
  if (o.svg) {
    const series = rows
      .filter((r) => r.runs.length)
      .map((r, i) => ({
        label: r.d.name,
        color: PALETTE[i % PALETTE.length]!,
        points: steps.map((s) => [s, r.at(s)] as const),
        markers: true,
        ...(r.d.name === 'baseline' ? { dash: '6 3', strokeWidth: 2.5 } : {}),
      }))
    fs.mkdirSync(path.dirname(o.svg), { recursive: true })
    fs.writeFileSync(o.svg, lineChart({ title: `Set12 PSNR against step (σ = 25, mean over seeds)`, xLabel: 'step', yLabel: 'PSNR (dB)', series, width: 640, height: 340 }))
    console.log(`\nwrote ${o.svg}`)
  }
}

const { command, o } = parse(process.argv.slice(2))
if (command === 'run') void run(o).then(() => report(o))
else if (command === 'report') report(o)
else fail(`unknown command '${command}' (run, report)`)
