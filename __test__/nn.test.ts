import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import test from 'ava'

import { Adam, AdamW, BatchNorm2d, Conv2d, DnCNN, SGD, Tensor, cosineSchedule, stepSchedule, zeroGrad, clipGradNorm } from '../index'

test('modules name their parameters like PyTorch', (t) => {
  const m = new DnCNN({ depth: 3, channels: 4 })
  t.deepEqual(
    m.namedParameters().map(([n, p]) => `${n}:${p.shape.join('x')}`),
    ['layers.0.weight:4x1x3x3', 'layers.0.bias:4', 'layers.1.weight:4x4x3x3', 'layers.1.bias:4', 'layers.2.weight:1x4x3x3', 'layers.2.bias:1'],
  )
  t.is(m.numParameters(), 4 * 9 + 4 + 16 * 9 + 4 + 4 * 9 + 1)
  const bn = new BatchNorm2d(3)
  t.deepEqual([...bn.stateDict().keys()], ['weight', 'bias', 'running_mean', 'running_var'])
})

test('conv init is U(−1/√fan_in, 1/√fan_in) and reproducible from the seed', (t) => {
  const a = new Conv2d(8, 4, 3, { seed: 5 })
  const b = new Conv2d(8, 4, 3, { seed: 5 })
  const w = a.weight.toFloat32Array()
  t.deepEqual(w, b.weight.toFloat32Array())
  const bound = 1 / Math.sqrt(8 * 9)
  t.true(w.every((v) => Math.abs(v) <= bound))
  t.true(Math.max(...w.map(Math.abs)) > 0.9 * bound)
})

test('loading a state dict names unknown, missing and misshapen entries', (t) => {
  const m = new DnCNN({ depth: 2, channels: 2 })
  const err = t.throws(() =>
    m.loadStateDict([
      { name: 'layers.0.weight', shape: [3, 1, 3, 3], data: new Float32Array(27) },
      { name: 'layers.9.weight', shape: [1], data: new Float32Array(1) },
    ]),
  )
  t.regex(err!.message, /wrong shapes: layers\.0\.weight: file \[3, 1, 3, 3\] vs model \[2, 1, 3, 3\]/)
  t.regex(err!.message, /unknown names: layers\.9\.weight/)
  t.regex(err!.message, /missing names: .*layers\.1\.bias/)
})

test('state survives a safetensors round trip, and a corrupt file is an error naming it', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-nn-'))
  const file = path.join(dir, 'm.safetensors')
  const a = new DnCNN({ depth: 2, channels: 3, seed: 1 })
  a.saveSafetensors(file, { note: 'x' })
  const b = new DnCNN({ depth: 2, channels: 3, seed: 2 })
  t.deepEqual(b.loadSafetensors(file), { note: 'x' })
  for (const [[, p], [, q]] of a.namedParameters().map((e, i) => [e, b.namedParameters()[i]!] as const)) {
    t.deepEqual(p.toFloat32Array(), q.toFloat32Array())
  }
  const bad = path.join(dir, 'bad.safetensors')
  fs.writeFileSync(bad, 'garbage')
  t.throws(() => b.loadSafetensors(bad), { message: /bad\.safetensors/ })
  fs.rmSync(dir, { recursive: true })
})

/** Adam on one scalar, by the formulas of Kingma & Ba, in f64. */
function adamReference(p0: number, grads: number[], lr: number, b1: number, b2: number, eps: number, wd: number, decoupled: boolean): number {
  let p = p0
  let m = 0
  let v = 0
  grads.forEach((g0, i) => {
    const t = i + 1
    let g = g0
    if (decoupled) p -= lr * wd * p
    else g += wd * p
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    p -= (lr * (m / (1 - b1 ** t))) / (Math.sqrt(v / (1 - b2 ** t)) + eps)
  })
  return p
}

test('Adam, AdamW and SGD steps match their formulas', (t) => {
  // Minimise Σ c·p with c = [1, −2]: the gradient is c at every step.
  const c = Tensor.fromData([1, -2], [2])
  const run = (make: (p: Tensor) => { step(): void }, steps: number) => {
    zeroGrad()
    const p = Tensor.fromData([0.5, -1.5], [2]).toParam()
    const opt = make(p)
    for (let i = 0; i < steps; i++) {
      zeroGrad()
      p.mul(c).sum(0).backward()
      opt.step()
    }
    return Array.from(p.toFloat32Array())
  }
  const adam = run((p) => new Adam([['p', p]], { lr: 0.1, weightDecay: 0.01 }), 3)
  const adamw = run((p) => new AdamW([['p', p]], { lr: 0.1, weightDecay: 0.1 }), 3)
  const sgd = run((p) => new SGD([['p', p]], { lr: 0.1, momentum: 0.9, weightDecay: 0.01 }), 3)
  ;[0.5, -1.5].forEach((p0, i) => {
    const g = [1, -2][i]!
    t.true(Math.abs(adam[i]! - adamReference(p0, [g, g, g], 0.1, 0.9, 0.999, 1e-8, 0.01, false)) < 1e-5)
    t.true(Math.abs(adamw[i]! - adamReference(p0, [g, g, g], 0.1, 0.9, 0.999, 1e-8, 0.1, true)) < 1e-5)
    // SGD with momentum: buf ← 0.9·buf + (g + wd·p); p ← p − lr·buf.
    let p = p0
    let buf = 0
    for (let s = 0; s < 3; s++) {
      buf = 0.9 * buf + g + 0.01 * p
      p -= 0.1 * buf
    }
    t.true(Math.abs(sgd[i]! - p) < 1e-5, `${sgd[i]} vs ${p}`)
  })
})

test('optimizer state restores exactly', (t) => {
  zeroGrad()
  const p = Tensor.fromData([1, 2, 3], [3]).toParam()
  const opt = new Adam([['p', p]], { lr: 0.01 })
  p.mul(p).sum(0).backward()
  opt.step()
  const saved = opt.stateArrays()
  const q = Tensor.fromData(p.toFloat32Array(), [3]).toParam()
  const opt2 = new Adam([['p', q]], { lr: 0.01 })
  opt2.loadStateArrays(saved)
  t.is(opt2.stepCount, 1)
  for (const [param, o] of [[p, opt], [q, opt2]] as const) {
    zeroGrad()
    param.mul(param).sum(0).backward()
    o.step()
  }
  t.deepEqual(p.toFloat32Array(), q.toFloat32Array())
  t.throws(() => opt2.loadStateArrays([]), { message: /no 'step'/ })
})

test('clipping scales the global gradient norm down to the limit', (t) => {
  zeroGrad()
  // Gradients [3] and [4]: global norm 5, clipped to 1 → [0.6] and [0.8].
  const a = Tensor.fromData([0], [1]).toParam()
  const b = Tensor.fromData([0], [1]).toParam()
  a.mul(3).add(b.mul(4)).sum(0).backward()
  t.true(Math.abs(clipGradNorm([a, b], 1) - 5) < 1e-5)
  t.true(Math.abs(a.grad!.toFloat32Array()[0]! - 0.6) < 1e-5)
  t.true(Math.abs(b.grad!.toFloat32Array()[0]! - 0.8) < 1e-5)
})

test('schedules warm up linearly, then decay as stated', (t) => {
  const cos = cosineSchedule(1, 110, { warmup: 10 })
  t.is(cos(0), 0.1)
  t.is(cos(9), 1)
  t.is(cos(10), 1)
  t.true(Math.abs(cos(60) - 0.5) < 1e-12) // half way through the cosine
  t.true(Math.abs(cos(110)) < 1e-12)
  const st = stepSchedule(1, 5, { gamma: 0.5 })
  t.deepEqual([0, 4, 5, 10].map(st), [1, 1, 0.5, 0.25])
})
