import * as path from 'node:path'

import test from 'ava'

import { SpikerIR, Tensor, psnr } from '../index'
import { restore } from '../src/metrics/evaluate'
import { loadModel } from '../src/models/load'
import { autoTileSide, bytesPerPixel, tileBudgetBytes, tileStarts } from '../src/metrics/tiles'
import { lcg } from './helpers'

function image(seed: number, c: number, h: number, w: number): Tensor {
  return Tensor.fromData(Float32Array.from(lcg(seed, c * h * w), (v) => 0.5 + 0.4 * v), [1, c, h, w])
}

test('tiles cover every pixel, step by tile − overlap and end flush with the image', (t) => {
  t.deepEqual(tileStarts(100, 128, 32), [0])
  t.deepEqual(tileStarts(128, 128, 32), [0])
  // stride 96: 0, 96, 192, then the last flush at 300 − 128 = 172.
  t.deepEqual(tileStarts(300, 128, 32), [0, 96, 172])
  t.deepEqual(tileStarts(224, 128, 32), [0, 96])
})

test('a pointwise model gives the same image tiled and whole (the blend weights sum to 1)', (t) => {
  // y = 0.5·x + 0.1 per pixel: each tile's output equals the whole image's there.
  const model = { forward: (x: Tensor) => x.mul(0.5).add(0.1) }
  const x = image(1, 3, 70, 101)
  const whole = restore(model, x, { tile: 0 }).toFloat32Array()
  const tiled = restore(model, x, { tile: 32, overlap: 8 }).toFloat32Array()
  t.is(tiled.length, whole.length)
  let worst = 0
  for (let i = 0; i < whole.length; i++) worst = Math.max(worst, Math.abs(tiled[i]! - whole[i]!))
  t.true(worst < 1e-6, `max difference ${worst}`)
})

test('the bundled student tiled with a 32-pixel overlap stays within 40 dB PSNR of the whole-image result', (t) => {
  // A trained student (a fresh one is the identity: its output conv starts at 0).
  const { model } = loadModel(path.join(__dirname, '..', '..', 'weights', 'spikerir_tiny_sigma25.json'))
  const x = image(2, 1, 120, 200)
  const whole = restore(model, x, { tile: 0 }).toFloat32Array()
  const tiled = restore(model, x, { tile: 96, overlap: 32 }).toFloat32Array()
  const p = psnr(tiled, whole)
  t.log(`tiled vs whole: ${p.toFixed(1)} dB`)
  t.true(p > 40, `${p} dB`)
})

test('the automatic tile side is 0 where the whole image fits the budget, else a multiple of 4 that fits it', (t) => {
  const model = new SpikerIR({ timeSteps: 2, seed: 3 })
  const perPixel = bytesPerPixel(model, 1)
  t.true(perPixel > 0)
  t.is(autoTileSide(model, 1, 64, 64), 0)
  // An image whose pass needs twice the budget is tiled, each tile's pass within it.
  const side = Math.ceil(Math.sqrt((2 * tileBudgetBytes()) / perPixel))
  const tile = autoTileSide(model, 1, side, side)
  t.true(tile >= 128 && tile % 4 === 0 && tile < side, String(tile))
  t.true(tile * tile * perPixel <= tileBudgetBytes())
})

test('bad tile options are refused with the option named', (t) => {
  const model = { forward: (x: Tensor) => x }
  t.throws(() => restore(model, image(1, 1, 64, 64), { tile: 32, overlap: 16 }), { message: /overlap/ })
})
