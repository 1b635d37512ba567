/**
 * The bundled students of every task (README "Every task"): each loads as
 * the tiny SpikerIR student with its task's channels, and `spikeir eval`
 * without `--model` (the task's bundled student) reproduces, on the first
 * image of the task's test set, the per-image figure of the full-set run
 * behind the README table (`node dist/benchmarks/tasks/report.js`).
 */
import { spawnSync } from 'node:child_process'
import * as path from 'node:path'

import test from 'ava'

import { loadModel } from '../src/models/load'
import { sharedTest } from './helpers'

const { run: withShared, shared } = sharedTest()
const main = path.join(__dirname, '..', 'src', 'cli', 'main.js')
const weights = path.join(__dirname, '..', '..', 'weights')

interface Bundled {
  name: string
  channels: 1 | 3
  /** `spikeir eval` flags of the task, with `--data` relative to ../shared/data. */
  task: string[]
  data: string
  /** Whether `eval` takes this student when given no --model. */
  isDefault: boolean
  /** The first test image and its PSNR in the README table's run (hints student, then no hints). */
  first: { image: string; hints: number; noHints: number }
}

const BUNDLED: Bundled[] = [
  { name: 'color_sigma25', channels: 3, task: ['--task', 'denoise', '--sigma', '25'], data: 'cbsd68', isDefault: false, first: { image: '101085.png', hints: 27.386, noHints: 27.3382 } },
  { name: 'jpeg_q10', channels: 1, task: ['--task', 'jpeg', '--quality', '10'], data: 'jpeg/classic5', isDefault: true, first: { image: 'baboon.png', hints: 24.8142, noHints: 24.8333 } },
  { name: 'derain', channels: 3, task: ['--task', 'derain'], data: 'derain/rain100l', isDefault: true, first: { image: '001.png', hints: 33.038, noHints: 32.0438 } },
  { name: 'dehaze', channels: 3, task: ['--task', 'dehaze'], data: 'dehaze/sots_indoor', isDefault: true, first: { image: '1400_1.png', hints: 22.969, noHints: 23.6205 } },
  { name: 'deblur_gauss1.6', channels: 1, task: ['--task', 'deblur', '--blur', '1.6'], data: 'bsd68', isDefault: true, first: { image: 'test001.png', hints: 26.0119, noHints: 26.3313 } },
]

/** `spikeir eval` on the first image of `data` (under ../shared/data) with the task flags; no model: the bundled one. */
function evalFirst(task: readonly string[], data: string, model: string | null): { psnr: number; name: string; model: string } {
  const args = [main, 'eval', ...task, '--data', path.join(shared, 'data', ...data.split('/')), '--limit', '1', '--json', '--quiet', ...(model ? ['--model', model] : [])]
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`eval ${task.join(' ')}: exit ${r.status}: ${r.stderr}`)
  const out = JSON.parse(r.stdout) as { model: string; perImage: { name: string; psnr: number }[] }
  return { psnr: out.perImage[0]!.psnr, name: out.perImage[0]!.name, model: out.model }
}

test('every bundled task student loads as the tiny SpikerIR student with its task channels', (t) => {
  for (const b of BUNDLED) {
    for (const suffix of ['', '_nohints']) {
      const { spec, imageChannels, model } = loadModel(path.join(weights, `spikerir_tiny_${b.name}${suffix}.json`))
      t.is(spec.kind, 'spikerir', b.name)
      t.is(imageChannels, b.channels, b.name)
      // The tiny preset: 71,393 parameters for grey images, 71,827 for RGB (the first and last convs).
      t.is(model.numParameters(), b.channels === 3 ? 71827 : 71393, b.name)
    }
  }
})

for (const b of BUNDLED) {
  withShared(`eval ${b.task.join(' ')} reproduces the README run on the first test image, hints and no-hint students`, (t) => {
    const hints = evalFirst(b.task, b.data, b.isDefault ? null : path.join(weights, `spikerir_tiny_${b.name}.json`))
    if (b.isDefault) t.is(path.basename(hints.model), `spikerir_tiny_${b.name}.json`, 'the bundled student of the task without --model')
    t.is(hints.name, b.first.image)
    t.true(Math.abs(hints.psnr - b.first.hints) <= 0.02, `${b.name}: ${hints.psnr} vs ${b.first.hints}`)
    const noHints = evalFirst(b.task, b.data, path.join(weights, `spikerir_tiny_${b.name}_nohints.json`))
    t.true(Math.abs(noHints.psnr - b.first.noHints) <= 0.02, `${b.name} (no hints): ${noHints.psnr} vs ${b.first.noHints}`)
  })
}

/** The grey students at σ = 15 and 50 (`benchmarks/sigma-students.sh`, two schedules): BSD68's first image in its full-set run. */
const SIGMA_STUDENTS = [
  { sigma: 15, first: { image: 'test001.png', psnr: 28.0541 } },
  { sigma: 50, first: { image: 'test001.png', psnr: 22.5635 } },
]

for (const s of SIGMA_STUDENTS) {
  withShared(`eval --sigma ${s.sigma} without --model takes the σ = ${s.sigma} student and reproduces its BSD68 run on the first image`, (t) => {
    const file = path.join(weights, `spikerir_tiny_sigma${s.sigma}.json`)
    const { spec, imageChannels, model } = loadModel(file)
    t.is(spec.kind, 'spikerir')
    t.is(imageChannels, 1)
    t.is(model.numParameters(), 71393)
    const r = evalFirst(['--task', 'denoise', '--sigma', String(s.sigma)], 'bsd68', null)
    t.is(path.basename(r.model), `spikerir_tiny_sigma${s.sigma}.json`)
    t.is(r.name, s.first.image)
    t.true(Math.abs(r.psnr - s.first.psnr) <= 0.02, `σ = ${s.sigma}: ${r.psnr} vs ${s.first.psnr}`)
  })
}
