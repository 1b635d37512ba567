import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { spawnSync } from 'node:child_process'

import test from 'ava'

import { SELF_ENSEMBLE_PASSES, selfEnsemble, Tensor, writeImage } from '../index'
import { restore } from '../src/metrics/evaluate'
import { lcg } from './helpers'

const main = path.join(__dirname, '..', 'src', 'cli', 'main.js')

function image(seed: number, c: number, h: number, w: number): Tensor {
  return Tensor.fromData(Float32Array.from(lcg(seed, c * h * w), (v) => 0.5 + 0.4 * v), [1, c, h, w])
}

test('a pointwise model gives its own output: every orientation is turned back onto the pixel it came from', (t) => {
  // Non-square and two channels, so a transpose or flip put back wrongly scrambles the image.
  const model = { forward: (x: Tensor) => x.mul(0.5).add(0.1) }
  const x = image(3, 2, 5, 7)
  const want = model.forward(x).toFloat32Array()
  const got = selfEnsemble(model).forward(x)
  t.deepEqual(got.shape, [1, 2, 5, 7])
  const g = got.toFloat32Array()
  let worst = 0
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(g[i]! - want[i]!))
  t.true(worst < 1e-6, `largest difference ${worst}`)
})

test('a model that marks its top-left pixel gives a quarter at each corner (hand-derived)', (t) => {
  // The eight symmetries of the square take the oriented image's (0, 0) back to each of the
  // original's four corners twice: 2/8 = 0.25 there, 0 everywhere else, whatever the sides.
  const seen: number[][] = []
  const model = {
    forward: (x: Tensor) => {
      const [, c, h, w] = x.shape as [number, number, number, number]
      seen.push([h, w])
      const out = new Float32Array(c * h * w)
      for (let ch = 0; ch < c; ch++) out[ch * h * w] = 1
      return Tensor.fromData(out, [1, c, h, w])
    },
  }
  const [h, w] = [4, 6]
  const got = selfEnsemble(model).forward(image(1, 1, h, w)).toFloat32Array()
  t.is(seen.length, SELF_ENSEMBLE_PASSES)
  // Four passes see the image upright (4 × 6), four transposed (6 × 4).
  t.is(seen.filter(([a, b]) => a === 4 && b === 6).length, 4)
  t.is(seen.filter(([a, b]) => a === 6 && b === 4).length, 4)
  const corners = new Set([0, w - 1, (h - 1) * w, h * w - 1])
  for (let i = 0; i < h * w; i++) t.is(got[i], corners.has(i) ? 0.25 : 0, `pixel ${i}`)
})

test('a model that returns its column index averages to (h − 1 + w − 1) / 4 everywhere (hand-derived)', (t) => {
  // Upright, the column ramp comes back as x or w − 1 − x; transposed, as y or h − 1 − y; each twice.
  const model = {
    forward: (x: Tensor) => {
      const [, c, h, w] = x.shape as [number, number, number, number]
      return Tensor.fromData(Float32Array.from({ length: c * h * w }, (_, i) => i % w), [1, c, h, w])
    },
  }
  const got = selfEnsemble(model).forward(image(2, 1, 4, 6)).toFloat32Array()
  for (const v of got) t.true(Math.abs(v - (3 + 5) / 4) < 1e-6, `${v}`)
})

test('the ensemble keeps the model\'s size multiple and restores a padded, tiled image like the model', (t) => {
  const model = { forward: (x: Tensor) => x.mul(0.5).add(0.1), sizeMultiple: 4 }
  const e = selfEnsemble(model)
  t.is(e.sizeMultiple, 4)
  const x = image(5, 3, 30, 45)
  const want = restore(model, x, { tile: 16, overlap: 4 }).toFloat32Array()
  const got = restore(e, x, { tile: 16, overlap: 4 }).toFloat32Array()
  let worst = 0
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!))
  t.true(worst < 1e-6, `largest difference ${worst}`)
  t.throws(() => e.forward(Tensor.zeros([2, 1, 8, 8])), { message: /expected one image \[1, C, H, W\], got \[2, 1, 8, 8\]/ })
})

test('eval --self-ensemble scores the bundled student above one pass on a noisy image, and says so; restore takes the flag too', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-ensemble-'))
  // A smooth grey scene with edges: the student denoises it, the ensemble averages its errors.
  const side = 48
  const data = Float32Array.from({ length: side * side }, (_, i) => {
    const y = Math.floor(i / side)
    const x = i % side
    return (x > 20 ? 0.7 : 0.3) + 0.15 * Math.sin(y / 5)
  })
  writeImage(path.join(dir, 'scene.png'), Tensor.fromData(data, [1, 1, side, side]))
  const evalPsnr = (...extra: string[]) => {
    const r = spawnSync(process.execPath, [main, 'eval', '--data', dir, '--sigma', '25', '--json', ...extra], { encoding: 'utf8' })
    t.is(r.status, 0, r.stderr)
    return JSON.parse(r.stdout) as { psnr: number; selfEnsemble: number }
  }
  const one = evalPsnr()
  const eight = evalPsnr('--self-ensemble')
  t.is(one.selfEnsemble, 1)
  t.is(eight.selfEnsemble, SELF_ENSEMBLE_PASSES)
  t.true(eight.psnr > one.psnr, `one pass ${one.psnr} dB, ensemble ${eight.psnr} dB`)
  // restore takes the same flag and writes the image.
  const r = spawnSync(process.execPath, [main, 'restore', '--self-ensemble', path.join(dir, 'scene.png'), path.join(dir, 'restored.png')], { encoding: 'utf8' })
  t.is(r.status, 0, r.stderr)
  t.true(fs.statSync(path.join(dir, 'restored.png')).size > 0)
  fs.rmSync(dir, { recursive: true })
})
