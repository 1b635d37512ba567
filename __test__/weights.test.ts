import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import test from 'ava'

import { Tensor, writeImage } from '../index'
import { loadModel } from '../src/models/load'
import { lcg, sharedTest } from './helpers'

const { run: withShared, shared } = sharedTest()

const main = path.join(__dirname, '..', 'src', 'cli', 'main.js')
const weights = path.join(__dirname, '..', '..', 'weights')

function cli(...args: string[]) {
  return spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' })
}

// The default student's run (README, "A longer run": the width-12 student,
// one 12,000-step schedule, benchmarks/sigma25-long.sh, exported with
// --trained-weights, then `spikeir eval` on Set12): its Set12 PSNR, and its
// first two images as that eval printed them.
const README_SET12_PSNR = 29.81
const README_SET12_FIRST_TWO = { '01.png': 29.31, '02.png': 32.2 }

test('the bundled σ = 25 students load as SpikerIR models of their width', (t) => {
  // The tiny preset (width 8): 71,393 parameters; width 10: 110,781; width 12: 159,475.
  const students = { spikerir_tiny_sigma25: 71393, spikerir_tiny_sigma25_nohints: 71393, spikerir_tiny_sigma25_long: 71393, spikerir_tiny_sigma25_long_nohints: 71393, spikerir_width10_sigma25: 110781, spikerir_width10_sigma25_nohints: 110781, spikerir_width12_sigma25: 159475 }
  for (const [name, parameters] of Object.entries(students)) {
    const { model, spec } = loadModel(path.join(weights, `${name}.json`))
    t.is(spec.kind, 'spikerir')
    t.is(model.numParameters(), parameters, name)
  }
})

test('denoise without --model uses the bundled student', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-weights-'))
  const noisy = Float32Array.from(lcg(3, 32 * 32), (v) => 0.5 + 0.2 * v)
  writeImage(path.join(dir, 'in.png'), Tensor.fromData(noisy, [1, 1, 32, 32]))
  const r = cli('denoise', path.join(dir, 'in.png'), path.join(dir, 'out.png'))
  t.is(r.status, 0, r.stderr)
  t.true(fs.statSync(path.join(dir, 'out.png')).size > 0)
  fs.rmSync(dir, { recursive: true })
})

withShared('eval without --model reproduces the README figure on Set12', (t) => {
  // All twelve images (about half a minute on the native CPU backend); on
  // lavapipe, which is slow, the first two, each to the same 0.02 dB.
  const full = process.env['SPIKEIR_DEVICE'] !== 'lavapipe'
  const args = ['eval', '--data', path.join(shared, 'data', 'set12'), '--sigma', '25', '--json', ...(full ? [] : ['--limit', '2'])]
  const r = cli(...args)
  t.is(r.status, 0, r.stderr)
  const result = JSON.parse(r.stdout) as { psnr: number; images: number; perImage: { name: string; psnr: number }[] }
  if (full) {
    t.is(result.images, 12)
    t.true(Math.abs(result.psnr - README_SET12_PSNR) <= 0.02, `${result.psnr} vs README ${README_SET12_PSNR}`)
  }
  for (const [name, psnr] of Object.entries(README_SET12_FIRST_TWO)) {
    const got = result.perImage.find((p) => p.name === name)!.psnr
    t.true(Math.abs(got - psnr) <= 0.02, `${name}: ${got} vs ${psnr}`)
  }
})
