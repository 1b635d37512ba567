import { spawnSync } from 'node:child_process'
import * as path from 'node:path'

import test from 'ava'

const main = path.join(__dirname, '..', 'src', 'cli', 'main.js')

function cli(...args: string[]) {
  return spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' })
}

test('info --json prints one JSON object naming the adapter', (t) => {
  const r = cli('info', '--json')
  t.is(r.status, 0, r.stderr)
  const info = JSON.parse(r.stdout.trim().split('\n').pop()!)
  t.is(typeof info.adapterName, 'string')
  t.true(info.adapterName.length > 0)
  t.is(typeof info.maxStorageBindingBytes, 'number')
})

test('an unknown option is a usage error that names it', (t) => {
  const r = cli('info', '--bogus')
  t.is(r.status, 2)
  t.regex(r.stderr, /unknown option --bogus/)
})

test('an unknown command is a usage error that lists the commands', (t) => {
  const r = cli('frobnicate')
  t.is(r.status, 2)
  t.regex(r.stderr, /unknown command 'frobnicate'/)
  t.regex(r.stderr, /info/)
})

test('an adapter that does not exist is an error that lists the available ones', (t) => {
  const r = cli('info', '--adapter', 'no-such-adapter-xyz')
  t.is(r.status, 1)
  t.regex(r.stderr, /no adapter matches 'no-such-adapter-xyz'.*available/)
})

test('the demo runs end to end on the built-in data and writes its results', (t) => {
  const fs = require('node:fs') as typeof import('node:fs')
  const os = require('node:os') as typeof import('node:os')
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-demo-'))
  const r = cli('demo', '--out', out, '--steps', '3', '--teacher-steps', '3', '--json')
  t.is(r.status, 0, r.stderr)
  const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'))
  t.deepEqual(Object.keys(results.psnr).sort(), ['studentBaseline', 'studentHkd', 'teacher'])
  t.true(Object.values(results.psnr as Record<string, number>).every((v) => Number.isFinite(v) && v > 10))
  t.true(results.parameters.student < results.parameters.teacher)
  for (const f of ['sample_clean.png', 'sample_noisy.png', 'sample_studentHkd.png', 'teacher/teacher.json', 'student-hkd/student-hkd.log.jsonl']) {
    t.true(fs.existsSync(path.join(out, f)), f)
  }
  // The student learns with distill's default design: standardised hints at γ = 0.01 and the
  // teacher's output as a second target; the baseline with neither.
  const steps = (run: string) => fs.readFileSync(path.join(out, run, `${run}.log.jsonl`), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
  for (const s of steps('student-hkd')) {
    t.is(s.gamma, 0.01)
    t.true(s.hint > 0 && s.output > 0, JSON.stringify(s))
  }
  for (const s of steps('student-baseline')) t.true(s.hint === 0 && s.output === 0, JSON.stringify(s))
  const config = JSON.parse(fs.readFileSync(path.join(out, 'student-hkd', 'student-hkd.json'), 'utf8')).config
  t.like(config, { hintNorm: true, outputWeight: 0.5, gamma: 0.01 })
  // The trained student denoises a file and evaluates from its checkpoint.
  const ckpt = path.join(out, 'student-hkd', 'student-hkd.json')
  const d = cli('denoise', '--model', ckpt, path.join(out, 'sample_noisy.png'), path.join(out, 'den.png'))
  t.is(d.status, 0, d.stderr)
  t.true(fs.existsSync(path.join(out, 'den.png')))
  // Exported, the student ships without optimizer state and evaluates identically.
  const shipped = path.join(out, 'shipped', 'tiny.json')
  const e = cli('export', ckpt, shipped)
  t.is(e.status, 0, e.stderr)
  t.is(JSON.parse(fs.readFileSync(shipped, 'utf8')).trainingState, null)
  t.true(fs.existsSync(path.join(out, 'shipped', 'tiny.safetensors')))
  fs.mkdirSync(path.join(out, 'eval'))
  fs.copyFileSync(path.join(out, 'sample_clean.png'), path.join(out, 'eval', 'clean.png'))
  const psnr = (model: string) => {
    const r = cli('eval', '--model', model, '--data', path.join(out, 'eval'), '--sigma', '25', '--json')
    t.is(r.status, 0, r.stderr)
    return JSON.parse(r.stdout).psnr as number
  }
  t.is(psnr(shipped), psnr(ckpt))
  t.regex(cli('export', ckpt, path.join(out, 'x.safetensors')).stderr, /must be a sidecar path ending in \.json/)
  fs.rmSync(out, { recursive: true })
})

test('training commands reject bad options by name', (t) => {
  t.regex(cli('distill', '--patch', '30').stderr, /--patch must be a multiple of 4/)
  t.regex(cli('distill', '--preset', 'huge').stderr, /unknown --preset 'huge'/)
  t.regex(cli('distill', '--no-hints', '--teacher', 'x.json').stderr, /contradict/)
  t.regex(cli('distill', '--hint-norm', '--raw-hints').stderr, /--hint-norm and --raw-hints contradict/)
  t.regex(cli('distill', '--steps', '-1').stderr, /--steps must be an integer ≥ 1, got -1/)
  t.regex(cli('train-teacher', '--arch', 'vgg').stderr, /unknown --arch 'vgg'/)
  t.regex(cli('eval', '--data', '/nonexistent-dir', '--model', '/nonexistent.json').stderr, /does not exist/)
  t.regex(cli('denoise', 'only-one-arg').stderr, /expected IN and OUT/)
})

test('distill --neuron plif --reset soft trains a student with a learnable τ and the soft reset', (t) => {
  const fs = require('node:fs') as typeof import('node:fs')
  const os = require('node:os') as typeof import('node:os')
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-neuron-'))
  const r = cli('distill', '--no-hints', '--neuron', 'plif', '--reset', 'soft', '--width', '4', '--time-steps', '2', '--steps', '2', '--patch', '16', '--batch', '2', '--lr', '1e-2', '--warmup', '0', '--no-report', '--quiet', '--out', out)
  t.is(r.status, 0, r.stderr)
  const info = JSON.parse(fs.readFileSync(path.join(out, 'student.json'), 'utf8'))
  t.deepEqual(info.config.model.options.neuron, { kind: 'plif', vReset: null })
  // PLIF's τ = 1 + exp(−w) starts at 2 (w = 0); after two AdamW steps at lr 1e-2 every w has moved.
  const file = fs.readFileSync(path.join(out, info.model))
  const headerLength = Number(file.readBigUInt64LE(0))
  const header = JSON.parse(file.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>
  const taus = Object.entries(header).filter(([name]) => name.endsWith('.w'))
  t.true(taus.length >= 10, `PLIF parameters: ${taus.map(([n]) => n).join(', ')}`)
  for (const [name, { shape, data_offsets }] of taus) {
    t.deepEqual(shape, [1], name)
    const w = file.readFloatLE(8 + headerLength + data_offsets[0])
    t.true(w !== 0 && Math.abs(w) < 0.1, `${name}: w = ${w}`)
  }
})
