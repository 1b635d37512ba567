/**
 * Every script of examples/ (compiled with the project under the strict
 * tsconfig) runs as written on tiny sizes and does what it says; the
 * README's API example is examples/quickstart.ts.
 */
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import test from 'ava'

import { DnCNN, Tensor, listImages, loadModel, psnr, readImage, scope, writeImage } from '../index'
import { sharedDir } from './helpers'

const repo = path.join(__dirname, '..', '..')
const compiled = path.join(__dirname, '..', 'examples')
const tested = ['custom-teacher', 'denoise-folder', 'distill-dncnn', 'quickstart']

function example(name: string, args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [path.join(compiled, `${name}.js`), ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, SPIKEIR_EXAMPLE_TINY: '1' },
  })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, all: `${r.stdout}\n${r.stderr}` }
}

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-example-'))
}

/** The student's JSONL log: one record a step, each with a hint loss. */
function hintLosses(log: string): number[] {
  return fs
    .readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { hint: number }).hint)
}

const dB = (text: string, label: string) => Number(new RegExp(`${label}: PSNR (\\d+\\.\\d+) dB`).exec(text)?.[1])

test('every script of examples/ is run by this file', (t) => {
  const scripts = fs
    .readdirSync(path.join(repo, 'examples'))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => f.replace(/\.ts$/, ''))
    .sort()
  t.deepEqual(scripts, tested)
  for (const s of scripts) t.true(fs.existsSync(path.join(compiled, `${s}.js`)), `${s}.ts was not compiled`)
})

for (const mode of ['the published DnCNN-S (when ../shared has it)', 'a DnCNN it trains itself'] as const) {
  test(`distill-dncnn distils a student from ${mode} and reports PSNR and energy of both`, (t) => {
    const dir = tmpDir()
    try {
      const own = mode.startsWith('a DnCNN')
      const r = example('distill-dncnn', ['--out', 'run', ...(own ? ['--train-teacher'] : [])], dir)
      t.is(r.status, 0, r.all)
      if (!own && sharedDir() !== null) t.notRegex(r.stdout, /training a small DnCNN teacher/)
      t.is(fs.existsSync(path.join(dir, 'run', 'teacher.json')), own || sharedDir() === null)
      const hints = hintLosses(path.join(dir, 'run', 'student.log.jsonl'))
      t.is(hints.length, 4)
      t.true(hints.every((h) => h > 0), 'the student got no hints')
      for (const who of ['teacher', 'student']) {
        t.true(dB(r.stdout, who) > 10, `${who}: ${r.stdout}`)
        t.regex(r.stdout, new RegExp(`${who}: .* µJ per image`))
      }
      const { model, spec } = loadModel(path.join(dir, 'run', 'student.json'))
      t.is(spec.kind, 'spikerir')
      model.dispose()
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
}

test('custom-teacher trains its own module as the teacher and distils a reloadable student from its hints', (t) => {
  const dir = tmpDir()
  try {
    const r = example('custom-teacher', ['--out', 'run'], dir)
    t.is(r.status, 0, r.all)
    const hints = hintLosses(path.join(dir, 'run', 'student.log.jsonl'))
    t.is(hints.length, 4)
    t.true(hints.every((h) => h > 0), 'the student got no hints')
    const trained = /student: (\d+\.\d+) dB at step 4/.exec(r.stdout)?.[1]
    const reloaded = /reloaded student: (\d+\.\d+) dB/.exec(r.stdout)?.[1]
    t.truthy(trained, r.stdout)
    // The checkpoint alone gives back the model that was validated.
    t.is(reloaded, trained)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('denoise-folder restores every image of a folder with the bundled student, keeping names, formats and sizes', (t) => {
  const dir = tmpDir()
  try {
    fs.mkdirSync(path.join(dir, 'noisy'))
    fs.writeFileSync(path.join(dir, 'noisy', 'notes.txt'), 'not an image')
    // Flat regions and a ramp, as in photographs; sides that are not multiples
    // of the student's 4, so padding is exercised.
    const n = 42
    const pairs = [0, 1].map((k) => {
      const clean = new Float32Array(n * n)
      for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) clean[y * n + x] = (x + 2 * y < 50 + 9 * k ? 0.3 : 0.7) + (y > 30 ? 0.004 * x : 0)
      const target = Tensor.fromData(clean, [1, 1, n, n])
      return { target, input: scope(() => target.add(Tensor.randn(target.shape, { seed: 9 + k, std: 25 / 255 }))) }
    })
    const names = ['a.png', 'b.bmp']
    pairs.forEach((p, i) => writeImage(path.join(dir, 'noisy', names[i]!), p.input))
    const r = example('denoise-folder', ['noisy', 'clean'], dir)
    t.is(r.status, 0, r.all)
    t.deepEqual(listImages(path.join(dir, 'clean')).map((f) => path.basename(f)), names)
    pairs.forEach((p, i) => {
      const target = p.target.toFloat32Array()
      const noisy = readImage(path.join(dir, 'noisy', names[i]!), { channels: 1 })
      const out = readImage(path.join(dir, 'clean', names[i]!), { channels: 1 })
      t.deepEqual(out.shape, [1, 1, n, n])
      const before = psnr(noisy.toFloat32Array(), target)
      const after = psnr(out.toFloat32Array(), target)
      t.log(`${names[i]}: ${before.toFixed(2)} dB noisy → ${after.toFixed(2)} dB denoised`)
      t.true(after > before + 3)
      for (const x of [noisy, out, p.input, p.target]) x.dispose()
    })
    t.is(example('denoise-folder', ['noisy'], dir).status, 2)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test("quickstart (the README's example) distils and scores a student", (t) => {
  const dir = tmpDir()
  try {
    const shared = sharedDir()
    let teacher = shared === null ? '' : path.join(shared, 'models', 'dncnn_s_sigma25.safetensors')
    if (shared === null) {
      // DnCNN-S's shape with random weights: the same code path as the published file.
      teacher = path.join(dir, 'dncnn_random.safetensors')
      const net = new DnCNN({ seed: 1 })
      net.saveSafetensors(teacher)
      net.dispose()
      t.log('../shared is absent: a random DnCNN-S stands in for the published one')
    }
    const r = example('quickstart', [teacher, '2'], dir)
    t.is(r.status, 0, r.all)
    t.regex(r.stdout, /^step 1: \d+\.\d+ dB\nstep 2: \d+\.\d+ dB\nheld out: \d+\.\d+ dB\n$/)
    t.is(hintLosses(path.join(dir, 'runs', 'quickstart', 'student.log.jsonl')).length, 2)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test("the README's API example is examples/quickstart.ts with the package's import", (t) => {
  const readme = fs.readFileSync(path.join(repo, 'README.md'), 'utf8')
  const block = /```ts\n(import \{[^\n]*\} from 'spikeir'\n[\s\S]*?)```/g
  const script = fs.readFileSync(path.join(repo, 'examples', 'quickstart.ts'), 'utf8')
  const body = script.slice(script.search(/^import \{/m)).replace("from '../index'", "from 'spikeir'")
  const blocks = [...readme.matchAll(block)].map((m) => m[1])
  t.true(blocks.includes(body), 'no README code block matches examples/quickstart.ts')
  t.true(body.trim().split('\n').length <= 25)
})
