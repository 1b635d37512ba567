import * as path from 'node:path'

import test from 'ava'

import { Tensor, loadModel, noGrad, profile, readImage } from '../index'
import { checkModelSpec } from '../src/models/load'
import { LKDNET_TAPS, LKDNet } from '../src/models/lkdnet'
import type { HintSource } from '../src/distill/hkd'
import type { Module } from '../src/nn/module'
import { sharedTest } from './helpers'
import { lkdnetReference, padReflect, readWeights, toPlanes, type Planes } from './lkdnet-reference'

const { run: withShared, shared } = sharedTest()
const weightsFile = () => path.join(shared, 'models', 'lkdnet_t_its_dehaze.safetensors')
const sots = (part: 'input' | 'target', name: string) => path.join(shared, 'data', 'dehaze', 'sots_indoor', part, name)

/** Largest |a − b| over two equally long arrays. */
function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`)
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!))
  return m
}

const maxAbs = (a: ArrayLike<number>) => maxAbsDiff(a, new Float64Array(a.length))
const toTensor = (x: Planes) => Tensor.fromData(Float32Array.from(x.data), [1, x.c, x.h, x.w])

/** A hazy SOTS-indoor input, centre-cropped to `h × w`, as float64 planes. */
function hazyCrop(name: string, h: number, w: number): Planes {
  const img = readImage(sots('input', name), { channels: 3 })
  const [, c, ih, iw] = img.shape as [number, number, number, number]
  const full = toPlanes(img.toFloat32Array(), c, ih, iw)
  img.dispose()
  const y0 = Math.floor((ih - h) / 2)
  const x0 = Math.floor((iw - w) / 2)
  const data = new Float64Array(c * h * w)
  for (let k = 0; k < c; k++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[(k * h + y) * w + x] = full.data[(k * ih + y0 + y) * iw + x0 + x]!
  return { c, h, w, data }
}

test('Tensor.padReflect mirrors about the edge samples and refuses paddings of a whole side', (t) => {
  const x = Tensor.fromData([1, 2, 3, 4, 5, 6], [1, 1, 2, 3])
  const y = x.padReflect([1, 0, 2, 1])
  t.deepEqual(y.shape, [1, 1, 3, 6])
  t.deepEqual([...y.toFloat32Array()], [6, 5, 4, 5, 6, 5, 3, 2, 1, 2, 3, 2, 6, 5, 4, 5, 6, 5])
  t.throws(() => x.padReflect(2), { message: /pad2d_reflect: top padding 2 must be below the input height 2/ })
  t.throws(() => x.padReflect([0, 0, 0, 3]), { message: /right padding 3 must be below the input width 3/ })
  t.throws(() => x.padReflect([1, 1] as unknown as [number, number, number, number]), { message: /padReflect: padding must be \[top, bottom, left, right\]/ })
  // The gradient folds the mirrored border back onto the pixels it copies.
  const p = x.toParam()
  const out = p.padReflect([0, 0, 2, 0])
  out.backward(Tensor.fromData([1, 10, 100, 1000, 1, 1, 1, 1, 1, 1], [1, 1, 2, 5]))
  t.deepEqual([...p.grad!.toFloat32Array()], [100, 1010, 2, 1, 2, 2])
  for (const v of [x, y, p, out]) v.dispose()
})

test('LKDNet: tap names and channels, unknown taps, RGB only, depths checked', (t) => {
  const net = new LKDNet({ seed: 1 }).eval()
  // A teacher for H-KD, forwardFeatures included (checked by the compiler).
  const source: Required<HintSource> = net
  void source
  t.deepEqual(
    LKDNET_TAPS.map((tap) => net.tapChannels(tap)),
    [24, 48, 96, 48, 24],
  )
  t.throws(() => net.tapChannels('decoder3'), { message: /unknown hint tap 'decoder3' \(encoder1, encoder2, encoder3, decoder2, decoder1\)/ })
  t.throws(() => net.forward(Tensor.rand([1, 1, 16, 16])), { message: /expected an RGB image \[B, 3, H, W\], got \[1, 1, 16, 16\]/ })
  t.throws(() => net.forwardHints(Tensor.rand([1, 3, 42, 40]), ['decoder1']), { message: /multiples of 4, got 42×40/ })
  t.throws(() => new LKDNet({ depths: [1, 1, 0, 1, 1] }), { message: /depths must be 5 integers ≥ 1/ })
  const { output, features } = noGrad(() => net.forwardHints(Tensor.rand([2, 3, 40, 44], { seed: 2 }), [...LKDNET_TAPS]))
  t.deepEqual(output.shape, [2, 3, 40, 44])
  t.deepEqual(
    LKDNET_TAPS.map((tap) => features.get(tap)!.shape),
    [
      [2, 24, 40, 44],
      [2, 48, 20, 22],
      [2, 96, 10, 11],
      [2, 48, 20, 22],
      [2, 24, 40, 44],
    ],
  )
  net.dispose()
})

test('LKDNet: forwardFeatures runs no level past the deepest tap and gives what forwardHints gives', (t) => {
  const net = new LKDNet({ seed: 3 }).eval()
  const x = Tensor.rand([1, 3, 40, 40], { seed: 4 })
  const levels = (fn: () => void) => {
    const seen = new Set<string>()
    const names = new Map<Module, string>(net.namedModules().map(([n, m]) => [m, n]))
    profile((r) => seen.add(names.get(r.module)!.split('.')[0]!), fn)
    return [...seen]
  }
  let hints = new Map<string, Tensor>()
  let only = new Map<string, Tensor>()
  t.deepEqual(
    levels(() => {
      const r = noGrad(() => net.forwardHints(x, ['encoder2', 'encoder1']))
      r.output.dispose()
      hints = r.features
    }),
    ['patch_embed', 'layer1', 'patch_merge1', 'layer2', 'patch_merge2', 'layer3', 'patch_split1', 'skip2', 'fusion1', 'layer4', 'patch_split2', 'skip1', 'fusion2', 'layer5', 'patch_unembed'],
  )
  t.deepEqual(
    levels(() => (only = noGrad(() => net.forwardFeatures(x, ['encoder2', 'encoder1'])))),
    ['patch_embed', 'layer1', 'patch_merge1', 'layer2'],
  )
  for (const tap of ['encoder1', 'encoder2']) t.deepEqual(only.get(tap)!.toFloat32Array(), hints.get(tap)!.toFloat32Array(), tap)
  net.dispose()
})

withShared('LKD-Net-T: the published weights load by name, 344,182 parameters', (t) => {
  const net = LKDNet.fromSafetensors(weightsFile())
  t.is(net.numParameters(), 344_182)
  // Running statistics of the 12 batch norms (two per block, 6 blocks).
  t.is(net.namedBuffers().length, 24)
  const loaded = loadModel(weightsFile())
  t.is(loaded.spec.kind, 'lkdnet')
  t.is(loaded.imageChannels, 3)
  t.is(loaded.model.numParameters(), 344_182)
  t.deepEqual(checkModelSpec({ kind: 'lkdnet', options: { seed: 2 } }, 'spec'), { kind: 'lkdnet', options: { seed: 2 } })
  t.throws(() => checkModelSpec({ kind: 'lkdnet', options: { width: 8 } }, 'spec'), { message: /spec\.options\.width: unknown option for lkdnet/ })
  t.throws(() => LKDNet.fromSafetensors(path.join(shared, 'models', 'dncnn_s_sigma25.safetensors')), {
    message: /LKD-Net weights '.*dncnn_s_sigma25\.safetensors' do not match LKD-Net \(blocks 1\/1\/2\/1\/1\): missing tensors 194 \(patch_embed\.proj\.weight, .*, …\); unexpected tensors 34 \(layers\.0\.bias, layers\.0\.weight, /,
  })
  net.dispose()
  loaded.model.dispose()
})

withShared('LKD-Net-T on a 64×64 SOTS-indoor crop matches the float64 reference, output and every tap', (t) => {
  const net = LKDNet.fromSafetensors(weightsFile())
  const input = hazyCrop('1400_1.png', 64, 64)
  const ref = lkdnetReference(input, readWeights(weightsFile()))
  const { output, features } = noGrad(() => net.forwardHints(toTensor(input), [...LKDNET_TAPS]))
  // The output is in [0, 1]; the dehazed crop differs from the hazy one.
  t.true(maxAbsDiff(ref.output.data, input.data) > 0.1)
  const err = maxAbsDiff(output.toFloat32Array(), ref.output.data)
  t.true(err < 2e-5, `output: max |spikeir − reference| = ${err}`)
  for (const tap of LKDNET_TAPS) {
    const want = ref.features[tap].data
    const e = maxAbsDiff(features.get(tap)!.toFloat32Array(), want)
    t.true(e < 2e-5 * Math.max(1, maxAbs(want)), `${tap}: max |spikeir − reference| = ${e} (features up to ${maxAbs(want)})`)
  }
  net.dispose()
})

withShared('LKD-Net-T pads sides that are not multiples of 4 by reflection and crops back, as the source', (t) => {
  const net = LKDNet.fromSafetensors(weightsFile())
  const input = hazyCrop('1425_6.png', 46, 41)
  // The source: reflect-pad the bottom and right to 48 × 44, run, crop.
  const ref = lkdnetReference(padReflect(input, 0, 2, 0, 3), readWeights(weightsFile())).output
  const out = noGrad(() => net.forward(toTensor(input)))
  t.deepEqual(out.shape, [1, 3, 46, 41])
  const want = new Float64Array(3 * 46 * 41)
  for (let c = 0; c < 3; c++) for (let y = 0; y < 46; y++) for (let x = 0; x < 41; x++) want[(c * 46 + y) * 41 + x] = ref.data[(c * 48 + y) * 44 + x]!
  const err = maxAbsDiff(out.toFloat32Array(), want)
  t.true(err < 2e-5, `max |spikeir − reference| = ${err}`)
  net.dispose()
})
