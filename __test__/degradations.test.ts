import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import test from 'ava'

import { DataLoader, evalPairs, type DataLoaderOptions, type Degradation } from '../src/data/pipeline'
import { writeImage } from '../src/io'
import { Tensor } from '../src/tensor'

const leaves = { kind: 'deadLeaves', count: 3, size: 48, seed: 5 } as const

/** The first batch's input and target of a loader, as arrays. */
function firstBatch(options: DataLoaderOptions): { input: Float32Array; target: Float32Array } {
  const loader = new DataLoader(options)
  const b = loader.next()
  const out = { input: b.input.toFloat32Array(), target: b.target.toFloat32Array() }
  b.input.dispose()
  b.target.dispose()
  loader.dispose()
  return out
}

test('rain adds non-negative streaks, reproducibly from the seed', (t) => {
  const opts = { source: leaves, patch: 32, batch: 4, degradation: { kind: 'rain' }, seed: 3 } as const
  const { input, target } = firstBatch(opts)
  let changed = 0
  for (let i = 0; i < input.length; i++) {
    t.true(input[i]! >= target[i]!, `pixel ${i} got darker`)
    t.true(input[i]! <= 1)
    if (input[i]! - target[i]! > 5 / 255) changed++
  }
  t.true(changed > 0, 'some streaks')
  t.deepEqual(firstBatch(opts).input, input)
  t.notDeepEqual(firstBatch({ ...opts, seed: 4 }).input, input)
  // Denser rain covers more (same seed, so the same patches).
  const dense = firstBatch({ ...opts, degradation: { kind: 'rain', density: 200 } }).input
  let denseChanged = 0
  for (let i = 0; i < dense.length; i++) if (dense[i]! - target[i]! > 5 / 255) denseChanged++
  t.true(denseChanged > changed, `${denseChanged} vs ${changed}`)
  // Every option, as ranges.
  const all: Degradation = {
    kind: 'rain',
    density: [5, 20],
    length: [10, 20],
    angle: [-10, 10],
    angleJitter: 2,
    width: [1, 2],
    brightness: [0.2, 0.3],
    blend: 'screen',
  }
  const screened = firstBatch({ ...opts, degradation: all })
  for (let i = 0; i < screened.input.length; i++) t.true(screened.input[i]! >= screened.target[i]!)
})

test('haze mixes each pixel with the airlight by a transmission in [e^-β, 1]', (t) => {
  const opts = {
    source: leaves,
    patch: 32,
    batch: 4,
    degradation: { kind: 'haze', beta: 1, airlight: 0.9, airlightJitter: 0 },
    seed: 1,
  } as const
  const { input, target } = firstBatch(opts)
  let lo = Infinity
  let hi = -Infinity
  for (let i = 0; i < input.length; i++) {
    const j = target[i]!
    if (Math.abs(j - 0.9) < 0.1) continue
    const tr = (input[i]! - 0.9) / (j - 0.9)
    lo = Math.min(lo, tr)
    hi = Math.max(hi, tr)
  }
  t.true(lo >= Math.exp(-1) - 1e-4 && hi <= 1 + 1e-4, `t in ${lo}..${hi}`)
  t.true(lo < 0.99, 'some haze')
  t.deepEqual(firstBatch(opts).input, input)
  t.notDeepEqual(firstBatch({ ...opts, seed: 2 }).input, input)
})

function variance(a: Float32Array): number {
  const m = a.reduce((s, v) => s + v, 0) / a.length
  return a.reduce((s, v) => s + (v - m) ** 2, 0) / a.length
}

test('motion and defocus blur: identity at length 1 and radius 0, smoothing otherwise', (t) => {
  const source = { kind: 'deadLeaves', count: 2, size: 40, seed: 9 } as const
  const check = (degradation: Degradation, identity: boolean): void => {
    const pairs = evalPairs({ source, degradation, seed: 0 })
    t.is(pairs.length, 2)
    for (const p of pairs) {
      const x = p.input.toFloat32Array()
      const y = p.target.toFloat32Array()
      if (identity) t.deepEqual(x, y, JSON.stringify(degradation))
      else t.true(variance(x) < variance(y), JSON.stringify(degradation))
      p.input.dispose()
      p.target.dispose()
    }
  }
  check({ kind: 'motionBlur', length: 1, angle: 0 }, true)
  check({ kind: 'defocus', radius: 0 }, true)
  check({ kind: 'motionBlur', length: 9 }, false)
  check({ kind: 'motionBlur', length: [5, 15], angle: [0, 45] }, false)
  check({ kind: 'defocus', radius: [2, 4] }, false)
  // Through the loader too (random per patch).
  const { input, target } = firstBatch({ source, patch: 24, batch: 3, degradation: { kind: 'defocus', radius: [1, 3] }, seed: 2 })
  t.true(variance(input) < variance(target))
})

test('bad degradation options throw, naming the option', (t) => {
  const make = (degradation: unknown): DataLoader =>
    new DataLoader({ source: leaves, patch: 16, batch: 1, degradation: degradation as Degradation })
  t.throws(() => make({ kind: 'rain', density: [5, 1] }), { message: /rain\.density/ })
  t.throws(() => make({ kind: 'rain', density: [1, 2, 3] }), { message: /degradation\.density.*\[min, max\]/ })
  t.throws(() => make({ kind: 'rain', brightness: 2 }), { message: /rain\.brightness/ })
  t.throws(() => make({ kind: 'rain', blend: 'multiply' }), { message: /degradation\.blend/ })
  t.throws(() => make({ kind: 'rain', radius: 3 }), { message: /degradation\.radius is not an option of kind 'rain'/ })
  t.throws(() => make({ kind: 'haze', beta: -1 }), { message: /haze\.beta/ })
  t.throws(() => make({ kind: 'haze', airlight: [0.9, 1.2] }), { message: /haze\.airlight/ })
  t.throws(() => make({ kind: 'motionBlur' }), { message: /degradation\.length is required/ })
  t.throws(() => make({ kind: 'motionBlur', length: 0 }), { message: /motionBlur\.length/ })
  t.throws(() => make({ kind: 'defocus', radius: 80 }), { message: /defocus\.radius/ })
  t.throws(() => make({ kind: 'awgn', sigma: 25, quality: 10 }), { message: /degradation\.quality is not an option of kind 'awgn'/ })
  t.throws(() => make({ kind: 'fog' }), { message: /degradation\.kind.*motionBlur/ })
})

test('a folder source leaves out the excluded stems and refuses unknown ones', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-exclude-'))
  try {
    for (const [i, name] of ['2092', '100007', '100039'].entries()) {
      const img = Tensor.fromData(new Float32Array(64).fill(0.2 * (i + 1)), [1, 1, 8, 8])
      writeImage(path.join(dir, `${name}.png`), img)
      img.dispose()
    }
    const names = (exclude: string[]): string[] => {
      const pairs = evalPairs({ source: { kind: 'folder', dir, channels: 1, exclude } })
      for (const p of pairs) {
        p.input.dispose()
        p.target.dispose()
      }
      return pairs.map((p) => p.name)
    }
    t.deepEqual(names([]), ['100007.png', '100039.png', '2092.png'])
    t.deepEqual(names(['2092', '100039']), ['100007.png'])
    t.throws(() => names(['2092', '9999']), { message: /exclude entry '9999' matches no image/ })
    t.throws(() => names(['2092.png']), { message: /'2092\.png' matches no image/ })
    t.throws(() => new DataLoader({ source: { kind: 'paired', inputDir: dir, targetDir: dir, exclude: ['2092'] } as never, patch: 8, batch: 1 }), {
      message: /source\.exclude/,
    })
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
