import * as path from 'node:path'

import test from 'ava'

import { ConvTranspose2d, GCANet, InstanceNorm2d, Tensor, listImages, loadModel, noGrad, profile, scope, zeroGrad } from '../index'
import { convTranspose, gcanetReference, instanceNorm } from './gcanet-reference'
import { lcg, sharedTest } from './helpers'
import { crop, readPlanes, readWeights, type Planes } from './prenet-reference'

const { run: withShared, shared } = sharedTest()
const weightsFile = () => path.join(shared, 'models', 'gcanet_dehaze.safetensors')

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`)
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!))
  return m
}

const planes = (t: Tensor): Planes => {
  const [, c, h, w] = t.shape as [number, number, number, number]
  return { c, h, w, data: Float64Array.from(t.toFloat32Array()) }
}
const asWeight = (t: Tensor) => ({ shape: t.shape, data: Float64Array.from(t.toFloat32Array()) })

/**
 * Central finite differences of `f` (a scalar of the values of `x`) at a few
 * entries, in float64 through the reference, against the engine's gradient.
 */
function checkGradient(t: import('ava').ExecutionContext, engineGrad: Float32Array, x: Float64Array, f: (x: Float64Array) => number, entries: number[], tol: number, what: string) {
  for (const i of entries) {
    const h = 1e-4
    const up = Float64Array.from(x)
    up[i]! += h
    const down = Float64Array.from(x)
    down[i]! -= h
    const fd = (f(up) - f(down)) / (2 * h)
    t.true(Math.abs(fd - engineGrad[i]!) <= tol * Math.max(1, Math.abs(fd)), `${what}[${i}]: engine ${engineGrad[i]} vs finite difference ${fd}`)
  }
}

for (const [stride, k, padding] of [
  [2, 4, 1],
  [3, 3, 0],
  [1, 3, 1],
] as const) {
  test(`ConvTranspose2d (stride ${stride}, kernel ${k}, padding ${padding}) matches the scatter definition, with gradients by finite differences`, (t) => {
    zeroGrad()
    const layer = new ConvTranspose2d(3, 2, k, { stride, padding, seed: 5 })
    const x = Tensor.fromData(lcg(11, 1 * 3 * 5 * 4), [1, 3, 5, 4]).toParam()
    const y = layer.forward(x)
    const w = asWeight(layer.weight)
    const b = Float64Array.from(layer.bias!.toFloat32Array())
    const ref = convTranspose(planes(x), w, b, stride, padding)
    t.deepEqual(y.shape, [1, 2, ref.h, ref.w])
    t.deepEqual(layer.outputSize(5, 4), [ref.h, ref.w])
    t.true(maxAbsDiff(y.toFloat32Array(), ref.data) < 1e-5)
    // L = Σ r·y for fixed random r: dL/dx and dL/dW.
    const r = lcg(12, y.size)
    y.mul(Tensor.fromData(r, y.shape)).sum([0, 1, 2, 3]).backward()
    const loss = (xv: Float64Array, wv: Float64Array) => convTranspose({ ...planes(x), data: xv }, { shape: w.shape, data: wv }, b, stride, padding).data.reduce((s, v, i) => s + v * r[i]!, 0)
    const xv = Float64Array.from(x.toFloat32Array())
    checkGradient(t, x.grad!.toFloat32Array(), xv, (v) => loss(v, w.data), [0, 7, 33, 59], 1e-3, 'dL/dx')
    checkGradient(t, layer.weight.grad!.toFloat32Array(), w.data, (v) => loss(xv, v), [0, 5, w.data.length - 1], 1e-3, 'dL/dW')
    zeroGrad()
  })
}

test('InstanceNorm2d matches its definition, with gradients by finite differences', (t) => {
  zeroGrad()
  const norm = new InstanceNorm2d(3)
  norm.weight.assign(Tensor.fromData([0.5, 2, -1], [3]))
  norm.bias.assign(Tensor.fromData([0.1, 0, -0.3], [3]))
  const x = Tensor.fromData(lcg(21, 2 * 3 * 4 * 5), [2, 3, 4, 5]).toParam()
  const y = norm.forward(x)
  const wv = Float64Array.from([0.5, 2, -1])
  const bv = Float64Array.from([0.1, 0, -0.3])
  const xs = Float64Array.from(x.toFloat32Array())
  // The reference takes one image at a time.
  const ref = (v: Float64Array) => [0, 1].flatMap((n) => [...instanceNorm({ c: 3, h: 4, w: 5, data: v.slice(n * 60, (n + 1) * 60) }, wv, bv).data])
  t.true(maxAbsDiff(y.toFloat32Array(), ref(xs)) < 1e-5)
  const r = lcg(22, y.size)
  y.mul(Tensor.fromData(r, y.shape)).sum([0, 1, 2, 3]).backward()
  checkGradient(t, x.grad!.toFloat32Array(), xs, (v) => ref(v).reduce((s, q, i) => s + q * r[i]!, 0), [0, 19, 64, 119], 2e-3, 'dL/dx')
  zeroGrad()
})

test('GCANet: forwardFeatures runs no layer past the deepest tap; odd sides and unknown taps are refused', (t) => {
  const net = new GCANet({ channels: 4, seed: 3 }).eval()
  const x = Tensor.rand([1, 3, 12, 8], { seed: 4 })
  const convs = (fn: () => void) => {
    let n = 0
    profile((r) => (n += r.kind === 'conv' ? 1 : 0), fn)
    return n
  }
  // conv1–3, then per smoothed block two shared filters and two convs (6 × 4) and the plain one's two,
  // the gate, the transposed conv, deconv2 and deconv1: 3 + 24 + 2 + 1 + 3 = 33.
  t.is(convs(() => noGrad(() => net.forward(x)).dispose()), 33)
  let features = new Map<string, Tensor>()
  t.is(convs(() => (features = noGrad(() => net.forwardFeatures(x, ['res4', 'conv2'])))), 2 + 1 + 16)
  t.deepEqual(features.get('res4')!.shape, [1, 4, 6, 4])
  t.deepEqual(features.get('conv2')!.shape, [1, 4, 12, 8])
  const { output, features: all } = noGrad(() => net.forwardHints(x, ['res4']))
  t.is(maxAbsDiff(all.get('res4')!.toFloat32Array(), features.get('res4')!.toFloat32Array()), 0)
  for (const f of [...features.values(), ...all.values(), output]) f.dispose()
  t.throws(() => net.forward(Tensor.rand([1, 3, 11, 8])), { message: /height and width must be even, got 11×8/ })
  t.throws(() => net.tapChannels('res8'), { message: /unknown hint tap 'res8'/ })
  x.dispose()
  net.dispose()
})

withShared('published GCANet: 702,818 parameters under the PyTorch names; loadModel reads the bare file as GCANet', (t) => {
  const loaded = loadModel(weightsFile())
  t.deepEqual([loaded.spec, loaded.imageChannels, loaded.model instanceof GCANet], [{ kind: 'gcanet', options: {} }, 3, true])
  loaded.model.dispose()
  const net = GCANet.fromSafetensors(weightsFile())
  t.is(net.numParameters(), 702818)
  const names = new Set(net.namedParameters().map(([n]) => n))
  t.deepEqual(
    [...names].filter((n) => n.startsWith('res4.')),
    ['res4.pre_conv1.weight', 'res4.conv1.weight', 'res4.norm1.weight', 'res4.norm1.bias', 'res4.pre_conv2.weight', 'res4.conv2.weight', 'res4.norm2.weight', 'res4.norm2.bias'],
  )
  t.deepEqual(net.namedParameters().find(([n]) => n === 'res4.pre_conv1.weight')![1].shape, [1, 1, 7, 7])
  t.deepEqual(net.namedParameters().find(([n]) => n === 'deconv3.weight')![1].shape, [64, 64, 4, 4])
  t.false([...names].some((n) => n.startsWith('res7.pre_conv')))
  net.dispose()
})

withShared('published GCANet on a 48×64 crop of a SOTS-indoor image matches a float64 reference', (t) => {
  const weights = readWeights(weightsFile())
  const net = GCANet.fromSafetensors(weightsFile())
  const file = listImages(path.join(shared, 'data', 'dehaze', 'sots_indoor', 'input'))[0]!
  const input = crop(readPlanes(file), 48, 64)
  const ref = gcanetReference(input, weights)
  scope(() => {
    const { output, features } = noGrad(() => net.forwardHints(Tensor.fromData(Float32Array.from(input.data), [1, 3, 48, 64]), ['res7', 'gate']))
    // On the 0–255 scale the output is a sum of magnitudes near 255: float32 keeps about 1e-5 of it.
    const err = maxAbsDiff(output.toFloat32Array(), ref.output.data) * 255
    t.log(`output max |spikeir − reference| ${err.toExponential(2)} grey levels`)
    t.true(err < 2e-3, `output differs by ${err} grey levels`)
    t.true(maxAbsDiff(features.get('res7')!.toFloat32Array(), ref.res7.data) < 1e-3)
    t.true(maxAbsDiff(features.get('gate')!.toFloat32Array(), ref.gate.data) < 1e-3)
  })
  net.dispose()
})
