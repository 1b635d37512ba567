/**
 * The table of every task's students: for each task its teacher, the student
 * distilled with the teacher's hints and the no-hint student trained at the
 * same budget (`benchmarks/tasks/students.sh`), all evaluated with
 * `spikeir eval` on the task's test set under its protocol, and the energy
 * ratio of `spikeir energy` on the first test image.
 *
 *   node dist/benchmarks/tasks/report.js [--out out/tasks] [--export weights] [--jobs 2] [--rows a,b] [--no-teachers]
 *
 * `--export DIR` first copies each finished student (no optimizer state) to
 * `DIR/spikerir_tiny_<row>.json` and `DIR/spikerir_tiny_<row>_nohints.json`;
 * the evaluations then run on those files, so the table is what
 * `npx spikeir eval --task … --model weights/…` gives. A student already
 * exported and newer than its checkpoint is left as it is. Each evaluation is
 * kept in OUT/eval/ and reused while it was measured on the same model file
 * and that file is older than it.
 * `--no-teachers` leaves out the teachers' evaluations that are not kept yet
 * (the published teachers' figures are in the README's teacher table).
 *
 * @module
 */
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

import { listImages } from '../../src/io'

const ROOT = path.resolve(__dirname, '..', '..', '..')
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js')
const SHARED = process.env['SHARED'] ?? path.join(ROOT, '..', 'shared')

/** One row of the table: a task at its options, its test set, teacher and runs. */
interface Row {
  /** Suffix of the bundled students' names and prefix of their runs' folders. */
  name: string
  task: string
  /** `spikeir eval` flags beyond --model (task options, data). */
  evalFlags: string[]
  testSet: string
  metric: string
  /** Teacher weights or checkpoint. */
  teacher: string
  /** The run under OUT that trains the teacher, for a teacher trained here (exported to `teacher`). */
  teacherRun?: string
  teacherName: string
  /** The figure measured independently of spikeir (the shared README) and the paper's, as text. */
  published: string
  /** The first test image, for the energy estimate. */
  energyImage: string
  /** Runs under OUT, or bundled weights (a path relative to the repository). */
  hkd: string
  teacherless: string
  /** The budget of the runs, as text. */
  budget: string
}

const data = (...p: string[]) => path.join(SHARED, 'data', ...p)
const models = (f: string) => path.join(SHARED, 'models', f)
const SHORT = '1,000 steps, batch 8 × 48², lr 2e-3'

function rows(out: string): Row[] {
  return [
    {
      name: 'sigma25',
      task: 'grey denoising σ 25',
      evalFlags: ['--task', 'denoise', '--sigma', '25', '--data', data('bsd68')],
      testSet: 'BSD68 (68)',
      metric: 'PSNR grey',
      teacher: models('dncnn_s_sigma25.safetensors'),
      teacherName: 'DnCNN-S σ 25',
      published: '29.24 / 29.23',
      energyImage: data('bsd68', 'test001.png'),
      hkd: 'weights/spikerir_width10_sigma25.json',
      teacherless: 'weights/spikerir_width10_sigma25_nohints.json',
      budget: 'a width-10 student, 8,000 steps from scratch with or without the default design (batch 8 × 40–64², lr 2e-3, EMA 0.999), then 6,000 more from those weights (lr 1e-3)',
    },
    {
      name: 'color_sigma25',
      task: 'colour denoising σ 25',
      evalFlags: ['--task', 'denoise', '--sigma', '25', '--data', data('cbsd68')],
      testSet: 'CBSD68 (68)',
      metric: 'PSNR RGB',
      teacher: models('cdncnn_b_color.safetensors'),
      teacherName: 'CDnCNN-B',
      published: '31.23 / 31.23',
      energyImage: firstImage(data('cbsd68')),
      hkd: path.join(out, 'cdenoise-hkd'),
      teacherless: path.join(out, 'cdenoise-teacherless'),
      budget: SHORT,
    },
    {
      name: 'jpeg_q10',
      task: 'JPEG q 10',
      evalFlags: ['--task', 'jpeg', '--quality', '10', '--data', data('jpeg', 'classic5')],
      testSet: 'Classic5 (5)',
      metric: 'PSNR grey',
      teacher: models('dncnn3.safetensors'),
      teacherName: 'DnCNN-3',
      published: '29.41 / 29.40',
      energyImage: firstImage(data('jpeg', 'classic5', 'target')),
      hkd: path.join(out, 'jpeg-hkd'),
      teacherless: path.join(out, 'jpeg-teacherless'),
      budget: SHORT,
    },
    {
      name: 'derain',
      task: 'deraining',
      evalFlags: ['--task', 'derain', '--data', data('derain', 'rain100l')],
      testSet: 'Rain100L (100)',
      metric: 'PSNR Y',
      teacher: models('prenet_rain100l.safetensors'),
      teacherName: 'PReNet',
      published: '37.48 / 37.48',
      energyImage: firstImage(data('derain', 'rain100l', 'input')),
      hkd: path.join(out, 'derain-hkd'),
      teacherless: path.join(out, 'derain-teacherless'),
      budget: `${SHORT}, synthetic streaks on CBSD432 less the 67 Rain100L scenes`,
    },
    {
      name: 'dehaze',
      task: 'dehazing',
      evalFlags: ['--task', 'dehaze', '--data', data('dehaze', 'sots_indoor')],
      testSet: 'SOTS-indoor (50)',
      metric: 'PSNR RGB',
      teacher: models('lkdnet_t_its_dehaze.safetensors'),
      teacherName: 'LKD-Net-T',
      published: '34.66 / —',
      energyImage: firstImage(data('dehaze', 'sots_indoor', 'input')),
      hkd: path.join(out, 'dehaze-hkd'),
      teacherless: path.join(out, 'dehaze-teacherless'),
      budget: `${SHORT}, synthetic haze on CBSD432`,
    },
    {
      name: 'deblur_gauss1.6',
      task: 'deblurring, Gaussian σ 1.6 px',
      evalFlags: ['--task', 'deblur', '--blur', '1.6', '--data', data('bsd68')],
      testSet: 'BSD68 (68)',
      metric: 'PSNR grey',
      teacher: 'weights/unet16_deblur_gauss1.6.json',
      teacherRun: path.join(out, 'deblur-teacher'),
      teacherName: 'U-Net (width 16, trained here)',
      published: '— / —',
      energyImage: data('bsd68', 'test001.png'),
      hkd: path.join(out, 'deblur-hkd'),
      teacherless: path.join(out, 'deblur-teacherless'),
      budget: `${SHORT}; teacher: train-teacher, 2,000 steps`,
    },
  ]
}

/** The first image of a folder in the order `eval` reads it ('' where the folder is absent). */
function firstImage(dir: string): string {
  return fs.existsSync(dir) ? (listImages(dir)[0] ?? '') : ''
}

interface Options {
  out: string
  exportDir: string | null
  jobs: number
  rows: string[] | null
  teachers: boolean
}

function fail(message: string): never {
  console.error(`tasks report: ${message}`)
  process.exit(2)
}

function parse(argv: string[]): Options {
  const o: Options = { out: path.join(ROOT, 'out', 'tasks'), exportDir: null, jobs: 2, rows: null, teachers: true }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const value = () => argv[++i] ?? fail(`${a} needs a value`)
    if (a === '--out') o.out = path.resolve(value())
    else if (a === '--export') o.exportDir = path.resolve(value())
    else if (a === '--jobs') o.jobs = Math.max(1, Number.parseInt(value(), 10) || fail('--jobs must be a positive integer'))
    else if (a === '--rows') o.rows = value().split(',')
    else if (a === '--no-teachers') o.teachers = false
    else fail(`unknown option '${a}' (--out, --export, --jobs, --rows, --no-teachers)`)
  }
  return o
}

/** The sidecar of a run folder's finished checkpoint, or the file itself; null while unfinished. */
function finished(modelOrRun: string): string | null {
  const p = path.resolve(ROOT, modelOrRun)
  if (p.endsWith('.json')) return fs.existsSync(p) ? p : null
  for (const f of ['student.json', 'teacher.json']) {
    const sidecar = path.join(p, f)
    if (!fs.existsSync(sidecar)) continue
    const result = path.join(p, 'result.json')
    // The run's final line (students.sh keeps it) says the schedule ended; a checkpoint alone may be mid-run.
    if (!fs.existsSync(result)) return null
    try {
      const r = JSON.parse(fs.readFileSync(result, 'utf8')) as { step?: number; steps?: number; interrupted?: boolean }
      return r.step !== undefined && r.step === r.steps && !r.interrupted ? sidecar : null
    } catch {
      return null
    }
  }
  return null
}

/** Runs the CLI with one rayon thread; resolves to its stdout (rejects with its stderr). */
function cli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, RAYON_NUM_THREADS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
    p.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`spikeir ${args.join(' ')}: exit ${code}\n${stderr.trim()}`))))
  })
}

/** The model file a kept `eval` or `energy` result was measured on. */
function measuredModel(result: Record<string, unknown>): unknown {
  const m = result['model']
  return typeof m === 'object' && m !== null ? (m as { file?: unknown }).file : m
}

/**
 * A CLI result kept in OUT/eval/KEY.json; recomputed when it was measured on
 * another model file, or the model is newer than it.
 */
async function kept(o: Options, key: string, model: string, args: string[]): Promise<Record<string, unknown>> {
  const file = path.join(o.out, 'eval', `${key}.json`)
  if (fs.existsSync(file) && fs.statSync(file).mtimeMs > fs.statSync(model).mtimeMs) {
    const old = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>
    if (measuredModel(old) === model) return old
  }
  const started = Date.now()
  console.error(`tasks report: spikeir ${args.slice(0, 3).join(' ')} … (${key})`)
  const text = await cli(args)
  const line = text.trim().split('\n').pop() ?? ''
  const result = JSON.parse(line) as Record<string, unknown>
  result['seconds'] = (Date.now() - started) / 1000
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, JSON.stringify(result))
  return result
}

/**
 * `spikeir export CKPT TARGET` unless TARGET is already newer than CKPT, so a
 * second report keeps the bundled files and the evaluations kept for them.
 */
async function exportIfNewer(checkpoint: string, target: string): Promise<void> {
  if (fs.existsSync(target) && fs.statSync(target).mtimeMs > fs.statSync(checkpoint).mtimeMs) return
  await cli(['export', checkpoint, target])
}

/** Runs `tasks` with at most `jobs` at a time. */
async function pool<T>(jobs: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(tasks.length)
  let next = 0
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++
      results[i] = await tasks[i]!()
    }
  }
  await Promise.all(Array.from({ length: Math.min(jobs, tasks.length) }, worker))
  return results
}

interface Figures {
  psnr: number | null
  ssim: number | null
  parameters: number | null
  energyRatio: number | null
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2))
  const all = rows(o.out).filter((r) => o.rows === null || o.rows.includes(r.name))
  if (o.rows) for (const n of o.rows) if (!all.some((r) => r.name === n)) fail(`unknown row '${n}' (${rows(o.out).map((r) => r.name).join(', ')})`)

  // Students as bundled files: exported from finished runs, or the bundled ones already.
  const models = new Map<string, string | null>()
  for (const r of all) {
    for (const [which, source] of [['hkd', r.hkd], ['teacherless', r.teacherless]] as const) {
      let file = finished(source)
      if (file && o.exportDir && !source.startsWith('weights/')) {
        const target = path.join(o.exportDir, `spikerir_tiny_${r.name}${which === 'teacherless' ? '_nohints' : ''}.json`)
        await exportIfNewer(file, target)
        file = target
      }
      models.set(`${r.name}/${which}`, file)
    }
    // A teacher trained here is bundled beside its students.
    if (r.teacherRun && o.exportDir) {
      const run = finished(r.teacherRun)
      if (run) await exportIfNewer(run, path.join(o.exportDir, path.basename(r.teacher)))
    }
  }

  const jobs: (() => Promise<void>)[] = []
  const figures = new Map<string, Figures>()
  for (const r of all) {
    // A teacher trained here is read from its run until it is exported.
    let teacherFile = path.resolve(ROOT, r.teacher)
    if (!fs.existsSync(teacherFile) && r.teacherRun) teacherFile = finished(r.teacherRun) ?? teacherFile
    const entries: [string, string | null][] = [
      ['hkd', models.get(`${r.name}/hkd`) ?? null],
      ['teacherless', models.get(`${r.name}/teacherless`) ?? null],
      ['teacher', fs.existsSync(teacherFile) ? teacherFile : null],
    ]
    for (const [which, model] of entries) {
      const f: Figures = { psnr: null, ssim: null, parameters: null, energyRatio: null }
      figures.set(`${r.name}/${which}`, f)
      if (!model) continue
      const key = `${r.name}-${which}`
      const evalArgs = ['eval', '--model', model, ...r.evalFlags, '--json', '--quiet']
      if (which === 'teacher' && !o.teachers && !fs.existsSync(path.join(o.out, 'eval', `${key}.json`))) continue
      jobs.push(async () => {
        const e = await kept(o, key, model, evalArgs)
        f.psnr = e['psnr'] as number
        f.ssim = e['ssim'] as number
      })
      if (which !== 'teacher' && r.energyImage) {
        const taskFlags = r.evalFlags.slice(0, 2)
        jobs.push(async () => {
          const e = await kept(o, `${key}-energy`, model, ['energy', '--model', model, '--teacher', teacherFile, ...taskFlags, '--image', r.energyImage, '--json'])
          f.parameters = (e['model'] as { parameters: number }).parameters
          f.energyRatio = e['teacherToModelEnergy'] as number
          const t = figures.get(`${r.name}/teacher`)!
          t.parameters = (e['teacher'] as { parameters: number }).parameters
        })
      }
    }
  }
  await pool(o.jobs, jobs)

  const dB = (x: number | null) => (x === null ? '—' : x.toFixed(2))
  const ssim = (x: number | null) => (x === null ? '' : ` / ${x.toFixed(4)}`)
  console.log('| task | test set | metric | teacher | teacher (spikeir) | teacher (independent / paper) | student, hints | student, no hints | hints − no hints | student (hints) − teacher | teacher / student energy | parameters (student / teacher) |')
  console.log('|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|')
  for (const r of all) {
    const h = figures.get(`${r.name}/hkd`)!
    const b = figures.get(`${r.name}/teacherless`)!
    const t = figures.get(`${r.name}/teacher`)!
    const diff = (a: number | null, c: number | null) => (a === null || c === null ? '—' : `${a - c >= 0 ? '+' : ''}${(a - c).toFixed(2)}`)
    console.log(
      `| ${r.task} | ${r.testSet} | ${r.metric} | ${r.teacherName} | ${dB(t.psnr)}${ssim(t.ssim)} | ${r.published} | ${dB(h.psnr)}${ssim(h.ssim)} | ${dB(b.psnr)}${ssim(b.ssim)} | ` +
        `${diff(h.psnr, b.psnr)} | ${diff(h.psnr, t.psnr)} | ${h.energyRatio === null ? '—' : `${h.energyRatio.toFixed(1)}×`} | ` +
        `${h.parameters?.toLocaleString('en-US') ?? '—'} / ${t.parameters?.toLocaleString('en-US') ?? '—'} |`,
    )
  }
  console.log('\nBudgets:')
  for (const r of all) console.log(`- ${r.task}: ${r.budget}`)
}

main().catch((e: unknown) => fail(e instanceof Error ? e.message : String(e)))
