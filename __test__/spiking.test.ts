import test from 'ava'

import { Conv2d, Module, MultiDimensionalAttention, SpikingNeuron, Tensor, directEncode, energyReport, meanOverTime, rateEncode, scope, zeroGrad, ThresholdDependentBatchNorm, MultiStep } from '../index'
import { lcg } from './helpers'

test('a LIF layer spikes as the recurrence says and reports its firing rate', (t) => {
  // LIF τ = 2, V_th = 1, hard reset 0, decay_input: H = V + (X − V)/2.
  // Constant X = 1.5: H = 0.75 (no spike), 1.125 (spike, V → 0), 0.75, 1.125 → S = 0,1,0,1.
  const lif = new SpikingNeuron({ tau: 2, vThreshold: 1 })
  t.is(lif.firingRate(), null)
  const s = lif.forward(Tensor.full([4, 1, 3], 1.5))
  t.deepEqual(Array.from(s.toFloat32Array()), [0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1])
  t.is(lif.firingRate(), 0.5)
})

test('direct and rate encoders, and the mean-over-time decoder', (t) => {
  const x = Tensor.fromData([0, 0.25, 1, 0.5], [1, 1, 2, 2])
  const d = directEncode(x, 3)
  t.deepEqual(d.shape, [3, 1, 1, 2, 2])
  t.deepEqual(Array.from(d.toFloat32Array()), [0, 0.25, 1, 0.5, 0, 0.25, 1, 0.5, 0, 0.25, 1, 0.5])
  t.deepEqual(Array.from(meanOverTime(d).toFloat32Array()), [0, 0.25, 1, 0.5])
  // Rate coding: P(spike) = intensity. 2000 steps of a pixel at 0.25 fire ≈ 500 times.
  const r = rateEncode(Tensor.fromData([0, 0.25, 1], [3]), 2000, 7)
  const v = r.toFloat32Array()
  t.true(v.every((s) => s === 0 || s === 1))
  const rate = (i: number) => Array.from({ length: 2000 }, (_, k) => v[k * 3 + i]!).reduce((a, b) => a + b, 0) / 2000
  t.is(rate(0), 0)
  t.is(rate(2), 1)
  t.true(Math.abs(rate(1) - 0.25) < 0.03, `rate ${rate(1)}`)
  t.deepEqual(Array.from(rateEncode(Tensor.fromData([0.5, 0.5], [2]), 16, 7).toFloat32Array()), Array.from(rateEncode(Tensor.fromData([0.5, 0.5], [2]), 16, 7).toFloat32Array()))
})

test('tdBN normalises over T·B·H·W per channel with weight α·V_th', (t) => {
  const bn = new ThresholdDependentBatchNorm(2, { vThreshold: 0.5 })
  t.true(Math.abs(bn.inner.weight.toFloat32Array()[0]! - Math.SQRT1_2 * 0.5) < 1e-7)
  // [T=2, B=1, C=2, 1, 2]: channel 0 holds 1, 2, 3, 4 over T and W → mean 2.5, var 1.25.
  const x = Tensor.fromData([1, 2, 10, 10, 3, 4, 10, 10], [2, 1, 2, 1, 2])
  const y = Array.from(bn.forward(x).toFloat32Array())
  const g = Math.SQRT1_2 * 0.5
  const want = [1, 2, 3, 4].map((v) => (g * (v - 2.5)) / Math.sqrt(1.25 + 1e-5))
  ;[y[0]!, y[1]!, y[4]!, y[5]!].forEach((v, i) => t.true(Math.abs(v - want[i]!) < 1e-5, `${v} vs ${want[i]}`))
  // Channel 1 is constant: normalised to 0.
  ;[y[2]!, y[3]!, y[6]!, y[7]!].forEach((v) => t.true(Math.abs(v) < 1e-3))
})

/** Multi-dimensional attention in f64, written from DESIGN §3 independently of the engine. */
function attentionRef(x: Float64Array, [T, B, C, H, W]: number[], p: Record<string, Float64Array>, k: number): Float64Array {
  const at = (t: number, b: number, c: number, h: number, w: number) => (((t * B + b) * C + c) * H + h) * W + w
  const sig = (v: number) => 1 / (1 + Math.exp(-v))
  const mlp = (v: number[], w1: Float64Array, w2: Float64Array, hid: number) => {
    const n = v.length
    const hdn = Array.from({ length: hid }, (_, j) => Math.max(0, v.reduce((s, vi, i) => s + vi * w1[j * n + i]!, 0)))
    return Array.from({ length: n }, (_, i) => hdn.reduce((s, hj, j) => s + hj * w2[i * hid + j]!, 0))
  }
  const y = Float64Array.from(x)
  const hidT = p['temporal.fc1.weight']!.length / T
  const hidC = p['channel.fc1.weight']!.length / C
  for (let b = 0; b < B; b++) {
    const avg: number[] = [], mx: number[] = []
    for (let t = 0; t < T; t++) {
      let s = 0, m = -Infinity
      for (let c = 0; c < C; c++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) { const v = y[at(t, b, c, h, w)]!; s += v; m = Math.max(m, v) }
      avg.push(s / (C * H * W)); mx.push(m)
    }
    const a = mlp(avg, p['temporal.fc1.weight']!, p['temporal.fc2.weight']!, hidT)
    const m2 = mlp(mx, p['temporal.fc1.weight']!, p['temporal.fc2.weight']!, hidT)
    for (let t = 0; t < T; t++) for (let c = 0; c < C; c++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) y[at(t, b, c, h, w)]! *= sig(a[t]! + m2[t]!)
    const cavg: number[] = [], cmx: number[] = []
    for (let c = 0; c < C; c++) {
      let s = 0, m = -Infinity
      for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) { const v = y[at(t, b, c, h, w)]!; s += v; m = Math.max(m, v) }
      cavg.push(s / (T * H * W)); cmx.push(m)
    }
    const ca = mlp(cavg, p['channel.fc1.weight']!, p['channel.fc2.weight']!, hidC)
    const cm = mlp(cmx, p['channel.fc1.weight']!, p['channel.fc2.weight']!, hidC)
    for (let t = 0; t < T; t++) for (let c = 0; c < C; c++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) y[at(t, b, c, h, w)]! *= sig(ca[c]! + cm[c]!)
    const smean = new Float64Array(H * W), smax = new Float64Array(H * W).fill(-Infinity)
    for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) {
      for (let t = 0; t < T; t++) for (let c = 0; c < C; c++) { const v = y[at(t, b, c, h, w)]!; smean[h * W + w]! += v / (T * C); smax[h * W + w] = Math.max(smax[h * W + w]!, v) }
    }
    const kw = p['spatial.weight']!
    const r = (k - 1) / 2
    for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) {
      let s = 0
      for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) {
        const hh = h + i - r, ww = w + j - r
        if (hh < 0 || hh >= H || ww < 0 || ww >= W) continue
        s += kw[i * k + j]! * smean[hh * W + ww]! + kw[k * k + i * k + j]! * smax[hh * W + ww]!
      }
      const g = sig(s)
      for (let t = 0; t < T; t++) for (let c = 0; c < C; c++) y[at(t, b, c, h, w)]! *= g
    }
  }
  return y.map((v) => Math.max(0, v))
}

test('multi-dimensional attention matches an f64 reference, values and gradients', (t) => {
  zeroGrad()
  const shape = [4, 2, 8, 5, 6]
  const att = new MultiDimensionalAttention(4, 8, { temporalReduction: 2, channelReduction: 4, seed: 3 })
  const params = Object.fromEntries(att.namedParameters().map(([n, p]) => [n, Float64Array.from(p.toFloat32Array())]))
  const xv = lcg(5, shape.reduce((a, b) => a * b)).map((v) => v + 0.3)
  const x = Tensor.fromData(xv, shape).toParam()
  const y = att.forward(x)
  const want = attentionRef(Float64Array.from(xv), shape, params, 3)
  const got = y.toFloat32Array()
  want.forEach((w, i) => t.true(Math.abs(got[i]! - w) < 1e-5 * (1 + Math.abs(w)), `y[${i}] ${got[i]} vs ${w}`))
  // Gradient of L = Σ G ⊙ y against central differences of the f64 reference.
  const G = lcg(6, want.length)
  y.mul(Tensor.fromData(G, shape)).sum([0, 1, 2, 3, 4]).backward()
  const gx = x.grad!.toFloat32Array()
  const gw = att.spatial.weight.grad!.toFloat32Array()
  const L = (xs: Float64Array, ps: Record<string, Float64Array>) => attentionRef(xs, shape, ps, 3).reduce((s, v, i) => s + v * G[i]!, 0)
  const eps = 1e-5
  for (const i of [0, 17, 101, 333, 959]) {
    const xp = Float64Array.from(xv), xm = Float64Array.from(xv)
    xp[i]! += eps; xm[i]! -= eps
    const fd = (L(xp, params) - L(xm, params)) / (2 * eps)
    t.true(Math.abs(gx[i]! - fd) < 1e-3 * (1 + Math.abs(fd)), `dL/dx[${i}] ${gx[i]} vs ${fd}`)
  }
  for (const i of [0, 4, 9, 17]) {
    const pp = { ...params, 'spatial.weight': Float64Array.from(params['spatial.weight']!) }
    const pm = { ...params, 'spatial.weight': Float64Array.from(params['spatial.weight']!) }
    pp['spatial.weight']![i]! += eps; pm['spatial.weight']![i]! -= eps
    const fd = (L(Float64Array.from(xv), pp) - L(Float64Array.from(xv), pm)) / (2 * eps)
    t.true(Math.abs(gw[i]! - fd) < 1e-3 * (1 + Math.abs(fd)), `dL/dw[${i}] ${gw[i]} vs ${fd}`)
  }
})

/** A two-layer spiking network: real-valued conv → LIF → spike-fed conv. */
class TwoLayer extends Module {
  readonly conv1 = this.registerModule('conv1', new MultiStep(new Conv2d(1, 2, 3, { seed: 1 })))
  readonly lif = this.registerModule('lif', new SpikingNeuron({ tau: 2, vThreshold: 1 }))
  readonly conv2 = this.registerModule('conv2', new MultiStep(new Conv2d(2, 1, 3, { seed: 2 })))

  forward(x: Tensor): Tensor {
    return scope(() => this.conv2.forward(this.lif.forward(this.conv1.forward(directEncode(x, 4)))))
  }
}

test('energy of a two-layer network with known firing rates, to the pJ', (t) => {
  const net = new TwoLayer()
  // conv1: zero weights and bias 1.5, so every LIF input is 1.5 and the rate is 0.5 (see the LIF test).
  net.conv1.inner.weight.assign(Tensor.zeros([2, 1, 3, 3]))
  net.conv1.inner.bias!.assign(Tensor.full([2], 1.5))
  const report = energyReport(net, Tensor.rand([1, 1, 4, 4], { seed: 1 }))
  t.deepEqual(report.layers.map((l) => [l.name, l.input]), [['conv1.module', 'real'], ['conv2.module', 'spikes']])
  // conv1: 4×4 pixels × 2 out × 1 in × 9 taps = 288 MACs per step, real input for T = 4 steps:
  //   4.6 pJ × 288 × 4 = 5299.2 pJ.
  // conv2: 4×4 × 1 × 2 × 9 = 288 MACs per step; spikes at rate 0.5 over 4 steps:
  //   SOPs = 0.5 × 288 × 4 = 576; 0.9 pJ × 576 = 518.4 pJ.
  t.is(report.layers[0]!.macs, 1152)
  t.true(Math.abs(report.layers[0]!.energyPj - 5299.2) < 1e-6)
  t.is(report.layers[1]!.firingRate, 0.5)
  t.is(report.layers[1]!.synapticOps, 576)
  t.true(Math.abs(report.layers[1]!.energyPj - 518.4) < 1e-6)
  t.true(Math.abs(report.totalPj - 5817.6) < 1e-6)
})
