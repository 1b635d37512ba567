import * as path from 'node:path'

import test from 'ava'

import { DataLoader, evalPairs } from '../src/data/pipeline'
import { sharedTest } from './helpers'

const { run: withShared, shared } = sharedTest()

const leaves = { kind: 'deadLeaves', count: 4, size: 48, seed: 3 } as const

test('the loader yields [B, C, P, P] tensors, reproducibly from (seed, step)', (t) => {
  const opts = { source: leaves, patch: 16, batch: 5, degradation: { kind: 'awgn', sigma: 25 }, seed: 7 } as const
  const a = new DataLoader(opts)
  const b1 = a.next()
  const b2 = a.next()
  t.deepEqual(b1.input.shape, [5, 1, 16, 16])
  t.deepEqual(b1.target.shape, [5, 1, 16, 16])
  t.is(b1.step, 0)
  t.is(b2.step, 1)
  const x1 = b1.input.toFloat32Array()
  const y1 = b1.target.toFloat32Array()
  t.notDeepEqual(x1, y1, 'the input is noisy')
  t.notDeepEqual(x1, b2.input.toFloat32Array(), 'steps differ')
  // A second loader with the same seed gives the same batches; one started at
  // step 1 (a resumed run) gives batch 1 first.
  const again = new DataLoader(opts)
  t.deepEqual(again.next().input.toFloat32Array(), x1)
  const resumed = new DataLoader({ ...opts, startStep: 1 })
  const r = resumed.next()
  t.is(r.step, 1)
  t.deepEqual(r.input.toFloat32Array(), b2.input.toFloat32Array())
  t.deepEqual(r.target.toFloat32Array(), b2.target.toFloat32Array())
  for (const batch of [b1, b2, r]) {
    batch.input.dispose()
    batch.target.dispose()
  }
  a.dispose()
  again.dispose()
  resumed.dispose()
  a.dispose()
  t.throws(() => a.next(), { message: /disposed/ })
})

test('bad options throw, naming the option', (t) => {
  t.throws(() => new DataLoader({ source: { kind: 'nope' } as never, patch: 8, batch: 1 }), { message: /source\.kind/ })
  t.throws(() => new DataLoader({ source: leaves, patch: 8, batch: 1, degradation: { kind: 'salt' } as never }), {
    message: /degradation\.kind/,
  })
  t.throws(() => new DataLoader({ source: leaves, patch: 64, batch: 1 }), { message: /larger/ })
  t.throws(() => new DataLoader({ source: { kind: 'folder', dir: '/nonexistent-spikeir' }, patch: 8, batch: 1 }), {
    message: /nonexistent-spikeir/,
  })
})

withShared('Set12 evaluation pairs: 12 whole images with fixed noise', (t) => {
  const opts = {
    source: { kind: 'folder', dir: path.join(shared, 'data', 'set12'), channels: 1 },
    degradation: { kind: 'awgn', sigma: 25 },
    seed: 0,
  } as const
  const pairs = evalPairs(opts)
  t.is(pairs.length, 12)
  t.is(pairs[0]!.name, '01.png')
  t.deepEqual(pairs[0]!.input.shape, [1, 1, 256, 256])
  t.deepEqual(pairs[11]!.target.shape, [1, 1, 512, 512])
  const x = pairs[0]!.input.toFloat32Array()
  const y = pairs[0]!.target.toFloat32Array()
  let ss = 0
  for (let i = 0; i < x.length; i++) ss += (x[i]! - y[i]!) ** 2
  const sigma = Math.sqrt(ss / x.length) * 255
  t.true(Math.abs(sigma - 25) < 0.5, `σ ${sigma}`)
  const again = evalPairs(opts)
  t.deepEqual(again[0]!.input.toFloat32Array(), x)
  for (const p of [...pairs, ...again]) {
    p.input.dispose()
    p.target.dispose()
  }
})
